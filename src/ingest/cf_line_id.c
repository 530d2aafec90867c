/* Derived line ids (see cf_line_id.h): SHA-256 through OpenSSL's EVP, the
 * source's part hashed once and copied for each line. */
#include "crucible/ingest/cf_line_id.h"

#include <openssl/evp.h>
#include <stdlib.h>

/* Changing it changes every derived id: re-runs would store lines again. */
static const char TAG[] = "crucible-feedback line id v1";

struct cf_line_ids {
    EVP_MD_CTX *source; /* the tag and the name, hashed */
    EVP_MD_CTX *line;   /* scratch: a copy of source per line */
};

void cf_line_ids_free(cf_line_ids *ids)
{
    if (!ids)
        return;
    EVP_MD_CTX_free(ids->source);
    EVP_MD_CTX_free(ids->line);
    free(ids);
}

/* A length as 8 bytes, big-endian: the parts cannot run into each other. */
static int put_len(EVP_MD_CTX *c, uint64_t v)
{
    unsigned char b[8];
    for (int i = 7; i >= 0; i--, v >>= 8)
        b[i] = (unsigned char)(v & 0xff);
    return EVP_DigestUpdate(c, b, sizeof b);
}

cf_line_ids *cf_line_ids_new(const char *name, size_t n, cf_err *err)
{
    cf_line_ids *ids = calloc(1, sizeof *ids);
    if (!ids) {
        cf_fail(err, CF_ENOMEM, "out of memory deriving line ids");
        return NULL;
    }
    ids->source = EVP_MD_CTX_new();
    ids->line = EVP_MD_CTX_new();
    if (!ids->source || !ids->line || EVP_DigestInit_ex(ids->source, EVP_sha256(), NULL) != 1
        || EVP_DigestUpdate(ids->source, TAG, sizeof TAG) != 1 || put_len(ids->source, n) != 1
        || (n && EVP_DigestUpdate(ids->source, name, n) != 1)) {
        cf_line_ids_free(ids);
        cf_fail(err, CF_EIO, "cannot derive line ids: SHA-256 is not available");
        return NULL;
    }
    return ids;
}

int cf_line_id(cf_line_ids *ids, uint64_t line, const char *text, size_t n, char out[37],
               cf_err *err)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdn = 0;
    if (EVP_MD_CTX_copy_ex(ids->line, ids->source) != 1 || put_len(ids->line, line) != 1
        || put_len(ids->line, n) != 1 || (n && EVP_DigestUpdate(ids->line, text, n) != 1)
        || EVP_DigestFinal_ex(ids->line, md, &mdn) != 1 || mdn < 16)
        return cf_fail(err, CF_EIO, "cannot derive a line id: SHA-256 failed");
    md[6] = (unsigned char)((md[6] & 0x0f) | 0x80); /* version 8 */
    md[8] = (unsigned char)((md[8] & 0x3f) | 0x80); /* variant 10 */
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[md[i] >> 4];
        out[o++] = hex[md[i] & 0x0f];
    }
    out[o] = '\0';
    return 0;
}
