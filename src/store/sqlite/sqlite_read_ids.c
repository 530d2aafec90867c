/*
 * SQLite backend, events by id (the vtable's open_events_page): a page of
 * up to SQ_IDS_PAGE ids is read with one prepared statement, reset and
 * re-bound per id, in the order given; ids not stored are skipped.
 *
 * The cursor above the vtable (cf_store_byids.c) would otherwise open an
 * ordinary cursor per id, assembling and preparing its SQL each time:
 * curation reads its few thousand picked events this way.
 */
#include "sqlite_int.h"

#include <stdlib.h>
#include <string.h>

typedef struct sq_idpage {
    cf_cursor base;
    sq_store *s;
    sqlite3_stmt *st;
    const cf_str *ids; /* the caller's: kept while this cursor is open */
    size_t n, next;
} sq_idpage;

static int ip_next(cf_cursor *base, cf_row *row, cf_err *err)
{
    sq_idpage *c = (sq_idpage *)base;
    while (c->next < c->n) {
        sqlite3_reset(c->st);
        sq_bind_str(c->st, 1, c->ids[c->next++]);
        int rc = sqlite3_step(c->st);
        if (rc == SQLITE_ROW) {
            memset(row, 0, sizeof *row);
            sq_read_event(c->st, &row->event);
            return 1;
        }
        if (rc != SQLITE_DONE)
            return sq_fail(c->s, err, "reading events by id");
    }
    return 0;
}

static void ip_close(cf_cursor *base)
{
    sq_idpage *c = (sq_idpage *)base;
    sqlite3_finalize(c->st);
    free(c);
}

static const cf_cursor_vt ip_vt = {ip_next, ip_close};

int sq_open_events_page(cf_store *base, const cf_str *ids, size_t n, cf_cursor **out,
                        cf_err *err)
{
    sq_store *s = (sq_store *)base;
    *out = NULL;
    sq_idpage *c = calloc(1, sizeof *c);
    if (!c)
        return cf_fail(err, CF_ENOMEM, "out of memory opening a cursor");
    c->base.vt = &ip_vt;
    c->base.kind = CF_KIND_EVENTS;
    c->s = s;
    c->ids = ids;
    c->n = n;
    if (sqlite3_prepare_v2(s->db, "SELECT " SQ_EVENT_COLUMNS " FROM inference_events WHERE id = ?",
                           -1, &c->st, NULL) != SQLITE_OK) {
        free(c);
        return sq_fail(s, err, "preparing a read by id");
    }
    *out = &c->base;
    return 0;
}
