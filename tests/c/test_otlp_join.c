/* The OTLP join's evaluation scores (src/otlp/cf_otlp_join.c) and its
 * memory of stored events (cf_otlp_seen.c): a score goes out once its
 * event was submitted, whichever comes first, by response id or by trace
 * and span; what never joins is counted; the oldest remembered event is
 * forgotten first. Content logs that came before their span wait with it
 * for the answer (cf_otlp_merge.c joins the messages). */
#include "cf_test.h"

#include <stdlib.h>
#include <string.h>

#include "otlp/cf_otlp_join.h"
#include "otlp/cf_otlp_seen.h"

/* What the join handed out, in order: "submit <event>" and
 * "score <event_id> <json>" lines. */
static char out[4096];

static void note(const char *what, const char *a, const char *b, size_t n)
{
    size_t k = strlen(out);
    snprintf(out + k, sizeof out - k, "%s %s %.*s\n", what, a, (int)n, b);
}

static int on_submit(void *ud, const char *json, size_t n)
{
    (void)ud;
    note("submit", "", json, n);
    return 0;
}

static void on_score(void *ud, const char *event_id, const char *json, size_t n, int lookup)
{
    (void)ud;
    note(lookup ? "lookup" : "score", event_id, json, n);
}

/* The value of one counter in the metrics' text. */
static long counter(cf_serve_metrics *m, const char *name)
{
    cf_buf b = CF_BUF_INIT;
    CHECK(cf_serve_metrics_render(m, NULL, NULL, &b) == 0);
    char line[128];
    snprintf(line, sizeof line, "\n%s ", name); /* the sample, not its # HELP */
    const char *p = strstr(cf_buf_cstr(&b), line); /* cf_buf is not NUL-terminated */
    long v = p ? strtol(p + strlen(line), NULL, 10) : -1;
    cf_buf_free(&b);
    return v;
}

static const char *const ROUTES[] = {"r"};

static void test_seen_forgets_the_oldest(void)
{
    cf_otlp_seen *s = cf_otlp_seen_new(3);
    CHECK(s != NULL);
    CHECK(cf_otlp_seen_put(s, "a", "ev-a") == 0);
    CHECK(cf_otlp_seen_put(s, "b", "ev-b") == 0);
    CHECK(cf_otlp_seen_put(s, "a", "other") == 0); /* a key keeps its event */
    CHECK(cf_otlp_seen_put(s, "c", "ev-c") == 0);
    CHECK_STR(cf_otlp_seen_get(s, "a"), "ev-a");
    CHECK(cf_otlp_seen_put(s, "d", "ev-d") == 0); /* full: a goes */
    CHECK(cf_otlp_seen_get(s, "a") == NULL);
    CHECK_STR(cf_otlp_seen_get(s, "b"), "ev-b");
    CHECK_STR(cf_otlp_seen_get(s, "d"), "ev-d");
    CHECK(cf_otlp_seen_put(s, "e", "ev-e") == 0); /* then b */
    CHECK(cf_otlp_seen_get(s, "b") == NULL);
    CHECK_STR(cf_otlp_seen_get(s, "c"), "ev-c");
    CHECK(cf_otlp_seen_get(s, "zz") == NULL);
    cf_otlp_seen_free(s);
}

/* Against a plain model (the last cap distinct keys, oldest first): many
 * keys, repeats, evictions, and runs of colliding slots in a small table. */
static void test_seen_against_a_model(void)
{
    enum { CAP = 37, KEYS = 120, ROUNDS = 20000 };
    cf_otlp_seen *s = cf_otlp_seen_new(CAP);
    CHECK(s != NULL);
    if (!s)
        return;
    int model[CAP], first[CAP], n = 0, ok = 1; /* key numbers, oldest first; their events */
    uint32_t x = 7;
    char key[32], ev[32];
    for (int r = 0; r < ROUNDS && ok; r++) {
        x = x * 1103515245u + 12345u;
        int k = (int)((x >> 8) % KEYS);
        snprintf(key, sizeof key, "k%d-%s", k, k % 3 ? "long-enough-to-pass-eight" : "");
        snprintf(ev, sizeof ev, "ev%d", r);
        int in = 0;
        for (int i = 0; i < n; i++)
            in |= model[i] == k;
        ok &= cf_otlp_seen_put(s, key, ev) == 0;
        if (!in) {
            if (n == CAP) {
                memmove(model, model + 1, (CAP - 1) * sizeof *model);
                memmove(first, first + 1, (CAP - 1) * sizeof *first);
                n--;
            }
            model[n] = k;
            first[n++] = r;
        }
        for (int q = 0; q < KEYS; q++) {
            int want = -1;
            for (int i = 0; i < n; i++)
                if (model[i] == q)
                    want = first[i];
            snprintf(key, sizeof key, "k%d-%s", q, q % 3 ? "long-enough-to-pass-eight" : "");
            snprintf(ev, sizeof ev, "ev%d", want);
            const char *got = cf_otlp_seen_get(s, key);
            ok &= want < 0 ? got == NULL : got && strcmp(got, ev) == 0;
        }
    }
    CHECK(ok);
    cf_otlp_seen_free(s);
}

static void test_scores_after_and_before_a_stored_event(void)
{
    out[0] = '\0';
    cf_serve_metrics *m = cf_serve_metrics_new(ROUTES, 1);
    cf_otlp_join *j = cf_otlp_join_new(60000, on_submit, on_score, NULL, m);
    CHECK(j != NULL);
    /* before: by response id, and by trace/span */
    CHECK(cf_otlp_join_eval(j, "r:resp-1", "{\"n\":1}", 7) == 0);
    CHECK(cf_otlp_join_eval(j, "t1-s1", "{\"n\":2}", 7) == 0);
    CHECK_STR(out, "");
    cf_otlp_join_stored(j, "t1-s1", "resp-1");
    /* after: at once */
    CHECK(cf_otlp_join_eval(j, "r:resp-1", "{\"n\":3}", 7) == 1);
    CHECK(cf_otlp_join_eval(j, "t1-s1", "{\"n\":4}", 7) == 1);
    CHECK_STR(out, "score t1-s1 {\"n\":1}\nscore t1-s1 {\"n\":2}\n"
                   "score t1-s1 {\"n\":3}\nscore t1-s1 {\"n\":4}\n");
    CHECK(counter(m, "crucible_otlp_logs_joined_total") == 4);
    cf_otlp_join_free(j);
    CHECK(counter(m, "crucible_otlp_logs_unjoined_total") == 0);
    cf_serve_metrics_free(m);
}

/* A parked span (no content yet) takes its scores with it when it is
 * submitted: those that came before it, by response id or by its key,
 * and those that came while it waited -- here when the join is freed. */
static void test_scores_of_a_parked_span(void)
{
    out[0] = '\0';
    cf_serve_metrics *m = cf_serve_metrics_new(ROUTES, 1);
    cf_otlp_join *j = cf_otlp_join_new(60000, on_submit, on_score, NULL, m);
    cf_buf merged = CF_BUF_INIT;
    CHECK(cf_otlp_join_eval(j, "r:resp-2", "{\"n\":1}", 7) == 0);
    CHECK(cf_otlp_join_span(j, "t2-s2", "resp-2", "{\"ev\":2}", 8, &merged) == 1);
    CHECK(cf_otlp_join_eval(j, "t2-s2", "{\"n\":2}", 7) == 0);
    CHECK(cf_otlp_join_eval(j, "r:resp-2", "{\"n\":3}", 7) == 0);
    CHECK(cf_otlp_join_eval(j, "r:never", "{\"n\":4}", 7) == 0);
    CHECK_STR(out, "");
    cf_otlp_join_free(j);
    /* submitted, then its scores: the one it took when parked and the one
     * on its key, then the one by response id that came after it; the
     * score whose event never came goes out for the owner to look up in
     * the store (and is counted there, found or not) */
    CHECK_STR(out, "submit  {\"ev\":2}\nscore t2-s2 {\"n\":3}\n"
                   "score t2-s2 {\"n\":1}\nscore t2-s2 {\"n\":2}\n"
                   "lookup r:never {\"n\":4}\n");
    CHECK(counter(m, "crucible_otlp_logs_joined_total") == 3);
    CHECK(counter(m, "crucible_otlp_logs_unjoined_total") == 0);
    cf_buf_free(&merged);
    cf_serve_metrics_free(m);
}

static void add_msg(cf_otlp_msgs *ms, const char *role, const char *text)
{
    cf_otlp_msg *msg = cf_otlp_msgs_add(ms, role);
    CHECK(msg != NULL);
    cf_otlp_msg_text(msg, text, strlen(text));
}

/* Input logs that came first wait on with their span until an output
 * message comes; the merged prompt keeps the span's system message. */
static void test_input_logs_park_with_their_span(void)
{
    out[0] = '\0';
    cf_serve_metrics *m = cf_serve_metrics_new(ROUTES, 1);
    cf_otlp_join *j = cf_otlp_join_new(60000, on_submit, on_score, NULL, m);
    cf_otlp_msgs in = {0}, none = {0}, answer = {0};
    add_msg(&in, "user", "Q?");
    CHECK(cf_otlp_join_log(j, "t3-s3", &in, &none) == 0);
    static const char ev[] = "{\"prompt\":\"[{\\\"role\\\":\\\"system\\\",\\\"content\\\":"
                             "\\\"Be terse.\\\"}]\",\"response\":\"\","
                             "\"metadata\":{\"prompt_format\":\"chat\"}}";
    cf_buf merged = CF_BUF_INIT;
    CHECK(cf_otlp_join_span(j, "t3-s3", NULL, ev, strlen(ev), &merged) == 1);
    CHECK(merged.n == 0);
    CHECK_STR(out, "");
    add_msg(&answer, "assistant", "A.");
    CHECK(cf_otlp_join_log(j, "t3-s3", &none, &answer) == 0);
    cf_otlp_join_free(j);
    CHECK_STR(out, "submit  {\"prompt\":\"[{\\\"role\\\":\\\"system\\\",\\\"content\\\":"
                   "\\\"Be terse.\\\"},{\\\"role\\\":\\\"user\\\",\\\"content\\\":\\\"Q?\\\"}]\","
                   "\"response\":\"A.\",\"metadata\":{\"prompt_format\":\"chat\"}}\n");
    CHECK(counter(m, "crucible_otlp_logs_joined_total") == 2);
    CHECK(counter(m, "crucible_otlp_logs_unjoined_total") == 0);
    cf_otlp_msgs_free(&in);
    cf_otlp_msgs_free(&answer);
    cf_buf_free(&merged);
    cf_serve_metrics_free(m);
}

int main(void)
{
    RUN(test_seen_forgets_the_oldest);
    RUN(test_seen_against_a_model);
    RUN(test_scores_after_and_before_a_stored_event);
    RUN(test_scores_of_a_parked_span);
    RUN(test_input_logs_park_with_their_span);
    return cf_test_done();
}
