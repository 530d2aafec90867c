/*
 * SQLite backend: the data lifecycle (migration 9's deletion_audit).
 * A purge deletes in short IMMEDIATE transactions of batch_rows parent
 * rows each (adapted to hold the lock about 100 ms), the dependents of a
 * batch's events first (cf_life_deps), so a writer waits at most one
 * batch. A batch is a range of an index: its last row is found first,
 * then every statement walks the range up to it, as a hand-written
 * DELETE would, with no list of ids kept. Backups go through the online
 * backup API.
 */
#include "sqlite_int.h"

#include <stdarg.h>
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

/* An events DELETE (q) after the query (count) of its rows' deployments
 * and how many of each: *out, the rows deleted. */
static int run_counted(sq_store *s, cf_life_sql *count, cf_life_sql *q, int64_t *out,
                       cf_err *err)
{
    sqlite3_stmt *cst = NULL, *st = NULL;
    int rc = prepare(s, count, &cst, err) || prepare(s, q, &st, err)
                 ? -1
                 : sq_counts_delete(s, cst, st, out, err);
    sqlite3_finalize(cst);
    sqlite3_finalize(st);
    return rc;
}

static void add(cf_life_counts *out, const char *table, int64_t n)
{
    int i = cf_life_table_index(table);
    if (i >= 0)
        out->n[i] += n;
}

/* Appends the strings up to a NULL. */
static int strs(cf_buf *b, ...)
{
    va_list ap;
    va_start(ap, b);
    for (const char *x; (x = va_arg(ap, const char *)) != NULL;)
        cf_buf_str(b, x);
    va_end(ap);
    return cf_buf_failed(b) ? -1 : 0;
}

static int exec(sq_store *s, const char *sql, cf_err *err)
{
    if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return sq_fail(s, err, sql);
    return 0;
}

/* Finds the batch's last row: the rows-th the purge selects, in index order. */
static int find_bound(sq_store *s, const cf_purge *p, int64_t rows, cf_life_bound *b,
                      cf_err *err)
{
    cf_life_sql q;
    cf_life_sql_init(&q, '?');
    sqlite3_stmt *st = NULL;
    int rc = cf_life_bound_sql(&q, p, NULL, rows, cf_life_time_column(p->table));
    rc = rc ? cf_fail(err, CF_ENOMEM, "out of memory building a purge") : prepare(s, &q, &st, err);
    cf_buf_free(&q.b);
    if (!rc && (rc = sq_step_row(s, &st, "finding a purge batch", err)) >= 0) {
        b->set = rc == 1;
        b->at = b->set ? sqlite3_column_int64(st, 0) : 0;
        b->seq = b->set ? sqlite3_column_int64(st, 1) : 0;
        b->has_lo = 0;
        rc = 0;
    }
    sqlite3_finalize(st);
    return rc;
}

/* q: what head starts, then the ids of dependent dep's parents among the
 * batch's events (the batch's index range, walked again). */
static int dep_sql(cf_life_sql *q, const char *head, size_t dep, const cf_purge *p,
                   const cf_life_bound *b)
{
    cf_life_sql r;
    cf_life_sql_init(&r, '?');
    strs(&r.b, "SELECT id FROM ", p->table, " WHERE ", (char *)NULL);
    int rc = cf_life_batch_where(&r, p, b) || cf_buf_putc(&r.b, '\0');
    cf_life_sql_reset(q);
    strs(&q->b, head, cf_life_deps[dep].table, " WHERE ", cf_life_deps[dep].column, " IN (",
         (char *)NULL);
    if (!rc)
        rc = cf_life_parent_ids(q, dep, r.b.p, p);
    cf_buf_putc(&q->b, ')');
    /* the parent ids' text holds r's placeholders, ?1.. as in r */
    q->np = r.np;
    memcpy(q->p, r.p, sizeof r.p[0] * (size_t)r.np);
    cf_buf_free(&r.b);
    return rc || cf_buf_failed(&q->b) ? -1 : 0;
}

/* *yes: 1 when table holds a row. A dependent table that holds none is
 * skipped: nothing of it can point at the batch. */
static int has_rows(sq_store *s, const char *table, int64_t *yes, cf_err *err)
{
    cf_life_sql q;
    cf_life_sql_init(&q, '?');
    int rc = strs(&q.b, "SELECT EXISTS (SELECT 1 FROM ", table, ")", (char *)NULL);
    rc = rc ? cf_fail(err, CF_ENOMEM, "out of memory building a purge") : run(s, &q, yes, err);
    cf_buf_free(&q.b);
    return rc;
}

/* Deletes (or counts) the batch's rows (b NULL: every row the purge
 * selects) and, for events, their dependents first, deepest first; *n
 * receives the purged table's rows. */
static int cascade(sq_store *s, const cf_purge *p, const cf_life_bound *b, int count_only,
                   int64_t *n, cf_life_counts *out, cf_err *err)
{
    cf_life_sql q;
    cf_life_sql_init(&q, '?');
    int rc = 0;
    int events = strcmp(p->table, "inference_events") == 0;
    for (size_t i = 0; !rc && events && i < cf_life_ndeps; i++) {
        int64_t k = 0;
        rc = has_rows(s, cf_life_deps[i].table, &k, err);
        if (rc || !k)
            continue;
        rc = dep_sql(&q, count_only ? "SELECT count(*) FROM " : "DELETE FROM ", i, p, b);
        rc = rc ? cf_fail(err, CF_ENOMEM, "out of memory building a purge") : run(s, &q, &k, err);
        add(out, cf_life_deps[i].table, k);
    }
    /* events: their deployments counted first, for the kept counts
     * (sqlite_counts.c); a RETURNING clause would buffer every deleted row */
    int counted = events && !count_only;
    cf_life_sql c;
    cf_life_sql_init(&c, '?');
    if (!rc && counted
        && (strs(&c.b, "SELECT deployment_id, count(*) FROM ", p->table, " WHERE ", (char *)NULL)
            || cf_life_batch_where(&c, p, b)
            || strs(&c.b, " GROUP BY deployment_id", (char *)NULL)))
        rc = cf_fail(err, CF_ENOMEM, "out of memory building a purge");
    if (!rc) {
        cf_life_sql_reset(&q);
        strs(&q.b, count_only ? "SELECT count(*)" : "DELETE", " FROM ", p->table, " WHERE ",
             (char *)NULL);
        rc = cf_life_batch_where(&q, p, b)
                 ? cf_fail(err, CF_ENOMEM, "out of memory building a purge")
                 : counted ? run_counted(s, &c, &q, n, err) : run(s, &q, n, err);
    }
    cf_buf_free(&c.b);
    cf_buf_free(&q.b);
    return rc;
}

/* A dry run: every row the purge selects, counted in one read. */
static int count_all(sq_store *s, const cf_purge *p, cf_life_counts *out, cf_err *err)
{
    int64_t n = 0;
    if (exec(s, "BEGIN", err))
        return -1;
    int rc = cascade(s, p, NULL, 1, &n, out, err);
    add(out, p->table, n);
    if (rc) {
        sq_rollback(s);
        return -1;
    }
    return exec(s, "COMMIT", err);
}

/* How long one purge transaction aims to hold the write lock: each batch
 * is sized from the last one's speed to take this long
 * (cf_life_next_size), so writers wait about this long at most whatever
 * the rows cost, and few gaps are left to pay for. */
#define LOCK_TARGET_NS (INT64_C(100) * 1000000)

/* Writes p's record with the rows removed before this batch (out) and by
 * it (got). */
static int put_record(sq_store *s, const cf_purge *p, const cf_life_counts *out,
                      const cf_life_counts *got, cf_err *err)
{
    cf_life_counts so_far = *out;
    for (size_t i = 0; i < cf_life_ntables; i++)
        so_far.n[i] += got->n[i];
    cf_buf details = CF_BUF_INIT;
    if (cf_life_record_details(p, &so_far, &details)) {
        cf_buf_free(&details);
        return cf_fail(err, CF_ENOMEM, "out of memory writing the deletion record");
    }
    cf_deletion d = *p->record;
    d.details = (cf_str){details.p, details.n};
    int rc = sq_put_deletion(&s->base, &d, err);
    cf_buf_free(&details);
    return rc;
}

/* One batch of at most rows parent rows in its own transaction, p's
 * record written in it with the rows removed so far: its last row found,
 * then the dependents and the rows up to it deleted, each statement
 * walking the same index range. Adds the batch's rows to out once it is
 * committed. *last: it was the final batch. */
static int one_batch(sq_store *s, const cf_purge *p, int64_t rows, int *last,
                     cf_life_counts *out, cf_err *err)
{
    cf_life_bound b;
    cf_life_counts got;
    memset(&got, 0, sizeof got);
    int64_t n = 0;
    if (sq_begin(s, err))
        return -1;
    int rc = find_bound(s, p, rows, &b, err) || cascade(s, p, &b, 0, &n, &got, err);
    if (!rc)
        add(&got, p->table, n);
    if (rc || (p->record && put_record(s, p, out, &got, err)) || sq_commit(s, err)) {
        sq_rollback(s);
        return -1;
    }
    for (size_t i = 0; i < cf_life_ntables; i++)
        out->n[i] += got.n[i];
    *last = !b.set;
    return 0;
}

/* Between two batches the write lock is free for a gap: GAP_MS, then,
 * when another connection committed in one of the last GAP_RECENT gaps
 * (a writer is there), until it commits again, up to GAP_HOLD_MS more. A
 * waiting writer polls every millisecond (sq_busy), but beside the
 * lifecycle benchmark's writer on a busy machine one missed a 4 ms gap
 * and waited through a second batch; a purge with no writer beside it
 * pays the 4 ms alone. */
enum { GAP_MS = 4, GAP_HOLD_MS = 16, GAP_RECENT = 8 };

/* PRAGMA data_version: changes when another connection commits; -1 on
 * failure (no statement, or it failed). */
static int64_t data_version(sqlite3_stmt *st)
{
    if (!st)
        return -1;
    int64_t v = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    sqlite3_reset(st);
    return v;
}

/* The gap after a batch; *seen: the last batch whose gap another
 * connection committed in (done: this one's number). */
static void gap(sqlite3_stmt *dv, int64_t done, int64_t *seen)
{
    int64_t v0 = data_version(dv);
    sqlite3_sleep(GAP_MS);
    int64_t v = data_version(dv);
    if (v0 >= 0 && v == v0 && *seen >= 0 && done - *seen <= GAP_RECENT) {
        for (int i = 0; i < GAP_HOLD_MS && v == v0; i++) {
            sqlite3_sleep(1);
            v = data_version(dv);
        }
    }
    if (v0 >= 0 && v >= 0 && v != v0)
        *seen = done;
}

/* The batches, sized by how long each held the write lock. The
 * connection's checkpointer thread copies each batch's WAL frames on
 * another core while the next batch runs (sq_ckpt_purging,
 * sqlite_ckpt.c), which cut a third of a large retention's time against
 * checkpoints run here between batches, and a fifth beside a writer in
 * another process. */
static int batches(sq_store *s, const cf_purge *p, cf_life_counts *out, cf_err *err)
{
    int64_t rows = p->batch_rows, seen = -1;
    sqlite3_stmt *dv = NULL; /* none: the plain gap */
    if (sqlite3_prepare_v2(s->db, "PRAGMA data_version", -1, &dv, NULL) != SQLITE_OK) {
        sqlite3_finalize(dv);
        dv = NULL;
    }
    int rc = 0;
    for (int64_t done = 0; !p->max_batches || done < p->max_batches; done++) {
        int last = 0;
        int64_t t0 = cf_mono_ns();
        if (one_batch(s, p, rows, &last, out, err)) {
            rc = -1;
            break;
        }
        if (last)
            break;
        rows = cf_life_next_size(p, rows, cf_mono_ns() - t0, LOCK_TARGET_NS);
        gap(dv, done, &seen);
    }
    sqlite3_finalize(dv);
    return rc;
}

int sq_purge(cf_store *base, const cf_purge *p, cf_life_counts *out, cf_err *err)
{
    sq_store *s = (sq_store *)base;
    if (p->dry_run)
        return count_all(s, p, out, err);
    sq_ckpt_purging(s, 1);
    int rc = batches(s, p, out, err);
    sq_ckpt_purging(s, 0);
    return rc;
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

int sq_list_deletions(cf_store *base, int64_t limit, const char *status, cf_deletion_fn cb,
                      void *ud, cf_err *err)
{
    sq_store *s = (sq_store *)base;
    sqlite3_stmt *st = NULL;
    /* two statements, so that each walks its index (migration 14) from
     * the newest record: "?2 IS NULL OR status = ?2" would read them all */
#define SQ_DELETION_COLUMNS                                                                        \
    "SELECT id, action, subject, deployment_id, status, started_at, finished_at, details"          \
    " FROM deletion_audit"
    const char *sql = status ? SQ_DELETION_COLUMNS " WHERE status = ?2"
                                                   " ORDER BY started_at DESC, seq DESC LIMIT ?1"
                             : SQ_DELETION_COLUMNS " ORDER BY started_at DESC, seq DESC LIMIT ?1";
#undef SQ_DELETION_COLUMNS
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
        return sq_fail(s, err, "preparing the deletion records");
    sqlite3_bind_int64(st, 1, limit);
    if (status)
        sqlite3_bind_text(st, 2, status, -1, SQLITE_STATIC);
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
