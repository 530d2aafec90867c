/*
 * The insert calls above the vtable: required fields are checked and record
 * ids generated here, once, for every backend. A row reaches a backend's
 * insert with its id always set (the caller's or a fresh UUIDv7), so no
 * backend generates ids; the ids reported back come from here too.
 */
#include "crucible/store/cf_store.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "crucible/core/cf_buf.h"
#include "crucible/core/cf_uuid.h"

/* The id reported back for a row: at most 36 characters. */
static void report_id(cf_str id, char out[37])
{
    size_t n = id.n < 36 ? id.n : 36;
    memcpy(out, id.p, n);
    out[n] = '\0';
}

/* The id a row is written with: the caller's (*use = given; gen receives a
 * copy cut to 36 characters, to report back) or a fresh UUIDv7 in gen. */
static int take_id(cf_str given, char gen[37], cf_str *use, cf_err *err)
{
    if (given.p) {
        report_id(given, gen);
        *use = given;
        return 0;
    }
    if (cf_uuid7(gen))
        return cf_fail(err, CF_EIO, "cannot generate an id: the system random source failed");
    *use = (cf_str){gen, 36};
    return 0;
}

/* When some of the n rows (size bytes each, their id a cf_str at offset
 * off) have no id: *copy receives a malloc'd copy of them in which every
 * absent id is a fresh UUIDv7 held in *gen (free both). Else both stay NULL
 * and the rows are used as given. */
static int fill_ids(const void *rows, size_t n, size_t size, size_t off, void **copy,
                    char (**gen)[37], cf_err *err)
{
    *copy = NULL;
    *gen = NULL;
    size_t i = 0;
    while (i < n && ((const cf_str *)((const char *)rows + i * size + off))->p)
        i++;
    if (i == n)
        return 0;
    *copy = malloc(n * size);
    *gen = malloc(n * sizeof **gen);
    if (!*copy || !*gen) {
        free(*copy);
        free(*gen);
        *copy = NULL;
        *gen = NULL;
        return cf_fail(err, CF_ENOMEM, "out of memory giving %zu rows their ids", n);
    }
    memcpy(*copy, rows, n * size);
    for (; i < n; i++) {
        cf_str *id = (cf_str *)((char *)*copy + i * size + off);
        if (!id->p && take_id(*id, (*gen)[i], id, err)) {
            free(*copy);
            free(*gen);
            *copy = NULL;
            *gen = NULL;
            return -1;
        }
    }
    return 0;
}

int cf_store_insert_events(cf_store *s, const cf_event *ev, size_t n, char (*ids)[37],
                           unsigned char *dup, cf_err *err)
{
    void *copy;
    char(*gen)[37];
    if (dup && n)
        memset(dup, 0, n);
    if (fill_ids(ev, n, sizeof *ev, offsetof(cf_event, id), &copy, &gen, err))
        return -1;
    const cf_event *rows = copy ? copy : ev;
    int rc = s->vt->insert_events(s, rows, n, dup, err);
    for (size_t i = 0; rc >= 0 && ids && i < n; i++)
        report_id(rows[i].id, ids[i]);
    free(copy);
    free(gen);
    return rc;
}

/* Curated text is exported as it is stored: every text field of the n rows
 * must be UTF-8, or nothing is written (one row that is not would make every
 * export of its deployment fail). */
static int check_curated_utf8(const cf_curated *c, size_t n, cf_err *err)
{
    static const char *const names[] = {"id",     "inference_event_id", "deployment_id",
                                        "curation_source", "prompt", "response",
                                        "export_batch_id"};
    for (size_t i = 0; i < n; i++) {
        const cf_str f[] = {c[i].id,     c[i].inference_event_id, c[i].deployment_id,
                            c[i].curation_source, c[i].prompt, c[i].response,
                            c[i].export_batch_id};
        for (size_t k = 0; k < sizeof f / sizeof f[0]; k++) {
            size_t bad = f[k].p ? cf_utf8_check(f[k].p, f[k].n) : 0;
            if (f[k].p && bad != f[k].n)
                return cf_fail(err, CF_EINVAL,
                               "curated[%zu].%s: not valid UTF-8 (bad byte 0x%02x at offset %zu)",
                               i, names[k], (unsigned char)f[k].p[bad], bad);
        }
    }
    return 0;
}

int cf_store_insert_curated(cf_store *s, const cf_curated *c, size_t n, cf_err *err)
{
    void *copy;
    char(*gen)[37];
    if (check_curated_utf8(c, n, err)
        || fill_ids(c, n, sizeof *c, offsetof(cf_curated, id), &copy, &gen, err))
        return -1;
    int rc = s->vt->insert_curated(s, copy ? copy : c, n, err);
    free(copy);
    free(gen);
    return rc;
}

int cf_store_insert_curated_new(cf_store *s, const cf_curated *c, size_t n,
                                unsigned char *inserted, int64_t *count, cf_err *err)
{
    void *copy;
    char(*gen)[37];
    *count = 0;
    if (check_curated_utf8(c, n, err)
        || fill_ids(c, n, sizeof *c, offsetof(cf_curated, id), &copy, &gen, err))
        return -1;
    int rc = s->vt->insert_curated_new(s, copy ? copy : c, n, inserted, count, err);
    free(copy);
    free(gen);
    return rc;
}

/* A single row's insert: its id reported (when id is not NULL) on success. */
static int reported(int rc, const char gen[37], char id[37])
{
    if (rc == 0 && id)
        memcpy(id, gen, 37);
    return rc ? -1 : 0;
}

int cf_store_insert_signal(cf_store *s, const cf_signal *sig, char id[37], cf_err *err)
{
    if (!sig->inference_event_id.p)
        return cf_fail(err, CF_EINVAL, "signal.inference_event_id: missing required field");
    if (!sig->signal_type.p)
        return cf_fail(err, CF_EINVAL, "signal.signal_type: missing required field");
    cf_signal row = *sig;
    char gen[37];
    if (take_id(sig->id, gen, &row.id, err))
        return -1;
    return reported(s->vt->insert_signal(s, &row, err), gen, id);
}

int cf_store_insert_drift(cf_store *s, const cf_drift_result *d, char id[37], cf_err *err)
{
    if (!d->deployment_id.p || !d->drift_type.p)
        return cf_fail(err, CF_EINVAL, "drift result: deployment_id and drift_type are required");
    cf_drift_result row = *d;
    char gen[37];
    if (take_id(d->id, gen, &row.id, err))
        return -1;
    return reported(s->vt->insert_drift(s, &row, err), gen, id);
}

int cf_store_insert_trigger(cf_store *s, const cf_trigger_event *t, char id[37], cf_err *err)
{
    if (!t->deployment_id.p || !t->trigger_type.p)
        return cf_fail(err, CF_EINVAL,
                       "trigger event: deployment_id and trigger_type are required");
    cf_trigger_event row = *t;
    char gen[37];
    if (take_id(t->id, gen, &row.id, err))
        return -1;
    return reported(s->vt->insert_trigger(s, &row, err), gen, id);
}

int cf_store_insert_run(cf_store *s, const cf_workflow_run *r, char id[37], int *acquired,
                        cf_err *err)
{
    *acquired = 0;
    if (cf_workflow_run_check(r, 0, err))
        return -1;
    cf_workflow_run row = *r;
    char gen[37];
    if (take_id(r->id, gen, &row.id, err) || s->vt->insert_run(s, &row, acquired, err))
        return -1;
    if (id && *acquired)
        memcpy(id, gen, 37);
    return 0;
}
