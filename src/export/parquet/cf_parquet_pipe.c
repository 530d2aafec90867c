/*
 * Parquet page compression on a worker thread (see cf_parquet_int.h).
 *
 * A ring of PQ_PIPE_DEPTH slots; each slot owns a page buffer, which is
 * swapped with the caller's on submit, so page buffers are recycled rather
 * than allocated per page. One worker takes slots in order, compresses with
 * its own zstd context, and appends header and body to the page's chunk.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "cf_parquet_int.h"

typedef struct pq_job {
    cf_buf raw;
    cf_buf *dst;
    int64_t *uncompressed, *compressed;
    int type, encoding;
    int32_t num_values;
} pq_job;

struct pq_pipe {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t has_job, has_room, idle;
    pq_job jobs[PQ_PIPE_DEPTH];
    int head, count, stop, failed;
    cf_err err;
    ZSTD_CCtx *zc;
    int level;
    cf_buf packed, header;
    atomic_size_t bytes;
};

/* Compresses job->raw and appends header + body to job->dst. */
static int run_job(pq_pipe *p, pq_job *j, cf_err *err)
{
    size_t bound = ZSTD_compressBound(j->raw.n);
    p->packed.n = 0;
    if (cf_buf_reserve(&p->packed, bound))
        return cf_fail(err, CF_ENOMEM, "out of memory compressing a Parquet page");
    size_t len = ZSTD_compressCCtx(p->zc, p->packed.p, bound, j->raw.p, j->raw.n, p->level);
    if (ZSTD_isError(len))
        return cf_fail(err, CF_EIO, "zstd compression failed: %s", ZSTD_getErrorName(len));
    p->header.n = 0;
    pq_page_header(&p->header, j->type, j->raw.n, len, j->num_values, j->encoding);
    size_t before = j->dst->n;
    cf_buf_append(j->dst, p->header.p, p->header.n);
    cf_buf_append(j->dst, p->packed.p, len);
    if (cf_buf_failed(&p->header) || cf_buf_failed(j->dst))
        return cf_fail(err, CF_ENOMEM, "out of memory writing Parquet");
    *j->uncompressed += (int64_t)(p->header.n + j->raw.n);
    *j->compressed += (int64_t)(p->header.n + len);
    atomic_fetch_add(&p->bytes, j->dst->n - before);
    return 0;
}

static void *worker(void *arg)
{
    pq_pipe *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (p->count == 0 && !p->stop)
            pthread_cond_wait(&p->has_job, &p->mu);
        if (p->stop)
            break;
        pq_job *j = &p->jobs[p->head];
        int skip = p->failed;
        pthread_mutex_unlock(&p->mu);
        cf_err e;
        int r = skip ? 0 : run_job(p, j, &e);
        pthread_mutex_lock(&p->mu);
        if (r && !p->failed) {
            p->failed = 1;
            p->err = e;
        }
        j->raw.n = 0;
        p->head = (p->head + 1) % PQ_PIPE_DEPTH;
        p->count--;
        pthread_cond_signal(&p->has_room);
        if (p->count == 0)
            pthread_cond_broadcast(&p->idle);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

int pq_pipe_start(pq_pipe **out, int zstd_level, cf_err *err)
{
    *out = NULL;
    pq_pipe *p = calloc(1, sizeof *p);
    if (!p)
        return cf_fail(err, CF_ENOMEM, "out of memory");
    p->level = zstd_level;
    atomic_init(&p->bytes, 0);
    if (!(p->zc = ZSTD_createCCtx())) {
        free(p);
        return cf_fail(err, CF_ENOMEM, "out of memory");
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->has_job, NULL);
    pthread_cond_init(&p->has_room, NULL);
    pthread_cond_init(&p->idle, NULL);
    if (pthread_create(&p->thread, NULL, worker, p) != 0) {
        pthread_cond_destroy(&p->has_job);
        pthread_cond_destroy(&p->has_room);
        pthread_cond_destroy(&p->idle);
        pthread_mutex_destroy(&p->mu);
        ZSTD_freeCCtx(p->zc);
        free(p);
        return cf_fail(err, CF_EIO, "cannot start the Parquet compression thread");
    }
    *out = p;
    return 0;
}

int pq_pipe_submit(pq_pipe *p, cf_buf *raw, cf_buf *dst, int64_t *uncompressed,
                   int64_t *compressed, int type, int32_t num_values, int encoding, cf_err *err)
{
    pthread_mutex_lock(&p->mu);
    while (p->count == PQ_PIPE_DEPTH && !p->failed)
        pthread_cond_wait(&p->has_room, &p->mu);
    if (p->failed) {
        if (err)
            *err = p->err;
        pthread_mutex_unlock(&p->mu);
        return -1;
    }
    pq_job *j = &p->jobs[(p->head + p->count) % PQ_PIPE_DEPTH];
    cf_buf spare = j->raw; /* recycled: capacity kept, n == 0 */
    j->raw = *raw;
    *raw = spare;
    raw->n = 0;
    j->dst = dst;
    j->uncompressed = uncompressed;
    j->compressed = compressed;
    j->type = type;
    j->num_values = num_values;
    j->encoding = encoding;
    p->count++;
    pthread_cond_signal(&p->has_job);
    pthread_mutex_unlock(&p->mu);
    return 0;
}

int pq_pipe_drain(pq_pipe *p, cf_err *err)
{
    pthread_mutex_lock(&p->mu);
    while (p->count > 0)
        pthread_cond_wait(&p->idle, &p->mu);
    int r = 0;
    if (p->failed) {
        if (err)
            *err = p->err;
        r = -1;
    }
    pthread_mutex_unlock(&p->mu);
    return r;
}

size_t pq_pipe_bytes(pq_pipe *p) { return atomic_load(&p->bytes); }

void pq_pipe_reset_bytes(pq_pipe *p) { atomic_store(&p->bytes, 0); }

void pq_pipe_stop(pq_pipe *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_signal(&p->has_job);
    pthread_mutex_unlock(&p->mu);
    pthread_join(p->thread, NULL);
    for (int i = 0; i < PQ_PIPE_DEPTH; i++)
        cf_buf_free(&p->jobs[i].raw);
    cf_buf_free(&p->packed);
    cf_buf_free(&p->header);
    ZSTD_freeCCtx(p->zc);
    pthread_cond_destroy(&p->has_job);
    pthread_cond_destroy(&p->has_room);
    pthread_cond_destroy(&p->idle);
    pthread_mutex_destroy(&p->mu);
    free(p);
}
