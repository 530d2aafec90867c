/* Internal to the ClickHouse backend: shared by its files (ch_conn.c the
 * request plumbing, ch_open.c, ch_write.c, ch_read.c, ch_scan.c, ch_runs.c,
 * ch_claim.c, ch_lifecycle.c). */
#ifndef CRUCIBLE_CF_STORE_CH_INT_H
#define CRUCIBLE_CF_STORE_CH_INT_H

#include "crucible/core/cf_buf.h"
#include "crucible/http/cf_http.h"
#include "crucible/store/cf_store.h"

#define CH_MAX_IDLE 4
#define CH_MAX_FIELDS 32

/* clickhouse://[user[:password]@]host[:port][/database] (HTTP interface;
 * port 8123, user default, database default when absent): the scheme row's
 * open. */
int cf_store_clickhouse_open(const char *url, const cf_store_opts *opts, cf_store **out,
                             cf_err *err);

typedef struct ch_store {
    cf_store base;
    char *url;          /* http://host:port/?database=...&settings (no credentials) */
    char *url_nodb;     /* the same without the database (before it exists) */
    char *shown;        /* clickhouse://user:***@host:port/db, for messages */
    char *server;       /* host:port */
    char *database;
    char *user_header;  /* X-ClickHouse-User: ... */
    char *key_header;   /* X-ClickHouse-Key: ... (NULL: no password) */
    const char *headers[4];
    int transport_failed; /* the last failed request got no reply (may be repeated) */
    long retry_ms;      /* how long a request keeps retrying an unreachable server */
    cf_http_conn *idle[CH_MAX_IDLE];
    int nidle;
    long lease_settle_ms; /* the workflow lease's settle time (URL ?lease_settle_ms=) */
} ch_store;

#define CH_LEASE_SETTLE_MS 2000

/* A streamed TabSeparated result: one row at a time in f[0..nf). Fields
 * are unescaped in place; f[i].p is NULL for \N. Valid until the next
 * ch_rows_next. */
typedef struct ch_rows {
    ch_store *s;
    cf_http_conn *conn;
    const char *what;
    cf_buf in;
    size_t pos;
    int eof;
    cf_str f[CH_MAX_FIELDS];
    size_t nf;
} ch_rows;

/* Appends s as a ClickHouse string literal: quotes around, backslash and
 * quote escaped, every byte below 0x20 and 0x7f as \xHH; other bytes as
 * they are (so any byte string, invalid UTF-8 included, is plain data).
 * The only way a value enters SQL text in this backend. */
int ch_quote(cf_buf *b, cf_str s);
/* Appends ch_quote of each of ids[0..n), comma-separated, inside (...). */
int ch_quote_list(cf_buf *b, const cf_str *ids, size_t n);

/* Runs a statement that returns nothing. */
int ch_exec(ch_store *s, const char *sql, size_t len, const char *what, cf_err *err);
/* INSERT INTO table FORMAT JSONEachRow with rows as the body: one request. */
int ch_insert(ch_store *s, const char *table, const cf_buf *rows, const char *what, cf_err *err);
/* Starts a query (FORMAT TabSeparated is appended); rows are read with
 * ch_rows_next and the result closed with ch_rows_close. */
int ch_query(ch_store *s, const cf_buf *sql, const char *what, ch_rows *out, cf_err *err);
/* 1 a row, 0 the end, -1 an error (a row with the wrong number of fields,
 * a broken transfer, an exception the server sent in the middle). */
int ch_rows_next(ch_rows *r, size_t nfields, cf_err *err);
void ch_rows_close(ch_rows *r);
/* A query that returns one row of one integer (count, max): *out. */
int ch_query_int(ch_store *s, const cf_buf *sql, const char *what, int64_t *out, cf_err *err);

/* Field readers: integers (CF_NULL_INT for NULL), doubles stored as their
 * IEEE bits (NAN for NULL). */
int64_t ch_int(cf_str f);
double ch_bits_double(cf_str f);
/* JSON fields for rows written with JSONEachRow. */
void ch_json_key(cf_buf *b, const char *key, int first);
void ch_json_str(cf_buf *b, const char *key, cf_str v);     /* null when absent */
void ch_json_int(cf_buf *b, const char *key, int64_t v);    /* null for CF_NULL_INT */
void ch_json_bits(cf_buf *b, const char *key, double v);    /* IEEE bits; null for NAN */

/* A database failure message: "what: problem (clickhouse host:port)". */
int ch_fail(ch_store *s, cf_err *err, const char *what, const char *problem);

/* A strictly increasing sequence (per process) that tracks the clock:
 * insertion order among rows with equal inserted_at. */
uint64_t ch_next_seq(void);

/* ch_write.c */
int ch_insert_events(cf_store *, const cf_event *, size_t, unsigned char *dup, cf_err *);
int ch_insert_signal(cf_store *, const cf_signal *, cf_err *);
int ch_update_events(cf_store *, const cf_str *, const cf_event_update *, size_t, cf_err *);
int ch_insert_curated(cf_store *, const cf_curated *, size_t, cf_err *);
int ch_insert_curated_new(cf_store *, const cf_curated *, size_t, unsigned char *, int64_t *,
                          cf_err *);
int ch_mark_curated_exported(cf_store *, const cf_str *, size_t, cf_str, cf_err *);
int ch_mark_curated_exported_stream(cf_store *, int (*)(void *, cf_str *, cf_err *), void *,
                                    cf_str, int64_t *, cf_err *);
int ch_insert_drift(cf_store *, const cf_drift_result *, cf_err *);
int ch_insert_trigger(cf_store *, const cf_trigger_event *, cf_err *);
/* ch_read.c */
int ch_open_cursor(cf_store *, cf_kind, const cf_query *, cf_cursor **, cf_err *);
int ch_count(cf_store *, cf_kind, const cf_query *, int64_t *, cf_err *);
int ch_count_by_type(cf_store *, cf_kind, const cf_query *, cf_type_count_fn, void *, cf_err *);
int ch_open_unscored_cursor(cf_store *, const cf_query *, cf_cursor **, cf_err *);
/* Row f of an event read (EVENT_READ; unscored: without quality_bits). */
void ch_read_event(const cf_str *f, cf_event *e, int unscored);
/* A page of at most CH_IDS_PAGE distinct ids (the generic events-by-id cursor pages them). */
#define CH_IDS_PAGE 200
/* The deployment of an event through the id view (*dep malloc'd; NULL when
 * the event does not exist); what names the operation in errors. */
int ch_event_deployment(ch_store *s, cf_str id, const char *what, char **dep, cf_err *err);
int ch_open_events_page(cf_store *, const cf_str *, size_t, cf_cursor **, cf_err *);
int ch_last_export_at(cf_store *, cf_str, int64_t *, cf_err *);
int ch_list_deployments(cf_store *, cf_name_fn, void *, cf_err *);
int ch_events_by_response_id(cf_store *, const cf_str *, size_t, cf_ref_fn, void *, cf_err *);
/* ch_scan.c. ch_window_bound: for a query over events with a
 * limit (deployment_id, since, until only), appends " AND inserted_at >=
 * T" (<= ascending) to b so the server reads only the window's rows. */
int ch_window_bound(ch_store *s, const cf_query *q, cf_buf *b, cf_err *err);
int ch_open_columns(cf_store *, const cf_query *, const cf_column *, size_t, cf_colscan **,
                    cf_err *);
int ch_open_light_events(cf_store *, const cf_query *, unsigned, cf_light_scan **, cf_err *);
/* ch_runs.c */
int ch_insert_run(cf_store *, const cf_workflow_run *, int *, cf_err *);
int ch_update_run(cf_store *, const cf_workflow_run *, cf_err *);
int ch_list_runs(cf_store *, cf_str, int64_t, cf_run_fn, void *, cf_err *);
/* ch_claim.c */
int ch_claim_curated(cf_store *, const cf_claim *, int64_t *claimed, cf_err *);
int ch_release_curated_claim(cf_store *, cf_str deployment_id, cf_str token, cf_err *);
/* The lease protocol's two decisions, pure. ch_lease_slow: 1 when the
 * claim must be withdrawn because more than settle/2 passed from the
 * check's start to the end of the claim's insert (monotonic ns).
 * ch_lease_won: 1 when mine is among the ids of the live running rows
 * read after the settle and no other is smaller (bytewise, as ClickHouse
 * orders strings). */
int ch_lease_slow(int64_t check_ns, int64_t written_ns, int64_t settle_ns);
int ch_lease_won(cf_str mine, const cf_str *live, size_t n);
/* ch_lifecycle.c */
int ch_purge(cf_store *, const cf_purge *, cf_life_counts *, cf_err *);
int ch_list_user_exports(cf_store *, const cf_purge *, cf_export_row_fn, void *, cf_err *);
int ch_count_orphans(cf_store *, cf_life_counts *, cf_err *);
int ch_put_deletion(cf_store *, const cf_deletion *, cf_err *);
int ch_list_deletions(cf_store *, int64_t, const char *status, cf_deletion_fn, void *, cf_err *);

/* ch_keys.c: API keys, and their migration's statements */
extern const char *const ch_keys_migration[];
int ch_insert_key(cf_store *, const cf_api_key *, cf_err *);
int ch_list_keys(cf_store *, cf_key_fn cb, void *ud, cf_err *);
int ch_revoke_key(cf_store *, cf_str name, int64_t at, cf_err *);
int ch_touch_key(cf_store *, cf_str public_id, int64_t at, cf_err *);
/* ch_scores.c */
int ch_insert_score(cf_store *, const cf_score *, cf_err *);
int ch_list_scores(cf_store *, const cf_score_query *, cf_score_list_fn, void *, cf_err *);

#endif
