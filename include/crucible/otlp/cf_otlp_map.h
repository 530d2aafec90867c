/*
 * GenAI spans to inference events (the table in docs/otlp.md).
 *
 * cf_otlp_map_event gives the event of one span as the pipeline's own
 * input (cf_event_in), for cf_ingest_submit: validation, the sanitizer,
 * HMAC and the buffer are the same for every front door, and the event is
 * the one cf_jsonl_parse reads from the JSON object that cf_otlp_map_span
 * writes (the form a span waiting in the log join keeps), without writing
 * and parsing that text. Spans that are not model calls
 * (HTTP, tool, retrieval, workflow, agent and embedding spans) give no
 * event. Attribute strings that are not valid UTF-8 get U+FFFD for each
 * bad byte.
 */
#ifndef CRUCIBLE_CF_OTLP_MAP_H
#define CRUCIBLE_CF_OTLP_MAP_H

#include <stdint.h>

#include "crucible/core/cf_buf.h"
#include "crucible/ingest/cf_validate.h"
#include "crucible/otlp/cf_otlp.h"

/* Attributes sorted by key, for lookups by name and by prefix. */
typedef struct cf_otlp_attrs {
    const cf_otlp_kv **kv;
    size_t n;
} cf_otlp_attrs;

/* 0, or -1 when out of memory. kv may be NULL when n is 0. */
int cf_otlp_attrs_index(cf_otlp_attrs *ix, cf_otlp_kv *const *kv, size_t n);
void cf_otlp_attrs_free(cf_otlp_attrs *ix);
/* The value of key, NULL when absent. */
const cf_otlp_any *cf_otlp_attr(const cf_otlp_attrs *ix, const char *key);
/* A string attribute's text, NULL when absent or not a string. */
const char *cf_otlp_attr_str(const cf_otlp_attrs *ix, const char *key);
/* An integer attribute (an int, a whole double or a decimal string):
 * 1 and *out, else 0. */
int cf_otlp_attr_int(const cf_otlp_attrs *ix, const char *key, int64_t *out);
/* The position of the first key starting with prefix (ix->n if none). */
size_t cf_otlp_attrs_prefix(const cf_otlp_attrs *ix, const char *prefix);
/* A value as JSON (a kvlist as an object, bytes as hex). */
int cf_otlp_any_json(cf_buf *b, const cf_otlp_any *v);
/* Lowercase hex of an id ("" when empty). */
void cf_otlp_hex(const ProtobufCBinaryData *id, char *out, size_t cap);

/* The deployment a span of this resource is stored under:
 * crucible.deployment_id, else service.name, else "unknown_service". */
const char *cf_otlp_deployment_of(const cf_otlp_attrs *res);

/* 1: the span's event in out (a JSON object), *content set when the span
 * carried an output message (its response: it waits for no log record);
 * 0: not a model call (nothing written); -1: out of memory. res: the
 * resource's attributes. */
int cf_otlp_map_span(const cf_otlp_attrs *res, const cf_otlp_span *span, cf_buf *out,
                     int *content);

/* A span's event as the pipeline's input, and the storage its strings
 * point into (besides the span's own attributes). Zero it before the
 * first use; each cf_otlp_map_event reuses its buffers; free it with
 * cf_otlp_event_free. */
typedef struct cf_otlp_event {
    cf_event_in in;
    int content;            /* the span carried an output message */
    char id[80];
    cf_buf prompt, response, meta;
    char *meta_json;        /* metadata as cf_jsonl_parse keeps it (malloc'd) */
    char *fixed[6];         /* strings with U+FFFD for bad bytes (malloc'd) */
    int nfixed;
    struct cf_otlp_msgs *msgs; /* the span's input and output messages (made on first use) */
} cf_otlp_event;

#define CF_OTLP_MAP_AS_JSON 2

/* 1: the span's event in ev->in (until the next call on ev, and while
 * the span lives); 0: not a model call; -1: out of memory;
 * CF_OTLP_MAP_AS_JSON: its metadata holds what only jansson reads as
 * cf_jsonl_parse would (fractions, \u escapes, repeated keys in a
 * kvlist): map it with cf_otlp_map_span and parse that. */
int cf_otlp_map_event(const cf_otlp_attrs *res, const cf_otlp_span *span, cf_otlp_event *ev);
void cf_otlp_event_free(cf_otlp_event *ev);

#endif
