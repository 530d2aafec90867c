/* The server's key table, hashing and checks (cf_serve_keys.h). */
#include "crucible/serve/cf_serve_keys.h"

#include <ctype.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct cf_key_set {
    atomic_int refs;
    size_t n;
    cf_serve_key *keys;
};

struct cf_serve_keys {
    pthread_mutex_t mu;
    cf_key_set *set; /* NULL: none loaded */
    int required;
};

static const char *const SCOPES[] = {"ingest", "feedback", "read"};

const char *cf_key_scope_name(cf_key_scope s)
{
    return SCOPES[s];
}

/* ---- hashing ---------------------------------------------------------------------- */

static void to_hex(const unsigned char *b, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
    out[2 * n] = '\0';
}

static int from_hex(const char *hex, unsigned char *out, size_t n)
{
    if (!hex || strlen(hex) != 2 * n)
        return -1;
    for (size_t i = 0; i < 2 * n; i++) {
        int c = tolower((unsigned char)hex[i]);
        int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (v < 0)
            return -1;
        out[i / 2] = (unsigned char)(i % 2 ? (out[i / 2] | v) : v << 4);
    }
    return 0;
}

/* SHA-256: the secrets are 32 random bytes, so a fast hash is enough. */
static int sha256(const char *s, size_t n, unsigned char out[32])
{
    unsigned int len = 0;
    return EVP_Digest(s, n, out, &len, EVP_sha256(), NULL) == 1 && len == 32 ? 0 : -1;
}

int cf_serve_key_hash(const char *secret, size_t n, char hex[65])
{
    unsigned char h[32];
    if (sha256(secret, n, h))
        return -1;
    to_hex(h, 32, hex);
    return 0;
}

int cf_serve_key_generate(char secret[70], char public_id[30])
{
    unsigned char r[44];
    if (RAND_bytes(r, sizeof r) != 1)
        return -1;
    memcpy(secret, "cfsk_", 5);
    to_hex(r, 32, secret + 5);
    memcpy(public_id, "cfpk_", 5);
    to_hex(r + 32, 12, public_id + 5);
    OPENSSL_cleanse(r, sizeof r);
    return 0;
}

/* ---- the table ------------------------------------------------------------------------ */

cf_key_set *cf_key_set_new(size_t n)
{
    cf_key_set *set = calloc(1, sizeof *set);
    if (!set)
        return NULL;
    set->keys = n ? calloc(n, sizeof *set->keys) : NULL;
    if (n && !set->keys) {
        free(set);
        return NULL;
    }
    set->n = n;
    atomic_init(&set->refs, 1);
    return set;
}

int cf_key_set_put(cf_key_set *set, size_t i, const char *name, const char *public_id,
                   const char *hash_hex, const char *scope, const char *const *deps,
                   size_t ndeps, cf_err *err)
{
    cf_serve_key *k = &set->keys[i];
    int s = -1;
    for (int j = 0; j < 3; j++)
        if (scope && strcmp(scope, SCOPES[j]) == 0)
            s = j;
    if (s < 0)
        return cf_fail(err, CF_EINVAL, "key '%s': unknown scope '%s'", name, scope ? scope : "");
    if (from_hex(hash_hex, k->hash, 32))
        return cf_fail(err, CF_EINVAL, "key '%s': the secret hash is not 64 hex digits", name);
    k->scope = (cf_key_scope)s;
    k->name = strdup(name);
    k->public_id = strdup(public_id);
    k->deployments = ndeps ? calloc(ndeps, sizeof *k->deployments) : NULL;
    if (!k->name || !k->public_id || (ndeps && !k->deployments))
        return cf_fail(err, CF_ENOMEM, "out of memory");
    for (size_t d = 0; d < ndeps; d++) {
        k->deployments[d] = strdup(deps[d]);
        if (!k->deployments[d])
            return cf_fail(err, CF_ENOMEM, "out of memory");
        k->ndeployments = d + 1;
    }
    return 0;
}

void cf_key_set_unref(cf_key_set *set)
{
    if (!set || atomic_fetch_sub(&set->refs, 1) != 1)
        return;
    for (size_t i = 0; i < set->n; i++) {
        cf_serve_key *k = &set->keys[i];
        free(k->name);
        free(k->public_id);
        for (size_t d = 0; d < k->ndeployments; d++)
            free(k->deployments[d]);
        free(k->deployments);
    }
    free(set->keys);
    free(set);
}

cf_serve_keys *cf_serve_keys_new(void)
{
    cf_serve_keys *ks = calloc(1, sizeof *ks);
    if (ks)
        pthread_mutex_init(&ks->mu, NULL);
    return ks;
}

void cf_serve_keys_free(cf_serve_keys *ks)
{
    if (!ks)
        return;
    cf_key_set_unref(ks->set);
    pthread_mutex_destroy(&ks->mu);
    free(ks);
}

void cf_serve_keys_set(cf_serve_keys *ks, cf_key_set *set, int required)
{
    pthread_mutex_lock(&ks->mu);
    cf_key_set *old = ks->set;
    for (size_t i = 0; old && i < set->n; i++)
        for (size_t j = 0; j < old->n; j++)
            if (strcmp(set->keys[i].public_id, old->keys[j].public_id) == 0)
                atomic_store(&set->keys[i].used_at, atomic_load(&old->keys[j].used_at));
    ks->set = set;
    ks->required = ks->required || required;
    pthread_mutex_unlock(&ks->mu);
    cf_key_set_unref(old);
}

size_t cf_serve_keys_used(cf_serve_keys *ks, cf_key_use *out, size_t cap)
{
    size_t n = 0;
    pthread_mutex_lock(&ks->mu);
    for (size_t i = 0; ks->set && i < ks->set->n && n < cap; i++) {
        cf_serve_key *k = &ks->set->keys[i];
        int64_t at = atomic_exchange(&k->used_at, 0);
        if (!at)
            continue;
        snprintf(out[n].public_id, sizeof out[n].public_id, "%s", k->public_id);
        out[n++].at = at;
    }
    pthread_mutex_unlock(&ks->mu);
    return n;
}

/* ---- checking a request ------------------------------------------------------------------ */

/* The secret (and the public id, for Basic) a request presents; 0 when it
 * presents none, -1 when the header is malformed. */
typedef struct presented {
    char buf[512]; /* Basic's decoded "public:secret" */
    const char *secret;
    size_t secret_len;
    const char *public_id; /* Basic only; NUL-terminated inside buf */
} presented;

static const char *skip_ws(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

static size_t trimmed_len(const char *p)
{
    size_t n = strlen(p);
    while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
        n--;
    return n;
}

static int basic(const char *b64, presented *pr)
{
    size_t n = trimmed_len(b64);
    if (n == 0 || n % 4 || n / 4 * 3 >= sizeof pr->buf)
        return -1;
    int len = EVP_DecodeBlock((unsigned char *)pr->buf, (const unsigned char *)b64, (int)n);
    if (len < 0)
        return -1;
    for (size_t i = n; i > 0 && b64[i - 1] == '='; i--)
        len--; /* EVP_DecodeBlock counts the padding */
    pr->buf[len] = '\0';
    char *colon = memchr(pr->buf, ':', (size_t)len);
    if (!colon)
        return -1;
    *colon = '\0';
    pr->public_id = pr->buf;
    pr->secret = colon + 1;
    pr->secret_len = (size_t)len - (size_t)(colon + 1 - pr->buf);
    return 1;
}

static int presented_key(const char *authorization, const char *api_key, presented *pr)
{
    memset(pr, 0, sizeof *pr);
    if (api_key && *skip_ws(api_key)) {
        pr->secret = skip_ws(api_key);
        pr->secret_len = trimmed_len(pr->secret);
        return 1;
    }
    if (!authorization)
        return 0;
    const char *a = skip_ws(authorization);
    if (strncasecmp(a, "Bearer ", 7) == 0) {
        pr->secret = skip_ws(a + 7);
        pr->secret_len = trimmed_len(pr->secret);
        return pr->secret_len ? 1 : -1;
    }
    if (strncasecmp(a, "Basic ", 6) == 0)
        return basic(skip_ws(a + 6), pr);
    return -1;
}

/* The key whose hash matches: every live key is compared (in constant
 * time each), the public id first narrowing it for Basic. */
static const cf_serve_key *match(const cf_key_set *set, const presented *pr)
{
    unsigned char h[32];
    if (sha256(pr->secret, pr->secret_len, h))
        return NULL;
    const cf_serve_key *found = NULL;
    for (size_t i = 0; i < set->n; i++) {
        const cf_serve_key *k = &set->keys[i];
        int same = CRYPTO_memcmp(h, k->hash, sizeof h) == 0;
        if (same && (!pr->public_id || strcmp(pr->public_id, k->public_id) == 0))
            found = k;
    }
    OPENSSL_cleanse(h, sizeof h);
    return found;
}

static int allowed(cf_access need, cf_key_scope scope)
{
    switch (need) {
    case CF_ACCESS_INGEST:
        return scope == CF_SCOPE_INGEST;
    case CF_ACCESS_FEEDBACK:
        return scope == CF_SCOPE_INGEST || scope == CF_SCOPE_FEEDBACK;
    case CF_ACCESS_READ:
        return scope == CF_SCOPE_READ;
    default:
        return 1;
    }
}

static const char *needs(cf_access need)
{
    return need == CF_ACCESS_INGEST     ? "ingest"
           : need == CF_ACCESS_FEEDBACK ? "ingest or feedback"
                                        : "read";
}

/* The table and whether keys are required, under the lock (a reference). */
static cf_key_set *current(cf_serve_keys *ks, int *required)
{
    pthread_mutex_lock(&ks->mu);
    cf_key_set *set = ks->set;
    if (set)
        atomic_fetch_add(&set->refs, 1);
    *required = ks->required;
    pthread_mutex_unlock(&ks->mu);
    return set;
}

int cf_serve_keys_check(cf_serve_keys *ks, cf_access need, const char *authorization,
                        const char *api_key, const char *route, const cf_serve_key **key,
                        cf_key_set **held, char *msg, size_t cap)
{
    *key = NULL;
    *held = NULL;
    int required = 0;
    if (need == CF_ACCESS_OPEN || !ks)
        return 0;
    cf_key_set *set = current(ks, &required);
    if (!required) {
        cf_key_set_unref(set);
        return 0;
    }
    presented pr;
    int got = presented_key(authorization, api_key, &pr);
    const cf_serve_key *k = got > 0 && set ? match(set, &pr) : NULL;
    OPENSSL_cleanse(pr.buf, sizeof pr.buf);
    if (!k) {
        cf_key_set_unref(set);
        snprintf(msg, cap, "%s", got == 0 ? "an API key is required: Authorization: Bearer KEY, "
                                            "x-api-key: KEY, or Basic auth (PUBLIC_ID:KEY)"
                                 : got < 0 ? "the Authorization header is malformed: expected "
                                             "Bearer KEY or Basic base64(PUBLIC_ID:KEY)"
                                           : "the API key is not valid (unknown or revoked)");
        return 401;
    }
    if (!allowed(need, k->scope)) {
        snprintf(msg, cap, "the key '%s' (scope %s) may not use %s: it needs scope %s", k->name,
                 cf_key_scope_name(k->scope), route, needs(need));
        cf_key_set_unref(set);
        return 403;
    }
    atomic_store(&((cf_serve_key *)k)->used_at, cf_now_us());
    *key = k;
    *held = set;
    return 0;
}

int cf_serve_key_allows(const cf_serve_key *key, const char *deployment, size_t n)
{
    if (!key || key->ndeployments == 0)
        return 1;
    for (size_t i = 0; i < key->ndeployments; i++)
        if (strlen(key->deployments[i]) == n && memcmp(key->deployments[i], deployment, n) == 0)
            return 1;
    return 0;
}
