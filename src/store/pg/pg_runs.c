/*
 * PostgreSQL backend: the scheduler's workflow runs. Taking a lease (a
 * "running" run) happens in one transaction under a transaction-scoped
 * advisory lock on the workflow's name (pg_try_advisory_xact_lock on
 * (7280321, hashtext(name))): nodes sharing the database serialise on it,
 * so each scheduled run is taken once. A node that finds the lock held
 * does not take the run (another node is taking it at that moment).
 * Expired running rows become "abandoned" first, as in SQLite.
 */
#include "pg_int.h"

#include <stdlib.h>
#include <string.h>


typedef struct run_arg {
    const cf_workflow_run *r;
    cf_str id;
    int64_t now, started;
    int running;
    int acquired;
} run_arg;

static int exists(pg_store *s, cf_str id, int *found, cf_err *err)
{
    pg_params p;
    pg_params_init(&p);
    pg_p_str(&p, id);
    PGresult *r = pg_exec(s, "SELECT 1 FROM workflow_runs WHERE id = $1::text", &p,
                          "reading a workflow run", err);
    if (!r)
        return -1;
    *found = PQntuples(r) > 0;
    PQclear(r);
    return 0;
}

/* Inside the run's transaction: marks the name's running runs whose lease
 * expired "abandoned", then *busy = 1 when another live one holds the
 * lease (or another process holds the workflow's lock meanwhile). */
static int settle_lease(pg_store *s, cf_str name, int64_t now, int *busy, cf_err *err)
{
    pg_params p;
    pg_params_init(&p);
    pg_p_str(&p, name);
    PGresult *res = pg_exec(s, "SELECT pg_try_advisory_xact_lock(7280321, hashtext($1::text))",
                            &p, "locking the workflow", err);
    if (!res)
        return -1;
    *busy = !pg_col_bool(res, 0, 0);
    PQclear(res);
    if (*busy)
        return 0;
    pg_p_time(&p, now);
    if (pg_run(s,
               "UPDATE workflow_runs SET status = 'abandoned',"
               " finished_at = coalesce(lease_until, $2::timestamptz),"
               " error = coalesce(error, 'the process running it stopped renewing"
               " its lease (it ended or was killed)')"
               " WHERE name = $1::text AND status = 'running'"
               " AND coalesce(lease_until, 'epoch'::timestamptz) <= $2::timestamptz",
               &p, "abandoning expired workflow runs", err))
        return -1;
    p.n = 1;
    res = pg_exec(s, "SELECT count(*) FROM workflow_runs WHERE name = $1::text"
                     " AND status = 'running'",
                  &p, "checking the workflow lease", err);
    if (!res)
        return -1;
    *busy = pg_col_int(res, 0, 0) > 0;
    PQclear(res);
    return 0;
}

static int insert_run_op(pg_store *s, void *arg, int attempt, cf_err *err)
{
    run_arg *a = arg;
    const cf_workflow_run *r = a->r;
    a->acquired = 0;
    if (attempt) {
        /* the first attempt may have committed before the connection went */
        int found = 0;
        if (exists(s, a->id, &found, err))
            return -1;
        if (found) {
            a->acquired = 1;
            return 0;
        }
    }
    pg_params p;
    if (pg_run(s, "BEGIN", NULL, "recording a workflow run", err))
        return -1;
    if (a->running) {
        int busy = 0;
        if (settle_lease(s, r->name, a->now, &busy, err))
            goto fail;
        if (busy) {
            pg_rollback(s);
            return 0;
        }
    }
    pg_params_init(&p);
    pg_p_str(&p, a->id);
    pg_p_str(&p, r->name);
    pg_p_str(&p, r->script);
    pg_p_str(&p, r->status);
    pg_p_time(&p, r->scheduled_for);
    pg_p_time(&p, a->started);
    pg_p_time(&p, r->finished_at);
    pg_p_time(&p, r->lease_until);
    pg_p_str(&p, r->error);
    pg_p_str(&p, r->details);
    if (pg_run(s,
               "INSERT INTO workflow_runs (id, name, script, status, scheduled_for, started_at,"
               " finished_at, lease_until, error, details) VALUES ($1::text, $2::text, $3::text,"
               " $4::text, $5::timestamptz, $6::timestamptz, $7::timestamptz, $8::timestamptz,"
               " $9::text, coalesce($10::text::jsonb, '{}'))",
               &p, "recording a workflow run", err))
        goto fail;
    if (pg_run(s, "COMMIT", NULL, "committing a workflow run", err))
        goto fail;
    a->acquired = 1;
    return 0;
fail:
    if (err && err->code == CF_EINVAL && strstr(err->msg, "23505"))
        cf_fail(err, CF_EINVAL, "workflow run '%.*s': the id is already taken",
                (int)(a->id.n > 64 ? 64 : a->id.n), a->id.p);
    pg_rollback(s);
    return -1;
}

int pg_insert_run(cf_store *base, const cf_workflow_run *r, int *acquired, cf_err *err)
{
    *acquired = 0;
    if (pg_check_text(r->id, "run", 0, "id", err)
        || pg_check_text(r->name, "run", 0, "name", err)
        || pg_check_text(r->script, "run", 0, "script", err)
        || pg_check_text(r->error, "run", 0, "error", err)
        || pg_check_text(r->details, "run", 0, "details", err))
        return -1;
    run_arg a = {r, r->id, cf_now_us(), 0, 0, 0};
    a.started = r->started_at ? r->started_at : a.now;
    a.running = r->status.n == 7 && memcmp(r->status.p, "running", 7) == 0;
    if (pg_retry((pg_store *)base, insert_run_op, &a, err))
        return -1;
    *acquired = a.acquired;
    return 0;
}

typedef struct update_arg {
    pg_params p;
    int changed;
} update_arg;

static int update_run_op(pg_store *s, void *arg, int attempt, cf_err *err)
{
    (void)attempt;
    update_arg *a = arg;
    PGresult *r = pg_exec(s,
                          "UPDATE workflow_runs SET status = $2::text,"
                          " finished_at = $3::timestamptz, lease_until = $4::timestamptz,"
                          " error = $5::text, details = coalesce($6::text::jsonb, details)"
                          " WHERE id = $1::text",
                          &a->p, "updating a workflow run", err);
    if (!r)
        return -1;
    a->changed = atoi(PQcmdTuples(r));
    PQclear(r);
    return 0;
}

int pg_update_run(cf_store *base, const cf_workflow_run *r, cf_err *err)
{
    if (cf_workflow_run_check(r, 1, err) || pg_check_text(r->error, "run", 0, "error", err)
        || pg_check_text(r->details, "run", 0, "details", err))
        return -1;
    update_arg a;
    pg_params_init(&a.p);
    a.changed = 0;
    pg_p_str(&a.p, r->id);
    pg_p_str(&a.p, r->status);
    pg_p_time(&a.p, r->finished_at);
    pg_p_time(&a.p, r->lease_until);
    pg_p_str(&a.p, r->error);
    pg_p_str(&a.p, r->details);
    if (pg_retry((pg_store *)base, update_run_op, &a, err))
        return -1;
    if (a.changed == 0)
        return cf_fail(err, CF_ENOTFOUND, "workflow run '%.*s' not found",
                       (int)(r->id.n > 64 ? 64 : r->id.n), r->id.p);
    return 0;
}

typedef struct list_arg {
    pg_params p;
    PGresult *res;
} list_arg;

static int list_op(pg_store *s, void *arg, int attempt, cf_err *err)
{
    (void)attempt;
    list_arg *a = arg;
    a->res = pg_exec(s,
                     "SELECT id, name, script, status, " PG_US("scheduled_for") ", "
                     PG_US("started_at") ", " PG_US("finished_at") ", " PG_US("lease_until")
                     ", error, details::text FROM workflow_runs"
                     " WHERE $1::text IS NULL OR name = $1::text"
                     " ORDER BY started_at DESC, seq DESC LIMIT $2::int8",
                     &a->p, "listing workflow runs", err);
    return a->res ? 0 : -1;
}

int pg_list_runs(cf_store *base, cf_str name, int64_t limit, cf_run_fn cb, void *ud, cf_err *err)
{
    list_arg a;
    pg_params_init(&a.p);
    a.res = NULL;
    if (name.p && memchr(name.p, '\0', name.n))
        return 0; /* no stored name has one */
    pg_p_str(&a.p, name);
    pg_p_int(&a.p, limit < 0 ? CF_NULL_INT : limit);
    if (pg_retry((pg_store *)base, list_op, &a, err))
        return -1;
    int stop = 0;
    for (int i = 0; i < PQntuples(a.res) && !stop; i++) {
        cf_workflow_run r = {
            .id = pg_col_str(a.res, i, 0),
            .name = pg_col_str(a.res, i, 1),
            .script = pg_col_str(a.res, i, 2),
            .status = pg_col_str(a.res, i, 3),
            .scheduled_for = pg_col_int(a.res, i, 4),
            .started_at = pg_col_int(a.res, i, 5),
            .finished_at = pg_col_int(a.res, i, 6),
            .lease_until = pg_col_int(a.res, i, 7),
            .error = pg_col_str(a.res, i, 8),
            .details = pg_col_str(a.res, i, 9),
        };
        stop = cb(ud, &r);
    }
    PQclear(a.res);
    return stop;
}
