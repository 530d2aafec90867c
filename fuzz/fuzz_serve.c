/* libFuzzer target: the request-body decoders of `serve` -- a body fed in
 * chunks (identity or gzip, bounded by a limit), then split into items
 * (a JSON array, one value, or NDJSON). The first input byte chooses the
 * mode, chunk size and limit. Checks: the decoded body never passes the
 * limit, an identity body comes out as it went in, and every item span
 * lies inside the body, non-empty, with no whitespace at either end. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crucible/serve/cf_serve_body.h"
#include "crucible/serve/cf_serve_events.h"

static int is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static void check_split(const char *body, size_t n, int ndjson)
{
    size_t *spans = NULL;
    cf_err err;
    long items = cf_serve_split(body, n, ndjson, &spans, &err);
    if (items < 0) {
        if (err.code != CF_EINVAL && err.code != CF_ENOMEM)
            abort();
        return;
    }
    for (long i = 0; i < items; i++) {
        size_t a = spans[2 * i], len = spans[2 * i + 1];
        if (len == 0 || a > n || len > n - a)
            abort();
        if (is_ws(body[a]) || is_ws(body[a + len - 1]))
            abort();
        if (ndjson && memchr(body + a, '\n', len))
            abort();
    }
    free(spans);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned mode = data[0];
    int gzip = mode & 1, ndjson = (mode >> 1) & 1;
    size_t chunk = 1 + ((mode >> 2) & 7) * 37;
    size_t limit = (mode & 0x80) ? 64 : 1 << 20;
    const char *in = (const char *)data + 1;
    size_t n = size - 1;
    cf_body b;
    if (cf_body_init(&b, gzip, limit))
        return 0;
    int rc = CF_BODY_OK;
    for (size_t off = 0; off < n && rc == CF_BODY_OK; off += chunk)
        rc = cf_body_feed(&b, in + off, n - off < chunk ? n - off : chunk);
    if (rc == CF_BODY_OK)
        rc = cf_body_finish(&b);
    if (b.out.n > limit)
        abort();
    if (rc == CF_BODY_OK) {
        if (!gzip && (b.out.n != n || (n && memcmp(b.out.p, in, n) != 0)))
            abort();
        if (b.out.p[b.out.n] != '\0')
            abort();
        check_split(b.out.p, b.out.n, ndjson);
    } else if (!gzip && rc != CF_BODY_TOO_LARGE) {
        abort(); /* identity bodies fail only by size */
    }
    /* the splitter on the raw input too, whatever the body decoder said */
    check_split(in, n, ndjson);
    cf_body_free(&b);
    return 0;
}
