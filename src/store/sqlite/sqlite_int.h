/* Internal to the SQLite backend: shared between its files (sqlite_open.c,
 * sqlite_write.c, sqlite_read.c, sqlite_scan.c, sqlite_runs.c,
 * sqlite_lifecycle.c). */
#ifndef CRUCIBLE_CF_STORE_SQLITE_INT_H
#define CRUCIBLE_CF_STORE_SQLITE_INT_H

#include <sqlite3.h>

#include "crucible/store/cf_store.h"

enum {
    SQ_BEGIN,
    SQ_COMMIT,
    SQ_ROLLBACK,
    SQ_INSERT_EVENT,
    SQ_INSERT_SIGNAL,
    SQ_UPDATE_EVENT,
    SQ_INSERT_CURATED,
    SQ_MARK_EXPORTED,
    SQ_INSERT_DRIFT,
    SQ_INSERT_TRIGGER,
    SQ_KV_GET,
    SQ_KV_SET,
    SQ_KV_INSERT_NEW,
    SQ_SIGNALS_FOR_EVENT,
    SQ_MARK_EXPORTED_64,
    SQ_COUNT_
};

typedef struct sq_sig_cache sq_sig_cache;
typedef struct sq_ckpt sq_ckpt;

/* The page size of new databases, and the WAL's checkpoint thresholds in
 * frames (a frame is a page): past SQ_CKPT_FRAMES (16 MB) a commit wakes
 * the checkpointer thread; past SQ_WAL_MAX_FRAMES (32 MB) the writer
 * checkpoints itself (sqlite_ckpt.c). */
#define SQ_PAGE_SIZE 16384
#define SQ_CKPT_FRAMES 1000
#define SQ_WAL_MAX_FRAMES 2000
/* A purging connection's own checkpoints, and those of a connection whose
 * own checkpoint did not start the WAL over, every this many frames more
 * (256 MB); its thread copies meanwhile (sqlite_ckpt.c). */
#define SQ_PURGE_WAL_FRAMES 16384

typedef struct sq_store {
    cf_store base;
    sqlite3 *db;
    char *path;
    sqlite3_stmt *st[SQ_COUNT_];
    sq_sig_cache *sigs; /* the last signal counts a light scan built (sqlite_scan.c) */
    sq_ckpt *ckpt;      /* the checkpointer of a file's WAL (sqlite_ckpt.c); NULL: none */
    int busy_timeout_ms;
} sq_store;

/* Drops a reference to the signal counts (NULL: nothing). */
void sq_sig_cache_release(sq_sig_cache *c);

/* The busy handler: retries every millisecond for busy_timeout_ms. */
int sq_busy(void *ud, int count);

/* sqlite:PATH (also sqlite://PATH): the path, or CF_EINVAL when empty; and
 * the store on that path (or ":memory:"). The scheme row's target and open. */
int cf_store_sqlite_target(const char *url, char *out, size_t cap, cf_err *err);
int cf_store_sqlite_open(const char *path, const cf_store_opts *opts, cf_store **out, cf_err *err);

/* Fails with CF_EDB and the connection's message, prefixed by what. */
int sq_fail(sq_store *s, cf_err *err, const char *what);
/* The cached statement for id, reset and with bindings cleared; NULL on error. */
sqlite3_stmt *sq_stmt(sq_store *s, int id, cf_err *err);
/* Binds a cf_str as TEXT, or NULL when absent. */
int sq_bind_str(sqlite3_stmt *st, int i, cf_str v);
/* Steps a streaming statement: 1 a row, 0 the end (the statement is then
 * finalized and *st NULL, so later calls return 0 too), -1 an error
 * (prefixed by what). */
int sq_step_row(sq_store *s, sqlite3_stmt **st, const char *what, cf_err *err);
/* Reads a TEXT column into a cf_str (p NULL for SQL NULL). */
cf_str sq_col_str(sqlite3_stmt *st, int i);

/* The cached BEGIN IMMEDIATE, COMMIT; ROLLBACK when a transaction is open. */
int sq_begin(sq_store *s, cf_err *err);
int sq_commit(sq_store *s, cf_err *err);
void sq_rollback(sq_store *s);

/* sqlite_ckpt.c: checkpoints of a file database's WAL off the writing
 * thread. attach: 0, or -1 when the connection refused a pragma; detach
 * stops and joins the thread (before the connection closes); runs: how
 * many of the thread's checkpoints left frames copied into the database. */
int sq_ckpt_attach(sq_store *s);
void sq_ckpt_detach(sq_store *s);
/* A purge starts (on 1) or ends (0) on the connection. */
void sq_ckpt_purging(sq_store *s, int on);
long sq_ckpt_runs(sq_store *s);
/* How many checkpoints the writing connection ran itself, at its bound. */
long sq_ckpt_own(sq_store *s);

/* sqlite_write.c */
int sq_insert_events(cf_store *, const cf_event *, size_t, unsigned char *dup, cf_err *);
int sq_insert_signal(cf_store *, const cf_signal *, cf_err *);
int sq_update_events(cf_store *, const cf_str *ids, const cf_event_update *, size_t, cf_err *);
int sq_insert_curated(cf_store *, const cf_curated *, size_t, cf_err *);
int sq_insert_curated_new(cf_store *, const cf_curated *, size_t, unsigned char *, int64_t *,
                          cf_err *);
int sq_mark_curated_exported(cf_store *, const cf_str *ids, size_t, cf_str batch, cf_err *);
int sq_mark_curated_exported_stream(cf_store *, int (*next)(void *, cf_str *, cf_err *), void *,
                                    cf_str batch, int64_t *marked, cf_err *);
int sq_claim_curated(cf_store *, const cf_claim *, int64_t *claimed, cf_err *);
int sq_release_curated_claim(cf_store *, cf_str deployment_id, cf_str token, cf_err *);
int sq_insert_drift(cf_store *, const cf_drift_result *, cf_err *);
int sq_insert_trigger(cf_store *, const cf_trigger_event *, cf_err *);

/* sqlite_read.c */
/* The columns of an event row, in the order sq_read_event reads them. */
#define SQ_EVENT_COLUMNS                                                           \
    "id, deployment_id, model_version_id, user_id_hash, prompt, response,"         \
    " latency_ms, token_count, quality_score, metadata, inserted_at"
/* Reads the current row of a statement selecting SQ_EVENT_COLUMNS (no
 * signals); the strings point into the statement until its next step. */
void sq_read_event(sqlite3_stmt *st, cf_event *e);
int sq_open_cursor(cf_store *, cf_kind, const cf_query *, cf_cursor **, cf_err *);
int sq_count(cf_store *, cf_kind, const cf_query *, int64_t *, cf_err *);
int sq_count_by_type(cf_store *, cf_kind, const cf_query *, cf_type_count_fn, void *, cf_err *);
int sq_open_unscored_cursor(cf_store *, const cf_query *, cf_cursor **, cf_err *);
int sq_last_export_at(cf_store *, cf_str, int64_t *, cf_err *);
int sq_list_deployments(cf_store *, cf_name_fn, void *, cf_err *);
int sq_events_by_response_id(cf_store *, const cf_str *, size_t, cf_ref_fn, void *, cf_err *);

/* sqlite_read_ids.c: events by id, a page of ids at a time */
#define SQ_IDS_PAGE 256
int sq_open_events_page(cf_store *, const cf_str *ids, size_t n, cf_cursor **, cf_err *);

/* sqlite_scan.c */
int sq_open_columns(cf_store *, const cf_query *, const cf_column *, size_t, cf_colscan **,
                    cf_err *);
int sq_open_light_events(cf_store *, const cf_query *, unsigned, cf_light_scan **, cf_err *);
int sq_plan_light_events(cf_store *, const cf_query *, unsigned, cf_plan_fn, void *,
                         cf_err *);

/* sqlite_runs.c */
int sq_insert_run(cf_store *, const cf_workflow_run *, int *acquired, cf_err *);
int sq_update_run(cf_store *, const cf_workflow_run *, cf_err *);
int sq_list_runs(cf_store *, cf_str name, int64_t limit, cf_run_fn cb, void *ud, cf_err *);

/* sqlite_keys.c: API keys, and their migration's SQL */
extern const char sq_keys_migration[];
int sq_insert_key(cf_store *, const cf_api_key *, cf_err *);
int sq_list_keys(cf_store *, cf_key_fn cb, void *ud, cf_err *);
int sq_revoke_key(cf_store *, cf_str name, int64_t at, cf_err *);
int sq_touch_key(cf_store *, cf_str public_id, int64_t at, cf_err *);
/* sqlite_scores.c */
int sq_insert_score(cf_store *, const cf_score *, cf_err *);
int sq_list_scores(cf_store *, const cf_score_query *, cf_score_list_fn, void *, cf_err *);
/* sqlite_counts.c: the per-deployment event counts (migration 12) */
extern const char sq_counts_migration[];
/* Steps count (SELECT deployment_id, count(*) ... GROUP BY deployment_id
 * over the rows del deletes), then the DELETE of events del, and
 * subtracts the rows from their deployments' counts; *n: rows deleted. */
int sq_counts_delete(sq_store *, sqlite3_stmt *count, sqlite3_stmt *del, int64_t *n, cf_err *);
int sq_counts_add(sq_store *, const cf_event *, size_t, const unsigned char *dup, cf_err *);
int sq_counts_read(sq_store *, cf_str deployment, int64_t *, cf_err *);
/* sqlite_lifecycle.c */
int sq_purge(cf_store *, const cf_purge *, cf_life_counts *, cf_err *);
int sq_list_user_exports(cf_store *, const cf_purge *, cf_export_row_fn, void *, cf_err *);
int sq_count_orphans(cf_store *, cf_life_counts *, cf_err *);
int sq_put_deletion(cf_store *, const cf_deletion *, cf_err *);
int sq_list_deletions(cf_store *, int64_t, const char *status, cf_deletion_fn, void *, cf_err *);
int sq_backup(cf_store *, const char *path, cf_err *);
int sq_restore(cf_store *, const char *path, cf_err *);

#endif
