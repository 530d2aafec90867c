/*
 * The LLM judge over HTTP (OpenAI-compatible chat completions) through the
 * shared client (cf_http.h); request and reply JSON through jansson (no Lua
 * state here, so the ingest path may call it from its own threads).
 */
#include "crucible/quality/cf_judge.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crucible/core/cf_buf.h"
#include "crucible/http/cf_http.h"
#include "crucible/quality/cf_quality.h"

const char *const cf_judge_default_system =
    "You are a strict evaluator of answers given by an AI assistant.";

const char *const cf_judge_default_template =
    "Rate the quality of the assistant's response to the user's prompt on a scale from 0"
    " to 1, where 1 is an excellent, correct and helpful response and 0 is a useless,"
    " wrong or harmful one.\n\n"
    "Prompt:\n{{prompt}}\n\n"
    "Response:\n{{response}}\n\n"
    "Reply with only a JSON object and nothing else:"
    " {\"score\": <a number from 0 to 1>, \"reason\": \"<one short sentence>\"}";

struct cf_judge {
    char *endpoint, *model, *api_key, *tmpl, *system;
    long timeout_ms;
    int retries;
    long backoff_ms;
    double temperature;
};

static char *dup_str(const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s);
    char *r = malloc(n + 1);
    if (r)
        memcpy(r, s, n + 1);
    return r;
}

void cf_judge_free(cf_judge *j)
{
    if (!j)
        return;
    free(j->endpoint);
    free(j->model);
    if (j->api_key) {
        memset(j->api_key, 0, strlen(j->api_key));
        free(j->api_key);
    }
    free(j->tmpl);
    free(j->system);
    free(j);
}

const char *cf_judge_endpoint(const cf_judge *j) { return j->endpoint; }
const char *cf_judge_model(const cf_judge *j) { return j->model; }

int cf_judge_check_template(const char *tmpl, cf_err *err)
{
    int has_response = 0;
    for (const char *p = strstr(tmpl, "{{"); p; p = strstr(p + 2, "{{")) {
        if (strncmp(p, "{{response}}", 12) == 0) {
            has_response = 1;
        } else if (strncmp(p, "{{prompt}}", 10) != 0) {
            const char *end = strstr(p, "}}");
            int len = end && end - p < 40 ? (int)(end - p + 2) : 12;
            return cf_fail(err, CF_EINVAL,
                           "llm_judge.prompt_template: unknown placeholder '%.*s' (use {{prompt}}"
                           " and {{response}})", len, p);
        }
    }
    if (!has_response)
        return cf_fail(err, CF_EINVAL,
                       "llm_judge.prompt_template: must contain {{response}}");
    return 0;
}

static int valid_utf8(const char *s)
{
    size_t n = strlen(s);
    return cf_utf8_check(s, n) == n;
}

int cf_judge_new(const cf_judge_opts *o, cf_judge **out, cf_err *err)
{
    *out = NULL;
    if (!o->url || !*o->url)
        return cf_fail(err, CF_EINVAL, "llm_judge.url: missing (the base URL of an"
                                       " OpenAI-compatible API, e.g. http://127.0.0.1:8000/v1)");
    if (cf_http_check_url(o->url, "llm_judge.url", err))
        return -1;
    if (!o->model || !*o->model)
        return cf_fail(err, CF_EINVAL, "llm_judge.model: missing (required with llm_judge.url)");
    const char *tmpl = o->prompt_template ? o->prompt_template : cf_judge_default_template;
    const char *sys = o->system_prompt ? o->system_prompt : cf_judge_default_system;
    if (cf_judge_check_template(tmpl, err))
        return -1;
    if (!valid_utf8(o->model) || !valid_utf8(sys) || !valid_utf8(tmpl))
        return cf_fail(err, CF_EINVAL, "llm_judge: model, system_prompt and prompt_template"
                                       " must be valid UTF-8");
    if (cf_http_init(err))
        return -1;
    cf_judge *j = calloc(1, sizeof *j);
    if (!j)
        return cf_fail(err, CF_ENOMEM, "out of memory building the judge");
    size_t ul = strlen(o->url);
    while (ul > 0 && o->url[ul - 1] == '/')
        ul--;
    const char *suffix = "/chat/completions";
    int has_suffix = ul >= strlen(suffix) && memcmp(o->url + ul - strlen(suffix), suffix,
                                                    strlen(suffix)) == 0;
    size_t elen = ul + (has_suffix ? 0 : strlen(suffix));
    j->endpoint = malloc(elen + 1);
    if (j->endpoint) {
        memcpy(j->endpoint, o->url, ul);
        if (!has_suffix)
            memcpy(j->endpoint + ul, suffix, strlen(suffix));
        j->endpoint[elen] = '\0';
    }
    j->model = dup_str(o->model);
    j->api_key = o->api_key && *o->api_key ? dup_str(o->api_key) : NULL;
    j->tmpl = dup_str(tmpl);
    j->system = dup_str(sys);
    if (!j->endpoint || !j->model || !j->tmpl || !j->system
        || (o->api_key && *o->api_key && !j->api_key)) {
        cf_judge_free(j);
        return cf_fail(err, CF_ENOMEM, "out of memory building the judge");
    }
    j->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 30000;
    j->retries = o->retries > 0 ? o->retries : 0;
    j->backoff_ms = o->backoff_ms > 0 ? o->backoff_ms : 0;
    j->temperature = isfinite(o->temperature) ? o->temperature : 0.0;
    *out = j;
    return 0;
}

/* ---- rendering --------------------------------------------------------------- */

/* Appends s with every byte that does not begin valid UTF-8 replaced by U+FFFD. */
static void put_utf8(cf_buf *b, const char *s, size_t n)
{
    while (n) {
        size_t ok = cf_utf8_check(s, n);
        cf_buf_append(b, s, ok);
        if (ok == n)
            break;
        cf_buf_append(b, "\xEF\xBF\xBD", 3);
        s += ok + 1;
        n -= ok + 1;
    }
}

char *cf_judge_render(const char *tmpl, cf_str prompt, cf_str response, size_t *len)
{
    cf_buf b = CF_BUF_INIT;
    cf_buf_reserve(&b, strlen(tmpl) + prompt.n + response.n);
    const char *p = tmpl;
    for (;;) {
        const char *q = strstr(p, "{{");
        if (!q) {
            put_utf8(&b, p, strlen(p));
            break;
        }
        put_utf8(&b, p, (size_t)(q - p));
        if (strncmp(q, "{{prompt}}", 10) == 0) {
            put_utf8(&b, prompt.p ? prompt.p : "", prompt.p ? prompt.n : 0);
            p = q + 10;
        } else if (strncmp(q, "{{response}}", 12) == 0) {
            put_utf8(&b, response.p ? response.p : "", response.p ? response.n : 0);
            p = q + 12;
        } else {
            cf_buf_append(&b, "{{", 2);
            p = q + 2;
        }
    }
    if (cf_buf_failed(&b)) {
        cf_buf_free(&b);
        return NULL;
    }
    cf_buf_cstr(&b);
    if (len)
        *len = b.n;
    return b.p;
}

/* ---- parsing -------------------------------------------------------------------- */

static int is_ws(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

static void trim(const char **s, size_t *n)
{
    while (*n && is_ws(**s)) {
        (*s)++;
        (*n)--;
    }
    while (*n && is_ws((*s)[*n - 1]))
        (*n)--;
}

static int perr(char *errbuf, size_t cap, const char *fmt, const char *detail)
{
    if (errbuf && cap)
        snprintf(errbuf, cap, fmt, detail);
    return -1;
}

int cf_judge_parse_content(const char *s, size_t n, double *score, char **reason, char *errbuf,
                           size_t errcap)
{
    *score = 0.0;
    if (reason)
        *reason = NULL;
    trim(&s, &n);
    if (n >= 6 && memcmp(s, "```", 3) == 0 && memcmp(s + n - 3, "```", 3) == 0) {
        const char *nl = memchr(s, '\n', n - 3);
        if (nl) {
            size_t tag = (size_t)(nl - s) - 3;
            if (tag == 0 || (tag == 4 && memcmp(s + 3, "json", 4) == 0)) {
                n = n - 3 - (size_t)(nl + 1 - s);
                s = nl + 1;
                trim(&s, &n);
            }
        }
    }
    if (n == 0)
        return perr(errbuf, errcap, "unparsable reply: empty content%s", "");
    json_error_t jerr;
    json_t *v = json_loadb(s, n, JSON_DECODE_ANY, &jerr);
    if (!v) {
        char shown[80];
        size_t k = n < sizeof shown - 1 ? n : sizeof shown - 1;
        memcpy(shown, s, k);
        shown[k] = '\0';
        for (size_t i = 0; i < k; i++)
            if ((unsigned char)shown[i] < 0x20)
                shown[i] = ' ';
        return perr(errbuf, errcap, "unparsable reply: expected a number or {\"score\": ...},"
                                    " got '%s'", shown);
    }
    json_t *num = v;
    if (json_is_object(v)) {
        num = json_object_get(v, "score");
        if (!num) {
            json_decref(v);
            return perr(errbuf, errcap, "unparsable reply: the object has no \"score\"%s", "");
        }
        json_t *r = json_object_get(v, "reason");
        if (reason && json_is_string(r))
            *reason = dup_str(json_string_value(r));
    }
    if (!json_is_number(num)) {
        json_decref(v);
        if (reason) {
            free(*reason);
            *reason = NULL;
        }
        return perr(errbuf, errcap, "unparsable reply: the score is not a number%s", "");
    }
    double x = json_number_value(num);
    json_decref(v);
    if (!isfinite(x) || x < 0.0 || x > 1.0) {
        char num_s[32];
        cf_format_double(x, num_s);
        if (reason) {
            free(*reason);
            *reason = NULL;
        }
        return perr(errbuf, errcap, "unparsable reply: score %s is outside [0, 1]", num_s);
    }
    *score = x;
    return 0;
}

int cf_judge_parse_reply(const char *body, size_t n, double *score, char **reason, char *errbuf,
                         size_t errcap)
{
    *score = 0.0;
    if (reason)
        *reason = NULL;
    json_error_t jerr;
    json_t *root = json_loadb(body, n, 0, &jerr);
    if (!root)
        return perr(errbuf, errcap, "unparsable reply: not a JSON object (%s)", jerr.text);
    json_t *choices = json_object_get(root, "choices");
    json_t *first = json_is_array(choices) ? json_array_get(choices, 0) : NULL;
    json_t *msg = json_is_object(first) ? json_object_get(first, "message") : NULL;
    json_t *content = json_is_object(msg) ? json_object_get(msg, "content") : NULL;
    if (!json_is_string(content)) {
        json_decref(root);
        return perr(errbuf, errcap, "unparsable reply: no choices[0].message.content string%s",
                    "");
    }
    int rc = cf_judge_parse_content(json_string_value(content), json_string_length(content),
                                    score, reason, errbuf, errcap);
    json_decref(root);
    return rc;
}

/* ---- the request --------------------------------------------------------------- */

static char *request_body(const cf_judge *j, cf_str prompt, cf_str response)
{
    size_t ulen;
    char *user = cf_judge_render(j->tmpl, prompt, response, &ulen);
    if (!user)
        return NULL;
    json_t *messages = json_array();
    if (*j->system)
        json_array_append_new(messages, json_pack("{s:s, s:s}", "role", "system", "content",
                                                  j->system));
    json_array_append_new(messages, json_pack("{s:s, s:s%}", "role", "user", "content", user,
                                              ulen));
    json_t *body = json_pack("{s:s, s:o, s:f}", "model", j->model, "messages", messages,
                             "temperature", j->temperature);
    free(user);
    if (!body)
        return NULL;
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    return text;
}

int cf_judge_score(const cf_judge *j, cf_str prompt, cf_str response, cf_judge_result *res)
{
    memset(res, 0, sizeof *res);
    char *body = request_body(j, prompt, response);
    if (!body) {
        snprintf(res->error, sizeof res->error, "out of memory building the judge request");
        return -1;
    }
    char auth[1024] = "";
    const char *headers[] = {auth, NULL};
    if (j->api_key)
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", j->api_key);
    cf_http_request q = {.url = j->endpoint, .body = body, .body_len = strlen(body),
                         .headers = j->api_key ? headers : NULL, .timeout_ms = j->timeout_ms,
                         .retries = j->retries, .backoff_ms = j->backoff_ms,
                         .max_reply = CF_JUDGE_MAX_REPLY};
    cf_http_result r;
    int rc = cf_http_post_json(&q, &r);
    memset(auth, 0, sizeof auth);
    free(body);
    res->attempts = r.attempts;
    res->http_status = r.status;
    res->elapsed_ms = r.elapsed_ms;
    if (rc) {
        snprintf(res->error, sizeof res->error, "%s", r.error);
    } else if (cf_judge_parse_reply(r.body.p ? r.body.p : "", r.body.n, &res->score,
                                    &res->reason, res->error, sizeof res->error) == 0) {
        res->ok = 1;
        res->error[0] = '\0';
    }
    cf_http_result_free(&r);
    if (!res->ok)
        res->score = 0.0;
    return res->ok ? 0 : -1;
}

void cf_judge_result_free(cf_judge_result *res)
{
    free(res->reason);
    res->reason = NULL;
}
