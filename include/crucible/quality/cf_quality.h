/*
 * Quality checks: the reference library's four built-in checks with its
 * exact scores, as pure C over (pointer, length) strings.
 *
 *   format      valid JSON 1.0 | balanced ``` fences 0.9 | plain 0.7; passed >= 0.7
 *   length      code points < min or > max: 0.4 (too_short / too_long), else 1.0
 *   refusal     any refusal pattern (PCRE2, caseless) matches: 0.3, else 1.0
 *   repetition  1 - (1 - unique word trigrams / trigrams), 0 ratio under 10 words
 *
 * A cf_quality_cfg holds the compiled patterns and bounds. It is immutable
 * once built, so one cfg may score events from several threads at once
 * (each call allocates its own match data).
 */
#ifndef CRUCIBLE_CF_QUALITY_H
#define CRUCIBLE_CF_QUALITY_H

#include "crucible/core/cf_common.h"
#include "crucible/store/cf_store.h"

/* The built-in checks, in the reference's order. */
typedef enum cf_check_id {
    CF_CHECK_FORMAT,
    CF_CHECK_LENGTH,
    CF_CHECK_REFUSAL,
    CF_CHECK_REPETITION,
    CF_CHECK_COUNT_
} cf_check_id;

const char *cf_check_name(cf_check_id id); /* "format", "length", ... */

/* The judge's place in an event's stored check bits (cf_event.quality_checks:
 * the built-ins at their cf_check_id, then the judge), and their count. */
#define CF_QCHECK_JUDGE CF_CHECK_COUNT_
#define CF_QCHECK_COUNT (CF_CHECK_COUNT_ + 1)

/* "format", ..., "repetition", "judge": the name of a stored check bit. */
const char *cf_qcheck_name(int i);

typedef enum cf_format { CF_FORMAT_JSON, CF_FORMAT_MARKDOWN, CF_FORMAT_PLAIN } cf_format;

const char *cf_format_name(cf_format f); /* "json", "markdown", "plain" */

/* One check's outcome. Only the fields of that check are meaningful. */
typedef struct cf_check_result {
    double score;
    int passed;
    int failed;              /* the check itself failed (see error): score 0 */
    cf_format format;        /* format */
    int64_t length;          /* length: code points */
    int64_t min, max;
    int too_short, too_long;
    int has_refusal;         /* refusal */
    int pattern;             /* refusal: index of the first matching pattern, -1 */
    double repetition_ratio; /* repetition */
    char error[160];
} cf_check_result;

/* The stored bits of the four built-in results r (all ran), plus the judge
 * when judged (passed: judge_passed). */
uint32_t cf_qchecks_of(const cf_check_result r[CF_CHECK_COUNT_], int judged, int judge_passed);

/* ---- the pure checks ------------------------------------------------------ */

/* RFC 8259 JSON text (any value, surrounded by optional whitespace), with
 * valid UTF-8 in strings, no lone surrogate escapes, any nesting depth. */
int cf_json_valid(const char *s, size_t n);

/* Non-overlapping occurrences of ``` counted left to right. */
size_t cf_fence_count(const char *s, size_t n);

/* UTF-8 code points; each byte that does not begin a valid sequence counts
 * as one character (as a decoder substituting U+FFFD would). */
size_t cf_utf8_length(const char *s, size_t n);

/* Length of the valid UTF-8 sequence at p (1..4), or 0 when p does not
 * begin one (or rem is 0). */
size_t cf_utf8_seq(const char *p, size_t rem);

void cf_check_format(const char *s, size_t n, cf_check_result *r);
void cf_check_length(const char *s, size_t n, int64_t min, int64_t max, cf_check_result *r);
/* Words are split on Unicode whitespace except the non-breaking spaces
 * (U+00A0, U+2007, U+202F), as the reference's String.split/1. Fails (r->failed,
 * score 0) only when memory runs out. */
void cf_check_repetition(const char *s, size_t n, cf_check_result *r);

/* ---- configuration ------------------------------------------------------------ */

typedef struct cf_quality_cfg cf_quality_cfg;
struct cf_judge;

typedef struct cf_quality_opts {
    int64_t min_length;        /* reference default 20 */
    int64_t max_length;        /* reference default 4000 */
    const cf_str *patterns;    /* refusal patterns; NULL: the defaults */
    size_t npatterns;
    struct cf_judge *judge;    /* used by cf_quality_score_event when set (borrowed) */
} cf_quality_opts;

/* The reference's four refusal patterns, widened so that typographic
 * apostrophes (U+2019, U+2018, U+02BC) match where it has "'". */
extern const char *const cf_default_refusal_patterns[];
extern const size_t cf_default_refusal_npatterns;

/* Compiles the patterns (caseless, UTF-8 that tolerates invalid input, JIT
 * when available). A bad pattern fails naming its index and offset. */
int cf_quality_cfg_new(const cf_quality_opts *opts, cf_quality_cfg **out, cf_err *err);
void cf_quality_cfg_free(cf_quality_cfg *cfg);
int64_t cf_quality_cfg_min(const cf_quality_cfg *cfg);
int64_t cf_quality_cfg_max(const cf_quality_cfg *cfg);
size_t cf_quality_cfg_npatterns(const cf_quality_cfg *cfg);
const char *cf_quality_cfg_pattern(const cf_quality_cfg *cfg, size_t i);

void cf_check_refusal(const cf_quality_cfg *cfg, const char *s, size_t n, cf_check_result *r);

/* Runs one built-in check. */
void cf_quality_check(const cf_quality_cfg *cfg, cf_check_id id, const char *s, size_t n,
                      cf_check_result *r);

/* All four built-in checks into r[CF_CHECK_COUNT_]; returns their mean. */
double cf_quality_assess(const cf_quality_cfg *cfg, const char *s, size_t n,
                         cf_check_result r[CF_CHECK_COUNT_]);

/* The mean of the four built-in checks: the score an event gets on ingest. */
double cf_quality_score(const cf_quality_cfg *cfg, const char *response, size_t len);

/* cf_quality_score, plus the HTTP judge as a fifth check when the cfg was
 * built with one (quality.judge_on_ingest). */
double cf_quality_score_event(const cf_quality_cfg *cfg, const cf_event *ev);

/* cf_quality_score_event, also giving the checks' stored bits in *checks. */
double cf_quality_score_event_checks(const cf_quality_cfg *cfg, const cf_event *ev,
                                     uint32_t *checks);

/* The ingestion hook: cf_score_fn (cf_record.h) with ud a cf_quality_cfg.
 * Keeps a score the caller gave (ev->quality_score not NaN; *checks 0),
 * else returns cf_quality_score_event_checks. Thread-safe. */
double cf_quality_hook(void *ud, const cf_event *ev, uint32_t *checks);

#endif
