/*
 * The export driver: curated rows from a store cursor -> a row writer ->
 * temporary file, fsync, rename -> rows marked exported (one transaction)
 * -> on failure to mark, the published file is taken back.
 *
 * The rows are claimed first (cf_store_claim_curated), so that concurrent
 * exports of a deployment never write the same row, and the claim is
 * released at the end, whatever happened.
 *
 * Regenerating a batch's file (cf_export_opts.regenerate) reads the rows
 * exported with its batch id instead, and neither claims nor marks.
 *
 * The ids of the written rows go to an unlinked spill file (not a list in
 * memory), so marking a million rows costs no memory either.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crucible/core/cf_uuid.h"
#include "crucible/export/cf_export.h"

#define PROGRESS_EVERY 4096

void cf_export_opts_init(cf_export_opts *o)
{
    memset(o, 0, sizeof *o);
    o->format = cf_exporter_first(CF_EXPORT_CURATED);
    o->limit = -1;
    o->expect_rows = -1;
    cf_pq_opts_init(&o->parquet);
}

void cf_export_result_free(cf_export_result *r)
{
    free(r->path);
    r->path = NULL;
}

/* ---- the ids spill ---------------------------------------------------------- */

typedef struct spill {
    FILE *f;
    char *buf;
    size_t cap;
    int64_t n;
} spill;

static int spill_put(spill *sp, cf_str id, cf_err *err)
{
    uint32_t len = (uint32_t)id.n;
    if (fwrite(&len, sizeof len, 1, sp->f) != 1 || fwrite(id.p, 1, id.n, sp->f) != id.n)
        return cf_fail(err, CF_EIO, "cannot write the list of exported ids to a temporary file");
    sp->n++;
    return 0;
}

static int spill_next(void *ctx, cf_str *id, cf_err *err)
{
    spill *sp = ctx;
    uint32_t len;
    if (fread(&len, sizeof len, 1, sp->f) != 1)
        return feof(sp->f) ? 0 : cf_fail(err, CF_EIO, "cannot read the list of exported ids");
    if (len + 1 > sp->cap) {
        char *b = realloc(sp->buf, (size_t)len + 1);
        if (!b)
            return cf_fail(err, CF_ENOMEM, "out of memory");
        sp->buf = b;
        sp->cap = (size_t)len + 1;
    }
    if (fread(sp->buf, 1, len, sp->f) != len)
        return cf_fail(err, CF_EIO, "cannot read the list of exported ids");
    id->p = sp->buf;
    id->n = len;
    return 1;
}

/* ---- rows --------------------------------------------------------------------- */

/* 1 when a and b are the same bytes (NULL equals only NULL). */
static int same_str(cf_str a, cf_str b)
{
    if (!a.p || !b.p)
        return !a.p && !b.p;
    return a.n == b.n && (a.n == 0 || memcmp(a.p, b.p, a.n) == 0);
}

static int check_utf8(const cf_curated *c, const char *field, cf_str v, cf_err *err)
{
    if (!v.p)
        return 0;
    size_t at = cf_utf8_check(v.p, v.n);
    if (at == v.n)
        return 0;
    return cf_fail(err, CF_EINVAL,
                   "curated example '%.*s': %s is not valid UTF-8 (byte %lld); "
                   "exports hold text only",
                   (int)(c->id.n > 100 ? 100 : c->id.n), c->id.p ? c->id.p : "", field,
                   (long long)at);
}

static int to_row(const cf_curated *c, cf_export_row *r, cf_err *err)
{
    if (check_utf8(c, "prompt", c->prompt, err) || check_utf8(c, "response", c->response, err) ||
        check_utf8(c, "curation_source", c->curation_source, err) ||
        check_utf8(c, "inference_event_id", c->inference_event_id, err) ||
        check_utf8(c, "deployment_id", c->deployment_id, err))
        return -1;
    r->id = c->id;
    r->prompt = c->prompt;
    r->response = c->response;
    r->source = c->curation_source;
    r->score = c->curation_score;
    r->inference_event_id = c->inference_event_id;
    r->deployment_id = c->deployment_id;
    r->model_version_id = r->metadata = CF_NULL_STR;
    r->created_at = CF_NULL_INT;
    r->quality_score = NAN;
    for (size_t i = 0; i < CF_EXPORT_SIGNAL_TYPES; i++)
        r->signals[i] = CF_NULL_INT;
    return 0;
}

/* 1 when the rows need their inference event: a chosen column or the
 * format reads from it. */
static int need_event(const cf_export_opts *o)
{
    return o->format->needs_event ||
           (o->format->columns && cf_export_cols_need_event(&o->columns));
}

static uint64_t writer_bytes(cf_row_writer *w, const cf_out *out)
{
    return w->bytes ? w->bytes(w) : cf_out_bytes(out);
}

/* Writes every row of cursor c through w (with its inference event when
 * needed); ids to the spill. */
static int pump(cf_store *s, const cf_export_opts *o, cf_cursor *cur, cf_row_writer *w,
                spill *sp, cf_out *out, int64_t total, cf_err *err)
{
    cf_row row;
    cf_cursor *ev = NULL;
    int events = need_event(o), r;
    while ((r = cf_cursor_next(cur, &row, err)) == 1) {
        cf_export_row x;
        if (o->regenerate && !same_str(row.curated.export_batch_id, o->batch_id))
            continue; /* another batch's row */
        if (to_row(&row.curated, &x, err) || (events && cf_export_trace(s, &ev, &x, err)) ||
            w->row(w, &x, err) || spill_put(sp, x.id, err)) {
            r = -1;
            break;
        }
        if (o->progress && sp->n % PROGRESS_EVERY == 0 && sp->n != total)
            o->progress(o->progress_ud, sp->n, total, writer_bytes(w, out));
    }
    if (ev)
        cf_cursor_close(ev);
    return r;
}

/* ---- the export ------------------------------------------------------------- */

static int check_opts(const cf_export_opts *o, cf_err *err)
{
    if (!o->deployment_id.p)
        return cf_fail(err, CF_EINVAL, "deployment_id is required");
    if (!o->batch_id.p || o->batch_id.n == 0)
        return cf_fail(err, CF_EINVAL, "export_batch_id is required");
    if (o->batch_id.n > CF_EXPORT_BATCH_ID_MAX)
        return cf_fail(err, CF_EINVAL, "export_batch_id is longer than %d bytes",
                       CF_EXPORT_BATCH_ID_MAX);
    if (!o->path || !*o->path)
        return cf_fail(err, CF_EINVAL, "output_path is required");
    const cf_exporter *f = o->format;
    if (!f || f->kind != CF_EXPORT_CURATED || !f->open_writer)
        return cf_fail(err, CF_EINVAL, "format '%s' is not a format of curated examples",
                       f ? f->name : "(none)");
    if (o->regenerate && (o->unique || cf_export_to_stdout(o->path)))
        return cf_fail(err, CF_EINVAL,
                       "regenerating an export replaces its file: not standard output, "
                       "not a unique name");
    return 0;
}

/* Regenerating: the deployment's exported rows, of which pump writes
 * those of the batch; nothing is claimed. */
static void batch_rows(const cf_export_opts *o, cf_query *q)
{
    cf_query_init(q);
    q->deployment_id = o->deployment_id;
    q->exported = 1;
}

/* Claims the rows to export for this export alone (concurrent exports of
 * the deployment share them out, cf_store.h) under a fresh token; q reads
 * back just those, *total is how many. */
static int claim_rows(cf_store *s, const cf_export_opts *o, char token[CF_UUID_LEN + 1],
                      cf_query *q, int64_t *total, cf_err *err)
{
    if (cf_uuid7(token))
        return cf_fail(err, CF_EIO, "cannot generate an export claim id");
    cf_claim c = {o->deployment_id, cf_cstr(token), o->include_exported, o->limit,
                  cf_now_us() + CF_EXPORT_CLAIM_US};
    if (cf_store_claim_curated(s, &c, total, err))
        return -1;
    cf_query_init(q);
    q->deployment_id = o->deployment_id;
    q->claim = c.token;
    return 0;
}

/* Drops the claim (after marking, or after a failure: the rows are
 * exportable again). A failure to release leaves the claim to expire
 * (CF_EXPORT_CLAIM_US); after a failed export it joins err's message. */
static void release_rows(cf_store *s, const cf_export_opts *o, const char *token, int failed,
                         cf_err *err)
{
    cf_err e2;
    if (cf_store_release_curated_claim(s, o->deployment_id, cf_cstr(token), &e2) && failed &&
        err) {
        size_t n = strlen(err->msg);
        snprintf(err->msg + n, sizeof err->msg - n, " (and %s)", e2.msg);
    }
}

/* Writes the rows of q into out (opened, not published) with the
 * format's writer, their ids into sp; res->bytes. */
static int write_rows(cf_store *s, const cf_export_opts *o, const cf_query *q, int64_t total,
                      cf_out *out, spill *sp, cf_export_result *res, cf_err *err)
{
    cf_row_writer *w = NULL;
    cf_cursor *cur = NULL;
    int rc = -1;
    if (o->format->open_writer(&w, out, o, err))
        return -1;
    if (!(sp->f = tmpfile()))
        cf_fail(err, CF_EIO, "cannot create a temporary file for the exported ids");
    else if (cf_store_open_cursor(s, CF_KIND_CURATED, q, &cur, err) == 0 &&
             pump(s, o, cur, w, sp, out, total, err) == 0) {
        cf_cursor_close(cur);
        cur = NULL;
        if (w->finish(w, err) == 0) {
            res->bytes = writer_bytes(w, out);
            rc = 0;
        }
    }
    if (cur)
        cf_cursor_close(cur);
    w->destroy(w);
    return rc;
}

/* Marks the rows whose ids are in sp exported with the batch id. */
static int mark_rows(cf_store *s, const cf_export_opts *o, spill *sp, cf_export_result *res,
                     cf_err *err)
{
    if (sp->n == 0)
        return 0;
    if (fflush(sp->f) != 0 || fseek(sp->f, 0, SEEK_SET) != 0)
        return cf_fail(err, CF_EIO, "cannot read back the list of exported ids");
    return cf_store_mark_curated_exported_stream(s, spill_next, sp, o->batch_id, &res->marked,
                                                 err);
}

/* Nothing to write: the path is left alone; res says why (the rows
 * exported before, unless every row was asked for; the rows this export
 * could have claimed, which another export's live claim holds). */
static int nothing_new(cf_store *s, const cf_export_opts *o, const cf_query *q,
                       cf_export_result *res, cf_err *err)
{
    res->count = res->marked = 0;
    res->bytes = 0;
    res->already_exported = res->claimed_elsewhere = 0;
    cf_query rows = *q;
    rows.limit = -1;
    rows.claim = (cf_str){NULL, 0}; /* every row, not this export's claim */
    rows.exported = o->include_exported ? -1 : 0;
    if (o->limit != 0 && cf_store_count(s, CF_KIND_CURATED, &rows, &res->claimed_elsewhere, err))
        return -1;
    if (o->include_exported)
        return 0;
    rows.exported = 1;
    return cf_store_count(s, CF_KIND_CURATED, &rows, &res->already_exported, err);
}

/* Takes the published file back after marking failed (nothing was marked),
 * so that the final path does not hold rows the database still calls
 * unexported; a failure to do so joins err's message. */
static void retract(cf_out *out, cf_err *err)
{
    cf_err e2;
    if (cf_out_retract(out, &e2) && err) {
        size_t n = strlen(err->msg);
        snprintf(err->msg + n, sizeof err->msg - n, " (and %s)", e2.msg);
    }
}

/* Regenerating: the rows written (sp->n) must be the count expected;
 * then the new file replaces the old, which is dropped. */
static int publish_regenerated(const cf_export_opts *o, cf_out *out, const spill *sp,
                               cf_export_result *res, cf_err *err)
{
    if (o->expect_rows >= 0 && sp->n != o->expect_rows)
        return cf_fail(err, CF_EINVAL,
                       "batch '%.*s' has %lld rows in the database, %lld expected "
                       "(rows exported again in a later batch?): %s left as it was",
                       (int)o->batch_id.n, o->batch_id.p, (long long)sp->n,
                       (long long)o->expect_rows, o->path);
    if (cf_out_publish(out, CF_OUT_REPLACE, err))
        return -1;
    res->count = sp->n;
    if (!(res->path = strdup(out->path))) {
        cf_fail(err, CF_ENOMEM, "out of memory");
        retract(out, err); /* the old file back */
        return -1;
    }
    cf_out_settle(out);
    return 0;
}

int cf_export_curated(cf_store *s, const cf_export_opts *o, cf_export_result *res, cf_err *err)
{
    memset(res, 0, sizeof *res);
    cf_query q;
    int64_t total = -1;
    char token[CF_UUID_LEN + 1];
    if (check_opts(o, err) ||
        cf_export_check_target(o->path, o->format->directory, o->mkdir, o->db_path, err))
        return -1;
    if (o->regenerate)
        batch_rows(o, &q);
    else if (claim_rows(s, o, token, &q, &total, err))
        return -1;
    cf_out out;
    spill sp = {NULL, NULL, 0, 0};
    int rc = -1;
    if (cf_export_open_out(&out, o->path, o->format->directory, err))
        goto done;
    out.owns = o->format->owns;
    if (write_rows(s, o, &q, total, &out, &sp, res, err))
        goto done;
    if (o->regenerate) {
        rc = publish_regenerated(o, &out, &sp, res, err);
        goto done;
    }
    if (sp.n == 0) { /* not even an empty file: what the path holds stays */
        rc = nothing_new(s, o, &q, res, err);
        goto done;
    }
    if (cf_out_publish(&out, o->unique ? CF_OUT_UNIQUE : CF_OUT_REPLACE, err))
        goto done;
    res->count = sp.n;
    if (!(res->path = strdup(cf_export_to_stdout(o->path) ? "-" : out.path)))
        cf_fail(err, CF_ENOMEM, "out of memory");
    if (!res->path || mark_rows(s, o, &sp, res, err)) {
        retract(&out, err);
        goto done;
    }
    /* Marked: from here on the export stands. */
    cf_out_settle(&out);
    if (o->progress)
        o->progress(o->progress_ud, sp.n, sp.n, res->bytes); /* final: done == total */
    rc = 0;
done:
    if (!o->regenerate)
        release_rows(s, o, token, rc != 0, err);
    cf_out_abort(&out);
    if (sp.f)
        fclose(sp.f);
    free(sp.buf);
    if (rc) {
        res->count = res->marked = 0;
        cf_export_result_free(res);
    }
    return rc;
}
