/*
 * The driver of training pairs from user signals: the deployment's events
 * that have a signal the format needs stream oldest first with their
 * signals; the format's pair_line (cf_export_pairs_lines.c) makes each
 * event's line, if any, and the pairs written before are left out
 * (cf_export_pairs_mark.c). With no line to write nothing is written; once
 * the file is published the export's mark is recorded, and if that fails
 * the file is taken back.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crucible/export/cf_export.h"

#define PROGRESS_EVERY 4096

void cf_pairs_opts_init(cf_pairs_opts *o)
{
    memset(o, 0, sizeof *o);
    o->format = cf_exporter_first(CF_EXPORT_PAIRS);
    o->limit = -1;
    o->since = CF_NO_TIME;
    o->until = CF_NO_TIME;
}

/* Writes the line of every event of cur to out; counts lines, events and
 * the pairs left out as written before. */
static int pump(const cf_pairs_opts *o, cf_pairs_mark *m, cf_cursor *cur, cf_out *out,
                int64_t total, cf_export_result *res, int64_t *events, cf_err *err)
{
    cf_buf line = CF_BUF_INIT;
    cf_row row;
    int r, skipped;
    int64_t *lines = &res->count;
    while ((r = cf_cursor_next(cur, &row, err)) == 1) {
        line.n = 0;
        if (cf_pairs_mark_line(m, o, &row.event, &line, &skipped, err)) {
            r = -1;
            break;
        }
        res->already_exported += skipped;
        if (cf_buf_failed(&line)) {
            r = cf_fail(err, CF_ENOMEM, "out of memory");
            break;
        }
        if (line.n) {
            if ((r = cf_out_write(out, line.p, line.n, err)) != 0)
                break;
            (*lines)++;
        }
        (*events)++;
        if (o->progress && *events % PROGRESS_EVERY == 0 && *events != total)
            o->progress(o->progress_ud, *events, total, cf_out_bytes(out));
    }
    cf_buf_free(&line);
    return r < 0 ? -1 : 0;
}

/* The events of the deployment with a signal the format needs; with a
 * progress callback, *total is how many (else -1). */
static int pairs_query(cf_store *s, const cf_pairs_opts *o, cf_query *q, int64_t *total,
                       cf_err *err)
{
    cf_query_init(q);
    q->deployment_id = o->deployment_id;
    q->limit = o->limit;
    q->since = o->since;
    q->until = o->until;
    q->include_signals = 1;
    q->with_signal_types = o->format->signal_types;
    q->n_with_signal_types = o->format->n_signal_types;
    *total = -1;
    if (!o->progress)
        return 0;
    cf_query cq = *q;
    cq.include_signals = 0;
    if (cf_store_count(s, CF_KIND_EVENTS, &cq, total, err))
        return -1;
    if (o->limit >= 0 && *total > o->limit)
        *total = o->limit;
    return 0;
}

static int check_opts(const cf_pairs_opts *o, cf_err *err)
{
    if (!o->deployment_id.p)
        return cf_fail(err, CF_EINVAL, "deployment_id is required");
    if (cf_export_check_target(o->path, 0, o->mkdir, o->db_path, err))
        return -1;
    const cf_exporter *f = o->format;
    if (!f || f->kind != CF_EXPORT_PAIRS || !f->pair_line)
        return cf_fail(err, CF_EINVAL, "format '%s' is not a preference pair format",
                       f ? f->name : "(none)");
    return 0;
}

/* Publishes out and records the mark; takes the file back when the mark
 * cannot be recorded (a failure to do so joins err's message). */
static int publish(cf_store *s, const cf_pairs_opts *o, const cf_pairs_mark *m, cf_out *out,
                   cf_export_result *res, cf_err *err)
{
    if (cf_out_publish(out, o->unique ? CF_OUT_UNIQUE : CF_OUT_REPLACE, err))
        return -1;
    if (!(res->path = strdup(cf_export_to_stdout(o->path) ? "-" : out->path)))
        cf_fail(err, CF_ENOMEM, "out of memory");
    if (!res->path || cf_pairs_mark_commit(s, o, m, err)) {
        cf_err e2;
        if (cf_out_retract(out, &e2)) {
            size_t n = strlen(err->msg);
            snprintf(err->msg + n, sizeof err->msg - n, " (and %s)", e2.msg);
        }
        return -1;
    }
    cf_out_settle(out);
    return 0;
}

int cf_export_pairs(cf_store *s, const cf_pairs_opts *o, cf_export_result *res, cf_err *err)
{
    memset(res, 0, sizeof *res);
    if (check_opts(o, err))
        return -1;
    cf_query q;
    cf_pairs_mark m;
    int64_t total, events = 0;
    if (pairs_query(s, o, &q, &total, err) || cf_pairs_mark_begin(s, o, &m, err))
        return -1;
    cf_out out;
    cf_cursor *cur = NULL;
    int rc = -1;
    if (cf_export_open_out(&out, o->path, 0, err) ||
        cf_store_open_cursor(s, CF_KIND_EVENTS, &q, &cur, err) ||
        pump(o, &m, cur, &out, total, res, &events, err))
        goto done;
    cf_cursor_close(cur);
    cur = NULL;
    res->bytes = cf_out_bytes(&out);
    if (res->count == 0) { /* nothing new: nothing written, the path stays */
        res->bytes = 0;
        rc = 0;
        goto done;
    }
    if (publish(s, o, &m, &out, res, err))
        goto done;
    if (o->progress)
        o->progress(o->progress_ud, events, events, res->bytes); /* final */
    rc = 0;
done:
    if (cur)
        cf_cursor_close(cur);
    cf_out_abort(&out);
    cf_pairs_mark_free(&m);
    if (rc) {
        res->count = 0;
        cf_export_result_free(res);
    }
    return rc;
}
