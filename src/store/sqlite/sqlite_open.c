/*
 * SQLite backend: the embedded default. WAL mode, prepared statements cached
 * per connection, one transaction per batch, every value bound.
 * This file opens it: the URL's path, the connection and its pragmas, the
 * schema and its migrations, settings, and the vtable. WAL checkpoints
 * are in sqlite_ckpt.c, writes in sqlite_write.c, reads in sqlite_read.c,
 * scans in sqlite_scan.c, workflow runs in sqlite_runs.c.
 */
#include "sqlite_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


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
    /* Export claims: the rows an export in progress holds (one claim a
     * row, by the primary key), so that concurrent exports share them. */
    {5, "curated export claims",
     "CREATE TABLE curated_export_claims ("
     "  curated_id TEXT PRIMARY KEY,"
     "  deployment_id TEXT NOT NULL,"
     "  claim_token TEXT NOT NULL,"
     "  claimed_until INTEGER NOT NULL) WITHOUT ROWID;"
     "CREATE INDEX curated_export_claims_token ON curated_export_claims (claim_token);"
     "CREATE INDEX curated_export_claims_deployment"
     "  ON curated_export_claims (deployment_id, claimed_until);"},
    /* Light scans (curation, quality statistics, triggers) read the narrow
     * columns of a deployment's events in time order: this index holds them
     * all, in that order (seq breaks ties), so those scans never read the
     * wide rows with their prompt and response. It replaces the
     * (deployment_id, inserted_at) index, its prefix. */
    {6, "light scan covering index",
     "CREATE INDEX inference_events_light ON inference_events"
     "  (deployment_id, inserted_at, seq, id, model_version_id, quality_score, latency_ms,"
     "   token_count);"
     "DROP INDEX inference_events_deployment_time;"},
    {7, "api keys", sq_keys_migration}, /* sqlite_keys.c */
    /* Typed scores on events that no signal type fits (sqlite_scores.c). */
    {8, "scores",
     "CREATE TABLE scores ("
     "  seq INTEGER PRIMARY KEY,"
     "  id TEXT NOT NULL UNIQUE,"
     "  inference_event_id TEXT NOT NULL,"
     "  deployment_id TEXT NOT NULL,"
     "  name TEXT NOT NULL,"
     "  data_type TEXT NOT NULL,"
     "  value REAL,"
     "  string_value TEXT,"
     "  comment TEXT,"
     "  source TEXT NOT NULL,"
     "  inserted_at INTEGER NOT NULL);"
     "CREATE INDEX scores_deployment_name_time ON scores (deployment_id, name, inserted_at);"
     "CREATE INDEX scores_event ON scores (inference_event_id);"},
    /* The data lifecycle: the deletion audit (never a raw user id), and an
     * index that finds one user's events for forget. */
    {9, "data lifecycle",
     "CREATE TABLE deletion_audit ("
     "  seq INTEGER PRIMARY KEY,"
     "  id TEXT NOT NULL UNIQUE,"
     "  action TEXT NOT NULL,"
     "  subject TEXT,"
     "  deployment_id TEXT,"
     "  status TEXT NOT NULL,"
     "  started_at INTEGER NOT NULL,"
     "  finished_at INTEGER,"
     "  details TEXT NOT NULL DEFAULT '{}');"
     "CREATE INDEX inference_events_user"
     "  ON inference_events (user_id_hash) WHERE user_id_hash IS NOT NULL;"},
    /* Which quality checks ran on an event and which passed (CF_QCHECKS_*
     * bits; NULL: none, as for every older row), in the light scans'
     * covering index so the report's per-check pass rates stay index-only. */
    {10, "quality checks",
     "ALTER TABLE inference_events ADD COLUMN quality_checks INTEGER;"
     "DROP INDEX inference_events_light;"
     "CREATE INDEX inference_events_light ON inference_events"
     "  (deployment_id, inserted_at, seq, id, model_version_id, quality_score, latency_ms,"
     "   token_count, quality_checks);"},
    /* One user's events by the first character of the user's hash, not the
     * whole hash: hashes are random, so a full-hash index took each batch's
     * keys at pages all over it and wrote nearly all of it to the WAL again
     * (a third of bulk ingestion's time at 100,000 events, more as it
     * grows); 16 buckets in row order take appends at 16 places. The hash
     * rides along after seq, so a purge of users compares it in the index
     * and reads only its own rows. A generated
     * column, since SQLite searches an index on it where it only scans one
     * on the expression. */
    {11, "user index by bucket",
     "ALTER TABLE inference_events ADD COLUMN user_bucket TEXT"
     "  GENERATED ALWAYS AS (substr(user_id_hash, 1, 1)) VIRTUAL;"
     "DROP INDEX inference_events_user;"
     "CREATE INDEX inference_events_user_bucket ON inference_events"
     "  (user_bucket, seq, user_id_hash) WHERE user_id_hash IS NOT NULL;"},
    {12, "deployment event counts", sq_counts_migration}, /* sqlite_counts.c */
    /* PostgreSQL's index for retention of scores; a purge here walks seq,
     * the rowid: nothing to do */
    {13, "scores by deployment and time", NULL},
    /* The deletion audit gains a record with every forget and purge, and is
     * never purged: a forget finds its running record, and a listing the
     * newest records, along an index instead of sorting every record. */
    {14, "deletion audit by status and time",
     "CREATE INDEX IF NOT EXISTS deletion_audit_status_time"
     "  ON deletion_audit (status, started_at, seq);"
     "CREATE INDEX IF NOT EXISTS deletion_audit_time ON deletion_audit (started_at, seq);"},
};

#define N_MIGRATIONS (sizeof migrations / sizeof migrations[0])

/* ---- statements ----------------------------------------------------------- */

static const char *const stmt_sql[SQ_COUNT_] = {
    [SQ_BEGIN] = "BEGIN IMMEDIATE",
    [SQ_COMMIT] = "COMMIT",
    [SQ_ROLLBACK] = "ROLLBACK",
    [SQ_INSERT_EVENT] =
        "INSERT INTO inference_events (id, deployment_id, model_version_id, user_id_hash,"
        " prompt, response, latency_ms, token_count, quality_score, metadata, inserted_at,"
        " quality_checks) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
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
        " token_count = CASE WHEN ?9 THEN ?10 ELSE token_count END,"
        " quality_checks = CASE WHEN ?12 THEN ?13 ELSE quality_checks END,"
        " prompt = CASE WHEN ?14 THEN ?15 ELSE prompt END,"
        " response = CASE WHEN ?16 THEN ?17 ELSE response END"
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

int sq_begin(sq_store *s, cf_err *err) { return run_simple(s, SQ_BEGIN, err); }
int sq_commit(sq_store *s, cf_err *err) { return run_simple(s, SQ_COMMIT, err); }

void sq_rollback(sq_store *s)
{
    if (!sqlite3_get_autocommit(s->db))
        run_simple(s, SQ_ROLLBACK, NULL);
}

/* ---- migrations and the schema version ----------------------------------------- */

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
    if (sq_begin(s, err))
        return -1;
    int current = 0;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, "SELECT coalesce(max(version), 0) FROM schema_migrations", -1,
                           &st, NULL) != SQLITE_OK || sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_finalize(st);
        sq_rollback(s);
        return sq_fail(s, err, "reading schema_migrations");
    }
    current = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    if (current > migrations[N_MIGRATIONS - 1].version) {
        sq_rollback(s);
        return cf_store_refuse_newer_schema(current, migrations[N_MIGRATIONS - 1].version, err);
    }
    for (size_t i = 0; i < N_MIGRATIONS; i++) {
        const sq_migration *m = &migrations[i];
        if (m->version <= current)
            continue;
        char *msg = NULL;
        if (sqlite3_exec(s->db, m->sql, NULL, NULL, &msg) != SQLITE_OK) {
            cf_fail(err, CF_EDB, "migration %d (%s): %s", m->version, m->name,
                    msg ? msg : "failed");
            sqlite3_free(msg);
            sq_rollback(s);
            return -1;
        }
        if (sqlite3_prepare_v2(s->db,
                               "INSERT INTO schema_migrations (version, name, applied_at)"
                               " VALUES (?1, ?2, ?3)",
                               -1, &st, NULL) != SQLITE_OK) {
            sq_rollback(s);
            return sq_fail(s, err, "recording a migration");
        }
        sqlite3_bind_int(st, 1, m->version);
        sqlite3_bind_text(st, 2, m->name, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, cf_now_us());
        int rc = sqlite3_step(st);
        sqlite3_finalize(st);
        if (rc != SQLITE_DONE) {
            sq_rollback(s);
            return sq_fail(s, err, "recording a migration");
        }
        n++;
    }
    if (sq_commit(s, err)) {
        sq_rollback(s);
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

/* ---- waiting for a lock ------------------------------------------------------------ */

/* A writer that finds the database locked retries every millisecond, up
 * to the busy timeout. SQLite's own handler backs off to 100 ms between
 * tries, so a writer could sleep through every short gap a batched purge
 * leaves between its transactions and wait for the whole purge. */
int sq_busy(void *ud, int count)
{
    sq_store *s = ud;
    if (count >= s->busy_timeout_ms)
        return 0;
    sqlite3_sleep(1);
    return 1;
}

/* The vtable's ping: the write lock taken and given back. */
static int sq_ping(cf_store *base, cf_err *err)
{
    sq_store *s = (sq_store *)base;
    if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return sq_fail(s, err, "the database does not take writes");
    sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return 0;
}

/* ---- lifetime ------------------------------------------------------------------- */

static void sq_close(cf_store *base)
{
    sq_store *s = (sq_store *)base;
    sq_ckpt_detach(s);
    for (int i = 0; i < SQ_COUNT_; i++)
        sqlite3_finalize(s->st[i]);
    sq_sig_cache_release(s->sigs);
    s->sigs = NULL;
    sqlite3_close_v2(s->db);
    free(s->path);
    free(s);
}

static const cf_store_vt sq_vt = {
    .name = "sqlite",
    .migrate = sq_migrate,
    .schema_version = sq_schema_version,
    .insert_score = sq_insert_score,
    .list_scores = sq_list_scores,
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
    .plan_light_events = sq_plan_light_events,
    .open_events_page = sq_open_events_page,
    .events_page = SQ_IDS_PAGE,
    .insert_curated_new = sq_insert_curated_new,
    .last_export_at = sq_last_export_at,
    .list_deployments = sq_list_deployments,
    .events_by_response_id = sq_events_by_response_id,
    .insert_run = sq_insert_run,
    .update_run = sq_update_run,
    .list_runs = sq_list_runs,
    .claim_curated = sq_claim_curated,
    .release_curated_claim = sq_release_curated_claim,
    .insert_key = sq_insert_key,
    .list_keys = sq_list_keys,
    .revoke_key = sq_revoke_key,
    .touch_key = sq_touch_key,
    .purge = sq_purge,
    .list_user_exports = sq_list_user_exports,
    .count_orphans = sq_count_orphans,
    .put_deletion = sq_put_deletion,
    .list_deletions = sq_list_deletions,
    .backup = sq_backup,
    .restore = sq_restore,
    .ping = sq_ping,
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
    s->busy_timeout_ms = opts && opts->busy_timeout_ms > 0 ? opts->busy_timeout_ms : 5000;
    sqlite3_busy_handler(s->db, sq_busy, s);
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
    if (opts && opts->cache_kb > 0) {
        char cache[64];
        snprintf(cache, sizeof cache, "PRAGMA cache_size = -%d", opts->cache_kb);
        if (sqlite3_exec(s->db, cache, NULL, NULL, NULL) != SQLITE_OK) {
            sq_fail(s, err, "cannot open database");
            sq_close(&s->base);
            return -1;
        }
    }
    if (!memory && sq_ckpt_attach(s)) {
        sq_fail(s, err, "cannot open database");
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
