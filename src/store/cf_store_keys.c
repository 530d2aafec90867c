/* API keys above the vtable: the checks every backend relies on
 * (cf_api_key_check), and the insert that runs them. */
#include <string.h>

#include "crucible/store/cf_store.h"

static int is_hex64(cf_str h)
{
    if (!h.p || h.n != 64)
        return 0;
    for (size_t i = 0; i < h.n; i++)
        if (!strchr("0123456789abcdef", h.p[i]) || h.p[i] == '\0')
            return 0;
    return 1;
}

static int printable(cf_str s)
{
    for (size_t i = 0; i < s.n; i++)
        if ((unsigned char)s.p[i] < 0x20 || s.p[i] == 0x7f)
            return 0;
    return 1;
}

int cf_api_key_check(const cf_api_key *k, cf_err *err)
{
    static const char *const scopes[] = {"ingest", "feedback", "read", NULL};
    if (!k->name.p || k->name.n == 0 || k->name.n > 128 || !printable(k->name))
        return cf_fail(err, CF_EINVAL,
                       "key name: required, 1 to 128 bytes without control characters");
    if (!k->public_id.p || k->public_id.n == 0 || k->public_id.n > 64
        || !printable(k->public_id) || memchr(k->public_id.p, ':', k->public_id.n))
        return cf_fail(err, CF_EINVAL, "key public_id: required, at most 64 bytes, no ':'");
    if (!is_hex64(k->secret_hash))
        return cf_fail(err, CF_EINVAL, "key secret_hash: must be 64 lowercase hex digits");
    int known = 0;
    for (int i = 0; scopes[i] && k->scope.p; i++)
        known |= strlen(scopes[i]) == k->scope.n && memcmp(scopes[i], k->scope.p, k->scope.n) == 0;
    if (!known)
        return cf_fail(err, CF_EINVAL, "key scope: must be one of ingest, feedback, read");
    if (!k->deployments.p || k->deployments.n < 2 || k->deployments.p[0] != '['
        || k->deployments.p[k->deployments.n - 1] != ']')
        return cf_fail(err, CF_EINVAL, "key deployments: must be a JSON array of ids");
    return 0;
}

int cf_store_insert_key(cf_store *s, const cf_api_key *k, cf_err *e)
{
    if (cf_api_key_check(k, e))
        return -1;
    cf_api_key row = *k;
    if (row.created_at == 0 || row.created_at == CF_NULL_INT)
        row.created_at = cf_now_us();
    row.last_used_at = CF_NULL_INT;
    row.revoked_at = CF_NULL_INT;
    return s->vt->insert_key(s, &row, e);
}
