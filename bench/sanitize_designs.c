/*
 * Sanitizer design comparison on one corpus (bench/sanitize.sh builds and
 * runs it; not part of the product):
 *   ours        cf_sanitize: one candidate scan + anchored JIT patterns
 *   alternation one unanchored JIT pattern, all entities as alternatives
 *   passes      one unanchored JIT pass per entity, skipped when a cheap
 *               whole-text prefilter (a digit, '@', ':', a capital) fails
 *   reference   the reference's four regexes as four global JIT
 *               substitutions (what bench/peers/py_sanitize.py runs)
 * Usage: sanitize_designs CORPUS.jsonl [repeat]
 * Prints one JSON object: MB/s and redaction counts per design.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <jansson.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crucible/sanitize/cf_pii_check.h"
#include "crucible/sanitize/cf_sanitize.h"

typedef struct text {
    char *p;
    size_t n;
} text;

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static int callout(pcre2_callout_block *cb, void *d)
{
    (void)d;
    const char *s = (const char *)cb->subject + cb->start_match;
    size_t n = cb->current_position - cb->start_match;
    switch (cb->callout_number) {
    case 1: return cf_luhn_valid(s, n) ? 0 : 1;
    case 2: return cf_iban_valid(s, n) ? 0 : 1;
    case 4: return cf_ipv6_valid(s, n) ? 0 : 1;
    default: return 0;
    }
}

#define CARD "(?<![\\w])(?<![0-9][.,])[2-6](?:\\d{12,18}|\\d{3}([ -])\\d{4}\\1\\d{4}\\1\\d{4}" \
             "(?:\\1\\d{3})?|\\d{3}([ -])\\d{6}\\2\\d{4,5})(?![0-9]|[.,][0-9])(?C1)"
#define SSN "(?<![\\w-])(?<![0-9][.,])\\d{3}-\\d{2}-\\d{4}(?![\\w-]|[.,]\\d)"
#define IPV4 "(?<![\\w.])(?:(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)\\.){3}" \
             "(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)(?!\\w|\\.\\w)"
#define PHONE "(?<![\\w.#])(?:(?:\\+?1[-. ]?)?(?:\\([2-9]\\d{2}\\)|[2-9]\\d{2})[-. ]?\\d{3}[-. ]?" \
              "\\d{4}|\\+[2-9]\\d{0,2}(?:[-. ]?\\d){6,12})(?!\\w|[.,]\\d)"
#define EMAIL "[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\\.[a-zA-Z]{2,}"
#define IBAN "(?<![A-Za-z0-9])[A-Z]{2}\\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?" \
             "(?![A-Za-z0-9])(?C2)"
#define IPV6 "(?<![\\w:.])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?![\\w:])(?C4)"
#define SECRET "(?<![A-Za-z0-9_-])(?:sk-[A-Za-z0-9_-]{20,}|[sr]k_(?:live|test)_[A-Za-z0-9]{16,}" \
               "|A(?:KIA|SIA)[0-9A-Z]{16}|AIza[0-9A-Za-z_-]{35}|gh[pousr]_[A-Za-z0-9]{36,}" \
               "|github_pat_[A-Za-z0-9_]{22,}|xox[baprs]-[A-Za-z0-9-]{10,}" \
               "|eyJ[A-Za-z0-9_-]{8,}\\.eyJ[A-Za-z0-9_-]{8,}\\.[A-Za-z0-9_-]{8,}" \
               "|[Bb]earer[ \\t]+\\K[A-Za-z0-9._~+/-]{16,}=*)(?![A-Za-z0-9_-])"

static const char *const sep_patterns[] = {SECRET, CARD, IBAN, EMAIL, SSN, IPV6, IPV4, PHONE};
/* which cheap prefilter each separate pass needs: 0 none, '0' a digit,
 * '@', ':', 'A' a capital */
static const char sep_prefilter[] = {0, '0', 'A', '@', '0', ':', '0', '0'};
#define NSEP 8

static const char *const ref_patterns[] = {
    "[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\\.[a-zA-Z]{2,}",
    "(\\+?1[-.\\s]?)?\\(?\\d{3}\\)?[-.\\s]?\\d{3}[-.\\s]?\\d{4}",
    "\\d{3}-\\d{2}-\\d{4}",
    "\\d{4}[-\\s]?\\d{4}[-\\s]?\\d{4}[-\\s]?\\d{4}",
};
static const char *const ref_repl[] = {"[EMAIL]", "[PHONE]", "[SSN]", "[CREDIT_CARD]"};

static pcre2_code *compile(const char *p)
{
    int code;
    PCRE2_SIZE off;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)p, PCRE2_ZERO_TERMINATED, 0, &code, &off, NULL);
    if (!re) {
        PCRE2_UCHAR msg[200];
        pcre2_get_error_message(code, msg, sizeof msg);
        fprintf(stderr, "pattern %s: %s at %zu\n", p, (char *)msg, (size_t)off);
        exit(1);
    }
    if (pcre2_jit_compile(re, PCRE2_JIT_COMPLETE) != 0) {
        fprintf(stderr, "JIT not available\n");
        exit(1);
    }
    return re;
}

/* Counts the non-overlapping matches of re in t (what a global replace
 * would redact). */
static long count_matches(pcre2_code *re, const text *t, pcre2_match_data *md,
                          pcre2_match_context *mc)
{
    long k = 0;
    size_t at = 0;
    while (at <= t->n) {
        int rc = pcre2_jit_match(re, (PCRE2_SPTR)t->p, t->n, at, 0, md, mc);
        if (rc < 0)
            break;
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        k++;
        at = ov[1] > ov[0] ? ov[1] : ov[0] + 1;
    }
    return k;
}

static int has_class(const text *t, char cls)
{
    for (size_t i = 0; i < t->n; i++) {
        unsigned char c = (unsigned char)t->p[i];
        if ((cls == '0' && c - '0' < 10) || (cls == 'A' && c - 'A' < 26))
            return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: sanitize_designs CORPUS.jsonl [repeat]\n");
        return 2;
    }
    int repeat = argc > 2 ? atoi(argv[2]) : 1;
    FILE *f = fopen(argv[1], "r");
    if (!f) {
        perror(argv[1]);
        return 1;
    }
    size_t ntexts = 0, cap = 1024, bytes = 0;
    text *texts = malloc(cap * sizeof *texts);
    char *line = NULL;
    size_t lcap = 0;
    ssize_t len;
    while ((len = getline(&line, &lcap, f)) > 0) {
        json_error_t je;
        json_t *o = json_loadb(line, (size_t)len, 0, &je);
        if (!o)
            continue;
        const char *fields[] = {"prompt", "response"};
        for (int k = 0; k < 2; k++) {
            json_t *v = json_object_get(o, fields[k]);
            if (!json_is_string(v))
                continue;
            if (ntexts == cap) {
                cap *= 2;
                texts = realloc(texts, cap * sizeof *texts);
            }
            size_t n = json_string_length(v);
            texts[ntexts].p = malloc(n + 1);
            memcpy(texts[ntexts].p, json_string_value(v), n + 1);
            texts[ntexts].n = n;
            bytes += n;
            ntexts++;
        }
        json_decref(o);
    }
    free(line);
    fclose(f);

    pcre2_match_context *mc = pcre2_match_context_create(NULL);
    pcre2_set_callout(mc, callout, NULL);
    pcre2_match_data *md = pcre2_match_data_create(16, NULL);
    double mb = (double)bytes * repeat / 1e6;

    /* ours */
    cf_sanitizer *san;
    cf_err err;
    cf_sanitize_opts o = {CF_ENT_ALL, NULL, 0};
    if (cf_sanitizer_new(&o, &san, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    cf_sanitize_scratch *sc = cf_sanitize_scratch_new();
    long ours_n = 0;
    double t0 = now();
    for (int r = 0; r < repeat; r++)
        for (size_t i = 0; i < ntexts; i++) {
            cf_str out;
            ours_n += cf_sanitize(san, sc, texts[i].p, texts[i].n, &out, NULL, &err);
        }
    double ours_s = now() - t0;

    /* one alternation */
    char alt[8192];
    snprintf(alt, sizeof alt, "%s|%s|%s|%s|%s|%s|%s|%s", SECRET, CARD, IBAN, EMAIL, SSN, IPV6,
             IPV4, PHONE);
    pcre2_code *alt_re = compile(alt);
    long alt_n = 0;
    t0 = now();
    for (int r = 0; r < repeat; r++)
        for (size_t i = 0; i < ntexts; i++)
            alt_n += count_matches(alt_re, &texts[i], md, mc);
    double alt_s = now() - t0;

    /* separate passes with prefilters */
    pcre2_code *sep[NSEP];
    for (int k = 0; k < NSEP; k++)
        sep[k] = compile(sep_patterns[k]);
    long sep_n = 0;
    t0 = now();
    for (int r = 0; r < repeat; r++)
        for (size_t i = 0; i < ntexts; i++) {
            const text *t = &texts[i];
            int digit = has_class(t, '0'), cap_ = has_class(t, 'A');
            int at = memchr(t->p, '@', t->n) != NULL, colon = memchr(t->p, ':', t->n) != NULL;
            for (int k = 0; k < NSEP; k++) {
                char pf = sep_prefilter[k];
                if ((pf == '0' && !digit) || (pf == 'A' && !cap_) || (pf == '@' && !at)
                    || (pf == ':' && !colon))
                    continue;
                sep_n += count_matches(sep[k], t, md, mc);
            }
        }
    double sep_s = now() - t0;

    /* the reference: four global substitutions in sequence */
    pcre2_code *ref[4];
    for (int k = 0; k < 4; k++)
        ref[k] = compile(ref_patterns[k]);
    size_t ocap = 1 << 20;
    char *b1 = malloc(ocap), *b2 = malloc(ocap);
    long ref_n = 0;
    t0 = now();
    for (int r = 0; r < repeat; r++)
        for (size_t i = 0; i < ntexts; i++) {
            const char *cur = texts[i].p;
            size_t cn = texts[i].n;
            char *dst = b1;
            for (int k = 0; k < 4; k++) {
                PCRE2_SIZE olen = ocap;
                int rc = pcre2_substitute(ref[k], (PCRE2_SPTR)cur, cn, 0, PCRE2_SUBSTITUTE_GLOBAL,
                                          md, NULL, (PCRE2_SPTR)ref_repl[k], PCRE2_ZERO_TERMINATED,
                                          (PCRE2_UCHAR *)dst, &olen);
                if (rc > 0) {
                    ref_n += rc;
                    cur = dst;
                    cn = olen;
                    dst = dst == b1 ? b2 : b1;
                }
            }
        }
    double ref_s = now() - t0;

    printf("{\"texts\":%zu,\"mb\":%.1f,"
           "\"ours_mbps\":%.1f,\"ours_redactions\":%ld,"
           "\"alternation_mbps\":%.1f,\"alternation_redactions\":%ld,"
           "\"passes_mbps\":%.1f,\"passes_redactions\":%ld,"
           "\"reference_jit_mbps\":%.1f,\"reference_redactions\":%ld}\n",
           ntexts, (double)bytes / 1e6, mb / ours_s, ours_n / repeat, mb / alt_s, alt_n / repeat,
           mb / sep_s, sep_n / repeat, mb / ref_s, ref_n / repeat);
    return 0;
}
