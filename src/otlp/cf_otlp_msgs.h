/* The prompt and response messages of a GenAI span, in whichever
 * convention it carries them (cf_otlp_msgs.c; the table in docs/otlp.md). */
#ifndef CF_OTLP_MSGS_H
#define CF_OTLP_MSGS_H

#include "crucible/otlp/cf_otlp_map.h"

typedef struct cf_otlp_msg {
    char role[64];
    cf_buf text;
    char finish[64]; /* an output message's finish reason, "" if none */
    int utf8;        /* text is valid UTF-8 as it was made (JSON strings a
                        check took), so no one need check it again */
} cf_otlp_msg;

typedef struct cf_otlp_msgs {
    cf_otlp_msg *m;
    size_t n, cap;
    int oom;
} cf_otlp_msgs;

/* Fill out (empty before) from the span's attributes; -1 when out of memory. */
int cf_otlp_input_msgs(const cf_otlp_attrs *a, cf_otlp_msgs *out);
int cf_otlp_output_msgs(const cf_otlp_attrs *a, cf_otlp_msgs *out);
void cf_otlp_msgs_free(cf_otlp_msgs *ms);
/* A new message of role (truncated to 63 bytes) at the end of ms; NULL
 * (ms->oom set) when out of memory. */
cf_otlp_msg *cf_otlp_msgs_add(cf_otlp_msgs *ms, const char *role);
/* s copied into dst[cap] (cap > 0), cut to cap - 1 bytes: a role or a
 * finish reason, as snprintf "%s" would write it without its cost. */
void cf_otlp_msg_name(char *dst, size_t cap, const char *s);
/* s[0..n) appended to m's text, on a line of its own after earlier text. */
void cf_otlp_msg_text(cf_otlp_msg *m, const char *s, size_t n);

/* The prompt's text: one user message's text, else the messages as a JSON
 * array of {role, content} (*chat = 1); "" for none. */
void cf_otlp_prompt_text(const cf_otlp_msgs *in, cf_buf *t, int *chat);
/* The response's text: the output messages' texts, one per line. */
void cf_otlp_response_text(const cf_otlp_msgs *out, cf_buf *t);

#endif
