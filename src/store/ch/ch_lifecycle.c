/*
 * ClickHouse backend: the data lifecycle (migration 9's deletion_audit).
 *
 * Deletes are mutations (ALTER TABLE ... DELETE WHERE), waited for until
 * system.mutations reports them done, so a purge has finished when it
 * returns. Why mutations: the tables have no partition key to drop by
 * (they are ordered by deployment and time in one partition), the server
 * this backend supports (18.16) has neither TTL clauses nor lightweight
 * DELETE, and per-deployment cut-offs with a cascade by event id are not
 * a TTL expression anyway. A mutation rewrites the parts it touches, so
 * batches are large (CH_BATCH ids, within the server's query size) and
 * inserts go on meanwhile: a mutation never blocks them.
 *
 * Each batch: the parent ids are read (FINAL for workflow runs, whose
 * status lives in the latest version), their dependents are deleted by
 * those ids (cf_life_deps, deepest first), then the parents and, for
 * events, their rows in the inference_event_ids view.
 */
#include "ch_int.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../cf_life_sql.h"

/* Ids per batch: 4000 quoted UUIDs stay well within max_query_size. */
#define CH_BATCH 4000
/* How long a mutation may take before the purge gives up waiting. */
#define CH_MUTATION_WAIT_MS (10 * 60 * 1000)

static int quote(cf_buf *b, cf_str s) { return ch_quote(b, s); }

static void init_sql(cf_life_sql *q)
{
    cf_life_sql_init(q, 'q');
    q->quote = quote;
}

static int oom(cf_err *err, cf_buf *b)
{
    return cf_buf_failed(b) ? cf_fail(err, CF_ENOMEM, "out of memory building a purge") : 0;
}

static void add(cf_life_counts *out, const char *table, int64_t n)
{
    int i = cf_life_table_index(table);
    if (i >= 0)
        out->n[i] += n;
}

static int events(const cf_purge *p) { return strcmp(p->table, "inference_events") == 0; }

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Waits until no mutation of table is pending. */
static int wait_mutations(ch_store *s, const char *table, cf_err *err)
{
    cf_buf q = CF_BUF_INIT;
    cf_buf_str(&q, "SELECT count() FROM system.mutations WHERE database = currentDatabase()"
                   " AND table = ");
    ch_quote(&q, cf_cstr(table));
    cf_buf_str(&q, " AND is_done = 0");
    int rc = oom(err, &q);
    for (long waited = 0; !rc; waited += 50) {
        int64_t pending = 0;
        rc = ch_query_int(s, &q, "waiting for a delete", &pending, err);
        if (rc || pending == 0)
            break;
        if (waited > CH_MUTATION_WAIT_MS)
            rc = ch_fail(s, err, "waiting for a delete", "the mutation did not finish in time");
        else
            sleep_ms(50);
    }
    cf_buf_free(&q);
    return rc;
}

/* Counts (into out) then deletes the rows of table matching cond. */
static int delete_where(ch_store *s, const char *table, const char *cond, cf_life_counts *out,
                        int count_only, cf_err *err)
{
    cf_buf q = CF_BUF_INIT;
    cf_buf_str(&q, "SELECT count() FROM ");
    cf_buf_str(&q, table);
    cf_buf_str(&q, " WHERE ");
    cf_buf_str(&q, cond);
    int64_t n = 0;
    int rc = oom(err, &q) || ch_query_int(s, &q, "counting rows to purge", &n, err);
    add(out, table, rc ? 0 : n);
    if (!rc && n > 0 && !count_only) {
        q.n = 0;
        cf_buf_str(&q, "ALTER TABLE ");
        cf_buf_str(&q, table);
        cf_buf_str(&q, " DELETE WHERE ");
        cf_buf_str(&q, cond);
        rc = oom(err, &q) || ch_exec(s, q.p, q.n, "deleting", err)
             || wait_mutations(s, table, err);
    }
    cf_buf_free(&q);
    return rc;
}

/* The dependents of the events event_ids names (a list body or a
 * subquery), deepest first. */
static int cascade(ch_store *s, const char *event_ids, cf_life_counts *out, int count_only,
                   cf_err *err)
{
    cf_life_sql q;
    init_sql(&q);
    int rc = 0;
    for (size_t i = 0; !rc && i < cf_life_ndeps; i++) {
        cf_life_sql_reset(&q);
        cf_buf_str(&q.b, cf_life_deps[i].column);
        cf_buf_str(&q.b, " IN (");
        cf_life_parent_ids(&q, i, event_ids, NULL);
        cf_buf_putc(&q.b, ')');
        cf_buf_putc(&q.b, '\0');
        rc = oom(err, &q.b) || delete_where(s, cf_life_deps[i].table, q.b.p, out, count_only, err);
    }
    cf_buf_free(&q.b);
    return rc;
}

/* Appends "SELECT <what> FROM table [FINAL] WHERE <the purge's rows>". */
static void select_rows(cf_life_sql *q, const cf_purge *p, const char *what)
{
    cf_buf_str(&q->b, "SELECT ");
    cf_buf_str(&q->b, what);
    cf_buf_str(&q->b, " FROM ");
    cf_buf_str(&q->b, p->table);
    if (strcmp(p->table, "workflow_runs") == 0)
        cf_buf_str(&q->b, " FINAL");
    cf_buf_str(&q->b, " WHERE ");
    cf_life_where(q, p);
}

/* The ids of up to limit rows p selects, as a list body ('a', 'b'). */
static int read_ids(ch_store *s, const cf_purge *p, int64_t limit, cf_buf *ids, int64_t *n,
                    cf_err *err)
{
    cf_life_sql q;
    init_sql(&q);
    select_rows(&q, p, "DISTINCT id");
    cf_buf_str(&q.b, " LIMIT ");
    cf_buf_int(&q.b, limit);
    ch_rows r;
    int rc = oom(err, &q.b) || ch_query(s, &q.b, "selecting rows to purge", &r, err);
    cf_buf_free(&q.b);
    if (rc)
        return -1;
    ids->n = 0;
    *n = 0;
    while ((rc = ch_rows_next(&r, 1, err)) == 1) {
        if ((*n)++)
            cf_buf_str(ids, ", ");
        ch_quote(ids, r.f[0]);
    }
    if (rc == 0)
        ch_rows_close(&r);
    cf_buf_putc(ids, '\0');
    return rc < 0 ? -1 : oom(err, ids);
}

static int dry_run(ch_store *s, const cf_purge *p, cf_life_counts *out, cf_err *err)
{
    cf_life_sql q;
    init_sql(&q);
    select_rows(&q, p, "uniqExact(id)");
    int64_t n = 0;
    int rc = oom(err, &q.b) || ch_query_int(s, &q.b, "counting rows to purge", &n, err);
    add(out, p->table, rc ? 0 : n);
    if (!rc && events(p)) {
        cf_life_sql_reset(&q);
        select_rows(&q, p, "id");
        cf_buf_putc(&q.b, '\0');
        rc = oom(err, &q.b) || cascade(s, q.b.p, out, 1, err);
    }
    cf_buf_free(&q.b);
    return rc;
}

/* Deletes one batch of parents (ids: n of them) after their dependents. */
static int delete_batch(ch_store *s, const cf_purge *p, const cf_buf *ids, int64_t n,
                        cf_life_counts *out, cf_err *err)
{
    cf_life_counts versions;
    memset(&versions, 0, sizeof versions);
    cf_buf cond = CF_BUF_INIT;
    cf_buf_str(&cond, "id IN (");
    cf_buf_str(&cond, ids->p);
    cf_buf_putc(&cond, ')');
    cf_buf_putc(&cond, '\0');
    int rc = oom(err, &cond) || (events(p) && cascade(s, ids->p, out, 0, err))
             || delete_where(s, p->table, cond.p, &versions, 0, err)
             || (events(p) && delete_where(s, "inference_event_ids", cond.p, &versions, 0, err));
    if (!rc)
        add(out, p->table, n); /* rows, not their stored versions */
    cf_buf_free(&cond);
    return rc;
}

/* Writes p's record with the rows removed so far (out). */
static int put_record(cf_store *base, const cf_purge *p, const cf_life_counts *out,
                      cf_err *err)
{
    cf_buf details = CF_BUF_INIT;
    if (cf_life_record_details(p, out, &details)) {
        cf_buf_free(&details);
        return cf_fail(err, CF_ENOMEM, "out of memory writing the deletion record");
    }
    cf_deletion d = *p->record;
    d.details = (cf_str){details.p, details.n};
    int rc = ch_put_deletion(base, &d, err);
    cf_buf_free(&details);
    return rc;
}

int ch_purge(cf_store *base, const cf_purge *p, cf_life_counts *out, cf_err *err)
{
    ch_store *s = (ch_store *)base;
    if (p->dry_run)
        return dry_run(s, p, out, err);
    /* no transactions: the record goes first, so no delete is unrecorded,
     * and again after each batch with its rows (a crash between a batch's
     * deletes and that write leaves them uncounted) */
    if (p->record && put_record(base, p, out, err))
        return -1;
    int64_t limit = p->batch_rows < CH_BATCH ? p->batch_rows : CH_BATCH;
    cf_buf ids = CF_BUF_INIT;
    int rc = 0;
    for (int64_t b = 0; !rc && (!p->max_batches || b < p->max_batches); b++) {
        int64_t n = 0;
        rc = read_ids(s, p, limit, &ids, &n, err);
        if (!rc && n)
            rc = delete_batch(s, p, &ids, n, out, err);
        if (!rc && n && p->record)
            rc = put_record(base, p, out, err);
        if (n < limit)
            break;
    }
    cf_buf_free(&ids);
    return rc;
}

int ch_list_user_exports(cf_store *base, const cf_purge *p, cf_export_row_fn cb, void *ud,
                         cf_err *err)
{
    ch_store *s = (ch_store *)base;
    cf_life_sql q;
    init_sql(&q);
    cf_buf_str(&q.b, "SELECT if(mark_batch = '', ifNull(export_batch_id, ''), mark_batch), id,"
                     " inference_event_id, prompt, response FROM (SELECT id,"
                     " inference_event_id, prompt, response, export_batch_id, exported, seq"
                     " FROM curated_examples WHERE inference_event_id IN (");
    select_rows(&q, p, "id");
    cf_buf_str(&q.b, ")) ANY LEFT JOIN (SELECT curated_id AS id,"
                     " argMax(export_batch_id, exported_at) AS mark_batch"
                     " FROM curated_export_marks GROUP BY curated_id) USING id"
                     " WHERE exported = 1 OR mark_batch != '' ORDER BY 1, seq");
    ch_rows r;
    int rc = oom(err, &q.b) || ch_query(s, &q.b, "listing a user's exports", &r, err);
    cf_buf_free(&q.b);
    if (rc)
        return -1;
    while ((rc = ch_rows_next(&r, 5, err)) == 1) {
        cf_exported_row row = {r.f[0], r.f[1], r.f[2], r.f[3], r.f[4]};
        rc = cb(ud, &row);
        if (rc)
            break;
    }
    if (rc >= 0)
        ch_rows_close(&r);
    return rc;
}

int ch_count_orphans(cf_store *base, cf_life_counts *out, cf_err *err)
{
    ch_store *s = (ch_store *)base;
    cf_buf q = CF_BUF_INIT;
    int rc = 0;
    for (size_t i = 0; !rc && i < cf_life_ndeps; i++) {
        const cf_life_dep *d = &cf_life_deps[i];
        q.n = 0;
        cf_buf_str(&q, "SELECT count() FROM ");
        cf_buf_str(&q, d->table);
        cf_buf_str(&q, " WHERE ");
        cf_buf_str(&q, d->column);
        cf_buf_str(&q, " NOT IN (SELECT id FROM ");
        cf_buf_str(&q, d->parent);
        cf_buf_putc(&q, ')');
        int64_t n = 0;
        rc = oom(err, &q) || ch_query_int(s, &q, "counting orphans", &n, err);
        add(out, d->table, n);
    }
    cf_buf_free(&q);
    return rc;
}

/* ---- the deletion audit: versions of a record, the latest read FINAL ---------- */

int ch_put_deletion(cf_store *base, const cf_deletion *d, cf_err *err)
{
    ch_store *s = (ch_store *)base;
    cf_buf b = CF_BUF_INIT;
    ch_json_key(&b, "id", 1);
    cf_buf_json_string(&b, d->id.p, d->id.n);
    ch_json_str(&b, "action", d->action);
    ch_json_str(&b, "subject", d->subject);
    ch_json_str(&b, "deployment_id", d->deployment_id);
    ch_json_str(&b, "status", d->status);
    ch_json_int(&b, "started_at", d->started_at);
    ch_json_int(&b, "finished_at", d->finished_at);
    ch_json_str(&b, "details", d->details.p ? d->details : cf_cstr("{}"));
    ch_json_int(&b, "version", (int64_t)ch_next_seq());
    cf_buf_str(&b, "}\n");
    int rc = oom(err, &b) || ch_insert(s, "deletion_audit", &b, "writing the deletion record", err);
    cf_buf_free(&b);
    return rc;
}

int ch_list_deletions(cf_store *base, int64_t limit, const char *status, cf_deletion_fn cb,
                      void *ud, cf_err *err)
{
    ch_store *s = (ch_store *)base;
    cf_buf q = CF_BUF_INIT;
    /* the status is compared after FINAL (in a subquery): each record's
     * newest version counts, never an older one's status */
    cf_buf_str(&q, "SELECT id, action, subject, deployment_id, status, started_at, finished_at,"
                   " details FROM (SELECT * FROM deletion_audit FINAL)");
    if (status) {
        cf_buf_str(&q, " WHERE status = ");
        ch_quote(&q, (cf_str){status, strlen(status)});
    }
    cf_buf_str(&q, " ORDER BY started_at DESC, version DESC LIMIT ");
    cf_buf_int(&q, limit);
    ch_rows r;
    int rc = oom(err, &q) || ch_query(s, &q, "reading the deletion records", &r, err);
    cf_buf_free(&q);
    if (rc)
        return -1;
    while ((rc = ch_rows_next(&r, 8, err)) == 1) {
        cf_deletion d = {.id = r.f[0], .action = r.f[1], .subject = r.f[2],
                         .deployment_id = r.f[3], .status = r.f[4],
                         .started_at = ch_int(r.f[5]), .finished_at = ch_int(r.f[6]),
                         .details = r.f[7]};
        rc = cb(ud, &d);
        if (rc)
            break;
    }
    if (rc >= 0)
        ch_rows_close(&r);
    return rc;
}
