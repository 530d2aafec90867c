/* Diverse selection over prompt embeddings (see cf_diverse.h). */
#include "crucible/curate/cf_diverse.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "crucible/core/cf_buf.h"
#include "crucible/core/cf_parallel.h"
#include "crucible/curate/cf_vspill.h"
#include "crucible/drift/cf_mmd.h"

#define DEFAULT_POOL 10000
#define DEFAULT_BATCH_BYTES (8u << 20)

/* ---- batches of prompts for the embedder ------------------------------------------ */

typedef struct batch {
    cf_buf arena;          /* ids and texts, copied out of the scan's rows */
    size_t *id_off, *id_len, *tx_off, *tx_len;
    cf_str *texts;
    size_t n, cap, max_n, max_bytes;
} batch;

static void batch_free(batch *b)
{
    cf_buf_free(&b->arena);
    free(b->id_off);
    free(b->id_len);
    free(b->tx_off);
    free(b->tx_len);
    free(b->texts);
}

static int batch_init(batch *b, cf_embedder *e, const cf_diverse_opts *o, cf_err *err)
{
    memset(b, 0, sizeof *b);
    b->max_n = e->batch ? e->batch : 256;
    b->max_bytes = o->batch_bytes ? o->batch_bytes : DEFAULT_BATCH_BYTES;
    b->cap = b->max_n;
    b->id_off = malloc(b->cap * sizeof *b->id_off);
    b->id_len = malloc(b->cap * sizeof *b->id_len);
    b->tx_off = malloc(b->cap * sizeof *b->tx_off);
    b->tx_len = malloc(b->cap * sizeof *b->tx_len);
    b->texts = malloc(b->cap * sizeof *b->texts);
    if (!b->id_off || !b->id_len || !b->tx_off || !b->tx_len || !b->texts) {
        batch_free(b);
        return cf_fail(err, CF_ENOMEM, "out of memory embedding prompts");
    }
    return 0;
}

/* Adds one item; returns 1 when the batch is now full. */
static int batch_add(batch *b, cf_str id, cf_str text, cf_err *err)
{
    size_t i = b->n;
    b->id_off[i] = b->arena.n;
    b->id_len[i] = id.n;
    cf_buf_append(&b->arena, id.p, id.n);
    b->tx_off[i] = b->arena.n;
    b->tx_len[i] = text.p ? text.n : 0;
    if (text.p)
        cf_buf_append(&b->arena, text.p, text.n);
    if (cf_buf_failed(&b->arena))
        return cf_fail(err, CF_ENOMEM, "out of memory embedding prompts");
    b->n++;
    return b->n == b->max_n || b->arena.n >= b->max_bytes;
}

/* Embeds the batch; *vec receives n * *dim floats (the embedder's). */
static int batch_embed(batch *b, cf_embedder *e, size_t *dim, const float **vec, cf_err *err)
{
    for (size_t i = 0; i < b->n; i++)
        b->texts[i] = (cf_str){b->arena.p + b->tx_off[i], b->tx_len[i]};
    size_t d = 0;
    if (cf_embed_batch(e, b->texts, b->n, vec, &d, err))
        return -1;
    if (d == 0 || (*dim && d != *dim))
        return cf_fail(err, CF_EINVAL, "the embedder returned vectors of dimension %zu after %zu",
                       d, *dim);
    for (size_t i = 0; i < b->n * d; i++)
        if (!isfinite((*vec)[i]))
            return cf_fail(err, CF_EINVAL, "the embedder returned a value that is not finite");
    *dim = d;
    return 0;
}

static void batch_clear(batch *b)
{
    b->n = 0;
    b->arena.n = 0;
}

/* ---- farthest from the centroid --------------------------------------------------- */

/* Every vector goes to a spill (cf_vspill.h) while the vectors are summed;
 * then the parts of the spill are ranked by threads at once, each into a
 * top-k of its own, and the tops are merged in scan order, so ties go as
 * one thread would send them. */
typedef struct farthest {
    cf_vspill *spill;
    double *sum;
    size_t dim;
} farthest;

static int farthest_dim(farthest *f, size_t dim, cf_err *err)
{
    if (f->sum)
        return 0;
    f->dim = dim;
    f->sum = calloc(dim, sizeof *f->sum);
    if (!f->sum)
        return cf_fail(err, CF_ENOMEM, "out of memory embedding prompts");
    return cf_vspill_open(dim, &f->spill, err);
}

static void add_to_sum(farthest *f, const float *x)
{
    for (size_t k = 0; k < f->dim; k++)
        f->sum[k] += x[k];
}

static cf_str batch_id(const batch *b, size_t i)
{
    return (cf_str){b->arena.p + b->id_off[i], b->id_len[i]};
}

static void batch_texts(batch *b)
{
    for (size_t i = 0; i < b->n; i++)
        b->texts[i] = (cf_str){b->arena.p + b->tx_off[i], b->tx_len[i]};
}

static int spill_batch(farthest *f, batch *b, cf_embedder *e, cf_diverse_info *info,
                       cf_err *err)
{
    if (!b->n)
        return 0;
    size_t dim = f->dim;
    if (e->vt->lattices) {
        const int32_t *m;
        const float *v;
        batch_texts(b);
        if (e->vt->lattices(e, b->texts, b->n, &m, &v, &dim, err))
            return -1;
        if (dim == 0 || (f->dim && dim != f->dim))
            return cf_fail(err, CF_EINVAL,
                           "the embedder returned vectors of dimension %zu after %zu", dim, f->dim);
        if (farthest_dim(f, dim, err))
            return -1;
        for (size_t i = 0; i < b->n; i++) {
            add_to_sum(f, v + i * dim);
            if (cf_vspill_put_lattice(f->spill, batch_id(b, i), m + i * dim, err))
                return -1;
        }
    } else {
        const float *v;
        if (batch_embed(b, e, &dim, &v, err) || farthest_dim(f, dim, err))
            return -1;
        for (size_t i = 0; i < b->n; i++) {
            add_to_sum(f, v + i * dim);
            if (cf_vspill_put_floats(f->spill, batch_id(b, i), v + i * dim, err))
                return -1;
        }
    }
    info->embedded = cf_vspill_count(f->spill);
    info->dim = f->dim;
    batch_clear(b);
    return 0;
}

typedef struct ranker {
    farthest *f;
    const double *c;
    cf_topk *top;
    unsigned part, parts;
    int rc;
    cf_err err;
} ranker;

static int rank_one(void *ud, cf_str id, const float *x, cf_err *err)
{
    ranker *r = ud;
    double ss = 0;
    for (size_t k = 0; k < r->f->dim; k++) {
        double d = (double)x[k] - r->c[k];
        ss += d * d;
    }
    if (cf_topk_push(r->top, id, sqrt(ss)) < 0)
        return cf_fail(err, CF_ENOMEM, "out of memory ranking embeddings");
    return 0;
}

static void *rank_part(void *arg)
{
    ranker *r = arg;
    r->rc = cf_vspill_read(r->f->spill, r->part, r->parts, rank_one, r, &r->err);
    return NULL;
}

static int by_arrival(const void *a, const void *b)
{
    uint64_t x = (*(const cf_topk_item *const *)a)->seq, y = (*(const cf_topk_item *const *)b)->seq;
    return (x > y) - (x < y);
}

/* Pushes a part's kept items into top in their order of arrival. */
static int merge_part(cf_topk *top, cf_topk *part, cf_err *err)
{
    size_t n;
    const cf_topk_item *it = cf_topk_sorted(part, &n);
    if (!n)
        return 0;
    const cf_topk_item **order = malloc(n * sizeof *order);
    if (!order)
        return cf_fail(err, CF_ENOMEM, "out of memory ranking embeddings");
    for (size_t i = 0; i < n; i++)
        order[i] = &it[i];
    qsort(order, n, sizeof *order, by_arrival);
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++)
        if (cf_topk_push(top, (cf_str){order[i]->id, order[i]->len}, order[i]->score) < 0)
            rc = cf_fail(err, CF_ENOMEM, "out of memory ranking embeddings");
    free(order);
    return rc;
}

static int rank_spilled(farthest *f, size_t k, cf_topk *top, cf_err *err)
{
    int64_t n = cf_vspill_count(f->spill);
    for (size_t j = 0; j < f->dim; j++)
        f->sum[j] /= (double)n;
    if (cf_vspill_finish(f->spill, err))
        return -1;
    unsigned parts = cf_parallel_threads(CF_PARALLEL_MAX);
    ranker r[CF_PARALLEL_MAX];
    int rc = 0;
    for (unsigned p = 0; p < parts; p++) {
        r[p] = (ranker){f, f->sum, cf_topk_new(k), p, parts, 0, {0, ""}};
        if (!r[p].top)
            rc = cf_fail(err, CF_ENOMEM, "out of memory ranking embeddings");
    }
    if (!rc)
        cf_parallel(rank_part, r, sizeof *r, parts);
    for (unsigned p = 0; p < parts && !rc; p++) {
        if (r[p].rc) {
            *err = r[p].err;
            rc = -1;
        }
    }
    for (unsigned p = 0; p < parts && !rc; p++)
        rc = merge_part(top, r[p].top, err);
    for (unsigned p = 0; p < parts; p++)
        cf_topk_free(r[p].top);
    return rc;
}

/* Fills b from the scan until it is full; *more becomes 0 when the scan
 * has no row left. */
static int fill(batch *b, cf_light_scan *scan, cf_diverse_info *info, int *more, cf_err *err)
{
    cf_light_event row;
    int r;
    while ((r = cf_light_scan_next(scan, &row, err)) == 1) {
        info->events++;
        int full = batch_add(b, row.id, row.prompt, err);
        if (full)
            return full < 0 ? -1 : 0;
    }
    *more = 0;
    return r;
}

/* The two halves of a step of the pipeline, run at once by cf_parallel:
 * one embeds and spills a batch while the other fills the next from the
 * scan, so that reading the prompts and embedding them overlap. Batches
 * are spilled in scan order, one step after another. */
typedef struct step {
    farthest *f;
    batch *b;
    cf_embedder *e;
    cf_light_scan *scan; /* NULL: this half embeds and spills b */
    cf_diverse_info *info;
    int *more;
    int rc;
    cf_err err;
} step;

static void *run_step(void *arg)
{
    step *st = arg;
    st->rc = st->scan ? fill(st->b, st->scan, st->info, st->more, &st->err)
                      : spill_batch(st->f, st->b, st->e, st->info, &st->err);
    return NULL;
}

int cf_diverse_farthest(cf_store *s, const cf_query *q, cf_embedder *e,
                        const cf_diverse_opts *o, cf_topk **out, cf_diverse_info *info,
                        cf_err *err)
{
    memset(info, 0, sizeof *info);
    *out = cf_topk_new(o->k);
    if (!*out)
        return cf_fail(err, CF_ENOMEM, "out of memory ranking embeddings");
    if (o->k == 0)
        return 0;
    farthest f = {0};
    batch b[2];
    int inited = 0;
    cf_light_scan *scan = NULL;
    int rc = -1, more = 1;
    for (; inited < 2; inited++)
        if (batch_init(&b[inited], e, o, err))
            goto out;
    if (cf_store_open_light_events(s, q, CF_LIGHT_PROMPT, &scan, err)
        || fill(&b[0], scan, info, &more, err))
        goto out;
    for (int cur = 0; b[cur].n; cur ^= 1) {
        step st[2] = {{&f, &b[cur], e, NULL, info, &more, 0, {0, ""}},
                      {&f, &b[cur ^ 1], e, scan, info, &more, 0, {0, ""}}};
        cf_parallel(run_step, st, sizeof *st, more ? 2 : 1);
        for (int k = 0; k < 2; k++) {
            if (st[k].rc) {
                *err = st[k].err;
                goto out;
            }
        }
    }
    cf_light_scan_close(scan);
    scan = NULL;
    rc = f.spill && cf_vspill_count(f.spill) ? rank_spilled(&f, o->k, *out, err) : 0;
out:
    while (inited > 0)
        batch_free(&b[--inited]);
    cf_light_scan_close(scan);
    cf_vspill_close(f.spill);
    free(f.sum);
    if (rc) {
        cf_topk_free(*out);
        *out = NULL;
    }
    return rc;
}

/* ---- k-center ------------------------------------------------------------------------ */

typedef struct sample {
    int64_t at;   /* position in the scan */
    char *id;
    size_t len;
} sample;

static int by_position(const void *a, const void *b)
{
    const sample *x = a, *y = b;
    return x->at < y->at ? -1 : x->at > y->at;
}

static void samples_free(sample *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(p[i].id);
    free(p);
}

static int keep_sample(sample *s, int64_t at, cf_str id)
{
    char *p = malloc(id.n + 1);
    if (!p)
        return -1;
    memcpy(p, id.p, id.n);
    p[id.n] = '\0';
    free(s->id);
    s->id = p;
    s->len = id.n;
    s->at = at;
    return 0;
}

/* Algorithm R over the scan: a uniform sample of at most cap events. */
static int draw_sample(cf_store *s, const cf_query *q, size_t cap, uint64_t seed, sample **out,
                       size_t *n, cf_diverse_info *info, cf_err *err)
{
    *out = NULL;
    *n = 0;
    cf_light_scan *scan = NULL;
    if (cf_store_open_light_events(s, q, 0, &scan, err))
        return -1;
    sample *pool = NULL;
    size_t have = 0; /* slots allocated: grows with the events, up to cap */
    uint64_t state = seed;
    cf_light_event row;
    int r;
    int64_t i = 0;
    while ((r = cf_light_scan_next(scan, &row, err)) == 1) {
        size_t slot = (size_t)i;
        if ((size_t)i >= cap)
            slot = (size_t)(cf_rand_next(&state) % (uint64_t)(i + 1));
        if (slot < cap && slot >= have) {
            size_t more = have ? have * 2 : 1024;
            if (more > cap)
                more = cap;
            sample *p = realloc(pool, more * sizeof *p);
            if (!p) {
                r = cf_fail(err, CF_ENOMEM, "out of memory sampling events");
                break;
            }
            memset(p + have, 0, (more - have) * sizeof *p);
            pool = p;
            have = more;
        }
        if (slot < cap && keep_sample(&pool[slot], i, row.id)) {
            r = cf_fail(err, CF_ENOMEM, "out of memory sampling events");
            break;
        }
        i++;
    }
    cf_light_scan_close(scan);
    info->events = i;
    size_t got = (size_t)i < cap ? (size_t)i : cap;
    if (got > have)
        got = have;
    if (r < 0) {
        samples_free(pool, have);
        return -1;
    }
    qsort(pool, got, sizeof *pool, by_position);
    *out = pool;
    *n = got;
    return 0;
}

typedef struct kc {
    sample *pool;
    size_t npool;
    float *vec;       /* one row per embedded sample, in pool order */
    size_t *which;    /* pool index of each embedded row */
    size_t rows, dim;
} kc;

static int kc_take(kc *k, batch *b, cf_embedder *e, cf_diverse_info *info, cf_err *err)
{
    if (!b->n)
        return 0;
    const float *v;
    if (batch_embed(b, e, &k->dim, &v, err))
        return -1;
    if (!k->vec && !(k->vec = malloc(k->npool * k->dim * sizeof *k->vec)))
        return cf_fail(err, CF_ENOMEM, "out of memory embedding the sample");
    memcpy(k->vec + k->rows * k->dim, v, b->n * k->dim * sizeof *v);
    k->rows += b->n;
    info->embedded = (int64_t)k->rows;
    info->dim = k->dim;
    batch_clear(b);
    return 0;
}

/* Embeds the sample's prompts, fetched by id in pool order. */
static int embed_sample(cf_store *s, kc *k, cf_embedder *e, const cf_diverse_opts *o,
                        cf_diverse_info *info, cf_err *err)
{
    cf_str *ids = malloc((k->npool ? k->npool : 1) * sizeof *ids);
    k->which = malloc((k->npool ? k->npool : 1) * sizeof *k->which);
    if (!ids || !k->which) {
        free(ids);
        return cf_fail(err, CF_ENOMEM, "out of memory embedding the sample");
    }
    for (size_t i = 0; i < k->npool; i++)
        ids[i] = (cf_str){k->pool[i].id, k->pool[i].len};
    batch b;
    cf_cursor *cur = NULL;
    int rc = -1;
    if (batch_init(&b, e, o, err)) {
        free(ids);
        return -1;
    }
    if (cf_store_open_events_by_ids(s, ids, k->npool, &cur, err))
        goto out;
    cf_row row;
    int r;
    size_t at = 0;
    while ((r = cf_cursor_next(cur, &row, err)) == 1) {
        cf_str id = row.event.id;
        while (at < k->npool && (k->pool[at].len != id.n || memcmp(k->pool[at].id, id.p, id.n)))
            at++; /* an event that went away */
        if (at == k->npool)
            break;
        k->which[k->rows + b.n] = at++;
        int full = batch_add(&b, id, row.event.prompt, err);
        if (full < 0 || (full && kc_take(k, &b, e, info, err)))
            goto out;
    }
    rc = r < 0 ? -1 : kc_take(k, &b, e, info, err);
out:
    cf_cursor_close(cur);
    batch_free(&b);
    free(ids);
    return rc;
}

static double sqdist(const float *a, const float *b, size_t dim)
{
    float ss = 0;
    for (size_t i = 0; i < dim; i++) {
        float d = a[i] - b[i];
        ss += d * d;
    }
    return ss;
}

static int greedy(kc *k, size_t want, cf_pick **picks, size_t *npicks, cf_err *err)
{
    size_t n = k->rows, dim = k->dim;
    *picks = calloc(want < n ? want : n, sizeof **picks);
    float *cen = calloc(dim, sizeof *cen);
    double *csum = calloc(dim, sizeof *csum);
    double *mind = malloc(n * sizeof *mind);
    int rc = 0;
    if (!*picks || !cen || !csum || !mind) {
        rc = cf_fail(err, CF_ENOMEM, "out of memory selecting diverse events");
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        for (size_t d = 0; d < dim; d++)
            csum[d] += k->vec[i * dim + d];
    for (size_t d = 0; d < dim; d++)
        cen[d] = (float)(csum[d] / (double)n);
    for (size_t i = 0; i < n; i++)
        mind[i] = sqdist(k->vec + i * dim, cen, dim);
    while (*npicks < want) {
        size_t best = 0;
        for (size_t i = 1; i < n; i++)
            if (mind[i] > mind[best])
                best = i;
        if (*npicks > 0 && !(mind[best] > 0))
            break; /* every other point coincides with a pick */
        const sample *s = &k->pool[k->which[best]];
        cf_pick *p = &(*picks)[*npicks];
        if (!(p->id = malloc(s->len + 1))) {
            rc = cf_fail(err, CF_ENOMEM, "out of memory selecting diverse events");
            goto out;
        }
        memcpy(p->id, s->id, s->len + 1);
        p->score = sqrt(mind[best]);
        (*npicks)++;
        const float *c = k->vec + best * dim;
        for (size_t i = 0; i < n; i++) {
            double d = *npicks == 1 ? sqdist(k->vec + i * dim, c, dim)
                                    : fmin(mind[i], sqdist(k->vec + i * dim, c, dim));
            mind[i] = d;
        }
        mind[best] = 0;
    }
out:
    free(cen);
    free(csum);
    free(mind);
    return rc;
}

int cf_diverse_k_center(cf_store *s, const cf_query *q, cf_embedder *e,
                        const cf_diverse_opts *o, cf_pick **picks, size_t *npicks,
                        cf_diverse_info *info, cf_err *err)
{
    memset(info, 0, sizeof *info);
    *picks = NULL;
    *npicks = 0;
    if (o->k == 0)
        return 0;
    kc k = {0};
    size_t cap = o->pool_size ? o->pool_size : DEFAULT_POOL;
    if (draw_sample(s, q, cap, o->seed, &k.pool, &k.npool, info, err))
        return -1;
    int rc = 0;
    if (k.npool)
        rc = embed_sample(s, &k, e, o, info, err);
    if (!rc && k.rows)
        rc = greedy(&k, o->k, picks, npicks, err);
    if (rc) {
        cf_picks_free(*picks, *npicks);
        *picks = NULL;
        *npicks = 0;
    }
    samples_free(k.pool, k.npool);
    free(k.vec);
    free(k.which);
    return rc;
}

void cf_picks_free(cf_pick *p, size_t n)
{
    if (!p)
        return;
    for (size_t i = 0; i < n; i++)
        free(p[i].id);
    free(p);
}
