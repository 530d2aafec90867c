/*
 * The report's curated examples, folded into its buckets as a cursor
 * streams them; the names (model versions, curation sources) kept
 * by the report; freeing.
 */
#include <stdlib.h>
#include <string.h>

#include "cf_report_int.h"

static int same(const cf_report_name *e, cf_str s)
{
    if (!e->name || !s.p)
        return !e->name && !s.p;
    return strlen(e->name) == s.n && memcmp(e->name, s.p, s.n) == 0;
}

static char *copy_str(cf_str s)
{
    char *p = malloc(s.n + 1);
    if (!p)
        return NULL;
    if (s.n)
        memcpy(p, s.p, s.n);
    p[s.n] = '\0';
    return p;
}

long cf_report_name_index(cf_report_name *names, size_t *n, cf_str name, int64_t t)
{
    size_t i = 0;
    while (i < *n && (names[i].other || !same(&names[i], name)))
        i++;
    if (i == *n) {
        i = *n < CF_REPORT_MAX_NAMES ? *n : CF_REPORT_MAX_NAMES;
        if (i == *n) {
            memset(&names[i], 0, sizeof names[i]);
            names[i].first_at = t;
            names[i].other = i == CF_REPORT_MAX_NAMES;
            if (!names[i].other && name.p && !(names[i].name = copy_str(name)))
                return -1;
            (*n)++;
        }
    }
    names[i].count++;
    if (t < names[i].first_at)
        names[i].first_at = t;
    return (long)i;
}

static void window_query(cf_query *q, const cf_report_opts *o, const cf_report *r)
{
    cf_query_init(q);
    q->deployment_id = o->deployment;
    q->since = r->since;
    q->until = r->until;
}

static int fold_curated(cf_store *s, const cf_report_opts *o, cf_report *r, cf_err *err)
{
    cf_query q;
    window_query(&q, o, r);
    cf_cursor *c;
    if (cf_store_open_cursor(s, CF_KIND_CURATED, &q, &c, err))
        return -1;
    cf_row row;
    int rc;
    while ((rc = cf_cursor_next(c, &row, err)) == 1) {
        long b = cf_report_bucket_of(r, row.curated.inserted_at);
        if (b < 0)
            continue;
        long i = cf_report_name_index(r->sources, &r->nsources, row.curated.curation_source,
                                      row.curated.inserted_at);
        if (i < 0) {
            cf_cursor_close(c);
            return cf_fail(err, CF_ENOMEM, "out of memory counting curated examples");
        }
        r->buckets[b].curated[i]++;
        r->curated++;
        if (row.curated.exported)
            r->exported++;
        else
            r->pending++;
    }
    cf_cursor_close(c);
    return rc < 0 ? -1 : 0;
}

int cf_report_fold_rows(cf_store *s, const cf_report_opts *o, cf_report *r, cf_err *err)
{
    int64_t *cells = calloc(r->nbuckets * (CF_REPORT_MAX_NAMES + 1), sizeof *cells);
    if (!cells)
        return cf_fail(err, CF_ENOMEM, "out of memory for the report's curation counts");
    for (size_t b = 0; b < r->nbuckets; b++)
        r->buckets[b].curated = cells + b * (CF_REPORT_MAX_NAMES + 1);
    if (fold_curated(s, o, r, err))
        return -1;
    return 0;
}

void cf_report_samples_free(cf_report_samples *sm, size_t nbuckets)
{
    for (size_t b = 0; sm->lat && b < nbuckets; b++)
        free(sm->lat[b].v);
    for (size_t b = 0; sm->qual && b < nbuckets; b++)
        free(sm->qual[b].v);
    free(sm->lat);
    free(sm->qual);
    free(sm->all_lat.v);
    free(sm->all_q.v);
}

void cf_report_free(cf_report *r)
{
    if (r->nbuckets && r->buckets)
        free(r->buckets[0].curated);
    free(r->buckets);
    free(r->v_events);
    free(r->v_scored);
    free(r->v_qsum);
    for (size_t i = 0; i < r->nversions; i++)
        free(r->versions[i].name);
    for (size_t i = 0; i < r->nsources; i++)
        free(r->sources[i].name);
    for (size_t i = 0; i < r->nlowest; i++)
        free(r->lowest[i].id);
    memset(r, 0, sizeof *r);
}
