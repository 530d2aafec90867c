/* Internal to the SQLite backend: shared between its write and read halves. */
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

typedef struct sq_store {
    cf_store base;
    sqlite3 *db;
    char *path;
    sqlite3_stmt *st[SQ_COUNT_];
} sq_store;

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
/* Binds a curated example to ?1..?10 of an insert (id, inference_event_id,
 * deployment_id, curation_source, curation_score, prompt, response,
 * exported, export_batch_id, inserted_at or now). */
void sq_bind_curated(sqlite3_stmt *st, const cf_curated *c, cf_str id, int64_t now);
/* Reads a TEXT column into a cf_str (p NULL for SQL NULL). */
cf_str sq_col_str(sqlite3_stmt *st, int i);

int sq_open_cursor(cf_store *, cf_kind, const cf_query *, cf_cursor **, cf_err *);
int sq_count(cf_store *, cf_kind, const cf_query *, int64_t *, cf_err *);
/* cf_store_sqlite_quality.c */
int sq_count_by_type(cf_store *, cf_kind, const cf_query *, cf_type_count_fn, void *, cf_err *);
int sq_open_unscored_cursor(cf_store *, const cf_query *, cf_cursor **, cf_err *);
int sq_open_columns(cf_store *, const cf_query *, const cf_column *, size_t, cf_colscan **,
                    cf_err *);
/* cf_store_sqlite_curation.c */
int sq_open_light_events(cf_store *, const cf_query *, unsigned, cf_light_scan **, cf_err *);
int sq_open_events_by_ids(cf_store *, const cf_str *, size_t, cf_cursor **, cf_err *);
int sq_insert_curated_new(cf_store *, const cf_curated *, size_t, unsigned char *, int64_t *,
                          cf_err *);
int sq_last_export_at(cf_store *, cf_str, int64_t *, cf_err *);

/* cf_store_sqlite_runs.c */
int sq_insert_run(cf_store *, const cf_workflow_run *, char id_out[37], int *acquired, cf_err *);
int sq_update_run(cf_store *, const cf_workflow_run *, cf_err *);
int sq_list_runs(cf_store *, cf_str name, int64_t limit, cf_run_fn cb, void *ud, cf_err *);

#endif
