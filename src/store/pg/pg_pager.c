/*
 * PostgreSQL backend: the pager under cursors and scans. Each page is one
 * parameterised query that continues after the previous page's last row
 * by (inserted_at, seq) (keyset paging on the time indexes); no
 * server-side cursor stays open, so the connection stays free for other
 * statements between pages.
 *
 * A pager with ahead set (curation's light scans) sends the next page's
 * query (PQsendQueryParams) as soon as a page has arrived, before the
 * caller reads the page's rows, and reads what has come of it every so
 * many rows: the server works on page k + 1 while the client works
 * through page k, instead of the two taking turns. Only one query can be
 * in flight on a connection, so whatever else uses it (a strategy's
 * callback calling the store mid-scan, a cursor's page, another scan)
 * first collects the page in flight into its pager (pg_settle, called by
 * pg_exec and every other direct use of the connection); the pager then
 * finds its next page already there. A page whose query failed in flight
 * runs again the ordinary way (pg_retry: a lost connection is
 * re-established, a statement error is reported).
 */
#include "pg_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Rows read between two looks at the page in flight. */
#define POLL_ROWS 512

void pg_pager_init(pg_pager *g, pg_store *s)
{
    memset(g, 0, sizeof *g);
    g->s = s;
    g->remaining = -1;
    g->page = 1000;
    pg_params_init(&g->base);
}

void pg_pager_put(pg_pager *g, const char *frag) { cf_buf_str(&g->head, frag); }

/* Appends "$N" for the next parameter. */
static void put_param(pg_pager *g, const char *cast)
{
    char tmp[32];
    snprintf(tmp, sizeof tmp, "$%d%s", g->base.n + 1, cast);
    cf_buf_str(&g->head, tmp);
}

void pg_pager_cond(pg_pager *g, const char *frag)
{
    cf_buf_str(&g->head, g->nconds++ ? " AND " : " WHERE ");
    cf_buf_str(&g->head, frag);
}

void pg_pager_cond_str(pg_pager *g, const char *column, cf_str v)
{
    pg_pager_cond(g, column);
    cf_buf_str(&g->head, " = ");
    pg_pager_str(g, v);
}

void pg_pager_str(pg_pager *g, cf_str v)
{
    put_param(g, "::text");
    char *copy = NULL;
    if (v.p && g->ncopies < PG_MAX_PARAMS) {
        copy = malloc(v.n + 1);
        if (copy) {
            memcpy(copy, v.p, v.n);
            copy[v.n] = '\0';
            g->copies[g->ncopies++] = copy;
        } else {
            g->oom = 1;
        }
    }
    pg_p_str(&g->base, copy ? (cf_str){copy, v.n} : CF_NULL_STR);
}

void pg_pager_time(pg_pager *g, const char *column, const char *op, int64_t us)
{
    pg_pager_cond(g, column);
    cf_buf_str(&g->head, op);
    put_param(g, "::timestamptz");
    pg_p_time(&g->base, us);
}

void pg_settle(pg_store *s)
{
    pg_pager *g = s->inflight;
    if (!g)
        return;
    s->inflight = NULL;
    g->sent = 0;
    g->settled = 1;
    /* the page's result (or its error), then NULL; a lost connection
     * ends with an error result too */
    PGresult *r;
    while ((r = PQgetResult(s->conn)) != NULL) {
        if (!g->next)
            g->next = r;
        else
            PQclear(r);
    }
}

void pg_pager_free(pg_pager *g)
{
    if (g->sent)
        pg_settle(g->s);
    PQclear(g->next);
    g->next = NULL;
    g->settled = 0;
    PQclear(g->res);
    g->res = NULL;
    for (int i = 0; i < g->ncopies; i++)
        free(g->copies[i]);
    g->ncopies = 0;
    cf_buf_free(&g->head);
    cf_buf_free(&g->sql);
}

/* Builds the next page's query into g->sql and g->p (g->want rows; 0:
 * there is none). */
static int build_page(pg_pager *g, cf_err *err)
{
    if (g->oom || cf_buf_failed(&g->head))
        return cf_fail(err, CF_ENOMEM, "out of memory reading rows");
    g->want = g->page;
    if (g->remaining >= 0 && g->remaining < g->want)
        g->want = g->remaining;
    if (g->want == 0)
        return 0;
    g->p = g->base;
    g->sql.n = 0;
    cf_buf_append(&g->sql, g->head.p, g->head.n);
    char tmp[160];
    if (g->started) {
        snprintf(tmp, sizeof tmp, "%s(t.inserted_at, t.seq) %s ($%d::timestamptz, $%d::int8)",
                 g->nconds ? " AND " : " WHERE ", g->desc ? "<" : ">", g->p.n + 1, g->p.n + 2);
        cf_buf_str(&g->sql, tmp);
        pg_p_time(&g->p, g->last_t);
        pg_p_int(&g->p, g->last_seq);
    }
    cf_buf_str(&g->sql, g->desc ? " ORDER BY t.inserted_at DESC, t.seq DESC"
                                : " ORDER BY t.inserted_at, t.seq");
    snprintf(tmp, sizeof tmp, " LIMIT $%d", g->p.n + 1);
    cf_buf_str(&g->sql, tmp);
    pg_p_int(&g->p, g->want);
    if (!g->started && g->offset > 0) {
        snprintf(tmp, sizeof tmp, " OFFSET $%d", g->p.n + 1);
        cf_buf_str(&g->sql, tmp);
        pg_p_int(&g->p, g->offset);
    }
    if (cf_buf_failed(&g->sql))
        return cf_fail(err, CF_ENOMEM, "out of memory reading rows");
    return 0;
}

static int page_op(pg_store *s, void *arg, int attempt, cf_err *err)
{
    (void)attempt;
    pg_pager *g = arg;
    g->res = pg_exec(s, cf_buf_cstr(&g->sql), &g->p, "reading rows", err);
    return g->res ? 0 : -1;
}

/* Sends the query of the page after g->res (built already); a failed
 * send is left to the ordinary path, which runs the page again. */
static void send_next(pg_pager *g)
{
    pg_store *s = g->s;
    pg_settle(s);
    if (g->p.overflow || !s->conn || PQstatus(s->conn) != CONNECTION_OK)
        return;
    /* a failed send leaves the connection as it was (nothing pending) */
    if (!PQsendQueryParams(s->conn, cf_buf_cstr(&g->sql), g->p.n, NULL, g->p.v, g->p.len,
                           g->p.fmt, 0))
        return;
    g->sent = 1;
    s->inflight = g;
}

/* The page sent ahead as g->res: 1, or 0 when it failed (cleared). */
static int take_next(pg_pager *g)
{
    if (g->sent)
        pg_settle(g->s);
    g->settled = 0;
    PGresult *r = g->next;
    g->next = NULL;
    if (r && PQresultStatus(r) == PGRES_TUPLES_OK) {
        g->res = r;
        return 1;
    }
    PQclear(r);
    return 0;
}

/* Reads what has arrived of the page in flight (without waiting), so
 * that the server keeps sending while the caller works. */
static void poll_next(pg_pager *g)
{
    if (g->sent && g->row % POLL_ROWS == 0 && PQconsumeInput(g->s->conn))
        (void)PQisBusy(g->s->conn);
}

/* g->res holds a new page: the position after it, and the next page
 * ahead when there is one. */
static int arrived(pg_pager *g, cf_err *err)
{
    g->started = 1;
    g->nrows = PQntuples(g->res);
    g->row = 0;
    if (g->remaining >= 0)
        g->remaining -= g->nrows;
    if (g->nrows < g->want) {
        g->done = 1;
    } else {
        int cols = PQnfields(g->res);
        g->last_t = pg_col_int(g->res, g->nrows - 1, cols - 2);
        g->last_seq = pg_col_int(g->res, g->nrows - 1, cols - 1);
        if (g->ahead) {
            if (build_page(g, err))
                return -1;
            if (g->want > 0)
                send_next(g);
        }
    }
    return g->nrows > 0 ? 1 : 0;
}

int pg_pager_next(pg_pager *g, cf_err *err)
{
    if (g->res && ++g->row < g->nrows) {
        poll_next(g);
        return 1;
    }
    if (g->done)
        return 0;
    PQclear(g->res);
    g->res = NULL;
    if ((g->sent || g->settled) && take_next(g))
        return arrived(g, err);
    if (build_page(g, err))
        return -1;
    if (g->want == 0) {
        g->done = 1;
        return 0;
    }
    if (pg_retry(g->s, page_op, g, err))
        return -1;
    return arrived(g, err);
}
