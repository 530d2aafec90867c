/* cf_lalloc: the allocator of the Lua state.
 *
 * Streaming stored rows into Lua makes and drops a table, a few short
 * strings and two 512-byte texts per row; the garbage collector frees them
 * in bursts of thousands. glibc keeps only seven freed blocks per size in
 * its thread cache, so most of those frees and the next allocations went
 * through its general bins (a tenth of a cursor's time). Here blocks of up
 * to CF_LALLOC_MAX bytes come from per-size free lists carved out of 64 KB
 * slabs mapped from the kernel; larger ones go to realloc.
 *
 * Lua tells the allocator the size of every block it frees or resizes, so
 * a block needs no header: its size class is the size Lua passes, and its
 * slab is found by masking its address. A slab serves one class and keeps
 * its own free list. A slab whose blocks are all free becomes a spare;
 * spares beyond the number of slabs in use (and beyond 16) go back to the
 * kernel, so memory a burst took is returned after it. The pool closes
 * itself: it counts live blocks and frees what is left when the last one
 * (the state's main block, freed last by lua_close) goes, so lua_close,
 * and os.exit's close, need nothing more.
 *
 * Under AddressSanitizer free blocks and uncarved slab space are poisoned,
 * so a read of a freed Lua string or table is reported as with malloc. */
#include "crucible/lua/cf_lalloc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#if defined(__SANITIZE_ADDRESS__) /* gcc */
#define CF_ASAN 1
#elif defined(__has_feature)      /* clang */
#if __has_feature(address_sanitizer)
#define CF_ASAN 1
#endif
#endif
#ifdef CF_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/lsan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
/* LeakSanitizer scans malloc's heap, not our mappings: a slab is a root
 * region, so what Lua objects point to (a store's connection, a buffer)
 * is reachable through them, as it was through malloc'd blocks, when a
 * process exits without closing its state (os.exit(code, false)). */
#define ROOT(p, n) __lsan_register_root_region((p), (n))
#define UNROOT(p, n) __lsan_unregister_root_region((p), (n))
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#define ROOT(p, n) ((void)(p), (void)(n))
#define UNROOT(p, n) ((void)(p), (void)(n))
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

/* Slabs are mapped from the kernel, not taken from malloc: a slab given
 * back from the top of malloc's heap let it trim the space below (a
 * PostgreSQL result page freed there), and the next page faulted it all
 * in again, which tripled a PostgreSQL cursor's time. A 64 KB-aligned
 * slab is cut out of a mapping twice its size; its pages are faulted in
 * in one call where the kernel can (MADV_POPULATE_WRITE). */
static struct slab *map_slab(void)
{
    size_t len = 2 * SLAB_BYTES;
    char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    uintptr_t at = ((uintptr_t)p + SLAB_BYTES - 1) & ~(uintptr_t)(SLAB_BYTES - 1);
    size_t head = at - (uintptr_t)p, tail = len - head - SLAB_BYTES;
    if (head)
        munmap(p, head);
    if (tail)
        munmap((char *)at + SLAB_BYTES, tail);
#ifdef MADV_POPULATE_WRITE
    (void)madvise((void *)at, SLAB_BYTES, MADV_POPULATE_WRITE); /* faults on use otherwise */
#endif
    ROOT((void *)at, SLAB_BYTES);
    return (struct slab *)at;
}

static void unmap_slab(struct slab *s)
{
    UNROOT(s, SLAB_BYTES);
    UNPOISON(s, SLAB_BYTES);
    munmap(s, SLAB_BYTES);
}

static size_t class_of(size_t size)
{
    return (size + GRAIN - 1) / GRAIN - 1;
}

static struct slab *slab_of(void *p)
{
    return (struct slab *)((uintptr_t)p & ~(uintptr_t)(SLAB_BYTES - 1));
}

/* Every block is free, so every slab held is a spare (a slab becomes one
 * when its last block is freed). */
static void destroy(struct cf_lalloc *a)
{
    while (a->spare) {
        UNPOISON(a->spare, SLAB_HEAD);
        struct slab *next = a->spare->next;
        unmap_slab(a->spare);
        a->spare = next;
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
        s = map_slab();
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
         * SPARE_MIN) go back to the kernel */
        if (s->listed)
            unlist(a, s);
        s->next = a->spare;
        a->spare = s;
        a->nspare++;
        POISON(s, SLAB_BYTES);
        while (a->nspare > SPARE_MIN && a->nspare > a->slabs - a->nspare) {
            struct slab *t = a->spare;
            UNPOISON(t, SLAB_HEAD);
            a->spare = t->next;
            a->nspare--;
            unmap_slab(t);
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
