/* The SQLite backend's WAL checkpoints off the writing thread: the
 * writing connection never checkpoints inside a COMMIT below the bound,
 * a checkpointer thread copies the WAL into the database, the WAL stays
 * bounded under a steady writer, another connection (as another process
 * would) sees every row, and closing leaves no WAL behind. */
#include "cf_test.h"

#include <math.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "crucible/store/cf_store.h"
#include "store/sqlite/sqlite_int.h"

#define DB "test_sqlite_ckpt.db"
#define BATCH 64

/* A prompt of about one page, so that a batch writes BATCH-odd frames. */
static char prompt[SQ_PAGE_SIZE - 2000];

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
        return NULL;
    }
    if (cf_store_migrate(s, NULL, &err))
        fprintf(stderr, "migrate: %s\n", err.msg);
    return s;
}

static long long wal_bytes(void)
{
    struct stat st;
    return stat(DB "-wal", &st) == 0 ? (long long)st.st_size : 0;
}

/* Writes one batch of BATCH page-sized events; 0 on success. */
static int write_batch(cf_store *s)
{
    cf_event ev[BATCH];
    memset(ev, 0, sizeof ev);
    for (int i = 0; i < BATCH; i++) {
        ev[i].deployment_id = cf_cstr(i % 2 ? "dep-a" : "dep-b");
        ev[i].prompt = cf_cstr(prompt);
        ev[i].response = cf_cstr("a response");
        ev[i].user_id_hash = cf_cstr(i % 3 ? "3f9a" : "c02b");
        ev[i].latency_ms = CF_NULL_INT;
        ev[i].token_count = CF_NULL_INT;
        ev[i].quality_score = NAN;
    }
    cf_err err;
    int n = cf_store_insert_events(s, ev, BATCH, NULL, NULL, &err);
    if (n != BATCH)
        fprintf(stderr, "insert: %s\n", err.msg);
    return n == BATCH ? 0 : -1;
}

static int64_t scalar(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    int64_t v = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void test_writer_leaves_checkpoints_to_the_thread(void)
{
    remove_db();
    cf_store *s = open_db();
    sq_store *q = (sq_store *)s;
    /* SQLite's automatic checkpoint (inside COMMIT) is off on the writer */
    CHECK(scalar(q->db, "PRAGMA wal_autocheckpoint") == 0);
    CHECK(sq_ckpt_runs(q) == 0);
    int batches = SQ_CKPT_FRAMES / BATCH + 4;
    for (int i = 0; i < batches; i++)
        CHECK(write_batch(s) == 0);
    /* the checkpointer thread copied frames, from its own connection, soon */
    for (int i = 0; i < 500 && sq_ckpt_runs(q) == 0; i++)
        sleep_ms(10);
    CHECK(sq_ckpt_runs(q) > 0);
    /* another connection (another process would) sees every row */
    sqlite3 *other = NULL;
    CHECK(sqlite3_open_v2(DB, &other, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK);
    CHECK(scalar(other, "SELECT count(*) FROM inference_events") == (int64_t)batches * BATCH);
    sqlite3_close(other);
    /* the last connection to close checkpoints the rest and ends the WAL */
    cf_store_close(s);
    CHECK(wal_bytes() == 0);
    remove_db();
}

/* A steady writer: the WAL never holds much more than SQ_WAL_MAX_FRAMES. */
static void test_wal_stays_bounded(void)
{
    remove_db();
    cf_store *s = open_db();
    long long frame = SQ_PAGE_SIZE + 24;
    long long bound = (SQ_WAL_MAX_FRAMES + 4 * BATCH) * frame + 32;
    long long most = 0;
    int batches = (SQ_WAL_MAX_FRAMES * 3 / 2) / BATCH;
    for (int i = 0; i < batches; i++) {
        CHECK(write_batch(s) == 0);
        if (wal_bytes() > most)
            most = wal_bytes();
    }
    if (most > bound)
        fprintf(stderr, "WAL reached %lld bytes (bound %lld)\n", most, bound);
    CHECK(most <= bound);
    CHECK(most > 0);
    cf_store_close(s);
    CHECK(wal_bytes() == 0);
    remove_db();
}

/* Two stores on one file, as `serve` and the command line in two
 * processes: both write past the thresholds, each sees the other's rows,
 * and after both closed every row is in the database file. */
static void test_two_writers(void)
{
    remove_db();
    cf_store *a = open_db(), *b = open_db();
    int batches = SQ_CKPT_FRAMES / BATCH + 2;
    for (int i = 0; i < batches; i++) {
        CHECK(write_batch(a) == 0);
        CHECK(write_batch(b) == 0);
    }
    int64_t want = 2 * (int64_t)batches * BATCH;
    CHECK(scalar(((sq_store *)a)->db, "SELECT count(*) FROM inference_events") == want);
    CHECK(scalar(((sq_store *)b)->db, "SELECT count(*) FROM inference_events") == want);
    cf_store_close(a);
    CHECK(write_batch(b) == 0);
    cf_store_close(b);
    CHECK(wal_bytes() == 0);
    sqlite3 *db = NULL;
    CHECK(sqlite3_open_v2(DB, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK);
    CHECK(scalar(db, "SELECT count(*) FROM inference_events") == want + BATCH);
    sqlite3_close(db);
    remove_db();
}

/* :memory: has no WAL and no checkpointer. */
static void test_memory(void)
{
    cf_store *s = NULL;
    cf_err err;
    CHECK(cf_store_open("sqlite::memory:", NULL, &s, &err) == 0);
    CHECK(cf_store_migrate(s, NULL, &err) == 0);
    CHECK(((sq_store *)s)->ckpt == NULL);
    CHECK(write_batch(s) == 0);
    cf_store_close(s);
}

/* Purges every event of dep-a (write_batch's every other one): the
 * events removed, or -1. */
static int64_t purge_dep_a(cf_store *s)
{
    cf_purge p;
    cf_purge_init(&p, "inference_events");
    p.deployment_id = cf_cstr("dep-a");
    p.before = ((int64_t)time(NULL) + 60) * 1000000; /* every one of its events */
    cf_life_counts out;
    memset(&out, 0, sizeof out);
    cf_err err;
    if (cf_store_purge(s, &p, &out, &err)) {
        fprintf(stderr, "purge: %s\n", err.msg);
        return -1;
    }
    return out.n[0];
}

/* After a purge the writer still leaves checkpoints to the thread (SQLite's
 * automatic checkpoint stays off). */
static void test_purge_keeps_the_hook(void)
{
    remove_db();
    cf_store *s = open_db();
    sq_store *q = (sq_store *)s;
    for (int i = 0; i < 4; i++)
        CHECK(write_batch(s) == 0);
    CHECK(purge_dep_a(s) == 2 * BATCH);
    CHECK(scalar(q->db, "SELECT count(*) FROM inference_events") == 2 * BATCH);
    CHECK(scalar(q->db, "PRAGMA wal_autocheckpoint") == 0);
    long before = sq_ckpt_runs(q);
    for (int i = 0; i < SQ_CKPT_FRAMES / BATCH + 4; i++)
        CHECK(write_batch(s) == 0);
    for (int i = 0; i < 500 && sq_ckpt_runs(q) == before; i++)
        sleep_ms(10);
    CHECK(sq_ckpt_runs(q) > before);
    cf_store_close(s);
    remove_db();
}

/* A single writer beside a reader holding an old snapshot (which keeps
 * frames from every checkpoint): it copies at each commit past the bound,
 * and once the reader is done the WAL starts over and stays bounded. */
static void test_reader_keeps_the_bound(void)
{
    remove_db();
    cf_store *s = open_db();
    sq_store *q = (sq_store *)s;
    CHECK(write_batch(s) == 0);
    sqlite3 *r = NULL;
    CHECK(sqlite3_open_v2(DB, &r, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK);
    CHECK(sqlite3_exec(r, "BEGIN", NULL, NULL, NULL) == SQLITE_OK);
    CHECK(scalar(r, "SELECT count(*) FROM inference_events") == BATCH);
    int past = 0; /* commits past the bound */
    long own = sq_ckpt_own(q);
    for (int i = 0; i < 2 * SQ_WAL_MAX_FRAMES / BATCH + 4; i++) {
        CHECK(write_batch(s) == 0);
        past += wal_bytes() > (long long)SQ_WAL_MAX_FRAMES * (SQ_PAGE_SIZE + 24);
    }
    CHECK(past > 4);
    CHECK(sq_ckpt_own(q) - own >= past - 1);
    CHECK(sqlite3_exec(r, "COMMIT", NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(r);
    long long frame = SQ_PAGE_SIZE + 24, most = 0;
    for (int i = 0; i < 8; i++)
        CHECK(write_batch(s) == 0);
    for (int i = 0; i < SQ_WAL_MAX_FRAMES / BATCH + 4; i++) {
        CHECK(write_batch(s) == 0);
        if (wal_bytes() > most)
            most = wal_bytes();
    }
    /* PRAGMA journal_size_limit truncates the file when the WAL starts over */
    CHECK(most <= (SQ_WAL_MAX_FRAMES + 4 * BATCH) * frame + 32);
    cf_store_close(s);
    remove_db();
}

/* A purge leaves the copying to the thread, one batch behind, instead of
 * checkpointing (with the fsync) between its batches once the WAL passes
 * SQ_WAL_MAX_FRAMES: its own checkpoints wait for SQ_PURGE_WAL_FRAMES.
 * Every other event is a page of its own, so deleting half of them writes
 * more frames than the bound. */
static void test_purge_leaves_copies_to_the_thread(void)
{
    remove_db();
    cf_store *s = open_db();
    sq_store *q = (sq_store *)s;
    int batches = 2 * SQ_WAL_MAX_FRAMES / BATCH + 2;
    for (int i = 0; i < batches; i++)
        CHECK(write_batch(s) == 0);
    long own = sq_ckpt_own(q), runs = sq_ckpt_runs(q);
    CHECK(purge_dep_a(s) == (int64_t)batches * BATCH / 2);
    CHECK(sq_ckpt_own(q) == own);
    CHECK(sq_ckpt_runs(q) > runs);
    CHECK(scalar(q->db, "SELECT count(*) FROM inference_events") == (int64_t)batches * BATCH / 2);
    cf_store_close(s);
    CHECK(wal_bytes() == 0);
    remove_db();
}

int main(void)
{
    memset(prompt, 'p', sizeof prompt - 1);
    RUN(test_writer_leaves_checkpoints_to_the_thread);
    RUN(test_wal_stays_bounded);
    RUN(test_two_writers);
    RUN(test_memory);
    RUN(test_purge_keeps_the_hook);
    RUN(test_purge_leaves_copies_to_the_thread);
    RUN(test_reader_keeps_the_bound);
    return cf_test_done();
}
