/*
 * Quality checks with configuration: the refusal patterns (PCRE2, JIT),
 * the length bounds, and the scorer used on ingest.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "crucible/cf_quality.h"

#include <math.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crucible/cf_judge.h"

struct cf_quality_cfg {
    int64_t min_length, max_length;
    size_t npatterns;
    pcre2_code **code;
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
    free(cfg->code);
    free(cfg->source);
    free(cfg);
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

void cf_check_refusal(const cf_quality_cfg *cfg, const char *s, size_t n, cf_check_result *r)
{
    memset(r, 0, sizeof *r);
    r->pattern = -1;
    if (cfg->npatterns) {
        pcre2_match_data *md = pcre2_match_data_create(1, NULL);
        if (!md) {
            fail_result(r, "out of memory matching the refusal patterns");
            return;
        }
        for (size_t i = 0; i < cfg->npatterns; i++) {
            int rc = pcre2_match(cfg->code[i], (PCRE2_SPTR)(s ? s : ""), n, 0, 0, md, NULL);
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

double cf_quality_score_event(const cf_quality_cfg *cfg, const cf_event *ev)
{
    cf_check_result r[CF_CHECK_COUNT_];
    double sum = cf_quality_assess(cfg, ev->response.p, ev->response.n, r) * CF_CHECK_COUNT_;
    if (!cfg->judge)
        return sum / CF_CHECK_COUNT_;
    cf_judge_result jr;
    cf_judge_score(cfg->judge, ev->prompt, ev->response, &jr); /* 0 on failure */
    sum += jr.score;
    cf_judge_result_free(&jr);
    return sum / (CF_CHECK_COUNT_ + 1);
}

double cf_quality_hook(void *ud, const cf_event *ev)
{
    if (!isnan(ev->quality_score))
        return ev->quality_score;
    return cf_quality_score_event((const cf_quality_cfg *)ud, ev);
}
