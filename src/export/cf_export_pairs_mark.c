/*
 * What preference pair exports have written (see cf_pairs_mark in
 * cf_export.h): a time mark per deployment and format in the store's
 * settings, so that a scheduled pairs export does not write the same pairs
 * again. The format's pair_line decides what a pair is: an event's pair
 * is new when the line made from the signals recorded before this export
 * differs from the line made from those recorded before the mark.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crucible/export/cf_export.h"

/* "export.pairs.<format>.<deployment>", malloc'd. */
static char *mark_key(const cf_pairs_opts *o, cf_err *err)
{
    static const char prefix[] = "export.pairs.";
    size_t nf = strlen(o->format->name), n = sizeof prefix - 1 + nf + 1 + o->deployment_id.n;
    char *k = malloc(n + 1);
    if (!k) {
        cf_fail(err, CF_ENOMEM, "out of memory");
        return NULL;
    }
    memcpy(k, prefix, sizeof prefix - 1);
    memcpy(k + sizeof prefix - 1, o->format->name, nf);
    k[sizeof prefix - 1 + nf] = '.';
    memcpy(k + sizeof prefix + nf, o->deployment_id.p, o->deployment_id.n);
    k[n] = '\0';
    return k;
}

int cf_pairs_mark_begin(cf_store *s, const cf_pairs_opts *o, cf_pairs_mark *m, cf_err *err)
{
    memset(m, 0, sizeof *m);
    m->since = CF_NO_TIME;
    m->now = cf_now_us();
    if (o->include_exported)
        return 0;
    char *key = mark_key(o, err), *v = NULL;
    if (!key || cf_store_kv_get(s, key, &v, err)) {
        free(key);
        return -1;
    }
    free(key);
    if (v) {
        char *end;
        long long t = strtoll(v, &end, 10);
        if (end != v && *end == '\0')
            m->since = (int64_t)t;
        free(v);
    }
    return 0;
}

/* e with only its signals recorded before t, into *out (signals in m). */
static int signals_before(cf_pairs_mark *m, const cf_event *e, int64_t t, cf_event *out,
                          cf_err *err)
{
    *out = *e;
    if (e->nsignals > m->cap) {
        cf_signal *g = realloc(m->sigs, e->nsignals * sizeof *g);
        if (!g)
            return cf_fail(err, CF_ENOMEM, "out of memory");
        m->sigs = g;
        m->cap = e->nsignals;
    }
    size_t n = 0;
    for (size_t i = 0; i < e->nsignals; i++)
        if (e->signals[i].inserted_at < t)
            m->sigs[n++] = e->signals[i];
    out->signals = m->sigs;
    out->nsignals = n;
    return 0;
}

int cf_pairs_mark_line(cf_pairs_mark *m, const cf_pairs_opts *o, const cf_event *e, cf_buf *b,
                       int *skipped, cf_err *err)
{
    cf_event v;
    *skipped = 0;
    if (signals_before(m, e, m->now, &v, err) || o->format->pair_line(&v, b, err))
        return -1;
    if (b->n == 0 || m->since == CF_NO_TIME)
        return 0;
    m->old.n = 0;
    if (signals_before(m, e, m->since, &v, err) || o->format->pair_line(&v, &m->old, err))
        return -1;
    if (cf_buf_failed(&m->old))
        return cf_fail(err, CF_ENOMEM, "out of memory");
    if (m->old.n == b->n && memcmp(m->old.p, b->p, b->n) == 0) {
        *skipped = 1;
        b->n = 0;
    }
    return 0;
}

int cf_pairs_mark_commit(cf_store *s, const cf_pairs_opts *o, const cf_pairs_mark *m,
                         cf_err *err)
{
    if (o->limit >= 0 || o->since != CF_NO_TIME || o->until != CF_NO_TIME)
        return 0; /* not every event was looked at: the mark stays */
    char *key = mark_key(o, err);
    if (!key)
        return -1;
    char v[32];
    int n = snprintf(v, sizeof v, "%" PRId64, m->now);
    int rc = cf_store_kv_set(s, key, (cf_str){v, (size_t)n}, err);
    free(key);
    return rc;
}

void cf_pairs_mark_free(cf_pairs_mark *m)
{
    free(m->sigs);
    cf_buf_free(&m->old);
    m->sigs = NULL;
    m->cap = 0;
}
