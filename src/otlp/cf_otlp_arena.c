/* The bump allocator of the OTLP decoders (cf_otlp.h). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crucible/otlp/cf_otlp.h"

#define BLOCK (64 * 1024)

typedef struct block {
    struct block *next;
    size_t used, cap;
    max_align_t data[];
} block;

struct cf_otlp_arena {
    block *head;
};

cf_otlp_arena *cf_otlp_arena_new(void)
{
    return calloc(1, sizeof(cf_otlp_arena));
}

static block *new_block(size_t cap)
{
    if (cap > SIZE_MAX - sizeof(block))
        return NULL;
    block *b = malloc(sizeof(block) + cap);
    if (!b)
        return NULL;
    b->next = NULL;
    b->used = 0;
    b->cap = cap;
    return b;
}

void *cf_otlp_alloc(cf_otlp_arena *a, size_t n)
{
    const size_t align = sizeof(max_align_t);
    if (n == 0)
        n = 1;
    if (n > SIZE_MAX - align)
        return NULL;
    n = (n + align - 1) / align * align;
    block *b = a->head;
    if (!b || b->cap - b->used < n) {
        if (n > BLOCK / 4) {
            /* a large one gets its own block, behind the current one */
            block *big = new_block(n);
            if (!big)
                return NULL;
            big->used = n;
            if (b) {
                big->next = b->next;
                b->next = big;
            } else {
                a->head = big;
            }
            memset(big->data, 0, n);
            return big->data;
        }
        b = new_block(BLOCK);
        if (!b)
            return NULL;
        b->next = a->head;
        a->head = b;
    }
    void *p = (char *)b->data + b->used;
    b->used += n;
    memset(p, 0, n);
    return p;
}

void cf_otlp_arena_free(cf_otlp_arena *a)
{
    if (!a)
        return;
    for (block *b = a->head, *next; b; b = next) {
        next = b->next;
        free(b);
    }
    free(a);
}
