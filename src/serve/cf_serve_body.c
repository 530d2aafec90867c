/* Request bodies: identity or gzip, bounded after decompression
 * (cf_serve_body.h). */
#include "crucible/serve/cf_serve_body.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define STEP 65536 /* bytes inflated at a time */

/* Each thread keeps the memory of its last body (up to SPARE_MAX) for its
 * next one: a body of a few hundred KB is past glibc's mmap threshold, so
 * a fresh one per request was mapped, faulted in page by page while the
 * chunks were copied, and unmapped (3% of the OTLP route's time). The
 * thread's exit frees it. */
#define SPARE_MAX ((size_t)4 << 20)

static pthread_key_t spare_key;
static pthread_once_t spare_once = PTHREAD_ONCE_INIT;
static int spare_ok;

static void spare_free(void *p)
{
    cf_buf *b = p;
    cf_buf_free(b);
    free(b);
}

static void spare_init(void) { spare_ok = pthread_key_create(&spare_key, spare_free) == 0; }

/* The thread's spare memory into out (empty), when it has some. */
static void spare_take(cf_buf *out)
{
    pthread_once(&spare_once, spare_init);
    cf_buf *b = spare_ok ? pthread_getspecific(spare_key) : NULL;
    if (!b || !b->p)
        return;
    *out = *b;
    out->n = 0;
    memset(b, 0, sizeof *b);
}

/* Keeps out's memory as the thread's spare; 1 when kept. */
static int spare_keep(cf_buf *out)
{
    if (!out->p || out->oom || out->cap > SPARE_MAX || !spare_ok)
        return 0;
    cf_buf *b = pthread_getspecific(spare_key);
    if (!b) {
        if (!(b = calloc(1, sizeof *b)))
            return 0;
        if (pthread_setspecific(spare_key, b)) {
            free(b);
            return 0;
        }
    }
    if (b->p)
        return 0; /* one spare a thread */
    *b = *out;
    b->n = 0;
    return 1;
}

int cf_body_init(cf_body *b, int gzip, size_t limit)
{
    memset(b, 0, sizeof *b);
    spare_take(&b->out);
    b->limit = limit;
    b->gzip = gzip;
    if (!gzip)
        return CF_BODY_OK;
    z_stream *z = calloc(1, sizeof *z);
    if (!z)
        return CF_BODY_NOMEM;
    /* 16 + MAX_WBITS: a gzip header and trailer, not raw deflate */
    if (inflateInit2(z, 16 + MAX_WBITS) != Z_OK) {
        free(z);
        return CF_BODY_NOMEM;
    }
    b->z = z;
    b->z_ready = 1;
    return CF_BODY_OK;
}

static int feed_gzip(cf_body *b, const char *p, size_t n)
{
    z_stream *z = b->z;
    if (b->z_done)
        return n ? CF_BODY_CORRUPT : CF_BODY_OK; /* bytes after the stream's end */
    z->avail_in = 0;
    int full = 0; /* the last step filled its output: zlib may hold more */
    while (n > 0 || z->avail_in > 0 || full) {
        uInt chunk = n > UINT32_MAX ? UINT32_MAX : (uInt)n;
        if (z->avail_in == 0) {
            z->next_in = (Bytef *)(uintptr_t)p;
            z->avail_in = chunk;
            p += chunk;
            n -= chunk;
        }
        /* never more than one byte past the limit: that byte says "too large" */
        size_t room = b->limit - b->out.n + 1;
        uInt step = room < STEP ? (uInt)room : STEP;
        if (cf_buf_reserve(&b->out, step))
            return CF_BODY_NOMEM;
        z->next_out = (Bytef *)(b->out.p + b->out.n);
        z->avail_out = step;
        int rc = inflate(z, Z_NO_FLUSH);
        b->out.n += step - z->avail_out;
        full = z->avail_out == 0;
        if (b->out.n > b->limit) {
            b->out.n = b->limit;
            return CF_BODY_TOO_LARGE;
        }
        if (rc == Z_STREAM_END) {
            b->z_done = 1;
            return z->avail_in || n ? CF_BODY_CORRUPT : CF_BODY_OK;
        }
        if (rc == Z_BUF_ERROR && z->avail_in == 0)
            continue; /* needs more input */
        if (rc != Z_OK)
            return rc == Z_MEM_ERROR ? CF_BODY_NOMEM : CF_BODY_CORRUPT;
    }
    return CF_BODY_OK;
}

int cf_body_expect(cf_body *b, size_t n)
{
    if (b->gzip || n > b->limit)
        return CF_BODY_OK; /* refused on arrival, or inflated in steps */
    if (n > CF_BODY_EXPECT_MAX)
        n = CF_BODY_EXPECT_MAX;
    return cf_buf_reserve(&b->out, n) ? CF_BODY_NOMEM : CF_BODY_OK; /* room for the NUL too */
}

int cf_body_feed(cf_body *b, const char *p, size_t n)
{
    /* compressed bytes are bounded too: gzip can encode endless empty
     * blocks that inflate to nothing */
    if (n > b->limit - b->raw)
        return CF_BODY_TOO_LARGE;
    b->raw += n;
    if (b->gzip)
        return feed_gzip(b, p, n);
    if (n > b->limit - b->out.n)
        return CF_BODY_TOO_LARGE;
    return cf_buf_append(&b->out, p, n) ? CF_BODY_NOMEM : CF_BODY_OK;
}

int cf_body_finish(cf_body *b)
{
    if (b->gzip && !b->z_done)
        return CF_BODY_CORRUPT;
    if (cf_buf_reserve(&b->out, 1))
        return CF_BODY_NOMEM;
    b->out.p[b->out.n] = '\0';
    return CF_BODY_OK;
}

void cf_body_free(cf_body *b)
{
    if (b->z_ready) {
        inflateEnd(b->z);
        free(b->z);
    }
    if (!spare_keep(&b->out))
        cf_buf_free(&b->out);
    memset(b, 0, sizeof *b);
}
