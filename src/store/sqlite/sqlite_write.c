/*
 * SQLite backend, writes: batches of events, signals, updates, curated
 * examples (also those for events not curated yet), export marks, drift
 * results and trigger events. One transaction per batch, every value bound.
 */
#include "sqlite_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>


static int bind_int_or_null(sqlite3_stmt *st, int i, int64_t v)
{
    return v == CF_NULL_INT ? sqlite3_bind_null(st, i) : sqlite3_bind_int64(st, i, v);
}

static int bind_double_or_null(sqlite3_stmt *st, int i, double v)
{
    return isnan(v) ? sqlite3_bind_null(st, i) : sqlite3_bind_double(st, i, v);
}

static int require_str(cf_str v, const char *what, size_t i, cf_err *err)
{
    if (!v.p)
        return cf_fail(err, CF_EINVAL, "%s[%zu]: missing required field", what, i);
    return 0;
}

/* Maps a failed step to an error that names the row: a unique constraint
 * (the id) is the caller's duplicate, another constraint (a CHECK, a
 * trigger) refuses the row with the database's words (CF_EINVAL both),
 * anything else is the database's failure. */
static int step_fail(sq_store *s, int rc, const char *what, size_t i, cf_str id, cf_err *err)
{
    if ((rc & 0xff) != SQLITE_CONSTRAINT)
        return sq_fail(s, err, what);
    int ext = sqlite3_extended_errcode(s->db);
    if (ext == SQLITE_CONSTRAINT_UNIQUE || ext == SQLITE_CONSTRAINT_PRIMARYKEY)
        return cf_fail(err, CF_EINVAL, "%s[%zu]: id '%.*s' already exists", what, i,
                       (int)(id.n > 100 ? 100 : id.n), id.p ? id.p : "");
    return cf_fail(err, CF_EINVAL, "%s[%zu]: %s", what, i, sqlite3_errmsg(s->db));
}

/* The skipping insert (dup given): an id already stored, or earlier in
 * the batch, changes nothing; any other constraint still fails the row.
 * Prepared per batch so the statement cache stays the backend's own. */
static const char insert_event_skip_sql[] =
    "INSERT INTO inference_events (id, deployment_id, model_version_id, user_id_hash,"
    " prompt, response, latency_ms, token_count, quality_score, metadata, inserted_at,"
    " quality_checks) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
    " ON CONFLICT (id) DO NOTHING";

static void bind_event(sqlite3_stmt *st, const cf_event *e, int64_t now)
{
    sq_bind_str(st, 1, e->id);
    sq_bind_str(st, 2, e->deployment_id);
    sq_bind_str(st, 3, e->model_version_id);
    sq_bind_str(st, 4, e->user_id_hash);
    sq_bind_str(st, 5, e->prompt);
    sq_bind_str(st, 6, e->response);
    bind_int_or_null(st, 7, e->latency_ms);
    bind_int_or_null(st, 8, e->token_count);
    bind_double_or_null(st, 9, e->quality_score);
    sq_bind_str(st, 10, e->metadata.p ? e->metadata : cf_cstr("{}"));
    sqlite3_bind_int64(st, 11, e->inserted_at ? e->inserted_at : now);
    bind_int_or_null(st, 12, e->quality_checks ? (int64_t)e->quality_checks : CF_NULL_INT);
}

/* Writes the rows (skip: with the skipping statement, flagging in dup
 * what it skipped); *written receives how many went in. */
static int write_events(sq_store *s, const cf_event *ev, size_t n, sqlite3_stmt *skip,
                        unsigned char *dup, int *written, cf_err *err)
{
    int64_t now = cf_now_us();
    for (size_t i = 0; i < n; i++) {
        sqlite3_stmt *st = skip;
        if (st)
            sqlite3_reset(st);
        else if (!(st = sq_stmt(s, SQ_INSERT_EVENT, err)))
            return -1;
        bind_event(st, &ev[i], now);
        int rc = sqlite3_step(st);
        if (rc != SQLITE_DONE)
            return step_fail(s, rc, "events", i, ev[i].id, err);
        if (skip && sqlite3_changes(s->db) == 0)
            dup[i] = 1;
        else
            (*written)++;
    }
    return 0;
}

int sq_insert_events(cf_store *base, const cf_event *ev, size_t n, unsigned char *dup,
                     cf_err *err)
{
    sq_store *s = (sq_store *)base;
    for (size_t i = 0; i < n; i++)
        if (require_str(ev[i].deployment_id, "events.deployment_id", i, err)
            || require_str(ev[i].prompt, "events.prompt", i, err)
            || require_str(ev[i].response, "events.response", i, err))
            return -1;
    sqlite3_stmt *skip = NULL;
    if (dup && sqlite3_prepare_v2(s->db, insert_event_skip_sql, -1, &skip, NULL) != SQLITE_OK)
        return sq_fail(s, err, "preparing an event insert");
    int written = 0;
    if (sq_begin(s, err)) {
        sqlite3_finalize(skip);
        return -1;
    }
    if (write_events(s, ev, n, skip, dup, &written, err) || sq_counts_add(s, ev, n, dup, err)
        || sq_commit(s, err)) {
        sqlite3_finalize(skip);
        sq_rollback(s);
        if (dup)
            memset(dup, 0, n);
        return -1;
    }
    sqlite3_finalize(skip);
    return written;
}

int sq_insert_signal(cf_store *base, const cf_signal *sig, cf_err *err)
{
    sq_store *s = (sq_store *)base;
    cf_str id = sig->id;
    sqlite3_stmt *st = sq_stmt(s, SQ_INSERT_SIGNAL, err);
    if (!st)
        return -1;
    sq_bind_str(st, 1, id);
    sq_bind_str(st, 2, sig->signal_type);
    sq_bind_str(st, 3, sig->edited_response);
    sq_bind_str(st, 4, sig->metadata.p ? sig->metadata : cf_cstr("{}"));
    sqlite3_bind_int64(st, 5, sig->inserted_at ? sig->inserted_at : cf_now_us());
    sq_bind_str(st, 6, sig->inference_event_id);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_DONE)
        return step_fail(s, rc, "signals", 0, id, err);
    if (sqlite3_changes(s->db) == 0)
        return cf_fail(err, CF_ENOTFOUND, "inference event '%.*s' not found",
                       (int)(sig->inference_event_id.n > 100 ? 100 : sig->inference_event_id.n),
                       sig->inference_event_id.p);
    return 0;
}

int sq_update_events(cf_store *base, const cf_str *ids, const cf_event_update *u, size_t n,
                            cf_err *err)
{
    sq_store *s = (sq_store *)base;
    if (sq_begin(s, err))
        return -1;
    for (size_t i = 0; i < n; i++) {
        sqlite3_stmt *st = sq_stmt(s, SQ_UPDATE_EVENT, err);
        if (!st)
            goto fail;
        unsigned f = u[i].fields;
        sqlite3_bind_int(st, 1, !!(f & CF_UPD_QUALITY));
        bind_double_or_null(st, 2, u[i].quality_score);
        sqlite3_bind_int(st, 3, !!(f & CF_UPD_METADATA));
        sq_bind_str(st, 4, u[i].metadata.p ? u[i].metadata : cf_cstr("{}"));
        sqlite3_bind_int(st, 5, !!(f & CF_UPD_MODEL_VERSION));
        sq_bind_str(st, 6, u[i].model_version_id);
        sqlite3_bind_int(st, 7, !!(f & CF_UPD_LATENCY));
        bind_int_or_null(st, 8, u[i].latency_ms);
        sqlite3_bind_int(st, 9, !!(f & CF_UPD_TOKENS));
        bind_int_or_null(st, 10, u[i].token_count);
        sq_bind_str(st, 11, ids[i]);
        sqlite3_bind_int(st, 12, !!(f & CF_UPD_CHECKS));
        bind_int_or_null(st, 13,
                         u[i].quality_checks ? (int64_t)u[i].quality_checks : CF_NULL_INT);
        sqlite3_bind_int(st, 14, !!(f & CF_UPD_PROMPT));
        sq_bind_str(st, 15, u[i].prompt.p ? u[i].prompt : cf_cstr(""));
        sqlite3_bind_int(st, 16, !!(f & CF_UPD_RESPONSE));
        sq_bind_str(st, 17, u[i].response.p ? u[i].response : cf_cstr(""));
        if (sqlite3_step(st) != SQLITE_DONE) {
            sq_fail(s, err, "updating an inference event");
            goto fail;
        }
        if (sqlite3_changes(s->db) == 0) {
            cf_fail(err, CF_ENOTFOUND, "inference event '%.*s' not found",
                    (int)(ids[i].n > 100 ? 100 : ids[i].n), ids[i].p ? ids[i].p : "");
            goto fail;
        }
    }
    if (sq_commit(s, err))
        goto fail;
    return (int)n;
fail:
    sq_rollback(s);
    return -1;
}

/* Binds a curated example to ?1..?10 of an insert (id, inference_event_id,
 * deployment_id, curation_source, curation_score, prompt, response,
 * exported, export_batch_id, inserted_at or now). */
static void bind_curated(sqlite3_stmt *st, const cf_curated *c, cf_str id, int64_t now)
{
    sq_bind_str(st, 1, id);
    sq_bind_str(st, 2, c->inference_event_id);
    sq_bind_str(st, 3, c->deployment_id);
    sq_bind_str(st, 4, c->curation_source);
    bind_double_or_null(st, 5, c->curation_score);
    sq_bind_str(st, 6, c->prompt);
    sq_bind_str(st, 7, c->response);
    sqlite3_bind_int(st, 8, c->exported ? 1 : 0);
    sq_bind_str(st, 9, c->export_batch_id);
    sqlite3_bind_int64(st, 10, c->inserted_at ? c->inserted_at : now);
}

int sq_insert_curated(cf_store *base, const cf_curated *c, size_t n, cf_err *err)
{
    sq_store *s = (sq_store *)base;
    int64_t now = cf_now_us();
    for (size_t i = 0; i < n; i++)
        if (require_str(c[i].inference_event_id, "curated.inference_event_id", i, err)
            || require_str(c[i].deployment_id, "curated.deployment_id", i, err)
            || require_str(c[i].curation_source, "curated.curation_source", i, err))
            return -1;
    if (sq_begin(s, err))
        return -1;
    for (size_t i = 0; i < n; i++) {
        cf_str id = c[i].id;
        sqlite3_stmt *st = sq_stmt(s, SQ_INSERT_CURATED, err);
        if (!st)
            goto fail;
        bind_curated(st, &c[i], id, now);
        int rc = sqlite3_step(st);
        if (rc != SQLITE_DONE) {
            step_fail(s, rc, "curated", i, id, err);
            goto fail;
        }
    }
    if (sq_commit(s, err))
        goto fail;
    return (int)n;
fail:
    sq_rollback(s);
    return -1;
}

int sq_mark_curated_exported(cf_store *base, const cf_str *ids, size_t n, cf_str batch,
                                    cf_err *err)
{
    sq_store *s = (sq_store *)base;
    int64_t now = cf_now_us();
    int changed = 0;
    if (!batch.p)
        return cf_fail(err, CF_EINVAL, "export_batch_id: missing required value");
    if (sq_begin(s, err))
        return -1;
    for (size_t i = 0; i < n; i++) {
        sqlite3_stmt *st = sq_stmt(s, SQ_MARK_EXPORTED, err);
        if (!st)
            goto fail;
        sq_bind_str(st, 1, batch);
        sqlite3_bind_int64(st, 2, now);
        sq_bind_str(st, 3, ids[i]);
        if (sqlite3_step(st) != SQLITE_DONE) {
            sq_fail(s, err, "marking curated examples exported");
            goto fail;
        }
        changed += sqlite3_changes(s->db);
    }
    if (sq_commit(s, err))
        goto fail;
    return changed;
fail:
    sq_rollback(s);
    return -1;
}

/* Marks up to 64 ids (copied into arena, since the iterator's strings
 * last one call) with one statement; fewer than 64 one at a time. */
#define MARK_BATCH 64

static int mark_batch(sq_store *s, const cf_str *ids, size_t n, cf_str batch, int64_t now,
                      int64_t *changed, cf_err *err)
{
    size_t i = 0;
    while (i < n) {
        int full = n - i >= MARK_BATCH;
        sqlite3_stmt *st = sq_stmt(s, full ? SQ_MARK_EXPORTED_64 : SQ_MARK_EXPORTED, err);
        if (!st)
            return -1;
        sq_bind_str(st, 1, batch);
        sqlite3_bind_int64(st, 2, now);
        size_t k = full ? MARK_BATCH : 1;
        for (size_t j = 0; j < k; j++)
            sq_bind_str(st, 3 + (int)j, ids[i + j]);
        if (sqlite3_step(st) != SQLITE_DONE)
            return sq_fail(s, err, "marking curated examples exported");
        *changed += sqlite3_changes(s->db);
        i += k;
    }
    return 0;
}

int sq_mark_curated_exported_stream(cf_store *base,
                                           int (*next)(void *, cf_str *, cf_err *), void *ctx,
                                           cf_str batch, int64_t *marked, cf_err *err)
{
    sq_store *s = (sq_store *)base;
    int64_t now = cf_now_us(), changed = 0;
    cf_str ids[MARK_BATCH];
    char *arena = NULL;
    size_t arena_cap = 0, used = 0, n = 0;
    size_t offs[MARK_BATCH];
    if (marked)
        *marked = 0;
    if (!batch.p || batch.n == 0)
        return cf_fail(err, CF_EINVAL, "export_batch_id: missing required value");
    if (sq_begin(s, err))
        return -1;
    for (;;) {
        cf_str id;
        int r = next(ctx, &id, err);
        if (r < 0)
            goto fail;
        if (r > 0 && id.p) {
            if (used + id.n > arena_cap) {
                size_t cap = arena_cap ? arena_cap : 4096;
                while (cap < used + id.n)
                    cap *= 2;
                char *a = realloc(arena, cap);
                if (!a) {
                    cf_fail(err, CF_ENOMEM, "out of memory marking curated examples");
                    goto fail;
                }
                arena = a;
                arena_cap = cap;
            }
            memcpy(arena + used, id.p, id.n);
            offs[n] = used;
            ids[n].n = id.n;
            used += id.n;
            n++;
        }
        if (n == MARK_BATCH || (r == 0 && n > 0)) {
            for (size_t j = 0; j < n; j++)
                ids[j].p = arena + offs[j];
            if (mark_batch(s, ids, n, batch, now, &changed, err))
                goto fail;
            n = 0;
            used = 0;
        }
        if (r == 0)
            break;
    }
    if (sq_commit(s, err))
        goto fail;
    free(arena);
    if (marked)
        *marked = changed;
    return 0;
fail:
    free(arena);
    sq_rollback(s);
    return -1;
}

int sq_insert_drift(cf_store *base, const cf_drift_result *d, cf_err *err)
{
    sq_store *s = (sq_store *)base;
    cf_str id = d->id;
    sqlite3_stmt *st = sq_stmt(s, SQ_INSERT_DRIFT, err);
    if (!st)
        return -1;
    sq_bind_str(st, 1, id);
    sq_bind_str(st, 2, d->deployment_id);
    sq_bind_str(st, 3, d->drift_type);
    sqlite3_bind_double(st, 4, isnan(d->score) ? 0.0 : d->score);
    sqlite3_bind_int(st, 5, d->drifted ? 1 : 0);
    sq_bind_str(st, 6, d->details.p ? d->details : cf_cstr("{}"));
    sqlite3_bind_int64(st, 7, d->inserted_at ? d->inserted_at : cf_now_us());
    int rc = sqlite3_step(st);
    return rc == SQLITE_DONE ? 0 : step_fail(s, rc, "drift", 0, id, err);
}

int sq_insert_trigger(cf_store *base, const cf_trigger_event *t, cf_err *err)
{
    sq_store *s = (sq_store *)base;
    cf_str id = t->id;
    sqlite3_stmt *st = sq_stmt(s, SQ_INSERT_TRIGGER, err);
    if (!st)
        return -1;
    sq_bind_str(st, 1, id);
    sq_bind_str(st, 2, t->deployment_id);
    sq_bind_str(st, 3, t->trigger_type);
    sq_bind_str(st, 4, t->details.p ? t->details : cf_cstr("{}"));
    sqlite3_bind_int64(st, 5, t->inserted_at ? t->inserted_at : cf_now_us());
    int rc = sqlite3_step(st);
    return rc == SQLITE_DONE ? 0 : step_fail(s, rc, "triggers", 0, id, err);
}

/* ---- curated examples for events not curated yet ---------------------------------------- */

static const char insert_new_sql[] =
    "INSERT INTO curated_examples (id, inference_event_id, deployment_id, curation_source,"
    " curation_score, prompt, response, exported, export_batch_id, inserted_at, updated_at)"
    " SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10"
    " WHERE NOT EXISTS (SELECT 1 FROM curated_examples WHERE inference_event_id = ?2)";

static int exec(sq_store *s, const char *sql, cf_err *err)
{
    if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return err ? sq_fail(s, err, sql) : -1;
    return 0;
}

int sq_insert_curated_new(cf_store *base, const cf_curated *c, size_t n, unsigned char *inserted,
                          int64_t *count, cf_err *err)
{
    sq_store *s = (sq_store *)base;
    *count = 0;
    for (size_t i = 0; i < n; i++) {
        const char *missing = !c[i].inference_event_id.p ? "inference_event_id"
                              : !c[i].deployment_id.p    ? "deployment_id"
                              : !c[i].curation_source.p  ? "curation_source"
                                                         : NULL;
        if (missing)
            return cf_fail(err, CF_EINVAL, "curated[%zu].%s: missing required field", i,
                           missing);
        if (inserted)
            inserted[i] = 0;
    }
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, insert_new_sql, -1, &st, NULL) != SQLITE_OK)
        return sq_fail(s, err, "preparing a curated insert");
    if (exec(s, "BEGIN IMMEDIATE", err)) {
        sqlite3_finalize(st);
        return -1;
    }
    int64_t now = cf_now_us(), written = 0;
    for (size_t i = 0; i < n; i++) {
        sqlite3_reset(st);
        bind_curated(st, &c[i], c[i].id, now);
        if (sqlite3_step(st) != SQLITE_DONE) {
            cf_fail(err, CF_EDB, "curated[%zu] (event '%.64s'): %s (sqlite %s)", i,
                    c[i].inference_event_id.p, sqlite3_errmsg(s->db), s->path);
            goto fail;
        }
        if (sqlite3_changes(s->db) > 0) {
            written++;
            if (inserted)
                inserted[i] = 1;
        }
    }
    sqlite3_finalize(st);
    st = NULL;
    if (exec(s, "COMMIT", err))
        goto fail;
    *count = written;
    return 0;
fail:
    sqlite3_finalize(st);
    if (!sqlite3_get_autocommit(s->db))
        exec(s, "ROLLBACK", NULL);
    if (inserted)
        memset(inserted, 0, n);
    return -1;
}

/* ---- export claims ------------------------------------------------------------
 * One IMMEDIATE transaction (the database's write lock): expired claims of
 * the deployment go, then the free rows are claimed in one INSERT ...
 * SELECT; curated_export_claims' primary key holds one claim a row. */

static const char claim_expire_sql[] =
    "DELETE FROM curated_export_claims WHERE deployment_id = ?1 AND claimed_until <= ?2";

static const char claim_sql[] =
    "INSERT INTO curated_export_claims (curated_id, deployment_id, claim_token, claimed_until)"
    " SELECT t.id, t.deployment_id, ?2, ?3"
    " FROM curated_examples t LEFT JOIN curated_export_marks m ON m.curated_id = t.id"
    " WHERE t.deployment_id = ?1 AND (?4 OR (t.exported = 0 AND m.curated_id IS NULL))"
    " AND NOT EXISTS (SELECT 1 FROM curated_export_claims c WHERE c.curated_id = t.id)"
    " ORDER BY t.inserted_at, t.seq LIMIT ?5";

static const char release_sql[] = "DELETE FROM curated_export_claims WHERE claim_token = ?1";

/* Runs one claim statement: the expiry (?1 the deployment, ?2 now) or the
 * claim (?1..?5 from c); *changes receives the rows it changed. */
static int claim_step(sq_store *s, const char *sql, const cf_claim *c, int64_t now,
                      int64_t *changes, cf_err *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
        return sq_fail(s, err, "preparing an export claim");
    int np = sqlite3_bind_parameter_count(st);
    sq_bind_str(st, 1, c->deployment_id);
    if (np == 2) {
        sqlite3_bind_int64(st, 2, now);
    } else {
        sq_bind_str(st, 2, c->token);
        sqlite3_bind_int64(st, 3, c->until);
        sqlite3_bind_int(st, 4, c->include_exported != 0);
        sqlite3_bind_int64(st, 5, c->limit < 0 ? -1 : c->limit);
    }
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : sq_fail(s, err, "claiming rows to export");
    *changes = sqlite3_changes(s->db);
    sqlite3_finalize(st);
    return rc;
}

int sq_claim_curated(cf_store *base, const cf_claim *c, int64_t *claimed, cf_err *err)
{
    sq_store *s = (sq_store *)base;
    *claimed = 0;
    if (!c->deployment_id.p || !c->token.p || c->token.n == 0)
        return cf_fail(err, CF_EINVAL, "an export claim needs a deployment_id and a token");
    int64_t expired = 0, n = 0;
    if (sq_begin(s, err))
        return -1;
    if (claim_step(s, claim_expire_sql, c, cf_now_us(), &expired, err) ||
        claim_step(s, claim_sql, c, 0, &n, err) || sq_commit(s, err)) {
        sq_rollback(s);
        return -1;
    }
    *claimed = n;
    return 0;
}

int sq_release_curated_claim(cf_store *base, cf_str deployment_id, cf_str token, cf_err *err)
{
    sq_store *s = (sq_store *)base;
    (void)deployment_id;
    if (!token.p)
        return cf_fail(err, CF_EINVAL, "an export claim needs a token");
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, release_sql, -1, &st, NULL) != SQLITE_OK)
        return sq_fail(s, err, "preparing an export claim release");
    sq_bind_str(st, 1, token);
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : sq_fail(s, err, "releasing an export claim");
    sqlite3_finalize(st);
    return rc;
}
