/* The ring buffer and the ingestion pipeline: batching, flush, full
 * policies, several producers, rows the database refuses, a database that
 * is locked away mid-run, the shutdown deadline, the quality hook. */
#include "cf_test.h"

#include <math.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <unistd.h>

#include "crucible/ingest/cf_ingest.h"
#include "crucible/store/cf_store.h"
#include "ingest/cf_ingest_int.h"
#include "store/sqlite/sqlite_int.h"

#define DB "test_ingest.db"
#define DEAD "test_ingest.dead.jsonl"

static cf_sanitizer *san;

static cf_record *mkrec(size_t bytes)
{
    cf_record *r = calloc(1, sizeof *r);
    r->bytes = bytes;
    return r;
}

static void test_ring(void)
{
    cf_ring *r;
    cf_err err;
    CHECK(cf_ring_new(0, 0, 1, &r, &err) == -1);
    CHECK(cf_ring_new(3, 0, 2, &r, &err) == 0);
    CHECK(cf_ring_push(r, mkrec(10), 0) == CF_RING_OK);
    CHECK(cf_ring_push(r, mkrec(10), 0) == CF_RING_OK);
    CHECK(cf_ring_push(r, mkrec(10), 0) == CF_RING_OK);
    cf_record *extra = mkrec(10);
    CHECK(cf_ring_push(r, extra, 0) == CF_RING_FULL);
    int64_t t0 = cf_mono_ns();
    CHECK(cf_ring_push(r, extra, 50) == CF_RING_FULL); /* waited, gave up */
    CHECK(cf_mono_ns() - t0 >= 45 * 1000000);
    cf_record *out[8];
    int fin;
    CHECK(cf_ring_take(r, out, 2, cf_mono_ns() + 1000000, &fin) == 2 && !fin);
    cf_ring_stats st;
    cf_ring_stats_get(r, &st);
    CHECK(st.depth == 1 && st.inflight == 2 && st.pushed == 3 && st.done == 0);
    cf_ring_done(r, 2);
    free(out[0]);
    free(out[1]);
    CHECK(cf_ring_push(r, extra, 0) == CF_RING_OK);
    /* below the batch size, take waits for the deadline, then takes what is there */
    t0 = cf_mono_ns();
    CHECK(cf_ring_take(r, out, 1, cf_mono_ns() + 30000000, &fin) == 1);
    free(out[0]);
    cf_ring_done(r, 1);
    cf_ring_close(r);
    cf_ring_close(r);
    cf_record *late = mkrec(1);
    CHECK(cf_ring_push(r, late, 0) == CF_RING_CLOSED); /* the caller keeps it */
    free(late);
    CHECK(cf_ring_take(r, out, 8, cf_mono_ns() + 1000000000, &fin) == 1 && !fin);
    free(out[0]);
    cf_ring_done(r, 1);
    CHECK(cf_ring_take(r, out, 8, cf_mono_ns() + 1000000000, &fin) == 0 && fin);
    char msg[100];
    CHECK(cf_ring_flush(r, 100, msg, sizeof msg) == 0);
    cf_ring_free(r);

    /* the byte budget: a ring of 100 bytes holds two records of 40 */
    CHECK(cf_ring_new(10, 100, 5, &r, &err) == 0);
    CHECK(cf_ring_push(r, mkrec(40), 0) == CF_RING_OK);
    CHECK(cf_ring_push(r, mkrec(40), 0) == CF_RING_OK);
    cf_record *big = mkrec(40);
    CHECK(cf_ring_push(r, big, 0) == CF_RING_FULL);
    free(big);
    cf_ring_free(r); /* frees what is left */
}

static void remove_db(void)
{
    unlink(DB);
    unlink(DB "-wal");
    unlink(DB "-shm");
    unlink(DEAD);
}

static void migrate_db(void)
{
    remove_db();
    cf_store *s;
    cf_err err;
    if (cf_store_open("sqlite:" DB, NULL, &s, &err) || cf_store_migrate(s, NULL, &err))
        fprintf(stderr, "migrate: %s\n", err.msg);
    cf_store_close(s);
}

static cf_ingest_opts opts(void)
{
    cf_ingest_opts o;
    memset(&o, 0, sizeof o);
    o.store_url = "sqlite:" DB;
    o.store_opts.busy_timeout_ms = 50;
    o.capacity = 10000;
    o.max_batch = 100;
    o.flush_interval_ms = 60000;
    o.full_policy = CF_FULL_BLOCK;
    o.block_timeout_ms = 1000;
    o.retry_initial_ms = 10;
    o.retry_max_ms = 40;
    o.shutdown_timeout_ms = 300;
    o.dead_letter_path = DEAD;
    o.user_id_key = "k";
    o.user_id_key_len = 1;
    o.sanitizer = san;
    o.sanitize_metadata = 1;
    o.quiet = 1;
    return o;
}

static void event_in(cf_event_in *in, const char *id, const char *prompt)
{
    memset(in, 0, sizeof *in);
    if (id) {
        in->v[CF_F_ID].type = CF_V_STRING;
        in->v[CF_F_ID].s = cf_cstr(id);
    }
    in->v[CF_F_DEPLOYMENT_ID].type = CF_V_STRING;
    in->v[CF_F_DEPLOYMENT_ID].s = cf_cstr("dep");
    in->v[CF_F_PROMPT].type = CF_V_STRING;
    in->v[CF_F_PROMPT].s = cf_cstr(prompt);
    in->v[CF_F_RESPONSE].type = CF_V_STRING;
    in->v[CF_F_RESPONSE].s = cf_cstr("ok");
    in->v[CF_F_USER_ID].type = CF_V_STRING;
    in->v[CF_F_USER_ID].s = cf_cstr("user-1");
}

static int64_t db_count(const char *where)
{
    sqlite3 *db;
    sqlite3_open(DB, &db);
    char sql[300];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM inference_events %s", where);
    sqlite3_stmt *st;
    int64_t n = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

static int submit(cf_ingest *g, cf_prepare_scratch *ps, const char *id, const char *prompt)
{
    cf_event_in in;
    event_in(&in, id, prompt);
    char out[CF_MAX_ID_BYTES + 1];
    cf_verrors v;
    cf_err err;
    int rc = cf_ingest_submit(g, &in, ps, 7, NULL, out, &v, &err);
    if (rc)
        fprintf(stderr, "submit: %s\n", err.msg);
    return rc;
}

/* An id already stored, or repeated in a batch, is the same event: the
 * repeat is skipped and counted as a duplicate, neither refused nor
 * dead-lettered; the rest of the batch is written. */
static void check_duplicates(cf_ingest *g, cf_prepare_scratch *ps)
{
    cf_err err;
    cf_ingest_stats s;
    CHECK(submit(g, ps, "dup-1", "first") == 0);
    for (int i = 0; i < 10; i++)
        CHECK(submit(g, ps, NULL, "x") == 0);
    CHECK(submit(g, ps, "dup-1", "second 555-123-4567") == 0);
    CHECK(submit(g, ps, "hostile'); DROP TABLE inference_events;--", "y") == 0);
    CHECK(cf_ingest_flush(g, -1, &err) == 0);
    CHECK(db_count("") == 250 + 12);
    CHECK(db_count("WHERE id = 'dup-1' AND prompt = 'first'") == 1);
    CHECK(db_count("WHERE id = 'hostile''); DROP TABLE inference_events;--'") == 1);
    /* and one stored by an earlier batch */
    CHECK(submit(g, ps, "dup-1", "third") == 0);
    CHECK(cf_ingest_flush(g, -1, &err) == 0);
    CHECK(db_count("WHERE id = 'dup-1'") == 1 && db_count("") == 250 + 12);
    cf_ingest_stats_get(g, &s);
    CHECK(s.duplicates == 2 && s.refused == 0 && s.dead_lettered == 0);
    CHECK(s.flushed == 250 + 12);
    cf_ingest_report *rep = cf_ingest_take_reports(g);
    uint64_t dups = 0;
    for (cf_ingest_report *r = rep; r; r = r->next) {
        CHECK(r->kind != CF_REPORT_REFUSED);
        if (r->kind == CF_REPORT_FLUSH)
            dups += r->duplicates;
    }
    CHECK(dups == 2);
    cf_ingest_reports_free(rep);
    CHECK(access(DEAD, F_OK) != 0);
}

/* A row the database refuses (a trigger here) is found by bisection and
 * dead-lettered; the rest of its batch is written. */
static void check_refused(cf_ingest *g, cf_prepare_scratch *ps)
{
    cf_err err;
    cf_ingest_stats s;
    sqlite3 *db;
    CHECK(sqlite3_open(DB, &db) == SQLITE_OK);
    CHECK(sqlite3_exec(db, "CREATE TRIGGER refuse BEFORE INSERT ON inference_events"
                           " WHEN NEW.prompt LIKE 'refuse%' BEGIN"
                           " SELECT RAISE(ABORT, 'refused by a trigger'); END",
                       NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(db);
    for (int i = 0; i < 5; i++)
        CHECK(submit(g, ps, NULL, "z") == 0);
    CHECK(submit(g, ps, "r-1", "refuse 555-123-4567") == 0);
    CHECK(cf_ingest_flush(g, -1, &err) == 0);
    CHECK(db_count("") == 250 + 12 + 5);
    cf_ingest_stats_get(g, &s);
    CHECK(s.refused == 1 && s.dead_lettered == 1 && s.duplicates == 2);
    cf_ingest_report *rep = cf_ingest_take_reports(g);
    int refused = 0;
    for (cf_ingest_report *r = rep; r; r = r->next)
        if (r->kind == CF_REPORT_REFUSED) {
            refused++;
            CHECK_STR(r->id, "r-1");
            CHECK(r->tag == 7 && r->dead_lettered);
            CHECK(strstr(r->message, "refused by a trigger") != NULL);
            CHECK(strstr(r->line, "\"prompt\":\"refuse [PHONE]\"") != NULL);
        }
    CHECK(refused == 1);
    cf_ingest_reports_free(rep);
    FILE *f = fopen(DEAD, "r");
    char line[2048] = "";
    CHECK(f && fgets(line, sizeof line, f));
    if (f)
        fclose(f);
    CHECK(strstr(line, "{\"id\":\"r-1\",\"deployment_id\":\"dep\",") == line);
}

/* The writer's connection has a page cache of its own size (32 MiB), or
 * the one the options ask for. */
static int64_t writer_cache(cf_ingest *g)
{
    sqlite3_stmt *st = NULL;
    int64_t v = 0;
    if (sqlite3_prepare_v2(((sq_store *)g->store)->db, "PRAGMA cache_size", -1, &st, NULL)
            == SQLITE_OK
        && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static void test_writer_cache(void)
{
    migrate_db();
    cf_ingest_opts o = opts();
    cf_ingest *g;
    cf_err err;
    CHECK(cf_ingest_new(&o, &g, &err) == 0);
    CHECK(writer_cache(g) == -32768);
    cf_ingest_close(g);
    o.store_opts.cache_kb = 1024;
    CHECK(cf_ingest_new(&o, &g, &err) == 0);
    CHECK(writer_cache(g) == -1024);
    cf_ingest_close(g);
}

static void test_pipeline(void)
{
    migrate_db();
    cf_ingest_opts o = opts();
    cf_ingest *g;
    cf_err err;
    CHECK(cf_ingest_new(&o, &g, &err) == 0);
    cf_prepare_scratch *ps = cf_prepare_scratch_new();
    for (int i = 0; i < 250; i++)
        CHECK(submit(g, ps, NULL, "mail me at a@b.com") == 0);
    /* two full batches went on their own; 50 wait for the interval */
    CHECK(cf_ingest_flush(g, -1, &err) == 0);
    CHECK(db_count("") == 250);
    CHECK(db_count("WHERE prompt = 'mail me at [EMAIL]' AND length(user_id_hash) = 16") == 250);
    cf_ingest_stats s;
    cf_ingest_stats_get(g, &s);
    CHECK(s.accepted == 250 && s.flushed == 250 && s.depth == 0 && s.batches >= 3);
    uint64_t red[CF_ENT_COUNT];
    cf_ingest_redactions(g, red, CF_ENT_COUNT);
    CHECK(red[CF_ENT_EMAIL] == 250);
    cf_ingest_report *rep = cf_ingest_take_reports(g), *r;
    uint64_t reported = 0;
    for (r = rep; r; r = r->next)
        if (r->kind == CF_REPORT_FLUSH)
            reported += r->count;
    CHECK(reported == 250);
    cf_ingest_reports_free(rep);
    CHECK(!cf_ingest_reports_pending(g));

    /* invalid input never reaches the buffer */
    cf_event_in in;
    event_in(&in, NULL, "p");
    in.v[CF_F_LATENCY_MS].type = CF_V_INT;
    in.v[CF_F_LATENCY_MS].i = -5;
    char id[CF_MAX_ID_BYTES + 1];
    cf_verrors v;
    CHECK(cf_ingest_submit(g, &in, ps, 0, NULL, id, &v, &err) == -1 && err.code == CF_EINVAL);
    CHECK(strstr(err.msg, "latency_ms: must be a non-negative integer, got -5") != NULL);
    cf_ingest_stats_get(g, &s);
    CHECK(s.invalid == 1);

    check_duplicates(g, ps);
    check_refused(g, ps);
    cf_prepare_scratch_free(ps);
    cf_ingest_close(g);
    cf_ingest_close(NULL);
}

/* Holds the database's write lock from another connection. */
static sqlite3 *lock_db(void)
{
    sqlite3 *db;
    sqlite3_open(DB, &db);
    /* the flusher may be writing right now (a batch it just took): wait for
     * it rather than fail to take the lock, which a slow (sanitizer) build
     * hits */
    sqlite3_busy_timeout(db, 10000);
    if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        fprintf(stderr, "lock: %s\n", sqlite3_errmsg(db));
    return db;
}

static void unlock_db(sqlite3 *db)
{
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    sqlite3_close(db);
}

/* A user forgotten while the pipeline runs (cf_ingest_forget): their
 * events stored up to the time given are dropped at the flusher, counted
 * as erased; another deployment's forget, a later event and another
 * user's events are written. */
static void test_forget(void)
{
    migrate_db();
    cf_ingest_opts o = opts();
    cf_ingest *g;
    cf_err err;
    CHECK(cf_ingest_new(&o, &g, &err) == 0);
    cf_prepare_scratch *ps = cf_prepare_scratch_new();
    CHECK(submit(g, ps, "before", "p") == 0);
    CHECK(cf_ingest_flush(g, -1, &err) == 0);
    /* the user's hash, as the pipeline stored it */
    sqlite3 *db;
    sqlite3_open(DB, &db);
    sqlite3_stmt *st;
    char hash[64] = "";
    if (sqlite3_prepare_v2(db, "SELECT user_id_hash FROM inference_events", -1, &st, NULL)
            == SQLITE_OK
        && sqlite3_step(st) == SQLITE_ROW)
        snprintf(hash, sizeof hash, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    sqlite3_close(db);
    CHECK(strlen(hash) == 16);
    CHECK(cf_ingest_forget(g, (cf_str){"", 0}, (cf_str){NULL, 0}, 1, &err) == -1
          && err.code == CF_EINVAL);
    CHECK(cf_ingest_forget(g, cf_cstr(hash), cf_cstr("other-dep"), INT64_MAX, &err) == 0);
    CHECK(submit(g, ps, "kept-1", "p") == 0); /* another deployment forgotten */
    CHECK(cf_ingest_flush(g, -1, &err) == 0);
    CHECK(db_count("") == 2);
    int64_t until = cf_now_us() + 3600 * INT64_C(1000000);
    CHECK(cf_ingest_forget(g, cf_cstr(hash), (cf_str){NULL, 0}, until, &err) == 0);
    for (int i = 0; i < 5; i++)
        CHECK(submit(g, ps, NULL, "dropped") == 0);
    CHECK(cf_ingest_flush(g, -1, &err) == 0);
    CHECK(db_count("") == 2);
    cf_ingest_stats s;
    cf_ingest_stats_get(g, &s);
    CHECK(s.erased == 5 && s.accepted == 7 && s.flushed == 2);
    /* up to `until` only: an event of a later time is written */
    cf_event_in in;
    event_in(&in, "later", "p");
    in.v[CF_F_INSERTED_AT].type = CF_V_INT;
    in.v[CF_F_INSERTED_AT].i = until + 1;
    char out[CF_MAX_ID_BYTES + 1];
    cf_verrors v;
    CHECK(cf_ingest_submit(g, &in, ps, 0, NULL, out, &v, &err) == 0);
    CHECK(cf_ingest_flush(g, -1, &err) == 0);
    CHECK(db_count("WHERE id = 'later'") == 1);
    cf_prepare_scratch_free(ps);
    cf_ingest_close(g);
}

static void test_database_away(void)
{
    migrate_db();
    cf_ingest_opts o = opts();
    cf_ingest *g;
    cf_err err;
    CHECK(cf_ingest_new(&o, &g, &err) == 0);
    cf_prepare_scratch *ps = cf_prepare_scratch_new();
    sqlite3 *lock = lock_db();
    for (int i = 0; i < 150; i++)
        CHECK(submit(g, ps, NULL, "z") == 0);
    /* the full batch fails and is retried; flush says why */
    CHECK(cf_ingest_flush(g, -1, &err) == -1);
    CHECK(strstr(err.msg, "locked") != NULL);
    cf_ingest_stats s;
    cf_ingest_stats_get(g, &s);
    CHECK(s.retried >= 1 && s.failing && s.flushed == 0 && s.accepted == 150);
    usleep(100000);
    cf_ingest_report *rep = cf_ingest_take_reports(g);
    CHECK(rep && rep->kind == CF_REPORT_RETRY && rep->count == 100 && rep->attempt == 1);
    cf_ingest_reports_free(rep);
    unlock_db(lock);
    /* the database is back: the same batch goes in, nothing lost */
    int ok = -1;
    for (int tries = 0; tries < 100 && ok; tries++) {
        ok = cf_ingest_flush(g, -1, &err);
        if (ok)
            usleep(20000); /* failing: flush says so at once; wait for a retry */
    }
    CHECK(ok == 0);
    CHECK(db_count("") == 150);
    cf_ingest_stats_get(g, &s);
    CHECK(s.flushed == 150 && !s.failing && s.refused == 0);

    /* closing while the database stays away: retries until the shutdown
     * deadline, then everything goes to the dead-letter file */
    lock = lock_db();
    for (int i = 0; i < 30; i++)
        CHECK(submit(g, ps, NULL, "late") == 0);
    int64_t t0 = cf_mono_ns();
    cf_ingest_close(g);
    CHECK(cf_mono_ns() - t0 >= 250 * 1000000LL);
    unlock_db(lock);
    CHECK(db_count("") == 150);
    FILE *f = fopen(DEAD, "r");
    int lines = 0;
    char line[2048];
    while (f && fgets(line, sizeof line, f))
        lines += strstr(line, "\"prompt\":\"late\"") != NULL;
    if (f)
        fclose(f);
    CHECK(lines == 30);
    cf_prepare_scratch_free(ps);
}

typedef struct producer {
    cf_ingest *g;
    int n, failed;
} producer;

static void *produce(void *arg)
{
    producer *p = arg;
    cf_prepare_scratch *ps = cf_prepare_scratch_new();
    for (int i = 0; i < p->n; i++)
        if (submit(p->g, ps, NULL, "from a thread, call 555-123-4567"))
            p->failed++;
    cf_prepare_scratch_free(ps);
    return NULL;
}

static void test_producers(void)
{
    migrate_db();
    cf_ingest_opts o = opts();
    o.capacity = 500; /* small: producers block on the flusher */
    o.max_batch = 200;
    cf_ingest *g;
    cf_err err;
    CHECK(cf_ingest_new(&o, &g, &err) == 0);
    producer p[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        p[i] = (producer){g, 5000, 0};
        pthread_create(&t[i], NULL, produce, &p[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        CHECK(p[i].failed == 0);
    }
    cf_ingest_close(g); /* close flushes */
    CHECK(db_count("") == 20000);
    CHECK(db_count("WHERE prompt = 'from a thread, call [PHONE]'") == 20000);
}

static void test_reject_policy(void)
{
    migrate_db();
    cf_ingest_opts o = opts();
    o.capacity = 5;
    o.max_batch = 100;
    o.full_policy = CF_FULL_REJECT;
    cf_ingest *g;
    cf_err err;
    CHECK(cf_ingest_new(&o, &g, &err) == 0);
    cf_prepare_scratch *ps = cf_prepare_scratch_new();
    sqlite3 *lock = lock_db(); /* keep the flusher from draining */
    int full = 0;
    for (int i = 0; i < 20; i++) {
        cf_event_in in;
        event_in(&in, NULL, "p");
        char id[CF_MAX_ID_BYTES + 1];
        cf_verrors v;
        if (cf_ingest_submit(g, &in, ps, 0, NULL, id, &v, &err) == -1) {
            CHECK(err.code == CF_EFULL);
            CHECK(strstr(err.msg, "buffer full") != NULL);
            full++;
        }
    }
    CHECK(full >= 10);
    cf_ingest_stats s;
    cf_ingest_stats_get(g, &s);
    CHECK(s.rejected_full == (uint64_t)full && s.accepted == (uint64_t)(20 - full));
    unlock_db(lock);
    cf_ingest_close(g);
    CHECK(db_count("") == 20 - full);
    cf_prepare_scratch_free(ps);
}

/* One event, patiently (as bulk ingestion submits); the error code or 0. */
static int submit_patient(cf_ingest *g, cf_prepare_scratch *ps, volatile sig_atomic_t *stop)
{
    cf_event_in in;
    event_in(&in, NULL, "patient");
    char out[CF_MAX_ID_BYTES + 1];
    cf_verrors v;
    cf_err err;
    return cf_ingest_submit(g, &in, ps, 0, stop, out, &v, &err) ? err.code : 0;
}

static void *unlock_later(void *db)
{
    usleep(300000);
    unlock_db(db);
    return NULL;
}

static void test_patient_submit(void)
{
    migrate_db();
    cf_ingest_opts o = opts();
    o.capacity = 5;
    o.max_batch = 5;
    o.block_timeout_ms = 50;
    o.store_opts.busy_timeout_ms = 3000; /* the flusher waits for the lock: slow, not failing */
    cf_ingest *g;
    cf_err err;
    CHECK(cf_ingest_new(&o, &g, &err) == 0);
    cf_prepare_scratch *ps = cf_prepare_scratch_new();
    sqlite3 *lock = lock_db();
    int accepted = 0, full = 0;
    for (int i = 0; i < 30 && !full; i++) {
        cf_event_in in;
        event_in(&in, NULL, "impatient");
        char id[CF_MAX_ID_BYTES + 1];
        cf_verrors v;
        if (cf_ingest_submit(g, &in, ps, 0, NULL, id, &v, &err) == 0)
            accepted++;
        else
            full = err.code == CF_EFULL;
    }
    CHECK(full); /* a slow database: the impatient producer gives up after 50 ms */
    volatile sig_atomic_t stop = 0;
    pthread_t t;
    pthread_create(&t, NULL, unlock_later, lock);
    int64_t t0 = cf_mono_ns();
    for (int i = 0; i < 10; i++) {
        int rc = submit_patient(g, ps, &stop);
        CHECK(rc == 0);
        accepted += rc == 0;
    }
    CHECK(cf_mono_ns() - t0 >= 200 * 1000000LL); /* it waited for the lock to go */
    pthread_join(t, NULL);
    /* a set stop flag ends the wait after one block_timeout_ms */
    lock = lock_db();
    while (submit_patient(g, ps, NULL) == 0) /* fill the buffer again */
        accepted++;
    stop = 1;
    t0 = cf_mono_ns();
    CHECK(submit_patient(g, ps, &stop) == CF_EFULL);
    CHECK(cf_mono_ns() - t0 < 2000 * 1000000LL);
    unlock_db(lock);
    cf_ingest_close(g);
    CHECK(db_count("") == accepted);
    cf_prepare_scratch_free(ps);

    /* failing writes (the lock outlasts the flusher's busy timeout): the
     * patient producer gives up too, once a write has failed */
    migrate_db();
    o = opts();
    o.capacity = 5;
    o.max_batch = 5;
    o.block_timeout_ms = 50;
    CHECK(cf_ingest_new(&o, &g, &err) == 0);
    ps = cf_prepare_scratch_new();
    lock = lock_db();
    stop = 0;
    accepted = 0;
    int rc;
    while ((rc = submit_patient(g, ps, &stop)) == 0)
        accepted++;
    CHECK(rc == CF_EFULL);
    cf_ingest_stats s;
    cf_ingest_stats_get(g, &s);
    CHECK(s.failing && s.retried >= 1);
    unlock_db(lock);
    cf_ingest_close(g);
    CHECK(db_count("") == accepted);
    cf_prepare_scratch_free(ps);
}

static double half_score(void *ud, const cf_event *ev, uint32_t *checks)
{
    (void)ud;
    *checks = 0;
    return strcmp(ev->prompt.p, "bad") == 0 ? NAN : 0.5;
}

static void test_scorer_and_errors(void)
{
    migrate_db();
    cf_ingest_opts o = opts();
    cf_ingest *g;
    cf_err err;
    CHECK(cf_ingest_new(&o, &g, &err) == 0);
    cf_ingest_set_scorer(g, (cf_ingest_scorer){half_score, NULL});
    cf_prepare_scratch *ps = cf_prepare_scratch_new();
    CHECK(submit(g, ps, NULL, "good") == 0);
    CHECK(submit(g, ps, NULL, "bad") == 0);
    cf_event_in in;
    event_in(&in, NULL, "given");
    in.v[CF_F_QUALITY_SCORE].type = CF_V_FLOAT;
    in.v[CF_F_QUALITY_SCORE].d = 0.9;
    char id[CF_MAX_ID_BYTES + 1];
    cf_verrors v;
    CHECK(cf_ingest_submit(g, &in, ps, 0, NULL, id, &v, &err) == 0);
    cf_ingest_set_scorer(g, (cf_ingest_scorer){NULL, NULL});
    CHECK(submit(g, ps, NULL, "after") == 0);
    CHECK(cf_ingest_flush(g, -1, &err) == 0);
    CHECK(db_count("WHERE prompt = 'good' AND quality_score = 0.5") == 1);
    CHECK(db_count("WHERE prompt = 'bad' AND quality_score IS NULL") == 1);
    CHECK(db_count("WHERE prompt = 'given' AND quality_score = 0.9") == 1);
    CHECK(db_count("WHERE prompt = 'after' AND quality_score IS NULL") == 1);
    cf_ingest_stats s;
    cf_ingest_stats_get(g, &s);
    CHECK(s.scored == 1 && s.score_errors == 1);
    cf_ingest_close(g);
    cf_prepare_scratch_free(ps);

    /* refusals at start */
    o.store_url = "sqlite::memory:";
    CHECK(cf_ingest_new(&o, &g, &err) == -1 && err.code == CF_EUNSUPPORTED);
    CHECK(strstr(err.msg, "in-memory") != NULL);
    remove_db();
    o.store_url = "sqlite:" DB;
    CHECK(cf_ingest_new(&o, &g, &err) == -1);
    CHECK(strstr(err.msg, "run 'crucible-feedback migrate'") != NULL);
    o.store_url = "sqlite:/no/such/dir/x.db";
    CHECK(cf_ingest_new(&o, &g, &err) == -1 && err.code == CF_EDB);
}

int main(void)
{
    cf_sanitize_opts so = {CF_ENT_ALL, NULL, 0};
    cf_err err;
    if (cf_sanitizer_new(&so, &san, &err))
        return 1;
    RUN(test_ring);
    RUN(test_writer_cache);
    RUN(test_pipeline);
    RUN(test_forget);
    RUN(test_database_away);
    RUN(test_producers);
    RUN(test_reject_policy);
    RUN(test_patient_submit);
    RUN(test_scorer_and_errors);
    cf_sanitizer_free(san);
    remove_db();
    return cf_test_done();
}
