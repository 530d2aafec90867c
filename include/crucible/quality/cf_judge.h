/*
 * The LLM judge over HTTP: one OpenAI-compatible chat-completions request
 * per event through libcurl, with a timeout, retries with exponential
 * backoff, a cap on the reply size, and strict parsing of the score.
 *
 * A cf_judge is immutable once built; cf_judge_score may run from several
 * threads at once (each call uses its own curl handle). It blocks for up to
 * (retries + 1) * timeout plus the backoff sleeps.
 */
#ifndef CRUCIBLE_CF_JUDGE_H
#define CRUCIBLE_CF_JUDGE_H

#include "crucible/core/cf_common.h"

typedef struct cf_judge cf_judge;

typedef struct cf_judge_opts {
    const char *url;             /* base URL ("http://host/v1"); /chat/completions is appended
                                    unless the URL already ends with it */
    const char *model;           /* required */
    const char *api_key;         /* sent as "Authorization: Bearer"; NULL or "": none */
    const char *prompt_template; /* {{prompt}} and {{response}} are replaced; NULL: default */
    const char *system_prompt;   /* NULL: default; "": no system message */
    long timeout_ms;             /* per attempt; <= 0: 30000 */
    int retries;                 /* extra attempts after the first (< 0: 0) */
    long backoff_ms;             /* sleep before retry k: backoff_ms * 2^(k-1), capped at 30 s */
    double temperature;          /* sent as is */
} cf_judge_opts;

extern const char *const cf_judge_default_template;
extern const char *const cf_judge_default_system;

/* Largest reply body accepted (bytes); a bigger one is an error. */
#define CF_JUDGE_MAX_REPLY (1024 * 1024)

typedef struct cf_judge_result {
    int ok;               /* 1: score parsed from a reply */
    double score;         /* in [0, 1] when ok; 0 otherwise */
    int attempts;         /* requests sent */
    long http_status;     /* of the last attempt; 0 when none completed */
    double elapsed_ms;    /* wall time of the whole call, sleeps included */
    char *reason;         /* the judge's "reason" when it gave one (malloc'd) */
    char error[512];      /* why ok is 0 */
} cf_judge_result;

/* Validates the options (url scheme http/https, model, template
 * placeholders) and copies them. */
int cf_judge_new(const cf_judge_opts *opts, cf_judge **out, cf_err *err);
void cf_judge_free(cf_judge *j);
const char *cf_judge_endpoint(const cf_judge *j);
const char *cf_judge_model(const cf_judge *j);

/* Asks the judge about one event. Always fills res (call
 * cf_judge_result_free after); returns 0 when a score was parsed, -1 on
 * an error, a timeout or an unparsable reply (res->error says which). */
int cf_judge_score(const cf_judge *j, cf_str prompt, cf_str response, cf_judge_result *res);
void cf_judge_result_free(cf_judge_result *res);

/* The pure parts, exposed for tests. */

/* Renders a template: {{prompt}} and {{response}} replaced, invalid UTF-8
 * replaced by U+FFFD. Returns a malloc'd string or NULL (out of memory). */
char *cf_judge_render(const char *tmpl, cf_str prompt, cf_str response, size_t *len);

/* Checks a template: only {{prompt}} and {{response}} placeholders, and
 * {{response}} present. */
int cf_judge_check_template(const char *tmpl, cf_err *err);

/* Strict score parsing of the assistant's message content: after trimming
 * whitespace (and one surrounding ``` or ```json fence), either a bare JSON
 * number, or a JSON object whose "score" is a number; the number must lie
 * in [0, 1]. reason (malloc'd) receives the object's "reason" string. */
int cf_judge_parse_content(const char *s, size_t n, double *score, char **reason,
                           char *errbuf, size_t errcap);

/* Parses a chat-completions reply body: choices[0].message.content, then
 * cf_judge_parse_content. */
int cf_judge_parse_reply(const char *body, size_t n, double *score, char **reason,
                         char *errbuf, size_t errcap);

#endif
