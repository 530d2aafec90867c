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

/* Where features land: a feature's hash modulo dim. dim is a power of two
 * by default (256), and then the modulo is a mask: the same slot without
 * a 64-bit division for every feature. */
typedef struct slots {
    float *out;
    size_t dim, mask; /* mask: dim - 1 when dim is a power of two, else 0 */
} slots;

static inline void emit(const slots *o, uint64_t h, float w)
{
    h = cf_mix64(h);
    uint64_t x = h >> 1;
    /* +w when the low bit is set, else -w: the sign bit flipped without a
     * branch (a coin toss per feature, which a branch mispredicts half
     * the time) */
    uint32_t bits;
    memcpy(&bits, &w, sizeof bits);
    bits ^= (uint32_t)(~h & 1) << 31;
    memcpy(&w, &bits, sizeof w);
    o->out[o->mask ? (size_t)(x & o->mask) : (size_t)(x % o->dim)] += w;
}

static int word_byte(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80;
}

static unsigned char lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

/* Words up to this many bytes are lowered once into a buffer for their
 * grams; longer ones are read in place. */
#define WORD_BUF 128

/* One word: its own feature and the 3..5-byte grams of "<word>". */
static void embed_word(const unsigned char *w, size_t len, const slots *o)
{
    uint64_t h = FNV_OFFSET ^ WORD_SEED;
    unsigned char buf[WORD_BUF + 2];
    size_t n = len + 2; /* with the '<' and '>' markers */
    int buffered = len <= WORD_BUF;
    if (buffered)
        buf[0] = '<';
    for (size_t i = 0; i < len; i++) {
        unsigned char c = lower(w[i]);
        h = (h ^ c) * FNV_PRIME;
        if (buffered)
            buf[i + 1] = c;
    }
    emit(o, h, 1.0f);
    if (buffered) {
        buf[n - 1] = '>';
        for (size_t i = 0; i + 3 <= n; i++) {
            uint64_t g = FNV_OFFSET ^ GRAM_SEED;
            g = (g ^ buf[i]) * FNV_PRIME;
            g = (g ^ buf[i + 1]) * FNV_PRIME;
            size_t kmax = n - i < 5 ? n - i : 5;
            for (size_t k = 2; k < kmax; k++) {
                g = (g ^ buf[i + k]) * FNV_PRIME;
                emit(o, g + k, GRAM_WEIGHT);
            }
        }
        return;
    }
    for (size_t i = 0; i + 3 <= n; i++) {
        uint64_t g = FNV_OFFSET ^ GRAM_SEED;
        for (size_t k = 0; k < 5 && i + k < n; k++) {
            size_t pos = i + k;
            unsigned char c = pos == 0 ? '<' : (pos == n - 1 ? '>' : lower(w[pos - 1]));
            g = (g ^ c) * FNV_PRIME;
            if (k >= 2)
                emit(o, g + k, GRAM_WEIGHT);
        }
    }
}

void cf_embed_builtin(const char *s, size_t n, float *out, size_t dim)
{
    memset(out, 0, dim * sizeof *out);
    slots o = {out, dim, dim && (dim & (dim - 1)) == 0 ? dim - 1 : 0};
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        while (i < n && !word_byte(p[i]))
            i++;
        size_t start = i;
        while (i < n && word_byte(p[i]))
            i++;
        if (i > start)
            embed_word(p + start, i - start, &o);
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
