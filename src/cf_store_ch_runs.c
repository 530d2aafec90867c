/*
 * ClickHouse backend: the scheduler's workflow runs. Rows are versions in a
 * ReplacingMergeTree (an update writes the whole row again), read FINAL.
 *
 * The lease: ClickHouse has no transactions, so "no live running run of
 * this name, then insert mine" is made atomic on one machine by an
 * exclusive file lock (flock on a file named after the server and
 * database, under /tmp) held across the check and the insert. Processes on
 * different machines sharing one ClickHouse are not serialised by it: two
 * nodes checking within the same few milliseconds can both take a lease
 * (README, "ClickHouse").
 */
#include "cf_store_ch_int.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "crucible/cf_uuid.h"

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

static uint64_t next_version(cf_str old)
{
    uint64_t v = ch_next_seq(), o = (uint64_t)ch_int(old);
    return o + 1 > v ? o + 1 : v;
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
        run_row(&out, &run, (uint64_t)ch_int(r.f[10]), next_version(r.f[11]));
    }
    if (rc == 0)
        rc = write_rows(s, &out, "abandoning expired workflow runs", err);
    cf_buf_free(&out);
    return rc < 0 ? -1 : 0;
}

int ch_insert_run(cf_store *base, const cf_workflow_run *in, char id_out[37], int *acquired,
                  cf_err *err)
{
    ch_store *s = (ch_store *)base;
    *acquired = 0;
    if (cf_workflow_run_check(in, 0, err))
        return -1;
    cf_workflow_run r = *in;
    char gen[37];
    if (!r.id.p) {
        if (cf_uuid7(gen))
            return cf_fail(err, CF_EIO, "cannot generate an id: the system random source failed");
        r.id = (cf_str){gen, CF_UUID_LEN};
    }
    int64_t now = cf_now_us();
    if (!r.started_at)
        r.started_at = now;
    int running = r.status.n == 7 && memcmp(r.status.p, "running", 7) == 0;
    int fd = open(s->lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0666);
    if (fd < 0 || flock(fd, LOCK_EX) != 0) {
        if (fd >= 0)
            close(fd);
        return cf_fail(err, CF_EIO, "cannot lock %s for the workflow lease", s->lock_path);
    }
    int rc = 0, busy = 0;
    if (running)
        rc = settle_leases(s, r.name, now, &busy, err);
    if (rc == 0 && !busy && in->id.p) {
        cf_buf q = CF_BUF_INIT;
        cf_buf_str(&q, "SELECT count() FROM workflow_runs WHERE id = ");
        ch_quote(&q, r.id);
        int64_t taken = 0;
        rc = ch_query_int(s, &q, "recording a workflow run", &taken, err);
        cf_buf_free(&q);
        if (rc == 0 && taken)
            rc = cf_fail(err, CF_EINVAL, "workflow run '%.*s': the id is already taken",
                         (int)(r.id.n > 64 ? 64 : r.id.n), r.id.p);
    }
    if (rc == 0 && !busy) {
        cf_buf b = CF_BUF_INIT;
        run_row(&b, &r, ch_next_seq(), ch_next_seq());
        rc = write_rows(s, &b, "recording a workflow run", err);
        cf_buf_free(&b);
        if (rc == 0)
            *acquired = 1;
    }
    flock(fd, LOCK_UN);
    close(fd);
    if (rc == 0 && *acquired && id_out) {
        size_t n = r.id.n < 36 ? r.id.n : 36;
        memcpy(id_out, r.id.p, n);
        id_out[n] = '\0';
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
    cf_buf_str(&q, " LIMIT 1");
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
    run_row(&out, &run, (uint64_t)ch_int(r.f[10]), next_version(r.f[11]));
    ch_rows_close(&r);
    rc = write_rows(s, &out, "updating a workflow run", err);
    cf_buf_free(&out);
    return rc;
}

int ch_list_runs(cf_store *base, cf_str name, int64_t limit, cf_run_fn cb, void *ud, cf_err *err)
{
    ch_store *s = (ch_store *)base;
    cf_buf q = CF_BUF_INIT;
    cf_buf_str(&q, "SELECT " RUN_COLUMNS " FROM workflow_runs FINAL");
    if (name.p) {
        cf_buf_str(&q, " WHERE name = ");
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
