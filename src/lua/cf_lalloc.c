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
 * a block needs no header: its size class is the size Lua passes. Freed
 * small blocks stay in their lists for reuse and go back to the C library
 * only when the state closes. The state closes itself: the allocator
 * counts live blocks and frees its slabs when the last one (the state's
 * main block, freed last by lua_close) goes, so lua_close, and os.exit's
 * close, need nothing more.
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
#define SLAB_BYTES (64 * 1024)

struct slab {
    struct slab *next;
    /* blocks follow, aligned to GRAIN */
};

#define SLAB_HEAD (((sizeof(struct slab) + GRAIN - 1) / GRAIN) * GRAIN)

struct cf_lalloc {
    void *free_list[NCLASS]; /* free blocks of each class, linked through their first word */
    struct slab *slabs;
    char *bump;       /* uncarved space of the newest slab */
    size_t bump_left;
    size_t live;      /* blocks handed out and not freed, pooled or not */
    size_t slab_count;
};

static size_t class_of(size_t size)
{
    return (size + GRAIN - 1) / GRAIN - 1;
}

static void destroy(struct cf_lalloc *a)
{
    struct slab *s = a->slabs;
    while (s) {
        struct slab *next = s->next;
        UNPOISON(s, SLAB_BYTES);
        free(s);
        s = next;
    }
    free(a);
}

static void *pool_get(struct cf_lalloc *a, size_t size)
{
    size_t c = class_of(size);
    size_t bytes = (c + 1) * GRAIN;
    void *p = a->free_list[c];
    if (p) {
        UNPOISON(p, bytes);
        memcpy(&a->free_list[c], p, sizeof p);
        return p;
    }
    if (a->bump_left < bytes) {
        struct slab *s = malloc(SLAB_BYTES);
        if (!s)
            return NULL;
        s->next = a->slabs;
        a->slabs = s;
        a->slab_count++;
        a->bump = (char *)s + SLAB_HEAD;
        a->bump_left = SLAB_BYTES - SLAB_HEAD;
        POISON(a->bump, a->bump_left);
    }
    p = a->bump;
    a->bump += bytes;
    a->bump_left -= bytes;
    UNPOISON(p, bytes);
    return p;
}

static void pool_put(struct cf_lalloc *a, void *p, size_t size)
{
    size_t c = class_of(size);
    memcpy(p, &a->free_list[c], sizeof p);
    a->free_list[c] = p;
    POISON(p, (c + 1) * GRAIN);
}

static void release(struct cf_lalloc *a, void *p, size_t size)
{
    if (size <= CF_LALLOC_MAX)
        pool_put(a, p, size);
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
    if (osize > CF_LALLOC_MAX && nsize > CF_LALLOC_MAX) {
        void *p = realloc(ptr, nsize);
        /* Lua takes a failed shrink as success: the block keeps its place */
        return p ? p : nsize <= osize ? ptr : NULL;
    }
    if (osize <= CF_LALLOC_MAX && nsize <= CF_LALLOC_MAX && class_of(osize) == class_of(nsize))
        return ptr;
    void *p = obtain(a, nsize);
    if (!p) {
        /* A shrink must not fail. A pooled block keeps its place and is
         * later freed into the smaller class, which it is large enough for;
         * a malloc'd block freed later into a class stays there for reuse
         * and is not returned to the C library. */
        return nsize <= osize ? ptr : NULL;
    }
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
    return a->slab_count;
}
