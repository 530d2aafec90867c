/* Workflow runs in the SQLite backend: the lease that keeps one run of a
 * workflow at a time across connections, expiry, updates, listing; and the
 * stop request and interruptible sleep of cf_sched. */
#include <signal.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cf_test.h"
#include "crucible/core/cf_sched.h"
#include "crucible/store/cf_store.h"

#define DB "runs_test.db"

static void remove_db(void)
{
    unlink(DB);
    unlink(DB "-wal");
    unlink(DB "-shm");
}

static cf_store *open_db(void)
{
    cf_store *s = NULL;
    cf_err err;
    if (cf_store_open("sqlite:" DB, NULL, &s, &err)) {
        fprintf(stderr, "open: %s\n", err.msg);
        exit(1);
    }
    int applied;
    if (cf_store_migrate(s, &applied, &err)) {
        fprintf(stderr, "migrate: %s\n", err.msg);
        exit(1);
    }
    return s;
}

static cf_workflow_run running(const char *name, int64_t lease_until)
{
    cf_workflow_run r;
    memset(&r, 0, sizeof r);
    r.name = cf_cstr(name);
    r.script = cf_cstr("scripts/nightly.lua");
    r.status = cf_cstr("running");
    r.scheduled_for = CF_NULL_INT;
    r.finished_at = CF_NULL_INT;
    r.lease_until = lease_until;
    return r;
}

typedef struct listing {
    int n;
    char status[8][16];
    char name[8][64];
    int64_t finished[8];
} listing;

static int collect(void *ud, const cf_workflow_run *r)
{
    listing *l = ud;
    if (l->n < 8) {
        snprintf(l->status[l->n], sizeof l->status[0], "%.*s", (int)r->status.n, r->status.p);
        snprintf(l->name[l->n], sizeof l->name[0], "%.*s", (int)r->name.n, r->name.p);
        l->finished[l->n] = r->finished_at;
    }
    l->n++;
    return 0;
}

static int stop_after_one(void *ud, const cf_workflow_run *r)
{
    (void)r;
    (*(int *)ud)++;
    return 7;
}

static void test_lease_across_connections(void)
{
    remove_db();
    cf_store *a = open_db(), *b = open_db();
    cf_err err;
    char id[37];
    int got = -1;
    int64_t now = cf_now_us();
    cf_workflow_run r = running("nightly", now + 60 * 1000000LL);
    CHECK(cf_store_insert_run(a, &r, id, &got, &err) == 0 && got == 1);
    CHECK(strlen(id) == 36);
    /* the other connection finds the live lease and inserts nothing */
    char id2[37] = "";
    CHECK(cf_store_insert_run(b, &r, id2, &got, &err) == 0 && got == 0);
    /* another workflow is independent */
    cf_workflow_run other = running("weekly", now + 60 * 1000000LL);
    CHECK(cf_store_insert_run(b, &other, id2, &got, &err) == 0 && got == 1);
    /* finishing frees it */
    cf_workflow_run done = r;
    done.id = cf_cstr(id);
    done.status = cf_cstr("ok");
    done.finished_at = now + 1;
    done.lease_until = CF_NULL_INT;
    done.details = cf_cstr("{\"metrics\":{\"trigger_count\":2}}");
    CHECK(cf_store_update_run(a, &done, &err) == 0);
    CHECK(cf_store_insert_run(b, &r, id2, &got, &err) == 0 && got == 1);
    listing l = {0};
    CHECK(cf_store_list_runs(a, cf_cstr("nightly"), -1, collect, &l, &err) == 0);
    CHECK(l.n == 2);
    CHECK_STR(l.status[0], "running");
    CHECK_STR(l.status[1], "ok");
    CHECK(l.finished[1] == now + 1);
    memset(&l, 0, sizeof l);
    CHECK(cf_store_list_runs(a, CF_NULL_STR, 1, collect, &l, &err) == 0 && l.n == 1);
    memset(&l, 0, sizeof l);
    CHECK(cf_store_list_runs(a, CF_NULL_STR, -1, collect, &l, &err) == 0 && l.n == 3);
    int calls = 0;
    CHECK(cf_store_list_runs(a, CF_NULL_STR, -1, stop_after_one, &calls, &err) == 7 && calls == 1);
    cf_store_close(a);
    cf_store_close(b);
}

static void test_expired_lease_is_abandoned(void)
{
    remove_db();
    cf_store *s = open_db();
    cf_err err;
    char id[37];
    int got = 0;
    int64_t past = cf_now_us() - 1000;
    cf_workflow_run r = running("nightly", past);
    CHECK(cf_store_insert_run(s, &r, id, &got, &err) == 0 && got == 1);
    cf_workflow_run again = running("nightly", cf_now_us() + 1000000);
    CHECK(cf_store_insert_run(s, &again, id, &got, &err) == 0 && got == 1);
    listing l = {0};
    CHECK(cf_store_list_runs(s, cf_cstr("nightly"), -1, collect, &l, &err) == 0 && l.n == 2);
    CHECK_STR(l.status[1], "abandoned");
    CHECK(l.finished[1] == past);
    CHECK_STR(l.status[0], "running");
    cf_store_close(s);
}

static void test_bad_input(void)
{
    remove_db();
    cf_store *s = open_db();
    cf_err err;
    char id[37];
    int got = 0;
    cf_workflow_run r = running("x", 0);
    r.status = cf_cstr("done");
    CHECK(cf_store_insert_run(s, &r, id, &got, &err) == -1 && err.code == CF_EINVAL);
    CHECK(strstr(err.msg, "'done'") != NULL);
    r = running("", 0);
    CHECK(cf_store_insert_run(s, &r, id, &got, &err) == -1 && err.code == CF_EINVAL);
    /* hostile names are data */
    const char *evil = "x'); DROP TABLE workflow_runs;--";
    r = running(evil, cf_now_us() + 1000000);
    CHECK(cf_store_insert_run(s, &r, id, &got, &err) == 0 && got == 1);
    listing l = {0};
    CHECK(cf_store_list_runs(s, cf_cstr(evil), -1, collect, &l, &err) == 0 && l.n == 1);
    CHECK_STR(l.name[0], evil);
    /* a given id that exists is refused */
    cf_workflow_run dup = running("y", CF_NULL_INT);
    dup.status = cf_cstr("skipped");
    dup.id = cf_cstr(id);
    CHECK(cf_store_insert_run(s, &dup, NULL, &got, &err) == -1 && err.code == CF_EINVAL);
    cf_workflow_run up = dup;
    up.id = cf_cstr("no-such-run");
    CHECK(cf_store_update_run(s, &up, &err) == -1 && err.code == CF_ENOTFOUND);
    cf_store_close(s);
}

static void test_database_locked(void)
{
    remove_db();
    cf_store *s = NULL;
    cf_err err;
    cf_store_opts o = {.busy_timeout_ms = 50};
    CHECK(cf_store_open("sqlite:" DB, &o, &s, &err) == 0);
    int applied;
    CHECK(cf_store_migrate(s, &applied, &err) == 0);
    /* another process holds the write lock: the lease cannot be taken, the
     * failure says so, and nothing is recorded */
    sqlite3 *other = NULL;
    CHECK(sqlite3_open(DB, &other) == SQLITE_OK);
    CHECK(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK);
    char id[37];
    int got = 1;
    cf_workflow_run r = running("nightly", cf_now_us() + 1000000);
    CHECK(cf_store_insert_run(s, &r, id, &got, &err) == -1 && err.code == CF_EDB && got == 0);
    CHECK(strstr(err.msg, "locked") != NULL);
    sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(other);
    listing l = {0};
    CHECK(cf_store_list_runs(s, CF_NULL_STR, -1, collect, &l, &err) == 0 && l.n == 0);
    CHECK(cf_store_insert_run(s, &r, id, &got, &err) == 0 && got == 1);
    cf_store_close(s);
}

static void test_stop_and_sleep(void)
{
    cf_stop_reset();
    CHECK(!cf_stop_requested());
    int64_t t0 = cf_now_us();
    CHECK(cf_sleep_until(t0 + 30000) == CF_WAKE_TIME);
    CHECK(cf_now_us() - t0 >= 30000);
    cf_stop_request();
    t0 = cf_now_us();
    CHECK(cf_sleep_until(t0 + 5000000) == CF_WAKE_STOP);
    CHECK(cf_now_us() - t0 < 1000000);
    cf_stop_reset();
    CHECK(!cf_stop_requested());
    /* SIGTERM while watched becomes a stop request, not the end */
    int armed = 0;
    cf_err err;
    CHECK(cf_stop_watch(&armed, &err) == 0 && armed == 1);
    CHECK(cf_stop_watch(&armed, &err) == 0 && armed == 0);
    CHECK(cf_stop_watching());
    kill(getpid(), SIGTERM);
    t0 = cf_now_us();
    CHECK(cf_sleep_until(t0 + 5000000) == CF_WAKE_STOP
          || cf_sleep_until(t0 + 5000000) == CF_WAKE_STOP);
    CHECK(cf_stop_requested());
    CHECK(!cf_stop_watching()); /* one SIGTERM per arming */
    /* a pending stop belongs to whoever watched: nobody else arms meanwhile */
    CHECK(cf_stop_watch(&armed, &err) == 0 && armed == 0 && !cf_stop_watching());
    cf_stop_reset();
}

int main(void)
{
    RUN(test_lease_across_connections);
    RUN(test_expired_lease_is_abandoned);
    RUN(test_bad_input);
    RUN(test_database_locked);
    RUN(test_stop_and_sleep);
    remove_db();
    return cf_test_done();
}
