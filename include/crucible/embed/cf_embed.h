/*
 * Text embedders behind embedding drift and diverse curation.
 *
 * An embedder turns a batch of texts into vectors of one fixed dimension.
 * Providers: the built-in local embedder (deterministic feature hashing,
 * the default), the reference's Noop client (always fails with
 * "embedding_client_not_configured"), an OpenAI-compatible HTTP provider
 * (cf_embed_http.h) and, from Lua, a function provider (l_embed.c).
 */
#ifndef CRUCIBLE_CF_EMBED_H
#define CRUCIBLE_CF_EMBED_H

#include <stddef.h>
#include <stdint.h>

#include "crucible/core/cf_common.h"

typedef struct cf_embedder cf_embedder;

typedef struct cf_embedder_vt {
    /* Embeds n texts. *out receives n * *dim floats owned by the embedder,
     * valid until its next call. Returns 0, or -1 with err set. */
    int (*embed)(cf_embedder *, const cf_str *texts, size_t n, const float **out, size_t *dim,
                 cf_err *err);
    /* Optional (NULL when the provider has none): the same vectors as
     * integer lattices, n * *dim int32 owned by the embedder, valid until
     * its next call; cf_embed_lattice_normalize of a lattice is the vector
     * embed gives, bit for bit. A caller that keeps many vectors (a
     * spill file) keeps these small integers instead of floats. With
     * vecs not NULL, *vecs receives the vectors too (n * *dim floats,
     * normalised alongside, as embed's). */
    int (*lattices)(cf_embedder *, const cf_str *texts, size_t n, const int32_t **out,
                    const float **vecs, size_t *dim, cf_err *err);
    void (*destroy)(cf_embedder *);
    /* Optional (NULL when the provider has none): a new embedder giving the
     * same vectors, free to be used on another thread while this one is
     * used on its own (the built-in; not a Lua function's). */
    int (*clone)(const cf_embedder *, cf_embedder **out, cf_err *err);
} cf_embedder_vt;

struct cf_embedder {
    const cf_embedder_vt *vt;
    const char *name;   /* "builtin", "noop", "http", "lua" */
    size_t batch;       /* texts per call the provider prefers */
};

static inline int cf_embed_batch(cf_embedder *e, const cf_str *texts, size_t n, const float **out,
                                 size_t *dim, cf_err *err)
{
    return e->vt->embed(e, texts, n, out, dim, err);
}

static inline void cf_embedder_free(cf_embedder *e)
{
    if (e)
        e->vt->destroy(e);
}

/* The reference's error when no provider is configured. */
#define CF_EMBED_NOT_CONFIGURED "embedding_client_not_configured"

/* Built-in embedder dimensions allowed. */
#define CF_EMBED_MIN_DIM 8
#define CF_EMBED_MAX_DIM 8192
#define CF_EMBED_DEFAULT_DIM 256

/* The built-in embedder as a pure function: lower-cased words (runs of
 * ASCII letters and digits, and of non-ASCII UTF-8) and the byte 3-, 4- and
 * 5-grams of "<word>" are hashed (FNV-1a, signed) into `dim` buckets, then
 * the vector is L2-normalised. Words are hashed independently, so word
 * order does not change the vector. An empty text gives the zero vector. */
void cf_embed_builtin(const char *s, size_t n, float *out, size_t dim);

/* The built-in embedder in two steps. cf_embed_builtin_counts gives each
 * slot's signed sum in halves (a word weighs 2, a gram 1), an exact
 * integer; cf_embed_lattice_normalize turns it into the vector, so
 * normalize(counts(s)) == cf_embed_builtin(s) bit for bit. A text past
 * CF_EMBED_MAX_TEXT bytes is embedded by its first CF_EMBED_MAX_TEXT bytes,
 * so no slot can overflow. */
#define CF_EMBED_MAX_TEXT ((size_t)1 << 28)
void cf_embed_builtin_counts(const char *s, size_t n, int32_t *m, size_t dim);
void cf_embed_lattice_normalize(const int32_t *m, float *out, size_t dim);

/* The built-in provider: a batch of 64 KB or more is cut into shares that
 * up to 4 threads embed at once, each keeping the features of the words
 * it has met (about 2 MB a thread); the vectors are cf_embed_builtin's,
 * bit for bit, whatever the threads and the caches. */
int cf_embedder_builtin_new(size_t dim, cf_embedder **out, cf_err *err);
int cf_embedder_noop_new(cf_embedder **out, cf_err *err);

#endif
