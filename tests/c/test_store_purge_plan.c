/* SQLite purges walk an index range: every statement a retention purge
 * of one deployment runs is traced, and its query plan must read
 * inference_events through the (deployment_id, inserted_at) index, the
 * events themselves deleted by that range, with no full scan of the
 * events, no sort and no table of ids. */
#include "cf_test.h"

#include <stdlib.h>
#include <unistd.h>

#include "crucible/store/cf_store.h"
#include "store/cf_life_sql.h"
#include "store/sqlite/sqlite_int.h"

#define DB "test_purge_plan.db"
#define MAX_SQL 256

typedef struct traced {
    char *sql[MAX_SQL];
    int n;
} traced;

static void remove_db(void)
{
    unlink(DB);
    unlink(DB "-wal");
    unlink(DB "-shm");
}

static int on_stmt(unsigned type, void *ud, void *p, void *x)
{
    (void)x;
    traced *t = ud;
    const char *sql = sqlite3_sql(p);
    if (type == SQLITE_TRACE_STMT && sql && t->n < MAX_SQL) {
        size_t len = strlen(sql) + 1;
        char *copy = malloc(len);
        if (copy) {
            memcpy(copy, sql, len);
            t->sql[t->n++] = copy;
        }
    }
    return 0;
}

/* The EXPLAIN QUERY PLAN details of sql, one a line, into out. */
static void plan_of(sqlite3 *db, const char *sql, char *out, size_t cap)
{
    char q[4096];
    out[0] = '\0';
    if (snprintf(q, sizeof q, "EXPLAIN QUERY PLAN %s", sql) >= (int)sizeof q)
        return;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, q, -1, &st, NULL) != SQLITE_OK) {
        snprintf(out, cap, "cannot explain: %s", sqlite3_errmsg(db));
        return;
    }
    size_t used = 0;
    while (sqlite3_step(st) == SQLITE_ROW && used < cap) {
        const char *d = (const char *)sqlite3_column_text(st, 3);
        int w = snprintf(out + used, cap - used, "%s\n", d ? d : "");
        used += w > 0 ? (size_t)w : 0;
    }
    sqlite3_finalize(st);
}

static cf_store *seeded(void)
{
    remove_db();
    cf_store *s = NULL;
    cf_err err;
    int applied = 0;
    if (cf_store_open("sqlite:" DB, NULL, &s, &err) || cf_store_migrate(s, &applied, &err)) {
        fprintf(stderr, "open: %s\n", err.msg);
        return NULL;
    }
    /* 20 old events of d, and one of each dependent on the first five,
     * so that every cascade statement runs */
    const char *sql =
        "WITH RECURSIVE i(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM i WHERE n < 19)"
        " INSERT INTO inference_events (id, deployment_id, prompt, response, inserted_at)"
        " SELECT 'e' || n, 'd', 'p', 'r', 1000 + n FROM i;"
        "INSERT INTO user_signals (id, inference_event_id, deployment_id, signal_type, inserted_at)"
        " SELECT 's' || id, id, 'd', 'thumbs_up', inserted_at FROM inference_events;"
        "INSERT INTO scores (id, inference_event_id, deployment_id, name, data_type, value,"
        " source, inserted_at) SELECT 'x' || id, id, 'd', 'n', 'NUMERIC', 1, 'code', 1"
        " FROM inference_events WHERE inserted_at < 1005;"
        "INSERT INTO curated_examples (id, inference_event_id, deployment_id, curation_source,"
        " inserted_at, updated_at) SELECT 'c' || id, id, 'd', 'rule', 1, 1"
        " FROM inference_events WHERE inserted_at < 1005;"
        "INSERT INTO curated_export_marks VALUES ('ce0', 'b', 1);"
        "INSERT INTO curated_export_claims VALUES ('ce1', 'd', 't', 1);";
    if (sqlite3_exec(((sq_store *)s)->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        fprintf(stderr, "seed: %s\n", sqlite3_errmsg(((sq_store *)s)->db));
    return s;
}

/* seeded(), checked: its connection, or NULL (a failed check) */
static sqlite3 *seeded_db(cf_store **s)
{
    *s = seeded();
    CHECK(*s != NULL);
    return *s ? ((sq_store *)*s)->db : NULL;
}

static void test_retention_batches_walk_the_index(void)
{
    cf_store *s;
    sqlite3 *db = seeded_db(&s);
    if (!db)
        return;
    traced t = {.n = 0};
    sqlite3_trace_v2(db, SQLITE_TRACE_STMT, on_stmt, &t);
    cf_purge p;
    cf_purge_init(&p, "inference_events");
    p.deployment_id = cf_cstr("d");
    p.before = 1015; /* 15 of the 20 events */
    p.batch_rows = 4;
    cf_life_counts out;
    memset(&out, 0, sizeof out);
    cf_err err;
    CHECK(cf_store_purge(s, &p, &out, &err) == 0);
    sqlite3_trace_v2(db, 0, NULL, NULL);
    CHECK(out.n[cf_life_table_index("inference_events")] == 15);
    CHECK(out.n[cf_life_table_index("user_signals")] == 15);
    CHECK(out.n[cf_life_table_index("curated_export_marks")] == 1);
    CHECK(out.n[cf_life_table_index("curated_export_claims")] == 1);
    CHECK(out.n[cf_life_table_index("scores")] == 5);
    int deletes = 0, bounds = 0;
    for (int i = 0; i < t.n; i++) {
        if (!strstr(t.sql[i], "inference_events"))
            continue; /* BEGIN, COMMIT, a dependent table's emptiness */
        char plan[4096];
        plan_of(db, t.sql[i], plan, sizeof plan);
        int ok = strstr(plan, "inference_events_light (deployment_id=? AND inserted_at<?)")
                 && !strstr(plan, "SCAN inference_events") && !strstr(plan, "TEMP B-TREE")
                 && !strstr(plan, "cf_life_batch");
        if (!ok)
            fprintf(stderr, "%s\n-> %s\n", t.sql[i], plan);
        CHECK(ok);
        deletes += strncmp(t.sql[i], "DELETE FROM inference_events", 28) == 0;
        bounds += strncmp(t.sql[i], "SELECT inserted_at, seq FROM inference_events", 45) == 0;
    }
    CHECK(deletes >= 2 && bounds == deletes); /* batches of 4, then more, and the rest */
    for (int i = 0; i < t.n; i++)
        free(t.sql[i]);
    cf_store_close(s);
}

/* Forgetting a user: every statement that picks the user's events
 * searches the user bucket index (migration 11), never a scan of events,
 * and only that user's events go. */
static void test_forget_searches_the_user_buckets(void)
{
    cf_store *s;
    sqlite3 *db = seeded_db(&s);
    if (!db)
        return;
    CHECK(sqlite3_exec(db,
                       "UPDATE inference_events SET user_id_hash ="
                       " CASE WHEN inserted_at % 2 = 0 THEN 'a1b2c3d4e5f60718'"
                       " ELSE 'a1ffffffffffffff' END",
                       NULL, NULL, NULL) == SQLITE_OK);
    traced t = {.n = 0};
    sqlite3_trace_v2(db, SQLITE_TRACE_STMT, on_stmt, &t);
    static const cf_str users[] = {{"a1b2c3d4e5f60718", 16}};
    cf_purge p;
    cf_purge_init(&p, "inference_events");
    p.user_hashes = users;
    p.nusers = 1;
    p.batch_rows = 4;
    cf_life_counts out;
    memset(&out, 0, sizeof out);
    cf_err err;
    CHECK(cf_store_purge(s, &p, &out, &err) == 0);
    sqlite3_trace_v2(db, 0, NULL, NULL);
    CHECK(out.n[cf_life_table_index("inference_events")] == 10);
    int picks = 0;
    for (int i = 0; i < t.n; i++) {
        if (!strstr(t.sql[i], "user_id_hash"))
            continue;
        char plan[4096];
        plan_of(db, t.sql[i], plan, sizeof plan);
        int ok = strstr(plan, "USING INDEX inference_events_user_bucket (user_bucket=?")
                 && !strstr(plan, "SCAN inference_events");
        if (!ok)
            fprintf(stderr, "%s\n-> %s\n", t.sql[i], plan);
        CHECK(ok);
        picks++;
    }
    CHECK(picks >= 2);
    /* the other user shares the bucket and keeps every event */
    sqlite3_stmt *st = NULL;
    CHECK(sqlite3_prepare_v2(db, "SELECT count(*) FROM inference_events WHERE user_id_hash ="
                             " 'a1ffffffffffffff'", -1, &st, NULL) == SQLITE_OK);
    CHECK(sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0) == 10);
    sqlite3_finalize(st);
    for (int i = 0; i < t.n; i++)
        free(t.sql[i]);
    cf_store_close(s);
}

static int count_record(void *ud, const cf_deletion *d)
{
    (void)d;
    (*(int *)ud)++;
    return 0;
}

/* The deletion audit is never purged: listing its records, all of them or
 * those in one status (a forget's look for its running record), walks an
 * index from the newest, with no scan of every record and no sort. */
static void test_deletion_records_listed_by_index(void)
{
    cf_store *s;
    sqlite3 *db = seeded_db(&s);
    if (!db)
        return;
    CHECK(sqlite3_exec(db,
                       "WITH RECURSIVE i(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM i WHERE n < 99)"
                       " INSERT INTO deletion_audit (id, action, status, started_at)"
                       " SELECT 'd' || n, 'forget', CASE WHEN n % 10 = 0 THEN 'running'"
                       " ELSE 'done' END, n FROM i; ANALYZE",
                       NULL, NULL, NULL) == SQLITE_OK);
    static const struct {
        const char *status, *index;
        int want;
    } cases[] = {{"running", "deletion_audit_status_time", 10}, {NULL, "deletion_audit_time", 100}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        traced t = {.n = 0};
        sqlite3_trace_v2(db, SQLITE_TRACE_STMT, on_stmt, &t);
        int n = 0;
        cf_err err;
        CHECK(cf_store_list_deletions(s, -1, cases[c].status, count_record, &n, &err) == 0);
        sqlite3_trace_v2(db, 0, NULL, NULL);
        CHECK(n == cases[c].want);
        CHECK(t.n == 1);
        char plan[4096] = "";
        if (t.n == 1)
            plan_of(db, t.sql[0], plan, sizeof plan);
        int ok = strstr(plan, cases[c].index) && !strstr(plan, "TEMP B-TREE")
                 && !strstr(plan, "SCAN deletion_audit\n");
        if (!ok)
            fprintf(stderr, "%s\n-> %s\n", t.n ? t.sql[0] : "(none)", plan);
        CHECK(ok);
        for (int i = 0; i < t.n; i++)
            free(t.sql[i]);
    }
    cf_store_close(s);
}

/* A purge's next batch is sized to take the target at the last one's
 * speed, within half to twice its rows, 16 times batch_rows and 1. */
static void test_batch_size_aims_at_the_target(void)
{
    cf_purge p;
    memset(&p, 0, sizeof p);
    p.batch_rows = 1000;
    const int64_t ms = 1000000;
    CHECK(cf_life_next_size(&p, 16000, 160 * ms, 100 * ms) == 10000);
    CHECK(cf_life_next_size(&p, 8000, 80 * ms, 100 * ms) == 10000);
    CHECK(cf_life_next_size(&p, 8000, 100 * ms, 100 * ms) == 8000);
    CHECK(cf_life_next_size(&p, 8000, 1 * ms, 100 * ms) == 16000);
    CHECK(cf_life_next_size(&p, 12000, 1 * ms, 100 * ms) == 16000);
    CHECK(cf_life_next_size(&p, 8000, 1000 * ms, 100 * ms) == 4000);
    CHECK(cf_life_next_size(&p, 1, 1000 * ms, 100 * ms) == 1);
    CHECK(cf_life_next_size(&p, 1000, 0, 100 * ms) == 2000);
}

int main(void)
{
    RUN(test_batch_size_aims_at_the_target);
    RUN(test_retention_batches_walk_the_index);
    RUN(test_forget_searches_the_user_buckets);
    RUN(test_deletion_records_listed_by_index);
    remove_db();
    return cf_test_done();
}
