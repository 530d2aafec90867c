/*
 * SQLite backend: API keys (migration 7). Only the hash of a secret is
 * stored; the table's own migration text lives here so the migration list
 * (sqlite_open.c) takes one row.
 */
#include "sqlite_int.h"

#include <string.h>

const char sq_keys_migration[] =
    "CREATE TABLE api_keys ("
    "  seq INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL UNIQUE,"
    "  public_id TEXT NOT NULL UNIQUE,"
    "  secret_hash TEXT NOT NULL,"
    "  scope TEXT NOT NULL,"
    "  deployments TEXT NOT NULL DEFAULT '[]',"
    "  created_at INTEGER NOT NULL,"
    "  last_used_at INTEGER,"
    "  revoked_at INTEGER);";

static int64_t col_int(sqlite3_stmt *st, int i)
{
    return sqlite3_column_type(st, i) == SQLITE_NULL ? CF_NULL_INT : sqlite3_column_int64(st, i);
}

/* Runs st (prepared from sql) to its end; *changes receives the count. */
static int run(sq_store *s, const char *sql, const cf_str *args, size_t nargs, int64_t at,
               int *changes, const char *what, cf_err *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
        return sq_fail(s, err, what);
    for (size_t i = 0; i < nargs; i++)
        sq_bind_str(st, (int)i + 1, args[i]);
    sqlite3_bind_int64(st, (int)nargs + 1, at);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc == SQLITE_CONSTRAINT)
        return cf_fail(err, CF_EINVAL, "key name '%.*s' is already taken", (int)args[0].n,
                       args[0].p);
    if (rc != SQLITE_DONE)
        return sq_fail(s, err, what);
    if (changes)
        *changes = sqlite3_changes(s->db);
    return 0;
}

int sq_insert_key(cf_store *base, const cf_api_key *k, cf_err *err)
{
    const cf_str args[] = {k->name, k->public_id, k->secret_hash, k->scope, k->deployments};
    return run((sq_store *)base,
               "INSERT INTO api_keys (name, public_id, secret_hash, scope, deployments,"
               " created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
               args, 5, k->created_at, NULL, "creating an API key", err);
}

int sq_revoke_key(cf_store *base, cf_str name, int64_t at, cf_err *err)
{
    int changes = 0;
    if (run((sq_store *)base,
            "UPDATE api_keys SET revoked_at = coalesce(revoked_at, ?2) WHERE name = ?1", &name,
            1, at, &changes, "revoking an API key", err))
        return -1;
    if (changes == 0)
        return cf_fail(err, CF_ENOTFOUND, "no key named '%.*s'", (int)(name.n > 128 ? 128 : name.n),
                       name.p);
    return 0;
}

int sq_touch_key(cf_store *base, cf_str public_id, int64_t at, cf_err *err)
{
    return run((sq_store *)base,
               "UPDATE api_keys SET last_used_at = max(coalesce(last_used_at, ?2), ?2)"
               " WHERE public_id = ?1",
               &public_id, 1, at, NULL, "recording an API key's use", err);
}

int sq_list_keys(cf_store *base, cf_key_fn cb, void *ud, cf_err *err)
{
    sq_store *s = (sq_store *)base;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT name, public_id, secret_hash, scope, deployments, created_at,"
                           " last_used_at, revoked_at FROM api_keys ORDER BY name",
                           -1, &st, NULL) != SQLITE_OK)
        return sq_fail(s, err, "listing API keys");
    int rc, stop = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        cf_api_key k = {
            .name = sq_col_str(st, 0),
            .public_id = sq_col_str(st, 1),
            .secret_hash = sq_col_str(st, 2),
            .scope = sq_col_str(st, 3),
            .deployments = sq_col_str(st, 4),
            .created_at = col_int(st, 5),
            .last_used_at = col_int(st, 6),
            .revoked_at = col_int(st, 7),
        };
        stop = cb(ud, &k);
        if (stop)
            break;
    }
    if (!stop && rc != SQLITE_DONE) {
        sq_fail(s, err, "listing API keys");
        sqlite3_finalize(st);
        return -1;
    }
    sqlite3_finalize(st);
    return stop;
}
