/*
 * Drift windows (see cf_drift_window.h): one column scan per window feeds
 * numeric columns (doubles), category counts (a dictionary shared by both
 * windows), output sums and streamed embeddings (batched, summed, a seeded
 * reservoir kept for the MMD test). Nothing per event outlives its batch
 * except the numeric values the statistics need.
 */
#include "crucible/drift/cf_drift_window.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crucible/drift/cf_drift.h"
#include "crucible/quality/cf_graphemes.h"
#include "crucible/drift/cf_mmd.h"

/* ---- growable arrays ----------------------------------------------------- */

typedef struct dvec {
    double *v;
    size_t n, cap;
} dvec;

static int dvec_push(dvec *d, double x)
{
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 256;
        double *v = realloc(d->v, cap * sizeof *v);
        if (!v)
            return -1;
        d->v = v;
        d->cap = cap;
    }
    d->v[d->n++] = x;
    return 0;
}

/* Makes index i addressable (zero-filled). */
static int dvec_reach(dvec *d, size_t i)
{
    if (i < d->n)
        return 0;
    if (i >= d->cap) {
        size_t cap = d->cap ? d->cap : 16;
        while (cap <= i)
            cap *= 2;
        double *v = realloc(d->v, cap * sizeof *v);
        if (!v)
            return -1;
        d->v = v;
        d->cap = cap;
    }
    memset(d->v + d->n, 0, (i + 1 - d->n) * sizeof *d->v);
    d->n = i + 1;
    return 0;
}

/* ---- category dictionary (open addressing over owned byte keys) -------------- */

typedef struct dict {
    char **keys;
    size_t *lens;
    size_t *ids;
    size_t cap, count;
} dict;

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
    return h;
}

static void dict_free(dict *d)
{
    for (size_t i = 0; i < d->cap; i++)
        free(d->keys[i]);
    free(d->keys);
    free(d->lens);
    free(d->ids);
    memset(d, 0, sizeof *d);
}

static int dict_grow(dict *d)
{
    size_t cap = d->cap ? d->cap * 2 : 64;
    dict nd = {calloc(cap, sizeof(char *)), calloc(cap, sizeof(size_t)),
               calloc(cap, sizeof(size_t)), cap, d->count};
    if (!nd.keys || !nd.lens || !nd.ids) {
        dict_free(&nd);
        return -1;
    }
    for (size_t i = 0; i < d->cap; i++) {
        if (!d->keys[i])
            continue;
        size_t j = hash_bytes(d->keys[i], d->lens[i]) & (cap - 1);
        while (nd.keys[j])
            j = (j + 1) & (cap - 1);
        nd.keys[j] = d->keys[i];
        nd.lens[j] = d->lens[i];
        nd.ids[j] = d->ids[i];
    }
    free(d->keys);
    free(d->lens);
    free(d->ids);
    *d = nd;
    return 0;
}

/* The id of key (assigned in order of first sight); -1 on out of memory. */
static int dict_id(dict *d, const char *key, size_t n, size_t *id)
{
    if ((d->count + 1) * 2 > d->cap && dict_grow(d))
        return -1;
    size_t j = hash_bytes(key, n) & (d->cap - 1);
    while (d->keys[j]) {
        if (d->lens[j] == n && memcmp(d->keys[j], key, n) == 0) {
            *id = d->ids[j];
            return 0;
        }
        j = (j + 1) & (d->cap - 1);
    }
    char *k = malloc(n ? n : 1);
    if (!k)
        return -1;
    if (n)
        memcpy(k, key, n);
    d->keys[j] = k;
    d->lens[j] = n;
    d->ids[j] = d->count;
    *id = d->count++;
    return 0;
}

/* ---- the run ------------------------------------------------------------------- */

typedef struct side {
    size_t events;
    dvec *values;      /* per feature: numbers (numeric features) or counts by category id */
    size_t *present;   /* per feature: values seen (not missing) */
    size_t *missing;
    double length_sum, quality_sum;
    /* embeddings */
    double *emb_sum;
    size_t emb_count;
    char emb_error[512];
    float *samples;    /* reservoir: up to mmd_samples vectors */
    size_t nsamples;
    uint64_t seen;
    /* the batch of texts waiting to be embedded */
    char *arena;
    size_t arena_len, arena_cap;
    size_t *offs, *lens;
    size_t nbatch;
} side;

struct cf_drift_run {
    cf_drift_spec spec;
    cf_drift_feature *features;
    dict *dicts;       /* per feature (categorical ones) */
    side sides[2];
    size_t dim;
    uint64_t rng;
    cf_graphemes *g;
    cf_str *texts;     /* batch scratch */
    cf_drift_numeric *numeric;
    cf_drift_categorical *categorical;
    double **hists;    /* per feature: the numeric histograms (cf_drift_numeric.hist) */
};

static void side_free(side *s, size_t nf)
{
    if (s->values)
        for (size_t i = 0; i < nf; i++)
            free(s->values[i].v);
    free(s->values);
    free(s->present);
    free(s->missing);
    free(s->emb_sum);
    free(s->samples);
    free(s->arena);
    free(s->offs);
    free(s->lens);
}

void cf_drift_run_free(cf_drift_run *r)
{
    if (!r)
        return;
    size_t nf = r->spec.nfeatures;
    for (int k = 0; k < 2; k++)
        side_free(&r->sides[k], nf);
    if (r->dicts)
        for (size_t i = 0; i < nf; i++)
            dict_free(&r->dicts[i]);
    free(r->dicts);
    free(r->features);
    free(r->texts);
    free(r->numeric);
    free(r->categorical);
    if (r->hists)
        for (size_t i = 0; i < nf; i++)
            free(r->hists[i]);
    free(r->hists);
    cf_graphemes_free(r->g);
    free(r);
}

int cf_drift_run_new(const cf_drift_spec *spec, cf_drift_run **out, cf_err *err)
{
    *out = NULL;
    if (spec->nfeatures > 32)
        return cf_fail(err, CF_EINVAL, "drift: at most 32 features, got %zu", spec->nfeatures);
    if (spec->psi_bins < 1 || spec->hist_bins < 1)
        return cf_fail(err, CF_EINVAL, "drift: bins must be positive");
    cf_drift_run *r = calloc(1, sizeof *r);
    if (!r)
        return cf_fail(err, CF_ENOMEM, "out of memory starting drift detection");
    r->spec = *spec;
    size_t nf = spec->nfeatures, batch = spec->embedder ? spec->embedder->batch : 0;
    if (batch == 0 || batch > 65536)
        batch = 1024;
    r->spec.features = NULL;
    r->features = calloc(nf ? nf : 1, sizeof *r->features);
    r->dicts = calloc(nf ? nf : 1, sizeof *r->dicts);
    r->numeric = calloc(nf ? nf : 1, sizeof *r->numeric);
    r->categorical = calloc(nf ? nf : 1, sizeof *r->categorical);
    r->hists = calloc(nf ? nf : 1, sizeof *r->hists);
    r->texts = calloc(batch, sizeof *r->texts);
    r->g = cf_graphemes_new();
    r->rng = spec->seed;
    int bad = !r->features || !r->dicts || !r->numeric || !r->categorical || !r->hists ||
              !r->texts || !r->g;
    if (nf && r->features)
        memcpy(r->features, spec->features, nf * sizeof *r->features);
    for (int k = 0; k < 2 && !bad; k++) {
        side *s = &r->sides[k];
        s->values = calloc(nf ? nf : 1, sizeof *s->values);
        s->present = calloc(nf ? nf : 1, sizeof *s->present);
        s->missing = calloc(nf ? nf : 1, sizeof *s->missing);
        s->offs = calloc(batch, sizeof *s->offs);
        s->lens = calloc(batch, sizeof *s->lens);
        bad = !s->values || !s->present || !s->missing || !s->offs || !s->lens;
    }
    r->spec.embedder = spec->embedder;
    if (spec->embedder)
        r->spec.embedder->batch = batch;
    if (bad) {
        cf_drift_run_free(r);
        return cf_fail(err, CF_ENOMEM, "out of memory starting drift detection");
    }
    *out = r;
    return 0;
}

/* ---- embeddings ------------------------------------------------------------------ */

static void embed_fail(side *s, const char *msg)
{
    if (!s->emb_error[0])
        snprintf(s->emb_error, sizeof s->emb_error, "%s", msg);
}

static int flush_batch(cf_drift_run *r, side *s, cf_err *err)
{
    size_t n = s->nbatch;
    s->nbatch = 0;
    s->arena_len = 0;
    if (n == 0 || s->emb_error[0])
        return 0;
    for (size_t i = 0; i < n; i++) {
        r->texts[i].p = s->arena + s->offs[i];
        r->texts[i].n = s->lens[i];
    }
    const float *vec = NULL;
    size_t dim = 0;
    cf_err eerr;
    if (cf_embed_batch(r->spec.embedder, r->texts, n, &vec, &dim, &eerr)) {
        if (eerr.code == CF_ENOMEM)
            return cf_fail(err, CF_ENOMEM, "%s", eerr.msg);
        embed_fail(s, eerr.msg);
        return 0;
    }
    if (dim == 0 || (r->dim && dim != r->dim)) {
        char msg[128];
        snprintf(msg, sizeof msg, "embedding dimension changed from %zu to %zu", r->dim, dim);
        embed_fail(s, dim == 0 ? "the embedding provider returned no vectors" : msg);
        return 0;
    }
    if (!r->dim)
        r->dim = dim;
    size_t cap = r->spec.mmd_samples;
    for (int k = 0; k < 2; k++) {
        side *x = &r->sides[k];
        if (!x->emb_sum && !(x->emb_sum = calloc(dim, sizeof *x->emb_sum)))
            return cf_fail(err, CF_ENOMEM, "out of memory summing embeddings");
        if (cap && !x->samples && !(x->samples = malloc(cap * dim * sizeof *x->samples)))
            return cf_fail(err, CF_ENOMEM, "out of memory keeping embedding samples");
    }
    /* The sums and the check for values that are not finite numbers in one
     * pass the compiler vectorises (infinities and NaNs have every exponent
     * bit set). Sums that took a bad value are never read: the side's
     * error is. */
    uint32_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        const float *v = vec + i * dim;
        for (size_t k = 0; k < dim; k++) {
            uint32_t b;
            memcpy(&b, &v[k], sizeof b);
            bad |= (uint32_t)((b & 0x7f800000u) == 0x7f800000u);
            s->emb_sum[k] += v[k];
        }
    }
    if (bad) {
        embed_fail(s, "the embedding provider returned a value that is not a finite number");
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        const float *v = vec + i * dim;
        s->emb_count++;
        if (!cap)
            continue;
        size_t slot = SIZE_MAX;
        if (s->nsamples < cap)
            slot = s->nsamples++;
        else {
            uint64_t j = cf_rand_next(&r->rng) % (s->seen + 1);
            if (j < cap)
                slot = (size_t)j;
        }
        s->seen++;
        if (slot != SIZE_MAX)
            memcpy(s->samples + slot * dim, v, dim * sizeof *v);
    }
    return 0;
}

static int queue_text(cf_drift_run *r, side *s, cf_str t, cf_err *err)
{
    if (s->emb_error[0])
        return 0;
    if (!t.p)
        t = cf_cstr("");
    if (s->arena_len + t.n > s->arena_cap) {
        size_t cap = s->arena_cap ? s->arena_cap : 65536;
        while (cap < s->arena_len + t.n)
            cap *= 2;
        char *a = realloc(s->arena, cap);
        if (!a)
            return cf_fail(err, CF_ENOMEM, "out of memory batching texts to embed");
        s->arena = a;
        s->arena_cap = cap;
    }
    if (t.n)
        memcpy(s->arena + s->arena_len, t.p, t.n);
    s->offs[s->nbatch] = s->arena_len;
    s->lens[s->nbatch] = t.n;
    s->arena_len += t.n;
    if (++s->nbatch == r->spec.embedder->batch)
        return flush_batch(r, s, err);
    return 0;
}

/* ---- collecting --------------------------------------------------------------------- */

static int category_key(const cf_colval *v, char *buf, size_t cap, const char **key, size_t *n)
{
    switch (v->type) {
    case CF_COLVAL_NULL:
        return 1; /* missing */
    case CF_COLVAL_INT:
        *n = (size_t)snprintf(buf, cap, "i%lld", (long long)v->i);
        *key = buf;
        return 0;
    case CF_COLVAL_REAL:
        *n = (size_t)snprintf(buf, cap, "r%.17g", v->d);
        *key = buf;
        return 0;
    default:
        *key = v->s.p;
        *n = v->s.n;
        return 2; /* text: prefix 't' added by the caller */
    }
}

static int take_feature(cf_drift_run *r, side *s, size_t f, const cf_colval *v, cf_err *err)
{
    const cf_drift_feature *ft = &r->features[f];
    if (ft->measure == CF_MEASURE_CATEGORY) {
        char buf[64], *tmp = NULL;
        const char *key;
        size_t n = 0, id;
        int kind = category_key(v, buf, sizeof buf, &key, &n);
        if (kind == 1) {
            s->missing[f]++;
            key = "n";
            n = 1;
        } else if (kind == 2) {
            tmp = malloc(n + 1);
            if (!tmp)
                return cf_fail(err, CF_ENOMEM, "out of memory counting categories");
            tmp[0] = 't';
            memcpy(tmp + 1, key, n);
            key = tmp;
            n++;
        }
        int rc = dict_id(&r->dicts[f], key, n, &id);
        free(tmp);
        if (rc || dvec_reach(&s->values[f], id))
            return cf_fail(err, CF_ENOMEM, "out of memory counting categories");
        s->values[f].v[id] += 1;
        if (kind != 1)
            s->present[f]++;
        return 0;
    }
    double x;
    if (ft->measure == CF_MEASURE_LENGTH) {
        if (v->type != CF_COLVAL_TEXT) {
            s->missing[f]++;
            return 0;
        }
        x = (double)cf_graphemes_count(r->g, v->s.p, v->s.n);
    } else if (v->type == CF_COLVAL_INT || v->type == CF_COLVAL_REAL) {
        x = v->d;
        if (!isfinite(x)) {
            s->missing[f]++;
            return 0;
        }
    } else {
        s->missing[f]++;
        return 0;
    }
    if (dvec_push(&s->values[f], x))
        return cf_fail(err, CF_ENOMEM, "out of memory collecting a drift window");
    s->present[f]++;
    return 0;
}

int cf_drift_run_collect(cf_drift_run *r, cf_store *st, const cf_query *q, int which,
                         size_t split, cf_err *err)
{
    if (which < 0 || which > 1)
        return cf_fail(err, CF_EINVAL, "drift: window side must be 0 or 1");
    size_t nf = r->spec.nfeatures;
    cf_column cols[40];
    size_t nc = 0;
    for (size_t f = 0; f < nf; f++)
        cols[nc++] = r->features[f].col;
    size_t c_resp = SIZE_MAX, c_qual = SIZE_MAX, c_prompt = SIZE_MAX;
    if (r->spec.output) {
        c_resp = nc;
        cols[nc++] = (cf_column){CF_COL_RESPONSE, CF_NULL_STR};
        c_qual = nc;
        cols[nc++] = (cf_column){CF_COL_QUALITY, CF_NULL_STR};
    }
    if (r->spec.embedder) {
        c_prompt = nc;
        cols[nc++] = (cf_column){CF_COL_PROMPT, CF_NULL_STR};
    }
    if (nc == 0)
        cols[nc++] = (cf_column){CF_COL_INSERTED_AT, CF_NULL_STR};
    cf_colscan *cs = NULL;
    if (cf_store_open_columns(st, q, cols, nc, &cs, err))
        return -1;
    cf_colval vals[40];
    size_t row = 0;
    int rc;
    while ((rc = cf_colscan_next(cs, vals, err)) == 1) {
        int k = row < split ? which : 1;
        side *s = &r->sides[k];
        row++;
        s->events++;
        for (size_t f = 0; f < nf; f++)
            if (take_feature(r, s, f, &vals[f], err))
                goto fail;
        if (r->spec.output) {
            const cf_colval *resp = &vals[c_resp], *qual = &vals[c_qual];
            if (resp->type == CF_COLVAL_TEXT)
                s->length_sum += (double)cf_graphemes_count(r->g, resp->s.p, resp->s.n);
            if (qual->type == CF_COLVAL_INT || qual->type == CF_COLVAL_REAL)
                s->quality_sum += qual->d;
        }
        if (r->spec.embedder && queue_text(r, s, vals[c_prompt].s, err))
            goto fail;
    }
    cf_colscan_close(cs);
    if (rc < 0)
        return -1;
    if (r->spec.embedder)
        for (int k = 0; k < 2; k++)
            if (flush_batch(r, &r->sides[k], err))
                return -1;
    return 0;
fail:
    cf_colscan_close(cs);
    return -1;
}

const char *cf_drift_run_category(const cf_drift_run *r, size_t f, size_t id, size_t *len)
{
    const dict *d = &r->dicts[f];
    for (size_t j = 0; f < r->spec.nfeatures && j < d->cap; j++)
        if (d->keys[j] && d->ids[j] == id) {
            *len = d->lens[j];
            return d->keys[j];
        }
    return NULL;
}

/* ---- measuring ------------------------------------------------------------------------ */

static int measure_numeric(cf_drift_run *r, size_t f, cf_drift_numeric *m, cf_err *err)
{
    dvec *a = &r->sides[0].values[f], *b = &r->sides[1].values[f];
    memset(m, 0, sizeof *m);
    for (int k = 0; k < 2; k++) {
        dvec *d = &r->sides[k].values[f];
        m->n[k] = d->n;
        m->missing[k] = r->sides[k].missing[f];
        cf_mean_std(d->v, d->n, &m->mean[k], &m->std[k]);
        if (cf_drift_sort(d->v, d->n, err))
            return -1;
    }
    m->ks = cf_ks_reference(a->v, a->n, b->v, b->n);
    m->psi = cf_psi(a->v, a->n, b->v, b->n, r->spec.psi_bins);
    m->ks_pvalue = m->wasserstein = m->wasserstein_normalized = m->js_distance = NAN;
    if (a->n == 0 || b->n == 0)
        return 0;
    cf_ks_result ks;
    if (cf_ks_sorted(a->v, a->n, b->v, b->n, CF_KS_AUTO, &ks, err))
        return -1;
    m->ks_pvalue = ks.pvalue;
    m->ks_exact = ks.exact;
    m->wasserstein = cf_wasserstein_sorted(a->v, a->n, b->v, b->n);
    if (m->std[1] > 0)
        m->wasserstein_normalized = m->wasserstein / m->std[1];
    int bins = r->spec.hist_bins;
    double *h = malloc(2 * (size_t)bins * sizeof *h);
    if (!h)
        return cf_fail(err, CF_ENOMEM, "out of memory binning a drift window");
    cf_histogram2(a->v, a->n, b->v, b->n, bins, h, h + bins);
    m->js_distance = cf_js_distance(h, h + bins, (size_t)bins, 2);
    free(r->hists[f]);
    r->hists[f] = m->hist = h;
    m->lo = a->v[0] < b->v[0] ? a->v[0] : b->v[0];
    m->hi = a->v[a->n - 1] > b->v[b->n - 1] ? a->v[a->n - 1] : b->v[b->n - 1];
    return 0;
}

static int measure_categorical(cf_drift_run *r, size_t f, cf_drift_categorical *m, cf_err *err)
{
    memset(m, 0, sizeof *m);
    size_t k = r->dicts[f].count;
    for (int s = 0; s < 2; s++) {
        m->n[s] = r->sides[s].present[f];
        m->missing[s] = r->sides[s].missing[f];
        if (dvec_reach(&r->sides[s].values[f], k ? k - 1 : 0))
            return cf_fail(err, CF_ENOMEM, "out of memory counting categories");
    }
    m->categories = k;
    m->chi2 = m->chi2_pvalue = m->js_distance = NAN;
    if (r->sides[0].events == 0 || r->sides[1].events == 0 || k == 0)
        return 0;
    const double *ca = r->sides[0].values[f].v, *cb = r->sides[1].values[f].v;
    cf_chi2_result c;
    if (cf_chi2_2xk(ca, cb, k, &c, err))
        return -1;
    m->chi2 = c.statistic;
    m->chi2_pvalue = c.pvalue;
    m->dof = c.dof;
    m->js_distance = cf_js_distance(ca, cb, k, 2);
    m->counts[0] = ca;
    m->counts[1] = cb;
    return 0;
}

static int measure_embedding(cf_drift_run *r, cf_drift_measures *m, cf_err *err)
{
    side *a = &r->sides[0], *b = &r->sides[1];
    const char *why = NULL;
    if (a->events == 0)
        why = "empty_window";
    else if (a->emb_error[0])
        why = a->emb_error;
    else if (b->events == 0)
        why = "empty_window";
    else if (b->emb_error[0])
        why = b->emb_error;
    if (why) {
        snprintf(m->embed_error, sizeof m->embed_error, "%s", why);
        return 0;
    }
    size_t dim = r->dim;
    double *ca = malloc(2 * dim * sizeof *ca);
    if (!ca)
        return cf_fail(err, CF_ENOMEM, "out of memory averaging embeddings");
    double *cb = ca + dim;
    for (size_t k = 0; k < dim; k++) {
        ca[k] = a->emb_sum[k] / (double)a->emb_count;
        cb[k] = b->emb_sum[k] / (double)b->emb_count;
    }
    m->embedded = 1;
    m->dim = dim;
    m->distance = cf_euclidean(ca, cb, dim);
    m->cosine_distance = cf_cosine_distance(ca, cb, dim);
    free(ca);
    m->mmd_n[0] = a->nsamples;
    m->mmd_n[1] = b->nsamples;
    if (r->spec.mmd_samples && a->nsamples >= 2 && b->nsamples >= 2) {
        cf_mmd_result mr;
        if (cf_mmd_test(a->samples, a->nsamples, b->samples, b->nsamples, dim,
                        r->spec.mmd_permutations, r->spec.seed ^ 0x5bd1e995ull, &mr, err))
            return -1;
        m->mmd_done = 1;
        m->mmd2 = mr.mmd2;
        m->mmd_pvalue = mr.pvalue;
        m->mmd_bandwidth = mr.bandwidth;
    }
    return 0;
}

int cf_drift_run_measure(cf_drift_run *r, cf_drift_measures *m, cf_err *err)
{
    memset(m, 0, sizeof *m);
    m->numeric = r->numeric;
    m->categorical = r->categorical;
    for (int k = 0; k < 2; k++) {
        side *s = &r->sides[k];
        m->events[k] = s->events;
        m->avg_length[k] = s->events ? s->length_sum / (double)s->events : 0.0;
        m->avg_quality[k] = s->events ? s->quality_sum / (double)s->events : 0.0;
    }
    for (size_t f = 0; f < r->spec.nfeatures; f++) {
        int rc = r->features[f].measure == CF_MEASURE_CATEGORY
                     ? measure_categorical(r, f, &r->categorical[f], err)
                     : measure_numeric(r, f, &r->numeric[f], err);
        if (rc)
            return -1;
    }
    if (r->spec.embedder && measure_embedding(r, m, err))
        return -1;
    return 0;
}
