/*
 * The built-in embedder (feature hashing, see cf_embed.h) and the Noop
 * provider.
 */
#include "crucible/embed/cf_embed.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FNV_OFFSET 0xcbf29ce484222325ull
#define FNV_PRIME 0x100000001b3ull
#define WORD_SEED 0x9e3779b97f4a7c15ull
#define GRAM_SEED 0xc2b2ae3d27d4eb4full
#define GRAM_WEIGHT 0.5f

static void emit(float *out, size_t dim, uint64_t h, float w)
{
    h = cf_mix64(h);
    out[(h >> 1) % dim] += (h & 1) ? w : -w;
}

static int word_byte(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80;
}

static unsigned char lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

/* One word: its own feature and the 3..5-byte grams of "<word>". */
static void embed_word(const unsigned char *w, size_t len, float *out, size_t dim)
{
    uint64_t h = FNV_OFFSET ^ WORD_SEED;
    for (size_t i = 0; i < len; i++)
        h = (h ^ lower(w[i])) * FNV_PRIME;
    emit(out, dim, h, 1.0f);
    size_t n = len + 2; /* with the '<' and '>' markers */
    for (size_t i = 0; i + 3 <= n; i++) {
        uint64_t g = FNV_OFFSET ^ GRAM_SEED;
        for (size_t k = 0; k < 5 && i + k < n; k++) {
            size_t pos = i + k;
            unsigned char c = pos == 0 ? '<' : (pos == n - 1 ? '>' : lower(w[pos - 1]));
            g = (g ^ c) * FNV_PRIME;
            if (k >= 2)
                emit(out, dim, g + k, GRAM_WEIGHT);
        }
    }
}

void cf_embed_builtin(const char *s, size_t n, float *out, size_t dim)
{
    memset(out, 0, dim * sizeof *out);
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        while (i < n && !word_byte(p[i]))
            i++;
        size_t start = i;
        while (i < n && word_byte(p[i]))
            i++;
        if (i > start)
            embed_word(p + start, i - start, out, dim);
    }
    double ss = 0;
    for (size_t k = 0; k < dim; k++)
        ss += (double)out[k] * out[k];
    if (ss > 0) {
        float inv = (float)(1.0 / sqrt(ss));
        for (size_t k = 0; k < dim; k++)
            out[k] *= inv;
    }
}

/* ---- providers --------------------------------------------------------------- */

typedef struct builtin {
    cf_embedder base;
    size_t dim;
    float *buf;
    size_t cap; /* texts the buffer holds */
} builtin;

static int builtin_embed(cf_embedder *base, const cf_str *texts, size_t n, const float **out,
                         size_t *dim, cf_err *err)
{
    builtin *b = (builtin *)base;
    if (n > b->cap) {
        float *nb = realloc(b->buf, n * b->dim * sizeof *nb);
        if (!nb)
            return cf_fail(err, CF_ENOMEM, "out of memory embedding %zu texts", n);
        b->buf = nb;
        b->cap = n;
    }
    for (size_t i = 0; i < n; i++)
        cf_embed_builtin(texts[i].p ? texts[i].p : "", texts[i].p ? texts[i].n : 0,
                         b->buf + i * b->dim, b->dim);
    *out = b->buf;
    *dim = b->dim;
    return 0;
}

static void builtin_destroy(cf_embedder *base)
{
    builtin *b = (builtin *)base;
    free(b->buf);
    free(b);
}

static const cf_embedder_vt builtin_vt = {builtin_embed, builtin_destroy};

int cf_embedder_builtin_new(size_t dim, cf_embedder **out, cf_err *err)
{
    *out = NULL;
    if (dim < CF_EMBED_MIN_DIM || dim > CF_EMBED_MAX_DIM)
        return cf_fail(err, CF_EINVAL, "embedding dimension must be between %d and %d, got %zu",
                       CF_EMBED_MIN_DIM, CF_EMBED_MAX_DIM, dim);
    builtin *b = calloc(1, sizeof *b);
    if (!b)
        return cf_fail(err, CF_ENOMEM, "out of memory creating the embedder");
    b->base.vt = &builtin_vt;
    b->base.name = "builtin";
    b->base.batch = 1024;
    b->dim = dim;
    *out = &b->base;
    return 0;
}

static int noop_embed(cf_embedder *base, const cf_str *texts, size_t n, const float **out,
                      size_t *dim, cf_err *err)
{
    (void)base;
    (void)texts;
    (void)n;
    *out = NULL;
    *dim = 0;
    return cf_fail(err, CF_EUNSUPPORTED, CF_EMBED_NOT_CONFIGURED);
}

static void noop_destroy(cf_embedder *base)
{
    free(base);
}

static const cf_embedder_vt noop_vt = {noop_embed, noop_destroy};

int cf_embedder_noop_new(cf_embedder **out, cf_err *err)
{
    cf_embedder *e = calloc(1, sizeof *e);
    if (!e)
        return cf_fail(err, CF_ENOMEM, "out of memory creating the embedder");
    e->vt = &noop_vt;
    e->name = "noop";
    e->batch = 1024;
    *out = e;
    return 0;
}
