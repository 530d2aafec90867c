/*
 * The ids bulk ingestion derives for lines that carry none, so that
 * ingesting the same file again (after a crash, a kill -9, an interrupted
 * run) stores each line once: the second run derives the same ids, and
 * the store skips ids it already has (see cf_ingest.h, duplicates).
 *
 * A line's id is a UUID (version 8, RFC 9562) whose 122 free bits are, in
 * order: 32 bits of the source's digest (SHA-256 over a fixed tag and the
 * source's name: the file's absolute path, or a name the user gives), the
 * line's number (40 bits), and 50 bits of the line's digest (SHA-256 over
 * the tag, the name, the line's number and the line's bytes, without its
 * '\r' and the stream's byte order mark). The ids of one file thus ascend
 * with its lines, so the store's id index takes them at one place, as it
 * does time-ordered UUIDv7, instead of at random places (which made bulk
 * ingestion a third slower on SQLite). What each part is for:
 *  - the name: the same line of two different files is two events;
 *  - the number: two identical lines of one file are two events (a log
 *    may hold the same exchange twice), not one;
 *  - the bytes: a file edited between runs (a line changed in place) gets
 *    a new id for the changed line, which is stored, rather than being
 *    taken for the line stored before; lines appended to a file keep the
 *    earlier lines' ids, so re-ingesting a growing file adds only the new
 *    ones.
 */
#ifndef CRUCIBLE_CF_LINE_ID_H
#define CRUCIBLE_CF_LINE_ID_H

#include <stddef.h>
#include <stdint.h>

#include "crucible/core/cf_common.h"

typedef struct cf_line_ids cf_line_ids;

/* For the source named name[0..n) (any bytes). NULL with err on failure. */
cf_line_ids *cf_line_ids_new(const char *name, size_t n, cf_err *err);
void cf_line_ids_free(cf_line_ids *ids);

/* The id of line number `line` (1-based, as counted by bulk ingestion)
 * whose bytes are text[0..n): 36 characters and a NUL in out. 0, or -1
 * with err. */
int cf_line_id(cf_line_ids *ids, uint64_t line, const char *text, size_t n, char out[37],
               cf_err *err);

#endif
