/* The storage operations curation and triggers use, on SQLite: light scans
 * (signal counts per type, order, windows, deployments kept apart, texts
 * only when asked), events by id, inserting curated examples only for
 * events not curated yet (and nothing on failure), and the last export. */
#include "cf_test.h"
#include "cf_test_store.h"

#include <math.h>
#include <stdlib.h>
#include <unistd.h>

#include "crucible/store/cf_store.h"

#define DB "test_store_curation.db"

static cf_store *open_fresh(void) { return cf_test_store_fresh(DB); }

static void add_event(cf_store *s, const char *id, const char *dep, const char *prompt,
                      double q, int64_t at)
{
    cf_event e;
    memset(&e, 0, sizeof e);
    e.id = cf_cstr(id);
    e.deployment_id = cf_cstr(dep);
    e.prompt = cf_cstr(prompt);
    e.response = cf_cstr("resp");
    e.latency_ms = 7;
    e.token_count = CF_NULL_INT;
    e.quality_score = q;
    e.inserted_at = at;
    cf_err err;
    if (cf_store_insert_events(s, &e, 1, NULL, NULL, &err) < 0)
        fprintf(stderr, "insert: %s\n", err.msg);
}

static void add_signal(cf_store *s, const char *event, const char *type)
{
    cf_signal g;
    memset(&g, 0, sizeof g);
    g.inference_event_id = cf_cstr(event);
    g.signal_type = cf_cstr(type);
    char id[37];
    cf_err err;
    if (cf_store_insert_signal(s, &g, id, &err))
        fprintf(stderr, "signal: %s\n", err.msg);
}

static void test_light_scan(void)
{
    cf_store *s = open_fresh();
    const char *hostile = "x'); DROP TABLE inference_events;--";
    add_event(s, "a", hostile, "first", 0.5, 1000);
    add_event(s, "b", hostile, "second", NAN, 2000);
    add_event(s, "c", hostile, "third", 1.0, 3000);
    add_event(s, "z", "other", "elsewhere", 0.1, 1500);
    add_signal(s, "a", "thumbs_up");
    add_signal(s, "a", "thumbs_up");
    add_signal(s, "a", "report");
    add_signal(s, "c", "edit");
    add_signal(s, "c", "custom_kind");
    add_signal(s, "z", "thumbs_down");
    cf_query q;
    cf_query_init(&q);
    q.deployment_id = cf_cstr(hostile);
    q.descending = 1;
    cf_light_scan *scan;
    cf_err err;
    CHECK(cf_store_open_light_events(s, &q, CF_LIGHT_SIGNALS, &scan, &err) == 0);
    cf_light_event r;
    const char *order[] = {"c", "b", "a"};
    int i = 0, ok = 1;
    while (cf_light_scan_next(scan, &r, &err) == 1) {
        ok &= i < 3 && r.id.n == 1 && r.id.p[0] == order[i][0];
        ok &= r.prompt.p == NULL && r.response.p == NULL && r.latency_ms == 7;
        if (i == 0)
            ok &= r.signals[CF_SIG_EDIT] == 1 && r.signals[CF_SIG_OTHER] == 1 && r.quality_score == 1.0;
        if (i == 1)
            ok &= isnan(r.quality_score) && r.signals[CF_SIG_THUMBS_UP] == 0;
        if (i == 2)
            ok &= r.signals[CF_SIG_THUMBS_UP] == 2 && r.signals[CF_SIG_REPORT] == 1
                  && r.signals[CF_SIG_THUMBS_DOWN] == 0 && r.inserted_at == 1000;
        i++;
    }
    CHECK(ok && i == 3);
    cf_light_scan_close(scan);
    /* texts when asked, a window, ascending */
    q.descending = 0;
    q.since = 1500;
    q.until = 3000;
    CHECK(cf_store_open_light_events(s, &q, CF_LIGHT_PROMPT | CF_LIGHT_RESPONSE, &scan, &err) == 0);
    CHECK(cf_light_scan_next(scan, &r, &err) == 1);
    CHECK(r.id.p[0] == 'b' && r.prompt.n == 6 && memcmp(r.prompt.p, "second", 6) == 0);
    CHECK(r.response.n == 4 && r.signals[CF_SIG_THUMBS_UP] == 0);
    CHECK(cf_light_scan_next(scan, &r, &err) == 0);
    CHECK(cf_light_scan_next(scan, &r, &err) == 0); /* after the end, still the end */
    cf_light_scan_close(scan);
    /* the table the scan reads is intact */
    cf_query_init(&q);
    int64_t n = 0;
    CHECK(cf_store_count(s, CF_KIND_EVENTS, &q, &n, &err) == 0 && n == 4);
    CHECK(cf_signal_kind_of(cf_cstr("share")) == CF_SIG_SHARE);
    CHECK(cf_signal_kind_of(cf_cstr("thumbs")) == CF_SIG_OTHER);
    CHECK(strcmp(cf_signal_kind_name(CF_SIG_REGENERATE), "regenerate") == 0);
    cf_store_close(s);
}

static void test_events_by_ids(void)
{
    cf_store *s = open_fresh();
    add_event(s, "a", "d", "pa", 0.5, 1000);
    add_event(s, "b", "d", "pb", 0.5, 2000);
    add_event(s, "it's \"quoted\"", "d", "pq", 0.5, 3000);
    cf_str ids[] = {cf_cstr("b"), cf_cstr("missing"), cf_cstr("it's \"quoted\""), cf_cstr("a")};
    cf_cursor *c;
    cf_err err;
    CHECK(cf_store_open_events_by_ids(s, ids, 4, &c, &err) == 0);
    cf_row row;
    const char *want[] = {"pb", "pq", "pa"};
    int i = 0, ok = 1;
    while (cf_cursor_next(c, &row, &err) == 1) {
        ok &= i < 3 && row.event.prompt.n == 2 && memcmp(row.event.prompt.p, want[i], 2) == 0;
        i++;
    }
    CHECK(ok && i == 3);
    cf_cursor_close(c);
    CHECK(cf_store_open_events_by_ids(s, ids, 0, &c, &err) == 0);
    CHECK(cf_cursor_next(c, &row, &err) == 0);
    cf_cursor_close(c);
    cf_store_close(s);
}

static cf_curated curated(const char *event, const char *source, double score)
{
    cf_curated c;
    memset(&c, 0, sizeof c);
    c.inference_event_id = cf_cstr(event);
    c.deployment_id = cf_cstr("d");
    c.curation_source = cf_cstr(source);
    c.curation_score = score;
    c.prompt = cf_cstr("p");
    c.response = cf_cstr("r");
    return c;
}

static void test_insert_curated_new(void)
{
    cf_store *s = open_fresh();
    cf_curated rows[3] = {curated("e1", "user_edit", 10.0), curated("e2", "high_quality", 3.9),
                          curated("e1", "hard_example", 1.0)};
    unsigned char done[3];
    int64_t n;
    cf_err err;
    CHECK(cf_store_insert_curated_new(s, rows, 3, done, &n, &err) == 0);
    CHECK(n == 2 && done[0] == 1 && done[1] == 1 && done[2] == 0); /* e1 twice in one batch */
    cf_curated again[2] = {curated("e2", "diverse", 1.0), curated("e3", "diverse", 1.0)};
    CHECK(cf_store_insert_curated_new(s, again, 2, done, &n, &err) == 0);
    CHECK(n == 1 && done[0] == 0 && done[1] == 1);
    cf_query q;
    cf_query_init(&q);
    q.deployment_id = cf_cstr("d");
    int64_t count = 0;
    CHECK(cf_store_count(s, CF_KIND_CURATED, &q, &count, &err) == 0 && count == 3);
    /* a bad row: nothing of the batch is written */
    cf_curated bad[2] = {curated("e4", "x", 1.0), curated("e5", "x", 1.0)};
    bad[1].curation_source = CF_NULL_STR;
    CHECK(cf_store_insert_curated_new(s, bad, 2, done, &n, &err) == -1 && err.code == CF_EINVAL);
    CHECK(strstr(err.msg, "curated[1].curation_source") != NULL);
    /* text that is not UTF-8, in any text field: refused, nothing written */
    bad[1] = curated("e5", "x", 1.0);
    bad[1].response = cf_cstr("call \xff\xfe me");
    CHECK(cf_store_insert_curated_new(s, bad, 2, done, &n, &err) == -1 && err.code == CF_EINVAL);
    CHECK(strstr(err.msg, "curated[1].response: not valid UTF-8 (bad byte 0xff at offset 5)")
          != NULL);
    bad[1] = curated("e5", "x\xc3", 1.0);
    CHECK(cf_store_insert_curated(s, bad, 2, &err) == -1 && err.code == CF_EINVAL);
    CHECK(strstr(err.msg, "curated[1].curation_source: not valid UTF-8") != NULL);
    CHECK(cf_store_count(s, CF_KIND_CURATED, &q, &count, &err) == 0 && count == 3);
    /* a failure in the middle (a duplicate id) rolls the batch back */
    cf_curated dupid[2] = {curated("e6", "x", 1.0), curated("e7", "x", 1.0)};
    dupid[0].id = cf_cstr("same-id");
    dupid[1].id = cf_cstr("same-id");
    CHECK(cf_store_insert_curated_new(s, dupid, 2, done, &n, &err) == -1 && err.code == CF_EDB);
    CHECK(done[0] == 0 && done[1] == 0);
    CHECK(cf_store_count(s, CF_KIND_CURATED, &q, &count, &err) == 0 && count == 3);
    cf_store_close(s);
}

static void test_last_export(void)
{
    cf_store *s = open_fresh();
    int64_t at = 0;
    cf_err err;
    CHECK(cf_store_last_export_at(s, cf_cstr("d"), &at, &err) == 0 && at == CF_NO_TIME);
    cf_curated rows[2] = {curated("e1", "x", 1.0), curated("e2", "x", 1.0)};
    rows[0].id = cf_cstr("c1");
    rows[1].id = cf_cstr("c2");
    CHECK(cf_store_insert_curated(s, rows, 2, &err) == 2);
    CHECK(cf_store_last_export_at(s, cf_cstr("d"), &at, &err) == 0 && at == CF_NO_TIME);
    int64_t before = cf_now_us();
    cf_str ids[] = {cf_cstr("c1")};
    CHECK(cf_store_mark_curated_exported(s, ids, 1, cf_cstr("batch-1"), &err) >= 0);
    CHECK(cf_store_last_export_at(s, cf_cstr("d"), &at, &err) == 0);
    CHECK(at >= before && at <= cf_now_us());
    CHECK(cf_store_last_export_at(s, cf_cstr("other"), &at, &err) == 0 && at == CF_NO_TIME);
    /* a row inserted as exported counts with its update time */
    cf_curated pre = curated("e9", "x", 1.0);
    pre.deployment_id = cf_cstr("old");
    pre.exported = 1;
    pre.inserted_at = 12345;
    CHECK(cf_store_insert_curated(s, &pre, 1, &err) == 1);
    CHECK(cf_store_last_export_at(s, cf_cstr("old"), &at, &err) == 0 && at == 12345);
    CHECK(cf_store_last_export_at(s, CF_NULL_STR, &at, &err) == -1 && err.code == CF_EINVAL);
    cf_store_close(s);
}

int main(void)
{
    RUN(test_light_scan);
    RUN(test_events_by_ids);
    RUN(test_insert_curated_new);
    RUN(test_last_export);
    cf_test_store_remove(DB);
    return cf_test_done();
}
