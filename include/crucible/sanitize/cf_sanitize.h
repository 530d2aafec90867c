/*
 * The PII sanitizer: redacts personal data and secrets from text before it
 * is buffered or stored.
 *
 * Built-in entities (each can be switched off) and their replacements:
 *   email [EMAIL], phone [PHONE], ssn [SSN], credit_card [CREDIT_CARD]
 *   (the reference's four), ipv4 and ipv6 [IP_ADDRESS], iban [IBAN],
 *   secret [SECRET]. Card numbers must pass the Luhn checksum, IBANs the
 *   mod-97 checksum and their country's length, IPv6 addresses must parse.
 *
 * How: one pass over the bytes finds candidate positions (an '@', the
 * start of a digit run, a ':', two capitals and two digits, the first
 * letters of known secret prefixes); at each candidate an anchored PCRE2
 * JIT pattern confirms the match (checksums run as callouts, so the
 * pattern backtracks to a shorter valid form). Then overlaps resolve: a
 * set of overlapping matches becomes one redaction covering their union,
 * labelled by its longest match (ties: the order of cf_entity). So a
 * valid card number is always one [CREDIT_CARD], never a [PHONE] and
 * leftover digits. User patterns then run in order over that result,
 * like the reference's custom patterns.
 *
 * A cf_sanitizer is immutable once built and may be shared by threads;
 * each thread uses its own cf_sanitize_scratch.
 */
#ifndef CRUCIBLE_CF_SANITIZE_H
#define CRUCIBLE_CF_SANITIZE_H

#include <stddef.h>
#include <stdint.h>

#include "crucible/core/cf_buf.h"
#include "crucible/core/cf_common.h"

typedef enum cf_entity {
    CF_ENT_SECRET,
    CF_ENT_CREDIT_CARD,
    CF_ENT_IBAN,
    CF_ENT_EMAIL,
    CF_ENT_SSN,
    CF_ENT_IPV6,
    CF_ENT_IPV4,
    CF_ENT_PHONE,
    CF_ENT_COUNT
} cf_entity;

#define CF_ENT_ALL ((1u << CF_ENT_COUNT) - 1)

/* "email", "phone", ... and "[EMAIL]", ... */
const char *cf_entity_name(int e);
const char *cf_entity_replacement(int e);
/* The entity for a name, or -1. */
int cf_entity_from_name(const char *name);

typedef struct cf_pii_pattern {
    const char *name;         /* the count's key; NULL: "custom" */
    const char *pattern;      /* PCRE2 syntax, UTF-8 */
    const char *replacement;  /* may use $1, ${name}; $$ is a dollar */
} cf_pii_pattern;

typedef struct cf_sanitize_opts {
    unsigned entities;               /* bits (1u << cf_entity) enabled */
    const cf_pii_pattern *patterns;  /* user patterns, applied in order */
    size_t npatterns;
} cf_sanitize_opts;

typedef struct cf_sanitizer cf_sanitizer;
typedef struct cf_sanitize_scratch cf_sanitize_scratch;

/* Compiles the patterns. A bad user pattern fails with CF_EINVAL naming
 * it: "pii_patterns[2].pattern: missing closing parenthesis at offset 4". */
int cf_sanitizer_new(const cf_sanitize_opts *opts, cf_sanitizer **out, cf_err *err);
void cf_sanitizer_free(cf_sanitizer *s);

/* Kinds counted: the CF_ENT_COUNT built-ins, then each user pattern. */
size_t cf_sanitizer_nkinds(const cf_sanitizer *s);
const char *cf_sanitizer_kind_name(const cf_sanitizer *s, size_t kind);
unsigned cf_sanitizer_entities(const cf_sanitizer *s);

cf_sanitize_scratch *cf_sanitize_scratch_new(void);
void cf_sanitize_scratch_free(cf_sanitize_scratch *sc);
/* A work buffer of the scratch that cf_sanitize leaves alone (used to
 * decode JSON strings). */
cf_buf *cf_sanitize_scratch_decode_buf(cf_sanitize_scratch *sc);

/*
 * Redacts text[0..n). On success returns the number of redactions and
 * sets *out: the input itself when nothing changed, else text owned by the
 * scratch (valid until its next use). counts, when not NULL, has nkinds
 * slots and each redaction adds one to its kind. User patterns need valid
 * UTF-8 (the built-ins work on any bytes): check it first. -1 with err
 * when memory runs out or a user pattern fails to match (match limit).
 */
int cf_sanitize(const cf_sanitizer *s, cf_sanitize_scratch *sc, const char *text, size_t n,
                cf_str *out, uint32_t *counts, cf_err *err);

/*
 * Redacts every string value of a JSON document (object keys are kept),
 * appending the result to out. json must be valid JSON (as produced by an
 * encoder); CF_EINVAL otherwise. Returns the number of redactions.
 */
int cf_sanitize_json(const cf_sanitizer *s, cf_sanitize_scratch *sc, const char *json, size_t n,
                     cf_buf *out, uint32_t *counts, cf_err *err);

/*
 * For tests and the fuzz oracle. cf_entity_match_at runs entity e's own
 * anchored pattern (with its checksums) at text[at] and returns where the
 * match ends, setting *start where it begins (after at for "Bearer "), or
 * 0 when it does not match there or e has no pattern (ipv6).
 * It leaves the scratch's last result alone. cf_sanitize_covered tells
 * whether the built-in redactions of the last cf_sanitize on sc covered
 * every byte of the input's [start, end).
 */
size_t cf_entity_match_at(const cf_sanitizer *s, cf_sanitize_scratch *sc, int e, const char *text,
                          size_t n, size_t at, size_t *start);
int cf_sanitize_covered(const cf_sanitize_scratch *sc, size_t start, size_t end);

#endif
