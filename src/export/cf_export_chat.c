/*
 * The chat (SFT) exporter, format "openai-chat" (alias "messages"): one
 * line per curated example,
 *
 *   {"messages":[{"role":"system","content":...},      when one was recorded
 *                {"role":"user","content":prompt},
 *                {"role":"assistant","content":response}]}
 *
 * the shape OpenAI fine-tuning and TRL's SFTTrainer take. From the
 * example's inference event metadata:
 *   system_prompt  a string: the system message that opens the chat;
 *   prompt_format  "chat": the prompt is a JSON array of turns
 *                  [{"role": "system"|"user"|"assistant"|"tool",
 *                    "content": string}, ...] (what the OTLP intake
 *                  stores), written as those turns in order, the
 *                  response after them as the assistant's answer. A
 *                  system turn in the array wins over system_prompt.
 * A chat prompt that is not such an array fails the export naming the
 * example.
 */
#include <stdlib.h>
#include <string.h>

#include "crucible/export/cf_export.h"

/* ---- a small JSON reader over one value -------------------------------------- */

typedef struct jr {
    const char *p, *end;
} jr;

static void ws(jr *r)
{
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
        r->p++;
}

/* At a string literal: its body (escapes kept) into *body. */
static int str_span(jr *r, cf_str *body)
{
    if (r->p >= r->end || *r->p != '"')
        return -1;
    const char *s = ++r->p;
    while (r->p < r->end && *r->p != '"')
        r->p += *r->p == '\\' ? 2 : 1;
    if (r->p >= r->end)
        return -1;
    body->p = s;
    body->n = (size_t)(r->p - s);
    r->p++;
    return 0;
}

/* Skips one value (nesting at most 64 deep). */
static int skip_value(jr *r, int depth)
{
    ws(r);
    if (r->p >= r->end || depth > 64)
        return -1;
    cf_str s;
    char open = *r->p;
    if (open == '"')
        return str_span(r, &s);
    if (open != '{' && open != '[') {
        while (r->p < r->end && !strchr(",}] \t\r\n", *r->p))
            r->p++;
        return 0;
    }
    char close = open == '{' ? '}' : ']';
    r->p++;
    for (ws(r); r->p < r->end && *r->p != close; ws(r)) {
        if (open == '{' && (str_span(r, &s) || (ws(r), r->p >= r->end || *r->p++ != ':')))
            return -1;
        if (skip_value(r, depth + 1))
            return -1;
        ws(r);
        if (r->p < r->end && *r->p == ',')
            r->p++;
    }
    if (r->p >= r->end)
        return -1;
    r->p++;
    return 0;
}

/* Walks the members of the object at r: calls fn(ud, key body, r at the
 * value), which must consume the value (or leave r untouched to skip it). */
static int members(jr *r, int (*fn)(void *, cf_str, jr *), void *ud)
{
    ws(r);
    if (r->p >= r->end || *r->p != '{')
        return -1;
    r->p++;
    for (ws(r); r->p < r->end && *r->p != '}'; ws(r)) {
        cf_str key;
        if (str_span(r, &key) || (ws(r), r->p >= r->end || *r->p++ != ':'))
            return -1;
        ws(r);
        const char *at = r->p;
        if (fn(ud, key, r))
            return -1;
        if (r->p == at && skip_value(r, 1))
            return -1;
        ws(r);
        if (r->p < r->end && *r->p == ',')
            r->p++;
    }
    if (r->p >= r->end)
        return -1;
    r->p++;
    return 0;
}

static int is(cf_str s, const char *lit)
{
    size_t n = strlen(lit);
    return s.p && s.n == n && memcmp(s.p, lit, n) == 0;
}

/* ---- the event's metadata ------------------------------------------------------ */

typedef struct meta {
    cf_str system;   /* escaped body; NULL: none */
    int chat;        /* prompt_format is "chat" */
} meta;

static int meta_member(void *ud, cf_str key, jr *r)
{
    meta *m = ud;
    cf_str v;
    if (r->p >= r->end || *r->p != '"')
        return 0;
    if (is(key, "system_prompt"))
        return str_span(r, &m->system);
    if (is(key, "prompt_format")) {
        if (str_span(r, &v))
            return -1;
        m->chat = is(v, "chat");
    }
    return 0;
}

/* ---- turns ------------------------------------------------------------------------- */

typedef struct turn {
    cf_str role, content; /* escaped bodies */
    int has_role, has_content;
} turn;

static int turn_member(void *ud, cf_str key, jr *r)
{
    turn *t = ud;
    if (is(key, "role") && r->p < r->end && *r->p == '"') {
        t->has_role = 1;
        return str_span(r, &t->role);
    }
    if (is(key, "content") && r->p < r->end && *r->p == '"') {
        t->has_content = 1;
        return str_span(r, &t->content);
    }
    return 0;
}

/* Appends {"role":R,"content":C}, after a comma unless it is the first
 * turn (*count 0). The role's body is unescaped and escaped again (so the
 * line holds canonical JSON), the content's too when content_escaped. */
static int put_turn(cf_buf *b, cf_buf *tmp, cf_str role, cf_str content, int content_escaped,
                    int *count)
{
    cf_buf_str(b, (*count)++ ? ",{\"role\":" : "{\"role\":");
    tmp->n = 0;
    if (cf_json_unescape(role.p, role.n, tmp))
        return -1;
    cf_buf_json_string(b, tmp->p ? tmp->p : "", tmp->n);
    cf_buf_str(b, ",\"content\":");
    if (content_escaped) {
        tmp->n = 0;
        if (cf_json_unescape(content.p, content.n, tmp))
            return -1;
        content.p = tmp->p ? tmp->p : "";
        content.n = tmp->n;
    }
    cf_buf_json_string(b, content.p ? content.p : "", content.n);
    cf_buf_putc(b, '}');
    return 0;
}

static int valid_role(cf_str role)
{
    return is(role, "system") || is(role, "user") || is(role, "assistant") || is(role, "tool");
}

/* The turns of a chat prompt into b (*count of them); *system: whether
 * one of them is a system turn. */
static int chat_turns(cf_str prompt, cf_buf *b, cf_buf *tmp, int *system, int *count)
{
    jr r = {prompt.p, prompt.p + prompt.n};
    ws(&r);
    if (r.p >= r.end || *r.p++ != '[')
        return -1;
    for (ws(&r); r.p < r.end && *r.p != ']'; ws(&r)) {
        turn t = {{NULL, 0}, {NULL, 0}, 0, 0};
        if (members(&r, turn_member, &t) || !t.has_role || !t.has_content ||
            !valid_role(t.role) || put_turn(b, tmp, t.role, t.content, 1, count))
            return -1;
        *system |= is(t.role, "system");
        ws(&r);
        if (r.p < r.end && *r.p == ',')
            r.p++;
    }
    if (r.p >= r.end || *count == 0)
        return -1;
    r.p++;
    ws(&r);
    return r.p == r.end ? 0 : -1;
}

/* ---- the writer --------------------------------------------------------------------- */

typedef struct chat_writer {
    cf_row_writer base;
    cf_out *out;
    cf_buf line, turns, tmp;
} chat_writer;

static int bad_row(const cf_export_row *r, const char *what, cf_err *err)
{
    return cf_fail(err, CF_EINVAL, "curated example '%.*s': %s",
                   (int)(r->id.n > 100 ? 100 : r->id.n), r->id.p ? r->id.p : "", what);
}

static int chat_row(cf_row_writer *base, const cf_export_row *r, cf_err *err)
{
    chat_writer *w = (chat_writer *)base;
    meta m = {{NULL, 0}, 0};
    jr mr = {r->metadata.p, r->metadata.p + r->metadata.n};
    if (r->metadata.p && members(&mr, meta_member, &m))
        m = (meta){{NULL, 0}, 0}; /* metadata that is no object: nothing recorded */
    int system = 0, nchat = 0, count = 0;
    w->line.n = 0;
    if (m.chat && chat_turns(r->prompt, &w->line, &w->tmp, &system, &nchat))
        return bad_row(r, "prompt_format is \"chat\" but the prompt is not a JSON array of "
                          "{\"role\", \"content\"} turns", err);
    w->turns.n = 0;
    cf_buf_str(&w->turns, "{\"messages\":[");
    if (m.system.p && !system &&
        put_turn(&w->turns, &w->tmp, cf_cstr("system"), m.system, 1, &count))
        return bad_row(r, "metadata.system_prompt is not a valid JSON string", err);
    if (m.chat) {
        if (count)
            cf_buf_putc(&w->turns, ',');
        cf_buf_append(&w->turns, w->line.p, w->line.n);
        count += nchat;
    } else {
        put_turn(&w->turns, &w->tmp, cf_cstr("user"), r->prompt, 0, &count);
    }
    put_turn(&w->turns, &w->tmp, cf_cstr("assistant"), r->response, 0, &count);
    cf_buf_str(&w->turns, "]}\n");
    if (cf_buf_failed(&w->turns) || cf_buf_failed(&w->line) || cf_buf_failed(&w->tmp))
        return cf_fail(err, CF_ENOMEM, "out of memory writing chat lines");
    return cf_out_write(w->out, w->turns.p, w->turns.n, err);
}

static int chat_finish(cf_row_writer *base, cf_err *err)
{
    (void)base;
    (void)err;
    return 0;
}

static void chat_destroy(cf_row_writer *base)
{
    chat_writer *w = (chat_writer *)base;
    cf_buf_free(&w->line);
    cf_buf_free(&w->turns);
    cf_buf_free(&w->tmp);
    free(w);
}

int cf_chat_writer(cf_row_writer **out_w, cf_out *out, cf_err *err)
{
    chat_writer *w = calloc(1, sizeof *w);
    if (!w)
        return cf_fail(err, CF_ENOMEM, "out of memory");
    w->base.row = chat_row;
    w->base.finish = chat_finish;
    w->base.destroy = chat_destroy;
    w->out = out;
    *out_w = &w->base;
    return 0;
}

int cf_chat_open(cf_row_writer **w, cf_out *out, const cf_export_opts *o, cf_err *err)
{
    (void)o;
    return cf_chat_writer(w, out, err);
}
