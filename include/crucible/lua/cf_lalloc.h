/* The Lua state's allocator: small blocks from per-size free lists. */
#ifndef CRUCIBLE_CF_LALLOC_H
#define CRUCIBLE_CF_LALLOC_H

#include <stddef.h>

/* Blocks up to this size are pooled; larger ones use realloc. */
#define CF_LALLOC_MAX 1024

struct cf_lalloc;

/* A new pool, held once by its creator. NULL when memory is exhausted. */
struct cf_lalloc *cf_lalloc_new(void);

/* The lua_Alloc function; its ud is a struct cf_lalloc. The pool frees
 * itself when its last block is freed and the creator's hold is dropped. */
void *cf_lalloc_f(void *ud, void *ptr, size_t osize, size_t nsize);

/* Drops the creator's hold: after lua_newstate, whether it succeeded or
 * not (a state that failed half-way has freed its blocks). */
void cf_lalloc_drop(struct cf_lalloc *a);

/* Slabs (64 KB each) the pool holds, spares included. */
size_t cf_lalloc_slabs(const struct cf_lalloc *a);

#endif
