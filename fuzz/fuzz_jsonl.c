/* libFuzzer target: one JSON line to a validated, sanitized event, and
 * back. Whatever cf_jsonl_parse and cf_record_prepare accept must write
 * out (cf_jsonl_write_event) as a line that reads back to the same event.
 * And the input as a metadata object: whatever cf_json_compact copies,
 * jansson must accept and write back as the very same text. */
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crucible/ingest/cf_json_compact.h"
#include "crucible/ingest/cf_jsonl.h"
#include "crucible/ingest/cf_record.h"

static cf_sanitizer *san, *none;
static cf_hmac *hmac;
static cf_prepare_scratch *ps1, *ps2;

static void setup(void)
{
    cf_err err;
    cf_sanitize_opts o = {CF_ENT_ALL, NULL, 0};
    cf_sanitize_opts z = {0, NULL, 0};
    if (cf_sanitizer_new(&o, &san, &err) || cf_sanitizer_new(&z, &none, &err)
        || cf_hmac_new("fuzz", 4, &hmac, &err))
        abort();
    ps1 = cf_prepare_scratch_new();
    ps2 = cf_prepare_scratch_new();
    if (!ps1 || !ps2)
        abort();
}

static int same_str(cf_str a, cf_str b)
{
    if (!a.p || !b.p)
        return !a.p && !b.p;
    return a.n == b.n && memcmp(a.p, b.p, a.n) == 0;
}

static int same_json(cf_str a, cf_str b)
{
    if (!a.p || !b.p)
        return !a.p && !b.p;
    json_t *x = json_loadb(a.p, a.n, JSON_ALLOW_NUL, NULL);
    json_t *y = json_loadb(b.p, b.n, JSON_ALLOW_NUL, NULL);
    int eq = x && y && json_equal(x, y);
    json_decref(x);
    json_decref(y);
    return eq;
}

/* cf_json_compact's copy is jansson's compact dump, or it declined. */
static void check_compact(const char *s, size_t n)
{
    char *fast = NULL;
    if (cf_json_compact(s, n, &fast) <= 0)
        return;
    json_t *v = json_loadb(s, n, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, NULL);
    char *slow = v ? json_dumps(v, JSON_COMPACT | JSON_REAL_PRECISION(17)) : NULL;
    if (!slow || strcmp(fast, slow) != 0)
        abort();
    free(slow);
    free(fast);
    json_decref(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!san)
        setup();
    check_compact((const char *)data, size);
    int to_meta = size & 1; /* either way of treating unknown fields */
    cf_jsonl_doc doc = CF_JSONL_DOC_INIT;
    cf_event_in in;
    cf_err err;
    cf_verrors v;
    cf_record *rec = NULL;
    cf_prepare_cfg cfg = {NULL, san, hmac, 1, 1 << 20, {NULL, NULL}};
    int rc = cf_jsonl_parse((const char *)data, size, to_meta, &doc, &in, &err);
    if (rc == 0)
        rc = cf_record_prepare(&cfg, &in, ps1, 1, &rec, NULL, &v, &err);
    cf_jsonl_doc_free(&doc);
    if (rc) {
        if (err.code != CF_EINVAL || !err.msg[0])
            abort(); /* bad input is CF_EINVAL with a message, nothing else */
        return 0;
    }
    /* write it out, read it back without sanitizing again: the same event */
    cf_buf line = CF_BUF_INIT;
    if (cf_jsonl_write_event(&line, &rec->ev))
        abort();
    cf_prepare_cfg plain = {NULL, none, NULL, 0, 0, {NULL, NULL}};
    cf_record *back = NULL;
    if (cf_jsonl_parse(line.p, line.n, 0, &doc, &in, &err)
        || cf_record_prepare(&plain, &in, ps2, 1, &back, NULL, &v, &err))
        abort();
    cf_jsonl_doc_free(&doc);
    const cf_event *a = &rec->ev, *b = &back->ev;
    if (!same_str(a->id, b->id) || !same_str(a->deployment_id, b->deployment_id)
        || !same_str(a->model_version_id, b->model_version_id)
        || !same_str(a->user_id_hash, b->user_id_hash) || !same_str(a->prompt, b->prompt)
        || !same_str(a->response, b->response) || !same_json(a->metadata, b->metadata)
        || a->latency_ms != b->latency_ms || a->token_count != b->token_count
        || a->inserted_at != b->inserted_at
        || !(a->quality_score == b->quality_score
             || (isnan(a->quality_score) && isnan(b->quality_score))))
        abort();
    cf_record_free(back);
    cf_record_free(rec);
    cf_buf_free(&line);
    return 0;
}
