/* The join's memory of stored events (cf_otlp_seen.h): a hash table
 * whose nodes also sit in a ring, oldest first, so the oldest one goes
 * when the table is full. */
#include "cf_otlp_seen.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct node {
    struct node *next;
    uint32_t hash;     /* the key's: most mismatches end without strcmp */
    const char *event; /* points into text, after the key's NUL */
    char text[];
} node;

struct cf_otlp_seen {
    size_t cap, count, head; /* head: the ring's oldest slot once full */
    size_t nbuckets;         /* a power of two */
    node **ring;
    node **buckets;
};

static uint32_t hash(const char *key)
{
    uint32_t h = 2166136261u;
    for (const char *p = key; *p; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    return h;
}

static node **slot(const cf_otlp_seen *s, const char *key, uint32_t h)
{
    node **n = &s->buckets[h & (s->nbuckets - 1)];
    while (*n && ((*n)->hash != h || strcmp((*n)->text, key) != 0))
        n = &(*n)->next;
    return n;
}

cf_otlp_seen *cf_otlp_seen_new(size_t cap)
{
    cf_otlp_seen *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->cap = cap ? cap : 1;
    s->nbuckets = 1;
    while (s->nbuckets < s->cap)
        s->nbuckets <<= 1;
    s->ring = calloc(s->cap, sizeof *s->ring);
    s->buckets = calloc(s->nbuckets, sizeof *s->buckets);
    if (!s->ring || !s->buckets) {
        cf_otlp_seen_free(s);
        return NULL;
    }
    return s;
}

void cf_otlp_seen_free(cf_otlp_seen *s)
{
    if (!s)
        return;
    for (size_t i = 0; s->ring && i < s->cap; i++)
        free(s->ring[i]);
    free(s->ring);
    free(s->buckets);
    free(s);
}

/* Forgets the oldest node (the table is full). */
static void evict(cf_otlp_seen *s)
{
    node *old = s->ring[s->head];
    node **n = slot(s, old->text, old->hash);
    *n = old->next;
    free(old);
    s->ring[s->head] = NULL;
    s->count--;
}

int cf_otlp_seen_put(cf_otlp_seen *s, const char *key, const char *event)
{
    uint32_t h = hash(key);
    if (*slot(s, key, h))
        return 0;
    size_t k = strlen(key), e = strlen(event);
    node *nd = malloc(sizeof *nd + k + e + 2);
    if (!nd)
        return -1;
    memcpy(nd->text, key, k + 1);
    memcpy(nd->text + k + 1, event, e + 1);
    nd->event = nd->text + k + 1;
    nd->hash = h;
    if (s->count == s->cap)
        evict(s);
    node **n = slot(s, key, h);
    nd->next = NULL;
    *n = nd;
    s->ring[s->head] = nd;
    s->head = (s->head + 1) % s->cap;
    s->count++;
    return 0;
}

const char *cf_otlp_seen_get(const cf_otlp_seen *s, const char *key)
{
    node *n = *slot(s, key, hash(key));
    return n ? n->event : NULL;
}
