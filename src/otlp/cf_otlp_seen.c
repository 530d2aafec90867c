/* The join's memory of stored events (cf_otlp_seen.h): a ring of nodes,
 * oldest first, so the oldest one goes when the ring is full, and an
 * open-addressing table over it (linear probing, at most half full) whose
 * slots hold each key's hash beside its place in the ring: a key looked
 * for touches one run of slots and only the nodes whose hash matches, and
 * forgetting the oldest finds its slot by its place, without reading the
 * other nodes. (A chained table read a node per link and per eviction:
 * cache misses on every span the OTLP route stores.) */
#include "cf_otlp_seen.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct node {
    const char *event; /* points into text, after the key's NUL */
    char text[];
} node;

typedef struct slot {
    uint32_t hash; /* the key's */
    uint32_t at;   /* its place in the ring + 1; 0: an empty slot */
} slot;

typedef struct ring_entry {
    node *n;
    uint32_t hash;
} ring_entry;

struct cf_otlp_seen {
    size_t cap, count, head; /* head: the ring's oldest place once full */
    size_t mask;             /* the table's size - 1: a power of two >= 2 * cap */
    ring_entry *ring;
    slot *table;
};

#define CAP_MAX ((size_t)1 << 30)

/* Eight bytes at a time, then mixed (the table indexes by the low bits). */
static uint32_t hash(const char *key, size_t n)
{
    uint64_t h = 0x9E3779B97F4A7C15ull ^ n;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t x;
        memcpy(&x, key + i, 8);
        h = (h ^ x) * 0xBF58476D1CE4E5B9ull;
        h ^= h >> 31;
    }
    uint64_t tail = 0;
    memcpy(&tail, key + i, n - i);
    h = (h ^ tail) * 0x94D049BB133111EBull;
    h ^= h >> 29;
    h *= 0xBF58476D1CE4E5B9ull;
    return (uint32_t)(h ^ (h >> 32));
}

/* The slot of key, or the empty slot ending its run (its at is 0). */
static size_t find(const cf_otlp_seen *s, const char *key, uint32_t h)
{
    size_t i = h & s->mask;
    for (; s->table[i].at; i = (i + 1) & s->mask)
        if (s->table[i].hash == h && strcmp(s->ring[s->table[i].at - 1].n->text, key) == 0)
            break;
    return i;
}

cf_otlp_seen *cf_otlp_seen_new(size_t cap)
{
    cap = cap ? cap : 1;
    if (cap > CAP_MAX)
        return NULL;
    cf_otlp_seen *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->cap = cap;
    size_t size = 2;
    while (size < 2 * cap)
        size <<= 1;
    s->mask = size - 1;
    s->ring = calloc(cap, sizeof *s->ring);
    s->table = calloc(size, sizeof *s->table);
    if (!s->ring || !s->table) {
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
        free(s->ring[i].n);
    free(s->ring);
    free(s->table);
    free(s);
}

/* Empties slot i, moving up the later slots of its run that may not be
 * left behind a hole (their probe starts at or before i). */
static void remove_slot(cf_otlp_seen *s, size_t i)
{
    for (size_t j = (i + 1) & s->mask; s->table[j].at; j = (j + 1) & s->mask) {
        size_t home = s->table[j].hash & s->mask;
        /* j stays when its home lies cyclically in (i, j] */
        int stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!stays) {
            s->table[i] = s->table[j];
            i = j;
        }
    }
    s->table[i].at = 0;
}

/* Forgets the oldest node (the ring is full). */
static void evict(cf_otlp_seen *s)
{
    ring_entry *old = &s->ring[s->head];
    size_t i = old->hash & s->mask;
    while (s->table[i].at != s->head + 1)
        i = (i + 1) & s->mask;
    remove_slot(s, i);
    free(old->n);
    old->n = NULL;
    s->count--;
}

int cf_otlp_seen_put(cf_otlp_seen *s, const char *key, const char *event)
{
    size_t k = strlen(key);
    uint32_t h = hash(key, k);
    if (s->table[find(s, key, h)].at)
        return 0;
    size_t e = strlen(event);
    node *nd = malloc(sizeof *nd + k + e + 2);
    if (!nd)
        return -1;
    memcpy(nd->text, key, k + 1);
    memcpy(nd->text + k + 1, event, e + 1);
    nd->event = nd->text + k + 1;
    if (s->count == s->cap)
        evict(s);
    size_t i = find(s, key, h); /* the eviction may have moved the run */
    s->ring[s->head] = (ring_entry){nd, h};
    s->table[i] = (slot){h, (uint32_t)(s->head + 1)};
    s->head = (s->head + 1) % s->cap;
    s->count++;
    return 0;
}

const char *cf_otlp_seen_get(const cf_otlp_seen *s, const char *key)
{
    uint32_t h = hash(key, strlen(key));
    size_t i = find(s, key, h);
    return s->table[i].at ? s->ring[s->table[i].at - 1].n->event : NULL;
}
