/* HMAC-SHA256 with OpenSSL's EVP_MAC: the key is set once on a template
 * context; each call works on a duplicate, so threads can share it. */
#include "crucible/ingest/cf_hmac.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <stdlib.h>

struct cf_hmac {
    EVP_MAC *mac;
    EVP_MAC_CTX *tmpl;
};

int cf_hmac_new(const void *key, size_t n, cf_hmac **out, cf_err *err)
{
    *out = NULL;
    if (!key || n == 0)
        return cf_fail(err, CF_EINVAL, "user id key: must not be empty");
    cf_hmac *h = calloc(1, sizeof *h);
    if (!h)
        return cf_fail(err, CF_ENOMEM, "out of memory setting up HMAC");
    h->mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    if (h->mac)
        h->tmpl = EVP_MAC_CTX_new(h->mac);
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_end(),
    };
    if (!h->tmpl || !EVP_MAC_init(h->tmpl, key, n, params)) {
        cf_hmac_free(h);
        return cf_fail(err, CF_EIO, "OpenSSL cannot set up HMAC-SHA256");
    }
    *out = h;
    return 0;
}

void cf_hmac_free(cf_hmac *h)
{
    if (!h)
        return;
    EVP_MAC_CTX_free(h->tmpl);
    EVP_MAC_free(h->mac);
    free(h);
}

int cf_hmac_sha256(const cf_hmac *h, const void *data, size_t n, unsigned char mac[32],
                   cf_err *err)
{
    EVP_MAC_CTX *c = EVP_MAC_CTX_dup(h->tmpl);
    size_t len = 0;
    int ok = c && EVP_MAC_update(c, data, n) && EVP_MAC_final(c, mac, &len, 32) && len == 32;
    EVP_MAC_CTX_free(c);
    if (!ok)
        return cf_fail(err, CF_EIO, "HMAC-SHA256 failed");
    return 0;
}

static void to_hex(const unsigned char *mac, char out[CF_USER_HASH_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < CF_USER_HASH_LEN / 2; i++) {
        out[2 * i] = hex[mac[i] >> 4];
        out[2 * i + 1] = hex[mac[i] & 15];
    }
    out[CF_USER_HASH_LEN] = '\0';
}

int cf_hmac_user_id(const cf_hmac *h, const char *user_id, size_t n,
                    char out[CF_USER_HASH_LEN + 1], cf_err *err)
{
    unsigned char mac[32];
    if (cf_hmac_sha256(h, user_id, n, mac, err))
        return -1;
    to_hex(mac, out);
    return 0;
}

struct cf_hmac_worker {
    const cf_hmac *h;
    EVP_MAC_CTX *ctx;
};

cf_hmac_worker *cf_hmac_worker_new(const cf_hmac *h)
{
    cf_hmac_worker *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->h = h;
    w->ctx = EVP_MAC_CTX_dup(h->tmpl);
    if (!w->ctx) {
        free(w);
        return NULL;
    }
    return w;
}

void cf_hmac_worker_free(cf_hmac_worker *w)
{
    if (!w)
        return;
    EVP_MAC_CTX_free(w->ctx);
    free(w);
}

const cf_hmac *cf_hmac_worker_key(const cf_hmac_worker *w)
{
    return w->h;
}

int cf_hmac_worker_user_id(cf_hmac_worker *w, const char *user_id, size_t n,
                           char out[CF_USER_HASH_LEN + 1], cf_err *err)
{
    unsigned char mac[32];
    size_t len = 0;
    /* a NULL key reinitializes with the key already set (OpenSSL 3) */
    if (!EVP_MAC_init(w->ctx, NULL, 0, NULL) || !EVP_MAC_update(w->ctx, (const void *)user_id, n)
        || !EVP_MAC_final(w->ctx, mac, &len, sizeof mac) || len != 32)
        return cf_fail(err, CF_EIO, "HMAC-SHA256 failed");
    to_hex(mac, out);
    return 0;
}
