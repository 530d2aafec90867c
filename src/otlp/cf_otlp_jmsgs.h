/* Messages read from the JSON text of a GenAI attribute without building
 * the document (cf_otlp_jmsgs.c): the same messages jansson's tree gave. */
#ifndef CF_OTLP_JMSGS_H
#define CF_OTLP_JMSGS_H

#include "cf_otlp_msgs.h"

/* s: a JSON array of messages [{role, parts: [{type, content|text}]} or
 * {role, content}, finish_reason?], or {"messages": [...]}. 1 and the
 * messages appended to out (role: the role of one without its own);
 * 0 when s is not such a document (out untouched). */
int cf_otlp_jmsgs(const char *s, const char *role, cf_otlp_msgs *out);
/* s: a JSON array of parts (gen_ai.system_instructions): 1 and their
 * texts appended to m; 0 when s is not a JSON array (m untouched). */
int cf_otlp_jparts(const char *s, cf_otlp_msg *m);

#endif
