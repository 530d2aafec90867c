/*
 * PostgreSQL backend: a guarded purge (a forget with nothing to resume,
 * cf_purge.guard) whose rows fit in one batch, as plain statements in one
 * transaction sent in a libpq pipeline, in three round trips:
 *   1. BEGIN and a gate that checks the guard (but for exported
 *      examples), counts the rows the purge selects (up to a batch),
 *      returns their ids as an array and tells whether any curated
 *      example points at them; when the guard holds or the rows fill a
 *      batch: ROLLBACK, nothing done;
 *   2. the deletes of those ids' dependents and of the events themselves
 *      (with their deployments' counts), each taking the ids as an array
 *      parameter (the gate's own text sent back); the curated examples'
 *      own dependents (export marks and claims) only when the gate found a
 *      curated example, so a user with none costs no statement on those
 *      tables;
 *   3. the deletion record "done" with the rows removed and COMMIT, or
 *      ROLLBACK when the deletes took an export mark or an exported
 *      curated example (the guard's last test, read from the deletes
 *      themselves rather than planned as one more join).
 *
 * Why not one statement, as every other batch is (pg_lifecycle.c): on a
 * fresh connection, as a `forget` command is, most of the time of a
 * forget of a few rows goes to opening and planning each table the first
 * time, and PostgreSQL plans these short statements in less time than
 * the one statement with a data-modifying CTE per table, a batch CTE and
 * the counts read back from each; a statement not sent costs nothing.
 * Why the array: planned once in the gate, the user's events are not
 * planned again in each delete (a subquery on inference_events, with its
 * indexes weighed, in every one); an array is an index scan on each
 * dependent's event column. The rows deleted are the ones the gate saw:
 * an event of the user committed after it is not taken (a forget takes
 * what was stored when it began; running it again takes the rest).
 */
#include "pg_int.h"

#include <stdlib.h>
#include <string.h>

#include "../cf_life_sql.h"

static int oom(cf_err *err) { return cf_fail(err, CF_ENOMEM, "out of memory building a forget"); }

static int send(pg_store *s, cf_life_sql *q, cf_err *err)
{
    if (cf_buf_putc(&q->b, '\0'))
        return oom(err);
    pg_params p;
    pg_life_params(q, &p);
    if (p.overflow)
        return cf_fail(err, CF_EINVAL, "forgetting a user: too many parameters");
    if (!PQsendQueryParams(s->conn, q->b.p, p.n, NULL, p.v, p.len, p.fmt, 0))
        return pg_fail(s, NULL, "forgetting a user", err);
    return 0;
}

#define DEPS_MAX 8

/* The dependents whose parent is a curated example (not an event): sent
 * only when the gate finds one. */
static int of_curated(size_t dep)
{
    return !cf_life_dep_of_events(dep);
}

/* The first of them; cf_life_ndeps when the dependents are not as this
 * file expects (every one whose parent is not an event is a curated
 * example's). */
static size_t curated_dep(void)
{
    size_t first = cf_life_ndeps;
    for (size_t i = 0; i < cf_life_ndeps; i++) {
        if (!of_curated(i))
            continue;
        if (strcmp(cf_life_deps[i].parent, "curated_examples") != 0)
            return cf_life_ndeps;
        if (first == cf_life_ndeps)
            first = i;
    }
    return first;
}

/* The column of curated_examples that names its event. */
static const char *curated_event_column(void)
{
    int i = cf_life_dep_index("curated_examples");
    return i >= 0 && cf_life_dep_of_events((size_t)i) ? cf_life_deps[i].column : NULL;
}

/* " = ANY ($k::text::text[])": the user's event ids the gate returned, its
 * array text sent back as a text parameter. */
static void ids_param(cf_life_sql *q, cf_str ids)
{
    cf_buf_str(&q->b, " = ANY (");
    cf_life_sql_str(q, ids);
    cf_buf_str(&q->b, "::text::text[])"); /* sent as text, read by array_in */
}

/* The gate: (guard ok, the rows selected up to a batch, their ids as an
 * array, whether a curated example points at them). inference_events is
 * planned once here; the deletes take the ids as an array (ids_param)
 * rather than a subquery on it each. */
static int gate_sql(cf_life_sql *q, const cf_purge *p, const char *curated_col)
{
    cf_buf_str(&q->b, "SELECT ");
    pg_life_guard_cond(q, p, 0);
    cf_buf_str(&q->b, ", x.n, x.ids, EXISTS (SELECT 1 FROM curated_examples WHERE ");
    cf_buf_str(&q->b, curated_col);
    cf_buf_str(&q->b, " = ANY (x.ids)) FROM (SELECT count(*) AS n,"
                      " coalesce(array_agg(id), '{}') AS ids FROM (SELECT id FROM inference_events"
                      " WHERE ");
    if (cf_life_where(q, p))
        return -1;
    cf_buf_str(&q->b, " LIMIT ");
    cf_life_sql_int(q, p->batch_rows);
    cf_buf_str(&q->b, ") e) x");
    return 0;
}

/* Dependent i's rows among the events of ids: by the ids themselves, or
 * (a curated example's dependent) through the examples of those events. */
static void dep_sql(cf_life_sql *q, size_t i, cf_str ids, const char *curated_col)
{
    cf_buf_str(&q->b, "DELETE FROM ");
    cf_buf_str(&q->b, cf_life_deps[i].table);
    cf_buf_str(&q->b, " WHERE ");
    cf_buf_str(&q->b, cf_life_deps[i].column);
    if (cf_life_dep_of_events(i)) {
        ids_param(q, ids);
    } else {
        cf_buf_str(&q->b, " IN (SELECT id FROM curated_examples WHERE ");
        cf_buf_str(&q->b, curated_col);
        ids_param(q, ids);
        cf_buf_str(&q->b, ")");
    }
    /* the guard's test of exported examples, on the rows it deletes */
    if (strcmp(cf_life_deps[i].table, "curated_examples") == 0)
        cf_buf_str(&q->b, " RETURNING exported");
}

/* Whether the deletes took an export mark or an exported curated example:
 * then the guard holds. res[i]: dependent i's delete (NULL: not sent). */
static int took_exports(PGresult **res)
{
    for (size_t i = 0; i < cf_life_ndeps; i++) {
        PGresult *r = res[i];
        if (!r)
            continue;
        if (strcmp(cf_life_deps[i].table, "curated_export_marks") == 0
            && atoll(PQcmdTuples(r)) > 0)
            return 1;
        if (strcmp(cf_life_deps[i].table, "curated_examples") == 0)
            for (int k = 0; k < PQntuples(r); k++)
                if (pg_col_bool(r, k, 0))
                    return 1;
    }
    return 0;
}

/* The events' delete, their deployments' counts lowered in the same
 * statement (pg_counts.c); returns each deployment's rows removed. */
static void events_sql(cf_life_sql *q, cf_str ids)
{
    cf_buf_str(&q->b, "WITH p AS (DELETE FROM inference_events WHERE id");
    ids_param(q, ids);
    cf_buf_str(&q->b, " RETURNING deployment_id) INSERT INTO deployment_event_counts"
                      " (deployment_id, n) SELECT deployment_id, -count(*) FROM p GROUP BY 1"
                      " RETURNING -n");
}

/* The record "done", finished now, with its details (the rows removed:
 * cf_life_record_details), upserted as pg_put_deletion's. */
static void record_sql(cf_life_sql *q, const cf_purge *p, const cf_buf *details)
{
    const cf_deletion *d = p->record;
    const cf_str text[] = {d->id, d->action, d->subject, d->deployment_id};
    cf_buf_str(&q->b, "INSERT INTO deletion_audit (id, action, subject, deployment_id, status,"
                      " started_at, finished_at, details) VALUES (");
    for (size_t i = 0; i < sizeof text / sizeof text[0]; i++) {
        cf_life_sql_str(q, text[i]);
        cf_buf_str(&q->b, ", ");
    }
    cf_buf_str(&q->b, "'done', ");
    cf_life_sql_time(q, d->started_at);
    cf_buf_str(&q->b, ", clock_timestamp(), ");
    cf_life_sql_str(q, (cf_str){details->p, details->n});
    cf_buf_str(&q->b, "::text::jsonb) ON CONFLICT (id) DO UPDATE SET status = excluded.status,"
                      " finished_at = excluded.finished_at, details = excluded.details");
}

/* Reads the pipeline's results up to its sync: res[0..n) each statement's
 * (NULL where it was not run). The first failure, if any, is in err and
 * makes it -1; a connection that goes away ends the wait. */
static int collect(pg_store *s, PGresult **res, int n, const char *what, cf_err *err)
{
    int rc = 0;
    for (int i = 0; i < n; i++)
        res[i] = NULL;
    for (int i = 0; i < n; i++) {
        PGresult *r = PQgetResult(s->conn);
        if (!r)
            return rc ? rc : pg_fail(s, NULL, what, err);
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
            res[i] = r;
        } else {
            if (!rc && st != PGRES_PIPELINE_ABORTED)
                rc = pg_fail(s, r, what, err);
            PQclear(r);
        }
        PQclear(PQgetResult(s->conn)); /* the NULL that ends a statement's results */
    }
    PGresult *sync = PQgetResult(s->conn);
    if (!sync || PQresultStatus(sync) != PGRES_PIPELINE_SYNC)
        rc = rc ? rc : pg_fail(s, sync, what, err);
    PQclear(sync);
    return rc;
}

static void clear_all(PGresult **res, int n)
{
    for (int i = 0; i < n; i++)
        PQclear(res[i]);
}

static void add(cf_life_counts *c, const char *table, int64_t n)
{
    int i = cf_life_table_index(table);
    if (i >= 0)
        c->n[i] += n;
}

/* Sends statements built by build (one per call, k = 0..n) and a sync. */
typedef int (*build_fn)(cf_life_sql *q, const cf_purge *p, int k, const void *ud);

static int send_all(pg_store *s, const cf_purge *p, int n, build_fn build, const void *ud,
                    cf_err *err)
{
    cf_life_sql q;
    pg_life_sql_init(&q);
    int rc = 0;
    for (int k = 0; rc == 0 && k < n; k++) {
        cf_life_sql_reset(&q);
        rc = build(&q, p, k, ud) || cf_buf_failed(&q.b) ? oom(err) : send(s, &q, err);
    }
    cf_buf_free(&q.b);
    if (rc == 0 && !PQpipelineSync(s->conn))
        rc = pg_fail(s, NULL, "forgetting a user", err);
    return rc;
}

/* Trip 1: BEGIN and the gate (ud: curated_event_column()). */
static int gate_trip(cf_life_sql *q, const cf_purge *p, int k, const void *ud)
{
    if (k == 0)
        return cf_buf_str(&q->b, "BEGIN") ? -1 : 0;
    return gate_sql(q, p, ud);
}

/* Trip 2: the deletes, the dependents listed and then the events, of the
 * event ids the gate returned. */
typedef struct sent {
    size_t dep[DEPS_MAX], n;
    cf_str ids;
    const char *curated_col;
} sent;

static int delete_trip(cf_life_sql *q, const cf_purge *p, int k, const void *ud)
{
    const sent *d = ud;
    (void)p;
    if ((size_t)k < d->n)
        dep_sql(q, d->dep[k], d->ids, d->curated_col);
    else
        events_sql(q, d->ids);
    return 0;
}

/* Trip 3: the record and COMMIT (ud: the record's details). */
static int record_trip(cf_life_sql *q, const cf_purge *p, int k, const void *ud)
{
    if (k == 0)
        record_sql(q, p, ud);
    else
        cf_buf_str(&q->b, "COMMIT");
    return 0;
}

static int end_trip(cf_life_sql *q, const cf_purge *p, int k, const void *ud)
{
    (void)p, (void)k, (void)ud;
    return cf_buf_str(&q->b, "ROLLBACK") ? -1 : 0;
}

/* Leaves pipeline mode; after a failure, rolls back what is open. A
 * pipeline left with results pending (a failure while sending) is synced
 * and its results read first, unless the connection is gone (the next
 * operation then connects again). */
static int leave(pg_store *s, int rc)
{
    if (PQpipelineStatus(s->conn) != PQ_PIPELINE_OFF && !PQexitPipelineMode(s->conn)) {
        if (PQstatus(s->conn) != CONNECTION_OK || !PQpipelineSync(s->conn))
            return rc;
        for (int nulls = 0; nulls < 2;) {
            PGresult *r = PQgetResult(s->conn);
            int sync = r && PQresultStatus(r) == PGRES_PIPELINE_SYNC;
            nulls = r ? 0 : nulls + 1;
            PQclear(r);
            if (sync && PQexitPipelineMode(s->conn))
                break;
        }
        if (PQpipelineStatus(s->conn) != PQ_PIPELINE_OFF)
            return rc;
    }
    if (rc)
        pg_rollback(s);
    return rc;
}

/* Ends the transaction with ROLLBACK and leaves pipeline mode. */
static int roll_back(pg_store *s, const cf_purge *p, cf_err *err)
{
    PGresult *end[1] = {NULL};
    int rc = send_all(s, p, 1, end_trip, NULL, err)
                     || collect(s, end, 1, "forgetting a user", err) ? -1 : 0;
    clear_all(end, 1);
    return leave(s, rc);
}

/* What the gate answered; ids: the events' ids as array text (malloc'd,
 * for a forget that goes on: the guard ok and the rows under a batch). */
typedef struct gate_said {
    int ok, fits, has_curated;
    char *ids;
} gate_said;

static int read_gate(const PGresult *r, const cf_purge *p, gate_said *o, cf_err *err)
{
    int row = r && PQntuples(r) == 1;
    o->ok = row && pg_col_bool(r, 0, 0);
    o->fits = row && pg_col_int(r, 0, 1) < p->batch_rows;
    o->has_curated = row && pg_col_bool(r, 0, 3);
    o->ids = NULL;
    if (!o->ok || !o->fits)
        return 0;
    size_t n = (size_t)PQgetlength(r, 0, 2);
    if (!(o->ids = malloc(n + 1)))
        return oom(err);
    memcpy(o->ids, PQgetvalue(r, 0, 2), n);
    o->ids[n] = '\0';
    return 0;
}

int pg_forget_small(pg_store *s, const cf_purge *p, cf_life_counts *out, cf_err *err)
{
    const char *what = "forgetting a user";
    sent d = {.n = 0, .curated_col = curated_event_column()};
    if (cf_life_ndeps > DEPS_MAX || curated_dep() >= cf_life_ndeps || !d.curated_col)
        return cf_fail(err, CF_EINVAL, "%s: unexpected dependents", what);
    pg_settle(s);
    if (!PQenterPipelineMode(s->conn))
        return pg_fail(s, NULL, what, err);

    PGresult *g[2] = {NULL, NULL};
    if (send_all(s, p, 2, gate_trip, d.curated_col, err) || collect(s, g, 2, what, err)) {
        clear_all(g, 2);
        return leave(s, -1);
    }
    gate_said gs;
    int rc = read_gate(g[1], p, &gs, err);
    clear_all(g, 2);
    if (rc)
        return leave(s, -1);
    int ok = gs.ok, fits = gs.fits, has_curated = gs.has_curated;
    char *ids = gs.ids;
    d.ids = (cf_str){ids, ids ? strlen(ids) : 0};
    if (!ok || !fits) {
        if (roll_back(s, p, err))
            return -1;
        out->blocked = !ok;
        return ok ? 1 : 0;
    }

    for (size_t i = 0; i < cf_life_ndeps; i++)
        if (has_curated || !of_curated(i))
            d.dep[d.n++] = i;
    PGresult *res[DEPS_MAX + 1] = {NULL};
    int n = (int)d.n + 1;
    int sent_ok = send_all(s, p, n, delete_trip, &d, err) == 0;
    free(ids);
    if (!sent_ok || collect(s, res, n, what, err)) {
        clear_all(res, n);
        return leave(s, -1);
    }
    PGresult *by_dep[DEPS_MAX] = {NULL};
    cf_life_counts removed;
    memset(&removed, 0, sizeof removed);
    for (size_t k = 0; k < d.n; k++) {
        by_dep[d.dep[k]] = res[k];
        add(&removed, cf_life_deps[d.dep[k]].table, res[k] ? atoll(PQcmdTuples(res[k])) : 0);
    }
    for (int r = 0; res[n - 1] && r < PQntuples(res[n - 1]); r++)
        add(&removed, "inference_events", pg_col_int(res[n - 1], r, 0));
    int held = took_exports(by_dep);
    clear_all(res, n);
    if (held) {
        /* undone: the guard holds */
        if (roll_back(s, p, err))
            return -1;
        out->blocked = 1;
        return 0;
    }

    cf_buf details = CF_BUF_INIT;
    PGresult *fin[2] = {NULL, NULL};
    rc = cf_life_record_details(p, &removed, &details) ? oom(err) : 0;
    if (rc == 0)
        rc = send_all(s, p, 2, record_trip, &details, err)
                     || collect(s, fin, 2, what, err) ? -1 : 0;
    clear_all(fin, 2);
    cf_buf_free(&details);
    if (leave(s, rc))
        return -1;
    for (size_t i = 0; i < cf_life_ntables; i++)
        out->n[i] += removed.n[i];
    out->record_done = 1;
    return 0;
}
