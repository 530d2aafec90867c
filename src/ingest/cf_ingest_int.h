/* Internal to the ingestion pipeline: shared by cf_ingest.c (lifecycle,
 * producers, stats, reports) and cf_ingest_flush.c (the flusher). */
#ifndef CRUCIBLE_CF_INGEST_INT_H
#define CRUCIBLE_CF_INGEST_INT_H

#include "cf_forgotten.h"
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

#include "crucible/ingest/cf_ingest.h"

#define CF_MAX_KINDS 72 /* built-in entities + user patterns */

struct cf_ingest {
    cf_ingest_opts o;
    char *store_url, *dead_letter_path;
    cf_store *store;               /* the flusher's connection */
    cf_ring *ring;
    cf_hmac *hmac;
    cf_record_pool *pool;
    pthread_mutex_t cfg_mu;        /* guards prep.scorer */
    cf_prepare_cfg prep;
    pthread_t thread;
    int thread_started;
    pthread_mutex_t mu;            /* stats strings, reports, finished */
    pthread_cond_t finished_cv;
    int finished;                  /* the flusher has left its loop */
    _Atomic int64_t close_deadline_ns; /* 0 while open */
    /* counters */
    _Atomic uint64_t accepted, invalid, rejected_full, scored, score_errors;
    _Atomic uint64_t flushed, batches, retried, refused, dead_lettered, lost, timed_out;
    _Atomic uint64_t duplicates;   /* skipped: their id was already stored */
    _Atomic uint64_t erased;       /* dropped: their user was forgotten (cf_ingest_forget) */
    /* users forgotten while this pipeline runs; NULL until the first */
    pthread_mutex_t forget_mu;
    cf_forgotten *forgotten;
    _Atomic size_t nforgotten;
    _Atomic int64_t fail_since_ns; /* when the writes started failing (0: they are not) */
    _Atomic int bounded;           /* see cf_ingest_set_bounded */
    _Atomic uint64_t redactions[CF_MAX_KINDS];
    _Atomic int64_t last_flush_ns;
    char last_error[256];
    /* reports for the owner's thread */
    _Atomic int reports_pending;
    cf_ingest_report *rep_head, *rep_tail;
    size_t nreports;
    /* flusher-only state */
    cf_record **batch;
    cf_event *evbuf;
    unsigned char *state;
    unsigned char *dup;            /* the store's duplicate flags for one write */
    FILE *dead_letter;
    int told_unwritten;            /* this outage's dead-lettering was told on stderr */
};

/* Counts events lost by any pipeline (cf_ingest_lost_total). */
void cf_ingest_note_lost(uint64_t n);

/* The flusher thread's body (cf_ingest_flush.c). */
void *cf_ingest_flusher(void *arg);

/* Queues a report (the message strings are copied). */
void cf_ingest_report_add(cf_ingest *g, const cf_ingest_report *r);

#endif
