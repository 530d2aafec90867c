/*
 * The export driver: curated rows from a store cursor -> a row writer ->
 * temporary file, fsync, rename -> rows marked exported (one transaction)
 * -> on failure to mark, the published file is taken back.
 *
 * The ids of the written rows go to an unlinked spill file (not a list in
 * memory), so marking a million rows costs no memory either.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crucible/export/cf_export.h"

#define PROGRESS_EVERY 4096

void cf_export_opts_init(cf_export_opts *o)
{
    memset(o, 0, sizeof *o);
    o->limit = -1;
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
    return 0;
}

static void describe_filters(const cf_export_opts *o, char *buf, size_t cap)
{
    int n = snprintf(buf, cap, "%s",
                     o->include_exported ? "every curated example, exported before or not"
                                         : "curated examples not exported before");
    if (o->limit >= 0 && n > 0 && (size_t)n < cap)
        snprintf(buf + n, cap - (size_t)n, "; at most %lld", (long long)o->limit);
}

/* Writes every row of cursor c through w; ids to the spill. */
static int pump(const cf_export_opts *o, cf_cursor *cur, cf_row_writer *w, spill *sp,
                cf_out *out, int64_t total, cf_err *err)
{
    cf_row row;
    int r;
    while ((r = cf_cursor_next(cur, &row, err)) == 1) {
        cf_export_row x;
        if (to_row(&row.curated, &x, err) || w->row(w, &x, err) || spill_put(sp, x.id, err))
            return -1;
        if (o->progress && sp->n % PROGRESS_EVERY == 0 && sp->n != total)
            o->progress(o->progress_ud, sp->n, total,
                        o->format == CF_EXPORT_HF ? cf_hf_bytes(w) : cf_out_bytes(out));
    }
    return r;
}

int cf_export_curated(cf_store *s, const cf_export_opts *o, cf_export_result *res, cf_err *err)
{
    memset(res, 0, sizeof *res);
    if (!o->deployment_id.p)
        return cf_fail(err, CF_EINVAL, "deployment_id is required");
    if (!o->batch_id.p || o->batch_id.n == 0)
        return cf_fail(err, CF_EINVAL, "export_batch_id is required");
    if (!o->path || !*o->path)
        return cf_fail(err, CF_EINVAL, "output_path is required");
    cf_query q;
    cf_query_init(&q);
    q.deployment_id = o->deployment_id;
    q.exported = o->include_exported ? -1 : 0;
    q.limit = o->limit;
    int64_t total = -1;
    if (o->progress) {
        if (cf_store_count(s, CF_KIND_CURATED, &q, &total, err))
            return -1;
        if (o->limit >= 0 && total > o->limit)
            total = o->limit;
    }

    int is_dir = o->format == CF_EXPORT_HF;
    cf_out out;
    cf_row_writer *w = NULL;
    cf_cursor *cur = NULL;
    spill sp = {NULL, NULL, 0, 0};
    int rc = -1, published = 0;
    if (is_dir ? cf_out_open_dir(&out, o->path, err) : cf_out_open(&out, o->path, err))
        goto done;
    switch (o->format) {
    case CF_EXPORT_JSONL:
        rc = cf_jsonl_writer(&w, &out, err);
        break;
    case CF_EXPORT_CSV:
        rc = cf_csv_writer(&w, &out, err);
        break;
    case CF_EXPORT_PARQUET:
        rc = cf_parquet_row_writer(&w, &out, &o->parquet, 0, err);
        break;
    case CF_EXPORT_HF: {
        char filters[160];
        describe_filters(o, filters, sizeof filters);
        cf_hf_info info = {o->deployment_id, o->export_time_us ? o->export_time_us : cf_now_us(),
                           filters, o->batch_id};
        rc = cf_hf_writer(&w, out.tmp, &o->parquet, &info, err);
        break;
    }
    default:
        rc = cf_fail(err, CF_EINVAL, "unknown export format %d", (int)o->format);
    }
    if (rc)
        goto done;
    rc = -1;
    if (!(sp.f = tmpfile())) {
        cf_fail(err, CF_EIO, "cannot create a temporary file for the exported ids");
        goto done;
    }
    if (cf_store_open_cursor(s, CF_KIND_CURATED, &q, &cur, err) ||
        pump(o, cur, w, &sp, &out, total, err))
        goto done;
    cf_cursor_close(cur);
    cur = NULL;
    if (w->finish(w, err))
        goto done;
    res->bytes = is_dir ? cf_hf_bytes(w) : cf_out_bytes(&out);
    w->destroy(w);
    w = NULL;
    if (cf_out_publish(&out, o->unique ? CF_OUT_UNIQUE : CF_OUT_REPLACE, err))
        goto done;
    published = 1;
    res->count = sp.n;
    if (!(res->path = strdup(out.path))) {
        cf_fail(err, CF_ENOMEM, "out of memory");
        goto done;
    }
    if (sp.n > 0) {
        if (fflush(sp.f) != 0 || fseek(sp.f, 0, SEEK_SET) != 0) {
            cf_fail(err, CF_EIO, "cannot read back the list of exported ids");
            goto done;
        }
        if (cf_store_mark_curated_exported_stream(s, spill_next, &sp, o->batch_id, &res->marked,
                                                  err))
            goto done;
    }
    /* Marked: from here on the export stands. */
    cf_out_settle(&out);
    if (o->progress)
        o->progress(o->progress_ud, sp.n, sp.n, res->bytes); /* final: done == total */
    published = 0;
    rc = 0;
done:
    if (rc && published) {
        /* Nothing was marked: take the file back so that the final path
         * does not hold rows the database still calls unexported. */
        cf_err e2;
        if (cf_out_retract(&out, &e2) && err) {
            size_t n = strlen(err->msg);
            snprintf(err->msg + n, sizeof err->msg - n, " (and %s)", e2.msg);
        }
    }
    if (cur)
        cf_cursor_close(cur);
    if (w)
        w->destroy(w);
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
