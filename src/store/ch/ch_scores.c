/*
 * ClickHouse backend: scores (migration 8). Without transactions or
 * unique keys, a score's id is looked up before the row goes in (within
 * the event's deployment, the sort key) and a taken id is refused; the
 * event's deployment comes from inference_event_ids. Values are kept as
 * IEEE bits (value_bits) so a number reads back exactly.
 */
#include "ch_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SCORE_COLUMNS                                                                          \
    "id, inference_event_id, deployment_id, name, data_type, value_bits, string_value,"      \
    " comment, source, inserted_at"

static int show_len(cf_str s) { return (int)(s.n > 100 ? 100 : s.n); }

static int refuse_taken(ch_store *s, cf_str dep, cf_str id, cf_err *err)
{
    cf_buf q = CF_BUF_INIT;
    cf_buf_str(&q, "SELECT count() FROM scores WHERE deployment_id = ");
    ch_quote(&q, dep);
    cf_buf_str(&q, " AND id = ");
    ch_quote(&q, id);
    int64_t c = 0;
    int rc = ch_query_int(s, &q, "recording a score", &c, err);
    cf_buf_free(&q);
    if (rc)
        return -1;
    if (c > 0)
        return cf_fail(err, CF_EINVAL, "scores[0]: id '%.*s' already exists", show_len(id), id.p);
    return 0;
}

int ch_insert_score(cf_store *base, const cf_score *sc, cf_err *err)
{
    ch_store *s = (ch_store *)base;
    char *dep = NULL;
    if (ch_event_deployment(s, sc->inference_event_id, "recording a score", &dep, err))
        return -1;
    if (!dep)
        return cf_fail(err, CF_ENOTFOUND, "inference event '%.*s' not found",
                       show_len(sc->inference_event_id), sc->inference_event_id.p);
    int rc = refuse_taken(s, cf_cstr(dep), sc->id, err);
    if (rc == 0) {
        cf_buf b = CF_BUF_INIT;
        ch_json_key(&b, "id", 1);
        cf_buf_json_string(&b, sc->id.p, sc->id.n);
        ch_json_str(&b, "inference_event_id", sc->inference_event_id);
        ch_json_str(&b, "deployment_id", cf_cstr(dep));
        ch_json_str(&b, "name", sc->name);
        ch_json_str(&b, "data_type", sc->data_type);
        ch_json_bits(&b, "value_bits", sc->value);
        ch_json_str(&b, "string_value", sc->string_value);
        ch_json_str(&b, "comment", sc->comment);
        ch_json_str(&b, "source", sc->source);
        ch_json_int(&b, "inserted_at", sc->inserted_at ? sc->inserted_at : cf_now_us());
        ch_json_int(&b, "seq", (int64_t)ch_next_seq());
        cf_buf_str(&b, "}\n");
        rc = cf_buf_failed(&b) ? cf_fail(err, CF_ENOMEM, "out of memory recording a score")
                               : ch_insert(s, "scores", &b, "recording a score", err);
        cf_buf_free(&b);
    }
    free(dep);
    return rc;
}

static void cond_str(cf_buf *q, const char *col, cf_str v)
{
    if (!v.p)
        return;
    cf_buf_str(q, " AND ");
    cf_buf_str(q, col);
    cf_buf_str(q, " = ");
    ch_quote(q, v);
}

static void build_list(cf_buf *q, const cf_score_query *f)
{
    cf_buf_str(q, "SELECT " SCORE_COLUMNS " FROM scores WHERE 1");
    cond_str(q, "id", f->id);
    cond_str(q, "deployment_id", f->deployment_id);
    cond_str(q, "inference_event_id", f->event_id);
    cond_str(q, "name", f->name);
    if (f->since != CF_NO_TIME) {
        cf_buf_str(q, " AND inserted_at >= ");
        cf_buf_int(q, f->since);
    }
    if (f->until != CF_NO_TIME) {
        cf_buf_str(q, " AND inserted_at < ");
        cf_buf_int(q, f->until);
    }
    cf_buf_str(q, " ORDER BY inserted_at, seq LIMIT ");
    cf_buf_int(q, f->limit < 0 ? INT64_MAX : f->limit);
}

int ch_list_scores(cf_store *base, const cf_score_query *f, cf_score_list_fn cb, void *ud,
                   cf_err *err)
{
    ch_store *s = (ch_store *)base;
    cf_buf q = CF_BUF_INIT;
    build_list(&q, f);
    if (cf_buf_failed(&q)) {
        cf_buf_free(&q);
        return cf_fail(err, CF_ENOMEM, "out of memory listing scores");
    }
    ch_rows r;
    int rc = ch_query(s, &q, "listing scores", &r, err);
    cf_buf_free(&q);
    if (rc)
        return -1;
    while ((rc = ch_rows_next(&r, 10, err)) == 1) {
        cf_score sc = {
            .id = r.f[0],
            .inference_event_id = r.f[1],
            .deployment_id = r.f[2],
            .name = r.f[3],
            .data_type = r.f[4],
            .value = ch_bits_double(r.f[5]),
            .string_value = r.f[6],
            .comment = r.f[7],
            .source = r.f[8],
            .inserted_at = ch_int(r.f[9]),
        };
        int stop = cb(ud, &sc);
        if (stop) {
            ch_rows_close(&r);
            return stop;
        }
    }
    return rc < 0 ? -1 : 0;
}
