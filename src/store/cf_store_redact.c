/*
 * Passwords out of what we print and store: the one redactor for database
 * and webhook URLs (cf_store_redact_url), the passwords a URL carries
 * (cf_store_url_secrets) and the scrubber that removes them from a
 * message (cf_store_scrub).
 *
 * A password is found in every form libpq and libcurl accept: the
 * userinfo of a URL (scheme://user:PASSWORD@host, up to the last '@'
 * before the path), a password or sslpassword parameter in a URL's query
 * (?password=...&..., the key percent-encoded or not) and the same
 * keywords in a libpq key=value string (password=... or password='...').
 * Text around a URL is scanned too, so a message holding a URL can be
 * redacted whole.
 */
#include "crucible/store/cf_store.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- finding passwords ------------------------------------------------------ */

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* The byte at s[*i] with %XX decoded; advances *i past it. */
static int decoded_byte(const char *s, size_t n, size_t *i)
{
    if (s[*i] == '%' && *i + 2 < n && hexval(s[*i + 1]) >= 0 && hexval(s[*i + 2]) >= 0) {
        int v = hexval(s[*i + 1]) * 16 + hexval(s[*i + 2]);
        *i += 3;
        return v;
    }
    return (unsigned char)s[(*i)++];
}

/* Whether s[0..n) spells one of the password keywords (case-insensitive,
 * percent-decoded). */
static int password_key(const char *s, size_t n)
{
    static const char *const keys[] = {"password", "sslpassword", NULL};
    char k[16];
    size_t len = 0;
    for (size_t i = 0; i < n;) {
        if (len + 1 >= sizeof k)
            return 0;
        k[len++] = (char)tolower(decoded_byte(s, n, &i));
    }
    k[len] = '\0';
    for (int j = 0; keys[j]; j++)
        if (strcmp(k, keys[j]) == 0)
            return 1;
    return 0;
}

/* The end of a libpq key=value value starting at v: a quoted value up to
 * its closing quote (backslash escapes), else up to white space. */
static size_t conninfo_value_end(const char *s, size_t v)
{
    size_t i = v;
    if (s[i] == '\'') {
        for (i++; s[i] && s[i] != '\''; i++)
            if (s[i] == '\\' && s[i + 1])
                i++;
        return s[i] ? i + 1 : i;
    }
    for (; s[i] && !isspace((unsigned char)s[i]); i++)
        if (s[i] == '\\' && s[i + 1])
            i++;
    return i;
}

/* A key=value pair at s[i] whose key is a password keyword: its value's
 * span [*a, *b). In a URL query (after '?' or '&') the value ends at '&',
 * '#' or white space (a quote may be part of it); in a key=value string
 * as libpq reads it. */
static int password_param(const char *s, size_t i, size_t *a, size_t *b)
{
    int in_query = i > 0 && (s[i - 1] == '?' || s[i - 1] == '&');
    int at_word = i == 0 || isspace((unsigned char)s[i - 1]) || s[i - 1] == '(' || s[i - 1] == '"'
                  || s[i - 1] == '\'' || s[i - 1] == ';' || s[i - 1] == ',';
    if (!in_query && !at_word)
        return 0;
    size_t k = i;
    while (s[k] && (isalnum((unsigned char)s[k]) || s[k] == '%' || s[k] == '_'))
        k++;
    if (k == i || !password_key(s + i, k - i))
        return 0;
    size_t e = k;
    if (!in_query)
        while (s[e] == ' ' || s[e] == '\t')
            e++;
    if (s[e] != '=')
        return 0;
    e++;
    if (!in_query)
        while (s[e] == ' ' || s[e] == '\t')
            e++;
    *a = e;
    *b = in_query ? e + strcspn(s + e, "&# \t\r\n") : conninfo_value_end(s, e);
    return 1;
}

/* A URL's userinfo at s[i] (just after "://"): the password's span. The
 * authority ends at '/', '?', '#', white space or a quote; the userinfo at
 * its last '@'; the password starts after the userinfo's first ':'. */
static int userinfo_password(const char *s, size_t i, size_t *a, size_t *b)
{
    size_t stop = i + strcspn(s + i, "/?# \t\r\n\"'<>");
    const char *at = NULL;
    for (size_t q = i; q < stop; q++)
        if (s[q] == '@')
            at = s + q;
    if (!at)
        return 0;
    const char *colon = memchr(s + i, ':', (size_t)(at - (s + i)));
    if (!colon)
        return 0;
    *a = (size_t)(colon + 1 - s);
    *b = (size_t)(at - s);
    return 1;
}

/* The next password in s at or after *from: its span [*a, *b); *from moves
 * past it. Returns 0 when there is none. */
static int next_secret(const char *s, size_t *from, size_t *a, size_t *b)
{
    for (size_t i = *from; s[i]; i++) {
        int hit = (s[i] == ':' && s[i + 1] == '/' && s[i + 2] == '/'
                   && userinfo_password(s, i + 3, a, b))
                  || password_param(s, i, a, b);
        if (hit) {
            *from = *b > i ? *b : i + 1;
            return 1;
        }
    }
    return 0;
}

/* ---- redacting ---------------------------------------------------------------- */

typedef struct out_buf {
    char *p;
    size_t cap, len;
} out_buf;

static void put(out_buf *o, const char *s, size_t n)
{
    size_t room = o->cap - 1 - o->len;
    if (n > room)
        n = room;
    memcpy(o->p + o->len, s, n);
    o->len += n;
    o->p[o->len] = '\0';
}

void cf_store_redact_url(const char *url, char *out, size_t cap)
{
    if (!cap)
        return;
    out_buf o = {out, cap, 0};
    out[0] = '\0';
    size_t from = 0, copied = 0, a, b;
    while (next_secret(url, &from, &a, &b)) {
        put(&o, url + copied, a - copied);
        if (b > a)
            put(&o, "***", 3);
        copied = b;
    }
    put(&o, url + copied, strlen(url + copied));
}

/* ---- the passwords themselves --------------------------------------------------- */

/* s[a..b) without quotes, percent-decoded (decode) or as written. */
static char *secret_copy(const char *s, size_t a, size_t b, int decode)
{
    if (b - a >= 2 && s[a] == '\'' && s[b - 1] == '\'') {
        a++;
        b--;
    }
    char *c = malloc(b - a + 1);
    if (!c)
        return NULL;
    size_t n = 0;
    for (size_t i = a; i < b;)
        c[n++] = decode ? (char)decoded_byte(s, b, &i) : s[i++];
    c[n] = '\0';
    return c;
}

int cf_store_url_secrets(const char *url, char **out, size_t max, size_t *n)
{
    size_t from = 0, a, b;
    *n = 0;
    while (next_secret(url, &from, &a, &b)) {
        for (int decode = 0; decode < 2; decode++) {
            if (b == a || *n == max)
                continue;
            char *c = secret_copy(url, a, b, decode);
            if (!c)
                return -1;
            if (decode && *n && strcmp(out[*n - 1], c) == 0)
                free(c);
            else
                out[(*n)++] = c;
        }
    }
    return 0;
}

/* ---- scrubbing a message ---------------------------------------------------------- */

/* A byte that continues a token next to the secret's edge byte e. */
static int joins(unsigned char c, unsigned char e)
{
    return isalnum(c) || c >= 0x80 || c == e;
}

size_t cf_store_scrub(char *msg, size_t cap, const char *secret)
{
    size_t k = secret ? strlen(secret) : 0, n = cap ? strnlen(msg, cap - 1) : 0, hits = 0;
    if (k == 0 || n < k)
        return 0;
    char *src = malloc(n + 1);
    if (!src) {
        /* Cannot copy: say nothing rather than risk the secret. */
        snprintf(msg, cap, "%s", "(message withheld: out of memory)");
        return 1;
    }
    memcpy(src, msg, n);
    src[n] = '\0';
    out_buf o = {msg, cap, 0};
    msg[0] = '\0';
    const unsigned char first = (unsigned char)secret[0], last = (unsigned char)secret[k - 1];
    for (size_t i = 0; i < n && o.len + 1 < cap;) {
        if (i + k <= n && memcmp(src + i, secret, k) == 0
            && (i == 0 || !joins((unsigned char)src[i - 1], first))
            && (i + k == n || !joins((unsigned char)src[i + k], last))) {
            put(&o, "***", 3);
            i += k;
            hits++;
        } else {
            put(&o, src + i, 1);
            i++;
        }
    }
    free(src);
    return hits;
}
