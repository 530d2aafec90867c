/*
 * SQLite backend: WAL checkpoints off the writing thread.
 *
 * SQLite's automatic checkpoint runs inside the COMMIT that takes the WAL
 * past 1000 frames, so the one writer (the ingestion flusher) copied pages
 * into the database file instead of writing the next batch: 44% of its
 * time under `serve`'s batch load. Here a connection's commits report the
 * WAL's size to a hook instead; past SQ_CKPT_FRAMES the hook wakes a
 * checkpointer thread (started on first need, with its own connection)
 * that runs PASSIVE checkpoints while the writer goes on. Past
 * SQ_WAL_MAX_FRAMES (a writer faster than the copying, or a checkpoint
 * that could not finish) the writer runs a PASSIVE checkpoint itself, as
 * SQLite would, which bounds the WAL; PRAGMA journal_size_limit truncates
 * the file back when the WAL restarts. A reader that holds an old snapshot
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
    int started, wanted, stop;
    long runs;
};

/* The checkpointer's own connection: no CREATE (the writer made the file). */
static sqlite3 *ckpt_open(const sq_ckpt *c)
{
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(c->path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL)
        != SQLITE_OK) {
        sqlite3_close_v2(db);
        return NULL;
    }
    sqlite3_busy_timeout(db, c->busy_timeout_ms);
    return db;
}

static void *ckpt_main(void *arg)
{
    sq_ckpt *c = arg;
    sqlite3 *db = ckpt_open(c);
    pthread_mutex_lock(&c->mu);
    for (;;) {
        while (!c->wanted && !c->stop)
            pthread_cond_wait(&c->cv, &c->mu);
        if (c->stop)
            break;
        c->wanted = 0;
        pthread_mutex_unlock(&c->mu);
        if (!db)
            db = ckpt_open(c);
        int rc = db ? sqlite3_wal_checkpoint_v2(db, "main", SQLITE_CHECKPOINT_PASSIVE, NULL,
                                                NULL)
                    : SQLITE_CANTOPEN;
        pthread_mutex_lock(&c->mu);
        if (rc == SQLITE_OK)
            c->runs++;
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

/* After every commit of the connection, with the WAL's size in frames. */
static int wal_hook(void *ud, sqlite3 *db, const char *name, int frames)
{
    sq_store *s = ud;
    if (frames < SQ_CKPT_FRAMES)
        return SQLITE_OK;
    if (frames >= SQ_WAL_MAX_FRAMES || !s->ckpt || ckpt_wake(s->ckpt))
        sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    return SQLITE_OK;
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
        c->path = s->path;
        c->busy_timeout_ms = s->busy_timeout_ms;
    }
    s->ckpt = c; /* none (out of memory): the writer checkpoints itself */
    sq_ckpt_hook(s);
    return 0;
}

void sq_ckpt_hook(sq_store *s)
{
    sqlite3_wal_autocheckpoint(s->db, 0);
    sqlite3_wal_hook(s->db, wal_hook, s);
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
    pthread_mutex_destroy(&c->mu);
    free(c);
    s->ckpt = NULL;
}

long sq_ckpt_runs(sq_store *s)
{
    sq_ckpt *c = s->ckpt;
    if (!c)
        return 0;
    pthread_mutex_lock(&c->mu);
    long n = c->runs;
    pthread_mutex_unlock(&c->mu);
    return n;
}
