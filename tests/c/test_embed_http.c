/* The OpenAI-compatible embedding provider against a loopback server this
 * test starts (libmicrohttpd on 127.0.0.1, an ephemeral port): batching,
 * the Authorization header, retries on 5xx/429, failures that are not
 * retried, malformed answers and a timeout. Every request is bounded. */
#include "cf_test.h"
#include "cf_test_http.h"

#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "crucible/embed/cf_embed_http.h"

/* What the server does next; guarded by mu. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int fail_next;        /* answer this many requests with fail_status first */
static int fail_status = 500;
static int mode;             /* 0 ok, 1 malformed JSON, 2 wrong count, 3 slow, 4 400 error */
static int requests;
static char last_auth[256];
static size_t last_inputs;

static enum MHD_Result answer(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *data,
                              size_t *size, void **state)
{
    (void)cls;
    (void)version;
    cf_test_body *b;
    enum MHD_Result more;
    if (!(b = cf_test_collect(state, data, size, &more)))
        return more;
    pthread_mutex_lock(&mu);
    requests++;
    const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    snprintf(last_auth, sizeof last_auth, "%s", auth ? auth : "");
    int status = 200, m = mode;
    if (fail_next > 0) {
        fail_next--;
        status = fail_status;
    }
    pthread_mutex_unlock(&mu);
    char *out = NULL;
    if (strcmp(url, "/v1/embeddings") != 0 || strcmp(method, "POST") != 0) {
        status = 404;
        out = strdup("{\"error\": {\"message\": \"no such route\"}}");
    } else if (status != 200) {
        out = strdup("{\"error\": {\"message\": \"overloaded\"}}");
    } else if (m == 4) {
        status = 400;
        out = strdup("{\"error\": {\"message\": \"model not found\"}}");
    } else if (m == 1) {
        out = strdup("{\"data\": [");
    } else {
        if (m == 3) {
            struct timespec ts = {0, 700 * 1000000L};
            nanosleep(&ts, NULL);
        }
        json_t *req = json_loadb(b->p ? b->p : "", b->n, 0, NULL);
        json_t *input = json_object_get(req, "input");
        size_t n = json_array_size(input);
        pthread_mutex_lock(&mu);
        last_inputs = n;
        pthread_mutex_unlock(&mu);
        json_t *items = json_array();
        size_t give = m == 2 ? n + 1 : n;
        for (size_t i = give; i-- > 0;) { /* reversed: the index field orders them */
            const char *t = json_string_value(json_array_get(input, i < n ? i : 0));
            json_t *v = json_array();
            json_array_append_new(v, json_real((double)strlen(t ? t : "")));
            json_array_append_new(v, json_real((double)i));
            json_array_append_new(v, json_real(1.5));
            json_t *item = json_object();
            json_object_set_new(item, "embedding", v);
            json_object_set_new(item, "index", json_integer((json_int_t)i));
            json_array_append_new(items, item);
        }
        json_t *resp = json_object();
        json_object_set_new(resp, "data", items);
        out = json_dumps(resp, JSON_COMPACT);
        json_decref(resp);
        json_decref(req);
    }
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(out), out, MHD_RESPMEM_MUST_FREE);
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    return ret;
}

static struct MHD_Daemon *server;
static char base_url[64];

static int start_server(void)
{
    unsigned port;
    server = cf_test_serve(answer, &port);
    snprintf(base_url, sizeof base_url, "http://127.0.0.1:%u/v1/", port);
    return 0;
}

static void set_mode(int m, int fails, int status)
{
    pthread_mutex_lock(&mu);
    mode = m;
    fail_next = fails;
    fail_status = status;
    requests = 0;
    pthread_mutex_unlock(&mu);
}

static cf_embedder *make(size_t batch, int retries, long timeout_ms, const char *key)
{
    cf_embed_http_opts o = {base_url, "test-model", key, batch, timeout_ms, retries, 0};
    cf_embedder *e = NULL;
    cf_err err;
    if (cf_embedder_http_new(&o, &e, &err))
        fprintf(stderr, "new: %s\n", err.msg);
    return e;
}

static const cf_str texts[5] = {{"a", 1}, {"bb", 2}, {"ccc", 3}, {"dddd", 4}, {"", 0}};

static void test_success_and_auth(void)
{
    set_mode(0, 0, 500);
    cf_embedder *e = make(8, 0, 5000, "sk-test");
    CHECK(e != NULL);
    const float *v;
    size_t dim;
    cf_err err;
    CHECK(cf_embed_batch(e, texts, 5, &v, &dim, &err) == 0);
    CHECK(dim == 3);
    for (int i = 0; i < 5; i++) {
        CHECK(v[i * 3] == (float)texts[i].n); /* reordered by index */
        CHECK(v[i * 3 + 1] == (float)i);
    }
    CHECK_STR(last_auth, "Bearer sk-test");
    CHECK(last_inputs == 5);
    CHECK(requests == 1);
    cf_embedder_free(e);
    e = make(8, 0, 5000, NULL);
    CHECK(cf_embed_batch(e, texts, 2, &v, &dim, &err) == 0);
    CHECK_STR(last_auth, "");
    /* more texts than a batch is misuse of the C interface */
    cf_embedder_free(e);
    e = make(2, 0, 5000, NULL);
    CHECK(e->batch == 2);
    CHECK(cf_embed_batch(e, texts, 3, &v, &dim, &err) == -1);
    CHECK(strstr(err.msg, "at most 2") != NULL);
    cf_embedder_free(e);
}

static void test_retries(void)
{
    set_mode(0, 2, 503);
    cf_embedder *e = make(8, 2, 5000, NULL);
    const float *v;
    size_t dim;
    cf_err err;
    CHECK(cf_embed_batch(e, texts, 4, &v, &dim, &err) == 0);
    CHECK(requests == 3);
    set_mode(0, 5, 429);
    CHECK(cf_embed_batch(e, texts, 4, &v, &dim, &err) == -1);
    CHECK(requests == 3);
    CHECK(strstr(err.msg, "HTTP 429: overloaded") != NULL);
    cf_embedder_free(e);
}

static void test_failures(void)
{
    const float *v;
    size_t dim;
    cf_err err;
    cf_embedder *e = make(8, 3, 5000, NULL);
    set_mode(4, 0, 500); /* 400: not retried */
    CHECK(cf_embed_batch(e, texts, 2, &v, &dim, &err) == -1);
    CHECK(requests == 1);
    CHECK(strstr(err.msg, "HTTP 400: model not found") != NULL);
    set_mode(1, 0, 500);
    CHECK(cf_embed_batch(e, texts, 2, &v, &dim, &err) == -1);
    CHECK(strstr(err.msg, "not valid JSON") != NULL);
    set_mode(2, 0, 500);
    CHECK(cf_embed_batch(e, texts, 2, &v, &dim, &err) == -1);
    CHECK(strstr(err.msg, "3 vectors for 2 texts") != NULL);
    cf_embedder_free(e);
    /* a slow server and a 300 ms timeout, no retries */
    e = make(8, 0, 300, NULL);
    set_mode(3, 0, 500);
    CHECK(cf_embed_batch(e, texts, 2, &v, &dim, &err) == -1);
    CHECK(strstr(err.msg, "failed") != NULL);
    cf_embedder_free(e);
    /* invalid UTF-8 in a text */
    e = make(8, 0, 5000, NULL);
    set_mode(0, 0, 500);
    cf_str bad = {"\xff\xfe", 2};
    CHECK(cf_embed_batch(e, &bad, 1, &v, &dim, &err) == -1);
    CHECK(strstr(err.msg, "not valid UTF-8") != NULL);
    cf_embedder_free(e);
}

static void test_options(void)
{
    cf_embedder *e = NULL;
    cf_err err;
    cf_embed_http_opts o = {"ftp://x", "m", NULL, 8, 1000, 0, 0};
    CHECK(cf_embedder_http_new(&o, &e, &err) == -1);
    o.url = "http://127.0.0.1:1";
    o.model = NULL;
    CHECK(cf_embedder_http_new(&o, &e, &err) == -1);
    CHECK(strstr(err.msg, "model") != NULL);
    o.model = "m";
    o.batch_size = 0;
    CHECK(cf_embedder_http_new(&o, &e, &err) == -1);
    o.batch_size = 8;
    o.retries = 11;
    CHECK(cf_embedder_http_new(&o, &e, &err) == -1);
    CHECK(e == NULL);
}

int main(void)
{
    if (start_server()) {
        fprintf(stderr, "cannot start the loopback server\n");
        return 1;
    }
    RUN(test_success_and_auth);
    RUN(test_retries);
    RUN(test_failures);
    RUN(test_options);
    MHD_stop_daemon(server);
    return cf_test_done();
}
