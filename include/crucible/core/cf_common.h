/* Shared plumbing for every C module: errors, length-carrying strings, time. */
#ifndef CRUCIBLE_CF_COMMON_H
#define CRUCIBLE_CF_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifndef CF_VERSION
#define CF_VERSION "0.0.0"
#endif

/* Error codes carried in cf_err.code. */
enum {
    CF_OK = 0,
    CF_EINVAL,       /* bad input: names the field and the problem */
    CF_ENOTFOUND,    /* the row or file asked for does not exist */
    CF_EDB,          /* the database failed or went away */
    CF_ENOMEM,       /* an allocation failed */
    CF_EIO,          /* a file or network operation failed */
    CF_EUNSUPPORTED  /* valid request this build cannot serve */
};

typedef struct cf_err {
    int code;
    char msg[512];
} cf_err;

/* Sets err (when not NULL) and returns -1, so callers can `return cf_fail(...)`. */
int cf_fail(cf_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A string with its length; p == NULL stands for SQL NULL / absent. */
typedef struct cf_str {
    const char *p;
    size_t n;
} cf_str;

#define CF_NULL_STR ((cf_str){NULL, 0})
cf_str cf_cstr(const char *s);  /* NULL stays NULL */

/* Absent integer column value. */
#define CF_NULL_INT INT64_MIN
/* Unbounded time in a query. */
#define CF_NO_TIME INT64_MIN

/* The 64-bit finalizer of MurmurHash3: spreads every input bit over the
 * output (hash tables, feature hashing, fingerprints). */
static inline uint64_t cf_mix64(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
}

/* Microseconds since the Unix epoch, UTC. */
int64_t cf_now_us(void);
/* CLOCK_MONOTONIC in nanoseconds. */
int64_t cf_mono_ns(void);

/* "2026-11-23T08:53:00.123456Z"; buf needs 32 bytes. Returns buf. */
char *cf_format_time(int64_t us, char *buf, size_t cap);

/* Parses the format above (and "...Z" without fraction, or with fewer
 * digits). Returns 0 and sets *us, or -1. */
int cf_parse_time(const char *s, int64_t *us);

#endif
