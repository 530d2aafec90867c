/* The built-in quality checks: every boundary the reference's scores turn on. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cf_test.h"
#include "crucible/quality/cf_quality.h"
#include "crucible/quality/cf_quality_stats.h"

static char *repeat(const char *unit, size_t times)
{
    size_t u = strlen(unit);
    char *s = malloc(u * times + 1);
    if (!s)
        abort();
    for (size_t i = 0; i < times; i++)
        memcpy(s + i * u, unit, u);
    s[u * times] = '\0';
    return s;
}

static int json(const char *s) { return cf_json_valid(s, strlen(s)); }

static void test_json(void)
{
    CHECK(json("{\"ok\": true}"));
    CHECK(json("  {\"a\": [1, 2.5, -0.1e+3, \"x\", null, false, {\"b\": {}}]}\n"));
    CHECK(json("42"));
    CHECK(json("\"text\""));
    CHECK(json("true"));
    CHECK(json("null"));
    CHECK(json("[]"));
    CHECK(json("\"\\u00e9\\ud83d\\ude00\\n\\/\""));
    CHECK(json("\"caf\xc3\xa9 \xf0\x9f\x98\x80\""));
    CHECK(json("-0"));
    CHECK(json("1E9"));
    CHECK(!json(""));
    CHECK(!json("   "));
    CHECK(!json("{\"a\": 1,}"));
    CHECK(!json("[1, 2,]"));
    CHECK(!json("{'a': 1}"));
    CHECK(!json("{\"a\" 1}"));
    CHECK(!json("{\"a\": 1}}"));
    CHECK(!json("{\"a\": 1} x"));
    CHECK(!json("[1] [2]"));
    CHECK(!json("01"));
    CHECK(!json("1."));
    CHECK(!json(".5"));
    CHECK(!json("+1"));
    CHECK(!json("NaN"));
    CHECK(!json("tru"));
    CHECK(!json("\"unterminated"));
    CHECK(!json("\"tab\tinside\""));
    CHECK(!json("\"bad \\x escape\""));
    CHECK(!json("\"\\ud800\""));        /* lone high surrogate */
    CHECK(!json("\"\\udc00\""));        /* lone low surrogate */
    CHECK(!json("\"\\ud800\\u0041\""));
    CHECK(!json("\"\xff\""));           /* invalid UTF-8 in a string */
    CHECK(!json("\"\xc0\xaf\""));       /* overlong */
    CHECK(!json("\"\xed\xa0\x80\""));   /* encoded surrogate */
    CHECK(!json("{1: 2}"));
    CHECK(!json("[1}"));
    CHECK(!json("{\"a\": [}"));
    CHECK(cf_json_valid("[1]\0", 3));
    CHECK(!cf_json_valid("[1]\0", 4));

    /* nesting deeper than any stack: 200,000 levels, balanced and not */
    size_t depth = 200000;
    char *deep = malloc(depth * 2 + 1);
    memset(deep, '[', depth);
    memset(deep + depth, ']', depth);
    deep[depth * 2] = '\0';
    CHECK(json(deep));
    deep[depth * 2 - 1] = '\0';
    CHECK(!json(deep));
    free(deep);
    char *objs = repeat("{\"k\":", 50000);
    char *closes = repeat("}", 50000);
    size_t lo = strlen(objs);
    objs = realloc(objs, lo + 2 + 50000 + 1);
    memcpy(objs + lo, "1", 1);
    memcpy(objs + lo + 1, closes, 50001);
    CHECK(json(objs));
    free(objs);
    free(closes);

    /* a large document: 10 MB array */
    char *items = repeat("{\"id\": 12345, \"name\": \"n\\u00e9\"},", 300000);
    size_t n = strlen(items);
    char *big = malloc(n + 3);
    big[0] = '[';
    memcpy(big + 1, items, n - 1);
    big[n] = ']';
    big[n + 1] = '\0';
    CHECK(json(big));
    big[n] = ',';
    CHECK(!json(big));
    free(items);
    free(big);
}

static void test_format(void)
{
    cf_check_result r;
    cf_check_format("{\"ok\": true}", 12, &r);
    CHECK(r.format == CF_FORMAT_JSON && r.score == 1.0 && r.passed);
    const char *md = "```elixir\nIO.puts(\"ok\")\n```\n";
    cf_check_format(md, strlen(md), &r);
    CHECK(r.format == CF_FORMAT_MARKDOWN && r.score == 0.9 && r.passed);
    const char *odd = "```a``` and ```";
    cf_check_format(odd, strlen(odd), &r);
    CHECK(r.format == CF_FORMAT_PLAIN && r.score == 0.7 && r.passed);
    cf_check_format("just text", 9, &r);
    CHECK(r.format == CF_FORMAT_PLAIN && r.score == 0.7 && r.passed);
    cf_check_format("", 0, &r);
    CHECK(r.format == CF_FORMAT_PLAIN);
    /* fences counted without overlap: ```` is one, `````` is two */
    CHECK(cf_fence_count("````", 4) == 1);
    CHECK(cf_fence_count("``````", 6) == 2);
    CHECK(cf_fence_count("`` ``", 5) == 0);
    CHECK(cf_fence_count("x```y```z```", 12) == 3);
    cf_check_format("``````", 6, &r);
    CHECK(r.format == CF_FORMAT_MARKDOWN);
    cf_check_format("````", 4, &r);
    CHECK(r.format == CF_FORMAT_PLAIN);
    /* fenced JSON is markdown, not JSON */
    const char *fj = "```json\n{\"a\": 1}\n```";
    cf_check_format(fj, strlen(fj), &r);
    CHECK(r.format == CF_FORMAT_MARKDOWN);
    CHECK(strcmp(cf_format_name(CF_FORMAT_JSON), "json") == 0);
}

static void length_of(const char *s, cf_check_result *r)
{
    cf_check_length(s, strlen(s), 20, 4000, r);
}

static void test_length(void)
{
    cf_check_result r;
    char *s19 = repeat("a", 19), *s20 = repeat("a", 20), *s21 = repeat("a", 21);
    length_of(s19, &r);
    CHECK(r.score == 0.4 && !r.passed && r.too_short && !r.too_long && r.length == 19);
    length_of(s20, &r);
    CHECK(r.score == 1.0 && r.passed && !r.too_short && r.length == 20);
    length_of(s21, &r);
    CHECK(r.score == 1.0 && r.passed);
    CHECK(r.min == 20 && r.max == 4000);
    char *l3999 = repeat("a", 3999), *l4000 = repeat("a", 4000), *l4001 = repeat("a", 4001);
    length_of(l3999, &r);
    CHECK(r.score == 1.0);
    length_of(l4000, &r);
    CHECK(r.score == 1.0 && !r.too_long && r.length == 4000);
    length_of(l4001, &r);
    CHECK(r.score == 0.4 && r.too_long && !r.too_short && !r.passed && r.length == 4001);
    /* characters, not bytes: 20 x "é" is 40 bytes and 20 characters */
    char *e20 = repeat("\xc3\xa9", 20), *emoji19 = repeat("\xf0\x9f\x98\x80", 19);
    length_of(e20, &r);
    CHECK(r.length == 20 && r.score == 1.0);
    length_of(emoji19, &r);
    CHECK(r.length == 19 && r.too_short);
    char *cjk = repeat("\xe4\xb8\xad", 4001);
    length_of(cjk, &r);
    CHECK(r.length == 4001 && r.too_long);
    /* invalid bytes count one each; a truncated sequence at the end too */
    CHECK(cf_utf8_length("\xff\xfe", 2) == 2);
    CHECK(cf_utf8_length("a\xe4\xb8", 3) == 3);
    CHECK(cf_utf8_length("\xe4\xb8\xad\xe4\xb8\xad", 6) == 2);
    CHECK(cf_utf8_length("", 0) == 0);
    CHECK(cf_utf8_length("abcdefgh\xc3\xa9ijklmnop", 18) == 17);
    free(s19), free(s20), free(s21), free(l3999), free(l4000), free(l4001);
    free(e20), free(emoji19), free(cjk);
}

/* Twelve words of len (at most 20) bytes into text, 'a's and 'b's in
 * turn, each but the last (all with last_sep) followed by sep; returns
 * the bytes written, text NUL-terminated. */
static size_t alternating_words(char *text, int len, char sep, int last_sep)
{
    size_t t = 0;
    for (int i = 0; i < 12; i++) {
        memset(text + t, i % 2 ? 'b' : 'a', (size_t)len);
        t += (size_t)len;
        if (i < 11 || last_sep)
            text[t++] = sep;
    }
    text[t] = '\0';
    return t;
}

static double rep(const char *s, double *ratio)
{
    cf_check_result r;
    cf_check_repetition(s, strlen(s), &r);
    *ratio = r.repetition_ratio;
    return r.score;
}

static void test_repetition(void)
{
    double ratio;
    /* the reference's test: 12 words, 10 trigrams, 3 distinct */
    double score = rep("one two three one two three one two three one two three", &ratio);
    CHECK(fabs(ratio - 0.7) < 1e-12);
    CHECK(score == 1.0 - ratio);
    CHECK(rep("short response", &ratio) == 1.0 && ratio == 0.0);
    /* 9 words: ratio 0 however repetitive; 10 words: 8 trigrams */
    CHECK(rep("a a a a a a a a a", &ratio) == 1.0 && ratio == 0.0);
    score = rep("a a a a a a a a a a", &ratio);
    CHECK(ratio == 1.0 - 1.0 / 8.0);
    CHECK(score == 1.0 - ratio);
    CHECK(rep("w1 w2 w3 w4 w5 w6 w7 w8 w9 w10", &ratio) == 1.0 && ratio == 0.0);
    /* whitespace runs and edges do not make empty words */
    CHECK(rep("  a a\t\ta\n\na a a a a a a  ", &ratio) < 0.2);
    /* U+3000 and U+2003 separate words; U+00A0 and U+202F do not */
    CHECK(rep("x\xe3\x80\x80x\xe2\x80\x83x x x x x x x x", &ratio) < 0.2);
    CHECK(rep("x\xc2\xa0x\xc2\xa0x\xc2\xa0x\xc2\xa0x\xc2\xa0x\xc2\xa0x\xc2\xa0x\xc2\xa0x"
              "\xc2\xa0x\xe2\x80\xafx", &ratio) == 1.0 && ratio == 0.0);
    /* words compared by bytes: case matters */
    CHECK(rep("A a A a A a A a A a A a", &ratio) < 1.0);
    /* words of 8 to 15 bytes (hashed by two loads mid-text, byte by byte
     * near the end) are the same words wherever they are: two words
     * alternating, twelve of them, make 2 distinct trigrams of 10 */
    for (int len = 7; len <= 17; len++) {
        char text[256];
        size_t t = alternating_words(text, len, ' ', 0);
        CHECK(rep(text, &ratio) < 1.0);
        CHECK(fabs(ratio - (1.0 - 2.0 / 10.0)) < 1e-12);
        /* one byte changed in the last word: a third trigram */
        text[t - 1] = 'c';
        rep(text, &ratio);
        CHECK(fabs(ratio - (1.0 - 3.0 / 10.0)) < 1e-12);
    }
    /* every byte after a short word (1 to 15 bytes, the fast path mid-text):
     * the ASCII white space bytes end it, any other byte is part of it;
     * twelve words alternating as above and a last one, so a separator
     * gives 3 distinct trigrams of 11, and a byte that joins them all 1
     * word (ratio 0) */
    for (int len = 1; len <= 15; len += 7) {
        for (unsigned c = 1; c < 256; c++) {
            char text[512];
            size_t t = alternating_words(text, len, (char)c, 1);
            t += (size_t)snprintf(text + t, sizeof text - t, "%s", "................");
            int space = c == ' ' || (c >= 9 && c <= 13);
            cf_check_result r;
            cf_check_repetition(text, t, &r);
            if (space)
                CHECK(fabs(r.repetition_ratio - (1.0 - 3.0 / 11.0)) < 1e-12);
            else
                CHECK(r.repetition_ratio == 0.0);
        }
    }
    /* ASCII texts (words found by bit masks, 64 bytes at a time) against
     * the definition: words split at the six ASCII white space bytes,
     * distinct trigrams counted by comparing words; every length from 0
     * to 400 (blocks, and words across them), runs of white space, long
     * words, repeats */
    uint64_t st = 99;
    int repeated = 0;
    static const char sep[] = " \t\n\v\f\r";
    for (int len = 0; len <= 400; len++) {
        for (int round = 0; round < 6; round++) {
            char text[401];
            static const char *const vocab[] = {"a", "bb", "a", "ccc", "bb",
                                                "dddddddddddddddddddd", "eeeeeeee"};
            for (int i = 0; i < len;) {
                st = st * 6364136223846793005ull + 1442695040888963407ull;
                unsigned r = (unsigned)(st >> 33);
                if (round < 4) { /* words of a small vocabulary, runs of white space */
                    const char *v = vocab[r % (round < 2 ? 3 : 7)];
                    for (size_t k = 0; v[k] && i < len; k++)
                        text[i++] = v[k];
                    for (unsigned k = 0; k < 1 + (r >> 8) % 3 && i < len; k++)
                        text[i++] = sep[(r >> (10 + 3 * k)) % 6];
                } else { /* any printable bytes, and white space */
                    text[i++] = r % 5 == 0 ? sep[(r >> 8) % 6] : (char)(0x21 + (r >> 12) % 94);
                }
            }
            /* the definition */
            int ws[401], we[401], nw = 0;
            for (int i = 0; i < len;) {
                while (i < len && strchr(sep, text[i]) && text[i])
                    i++;
                if (i >= len)
                    break;
                ws[nw] = i;
                while (i < len && !(strchr(sep, text[i]) && text[i]))
                    i++;
                we[nw++] = i;
            }
            size_t distinct = 0;
            for (int t = 0; t + 2 < nw; t++) {
                int seen = 0;
                for (int u = 0; u < t && !seen; u++) {
                    int same = 1;
                    for (int k = 0; k < 3 && same; k++)
                        same = we[u + k] - ws[u + k] == we[t + k] - ws[t + k]
                               && memcmp(text + ws[u + k], text + ws[t + k],
                                         (size_t)(we[t + k] - ws[t + k])) == 0;
                    seen = same;
                }
                distinct += !seen;
            }
            double want = nw < 10 ? 0.0 : 1.0 - (double)distinct / (double)(nw - 2);
            repeated += want > 0;
            cf_check_result r;
            cf_check_repetition(text, (size_t)len, &r);
            if (r.repetition_ratio != want) {
                fprintf(stderr, "len %d round %d: ratio %.17g, want %.17g\n", len, round,
                        r.repetition_ratio, want);
                CHECK(0);
                len = 401;
                break;
            }
        }
    }
    CHECK(repeated > 1000); /* the cases decide something */
    /* many words (heap path): 3000 distinct words, then the same repeated */
    char *many = malloc(3000 * 8 + 1);
    size_t n = 0;
    for (int i = 0; i < 3000; i++)
        n += (size_t)snprintf(many + n, 9, "w%d ", i);
    CHECK(rep(many, &ratio) == 1.0);
    free(many);
    char *loop = repeat("again and again ", 2000);
    score = rep(loop, &ratio);
    CHECK(fabs(ratio - (1.0 - 3.0 / 5998.0)) < 1e-12 && !(score >= 0.7));
    free(loop);
    cf_check_result r;
    cf_check_repetition("a a a a a a a a a a a a", 23, &r);
    CHECK(!r.passed && !r.failed);
}

static cf_quality_cfg *defaults(void)
{
    cf_quality_opts o = {.min_length = 20, .max_length = 4000};
    cf_quality_cfg *cfg = NULL;
    cf_err err;
    CHECK(cf_quality_cfg_new(&o, &cfg, &err) == 0);
    return cfg;
}

static int refuses(const cf_quality_cfg *cfg, const char *s)
{
    cf_check_result r;
    cf_check_refusal(cfg, s, strlen(s), &r);
    CHECK(!r.failed);
    CHECK(r.score == (r.has_refusal ? 0.3 : 1.0));
    CHECK(r.passed == !r.has_refusal);
    return r.has_refusal ? r.pattern + 1 : 0;
}

static void test_refusal(void)
{
    cf_quality_cfg *cfg = defaults();
    CHECK(refuses(cfg, "I cannot help with that.") == 1);
    CHECK(refuses(cfg, "Well, i CAN'T do it") == 1);
    CHECK(refuses(cfg, "I can\xe2\x80\x99t do that") == 1);       /* U+2019 */
    CHECK(refuses(cfg, "I\xe2\x80\x99m unable to comply") == 1);
    CHECK(refuses(cfg, "I'm unable to comply") == 1);
    CHECK(refuses(cfg, "I apologize, but no.") == 2);
    CHECK(refuses(cfg, "as an ai language model") == 3);
    CHECK(refuses(cfg, "I don\xe2\x80\x99t have the ability to browse") == 4);
    CHECK(refuses(cfg, "Sure, here is the answer.") == 0);
    CHECK(refuses(cfg, "I apologize but") == 0);
    CHECK(refuses(cfg, "") == 0);
    CHECK(refuses(cfg, "\xff\xfe I cannot \xc0") == 1); /* invalid UTF-8 around a match */
    CHECK(refuses(cfg, "\xff\xfe nothing \xc0") == 0);
    CHECK(cf_quality_cfg_npatterns(cfg) == 4);
    CHECK(strcmp(cf_quality_cfg_pattern(cfg, 2), "As an AI") == 0);
    cf_quality_cfg_free(cfg);

    cf_str pats[2] = {cf_cstr("nope"), cf_cstr("^Error:")};
    cf_quality_opts o = {.min_length = 1, .max_length = 10, .patterns = pats, .npatterns = 2};
    cf_err err;
    CHECK(cf_quality_cfg_new(&o, &cfg, &err) == 0);
    CHECK(refuses(cfg, "I cannot") == 0);
    CHECK(refuses(cfg, "error: disk") == 2);
    cf_quality_cfg_free(cfg);

    o.npatterns = 0;
    CHECK(cf_quality_cfg_new(&o, &cfg, &err) == 0);
    CHECK(refuses(cfg, "I cannot") == 0);
    cf_quality_cfg_free(cfg);

    cf_str bad[2] = {cf_cstr("fine"), cf_cstr("broken(")};
    o.patterns = bad;
    o.npatterns = 2;
    CHECK(cf_quality_cfg_new(&o, &cfg, &err) == -1 && cfg == NULL);
    CHECK(err.code == CF_EINVAL && strstr(err.msg, "quality.refusal_patterns[2]") != NULL);
    CHECK(strstr(err.msg, "offset 7") != NULL);
    o.min_length = -1;
    CHECK(cf_quality_cfg_new(&o, &cfg, &err) == -1);
}

/* The default patterns are matched without PCRE2; on generated text built
 * from their pieces, the result (which pattern, if any) must be PCRE2's. */
static void test_default_refusals_match_pcre2(void)
{
    cf_quality_cfg *fast = defaults();
    cf_str wrapped[4];
    char bufs[4][160];
    for (int i = 0; i < 4; i++) {
        snprintf(bufs[i], sizeof bufs[i], "(?:%s)", cf_default_refusal_patterns[i]);
        wrapped[i] = cf_cstr(bufs[i]);
    }
    cf_quality_opts o = {.min_length = 20, .max_length = 4000, .patterns = wrapped, .npatterns = 4};
    cf_quality_cfg *pcre = NULL;
    cf_err err;
    CHECK(cf_quality_cfg_new(&o, &pcre, &err) == 0);
    static const char *const pieces[] = {
        "I", "i", "A", "a", " ", "  ", "can", "CAN", "cannot", "canNOT", "'", "\xe2\x80\x99",
        "\xe2\x80\x98", "\xca\xbc", "\xe2\x80", "\xca", "t", "T", "m unable to", "M UNABLE TO",
        " apologize, but", "apologize", ",", " but", "don", " have the ability", "s an ", "AI",
        "ai", "As an AI", "x", "\xff", "n", "o", "\n", "\x00", "\xc3\xa9", "s", "S"};
    const size_t np = sizeof pieces / sizeof pieces[0];
    unsigned seed = 12345;
    int mismatches = 0, hits = 0;
    for (int iter = 0; iter < 200000; iter++) {
        char text[256];
        size_t len = 0;
        seed = seed * 1103515245u + 12345u;
        int count = 1 + (int)((seed >> 16) % 14);
        for (int k = 0; k < count; k++) {
            seed = seed * 1103515245u + 12345u;
            const char *piece = pieces[(seed >> 16) % np];
            size_t pl = piece[0] == '\0' ? 0 : strlen(piece);
            if (strcmp(piece, "\x00") == 0)
                pl = 1;
            if (len + pl >= sizeof text)
                break;
            memcpy(text + len, piece, pl);
            len += pl;
        }
        cf_check_result a, b;
        cf_check_refusal(fast, text, len, &a);
        cf_check_refusal(pcre, text, len, &b);
        hits += b.has_refusal;
        if (a.has_refusal != b.has_refusal || a.pattern != b.pattern || a.score != b.score) {
            if (mismatches++ < 5)
                fprintf(stderr, "mismatch on '%.*s': fast %d, pcre2 %d\n", (int)len, text,
                        a.pattern, b.pattern);
        }
    }
    CHECK(mismatches == 0);
    CHECK(hits > 1000); /* the generator does produce refusals */
    cf_quality_cfg_free(fast);
    cf_quality_cfg_free(pcre);
}

static void test_assess_and_hook(void)
{
    cf_quality_cfg *cfg = defaults();
    cf_check_result r[CF_CHECK_COUNT_];
    const char *ok = "{\"answer\": \"The capital of France is Paris.\"}";
    double s = cf_quality_assess(cfg, ok, strlen(ok), r);
    CHECK(s == 1.0);
    const char *bad = "I cannot";
    s = cf_quality_assess(cfg, bad, strlen(bad), r);
    CHECK(fabs(s - (0.7 + 0.4 + 0.3 + 1.0) / 4) < 1e-15);
    CHECK(r[CF_CHECK_LENGTH].too_short && r[CF_CHECK_REFUSAL].has_refusal);
    CHECK(cf_quality_score(cfg, bad, strlen(bad)) == s);
    CHECK(cf_quality_score(cfg, NULL, 0) == (0.7 + 0.4 + 1.0 + 1.0) / 4);
    CHECK(strcmp(cf_check_name(CF_CHECK_REPETITION), "repetition") == 0);

    cf_event ev;
    memset(&ev, 0, sizeof ev);
    ev.response = cf_cstr(bad);
    ev.quality_score = NAN;
    uint32_t checks = 0;
    CHECK(cf_quality_hook(cfg, &ev, &checks) == s);
    /* all four ran; format (plain: 0.7) and repetition passed */
    CHECK(checks == (0x0fu | (1u << (CF_QCHECKS_PASSED_SHIFT + CF_CHECK_FORMAT)) |
                     (1u << (CF_QCHECKS_PASSED_SHIFT + CF_CHECK_REPETITION))));
    ev.quality_score = 0.25; /* a caller's score is kept, no check ran */
    CHECK(cf_quality_hook(cfg, &ev, &checks) == 0.25);
    CHECK(checks == 0);
    CHECK(strcmp(cf_qcheck_name(CF_QCHECK_JUDGE), "judge") == 0);
    CHECK(strcmp(cf_qcheck_name(CF_CHECK_LENGTH), "length") == 0);
    cf_quality_cfg_free(cfg);
    cf_quality_cfg_free(NULL);
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* cf_percentile_select gives what sorting then cf_percentile_sorted gives,
 * for sizes around the small-range cut-off, runs of equal values, sorted
 * and reversed input, and a few distinct values among many. */
static void test_percentile_select(void)
{
    static const size_t sizes[] = {1, 2, 3, 16, 17, 18, 19, 33, 100, 1001, 65536};
    static const double ps[] = {0.0, 0.1, 0.5, 0.9, 0.99, 1.0};
    uint64_t seed = 42;
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        size_t n = sizes[si];
        for (int shape = 0; shape < 5; shape++) {
            double *v = malloc(n * sizeof *v), *w = malloc(n * sizeof *w);
            if (!v || !w)
                abort();
            for (size_t i = 0; i < n; i++) {
                seed = seed * 6364136223846793005u + 1442695040888963407u;
                double r = (double)(seed >> 11) / 9007199254740992.0;
                v[i] = shape == 0   ? r
                       : shape == 1 ? (double)(seed >> 62)      /* 4 distinct values */
                       : shape == 2 ? 0.5                         /* all equal */
                       : shape == 3 ? (double)i                   /* sorted */
                                    : (double)(n - i);            /* reversed */
            }
            memcpy(w, v, n * sizeof *v);
            qsort(w, n, sizeof *w, cmp_d);
            for (size_t pi = 0; pi < sizeof ps / sizeof ps[0]; pi++) {
                double want = cf_percentile_sorted(w, n, ps[pi]);
                CHECK(cf_percentile_select(v, n, ps[pi]) == want);
            }
            free(v);
            free(w);
        }
    }
    /* Every percentile step of many small random arrays: the rank above the
     * selected one is wherever the partitioning left it. */
    int wrong = 0;
    for (int round = 0; round < 200; round++) {
        double v[257], w[257];
        size_t n = 20 + (size_t)round;
        for (size_t i = 0; i < n; i++) {
            seed = seed * 6364136223846793005u + 1442695040888963407u;
            w[i] = (double)(seed >> 40);
        }
        qsort(w, n, sizeof *w, cmp_d);
        for (int step = 0; step <= 100; step++) {
            double p = step / 100.0;
            for (size_t i = 0; i < n; i++)
                v[i] = w[(i * 7919) % n]; /* a fixed shuffle (7919 is prime) */
            wrong += cf_percentile_select(v, n, p) != cf_percentile_sorted(w, n, p);
        }
    }
    CHECK(wrong == 0);
    CHECK(isnan(cf_percentile_select(NULL, 0, 0.5)));
}

int main(void)
{
    RUN(test_json);
    RUN(test_format);
    RUN(test_length);
    RUN(test_repetition);
    RUN(test_refusal);
    RUN(test_default_refusals_match_pcre2);
    RUN(test_assess_and_hook);
    RUN(test_percentile_select);
    return cf_test_done();
}
