/*
 * PostgreSQL backend: a guarded purge (a forget with nothing to resume,
 * cf_purge.guard) whose rows fit in one batch, as plain statements in one
 * transaction sent in a libpq pipeline: BEGIN; a gate that checks the
 * guard (but for exported examples) and counts the rows the purge selects
 * (up to a batch) and keeps its verdict in a transaction-local setting;
 * the dependents' deletes and the events' (with their deployments'
 * counts), each doing nothing unless the gate said "go"; then, after one
 * round trip, the deletion record "done" with the rows removed and COMMIT,
 * or ROLLBACK when the deletes took an export mark or an exported curated
 * example (the guard's last test, read from the deletes themselves rather
 * than planned as one more join).
 *
 * Why not one statement, as every other batch is (pg_lifecycle.c): on a
 * fresh connection, as a `forget` command is, most of the time of a
 * forget of a few rows goes to planning, and PostgreSQL plans these short
 * statements in less time than the one statement with a data-modifying
 * CTE per table, a batch CTE and the counts read back from each.
 */
#include "pg_int.h"

#include <stdlib.h>
#include <string.h>

#include "../cf_life_sql.h"

#define GATE_SETTING "crucible.forget_gate"
#define GATED " AND current_setting('" GATE_SETTING "') = 'go'"

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

/* The gate: (guard ok, the rows selected up to a batch), the verdict set. */
static void gate_sql(cf_life_sql *q, const cf_purge *p)
{
    cf_buf_str(&q->b, "SELECT ok, n, set_config('" GATE_SETTING "', CASE WHEN ok AND n < ");
    cf_life_sql_int(q, p->batch_rows);
    cf_buf_str(&q->b, " THEN 'go' ELSE 'hold' END, true) FROM (SELECT ");
    pg_life_guard_cond(q, p, 0);
    cf_buf_str(&q->b, " AS ok, (SELECT count(*) FROM (SELECT 1 FROM inference_events WHERE ");
    cf_life_where(q, p);
    cf_buf_str(&q->b, " LIMIT ");
    cf_life_sql_int(q, p->batch_rows);
    cf_buf_str(&q->b, ") x) AS n) g");
}

static int dep_sql(cf_life_sql *q, const cf_purge *p, size_t i)
{
    cf_buf_str(&q->b, "DELETE FROM ");
    cf_buf_str(&q->b, cf_life_deps[i].table);
    cf_buf_str(&q->b, " WHERE ");
    cf_buf_str(&q->b, cf_life_deps[i].column);
    cf_buf_str(&q->b, " IN (");
    if (cf_life_parent_ids(q, i, NULL, p))
        return -1;
    cf_buf_str(&q->b, ")" GATED);
    /* the guard's test of exported examples, on the rows it deletes */
    if (strcmp(cf_life_deps[i].table, "curated_examples") == 0)
        cf_buf_str(&q->b, " RETURNING exported");
    return 0;
}

/* Whether the deletes took an export mark or an exported curated example:
 * then the guard holds. */
static int took_exports(PGresult **res)
{
    for (size_t i = 0; i < cf_life_ndeps; i++) {
        PGresult *r = res[2 + i];
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
static void events_sql(cf_life_sql *q, const cf_purge *p)
{
    cf_buf_str(&q->b, "WITH p AS (DELETE FROM inference_events WHERE ");
    cf_life_where(q, p);
    cf_buf_str(&q->b, GATED " RETURNING deployment_id) INSERT INTO deployment_event_counts"
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

static int first_trip(cf_life_sql *q, const cf_purge *p, int k, const void *ud)
{
    (void)ud;
    if (k == 0)
        return cf_buf_str(&q->b, "BEGIN") ? -1 : 0;
    if (k == 1) {
        gate_sql(q, p);
        return 0;
    }
    if (k < 2 + (int)cf_life_ndeps)
        return dep_sql(q, p, (size_t)(k - 2));
    events_sql(q, p);
    return 0;
}

static int second_trip(cf_life_sql *q, const cf_purge *p, int k, const void *ud)
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

int pg_forget_small(pg_store *s, const cf_purge *p, cf_life_counts *out, cf_err *err)
{
    const char *what = "forgetting a user";
    enum { N = 3 + 5 };
    if (cf_life_ndeps + 3 != N)
        return cf_fail(err, CF_EINVAL, "%s: unexpected dependents", what);
    pg_settle(s);
    if (!PQenterPipelineMode(s->conn))
        return pg_fail(s, NULL, what, err);
    PGresult *res[N] = {NULL};
    if (send_all(s, p, N, first_trip, NULL, err) || collect(s, res, N, what, err)) {
        clear_all(res, N);
        return leave(s, -1);
    }
    int ok = res[1] && PQntuples(res[1]) == 1 && pg_col_bool(res[1], 0, 0);
    int fits = res[1] && PQntuples(res[1]) == 1 && pg_col_int(res[1], 0, 1) < p->batch_rows;
    if (ok && fits && took_exports(res))
        ok = 0;
    cf_life_counts removed;
    memset(&removed, 0, sizeof removed);
    for (size_t i = 0; i < cf_life_ndeps; i++)
        add(&removed, cf_life_deps[i].table, res[2 + i] ? atoll(PQcmdTuples(res[2 + i])) : 0);
    for (int r = 0; res[N - 1] && r < PQntuples(res[N - 1]); r++)
        add(&removed, "inference_events", pg_col_int(res[N - 1], r, 0));
    clear_all(res, N);
    if (!ok || !fits) {
        /* nothing deleted (the deletes gated), or undone: end the transaction */
        PGresult *end[1] = {NULL};
        int rc = send_all(s, p, 1, end_trip, NULL, err) || collect(s, end, 1, what, err) ? -1 : 0;
        clear_all(end, 1);
        if (leave(s, rc))
            return -1;
        out->blocked = !ok;
        return ok ? 1 : 0;
    }
    cf_buf details = CF_BUF_INIT;
    PGresult *fin[2] = {NULL, NULL};
    int rc = cf_life_record_details(p, &removed, &details) ? oom(err) : 0;
    if (rc == 0)
        rc = send_all(s, p, 2, second_trip, &details, err) || collect(s, fin, 2, what, err) ? -1 : 0;
    clear_all(fin, 2);
    cf_buf_free(&details);
    if (leave(s, rc))
        return -1;
    for (size_t i = 0; i < cf_life_ntables; i++)
        out->n[i] += removed.n[i];
    out->record_done = 1;
    return 0;
}
