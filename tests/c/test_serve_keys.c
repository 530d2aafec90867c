/* The server's key table (cf_serve_keys.c): hashing, the three ways to
 * present a key, scopes per route, deployments, the "required" rule,
 * table replacement and recorded uses. */
#include "cf_test.h"

#include <openssl/evp.h>

#include "crucible/serve/cf_serve_keys.h"

static char secret_a[70], pub_a[30], hash_a[65];
static char secret_b[70], pub_b[30], hash_b[65];

static cf_serve_keys *table(int required)
{
    cf_serve_keys *ks = cf_serve_keys_new();
    cf_key_set *set = cf_key_set_new(2);
    const char *deps[] = {"dep-a", "dep-c"};
    cf_err err;
    CHECK(cf_key_set_put(set, 0, "a", pub_a, hash_a, "ingest", deps, 2, &err) == 0);
    CHECK(cf_key_set_put(set, 1, "b", pub_b, hash_b, "feedback", NULL, 0, &err) == 0);
    cf_serve_keys_set(ks, set, required);
    return ks;
}

/* The status a request with these headers gets on a route needing `need`. */
static int status(cf_serve_keys *ks, cf_access need, const char *auth, const char *api_key,
                  const cf_serve_key **key)
{
    cf_key_set *held = NULL;
    char msg[300];
    const cf_serve_key *k = NULL;
    int st = cf_serve_keys_check(ks, need, auth, api_key, "POST /x", &k, &held, msg, sizeof msg);
    if (key)
        *key = k;
    cf_key_set_unref(held);
    return st;
}

static void basic_header(const char *user, const char *secret, char *out, size_t cap)
{
    char plain[200];
    unsigned char b64[280];
    int n = snprintf(plain, sizeof plain, "%s:%s", user, secret);
    EVP_EncodeBlock(b64, (const unsigned char *)plain, n);
    snprintf(out, cap, "Basic %s", b64);
}

static void test_generate_and_hash(void)
{
    CHECK(cf_serve_key_generate(secret_a, pub_a) == 0);
    CHECK(cf_serve_key_generate(secret_b, pub_b) == 0);
    CHECK(strncmp(secret_a, "cfsk_", 5) == 0 && strlen(secret_a) == 69);
    CHECK(strncmp(pub_a, "cfpk_", 5) == 0 && strlen(pub_a) == 29);
    CHECK(strcmp(secret_a, secret_b) != 0);
    CHECK(cf_serve_key_hash(secret_a, strlen(secret_a), hash_a) == 0);
    CHECK(cf_serve_key_hash(secret_b, strlen(secret_b), hash_b) == 0);
    char h[65];
    CHECK(cf_serve_key_hash("abc", 3, h) == 0); /* FIPS 180-2 */
    CHECK_STR(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void test_schemes(void)
{
    cf_serve_keys *ks = table(1);
    char bearer[120], basic[300];
    snprintf(bearer, sizeof bearer, "Bearer %s", secret_a);
    const cf_serve_key *k = NULL;
    CHECK(status(ks, CF_ACCESS_INGEST, bearer, NULL, &k) == 0);
    CHECK(k && strcmp(k->name, "a") == 0);
    snprintf(bearer, sizeof bearer, "bearer   %s  ", secret_a);
    CHECK(status(ks, CF_ACCESS_INGEST, bearer, NULL, NULL) == 0);
    CHECK(status(ks, CF_ACCESS_INGEST, NULL, secret_a, NULL) == 0);
    basic_header(pub_a, secret_a, basic, sizeof basic);
    CHECK(status(ks, CF_ACCESS_INGEST, basic, NULL, &k) == 0);
    CHECK(k && strcmp(k->name, "a") == 0);
    /* another key's public id, or a wrong secret */
    basic_header(pub_b, secret_a, basic, sizeof basic);
    CHECK(status(ks, CF_ACCESS_INGEST, basic, NULL, NULL) == 401);
    basic_header(pub_a, "cfsk_nope", basic, sizeof basic);
    CHECK(status(ks, CF_ACCESS_INGEST, basic, NULL, NULL) == 401);
    /* none, malformed, unknown */
    CHECK(status(ks, CF_ACCESS_INGEST, NULL, NULL, NULL) == 401);
    CHECK(status(ks, CF_ACCESS_INGEST, "Token abc", NULL, NULL) == 401);
    CHECK(status(ks, CF_ACCESS_INGEST, "Basic !!!", NULL, NULL) == 401);
    CHECK(status(ks, CF_ACCESS_INGEST, "Bearer ", NULL, NULL) == 401);
    CHECK(status(ks, CF_ACCESS_INGEST, NULL, "cfsk_0000", NULL) == 401);
    /* a prefix of the secret is not the secret */
    char cut[80];
    snprintf(cut, sizeof cut, "%.60s", secret_a);
    CHECK(status(ks, CF_ACCESS_INGEST, NULL, cut, NULL) == 401);
    /* open routes never ask */
    CHECK(status(ks, CF_ACCESS_OPEN, NULL, NULL, NULL) == 0);
    cf_serve_keys_free(ks);
}

static void test_scopes_and_deployments(void)
{
    cf_serve_keys *ks = table(1);
    const cf_serve_key *k = NULL;
    CHECK(status(ks, CF_ACCESS_FEEDBACK, NULL, secret_a, NULL) == 0); /* ingest may rate */
    CHECK(status(ks, CF_ACCESS_READ, NULL, secret_a, NULL) == 403);
    CHECK(status(ks, CF_ACCESS_INGEST, NULL, secret_b, NULL) == 403);
    CHECK(status(ks, CF_ACCESS_FEEDBACK, NULL, secret_b, &k) == 0);
    CHECK(cf_serve_key_allows(k, "anything", 8)); /* no list: every deployment */
    CHECK(status(ks, CF_ACCESS_INGEST, NULL, secret_a, &k) == 0);
    CHECK(cf_serve_key_allows(k, "dep-a", 5));
    CHECK(cf_serve_key_allows(k, "dep-c", 5));
    CHECK(!cf_serve_key_allows(k, "dep-b", 5));
    CHECK(!cf_serve_key_allows(k, "dep-a2", 6));
    CHECK(!cf_serve_key_allows(k, "dep", 3));
    CHECK(cf_serve_key_allows(NULL, "x", 1));
    cf_serve_keys_free(ks);
}

static void test_required_rule(void)
{
    cf_serve_keys *ks = table(0); /* as when no key row exists */
    CHECK(status(ks, CF_ACCESS_INGEST, NULL, NULL, NULL) == 0);
    cf_serve_keys_set(ks, cf_key_set_new(0), 1); /* a key exists, none live */
    CHECK(status(ks, CF_ACCESS_INGEST, NULL, NULL, NULL) == 401);
    CHECK(status(ks, CF_ACCESS_INGEST, NULL, secret_a, NULL) == 401);
    cf_serve_keys_set(ks, cf_key_set_new(0), 0); /* once required, stays so */
    CHECK(status(ks, CF_ACCESS_INGEST, NULL, NULL, NULL) == 401);
    cf_serve_keys_free(ks);
}

static void test_uses_and_replacement(void)
{
    cf_serve_keys *ks = table(1);
    cf_key_set *held = NULL;
    const cf_serve_key *k = NULL;
    char msg[200];
    CHECK(cf_serve_keys_check(ks, CF_ACCESS_INGEST, NULL, secret_a, "r", &k, &held, msg,
                              sizeof msg) == 0);
    /* the table is replaced while the request runs: its key stays valid */
    cf_key_set *next = cf_key_set_new(1);
    cf_err err;
    CHECK(cf_key_set_put(next, 0, "a", pub_a, hash_a, "ingest", NULL, 0, &err) == 0);
    cf_serve_keys_set(ks, next, 1);
    CHECK(strcmp(k->name, "a") == 0 && k->ndeployments == 2);
    cf_key_set_unref(held);
    cf_key_use uses[4];
    size_t n = cf_serve_keys_used(ks, uses, 4);
    CHECK(n == 1 && strcmp(uses[0].public_id, pub_a) == 0 && uses[0].at > 0);
    CHECK(cf_serve_keys_used(ks, uses, 4) == 0); /* drained */
    /* a revoked key (left out of the new table) is refused */
    cf_serve_keys_set(ks, cf_key_set_new(0), 1);
    CHECK(status(ks, CF_ACCESS_INGEST, NULL, secret_a, NULL) == 401);
    /* bad entries are refused */
    cf_key_set *bad = cf_key_set_new(1);
    CHECK(cf_key_set_put(bad, 0, "x", "p", hash_a, "admin", NULL, 0, &err) == -1);
    CHECK(cf_key_set_put(bad, 0, "x", "p", "zz", "read", NULL, 0, &err) == -1);
    cf_key_set_unref(bad);
    cf_serve_keys_free(ks);
}

int main(void)
{
    RUN(test_generate_and_hash);
    RUN(test_schemes);
    RUN(test_scopes_and_deployments);
    RUN(test_required_rule);
    RUN(test_uses_and_replacement);
    return cf_test_done();
}
