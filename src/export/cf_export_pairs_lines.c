/*
 * The lines of the preference pair formats (the pair_line of their rows in
 * cf_export_registry.c), one JSON object per event:
 *   dpo     {"prompt", "chosen": edited response, "rejected": original}
 *           (TRL's DPO trainer), from the event's first edit signal
 *   openai  {"messages": [{"role":"user",...}, {"role":"assistant",...}]}
 *           with the edited response (supervised fine-tuning)
 *   kto     {"prompt", "completion": response, "label": true|false} from
 *           the event's latest thumbs_up / thumbs_down signal
 * An edit identical to the original response is no preference and gives
 * no line.
 */
#include <string.h>

#include "crucible/export/cf_export.h"

static int is(cf_str s, const char *lit)
{
    size_t n = strlen(lit);
    return s.p && s.n == n && memcmp(s.p, lit, n) == 0;
}

int cf_pairs_check_utf8(const cf_event *e, const char *field, cf_str v, cf_err *err)
{
    size_t at = cf_utf8_check(v.p, v.n);
    if (at == v.n)
        return 0;
    return cf_fail(err, CF_EINVAL, "inference event '%.*s': %s is not valid UTF-8 (byte %lld)",
                   (int)(e->id.n > 100 ? 100 : e->id.n), e->id.p, field, (long long)at);
}

/* The edited response of the event's first edit signal when it differs
 * from the response, checked; edited->p NULL when there is none. */
static int first_edit(const cf_event *e, cf_str *edited, cf_err *err)
{
    edited->p = NULL;
    edited->n = 0;
    for (size_t i = 0; i < e->nsignals; i++) {
        const cf_signal *g = &e->signals[i];
        if (!is(g->signal_type, "edit") || !g->edited_response.p)
            continue;
        cf_str ed = g->edited_response;
        if (cf_pairs_check_utf8(e, "prompt", e->prompt, err) ||
            cf_pairs_check_utf8(e, "response", e->response, err))
            return -1;
        if (ed.n == e->response.n && memcmp(ed.p, e->response.p, ed.n) == 0)
            return 0;
        if (cf_pairs_check_utf8(e, "edited_response", ed, err))
            return -1;
        *edited = ed;
        return 0;
    }
    return 0;
}

int cf_pairs_dpo_line(const cf_event *e, cf_buf *b, cf_err *err)
{
    cf_str edited;
    if (first_edit(e, &edited, err))
        return -1;
    if (!edited.p)
        return 0;
    cf_buf_str(b, "{\"prompt\":");
    cf_buf_json_string(b, e->prompt.p, e->prompt.n);
    cf_buf_str(b, ",\"chosen\":");
    cf_buf_json_string(b, edited.p, edited.n);
    cf_buf_str(b, ",\"rejected\":");
    cf_buf_json_string(b, e->response.p, e->response.n);
    cf_buf_str(b, "}\n");
    return 0;
}

int cf_pairs_openai_line(const cf_event *e, cf_buf *b, cf_err *err)
{
    cf_str edited;
    if (first_edit(e, &edited, err))
        return -1;
    if (!edited.p)
        return 0;
    cf_buf_str(b, "{\"messages\":[{\"role\":\"user\",\"content\":");
    cf_buf_json_string(b, e->prompt.p, e->prompt.n);
    cf_buf_str(b, "},{\"role\":\"assistant\",\"content\":");
    cf_buf_json_string(b, edited.p, edited.n);
    cf_buf_str(b, "}]}\n");
    return 0;
}

int cf_pairs_kto_line(const cf_event *e, cf_buf *b, cf_err *err)
{
    const cf_signal *pick = NULL;
    for (size_t i = 0; i < e->nsignals; i++) {
        const cf_signal *g = &e->signals[i];
        if (is(g->signal_type, "thumbs_up") || is(g->signal_type, "thumbs_down"))
            pick = g; /* the latest one wins */
    }
    if (!pick)
        return 0;
    if (cf_pairs_check_utf8(e, "prompt", e->prompt, err) ||
        cf_pairs_check_utf8(e, "response", e->response, err))
        return -1;
    cf_buf_str(b, "{\"prompt\":");
    cf_buf_json_string(b, e->prompt.p, e->prompt.n);
    cf_buf_str(b, ",\"completion\":");
    cf_buf_json_string(b, e->response.p, e->response.n);
    cf_buf_str(b, is(pick->signal_type, "thumbs_up") ? ",\"label\":true}\n"
                                                      : ",\"label\":false}\n");
    return 0;
}
