/*
 * The ingestion pipeline in C: producers submit raw events (validated,
 * sanitized and hashed on their own thread by cf_record_prepare), the
 * ring buffer holds them, and a background flusher thread with its own
 * storage connection writes them in batches: when max_batch records
 * wait, every flush_interval, on cf_ingest_flush, and when closing or
 * terminating (SIGTERM, exit) -- nothing accepted is dropped.
 *
 * Duplicates: an id is one event. An event whose id is already stored (a
 * client sending it again, bulk ingestion run again over the same file)
 * is skipped by the store and counted (stats.duplicates): the stored copy
 * wins, it is neither refused nor dead-lettered.
 *
 * Write failures: a row the database refuses (CF_EINVAL from the store:
 * a constraint) is isolated by bisecting the batch, so the
 * rest of the batch is written; the refused row goes to the dead-letter
 * file (when set) and is reported. Backends must report row-specific
 * refusals as CF_EINVAL: every other failure means the database is
 * unavailable, and the batch stays owned by the flusher and is retried
 * with exponential backoff (retry_initial_ms doubling up to retry_max_ms),
 * reported each time. When closing, retries continue until
 * shutdown_timeout_ms; what still cannot be written then goes to the
 * dead-letter file (bulk ingestion bounds the wait the same way, see
 * cf_ingest_set_bounded). An event that no dead-letter file takes is lost:
 * counted, reported, and told on stderr.
 *
 * The flusher never touches Lua: what Lua should hear about (flushes,
 * retries, refused rows) queues as reports for the owner's thread
 * (cf_ingest_take_reports).
 */
#ifndef CRUCIBLE_CF_INGEST_H
#define CRUCIBLE_CF_INGEST_H

#include <signal.h>

#include "crucible/ingest/cf_record.h"
#include "crucible/ingest/cf_ring.h"
#include "crucible/store/cf_store.h"

/* Error codes beyond cf_common.h's, for cf_ingest_submit. */
enum {
    CF_EFULL = 100,  /* the buffer is full (policy reject, or block timed out) */
    CF_ECLOSED       /* the pipeline is closing or terminating */
};

enum { CF_FULL_BLOCK, CF_FULL_REJECT };

typedef struct cf_ingest_opts {
    const char *store_url;          /* the flusher's own connection */
    cf_store_opts store_opts;
    size_t capacity;                /* events in the buffer */
    size_t max_bytes;               /* and their bytes (0: no bound) */
    size_t max_batch;
    int64_t flush_interval_ms;
    int full_policy;                /* CF_FULL_BLOCK or CF_FULL_REJECT */
    int64_t block_timeout_ms;
    int64_t retry_initial_ms, retry_max_ms;
    int64_t shutdown_timeout_ms;
    const char *dead_letter_path;   /* NULL: refused rows are only reported */
    const void *user_id_key;        /* HMAC key (NULL: events with user_id are invalid) */
    size_t user_id_key_len;
    const cf_sanitizer *sanitizer;  /* must outlive the pipeline */
    int sanitize_metadata;
    size_t max_event_bytes;
    int quiet;                      /* no retry notices on stderr */
} cf_ingest_opts;

typedef struct cf_ingest cf_ingest;

/* Opens the flusher's connection (the schema must exist), starts the
 * flusher, registers the SIGTERM/exit drain. */
int cf_ingest_new(const cf_ingest_opts *o, cf_ingest **out, cf_err *err);

/*
 * Accepts one event: prepares it (see cf_record_prepare) and pushes it.
 * id_out (CF_MAX_ID_BYTES + 1 bytes) receives its id. -1 with CF_EINVAL
 * (and v) for an invalid event, CF_EFULL, CF_ECLOSED, or another code.
 * With full_policy "block" a full buffer is waited for up to
 * block_timeout_ms. patient (bulk ingestion; NULL: not patient) waits on,
 * block_timeout_ms at a time, until *patient is set (SIGINT) while the
 * database's writes are not failing, or while they fail and the pipeline is
 * bounded (cf_ingest_set_bounded: the flusher frees the buffer by the
 * deadline): a database slower than the reader is waited for; one that is
 * failing gets CF_EFULL after block_timeout_ms unless bounded.
 * Thread-safe; each producer thread passes its own scratch.
 */
int cf_ingest_submit(cf_ingest *g, const cf_event_in *in, cf_prepare_scratch *ps, uint64_t tag,
                     volatile sig_atomic_t *patient, char *id_out, cf_verrors *v,
                     cf_err *err);

/* Waits until every event accepted before the call is written (or
 * dead-lettered). -1 with the database's message when writes are failing
 * (they keep being retried in the background). */
int cf_ingest_flush(cf_ingest *g, int64_t timeout_ms, cf_err *err);

/* The quality hook (see cf_record.h); NULL score turns it off. */
void cf_ingest_set_scorer(cf_ingest *g, cf_ingest_scorer scorer);

/* Bulk ingestion's bound on a database that stays unwritable (on = 1
 * while a bulk run reads and drains, 0 after): while set, once writes have
 * failed for shutdown_timeout_ms in a row, the flusher stops retrying;
 * what it holds, and every later batch whose one write attempt fails,
 * goes to the dead-letter file (or is lost when there is none). A
 * successful write starts the count again. */
void cf_ingest_set_bounded(cf_ingest *g, int on);

/* From now on the flusher drops, instead of writing, the events of the
 * user whose user_id_hash is user_hash, of deployment_id (p NULL: every
 * deployment), stored at or before until (us): a user forgotten by
 * another process while events of theirs wait here or are still to come
 * from a join (stats.erased counts them). */
int cf_ingest_forget(cf_ingest *g, cf_str user_hash, cf_str deployment_id, int64_t until,
                     cf_err *err);

/* The dead-letter file's path (NULL: none). */
const char *cf_ingest_dead_letter_path(const cf_ingest *g);

/* Accepted events that every pipeline of this process lost (neither
 * written nor kept in a dead-letter file), for the exit status. */
uint64_t cf_ingest_lost_total(void);

/* Stops accepting, writes everything, stops the flusher, frees. Signals
 * are held off while it flushes. NULL is fine. */
void cf_ingest_close(cf_ingest *g);

typedef struct cf_ingest_stats {
    uint64_t accepted, invalid, rejected_full;
    uint64_t flushed, batches, retried, refused, dead_lettered, lost;
    uint64_t duplicates;           /* skipped: their id was already stored */
    uint64_t erased;               /* dropped: their user was forgotten (cf_ingest_forget) */
    uint64_t timed_out;            /* given up at a deadline: dead-lettered or lost */
    uint64_t scored, score_errors;
    size_t depth, bytes, inflight, capacity;
    double last_flush_ms;          /* write time of the last batch */
    char last_error[256];          /* "" when none */
    int failing;                   /* the last write attempt failed */
} cf_ingest_stats;
void cf_ingest_stats_get(cf_ingest *g, cf_ingest_stats *out);
/* Redactions per sanitizer kind since the start (nkinds slots). */
void cf_ingest_redactions(cf_ingest *g, uint64_t *out, size_t nkinds);

enum { CF_REPORT_FLUSH, CF_REPORT_RETRY, CF_REPORT_REFUSED, CF_REPORT_LOST };

typedef struct cf_ingest_report {
    int kind;
    uint64_t count;        /* flush: events written; retry: events waiting */
    uint64_t duplicates;   /* flush: events skipped, their id already stored */
    double duration_ms;    /* flush: write time */
    int attempt;           /* retry */
    int64_t retry_in_ms;   /* retry */
    uint64_t tag;          /* refused: the producer's tag */
    char *id;              /* refused */
    char *message;         /* retry, refused, lost */
    char *line;            /* refused: the event as a JSON line */
    int dead_lettered;     /* refused: written to the dead-letter file */
    struct cf_ingest_report *next;
} cf_ingest_report;

/* 1 when reports wait (a cheap check for the hot path). */
int cf_ingest_reports_pending(cf_ingest *g);
/* Takes every waiting report, oldest first (free with
 * cf_ingest_reports_free). */
cf_ingest_report *cf_ingest_take_reports(cf_ingest *g);
void cf_ingest_reports_free(cf_ingest_report *r);

#endif
