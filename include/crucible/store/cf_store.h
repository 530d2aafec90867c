/*
 * The storage interface: one vtable, one logical schema, several backends.
 *
 * Nothing above this header knows which database is underneath. Backends
 * (src/store/sqlite, src/store/pg, src/store/ch) fill a cf_store_vt and
 * have a row in cf_store_schemes; callers use the cf_store_* functions below.
 *
 * Rules every backend keeps:
 *  - values are bound parameters, never spliced into SQL text;
 *  - a batch is one transaction: all rows or none;
 *  - lists are cursors that stream rows, never whole tables in memory;
 *  - ids are UUIDv7 text generated above the vtable (cf_store_insert.c)
 *    unless the caller gave one: every row reaches a backend with its id;
 *  - times are int64 microseconds since the Unix epoch, UTC.
 */
#ifndef CRUCIBLE_CF_STORE_H
#define CRUCIBLE_CF_STORE_H

#include "crucible/core/cf_buf.h"
#include "crucible/core/cf_common.h"

typedef struct cf_store cf_store;
typedef struct cf_cursor cf_cursor;

/* ---- rows --------------------------------------------------------------
 * Strings in rows returned by a cursor stay valid until the next
 * cf_cursor_next or cf_cursor_close. Absent values: p == NULL for strings,
 * CF_NULL_INT for integers, NAN for doubles. JSON columns (metadata,
 * details) hold JSON object text. */

typedef struct cf_signal {
    cf_str id;
    cf_str inference_event_id;
    cf_str deployment_id;     /* filled by the store from the event */
    cf_str signal_type;
    cf_str edited_response;   /* edit signals only */
    cf_str metadata;          /* JSON */
    int64_t inserted_at;
} cf_signal;

typedef struct cf_event {
    cf_str id;
    cf_str deployment_id;
    cf_str model_version_id;
    cf_str user_id_hash;
    cf_str prompt;
    cf_str response;
    cf_str metadata;          /* JSON; absent means {} */
    int64_t latency_ms;       /* CF_NULL_INT when absent */
    int64_t token_count;      /* CF_NULL_INT when absent */
    double quality_score;     /* NAN when absent */
    uint32_t quality_checks;  /* CF_QCHECKS_* bits: which checks ran, which passed; 0: none
                                 (written on insert, never read back by event cursors) */
    int64_t inserted_at;      /* 0 on insert: now */
    const cf_signal *signals; /* cursors with include_signals */
    size_t nsignals;
} cf_event;

typedef struct cf_curated {
    cf_str id;
    cf_str inference_event_id;
    cf_str deployment_id;
    cf_str curation_source;
    double curation_score;    /* NAN when absent */
    cf_str prompt;
    cf_str response;
    int exported;
    cf_str export_batch_id;
    int64_t inserted_at;
    int64_t updated_at;
} cf_curated;

typedef struct cf_drift_result {
    cf_str id;
    cf_str deployment_id;
    cf_str drift_type;        /* statistical | embedding | output | ... */
    double score;
    int drifted;
    cf_str details;           /* JSON */
    int64_t inserted_at;
} cf_drift_result;

typedef struct cf_trigger_event {
    cf_str id;
    cf_str deployment_id;
    cf_str trigger_type;
    cf_str details;           /* JSON: the measurements behind the firing */
    int64_t inserted_at;
} cf_trigger_event;

typedef union cf_row {
    cf_event event;
    cf_signal signal;
    cf_curated curated;
    cf_drift_result drift;
    cf_trigger_event trigger;
} cf_row;

/* ---- queries ------------------------------------------------------------ */

typedef enum cf_kind {
    CF_KIND_EVENTS,
    CF_KIND_SIGNALS,
    CF_KIND_CURATED,
    CF_KIND_DRIFT,
    CF_KIND_TRIGGERS,
    CF_KIND_COUNT_
} cf_kind;

typedef struct cf_query {
    cf_str deployment_id;   /* NULL: every deployment */
    cf_str id;              /* one row by its id */
    cf_str event_id;        /* signals: those of one inference event */
    cf_str type;            /* signal_type, drift_type or trigger_type */
    int exported;           /* curated: -1 any, 0 not exported, 1 exported */
    int64_t limit;          /* < 0: no limit */
    int64_t offset;
    int descending;         /* 1: newest first */
    int64_t since;          /* inserted_at >= since (CF_NO_TIME: unbounded) */
    int64_t until;          /* inserted_at <  until (CF_NO_TIME: unbounded) */
    int include_signals;    /* events: attach each event's signals */
    /* events: only those with at least one signal whose type is one of
     * these (n_with_signal_types of them, at most CF_QUERY_MAX_SIGNAL_TYPES);
     * 0: no such filter. */
    const cf_str *with_signal_types;
    size_t n_with_signal_types;
    /* curated: only the rows held by this export claim (claim_curated);
     * NULL: no such filter. */
    cf_str claim;
} cf_query;

#define CF_QUERY_MAX_SIGNAL_TYPES 8

/* Everything unbounded, oldest first, exported = -1. */
void cf_query_init(cf_query *q);
/* CF_EINVAL (naming what) when q filters by more than deployment_id, since
 * and until (count_by_type, the unscored cursor). */
int cf_query_check_window(const cf_query *q, const char *what, cf_err *err);
/* Checks that q's filters apply to rows of `kind` (event_id: signals and
 * curated examples; type: all but events; exported and claim: curated
 * examples; with
 * signal types: events, at most CF_QUERY_MAX_SIGNAL_TYPES, none missing).
 * Every backend calls it before building its query, so the rules and the
 * messages are the same on each. */
int cf_query_check(cf_kind kind, const cf_query *q, cf_err *err);

/* Fields an update may change. */
enum {
    CF_UPD_QUALITY = 1 << 0,
    CF_UPD_METADATA = 1 << 1,
    CF_UPD_MODEL_VERSION = 1 << 2,
    CF_UPD_LATENCY = 1 << 3,
    CF_UPD_TOKENS = 1 << 4,
    CF_UPD_CHECKS = 1 << 5,
    CF_UPD_PROMPT = 1 << 6,
    CF_UPD_RESPONSE = 1 << 7
};

/* An event's quality checks, one bit each in the quality room's order
 * (format, length, refusal, repetition, then the judge; see cf_quality.h):
 * bit i set when check i ran, bit CF_QCHECKS_PASSED_SHIFT + i when it
 * passed. 0 (stored as NULL): no check ran, or the event predates them. */
#define CF_QCHECKS_PASSED_SHIFT 8
#define CF_QCHECKS_MAX 8

typedef struct cf_event_update {
    unsigned fields;          /* CF_UPD_* bits */
    double quality_score;     /* NAN sets NULL */
    cf_str metadata;
    cf_str model_version_id;
    int64_t latency_ms;
    int64_t token_count;
    uint32_t quality_checks;  /* CF_UPD_CHECKS; 0 sets NULL */
    cf_str prompt;            /* CF_UPD_PROMPT, CF_UPD_RESPONSE: NULL p sets "" */
    cf_str response;
} cf_event_update;

/* count_by_type's callback: one type and how many rows have it. */
typedef int (*cf_type_count_fn)(void *ud, cf_str type, int64_t n);
typedef int (*cf_name_fn)(void *ud, cf_str name);
/* plan_light_events' callback: one step of a statement's query plan; a
 * non-zero return stops and is returned. */
typedef int (*cf_plan_fn)(void *ud, const char *stmt, const char *detail);
/* events_by_response_id's callback: one response id and an event of it. */
typedef int (*cf_ref_fn)(void *ud, cf_str response_id, cf_str event_id);
/* ---- column scans ----------------------------------------------------------
 * A projection of inference events that streams only the fields asked for
 * (drift reads windows this way). Values stay valid until the next
 * cf_colscan_next or cf_colscan_close. */

typedef enum cf_column_kind {
    CF_COL_PROMPT,          /* text */
    CF_COL_RESPONSE,        /* text */
    CF_COL_MODEL_VERSION,   /* text or null */
    CF_COL_LATENCY,         /* integer or null */
    CF_COL_TOKENS,          /* integer or null */
    CF_COL_QUALITY,         /* real or null */
    CF_COL_INSERTED_AT,     /* integer */
    CF_COL_METADATA_KEY     /* metadata[key]: integer, real, text (strings; "true"/"false";
                               objects and arrays as JSON text) or null when absent */
} cf_column_kind;

typedef struct cf_column {
    cf_column_kind kind;
    cf_str key;             /* CF_COL_METADATA_KEY: the top-level key (any string) */
} cf_column;

typedef enum cf_colval_type { CF_COLVAL_NULL, CF_COLVAL_INT, CF_COLVAL_REAL, CF_COLVAL_TEXT } cf_colval_type;

typedef struct cf_colval {
    cf_colval_type type;
    int64_t i;
    double d;
    cf_str s;
} cf_colval;

typedef struct cf_colscan cf_colscan;

typedef struct cf_colscan_vt {
    /* Fills vals[0..ncols): 1 row, 0 end, -1 error. */
    int (*next)(cf_colscan *, cf_colval *vals, cf_err *);
    void (*close)(cf_colscan *);
} cf_colscan_vt;

struct cf_colscan {
    const cf_colscan_vt *vt;
    size_t ncols;
};

/* ---- light event scans -------------------------------------------------------
 * What curation strategies look at: per event its id, scores, a few numbers
 * and how many signals of each type it has, without prompt and response
 * unless asked for. Rows stream like a cursor's; strings stay valid until
 * the next call. */

/* The signal types, in this order (cf_signal_type_name). */
typedef enum cf_signal_kind {
    CF_SIG_THUMBS_UP,
    CF_SIG_THUMBS_DOWN,
    CF_SIG_REGENERATE,
    CF_SIG_EDIT,
    CF_SIG_COPY,
    CF_SIG_SHARE,
    CF_SIG_REPORT,
    CF_SIG_OTHER,       /* any other stored type */
    CF_SIG_COUNT_
} cf_signal_kind;

/* What a light scan reads besides the fixed fields. */
enum {
    CF_LIGHT_SIGNALS = 1 << 0,   /* signal counts per type */
    CF_LIGHT_PROMPT = 1 << 1,    /* the prompt text */
    CF_LIGHT_RESPONSE = 1 << 2,  /* the response text */
    CF_LIGHT_CHECKS = 1 << 3,    /* quality_checks */
    /* Of the fixed fields only quality_score is needed: a backend may
     * leave id, model_version_id, inserted_at, latency_ms and token_count
     * unset (NULL, 0, CF_NULL_INT) and read fewer columns. Not with
     * CF_LIGHT_SIGNALS, which needs the id. */
    CF_LIGHT_SCORE_ONLY = 1 << 4
};

typedef struct cf_light_event {
    cf_str id;
    cf_str model_version_id;
    int64_t inserted_at;
    double quality_score;            /* NAN when absent */
    int64_t latency_ms;              /* CF_NULL_INT when absent */
    int64_t token_count;             /* CF_NULL_INT when absent */
    uint32_t signals[CF_SIG_COUNT_]; /* CF_LIGHT_SIGNALS; zeros otherwise */
    uint32_t quality_checks;         /* CF_LIGHT_CHECKS; 0 otherwise (and when none) */
    cf_str prompt;                   /* CF_LIGHT_PROMPT; NULL otherwise */
    cf_str response;                 /* CF_LIGHT_RESPONSE; NULL otherwise */
} cf_light_event;

typedef struct cf_light_scan cf_light_scan;

typedef struct cf_light_scan_vt {
    int (*next)(cf_light_scan *, cf_light_event *, cf_err *);  /* 1 row, 0 end, -1 error */
    void (*close)(cf_light_scan *);
} cf_light_scan_vt;

struct cf_light_scan {
    const cf_light_scan_vt *vt;
};

/* "thumbs_up", ..., "report", "other"; and the kind of a type name
 * (CF_SIG_OTHER for any other name). */
const char *cf_signal_kind_name(cf_signal_kind k);
cf_signal_kind cf_signal_kind_of(cf_str type);
/* ---- workflow runs ----------------------------------------------------------
 * The scheduler's record of each run of a scheduled workflow. A "running"
 * run doubles as a lease: one run of a workflow at a time, across
 * processes sharing the database. */

typedef struct cf_workflow_run {
    cf_str id;               /* generated (UUIDv7) unless given */
    cf_str name;             /* the schedule's name */
    cf_str script;
    cf_str status;           /* running, ok, halted, failed, stopped, skipped, abandoned */
    int64_t scheduled_for;   /* the firing it is for; CF_NULL_INT: a manual run */
    int64_t started_at;      /* 0 on insert: now */
    int64_t finished_at;     /* CF_NULL_INT while running */
    int64_t lease_until;     /* running: another process may take over after this */
    cf_str error;
    cf_str details;          /* JSON: metrics, stage durations, artifacts */
} cf_workflow_run;

/* list_runs' callback: one run (strings valid during the call); a non-zero
 * return stops the listing and is returned. */
typedef int (*cf_run_fn)(void *ud, const cf_workflow_run *run);

/* Checks what every backend requires of a run: a name (on insert) or an id
 * (on update), and a known status. */
int cf_workflow_run_check(const cf_workflow_run *r, int need_id, cf_err *err);

/* ---- scores -------------------------------------------------------------------
 * Typed scores on an inference event (the shape of Langfuse, LangSmith and
 * Phoenix scores) that no signal type fits (crucible.scores maps the rest
 * onto signals). Migration 6. */

typedef struct cf_score {
    cf_str id;               /* generated (UUIDv7) unless given */
    cf_str inference_event_id;
    cf_str deployment_id;    /* filled by the store from the event */
    cf_str name;
    cf_str data_type;        /* NUMERIC, BOOLEAN, CATEGORICAL or TEXT */
    double value;            /* NUMERIC; BOOLEAN as 1 or 0; NAN otherwise */
    cf_str string_value;     /* CATEGORICAL and TEXT; BOOLEAN "true"/"false" */
    cf_str comment;
    cf_str source;           /* human, llm or code */
    int64_t inserted_at;     /* 0 on insert: now */
} cf_score;

/* Which scores list_scores reads (absent strings and CF_NO_TIME: no
 * filter); oldest first (by inserted_at), at most limit (< 0: all). */
typedef struct cf_score_query {
    cf_str id;
    cf_str deployment_id;
    cf_str event_id;
    cf_str name;
    int64_t since;           /* inserted_at >= since */
    int64_t until;           /* inserted_at <  until */
    int64_t limit;
} cf_score_query;

/* list_scores' callback: one score (strings valid during the call); a
 * non-zero return stops the listing and is returned. */
typedef int (*cf_score_list_fn)(void *ud, const cf_score *score);

/* Everything unbounded. */
void cf_score_query_init(cf_score_query *q);
/* Checks what every backend requires of a score: an event id, a name, a
 * known data type with its value (a finite number for NUMERIC, 0 or 1 for
 * BOOLEAN, string_value for CATEGORICAL and TEXT) and a known source;
 * CF_EINVAL naming the field. */
int cf_score_check(const cf_score *s, cf_err *err);

/* ---- export claims ------------------------------------------------------------
 * Concurrent exports of one deployment share its rows out instead of each
 * exporting all of them: an export first claims the rows it will write
 * under a token of its own, reads back only those (cf_query.claim), marks
 * them exported once its file is published, then releases the claim (also
 * when the write fails, so the rows are exportable again). A claim not
 * released (the process was killed) stops counting at `until`. */

typedef struct cf_claim {
    cf_str deployment_id;
    cf_str token;            /* the claim's id: unique per export (a UUIDv7) */
    int include_exported;    /* 1: rows already exported may be claimed too */
    int64_t limit;           /* at most this many, oldest first (< 0: no limit) */
    int64_t until;           /* the claim stops counting at this time (us) */
} cf_claim;

/* How long an export's claim holds when its process dies without
 * releasing it: after this the rows are exportable again. */
#define CF_EXPORT_CLAIM_US (INT64_C(3600) * 1000000)

/* ---- API keys ----------------------------------------------------------------
 * The keys of `crucible-feedback serve` (cf_store_keys.c above the vtable,
 * <b>_keys.c in each backend). A key is never stored in the clear: only
 * the hex SHA-256 of its secret. */

typedef struct cf_api_key {
    cf_str name;             /* unique */
    cf_str public_id;        /* the user part of Basic auth (public:secret) */
    cf_str secret_hash;      /* lowercase hex SHA-256 of the secret (64 chars) */
    cf_str scope;            /* ingest | feedback | read */
    cf_str deployments;      /* JSON array of deployment ids; "[]": every deployment */
    int64_t created_at;      /* 0 on insert: now */
    int64_t last_used_at;    /* CF_NULL_INT: never used */
    int64_t revoked_at;      /* CF_NULL_INT: live */
} cf_api_key;

/* list_keys' callback: one key (strings valid during the call); a non-zero
 * return stops the listing and is returned. */
typedef int (*cf_key_fn)(void *ud, const cf_api_key *key);

/* Checks what every backend requires of a new key (CF_EINVAL naming the
 * field): a name of 1-128 bytes, a public id, a 64-hex-digit hash, a
 * known scope, deployments as JSON array text. */
int cf_api_key_check(const cf_api_key *k, cf_err *err);
/* ---- data lifecycle -----------------------------------------------------------
 * Retention, forgetting one user, the deletion audit and backups
 * (cf_store_lifecycle.c above the vtable; <b>_lifecycle.c per backend).
 *
 * The cascade is one table-driven list: an inference event's dependents,
 * and theirs, each named with the column that holds its parent's id.
 * Deleting events deletes their dependents first, deepest first, in the
 * same batch, so no dependent row is ever left pointing at a deleted
 * parent. A new table that points at events is one row in cf_life_deps. */

typedef struct cf_life_dep {
    const char *table;   /* the dependent table */
    const char *column;  /* its column holding the parent's id */
    const char *parent;  /* "inference_events" or an earlier row's table */
} cf_life_dep;

/* The dependents, deepest first (a row's children come before it). */
extern const cf_life_dep cf_life_deps[];
extern const size_t cf_life_ndeps;

/* Every table lifecycle counts rows of, in report order: inference_events,
 * the dependents, then the tables purged on their own age. */
#define CF_LIFE_MAX_TABLES 16
extern const char *const cf_life_tables[];
extern const size_t cf_life_ntables;
/* The index of a table in cf_life_tables, or -1. */
int cf_life_table_index(const char *table);

/* Rows removed (or, on a dry run, that would be), per cf_life_tables; and,
 * for a guarded purge (cf_purge.guard), what its first batch found. */
typedef struct cf_life_counts {
    int64_t n[CF_LIFE_MAX_TABLES];
    int blocked;     /* the guard held: nothing deleted, no record written */
    int record_done; /* the first batch was the last: its record was written "done" */
} cf_life_counts;

/* What one purge deletes: rows of `table` ("inference_events" with its
 * dependents, or a table purged on its own age: user_signals, scores,
 * drift_results, trigger_events, workflow_runs) that match all of: */
typedef struct cf_purge {
    const char *table;
    cf_str deployment_id;          /* NULL: every deployment */
    const cf_str *except;          /* deployments left alone (their own rules) */
    size_t nexcept;
    int64_t before;                /* inserted (runs: started) before this; CF_NO_TIME: any age */
    const cf_str *user_hashes;     /* events: only these users' (user_id_hash) */
    size_t nusers;
    /* events: keep those with a curated example exported at or after this
     * (INT64_MIN + 1: exported at any time; CF_NO_TIME: keep none). */
    int64_t keep_exported_since;
    int64_t batch_rows;            /* parent rows of the first transaction; later ones
                                      adapt (up to 16x) to hold the lock ~50 ms
                                      (SQLite) or to take ~200 ms (PostgreSQL) */
    int64_t max_batches;           /* stop after this many (0: none): a resumable pause */
    int dry_run;                   /* count, delete nothing */
    /* A deletion audit row (NULL: none) written in the first batch's own
     * transaction, so it is kept exactly when that batch's deletes are
     * (ClickHouse, which has no transactions: just before it), and again
     * by every later batch with its counts (record_base). Not on a dry
     * run. */
    const struct cf_deletion *record;
    /* The record's rows per cf_life_tables from before this purge (a
     * resumed forget's earlier runs). Every batch writes the record, in
     * its own transaction (ClickHouse: right after its deletes), its
     * details (an object without "tables") given "tables": these plus
     * the rows removed so far (cf_life_record_details), so an interrupted
     * purge leaves a record that counts what it removed. */
    int64_t record_base[CF_LIFE_MAX_TABLES];
    /* With a record, on a backend whose vtable sets purge_guards: the
     * first batch deletes nothing and writes no record (out->blocked)
     * when another "running" record of the same action, subject and
     * deployment exists or a selected event has an exported curated
     * example; otherwise, when it is also the last batch, it writes the
     * record "done", finished now, its details' "tables" the rows removed
     * (out->record_done). A forget with nothing to resume and no export
     * to report is then one statement. guard_settings: held too while
     * the store has any of these settings (forget: retired user id keys,
     * whose hashes the purge was not given; preference pair files, which
     * it does not look in). */
    int guard;
    const cf_str *guard_settings;
    size_t nguard_settings;
} cf_purge;

#define CF_LIFE_MAX_GUARD_SETTINGS 4

/* A purge's record's details after so_far rows (NULL: none yet): the
 * record's own details with "tables" set to record_base plus so_far, per
 * cf_life_tables. Appends to out; -1 when out of memory. */
int cf_life_record_details(const cf_purge *p, const cf_life_counts *so_far, cf_buf *out);

#define CF_LIFE_MAX_USERS 8
#define CF_LIFE_MAX_EXCEPT 64

/* Fills a purge with everything unset (no filter, batch 1000). */
void cf_purge_init(cf_purge *p, const char *table);
/* CF_EINVAL unless the purge names a known table and its filters fit it. */
int cf_purge_check(const cf_purge *p, cf_err *err);

/* One exported curated example among a purge's events: its export batch,
 * and the prompt and response its export wrote (the example's own; NULL
 * when it has none). */
typedef struct cf_exported_row {
    cf_str batch_id;
    cf_str curated_id;
    cf_str inference_event_id;
    cf_str prompt;
    cf_str response;
} cf_exported_row;

/* list_user_exports' callback; a non-zero return stops and is returned. */
typedef int (*cf_export_row_fn)(void *ud, const cf_exported_row *row);

/* One row of the deletion audit: never a raw user id. */
typedef struct cf_deletion {
    cf_str id;             /* the record's id (UUIDv7, given) */
    cf_str action;         /* "forget" | "retention" */
    cf_str subject;        /* forget: the user_id_hash; retention: NULL */
    cf_str deployment_id;  /* NULL: every deployment */
    cf_str status;         /* "running" | "done" */
    int64_t started_at;
    int64_t finished_at;   /* CF_NULL_INT while running */
    cf_str details;        /* JSON: rows per table, export batches */
} cf_deletion;

typedef int (*cf_deletion_fn)(void *ud, const cf_deletion *d);

/* ---- the vtable ----------------------------------------------------------
 * Every function returns 0 (or a count) on success and -1 with err set on
 * failure. */

typedef struct cf_store_vt {
    const char *name;  /* "sqlite" */
    /* Applies pending migrations; *applied receives how many. */
    int (*migrate)(cf_store *, int *applied, cf_err *);
    /* Current schema version (0: none). */
    int (*schema_version)(cf_store *, int *version, cf_err *);
    /* The inserts get rows whose id is always set (cf_store_insert.c).
     * One transaction. Events: an id is one event, so a row whose id is
     * already stored (or named earlier in the same batch) is that event
     * again and its content is not compared: with dup NULL such a row
     * refuses the whole batch (CF_EINVAL naming the id; nothing written);
     * with dup (n bytes) it is skipped, the stored copy (or the batch's
     * first) wins, and dup[i] says 1 for skipped rows, 0 for rows written.
     * Returns the rows written. */
    int (*insert_events)(cf_store *, const cf_event *, size_t n, unsigned char *dup, cf_err *);
    /* Fails with CF_ENOTFOUND when the event does not exist. */
    int (*insert_signal)(cf_store *, const cf_signal *, cf_err *);
    /* One transaction; CF_ENOTFOUND (and nothing changed) when an id is missing. */
    int (*update_events)(cf_store *, const cf_str *ids, const cf_event_update *,
                         size_t n, cf_err *);
    int (*insert_curated)(cf_store *, const cf_curated *, size_t n, cf_err *);
    int (*mark_curated_exported)(cf_store *, const cf_str *ids, size_t n,
                                 cf_str batch_id, cf_err *);
    int (*insert_drift)(cf_store *, const cf_drift_result *, cf_err *);
    int (*insert_trigger)(cf_store *, const cf_trigger_event *, cf_err *);
    int (*open_cursor)(cf_store *, cf_kind, const cf_query *, cf_cursor **, cf_err *);
    int (*count)(cf_store *, cf_kind, const cf_query *, int64_t *out, cf_err *);
    /* Settings: get (*out NULL when absent, else malloc'd), and an atomic
     * "set unless present" that returns the value that won (malloc'd). */
    int (*kv_get)(cf_store *, const char *key, char **out, cf_err *);
    int (*kv_set)(cf_store *, const char *key, cf_str value, cf_err *);
    int (*kv_get_or_set)(cf_store *, const char *key, cf_str value, char **out, cf_err *);
    void (*close)(cf_store *);
    /* Counts rows of a kind grouped by its type column (signal_type,
     * curation_source, drift_type, trigger_type) among those matching q
     * (deployment_id, since, until). cb runs once per type, in type order;
     * a non-zero return from cb stops and is returned. */
    int (*count_by_type)(cf_store *, cf_kind, const cf_query *, cf_type_count_fn cb, void *ud,
                         cf_err *);
    /* A cursor over the events matching q (deployment_id, since, until,
     * limit; oldest first) that have no quality_score. */
    int (*open_unscored_cursor)(cf_store *, const cf_query *, cf_cursor **, cf_err *);
    /* Streams the given columns of the inference events matching q (its
     * deployment_id, since, until, order, limit, offset). */
    int (*open_columns)(cf_store *, const cf_query *, const cf_column *cols, size_t ncols,
                        cf_colscan **out, cf_err *);
    /* Marks as exported with batch_id the curated examples whose ids
     * next(ctx, &id, err) yields (1: an id, 0: the end, -1: failed), in
     * one transaction: all of them or, on any failure, none. *marked
     * receives how many of the ids exist. For exports of any size: the ids
     * stream from the caller (a spill file), never a list in memory. */
    int (*mark_curated_exported_stream)(cf_store *,
                                        int (*next)(void *ctx, cf_str *id, cf_err *),
                                        void *ctx, cf_str batch_id, int64_t *marked,
                                        cf_err *);
    /* Curation. A light scan over the inference events matching q
     * (deployment_id, since, until, order, limit, offset); `want` is a set
     * of CF_LIGHT_* bits. */
    int (*open_light_events)(cf_store *, const cf_query *q, unsigned want, cf_light_scan **out,
                             cf_err *);
    /* The query plans of the statements that open_light_events(q, want)
     * would run, one step at a time to cb: stmt "events" for the scan,
     * "signals" for the signal counts CF_LIGHT_SIGNALS reads; detail as the
     * database describes the step. For tests of the plans. NULL: the
     * backend does not show them. */
    int (*plan_light_events)(cf_store *, const cf_query *q, unsigned want, cf_plan_fn cb,
                             void *ud, cf_err *);
    /* Events by id, for the one cursor above the vtable
     * (cf_store_open_events_by_ids): a cursor (kind events, no signals) over
     * the stored events among ids[0..n) (all present, n at most
     * events_page), in the order given. NULL: that cursor reads each id
     * through open_cursor (q.id, limit 1). */
    int (*open_events_page)(cf_store *, const cf_str *ids, size_t n, cf_cursor **out,
                            cf_err *);
    size_t events_page;  /* ids per open_events_page call (0: 1) */
    /* Inserts the curated examples whose inference event has no curated
     * example yet (stored before, or earlier in this batch), in one
     * transaction: all of those or, on failure, none. inserted[i] (when
     * not NULL) is set to 1 for rows written, 0 for rows skipped;
     * *count receives how many were written. */
    int (*insert_curated_new)(cf_store *, const cf_curated *, size_t n, unsigned char *inserted,
                              int64_t *count, cf_err *);
    /* When the deployment's curated examples were last exported (the
     * latest export mark, or the update time of a row inserted as
     * exported); CF_NO_TIME when never. */
    int (*last_export_at)(cf_store *, cf_str deployment_id, int64_t *at, cf_err *);
    /* Records a workflow run. A "running" run is a lease: it is inserted
     * only when no other run of the same name is running with a lease that
     * has not expired (*acquired = 1; else 0 and nothing is inserted);
     * running runs of that name whose lease expired are first marked
     * "abandoned" (finished at their lease's end). A run of any other
     * status is inserted as given (*acquired = 1). One transaction. */
    int (*insert_run)(cf_store *, const cf_workflow_run *, int *acquired, cf_err *);
    /* Updates a run by id: status, finished_at, lease_until, error, details
     * (all of them, as given). CF_ENOTFOUND when the id is unknown. */
    int (*update_run)(cf_store *, const cf_workflow_run *, cf_err *);
    /* The runs of one schedule (name.p NULL: of every schedule), newest
     * first (by started_at), at most limit (< 0: all). */
    int (*list_runs)(cf_store *, cf_str name, int64_t limit, cf_run_fn cb, void *ud, cf_err *);
    /* Claims for c->token, atomically with respect to other claims, the
     * curated examples of c->deployment_id (not exported unless
     * c->include_exported; oldest first, at most c->limit) that no live
     * claim holds; *claimed receives how many. Claims whose `until` has
     * passed do not count. A row is held by at most one live claim. */
    int (*claim_curated)(cf_store *, const cf_claim *c, int64_t *claimed, cf_err *);
    /* Drops every claim of the token (those rows are claimable again). */
    int (*release_curated_claim)(cf_store *, cf_str deployment_id, cf_str token, cf_err *);
    /* API keys. insert_key: CF_EINVAL when the name is taken (revoked keys
     * keep theirs). list_keys: every key, revoked ones too, by name.
     * revoke_key: sets revoked_at (a key revoked already keeps its first
     * time); CF_ENOTFOUND for an unknown name. touch_key: last_used_at
     * becomes at (unless later already) for the key with that public id;
     * an unknown id changes nothing. */
    int (*insert_key)(cf_store *, const cf_api_key *, cf_err *);
    int (*list_keys)(cf_store *, cf_key_fn cb, void *ud, cf_err *);
    int (*revoke_key)(cf_store *, cf_str name, int64_t at, cf_err *);
    int (*touch_key)(cf_store *, cf_str public_id, int64_t at, cf_err *);
    /* Scores (<backend>_scores.c). insert_score gets a checked row with its
     * id set (cf_store_insert_score); CF_ENOTFOUND when the event does not
     * exist, CF_EINVAL when a score with that id is already stored. */
    int (*insert_score)(cf_store *, const cf_score *, cf_err *);
    /* The scores matching q, to cb. */
    int (*list_scores)(cf_store *, const cf_score_query *q, cf_score_list_fn cb, void *ud, cf_err *);
    /* Lifecycle (<b>_lifecycle.c). Deletes what p selects in batches of
     * p->batch_rows parent rows, each batch with its dependents in one
     * short transaction; adds the rows removed per table to *out. A purge
     * interrupted (or paused by max_batches) resumes by running it again. */
    int (*purge)(cf_store *, const cf_purge *p, cf_life_counts *out, cf_err *);
    int purge_guards; /* 1: purge honours cf_purge.guard */
    /* The exported curated examples of the events p selects (table
     * inference_events), by export batch. */
    int (*list_user_exports)(cf_store *, const cf_purge *p, cf_export_row_fn cb, void *ud,
                             cf_err *);
    /* Dependent rows whose parent does not exist, per table (a check). */
    int (*count_orphans)(cf_store *, cf_life_counts *out, cf_err *);
    /* Inserts the deletion record, or updates status, finished_at and
     * details of the record with its id. */
    int (*put_deletion)(cf_store *, const cf_deletion *, cf_err *);
    /* Deletion records, newest first, at most limit (< 0: all); status
     * not NULL: only the records in that status (a forget looks for its
     * running record among them however many others were written since). */
    int (*list_deletions)(cf_store *, int64_t limit, const char *status, cf_deletion_fn cb,
                          void *ud, cf_err *);
    /* A consistent copy of the database at path while writers run, and
     * the database replaced by such a copy. NULL: the backend has its own
     * tools (pg_dump, ClickHouse BACKUP). */
    int (*backup)(cf_store *, const char *path, cf_err *);
    int (*restore)(cf_store *, const char *path, cf_err *);
    /* The deployments that have events, each once, in ascending order, to
     * cb (read from the events' deployment index, not row by row); a
     * non-zero return from cb stops and is returned. */
    int (*list_deployments)(cf_store *, cf_name_fn cb, void *ud, cf_err *);
    /* The events whose metadata.response_id (an OTLP span's
     * gen_ai.response.id) is one of resp[0..n): cb(response id, event id)
     * for each, oldest first, so the newest of a repeated response id
     * comes last; a non-zero return from cb stops and is returned. No
     * index holds the response id: a scan of the events, for the OTLP
     * evaluation scores whose event the server no longer remembers. */
    int (*events_by_response_id)(cf_store *, const cf_str *resp, size_t n, cf_ref_fn cb,
                                 void *ud, cf_err *);
    /* The cheapest round trip showing the database would take a write now
     * (a readiness check): SQLite takes its write lock and gives it back,
     * waiting up to the busy timeout. NULL: schema_version is asked. */
    int (*ping)(cf_store *, cf_err *);
} cf_store_vt;

struct cf_store {
    const cf_store_vt *vt;
};

typedef struct cf_cursor_vt {
    int (*next)(cf_cursor *, cf_row *, cf_err *);  /* 1 row, 0 end, -1 error */
    void (*close)(cf_cursor *);
} cf_cursor_vt;

struct cf_cursor {
    const cf_cursor_vt *vt;
    cf_kind kind;
};

/* ---- opening -------------------------------------------------------------- */

typedef struct cf_store_opts {
    int busy_timeout_ms;  /* how long a writer waits for a lock; 0: 5000 */
    int cache_kb;         /* SQLite: this connection's page cache in KiB; 0: SQLite's
                             2 MiB (the other backends have no such cache) */
} cf_store_opts;

/* The storage schemes: one row per URL prefix a backend answers to, like
 * SQLite's VFS list or curl's backend table. Adding a backend is its own
 * files plus one row in cf_store_schemes (cf_store_schemes.c). */
typedef struct cf_store_scheme {
    const char *prefix;   /* "sqlite:", "postgres://", ...: how its URLs start */
    const char *backend;  /* the backend's name ("sqlite", "postgres", "clickhouse") */
    const char *usage;    /* the URL form for messages; NULL: an alias, not listed */
    /* The target the backend opens, from the whole URL (NULL: the URL itself,
     * which the backend parses and reports on). */
    int (*target)(const char *url, char *out, size_t cap, cf_err *err);
    int (*open)(const char *target, const cf_store_opts *opts, cf_store **out,
                cf_err *err);
} cf_store_scheme;

/* The registered schemes, ending with a row whose prefix is NULL. */
extern const cf_store_scheme cf_store_schemes[];

typedef struct cf_store_url {
    const cf_store_scheme *scheme;  /* the row whose prefix the URL starts with */
    char target[4096];  /* sqlite: the file path (or ":memory:"); others: the URL */
} cf_store_url;

/* Finds the scheme row whose prefix starts the URL and fills its target;
 * CF_EINVAL listing the registered URL forms when no row matches. */
int cf_store_parse_url(const char *url, cf_store_url *out, cf_err *err);
/* 1 when a connection opened on u sees a database no other connection
 * does: SQLite's ":memory:" (an empty path is no URL: parsing refuses it). */
int cf_store_url_private(const cf_store_url *u);
/* The URL (or a message holding URLs, or a libpq key=value string) for
 * output: every password becomes ***: a URL's userinfo password
 * (scheme://user:PASSWORD@host, up to the last '@' before the path), a
 * password or sslpassword parameter of a URL query (?password=...; the key
 * may be percent-encoded) and of a key=value string (password=... or
 * password='...'). Truncated to cap bytes with its terminator. */
void cf_store_redact_url(const char *url, char *out, size_t cap);
/* The passwords url carries, in the forms cf_store_redact_url finds, each
 * as written and percent-decoded when that differs: malloc'd copies in
 * out[0..*n), at most max. -1 when out of memory (the copies made so far
 * are in out[0..*n) to free). */
int cf_store_url_secrets(const char *url, char **out, size_t max, size_t *n);
/* Replaces, in msg (a buffer of cap bytes), every occurrence of secret
 * that stands as a token of its own with ***: not next to a letter, a
 * digit, a non-ASCII byte or a repeat of the secret's edge byte (so "st"
 * is not found in "PostgreSQL", nor "*" in "***"). The message is read
 * once from a copy and written within cap, so a replacement is never
 * matched again and never overruns. Returns the number replaced. */
size_t cf_store_scrub(char *msg, size_t cap, const char *secret);

/* Opens the store a URL names, through its scheme row. */
int cf_store_open(const char *url, const cf_store_opts *opts, cf_store **out, cf_err *err);

/* A backend's migrate refuses a database whose recorded schema version
 * (found) is above the newest migration it knows (known), writing nothing:
 * this sets err (CF_EUNSUPPORTED, naming both versions) and returns -1. */
int cf_store_refuse_newer_schema(int found, int known, cf_err *err);

/* ---- calls (thin dispatch through the vtable) ------------------------------ */

static inline int cf_store_migrate(cf_store *s, int *applied, cf_err *e)
{ return s->vt->migrate(s, applied, e); }
static inline int cf_store_schema_version(cf_store *s, int *v, cf_err *e)
{ return s->vt->schema_version(s, v, e); }
static inline int cf_store_ping(cf_store *s, cf_err *e)
{
    int v;
    return s->vt->ping ? s->vt->ping(s, e) : s->vt->schema_version(s, &v, e);
}
/* The inserts (cf_store_insert.c) give every row without an id a fresh
 * UUIDv7, then dispatch. ids (when not NULL) receives each event's id
 * (37 bytes each). dup: NULL refuses a batch naming an id already stored,
 * else rows with such ids are skipped and flagged in it (see the vtable's
 * insert_events); returns the rows written. */
int cf_store_insert_events(cf_store *s, const cf_event *ev, size_t n, char (*ids)[37],
                           unsigned char *dup, cf_err *e);
/* The single-row inserts check the required fields here, for every
 * backend (CF_EINVAL naming them); id (when not NULL) receives the row's. */
int cf_store_insert_signal(cf_store *s, const cf_signal *sig, char id[37], cf_err *e);
static inline int cf_store_update_events(cf_store *s, const cf_str *ids,
                                         const cf_event_update *u, size_t n, cf_err *e)
{ return s->vt->update_events(s, ids, u, n, e); }
int cf_store_insert_curated(cf_store *s, const cf_curated *c, size_t n, cf_err *e);
static inline int cf_store_mark_curated_exported(cf_store *s, const cf_str *ids, size_t n,
                                                 cf_str batch, cf_err *e)
{ return s->vt->mark_curated_exported(s, ids, n, batch, e); }
int cf_store_insert_drift(cf_store *s, const cf_drift_result *d, char id[37], cf_err *e);
int cf_store_insert_trigger(cf_store *s, const cf_trigger_event *t, char id[37], cf_err *e);
static inline int cf_store_open_cursor(cf_store *s, cf_kind k, const cf_query *q,
                                       cf_cursor **c, cf_err *e)
{ return s->vt->open_cursor(s, k, q, c, e); }
static inline int cf_store_count(cf_store *s, cf_kind k, const cf_query *q, int64_t *n, cf_err *e)
{ return s->vt->count(s, k, q, n, e); }
static inline int cf_store_kv_get(cf_store *s, const char *k, char **out, cf_err *e)
{ return s->vt->kv_get(s, k, out, e); }
static inline int cf_store_kv_set(cf_store *s, const char *k, cf_str v, cf_err *e)
{ return s->vt->kv_set(s, k, v, e); }
static inline int cf_store_kv_get_or_set(cf_store *s, const char *k, cf_str v, char **out, cf_err *e)
{ return s->vt->kv_get_or_set(s, k, v, out, e); }
static inline int cf_store_count_by_type(cf_store *s, cf_kind k, const cf_query *q,
                                         cf_type_count_fn cb, void *ud, cf_err *e)
{ return s->vt->count_by_type(s, k, q, cb, ud, e); }
static inline int cf_store_open_unscored_cursor(cf_store *s, const cf_query *q, cf_cursor **c,
                                                cf_err *e)
{ return s->vt->open_unscored_cursor(s, q, c, e); }
static inline void cf_store_close(cf_store *s)
{ if (s) s->vt->close(s); }
static inline int cf_store_mark_curated_exported_stream(
    cf_store *s, int (*next)(void *, cf_str *, cf_err *), void *ctx, cf_str batch,
    int64_t *marked, cf_err *e)
{ return s->vt->mark_curated_exported_stream(s, next, ctx, batch, marked, e); }

/* id (when not NULL) receives the run's id when *acquired. */
int cf_store_insert_run(cf_store *s, const cf_workflow_run *r, char id[37], int *acquired,
                        cf_err *e);
static inline int cf_store_update_run(cf_store *s, const cf_workflow_run *r, cf_err *e)
{ return s->vt->update_run(s, r, e); }
static inline int cf_store_list_runs(cf_store *s, cf_str name, int64_t limit, cf_run_fn cb,
                                     void *ud, cf_err *e)
{ return s->vt->list_runs(s, name, limit, cb, ud, e); }

static inline int cf_cursor_next(cf_cursor *c, cf_row *row, cf_err *e)
{ return c->vt->next(c, row, e); }
static inline void cf_cursor_close(cf_cursor *c)
{ if (c) c->vt->close(c); }
static inline int cf_store_open_columns(cf_store *s, const cf_query *q, const cf_column *cols,
                                        size_t n, cf_colscan **out, cf_err *e)
{ return s->vt->open_columns(s, q, cols, n, out, e); }
static inline int cf_colscan_next(cf_colscan *c, cf_colval *vals, cf_err *e)
{ return c->vt->next(c, vals, e); }
static inline void cf_colscan_close(cf_colscan *c)
{ if (c) c->vt->close(c); }

static inline int cf_store_open_light_events(cf_store *s, const cf_query *q, unsigned want,
                                             cf_light_scan **out, cf_err *e)
{ return s->vt->open_light_events(s, q, want, out, e); }
static inline int cf_store_plan_light_events(cf_store *s, const cf_query *q, unsigned want,
                                             cf_plan_fn cb, void *ud, cf_err *e)
{
    if (!s->vt->plan_light_events)
        return cf_fail(e, CF_EUNSUPPORTED, "this backend does not show query plans");
    return s->vt->plan_light_events(s, q, want, cb, ud, e);
}
static inline int cf_light_scan_next(cf_light_scan *c, cf_light_event *row, cf_err *e)
{ return c->vt->next(c, row, e); }
static inline void cf_light_scan_close(cf_light_scan *c)
{ if (c) c->vt->close(c); }
/* A cursor (kind events, no signals) over the events with these ids, in
 * the order given; ids that do not exist are skipped, a missing one
 * (p NULL) is CF_EINVAL (cf_store_byids.c). */
int cf_store_open_events_by_ids(cf_store *s, const cf_str *ids, size_t n, cf_cursor **out,
                                cf_err *e);
int cf_store_insert_curated_new(cf_store *s, const cf_curated *c, size_t n,
                                unsigned char *inserted, int64_t *count, cf_err *e);
static inline int cf_store_last_export_at(cf_store *s, cf_str deployment_id, int64_t *at,
                                          cf_err *e)
{ return s->vt->last_export_at(s, deployment_id, at, e); }

static inline int cf_store_claim_curated(cf_store *s, const cf_claim *c, int64_t *claimed,
                                         cf_err *e)
{ return s->vt->claim_curated(s, c, claimed, e); }
static inline int cf_store_release_curated_claim(cf_store *s, cf_str deployment_id,
                                                 cf_str token, cf_err *e)
{ return s->vt->release_curated_claim(s, deployment_id, token, e); }

/* Checks the key (cf_api_key_check), then dispatches. */
int cf_store_insert_key(cf_store *s, const cf_api_key *k, cf_err *e);
static inline int cf_store_list_keys(cf_store *s, cf_key_fn cb, void *ud, cf_err *e)
{ return s->vt->list_keys(s, cb, ud, e); }
static inline int cf_store_revoke_key(cf_store *s, cf_str name, int64_t at, cf_err *e)
{ return s->vt->revoke_key(s, name, at, e); }
static inline int cf_store_touch_key(cf_store *s, cf_str public_id, int64_t at, cf_err *e)
{ return s->vt->touch_key(s, public_id, at, e); }
/* Checks the score (cf_score_check), gives it a UUIDv7 when it has no id,
 * and inserts it; id (when not NULL) receives its id. */
int cf_store_insert_score(cf_store *s, const cf_score *score, char id[37], cf_err *e);
static inline int cf_store_list_scores(cf_store *s, const cf_score_query *q, cf_score_list_fn cb,
                                       void *ud, cf_err *e)
{ return s->vt->list_scores(s, q, cb, ud, e); }
/* Lifecycle calls: check the request, then dispatch; CF_EUNSUPPORTED on
 * a backend without the entry (backup and restore: pg_dump, BACKUP). */
int cf_store_purge(cf_store *s, const cf_purge *p, cf_life_counts *out, cf_err *e);
/* 1 when the backend's purge honours cf_purge.guard. */
int cf_store_purge_guards(const cf_store *s);
int cf_store_list_user_exports(cf_store *s, const cf_purge *p, cf_export_row_fn cb, void *ud,
                               cf_err *e);
int cf_store_count_orphans(cf_store *s, cf_life_counts *out, cf_err *e);
int cf_store_put_deletion(cf_store *s, const cf_deletion *d, cf_err *e);
int cf_store_list_deletions(cf_store *s, int64_t limit, const char *status, cf_deletion_fn cb,
                            void *ud, cf_err *e);
int cf_store_backup(cf_store *s, const char *path, cf_err *e);
int cf_store_restore(cf_store *s, const char *path, cf_err *e);
static inline int cf_store_list_deployments(cf_store *s, cf_name_fn cb, void *ud, cf_err *e)
{ return s->vt->list_deployments(s, cb, ud, e); }
static inline int cf_store_events_by_response_id(cf_store *s, const cf_str *resp, size_t n,
                                                 cf_ref_fn cb, void *ud, cf_err *e)
{ return s->vt->events_by_response_id(s, resp, n, cb, ud, e); }

/* Name of a kind as used from Lua: "events", "signals", "curated",
 * "drift", "triggers". */
const char *cf_kind_name(cf_kind k);
int cf_kind_from_name(const char *name, cf_kind *out);

#endif
