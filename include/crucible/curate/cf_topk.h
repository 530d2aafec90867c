/*
 * Top-k selection: keeps the k items with the highest scores among any
 * number pushed, in O(k) memory and O(log k) per item that enters. Ties
 * keep the order of arrival (an item pushed earlier ranks first), which is
 * what a stable "sort by score, descending, take k" gives; curation
 * strategies select this way from streamed events.
 */
#ifndef CRUCIBLE_CF_TOPK_H
#define CRUCIBLE_CF_TOPK_H

#include "crucible/core/cf_common.h"

typedef struct cf_topk cf_topk;

typedef struct cf_topk_item {
    char *id;           /* NUL-terminated copy */
    size_t len;
    double score;
    uint64_t seq;       /* arrival number, from 0 */
} cf_topk_item;

/* k may be 0 (nothing is kept). NULL when out of memory. */
cf_topk *cf_topk_new(size_t k);
void cf_topk_free(cf_topk *t);

/* Offers an item (score must not be NaN). Returns 1 when kept, 0 when
 * not, -1 when out of memory (nothing changed). */
int cf_topk_push(cf_topk *t, cf_str id, double score);

size_t cf_topk_count(const cf_topk *t);  /* items kept */
uint64_t cf_topk_seen(const cf_topk *t); /* items pushed */

/* Sorts the kept items, best first (score descending, then arrival), and
 * returns them; valid until the next push or cf_topk_free. */
const cf_topk_item *cf_topk_sorted(cf_topk *t, size_t *n);

#endif
