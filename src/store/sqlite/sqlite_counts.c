/*
 * SQLite backend: the maintained per-deployment event counts (migration
 * 12, cf_event_counts.h). deployment_event_counts holds one row per
 * deployment; an event batch adds the rows it wrote (one upsert per
 * deployment, in the batch's transaction), a purge batch subtracts the
 * rows it deletes (one statement over the batch's range, in the purge's
 * transaction, before the delete). SQLite has one writer at a time, so
 * the row is never contended.
 *
 * Rows other programs write or delete (the sqlite3 shell, a script) are
 * counted by row triggers; every connection this backend opens turns
 * triggers off (SQLITE_DBCONFIG_ENABLE_TRIGGER) and keeps the counts per
 * batch instead, so its writes pay nothing per row.
 */
#include "sqlite_int.h"

#include "../cf_event_counts.h"

const char sq_counts_migration[] =
    "CREATE TABLE deployment_event_counts ("
    "  deployment_id TEXT PRIMARY KEY,"
    "  n INTEGER NOT NULL) WITHOUT ROWID;"
    "INSERT INTO deployment_event_counts (deployment_id, n)"
    "  SELECT deployment_id, count(*) FROM inference_events GROUP BY deployment_id;"
    "CREATE TRIGGER inference_events_counted_insert AFTER INSERT ON inference_events BEGIN"
    "  INSERT INTO deployment_event_counts (deployment_id, n) VALUES (NEW.deployment_id, 1)"
    "   ON CONFLICT (deployment_id) DO UPDATE SET n = n + 1;"
    " END;"
    "CREATE TRIGGER inference_events_counted_delete AFTER DELETE ON inference_events BEGIN"
    "  UPDATE deployment_event_counts SET n = n - 1 WHERE deployment_id = OLD.deployment_id;"
    " END;";

/* A purge's decrement: SQ_COUNTS_PURGE_HEAD, the batch's condition on
 * inference_events, SQ_COUNTS_PURGE_TAIL. */
const char sq_counts_purge_head[] =
    "UPDATE deployment_event_counts SET n = n - d.c FROM"
    " (SELECT deployment_id, count(*) AS c FROM inference_events WHERE ";
const char sq_counts_purge_tail[] =
    " GROUP BY deployment_id) AS d"
    " WHERE deployment_event_counts.deployment_id = d.deployment_id";

static int add_one(void *ud, cf_str deployment, int64_t n, cf_err *err)
{
    sqlite3_stmt *st = ud;
    sqlite3_reset(st);
    sq_bind_str(st, 1, deployment);
    sqlite3_bind_int64(st, 2, n);
    if (sqlite3_step(st) != SQLITE_DONE)
        return cf_fail(err, CF_EDB, "counting events: %s",
                       sqlite3_errmsg(sqlite3_db_handle(st)));
    return 0;
}

int sq_counts_add(sq_store *s, const cf_event *ev, size_t n, const unsigned char *dup,
                  cf_err *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db,
                           "INSERT INTO deployment_event_counts (deployment_id, n)"
                           " VALUES (?1, ?2) ON CONFLICT (deployment_id)"
                           " DO UPDATE SET n = n + excluded.n",
                           -1, &st, NULL) != SQLITE_OK)
        return sq_fail(s, err, "preparing an event count");
    int rc = cf_event_counts_group(ev, n, dup, add_one, st, err);
    sqlite3_finalize(st);
    return rc;
}

int sq_counts_read(sq_store *s, cf_str deployment, int64_t *out, cf_err *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, "SELECT n FROM deployment_event_counts WHERE deployment_id = ?1",
                           -1, &st, NULL) != SQLITE_OK)
        return sq_fail(s, err, "preparing an event count");
    sq_bind_str(st, 1, deployment);
    int rc = sqlite3_step(st);
    *out = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0; /* no row: no event yet */
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : sq_fail(s, err, "reading an event count");
}
