/*
 * The messages of a GenAI attribute read straight from its JSON text
 * (cf_otlp_jmsgs.h), without building the document: only the shapes the
 * conventions allow are looked at -- an array of {role, parts: [{type,
 * content|text}]} or of the older {role, content}, or {"messages": [...]}
 * -- and everything else is skipped. The text is first checked whole
 * (cf_otlp_jvalid.c), so what is taken is what jansson took before: the
 * last of repeated keys, keys written with escapes, a non-object element
 * as a message with the default role and no text.
 */
#include <stdio.h>
#include <string.h>

#include "cf_otlp_jmsgs.h"
#include "cf_otlp_jvalid.h"
#include "crucible/ingest/cf_json_scan.h"

typedef const unsigned char *cur;

static cur ws(cur p)
{
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    return p;
}

/* The text read, its end (its NUL) and a scratch buffer. */
typedef struct jdoc {
    cur end;
    cf_buf scratch;
} jdoc;

/* p just after the opening quote of a valid string: its closing quote.
 * Eight bytes at a time up to the text's end (cf_json_scan.h), never
 * past it: no str* function, whose sanitizer checks (with
 * strict_string_checks, as scripts/test runs them) measure the whole
 * remaining text on every call and made long escaped strings quadratic. */
static cur string_end(cur p, const jdoc *d)
{
    for (;;) {
        p += cf_json_string_stop((const char *)p, 0, (size_t)(d->end - p));
        if (p >= d->end || *p == '"')
            return p;
        p += 2;
    }
}

/* Past the value at p (in a valid document). */
static cur skip(cur p, const jdoc *d)
{
    int depth = 0;
    do {
        p = ws(p);
        if (*p == '"') {
            p = string_end(p + 1, d) + 1;
        } else if (*p == '[' || *p == '{') {
            depth++;
            p++;
        } else if (*p == ']' || *p == '}') {
            depth--;
            p++;
        } else if (*p == ',' || *p == ':') {
            p++;
        } else {
            while (*p && !strchr(" \t\r\n,:]}", *p))
                p++;
        }
    } while (depth > 0);
    return p;
}

/* The string value at p decoded into s (emptied first); 0 when p holds
 * no string. */
static int string_at(cur p, jdoc *d)
{
    cf_buf *s = &d->scratch;
    s->n = 0;
    if (!p || *p != '"')
        return 0;
    cur e = string_end(p + 1, d);
    return cf_json_unescape((const char *)p + 1, (size_t)(e - p - 1), s) == 0 &&
           !cf_buf_failed(s);
}

/* Whether the string at p (its opening quote; e its closing one)
 * decodes to name. */
static int string_is(cur p, cur e, const char *name, jdoc *d)
{
    size_t n = (size_t)(e - p - 1), k = strlen(name);
    if (!memchr(p + 1, '\\', n))
        return n == k && memcmp(p + 1, name, k) == 0;
    return string_at(p, d) && d->scratch.n == k && memcmp(d->scratch.p, name, k) == 0;
}

/* The values of the named keys of the object at p (its '{'): at[i] for
 * names[i] and to[i] just past it, the last one when a key repeats, NULL
 * when absent. Returns the place just past the object: each value is
 * walked over once. */
static cur fields(cur p, const char *const *names, size_t n, cur *at, cur *to, jdoc *d)
{
    memset(at, 0, n * sizeof *at);
    memset(to, 0, n * sizeof *to);
    p = ws(p + 1);
    while (*p == '"') {
        cur key = p, kend = string_end(p + 1, d);
        cur v = ws(ws(kend + 1) + 1); /* past the colon */
        p = skip(v, d);
        for (size_t i = 0; i < n; i++)
            if (string_is(key, kend, names[i], d)) {
                at[i] = v;
                to[i] = p;
                break;
            }
        p = ws(p);
        if (*p != ',')
            break;
        p = ws(p + 1);
    }
    return *p == '}' ? p + 1 : p;
}

/* The first element of the array at p (its '['), NULL when empty. */
static cur first(cur p)
{
    p = ws(p + 1);
    return *p == ']' ? NULL : p;
}

/* The element after one that ends at p, NULL at the array's end. */
static cur after(cur p)
{
    p = ws(p);
    return *p == ',' ? ws(p + 1) : NULL;
}

/* The string at p (e just past it) appended to m's text (a line of its
 * own), decoded in place: no copy through the scratch buffer. */
static void text_at(cf_otlp_msg *m, cur p, cur e)
{
    size_t before = m->text.n;
    if (before)
        cf_buf_putc(&m->text, '\n');
    if (cf_json_unescape((const char *)p + 1, (size_t)(e - p - 2), &m->text) == -2)
        m->text.n = before;
}

/* content (c, ending at ce): a string, or parts [{type: "text",
 * content|text}] */
static void content(cf_otlp_msg *m, cur c, cur ce, jdoc *d)
{
    static const char *const names[] = {"type", "content", "text"};
    if (!c)
        return;
    if (*c == '"') {
        text_at(m, c, ce);
        return;
    }
    if (*c != '[')
        return;
    for (cur e = first(c); e;) {
        cur at[3], to[3];
        if (*e != '{') {
            e = after(skip(e, d));
            continue;
        }
        e = after(fields(e, names, 3, at, to, d));
        int t = at[1] && *at[1] == '"' ? 1 : 2;
        if (at[t] && *at[t] == '"' &&
            (!at[0] || (*at[0] == '"' && string_is(at[0], to[0] - 1, "text", d))))
            text_at(m, at[t], to[t]);
    }
}

/* One element of the messages (*end: just past it); -1 when out of
 * memory. */
static int message(cur it, const char *role, cf_otlp_msgs *out, jdoc *d, cur *end)
{
    static const char *const names[] = {"role", "parts", "content", "finish_reason"};
    cur at[4] = {NULL, NULL, NULL, NULL}, to[4] = {NULL, NULL, NULL, NULL};
    *end = *it == '{' ? fields(it, names, 4, at, to, d) : skip(it, d);
    cf_otlp_msg *m =
        cf_otlp_msgs_add(out, string_at(at[0], d) ? cf_buf_cstr(&d->scratch) : role);
    if (!m)
        return -1;
    if (at[1])
        content(m, at[1], to[1], d);
    else
        content(m, at[2], to[2], d);
    if (string_at(at[3], d))
        snprintf(m->finish, sizeof m->finish, "%s", cf_buf_cstr(&d->scratch));
    return 0;
}

int cf_otlp_jmsgs(const char *s, const char *role, cf_otlp_msgs *out)
{
    static const char *const names[] = {"messages"};
    if (!cf_otlp_jvalid(s))
        return 0;
    jdoc d = {(cur)s + strlen(s), CF_BUF_INIT};
    cur p = ws((cur)s), to;
    if (*p == '{')
        fields(p, names, 1, &p, &to, &d);
    int rc = p && *p == '[';
    for (cur e = rc ? first(p) : NULL; e;) {
        cur end;
        if (message(e, role, out, &d, &end))
            break;
        e = after(end);
    }
    if (cf_buf_failed(&d.scratch))
        out->oom = 1;
    cf_buf_free(&d.scratch);
    return rc;
}

int cf_otlp_jparts(const char *s, cf_otlp_msg *m)
{
    if (!cf_otlp_jvalid(s))
        return 0;
    cur p = ws((cur)s);
    if (*p != '[')
        return 0;
    jdoc d = {(cur)s + strlen(s), CF_BUF_INIT};
    content(m, p, NULL, &d);
    if (cf_buf_failed(&d.scratch))
        m->text.oom = 1;
    cf_buf_free(&d.scratch);
    return 1;
}
