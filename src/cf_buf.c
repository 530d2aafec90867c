/* Growable byte buffer (see cf_buf.h). */
#include "crucible/cf_buf.h"

#include <stdlib.h>

int cf_buf_grow(cf_buf *b, size_t extra)
{
    if (b->oom)
        return -1;
    if (extra > SIZE_MAX - b->n) {
        b->oom = 1;
        return -1;
    }
    size_t need = b->n + extra, cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    unsigned char *p = realloc(b->p, cap);
    if (!p) {
        b->oom = 1;
        return -1;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

void cf_buf_free(cf_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->n = b->cap = 0;
    b->oom = 0;
}
