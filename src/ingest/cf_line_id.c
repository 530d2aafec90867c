/* Derived line ids (see cf_line_id.h): SHA-256 through OpenSSL's EVP, the
 * source's part hashed once and copied for each line. */
#include "crucible/ingest/cf_line_id.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

/* Changing it changes every derived id: re-runs would store lines again. */
static const char TAG[] = "crucible-feedback line id v2";

struct cf_line_ids {
    EVP_MD_CTX *source; /* the tag and the name, hashed */
    EVP_MD_CTX *line;   /* scratch: a copy of source per line */
    unsigned char prefix[4]; /* the source's own digest, first bytes: every id's */
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
    /* the prefix: SHA-256 of the same tag and name, finished on a copy */
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdn = 0;
    if (EVP_MD_CTX_copy_ex(ids->line, ids->source) != 1
        || EVP_DigestFinal_ex(ids->line, md, &mdn) != 1 || mdn < sizeof ids->prefix) {
        cf_line_ids_free(ids);
        cf_fail(err, CF_EIO, "cannot derive line ids: SHA-256 failed");
        return NULL;
    }
    memcpy(ids->prefix, md, sizeof ids->prefix);
    return ids;
}

/* Writes the low `bits` bits of v (most significant first) at bit *at of
 * the 16-byte id, stepping over the version (bits 48-51) and variant
 * (64-65) fields. */
static void put_bits(unsigned char id[16], unsigned *at, uint64_t v, unsigned bits)
{
    while (bits > 0) {
        if (*at == 48)
            *at = 52;
        else if (*at == 64)
            *at = 66;
        bits--;
        if (v >> bits & 1)
            id[*at / 8] |= (unsigned char)(0x80 >> (*at % 8));
        (*at)++;
    }
}

static uint64_t be_bits(const unsigned char *p, unsigned bytes)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < bytes; i++)
        v = v << 8 | p[i];
    return v;
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
    unsigned char id[16] = {0};
    unsigned at = 0;
    put_bits(id, &at, be_bits(ids->prefix, 4), 32);
    put_bits(id, &at, line & ((UINT64_C(1) << 40) - 1), 40);
    put_bits(id, &at, be_bits(md, 7) >> 6, 50);
    id[6] |= 0x80; /* version 8 */
    id[8] |= 0x80; /* variant 10 */
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[id[i] >> 4];
        out[o++] = hex[id[i] & 0x0f];
    }
    out[o] = '\0';
    return 0;
}
