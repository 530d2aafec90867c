/*
 * ClickHouse backend: the scheduler's workflow runs. Rows are versions in a
 * ReplacingMergeTree (an update writes the whole row again), read FINAL.
 *
 * The lease (a "running" run) across machines sharing one server, with no
 * transactions, compare-and-swap or locks: Fischer's timed mutual
 * exclusion, relying only on "an INSERT that returned is visible to every
 * later read". With S = lease_settle_ms (URL parameter, default 2000):
 *  1. c = monotonic clock; expired running runs of the name become
 *     abandoned; if a live one remains: not acquired, nothing written.
 *  2. Insert my row (running): my claim. w = monotonic clock once the
 *     insert returned. If w - c > S/2 (my check may be stale): withdraw.
 *  3. Wait until w + S, read the running rows of the name with a live
 *     lease: the one with the smallest id wins. Not mine: withdraw.
 * Withdrawing writes a new version of my row with status "withdrawn",
 * which nothing shows or counts (list_runs, update_run, the lease reads,
 * the id check): the caller sees what SQLite and PostgreSQL give a loser.
 *
 * Why two winners are impossible: say A and B both win and id_B < id_A.
 * A's read (after w_A + S) did not see B's row, so B's insert returned
 * after w_A + S; B's check started less than S/2 before that, so after
 * w_A, when A's row was visible and live: B would have found it busy and
 * not inserted. Assumptions: a node takes at most S/2 from its check to
 * the end of its insert (measured in step 2, not trusted), clocks of the
 * nodes run at the same rate, and one ClickHouse server (Distributed or
 * replicated tables do not make an insert visible everywhere at once).
 * Without slow claimants the smallest id always wins, so a firing is not
 * lost; a slow one may make every claimant withdraw (that firing skipped).
 * A claim whose lease is not live when written (lease_until unset or
 * past) blocks nobody and is inserted without the wait, as on SQLite.
 */
#include "ch_int.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crucible/ingest/cf_ring.h"

/* The status of a withdrawn claim: never shown, never a lease. */
#define WITHDRAWN "withdrawn"

#define RUN_COLUMNS                                                                         \
    "id, name, script, status, scheduled_for, started_at, finished_at, lease_until, error,"  \
    " details, seq, version"

static void run_row(cf_buf *b, const cf_workflow_run *r, uint64_t seq, uint64_t version)
{
    ch_json_key(b, "id", 1);
    cf_buf_json_string(b, r->id.p, r->id.n);
    ch_json_str(b, "name", r->name);
    ch_json_str(b, "script", r->script);
    ch_json_str(b, "status", r->status);
    ch_json_int(b, "scheduled_for", r->scheduled_for);
    ch_json_int(b, "started_at", r->started_at);
    ch_json_int(b, "finished_at", r->finished_at);
    ch_json_int(b, "lease_until", r->lease_until);
    ch_json_str(b, "error", r->error);
    ch_json_str(b, "details", r->details.p ? r->details : cf_cstr("{}"));
    ch_json_int(b, "seq", (int64_t)seq);
    ch_json_int(b, "version", (int64_t)version);
    cf_buf_str(b, "}\n");
}

static void read_run(const cf_str *f, cf_workflow_run *r)
{
    r->id = f[0];
    r->name = f[1];
    r->script = f[2];
    r->status = f[3];
    r->scheduled_for = ch_int(f[4]);
    r->started_at = ch_int(f[5]);
    r->finished_at = ch_int(f[6]);
    r->lease_until = ch_int(f[7]);
    r->error = f[8];
    r->details = f[9];
}

/* A version above floor (and above every version this process wrote). */
static uint64_t version_above(uint64_t floor)
{
    uint64_t v = ch_next_seq();
    return v > floor ? v : floor + 1;
}

static int write_rows(ch_store *s, cf_buf *b, const char *what, cf_err *err)
{
    if (cf_buf_failed(b))
        return cf_fail(err, CF_ENOMEM, "out of memory %s", what);
    return b->n ? ch_insert(s, "workflow_runs", b, what, err) : 0;
}

/* Running runs of the name: expired ones become abandoned; *busy when a
 * live one remains. */
static int settle_leases(ch_store *s, cf_str name, int64_t now, int *busy, cf_err *err)
{
    *busy = 0;
    cf_buf q = CF_BUF_INIT, out = CF_BUF_INIT;
    cf_buf_str(&q, "SELECT " RUN_COLUMNS " FROM workflow_runs FINAL WHERE name = ");
    ch_quote(&q, name);
    cf_buf_str(&q, " AND status = 'running'");
    ch_rows r;
    int rc = ch_query(s, &q, "checking the workflow lease", &r, err);
    cf_buf_free(&q);
    if (rc)
        return -1;
    while ((rc = ch_rows_next(&r, 12, err)) == 1) {
        cf_workflow_run run;
        read_run(r.f, &run);
        int64_t lease = run.lease_until == CF_NULL_INT ? 0 : run.lease_until;
        if (lease > now) {
            *busy = 1;
            continue;
        }
        run.status = cf_cstr("abandoned");
        run.finished_at = run.lease_until == CF_NULL_INT ? now : run.lease_until;
        if (!run.error.p)
            run.error = cf_cstr("the process running it stopped renewing its lease (it ended"
                                " or was killed)");
        run_row(&out, &run, (uint64_t)ch_int(r.f[10]), version_above((uint64_t)ch_int(r.f[11])));
    }
    if (rc == 0)
        rc = write_rows(s, &out, "abandoning expired workflow runs", err);
    cf_buf_free(&out);
    return rc < 0 ? -1 : 0;
}

int ch_lease_slow(int64_t check_ns, int64_t written_ns, int64_t settle_ns)
{
    return written_ns - check_ns > settle_ns / 2;
}

static int id_cmp(cf_str a, cf_str b)
{
    size_t n = a.n < b.n ? a.n : b.n;
    int c = n ? memcmp(a.p, b.p, n) : 0;
    return c ? c : (a.n > b.n) - (a.n < b.n);
}

int ch_lease_won(cf_str mine, const cf_str *live, size_t n)
{
    int seen = 0;
    for (size_t i = 0; i < n; i++) {
        int c = id_cmp(live[i], mine);
        if (c < 0)
            return 0;
        seen |= c == 0;
    }
    return seen;
}

/* Step 3's read: the running rows of the name whose lease ends after
 * `since` (the time of my check, so a lease shorter than the settle still
 * counts); *won when mine is the smallest id among them. */
static int read_claims(ch_store *s, cf_str name, cf_str mine, int64_t since, int *won,
                       cf_err *err)
{
    *won = 0;
    cf_buf q = CF_BUF_INIT, bytes = CF_BUF_INIT, lens = CF_BUF_INIT;
    cf_buf_str(&q, "SELECT id FROM workflow_runs FINAL WHERE name = ");
    ch_quote(&q, name);
    cf_buf_str(&q, " AND status = 'running' AND lease_until > ");
    cf_buf_int(&q, since);
    ch_rows r;
    int rc = ch_query(s, &q, "reading the claims of a workflow lease", &r, err);
    cf_buf_free(&q);
    if (rc)
        return -1;
    size_t n = 0;
    while ((rc = ch_rows_next(&r, 1, err)) == 1) {
        size_t len = r.f[0].p ? r.f[0].n : 0;
        cf_buf_append(&lens, &len, sizeof len);
        cf_buf_append(&bytes, r.f[0].p ? r.f[0].p : "", len);
        n++;
    }
    cf_str *ids = rc == 0 && n ? malloc(n * sizeof *ids) : NULL;
    if (rc == 0 && (cf_buf_failed(&bytes) || cf_buf_failed(&lens) || (n && !ids)))
        rc = cf_fail(err, CF_ENOMEM, "out of memory reading the claims of a workflow lease");
    if (rc == 0) {
        size_t off = 0;
        for (size_t i = 0; i < n; i++) {
            memcpy(&ids[i].n, lens.p + i * sizeof(size_t), sizeof(size_t));
            ids[i].p = bytes.p + off;
            off += ids[i].n;
        }
        *won = ch_lease_won(mine, ids, n);
    }
    free(ids);
    cf_buf_free(&bytes);
    cf_buf_free(&lens);
    return rc < 0 ? -1 : 0;
}

static void sleep_until(int64_t deadline_ns)
{
    for (int64_t now = cf_mono_ns(); now < deadline_ns; now = cf_mono_ns()) {
        int64_t d = deadline_ns - now;
        struct timespec ts = {(time_t)(d / 1000000000), (long)(d % 1000000000)};
        nanosleep(&ts, NULL);
    }
}

/* Withdraws my claim (version ver): a newer version of my row with a
 * status nothing shows or counts. */
static int withdraw(ch_store *s, cf_workflow_run r, uint64_t seq, uint64_t ver, cf_err *err)
{
    cf_buf b = CF_BUF_INIT;
    r.status = cf_cstr(WITHDRAWN);
    run_row(&b, &r, seq, version_above(ver));
    int rc = write_rows(s, &b, "withdrawing a workflow lease claim", err);
    cf_buf_free(&b);
    return rc;
}

/* An id given by the caller must be new; rows withdrawn under it do not
 * count (a loser's id is free again, as on SQLite and PostgreSQL), and
 * *floor is then the least version that replaces them. */
static int check_id_free(ch_store *s, cf_str id, uint64_t *floor, cf_err *err)
{
    cf_buf q = CF_BUF_INIT;
    cf_buf_str(&q, "SELECT countIf(status != '" WITHDRAWN "'), max(version) + 1"
                   " FROM workflow_runs FINAL WHERE id = ");
    ch_quote(&q, id);
    ch_rows r;
    int rc = ch_query(s, &q, "recording a workflow run", &r, err);
    cf_buf_free(&q);
    if (rc)
        return -1;
    rc = ch_rows_next(&r, 2, err);
    if (rc < 0)
        return -1;
    int64_t taken = rc ? ch_int(r.f[0]) : 0;
    *floor = rc ? (uint64_t)ch_int(r.f[1]) : 0;
    ch_rows_close(&r);
    if (taken)
        return cf_fail(err, CF_EINVAL, "workflow run '%.*s': the id is already taken",
                       (int)(id.n > 64 ? 64 : id.n), id.p);
    return 0;
}

/* Steps 2 and 3 for a claim r (running, live lease) checked at check_ns
 * (monotonic) and wall time now. */
static int claim(ch_store *s, const cf_workflow_run *r, uint64_t ver, int64_t check_ns,
                 int64_t now, int *acquired, cf_err *err)
{
    uint64_t seq = ch_next_seq();
    cf_buf b = CF_BUF_INIT;
    run_row(&b, r, seq, ver);
    int rc = write_rows(s, &b, "recording a workflow run", err);
    cf_buf_free(&b);
    int64_t settle_ns = (int64_t)s->lease_settle_ms * 1000000;
    int64_t written_ns = cf_mono_ns();
    int won = 0;
    if (rc == 0 && !ch_lease_slow(check_ns, written_ns, settle_ns)) {
        sleep_until(written_ns + settle_ns);
        rc = read_claims(s, r->name, r->id, now, &won, err);
    }
    if (rc == 0 && won) {
        *acquired = 1;
        return 0;
    }
    /* Lost, too slow, or failed (the claim may have been written): withdraw;
     * the first error is the one reported. */
    cf_err werr;
    int wrc = withdraw(s, *r, seq, ver, rc ? &werr : err);
    return rc || wrc ? -1 : 0;
}

int ch_insert_run(cf_store *base, const cf_workflow_run *in, int *acquired, cf_err *err)
{
    ch_store *s = (ch_store *)base;
    *acquired = 0;
    cf_workflow_run r = *in;
    uint64_t floor = 0;
    if (check_id_free(s, r.id, &floor, err))
        return -1;
    int64_t check_ns = cf_mono_ns(), now = cf_now_us();
    if (!r.started_at)
        r.started_at = now;
    int running = r.status.n == 7 && memcmp(r.status.p, "running", 7) == 0;
    int busy = 0, rc = 0;
    if (running && settle_leases(s, r.name, now, &busy, err))
        return -1;
    if (busy)
        return 0;
    if (running && r.lease_until != CF_NULL_INT && r.lease_until > now) {
        rc = claim(s, &r, version_above(floor), check_ns, now, acquired, err);
    } else {
        /* not a live lease: blocks nobody, written as given */
        cf_buf b = CF_BUF_INIT;
        run_row(&b, &r, ch_next_seq(), version_above(floor));
        rc = write_rows(s, &b, "recording a workflow run", err);
        cf_buf_free(&b);
        *acquired = rc == 0;
    }
    return rc;
}

int ch_update_run(cf_store *base, const cf_workflow_run *in, cf_err *err)
{
    ch_store *s = (ch_store *)base;
    if (cf_workflow_run_check(in, 1, err))
        return -1;
    cf_buf q = CF_BUF_INIT, out = CF_BUF_INIT;
    cf_buf_str(&q, "SELECT " RUN_COLUMNS " FROM workflow_runs FINAL WHERE id = ");
    ch_quote(&q, in->id);
    cf_buf_str(&q, " AND status != '" WITHDRAWN "' LIMIT 1");
    ch_rows r;
    int rc = ch_query(s, &q, "updating a workflow run", &r, err);
    cf_buf_free(&q);
    if (rc)
        return -1;
    rc = ch_rows_next(&r, 12, err);
    if (rc < 0)
        return -1;
    if (rc == 0)
        return cf_fail(err, CF_ENOTFOUND, "workflow run '%.*s' not found",
                       (int)(in->id.n > 64 ? 64 : in->id.n), in->id.p);
    cf_workflow_run run;
    read_run(r.f, &run);
    run.status = in->status;
    run.finished_at = in->finished_at;
    run.lease_until = in->lease_until;
    run.error = in->error;
    if (in->details.p)
        run.details = in->details;
    run_row(&out, &run, (uint64_t)ch_int(r.f[10]), version_above((uint64_t)ch_int(r.f[11])));
    ch_rows_close(&r);
    rc = write_rows(s, &out, "updating a workflow run", err);
    cf_buf_free(&out);
    return rc;
}

int ch_list_runs(cf_store *base, cf_str name, int64_t limit, cf_run_fn cb, void *ud, cf_err *err)
{
    ch_store *s = (ch_store *)base;
    cf_buf q = CF_BUF_INIT;
    cf_buf_str(&q, "SELECT " RUN_COLUMNS " FROM workflow_runs FINAL"
                   " WHERE status != '" WITHDRAWN "'");
    if (name.p) {
        cf_buf_str(&q, " AND name = ");
        ch_quote(&q, name);
    }
    cf_buf_str(&q, " ORDER BY started_at DESC, seq DESC LIMIT ");
    cf_buf_int(&q, limit < 0 ? INT64_MAX : limit);
    ch_rows r;
    int rc = ch_query(s, &q, "listing workflow runs", &r, err);
    cf_buf_free(&q);
    if (rc)
        return -1;
    while ((rc = ch_rows_next(&r, 12, err)) == 1) {
        cf_workflow_run run;
        read_run(r.f, &run);
        int stop = cb(ud, &run);
        if (stop) {
            ch_rows_close(&r);
            return stop;
        }
    }
    return rc < 0 ? -1 : 0;
}
