/*
 * The one cursor over events by id, above the vtable: it keeps the ids,
 * refuses a missing one, and walks them in the order given, a page at a
 * time. A backend that can read a page of ids in one query supplies
 * open_events_page (and its page size), and gets pages of distinct ids,
 * to return in the page's order; any other reads each id through
 * its ordinary cursor (open_cursor with q.id). Ids not stored are skipped.
 */
#include "crucible/store/cf_store.h"

#include <stdlib.h>
#include <string.h>

typedef struct byids {
    cf_cursor base;
    cf_store *s;
    char *text;      /* the ids, back to back */
    cf_str *ids;     /* views into text */
    size_t n, next, page;
    cf_cursor *cur;  /* the current page's cursor */
} byids;

static int open_page(byids *c, cf_err *err)
{
    const cf_str *ids = c->ids + c->next;
    size_t k = c->n - c->next < c->page ? c->n - c->next : c->page;
    /* a page holds distinct ids: it ends before the first repeat (an id
     * asked for twice is read twice, the second time on the next page) */
    for (size_t j = 1; j < k; j++)
        for (size_t i = 0; i < j; i++)
            if (ids[i].n == ids[j].n && (ids[i].n == 0 || memcmp(ids[i].p, ids[j].p, ids[i].n) == 0)) {
                k = j;
                break;
            }
    c->next += k;
    if (c->s->vt->open_events_page)
        return c->s->vt->open_events_page(c->s, ids, k, &c->cur, err);
    cf_query q;
    cf_query_init(&q);
    q.id = ids[0];
    q.limit = 1;
    return cf_store_open_cursor(c->s, CF_KIND_EVENTS, &q, &c->cur, err);
}

static int byids_next(cf_cursor *base, cf_row *row, cf_err *err)
{
    byids *c = (byids *)base;
    for (;;) {
        if (c->cur) {
            int r = cf_cursor_next(c->cur, row, err);
            if (r != 0)
                return r;
            cf_cursor_close(c->cur);
            c->cur = NULL;
        }
        if (c->next == c->n)
            return 0;
        if (open_page(c, err))
            return -1;
    }
}

static void byids_close(cf_cursor *base)
{
    byids *c = (byids *)base;
    cf_cursor_close(c->cur);
    free(c->text);
    free(c->ids);
    free(c);
}

static const cf_cursor_vt byids_vt = {byids_next, byids_close};

int cf_store_open_events_by_ids(cf_store *s, const cf_str *ids, size_t n, cf_cursor **out,
                                cf_err *err)
{
    *out = NULL;
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++) {
        if (!ids[i].p)
            return cf_fail(err, CF_EINVAL, "ids[%zu]: missing", i + 1);
        bytes += ids[i].n;
    }
    byids *c = calloc(1, sizeof *c);
    if (c) {
        c->text = malloc(bytes ? bytes : 1);
        c->ids = malloc((n ? n : 1) * sizeof *c->ids);
    }
    if (!c || !c->text || !c->ids) {
        if (c)
            byids_close(&c->base);
        return cf_fail(err, CF_ENOMEM, "out of memory opening a cursor");
    }
    c->base.vt = &byids_vt;
    c->base.kind = CF_KIND_EVENTS;
    c->s = s;
    c->n = n;
    c->page = s->vt->open_events_page && s->vt->events_page ? s->vt->events_page : 1;
    for (size_t i = 0, at = 0; i < n; at += ids[i].n, i++) {
        if (ids[i].n)
            memcpy(c->text + at, ids[i].p, ids[i].n);
        c->ids[i] = (cf_str){c->text + at, ids[i].n};
    }
    *out = &c->base;
    return 0;
}
