/*
 * Training pairs from user signals, one JSON object per line:
 *   dpo     {"prompt", "chosen": edited response, "rejected": original}
 *           (TRL's DPO trainer), from each event's first edit signal
 *   openai  {"messages": [{"role":"user",...}, {"role":"assistant",...}]}
 *           with the edited response (supervised fine-tuning)
 *   kto     {"prompt", "completion": response, "label": true|false} from
 *           the event's latest thumbs_up / thumbs_down signal
 * Events stream oldest first with their signals; an edit identical to the
 * original response is no preference and is skipped.
 */
#include <stdlib.h>
#include <string.h>

#include "crucible/export/cf_export.h"

#define PROGRESS_EVERY 4096

void cf_pairs_opts_init(cf_pairs_opts *o)
{
    memset(o, 0, sizeof *o);
    o->limit = -1;
    o->since = CF_NO_TIME;
    o->until = CF_NO_TIME;
}

static int is(cf_str s, const char *lit)
{
    size_t n = strlen(lit);
    return s.p && s.n == n && memcmp(s.p, lit, n) == 0;
}

static int check(const cf_event *e, const char *field, cf_str v, cf_err *err)
{
    size_t at = cf_utf8_check(v.p, v.n);
    if (at == v.n)
        return 0;
    return cf_fail(err, CF_EINVAL, "inference event '%.*s': %s is not valid UTF-8 (byte %lld)",
                   (int)(e->id.n > 100 ? 100 : e->id.n), e->id.p, field, (long long)at);
}

/* The line for one event into b (left empty when the event gives none). */
static int pair_line(cf_pairs_format f, const cf_event *e, cf_buf *b, cf_err *err)
{
    b->n = 0;
    const cf_signal *pick = NULL;
    for (size_t i = 0; i < e->nsignals; i++) {
        const cf_signal *g = &e->signals[i];
        if (f == CF_PAIRS_KTO) {
            if (is(g->signal_type, "thumbs_up") || is(g->signal_type, "thumbs_down"))
                pick = g; /* the latest one wins */
        } else if (is(g->signal_type, "edit") && g->edited_response.p) {
            pick = g;
            break;
        }
    }
    if (!pick)
        return 0;
    if (check(e, "prompt", e->prompt, err) || check(e, "response", e->response, err))
        return -1;
    if (f == CF_PAIRS_KTO) {
        cf_buf_str(b, "{\"prompt\":");
        cf_buf_json_string(b, e->prompt.p, e->prompt.n);
        cf_buf_str(b, ",\"completion\":");
        cf_buf_json_string(b, e->response.p, e->response.n);
        cf_buf_str(b, is(pick->signal_type, "thumbs_up") ? ",\"label\":true}\n"
                                                          : ",\"label\":false}\n");
        return 0;
    }
    cf_str edited = pick->edited_response;
    if (edited.n == e->response.n && memcmp(edited.p, e->response.p, edited.n) == 0)
        return 0;
    if (check(e, "edited_response", edited, err))
        return -1;
    if (f == CF_PAIRS_DPO) {
        cf_buf_str(b, "{\"prompt\":");
        cf_buf_json_string(b, e->prompt.p, e->prompt.n);
        cf_buf_str(b, ",\"chosen\":");
        cf_buf_json_string(b, edited.p, edited.n);
        cf_buf_str(b, ",\"rejected\":");
        cf_buf_json_string(b, e->response.p, e->response.n);
        cf_buf_str(b, "}\n");
    } else {
        cf_buf_str(b, "{\"messages\":[{\"role\":\"user\",\"content\":");
        cf_buf_json_string(b, e->prompt.p, e->prompt.n);
        cf_buf_str(b, "},{\"role\":\"assistant\",\"content\":");
        cf_buf_json_string(b, edited.p, edited.n);
        cf_buf_str(b, "}]}\n");
    }
    return 0;
}

int cf_export_pairs(cf_store *s, const cf_pairs_opts *o, cf_export_result *res, cf_err *err)
{
    memset(res, 0, sizeof *res);
    if (!o->deployment_id.p)
        return cf_fail(err, CF_EINVAL, "deployment_id is required");
    if (!o->path || !*o->path)
        return cf_fail(err, CF_EINVAL, "output_path is required");
    if (o->format != CF_PAIRS_DPO && o->format != CF_PAIRS_KTO && o->format != CF_PAIRS_OPENAI)
        return cf_fail(err, CF_EINVAL, "unknown preference pair format %d", (int)o->format);
    static const cf_str edit[] = {{"edit", 4}};
    static const cf_str thumbs[] = {{"thumbs_up", 9}, {"thumbs_down", 11}};
    cf_query q;
    cf_query_init(&q);
    q.deployment_id = o->deployment_id;
    q.limit = o->limit;
    q.since = o->since;
    q.until = o->until;
    q.include_signals = 1;
    q.with_signal_types = o->format == CF_PAIRS_KTO ? thumbs : edit;
    q.n_with_signal_types = o->format == CF_PAIRS_KTO ? 2 : 1;
    int64_t total = -1;
    if (o->progress) {
        cf_query cq = q;
        cq.include_signals = 0;
        if (cf_store_count(s, CF_KIND_EVENTS, &cq, &total, err))
            return -1;
        if (o->limit >= 0 && total > o->limit)
            total = o->limit;
    }
    cf_out out;
    cf_cursor *cur = NULL;
    cf_buf line = CF_BUF_INIT;
    int rc = -1;
    int64_t events = 0;
    if (cf_out_open(&out, o->path, err) || cf_store_open_cursor(s, CF_KIND_EVENTS, &q, &cur, err))
        goto done;
    cf_row row;
    int r;
    while ((r = cf_cursor_next(cur, &row, err)) == 1) {
        if (pair_line(o->format, &row.event, &line, err))
            goto done;
        if (cf_buf_failed(&line)) {
            cf_fail(err, CF_ENOMEM, "out of memory");
            goto done;
        }
        if (line.n) {
            if (cf_out_write(&out, line.p, line.n, err))
                goto done;
            res->count++;
        }
        events++;
        if (o->progress && events % PROGRESS_EVERY == 0 && events != total)
            o->progress(o->progress_ud, events, total, cf_out_bytes(&out));
    }
    if (r < 0)
        goto done;
    cf_cursor_close(cur);
    cur = NULL;
    res->bytes = cf_out_bytes(&out);
    if (cf_out_publish(&out, o->unique ? CF_OUT_UNIQUE : CF_OUT_REPLACE, err))
        goto done;
    cf_out_settle(&out);
    if (!(res->path = strdup(out.path))) {
        cf_fail(err, CF_ENOMEM, "out of memory");
        goto done;
    }
    if (o->progress)
        o->progress(o->progress_ud, events, events, res->bytes); /* final */
    rc = 0;
done:
    if (cur)
        cf_cursor_close(cur);
    cf_out_abort(&out);
    cf_buf_free(&line);
    if (rc) {
        res->count = 0;
        cf_export_result_free(res);
    }
    return rc;
}
