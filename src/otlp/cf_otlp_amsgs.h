/* Messages given as structured attribute values (cf_otlp_amsgs.c): the
 * form the GenAI conventions use where an attribute may hold any value
 * (log records), beside the JSON text read by cf_otlp_jmsgs.h. */
#ifndef CF_OTLP_AMSGS_H
#define CF_OTLP_AMSGS_H

#include "cf_otlp_msgs.h"

/* v: an arrayValue of messages, each a kvlistValue {role, parts:
 * [{type, content|text}]} or {role, content}, with finish_reason; or a
 * kvlistValue {messages: [...]}. 1 and the messages appended to out
 * (role: the role of one without its own); 0 when v is not such a value
 * (out untouched). */
int cf_otlp_amsgs(const cf_otlp_any *v, const char *role, cf_otlp_msgs *out);
/* v: an arrayValue of parts (gen_ai.system_instructions): 1 and their
 * texts appended to m; 0 when v is not an arrayValue (m untouched). */
int cf_otlp_aparts(const cf_otlp_any *v, cf_otlp_msg *m);

#endif
