/* The attributes the Langfuse SDKs (Python v3 and later, JS v4 and later,
 * both built on OpenTelemetry) put on their spans (cf_otlp_lf.c): a
 * generation is a span whose langfuse.observation.type is "generation",
 * with langfuse.observation.model.name, .input, .output and
 * .usage_details. */
#ifndef CF_OTLP_LF_H
#define CF_OTLP_LF_H

#include "cf_otlp_msgs.h"

#define CF_OTLP_LF_TYPE "langfuse.observation.type"
#define CF_OTLP_LF_INPUT "langfuse.observation.input"
#define CF_OTLP_LF_OUTPUT "langfuse.observation.output"

/* Token counts from langfuse.observation.usage_details (a JSON object:
 * input / prompt_tokens / input_tokens, output / completion_tokens /
 * output_tokens, total / total_tokens): v[0] input, v[1] output, v[2]
 * total, each -1 when not given. 0 when the attribute is absent or not
 * such an object (v untouched). */
int cf_otlp_lf_usage(const cf_otlp_attrs *a, int64_t v[3]);
/* An observation's input or output text s (JSON of what the application
 * gave: a list of messages, {messages: [...]}, one message {role,
 * content}, or any other value) as messages appended to out; text that
 * is none of these is one message of role role. */
void cf_otlp_lf_msgs(const char *s, const char *role, cf_otlp_msgs *out);

#endif
