/* Copying a simple JSON object compacted (cf_json_compact.h). */
#include "crucible/ingest/cf_json_compact.h"

#include <stdlib.h>
#include <string.h>

#include "crucible/core/cf_buf.h"
#include "crucible/ingest/cf_json_scan.h"

#define MAX_DEPTH 32 /* deeper: jansson */
#define MAX_KEYS 64  /* keys of the open objects, for duplicates */

enum { OK = 0, DECLINE = 1 };

typedef struct cscan {
    const char *s;
    size_t n, i;
    char *out;
    size_t on;
    int depth;
    const char *key[MAX_KEYS]; /* each key's text (without quotes) */
    size_t keyn[MAX_KEYS], nkeys;
} cscan;

static void skip_ws(cscan *c)
{
    while (c->i < c->n) {
        char ch = c->s[c->i];
        if (ch != ' ' && ch != '\t' && ch != '\n' && ch != '\r')
            return;
        c->i++;
    }
}

static void put(cscan *c, const char *p, size_t k)
{
    memcpy(c->out + c->on, p, k);
    c->on += k;
}

/* The structural byte ch at c->i, copied. */
static int expect(cscan *c, char ch)
{
    if (c->i >= c->n || c->s[c->i] != ch)
        return DECLINE;
    put(c, &ch, 1);
    c->i++;
    skip_ws(c);
    return OK;
}

/* A string at c->i, copied as it is when jansson would write it back the
 * same: the escapes \" \\ \b \f \n \r \t only, valid UTF-8. */
static int copy_string(cscan *c, const char **text, size_t *tn)
{
    if (c->i >= c->n || c->s[c->i] != '"')
        return DECLINE;
    size_t start = c->i + 1, k = start;
    for (;;) {
        k = cf_json_string_stop(c->s, k, c->n);
        if (k >= c->n)
            return DECLINE;
        char ch = c->s[k];
        if (ch == '"')
            break;
        if (ch != '\\' || k + 1 >= c->n || !strchr("\"\\bfnrt", c->s[k + 1])
            || c->s[k + 1] == '\0')
            return DECLINE;
        k += 2;
    }
    if (cf_utf8_check(c->s + start, k - start) != k - start)
        return DECLINE;
    *text = c->s + start;
    *tn = k - start;
    put(c, c->s + c->i, k + 1 - c->i);
    c->i = k + 1;
    skip_ws(c);
    return OK;
}

/* An integer jansson writes back the same: no "-0", at most 18 digits. */
static int copy_number(cscan *c)
{
    size_t a = c->i, k = a;
    if (c->s[k] == '-')
        k++;
    size_t d = k;
    while (k < c->n && c->s[k] >= '0' && c->s[k] <= '9')
        k++;
    size_t digits = k - d;
    if (digits == 0 || digits > 18 || (c->s[d] == '0' && digits > 1)
        || (c->s[d] == '0' && d > a))
        return DECLINE;
    if (k < c->n && (c->s[k] == '.' || c->s[k] == 'e' || c->s[k] == 'E'))
        return DECLINE;
    put(c, c->s + a, k - a);
    c->i = k;
    skip_ws(c);
    return OK;
}

static int copy_literal(cscan *c)
{
    static const char *const words[] = {"true", "false", "null"};
    for (int w = 0; w < 3; w++) {
        size_t len = strlen(words[w]);
        if (c->n - c->i >= len && memcmp(c->s + c->i, words[w], len) == 0) {
            put(c, words[w], len);
            c->i += len;
            skip_ws(c);
            return OK;
        }
    }
    return DECLINE;
}

static int copy_value(cscan *c);

/* A key of the innermost object: declined when it repeats one of keys
 * [from, nkeys) (jansson refuses duplicates) or there are too many. */
static int copy_key(cscan *c, size_t from)
{
    const char *t;
    size_t tn;
    if (c->nkeys == MAX_KEYS || copy_string(c, &t, &tn))
        return DECLINE;
    for (size_t k = from; k < c->nkeys; k++)
        if (c->keyn[k] == tn && memcmp(c->key[k], t, tn) == 0)
            return DECLINE;
    c->key[c->nkeys] = t;
    c->keyn[c->nkeys++] = tn;
    return expect(c, ':');
}

/* An object or an array at c->i (its opening byte). */
static int copy_container(cscan *c)
{
    char open = c->s[c->i], close = open == '{' ? '}' : ']';
    if (++c->depth > MAX_DEPTH || expect(c, open))
        return DECLINE;
    size_t from = c->nkeys;
    if (c->i < c->n && c->s[c->i] == close)
        return c->depth--, expect(c, close);
    for (;;) {
        if ((open == '{' && copy_key(c, from)) || copy_value(c))
            return DECLINE;
        if (c->i < c->n && c->s[c->i] == ',') {
            if (expect(c, ','))
                return DECLINE;
            continue;
        }
        c->nkeys = from;
        c->depth--;
        return expect(c, close);
    }
}

static int copy_value(cscan *c)
{
    if (c->i >= c->n)
        return DECLINE;
    char ch = c->s[c->i];
    if (ch == '{' || ch == '[')
        return copy_container(c);
    if (ch == '"') {
        const char *t;
        size_t tn;
        return copy_string(c, &t, &tn);
    }
    if (ch == '-' || (ch >= '0' && ch <= '9'))
        return copy_number(c);
    return copy_literal(c);
}

int cf_json_compact(const char *s, size_t n, char **out)
{
    if (n == 0 || s[0] != '{')
        return 0;
    cscan c;
    memset(&c, 0, sizeof c);
    c.s = s;
    c.n = n;
    c.out = malloc(n + 1); /* compacting never adds a byte */
    if (!c.out)
        return -1;
    if (copy_container(&c) || c.i != n) {
        free(c.out);
        return 0;
    }
    c.out[c.on] = '\0';
    *out = c.out;
    return 1;
}
