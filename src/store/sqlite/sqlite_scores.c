/*
 * SQLite backend: scores (migration 8). A score takes its deployment from
 * its event in the same statement (INSERT ... SELECT), so a score of an
 * event that does not exist changes nothing; the id is UNIQUE, so a
 * second score with the same id is refused.
 */
#include "sqlite_int.h"

#include <math.h>
#include <string.h>

#define SCORE_COLUMNS                                                                          \
    "id, inference_event_id, deployment_id, name, data_type, value, string_value, comment,"  \
    " source, inserted_at"

static void bind_real(sqlite3_stmt *st, int i, double v)
{
    if (isnan(v))
        sqlite3_bind_null(st, i);
    else
        sqlite3_bind_double(st, i, v);
}

int sq_insert_score(cf_store *base, const cf_score *sc, cf_err *err)
{
    sq_store *s = (sq_store *)base;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db,
                           "INSERT INTO scores (" SCORE_COLUMNS ")"
                           " SELECT ?1, e.id, e.deployment_id, ?2, ?3, ?4, ?5, ?6, ?7, ?8"
                           " FROM inference_events e WHERE e.id = ?9",
                           -1, &st, NULL) != SQLITE_OK)
        return sq_fail(s, err, "preparing the score insert");
    sq_bind_str(st, 1, sc->id);
    sq_bind_str(st, 2, sc->name);
    sq_bind_str(st, 3, sc->data_type);
    bind_real(st, 4, sc->value);
    sq_bind_str(st, 5, sc->string_value);
    sq_bind_str(st, 6, sc->comment);
    sq_bind_str(st, 7, sc->source);
    sqlite3_bind_int64(st, 8, sc->inserted_at ? sc->inserted_at : cf_now_us());
    sq_bind_str(st, 9, sc->inference_event_id);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc == SQLITE_CONSTRAINT)
        return cf_fail(err, CF_EINVAL, "scores[0]: id '%.*s' already exists",
                       (int)(sc->id.n > 100 ? 100 : sc->id.n), sc->id.p);
    if (rc != SQLITE_DONE)
        return sq_fail(s, err, "recording a score");
    if (sqlite3_changes(s->db) == 0)
        return cf_fail(err, CF_ENOTFOUND, "inference event '%.*s' not found",
                       (int)(sc->inference_event_id.n > 100 ? 100 : sc->inference_event_id.n),
                       sc->inference_event_id.p);
    return 0;
}

static void bind_time(sqlite3_stmt *st, int i, int64_t us)
{
    if (us == CF_NO_TIME)
        sqlite3_bind_null(st, i);
    else
        sqlite3_bind_int64(st, i, us);
}

int sq_list_scores(cf_store *base, const cf_score_query *q, cf_score_list_fn cb, void *ud,
                   cf_err *err)
{
    sq_store *s = (sq_store *)base;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT " SCORE_COLUMNS " FROM scores"
                           " WHERE (?1 IS NULL OR id = ?1) AND (?2 IS NULL OR deployment_id = ?2)"
                           " AND (?3 IS NULL OR inference_event_id = ?3)"
                           " AND (?4 IS NULL OR name = ?4)"
                           " AND (?5 IS NULL OR inserted_at >= ?5)"
                           " AND (?6 IS NULL OR inserted_at < ?6)"
                           " ORDER BY inserted_at, seq LIMIT ?7",
                           -1, &st, NULL) != SQLITE_OK)
        return sq_fail(s, err, "preparing the score listing");
    sq_bind_str(st, 1, q->id);
    sq_bind_str(st, 2, q->deployment_id);
    sq_bind_str(st, 3, q->event_id);
    sq_bind_str(st, 4, q->name);
    bind_time(st, 5, q->since);
    bind_time(st, 6, q->until);
    sqlite3_bind_int64(st, 7, q->limit < 0 ? -1 : q->limit);
    int rc, stop = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        cf_score r = {
            .id = sq_col_str(st, 0),
            .inference_event_id = sq_col_str(st, 1),
            .deployment_id = sq_col_str(st, 2),
            .name = sq_col_str(st, 3),
            .data_type = sq_col_str(st, 4),
            .value = sqlite3_column_type(st, 5) == SQLITE_NULL ? NAN
                                                               : sqlite3_column_double(st, 5),
            .string_value = sq_col_str(st, 6),
            .comment = sq_col_str(st, 7),
            .source = sq_col_str(st, 8),
            .inserted_at = sqlite3_column_int64(st, 9),
        };
        stop = cb(ud, &r);
        if (stop)
            break;
    }
    if (!stop && rc != SQLITE_DONE) {
        sq_fail(s, err, "listing scores");
        sqlite3_finalize(st);
        return -1;
    }
    sqlite3_finalize(st);
    return stop;
}
