/*
 * SQLite backend: the data lifecycle (migration 9's deletion_audit).
 * A purge deletes in short IMMEDIATE transactions of batch_rows parent
 * rows each (adapted to hold the lock about 50 ms), the dependents of a batch's events first (cf_life_deps), so
 * a writer waits at most one batch; the batch's ids sit in a temporary
 * table of this connection. Backups go through the online backup API.
 */
#include "sqlite_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../cf_life_sql.h"

/* The statement text (NUL-terminated) or NULL when out of memory. */
static const char *sql_text(cf_life_sql *q)
{
    if (cf_buf_putc(&q->b, '\0'))
        return NULL;
    q->b.n--;
    return q->b.p;
}

/* Prepares q with its values bound. */
static int prepare(sq_store *s, cf_life_sql *q, sqlite3_stmt **st, cf_err *err)
{
    const char *sql = sql_text(q);
    if (!sql)
        return cf_fail(err, CF_ENOMEM, "out of memory building a lifecycle statement");
    if (sqlite3_prepare_v2(s->db, sql, -1, st, NULL) != SQLITE_OK)
        return sq_fail(s, err, "preparing a lifecycle statement");
    for (int i = 0; i < q->np; i++) {
        if (q->p[i].type == CF_COLVAL_TEXT)
            sq_bind_str(*st, i + 1, q->p[i].s);
        else
            sqlite3_bind_int64(*st, i + 1, q->p[i].i);
    }
    return 0;
}

/* Runs q; *changes (when not NULL) receives the rows it changed, or for
 * a query the integer in its first row. */
static int run(sq_store *s, cf_life_sql *q, int64_t *out, cf_err *err)
{
    sqlite3_stmt *st = NULL;
    if (prepare(s, q, &st, err)) {
        sqlite3_finalize(st);
        return -1;
    }
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW && out)
        *out = sqlite3_column_int64(st, 0);
    else if (rc == SQLITE_DONE && out)
        *out = sqlite3_changes64(s->db);
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return sq_fail(s, err, "a lifecycle statement");
    return 0;
}

static void add(cf_life_counts *out, const char *table, int64_t n)
{
    int i = cf_life_table_index(table);
    if (i >= 0)
        out->n[i] += n;
}

#define BATCH_IDS "SELECT id FROM temp.cf_life_batch"

static int exec(sq_store *s, const char *sql, cf_err *err)
{
    if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return sq_fail(s, err, sql);
    return 0;
}

/* Fills temp.cf_life_batch with the ids of (at most limit, < 0: all) rows
 * the purge selects; *n receives how many. */
static int fill_batch(sq_store *s, const cf_purge *p, int64_t limit, int64_t *n, cf_err *err)
{
    if (exec(s, "DELETE FROM temp.cf_life_batch", err))
        return -1;
    cf_life_sql q;
    cf_life_sql_init(&q, '?');
    cf_buf_str(&q.b, "INSERT INTO temp.cf_life_batch (id) SELECT id FROM ");
    cf_buf_str(&q.b, p->table);
    cf_buf_str(&q.b, " WHERE ");
    int rc = cf_life_where(&q, p);
    if (!rc && limit >= 0) {
        cf_buf_str(&q.b, " LIMIT ");
        cf_life_sql_int(&q, limit);
    }
    rc = rc ? cf_fail(err, CF_ENOMEM, "out of memory building a purge") : run(s, &q, n, err);
    cf_buf_free(&q.b);
    return rc;
}

/* Deletes (or counts) the batch's rows and, for events, their dependents
 * first, deepest first. */
static int cascade(sq_store *s, const cf_purge *p, int count_only, cf_life_counts *out,
                   cf_err *err)
{
    cf_life_sql q;
    cf_life_sql_init(&q, '?');
    int rc = 0;
    int events = strcmp(p->table, "inference_events") == 0;
    for (size_t i = 0; !rc && events && i < cf_life_ndeps; i++) {
        cf_life_sql_reset(&q);
        cf_buf_str(&q.b, count_only ? "SELECT count(*) FROM " : "DELETE FROM ");
        cf_buf_str(&q.b, cf_life_deps[i].table);
        cf_buf_str(&q.b, " WHERE ");
        cf_buf_str(&q.b, cf_life_deps[i].column);
        cf_buf_str(&q.b, " IN (");
        cf_life_parent_ids(&q, i, BATCH_IDS);
        cf_buf_putc(&q.b, ')');
        int64_t n = 0;
        rc = run(s, &q, &n, err);
        add(out, cf_life_deps[i].table, n);
    }
    if (!rc && !count_only) {
        cf_life_sql_reset(&q);
        cf_buf_str(&q.b, "DELETE FROM ");
        cf_buf_str(&q.b, p->table);
        cf_buf_str(&q.b, " WHERE id IN (" BATCH_IDS ")");
        rc = run(s, &q, NULL, err);
    }
    cf_buf_free(&q.b);
    return rc;
}

static int prepare_batch_table(sq_store *s, cf_err *err)
{
    return exec(s, "CREATE TEMP TABLE IF NOT EXISTS cf_life_batch (id TEXT PRIMARY KEY)", err);
}

/* A dry run: every row the purge selects, counted in one read. */
static int count_all(sq_store *s, const cf_purge *p, cf_life_counts *out, cf_err *err)
{
    int64_t n = 0;
    if (exec(s, "BEGIN", err))
        return -1;
    int rc = fill_batch(s, p, -1, &n, err) || cascade(s, p, 1, out, err);
    add(out, p->table, n);
    if (rc) {
        sq_rollback(s);
        return -1;
    }
    return exec(s, "COMMIT", err);
}

/* How long one purge transaction aims to hold the write lock: the batch
 * grows (up to 16x batch_rows) while batches are quicker than half of it
 * and shrinks when one takes twice as long, so writers wait about this
 * long at most whatever the rows cost, and few gaps are left to pay for. */
#define LOCK_TARGET_NS (INT64_C(50) * 1000000)

static int64_t next_size(const cf_purge *p, int64_t rows, int64_t took_ns)
{
    if (took_ns < LOCK_TARGET_NS / 2 && rows < p->batch_rows * 16)
        return rows * 2;
    if (took_ns > LOCK_TARGET_NS * 2 && rows > 1)
        return rows / 2;
    return rows;
}

int sq_purge(cf_store *base, const cf_purge *p, cf_life_counts *out, cf_err *err)
{
    sq_store *s = (sq_store *)base;
    if (prepare_batch_table(s, err))
        return -1;
    if (p->dry_run)
        return count_all(s, p, out, err);
    int64_t rows = p->batch_rows;
    for (int64_t batches = 0; !p->max_batches || batches < p->max_batches; batches++) {
        int64_t n = 0, t0 = cf_mono_ns();
        if (sq_begin(s, err))
            return -1;
        if (fill_batch(s, p, rows, &n, err) || (n && cascade(s, p, 0, out, err))) {
            sq_rollback(s);
            return -1;
        }
        if (sq_commit(s, err)) {
            sq_rollback(s);
            return -1;
        }
        add(out, p->table, n);
        if (n < rows)
            break;
        rows = next_size(p, rows, cf_mono_ns() - t0);
        sqlite3_sleep(2); /* a gap: writers waiting (sq_busy) get the lock */
    }
    return 0;
}

int sq_list_user_exports(cf_store *base, const cf_purge *p, cf_export_row_fn cb, void *ud,
                         cf_err *err)
{
    sq_store *s = (sq_store *)base;
    cf_life_sql q;
    cf_life_sql_init(&q, '?');
    cf_buf_str(&q.b, "SELECT coalesce(m.export_batch_id, c.export_batch_id, ''), c.id,"
                     " c.inference_event_id, c.prompt, c.response FROM curated_examples c"
                     " LEFT JOIN curated_export_marks m ON m.curated_id = c.id"
                     " WHERE (c.exported OR m.curated_id IS NOT NULL)"
                     " AND c.inference_event_id IN (SELECT id FROM inference_events WHERE ");
    cf_life_where(&q, p);
    cf_buf_str(&q.b, ") ORDER BY 1, c.seq");
    sqlite3_stmt *st = NULL;
    int rc = prepare(s, &q, &st, err);
    while (!rc && (rc = sq_step_row(s, &st, "listing a user's exports", err)) == 1) {
        cf_exported_row r = {sq_col_str(st, 0), sq_col_str(st, 1), sq_col_str(st, 2),
                             sq_col_str(st, 3), sq_col_str(st, 4)};
        rc = cb(ud, &r);
    }
    sqlite3_finalize(st);
    cf_buf_free(&q.b);
    return rc;
}

int sq_count_orphans(cf_store *base, cf_life_counts *out, cf_err *err)
{
    sq_store *s = (sq_store *)base;
    cf_life_sql q;
    cf_life_sql_init(&q, '?');
    int rc = 0;
    for (size_t i = 0; !rc && i < cf_life_ndeps; i++) {
        const cf_life_dep *d = &cf_life_deps[i];
        cf_life_sql_reset(&q);
        cf_buf_str(&q.b, "SELECT count(*) FROM ");
        cf_buf_str(&q.b, d->table);
        cf_buf_str(&q.b, " d WHERE NOT EXISTS (SELECT 1 FROM ");
        cf_buf_str(&q.b, d->parent);
        cf_buf_str(&q.b, " p WHERE p.id = d.");
        cf_buf_str(&q.b, d->column);
        cf_buf_putc(&q.b, ')');
        int64_t n = 0;
        rc = run(s, &q, &n, err);
        add(out, d->table, n);
    }
    cf_buf_free(&q.b);
    return rc;
}

/* ---- the deletion audit ------------------------------------------------------ */

int sq_put_deletion(cf_store *base, const cf_deletion *d, cf_err *err)
{
    sq_store *s = (sq_store *)base;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db,
                           "INSERT INTO deletion_audit (id, action, subject, deployment_id,"
                           " status, started_at, finished_at, details)"
                           " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (id) DO UPDATE"
                           " SET status = excluded.status, finished_at = excluded.finished_at,"
                           " details = excluded.details",
                           -1, &st, NULL) != SQLITE_OK)
        return sq_fail(s, err, "preparing the deletion record");
    sq_bind_str(st, 1, d->id);
    sq_bind_str(st, 2, d->action);
    sq_bind_str(st, 3, d->subject);
    sq_bind_str(st, 4, d->deployment_id);
    sq_bind_str(st, 5, d->status);
    sqlite3_bind_int64(st, 6, d->started_at);
    if (d->finished_at == CF_NULL_INT)
        sqlite3_bind_null(st, 7);
    else
        sqlite3_bind_int64(st, 7, d->finished_at);
    sq_bind_str(st, 8, d->details.p ? d->details : (cf_str){"{}", 2});
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : sq_fail(s, err, "writing the deletion record");
}

int sq_list_deletions(cf_store *base, int64_t limit, cf_deletion_fn cb, void *ud, cf_err *err)
{
    sq_store *s = (sq_store *)base;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT id, action, subject, deployment_id, status, started_at,"
                           " finished_at, details FROM deletion_audit"
                           " ORDER BY started_at DESC, seq DESC LIMIT ?1",
                           -1, &st, NULL) != SQLITE_OK)
        return sq_fail(s, err, "preparing the deletion records");
    sqlite3_bind_int64(st, 1, limit);
    int rc;
    while ((rc = sq_step_row(s, &st, "reading the deletion records", err)) == 1) {
        cf_deletion d = {
            .id = sq_col_str(st, 0), .action = sq_col_str(st, 1), .subject = sq_col_str(st, 2),
            .deployment_id = sq_col_str(st, 3), .status = sq_col_str(st, 4),
            .started_at = sqlite3_column_int64(st, 5),
            .finished_at = sqlite3_column_type(st, 6) == SQLITE_NULL
                               ? CF_NULL_INT : sqlite3_column_int64(st, 6),
            .details = sq_col_str(st, 7)};
        rc = cb(ud, &d);
        if (rc)
            break;
    }
    sqlite3_finalize(st);
    return rc;
}

/* ---- backups ----------------------------------------------------------------- */

/* Copies every page of src's main database into dst's in one step: one
 * read transaction on src (in WAL mode writers go on meanwhile), so the
 * copy is the database as of one commit. */
static int copy_db(sqlite3 *dst, sqlite3 *src, const char *what, cf_err *err)
{
    sqlite3_backup *b = sqlite3_backup_init(dst, "main", src, "main");
    if (!b)
        return cf_fail(err, CF_EDB, "%s: %s", what, sqlite3_errmsg(dst));
    int rc;
    while ((rc = sqlite3_backup_step(b, -1)) == SQLITE_BUSY || rc == SQLITE_LOCKED)
        sqlite3_sleep(10);
    sqlite3_backup_finish(b);
    if (rc != SQLITE_DONE)
        return cf_fail(err, CF_EDB, "%s: %s", what, sqlite3_errstr(rc));
    return 0;
}

/* Opens path (create: a new file) with the connection's busy timeout. */
static int open_file(const char *path, int create, sqlite3 **db, cf_err *err)
{
    int flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0);
    if (sqlite3_open_v2(path, db, flags, NULL) != SQLITE_OK) {
        cf_fail(err, create ? CF_EIO : CF_ENOTFOUND, "cannot open %s: %s", path,
                *db ? sqlite3_errmsg(*db) : "out of memory");
        sqlite3_close_v2(*db);
        return -1;
    }
    sqlite3_busy_timeout(*db, 5000);
    return 0;
}

/* "ok", or CF_EDB with what integrity_check found first. */
static int check_integrity(sqlite3 *db, const char *path, cf_err *err)
{
    sqlite3_stmt *st = NULL;
    int ok = 0;
    char first[256] = "not a database";
    if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) == SQLITE_OK
        && sqlite3_step(st) == SQLITE_ROW) {
        const char *r = (const char *)sqlite3_column_text(st, 0);
        ok = r && strcmp(r, "ok") == 0;
        snprintf(first, sizeof first, "%s", r ? r : "?");
    }
    sqlite3_finalize(st);
    return ok ? 0 : cf_fail(err, CF_EDB, "%s fails its integrity check: %s", path, first);
}

int sq_backup(cf_store *base, const char *path, cf_err *err)
{
    sq_store *s = (sq_store *)base;
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp-backup", path) >= (int)sizeof tmp)
        return cf_fail(err, CF_EINVAL, "backup path is too long");
    remove(tmp);
    sqlite3 *dst = NULL;
    if (open_file(tmp, 1, &dst, err))
        return -1;
    int rc = copy_db(dst, s->db, "backing up", err);
    if (!rc)
        rc = check_integrity(dst, tmp, err);
    if (!rc && sqlite3_exec(dst, "PRAGMA journal_mode = DELETE", NULL, NULL, NULL) != SQLITE_OK)
        rc = cf_fail(err, CF_EDB, "backing up: %s", sqlite3_errmsg(dst));
    sqlite3_close_v2(dst);
    if (!rc && rename(tmp, path) != 0)
        rc = cf_fail(err, CF_EIO, "cannot rename %s to %s", tmp, path);
    if (rc)
        remove(tmp);
    return rc;
}

int sq_restore(cf_store *base, const char *path, cf_err *err)
{
    sq_store *s = (sq_store *)base;
    sqlite3 *src = NULL;
    if (open_file(path, 0, &src, err))
        return -1;
    int rc = check_integrity(src, path, err);
    if (!rc)
        rc = copy_db(s->db, src, "restoring", err);
    sqlite3_close_v2(src);
    return rc;
}
