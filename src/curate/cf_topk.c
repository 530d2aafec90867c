/* Top-k selection with a binary heap whose root is the worst kept item
 * (see cf_topk.h). */
#include "crucible/curate/cf_topk.h"

#include <stdlib.h>
#include <string.h>

struct cf_topk {
    size_t k;
    cf_topk_item *heap;
    size_t n, cap;
    uint64_t seen;
    int sorted; /* the array is sorted best first, not a heap */
};

cf_topk *cf_topk_new(size_t k)
{
    cf_topk *t = calloc(1, sizeof *t);
    if (t)
        t->k = k;
    return t;
}

void cf_topk_free(cf_topk *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n; i++)
        free(t->heap[i].id);
    free(t->heap);
    free(t);
}

/* a ranks below b: lower score, or the same score and arrived later. */
static int worse(const cf_topk_item *a, const cf_topk_item *b)
{
    return a->score < b->score || (a->score == b->score && a->seq > b->seq);
}

static void sift_up(cf_topk_item *h, size_t i)
{
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!worse(&h[i], &h[p]))
            break;
        cf_topk_item x = h[i];
        h[i] = h[p];
        h[p] = x;
        i = p;
    }
}

static void sift_down(cf_topk_item *h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && worse(&h[l], &h[m]))
            m = l;
        if (r < n && worse(&h[r], &h[m]))
            m = r;
        if (m == i)
            return;
        cf_topk_item x = h[i];
        h[i] = h[m];
        h[m] = x;
        i = m;
    }
}

static char *copy_id(cf_str id)
{
    char *p = malloc(id.n + 1);
    if (p) {
        if (id.n)
            memcpy(p, id.p, id.n);
        p[id.n] = '\0';
    }
    return p;
}

int cf_topk_push(cf_topk *t, cf_str id, double score)
{
    cf_topk_item it = {NULL, id.n, score, t->seen};
    if (t->sorted) {
        for (size_t i = t->n / 2; i-- > 0;)
            sift_down(t->heap, t->n, i);
        t->sorted = 0;
    }
    if (t->k == 0) {
        t->seen++;
        return 0;
    }
    if (t->n == t->k) {
        /* the newcomer arrived last: it enters only with a strictly higher score */
        if (!(score > t->heap[0].score)) {
            t->seen++;
            return 0;
        }
        if (!(it.id = copy_id(id)))
            return -1;
        free(t->heap[0].id);
        t->heap[0] = it;
        sift_down(t->heap, t->n, 0);
        t->seen++;
        return 1;
    }
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        if (cap > t->k)
            cap = t->k;
        cf_topk_item *h = realloc(t->heap, cap * sizeof *h);
        if (!h)
            return -1;
        t->heap = h;
        t->cap = cap;
    }
    if (!(it.id = copy_id(id)))
        return -1;
    t->heap[t->n] = it;
    sift_up(t->heap, t->n);
    t->n++;
    t->seen++;
    return 1;
}

size_t cf_topk_count(const cf_topk *t) { return t->n; }
uint64_t cf_topk_seen(const cf_topk *t) { return t->seen; }

static int best_first(const void *a, const void *b)
{
    const cf_topk_item *x = a, *y = b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

const cf_topk_item *cf_topk_sorted(cf_topk *t, size_t *n)
{
    /* the next push turns the array back into a heap */
    if (t->n && !t->sorted)
        qsort(t->heap, t->n, sizeof *t->heap, best_first);
    t->sorted = 1;
    *n = t->n;
    return t->heap;
}
