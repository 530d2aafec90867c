/*
 * SQLite backend: the scheduler's workflow runs (migration 4). A running
 * row is a lease; taking it is one IMMEDIATE transaction (expired leases
 * become "abandoned", a live one refuses, else the row goes in), so two
 * processes sharing the database never run the same workflow at once.
 */
#include "sqlite_int.h"

#include <string.h>


static int exec_sql(sq_store *s, const char *sql, cf_err *err)
{
    if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return sq_fail(s, err, sql);
    return 0;
}

static void rollback(sq_store *s)
{
    if (!sqlite3_get_autocommit(s->db))
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
}

static void bind_int_or_null(sqlite3_stmt *st, int i, int64_t v)
{
    if (v == CF_NULL_INT)
        sqlite3_bind_null(st, i);
    else
        sqlite3_bind_int64(st, i, v);
}

/* Runs a prepared statement to completion; *changes receives the count. */
static int step_done(sq_store *s, sqlite3_stmt *st, const char *what, int *changes, cf_err *err)
{
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return sq_fail(s, err, what);
    if (changes)
        *changes = sqlite3_changes(s->db);
    return 0;
}

/* Marks expired running runs of the name abandoned; then reports whether a
 * live one remains (*busy). */
static int settle_leases(sq_store *s, cf_str name, int64_t now, int *busy, cf_err *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db,
                           "UPDATE workflow_runs SET status = 'abandoned',"
                           " finished_at = coalesce(lease_until, ?2),"
                           " error = coalesce(error, 'the process running it stopped renewing"
                           " its lease (it ended or was killed)')"
                           " WHERE name = ?1 AND status = 'running'"
                           " AND coalesce(lease_until, 0) <= ?2",
                           -1, &st, NULL) != SQLITE_OK)
        return sq_fail(s, err, "preparing the lease update");
    sq_bind_str(st, 1, name);
    sqlite3_bind_int64(st, 2, now);
    if (step_done(s, st, "abandoning expired workflow runs", NULL, err))
        return -1;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT count(*) FROM workflow_runs WHERE name = ?1"
                           " AND status = 'running'",
                           -1, &st, NULL) != SQLITE_OK)
        return sq_fail(s, err, "preparing the lease check");
    sq_bind_str(st, 1, name);
    int rc = sqlite3_step(st);
    *busy = rc == SQLITE_ROW && sqlite3_column_int64(st, 0) > 0;
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW)
        return sq_fail(s, err, "checking the workflow lease");
    return 0;
}

int sq_insert_run(cf_store *base, const cf_workflow_run *r, int *acquired, cf_err *err)
{
    sq_store *s = (sq_store *)base;
    *acquired = 0;
    cf_str id = r->id;
    int64_t now = cf_now_us();
    int64_t started = r->started_at ? r->started_at : now;
    int running = r->status.n == 7 && memcmp(r->status.p, "running", 7) == 0;
    if (exec_sql(s, "BEGIN IMMEDIATE", err))
        return -1;
    if (running) {
        int busy = 0;
        if (settle_leases(s, r->name, now, &busy, err)) {
            rollback(s);
            return -1;
        }
        if (busy) {
            rollback(s);
            return 0;
        }
    }
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db,
                           "INSERT INTO workflow_runs (id, name, script, status, scheduled_for,"
                           " started_at, finished_at, lease_until, error, details)"
                           " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, coalesce(?10, '{}'))",
                           -1, &st, NULL) != SQLITE_OK) {
        rollback(s);
        return sq_fail(s, err, "preparing the workflow run insert");
    }
    sq_bind_str(st, 1, id);
    sq_bind_str(st, 2, r->name);
    sq_bind_str(st, 3, r->script);
    sq_bind_str(st, 4, r->status);
    bind_int_or_null(st, 5, r->scheduled_for);
    sqlite3_bind_int64(st, 6, started);
    bind_int_or_null(st, 7, r->finished_at);
    bind_int_or_null(st, 8, r->lease_until);
    sq_bind_str(st, 9, r->error);
    sq_bind_str(st, 10, r->details);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        if (rc == SQLITE_CONSTRAINT) {
            cf_fail(err, CF_EINVAL, "workflow run '%.*s': the id is already taken",
                    (int)(id.n > 64 ? 64 : id.n), id.p);
            rollback(s);
            return -1;
        }
        sq_fail(s, err, "recording a workflow run");
        rollback(s);
        return -1;
    }
    if (exec_sql(s, "COMMIT", err)) {
        rollback(s);
        return -1;
    }
    *acquired = 1;
    return 0;
}

int sq_update_run(cf_store *base, const cf_workflow_run *r, cf_err *err)
{
    sq_store *s = (sq_store *)base;
    if (cf_workflow_run_check(r, 1, err))
        return -1;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db,
                           "UPDATE workflow_runs SET status = ?2, finished_at = ?3,"
                           " lease_until = ?4, error = ?5, details = coalesce(?6, details)"
                           " WHERE id = ?1",
                           -1, &st, NULL) != SQLITE_OK)
        return sq_fail(s, err, "preparing the workflow run update");
    sq_bind_str(st, 1, r->id);
    sq_bind_str(st, 2, r->status);
    bind_int_or_null(st, 3, r->finished_at);
    bind_int_or_null(st, 4, r->lease_until);
    sq_bind_str(st, 5, r->error);
    sq_bind_str(st, 6, r->details);
    int changes = 0;
    if (step_done(s, st, "updating a workflow run", &changes, err))
        return -1;
    if (changes == 0)
        return cf_fail(err, CF_ENOTFOUND, "workflow run '%.*s' not found",
                       (int)(r->id.n > 64 ? 64 : r->id.n), r->id.p);
    return 0;
}

static int64_t col_int(sqlite3_stmt *st, int i)
{
    return sqlite3_column_type(st, i) == SQLITE_NULL ? CF_NULL_INT : sqlite3_column_int64(st, i);
}

int sq_list_runs(cf_store *base, cf_str name, int64_t limit, cf_run_fn cb, void *ud, cf_err *err)
{
    sq_store *s = (sq_store *)base;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT id, name, script, status, scheduled_for, started_at,"
                           " finished_at, lease_until, error, details FROM workflow_runs"
                           " WHERE ?1 IS NULL OR name = ?1"
                           " ORDER BY started_at DESC, seq DESC LIMIT ?2",
                           -1, &st, NULL) != SQLITE_OK)
        return sq_fail(s, err, "preparing the workflow run listing");
    sq_bind_str(st, 1, name);
    sqlite3_bind_int64(st, 2, limit < 0 ? -1 : limit);
    int rc, stop = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        cf_workflow_run r = {
            .id = sq_col_str(st, 0),
            .name = sq_col_str(st, 1),
            .script = sq_col_str(st, 2),
            .status = sq_col_str(st, 3),
            .scheduled_for = col_int(st, 4),
            .started_at = col_int(st, 5),
            .finished_at = col_int(st, 6),
            .lease_until = col_int(st, 7),
            .error = sq_col_str(st, 8),
            .details = sq_col_str(st, 9),
        };
        stop = cb(ud, &r);
        if (stop)
            break;
    }
    if (!stop && rc != SQLITE_DONE) {
        sq_fail(s, err, "listing workflow runs");
        sqlite3_finalize(st);
        return -1;
    }
    sqlite3_finalize(st);
    return stop;
}
