/*
 * PostgreSQL backend: the data lifecycle (migration 9's deletion_audit).
 * A purge batch is one statement, so one transaction: a CTE picks
 * batch_rows parent ids, data-modifying CTEs delete their dependents
 * (cf_life_deps) and the parents, and the row counts come back in one
 * row. Batches keep each transaction short and the WAL written per
 * statement bounded, so the server is never flooded by one big delete.
 * Backups are pg_dump's (docs/lifecycle.md).
 */
#include "pg_int.h"

#include <string.h>

#include "../cf_life_sql.h"

#define TIME_FMT "%s::timestamptz"

static void init_sql(cf_life_sql *q)
{
    cf_life_sql_init(q, '$');
    q->time_fmt = TIME_FMT;
}

static void to_params(const cf_life_sql *q, pg_params *p)
{
    pg_params_init(p);
    for (int i = 0; i < q->np; i++) {
        if (q->p[i].type == CF_COLVAL_TEXT)
            pg_p_str(p, q->p[i].s);
        else if (q->is_time[i])
            pg_p_time(p, q->p[i].i);
        else
            pg_p_int(p, q->p[i].i);
    }
}

/* Runs q; res (PQclear it) or NULL with err set. */
static PGresult *run(pg_store *s, cf_life_sql *q, const char *what, cf_err *err)
{
    if (cf_buf_putc(&q->b, '\0')) {
        cf_fail(err, CF_ENOMEM, "out of memory building %s", what);
        return NULL;
    }
    q->b.n--;
    pg_params p;
    to_params(q, &p);
    return pg_exec(s, q->b.p, &p, what, err);
}

static int events(const cf_purge *p) { return strcmp(p->table, "inference_events") == 0; }

/* Appends one count or delete CTE per dependent, then the parents', and
 * the SELECT of every count: (deps..., parents). */
static void cascade_sql(cf_life_sql *q, const cf_purge *p, int count_only)
{
    size_t n = events(p) ? cf_life_ndeps : 0;
    for (size_t i = 0; i < n; i++) {
        char name[40];
        snprintf(name, sizeof name, ", d%zu AS (", i);
        cf_buf_str(&q->b, name);
        cf_buf_str(&q->b, count_only ? "SELECT 1 FROM " : "DELETE FROM ");
        cf_buf_str(&q->b, cf_life_deps[i].table);
        cf_buf_str(&q->b, " WHERE ");
        cf_buf_str(&q->b, cf_life_deps[i].column);
        cf_buf_str(&q->b, " IN (");
        cf_life_parent_ids(q, i, "SELECT id FROM batch");
        cf_buf_str(&q->b, count_only ? "))" : ") RETURNING 1)");
    }
    cf_buf_str(&q->b, count_only ? ", p AS (SELECT 1 FROM batch)"
                                 : ", p AS (DELETE FROM ");
    if (!count_only) {
        cf_buf_str(&q->b, p->table);
        cf_buf_str(&q->b, " WHERE id IN (SELECT id FROM batch) RETURNING 1)");
    }
    cf_buf_str(&q->b, " SELECT ");
    for (size_t i = 0; i < n; i++) {
        char sel[48];
        snprintf(sel, sizeof sel, "(SELECT count(*) FROM d%zu), ", i);
        cf_buf_str(&q->b, sel);
    }
    cf_buf_str(&q->b, "(SELECT count(*) FROM p)");
}

/* The whole statement: WITH batch AS (the parent ids), then the cascade. */
static int purge_sql(cf_life_sql *q, const cf_purge *p, int count_only)
{
    cf_buf_str(&q->b, "WITH batch AS (SELECT id FROM ");
    cf_buf_str(&q->b, p->table);
    cf_buf_str(&q->b, " WHERE ");
    cf_life_where(q, p);
    if (!count_only) {
        cf_buf_str(&q->b, " LIMIT ");
        cf_life_sql_int(q, p->batch_rows);
    }
    cf_buf_putc(&q->b, ')');
    cascade_sql(q, p, count_only);
    return cf_buf_failed(&q->b) ? -1 : 0;
}

static void add(cf_life_counts *out, const char *table, int64_t n)
{
    int i = cf_life_table_index(table);
    if (i >= 0)
        out->n[i] += n;
}

/* Adds one result row's counts; returns the parents'. */
static int64_t add_row(const PGresult *r, const cf_purge *p, cf_life_counts *out)
{
    size_t n = events(p) ? cf_life_ndeps : 0;
    for (size_t i = 0; i < n; i++)
        add(out, cf_life_deps[i].table, pg_col_int(r, 0, (int)i));
    int64_t parents = pg_col_int(r, 0, (int)n);
    add(out, p->table, parents);
    return parents;
}

int pg_purge(cf_store *base, const cf_purge *p, cf_life_counts *out, cf_err *err)
{
    pg_store *s = (pg_store *)base;
    cf_life_sql q;
    init_sql(&q);
    if (purge_sql(&q, p, p->dry_run)) {
        cf_buf_free(&q.b);
        return cf_fail(err, CF_ENOMEM, "out of memory building a purge");
    }
    int rc = 0;
    for (int64_t b = 0; !p->max_batches || b < p->max_batches; b++) {
        PGresult *r = run(s, &q, p->dry_run ? "counting rows to purge" : "purging", err);
        if (!r) {
            rc = -1;
            break;
        }
        int64_t parents = add_row(r, p, out);
        PQclear(r);
        if (p->dry_run || parents < p->batch_rows)
            break;
    }
    cf_buf_free(&q.b);
    return rc;
}

int pg_list_user_exports(cf_store *base, const cf_purge *p, cf_export_row_fn cb, void *ud,
                         cf_err *err)
{
    pg_store *s = (pg_store *)base;
    cf_life_sql q;
    init_sql(&q);
    cf_buf_str(&q.b, "SELECT coalesce(m.export_batch_id, c.export_batch_id, ''), c.id,"
                     " c.inference_event_id, c.prompt, c.response FROM curated_examples c"
                     " LEFT JOIN curated_export_marks m ON m.curated_id = c.id"
                     " WHERE (c.exported OR m.curated_id IS NOT NULL)"
                     " AND c.inference_event_id IN (SELECT id FROM inference_events WHERE ");
    cf_life_where(&q, p);
    cf_buf_str(&q.b, ") ORDER BY 1, c.seq");
    PGresult *r = run(s, &q, "listing a user's exports", err);
    cf_buf_free(&q.b);
    if (!r)
        return -1;
    int rc = 0;
    for (int i = 0; !rc && i < PQntuples(r); i++) {
        cf_exported_row row = {pg_col_str(r, i, 0), pg_col_str(r, i, 1), pg_col_str(r, i, 2),
                               pg_col_str(r, i, 3), pg_col_str(r, i, 4)};
        rc = cb(ud, &row);
    }
    PQclear(r);
    return rc;
}

int pg_count_orphans(cf_store *base, cf_life_counts *out, cf_err *err)
{
    pg_store *s = (pg_store *)base;
    cf_life_sql q;
    init_sql(&q);
    int rc = 0;
    for (size_t i = 0; !rc && i < cf_life_ndeps; i++) {
        const cf_life_dep *d = &cf_life_deps[i];
        cf_life_sql_reset(&q);
        cf_buf_str(&q.b, "SELECT count(*) FROM ");
        cf_buf_str(&q.b, d->table);
        cf_buf_str(&q.b, " d WHERE NOT EXISTS (SELECT 1 FROM ");
        cf_buf_str(&q.b, d->parent);
        cf_buf_str(&q.b, " p WHERE p.id = d.");
        cf_buf_str(&q.b, d->column);
        cf_buf_putc(&q.b, ')');
        PGresult *r = run(s, &q, "counting orphans", err);
        if (!r) {
            rc = -1;
            break;
        }
        add(out, d->table, pg_col_int(r, 0, 0));
        PQclear(r);
    }
    cf_buf_free(&q.b);
    return rc;
}

int pg_put_deletion(cf_store *base, const cf_deletion *d, cf_err *err)
{
    pg_store *s = (pg_store *)base;
    pg_params p;
    pg_params_init(&p);
    pg_p_str(&p, d->id);
    pg_p_str(&p, d->action);
    pg_p_str(&p, d->subject);
    pg_p_str(&p, d->deployment_id);
    pg_p_str(&p, d->status);
    pg_p_time(&p, d->started_at);
    pg_p_time(&p, d->finished_at);
    pg_p_str(&p, d->details.p ? d->details : (cf_str){"{}", 2});
    return pg_run(s,
                  "INSERT INTO deletion_audit (id, action, subject, deployment_id, status,"
                  " started_at, finished_at, details) VALUES ($1, $2, $3, $4, $5,"
                  " $6::timestamptz, $7::timestamptz, $8::text::jsonb) ON CONFLICT (id) DO UPDATE"
                  " SET status = excluded.status, finished_at = excluded.finished_at,"
                  " details = excluded.details",
                  &p, "writing the deletion record", err);
}

int pg_list_deletions(cf_store *base, int64_t limit, cf_deletion_fn cb, void *ud, cf_err *err)
{
    pg_store *s = (pg_store *)base;
    pg_params p;
    pg_params_init(&p);
    pg_p_int(&p, limit);
    PGresult *r = pg_exec(s,
                          "SELECT id, action, subject, deployment_id, status, "
                          PG_US("started_at") ", " PG_US("finished_at") ", details::text"
                          " FROM deletion_audit ORDER BY started_at DESC, seq DESC LIMIT $1",
                          &p, "reading the deletion records", err);
    if (!r)
        return -1;
    int rc = 0;
    for (int i = 0; !rc && i < PQntuples(r); i++) {
        cf_deletion d = {.id = pg_col_str(r, i, 0), .action = pg_col_str(r, i, 1),
                         .subject = pg_col_str(r, i, 2), .deployment_id = pg_col_str(r, i, 3),
                         .status = pg_col_str(r, i, 4), .started_at = pg_col_int(r, i, 5),
                         .finished_at = pg_col_int(r, i, 6), .details = pg_col_str(r, i, 7)};
        rc = cb(ud, &d);
    }
    PQclear(r);
    return rc;
}
