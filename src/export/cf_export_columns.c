/*
 * The columns of curated exports: what each is called, its type, and
 * where its value comes from. The curated example gives prompt, response,
 * source, score, inference_event_id and deployment_id; the rest traces the
 * example back to production through its inference event (model version,
 * the event's time, quality score, and how many signals of each type it
 * got), read per row only when a chosen column needs it.
 */
#include <math.h>
#include <string.h>

#include "crucible/export/cf_export.h"

const char *const cf_export_signal_types[CF_EXPORT_SIGNAL_TYPES] = {
    "thumbs_up", "thumbs_down", "regenerate", "edit", "copy", "share", "report"};

enum { C_PROMPT, C_RESPONSE, C_SOURCE, C_SCORE, C_EVENT, C_DEPLOYMENT, C_MODEL, C_CREATED,
       C_QUALITY, C_SIGNALS };

static const cf_export_column TABLE[] = {
    {"prompt", CF_PQ_STRING, 0, "string"},
    {"response", CF_PQ_STRING, 0, "string"},
    {"source", CF_PQ_STRING, 0, "string"},
    {"score", CF_PQ_DOUBLE, 0, "float64"},
    {"inference_event_id", CF_PQ_STRING, 0, "string"},
    {"deployment_id", CF_PQ_STRING, 0, "string"},
    {"model_version_id", CF_PQ_STRING, 1, "string"},
    {"created_at", CF_PQ_TIMESTAMP, 1, "timestamp[us, tz=UTC]"},
    {"quality_score", CF_PQ_DOUBLE, 1, "float64"},
    {"signals_thumbs_up", CF_PQ_INT64, 1, "int64"},
    {"signals_thumbs_down", CF_PQ_INT64, 1, "int64"},
    {"signals_regenerate", CF_PQ_INT64, 1, "int64"},
    {"signals_edit", CF_PQ_INT64, 1, "int64"},
    {"signals_copy", CF_PQ_INT64, 1, "int64"},
    {"signals_share", CF_PQ_INT64, 1, "int64"},
    {"signals_report", CF_PQ_INT64, 1, "int64"},
};

#define NTABLE (sizeof TABLE / sizeof TABLE[0])

_Static_assert(NTABLE == C_SIGNALS + CF_EXPORT_SIGNAL_TYPES, "a column per signal type");
_Static_assert(NTABLE <= CF_EXPORT_MAX_COLUMNS, "CF_EXPORT_MAX_COLUMNS too small");

size_t cf_export_column_count(void)
{
    return NTABLE;
}

const cf_export_column *cf_export_column_at(size_t i)
{
    return i < NTABLE ? &TABLE[i] : NULL;
}

int cf_export_column_find(const char *name, size_t n)
{
    for (size_t i = 0; i < NTABLE; i++)
        if (strlen(TABLE[i].name) == n && memcmp(TABLE[i].name, name, n) == 0)
            return (int)i;
    return -1;
}

const cf_export_cols *cf_export_cols_get(const cf_export_cols *c)
{
    static cf_export_cols all;
    if (c && c->n)
        return c;
    if (!all.n) { /* the same values every time: no harm when two threads race here */
        for (size_t i = 0; i < NTABLE; i++)
            all.idx[i] = (unsigned char)i;
        all.n = NTABLE;
    }
    return &all;
}

int cf_export_cols_need_event(const cf_export_cols *c)
{
    c = cf_export_cols_get(c);
    for (size_t i = 0; i < c->n; i++)
        if (TABLE[c->idx[i]].from_event)
            return 1;
    return 0;
}

void cf_export_value(const cf_export_row *r, size_t col, cf_pq_value *v)
{
    memset(v, 0, sizeof *v);
    v->d = NAN;
    v->i = CF_NULL_INT;
    switch (col) {
    case C_PROMPT: v->s = r->prompt; break;
    case C_RESPONSE: v->s = r->response; break;
    case C_SOURCE: v->s = r->source; break;
    case C_SCORE: v->d = r->score; break;
    case C_EVENT: v->s = r->inference_event_id; break;
    case C_DEPLOYMENT: v->s = r->deployment_id; break;
    case C_MODEL: v->s = r->model_version_id; break;
    case C_CREATED: v->i = r->created_at; break;
    case C_QUALITY: v->d = r->quality_score; break;
    default:
        if (col >= C_SIGNALS && col < NTABLE)
            v->i = r->signals[col - C_SIGNALS];
    }
}

/* ---- the event behind a row -------------------------------------------------- */

static void no_event(cf_export_row *r)
{
    r->model_version_id = CF_NULL_STR;
    r->metadata = CF_NULL_STR;
    r->created_at = CF_NULL_INT;
    r->quality_score = NAN;
    for (size_t i = 0; i < CF_EXPORT_SIGNAL_TYPES; i++)
        r->signals[i] = CF_NULL_INT;
}

static void count_signals(const cf_event *e, cf_export_row *r)
{
    for (size_t t = 0; t < CF_EXPORT_SIGNAL_TYPES; t++) {
        size_t len = strlen(cf_export_signal_types[t]);
        int64_t n = 0;
        for (size_t i = 0; i < e->nsignals; i++) {
            cf_str ty = e->signals[i].signal_type;
            n += ty.p && ty.n == len && memcmp(ty.p, cf_export_signal_types[t], len) == 0;
        }
        r->signals[t] = n;
    }
}

int cf_export_trace(cf_store *s, cf_cursor **cur, cf_export_row *r, cf_err *err)
{
    if (*cur) {
        cf_cursor_close(*cur);
        *cur = NULL;
    }
    no_event(r);
    if (!r->inference_event_id.p)
        return 0;
    cf_query q;
    cf_query_init(&q);
    q.id = r->inference_event_id;
    q.limit = 1;
    q.include_signals = 1;
    if (cf_store_open_cursor(s, CF_KIND_EVENTS, &q, cur, err))
        return -1;
    cf_row row;
    int got = cf_cursor_next(*cur, &row, err);
    if (got <= 0)
        return got;
    const cf_event *e = &row.event;
    size_t at = e->model_version_id.p ? cf_utf8_check(e->model_version_id.p, e->model_version_id.n)
                                      : 0;
    if (e->model_version_id.p && at != e->model_version_id.n)
        return cf_fail(err, CF_EINVAL,
                       "inference event '%.*s': model_version_id is not valid UTF-8 (byte %lld)",
                       (int)(e->id.n > 100 ? 100 : e->id.n), e->id.p, (long long)at);
    r->model_version_id = e->model_version_id;
    r->metadata = e->metadata;
    r->created_at = e->inserted_at;
    r->quality_score = e->quality_score;
    count_signals(e, r);
    return 0;
}
