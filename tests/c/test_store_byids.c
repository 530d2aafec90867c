/* The one cursor over events by id, above the vtable: ids in the order
 * given, paged by the backend's page size, or read one at a time through
 * open_cursor when the backend has no page reader; a missing id refused.
 * A fake store holds events "a", "b", "c". */
#include "cf_test.h"

#include <stdlib.h>

#include "crucible/store/cf_store.h"

static const char *const stored[] = {"a", "b", "c"};

typedef struct fake_store {
    cf_store base;
    size_t pages, largest, opens;
} fake_store;

/* A cursor over a list of stored ids, one row each. */
typedef struct list_cursor {
    cf_cursor base;
    cf_str ids[8];
    size_t n, next;
} list_cursor;

static int list_next(cf_cursor *b, cf_row *row, cf_err *e)
{
    (void)e;
    list_cursor *c = (list_cursor *)b;
    if (c->next == c->n)
        return 0;
    memset(row, 0, sizeof *row);
    row->event.id = c->ids[c->next++];
    return 1;
}

static void list_close(cf_cursor *b) { free(b); }

static const cf_cursor_vt list_vt = {list_next, list_close};

static int is_stored(cf_str id)
{
    for (size_t i = 0; i < 3; i++)
        if (id.n == 1 && id.p[0] == stored[i][0])
            return 1;
    return 0;
}

static int open_list(const cf_str *ids, size_t n, cf_cursor **out, cf_err *e)
{
    list_cursor *c = calloc(1, sizeof *c);
    if (!c)
        return cf_fail(e, CF_ENOMEM, "out of memory");
    c->base.vt = &list_vt;
    c->base.kind = CF_KIND_EVENTS;
    for (size_t i = 0; i < n && c->n < 8; i++)
        if (is_stored(ids[i]))
            c->ids[c->n++] = ids[i];
    *out = &c->base;
    return 0;
}

static int f_page(cf_store *b, const cf_str *ids, size_t n, cf_cursor **out, cf_err *e)
{
    fake_store *s = (fake_store *)b;
    s->pages++;
    if (n > s->largest)
        s->largest = n;
    return open_list(ids, n, out, e);
}

static int f_cursor(cf_store *b, cf_kind k, const cf_query *q, cf_cursor **out, cf_err *e)
{
    fake_store *s = (fake_store *)b;
    s->opens++;
    CHECK(k == CF_KIND_EVENTS && q->id.p != NULL && q->limit == 1);
    return open_list(&q->id, 1, out, e);
}

static const cf_store_vt paged_vt = {.name = "paged", .open_events_page = f_page,
                                     .events_page = 2, .open_cursor = f_cursor};
static const cf_store_vt plain_vt = {.name = "plain", .open_cursor = f_cursor};

/* The ids the cursor yields, joined ("c,a,b"). */
static void read_all(cf_store *s, const cf_str *ids, size_t n, char *out, size_t cap)
{
    cf_cursor *c = NULL;
    cf_err err;
    cf_row row;
    size_t len = 0;
    out[0] = '\0';
    CHECK(cf_store_open_events_by_ids(s, ids, n, &c, &err) == 0);
    while (c && cf_cursor_next(c, &row, &err) == 1 && len + row.event.id.n + 2 < cap) {
        if (len)
            out[len++] = ',';
        memcpy(out + len, row.event.id.p, row.event.id.n);
        len += row.event.id.n;
        out[len] = '\0';
    }
    cf_cursor_close(c);
}

static void test_pages(void)
{
    fake_store s = {.base.vt = &paged_vt};
    cf_str ids[5] = {cf_cstr("c"), cf_cstr("x"), cf_cstr("a"), cf_cstr("y"), cf_cstr("b")};
    char got[64];
    read_all(&s.base, ids, 5, got, sizeof got);
    CHECK_STR(got, "c,a,b");
    CHECK(s.pages == 3 && s.largest == 2 && s.opens == 0);
}

static void test_one_at_a_time(void)
{
    fake_store s = {.base.vt = &plain_vt};
    cf_str ids[4] = {cf_cstr("b"), cf_cstr("nope"), cf_cstr("a"), cf_cstr("b")};
    char got[64];
    read_all(&s.base, ids, 4, got, sizeof got);
    CHECK_STR(got, "b,a,b");
    CHECK(s.opens == 4 && s.pages == 0);
    read_all(&s.base, ids, 0, got, sizeof got);
    CHECK_STR(got, "");
}

static void test_missing_id_refused(void)
{
    fake_store s = {.base.vt = &paged_vt};
    cf_str ids[2] = {cf_cstr("a"), {NULL, 0}};
    cf_cursor *c = NULL;
    cf_err err;
    CHECK(cf_store_open_events_by_ids(&s.base, ids, 2, &c, &err) == -1 && c == NULL);
    CHECK(err.code == CF_EINVAL && strstr(err.msg, "ids[2]") != NULL);
}

int main(void)
{
    RUN(test_pages);
    RUN(test_one_at_a_time);
    RUN(test_missing_id_refused);
    return cf_test_done();
}
