/* The pieces of a GenAI span's event, shared by its two writers: the JSON
 * object of cf_otlp_map_span (parked spans wait in the log join as that
 * text) and the pipeline's own input of cf_otlp_map_event (cf_otlp_map.c,
 * cf_otlp_event.c). */
#ifndef CF_OTLP_SPAN_H
#define CF_OTLP_SPAN_H

#include "cf_otlp_msgs.h"

/* The top-level fields other than prompt, response and metadata. */
typedef struct cf_otlp_fields {
    char id[80];           /* "<trace>-<span>" hex, "" when the span has no ids */
    const char *deployment;
    const char *model;     /* NULL when none */
    const char *user;      /* NULL when none */
    int64_t latency;       /* -1 when unknown */
    int has_token_count;
    int64_t token_count;
    int64_t tokens[2];     /* input, output; -1 when not given */
} cf_otlp_fields;

void cf_otlp_fields_of(const cf_otlp_attrs *res, const cf_otlp_attrs *a, const cf_otlp_span *sp,
                       cf_otlp_fields *f);

/* The metadata object's JSON text (compact, no white space). */
void cf_otlp_metadata(cf_buf *b, const cf_otlp_attrs *a, const cf_otlp_span *sp,
                      const cf_otlp_msgs *out, const int64_t tokens[2], int chat);

/* The span's attributes indexed and its messages read: 1 (free all three
 * after), 0 when it is not a model call (nothing to free), -1 when out of
 * memory (nothing to free). */
int cf_otlp_span_parts(const cf_otlp_span *sp, cf_otlp_attrs *a, cf_otlp_msgs *in,
                       cf_otlp_msgs *out);

#endif
