/*
 * SQLite backend: WAL checkpoints off the writing thread.
 *
 * SQLite's automatic checkpoint runs inside the COMMIT that takes the WAL
 * past 1000 frames, so the one writer (the ingestion flusher) copied pages
 * into the database file instead of writing the next batch: 44% of its
 * time under `serve`'s batch load. Here a connection's commits report the
 * WAL's size to a hook instead; past SQ_CKPT_FRAMES the hook wakes a
 * checkpointer thread (started on first need, with its own connection)
 * that runs PASSIVE checkpoints while the writer goes on. Those copy the
 * frames committed when they start, but under a steady load the writer has
 * always added more by the time one ends, so the WAL never starts over by
 * itself: past SQ_WAL_MAX_FRAMES the writer waits for the thread's
 * checkpoint to end and copies the rest itself between two of its
 * transactions, which lets the next one start the WAL over (PRAGMA
 * journal_size_limit truncates the file back then). A reader that holds an old snapshot
 * keeps frames un-copied whoever checkpoints. Several processes on one
 * file each checkpoint this way (SQLite locks make that safe); the last
 * connection to close checkpoints the rest and removes the WAL.
 */
#include "sqlite_int.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sq_ckpt {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t th;
    const char *path; /* the store's; outlives the thread */
    int busy_timeout_ms;
    pthread_cond_t idle; /* the writer waits for the thread's checkpoint */
    int started, wanted, stop;
    int running; /* the thread is checkpointing */
    int held;    /* the writer is: the thread waits */
    /* Touched by the writing connection's thread only: */
    int purging; /* a purge runs on it (sq_ckpt_purging) */
    int last;    /* the WAL's frames at its last commit */
    int written; /* its pages written by then (SQLITE_DBSTATUS_CACHE_WRITE) */
    int rearm;   /* 0, or the frames at which its next own checkpoint runs */
    long runs;   /* the thread's checkpoints that copied frames */
    long own;    /* the writing connection's own, at its bound */
};

/* The checkpointer's own connection: no CREATE (the writer made the file).
 * It reads the schema once: until a connection has read the database
 * header it does not know the file is in WAL mode, and
 * sqlite3_wal_checkpoint_v2 then returns SQLITE_OK having copied nothing. */
static sqlite3 *ckpt_open(const sq_ckpt *c)
{
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(c->path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL)
        != SQLITE_OK) {
        sqlite3_close_v2(db);
        return NULL;
    }
    sqlite3_busy_timeout(db, c->busy_timeout_ms);
    if (sqlite3_exec(db, "PRAGMA schema_version", NULL, NULL, NULL) != SQLITE_OK) {
        sqlite3_close_v2(db);
        return NULL;
    }
    return db;
}

static void *ckpt_main(void *arg)
{
    sq_ckpt *c = arg;
    sqlite3 *db = ckpt_open(c);
    pthread_mutex_lock(&c->mu);
    for (;;) {
        while ((!c->wanted || c->held) && !c->stop)
            pthread_cond_wait(&c->cv, &c->mu);
        if (c->stop)
            break;
        c->wanted = 0;
        c->running = 1;
        pthread_mutex_unlock(&c->mu);
        if (!db)
            db = ckpt_open(c);
        int copied = -1; /* the WAL's frames copied so far; -1: no checkpoint */
        int rc = db ? sqlite3_wal_checkpoint_v2(db, "main", SQLITE_CHECKPOINT_PASSIVE, NULL,
                                                &copied)
                    : SQLITE_CANTOPEN;
        pthread_mutex_lock(&c->mu);
        if (rc == SQLITE_OK && copied > 0)
            c->runs++;
        c->running = 0;
        pthread_cond_broadcast(&c->idle);
    }
    pthread_mutex_unlock(&c->mu);
    sqlite3_close_v2(db);
    return NULL;
}

/* Wakes the checkpointer, starting it the first time; -1 when no thread
 * could be started. */
static int ckpt_wake(sq_ckpt *c)
{
    int rc = 0;
    pthread_mutex_lock(&c->mu);
    if (!c->started) {
        if (pthread_create(&c->th, NULL, ckpt_main, c) == 0)
            c->started = 1;
        else
            rc = -1;
    }
    c->wanted = 1;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
    return rc;
}

/* Waits for the thread's checkpoint to end, then wakes it again: a purge's
 * batch is copied while the next one runs, at most one batch behind. (No
 * thread, none could be started: nothing to wait for, and -1.) */
static int ckpt_follow(sq_ckpt *c)
{
    pthread_mutex_lock(&c->mu);
    while (c->started && (c->running || c->wanted))
        pthread_cond_wait(&c->idle, &c->mu);
    pthread_mutex_unlock(&c->mu);
    return ckpt_wake(c);
}

/* After every commit of the connection, with the WAL's size in frames.
 *
 * Past SQ_WAL_MAX_FRAMES the connection copies what is left itself,
 * between two of its transactions, so that the next one starts the WAL
 * over: the bound of a single writer. When the WAL went on growing anyway
 * (a connection of another process writes too, and a WAL cannot start
 * over between someone else's commits), copying at every commit would
 * copy the others' frames inside this connection's commit, fsync
 * included: a writer beside another process's purge waited 170 ms on it.
 * So when another connection committed since this one's last commit (the
 * WAL grew by more frames than it wrote itself), after its own copy the
 * connection copies again only once the WAL has grown by
 * SQ_PURGE_WAL_FRAMES (rearm; reset when the WAL starts over), its thread
 * copying meanwhile; unless a reader's old snapshot kept frames from that
 * copy, in which case it tries again at its next commit.
 *
 * A purging connection (sq_ckpt_purging) has its thread copy each batch
 * while the next one runs (ckpt_follow) instead of copying between
 * batches: beside another process's writer those copies, and their
 * fsyncs, had been a fifth of the purge's time. Its own copies come at
 * SQ_PURGE_WAL_FRAMES, which lets a purge alone start the WAL over, and
 * when that did not start it over, four times as far apart. */
static int wal_hook(void *ud, sqlite3 *db, const char *name, int frames)
{
    sq_store *s = ud;
    sq_ckpt *c = s->ckpt;
    int others = 0; /* another connection committed since this one's last commit */
    if (c) {
        int written = 0, hi = 0;
        sqlite3_db_status(db, SQLITE_DBSTATUS_CACHE_WRITE, &written, &hi, 0);
        if (frames < c->last)
            c->rearm = 0; /* the WAL started over */
        else
            others = frames - c->last > written - c->written;
        c->last = frames;
        c->written = written;
    }
    if (frames < SQ_CKPT_FRAMES)
        return SQLITE_OK;
    if (c && frames < SQ_WAL_MAX_FRAMES && ckpt_wake(c) == 0)
        return SQLITE_OK;
    int bound = c && c->purging ? SQ_PURGE_WAL_FRAMES : SQ_WAL_MAX_FRAMES;
    if (c && c->rearm)
        bound = c->rearm;
    if (c && frames < bound && (c->purging ? ckpt_follow(c) : ckpt_wake(c)) == 0)
        return SQLITE_OK;
    /* The thread's checkpoint holds SQLite's checkpoint lock, and one
     * started meanwhile would return SQLITE_BUSY having copied nothing:
     * it ends first. */
    if (c) {
        pthread_mutex_lock(&c->mu);
        c->held = 1;
        while (c->running)
            pthread_cond_wait(&c->idle, &c->mu);
        pthread_mutex_unlock(&c->mu);
    }
    int log = -1, copied = -1;
    int rc = sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, &log, &copied);
    if (c) {
        /* frames a reader kept: try again at the next commit */
        int step = c->purging ? 4 * SQ_PURGE_WAL_FRAMES : SQ_PURGE_WAL_FRAMES;
        c->rearm = others && !(rc == SQLITE_OK && copied < log) ? frames + step : 0;
        pthread_mutex_lock(&c->mu);
        c->own++;
        c->held = 0;
        pthread_cond_signal(&c->cv);
        pthread_mutex_unlock(&c->mu);
    }
    return SQLITE_OK;
}

void sq_ckpt_purging(sq_store *s, int on)
{
    if (!s->ckpt)
        return;
    s->ckpt->purging = on;
    s->ckpt->rearm = 0; /* the purge's wider spacing ends with it */
}

int sq_ckpt_attach(sq_store *s)
{
    char sql[80];
    snprintf(sql, sizeof sql, "PRAGMA journal_size_limit = %lld",
             (long long)SQ_WAL_MAX_FRAMES * SQ_PAGE_SIZE);
    if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return -1;
    sq_ckpt *c = calloc(1, sizeof *c);
    if (c) {
        pthread_mutex_init(&c->mu, NULL);
        pthread_cond_init(&c->cv, NULL);
        pthread_cond_init(&c->idle, NULL);
        c->path = s->path;
        c->busy_timeout_ms = s->busy_timeout_ms;
    }
    s->ckpt = c; /* none (out of memory): the writer checkpoints itself */
    /* the hook in place of SQLite's automatic checkpoint */
    sqlite3_wal_autocheckpoint(s->db, 0);
    sqlite3_wal_hook(s->db, wal_hook, s);
    return 0;
}

void sq_ckpt_detach(sq_store *s)
{
    sq_ckpt *c = s->ckpt;
    if (!c)
        return;
    if (s->db)
        sqlite3_wal_hook(s->db, NULL, NULL);
    pthread_mutex_lock(&c->mu);
    c->stop = 1;
    pthread_cond_signal(&c->cv);
    int started = c->started;
    pthread_mutex_unlock(&c->mu);
    if (started)
        pthread_join(c->th, NULL);
    pthread_cond_destroy(&c->cv);
    pthread_cond_destroy(&c->idle);
    pthread_mutex_destroy(&c->mu);
    free(c);
    s->ckpt = NULL;
}

/* One of the counts the mutex guards (own: the connection's own
 * checkpoints; else the thread's); 0 without a checkpointer. */
static long count(sq_store *s, int own)
{
    sq_ckpt *c = s->ckpt;
    if (!c)
        return 0;
    pthread_mutex_lock(&c->mu);
    long n = own ? c->own : c->runs;
    pthread_mutex_unlock(&c->mu);
    return n;
}

long sq_ckpt_own(sq_store *s)
{
    return count(s, 1);
}

long sq_ckpt_runs(sq_store *s)
{
    return count(s, 0);
}
