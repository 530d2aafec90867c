/*
 * The data lifecycle above the backends: the cascade list (which tables
 * point at inference events, and at what), the tables counted, request
 * checks, dispatch, and the SQL that SQLite and PostgreSQL share for a
 * purge's selection (cf_life_sql.h).
 */
#include "cf_life_sql.h"

#include <stdio.h>
#include <string.h>

/* Deepest first: a row's children come before it. A table that points
 * at inference events (or at one of these) is one more row here. */
const cf_life_dep cf_life_deps[] = {
    {"curated_export_marks", "curated_id", "curated_examples"},
    {"curated_export_claims", "curated_id", "curated_examples"},
    {"user_signals", "inference_event_id", "inference_events"},
    {"scores", "inference_event_id", "inference_events"},
    {"curated_examples", "inference_event_id", "inference_events"},
};
const size_t cf_life_ndeps = sizeof cf_life_deps / sizeof cf_life_deps[0];

/* inference_events, the dependents (in cf_life_deps order), then the
 * tables purged on their own age. */
const char *const cf_life_tables[] = {
    "inference_events", "curated_export_marks", "curated_export_claims", "user_signals",
    "scores", "curated_examples", "drift_results", "trigger_events", "workflow_runs",
};
const size_t cf_life_ntables = sizeof cf_life_tables / sizeof cf_life_tables[0];

int cf_life_table_index(const char *table)
{
    for (size_t i = 0; i < cf_life_ntables; i++)
        if (strcmp(cf_life_tables[i], table) == 0)
            return (int)i;
    return -1;
}

int cf_life_dep_index(const char *table)
{
    for (size_t i = 0; i < cf_life_ndeps; i++)
        if (strcmp(cf_life_deps[i].table, table) == 0)
            return (int)i;
    return -1;
}

int cf_life_dep_of_events(size_t dep)
{
    return strcmp(cf_life_deps[dep].parent, "inference_events") == 0;
}

/* Tables a purge may name: events (with dependents) and those purged on
 * their own age; whether they have a deployment_id. */
static const struct {
    const char *table;
    int has_deployment;
} purgeable[] = {
    {"inference_events", 1}, {"user_signals", 1}, {"scores", 1},
    {"drift_results", 1},    {"trigger_events", 1}, {"workflow_runs", 0},
};

int cf_life_record_details(const cf_purge *p, const cf_life_counts *so_far, cf_buf *out)
{
    cf_str d = p->record && p->record->details.p ? p->record->details : (cf_str){"{}", 2};
    /* the object up to its closing brace, then "tables" as its last member */
    size_t close = d.n;
    while (close > 0 && d.p[close - 1] != '}')
        close--;
    if (close == 0 || d.p[0] != '{') {
        cf_buf_putc(out, '{');
    } else {
        size_t j = close - 1; /* the brace; j > 0, d.p[0] being '{' */
        while (j > 1 && (d.p[j - 1] == ' ' || d.p[j - 1] == '\t' || d.p[j - 1] == '\r'
                         || d.p[j - 1] == '\n'))
            j--;
        cf_buf_append(out, d.p, close - 1);
        if (d.p[j - 1] != '{') /* members before it */
            cf_buf_putc(out, ',');
    }
    cf_buf_str(out, "\"tables\":{");
    for (size_t i = 0; i < cf_life_ntables; i++) {
        char v[64];
        int64_t n = p->record_base[i] + (so_far ? so_far->n[i] : 0);
        snprintf(v, sizeof v, "%s\"%s\":%lld", i ? "," : "", cf_life_tables[i], (long long)n);
        cf_buf_str(out, v);
    }
    cf_buf_str(out, "}}");
    return cf_buf_failed(out) ? -1 : 0;
}

void cf_purge_init(cf_purge *p, const char *table)
{
    memset(p, 0, sizeof *p);
    p->table = table;
    p->before = CF_NO_TIME;
    p->keep_exported_since = CF_NO_TIME;
    p->batch_rows = 1000;
}

int cf_purge_check(const cf_purge *p, cf_err *err)
{
    int known = -1;
    for (size_t i = 0; p->table && i < sizeof purgeable / sizeof purgeable[0]; i++)
        if (strcmp(purgeable[i].table, p->table) == 0)
            known = (int)i;
    if (known < 0)
        return cf_fail(err, CF_EINVAL, "cannot purge table '%s'", p->table ? p->table : "");
    if (!purgeable[known].has_deployment && (p->deployment_id.p || p->nexcept))
        return cf_fail(err, CF_EINVAL, "%s have no deployment", p->table);
    if (p->nusers && strcmp(p->table, "inference_events") != 0)
        return cf_fail(err, CF_EINVAL, "only inference events are selected by user");
    if (p->nusers > CF_LIFE_MAX_USERS || p->nexcept > CF_LIFE_MAX_EXCEPT)
        return cf_fail(err, CF_EINVAL, "at most %d user hashes and %d excepted deployments",
                       CF_LIFE_MAX_USERS, CF_LIFE_MAX_EXCEPT);
    if (p->before == CF_NO_TIME && !p->nusers)
        return cf_fail(err, CF_EINVAL, "a purge needs a cut-off time or users");
    for (size_t i = 0; i < p->nusers; i++)
        if (!p->user_hashes[i].p)
            return cf_fail(err, CF_EINVAL, "user hash %zu is missing", i + 1);
    for (size_t i = 0; i < p->nexcept; i++)
        if (!p->except[i].p)
            return cf_fail(err, CF_EINVAL, "excepted deployment %zu is missing", i + 1);
    if (p->batch_rows < 1)
        return cf_fail(err, CF_EINVAL, "batch_rows must be at least 1");
    if (p->record && (!p->record->id.p || !p->record->action.p || !p->record->status.p))
        return cf_fail(err, CF_EINVAL, "a deletion record needs id, action and status");
    return 0;
}

static int unsupported(cf_store *s, cf_err *e, const char *what)
{
    return cf_fail(e, CF_EUNSUPPORTED, "%s: %s", s->vt->name, what);
}

int cf_store_purge(cf_store *s, const cf_purge *p, cf_life_counts *out, cf_err *e)
{
    if (cf_purge_check(p, e))
        return -1;
    if (!s->vt->purge)
        return unsupported(s, e, "no purge");
    if (p->guard && (!p->record || p->dry_run || strcmp(p->table, "inference_events") != 0))
        return cf_fail(e, CF_EINVAL, "a guarded purge deletes events and writes a deletion record");
    if (p->guard && !s->vt->purge_guards)
        return unsupported(s, e, "no guarded purge");
    return s->vt->purge(s, p, out, e);
}

int cf_store_purge_guards(const cf_store *s) { return s->vt->purge_guards; }

int cf_store_list_user_exports(cf_store *s, const cf_purge *p, cf_export_row_fn cb, void *ud,
                               cf_err *e)
{
    if (cf_purge_check(p, e))
        return -1;
    if (strcmp(p->table, "inference_events") != 0)
        return cf_fail(e, CF_EINVAL, "exports are listed for inference events");
    if (!s->vt->list_user_exports)
        return unsupported(s, e, "no export listing");
    return s->vt->list_user_exports(s, p, cb, ud, e);
}

int cf_store_count_orphans(cf_store *s, cf_life_counts *out, cf_err *e)
{
    if (!s->vt->count_orphans)
        return unsupported(s, e, "no orphan check");
    return s->vt->count_orphans(s, out, e);
}

int cf_store_put_deletion(cf_store *s, const cf_deletion *d, cf_err *e)
{
    if (!d->id.p || !d->action.p || !d->status.p)
        return cf_fail(e, CF_EINVAL, "a deletion record needs id, action and status");
    if (!s->vt->put_deletion)
        return unsupported(s, e, "no deletion audit");
    return s->vt->put_deletion(s, d, e);
}

int cf_store_list_deletions(cf_store *s, int64_t limit, const char *status, cf_deletion_fn cb,
                            void *ud, cf_err *e)
{
    if (!s->vt->list_deletions)
        return unsupported(s, e, "no deletion audit");
    return s->vt->list_deletions(s, limit < 0 ? INT64_MAX : limit, status, cb, ud, e);
}

int cf_store_backup(cf_store *s, const char *path, cf_err *e)
{
    if (!s->vt->backup)
        return unsupported(s, e, "back up with the server's own tools (docs/lifecycle.md)");
    return s->vt->backup(s, path, e);
}

int cf_store_restore(cf_store *s, const char *path, cf_err *e)
{
    if (!s->vt->restore)
        return unsupported(s, e, "restore with the server's own tools (docs/lifecycle.md)");
    return s->vt->restore(s, path, e);
}

/* ---- the shared SQL ------------------------------------------------------------ */

void cf_life_sql_init(cf_life_sql *q, char style)
{
    memset(q, 0, sizeof *q);
    q->style = style;
}

void cf_life_sql_reset(cf_life_sql *q)
{
    q->b.n = 0;
    if (q->b.p)
        q->b.p[0] = '\0';
    q->np = 0;
}

static int placeholder(cf_life_sql *q, const char *fmt)
{
    char ph[24];
    snprintf(ph, sizeof ph, "%c%d", q->style, q->np);
    if (!fmt)
        return cf_buf_str(&q->b, ph);
    char wrapped[128];
    snprintf(wrapped, sizeof wrapped, fmt, ph);
    return cf_buf_str(&q->b, wrapped);
}

static int add_value(cf_life_sql *q, cf_colval v, const char *fmt)
{
    if (q->style == 'q') {
        if (v.type == CF_COLVAL_TEXT)
            return q->quote(&q->b, v.s);
        return cf_buf_int(&q->b, v.i);
    }
    if (q->np >= CF_LIFE_MAX_PARAMS) {
        q->b.oom = 1;
        return -1;
    }
    q->is_time[q->np] = 0;
    q->p[q->np++] = v;
    return placeholder(q, fmt);
}

int cf_life_sql_str(cf_life_sql *q, cf_str s)
{
    cf_colval v = {.type = CF_COLVAL_TEXT, .s = s};
    return add_value(q, v, NULL);
}

int cf_life_sql_int(cf_life_sql *q, int64_t i)
{
    cf_colval v = {.type = CF_COLVAL_INT, .i = i};
    return add_value(q, v, NULL);
}

int cf_life_sql_time(cf_life_sql *q, int64_t us)
{
    cf_colval v = {.type = CF_COLVAL_INT, .i = us};
    int rc = add_value(q, v, q->time_fmt);
    if (!rc && q->style != 'q')
        q->is_time[q->np - 1] = 1;
    return rc;
}

const char *cf_life_time_column(const char *table)
{
    return strcmp(table, "workflow_runs") == 0 ? "started_at" : "inserted_at";
}

static void str_list(cf_life_sql *q, const cf_str *v, size_t n)
{
    cf_buf_putc(&q->b, '(');
    for (size_t i = 0; i < n; i++) {
        if (i)
            cf_buf_str(&q->b, ", ");
        cf_life_sql_str(q, v[i]);
    }
    cf_buf_putc(&q->b, ')');
}

/* SQLite indexes users by the first character of their hash (the
 * user_bucket column, migration 11): " AND user_bucket IN ('a', ...)" lets
 * a user's purge search that index. Written only when every hash starts
 * with a hex digit (the HMAC's form), as literals: no parameter per user. */
static void user_buckets(cf_life_sql *q, const cf_str *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (v[i].n == 0 || !strchr("0123456789abcdef", v[i].p[0]))
            return;
    cf_buf_str(&q->b, " AND user_bucket IN (");
    for (size_t i = 0; i < n; i++) {
        char lit[5] = {'\'', v[i].p[0], '\'', ',', '\0'};
        if (i + 1 == n)
            lit[3] = ')';
        cf_buf_str(&q->b, lit);
    }
}

/* Events with an exported curated example (exported at or after since,
 * unless since is "any time") are left out. Subqueries, no join: the
 * same text serves every backend. */
static void keep_exported(cf_life_sql *q, int64_t since)
{
    cf_buf_str(&q->b, " AND id NOT IN (SELECT inference_event_id FROM curated_examples WHERE ");
    if (since == INT64_MIN + 1) {
        cf_buf_str(&q->b, "exported OR id IN (SELECT curated_id FROM curated_export_marks))");
        return;
    }
    cf_buf_str(&q->b, "(exported AND updated_at >= ");
    cf_life_sql_time(q, since);
    cf_buf_str(&q->b, ") OR id IN (SELECT curated_id FROM curated_export_marks"
                      " WHERE exported_at >= ");
    cf_life_sql_time(q, since);
    cf_buf_str(&q->b, "))");
}

int cf_life_where(cf_life_sql *q, const cf_purge *p)
{
    cf_buf_str(&q->b, "1 = 1");
    if (p->deployment_id.p) {
        cf_buf_str(&q->b, " AND deployment_id = ");
        cf_life_sql_str(q, p->deployment_id);
    }
    if (p->nexcept) {
        cf_buf_str(&q->b, " AND deployment_id NOT IN ");
        str_list(q, p->except, p->nexcept);
    }
    if (p->before != CF_NO_TIME) {
        cf_buf_str(&q->b, " AND ");
        cf_buf_str(&q->b, cf_life_time_column(p->table));
        cf_buf_str(&q->b, " < ");
        cf_life_sql_time(q, p->before);
    }
    if (p->nusers) {
        cf_buf_str(&q->b, " AND user_id_hash IN ");
        str_list(q, p->user_hashes, p->nusers);
        if (q->style == '?')
            user_buckets(q, p->user_hashes, p->nusers);
    }
    if (strcmp(p->table, "workflow_runs") == 0)
        cf_buf_str(&q->b, " AND status <> 'running'");
    if (strcmp(p->table, "inference_events") == 0 && p->keep_exported_since != CF_NO_TIME)
        keep_exported(q, p->keep_exported_since);
    return cf_buf_failed(&q->b) ? -1 : 0;
}

int cf_life_parent_ids(cf_life_sql *q, size_t dep, const char *event_ids, const cf_purge *p)
{
    const char *parent = cf_life_deps[dep].parent;
    if (cf_life_dep_of_events(dep)) {
        if (event_ids)
            return cf_buf_str(&q->b, event_ids);
        cf_buf_str(&q->b, "SELECT id FROM inference_events WHERE ");
        return cf_life_where(q, p);
    }
    int up = cf_life_dep_index(parent);
    if (up < 0)
        return -1;
    cf_buf_str(&q->b, "SELECT id FROM ");
    cf_buf_str(&q->b, parent);
    cf_buf_str(&q->b, " WHERE ");
    cf_buf_str(&q->b, cf_life_deps[up].column);
    cf_buf_str(&q->b, " IN (");
    if (cf_life_parent_ids(q, (size_t)up, event_ids, p))
        return -1;
    return cf_buf_putc(&q->b, ')');
}

/* ---- batches along an index ------------------------------------------------------ */

int cf_life_time_ordered(const cf_purge *p)
{
    return p->deployment_id.p && !p->nusers
           && (strcmp(p->table, "inference_events") == 0 || strcmp(p->table, "user_signals") == 0
               || strcmp(p->table, "drift_results") == 0);
}

/* Appends " AND (time, seq) op (at, seq)" in the purge's order (seq
 * order: " AND (seq op seq)"), the row comparison after the time's own
 * (time <= or >= at): PostgreSQL estimates a row comparison's selectivity
 * as a third of the table and would scan all of it, but sees from the
 * time's that the range is narrow and walks the index. */
static void row_compare(cf_life_sql *q, const cf_purge *p, const char *op, int64_t at, int64_t seq)
{
    if (cf_life_time_ordered(p)) {
        cf_buf_str(&q->b, " AND ");
        cf_buf_str(&q->b, cf_life_time_column(p->table));
        cf_buf_str(&q->b, op[0] == '>' ? " >= " : " <= ");
        cf_life_sql_time(q, at);
        cf_buf_str(&q->b, " AND (");
        cf_buf_str(&q->b, cf_life_time_column(p->table));
        cf_buf_str(&q->b, ", seq) ");
        cf_buf_str(&q->b, op);
        cf_buf_str(&q->b, " (");
        cf_life_sql_time(q, at);
        cf_buf_str(&q->b, ", ");
    } else {
        cf_buf_str(&q->b, " AND (seq ");
        cf_buf_str(&q->b, op);
        cf_buf_putc(&q->b, ' ');
    }
    cf_life_sql_int(q, seq);
    cf_buf_putc(&q->b, ')');
}

int cf_life_bound_sql(cf_life_sql *q, const cf_purge *p, const cf_life_bound *b, int64_t rows,
                      const char *time_expr)
{
    const char *key = cf_life_time_ordered(p) ? cf_life_time_column(p->table) : "seq";
    cf_buf_str(&q->b, "SELECT ");
    cf_buf_str(&q->b, cf_life_time_ordered(p) ? time_expr : "seq");
    cf_buf_str(&q->b, ", seq FROM ");
    cf_buf_str(&q->b, p->table);
    cf_buf_str(&q->b, " WHERE ");
    int rc = cf_life_where(q, p);
    if (b && b->has_lo)
        row_compare(q, p, ">", b->lo_at, b->lo_seq);
    cf_buf_str(&q->b, " ORDER BY ");
    cf_buf_str(&q->b, key);
    cf_buf_str(&q->b, ", seq LIMIT 1 OFFSET ");
    cf_life_sql_int(q, rows - 1);
    return rc || cf_buf_failed(&q->b) ? -1 : 0;
}

/* SQLite: time <= at AND (time < at OR seq <= seq), which its index takes
 * as a range where it would not a row value. */
static void upto_expanded(cf_life_sql *q, const cf_purge *p, const cf_life_bound *b)
{
    if (!cf_life_time_ordered(p)) {
        row_compare(q, p, "<=", 0, b->seq);
        return;
    }
    const char *tc = cf_life_time_column(p->table);
    cf_buf_str(&q->b, " AND ");
    cf_buf_str(&q->b, tc);
    cf_buf_str(&q->b, " <= ");
    cf_life_sql_time(q, b->at);
    cf_buf_str(&q->b, " AND (");
    cf_buf_str(&q->b, tc);
    cf_buf_str(&q->b, " < ");
    cf_life_sql_time(q, b->at);
    cf_buf_str(&q->b, " OR seq <= ");
    cf_life_sql_int(q, b->seq);
    cf_buf_putc(&q->b, ')');
}

int cf_life_batch_where(cf_life_sql *q, const cf_purge *p, const cf_life_bound *b)
{
    cf_purge own = *p;
    if (b && b->set && cf_life_time_ordered(p))
        own.before = CF_NO_TIME;
    int rc = cf_life_where(q, &own);
    if (b && b->set && q->style == '?')
        upto_expanded(q, p, b);
    else if (b && b->set)
        row_compare(q, p, "<=", b->at, b->seq);
    if (b && b->has_lo)
        row_compare(q, p, ">", b->lo_at, b->lo_seq);
    return rc || cf_buf_failed(&q->b) ? -1 : 0;
}

int64_t cf_life_next_size(const cf_purge *p, int64_t rows, int64_t took_ns, int64_t target_ns)
{
    int64_t cap = p->batch_rows * 16;
    /* rows * target / took, in [rows / 2, rows * 2]: each batch aims at
     * the target itself, so a writer beside it waits about that long */
    double want = took_ns > 0 ? (double)rows * (double)target_ns / (double)took_ns
                              : (double)rows * 2;
    if (want > (double)rows * 2)
        want = (double)rows * 2;
    if (want < (double)rows / 2)
        want = (double)rows / 2;
    int64_t next = want >= (double)cap ? cap : (int64_t)want;
    return next < 1 ? 1 : next;
}
