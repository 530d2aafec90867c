/* One JSON line to an event input: the bulk-ingest and HTTP front-end of
 * the validator. The top level is parsed here (strings without escapes
 * are not copied); nested values go through jansson. Numbers keep their
 * exact value (integers are int64, never floats); duplicate keys are an
 * error, since one of the two values would be dropped. */
#ifndef CRUCIBLE_CF_JSONL_H
#define CRUCIBLE_CF_JSONL_H

#include "crucible/ingest/cf_validate.h"

typedef struct cf_jsonl_doc {
    void *root;   /* metadata as parsed (json_t) */
    char *meta;   /* metadata's JSON text (malloc'd) */
    char *arena;  /* decoded strings */
} cf_jsonl_doc;

#define CF_JSONL_DOC_INIT {NULL, NULL, NULL}

/*
 * Parses line[0..n) (a trailing newline is fine) into in; in's strings
 * live until cf_jsonl_doc_free. unknown_to_metadata: top-level fields
 * that are not event fields move into metadata (a clash with a metadata
 * key is an error) instead of being reported as unknown. Not JSON, or not
 * an object: -1 with CF_EINVAL and a message giving the column.
 */
int cf_jsonl_parse(const char *line, size_t n, int unknown_to_metadata, cf_jsonl_doc *doc,
                   cf_event_in *in, cf_err *err);
void cf_jsonl_doc_free(cf_jsonl_doc *doc);

/* Appends a prepared event as one JSON line (with '\n') that
 * cf_jsonl_parse reads back to the same event: dead letters, rejects. */
struct cf_buf;
int cf_jsonl_write_event(struct cf_buf *out, const cf_event *ev);

#endif
