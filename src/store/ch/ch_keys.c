/*
 * ClickHouse backend: API keys (migration 7). Only the hash of a secret is
 * stored. ClickHouse has no UPDATE and no uniqueness, so the table is a
 * plain MergeTree of facts about keys: the row written at creation, one
 * per revocation and one per recorded use, each carrying the key's fields.
 * A key is read by aggregating its rows (GROUP BY name: the earliest
 * revoked_at, the latest last_used_at), so a use recorded at the moment of
 * a revocation can never hide it, as a replaced version could. A name is
 * refused when a row with it exists; two creations of one name at the
 * same instant on two machines both pass that check (no transactions):
 * `keys list` then shows one of them.
 */
#include "ch_int.h"

#include <string.h>

const char *const ch_keys_migration[] = {
    "CREATE TABLE IF NOT EXISTS api_keys (name String, public_id String, secret_hash String,"
    " scope String, deployments String, created_at Int64, last_used_at Nullable(Int64),"
    " revoked_at Nullable(Int64), seq UInt64)"
    " ENGINE = MergeTree ORDER BY (name, seq)",
    NULL};

#define KEY_READ                                                                            \
    "SELECT name, any(public_id), any(secret_hash), any(scope), any(deployments),"          \
    " min(created_at), max(last_used_at), min(revoked_at) FROM api_keys"

static void read_key(const cf_str *f, cf_api_key *k)
{
    k->name = f[0];
    k->public_id = f[1];
    k->secret_hash = f[2];
    k->scope = f[3];
    k->deployments = f[4];
    k->created_at = ch_int(f[5]);
    k->last_used_at = ch_int(f[6]);
    k->revoked_at = ch_int(f[7]);
}

/* Calls cb for each key whose column equals v (column NULL: every key). */
static int each_key(ch_store *s, const char *column, cf_str v, cf_key_fn cb, void *ud,
                    cf_err *err)
{
    cf_buf q = CF_BUF_INIT;
    cf_buf_str(&q, KEY_READ);
    if (column) {
        cf_buf_str(&q, " WHERE ");
        cf_buf_str(&q, column);
        cf_buf_str(&q, " = ");
        ch_quote(&q, v);
    }
    cf_buf_str(&q, " GROUP BY name ORDER BY name");
    ch_rows r;
    int rc = ch_query(s, &q, "reading API keys", &r, err);
    cf_buf_free(&q);
    if (rc)
        return -1;
    int stop = 0;
    while (!stop && (rc = ch_rows_next(&r, 8, err)) == 1) {
        cf_api_key k;
        read_key(r.f, &k);
        stop = cb(ud, &k);
    }
    ch_rows_close(&r);
    if (stop)
        return stop;
    return rc < 0 ? -1 : 0;
}

static int write_key(ch_store *s, const cf_api_key *k, const char *what, cf_err *err)
{
    cf_buf b = CF_BUF_INIT;
    ch_json_key(&b, "name", 1);
    cf_buf_json_string(&b, k->name.p, k->name.n);
    ch_json_str(&b, "public_id", k->public_id);
    ch_json_str(&b, "secret_hash", k->secret_hash);
    ch_json_str(&b, "scope", k->scope);
    ch_json_str(&b, "deployments", k->deployments);
    ch_json_int(&b, "created_at", k->created_at);
    ch_json_int(&b, "last_used_at", k->last_used_at);
    ch_json_int(&b, "revoked_at", k->revoked_at);
    ch_json_int(&b, "seq", (int64_t)ch_next_seq());
    cf_buf_str(&b, "}\n");
    int rc = cf_buf_failed(&b) ? cf_fail(err, CF_ENOMEM, "out of memory %s", what)
                               : ch_insert(s, "api_keys", &b, what, err);
    cf_buf_free(&b);
    return rc;
}

/* The one key found, copied (its strings point into text), to write
 * back once the read is closed. */
typedef struct found {
    int seen;
    cf_api_key k;
    cf_buf text;
} found;

static cf_str keep(cf_buf *b, size_t at, cf_str v)
{
    return v.p ? (cf_str){b->p + at, v.n} : CF_NULL_STR;
}

static int copy_key(void *ud, const cf_api_key *k)
{
    found *f = ud;
    const cf_str *v[] = {&k->name, &k->public_id, &k->secret_hash, &k->scope, &k->deployments};
    size_t at[5];
    for (int i = 0; i < 5; i++) {
        at[i] = f->text.n;
        if (v[i]->p)
            cf_buf_append(&f->text, v[i]->p, v[i]->n);
    }
    if (cf_buf_failed(&f->text))
        return 1;
    f->seen = 1;
    f->k = *k;
    f->k.name = keep(&f->text, at[0], k->name);
    f->k.public_id = keep(&f->text, at[1], k->public_id);
    f->k.secret_hash = keep(&f->text, at[2], k->secret_hash);
    f->k.scope = keep(&f->text, at[3], k->scope);
    f->k.deployments = keep(&f->text, at[4], k->deployments);
    return 1;
}

/* Reads the key whose column is v into f (f->seen 0: none). */
static int find_key(ch_store *s, const char *column, cf_str v, found *f, cf_err *err)
{
    memset(f, 0, sizeof *f);
    if (each_key(s, column, v, copy_key, f, err) < 0)
        return -1;
    if (cf_buf_failed(&f->text)) {
        cf_buf_free(&f->text);
        return cf_fail(err, CF_ENOMEM, "out of memory reading an API key");
    }
    return 0;
}

static int count_taken(void *ud, const cf_api_key *k)
{
    (void)k;
    *(int *)ud = 1;
    return 1;
}

int ch_insert_key(cf_store *base, const cf_api_key *k, cf_err *err)
{
    ch_store *s = (ch_store *)base;
    int taken = 0;
    if (each_key(s, "name", k->name, count_taken, &taken, err) < 0)
        return -1;
    if (taken)
        return cf_fail(err, CF_EINVAL, "key name '%.*s' is already taken", (int)k->name.n,
                       k->name.p);
    return write_key(s, k, "creating an API key", err);
}

int ch_revoke_key(cf_store *base, cf_str name, int64_t at, cf_err *err)
{
    ch_store *s = (ch_store *)base;
    found f;
    if (find_key(s, "name", name, &f, err))
        return -1;
    int rc = 0;
    if (!f.seen)
        rc = cf_fail(err, CF_ENOTFOUND, "no key named '%.*s'", (int)(name.n > 128 ? 128 : name.n),
                     name.p);
    else if (f.k.revoked_at == CF_NULL_INT) { /* revoked already: its first time stays */
        f.k.revoked_at = at;
        f.k.last_used_at = CF_NULL_INT;
        rc = write_key(s, &f.k, "revoking an API key", err);
    }
    cf_buf_free(&f.text);
    return rc;
}

int ch_touch_key(cf_store *base, cf_str public_id, int64_t at, cf_err *err)
{
    ch_store *s = (ch_store *)base;
    found f;
    if (find_key(s, "public_id", public_id, &f, err))
        return -1;
    int rc = 0;
    if (f.seen && (f.k.last_used_at == CF_NULL_INT || f.k.last_used_at < at)) {
        f.k.last_used_at = at;
        f.k.revoked_at = CF_NULL_INT; /* min() over the rows keeps a revocation */
        rc = write_key(s, &f.k, "recording an API key's use", err);
    }
    cf_buf_free(&f.text);
    return rc;
}

int ch_list_keys(cf_store *base, cf_key_fn cb, void *ud, cf_err *err)
{
    return each_key((ch_store *)base, NULL, CF_NULL_STR, cb, ud, err);
}
