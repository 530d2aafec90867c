/* JSON text to Lua values, in C (see l_fromjson.h). */
#include "l_fromjson.h"

#include <errno.h>
#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

#include "crucible/core/cf_buf.h"

#define MAX_DEPTH 1000

typedef struct dec {
    lua_State *L;
    const char *s;
    size_t n, i;
} dec;

static int fail(dec *d, const char *what)
{
    return luaL_error(d->L, "%s at byte %d", what, (int)d->i + 1);
}

static void skip_ws(dec *d)
{
    while (d->i < d->n && (d->s[d->i] == ' ' || d->s[d->i] == '\t' || d->s[d->i] == '\n' ||
                           d->s[d->i] == '\r'))
        d->i++;
}

static void value(dec *d, int depth);

static int hex4(dec *d, unsigned *out)
{
    if (d->n - d->i < 4)
        return -1;
    unsigned v = 0;
    for (int k = 0; k < 4; k++) {
        char c = d->s[d->i + (size_t)k];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return -1;
    }
    d->i += 4;
    *out = v;
    return 0;
}

/* A \u escape (d->i just after "\u") as UTF-8 into b. */
static void unicode_escape(dec *d, luaL_Buffer *b)
{
    unsigned cp = 0; /* set by hex4, which fail() leaves by a long jump */
    if (hex4(d, &cp))
        fail(d, "invalid \\u escape");
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        unsigned lo = 0;
        if (d->n - d->i < 6 || d->s[d->i] != '\\' || d->s[d->i + 1] != 'u')
            fail(d, "a lone surrogate in a \\u escape");
        d->i += 2;
        if (hex4(d, &lo) || lo < 0xDC00 || lo > 0xDFFF)
            fail(d, "a lone surrogate in a \\u escape");
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
    } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
        fail(d, "a lone surrogate in a \\u escape");
    }
    char u[4];
    luaL_addlstring(b, u, cf_utf8_encode(cp, u));
}

/* A string (d->i at its opening quote): its bytes as they are, escapes
 * decoded; bytes that are not UTF-8 are kept for the caller to name. */
static void string(dec *d)
{
    size_t start = ++d->i;
    while (d->i < d->n && d->s[d->i] != '"' && d->s[d->i] != '\\' &&
           (unsigned char)d->s[d->i] >= 0x20)
        d->i++;
    if (d->i < d->n && d->s[d->i] == '"') { /* no escapes: one copy */
        lua_pushlstring(d->L, d->s + start, d->i - start);
        d->i++;
        return;
    }
    luaL_Buffer b;
    luaL_buffinit(d->L, &b);
    luaL_addlstring(&b, d->s + start, d->i - start);
    for (;;) {
        if (d->i >= d->n)
            fail(d, "unterminated string");
        unsigned char c = (unsigned char)d->s[d->i];
        if (c == '"')
            break;
        if (c < 0x20)
            fail(d, "a control character in a string");
        d->i++;
        if (c != '\\') {
            luaL_addchar(&b, (char)c);
            continue;
        }
        if (d->i >= d->n)
            fail(d, "unterminated string");
        char e = d->s[d->i++];
        switch (e) {
        case '"': case '\\': case '/': luaL_addchar(&b, e); break;
        case 'b': luaL_addchar(&b, '\b'); break;
        case 'f': luaL_addchar(&b, '\f'); break;
        case 'n': luaL_addchar(&b, '\n'); break;
        case 'r': luaL_addchar(&b, '\r'); break;
        case 't': luaL_addchar(&b, '\t'); break;
        case 'u': unicode_escape(d, &b); break;
        default: d->i--; fail(d, "invalid escape");
        }
    }
    d->i++;
    luaL_pushresult(&b);
}

static int digits(dec *d)
{
    size_t from = d->i;
    while (d->i < d->n && d->s[d->i] >= '0' && d->s[d->i] <= '9')
        d->i++;
    return d->i > from;
}

/* A number: an integer when written without fraction or exponent and
 * within 64 bits, else a float. */
static void number(dec *d)
{
    size_t start = d->i;
    int is_int = 1;
    if (d->s[d->i] == '-')
        d->i++;
    if (d->i < d->n && d->s[d->i] == '0')
        d->i++;
    else if (!digits(d))
        fail(d, "invalid number");
    if (d->i < d->n && d->s[d->i] == '.') {
        d->i++;
        is_int = 0;
        if (!digits(d))
            fail(d, "invalid number");
    }
    if (d->i < d->n && (d->s[d->i] == 'e' || d->s[d->i] == 'E')) {
        d->i++;
        is_int = 0;
        if (d->i < d->n && (d->s[d->i] == '+' || d->s[d->i] == '-'))
            d->i++;
        if (!digits(d))
            fail(d, "invalid number");
    }
    char text[64];
    size_t len = d->i - start;
    if (len >= sizeof text) { /* longer than any int64 or useful double text */
        is_int = 0;
        len = sizeof text - 1;
    }
    memcpy(text, d->s + start, len);
    text[len] = '\0';
    if (is_int) {
        errno = 0;
        long long v = strtoll(text, NULL, 10);
        if (errno == 0) {
            lua_pushinteger(d->L, (lua_Integer)v);
            return;
        }
    }
    if (d->i - start >= sizeof text) { /* the whole text for strtod */
        luaL_Buffer b;
        luaL_buffinit(d->L, &b);
        luaL_addlstring(&b, d->s + start, d->i - start);
        luaL_pushresult(&b);
        lua_pushnumber(d->L, strtod(lua_tostring(d->L, -1), NULL));
        lua_remove(d->L, -2);
        return;
    }
    lua_pushnumber(d->L, strtod(text, NULL));
}

static void literal(dec *d, const char *word)
{
    size_t k = strlen(word);
    if (d->n - d->i < k || memcmp(d->s + d->i, word, k) != 0)
        fail(d, "unexpected character");
    d->i += k;
}

static void container(dec *d, int depth, int object)
{
    if (depth >= MAX_DEPTH)
        fail(d, "nested too deeply");
    luaL_checkstack(d->L, 4, "nested too deeply");
    lua_newtable(d->L);
    d->i++;
    skip_ws(d);
    char close = object ? '}' : ']';
    if (d->i < d->n && d->s[d->i] == close) {
        d->i++;
        return;
    }
    for (lua_Integer k = 1;; k++) {
        skip_ws(d);
        if (object) {
            if (d->i >= d->n || d->s[d->i] != '"')
                fail(d, "expected a field name");
            string(d);
            skip_ws(d);
            if (d->i >= d->n || d->s[d->i] != ':')
                fail(d, "expected ':'");
            d->i++;
            value(d, depth + 1);
            lua_rawset(d->L, -3);
        } else {
            value(d, depth + 1);
            lua_rawseti(d->L, -2, k);
        }
        skip_ws(d);
        if (d->i < d->n && d->s[d->i] == ',') {
            d->i++;
            continue;
        }
        if (d->i < d->n && d->s[d->i] == close) {
            d->i++;
            return;
        }
        fail(d, object ? "expected ',' or '}'" : "expected ',' or ']'");
    }
}

static void value(dec *d, int depth)
{
    skip_ws(d);
    if (d->i >= d->n)
        fail(d, "unexpected end of the text");
    char c = d->s[d->i];
    if (c == '{' || c == '[')
        container(d, depth, c == '{');
    else if (c == '"')
        string(d);
    else if (c == '-' || (c >= '0' && c <= '9'))
        number(d);
    else if (c == 't') {
        literal(d, "true");
        lua_pushboolean(d->L, 1);
    } else if (c == 'f') {
        literal(d, "false");
        lua_pushboolean(d->L, 0);
    } else if (c == 'n') {
        literal(d, "null");
        lua_pushlightuserdata(d->L, NULL);
    } else {
        fail(d, "unexpected character");
    }
}

int l_from_json(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    lua_settop(L, 1);
    dec d = {L, s, n, 0};
    value(&d, 0);
    skip_ws(&d);
    if (d.i < d.n)
        fail(&d, "unexpected text after the value");
    return 1;
}
