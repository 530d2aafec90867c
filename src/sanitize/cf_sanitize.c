/*
 * The PII sanitizer (see include/crucible/cf_sanitize.h for the contract).
 *
 * One scan over the bytes stops only at bytes that can start or mark an
 * entity (about one byte in ten in prose): digits, '@', ':', capitals,
 * 'b', '-' and '_'. Cheap checks on the surrounding bytes (the length of
 * a digit run, the byte after it, a literal prefix) decide whether an
 * anchored PCRE2 JIT pattern runs there. bench/sanitize.sh compares this
 * with one combined alternation and with separate unanchored passes.
 */
#include "crucible/sanitize/cf_sanitize.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

#include "crucible/sanitize/cf_pii_check.h"

static const char *const ent_names[CF_ENT_COUNT] = {
    "secret", "credit_card", "iban", "email", "ssn", "ipv6", "ipv4", "phone"};
static const char *const ent_repl[CF_ENT_COUNT] = {
    "[SECRET]", "[CREDIT_CARD]", "[IBAN]", "[EMAIL]", "[SSN]", "[IP_ADDRESS]", "[IP_ADDRESS]",
    "[PHONE]"};

/* Anchored patterns (compiled with PCRE2_ANCHORED: they match only at the
 * candidate offset). Callouts: 1 Luhn, 2 IBAN, 3 SSN number rules. IPv6
 * needs no pattern: the candidate token goes to inet_pton. */
static const char *const ent_pattern[CF_ENT_COUNT] = {
    [CF_ENT_SECRET] =
        "(?:sk-[A-Za-z0-9_-]{20,}"
        "|[sr]k_(?:live|test)_[A-Za-z0-9]{16,}"
        "|A(?:KIA|SIA)[0-9A-Z]{16}"
        "|AIza[0-9A-Za-z_-]{35}"
        "|gh[pousr]_[A-Za-z0-9]{36,}"
        "|github_pat_[A-Za-z0-9_]{22,}"
        "|xox[baprs]-[A-Za-z0-9-]{10,}"
        "|eyJ[A-Za-z0-9_-]{8,}\\.eyJ[A-Za-z0-9_-]{8,}(?:\\.[A-Za-z0-9_-]{8,})?"
        "|[Bb]earer[ \\t]+\\K[A-Za-z0-9._~+/-]{16,}=*"
        ")(?![A-Za-z0-9_-])"
        /* a key block; without its END line, the body up to the first
         * byte that is not base64, whitespace or an escaped newline */
        "|-----BEGIN[A-Z ]{0,20}PRIVATE KEY-----"
        "(?:[\\s\\S]{1,8192}?-----END[A-Z ]{0,20}PRIVATE KEY-----"
        "|(?:[A-Za-z0-9+/=\\s]|\\\\[nrt])*+)",
    [CF_ENT_CREDIT_CARD] =
        "(?=[2-6])(?:\\d{13,19}"
        "|\\d{4}([ -])\\d{4}\\1\\d{4}\\1\\d{4}(?:\\1\\d{3})?"
        "|\\d{4}([ -])\\d{6}\\2\\d{4,5})"
        "(?![0-9]|[.,][0-9])(?C1)",
    /* grouped by spaces (or not at all), or by dashes */
    [CF_ENT_IBAN] = "[A-Z]{2}\\d{2}(?:(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?"
                    "|(?:-[A-Z0-9]{4}){2,7}(?:-[A-Z0-9]{1,3})?)"
                    "(?![A-Za-z0-9])(?C2)",
    /* the reference's pattern, also with UTF-8 (bytes >= 0x80) in the
     * address: internationalized mailboxes and domains */
    [CF_ENT_EMAIL] = "[a-zA-Z0-9._%+\\x80-\\xff-]+@[a-zA-Z0-9.\\x80-\\xff-]+"
                     "\\.(?:xn--[a-zA-Z0-9-]{2,}|[a-zA-Z]{2,}|[\\x80-\\xff]{2,})",
    /* dots or spaces only with a context word near (callout 3) */
    [CF_ENT_SSN] = "\\d{3}([-. ])\\d{2}\\1\\d{4}(?![\\w-]|[.,]\\d)(?C3)",
    [CF_ENT_IPV6] = NULL,
    [CF_ENT_IPV4] = "(?:(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)\\.){3}"
                    "(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)(?!\\w|\\.\\w)",
    [CF_ENT_PHONE] =
        "(?:(?:\\+?1[-. ]?)?(?:\\([2-9]\\d{2}\\)|[2-9]\\d{2})[-. ]?\\d{3}[-. ]?\\d{4}"
        "|\\+[2-9]\\d{0,2}(?:[-. ]?\\d){6,12}"
        /* a bracketed area code or trunk prefix: +44 (20) ..., +44 (0)20 ... */
        "|\\+[2-9]\\d{0,2}[-. ]?\\(\\d{1,4}\\)(?:[-. ]?\\d){6,12})"
        "(?!\\w|[.,]\\d)",
};

typedef struct user_pattern {
    char *name;
    char *replacement;
    size_t rlen;
    pcre2_code *re;
} user_pattern;

struct cf_sanitizer {
    unsigned entities;
    pcre2_code *re[CF_ENT_COUNT];
    int jit[CF_ENT_COUNT];
    pcre2_match_context *mctx;
    user_pattern *user;
    size_t nuser;
    unsigned char cls[256];
};

typedef struct span {
    size_t start, end;
    int kind;
} span;

struct cf_sanitize_scratch {
    pcre2_match_data *md;
    span *spans;
    size_t nspans, cap;
    cf_buf out, alt, dec;
};

/* byte classes for the candidate scan */
enum { K_DIGIT = 1, K_AT = 2, K_COLON = 4, K_UPPER = 8, K_SECRET = 16 };

const char *cf_entity_name(int e)
{
    return e >= 0 && e < CF_ENT_COUNT ? ent_names[e] : "?";
}

const char *cf_entity_replacement(int e)
{
    return e >= 0 && e < CF_ENT_COUNT ? ent_repl[e] : "?";
}

int cf_entity_from_name(const char *name)
{
    for (int e = 0; e < CF_ENT_COUNT; e++)
        if (strcmp(name, ent_names[e]) == 0)
            return e;
    return -1;
}

/* ---- checks run inside the patterns --------------------------------------- */

static int ssn_rules(const char *s)
{
    /* never issued: area 000 or 666, group 00, serial 0000 */
    if (memcmp(s, "000", 3) == 0 || memcmp(s, "666", 3) == 0)
        return 0;
    if (memcmp(s + 4, "00", 2) == 0 || memcmp(s + 7, "0000", 4) == 0)
        return 0;
    return 1;
}

static int check_callout(pcre2_callout_block *cb, void *data)
{
    (void)data;
    const char *s = (const char *)cb->subject + cb->start_match;
    size_t n = cb->current_position - cb->start_match;
    int ok = 1;
    switch (cb->callout_number) {
    case 1: ok = cf_luhn_valid(s, n); break;
    case 2: ok = cf_iban_valid(s, n); break;
    case 3:
        ok = n == 11 && ssn_rules(s)
             && (s[3] == '-'
                 || cf_ssn_context((const char *)cb->subject, cb->subject_length, cb->start_match,
                                   cb->current_position));
        break;
    default: break;
    }
    return ok ? 0 : 1; /* nonzero: fail here and backtrack */
}

/* ---- building ---------------------------------------------------------------- */

static pcre2_code *compile(const char *pat, uint32_t flags, int *jit, char *msg, size_t cap,
                           size_t *erroff)
{
    int code;
    PCRE2_SIZE off;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, flags, &code, &off,
                                   NULL);
    if (!re) {
        pcre2_get_error_message(code, (PCRE2_UCHAR *)msg, cap);
        *erroff = off;
        return NULL;
    }
    *jit = pcre2_jit_compile(re, PCRE2_JIT_COMPLETE) == 0;
    return re;
}

static char *dup_str(const char *s)
{
    size_t n = strlen(s);
    char *p = malloc(n + 1);
    if (p)
        memcpy(p, s, n + 1);
    return p;
}

static void set_classes(cf_sanitizer *s)
{
    unsigned e = s->entities;
    memset(s->cls, 0, sizeof s->cls);
    if (e & ((1u << CF_ENT_CREDIT_CARD) | (1u << CF_ENT_SSN) | (1u << CF_ENT_IPV4)
             | (1u << CF_ENT_PHONE)))
        for (int c = '0'; c <= '9'; c++)
            s->cls[c] |= K_DIGIT;
    if (e & (1u << CF_ENT_EMAIL))
        s->cls['@'] |= K_AT;
    if (e & (1u << CF_ENT_IPV6))
        s->cls[':'] |= K_COLON;
    if (e & (1u << CF_ENT_IBAN))
        for (int c = 'A'; c <= 'Z'; c++)
            s->cls[c] |= K_UPPER;
    if (e & (1u << CF_ENT_SECRET)) {
        s->cls['A'] |= K_SECRET;
        s->cls['B'] |= K_SECRET;
        s->cls['J'] |= K_SECRET;
        s->cls['b'] |= K_SECRET;
        s->cls['-'] |= K_SECRET;
        s->cls['_'] |= K_SECRET;
    }
}

int cf_sanitizer_new(const cf_sanitize_opts *opts, cf_sanitizer **out, cf_err *err)
{
    *out = NULL;
    cf_sanitizer *s = calloc(1, sizeof *s);
    if (!s)
        return cf_fail(err, CF_ENOMEM, "out of memory building the sanitizer");
    s->entities = opts ? opts->entities & CF_ENT_ALL : CF_ENT_ALL;
    s->mctx = pcre2_match_context_create(NULL);
    if (!s->mctx)
        goto nomem;
    pcre2_set_callout(s->mctx, check_callout, NULL);
    char msg[256];
    size_t off;
    for (int e = 0; e < CF_ENT_COUNT; e++) {
        if (!ent_pattern[e] || !(s->entities & (1u << e)))
            continue;
        s->re[e] = compile(ent_pattern[e], PCRE2_ANCHORED, &s->jit[e], msg, sizeof msg, &off);
        if (!s->re[e]) {
            cf_fail(err, CF_EINVAL, "built-in pattern %s: %s at offset %zu", ent_names[e], msg,
                    off);
            cf_sanitizer_free(s);
            return -1;
        }
    }
    size_t np = opts ? opts->npatterns : 0;
    if (np) {
        s->user = calloc(np, sizeof *s->user);
        if (!s->user)
            goto nomem;
    }
    for (size_t i = 0; i < np; i++) {
        const cf_pii_pattern *p = &opts->patterns[i];
        user_pattern *u = &s->user[i];
        s->nuser = i + 1;
        if (!p->pattern || !*p->pattern) {
            cf_fail(err, CF_EINVAL, "pii_patterns[%zu].pattern: must be a non-empty string", i + 1);
            goto fail;
        }
        if (!p->replacement) {
            cf_fail(err, CF_EINVAL, "pii_patterns[%zu].replacement: must be a string", i + 1);
            goto fail;
        }
        int jit;
        u->re = compile(p->pattern, PCRE2_UTF, &jit, msg, sizeof msg, &off);
        if (!u->re) {
            cf_fail(err, CF_EINVAL, "pii_patterns[%zu].pattern: %s at offset %zu", i + 1, msg, off);
            goto fail;
        }
        /* a pattern that matches nothing at all would insert its
         * replacement between every character */
        pcre2_match_data *md = pcre2_match_data_create_from_pattern(u->re, NULL);
        if (!md)
            goto nomem;
        int rc = pcre2_match(u->re, (PCRE2_SPTR) "", 0, 0, 0, md, NULL);
        pcre2_match_data_free(md);
        if (rc >= 0) {
            cf_fail(err, CF_EINVAL, "pii_patterns[%zu].pattern: matches the empty string", i + 1);
            goto fail;
        }
        u->name = dup_str(p->name ? p->name : "custom");
        u->replacement = dup_str(p->replacement);
        if (!u->name || !u->replacement)
            goto nomem;
        u->rlen = strlen(u->replacement);
    }
    set_classes(s);
    *out = s;
    return 0;
nomem:
    cf_fail(err, CF_ENOMEM, "out of memory building the sanitizer");
fail:
    cf_sanitizer_free(s);
    return -1;
}

void cf_sanitizer_free(cf_sanitizer *s)
{
    if (!s)
        return;
    for (int e = 0; e < CF_ENT_COUNT; e++)
        pcre2_code_free(s->re[e]);
    for (size_t i = 0; i < s->nuser; i++) {
        pcre2_code_free(s->user[i].re);
        free(s->user[i].name);
        free(s->user[i].replacement);
    }
    free(s->user);
    pcre2_match_context_free(s->mctx);
    free(s);
}

size_t cf_sanitizer_nkinds(const cf_sanitizer *s)
{
    return CF_ENT_COUNT + s->nuser;
}

const char *cf_sanitizer_kind_name(const cf_sanitizer *s, size_t kind)
{
    if (kind < CF_ENT_COUNT)
        return ent_names[kind];
    kind -= CF_ENT_COUNT;
    return kind < s->nuser ? s->user[kind].name : "?";
}

unsigned cf_sanitizer_entities(const cf_sanitizer *s)
{
    return s->entities;
}

cf_sanitize_scratch *cf_sanitize_scratch_new(void)
{
    cf_sanitize_scratch *sc = calloc(1, sizeof *sc);
    if (!sc)
        return NULL;
    sc->md = pcre2_match_data_create(16, NULL);
    if (!sc->md) {
        free(sc);
        return NULL;
    }
    return sc;
}

void cf_sanitize_scratch_free(cf_sanitize_scratch *sc)
{
    if (!sc)
        return;
    pcre2_match_data_free(sc->md);
    free(sc->spans);
    cf_buf_free(&sc->out);
    cf_buf_free(&sc->alt);
    cf_buf_free(&sc->dec);
    free(sc);
}

cf_buf *cf_sanitize_scratch_decode_buf(cf_sanitize_scratch *sc)
{
    return &sc->dec;
}

/* ---- matching ----------------------------------------------------------------- */

typedef struct run {
    const cf_sanitizer *s;
    cf_sanitize_scratch *sc;
    const unsigned char *u;
    size_t n;
    int failed; /* out of memory */
} run;

static int add_span(run *r, size_t start, size_t end, int kind)
{
    cf_sanitize_scratch *sc = r->sc;
    if (sc->nspans == sc->cap) {
        size_t cap = sc->cap ? sc->cap * 2 : 16;
        span *p = realloc(sc->spans, cap * sizeof *p);
        if (!p) {
            r->failed = 1;
            return -1;
        }
        sc->spans = p;
        sc->cap = cap;
    }
    sc->spans[sc->nspans++] = (span){start, end, kind};
    return 0;
}

/* Runs entity e's anchored pattern at `at`; records a span on a match. */
static int try_at(run *r, int e, size_t at)
{
    const cf_sanitizer *s = r->s;
    int rc;
    if (s->jit[e])
        rc = pcre2_jit_match(s->re[e], (PCRE2_SPTR)r->u, r->n, at, 0, r->sc->md, s->mctx);
    else
        rc = pcre2_match(s->re[e], (PCRE2_SPTR)r->u, r->n, at, 0, r->sc->md, s->mctx);
    if (rc < 0)
        return 0;
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(r->sc->md);
    if (ov[1] <= ov[0])
        return 0;
    add_span(r, ov[0], ov[1], e);
    return 1;
}

size_t cf_entity_match_at(const cf_sanitizer *s, cf_sanitize_scratch *sc, int e, const char *text,
                          size_t n, size_t at, size_t *start)
{
    if (e < 0 || e >= CF_ENT_COUNT || !s->re[e] || at >= n)
        return 0;
    run r = {s, sc, (const unsigned char *)text, n, 0};
    size_t before = sc->nspans;
    if (!try_at(&r, e, at) || sc->nspans == before)
        return 0;
    sc->nspans--;
    *start = sc->spans[sc->nspans].start;
    return sc->spans[sc->nspans].end;
}

int cf_sanitize_covered(const cf_sanitize_scratch *sc, size_t start, size_t end)
{
    /* the spans of the last cf_sanitize, sorted by start by redact() */
    size_t reach = start;
    for (size_t k = 0; k < sc->nspans && reach < end; k++)
        if (sc->spans[k].start <= reach && sc->spans[k].end > reach)
            reach = sc->spans[k].end;
    return reach >= end;
}

static inline int is_digit(unsigned c) { return c - '0' < 10; }
static inline int is_upper(unsigned c) { return c - 'A' < 26; }
static inline int is_alnum(unsigned c)
{
    return is_digit(c) || is_upper(c) || c - 'a' < 26;
}
static inline int is_word(unsigned c) { return is_alnum(c) || c == '_'; }
static inline int is_hex(unsigned c)
{
    return is_digit(c) || c - 'a' < 6 || c - 'A' < 6;
}

static inline int on(const run *r, int e) { return (r->s->entities >> e) & 1; }

static inline int is_sep(unsigned c) { return c == '-' || c == '.' || c == ' '; }

/* Whether a digit run of length L, first digit d, followed by c, can start
 * a North American number: [1][sep](NXX)[sep]NXX[sep]XXXX, where the runs
 * before the last are 1, 3 or 6 digits, with or without the leading 1. */
static int nanp_shape(size_t L, unsigned d, unsigned c)
{
    if (d == '1' && L != 3 && L != 6 && L != 10) {
        if (L == 1)
            return is_sep(c) || c == '(';
        L--; /* the country code glued to the number */
    } else if (d < '2') {
        return 0;
    }
    if (L == 10)
        return 1;
    return (L == 3 || L == 6) && is_sep(c);
}

static void phone_run(run *r, size_t i, size_t L, unsigned p, unsigned pp, unsigned c)
{
    if (p == '+' && L <= 15 && !is_word(pp)) {
        try_at(r, CF_ENT_PHONE, i - 1);
        return;
    }
    if (p == '(' && !is_word(pp) && L == 3 && c == ')' && try_at(r, CF_ENT_PHONE, i - 1))
        return;
    /* "#5551234567" is an id; "#555-234-5678" is a number */
    if (p == '#' && (L == 10 || L == 11))
        return;
    if (nanp_shape(L, r->u[i], c))
        try_at(r, CF_ENT_PHONE, i);
}

/* A run of L digits starts at i. */
static void digit_run(run *r, size_t i, size_t L)
{
    const unsigned char *u = r->u;
    size_t n = r->n;
    unsigned p = i ? u[i - 1] : 0;
    unsigned pp = i >= 2 ? u[i - 2] : 0;
    unsigned c = i + L < n ? u[i + L] : 0;
    if (is_word(p))
        return;
    if ((p == '.' || p == ',') && is_digit(pp))
        return; /* the fraction of a decimal number */
    if (on(r, CF_ENT_CREDIT_CARD) && u[i] >= '2' && u[i] <= '6'
        && ((L >= 13 && L <= 19) || (L == 4 && (c == ' ' || c == '-'))))
        try_at(r, CF_ENT_CREDIT_CARD, i);
    if (on(r, CF_ENT_SSN) && L == 3 && is_sep(c) && (p != c || c == ' '))
        try_at(r, CF_ENT_SSN, i);
    if (on(r, CF_ENT_IPV4) && L <= 3 && c == '.' && p != '.')
        try_at(r, CF_ENT_IPV4, i);
    if (on(r, CF_ENT_PHONE) && p != '.')
        phone_run(r, i, L, p, pp, c);
}

static int is_local(unsigned c)
{
    return is_alnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-' || c >= 0x80;
}

/* An '@' at i: the local part is the run of local characters before it. */
static void email_at(run *r, size_t i, size_t floor)
{
    size_t start = i;
    while (start > floor && is_local(r->u[start - 1]))
        start--;
    if (start < i)
        try_at(r, CF_ENT_EMAIL, start);
}

static int is_v6(unsigned c) { return is_hex(c) || c == ':' || c == '.'; }

/* Redacts [ts, te) when it is an address (dots around it trimmed, or a
 * trailing colon: "fe80::1: down"). */
static int ipv6_token(run *r, size_t ts, size_t te)
{
    const unsigned char *u = r->u;
    while (ts < te && u[ts] == '.')
        ts++;
    size_t end = te;
    while (end > ts && u[end - 1] == '.')
        end--;
    if (end - ts < 3)
        return 0;
    if (cf_ipv6_valid((const char *)u + ts, end - ts))
        return add_span(r, ts, end, CF_ENT_IPV6) == 0;
    if (u[end - 1] == ':' && cf_ipv6_valid((const char *)u + ts, end - ts - 1))
        return add_span(r, ts, end - 1, CF_ENT_IPV6) == 0;
    return 0;
}

/* A ':' at i: the surrounding token of hex digits, colons and dots. A
 * label glued before it ("ip:2001:db8::1", "ad:fe80::1") is not part of
 * the address: then the address starts after the label's colon. Returns
 * the end of the token, so that its other colons are not looked at again;
 * the scan goes on right after this colon all the same, since what
 * follows may be another entity ("ssn:123-45-6789", "fe80::1 DE89 ..."). */
static size_t ipv6_at(run *r, size_t i)
{
    const unsigned char *u = r->u;
    size_t ts = i, te = i;
    while (ts > 0 && is_v6(u[ts - 1]) && i - ts < 64)
        ts--;
    while (te < r->n && is_v6(u[te]) && te - ts < 64)
        te++;
    if (te < r->n && is_word(u[te]))
        return te;
    if (!(ts > 0 && (is_word(u[ts - 1]) || u[ts - 1] == ':')) && ipv6_token(r, ts, te))
        return te;
    size_t c = ts;
    while (c < te && u[c] != ':')
        c++;
    if (c > 0 && is_word(u[c - 1]) && c + 1 < te)
        ipv6_token(r, c + 1, te);
    return te;
}

static int has(const run *r, size_t at, const char *lit, size_t len)
{
    return at + len <= r->n && memcmp(r->u + at, lit, len) == 0;
}

/* A secret may start at `start` when nothing token-like precedes it. */
static void secret_at(run *r, size_t start)
{
    if (start > 0) {
        unsigned p = r->u[start - 1];
        if (is_alnum(p) || p == '_' || p == '-')
            return;
    }
    try_at(r, CF_ENT_SECRET, start);
}

static void secret_candidate(run *r, size_t i)
{
    const unsigned char *u = r->u;
    switch (u[i]) {
    case 'A':
        if (has(r, i, "AKIA", 4) || has(r, i, "ASIA", 4) || has(r, i, "AIza", 4))
            secret_at(r, i);
        break;
    case 'B':
    case 'b':
        if (has(r, i + 1, "earer", 5))
            secret_at(r, i);
        break;
    case 'J':
        if (i >= 2 && u[i - 2] == 'e' && u[i - 1] == 'y')
            secret_at(r, i - 2);
        break;
    /* each prefix is tried on its own: one that fails (the "xox" of
     * "xox:-----BEGIN ...") must not hide the next */
    case '-':
        if (i >= 2 && u[i - 2] == 's' && u[i - 1] == 'k')
            secret_at(r, i - 2);
        if (i >= 4 && memcmp(u + i - 4, "xox", 3) == 0)
            secret_at(r, i - 4);
        if ((i == 0 || u[i - 1] != '-') && has(r, i, "-----BEGIN", 10))
            try_at(r, CF_ENT_SECRET, i);
        break;
    case '_':
        if (i >= 2 && (u[i - 2] == 's' || u[i - 2] == 'r') && u[i - 1] == 'k')
            secret_at(r, i - 2);
        if (i >= 3 && u[i - 3] == 'g' && u[i - 2] == 'h')
            secret_at(r, i - 3);
        if (i >= 6 && memcmp(u + i - 6, "github", 6) == 0)
            secret_at(r, i - 6);
        break;
    default:
        break;
    }
}

static void scan(run *r)
{
    const unsigned char *u = r->u;
    const unsigned char *cls = r->s->cls;
    size_t n = r->n, i = 0, email_floor = 0, v6_end = 0;
    while (i < n) {
        while (i < n && !cls[u[i]])
            i++;
        if (i >= n)
            break;
        unsigned k = cls[u[i]];
        if (k & K_DIGIT) {
            size_t L = 1;
            while (i + L < n && is_digit(u[i + L]))
                L++;
            digit_run(r, i, L);
            i += L;
            continue;
        }
        if (k & K_AT) {
            email_at(r, i, email_floor);
            email_floor = i + 1;
        } else if ((k & K_COLON) && i >= v6_end) {
            v6_end = ipv6_at(r, i);
        }
        if ((k & K_UPPER) && i + 3 < n && is_upper(u[i + 1]) && is_digit(u[i + 2])
            && is_digit(u[i + 3]) && (i == 0 || !is_alnum(u[i - 1])))
            try_at(r, CF_ENT_IBAN, i);
        if (k & K_SECRET)
            secret_candidate(r, i);
        i++;
    }
}

static int cmp_span(const void *a, const void *b)
{
    const span *x = a, *y = b;
    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    if (x->end != y->end)
        return x->end > y->end ? -1 : 1;
    return x->kind - y->kind;
}

/* Merges overlapping spans (union, labelled by the longest) and writes the
 * redacted text into sc->out. Returns the number of redactions. */
static int redact(run *r, uint32_t *counts)
{
    cf_sanitize_scratch *sc = r->sc;
    span *sp = sc->spans;
    size_t ns = sc->nspans;
    if (ns > 1)
        qsort(sp, ns, sizeof *sp, cmp_span);
    sc->out.n = 0;
    size_t pos = 0;
    int total = 0;
    size_t k = 0;
    while (k < ns) {
        size_t start = sp[k].start, end = sp[k].end;
        int label = sp[k].kind;
        size_t best = end - start;
        for (k++; k < ns && sp[k].start < end; k++) {
            size_t len = sp[k].end - sp[k].start;
            if (len > best || (len == best && sp[k].kind < label)) {
                best = len;
                label = sp[k].kind;
            }
            if (sp[k].end > end)
                end = sp[k].end;
        }
        const char *rep = ent_repl[label];
        if (cf_buf_append(&sc->out, r->u + pos, start - pos)
            || cf_buf_append(&sc->out, rep, strlen(rep)))
            return -1;
        pos = end;
        total++;
        if (counts)
            counts[label]++;
    }
    if (cf_buf_append(&sc->out, r->u + pos, r->n - pos))
        return -1;
    return total;
}

/* Applies user pattern u to cur; when it matches, the result is in *dst
 * and *cur points at it. Returns the number of substitutions. */
static int apply_user(const user_pattern *up, cf_sanitize_scratch *sc, cf_str *cur, cf_buf *dst,
                      size_t index, cf_err *err)
{
    int rc = pcre2_match(up->re, (PCRE2_SPTR)cur->p, cur->n, 0, PCRE2_NO_UTF_CHECK, sc->md, NULL);
    if (rc == PCRE2_ERROR_NOMATCH)
        return 0;
    if (rc < 0)
        goto fail;
    dst->n = 0;
    if (cf_buf_reserve(dst, cur->n + 64))
        return cf_fail(err, CF_ENOMEM, "out of memory sanitizing");
    for (;;) {
        PCRE2_SIZE outlen = dst->cap - 1;
        rc = pcre2_substitute(up->re, (PCRE2_SPTR)cur->p, cur->n, 0,
                              PCRE2_SUBSTITUTE_GLOBAL | PCRE2_SUBSTITUTE_OVERFLOW_LENGTH
                                  | PCRE2_NO_UTF_CHECK,
                              NULL, NULL, (PCRE2_SPTR)up->replacement, up->rlen,
                              (PCRE2_UCHAR *)dst->p, &outlen);
        if (rc == PCRE2_ERROR_NOMEMORY) {
            if (cf_buf_reserve(dst, outlen + 1))
                return cf_fail(err, CF_ENOMEM, "out of memory sanitizing");
            continue;
        }
        if (rc < 0)
            goto fail;
        dst->n = outlen;
        cur->p = dst->p;
        cur->n = outlen;
        return rc;
    }
fail: {
    char msg[160];
    pcre2_get_error_message(rc, (PCRE2_UCHAR *)msg, sizeof msg);
    return cf_fail(err, CF_EINVAL, "sanitizer pattern pii_patterns[%zu] (%s): %s", index + 1,
                   up->name, msg);
}
}

int cf_sanitize(const cf_sanitizer *s, cf_sanitize_scratch *sc, const char *text, size_t n,
                cf_str *out, uint32_t *counts, cf_err *err)
{
    run r = {s, sc, (const unsigned char *)text, n, 0};
    sc->nspans = 0;
    out->p = text ? text : "";
    out->n = n;
    if (n == 0)
        return 0;
    scan(&r);
    if (r.failed)
        return cf_fail(err, CF_ENOMEM, "out of memory sanitizing %zu bytes", n);
    int total = 0;
    if (sc->nspans) {
        total = redact(&r, counts);
        if (total < 0)
            return cf_fail(err, CF_ENOMEM, "out of memory sanitizing %zu bytes", n);
        out->p = sc->out.p;
        out->n = sc->out.n;
    }
    for (size_t i = 0; i < s->nuser; i++) {
        /* ping-pong between the two buffers: never write over the input */
        cf_buf *dst = out->p == sc->out.p ? &sc->alt : &sc->out;
        int k = apply_user(&s->user[i], sc, out, dst, i, err);
        if (k < 0)
            return -1;
        if (counts)
            counts[CF_ENT_COUNT + i] += (uint32_t)k;
        total += k;
    }
    return total;
}
