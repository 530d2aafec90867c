/*
 * A request body as it arrives: identity or gzip, bounded after
 * decompression. gzip is inflated in fixed-size steps as the chunks come
 * in and refused as soon as the output passes the limit, so a small gzip
 * that inflates to gigabytes costs at most limit bytes of memory (a
 * "gzip bomb").
 */
#ifndef CRUCIBLE_CF_SERVE_BODY_H
#define CRUCIBLE_CF_SERVE_BODY_H

#include <stddef.h>

#include "crucible/core/cf_buf.h"

enum { CF_BODY_OK = 0, CF_BODY_TOO_LARGE, CF_BODY_CORRUPT, CF_BODY_NOMEM };

typedef struct cf_body {
    cf_buf out;          /* the decompressed body (NUL-terminated after finish) */
    size_t limit;
    size_t raw;          /* bytes received (also bounded by limit) */
    int gzip;
    int z_ready;         /* the inflate stream is initialized */
    int z_done;          /* the gzip stream ended */
    void *z;             /* z_stream */
} cf_body;

/* gzip: the body is gzip-compressed. 0 or CF_BODY_NOMEM. */
int cf_body_init(cf_body *b, int gzip, size_t limit);
/* The client announced n bytes (Content-Length): an identity body is
 * given room for them at once (at most CF_BODY_EXPECT_MAX), instead of
 * growing and copying as the chunks arrive. CF_BODY_OK or CF_BODY_NOMEM. */
#define CF_BODY_EXPECT_MAX ((size_t)8 << 20)
int cf_body_expect(cf_body *b, size_t n);
/* Appends a chunk as received. CF_BODY_OK, or the reason to refuse. */
int cf_body_feed(cf_body *b, const char *p, size_t n);
/* The whole body arrived: CF_BODY_OK, or CF_BODY_CORRUPT for a gzip
 * stream cut short. */
int cf_body_finish(cf_body *b);
void cf_body_free(cf_body *b);

#endif
