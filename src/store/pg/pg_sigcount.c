/*
 * PostgreSQL backend: the signal counts of a whole light scan, read up
 * front in one grouped query and kept in a hash table by event id (only
 * the events that have signals), so the scan's pages read the events
 * alone instead of counting each event's signals in a lateral subquery
 * (a probe of the user_signals_event index and an aggregate per event:
 * most of a full scan's time on the server).
 */
#include "pg_int.h"

#include <stdlib.h>
#include <string.h>

static uint64_t hash_id(cf_str id)
{
    uint64_t h = UINT64_C(1469598103934665603);
    for (size_t i = 0; i < id.n; i++) {
        h ^= (unsigned char)id.p[i];
        h *= UINT64_C(1099511628211);
    }
    return h | 1; /* 0 marks an empty slot */
}

static pg_sc_slot *find(const pg_sigcounts *m, cf_str id, uint64_t h)
{
    for (size_t i = h & m->mask;; i = (i + 1) & m->mask) {
        pg_sc_slot *s = &m->slots[i];
        if (s->h == 0
            || (s->h == h && s->len == id.n && memcmp(m->keys.p + s->off, id.p, id.n) == 0))
            return s;
    }
}

/* Doubles the table (or makes the first one). */
static int grow(pg_sigcounts *m)
{
    size_t cap = m->slots ? (m->mask + 1) * 2 : 1024;
    pg_sc_slot *old = m->slots;
    size_t old_cap = old ? m->mask + 1 : 0;
    m->slots = calloc(cap, sizeof *m->slots);
    if (!m->slots) {
        m->slots = old;
        return -1;
    }
    m->mask = cap - 1;
    for (size_t i = 0; i < old_cap; i++) {
        if (!old[i].h)
            continue;
        size_t j = old[i].h & m->mask;
        while (m->slots[j].h)
            j = (j + 1) & m->mask;
        m->slots[j] = old[i];
    }
    free(old);
    return 0;
}

/* Adds n signals of kind k to id's counts. */
static int add(pg_sigcounts *m, cf_str id, int k, uint32_t n)
{
    if ((m->n + 1) * 2 > m->mask + 1 && grow(m))
        return -1;
    uint64_t h = hash_id(id);
    pg_sc_slot *s = find(m, id, h);
    if (!s->h) {
        if (m->keys.n + id.n > UINT32_MAX || id.n > UINT32_MAX)
            return -1;
        s->h = h;
        s->off = (uint32_t)m->keys.n;
        s->len = (uint32_t)id.n;
        if (cf_buf_append(&m->keys, id.p, id.n))
            return -1;
        m->n++;
    }
    s->c[k] += n;
    return 0;
}

typedef struct load_arg {
    const char *sql;
    const pg_params *p;
    PGresult *res;
} load_arg;

static int load_op(pg_store *s, void *arg, int attempt, cf_err *err)
{
    (void)attempt;
    load_arg *a = arg;
    a->res = pg_exec(s, a->sql, a->p, "counting signals", err);
    return a->res ? 0 : -1;
}

int pg_sigcounts_load(pg_store *s, const char *sql, const pg_params *p, pg_sigcounts *m,
                      cf_err *err)
{
    memset(m, 0, sizeof *m);
    load_arg a = {sql, p, NULL};
    if (pg_retry(s, load_op, &a, err))
        return -1;
    int rc = grow(m);
    for (int i = 0; !rc && i < PQntuples(a.res); i++) {
        int64_t k = pg_col_int(a.res, i, 1), n = pg_col_int(a.res, i, 2);
        if (k < 0 || k >= CF_SIG_COUNT_ || n < 0 || n > UINT32_MAX)
            k = CF_SIG_OTHER;
        rc = add(m, pg_col_str(a.res, i, 0), (int)k, (uint32_t)n);
    }
    PQclear(a.res);
    if (rc) {
        pg_sigcounts_free(m);
        return cf_fail(err, CF_ENOMEM, "out of memory counting signals");
    }
    return 0;
}

const uint32_t *pg_sigcounts_get(const pg_sigcounts *m, cf_str id)
{
    if (!m->slots || !id.p)
        return NULL;
    const pg_sc_slot *s = find(m, id, hash_id(id));
    return s->h ? s->c : NULL;
}

void pg_sigcounts_free(pg_sigcounts *m)
{
    free(m->slots);
    cf_buf_free(&m->keys);
    memset(m, 0, sizeof *m);
}
