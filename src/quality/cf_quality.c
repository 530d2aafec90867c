/*
 * Quality checks with configuration: the refusal patterns (PCRE2, JIT),
 * the length bounds, and the scorer used on ingest.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "crucible/quality/cf_quality.h"

#include <math.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "crucible/quality/cf_judge.h"

struct cf_quality_cfg {
    int64_t min_length, max_length;
    size_t npatterns;
    pcre2_code **code;
    pcre2_code *any;   /* every pattern as one alternation, when that is safe */
    int defaults;      /* the patterns are the defaults: match them without PCRE2 */
    char **source;
    cf_judge *judge;
};

/* The reference's patterns; where it has an ASCII apostrophe we also accept
 * U+2019 (right single quotation mark), U+2018 and U+02BC. */
#define APOS "['\\x{2019}\\x{2018}\\x{02BC}]"
const char *const cf_default_refusal_patterns[] = {
    "I cannot|I can" APOS "t|I" APOS "m unable to",
    "I apologize, but",
    "As an AI",
    "I don" APOS "t have the ability",
};
const size_t cf_default_refusal_npatterns =
    sizeof cf_default_refusal_patterns / sizeof cf_default_refusal_patterns[0];

static const char *const check_names[CF_CHECK_COUNT_] = {"format", "length", "refusal",
                                                         "repetition"};

const char *cf_check_name(cf_check_id id)
{
    return id >= 0 && id < CF_CHECK_COUNT_ ? check_names[id] : "unknown";
}

const char *cf_qcheck_name(int i)
{
    return i == CF_QCHECK_JUDGE ? "judge" : cf_check_name((cf_check_id)i);
}

uint32_t cf_qchecks_of(const cf_check_result r[CF_CHECK_COUNT_], int judged, int judge_passed)
{
    uint32_t bits = 0;
    for (int i = 0; i < CF_CHECK_COUNT_; i++)
        bits |= (1u << i) | (r[i].passed ? 1u << (CF_QCHECKS_PASSED_SHIFT + i) : 0u);
    if (judged)
        bits |= (1u << CF_QCHECK_JUDGE) |
                (judge_passed ? 1u << (CF_QCHECKS_PASSED_SHIFT + CF_QCHECK_JUDGE) : 0u);
    return bits;
}

const char *cf_format_name(cf_format f)
{
    switch (f) {
    case CF_FORMAT_JSON: return "json";
    case CF_FORMAT_MARKDOWN: return "markdown";
    default: return "plain";
    }
}

void cf_quality_cfg_free(cf_quality_cfg *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < cfg->npatterns; i++) {
        if (cfg->code)
            pcre2_code_free(cfg->code[i]);
        if (cfg->source)
            free(cfg->source[i]);
    }
    pcre2_code_free(cfg->any);
    free(cfg->code);
    free(cfg->source);
    free(cfg);
}

/* Whether a pattern may join the alternation: nothing in it refers to a
 * group by number or name (the numbers would shift) or recurses. */
static int combinable(const char *p)
{
    for (; *p; p++) {
        if (p[0] == '\\' && p[1]) {
            if (strchr("0123456789gGkK", p[1]))
                return 0;
            p++;
        } else if (p[0] == '(' && p[1] == '?' && p[2]
                   && (strchr("0123456789+&PR|", p[2])
                       || (p[2] == '-' && p[3] >= '0' && p[3] <= '9'))) {
            return 0;
        }
    }
    return 1;
}

/* One scan instead of one per pattern: (?:p1)|(?:p2)|... Optional; the
 * patterns are still matched one by one to say which matched. */
static void build_any(cf_quality_cfg *cfg)
{
    if (cfg->npatterns < 2)
        return;
    size_t len = 0;
    for (size_t i = 0; i < cfg->npatterns; i++) {
        if (!combinable(cfg->source[i]))
            return;
        len += strlen(cfg->source[i]) + 6;
    }
    char *all = malloc(len + 1);
    if (!all)
        return;
    size_t n = 0;
    for (size_t i = 0; i < cfg->npatterns; i++) {
        size_t k = strlen(cfg->source[i]);
        if (i)
            all[n++] = '|';
        memcpy(all + n, "(?:", 3);
        memcpy(all + n + 3, cfg->source[i], k);
        all[n + 3 + k] = ')';
        n += k + 4;
    }
    int code;
    PCRE2_SIZE off;
    cfg->any = pcre2_compile((PCRE2_SPTR)all, n, PCRE2_CASELESS | PCRE2_UTF | PCRE2_MATCH_INVALID_UTF,
                             &code, &off, NULL);
    free(all);
    if (cfg->any)
        pcre2_jit_compile(cfg->any, PCRE2_JIT_COMPLETE);
}

int cf_quality_cfg_new(const cf_quality_opts *opts, cf_quality_cfg **out, cf_err *err)
{
    *out = NULL;
    if (opts->min_length < 0 || opts->max_length < 0)
        return cf_fail(err, CF_EINVAL, "quality.min_length and quality.max_length must not be"
                                       " negative");
    cf_quality_cfg *cfg = calloc(1, sizeof *cfg);
    if (!cfg)
        return cf_fail(err, CF_ENOMEM, "out of memory building the quality checks");
    cfg->min_length = opts->min_length;
    cfg->max_length = opts->max_length;
    cfg->judge = opts->judge;
    size_t np = opts->patterns ? opts->npatterns : cf_default_refusal_npatterns;
    if (np) {
        cfg->code = calloc(np, sizeof *cfg->code);
        cfg->source = calloc(np, sizeof *cfg->source);
        if (!cfg->code || !cfg->source) {
            cf_quality_cfg_free(cfg);
            return cf_fail(err, CF_ENOMEM, "out of memory building the quality checks");
        }
    }
    cfg->npatterns = np;
    for (size_t i = 0; i < np; i++) {
        cf_str src = opts->patterns ? opts->patterns[i] : cf_cstr(cf_default_refusal_patterns[i]);
        if (!src.p) {
            cf_quality_cfg_free(cfg);
            return cf_fail(err, CF_EINVAL, "quality.refusal_patterns[%zu]: missing pattern", i + 1);
        }
        cfg->source[i] = malloc(src.n + 1);
        if (!cfg->source[i]) {
            cf_quality_cfg_free(cfg);
            return cf_fail(err, CF_ENOMEM, "out of memory building the quality checks");
        }
        memcpy(cfg->source[i], src.p, src.n);
        cfg->source[i][src.n] = '\0';
        int code;
        PCRE2_SIZE off;
        cfg->code[i] = pcre2_compile((PCRE2_SPTR)src.p, src.n,
                                     PCRE2_CASELESS | PCRE2_UTF | PCRE2_MATCH_INVALID_UTF, &code,
                                     &off, NULL);
        if (!cfg->code[i]) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(code, msg, sizeof msg);
            cf_fail(err, CF_EINVAL,
                    "quality.refusal_patterns[%zu]: invalid regular expression at offset %zu: %s",
                    i + 1, (size_t)off, (const char *)msg);
            cf_quality_cfg_free(cfg);
            return -1;
        }
        /* JIT is an optimisation: without it (unsupported CPU) matching still works. */
        pcre2_jit_compile(cfg->code[i], PCRE2_JIT_COMPLETE);
    }
    cfg->defaults = np == cf_default_refusal_npatterns;
    for (size_t i = 0; cfg->defaults && i < np; i++)
        cfg->defaults = strcmp(cfg->source[i], cf_default_refusal_patterns[i]) == 0;
    if (!cfg->defaults)
        build_any(cfg);
    *out = cfg;
    return 0;
}

int64_t cf_quality_cfg_min(const cf_quality_cfg *cfg) { return cfg->min_length; }
int64_t cf_quality_cfg_max(const cf_quality_cfg *cfg) { return cfg->max_length; }
size_t cf_quality_cfg_npatterns(const cf_quality_cfg *cfg) { return cfg->npatterns; }

const char *cf_quality_cfg_pattern(const cf_quality_cfg *cfg, size_t i)
{
    return i < cfg->npatterns ? cfg->source[i] : NULL;
}

static void fail_result(cf_check_result *r, const char *msg)
{
    r->failed = 1;
    r->score = 0.0;
    r->passed = 0;
    size_t n = strlen(msg);
    if (n >= sizeof r->error)
        n = sizeof r->error - 1;
    memcpy(r->error, msg, n);
    r->error[n] = '\0';
}

/* ---- the default patterns without a regex engine --------------------------
 * The same matches as the four default patterns under ASCII case folding
 * (the reference's /i): PCRE2's JIT scans these short, common-letter
 * alternations slowly, and this is the hot path of every assessment.
 * tests/c/test_quality.c checks it against PCRE2 on generated text. */

/* Length of an apostrophe at p (', U+2019, U+2018, U+02BC), or 0. */
static size_t apos_at(const unsigned char *p, const unsigned char *end)
{
    if (p < end && *p == '\'')
        return 1;
    if (end - p >= 2 && p[0] == 0xCA && p[1] == 0xBC)
        return 2;
    if (end - p >= 3 && p[0] == 0xE2 && p[1] == 0x80 && (p[2] == 0x99 || p[2] == 0x98))
        return 3;
    return 0;
}

/* Matches lit at p caselessly (ASCII letters) with '\'' standing for any
 * apostrophe; returns 1 when it matches. */
static int lit_at(const unsigned char *p, const unsigned char *end, const char *lit)
{
    for (; *lit; lit++) {
        if (*lit == '\'') {
            size_t k = apos_at(p, end);
            if (!k)
                return 0;
            p += k;
            continue;
        }
        if (p >= end)
            return 0;
        unsigned c = (unsigned char)*lit;
        if (c >= 'a' && c <= 'z' ? (*p | 0x20) != c : *p != c)
            return 0;
        p++;
    }
    return 1;
}

/* At p, an 'I' or an 'A' (either case): which default pattern starts here,
 * as a bit (1 << index), or 0. Quick rejections on the next byte first. */
static unsigned refusal_at(const unsigned char *p, const unsigned char *end)
{
    const unsigned char *q = p + 1;
    if (q >= end)
        return 0;
    if ((*p | 0x20) == 'a')
        return (*q | 0x20) == 's' && lit_at(q, end, "s an ai") ? 1u << 2 : 0;
    if (*q == ' ') {
        if (end - q < 4)
            return 0;
        unsigned d = q[1] | 0x20;
        if (d == 'c')
            return lit_at(q, end, " cannot") || lit_at(q, end, " can't") ? 1u << 0 : 0;
        if (d == 'a')
            return lit_at(q, end, " apologize, but") ? 1u << 1 : 0;
        if (d == 'd')
            return lit_at(q, end, " don't have the ability") ? 1u << 3 : 0;
        return 0;
    }
    if (*q == '\'' || *q == 0xE2 || *q == 0xCA)
        return lit_at(q, end, "'m unable to") ? 1u << 0 : 0;
    return 0;
}

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
/* The high bit of every byte of x equal to c, and possibly of a byte just
 * above a true one (borrow): a superset, so candidates are still checked. */
static inline uint64_t bytes_eq(uint64_t x, unsigned c)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    uint64_t v = x ^ (ones * c);
    return (v - ones) & ~v & highs;
}
#endif

static int default_refusal(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    unsigned found = 0;
#ifdef __SSE2__
    /* The pair test below, sixteen positions at a time (exact). */
    const __m128i lower = _mm_set1_epi8(0x20);
    while (end - p >= 17) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)p);
        __m128i x1 = _mm_loadu_si128((const __m128i *)(const void *)(p + 1));
        __m128i y = _mm_or_si128(x, lower), y1 = _mm_or_si128(x1, lower);
        __m128i next = _mm_or_si128(
            _mm_or_si128(_mm_cmpeq_epi8(x1, _mm_set1_epi8(' ')),
                         _mm_cmpeq_epi8(x1, _mm_set1_epi8('\''))),
            _mm_or_si128(_mm_cmpeq_epi8(x1, _mm_set1_epi8((char)0xE2)),
                         _mm_cmpeq_epi8(x1, _mm_set1_epi8((char)0xCA))));
        __m128i hit = _mm_or_si128(
            _mm_and_si128(_mm_cmpeq_epi8(y, _mm_set1_epi8('i')), next),
            _mm_and_si128(_mm_cmpeq_epi8(y, _mm_set1_epi8('a')),
                          _mm_cmpeq_epi8(y1, _mm_set1_epi8('s'))));
        unsigned m = (unsigned)_mm_movemask_epi8(hit);
        if (!m) {
            p += 16;
            continue;
        }
        p += __builtin_ctz(m);
        found |= refusal_at(p, end);
        if (found & 1u)
            return 0; /* the first pattern: nothing can come before it */
        p++;
    }
#endif
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    /* Every pattern begins with a byte pair refusal_at accepts first: an I
     * followed by a space or the first byte of an apostrophe, or "as".
     * Eight positions at a time: x holds the bytes at p, x1 the bytes after
     * them; the lowest flagged position of the pair test is a true one or
     * one refusal_at rejects, and nothing true is ever left unflagged. */
    while (end - p >= 9) {
        uint64_t x, x1;
        memcpy(&x, p, 8);
        memcpy(&x1, p + 1, 8);
        uint64_t y = x | 0x2020202020202020ull, y1 = x1 | 0x2020202020202020ull;
        uint64_t m = (bytes_eq(y, 'i') & (bytes_eq(x1, ' ') | bytes_eq(x1, '\'')
                                          | bytes_eq(x1, 0xE2) | bytes_eq(x1, 0xCA)))
                     | (bytes_eq(y, 'a') & bytes_eq(y1, 's'));
        if (!m) {
            p += 8;
            continue;
        }
        p += __builtin_ctzll(m) >> 3;
        found |= refusal_at(p, end);
        if (found & 1u)
            return 0; /* the first pattern: nothing can come before it */
        p++;
    }
#endif
    for (; p < end; p++) {
        unsigned c = *p | 0x20;
        if (c == 'i' || c == 'a') {
            found |= refusal_at(p, end);
            if (found & 1u)
                return 0;
        }
    }
    return found ? __builtin_ctz(found) : -1;
}

void cf_check_refusal(const cf_quality_cfg *cfg, const char *s, size_t n, cf_check_result *r)
{
    memset(r, 0, sizeof *r);
    r->pattern = -1;
    if (cfg->defaults) {
        r->pattern = default_refusal(s ? s : "", n);
        r->has_refusal = r->pattern >= 0;
    } else if (cfg->npatterns) {
        pcre2_match_data *md = pcre2_match_data_create(1, NULL);
        if (!md) {
            fail_result(r, "out of memory matching the refusal patterns");
            return;
        }
        int rc = cfg->any ? pcre2_match(cfg->any, (PCRE2_SPTR)(s ? s : ""), n, 0, 0, md, NULL)
                          : 0;
        if (rc == PCRE2_ERROR_NOMATCH) {
            pcre2_match_data_free(md);
            r->score = 1.0;
            r->passed = 1;
            return;
        }
        for (size_t i = 0; i < cfg->npatterns; i++) {
            rc = pcre2_match(cfg->code[i], (PCRE2_SPTR)(s ? s : ""), n, 0, 0, md, NULL);
            if (rc >= 0) {
                r->has_refusal = 1;
                r->pattern = (int)i;
                break;
            }
            if (rc != PCRE2_ERROR_NOMATCH) {
                PCRE2_UCHAR msg[120];
                pcre2_get_error_message(rc, msg, sizeof msg);
                char buf[160];
                snprintf(buf, sizeof buf, "refusal pattern %zu: %s", i + 1, (const char *)msg);
                pcre2_match_data_free(md);
                fail_result(r, buf);
                return;
            }
        }
        pcre2_match_data_free(md);
    }
    r->score = r->has_refusal ? 0.3 : 1.0;
    r->passed = !r->has_refusal;
}

void cf_quality_check(const cf_quality_cfg *cfg, cf_check_id id, const char *s, size_t n,
                      cf_check_result *r)
{
    if (!s) {
        s = "";
        n = 0;
    }
    switch (id) {
    case CF_CHECK_FORMAT: cf_check_format(s, n, r); break;
    case CF_CHECK_LENGTH: cf_check_length(s, n, cfg->min_length, cfg->max_length, r); break;
    case CF_CHECK_REFUSAL: cf_check_refusal(cfg, s, n, r); break;
    case CF_CHECK_REPETITION: cf_check_repetition(s, n, r); break;
    default:
        memset(r, 0, sizeof *r);
        fail_result(r, "unknown check");
    }
}

double cf_quality_assess(const cf_quality_cfg *cfg, const char *s, size_t n,
                         cf_check_result r[CF_CHECK_COUNT_])
{
    double sum = 0.0;
    for (int i = 0; i < CF_CHECK_COUNT_; i++) {
        cf_quality_check(cfg, (cf_check_id)i, s, n, &r[i]);
        sum += r[i].score;
    }
    return sum / CF_CHECK_COUNT_;
}

double cf_quality_score(const cf_quality_cfg *cfg, const char *response, size_t len)
{
    cf_check_result r[CF_CHECK_COUNT_];
    return cf_quality_assess(cfg, response, len, r);
}

/* The judge's threshold, as the Lua side's (quality.lua PASS). */
#define JUDGE_PASS 0.7

double cf_quality_score_event_checks(const cf_quality_cfg *cfg, const cf_event *ev,
                                     uint32_t *checks)
{
    cf_check_result r[CF_CHECK_COUNT_];
    double sum = cf_quality_assess(cfg, ev->response.p, ev->response.n, r) * CF_CHECK_COUNT_;
    if (!cfg->judge) {
        *checks = cf_qchecks_of(r, 0, 0);
        return sum / CF_CHECK_COUNT_;
    }
    cf_judge_result jr;
    cf_judge_score(cfg->judge, ev->prompt, ev->response, &jr); /* 0 on failure */
    sum += jr.score;
    *checks = cf_qchecks_of(r, 1, jr.ok && jr.score >= JUDGE_PASS);
    cf_judge_result_free(&jr);
    return sum / (CF_CHECK_COUNT_ + 1);
}

double cf_quality_score_event(const cf_quality_cfg *cfg, const cf_event *ev)
{
    uint32_t unused;
    return cf_quality_score_event_checks(cfg, ev, &unused);
}

double cf_quality_hook(void *ud, const cf_event *ev, uint32_t *checks)
{
    *checks = 0;
    if (!isnan(ev->quality_score))
        return ev->quality_score;
    return cf_quality_score_event_checks((const cf_quality_cfg *)ud, ev, checks);
}
