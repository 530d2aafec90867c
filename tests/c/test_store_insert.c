/* Record ids are generated above the vtable: every insert reaches the
 * backend with its rows' ids set, and the ids reported back are those the
 * backend got. A recording store stands in for a backend. */
#include "cf_test.h"

#include "crucible/store/cf_store.h"

typedef struct rec_store {
    cf_store base;
    const void *rows;      /* the rows the last insert got */
    cf_str ids[8];         /* their ids, copied */
    char text[8][64];
    size_t n;
    int acquire;           /* insert_run's answer */
} rec_store;

static void keep(rec_store *s, size_t i, cf_str id)
{
    s->ids[i] = id;
    if (id.p && id.n < sizeof s->text[i]) {
        memcpy(s->text[i], id.p, id.n);
        s->text[i][id.n] = '\0';
    }
}

static int r_events(cf_store *b, const cf_event *ev, size_t n, unsigned char *dup, cf_err *e)
{
    (void)e;
    (void)dup;
    rec_store *s = (rec_store *)b;
    s->rows = ev;
    s->n = n;
    for (size_t i = 0; i < n; i++)
        keep(s, i, ev[i].id);
    return (int)n;
}

static int r_signal(cf_store *b, const cf_signal *x, cf_err *e)
{
    (void)e;
    keep((rec_store *)b, 0, x->id);
    return 0;
}

static int r_drift(cf_store *b, const cf_drift_result *x, cf_err *e)
{
    (void)e;
    keep((rec_store *)b, 0, x->id);
    return 0;
}

static int r_trigger(cf_store *b, const cf_trigger_event *x, cf_err *e)
{
    (void)e;
    keep((rec_store *)b, 0, x->id);
    return 0;
}

static int r_curated(cf_store *b, const cf_curated *c, size_t n, cf_err *e)
{
    (void)e;
    rec_store *s = (rec_store *)b;
    s->n = n;
    for (size_t i = 0; i < n; i++)
        keep(s, i, c[i].id);
    return (int)n;
}

static int r_curated_new(cf_store *b, const cf_curated *c, size_t n, unsigned char *ins,
                         int64_t *count, cf_err *e)
{
    (void)ins;
    *count = (int64_t)n;
    return r_curated(b, c, n, e) < 0 ? -1 : 0;
}

static int r_run(cf_store *b, const cf_workflow_run *r, int *acquired, cf_err *e)
{
    (void)e;
    rec_store *s = (rec_store *)b;
    keep(s, 0, r->id);
    *acquired = s->acquire;
    return 0;
}

static const cf_store_vt rec_vt = {
    .name = "recording",
    .insert_events = r_events,
    .insert_signal = r_signal,
    .insert_drift = r_drift,
    .insert_trigger = r_trigger,
    .insert_curated = r_curated,
    .insert_curated_new = r_curated_new,
    .insert_run = r_run,
};

static int is_uuid(const char *s) { return strlen(s) == 36 && s[8] == '-' && s[14] == '7'; }

static void test_events_get_ids(void)
{
    rec_store s = {.base.vt = &rec_vt};
    cf_event ev[3] = {{.id = {NULL, 0}}, {.id = cf_cstr("mine")}, {.id = {NULL, 0}}};
    char ids[3][37];
    cf_err err;
    CHECK(cf_store_insert_events(&s.base, ev, 3, ids, NULL, &err) == 3);
    CHECK(s.n == 3 && s.rows != ev);
    CHECK(is_uuid(s.text[0]) && is_uuid(s.text[2]) && strcmp(s.text[0], s.text[2]) != 0);
    CHECK_STR(s.text[1], "mine");
    for (int i = 0; i < 3; i++)
        CHECK_STR(ids[i], s.text[i]);
    /* every id given: the rows go through as they are */
    cf_event all[2] = {{.id = cf_cstr("a")}, {.id = cf_cstr("b")}};
    CHECK(cf_store_insert_events(&s.base, all, 2, NULL, NULL, &err) == 2);
    CHECK(s.rows == all);
}

static void test_single_rows_get_ids(void)
{
    rec_store s = {.base.vt = &rec_vt};
    cf_err err;
    char id[37];
    cf_signal sig = {.inference_event_id = cf_cstr("e"), .signal_type = cf_cstr("copy")};
    CHECK(cf_store_insert_signal(&s.base, &sig, id, &err) == 0);
    CHECK(is_uuid(s.text[0]) && strcmp(id, s.text[0]) == 0);
    cf_drift_result d = {.deployment_id = cf_cstr("d"), .drift_type = cf_cstr("x")};
    CHECK(cf_store_insert_drift(&s.base, &d, id, &err) == 0);
    CHECK(is_uuid(s.text[0]) && strcmp(id, s.text[0]) == 0);
    cf_trigger_event t = {.id = cf_cstr("given"), .deployment_id = cf_cstr("d"),
                          .trigger_type = cf_cstr("x")};
    CHECK(cf_store_insert_trigger(&s.base, &t, id, &err) == 0);
    CHECK_STR(s.text[0], "given");
    CHECK_STR(id, "given");
}

static void test_curated_and_runs_get_ids(void)
{
    rec_store s = {.base.vt = &rec_vt};
    cf_err err;
    cf_curated c[2] = {{.id = {NULL, 0}}, {.id = cf_cstr("c2")}};
    CHECK(cf_store_insert_curated(&s.base, c, 2, &err) == 2);
    CHECK(is_uuid(s.text[0]));
    CHECK_STR(s.text[1], "c2");
    int64_t count = 0;
    CHECK(cf_store_insert_curated_new(&s.base, c, 2, NULL, &count, &err) == 0 && count == 2);
    CHECK(is_uuid(s.text[0]));
    cf_workflow_run r = {.name = cf_cstr("nightly"), .status = cf_cstr("ok")};
    char id[37] = "untouched";
    int acquired = -1;
    CHECK(cf_store_insert_run(&s.base, &r, id, &acquired, &err) == 0 && acquired == 0);
    CHECK(is_uuid(s.text[0]));
    CHECK_STR(id, "untouched");
    s.acquire = 1;
    CHECK(cf_store_insert_run(&s.base, &r, id, &acquired, &err) == 0 && acquired == 1);
    CHECK(is_uuid(s.text[0]) && strcmp(id, s.text[0]) == 0);
}

int main(void)
{
    RUN(test_events_get_ids);
    RUN(test_single_rows_get_ids);
    RUN(test_curated_and_runs_get_ids);
    return cf_test_done();
}
