/*
 * The messages of a GenAI attribute read straight from its JSON text
 * (cf_otlp_jmsgs.h), without building the document: only the shapes the
 * conventions allow are looked at -- an array of {role, parts: [{type,
 * content|text}]} or of the older {role, content}, or {"messages": [...]}
 * -- and everything else is skipped. The text is checked whole first
 * (cf_otlp_jvalid.c), in the same pass that records where its shallow
 * values begin and end (its tape), so what is taken is what jansson took
 * before: the last of repeated keys, keys written with escapes, a
 * non-object element as a message with the default role and no text; and
 * a value passed over (a message's parts, a part's content) is not walked
 * again: a text's bytes are read by the check and by its decoding only.
 */
#include <string.h>

#include "cf_otlp_jmsgs.h"
#include "cf_otlp_jvalid.h"

typedef const unsigned char *cur;

/* The text's tape and a scratch buffer. */
typedef struct jdoc {
    const cf_otlp_jtok *t;
    cf_buf scratch;
} jdoc;

/* The string token i decoded into the scratch buffer (emptied first); 0
 * when i is no string (0: absent, the top value is never a field). */
static int string_at(size_t i, jdoc *d)
{
    cf_buf *s = &d->scratch;
    s->n = 0;
    if (!i || *d->t[i].at != '"')
        return 0;
    cur p = d->t[i].at;
    return cf_json_unescape((const char *)p + 1, (size_t)(d->t[i].end - p - 2), s) == 0 &&
           !cf_buf_failed(s);
}

/* Whether the string token i decodes to name. */
static int string_is(size_t i, const char *name, jdoc *d)
{
    cur p = d->t[i].at;
    size_t n = (size_t)(d->t[i].end - p - 2), k = strlen(name);
    if (!memchr(p + 1, '\\', n))
        return n == k && memcmp(p + 1, name, k) == 0;
    return string_at(i, d) && d->scratch.n == k && memcmp(d->scratch.p, name, k) == 0;
}

/* The values of the named keys of the object token o: at[i] the token of
 * names[i]'s value, the last one when a key repeats, 0 when absent. */
static void fields(size_t o, const char *const *names, size_t n, size_t *at, jdoc *d)
{
    memset(at, 0, n * sizeof *at);
    for (size_t k = o + 1; k < d->t[o].next; k = d->t[k + 1].next)
        for (size_t i = 0; i < n; i++)
            if (string_is(k, names[i], d)) {
                at[i] = k + 1;
                break;
            }
}

/* The string token i appended to m's text (a line of its own), decoded
 * in place: no copy through the scratch buffer. */
static void text_at(cf_otlp_msg *m, size_t i, const jdoc *d)
{
    size_t before = m->text.n;
    cur p = d->t[i].at;
    if (before)
        cf_buf_putc(&m->text, '\n');
    if (cf_json_unescape((const char *)p + 1, (size_t)(d->t[i].end - p - 2), &m->text) == -2)
        m->text.n = before;
}

/* The parts [{type: "text", content|text}] of the array token c. */
static void parts(cf_otlp_msg *m, size_t c, jdoc *d)
{
    static const char *const names[] = {"type", "content", "text"};
    const cf_otlp_jtok *t = d->t;
    for (size_t e = c + 1; e < t[c].next; e = t[e].next) {
        size_t at[3];
        if (*t[e].at != '{')
            continue;
        fields(e, names, 3, at, d);
        size_t k = at[1] && *t[at[1]].at == '"' ? at[1] : at[2];
        if (k && *t[k].at == '"' &&
            (!at[0] || (*t[at[0]].at == '"' && string_is(at[0], "text", d))))
            text_at(m, k, d);
    }
}

/* content (token c, 0: none): a string, or parts */
static void content(cf_otlp_msg *m, size_t c, jdoc *d)
{
    if (c && *d->t[c].at == '"')
        text_at(m, c, d);
    else if (c && *d->t[c].at == '[')
        parts(m, c, d);
}

/* The element token it of the messages; -1 when out of memory. */
static int message(size_t it, const char *role, cf_otlp_msgs *out, jdoc *d)
{
    static const char *const names[] = {"role", "parts", "content", "finish_reason"};
    size_t at[4] = {0, 0, 0, 0};
    if (*d->t[it].at == '{')
        fields(it, names, 4, at, d);
    cf_otlp_msg *m =
        cf_otlp_msgs_add(out, string_at(at[0], d) ? cf_buf_cstr(&d->scratch) : role);
    if (!m)
        return -1;
    content(m, at[1] ? at[1] : at[2], d);
    m->utf8 = 1; /* strings of a text cf_otlp_jvalid took, decoded, a line each */
    if (string_at(at[3], d))
        cf_otlp_msg_name(m->finish, sizeof m->finish, cf_buf_cstr(&d->scratch));
    return 0;
}

#define TAPE_ON_STACK 128 /* tokens: a few messages' worth */

int cf_otlp_jmsgs(const char *s, const char *role, cf_otlp_msgs *out)
{
    static const char *const names[] = {"messages"};
    cf_otlp_jtok toks[TAPE_ON_STACK];
    cf_otlp_jtape tape = {toks, 0, TAPE_ON_STACK, 0};
    int rc = cf_otlp_jtape_read(s, &tape);
    if (rc <= 0) {
        if (rc < 0)
            out->oom = 1; /* taken, so as not to be read as another convention */
        cf_otlp_jtape_free(&tape);
        return rc < 0;
    }
    jdoc d = {tape.t, CF_BUF_INIT};
    size_t p = 0; /* the messages' array: the top value, or its "messages" */
    if (*d.t[0].at == '{')
        fields(0, names, 1, &p, &d);
    rc = *d.t[0].at == '[' || (p && *d.t[p].at == '[');
    for (size_t e = rc ? p + 1 : 0; rc && e < d.t[p].next; e = d.t[e].next)
        if (message(e, role, out, &d))
            break;
    if (cf_buf_failed(&d.scratch))
        out->oom = 1;
    cf_buf_free(&d.scratch);
    cf_otlp_jtape_free(&tape);
    return rc;
}

int cf_otlp_jparts(const char *s, cf_otlp_msg *m)
{
    cf_otlp_jtok toks[TAPE_ON_STACK];
    cf_otlp_jtape tape = {toks, 0, TAPE_ON_STACK, 0};
    int rc = cf_otlp_jtape_read(s, &tape);
    if (rc < 0)
        m->text.oom = 1;
    if (rc <= 0 || *tape.t[0].at != '[') {
        cf_otlp_jtape_free(&tape);
        return rc < 0;
    }
    jdoc d = {tape.t, CF_BUF_INIT};
    parts(m, 0, &d);
    if (cf_buf_failed(&d.scratch))
        m->text.oom = 1;
    cf_buf_free(&d.scratch);
    cf_otlp_jtape_free(&tape);
    return 1;
}
