/* Internal to the PostgreSQL backend: shared between its files
 * (connection and schema, writes, reads, workflow runs, lifecycle). */
#ifndef CRUCIBLE_CF_STORE_PG_INT_H
#define CRUCIBLE_CF_STORE_PG_INT_H

#include <libpq-fe.h>

#include "crucible/core/cf_buf.h"
#include "crucible/store/cf_store.h"

/* postgres://user:password@host:port/database[?libpq parameters] (also
 * postgresql://): the scheme rows' open. */
int cf_store_pg_open(const char *url, const cf_store_opts *opts, cf_store **out, cf_err *err);

/* The URL's passwords (as written and decoded) and $PGPASSWORD. */
#define PG_MAX_SECRETS 8

typedef struct pg_store {
    cf_store base;
    PGconn *conn;
    char *url;          /* as given: what libpq connects with */
    char *redacted;     /* the URL with its password as *** (for messages) */
    char *secrets[PG_MAX_SECRETS]; /* the URL's passwords and $PGPASSWORD, scrubbed from messages */
    size_t n_secrets;
    char server[300];   /* host:port */
    int lost;           /* the last failure was the connection's (retry) */
    char state[6];      /* the last failure's SQLSTATE ("" when none) */
    int batch_table;    /* the COPY staging table exists on this connection */
    unsigned count_batches; /* event batches written: a fold every so many (pg_counts.c) */
    int64_t reconnect_ms; /* how long an operation waits for the server to come back */
    struct pg_pager *inflight; /* the pager whose next page is in flight (pg_pager.c) */
} pg_store;

/* Statement parameters: strings are sent as binary text (length given, no
 * terminator needed), numbers and times as text formatted here. */
#define PG_MAX_PARAMS 80

typedef struct pg_params {
    int n;
    const char *v[PG_MAX_PARAMS];
    int len[PG_MAX_PARAMS];
    int fmt[PG_MAX_PARAMS];
    char num[PG_MAX_PARAMS][40];
    int overflow;
} pg_params;

void pg_params_init(pg_params *p);
void pg_p_str(pg_params *p, cf_str v);             /* NULL when v.p is NULL */
void pg_p_int(pg_params *p, int64_t v);            /* NULL when CF_NULL_INT */
void pg_p_double(pg_params *p, double v);          /* NULL when NaN */
void pg_p_time(pg_params *p, int64_t us);          /* timestamptz; NULL when CF_NULL_INT */
void pg_p_bool(pg_params *p, int v);
void pg_p_cstr(pg_params *p, const char *v);      /* text format, NUL-terminated */
/* Appends s as an element of a text[] literal ("..." with \\ and \" escaped). */
void pg_array_elem(cf_buf *b, cf_str s);

/* SQL reading a timestamptz column as int64 microseconds since the epoch. */
#define PG_US(col) "(extract(epoch from " col ") * 1000000)::int8"

/* Runs sql with params (NULL: none). Returns the result (PQclear it) when
 * its status is PGRES_COMMAND_OK or PGRES_TUPLES_OK; else NULL with err
 * set (what failed, the server's message, the server, what to check) and
 * s->lost set when the connection was lost. */
PGresult *pg_exec(pg_store *s, const char *sql, const pg_params *p, const char *what,
                  cf_err *err);
/* Collects the page in flight on s's connection (if any) into its pager,
 * so that the connection can run another statement: pg_exec and every
 * other direct use of s->conn calls it first. */
void pg_settle(pg_store *s);
/* pg_exec for statements whose result is not needed. */
int pg_run(pg_store *s, const char *sql, const pg_params *p, const char *what, cf_err *err);
/* Rolls back an open transaction (when the connection is still there). */
void pg_rollback(pg_store *s);
/* Fails with the server's message for a result or the connection. */
int pg_fail(pg_store *s, PGresult *res, const char *what, cf_err *err);
/* Removes the passwords from a message (a buffer of cap bytes) in place. */
void pg_scrub(const pg_store *s, char *msg, size_t cap);

/* Runs op until it succeeds or fails for a reason other than a lost
 * connection; a lost connection is re-established with backoff for up to
 * s->reconnect_ms and op runs again with attempt > 0 (ops must be
 * idempotent for a retry: the first attempt may have committed). */
typedef int (*pg_op)(pg_store *s, void *arg, int attempt, cf_err *err);
int pg_retry(pg_store *s, pg_op op, void *arg, cf_err *err);

/* Column readers: NULL values as p == NULL, CF_NULL_INT, NAN. */
cf_str pg_col_str(const PGresult *r, int row, int col);
int64_t pg_col_int(const PGresult *r, int row, int col);
double pg_col_double(const PGresult *r, int row, int col);
int pg_col_bool(const PGresult *r, int row, int col);

/* Fails with CF_EINVAL when a string has a NUL byte or is not UTF-8
 * (PostgreSQL text can hold neither); field names it. */
int pg_check_text(cf_str v, const char *what, size_t i, const char *field, cf_err *err);

/* A paged query (pg_pager.c): head is "SELECT ..., <inserted_at
 * in microseconds>, t.seq FROM ... [WHERE ...]" over a table aliased t;
 * each page continues after the last row by (t.inserted_at, t.seq).
 * With ahead set, the next page's query is sent as soon as a page has
 * arrived, and the server runs it while the caller reads the page. */
typedef struct pg_pager {
    pg_store *s;
    cf_buf head, sql;
    int nconds;
    pg_params base, p;
    char *copies[PG_MAX_PARAMS];
    int ncopies, oom;
    int desc, page;
    int64_t remaining, offset;
    PGresult *res;
    int row, nrows, started, done;
    int64_t last_t, last_seq, want;
    int ahead;          /* send the next page ahead */
    int sent;           /* the next page is in flight (s->inflight is this pager) */
    int settled;        /* the next page was collected into next (NULL: none came) */
    PGresult *next;
} pg_pager;

void pg_pager_init(pg_pager *g, pg_store *s);
void pg_pager_put(pg_pager *g, const char *frag);
void pg_pager_cond(pg_pager *g, const char *frag);          /* WHERE / AND frag */
void pg_pager_str(pg_pager *g, cf_str v);                   /* $N::text, copied */
void pg_pager_cond_str(pg_pager *g, const char *column, cf_str v);
void pg_pager_time(pg_pager *g, const char *column, const char *op, int64_t us);
/* 1: a row at (g->res, g->row); 0: the end; -1: error. */
int pg_pager_next(pg_pager *g, cf_err *err);
void pg_pager_free(pg_pager *g);

/* pg_sigcount.c: signal counts by event id (CF_SIG_COUNT_ kinds), for a
 * light scan that reads every event of a selection. */
typedef struct pg_sc_slot {
    uint64_t h;           /* 0: empty */
    uint32_t off, len;    /* the id in keys */
    uint32_t c[CF_SIG_COUNT_];
} pg_sc_slot;
typedef struct pg_sigcounts {
    pg_sc_slot *slots;
    size_t mask, n;
    cf_buf keys;
} pg_sigcounts;
/* Runs sql, whose rows are (event id, signal kind index, count), and keeps
 * the counts; pg_sigcounts_free when done (also after a failure). */
int pg_sigcounts_load(pg_store *s, const char *sql, const pg_params *p, pg_sigcounts *m,
                      cf_err *err);
/* The counts of event id, or NULL when it has no signals. */
const uint32_t *pg_sigcounts_get(const pg_sigcounts *m, cf_str id);
void pg_sigcounts_free(pg_sigcounts *m);

/* pg_write.c */
int pg_insert_events(cf_store *, const cf_event *, size_t, unsigned char *dup, cf_err *);
int pg_insert_signal(cf_store *, const cf_signal *, cf_err *);
int pg_update_events(cf_store *, const cf_str *, const cf_event_update *, size_t, cf_err *);
int pg_insert_curated(cf_store *, const cf_curated *, size_t, cf_err *);
int pg_mark_curated_exported(cf_store *, const cf_str *, size_t, cf_str, cf_err *);
int pg_mark_curated_exported_stream(cf_store *, int (*)(void *, cf_str *, cf_err *), void *,
                                    cf_str, int64_t *, cf_err *);
int pg_claim_curated(cf_store *, const cf_claim *, int64_t *claimed, cf_err *);
int pg_release_curated_claim(cf_store *, cf_str deployment_id, cf_str token, cf_err *);
int pg_insert_drift(cf_store *, const cf_drift_result *, cf_err *);
int pg_insert_trigger(cf_store *, const cf_trigger_event *, cf_err *);
int pg_insert_curated_new(cf_store *, const cf_curated *, size_t, unsigned char *, int64_t *,
                          cf_err *);
/* pg_read.c */
int pg_open_cursor(cf_store *, cf_kind, const cf_query *, cf_cursor **, cf_err *);
int pg_count(cf_store *, cf_kind, const cf_query *, int64_t *, cf_err *);
int pg_count_by_type(cf_store *, cf_kind, const cf_query *, cf_type_count_fn, void *, cf_err *);
int pg_open_unscored_cursor(cf_store *, const cf_query *, cf_cursor **, cf_err *);
int pg_last_export_at(cf_store *, cf_str, int64_t *, cf_err *);
int pg_list_deployments(cf_store *, cf_name_fn, void *, cf_err *);
int pg_events_by_response_id(cf_store *, const cf_str *, size_t, cf_ref_fn, void *, cf_err *);
/* A page of at most PG_IDS_PAGE ids (the generic events-by-id cursor pages them). */
#define PG_IDS_PAGE 500
int pg_open_events_page(cf_store *, const cf_str *, size_t, cf_cursor **, cf_err *);
/* pg_scan.c */
int pg_open_columns(cf_store *, const cf_query *, const cf_column *, size_t, cf_colscan **,
                    cf_err *);
int pg_open_light_events(cf_store *, const cf_query *, unsigned, cf_light_scan **, cf_err *);
/* pg_runs.c */
int pg_insert_run(cf_store *, const cf_workflow_run *, int *, cf_err *);
int pg_update_run(cf_store *, const cf_workflow_run *, cf_err *);
int pg_list_runs(cf_store *, cf_str, int64_t, cf_run_fn, void *, cf_err *);
/* pg_lifecycle.c */
int pg_purge(cf_store *, const cf_purge *, cf_life_counts *, cf_err *);
struct cf_life_sql;
/* A lifecycle statement in $N style, times as timestamptz; its values
 * as statement parameters. */
void pg_life_sql_init(struct cf_life_sql *q);
void pg_life_params(const struct cf_life_sql *q, pg_params *p);
/* Appends a guarded purge's condition (cf_purge.guard): true when it may
 * delete; without exports, its test of the selected events' exported
 * curated examples is left to the caller. */
void pg_life_guard_cond(struct cf_life_sql *q, const cf_purge *p, int exports);
/* pg_forget.c: a guarded purge's first batch when it is also its last
 * (cf_purge.guard): the guard, the deletes and the record in one
 * transaction of a few plain statements. 0 when done (out->blocked or
 * out->record_done set), 1 when the purge selects a batch or more of rows
 * (nothing done: the batches are for them), -1 on error. */
int pg_forget_small(pg_store *s, const cf_purge *p, cf_life_counts *out, cf_err *err);
int pg_list_user_exports(cf_store *, const cf_purge *, cf_export_row_fn, void *, cf_err *);
int pg_count_orphans(cf_store *, cf_life_counts *, cf_err *);
int pg_put_deletion(cf_store *, const cf_deletion *, cf_err *);
int pg_list_deletions(cf_store *, int64_t, const char *status, cf_deletion_fn, void *, cf_err *);

/* pg_counts.c: the per-deployment event counts (migration 12): a batch's
 * rows added in its transaction (dup NULL: every row), a deployment's
 * count read, and the periodic fold after a committed batch. */
extern const char pg_counts_migration[];
int pg_counts_add(pg_store *, const cf_event *, size_t, const unsigned char *dup, cf_err *);
int pg_counts_read(pg_store *, cf_str deployment, int64_t *, cf_err *);
void pg_counts_after_batch(pg_store *);
/* pg_keys.c: API keys, and their migration's SQL */
extern const char pg_keys_migration[];
int pg_insert_key(cf_store *, const cf_api_key *, cf_err *);
int pg_list_keys(cf_store *, cf_key_fn cb, void *ud, cf_err *);
int pg_revoke_key(cf_store *, cf_str name, int64_t at, cf_err *);
int pg_touch_key(cf_store *, cf_str public_id, int64_t at, cf_err *);
/* pg_scores.c */
int pg_insert_score(cf_store *, const cf_score *, cf_err *);
int pg_list_scores(cf_store *, const cf_score_query *, cf_score_list_fn, void *, cf_err *);

#endif
