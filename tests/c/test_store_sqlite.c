/* The storage interface on the SQLite backend: migrations, batches,
 * cursors, counts, updates, settings, hostile input and failures. */
#include "cf_test.h"

#include <math.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crucible/store/cf_store.h"
#include "store/sqlite/sqlite_int.h"
#include "crucible/core/cf_uuid.h"

#define DB "test_store.db"

static void remove_db(void)
{
    unlink(DB);
    unlink(DB "-wal");
    unlink(DB "-shm");
}

static cf_store *open_fresh(void)
{
    remove_db();
    cf_store *s = NULL;
    cf_err err;
    if (cf_store_open("sqlite:" DB, NULL, &s, &err)) {
        fprintf(stderr, "open: %s\n", err.msg);
        return NULL;
    }
    int applied = -1;
    if (cf_store_migrate(s, &applied, &err))
        fprintf(stderr, "migrate: %s\n", err.msg);
    return s;
}

static cf_event event(const char *dep, const char *prompt, int64_t at)
{
    cf_event e;
    memset(&e, 0, sizeof e);
    e.deployment_id = cf_cstr(dep);
    e.prompt = cf_cstr(prompt);
    e.response = cf_cstr("a response");
    e.latency_ms = CF_NULL_INT;
    e.token_count = CF_NULL_INT;
    e.quality_score = NAN;
    e.inserted_at = at;
    return e;
}

static int64_t count(cf_store *s, cf_kind k, const char *dep)
{
    cf_query q;
    cf_query_init(&q);
    q.deployment_id = cf_cstr(dep);
    int64_t n = -1;
    cf_err err;
    if (cf_store_count(s, k, &q, &n, &err))
        fprintf(stderr, "count: %s\n", err.msg);
    return n;
}

static void test_urls(void)
{
    cf_store_url u;
    cf_err err;
    CHECK(cf_store_parse_url("sqlite:./x.db", &u, &err) == 0);
    CHECK_STR(u.target, "./x.db");
    CHECK(cf_store_parse_url("sqlite:///tmp/x.db", &u, &err) == 0);
    CHECK_STR(u.target, "/tmp/x.db");
    CHECK(cf_store_parse_url("sqlite::memory:", &u, &err) == 0);
    CHECK_STR(u.target, ":memory:");
    CHECK(cf_store_parse_url("sqlite:", &u, &err) == -1 && err.code == CF_EINVAL);
    CHECK(cf_store_parse_url("", &u, &err) == -1 && err.code == CF_EINVAL);
    CHECK(cf_store_parse_url("mysql://h/db", &u, &err) == -1 && err.code == CF_EINVAL);
    CHECK(strstr(err.msg, "mysql://h/db") != NULL);
    CHECK(cf_store_parse_url("postgres://u:pw@h:5433/db", &u, &err) == 0);
    CHECK(strcmp(u.scheme->backend, "postgres") == 0);
    CHECK_STR(u.target, "postgres://u:pw@h:5433/db");
    CHECK(cf_store_parse_url("postgresx://u:secret@h/db", &u, &err) == -1 && err.code == CF_EINVAL);
    CHECK(strstr(err.msg, "secret") == NULL && strstr(err.msg, "u:***@h/db") != NULL);
    char shown[64];
    cf_store_redact_url("postgres://me:p@ss:w@rd@host/db?x=1", shown, sizeof shown);
    CHECK_STR(shown, "postgres://me:***@host/db?x=1");
    cf_store_redact_url("postgres://host/db", shown, sizeof shown);
    CHECK_STR(shown, "postgres://host/db");
    CHECK(cf_store_parse_url("clickhouse://h", &u, &err) == 0 && strcmp(u.scheme->backend, "clickhouse") == 0);
    CHECK_STR(u.target, "clickhouse://h");
}

/* A connection's page cache: SQLite's default, or the size asked for. */
static int64_t cache_size_of(cf_store *s)
{
    sqlite3_stmt *st = NULL;
    int64_t v = 0;
    if (sqlite3_prepare_v2(((sq_store *)s)->db, "PRAGMA cache_size", -1, &st, NULL) == SQLITE_OK
        && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static void test_cache_size(void)
{
    cf_store *s = open_fresh();
    CHECK(s && cache_size_of(s) == -2000);
    cf_store_close(s);
    cf_store_opts o = {.cache_kb = 4096};
    cf_err err;
    CHECK(cf_store_open("sqlite:" DB, &o, &s, &err) == 0);
    CHECK(cache_size_of(s) == -4096);
    cf_store_close(s);
}

static void test_migrate_idempotent(void)
{
    cf_store *s = open_fresh();
    CHECK(s != NULL);
    cf_err err;
    int v = -1, applied = -1;
    CHECK(cf_store_schema_version(s, &v, &err) == 0 && v >= 1);
    CHECK(cf_store_migrate(s, &applied, &err) == 0 && applied == 0);
    cf_store_close(s);
    /* A second connection sees the same schema and applies nothing. */
    CHECK(cf_store_open("sqlite:" DB, NULL, &s, &err) == 0);
    CHECK(cf_store_migrate(s, &applied, &err) == 0 && applied == 0);
    cf_store_close(s);
    /* A brand-new database reports version 0 before migrating. */
    remove_db();
    CHECK(cf_store_open("sqlite:" DB, NULL, &s, &err) == 0);
    CHECK(cf_store_schema_version(s, &v, &err) == 0 && v == 0);
    CHECK(cf_store_migrate(s, &applied, &err) == 0 && applied >= 1);
    cf_store_close(s);
}

static int table_count(sq_store *sq)
{
    sqlite3_stmt *st = NULL;
    int n = -1;
    if (sqlite3_prepare_v2(sq->db, "SELECT count(*) FROM sqlite_master WHERE type = 'table'", -1,
                           &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return n;
}

/* A database at a schema version above the newest migration this binary
 * knows is refused, naming both versions, and nothing is written to it. */
static void test_migrate_refuses_newer(void)
{
    cf_store *s = open_fresh();
    cf_err err;
    int known = -1, v = -1, applied = -1;
    CHECK(cf_store_schema_version(s, &known, &err) == 0 && known >= 1);
    sq_store *sq = (sq_store *)s;
    char sql[160];
    snprintf(sql, sizeof sql,
             "INSERT INTO schema_migrations (version, name, applied_at) VALUES (%d, 'x', 0)",
             known + 1);
    CHECK(sqlite3_exec(sq->db, sql, NULL, NULL, NULL) == SQLITE_OK);
    CHECK(cf_store_migrate(s, &applied, &err) == -1 && err.code == CF_EUNSUPPORTED);
    char want[160];
    snprintf(want, sizeof want, "schema version %d, newer than this binary knows (%d)", known + 1,
             known);
    CHECK(strstr(err.msg, want) != NULL);
    CHECK(cf_store_schema_version(s, &v, &err) == 0 && v == known + 1);
    cf_store_close(s);
    /* only the version table, from a newer binary: no table is created */
    remove_db();
    CHECK(cf_store_open("sqlite:" DB, NULL, &s, &err) == 0);
    sq = (sq_store *)s;
    CHECK(sqlite3_exec(sq->db,
                       "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY,"
                       " name TEXT NOT NULL, applied_at INTEGER NOT NULL);"
                       "INSERT INTO schema_migrations VALUES (1000, 'future', 0)",
                       NULL, NULL, NULL) == SQLITE_OK);
    int changes = sqlite3_total_changes(sq->db);
    CHECK(cf_store_migrate(s, &applied, &err) == -1 && err.code == CF_EUNSUPPORTED);
    CHECK(strstr(err.msg, "schema version 1000") != NULL);
    CHECK(table_count(sq) == 1 && sqlite3_total_changes(sq->db) == changes);
    cf_store_close(s);
    remove_db();
}

static void test_insert_and_cursor(void)
{
    cf_store *s = open_fresh();
    cf_err err;
    cf_event ev[3] = {event("d1", "first", 1000), event("d1", "second", 2000),
                      event("d2", "other", 1500)};
    ev[1].model_version_id = cf_cstr("m-2");
    ev[1].latency_ms = 120;
    ev[1].token_count = 42;
    ev[1].quality_score = 0.875;
    ev[1].metadata = cf_cstr("{\"source\":\"api\"}");
    ev[1].user_id_hash = cf_cstr("abcdef0123456789");
    char ids[3][37];
    CHECK(cf_store_insert_events(s, ev, 3, ids, NULL, &err) == 3);
    CHECK(cf_uuid_valid(ids[0], 36) && cf_uuid_valid(ids[1], 36));
    CHECK(strcmp(ids[0], ids[1]) < 0);
    CHECK(count(s, CF_KIND_EVENTS, "d1") == 2);
    CHECK(count(s, CF_KIND_EVENTS, "d2") == 1);

    cf_query q;
    cf_query_init(&q);
    q.deployment_id = cf_cstr("d1");
    cf_cursor *c = NULL;
    CHECK(cf_store_open_cursor(s, CF_KIND_EVENTS, &q, &c, &err) == 0);
    cf_row row;
    CHECK(cf_cursor_next(c, &row, &err) == 1);
    CHECK_MEM(row.event.prompt.p, row.event.prompt.n, "first");
    CHECK(row.event.model_version_id.p == NULL);
    CHECK(row.event.latency_ms == CF_NULL_INT);
    CHECK(isnan(row.event.quality_score));
    CHECK_MEM(row.event.metadata.p, row.event.metadata.n, "{}");
    CHECK(row.event.inserted_at == 1000);
    CHECK(cf_cursor_next(c, &row, &err) == 1);
    CHECK_MEM(row.event.prompt.p, row.event.prompt.n, "second");
    CHECK_MEM(row.event.id.p, row.event.id.n, ids[1]);
    CHECK_MEM(row.event.model_version_id.p, row.event.model_version_id.n, "m-2");
    CHECK(row.event.latency_ms == 120 && row.event.token_count == 42);
    CHECK(row.event.quality_score == 0.875);
    CHECK_MEM(row.event.metadata.p, row.event.metadata.n, "{\"source\":\"api\"}");
    CHECK_MEM(row.event.user_id_hash.p, row.event.user_id_hash.n, "abcdef0123456789");
    CHECK(cf_cursor_next(c, &row, &err) == 0);
    CHECK(cf_cursor_next(c, &row, &err) == 0); /* stays at the end */
    cf_cursor_close(c);

    /* newest first, limit, offset, time window */
    q.descending = 1;
    q.limit = 1;
    CHECK(cf_store_open_cursor(s, CF_KIND_EVENTS, &q, &c, &err) == 0);
    CHECK(cf_cursor_next(c, &row, &err) == 1);
    CHECK_MEM(row.event.prompt.p, row.event.prompt.n, "second");
    CHECK(cf_cursor_next(c, &row, &err) == 0);
    cf_cursor_close(c);
    q.offset = 1;
    CHECK(cf_store_open_cursor(s, CF_KIND_EVENTS, &q, &c, &err) == 0);
    CHECK(cf_cursor_next(c, &row, &err) == 1);
    CHECK_MEM(row.event.prompt.p, row.event.prompt.n, "first");
    cf_cursor_close(c);
    cf_query_init(&q);
    q.since = 1000;
    q.until = 2000; /* until is exclusive */
    int64_t n = 0;
    CHECK(cf_store_count(s, CF_KIND_EVENTS, &q, &n, &err) == 0 && n == 2);
    /* by id */
    cf_query_init(&q);
    q.id = cf_cstr(ids[2]);
    CHECK(cf_store_open_cursor(s, CF_KIND_EVENTS, &q, &c, &err) == 0);
    CHECK(cf_cursor_next(c, &row, &err) == 1);
    CHECK_MEM(row.event.deployment_id.p, row.event.deployment_id.n, "d2");
    cf_cursor_close(c);
    cf_store_close(s);
}

static void test_batch_is_atomic(void)
{
    cf_store *s = open_fresh();
    cf_err err;
    cf_event ev[3] = {event("d", "a", 0), event("d", "b", 0), event("d", "c", 0)};
    ev[0].id = cf_cstr("fixed-id");
    ev[2].id = cf_cstr("fixed-id"); /* duplicate inside the batch */
    CHECK(cf_store_insert_events(s, ev, 3, NULL, NULL, &err) == -1);
    CHECK(err.code == CF_EINVAL);
    CHECK(strstr(err.msg, "events[2]") && strstr(err.msg, "fixed-id"));
    CHECK(count(s, CF_KIND_EVENTS, "d") == 0);
    /* a missing required field is named and nothing is written */
    cf_event bad = event("d", "p", 0);
    bad.response = CF_NULL_STR;
    CHECK(cf_store_insert_events(s, &bad, 1, NULL, NULL, &err) == -1);
    CHECK(strstr(err.msg, "events.response[0]") != NULL);
    /* the connection stays usable */
    ev[2].id = CF_NULL_STR;
    CHECK(cf_store_insert_events(s, ev, 3, NULL, NULL, &err) == 3);
    CHECK(count(s, CF_KIND_EVENTS, "d") == 3);
    cf_store_close(s);
}

static void test_hostile_strings(void)
{
    cf_store *s = open_fresh();
    cf_err err;
    const char *evil = "x'); DROP TABLE inference_events;--";
    const char text_with_nul[] = "before\0after";
    cf_event e = event(evil, "prompt", 0);
    e.id = cf_cstr("id' OR '1'='1");
    e.response = (cf_str){text_with_nul, sizeof text_with_nul - 1};
    e.metadata = cf_cstr("{\"k\":\"\\u00e9 \xf0\x9f\x98\x80\"}");
    CHECK(cf_store_insert_events(s, &e, 1, NULL, NULL, &err) == 1);
    CHECK(count(s, CF_KIND_EVENTS, evil) == 1);
    cf_query q;
    cf_query_init(&q);
    q.deployment_id = cf_cstr(evil);
    cf_cursor *c;
    cf_row row;
    CHECK(cf_store_open_cursor(s, CF_KIND_EVENTS, &q, &c, &err) == 0);
    CHECK(cf_cursor_next(c, &row, &err) == 1);
    CHECK_MEM(row.event.deployment_id.p, row.event.deployment_id.n, evil);
    CHECK_MEM(row.event.id.p, row.event.id.n, "id' OR '1'='1");
    CHECK(row.event.response.n == sizeof text_with_nul - 1);
    CHECK(memcmp(row.event.response.p, text_with_nul, sizeof text_with_nul - 1) == 0);
    cf_cursor_close(c);
    /* nothing matches the injection's intent */
    q.deployment_id = cf_cstr("x' OR '1'='1");
    int64_t n = -1;
    CHECK(cf_store_count(s, CF_KIND_EVENTS, &q, &n, &err) == 0 && n == 0);
    cf_store_close(s);
}

static void test_signals(void)
{
    cf_store *s = open_fresh();
    cf_err err;
    cf_event e = event("d", "p", 100);
    char ids[1][37];
    CHECK(cf_store_insert_events(s, &e, 1, ids, NULL, &err) == 1);
    cf_signal g;
    memset(&g, 0, sizeof g);
    g.inference_event_id = cf_cstr(ids[0]);
    g.signal_type = cf_cstr("thumbs_up");
    char sid[37];
    CHECK(cf_store_insert_signal(s, &g, sid, &err) == 0);
    CHECK(cf_uuid_valid(sid, 36));
    g.signal_type = cf_cstr("edit");
    g.edited_response = cf_cstr("better text");
    g.metadata = cf_cstr("{\"source\":\"ui\"}");
    CHECK(cf_store_insert_signal(s, &g, sid, &err) == 0);
    /* unknown event */
    g.inference_event_id = cf_cstr("no-such-event");
    CHECK(cf_store_insert_signal(s, &g, sid, &err) == -1 && err.code == CF_ENOTFOUND);
    CHECK(strstr(err.msg, "no-such-event") != NULL);
    CHECK(count(s, CF_KIND_SIGNALS, "d") == 2);

    /* signals of one event, and by type */
    cf_query q;
    cf_query_init(&q);
    q.event_id = cf_cstr(ids[0]);
    q.type = cf_cstr("edit");
    cf_cursor *c;
    cf_row row;
    CHECK(cf_store_open_cursor(s, CF_KIND_SIGNALS, &q, &c, &err) == 0);
    CHECK(cf_cursor_next(c, &row, &err) == 1);
    CHECK_MEM(row.signal.edited_response.p, row.signal.edited_response.n, "better text");
    CHECK_MEM(row.signal.deployment_id.p, row.signal.deployment_id.n, "d");
    CHECK(cf_cursor_next(c, &row, &err) == 0);
    cf_cursor_close(c);

    /* events with their signals attached */
    cf_event more[2] = {event("d", "no signals", 200), event("d", "third", 300)};
    CHECK(cf_store_insert_events(s, more, 2, NULL, NULL, &err) == 2);
    cf_query_init(&q);
    q.deployment_id = cf_cstr("d");
    q.include_signals = 1;
    CHECK(cf_store_open_cursor(s, CF_KIND_EVENTS, &q, &c, &err) == 0);
    CHECK(cf_cursor_next(c, &row, &err) == 1);
    CHECK(row.event.nsignals == 2);
    CHECK_MEM(row.event.signals[0].signal_type.p, row.event.signals[0].signal_type.n, "thumbs_up");
    CHECK_MEM(row.event.signals[1].signal_type.p, row.event.signals[1].signal_type.n, "edit");
    CHECK_MEM(row.event.signals[1].edited_response.p, row.event.signals[1].edited_response.n,
              "better text");
    CHECK_MEM(row.event.signals[1].metadata.p, row.event.signals[1].metadata.n,
              "{\"source\":\"ui\"}");
    CHECK(cf_cursor_next(c, &row, &err) == 1);
    CHECK(row.event.nsignals == 0);
    CHECK(cf_cursor_next(c, &row, &err) == 1);
    CHECK(cf_cursor_next(c, &row, &err) == 0);
    cf_cursor_close(c);
    /* filters that do not apply are errors, not silently ignored */
    cf_query_init(&q);
    q.type = cf_cstr("x");
    CHECK(cf_store_open_cursor(s, CF_KIND_EVENTS, &q, &c, &err) == -1 && err.code == CF_EINVAL);
    cf_query_init(&q);
    q.include_signals = 1;
    CHECK(cf_store_open_cursor(s, CF_KIND_SIGNALS, &q, &c, &err) == -1);
    cf_store_close(s);
}

static void test_update(void)
{
    cf_store *s = open_fresh();
    cf_err err;
    cf_event ev[2] = {event("d", "a", 1), event("d", "b", 2)};
    ev[0].metadata = cf_cstr("{\"keep\":1}");
    char ids[2][37];
    CHECK(cf_store_insert_events(s, ev, 2, ids, NULL, &err) == 2);
    cf_str uid[2] = {cf_cstr(ids[0]), cf_cstr(ids[1])};
    cf_event_update up[2];
    memset(up, 0, sizeof up);
    up[0].fields = CF_UPD_QUALITY;
    up[0].quality_score = 0.25;
    up[1].fields = CF_UPD_QUALITY | CF_UPD_TOKENS;
    up[1].quality_score = 1.0;
    up[1].token_count = 7;
    CHECK(cf_store_update_events(s, uid, up, 2, &err) == 2);
    cf_query q;
    cf_query_init(&q);
    cf_cursor *c;
    cf_row row;
    CHECK(cf_store_open_cursor(s, CF_KIND_EVENTS, &q, &c, &err) == 0);
    CHECK(cf_cursor_next(c, &row, &err) == 1);
    CHECK(row.event.quality_score == 0.25);
    CHECK_MEM(row.event.metadata.p, row.event.metadata.n, "{\"keep\":1}"); /* untouched */
    CHECK(cf_cursor_next(c, &row, &err) == 1);
    CHECK(row.event.quality_score == 1.0 && row.event.token_count == 7);
    cf_cursor_close(c);
    /* one missing id: nothing changes */
    cf_str bad[2] = {cf_cstr(ids[0]), cf_cstr("missing")};
    up[0].quality_score = 0.9;
    CHECK(cf_store_update_events(s, bad, up, 2, &err) == -1 && err.code == CF_ENOTFOUND);
    CHECK(cf_store_open_cursor(s, CF_KIND_EVENTS, &q, &c, &err) == 0);
    CHECK(cf_cursor_next(c, &row, &err) == 1 && row.event.quality_score == 0.25);
    cf_cursor_close(c);
    cf_store_close(s);
}

static void test_curated_drift_triggers(void)
{
    cf_store *s = open_fresh();
    cf_err err;
    cf_curated cx[3];
    memset(cx, 0, sizeof cx);
    const char *src[3] = {"user_edit", "high_quality", "hard_examples"};
    for (int i = 0; i < 3; i++) {
        cx[i].inference_event_id = cf_cstr("ev");
        cx[i].deployment_id = cf_cstr("d");
        cx[i].curation_source = cf_cstr(src[i]);
        cx[i].curation_score = 10.0 - i;
        cx[i].prompt = cf_cstr("p");
        cx[i].response = cf_cstr("r");
        cx[i].inserted_at = 100 + i;
    }
    cx[0].id = cf_cstr("c0");
    cx[1].id = cf_cstr("c1");
    CHECK(cf_store_insert_curated(s, cx, 3, &err) == 3);
    cf_query q;
    cf_query_init(&q);
    q.deployment_id = cf_cstr("d");
    q.exported = 0;
    int64_t n;
    CHECK(cf_store_count(s, CF_KIND_CURATED, &q, &n, &err) == 0 && n == 3);
    cf_str ids[2] = {cf_cstr("c0"), cf_cstr("c1")};
    CHECK(cf_store_mark_curated_exported(s, ids, 2, cf_cstr("batch-1"), &err) == 2);
    CHECK(cf_store_count(s, CF_KIND_CURATED, &q, &n, &err) == 0 && n == 1);
    q.exported = 1;
    cf_cursor *c;
    cf_row row;
    CHECK(cf_store_open_cursor(s, CF_KIND_CURATED, &q, &c, &err) == 0);
    CHECK(cf_cursor_next(c, &row, &err) == 1);
    CHECK(row.curated.exported == 1);
    CHECK_MEM(row.curated.export_batch_id.p, row.curated.export_batch_id.n, "batch-1");
    CHECK(row.curated.curation_score == 10.0);
    cf_cursor_close(c);

    cf_drift_result d;
    memset(&d, 0, sizeof d);
    d.deployment_id = cf_cstr("d");
    d.drift_type = cf_cstr("statistical");
    d.score = 0.31;
    d.drifted = 1;
    d.details = cf_cstr("{\"ks\":0.31}");
    char id[37];
    CHECK(cf_store_insert_drift(s, &d, id, &err) == 0 && cf_uuid_valid(id, 36));
    cf_query_init(&q);
    q.type = cf_cstr("statistical");
    CHECK(cf_store_open_cursor(s, CF_KIND_DRIFT, &q, &c, &err) == 0);
    CHECK(cf_cursor_next(c, &row, &err) == 1);
    CHECK(row.drift.score == 0.31 && row.drift.drifted == 1);
    CHECK_MEM(row.drift.details.p, row.drift.details.n, "{\"ks\":0.31}");
    cf_cursor_close(c);

    cf_trigger_event t;
    memset(&t, 0, sizeof t);
    t.deployment_id = cf_cstr("d");
    t.trigger_type = cf_cstr("data_count");
    CHECK(cf_store_insert_trigger(s, &t, id, &err) == 0);
    t.trigger_type = CF_NULL_STR;
    CHECK(cf_store_insert_trigger(s, &t, id, &err) == -1 && err.code == CF_EINVAL);
    CHECK(count(s, CF_KIND_TRIGGERS, "d") == 1);
    cf_store_close(s);
}

static void test_settings(void)
{
    cf_store *s = open_fresh();
    cf_err err;
    char *v = (char *)1;
    CHECK(cf_store_kv_get(s, "k", &v, &err) == 0 && v == NULL);
    CHECK(cf_store_kv_get_or_set(s, "k", cf_cstr("first"), &v, &err) == 0);
    CHECK_STR(v, "first");
    free(v);
    CHECK(cf_store_kv_get_or_set(s, "k", cf_cstr("second"), &v, &err) == 0);
    CHECK_STR(v, "first"); /* the first value wins */
    free(v);
    CHECK(cf_store_kv_set(s, "k", cf_cstr("third"), &err) == 0);
    CHECK(cf_store_kv_get(s, "k", &v, &err) == 0);
    CHECK_STR(v, "third");
    free(v);
    cf_store_close(s);
}

static void test_failures(void)
{
    cf_store *s = NULL;
    cf_err err;
    /* a directory that does not exist */
    CHECK(cf_store_open("sqlite:/nonexistent-dir/x.db", NULL, &s, &err) == -1);
    CHECK(err.code == CF_EDB && strstr(err.msg, "/nonexistent-dir/x.db") != NULL);
    CHECK(s == NULL);
    /* a file that is not a database */
    FILE *f = fopen("not_a_db.db", "w");
    fputs("this is not a database, it is a text file long enough to matter\n", f);
    fclose(f);
    int rc = cf_store_open("sqlite:not_a_db.db", NULL, &s, &err);
    if (rc == 0) {
        int applied;
        CHECK(cf_store_migrate(s, &applied, &err) == -1);
        CHECK(err.code == CF_EDB);
        cf_store_close(s);
    } else {
        CHECK(err.code == CF_EDB);
    }
    unlink("not_a_db.db");
    /* the disk fills up in the middle of a batch: the batch fails with a
     * message, nothing of it remains, and the connection recovers */
    s = open_fresh();
    sq_store *sq = (sq_store *)s;
    int64_t before = count(s, CF_KIND_EVENTS, "d");
    CHECK(sqlite3_exec(sq->db, "PRAGMA max_page_count = 40", NULL, NULL, NULL) == SQLITE_OK);
    enum { N = 200 };
    static char big[4000];
    memset(big, 'x', sizeof big - 1);
    cf_event many[N];
    for (int i = 0; i < N; i++)
        many[i] = event("d", big, 0);
    CHECK(cf_store_insert_events(s, many, N, NULL, NULL, &err) == -1);
    CHECK(err.code == CF_EDB && strstr(err.msg, "full") != NULL);
    CHECK(count(s, CF_KIND_EVENTS, "d") == before);
    CHECK(sqlite3_exec(sq->db, "PRAGMA max_page_count = 1073741823", NULL, NULL, NULL) == SQLITE_OK);
    CHECK(cf_store_insert_events(s, many, 3, NULL, NULL, &err) == 3);
    cf_store_close(s);
}

int main(void)
{
    RUN(test_urls);
    RUN(test_cache_size);
    RUN(test_migrate_idempotent);
    RUN(test_migrate_refuses_newer);
    RUN(test_insert_and_cursor);
    RUN(test_batch_is_atomic);
    RUN(test_hostile_strings);
    RUN(test_signals);
    RUN(test_update);
    RUN(test_curated_drift_triggers);
    RUN(test_settings);
    RUN(test_failures);
    remove_db();
    return cf_test_done();
}
