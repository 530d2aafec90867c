/*
 * PostgreSQL backend: the data lifecycle (migration 9's deletion_audit).
 * A purge batch is one statement, so one transaction and one round trip:
 * a CTE takes the first rows the purge selects in index order (after the
 * previous batch's last row), data-modifying CTEs delete the dependents
 * (cf_life_deps) of its events and the parents by walking the index
 * range up to its last row, and the row counts and that last row come
 * back in one row. Batches (sized to take about 200 ms) keep each
 * transaction short and the WAL written per statement bounded, so the
 * server is never flooded by one big delete.
 * Backups are pg_dump's (docs/lifecycle.md).
 */
#include "pg_int.h"

#include <string.h>

#include "../cf_life_sql.h"

#define TIME_FMT "%s::timestamptz"

void pg_life_sql_init(cf_life_sql *q)
{
    cf_life_sql_init(q, '$');
    q->time_fmt = TIME_FMT;
}

void pg_life_params(const cf_life_sql *q, pg_params *p)
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
    pg_life_params(q, &p);
    return pg_exec(s, q->b.p, &p, what, err);
}

static int events(const cf_purge *p) { return strcmp(p->table, "inference_events") == 0; }

/* Appends one count or delete CTE per dependent, each over the batch's
 * event ids: ", d0 AS (...), d1 AS (...)". A dependent of the events
 * themselves (signals, scores, curated rows) takes them as an array:
 * "= ANY (ARRAY(...))" is an index scan whose keys PostgreSQL sorts, so
 * the probes walk the index in order, where "IN (SELECT ...)" probed it in
 * a hash table's order (93 ms against 135 ms for a batch of 16,000); and
 * the planner, seeing an array of unknown size, keeps to the index rather
 * than scan the whole table. */
static void deps_sql(cf_life_sql *q, const cf_purge *p, int count_only)
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
        if (!count_only && cf_life_dep_of_events(i)) {
            cf_buf_str(&q->b, " = ANY (ARRAY(SELECT id FROM batch)) RETURNING 1)");
            continue;
        }
        cf_buf_str(&q->b, " IN (");
        cf_life_parent_ids(q, i, "SELECT id FROM batch", p);
        cf_buf_str(&q->b, count_only ? "))" : ") RETURNING 1)");
    }
}

/* Appends " SELECT (count of d0), ..., (count of p)": the counts in
 * add_row's order. */
static void counts_sql(cf_life_sql *q, const cf_purge *p)
{
    size_t n = events(p) ? cf_life_ndeps : 0;
    cf_buf_str(&q->b, " SELECT ");
    for (size_t i = 0; i < n; i++) {
        char sel[48];
        snprintf(sel, sizeof sel, "(SELECT count(*) FROM d%zu), ", i);
        cf_buf_str(&q->b, sel);
    }
    cf_buf_str(&q->b, "(SELECT count(*) FROM p)");
}

/* A dry run's statement: every row the purge selects and its dependents,
 * counted. */
static int count_sql(cf_life_sql *q, const cf_purge *p)
{
    cf_buf_str(&q->b, "WITH batch AS (SELECT id FROM ");
    cf_buf_str(&q->b, p->table);
    cf_buf_str(&q->b, " WHERE ");
    cf_life_where(q, p);
    cf_buf_putc(&q->b, ')');
    deps_sql(q, p, 1);
    cf_buf_str(&q->b, ", p AS (SELECT 1 FROM batch)");
    counts_sql(q, p);
    return cf_buf_failed(&q->b) ? -1 : 0;
}

/* The parents' delete: the rows the purge selects after b's lo up to the
 * batch's last row (the CTE last), an index range as the hand-written
 * delete walks it; the time's own bound lets the planner see the range is
 * narrow (cf_life_sql.h). */
static void parents_sql(cf_life_sql *q, const cf_purge *p, const cf_life_bound *b)
{
    cf_buf_str(&q->b, ", p AS (DELETE FROM ");
    cf_buf_str(&q->b, p->table);
    cf_buf_str(&q->b, " WHERE ");
    cf_life_batch_where(q, p, b);
    if (cf_life_time_ordered(p)) {
        const char *tc = cf_life_time_column(p->table);
        cf_buf_str(&q->b, " AND ");
        cf_buf_str(&q->b, tc);
        cf_buf_str(&q->b, " <= (SELECT at FROM last) AND (");
        cf_buf_str(&q->b, tc);
        cf_buf_str(&q->b, ", seq) <= (SELECT at, seq FROM last)");
    } else {
        cf_buf_str(&q->b, " AND seq <= (SELECT seq FROM last)");
    }
    /* events: the deleted rows subtracted from their deployments' counts,
     * in the same statement (pg_counts.c) */
    cf_buf_str(&q->b, events(p) ? " RETURNING deployment_id), c AS (INSERT INTO"
                                  " deployment_event_counts (deployment_id, n)"
                                  " SELECT deployment_id, -count(*) FROM p GROUP BY 1)"
                                : " RETURNING 1)");
}

/* The deletion record's upsert, around its values. */
#define AUDIT_INTO                                                                       \
    "INSERT INTO deletion_audit (id, action, subject, deployment_id, status, started_at," \
    " finished_at, details) "
#define AUDIT_INSERT AUDIT_INTO "VALUES ("
#define AUDIT_UPDATE                                                                     \
    " ON CONFLICT (id) DO UPDATE SET status = excluded.status,"                          \
    " finished_at = excluded.finished_at, details = excluded.details"
#define AUDIT_CONFLICT "::text::jsonb)" AUDIT_UPDATE

/* A guarded purge's condition (pg_int.h): ok when no other running record
 * of the record's action, subject and deployment exists, (exports) no
 * event the purge selects has an exported curated example (the rows
 * pg_list_user_exports lists) and none of the guard settings is set.
 * Uncorrelated, so evaluated once. */
void pg_life_guard_cond(cf_life_sql *q, const cf_purge *p, int exports)
{
    const cf_deletion *d = p->record;
    cf_buf_str(&q->b, "NOT EXISTS (SELECT 1 FROM deletion_audit WHERE action = ");
    cf_life_sql_str(q, d->action);
    cf_buf_str(&q->b, " AND status = 'running' AND subject IS NOT DISTINCT FROM ");
    cf_life_sql_str(q, d->subject);
    cf_buf_str(&q->b, "::text AND deployment_id IS NOT DISTINCT FROM ");
    cf_life_sql_str(q, d->deployment_id);
    cf_buf_str(&q->b, "::text)");
    if (exports) {
        cf_buf_str(&q->b, " AND NOT EXISTS (SELECT 1 FROM curated_examples c"
                          " WHERE (c.exported OR EXISTS (SELECT 1 FROM curated_export_marks m"
                          " WHERE m.curated_id = c.id)) AND c.inference_event_id IN"
                          " (SELECT id FROM inference_events WHERE ");
        cf_life_where(q, p);
        cf_buf_str(&q->b, "))");
    }
    for (size_t i = 0; i < p->nguard_settings; i++) {
        cf_buf_str(&q->b, i ? ", " : " AND NOT EXISTS (SELECT 1 FROM settings WHERE key IN (");
        cf_life_sql_str(q, p->guard_settings[i]);
    }
    if (p->nguard_settings)
        cf_buf_str(&q->b, "))");
}

/* The condition as the CTE "g AS (SELECT ... AS ok), ". */
static void guard_sql(cf_life_sql *q, const cf_purge *p)
{
    cf_buf_str(&q->b, "g AS (SELECT ");
    pg_life_guard_cond(q, p, 1);
    cf_buf_str(&q->b, " AS ok), ");
}

/* A guarded record's first batch is also its last when it took fewer rows
 * than it could. */
static void last_batch_sql(cf_life_sql *q, int64_t rows)
{
    cf_buf_str(&q->b, "(SELECT count(*) FROM batch) < ");
    cf_life_sql_int(q, rows);
}

/* Guarded: opens "CASE WHEN (the batch is the last) THEN then ELSE ", the
 * caller's value and " END" to follow; unguarded: nothing. */
static void when_last_sql(cf_life_sql *q, int guard, int64_t rows, const char *then)
{
    if (!guard)
        return;
    cf_buf_str(&q->b, "CASE WHEN ");
    last_batch_sql(q, rows);
    cf_buf_str(&q->b, " THEN ");
    cf_buf_str(&q->b, then);
    cf_buf_str(&q->b, " ELSE ");
}

/* The record's details: its own with "tables" set to its base counts plus
 * the rows removed before this batch (so_far) and by this statement. */
static void record_details_sql(cf_life_sql *q, const cf_purge *p, const cf_deletion *d,
                               const cf_life_counts *so_far)
{
    cf_life_sql_str(q, d->details.p ? d->details : (cf_str){"{}", 2});
    cf_buf_str(&q->b, "::text::jsonb || jsonb_build_object('tables', jsonb_build_object(");
    for (size_t i = 0; i < cf_life_ntables; i++) {
        char v[96], cte[16] = "";
        int64_t known = p->record_base[i] + so_far->n[i];
        int dep = cf_life_dep_index(cf_life_tables[i]);
        if (dep >= 0)
            snprintf(cte, sizeof cte, "d%d", dep);
        else if (strcmp(cf_life_tables[i], p->table) == 0)
            snprintf(cte, sizeof cte, "p");
        if (!cte[0])
            snprintf(v, sizeof v, "%lld", (long long)known);
        else if (known)
            snprintf(v, sizeof v, "%lld + (SELECT count(*) FROM %s)", (long long)known, cte);
        else
            snprintf(v, sizeof v, "(SELECT count(*) FROM %s)", cte);
        cf_buf_str(&q->b, i ? ", '" : "'");
        cf_buf_str(&q->b, cf_life_tables[i]); /* names of ours: no quote to escape */
        cf_buf_str(&q->b, "', ");
        cf_buf_str(&q->b, v);
    }
    cf_buf_str(&q->b, "))");
}

/* Appends ", a AS (the deletion record's upsert)": written by the batch's
 * own statement, so in its transaction, with no round trip of its own (a
 * data-modifying CTE runs whether or not the query reads it), with the
 * rows removed so far. Guarded: only when g is ok, and "done" when the
 * batch is the last (rows: the batch's size). */
static void record_sql(cf_life_sql *q, const cf_purge *p, const cf_deletion *d, int64_t rows,
                       int guard, const cf_life_counts *so_far)
{
    cf_buf_str(&q->b, ", a AS (" AUDIT_INTO "SELECT ");
    const cf_str text[] = {d->id, d->action, d->subject, d->deployment_id};
    for (size_t i = 0; i < sizeof text / sizeof text[0]; i++) {
        cf_life_sql_str(q, text[i]);
        cf_buf_str(&q->b, ", ");
    }
    when_last_sql(q, guard, rows, "'done'");
    cf_life_sql_str(q, d->status);
    cf_buf_str(&q->b, guard ? " END, " : ", ");
    cf_life_sql_time(q, d->started_at);
    cf_buf_str(&q->b, ", ");
    when_last_sql(q, guard, rows, "clock_timestamp()");
    cf_life_sql_time(q, d->finished_at);
    cf_buf_str(&q->b, guard ? " END, " : ", ");
    record_details_sql(q, p, d, so_far);
    cf_buf_str(&q->b, guard ? " WHERE (SELECT ok FROM g)" AUDIT_UPDATE " RETURNING 1)"
                            : AUDIT_UPDATE " RETURNING 1)");
}

/* One batch, one statement: WITH batch AS (the first rows the purge
 * selects after b's lo, in index order), last AS (its last row), the
 * dependents' deletes over the batch's ids, the parents' over the range
 * up to last, and p's record's upsert when given (guarded: the first
 * batch only); then the counts, the batch's
 * size and last's (time or seq, seq) for the next batch's lo. */
static int batch_sql(cf_life_sql *q, const cf_purge *p, const cf_life_bound *b, int64_t rows,
                     int first, const cf_life_counts *so_far)
{
    int timed = cf_life_time_ordered(p);
    const char *key = timed ? cf_life_time_column(p->table) : "seq";
    const cf_deletion *rec = p->record;
    int guard = rec && p->guard && first;
    cf_buf_str(&q->b, "WITH ");
    if (guard)
        guard_sql(q, p);
    cf_buf_str(&q->b, "batch AS (SELECT ");
    cf_buf_str(&q->b, events(p) ? "id, " : "");
    cf_buf_str(&q->b, key);
    cf_buf_str(&q->b, " AS at, seq FROM ");
    cf_buf_str(&q->b, p->table);
    cf_buf_str(&q->b, " WHERE ");
    cf_life_batch_where(q, p, b);
    cf_buf_str(&q->b, guard ? " AND (SELECT ok FROM g) ORDER BY " : " ORDER BY ");
    cf_buf_str(&q->b, key);
    cf_buf_str(&q->b, timed ? ", seq" : "");
    cf_buf_str(&q->b, " LIMIT ");
    cf_life_sql_int(q, rows);
    cf_buf_str(&q->b, "), last AS (SELECT at, seq FROM batch ORDER BY at DESC, seq DESC LIMIT 1)");
    deps_sql(q, p, 0);
    parents_sql(q, p, b);
    if (rec)
        record_sql(q, p, rec, rows, guard, so_far);
    counts_sql(q, p);
    cf_buf_str(&q->b, timed ? ", (SELECT count(*) FROM batch), (SELECT " PG_US("at")
                              " FROM last), (SELECT seq FROM last)"
                            : ", (SELECT count(*) FROM batch), (SELECT at FROM last),"
                              " (SELECT seq FROM last)");
    if (guard) { /* then: blocked, done */
        cf_buf_str(&q->b, ", NOT (SELECT ok FROM g), ");
        last_batch_sql(q, rows);
    }
    return cf_buf_failed(&q->b) ? -1 : 0;
}

static void add(cf_life_counts *out, const char *table, int64_t n)
{
    int i = cf_life_table_index(table);
    if (i >= 0)
        out->n[i] += n;
}

/* Adds one result row's counts (deps..., parents). */
static void add_row(const PGresult *r, const cf_purge *p, cf_life_counts *out)
{
    size_t n = events(p) ? cf_life_ndeps : 0;
    for (size_t i = 0; i < n; i++)
        add(out, cf_life_deps[i].table, pg_col_int(r, 0, (int)i));
    add(out, p->table, pg_col_int(r, 0, (int)n));
}

/* A dry run: counts every row the purge would delete. */
static int count_all(pg_store *s, const cf_purge *p, cf_life_counts *out, cf_err *err)
{
    cf_life_sql q;
    pg_life_sql_init(&q);
    PGresult *r = NULL;
    if (count_sql(&q, p))
        cf_fail(err, CF_ENOMEM, "out of memory building a purge");
    else
        r = run(s, &q, "counting rows to purge", err);
    cf_buf_free(&q.b);
    if (!r)
        return -1;
    add_row(r, p, out);
    PQclear(r);
    return 0;
}

/* Deletes one batch of at most rows after b's lo (and writes p's record
 * when given, with the rows in out before it); sets *got to its size and,
 * when it had rows, b's lo to its last row. first: the purge's first
 * batch (the guarded one). */
static int one_batch(pg_store *s, const cf_purge *p, cf_life_bound *b, int64_t rows, int first,
                     int64_t *got, cf_life_counts *out, cf_err *err)
{
    cf_life_sql q;
    pg_life_sql_init(&q);
    PGresult *r = NULL;
    if (batch_sql(&q, p, b, rows, first, out))
        cf_fail(err, CF_ENOMEM, "out of memory building a purge");
    else
        r = run(s, &q, "purging", err);
    cf_buf_free(&q.b);
    if (!r)
        return -1;
    add_row(r, p, out);
    int c = (events(p) ? (int)cf_life_ndeps : 0) + 1;
    *got = pg_col_int(r, 0, c);
    if (*got > 0) {
        b->has_lo = 1;
        b->lo_at = pg_col_int(r, 0, c + 1);
        b->lo_seq = pg_col_int(r, 0, c + 2);
    }
    if (p->record && p->guard && first) {
        out->blocked = pg_col_bool(r, 0, c + 3);
        out->record_done = !out->blocked && pg_col_bool(r, 0, c + 4);
    }
    PQclear(r);
    return 0;
}

/* How long one purge statement aims to take: the batch grows (up to 16x
 * batch_rows) while statements are quicker than half of it, so a large
 * purge is not paid for in per-statement round trips and planning, and
 * shrinks when one takes twice as long, so no statement writes much WAL
 * at once. */
#define STATEMENT_TARGET_NS (INT64_C(200) * 1000000)

int pg_purge(cf_store *base, const cf_purge *p, cf_life_counts *out, cf_err *err)
{
    pg_store *s = (pg_store *)base;
    if (p->dry_run)
        return count_all(s, p, out, err);
    if (p->record && p->guard) {
        int small = pg_forget_small(s, p, out, err);
        if (small <= 0)
            return small;
        /* a batch or more of rows: batches, the first one guarded */
    }
    int64_t rows = p->batch_rows;
    cf_life_bound b = {.set = 0, .has_lo = 0};
    for (int64_t done = 0; !p->max_batches || done < p->max_batches; done++) {
        int64_t t0 = cf_mono_ns(), got = 0;
        if (one_batch(s, p, &b, rows, done == 0, &got, out, err))
            return -1;
        if (got < rows)
            break;
        rows = cf_life_next_size(p, rows, cf_mono_ns() - t0, STATEMENT_TARGET_NS);
    }
    return 0;
}

int pg_list_user_exports(cf_store *base, const cf_purge *p, cf_export_row_fn cb, void *ud,
                         cf_err *err)
{
    pg_store *s = (pg_store *)base;
    cf_life_sql q;
    pg_life_sql_init(&q);
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
    pg_life_sql_init(&q);
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
                  AUDIT_INSERT "$1, $2, $3, $4, $5, $6::timestamptz, $7::timestamptz, $8" AUDIT_CONFLICT,
                  &p, "writing the deletion record", err);
}

int pg_list_deletions(cf_store *base, int64_t limit, const char *status, cf_deletion_fn cb,
                      void *ud, cf_err *err)
{
    pg_store *s = (pg_store *)base;
    pg_params p;
    pg_params_init(&p);
    pg_p_int(&p, limit);
    if (status)
        pg_p_str(&p, (cf_str){status, strlen(status)});
    /* two statements, so that each walks its index (migration 14) from
     * the newest record */
#define PG_DELETION_COLUMNS                                                                        \
    "SELECT id, action, subject, deployment_id, status, " PG_US("started_at") ", "                 \
    PG_US("finished_at") ", details::text FROM deletion_audit"
    const char *sql = status ? PG_DELETION_COLUMNS " WHERE status = $2::text"
                                                   " ORDER BY started_at DESC, seq DESC LIMIT $1"
                             : PG_DELETION_COLUMNS " ORDER BY started_at DESC, seq DESC LIMIT $1";
#undef PG_DELETION_COLUMNS
    PGresult *r = pg_exec(s, sql, &p, "reading the deletion records", err);
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
