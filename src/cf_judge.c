/*
 * The LLM judge over HTTP (OpenAI-compatible chat completions) through
 * libcurl; request and reply JSON through jansson (no Lua state here, so
 * the ingest path may call it from its own threads).
 */
#include "crucible/cf_judge.h"

#include <curl/curl.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crucible/cf_quality.h"

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

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static int curl_ok;

static void curl_init(void)
{
    curl_ok = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
}

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
    for (size_t i = 0; i < n;) {
        size_t k = cf_utf8_seq(s + i, n - i);
        if (!k)
            return 0;
        i += k;
    }
    return 1;
}

int cf_judge_new(const cf_judge_opts *o, cf_judge **out, cf_err *err)
{
    *out = NULL;
    if (!o->url || !*o->url)
        return cf_fail(err, CF_EINVAL, "llm_judge.url: missing (the base URL of an"
                                       " OpenAI-compatible API, e.g. http://127.0.0.1:8000/v1)");
    if (strncmp(o->url, "http://", 7) != 0 && strncmp(o->url, "https://", 8) != 0)
        return cf_fail(err, CF_EINVAL, "llm_judge.url: must start with http:// or https://,"
                                       " got '%.100s'", o->url);
    if (!o->model || !*o->model)
        return cf_fail(err, CF_EINVAL, "llm_judge.model: missing (required with llm_judge.url)");
    const char *tmpl = o->prompt_template ? o->prompt_template : cf_judge_default_template;
    const char *sys = o->system_prompt ? o->system_prompt : cf_judge_default_system;
    if (cf_judge_check_template(tmpl, err))
        return -1;
    if (!valid_utf8(o->model) || !valid_utf8(sys) || !valid_utf8(tmpl))
        return cf_fail(err, CF_EINVAL, "llm_judge: model, system_prompt and prompt_template"
                                       " must be valid UTF-8");
    pthread_once(&curl_once, curl_init);
    if (!curl_ok)
        return cf_fail(err, CF_EIO, "llm_judge: libcurl failed to initialise");
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

typedef struct buf {
    char *p;
    size_t n, cap;
    int oom;
} buf;

static void put(buf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

/* Appends s with every byte that does not begin valid UTF-8 replaced by U+FFFD. */
static void put_utf8(buf *b, const char *s, size_t n)
{
    size_t i = 0, run = 0;
    while (i < n) {
        size_t k = cf_utf8_seq(s + i, n - i);
        if (k) {
            i += k;
            continue;
        }
        put(b, s + run, i - run);
        put(b, "\xEF\xBF\xBD", 3);
        i++;
        run = i;
    }
    put(b, s + run, n - run);
}

char *cf_judge_render(const char *tmpl, cf_str prompt, cf_str response, size_t *len)
{
    buf b = {0};
    put(&b, "", 0);
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
            put(&b, "{{", 2);
            p = q + 2;
        }
    }
    if (b.oom) {
        free(b.p);
        return NULL;
    }
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
        char num_s[64];
        snprintf(num_s, sizeof num_s, "%.17g", x);
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

typedef struct reply {
    buf body;
    int too_big;
} reply;

static size_t on_data(char *p, size_t size, size_t nmemb, void *ud)
{
    reply *r = ud;
    size_t n = size * nmemb;
    if (r->body.n + n > CF_JUDGE_MAX_REPLY) {
        r->too_big = 1;
        return 0;
    }
    put(&r->body, p, n);
    return r->body.oom ? 0 : n;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

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

/* A readable summary of an error reply: OpenAI's error.message, else the
 * start of the body with control characters blanked. */
static void describe_body(const buf *b, char *out, size_t cap)
{
    out[0] = '\0';
    if (!b->p || !b->n)
        return;
    json_t *root = json_loadb(b->p, b->n, 0, NULL);
    json_t *e = root ? json_object_get(root, "error") : NULL;
    json_t *m = json_is_object(e) ? json_object_get(e, "message") : e;
    if (json_is_string(m)) {
        snprintf(out, cap, "%s", json_string_value(m));
    } else {
        size_t k = b->n < cap - 1 ? b->n : cap - 1;
        memcpy(out, b->p, k);
        out[k] = '\0';
    }
    json_decref(root);
    for (char *p = out; *p; p++)
        if ((unsigned char)*p < 0x20)
            *p = ' ';
}

int cf_judge_score(const cf_judge *j, cf_str prompt, cf_str response, cf_judge_result *res)
{
    memset(res, 0, sizeof *res);
    double t0 = now_ms();
    char *body = request_body(j, prompt, response);
    struct curl_slist *headers = NULL;
    CURL *h = NULL;
    if (!body) {
        snprintf(res->error, sizeof res->error, "out of memory building the judge request");
        goto out;
    }
    headers = curl_slist_append(headers, "Content-Type: application/json");
    headers = curl_slist_append(headers, "Accept: application/json");
    char auth[1024];
    if (j->api_key && headers) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", j->api_key);
        headers = curl_slist_append(headers, auth);
        memset(auth, 0, sizeof auth);
    }
    h = curl_easy_init();
    if (!h || !headers) {
        snprintf(res->error, sizeof res->error, "out of memory starting the judge request");
        goto out;
    }
    for (int attempt = 0; attempt <= j->retries; attempt++) {
        if (attempt > 0 && j->backoff_ms > 0) {
            long wait = j->backoff_ms;
            for (int k = 1; k < attempt && wait < 30000; k++)
                wait *= 2;
            sleep_ms(wait < 30000 ? wait : 30000);
        }
        reply r = {{0}, 0};
        char cerr[CURL_ERROR_SIZE] = "";
        curl_easy_reset(h);
        curl_easy_setopt(h, CURLOPT_URL, j->endpoint);
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, j->timeout_ms);
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, j->timeout_ms);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &r);
        curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
        curl_easy_setopt(h, CURLOPT_USERAGENT, "crucible-feedback/" CF_VERSION);
        CURLcode rc = curl_easy_perform(h);
        res->attempts = attempt + 1;
        long status = 0;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        res->http_status = status;
        int retry = 0;
        if (r.too_big) {
            snprintf(res->error, sizeof res->error, "reply larger than %d bytes",
                     CF_JUDGE_MAX_REPLY);
        } else if (r.body.oom) {
            snprintf(res->error, sizeof res->error, "out of memory reading the reply");
        } else if (rc == CURLE_OPERATION_TIMEDOUT) {
            snprintf(res->error, sizeof res->error, "timed out after %ld ms", j->timeout_ms);
            retry = 1;
        } else if (rc != CURLE_OK) {
            snprintf(res->error, sizeof res->error, "request to %s failed: %s", j->endpoint,
                     cerr[0] ? cerr : curl_easy_strerror(rc));
            retry = 1;
        } else if (status < 200 || status > 299) {
            char what[200];
            describe_body(&r.body, what, sizeof what);
            snprintf(res->error, sizeof res->error, "HTTP %ld from %s%s%s", status, j->endpoint,
                     what[0] ? ": " : "", what);
            retry = status == 429 || status >= 500;
        } else if (cf_judge_parse_reply(r.body.p ? r.body.p : "", r.body.n, &res->score,
                                        &res->reason, res->error, sizeof res->error) == 0) {
            res->ok = 1;
            res->error[0] = '\0';
        }
        free(r.body.p);
        if (res->ok || !retry)
            break;
    }
out:
    if (h)
        curl_easy_cleanup(h);
    curl_slist_free_all(headers);
    if (body)
        free(body);
    if (!res->ok)
        res->score = 0.0;
    res->elapsed_ms = now_ms() - t0;
    return res->ok ? 0 : -1;
}

void cf_judge_result_free(cf_judge_result *res)
{
    free(res->reason);
    res->reason = NULL;
}
