/*
 * The built-in embedder (feature hashing, see cf_embed.h) and the Noop
 * provider.
 */
#include "crucible/embed/cf_embed.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crucible/core/cf_parallel.h"

#define FNV_OFFSET 0xcbf29ce484222325ull
#define FNV_PRIME 0x100000001b3ull
#define WORD_SEED 0x9e3779b97f4a7c15ull
#define GRAM_SEED 0xc2b2ae3d27d4eb4full
/* Weights in halves: a word weighs 1 (2 halves), a gram 1/2 (1 half). The
 * slots add integers, so the vector before normalisation is exact. */
#define WORD_HALVES 2
#define GRAM_HALVES 1

/* Where features land: a feature's hash modulo dim. dim is a power of two
 * by default (256), and then the modulo is a mask: the same slot without
 * a 64-bit division for every feature. */
typedef struct slots {
    int32_t *m;
    size_t dim, mask; /* mask: dim - 1 when dim is a power of two, else 0 */
} slots;

/* One feature: its slot and signed weight, packed (slot | weight << 16;
 * dim is at most 8192). A word's features are listed before they are
 * added, so that the word cache can keep the list. */
typedef uint32_t feat;

static inline feat feature(const slots *o, uint64_t h, int32_t w)
{
    h = cf_mix64(h);
    uint64_t x = h >> 1;
    /* +w when the low bit is set, else -w, without a branch (a coin toss
     * per feature, which a branch mispredicts half the time) */
    int32_t neg = (int32_t)(~h & 1);
    w = (w ^ -neg) + neg;
    uint32_t slot = (uint32_t)(o->mask ? (x & o->mask) : (x % o->dim));
    return slot | (uint32_t)(uint16_t)(int16_t)w << 16;
}

static inline void add_feats(const slots *o, const feat *f, size_t n)
{
    for (size_t i = 0; i < n; i++)
        o->m[f[i] & 0xffff] += (int16_t)(uint16_t)(f[i] >> 16);
}

static inline void emit(const slots *o, uint64_t h, int32_t w)
{
    feat f = feature(o, h, w);
    add_feats(o, &f, 1);
}

/* ---- the word cache -------------------------------------------------------------
 * A word's features depend on the word alone, and texts repeat their words
 * (a few thousand make most of any language's text), so an embedder keeps
 * the feature lists of the words it has seen: a word met again costs a
 * lookup and its additions instead of hashing its grams. The slots add
 * integers, so a cached list gives the same vector. Bounded: past
 * CACHE_ENTRIES words or CACHE_WORDS arena words, new words are not kept. */
#define CACHE_WORD_MAX 32        /* longer words are not kept */
#define CACHE_TABLE (1u << 15)   /* open addressing, at most half full */
#define CACHE_ENTRIES (CACHE_TABLE / 2)
#define CACHE_WORDS (1u << 19)   /* arena, in uint32 (2 MiB) */

typedef struct wcache {
    uint32_t *table; /* 0: empty; else 1 + the entry's offset in the arena */
    uint32_t *arena; /* entry: hash (2), len | nfeat << 16, bytes padded, feats */
    size_t used, entries;
} wcache;

static void wcache_free(wcache *c)
{
    free(c->table);
    free(c->arena);
    memset(c, 0, sizeof *c);
}

static int wcache_init(wcache *c)
{
    c->table = calloc(CACHE_TABLE, sizeof *c->table);
    c->arena = malloc(CACHE_WORDS * sizeof *c->arena);
    c->used = c->entries = 0;
    if (c->table && c->arena)
        return 0;
    wcache_free(c);
    return -1;
}

/* The table slot of a word: its own (found) or the empty one it would take. */
static uint32_t *wcache_find(const wcache *c, uint64_t h, const unsigned char *w, size_t len)
{
    size_t i = (size_t)(cf_mix64(h) >> 20) & (CACHE_TABLE - 1);
    for (;; i = (i + 1) & (CACHE_TABLE - 1)) {
        uint32_t *t = &c->table[i];
        if (!*t)
            return t;
        const uint32_t *e = c->arena + *t - 1;
        if (e[0] == (uint32_t)h && e[1] == (uint32_t)(h >> 32) && (e[2] & 0xffff) == len
            && memcmp(e + 3, w, len) == 0)
            return t;
    }
}

static void wcache_put(wcache *c, uint32_t *t, uint64_t h, const unsigned char *w, size_t len,
                       const feat *f, size_t nf)
{
    size_t need = 3 + (len + 3) / 4 + nf;
    if (c->entries >= CACHE_ENTRIES || c->used + need > CACHE_WORDS)
        return;
    uint32_t *e = c->arena + c->used;
    e[0] = (uint32_t)h;
    e[1] = (uint32_t)(h >> 32);
    e[2] = (uint32_t)len | (uint32_t)nf << 16;
    e[3 + len / 4] = 0; /* the padding of the last word of bytes */
    memcpy(e + 3, w, len);
    memcpy(e + 3 + (len + 3) / 4, f, nf * sizeof *f);
    *t = (uint32_t)c->used + 1;
    c->used += need;
    c->entries++;
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

/* The features of a lowered word of at most WORD_BUF bytes, read from
 * buf = "<word>": added to the slots, and listed in f (at most WORD_FEATS)
 * when f is not NULL; returns their count. Inlined twice, with and
 * without the list. */
#define WORD_FEATS (1 + 3 * (WORD_BUF + 2))

static inline size_t word_feats(const unsigned char *buf, size_t n, uint64_t h, const slots *o,
                                feat *f)
{
    size_t nf = 0;
    feat x = feature(o, h, WORD_HALVES);
    add_feats(o, &x, 1);
    if (f)
        f[nf] = x;
    nf++;
    for (size_t i = 0; i + 3 <= n; i++) {
        uint64_t g = FNV_OFFSET ^ GRAM_SEED;
        g = (g ^ buf[i]) * FNV_PRIME;
        g = (g ^ buf[i + 1]) * FNV_PRIME;
        size_t kmax = n - i < 5 ? n - i : 5;
        for (size_t k = 2; k < kmax; k++) {
            g = (g ^ buf[i + k]) * FNV_PRIME;
            x = feature(o, g + k, GRAM_HALVES);
            add_feats(o, &x, 1);
            if (f)
                f[nf] = x;
            nf++;
        }
    }
    return nf;
}

/* A word too long for the buffer: its features read in place. */
static void long_word(const unsigned char *w, size_t len, const slots *o)
{
    uint64_t h = FNV_OFFSET ^ WORD_SEED;
    size_t n = len + 2; /* with the '<' and '>' markers */
    for (size_t i = 0; i < len; i++)
        h = (h ^ lower(w[i])) * FNV_PRIME;
    emit(o, h, WORD_HALVES);
    for (size_t i = 0; i + 3 <= n; i++) {
        uint64_t g = FNV_OFFSET ^ GRAM_SEED;
        for (size_t k = 0; k < 5 && i + k < n; k++) {
            size_t pos = i + k;
            unsigned char ch = pos == 0 ? '<' : (pos == n - 1 ? '>' : lower(w[pos - 1]));
            g = (g ^ ch) * FNV_PRIME;
            if (k >= 2)
                emit(o, g + k, GRAM_HALVES);
        }
    }
}

/* One word: its own feature and the 3..5-byte grams of "<word>". */
static void embed_word(const unsigned char *w, size_t len, const slots *o, wcache *c)
{
    if (len > WORD_BUF) {
        long_word(w, len, o);
        return;
    }
    uint64_t h = FNV_OFFSET ^ WORD_SEED;
    unsigned char buf[WORD_BUF + 2];
    size_t n = len + 2; /* with the '<' and '>' markers */
    buf[0] = '<';
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = lower(w[i]);
        h = (h ^ ch) * FNV_PRIME;
        buf[i + 1] = ch;
    }
    buf[n - 1] = '>';
    if (!c || len > CACHE_WORD_MAX) {
        word_feats(buf, n, h, o, NULL);
        return;
    }
    uint32_t *t = wcache_find(c, h, buf + 1, len);
    if (*t) {
        const uint32_t *e = c->arena + *t - 1;
        add_feats(o, e + 3 + (len + 3) / 4, e[2] >> 16);
        return;
    }
    feat f[WORD_FEATS];
    size_t nf = word_feats(buf, n, h, o, f);
    wcache_put(c, t, h, buf + 1, len, f, nf);
}

static void embed_counts(const char *s, size_t n, int32_t *m, size_t dim, wcache *c)
{
    memset(m, 0, dim * sizeof *m);
    if (n > CF_EMBED_MAX_TEXT)
        n = CF_EMBED_MAX_TEXT;
    slots o = {m, dim, dim && (dim & (dim - 1)) == 0 ? dim - 1 : 0};
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        while (i < n && !word_byte(p[i]))
            i++;
        size_t start = i;
        while (i < n && word_byte(p[i]))
            i++;
        if (i > start)
            embed_word(p + start, i - start, &o, c);
    }
}

void cf_embed_builtin_counts(const char *s, size_t n, int32_t *m, size_t dim)
{
    embed_counts(s, n, m, dim, NULL);
}

void cf_embed_lattice_normalize(const int32_t *m, float *out, size_t dim)
{
    /* The squares' sum in integers: the slots are halves, so this is the
     * sum of the halves' squares times 4, exact, and the same double a
     * sum of the floats' squares gives while it is exact (texts up to
     * 4 MB); unlike that sum it vectorises. No overflow: the slots' sum
     * of magnitudes is at most 4 * CF_EMBED_MAX_TEXT = 2^30. */
    uint64_t sq = 0;
    for (size_t k = 0; k < dim; k++) {
        /* |m[k]| <= 2^30: an unsigned 32 x 32 -> 64 product, which SSE2 has */
        uint32_t a = m[k] < 0 ? 0u - (uint32_t)m[k] : (uint32_t)m[k];
        sq += (uint64_t)a * a;
    }
    float inv = sq ? (float)(1.0 / sqrt((double)sq * 0.25)) : 1.0f;
    for (size_t k = 0; k < dim; k++)
        out[k] = (float)m[k] * 0.5f * inv;
}

void cf_embed_builtin(const char *s, size_t n, float *out, size_t dim)
{
    int32_t m[CF_EMBED_MAX_DIM];
    cf_embed_builtin_counts(s, n, m, dim);
    cf_embed_lattice_normalize(m, out, dim);
}

/* ---- providers --------------------------------------------------------------- */

/* A batch is cut into one share per thread, of about equal bytes; the
 * caller's thread takes the first share. Each share has its own word
 * cache, and shares nothing else but the texts they read. */
#define MAX_THREADS CF_PARALLEL_MAX
#define PARALLEL_MIN_BYTES (64u << 10)

typedef struct builtin {
    cf_embedder base;
    size_t dim;
    float *buf;     /* vectors of the last call */
    int32_t *cnt;   /* lattices of the last call */
    size_t cap, cnt_cap; /* texts each holds */
    unsigned threads;
    wcache cache[MAX_THREADS]; /* one per share (not kept when out of memory) */
} builtin;

typedef struct share {
    const cf_str *texts;
    size_t from, to, dim;
    float *out;     /* vectors, or NULL */
    int32_t *m;     /* lattices, or NULL */
    wcache *c;      /* NULL: no cache */
} share;

static void *embed_share(void *arg)
{
    const share *sh = arg;
    for (size_t i = sh->from; i < sh->to; i++) {
        const char *p = sh->texts[i].p ? sh->texts[i].p : "";
        size_t n = sh->texts[i].p ? sh->texts[i].n : 0;
        int32_t own[CF_EMBED_MAX_DIM];
        int32_t *m = sh->m ? sh->m + i * sh->dim : own;
        embed_counts(p, n, m, sh->dim, sh->c);
        if (sh->out)
            cf_embed_lattice_normalize(m, sh->out + i * sh->dim, sh->dim);
    }
    return NULL;
}

static void embed_all(builtin *b, const cf_str *texts, size_t n, float *out, int32_t *m)
{
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++)
        bytes += texts[i].p ? texts[i].n : 0;
    unsigned k = bytes < PARALLEL_MIN_BYTES ? 1 : b->threads;
    share sh[MAX_THREADS];
    size_t i = 0, done = 0;
    for (unsigned t = 0; t < k; t++) {
        wcache *c = &b->cache[t];
        if (!c->table && wcache_init(c))
            c = NULL;
        sh[t] = (share){texts, i, i, b->dim, out, m, c};
        size_t goal = bytes / k * (t + 1);
        while (i < n && (t + 1 == k || done < goal)) {
            done += texts[i].p ? texts[i].n : 0;
            i++;
        }
        sh[t].to = i;
    }
    cf_parallel(embed_share, sh, sizeof *sh, k);
}

/* Room for n texts' vectors (vecs) and lattices (lats) in the buffers. */
static int reserve(builtin *b, size_t n, int vecs, int lats, cf_err *err)
{
    if (vecs && n > b->cap) {
        float *nb = realloc(b->buf, n * b->dim * sizeof *nb);
        if (!nb)
            return cf_fail(err, CF_ENOMEM, "out of memory embedding %zu texts", n);
        b->buf = nb;
        b->cap = n;
    }
    if (lats && n > b->cnt_cap) {
        int32_t *nb = realloc(b->cnt, n * b->dim * sizeof *nb);
        if (!nb)
            return cf_fail(err, CF_ENOMEM, "out of memory embedding %zu texts", n);
        b->cnt = nb;
        b->cnt_cap = n;
    }
    return 0;
}

static int builtin_embed(cf_embedder *base, const cf_str *texts, size_t n, const float **out,
                         size_t *dim, cf_err *err)
{
    builtin *b = (builtin *)base;
    if (reserve(b, n, 1, 0, err))
        return -1;
    embed_all(b, texts, n, b->buf, NULL);
    *out = b->buf;
    *dim = b->dim;
    return 0;
}

static int builtin_lattices(cf_embedder *base, const cf_str *texts, size_t n,
                            const int32_t **out, const float **vecs, size_t *dim, cf_err *err)
{
    builtin *b = (builtin *)base;
    if (reserve(b, n, vecs != NULL, 1, err))
        return -1;
    embed_all(b, texts, n, vecs ? b->buf : NULL, b->cnt);
    *out = b->cnt;
    if (vecs)
        *vecs = b->buf;
    *dim = b->dim;
    return 0;
}

static void builtin_destroy(cf_embedder *base)
{
    builtin *b = (builtin *)base;
    free(b->buf);
    free(b->cnt);
    for (unsigned t = 0; t < MAX_THREADS; t++)
        wcache_free(&b->cache[t]);
    free(b);
}

static int builtin_clone(const cf_embedder *base, cf_embedder **out, cf_err *err)
{
    return cf_embedder_builtin_new(((const builtin *)base)->dim, out, err);
}

static const cf_embedder_vt builtin_vt = {builtin_embed, builtin_lattices, builtin_destroy,
                                          builtin_clone};

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
    b->threads = cf_parallel_threads(MAX_THREADS);
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

static const cf_embedder_vt noop_vt = {noop_embed, NULL, noop_destroy, NULL};

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
