/*
 * Bulk ingestion of a JSON-lines stream into a pipeline: one event per
 * line, the same validation as log_inference. Blank lines are skipped; a
 * '\r' before '\n' is ignored. Each rejected line (not JSON, invalid, too
 * long) goes to on_reject with its line number, its text and the reason;
 * rows the database refuses later come through on_report (kind
 * CF_REPORT_REFUSED, tag = the line number) with every other report.
 */
#ifndef CRUCIBLE_CF_INGEST_FILE_H
#define CRUCIBLE_CF_INGEST_FILE_H

#include <signal.h>

#include "crucible/ingest/cf_ingest.h"

typedef struct cf_bulk_opts {
    int unknown_to_metadata;
    size_t max_line;                      /* longer lines are rejected unread */
    volatile sig_atomic_t *stop;          /* set (by a SIGINT handler): stop reading */
    void (*on_reject)(void *ud, uint64_t line, const char *text, size_t n, const char *why);
    void (*on_report)(void *ud, const cf_ingest_report *r);
    void *ud;
} cf_bulk_opts;

typedef struct cf_bulk_result {
    uint64_t lines;      /* read, blank ones included */
    uint64_t accepted;   /* handed to the buffer */
    uint64_t rejected;   /* by validation (the database's refusals come as reports) */
    uint64_t bytes;
    int interrupted;
} cf_bulk_result;

/* Reads fd to its end (or until *stop), then flushes. -1 with err when
 * reading fails or the pipeline closes; the result says how far it got. */
int cf_ingest_fd(cf_ingest *g, int fd, const cf_bulk_opts *o, cf_bulk_result *res, cf_err *err);

#endif
