/*
 * Users forgotten while a pipeline runs (cf_forgotten.h): a hash table of
 * (user hash, deployment or every one) -> the time up to which their
 * events are dropped. Open addressing on the user hash, which is already
 * uniformly random (HMAC hex), at most half full.
 */
#include "cf_forgotten.h"

#include <stdlib.h>
#include <string.h>

typedef struct entry {
    char *hash;       /* NULL: empty slot */
    char *deployment; /* NULL: every deployment */
    int64_t until;
} entry;

struct cf_forgotten {
    entry *slot;
    size_t cap, n;
};

cf_forgotten *cf_forgotten_new(void)
{
    cf_forgotten *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->cap = 16;
    f->slot = calloc(f->cap, sizeof *f->slot);
    if (!f->slot) {
        free(f);
        return NULL;
    }
    return f;
}

void cf_forgotten_free(cf_forgotten *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->cap; i++) {
        free(f->slot[i].hash);
        free(f->slot[i].deployment);
    }
    free(f->slot);
    free(f);
}

size_t cf_forgotten_count(const cf_forgotten *f) { return f->n; }

static size_t hash_of(cf_str s)
{
    size_t h = 1469598103934665603u;
    for (size_t i = 0; i < s.n; i++)
        h = (h ^ (unsigned char)s.p[i]) * 1099511628211u;
    return h;
}

static int same(const char *z, cf_str s)
{
    if (!z || !s.p)
        return !z && !s.p;
    return strlen(z) == s.n && memcmp(z, s.p, s.n) == 0;
}

/* The slot of (hash, deployment), or the empty one where it would go. */
static entry *find(const cf_forgotten *f, cf_str hash, cf_str deployment)
{
    size_t i = hash_of(hash) & (f->cap - 1);
    while (f->slot[i].hash
           && !(same(f->slot[i].hash, hash) && same(f->slot[i].deployment, deployment)))
        i = (i + 1) & (f->cap - 1);
    return &f->slot[i];
}

static char *dup_str(cf_str s)
{
    char *z = malloc(s.n + 1);
    if (z) {
        memcpy(z, s.p, s.n);
        z[s.n] = '\0';
    }
    return z;
}

static int grow(cf_forgotten *f)
{
    cf_forgotten bigger = {calloc(f->cap * 2, sizeof *f->slot), f->cap * 2, f->n};
    if (!bigger.slot)
        return -1;
    for (size_t i = 0; i < f->cap; i++) {
        entry *e = &f->slot[i];
        if (!e->hash)
            continue;
        cf_str d = e->deployment ? (cf_str){e->deployment, strlen(e->deployment)} : (cf_str){0};
        *find(&bigger, (cf_str){e->hash, strlen(e->hash)}, d) = *e;
    }
    free(f->slot);
    *f = bigger;
    return 0;
}

int cf_forgotten_add(cf_forgotten *f, cf_str hash, cf_str deployment, int64_t until)
{
    if (!hash.p)
        return -1;
    if ((f->n + 1) * 2 > f->cap && grow(f))
        return -1;
    entry *e = find(f, hash, deployment);
    if (e->hash) {
        if (until > e->until)
            e->until = until;
        return 0;
    }
    char *h = dup_str(hash), *d = deployment.p ? dup_str(deployment) : NULL;
    if (!h || (deployment.p && !d)) {
        free(h);
        free(d);
        return -1;
    }
    *e = (entry){h, d, until};
    f->n++;
    return 0;
}

int cf_forgotten_has(const cf_forgotten *f, cf_str hash, cf_str deployment, int64_t at)
{
    if (f->n == 0 || !hash.p)
        return 0;
    const entry *any = find(f, hash, (cf_str){0});
    if (any->hash && at <= any->until)
        return 1;
    if (!deployment.p)
        return 0;
    const entry *one = find(f, hash, deployment);
    return one->hash && at <= one->until;
}
