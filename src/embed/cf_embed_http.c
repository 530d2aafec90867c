/*
 * The OpenAI-compatible embeddings provider (see cf_embed_http.h), over the
 * shared HTTP client (cf_http.h). JSON is built and parsed with jansson; no
 * Lua state is involved.
 */
#include "crucible/embed/cf_embed_http.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crucible/http/cf_http.h"

#define MAX_RESPONSE (512u * 1024u * 1024u)

typedef struct http_emb {
    cf_embedder base;
    char *endpoint, *model, *auth;
    size_t batch;
    long timeout_ms, dimensions;
    int retries;
    float *buf;
    size_t buf_cap; /* floats */
    size_t dim;
} http_emb;

static char *dup_str(const char *s)
{
    size_t n = strlen(s);
    char *d = malloc(n + 1);
    if (d)
        memcpy(d, s, n + 1);
    return d;
}

/* Parses a reply into e->buf. */
static int parse_reply(http_emb *e, const cf_buf *m, size_t n, cf_err *err)
{
    json_error_t je;
    json_t *root = json_loadb(m->p ? m->p : "", m->n, 0, &je);
    json_t *data = root ? json_object_get(root, "data") : NULL;
    if (!json_is_array(data)) {
        json_decref(root);
        return cf_fail(err, CF_EIO, "embedding response from %s: %s", e->endpoint,
                       root ? "no \"data\" array" : "not valid JSON");
    }
    if (json_array_size(data) != n) {
        size_t got = json_array_size(data);
        json_decref(root);
        return cf_fail(err, CF_EIO, "embedding response from %s: %zu vectors for %zu texts",
                       e->endpoint, got, n);
    }
    for (size_t i = 0; i < n; i++) {
        json_t *item = json_array_get(data, i);
        json_t *vec = json_object_get(item, "embedding");
        json_t *idx = json_object_get(item, "index");
        size_t pos = json_is_integer(idx) ? (size_t)json_integer_value(idx) : i;
        size_t d = json_array_size(vec);
        if (!json_is_array(vec) || d == 0 || pos >= n || (e->dim && d != e->dim)) {
            json_decref(root);
            return cf_fail(err, CF_EIO,
                           "embedding response from %s: item %zu has no usable \"embedding\""
                           " (or its index or dimension is wrong)", e->endpoint, i);
        }
        if (!e->dim) {
            e->dim = d;
            if (e->buf_cap < e->batch * d) {
                float *b = realloc(e->buf, e->batch * d * sizeof *b);
                if (!b) {
                    json_decref(root);
                    return cf_fail(err, CF_ENOMEM, "out of memory reading embeddings");
                }
                e->buf = b;
                e->buf_cap = e->batch * d;
            }
        }
        for (size_t k = 0; k < d; k++) {
            json_t *x = json_array_get(vec, k);
            if (!json_is_number(x)) {
                json_decref(root);
                return cf_fail(err, CF_EIO, "embedding response from %s: item %zu holds a"
                               " value that is not a number", e->endpoint, i);
            }
            e->buf[pos * d + k] = (float)json_number_value(x);
        }
    }
    json_decref(root);
    return 0;
}

static int http_embed(cf_embedder *base, const cf_str *texts, size_t n, const float **out,
                      size_t *dim, cf_err *err)
{
    http_emb *e = (http_emb *)base;
    if (n > e->batch)
        return cf_fail(err, CF_EINVAL, "embedding: %zu texts in one call, at most %zu", n,
                       e->batch);
    json_t *req = json_object();
    json_t *input = json_array();
    if (!req || !input) {
        json_decref(req);
        json_decref(input);
        return cf_fail(err, CF_ENOMEM, "out of memory building an embedding request");
    }
    json_object_set_new(req, "model", json_string(e->model));
    json_object_set_new(req, "input", input);
    if (e->dimensions > 0)
        json_object_set_new(req, "dimensions", json_integer(e->dimensions));
    for (size_t i = 0; i < n; i++) {
        json_t *s = json_stringn(texts[i].p ? texts[i].p : "", texts[i].p ? texts[i].n : 0);
        if (!s) {
            json_decref(req);
            return cf_fail(err, CF_EINVAL, "embedding: text %zu is not valid UTF-8", i + 1);
        }
        json_array_append_new(input, s);
    }
    char *body = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    if (!body)
        return cf_fail(err, CF_ENOMEM, "out of memory building an embedding request");
    const char *headers[] = {e->auth, NULL};
    cf_http_request q = {.url = e->endpoint, .body = body, .body_len = strlen(body),
                         .headers = e->auth ? headers : NULL, .timeout_ms = e->timeout_ms,
                         .connect_timeout_ms = e->timeout_ms < 10000 ? e->timeout_ms : 10000,
                         .retries = e->retries, .backoff_ms = 200, .backoff_max_ms = 5000,
                         .max_reply = MAX_RESPONSE};
    cf_http_result r;
    int rc = cf_http_post_json(&q, &r);
    free(body);
    if (rc == 0) {
        rc = parse_reply(e, &r.body, n, err);
    } else if (r.outcome == CF_HTTP_STATUS) {
        char msg[256];
        cf_http_server_message(r.body.p, r.body.n, msg, sizeof msg);
        cf_fail(err, CF_EIO, "embedding request to %s: HTTP %ld: %.200s", e->endpoint, r.status,
                msg);
    } else if (r.outcome == CF_HTTP_TOO_BIG) {
        cf_fail(err, CF_EIO, "embedding request to %s: response larger than %u MB", e->endpoint,
                MAX_RESPONSE >> 20);
    } else if (r.outcome == CF_HTTP_NOMEM) {
        cf_fail(err, CF_ENOMEM, "embedding request to %s: %s", e->endpoint, r.error);
    } else if (r.outcome == CF_HTTP_TIMEOUT) {
        cf_fail(err, CF_EIO, "embedding request to %s failed: %s", e->endpoint, r.error);
    } else {
        cf_fail(err, CF_EIO, "embedding %s", r.error);
    }
    cf_http_result_free(&r);
    if (rc)
        return -1;
    *out = e->buf;
    *dim = e->dim;
    return 0;
}

static void http_destroy(cf_embedder *base)
{
    http_emb *e = (http_emb *)base;
    free(e->endpoint);
    free(e->model);
    free(e->auth);
    free(e->buf);
    free(e);
}

static const cf_embedder_vt http_vt = {http_embed, NULL, http_destroy, NULL};

int cf_embedder_http_new(const cf_embed_http_opts *o, cf_embedder **out, cf_err *err)
{
    *out = NULL;
    if (!o->url || !*o->url)
        return cf_fail(err, CF_EINVAL, "embedding_client.url: required");
    if (cf_http_check_url(o->url, "embedding_client.url", err))
        return -1;
    if (!o->model || !*o->model)
        return cf_fail(err, CF_EINVAL, "embedding_client.model: required");
    if (o->batch_size < 1 || o->batch_size > 2048)
        return cf_fail(err, CF_EINVAL, "embedding_client.batch_size: must be 1 to 2048, got %zu",
                       o->batch_size);
    if (o->timeout_ms < 1)
        return cf_fail(err, CF_EINVAL, "embedding_client.timeout_ms: must be positive");
    if (o->retries < 0 || o->retries > 10)
        return cf_fail(err, CF_EINVAL, "embedding_client.retries: must be 0 to 10");
    http_emb *e = calloc(1, sizeof *e);
    if (!e)
        return cf_fail(err, CF_ENOMEM, "out of memory creating the embedder");
    size_t ul = strlen(o->url);
    while (ul > 0 && o->url[ul - 1] == '/')
        ul--;
    e->endpoint = malloc(ul + sizeof "/embeddings");
    if (e->endpoint) {
        memcpy(e->endpoint, o->url, ul);
        memcpy(e->endpoint + ul, "/embeddings", sizeof "/embeddings");
    }
    e->model = dup_str(o->model);
    if (o->api_key && *o->api_key) {
        size_t kl = strlen(o->api_key);
        e->auth = malloc(kl + sizeof "Authorization: Bearer ");
        if (e->auth) {
            memcpy(e->auth, "Authorization: Bearer ", sizeof "Authorization: Bearer " - 1);
            memcpy(e->auth + sizeof "Authorization: Bearer " - 1, o->api_key, kl + 1);
        }
    }
    if (!e->endpoint || !e->model || (o->api_key && *o->api_key && !e->auth)) {
        http_destroy(&e->base);
        return cf_fail(err, CF_ENOMEM, "out of memory creating the embedder");
    }
    e->base.vt = &http_vt;
    e->base.name = "http";
    e->base.batch = o->batch_size;
    e->batch = o->batch_size;
    e->timeout_ms = o->timeout_ms;
    e->retries = o->retries;
    e->dimensions = o->dimensions;
    *out = &e->base;
    return 0;
}
