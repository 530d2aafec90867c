/*
 * ClickHouse backend: opening (the URL), the schema and its migrations,
 * settings, and the vtable.
 *
 * Schema (ClickHouse 18.16: no DateTime64, no transactions, no query
 * parameters): times are Int64 microseconds; JSON columns are String;
 * doubles are stored as their IEEE bits (UInt64: 18.16's float parser is
 * not exact for every double) with a MATERIALIZED Float64 beside them for
 * people querying the tables; every table is a MergeTree ordered by
 * (deployment_id, inserted_at, id), and seq (a per-process sequence) keeps
 * insertion order among equal times. Events are a ReplacingMergeTree on a
 * version column: an update writes a new version of the row, reads use
 * FINAL. A materialized view keyed by id (inference_event_ids) finds an
 * event by id without scanning.
 */
#include "ch_int.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BITS_TO_FLOAT(col) "reinterpretAsFloat64(reinterpretAsString(" col "))"
#define NULLABLE_FLOAT(col)                                                                 \
    "Nullable(Float64) MATERIALIZED if(isNull(" col "), NULL, " BITS_TO_FLOAT("assumeNotNull(" col ")") ")"

typedef struct ch_migration {
    int version;
    const char *name;
    const char *const *sql; /* NULL-terminated; each idempotent (IF NOT EXISTS) */
    /* Columns to add: (table, column, type) triples, NULL-terminated; each
     * added only when missing (the servers we support have no ADD COLUMN IF
     * NOT EXISTS), so the migration stays idempotent. */
    const char *const *columns;
} ch_migration;

static const char *const m1[] = {
    "CREATE TABLE IF NOT EXISTS inference_events ("
    " id String, deployment_id String, model_version_id Nullable(String),"
    " user_id_hash Nullable(String), prompt String, response String,"
    " latency_ms Nullable(Int64), token_count Nullable(Int64),"
    " quality_bits Nullable(UInt64), quality_score " NULLABLE_FLOAT("quality_bits") ","
    " metadata String, inserted_at Int64, seq UInt64, version UInt64)"
    " ENGINE = ReplacingMergeTree(version) ORDER BY (deployment_id, inserted_at, id)",
    "CREATE MATERIALIZED VIEW IF NOT EXISTS inference_event_ids"
    " ENGINE = ReplacingMergeTree ORDER BY id"
    " AS SELECT id, deployment_id, inserted_at FROM inference_events",
    "CREATE TABLE IF NOT EXISTS user_signals ("
    " id String, inference_event_id String, deployment_id String, signal_type String,"
    " edited_response Nullable(String), metadata String, inserted_at Int64, seq UInt64)"
    " ENGINE = MergeTree ORDER BY (deployment_id, inserted_at, id)",
    "CREATE TABLE IF NOT EXISTS curated_examples ("
    " id String, inference_event_id String, deployment_id String, curation_source String,"
    " curation_bits Nullable(UInt64), curation_score " NULLABLE_FLOAT("curation_bits") ","
    " prompt Nullable(String), response Nullable(String), exported UInt8,"
    " export_batch_id Nullable(String), inserted_at Int64, updated_at Int64, seq UInt64)"
    " ENGINE = MergeTree ORDER BY (deployment_id, inserted_at, id)",
    "CREATE TABLE IF NOT EXISTS drift_results ("
    " id String, deployment_id String, drift_type String, score_bits UInt64,"
    " score Float64 MATERIALIZED " BITS_TO_FLOAT("score_bits") ","
    " drifted UInt8, details String, inserted_at Int64, seq UInt64)"
    " ENGINE = MergeTree ORDER BY (deployment_id, inserted_at, id)",
    "CREATE TABLE IF NOT EXISTS trigger_events ("
    " id String, deployment_id String, trigger_type String, details String,"
    " inserted_at Int64, seq UInt64)"
    " ENGINE = MergeTree ORDER BY (deployment_id, inserted_at, id)",
    /* is_set 1: kv_set (the latest wins); 0: kv_get_or_set (the first wins
     * unless a kv_set exists). */
    "CREATE TABLE IF NOT EXISTS settings (key String, value String, is_set UInt8, at Int64)"
    " ENGINE = MergeTree ORDER BY key",
    NULL};
/* SQLite's quality indexes: the sort key already serves these reads. */
static const char *const m2[] = {NULL};
static const char *const m3[] = {
    "CREATE TABLE IF NOT EXISTS curated_export_marks (deployment_id String, curated_id String,"
    " export_batch_id String, exported_at Int64)"
    " ENGINE = MergeTree ORDER BY (deployment_id, curated_id)",
    NULL};
static const char *const m4[] = {
    "CREATE TABLE IF NOT EXISTS workflow_runs (id String, name String, script Nullable(String),"
    " status String, scheduled_for Nullable(Int64), started_at Int64,"
    " finished_at Nullable(Int64), lease_until Nullable(Int64), error Nullable(String),"
    " details String, seq UInt64, version UInt64)"
    " ENGINE = ReplacingMergeTree(version) ORDER BY (name, id)",
    NULL};

/* Export claims (ch_claim.c): versions of (deployment, row, claim), the
 * latest read FINAL; withdrawn 1 ends a claim. */
static const char *const m5[] = {
    "CREATE TABLE IF NOT EXISTS curated_export_claims (deployment_id String,"
    " curated_id String, claim_token String, claimed_until Int64, withdrawn UInt8,"
    " version UInt64)"
    " ENGINE = ReplacingMergeTree(version) ORDER BY (deployment_id, curated_id, claim_token)",
    NULL};

/* The other backends add an index holding the narrow columns light scans
 * read; ClickHouse stores each column apart and its tables are ordered by
 * (deployment_id, inserted_at, id) already, so the version has nothing to
 * do here and is recorded to keep the versions equal. */
static const char *const m6[] = {NULL};

/* Typed scores on events that no signal type fits (ch_scores.c). */
static const char *const m8[] = {
    "CREATE TABLE IF NOT EXISTS scores (id String, inference_event_id String,"
    " deployment_id String, name String, data_type String, value_bits Nullable(UInt64),"
    " value " NULLABLE_FLOAT("value_bits") ", string_value Nullable(String),"
    " comment Nullable(String), source String, inserted_at Int64, seq UInt64)"
    " ENGINE = MergeTree ORDER BY (deployment_id, name, inserted_at, id)",
    NULL};

/* The data lifecycle's deletion audit: versions of a record, the latest
 * read FINAL; never a raw user id. */
static const char *const m9[] = {
    "CREATE TABLE IF NOT EXISTS deletion_audit (id String, action String,"
    " subject Nullable(String), deployment_id Nullable(String), status String,"
    " started_at Int64, finished_at Nullable(Int64), details String, version UInt64)"
    " ENGINE = ReplacingMergeTree(version) ORDER BY id",
    NULL};

/* Which quality checks ran on an event and which passed (CF_QCHECKS_* bits;
 * NULL: none, as for every older row). */
static const char *const m10[] = {NULL};
static const char *const m10_columns[] = {"inference_events", "quality_checks",
                                          "Nullable(UInt32)", NULL};

/* SQLite's user index by bucket: ClickHouse finds a user's events by its
 * sort key and a scan, as before. */
static const char *const m11[] = {NULL};
/* PostgreSQL's index for retention of scores: nothing to do here */
static const char *const m13[] = {NULL};
/* SQL backends index the deletion audit by status and time; ClickHouse
 * reads it whole (FINAL) and sorts: nothing to add. */
static const char *const m14[] = {NULL};

/* The other backends' maintained per-deployment event counts: ClickHouse
 * counts a deployment's events from its sort key's first column, fast
 * enough as it is (cf_event_counts.h). */
static const char *const m12[] = {NULL};

static const ch_migration migrations[] = {
    {1, "initial schema", m1, NULL},
    {2, "quality indexes", m2, NULL},
    {3, "curated export marks", m3, NULL},
    {4, "workflow runs", m4, NULL},
    {5, "curated export claims", m5, NULL},
    {6, "light scan covering index", m6, NULL},
    {7, "api keys", ch_keys_migration, NULL}, /* ch_keys.c */
    {8, "scores", m8, NULL},
    {9, "data lifecycle", m9, NULL},
    {10, "quality checks", m10, m10_columns},
    {11, "user index by bucket", m11, NULL},
    {12, "deployment event counts", m12, NULL},
    {13, "scores by deployment and time", m13, NULL},
    {14, "deletion audit by status and time", m14, NULL},
};

#define N_MIGRATIONS (sizeof migrations / sizeof migrations[0])

static int table_exists(ch_store *s, const char *table, int *exists, cf_err *err)
{
    cf_buf q = CF_BUF_INIT;
    cf_buf_str(&q, "SELECT count() FROM system.tables WHERE database = ");
    ch_quote(&q, cf_cstr(s->database));
    cf_buf_str(&q, " AND name = ");
    ch_quote(&q, cf_cstr(table));
    int64_t n = 0;
    /* Without selecting the database, which may not exist yet. */
    char *saved = s->url;
    s->url = s->url_nodb;
    int rc = ch_query_int(s, &q, "reading the schema version", &n, err);
    s->url = saved;
    cf_buf_free(&q);
    *exists = n > 0;
    return rc;
}

static int ch_schema_version(cf_store *base, int *version, cf_err *err)
{
    ch_store *s = (ch_store *)base;
    int exists = 0;
    *version = 0;
    if (table_exists(s, "schema_migrations", &exists, err))
        return -1;
    if (!exists)
        return 0;
    cf_buf q = CF_BUF_INIT;
    cf_buf_str(&q, "SELECT max(version) FROM schema_migrations");
    int64_t v = 0;
    int rc = ch_query_int(s, &q, "reading the schema version", &v, err);
    cf_buf_free(&q);
    *version = (int)v;
    return rc;
}

/* Runs sql on the server without selecting the database (which may not
 * exist yet). */
static int exec_nodb(ch_store *s, const char *sql, const char *what, cf_err *err)
{
    char *saved = s->url;
    s->url = s->url_nodb;
    int rc = ch_exec(s, sql, strlen(sql), what, err);
    s->url = saved;
    return rc;
}

/* Adds the (table, column, type) triples of cols that the table lacks. */
static int add_columns(ch_store *s, const char *const *cols, const char *what, cf_err *err)
{
    for (size_t k = 0; cols && cols[k]; k += 3) {
        cf_buf q = CF_BUF_INIT;
        cf_buf_str(&q, "SELECT count() FROM system.columns WHERE database = currentDatabase()"
                       " AND table = ");
        ch_quote(&q, cf_cstr(cols[k]));
        cf_buf_str(&q, " AND name = ");
        ch_quote(&q, cf_cstr(cols[k + 1]));
        int64_t n = 0;
        int rc = ch_query_int(s, &q, what, &n, err);
        q.n = 0;
        if (rc == 0 && n == 0) {
            cf_buf_str(&q, "ALTER TABLE ");
            cf_buf_str(&q, cols[k]);
            cf_buf_str(&q, " ADD COLUMN ");
            cf_buf_str(&q, cols[k + 1]);
            cf_buf_putc(&q, ' ');
            cf_buf_str(&q, cols[k + 2]);
            rc = cf_buf_failed(&q) ? cf_fail(err, CF_ENOMEM, "out of memory: %s", what)
                                   : ch_exec(s, q.p, q.n, what, err);
        }
        cf_buf_free(&q);
        if (rc)
            return -1;
    }
    return 0;
}

static int ch_migrate(cf_store *base, int *applied, cf_err *err)
{
    ch_store *s = (ch_store *)base;
    if (applied)
        *applied = 0;
    char mkdb[200];
    snprintf(mkdb, sizeof mkdb, "CREATE DATABASE IF NOT EXISTS %s", s->database);
    if (exec_nodb(s, mkdb, "creating the database", err))
        return -1;
    const char *mk = "CREATE TABLE IF NOT EXISTS schema_migrations (version UInt32, name String,"
                     " applied_at Int64) ENGINE = MergeTree ORDER BY version";
    if (ch_exec(s, mk, strlen(mk), "creating schema_migrations", err))
        return -1;
    int current = 0;
    if (ch_schema_version(base, &current, err))
        return -1;
    if (current > migrations[N_MIGRATIONS - 1].version)
        return cf_store_refuse_newer_schema(current, migrations[N_MIGRATIONS - 1].version, err);
    int n = 0;
    for (size_t i = 0; i < N_MIGRATIONS; i++) {
        const ch_migration *m = &migrations[i];
        if (m->version <= current)
            continue;
        char what[128];
        snprintf(what, sizeof what, "migration %d (%s)", m->version, m->name);
        for (size_t k = 0; m->sql[k]; k++)
            if (ch_exec(s, m->sql[k], strlen(m->sql[k]), what, err))
                return -1;
        if (add_columns(s, m->columns, what, err))
            return -1;
        cf_buf row = CF_BUF_INIT;
        ch_json_key(&row, "version", 1);
        cf_buf_int(&row, m->version);
        ch_json_str(&row, "name", cf_cstr(m->name));
        ch_json_int(&row, "applied_at", cf_now_us());
        cf_buf_str(&row, "}\n");
        int rc = ch_insert(s, "schema_migrations", &row, what, err);
        cf_buf_free(&row);
        if (rc)
            return -1;
        n++;
    }
    if (applied)
        *applied = n;
    return 0;
}

/* ---- settings ------------------------------------------------------------------ */

static int kv_read(ch_store *s, const char *key, char **out, cf_err *err)
{
    *out = NULL;
    cf_buf q = CF_BUF_INIT;
    cf_buf_str(&q, "SELECT value FROM settings WHERE key = ");
    ch_quote(&q, cf_cstr(key));
    cf_buf_str(&q, " ORDER BY is_set DESC, if(is_set = 1, -at, at) LIMIT 1");
    ch_rows r;
    int rc = ch_query(s, &q, "reading a setting", &r, err);
    cf_buf_free(&q);
    if (rc)
        return -1;
    rc = ch_rows_next(&r, 1, err);
    if (rc == 1) {
        *out = malloc(r.f[0].n + 1);
        if (!*out) {
            ch_rows_close(&r);
            return cf_fail(err, CF_ENOMEM, "out of memory reading setting '%s'", key);
        }
        memcpy(*out, r.f[0].p, r.f[0].n);
        (*out)[r.f[0].n] = '\0';
    }
    ch_rows_close(&r);
    return rc < 0 ? -1 : 0;
}

static int kv_write(ch_store *s, const char *key, cf_str value, int is_set, cf_err *err)
{
    if (!value.p)
        return cf_fail(err, CF_EINVAL, "setting '%s': value is required", key);
    cf_buf row = CF_BUF_INIT;
    ch_json_key(&row, "key", 1);
    cf_buf_json_string(&row, key, strlen(key));
    ch_json_str(&row, "value", value);
    ch_json_int(&row, "is_set", is_set);
    ch_json_int(&row, "at", (int64_t)ch_next_seq());
    cf_buf_str(&row, "}\n");
    int rc = cf_buf_failed(&row) ? cf_fail(err, CF_ENOMEM, "out of memory writing a setting")
                                 : ch_insert(s, "settings", &row, "writing a setting", err);
    cf_buf_free(&row);
    return rc;
}

static int ch_kv_get(cf_store *base, const char *key, char **out, cf_err *err)
{
    return kv_read((ch_store *)base, key, out, err);
}

static int ch_kv_set(cf_store *base, const char *key, cf_str value, cf_err *err)
{
    return kv_write((ch_store *)base, key, value, 1, err);
}

/* Set unless present: a first-writer row, then the value that won. */
static int ch_kv_get_or_set(cf_store *base, const char *key, cf_str value, char **out,
                            cf_err *err)
{
    ch_store *s = (ch_store *)base;
    *out = NULL;
    if (kv_read(s, key, out, err))
        return -1;
    if (*out)
        return 0;
    if (kv_write(s, key, value, 0, err))
        return -1;
    return kv_read(s, key, out, err);
}

/* ---- lifetime ----------------------------------------------------------------------- */

static void ch_close(cf_store *base)
{
    ch_store *s = (ch_store *)base;
    for (int i = 0; i < s->nidle; i++)
        cf_http_conn_close(s->idle[i]);
    free(s->url);
    free(s->url_nodb);
    free(s->shown);
    free(s->server);
    free(s->database);
    free(s->user_header);
    free(s->key_header);
    free(s);
}

static const cf_store_vt ch_vt = {
    .name = "clickhouse",
    .migrate = ch_migrate,
    .schema_version = ch_schema_version,
    .insert_events = ch_insert_events,
    .insert_signal = ch_insert_signal,
    .update_events = ch_update_events,
    .insert_curated = ch_insert_curated,
    .mark_curated_exported = ch_mark_curated_exported,
    .insert_drift = ch_insert_drift,
    .insert_trigger = ch_insert_trigger,
    .open_cursor = ch_open_cursor,
    .count = ch_count,
    .kv_get = ch_kv_get,
    .kv_set = ch_kv_set,
    .kv_get_or_set = ch_kv_get_or_set,
    .close = ch_close,
    .count_by_type = ch_count_by_type,
    .open_unscored_cursor = ch_open_unscored_cursor,
    .open_columns = ch_open_columns,
    .mark_curated_exported_stream = ch_mark_curated_exported_stream,
    .open_light_events = ch_open_light_events,
    .open_events_page = ch_open_events_page,
    .events_page = CH_IDS_PAGE,
    .insert_curated_new = ch_insert_curated_new,
    .last_export_at = ch_last_export_at,
    .list_deployments = ch_list_deployments,
    .events_by_response_id = ch_events_by_response_id,
    .insert_run = ch_insert_run,
    .update_run = ch_update_run,
    .list_runs = ch_list_runs,
    .insert_score = ch_insert_score,
    .list_scores = ch_list_scores,
    .claim_curated = ch_claim_curated,
    .release_curated_claim = ch_release_curated_claim,
    .insert_key = ch_insert_key,
    .list_keys = ch_list_keys,
    .revoke_key = ch_revoke_key,
    .touch_key = ch_touch_key,
    .purge = ch_purge,
    .list_user_exports = ch_list_user_exports,
    .count_orphans = ch_count_orphans,
    .put_deletion = ch_put_deletion,
    .list_deletions = ch_list_deletions,
};

/* ---- the URL ---------------------------------------------------------------------------- */

static int hexval(int c)
{
    return isdigit(c) ? c - '0' : isxdigit(c) ? (tolower(c) - 'a' + 10) : -1;
}

/* Percent-decodes p[0..n) into a new string; control bytes are refused
 * (they would end a header line). */
static char *decode(const char *p, size_t n)
{
    char *o = malloc(n + 1), *w = o;
    if (!o)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)p[i];
        if (c == '%' && i + 2 < n && hexval(p[i + 1]) >= 0 && hexval(p[i + 2]) >= 0) {
            c = hexval(p[i + 1]) * 16 + hexval(p[i + 2]);
            i += 2;
        }
        if (c < 0x20 || c == 0x7f) {
            free(o);
            return NULL;
        }
        *w++ = (char)c;
    }
    *w = '\0';
    return o;
}

static char *dup_printf(const char *fmt, const char *a, const char *b, const char *c)
{
    size_t n = strlen(fmt) + strlen(a) + strlen(b) + strlen(c) + 1;
    char *o = malloc(n);
    if (o)
        snprintf(o, n, fmt, a, b, c);
    return o;
}

/* The URL's query (after '?', up to '#'): lease_settle_ms=N, the only
 * parameter (the wait of the workflow lease protocol, ch_runs.c),
 * 1 to 60000 ms. */
static int url_params(const char *q, long *settle_ms, cf_err *err)
{
    while (*q && *q != '#') {
        size_t n = strcspn(q, "&#");
        const char *eq = memchr(q, '=', n);
        size_t kn = eq ? (size_t)(eq - q) : n;
        if (n == 0) {
            q++;
            continue;
        }
        if (kn != 15 || memcmp(q, "lease_settle_ms", 15) != 0)
            return cf_fail(err, CF_EINVAL,
                           "ClickHouse URL: unknown parameter '%.*s' (known: lease_settle_ms)",
                           (int)(kn > 64 ? 64 : kn), q);
        const char *v = eq ? eq + 1 : q + n;
        size_t vn = (size_t)(q + n - v);
        long ms = 0;
        int ok = vn > 0 && vn <= 5 && strspn(v, "0123456789") >= vn;
        for (size_t i = 0; ok && i < vn; i++)
            ms = ms * 10 + (v[i] - '0');
        if (!ok || ms < 1 || ms > 60000)
            return cf_fail(err, CF_EINVAL,
                           "ClickHouse URL: lease_settle_ms must be a whole number of"
                           " milliseconds from 1 to 60000, got '%.*s'",
                           (int)(vn > 64 ? 64 : vn), v);
        *settle_ms = ms;
        q += n;
        if (*q == '&')
            q++;
    }
    return 0;
}

/* A ClickHouse URL's parts: user and password decoded (malloc'd; NULL
 * when absent), host, port and database with their defaults. */
typedef struct ch_url {
    char *user, *password;
    char host[256], port[16], db[128];
    long settle_ms;
} ch_url;

static void url_free(ch_url *u)
{
    free(u->user);
    free(u->password);
}

/* host[:port][/database] in hostp..end (the database runs on from end):
 * NULL, or what was expected instead. */
static const char *host_port_db(const char *hostp, const char *end, ch_url *u)
{
    size_t hl = (size_t)(end - hostp);
    const char *colon = NULL;
    if (hl && hostp[0] == '[') {
        const char *rb = memchr(hostp, ']', hl);
        if (rb && rb + 1 < end && rb[1] == ':')
            colon = rb + 1;
    } else {
        colon = memchr(hostp, ':', hl);
    }
    size_t hostn = colon ? (size_t)(colon - hostp) : hl;
    size_t portn = colon ? (size_t)(end - colon - 1) : 0;
    if (hostn == 0 || hostn >= sizeof u->host)
        return "a host (clickhouse://[user[:password]@]host[:port][/database])";
    if (colon && (portn == 0 || portn > 5 || strspn(colon + 1, "0123456789") < portn))
        return "a port of 1 to 5 digits";
    if (*end == '/') {
        const char *d = end + 1;
        size_t dn = strcspn(d, "?#");
        if (dn && (dn >= sizeof u->db
                   || strspn(d, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                "0123456789_") < dn))
            return "a database name of letters, digits and underscores";
        if (dn) {
            memcpy(u->db, d, dn);
            u->db[dn] = '\0';
        }
    }
    memcpy(u->host, hostp, hostn);
    u->host[hostn] = '\0';
    if (strpbrk(u->host, " \t\r\n\"'\\<>{}|^`"))
        return "a host name without spaces or quotes";
    if (colon) {
        memcpy(u->port, colon + 1, portn);
        u->port[portn] = '\0';
    }
    return NULL;
}

/* clickhouse://[user[:password]@]host[:port][/database][?lease_settle_ms=N] */
static int parse_url(const char *url, ch_url *u, cf_err *err)
{
    static const char scheme[] = "clickhouse://";
    memset(u, 0, sizeof *u);
    snprintf(u->port, sizeof u->port, "8123");
    snprintf(u->db, sizeof u->db, "default");
    u->settle_ms = CH_LEASE_SETTLE_MS;
    if (strncmp(url, scheme, strlen(scheme)) != 0)
        return cf_fail(err, CF_EINVAL, "a ClickHouse URL starts with clickhouse://");
    const char *p = url + strlen(scheme);
    const char *end = p + strcspn(p, "/?#");
    const char *query = p + strcspn(p, "?#");
    if (*query == '?' && url_params(query + 1, &u->settle_ms, err))
        return -1;
    /* user:password@ may hold '/' when percent-encoded only; find the last '@'. */
    const char *at = NULL;
    for (const char *q = p; q < end; q++)
        if (*q == '@')
            at = q;
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        u->user = decode(p, (size_t)((colon ? colon : at) - p));
        u->password = colon ? decode(colon + 1, (size_t)(at - colon - 1)) : NULL;
        if (!u->user || (colon && !u->password)) {
            url_free(u);
            return cf_fail(err, CF_EINVAL,
                           "ClickHouse URL: the user or password has a control character");
        }
    }
    const char *bad = host_port_db(at ? at + 1 : p, end, u);
    if (bad) {
        url_free(u);
        /* The URL as given, its user:password@ part hidden. */
        return cf_fail(err, CF_EINVAL, "ClickHouse URL 'clickhouse://%s%.200s': expected %s",
                       at ? "***@" : "", at ? at + 1 : p, bad);
    }
    return 0;
}

/* The store's URLs, headers and names for messages, from the parsed URL. */
static int fill_store(ch_store *s, const ch_url *u)
{
    char hostport[300];
    snprintf(hostport, sizeof hostport, "%s:%s", u->host, u->port);
    s->server = strdup(hostport);
    s->database = strdup(u->db);
    s->url = dup_printf("http://%s/?database=%s%s", hostport, u->db,
                        "&max_query_size=67108864&output_format_json_quote_64bit_integers=0"
                        "&max_insert_block_size=16777216&join_use_nulls=0"
                        "&optimize_move_to_prewhere=0");
    char shown[700];
    snprintf(shown, sizeof shown, "clickhouse://%s%s%s/%s", u->user ? u->user : "",
             u->user ? (u->password ? ":***@" : "@") : "", hostport, u->db);
    s->shown = strdup(shown);
    s->url_nodb = dup_printf("http://%s/?%s%s", hostport, "max_query_size=67108864", "");
    s->user_header = dup_printf("X-ClickHouse-User: %s%s%s", u->user ? u->user : "default", "",
                                "");
    if (u->password)
        s->key_header = dup_printf("X-ClickHouse-Key: %s%s%s", u->password, "", "");
    s->headers[0] = s->user_header;
    s->headers[1] = s->key_header;
    return !s->server || !s->database || !s->url || !s->shown || !s->user_header
                   || (u->password && !s->key_header) || !s->url_nodb
               ? -1
               : 0;
}

int cf_store_clickhouse_open(const char *url, const cf_store_opts *opts, cf_store **out,
                             cf_err *err)
{
    (void)opts;
    *out = NULL;
    ch_url u;
    if (parse_url(url, &u, err))
        return -1;
    ch_store *s = calloc(1, sizeof *s);
    if (s) {
        s->base.vt = &ch_vt;
        s->lease_settle_ms = u.settle_ms;
    }
    int filled = s ? fill_store(s, &u) : -1;
    url_free(&u);
    if (filled) {
        if (s)
            ch_close(&s->base);
        return cf_fail(err, CF_ENOMEM, "out of memory opening a ClickHouse store");
    }
    /* A ping says whether the server answers and the credentials are
     * good, naming what to check otherwise. The database itself may not
     * exist yet: migrate creates it. */
    s->retry_ms = 1000;
    int down = exec_nodb(s, "SELECT 1", "connecting", err);
    s->retry_ms = 15000;
    if (down) {
        ch_close(&s->base);
        return -1;
    }
    *out = &s->base;
    return 0;
}
