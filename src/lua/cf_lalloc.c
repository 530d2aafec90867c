/* cf_lalloc: the allocator of the Lua state.
 *
 * Streaming stored rows into Lua makes and drops a table, a few short
 * strings and two 512-byte texts per row; the garbage collector frees them
 * in bursts of thousands. glibc keeps only seven freed blocks per size in
 * its thread cache, so most of those frees and the next allocations went
 * through its general bins (a tenth of a cursor's time). Here blocks of up
 * to CF_LALLOC_MAX bytes come from per-size free lists carved out of 64 KB
 * slabs; larger ones go to realloc.
 *
 * Lua tells the allocator the size of every block it frees or resizes, so
 * a block needs no header: its size class is the size Lua passes, and its
 * slab is found by masking its address. A slab serves one class and keeps
 * its own free list; a slab whose blocks are all free is kept as a spare
 * while there are fewer spares than slabs in use (or 16), and goes back to
 * the C library otherwise, so memory a burst took is returned after it. The pool closes itself: it counts live
 * blocks and frees what is left when the last one (the state's main block,
 * freed last by lua_close) goes, so lua_close, and os.exit's close, need
 * nothing more.
 *
 * Under AddressSanitizer free blocks and uncarved slab space are poisoned,
 * so a read of a freed Lua string or table is reported as with malloc. */
#include "crucible/lua/cf_lalloc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define GRAIN 16
#define NCLASS (CF_LALLOC_MAX / GRAIN)
#define SLAB_BYTES ((size_t)64 * 1024)

/* A slab serves one size class. It sits at a SLAB_BYTES-aligned address,
 * so a block finds its slab by masking its address. */
struct slab {
    struct slab *prev, *next; /* the class's slabs with room (listed) */
    void *free;               /* freed blocks, linked through their first word */
    char *bump, *end;         /* uncarved space */
    unsigned live;            /* blocks handed out */
    unsigned cls;
    int listed;
};

#define SLAB_HEAD (((sizeof(struct slab) + GRAIN - 1) / GRAIN) * GRAIN)
#define SPARE_MIN 16

struct cf_lalloc {
    struct slab *room[NCLASS]; /* per class: slabs with a free block or uncarved space */
    struct slab *spare;        /* empty slabs kept (linked through next): as many
                                * as are in use, or SPARE_MIN; the collector
                                * frees about as much as is live each cycle,
                                * and those blocks are soon wanted again */
    size_t nspare;
    size_t live;               /* blocks handed out and not freed, pooled or not */
    size_t slabs;              /* slabs held, spares included */
};

static size_t class_of(size_t size)
{
    return (size + GRAIN - 1) / GRAIN - 1;
}

static struct slab *slab_of(void *p)
{
    return (struct slab *)((uintptr_t)p & ~(uintptr_t)(SLAB_BYTES - 1));
}

static void destroy(struct cf_lalloc *a)
{
    /* every block is free: the slabs are the spares (and any listed) */
    while (a->spare) {
        struct slab *next;
        UNPOISON(a->spare, SLAB_HEAD);
        next = a->spare->next;
        UNPOISON(a->spare, SLAB_BYTES);
        free(a->spare);
        a->spare = next;
    }
    for (size_t c = 0; c < NCLASS; c++) {
        struct slab *s = a->room[c];
        while (s) {
            struct slab *next = s->next;
            UNPOISON(s, SLAB_BYTES);
            free(s);
            s = next;
        }
    }
    free(a);
}

static void list(struct cf_lalloc *a, struct slab *s)
{
    s->prev = NULL;
    s->next = a->room[s->cls];
    if (s->next)
        s->next->prev = s;
    a->room[s->cls] = s;
    s->listed = 1;
}

static void unlist(struct cf_lalloc *a, struct slab *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        a->room[s->cls] = s->next;
    if (s->next)
        s->next->prev = s->prev;
    s->listed = 0;
}

static struct slab *new_slab(struct cf_lalloc *a, size_t c)
{
    struct slab *s = a->spare;
    if (s) {
        UNPOISON(s, SLAB_HEAD);
        a->spare = s->next;
        a->nspare--;
    } else {
        s = aligned_alloc(SLAB_BYTES, SLAB_BYTES);
        if (!s)
            return NULL;
        a->slabs++;
    }
    s->free = NULL;
    s->bump = (char *)s + SLAB_HEAD;
    s->end = (char *)s + SLAB_BYTES;
    s->live = 0;
    s->cls = (unsigned)c;
    POISON(s->bump, SLAB_BYTES - SLAB_HEAD);
    list(a, s);
    return s;
}

static void *pool_get(struct cf_lalloc *a, size_t size)
{
    size_t c = class_of(size);
    size_t bytes = (c + 1) * GRAIN;
    struct slab *s = a->room[c];
    if (!s && !(s = new_slab(a, c)))
        return NULL;
    void *p = s->free;
    if (p) {
        UNPOISON(p, bytes);
        memcpy(&s->free, p, sizeof p);
    } else {
        p = s->bump;
        s->bump += bytes;
        UNPOISON(p, bytes);
    }
    s->live++;
    if (!s->free && (size_t)(s->end - s->bump) < bytes)
        unlist(a, s); /* full */
    return p;
}

static void pool_put(struct cf_lalloc *a, void *p)
{
    struct slab *s = slab_of(p);
    memcpy(p, &s->free, sizeof p);
    s->free = p;
    POISON(p, (s->cls + 1) * GRAIN);
    if (--s->live == 0) {
        /* empty: kept as a spare; spares beyond the slabs in use (and
         * SPARE_MIN) go back to the C library */
        if (s->listed)
            unlist(a, s);
        s->next = a->spare;
        a->spare = s;
        a->nspare++;
        POISON(s, SLAB_BYTES);
        while (a->nspare > SPARE_MIN && a->nspare > a->slabs - a->nspare) {
            struct slab *t = a->spare;
            UNPOISON(t, SLAB_BYTES);
            a->spare = t->next;
            a->nspare--;
            free(t);
            a->slabs--;
        }
    } else if (!s->listed) {
        list(a, s);
    }
}

static void release(struct cf_lalloc *a, void *p, size_t size)
{
    if (size <= CF_LALLOC_MAX)
        pool_put(a, p);
    else
        free(p);
}

static void *obtain(struct cf_lalloc *a, size_t size)
{
    return size <= CF_LALLOC_MAX ? pool_get(a, size) : malloc(size);
}

void *cf_lalloc_f(void *ud, void *ptr, size_t osize, size_t nsize)
{
    struct cf_lalloc *a = ud;
    if (ptr == NULL) {
        /* osize is the kind of object; nothing to release */
        if (nsize == 0)
            return NULL;
        void *p = obtain(a, nsize);
        if (p)
            a->live++;
        return p;
    }
    if (nsize == 0) {
        release(a, ptr, osize);
        if (--a->live == 0)
            destroy(a);
        return NULL;
    }
    if (osize > CF_LALLOC_MAX && nsize > CF_LALLOC_MAX)
        return realloc(ptr, nsize);
    if (osize <= CF_LALLOC_MAX && nsize <= CF_LALLOC_MAX && class_of(osize) == class_of(nsize))
        return ptr;
    /* Across classes, or across the pooled bound. A failure (NULL) leaves
     * the block as it was, which Lua 5.4 expects of a failed resize, a
     * shrink included: it keeps the block at its old size. */
    void *p = obtain(a, nsize);
    if (!p)
        return NULL;
    memcpy(p, ptr, osize < nsize ? osize : nsize);
    release(a, ptr, osize);
    return p;
}

struct cf_lalloc *cf_lalloc_new(void)
{
    struct cf_lalloc *a = calloc(1, sizeof *a);
    if (a)
        a->live = 1; /* the creator's hold, dropped by cf_lalloc_drop */
    return a;
}

void cf_lalloc_drop(struct cf_lalloc *a)
{
    if (--a->live == 0)
        destroy(a);
}

size_t cf_lalloc_slabs(const struct cf_lalloc *a)
{
    return a->slabs;
}
