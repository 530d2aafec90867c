/*
 * Diverse selection over prompt embeddings, for the `diverse` curation
 * strategy. Both read the events through a light scan (cf_store.h) and
 * embed prompts in batches with any embedder (cf_embed.h).
 *
 * Farthest from the centroid (the reference's method): every prompt is
 * embedded once; the vectors go to a spill file (cf_vspill.h) while their
 * sum is taken, then are read back to rank each event by its Euclidean
 * distance from the mean, the file's parts by threads at once; a top-k
 * keeps the farthest. Memory stays O(k) whatever the number of events
 * (the file holds about n * (dim / 2 + id) bytes with the built-in
 * embedder's lattices, n * (dim * 4 + id) with floats).
 *
 * k-center (greedy farthest-point): a seeded uniform sample of at most
 * pool_size events is embedded (their prompts fetched by id); the first
 * pick is the sample's point farthest from the sample's centroid, each
 * next pick the point farthest from every pick so far. Cost O(pool * k *
 * dim). Selection stops early when every remaining point coincides with a
 * pick.
 *
 * Ties go to the event met first in the scan order of q.
 */
#ifndef CRUCIBLE_CF_DIVERSE_H
#define CRUCIBLE_CF_DIVERSE_H

#include "crucible/embed/cf_embed.h"
#include "crucible/store/cf_store.h"
#include "crucible/curate/cf_topk.h"

typedef struct cf_diverse_opts {
    size_t k;             /* picks wanted */
    size_t pool_size;     /* k-center: events sampled at most (0: 10000) */
    uint64_t seed;        /* k-center: the sample's generator */
    size_t batch_bytes;   /* prompt bytes per embedder call at most (0: 8 MiB) */
} cf_diverse_opts;

typedef struct cf_diverse_info {
    int64_t events;       /* events scanned */
    int64_t embedded;     /* prompts embedded */
    size_t dim;           /* embedding dimension (0: nothing embedded) */
} cf_diverse_info;

typedef struct cf_pick {
    char *id;
    double score;         /* k-center: distance to the nearest earlier pick (the first:
                             to the centroid) */
} cf_pick;

/* Farthest from the centroid: *out (free with cf_topk_free) holds at most
 * k events scored by their distance; -1 when the scan or the embedder
 * fails (err says which). */
int cf_diverse_farthest(cf_store *s, const cf_query *q, cf_embedder *e,
                        const cf_diverse_opts *o, cf_topk **out, cf_diverse_info *info,
                        cf_err *err);

/* k-center: *picks (free with cf_picks_free) in selection order. */
int cf_diverse_k_center(cf_store *s, const cf_query *q, cf_embedder *e,
                        const cf_diverse_opts *o, cf_pick **picks, size_t *npicks,
                        cf_diverse_info *info, cf_err *err);
void cf_picks_free(cf_pick *p, size_t n);

#endif
