/* libFuzzer target: the OTLP decoders (protobuf through protobuf-c behind
 * the depth guard, and OTLP/JSON), the GenAI span mapping and the
 * evaluation records' scores. The first byte picks the decoder; the rest
 * is the body. Oracle: every event the mapping writes is a JSON object
 * that cf_jsonl_parse reads (the mapping never hands the validator text
 * it cannot parse), and its string fields are valid UTF-8; every score is
 * a valid UTF-8 JSON object naming its event. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../src/otlp/cf_otlp_eval.h"

#include "crucible/ingest/cf_jsonl.h"
#include "crucible/otlp/cf_otlp.h"
#include "crucible/otlp/cf_otlp_map.h"

static void map_all(const cf_otlp_traces *t)
{
    cf_buf ev = CF_BUF_INIT;
    for (size_t i = 0; i < t->n_resource_spans; i++) {
        const cf_otlp_rspans *rs = t->resource_spans[i];
        cf_otlp_attrs res;
        if (cf_otlp_attrs_index(&res, rs->resource ? rs->resource->attributes : NULL,
                                rs->resource ? rs->resource->n_attributes : 0))
            abort();
        for (size_t j = 0; j < rs->n_scope_spans; j++)
            for (size_t k = 0; k < rs->scope_spans[j]->n_spans; k++) {
                ev.n = 0;
                int content;
                int rc = cf_otlp_map_span(&res, rs->scope_spans[j]->spans[k], &ev, &content);
                if (rc < 0)
                    abort();
                if (rc == 0)
                    continue;
                cf_jsonl_doc doc = CF_JSONL_DOC_INIT;
                cf_event_in in;
                cf_err err;
                if (cf_jsonl_parse(ev.p, ev.n, 0, &doc, &in, &err) != 0)
                    abort(); /* the mapping wrote something that is not an event object */
                if (cf_utf8_check(ev.p, ev.n) != ev.n)
                    abort();
                cf_jsonl_doc_free(&doc);
            }
        cf_otlp_attrs_free(&res);
    }
    cf_buf_free(&ev);
}

static void score_all(const cf_otlp_logs *l)
{
    cf_buf json = CF_BUF_INIT;
    for (size_t i = 0; i < l->n_resource_logs; i++)
        for (size_t k = 0; k < l->resource_logs[i]->n_scope_logs; k++) {
            const cf_otlp_slogs *sl = l->resource_logs[i]->scope_logs[k];
            for (size_t r = 0; r < sl->n_log_records; r++) {
                json.n = 0;
                char target[CF_OTLP_KEY_MAX], why[200];
                int rc = cf_otlp_eval_of(sl->log_records[r], NULL, &json, target, why, sizeof why);
                if (rc < 0)
                    abort();
                if (rc == 0)
                    continue;
                json_t *v = json_loadb(json.p, json.n, 0, NULL);
                if (!json_is_object(v) || !target[0] || cf_utf8_check(json.p, json.n) != json.n)
                    abort(); /* a score the owner's thread could not read */
                json_decref(v);
            }
        }
    cf_buf_free(&json);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    cf_otlp_arena *a = cf_otlp_arena_new();
    if (!a)
        abort();
    cf_err err;
    const uint8_t *body = data + 1;
    size_t n = size - 1;
    cf_otlp_traces *t = NULL;
    cf_otlp_logs *l = NULL;
    switch (data[0] & 3) {
    case 0:
        if (cf_otlp_traces_pb(body, n, a, &t, &err) == 0)
            map_all(t);
        break;
    case 1:
        if (cf_otlp_traces_json((const char *)body, n, a, &t, &err) == 0)
            map_all(t);
        break;
    case 2:
        if (cf_otlp_logs_pb(body, n, a, &l, &err) == 0)
            score_all(l);
        break;
    default:
        if (cf_otlp_logs_json((const char *)body, n, a, &l, &err) == 0)
            score_all(l);
        break;
    }
    cf_otlp_arena_free(a);
    return 0;
}
