/*
 * Bulk ingestion of a JSON-lines stream into a pipeline: one event per
 * line, the same validation as log_inference. Blank lines are skipped; a
 * '\r' before '\n' is ignored; a UTF-8 byte order mark (EF BB BF) at the
 * start of the stream is skipped (anywhere else it is named in the line's
 * rejection). Each rejected line (not JSON, invalid, too
 * long) goes to on_reject with its line number, its text and the reason;
 * rows the database refuses later come through on_report (kind
 * CF_REPORT_REFUSED, tag = the line number) with every other report.
 *
 * Exactly once: with a source name, a line without an id gets one derived
 * from the name, its line number and its bytes (cf_line_id.h), so a second
 * run over the same input derives the same ids and the store skips the
 * lines already stored (counted in duplicates, not rejected). Lines with
 * their own id keep it.
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
    const char *source;                   /* derived ids from this name (NULL: none) */
    size_t source_n;
} cf_bulk_opts;

typedef struct cf_bulk_result {
    uint64_t lines;      /* read, blank ones included */
    uint64_t accepted;   /* handed to the buffer */
    uint64_t rejected;   /* by validation (the database's refusals come as reports) */
    uint64_t full;       /* of those, rejected because the buffer was full */
    uint64_t unwritten;  /* accepted, then given up on (database unwritable too long) */
    uint64_t lost;       /* of those, not kept in the dead-letter file either */
    uint64_t duplicates; /* accepted, then skipped: their id was already stored */
    uint64_t bytes;
    int interrupted;
} cf_bulk_result;

/* Reads fd to its end (or until *stop), then flushes, with the pipeline
 * bounded (cf_ingest_set_bounded) meanwhile: a database that stays
 * unwritable for shutdown_timeout_ms gets the rest as dead letters instead
 * of being waited for forever. -1 with err when reading fails or the
 * pipeline closes; the result says how far it got. */
int cf_ingest_fd(cf_ingest *g, int fd, const cf_bulk_opts *o, cf_bulk_result *res, cf_err *err);

#endif
