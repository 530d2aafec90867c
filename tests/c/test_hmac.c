/* HMAC-SHA256 against RFC 4231 vectors, and the user id hash. */
#include "cf_test.h"

#include "crucible/ingest/cf_hmac.h"

static void hexify(const unsigned char *m, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[m[i] >> 4];
        out[2 * i + 1] = hex[m[i] & 15];
    }
    out[2 * n] = '\0';
}

static void test_rfc4231(void)
{
    cf_hmac *h;
    cf_err err;
    unsigned char mac[32];
    char hex[65];
    /* test case 2 */
    CHECK(cf_hmac_new("Jefe", 4, &h, &err) == 0);
    const char *d = "what do ya want for nothing?";
    CHECK(cf_hmac_sha256(h, d, strlen(d), mac, &err) == 0);
    hexify(mac, 32, hex);
    CHECK_STR(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    char uid[17];
    CHECK(cf_hmac_user_id(h, d, strlen(d), uid, &err) == 0);
    CHECK_STR(uid, "5bdcc146bf60754e");
    /* the per-thread worker gives the same result, call after call */
    cf_hmac_worker *w = cf_hmac_worker_new(h);
    CHECK(w != NULL && cf_hmac_worker_key(w) == h);
    for (int i = 0; i < 3; i++) {
        char again[17];
        CHECK(cf_hmac_worker_user_id(w, d, strlen(d), again, &err) == 0);
        CHECK_STR(again, "5bdcc146bf60754e");
    }
    cf_hmac_worker_free(w);
    cf_hmac_free(h);
    /* test case 1: key = 20 x 0x0b, "Hi There" */
    unsigned char key[20];
    memset(key, 0x0b, sizeof key);
    CHECK(cf_hmac_new(key, sizeof key, &h, &err) == 0);
    CHECK(cf_hmac_sha256(h, "Hi There", 8, mac, &err) == 0);
    hexify(mac, 32, hex);
    CHECK_STR(hex, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
    /* an empty user id still hashes; the same id always gives the same hash */
    char a[17], b[17];
    CHECK(cf_hmac_user_id(h, "", 0, a, &err) == 0 && strlen(a) == 16);
    CHECK(cf_hmac_user_id(h, "user-123", 8, a, &err) == 0);
    CHECK(cf_hmac_user_id(h, "user-123", 8, b, &err) == 0);
    CHECK_STR(a, b);
    CHECK(cf_hmac_user_id(h, "user-124", 8, b, &err) == 0);
    CHECK(strcmp(a, b) != 0);
    cf_hmac_free(h);
    /* a different key gives a different hash */
    CHECK(cf_hmac_new("other", 5, &h, &err) == 0);
    CHECK(cf_hmac_user_id(h, "user-123", 8, b, &err) == 0);
    CHECK(strcmp(a, b) != 0);
    cf_hmac_free(h);
    CHECK(cf_hmac_new("", 0, &h, &err) == -1 && err.code == CF_EINVAL);
    cf_hmac_free(NULL);
}

int main(void)
{
    RUN(test_rfc4231);
    return cf_test_done();
}
