/*
 * An accepted event: validated, sanitized, its user id hashed, and copied
 * into one allocation that the ring buffer and the flusher own. Nothing
 * raw (PII, the user id) outlives cf_record_prepare.
 *
 * The quality hook (issue 4): when cf_prepare_cfg.scorer.score is set and
 * an event arrives without a quality_score, it is called on the producer's
 * thread, after sanitizing, with the event as it will be stored; a result
 * in [0, 1] becomes the event's quality_score (and the checks it reports
 * its quality_checks), anything else (NaN, out of range) leaves it absent
 * and is counted as a scorer error. It must be
 * thread-safe when several producers push.
 */
#ifndef CRUCIBLE_CF_RECORD_H
#define CRUCIBLE_CF_RECORD_H

#include "crucible/ingest/cf_hmac.h"
#include "crucible/sanitize/cf_sanitize.h"
#include "crucible/ingest/cf_validate.h"

/* A score for ev; *checks receives the stored bits of the checks that gave
 * it (cf_event.quality_checks; 0 when none). */
typedef double (*cf_score_fn)(void *ud, const cf_event *ev, uint32_t *checks);

typedef struct cf_ingest_scorer {
    cf_score_fn score; /* NULL: off */
    void *ud;
} cf_ingest_scorer;

/* Lua metatable name for a userdata that starts with a cf_ingest_scorer:
 * what a feature hands to the ingestion (ctx.set_ingest_scorer). */
#define CF_INGEST_SCORER_MT "crucible.IngestScorer"

/* Recycled record memory: the flusher gives records back, producers take
 * them again, so the steady state allocates nothing. Size classes of 512
 * bytes up to 64 KiB; keeps at most max_bytes. Thread-safe. */
typedef struct cf_record_pool cf_record_pool;
cf_record_pool *cf_record_pool_new(size_t max_bytes);
/* Frees the pool's cached memory; records still out must be freed first. */
void cf_record_pool_free(cf_record_pool *p);

typedef struct cf_prepare_cfg {
    cf_record_pool *pool;         /* NULL: malloc */
    const cf_sanitizer *san;
    const cf_hmac *hmac;          /* required when events carry user_id */
    int sanitize_metadata;        /* string values of metadata */
    size_t max_event_bytes;       /* 0: no bound */
    cf_ingest_scorer scorer;
} cf_prepare_cfg;

typedef struct cf_record {
    struct cf_record *next_free; /* in the pool */
    cf_record_pool *pool;        /* where it goes back */
    uint64_t tag;        /* the producer's: a JSONL line number, 0 from the API */
    size_t bytes;        /* the allocation's size, for the buffer's byte budget */
    cf_event ev;         /* strings point into data */
    int scored;          /* quality_score came from the scorer */
    int score_error;     /* the scorer returned something unusable */
    char data[];
} cf_record;

/* Per-producer working memory. */
typedef struct cf_prepare_scratch cf_prepare_scratch;
cf_prepare_scratch *cf_prepare_scratch_new(void);
void cf_prepare_scratch_free(cf_prepare_scratch *ps);

/*
 * Validates in, sanitizes prompt, response and (when on) metadata, hashes
 * user_id, gives the event its id (UUIDv7 unless the caller gave one) and
 * its inserted_at (now unless given), asks the scorer, and returns the
 * record in *out (free with cf_record_free). counts (nkinds slots of the
 * sanitizer) receives the redactions. Invalid input: -1, CF_EINVAL, every
 * problem in v and their summary in err.
 */
int cf_record_prepare(const cf_prepare_cfg *cfg, const cf_event_in *in, cf_prepare_scratch *ps,
                      uint64_t tag, cf_record **out, uint32_t *counts, cf_verrors *v,
                      cf_err *err);

/* Frees (or recycles) records. */
void cf_record_free(cf_record *r);
void cf_record_free_all(cf_record **r, size_t n);

#endif
