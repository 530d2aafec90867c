/*
 * SQLite backend: the embedded default. WAL mode, prepared statements cached
 * per connection, one transaction per batch, every value bound.
 * Reads (cursors and counts) live in cf_store_sqlite_read.c.
 */
#include "cf_store_sqlite_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "crucible/core/cf_uuid.h"

/* ---- migrations ---------------------------------------------------------- */

typedef struct sq_migration {
    int version;
    const char *name;
    const char *sql;
} sq_migration;

/* Tables keep an integer rowid (seq) so inserts append in order and scans
 * by insertion time are cheap; the public id is UUIDv7 text. */
static const sq_migration migrations[] = {
    {1, "initial schema",
     "CREATE TABLE inference_events ("
     "  seq INTEGER PRIMARY KEY,"
     "  id TEXT NOT NULL UNIQUE,"
     "  deployment_id TEXT NOT NULL,"
     "  model_version_id TEXT,"
     "  user_id_hash TEXT,"
     "  prompt TEXT NOT NULL,"
     "  response TEXT NOT NULL,"
     "  latency_ms INTEGER,"
     "  token_count INTEGER,"
     "  quality_score REAL,"
     "  metadata TEXT NOT NULL DEFAULT '{}',"
     "  inserted_at INTEGER NOT NULL);"
     "CREATE INDEX inference_events_deployment_time"
     "  ON inference_events (deployment_id, inserted_at);"
     "CREATE TABLE user_signals ("
     "  seq INTEGER PRIMARY KEY,"
     "  id TEXT NOT NULL UNIQUE,"
     "  inference_event_id TEXT NOT NULL,"
     "  deployment_id TEXT NOT NULL,"
     "  signal_type TEXT NOT NULL,"
     "  edited_response TEXT,"
     "  metadata TEXT NOT NULL DEFAULT '{}',"
     "  inserted_at INTEGER NOT NULL);"
     "CREATE INDEX user_signals_event ON user_signals (inference_event_id);"
     "CREATE INDEX user_signals_deployment_time ON user_signals (deployment_id, inserted_at);"
     "CREATE TABLE curated_examples ("
     "  seq INTEGER PRIMARY KEY,"
     "  id TEXT NOT NULL UNIQUE,"
     "  inference_event_id TEXT NOT NULL,"
     "  deployment_id TEXT NOT NULL,"
     "  curation_source TEXT NOT NULL,"
     "  curation_score REAL,"
     "  prompt TEXT,"
     "  response TEXT,"
     "  exported INTEGER NOT NULL DEFAULT 0,"
     "  export_batch_id TEXT,"
     "  inserted_at INTEGER NOT NULL,"
     "  updated_at INTEGER NOT NULL);"
     "CREATE INDEX curated_examples_deployment"
     "  ON curated_examples (deployment_id, exported, inserted_at);"
     "CREATE INDEX curated_examples_event ON curated_examples (inference_event_id);"
     "CREATE TABLE drift_results ("
     "  seq INTEGER PRIMARY KEY,"
     "  id TEXT NOT NULL UNIQUE,"
     "  deployment_id TEXT NOT NULL,"
     "  drift_type TEXT NOT NULL,"
     "  score REAL NOT NULL,"
     "  drifted INTEGER NOT NULL,"
     "  details TEXT NOT NULL DEFAULT '{}',"
     "  inserted_at INTEGER NOT NULL);"
     "CREATE INDEX drift_results_deployment_time ON drift_results (deployment_id, inserted_at);"
     "CREATE TABLE trigger_events ("
     "  seq INTEGER PRIMARY KEY,"
     "  id TEXT NOT NULL UNIQUE,"
     "  deployment_id TEXT NOT NULL,"
     "  trigger_type TEXT NOT NULL,"
     "  details TEXT NOT NULL DEFAULT '{}',"
     "  inserted_at INTEGER NOT NULL);"
     "CREATE INDEX trigger_events_deployment_time"
     "  ON trigger_events (deployment_id, trigger_type, inserted_at);"
     "CREATE TABLE settings ("
     "  key TEXT PRIMARY KEY,"
     "  value TEXT NOT NULL,"
     "  updated_at INTEGER NOT NULL);"},
    /* Quality: backfill finds unscored events through a partial index (only
     * they are in it); signal counts per type read a covering index. */
    {2, "quality indexes",
     "CREATE INDEX inference_events_unscored"
     "  ON inference_events (deployment_id, inserted_at) WHERE quality_score IS NULL;"
     "CREATE INDEX user_signals_deployment_type ON user_signals (deployment_id, signal_type);"},
    /* Marking rows exported appends to a narrow table instead of rewriting
     * each wide curated row (prompt and response), which cost ~20 us a row
     * in WAL traffic; and curated rows of one deployment stream in time
     * order without a sort whatever their exported state. */
    {3, "curated export marks",
     "CREATE TABLE curated_export_marks ("
     "  curated_id TEXT PRIMARY KEY,"
     "  export_batch_id TEXT NOT NULL,"
     "  exported_at INTEGER NOT NULL) WITHOUT ROWID;"
     "CREATE INDEX curated_examples_deployment_time"
     "  ON curated_examples (deployment_id, inserted_at);"},
    /* The scheduler's record of workflow runs; a running row is the lease
     * that keeps one run of a workflow at a time. */
    {4, "workflow runs",
     "CREATE TABLE workflow_runs ("
     "  seq INTEGER PRIMARY KEY,"
     "  id TEXT NOT NULL UNIQUE,"
     "  name TEXT NOT NULL,"
     "  script TEXT,"
     "  status TEXT NOT NULL,"
     "  scheduled_for INTEGER,"
     "  started_at INTEGER NOT NULL,"
     "  finished_at INTEGER,"
     "  lease_until INTEGER,"
     "  error TEXT,"
     "  details TEXT NOT NULL DEFAULT '{}');"
     "CREATE INDEX workflow_runs_name_time ON workflow_runs (name, started_at);"
     "CREATE INDEX workflow_runs_running ON workflow_runs (name) WHERE status = 'running';"},
};

#define N_MIGRATIONS (sizeof migrations / sizeof migrations[0])

/* ---- statements ----------------------------------------------------------- */

static const char *const stmt_sql[SQ_COUNT_] = {
    [SQ_BEGIN] = "BEGIN IMMEDIATE",
    [SQ_COMMIT] = "COMMIT",
    [SQ_ROLLBACK] = "ROLLBACK",
    [SQ_INSERT_EVENT] =
        "INSERT INTO inference_events (id, deployment_id, model_version_id, user_id_hash,"
        " prompt, response, latency_ms, token_count, quality_score, metadata, inserted_at)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    [SQ_INSERT_SIGNAL] =
        "INSERT INTO user_signals (id, inference_event_id, deployment_id, signal_type,"
        " edited_response, metadata, inserted_at)"
        " SELECT ?1, e.id, e.deployment_id, ?2, ?3, ?4, ?5"
        " FROM inference_events e WHERE e.id = ?6",
    [SQ_UPDATE_EVENT] =
        "UPDATE inference_events SET"
        " quality_score = CASE WHEN ?1 THEN ?2 ELSE quality_score END,"
        " metadata = CASE WHEN ?3 THEN ?4 ELSE metadata END,"
        " model_version_id = CASE WHEN ?5 THEN ?6 ELSE model_version_id END,"
        " latency_ms = CASE WHEN ?7 THEN ?8 ELSE latency_ms END,"
        " token_count = CASE WHEN ?9 THEN ?10 ELSE token_count END"
        " WHERE id = ?11",
    [SQ_INSERT_CURATED] =
        "INSERT INTO curated_examples (id, inference_event_id, deployment_id, curation_source,"
        " curation_score, prompt, response, exported, export_batch_id, inserted_at, updated_at)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10)",
    [SQ_MARK_EXPORTED] =
        "INSERT OR REPLACE INTO curated_export_marks (curated_id, export_batch_id, exported_at)"
        " SELECT id, ?1, ?2 FROM curated_examples WHERE id = ?3",
    [SQ_INSERT_DRIFT] =
        "INSERT INTO drift_results (id, deployment_id, drift_type, score, drifted, details,"
        " inserted_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [SQ_INSERT_TRIGGER] =
        "INSERT INTO trigger_events (id, deployment_id, trigger_type, details, inserted_at)"
        " VALUES (?1, ?2, ?3, ?4, ?5)",
    [SQ_KV_GET] = "SELECT value FROM settings WHERE key = ?1",
    [SQ_KV_SET] =
        "INSERT INTO settings (key, value, updated_at) VALUES (?1, ?2, ?3)"
        " ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
    [SQ_KV_INSERT_NEW] =
        "INSERT INTO settings (key, value, updated_at) VALUES (?1, ?2, ?3)"
        " ON CONFLICT (key) DO NOTHING",
    /* 64 ids a statement: the streamed export marks go through this. */
    [SQ_MARK_EXPORTED_64] =
        "INSERT OR REPLACE INTO curated_export_marks (curated_id, export_batch_id, exported_at)"
        " SELECT id, ?1, ?2 FROM curated_examples WHERE id IN (?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10,"
        " ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27,"
        " ?28, ?29, ?30, ?31, ?32, ?33, ?34, ?35, ?36, ?37, ?38, ?39, ?40, ?41, ?42, ?43, ?44,"
        " ?45, ?46, ?47, ?48, ?49, ?50, ?51, ?52, ?53, ?54, ?55, ?56, ?57, ?58, ?59, ?60, ?61,"
        " ?62, ?63, ?64, ?65, ?66)",
    [SQ_SIGNALS_FOR_EVENT] =
        "SELECT id, inference_event_id, deployment_id, signal_type, edited_response, metadata,"
        " inserted_at FROM user_signals WHERE inference_event_id = ?1 ORDER BY inserted_at, seq",
};

int sq_fail(sq_store *s, cf_err *err, const char *what)
{
    return cf_fail(err, CF_EDB, "%s: %s (sqlite %s)", what, sqlite3_errmsg(s->db), s->path);
}

sqlite3_stmt *sq_stmt(sq_store *s, int id, cf_err *err)
{
    if (!s->st[id]) {
        if (sqlite3_prepare_v3(s->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &s->st[id],
                               NULL) != SQLITE_OK) {
            sq_fail(s, err, "preparing a statement");
            return NULL;
        }
    } else {
        sqlite3_reset(s->st[id]);
        sqlite3_clear_bindings(s->st[id]);
    }
    return s->st[id];
}

int sq_step_row(sq_store *s, sqlite3_stmt **st, const char *what, cf_err *err)
{
    if (!*st)
        return 0;
    int rc = sqlite3_step(*st);
    if (rc == SQLITE_ROW)
        return 1;
    if (rc == SQLITE_DONE) {
        sqlite3_finalize(*st);
        *st = NULL;
        return 0;
    }
    return sq_fail(s, err, what);
}

int sq_bind_str(sqlite3_stmt *st, int i, cf_str v)
{
    if (!v.p)
        return sqlite3_bind_null(st, i);
    return sqlite3_bind_text64(st, i, v.p, v.n, SQLITE_STATIC, SQLITE_UTF8);
}

cf_str sq_col_str(sqlite3_stmt *st, int i)
{
    cf_str r = {NULL, 0};
    if (sqlite3_column_type(st, i) == SQLITE_NULL)
        return r;
    r.p = (const char *)sqlite3_column_text(st, i);
    r.n = (size_t)sqlite3_column_bytes(st, i);
    if (!r.p)
        r.p = "";
    return r;
}

static int bind_int_or_null(sqlite3_stmt *st, int i, int64_t v)
{
    return v == CF_NULL_INT ? sqlite3_bind_null(st, i) : sqlite3_bind_int64(st, i, v);
}

static int bind_double_or_null(sqlite3_stmt *st, int i, double v)
{
    return isnan(v) ? sqlite3_bind_null(st, i) : sqlite3_bind_double(st, i, v);
}

/* Runs a one-shot statement (BEGIN, COMMIT, ROLLBACK). */
static int run_simple(sq_store *s, int id, cf_err *err)
{
    sqlite3_stmt *st = sq_stmt(s, id, err);
    if (!st)
        return -1;
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return sq_fail(s, err, stmt_sql[id]);
    return 0;
}

static int begin(sq_store *s, cf_err *err) { return run_simple(s, SQ_BEGIN, err); }
static int commit(sq_store *s, cf_err *err) { return run_simple(s, SQ_COMMIT, err); }

static void rollback(sq_store *s)
{
    if (!sqlite3_get_autocommit(s->db))
        run_simple(s, SQ_ROLLBACK, NULL);
}

static int require_str(cf_str v, const char *what, size_t i, cf_err *err)
{
    if (!v.p)
        return cf_fail(err, CF_EINVAL, "%s[%zu]: missing required field", what, i);
    return 0;
}

/* ---- writes ----------------------------------------------------------------- */

static int sq_migrate(cf_store *base, int *applied, cf_err *err)
{
    sq_store *s = (sq_store *)base;
    int n = 0;
    if (sqlite3_exec(s->db,
                     "CREATE TABLE IF NOT EXISTS schema_migrations ("
                     " version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
                     " applied_at INTEGER NOT NULL)",
                     NULL, NULL, NULL) != SQLITE_OK)
        return sq_fail(s, err, "creating schema_migrations");
    if (begin(s, err))
        return -1;
    int current = 0;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, "SELECT coalesce(max(version), 0) FROM schema_migrations", -1,
                           &st, NULL) != SQLITE_OK || sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_finalize(st);
        rollback(s);
        return sq_fail(s, err, "reading schema_migrations");
    }
    current = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    for (size_t i = 0; i < N_MIGRATIONS; i++) {
        const sq_migration *m = &migrations[i];
        if (m->version <= current)
            continue;
        char *msg = NULL;
        if (sqlite3_exec(s->db, m->sql, NULL, NULL, &msg) != SQLITE_OK) {
            cf_fail(err, CF_EDB, "migration %d (%s): %s", m->version, m->name,
                    msg ? msg : "failed");
            sqlite3_free(msg);
            rollback(s);
            return -1;
        }
        if (sqlite3_prepare_v2(s->db,
                               "INSERT INTO schema_migrations (version, name, applied_at)"
                               " VALUES (?1, ?2, ?3)",
                               -1, &st, NULL) != SQLITE_OK) {
            rollback(s);
            return sq_fail(s, err, "recording a migration");
        }
        sqlite3_bind_int(st, 1, m->version);
        sqlite3_bind_text(st, 2, m->name, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, cf_now_us());
        int rc = sqlite3_step(st);
        sqlite3_finalize(st);
        if (rc != SQLITE_DONE) {
            rollback(s);
            return sq_fail(s, err, "recording a migration");
        }
        n++;
    }
    if (commit(s, err)) {
        rollback(s);
        return -1;
    }
    if (applied)
        *applied = n;
    return 0;
}

static int sq_schema_version(cf_store *base, int *version, cf_err *err)
{
    sq_store *s = (sq_store *)base;
    sqlite3_stmt *st = NULL;
    *version = 0;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
                           " AND name = 'schema_migrations'",
                           -1, &st, NULL) != SQLITE_OK || sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_finalize(st);
        return sq_fail(s, err, "reading the schema version");
    }
    int exists = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    if (!exists)
        return 0;
    if (sqlite3_prepare_v2(s->db, "SELECT coalesce(max(version), 0) FROM schema_migrations", -1,
                           &st, NULL) != SQLITE_OK || sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_finalize(st);
        return sq_fail(s, err, "reading the schema version");
    }
    *version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return 0;
}

/* Maps a failed step to an error that names the row; constraint failures on
 * the id are the caller's duplicate, anything else is the database's. */
static int step_fail(sq_store *s, int rc, const char *what, size_t i, cf_str id, cf_err *err)
{
    if (rc == SQLITE_CONSTRAINT)
        return cf_fail(err, CF_EINVAL, "%s[%zu]: id '%.*s' already exists", what, i,
                       (int)(id.n > 100 ? 100 : id.n), id.p ? id.p : "");
    return sq_fail(s, err, what);
}

static int sq_insert_events(cf_store *base, const cf_event *ev, size_t n, char (*ids)[37],
                            cf_err *err)
{
    sq_store *s = (sq_store *)base;
    int64_t now = cf_now_us();
    for (size_t i = 0; i < n; i++)
        if (require_str(ev[i].deployment_id, "events.deployment_id", i, err)
            || require_str(ev[i].prompt, "events.prompt", i, err)
            || require_str(ev[i].response, "events.response", i, err))
            return -1;
    if (begin(s, err))
        return -1;
    for (size_t i = 0; i < n; i++) {
        const cf_event *e = &ev[i];
        char gen[37];
        cf_str id;
        if (cf_store_take_id(e->id, gen, &id, err))
            goto fail;
        if (ids)
            memcpy(ids[i], gen, 37);
        sqlite3_stmt *st = sq_stmt(s, SQ_INSERT_EVENT, err);
        if (!st)
            goto fail;
        cf_str meta = e->metadata.p ? e->metadata : cf_cstr("{}");
        sq_bind_str(st, 1, id);
        sq_bind_str(st, 2, e->deployment_id);
        sq_bind_str(st, 3, e->model_version_id);
        sq_bind_str(st, 4, e->user_id_hash);
        sq_bind_str(st, 5, e->prompt);
        sq_bind_str(st, 6, e->response);
        bind_int_or_null(st, 7, e->latency_ms);
        bind_int_or_null(st, 8, e->token_count);
        bind_double_or_null(st, 9, e->quality_score);
        sq_bind_str(st, 10, meta);
        sqlite3_bind_int64(st, 11, e->inserted_at ? e->inserted_at : now);
        int rc = sqlite3_step(st);
        if (rc != SQLITE_DONE) {
            step_fail(s, rc, "events", i, id, err);
            goto fail;
        }
    }
    if (commit(s, err))
        goto fail;
    return (int)n;
fail:
    rollback(s);
    return -1;
}

static int sq_insert_signal(cf_store *base, const cf_signal *sig, char id_out[37], cf_err *err)
{
    sq_store *s = (sq_store *)base;
    char gen[37];
    cf_str id;
    if (cf_store_take_id(sig->id, gen, &id, err))
        return -1;
    if (id_out)
        memcpy(id_out, gen, 37);
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

static int sq_update_events(cf_store *base, const cf_str *ids, const cf_event_update *u, size_t n,
                            cf_err *err)
{
    sq_store *s = (sq_store *)base;
    if (begin(s, err))
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
    if (commit(s, err))
        goto fail;
    return (int)n;
fail:
    rollback(s);
    return -1;
}

void sq_bind_curated(sqlite3_stmt *st, const cf_curated *c, cf_str id, int64_t now)
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

static int sq_insert_curated(cf_store *base, const cf_curated *c, size_t n, cf_err *err)
{
    sq_store *s = (sq_store *)base;
    int64_t now = cf_now_us();
    for (size_t i = 0; i < n; i++)
        if (require_str(c[i].inference_event_id, "curated.inference_event_id", i, err)
            || require_str(c[i].deployment_id, "curated.deployment_id", i, err)
            || require_str(c[i].curation_source, "curated.curation_source", i, err))
            return -1;
    if (begin(s, err))
        return -1;
    for (size_t i = 0; i < n; i++) {
        char gen[37];
        cf_str id;
        if (cf_store_take_id(c[i].id, gen, &id, err))
            goto fail;
        sqlite3_stmt *st = sq_stmt(s, SQ_INSERT_CURATED, err);
        if (!st)
            goto fail;
        sq_bind_curated(st, &c[i], id, now);
        int rc = sqlite3_step(st);
        if (rc != SQLITE_DONE) {
            step_fail(s, rc, "curated", i, id, err);
            goto fail;
        }
    }
    if (commit(s, err))
        goto fail;
    return (int)n;
fail:
    rollback(s);
    return -1;
}

static int sq_mark_curated_exported(cf_store *base, const cf_str *ids, size_t n, cf_str batch,
                                    cf_err *err)
{
    sq_store *s = (sq_store *)base;
    int64_t now = cf_now_us();
    int changed = 0;
    if (!batch.p)
        return cf_fail(err, CF_EINVAL, "export_batch_id: missing required value");
    if (begin(s, err))
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
    if (commit(s, err))
        goto fail;
    return changed;
fail:
    rollback(s);
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

static int sq_mark_curated_exported_stream(cf_store *base,
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
    if (begin(s, err))
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
    if (commit(s, err))
        goto fail;
    free(arena);
    if (marked)
        *marked = changed;
    return 0;
fail:
    free(arena);
    rollback(s);
    return -1;
}

static int sq_insert_drift(cf_store *base, const cf_drift_result *d, char id_out[37], cf_err *err)
{
    sq_store *s = (sq_store *)base;
    char gen[37];
    cf_str id;
    if (cf_store_take_id(d->id, gen, &id, err))
        return -1;
    if (id_out)
        memcpy(id_out, gen, 37);
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

static int sq_insert_trigger(cf_store *base, const cf_trigger_event *t, char id_out[37],
                             cf_err *err)
{
    sq_store *s = (sq_store *)base;
    char gen[37];
    cf_str id;
    if (cf_store_take_id(t->id, gen, &id, err))
        return -1;
    if (id_out)
        memcpy(id_out, gen, 37);
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

/* ---- settings ---------------------------------------------------------------- */

static int kv_read(sq_store *s, const char *key, char **out, cf_err *err)
{
    *out = NULL;
    sqlite3_stmt *st = sq_stmt(s, SQ_KV_GET, err);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        cf_str v = sq_col_str(st, 0);
        *out = malloc(v.n + 1);
        if (!*out) {
            sqlite3_reset(st);
            return cf_fail(err, CF_ENOMEM, "out of memory reading setting '%s'", key);
        }
        memcpy(*out, v.p, v.n);
        (*out)[v.n] = '\0';
        rc = SQLITE_DONE;
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : sq_fail(s, err, "reading a setting");
}

static int kv_write(sq_store *s, int id, const char *key, cf_str value, cf_err *err)
{
    sqlite3_stmt *st = sq_stmt(s, id, err);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sq_bind_str(st, 2, value);
    sqlite3_bind_int64(st, 3, cf_now_us());
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : sq_fail(s, err, "writing a setting");
}

static int sq_kv_get(cf_store *base, const char *key, char **out, cf_err *err)
{
    return kv_read((sq_store *)base, key, out, err);
}

static int sq_kv_set(cf_store *base, const char *key, cf_str value, cf_err *err)
{
    if (!value.p)
        return cf_fail(err, CF_EINVAL, "setting '%s': value is required", key);
    return kv_write((sq_store *)base, SQ_KV_SET, key, value, err);
}

static int sq_kv_get_or_set(cf_store *base, const char *key, cf_str value, char **out,
                            cf_err *err)
{
    sq_store *s = (sq_store *)base;
    if (!value.p)
        return cf_fail(err, CF_EINVAL, "setting '%s': value is required", key);
    if (kv_write(s, SQ_KV_INSERT_NEW, key, value, err))
        return -1;
    return kv_read(s, key, out, err);
}

/* ---- lifetime ------------------------------------------------------------------- */

static void sq_close(cf_store *base)
{
    sq_store *s = (sq_store *)base;
    for (int i = 0; i < SQ_COUNT_; i++)
        sqlite3_finalize(s->st[i]);
    sqlite3_close_v2(s->db);
    free(s->path);
    free(s);
}

static const cf_store_vt sq_vt = {
    .name = "sqlite",
    .migrate = sq_migrate,
    .schema_version = sq_schema_version,
    .insert_events = sq_insert_events,
    .insert_signal = sq_insert_signal,
    .update_events = sq_update_events,
    .insert_curated = sq_insert_curated,
    .mark_curated_exported = sq_mark_curated_exported,
    .insert_drift = sq_insert_drift,
    .insert_trigger = sq_insert_trigger,
    .open_cursor = sq_open_cursor,
    .count = sq_count,
    .kv_get = sq_kv_get,
    .kv_set = sq_kv_set,
    .kv_get_or_set = sq_kv_get_or_set,
    .close = sq_close,
    .count_by_type = sq_count_by_type,
    .open_unscored_cursor = sq_open_unscored_cursor,
    .open_columns = sq_open_columns,
    .mark_curated_exported_stream = sq_mark_curated_exported_stream,
    .open_light_events = sq_open_light_events,
    .open_events_by_ids = sq_open_events_by_ids,
    .insert_curated_new = sq_insert_curated_new,
    .last_export_at = sq_last_export_at,
    .insert_run = sq_insert_run,
    .update_run = sq_update_run,
    .list_runs = sq_list_runs,
};

int cf_store_sqlite_open(const char *path, const cf_store_opts *opts, cf_store **out,
                         cf_err *err)
{
    *out = NULL;
    sq_store *s = calloc(1, sizeof *s);
    if (!s)
        return cf_fail(err, CF_ENOMEM, "out of memory opening %s", path);
    s->base.vt = &sq_vt;
    s->path = strdup(path);
    if (!s->path) {
        free(s);
        return cf_fail(err, CF_ENOMEM, "out of memory opening %s", path);
    }
    int rc = sqlite3_open_v2(path, &s->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                             NULL);
    if (rc != SQLITE_OK) {
        cf_fail(err, CF_EDB, "cannot open database %s: %s", path,
                s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
        sq_close(&s->base);
        return -1;
    }
    sqlite3_extended_result_codes(s->db, 0);
    int timeout = opts && opts->busy_timeout_ms > 0 ? opts->busy_timeout_ms : 5000;
    sqlite3_busy_timeout(s->db, timeout);
    int memory = strcmp(path, ":memory:") == 0;
    const char *pragmas = memory ? "PRAGMA synchronous = NORMAL; PRAGMA temp_store = MEMORY;"
                                 : "PRAGMA page_size = 16384; PRAGMA journal_mode = WAL;"
                                   " PRAGMA synchronous = NORMAL; PRAGMA temp_store = MEMORY;";
    char *msg = NULL;
    if (sqlite3_exec(s->db, pragmas, NULL, NULL, &msg) != SQLITE_OK) {
        cf_fail(err, CF_EDB, "cannot open database %s: %s", path, msg ? msg : "pragma failed");
        sqlite3_free(msg);
        sq_close(&s->base);
        return -1;
    }
    *out = &s->base;
    return 0;
}

int cf_store_sqlite_target(const char *url, char *out, size_t cap, cf_err *err)
{
    const char *path = url + strlen("sqlite:");
    if (strncmp(path, "//", 2) == 0)
        path += 2;
    if (!*path)
        return cf_fail(err, CF_EINVAL, "database URL '%s' has no file path: expected sqlite:PATH",
                       url);
    size_t n = strlen(path);
    if (n >= cap)
        return cf_fail(err, CF_EINVAL, "database URL is too long (%zu bytes)", strlen(url));
    memcpy(out, path, n + 1);
    return 0;
}
