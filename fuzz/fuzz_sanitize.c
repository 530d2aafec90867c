/* libFuzzer target: the PII sanitizer on arbitrary bytes, as text and as
 * a JSON document. Checks what must always hold: no crash, no sanitizer
 * report, the output never longer than the input plus what replacement
 * tokens can add, and user patterns only on valid UTF-8. And an oracle:
 * wherever an entity's own anchored pattern (with its checksums) matches
 * at a boundary (the start, or after whitespace or one of :=/("'[{<>;|),
 * the sanitizer must have redacted every byte of that match; so its
 * candidate scan may skip work but never an entity. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crucible/sanitize/cf_sanitize.h"

static cf_sanitizer *builtin, *with_user;
static cf_sanitize_scratch *sc;

static void setup(void)
{
    cf_err err;
    cf_sanitize_opts o = {CF_ENT_ALL, NULL, 0};
    if (cf_sanitizer_new(&o, &builtin, &err))
        abort();
    static const cf_pii_pattern pats[] = {
        {"code", "SECRET\\d+", "[CODE]"},
        {NULL, "(?<u>\\w+)@internal\\b", "${u}@[X]"},
        {NULL, "\\p{Cyrillic}{6,}", "[$0]"},
    };
    o.patterns = pats;
    o.npatterns = 3;
    if (cf_sanitizer_new(&o, &with_user, &err))
        abort();
    sc = cf_sanitize_scratch_new();
    if (!sc)
        abort();
}

static int boundary(const char *text, size_t at)
{
    if (at == 0)
        return 1;
    char p = text[at - 1];
    return p != '\0' && strchr(" \t\n\r:=/(\"'[{<>;|", p) != NULL;
}

/* After cf_sanitize(builtin, sc, text, ...): no match survives. */
static void oracle(const char *text, size_t size)
{
    for (size_t at = 0; at < size; at++) {
        if (!boundary(text, at))
            continue;
        for (int e = 0; e < CF_ENT_COUNT; e++) {
            size_t start = 0, end = cf_entity_match_at(builtin, sc, e, text, size, at, &start);
            if (end && !cf_sanitize_covered(sc, start, end)) {
                fprintf(stderr, "oracle: %s [%zu, %zu) survived: %.*s\n", cf_entity_name(e),
                        start, end, (int)(end - start), text + start);
                abort();
            }
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!sc)
        setup();
    const char *text = (const char *)data;
    uint32_t counts[CF_ENT_COUNT + 3] = {0};
    cf_str out;
    cf_err err;
    int k = cf_sanitize(builtin, sc, text, size, &out, counts, &err);
    if (k < 0)
        abort(); /* built-ins work on any bytes */
    uint32_t total = 0;
    for (int e = 0; e < CF_ENT_COUNT; e++)
        total += counts[e];
    if ((int)total != k)
        abort();
    /* each redaction replaces at least 3 bytes by at most 13 */
    if (out.n > size + (size_t)k * 13)
        abort();
    if (k == 0 && (out.n != size || (size && memcmp(out.p, text, size) != 0)))
        abort();
    oracle(text, size);
    if (cf_utf8_check(text, size) == size) {
        k = cf_sanitize(with_user, sc, text, size, &out, counts, &err);
        if (k < 0 && err.code != CF_EINVAL)
            abort(); /* only a match limit may stop a user pattern */
    }
    cf_buf b = CF_BUF_INIT;
    cf_sanitize_json(builtin, sc, text, size, &b, NULL, &err);
    cf_buf_free(&b);
    return 0;
}
