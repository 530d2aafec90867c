/* One GenAI span to the pipeline's own input (cf_otlp_map_event in
 * cf_otlp_map.h): the event cf_jsonl_parse reads from cf_otlp_map_span's
 * JSON, built from the same pieces (cf_otlp_span.h) without writing and
 * parsing that text. What the JSON path changed on the way is done here
 * too: every string made valid UTF-8 (U+FFFD for each bad byte, as
 * cf_buf_json_string_lossy writes it), and the metadata object kept as
 * cf_json_compact copies it; metadata it declines (jansson rewrites it)
 * is left to the JSON path. Strings that are valid already (nearly all)
 * are used where they lie: in the span, or in its messages' texts. */
#include <stdlib.h>
#include <string.h>

#include "cf_otlp_span.h"
#include "crucible/ingest/cf_json_compact.h"

void cf_otlp_event_free(cf_otlp_event *ev)
{
    if (ev->msgs) {
        cf_otlp_msgs_free(&ev->msgs[0]);
        cf_otlp_msgs_free(&ev->msgs[1]);
        free(ev->msgs);
    }
    cf_buf_free(&ev->prompt);
    cf_buf_free(&ev->response);
    cf_buf_free(&ev->meta);
    free(ev->meta_json);
    for (int i = 0; i < ev->nfixed; i++)
        free(ev->fixed[i]);
    memset(ev, 0, sizeof *ev);
}

/* What the last span left: emptied, buffers kept. */
static void reset(cf_otlp_event *ev)
{
    cf_otlp_msgs_free(&ev->msgs[0]);
    cf_otlp_msgs_free(&ev->msgs[1]);
    ev->prompt.n = ev->response.n = ev->meta.n = 0;
    free(ev->meta_json);
    ev->meta_json = NULL;
    for (int i = 0; i < ev->nfixed; i++)
        free(ev->fixed[i]);
    ev->nfixed = 0;
    memset(&ev->in, 0, sizeof ev->in);
    ev->in.object_name = "an object";
}

/* s[0, n) as a string field: itself when valid UTF-8 (known to be with
 * utf8), else a copy with U+FFFD for each bad byte. -1 when out of
 * memory. */
static int text_of(cf_otlp_event *ev, int f, const char *s, size_t n, int utf8)
{
    cf_value *v = &ev->in.v[f];
    v->type = CF_V_STRING;
    v->type_name = "a string";
    v->s.p = s;
    v->s.n = n;
    if (utf8 || cf_utf8_check(s, n) == n)
        return 0;
    cf_buf clean = CF_BUF_INIT;
    cf_buf_utf8_lossy(&clean, s, n);
    if (cf_buf_failed(&clean) || ev->nfixed == (int)(sizeof ev->fixed / sizeof ev->fixed[0])) {
        cf_buf_free(&clean);
        return -1;
    }
    ev->fixed[ev->nfixed++] = clean.p;
    v->s.p = clean.p;
    v->s.n = clean.n;
    return 0;
}

static int text(cf_otlp_event *ev, int f, const char *s, size_t n)
{
    return text_of(ev, f, s, n, 0);
}

static void integer(cf_otlp_event *ev, int f, int64_t i)
{
    ev->in.v[f].type = CF_V_INT;
    ev->in.v[f].type_name = "an integer";
    ev->in.v[f].i = i;
}

/* The prompt and the response, from the messages' texts when one message
 * is the whole of it; *chat: the prompt is the chat as JSON. */
static int texts(cf_otlp_event *ev, int *chat)
{
    const cf_otlp_msgs *in = &ev->msgs[0], *out = &ev->msgs[1];
    const cf_buf *p = &ev->prompt, *r = &ev->response;
    int p8 = 0, r8 = 0; /* known valid UTF-8 */
    *chat = 0;
    if (in->n == 1 && strcmp(in->m[0].role, "user") == 0) {
        p = &in->m[0].text;
        p8 = in->m[0].utf8;
    } else {
        cf_otlp_prompt_text(in, &ev->prompt, chat);
    }
    if (out->n == 1) {
        r = &out->m[0].text;
        r8 = out->m[0].utf8;
    } else {
        cf_otlp_response_text(out, &ev->response);
    }
    if (cf_buf_failed(&ev->prompt) || cf_buf_failed(&ev->response))
        return -1;
    return text_of(ev, CF_F_PROMPT, p->p ? p->p : "", p->n, p8) ||
           text_of(ev, CF_F_RESPONSE, r->p ? r->p : "", r->n, r8);
}

static int fields(cf_otlp_event *ev, const cf_otlp_fields *f)
{
    memcpy(ev->id, f->id, sizeof ev->id);
    if (ev->id[0] && text(ev, CF_F_ID, ev->id, strlen(ev->id)))
        return -1;
    if (text(ev, CF_F_DEPLOYMENT_ID, f->deployment, strlen(f->deployment)))
        return -1;
    if (f->model && text(ev, CF_F_MODEL_VERSION_ID, f->model, strlen(f->model)))
        return -1;
    if (f->user && text(ev, CF_F_USER_ID, f->user, strlen(f->user)))
        return -1;
    if (f->latency >= 0)
        integer(ev, CF_F_LATENCY_MS, f->latency);
    if (f->has_token_count)
        integer(ev, CF_F_TOKEN_COUNT, f->token_count);
    return 0;
}

/* 1, CF_OTLP_MAP_AS_JSON, or -1 */
static int metadata(cf_otlp_event *ev, const cf_otlp_attrs *a, const cf_otlp_span *sp,
                    const cf_otlp_fields *f, int chat)
{
    cf_otlp_metadata(&ev->meta, a, sp, &ev->msgs[1], f->tokens, chat);
    if (cf_buf_failed(&ev->meta))
        return -1;
    int rc = cf_json_compact(ev->meta.p, ev->meta.n, &ev->meta_json);
    if (rc <= 0)
        return rc < 0 ? -1 : CF_OTLP_MAP_AS_JSON;
    ev->in.v[CF_F_METADATA].type = CF_V_OBJECT;
    ev->in.v[CF_F_METADATA].type_name = "an object";
    ev->in.metadata_json = cf_cstr(ev->meta_json);
    return 1;
}

int cf_otlp_map_event(const cf_otlp_attrs *res, const cf_otlp_span *sp, cf_otlp_event *ev)
{
    if (!ev->msgs && !(ev->msgs = calloc(2, sizeof *ev->msgs)))
        return -1;
    reset(ev);
    cf_otlp_attrs a;
    int rc = cf_otlp_span_parts(sp, &a, &ev->msgs[0], &ev->msgs[1]);
    if (rc <= 0)
        return rc;
    ev->content = ev->msgs[1].n > 0;
    cf_otlp_fields f;
    cf_otlp_fields_of(res, &a, sp, &f);
    int chat;
    rc = texts(ev, &chat) || fields(ev, &f) ? -1 : metadata(ev, &a, sp, &f, chat);
    cf_otlp_attrs_free(&a);
    return rc;
}
