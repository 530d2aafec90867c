/*
 * PostgreSQL backend: scores (migration 8). A score takes its deployment
 * from its event in the same statement (INSERT ... SELECT), so a score of
 * an event that does not exist changes nothing; the id is the primary
 * key, so of two servers writing the same id at once one stores it and
 * the other is refused. After a lost connection the insert runs again
 * with ON CONFLICT (id) DO NOTHING and then looks for its row.
 */
#include "pg_int.h"

#include <stdlib.h>
#include <string.h>

#define SCORE_COLUMNS                                                                          \
    "id, inference_event_id, deployment_id, name, data_type, value, string_value, comment,"  \
    " source, inserted_at"

#define SCORE_INSERT                                                                           \
    "INSERT INTO scores (" SCORE_COLUMNS ") SELECT $1::text, e.id, e.deployment_id, $2::text,"\
    " $3::text, $4::float8, $5::text, $6::text, $7::text, $8::timestamptz"                   \
    " FROM inference_events e WHERE e.id = $9::text"

typedef struct insert_arg {
    pg_params p;
    cf_str id;
    int64_t changed;
} insert_arg;

static int insert_op(pg_store *s, void *arg, int attempt, cf_err *err)
{
    insert_arg *a = arg;
    PGresult *r = pg_exec(s, attempt ? SCORE_INSERT " ON CONFLICT (id) DO NOTHING" : SCORE_INSERT,
                          &a->p, "recording a score", err);
    if (!r)
        return -1;
    a->changed = strtoll(PQcmdTuples(r), NULL, 10);
    PQclear(r);
    if (a->changed == 0 && attempt) {
        /* the first attempt may have committed before the connection went */
        pg_params q;
        pg_params_init(&q);
        pg_p_str(&q, a->id);
        r = pg_exec(s, "SELECT 1 FROM scores WHERE id = $1::text", &q, "recording a score", err);
        if (!r)
            return -1;
        a->changed = PQntuples(r);
        PQclear(r);
    }
    return 0;
}

int pg_insert_score(cf_store *base, const cf_score *sc, cf_err *err)
{
    pg_store *s = (pg_store *)base;
    insert_arg a;
    pg_params_init(&a.p);
    a.id = sc->id;
    a.changed = 0;
    pg_p_str(&a.p, sc->id);
    pg_p_str(&a.p, sc->name);
    pg_p_str(&a.p, sc->data_type);
    pg_p_double(&a.p, sc->value);
    pg_p_str(&a.p, sc->string_value);
    pg_p_str(&a.p, sc->comment);
    pg_p_str(&a.p, sc->source);
    pg_p_time(&a.p, sc->inserted_at ? sc->inserted_at : cf_now_us());
    pg_p_str(&a.p, sc->inference_event_id);
    if (pg_retry(s, insert_op, &a, err)) {
        if (err && err->code == CF_EINVAL && strcmp(s->state, "23505") == 0)
            cf_fail(err, CF_EINVAL, "scores[0]: id '%.*s' already exists",
                    (int)(sc->id.n > 100 ? 100 : sc->id.n), sc->id.p);
        return -1;
    }
    if (a.changed == 0)
        return cf_fail(err, CF_ENOTFOUND, "inference event '%.*s' not found",
                       (int)(sc->inference_event_id.n > 100 ? 100 : sc->inference_event_id.n),
                       sc->inference_event_id.p);
    return 0;
}

typedef struct list_arg {
    pg_params p;
    PGresult *res;
} list_arg;

static int list_op(pg_store *s, void *arg, int attempt, cf_err *err)
{
    (void)attempt;
    list_arg *a = arg;
    a->res = pg_exec(s,
                     "SELECT id, inference_event_id, deployment_id, name, data_type, value,"
                     " string_value, comment, source, " PG_US("inserted_at") " FROM scores"
                     " WHERE ($1::text IS NULL OR id = $1::text)"
                     " AND ($2::text IS NULL OR deployment_id = $2::text)"
                     " AND ($3::text IS NULL OR inference_event_id = $3::text)"
                     " AND ($4::text IS NULL OR name = $4::text)"
                     " AND ($5::timestamptz IS NULL OR inserted_at >= $5::timestamptz)"
                     " AND ($6::timestamptz IS NULL OR inserted_at < $6::timestamptz)"
                     " ORDER BY inserted_at, seq LIMIT $7::int8",
                     &a->p, "listing scores", err);
    return a->res ? 0 : -1;
}

/* A filter no stored text can match (a NUL or invalid UTF-8). */
static int unmatchable(cf_str v)
{
    cf_err ignored;
    return v.p && pg_check_text(v, "scores", 0, "filter", &ignored) != 0;
}

int pg_list_scores(cf_store *base, const cf_score_query *q, cf_score_list_fn cb, void *ud,
                   cf_err *err)
{
    if (unmatchable(q->id) || unmatchable(q->deployment_id) || unmatchable(q->event_id)
        || unmatchable(q->name))
        return 0;
    list_arg a;
    pg_params_init(&a.p);
    a.res = NULL;
    pg_p_str(&a.p, q->id);
    pg_p_str(&a.p, q->deployment_id);
    pg_p_str(&a.p, q->event_id);
    pg_p_str(&a.p, q->name);
    pg_p_time(&a.p, q->since);
    pg_p_time(&a.p, q->until);
    pg_p_int(&a.p, q->limit < 0 ? CF_NULL_INT : q->limit);
    if (pg_retry((pg_store *)base, list_op, &a, err))
        return -1;
    int stop = 0;
    for (int i = 0; i < PQntuples(a.res) && !stop; i++) {
        cf_score r = {
            .id = pg_col_str(a.res, i, 0),
            .inference_event_id = pg_col_str(a.res, i, 1),
            .deployment_id = pg_col_str(a.res, i, 2),
            .name = pg_col_str(a.res, i, 3),
            .data_type = pg_col_str(a.res, i, 4),
            .value = pg_col_double(a.res, i, 5),
            .string_value = pg_col_str(a.res, i, 6),
            .comment = pg_col_str(a.res, i, 7),
            .source = pg_col_str(a.res, i, 8),
            .inserted_at = pg_col_int(a.res, i, 9),
        };
        stop = cb(ud, &r);
    }
    PQclear(a.res);
    return stop;
}
