/*
 * PostgreSQL backend: the maintained per-deployment event counts (migration
 * 12, cf_event_counts.h).
 *
 * Several `serve` processes write one database at once, so a single
 * counter row per deployment would make every batch wait for the one
 * before it to commit (the row's lock). Instead deployment_event_counts
 * holds deltas: each event batch appends one row per deployment with the
 * rows it wrote, each purge batch one with minus the rows it deleted, in
 * their own transactions; plain inserts lock nothing another writer
 * needs. A deployment's count is the sum of its rows (an index range).
 * A fold replaces a deployment's rows by their sum in one statement:
 * its DELETE takes only rows committed when it starts, so deltas that
 * writers append meanwhile stay, and readers see either the rows or
 * their sum, never both. Folds run when a count finds many rows, and
 * from a writer every FOLD_EVERY batches; an advisory lock lets one fold
 * run at a time (a second one skips: no waiting, no deadlock).
 *
 * Rows other programs write or delete (psql, a script, a restore) are
 * counted too: row triggers append a delta for each, unless the session
 * says it keeps the counts itself (crucible.counts_kept, set by every
 * connection this backend opens), so our own batches pay only the
 * trigger's WHEN test. TRUNCATE empties the counts.
 */
#include "pg_int.h"

#include <stdlib.h>

#include "../cf_event_counts.h"

const char pg_counts_migration[] =
    /* writers wait for the backfill, so no batch is counted twice or missed */
    "LOCK TABLE inference_events IN SHARE MODE;"
    "CREATE TABLE deployment_event_counts ("
    "  deployment_id text NOT NULL,"
    "  n bigint NOT NULL);"
    "CREATE INDEX deployment_event_counts_deployment"
    "  ON deployment_event_counts (deployment_id) INCLUDE (n);"
    "INSERT INTO deployment_event_counts (deployment_id, n)"
    "  SELECT deployment_id, count(*) FROM inference_events GROUP BY deployment_id;"
    "CREATE FUNCTION crucible_count_event() RETURNS trigger LANGUAGE plpgsql AS $$"
    " BEGIN"
    "  IF TG_OP = 'INSERT' THEN"
    "   INSERT INTO deployment_event_counts (deployment_id, n) VALUES (NEW.deployment_id, 1);"
    "  ELSE"
    "   INSERT INTO deployment_event_counts (deployment_id, n) VALUES (OLD.deployment_id, -1);"
    "  END IF;"
    "  RETURN NULL;"
    " END $$;"
    "CREATE FUNCTION crucible_count_truncate() RETURNS trigger LANGUAGE plpgsql AS $$"
    " BEGIN DELETE FROM deployment_event_counts; RETURN NULL; END $$;"
    "CREATE TRIGGER inference_events_counted_insert AFTER INSERT ON inference_events"
    "  FOR EACH ROW WHEN (current_setting('crucible.counts_kept', true) IS DISTINCT FROM 'on')"
    "  EXECUTE FUNCTION crucible_count_event();"
    "CREATE TRIGGER inference_events_counted_delete AFTER DELETE ON inference_events"
    "  FOR EACH ROW WHEN (current_setting('crucible.counts_kept', true) IS DISTINCT FROM 'on')"
    "  EXECUTE FUNCTION crucible_count_event();"
    "CREATE TRIGGER inference_events_counted_truncate AFTER TRUNCATE ON inference_events"
    "  FOR EACH STATEMENT EXECUTE FUNCTION crucible_count_truncate();";

/* Folds when a count reads more rows than this for its deployment. */
#define FOLD_AT 32
/* A writer folds every deployment after this many of its batches. */
#define FOLD_EVERY 512

typedef struct deltas {
    cf_buf names, counts;
} deltas;

static int add_one(void *ud, cf_str deployment, int64_t n, cf_err *err)
{
    deltas *d = ud;
    cf_buf_putc(&d->names, d->names.n ? ',' : '{');
    pg_array_elem(&d->names, deployment);
    cf_buf_putc(&d->counts, d->counts.n ? ',' : '{');
    cf_buf_int(&d->counts, n);
    if (cf_buf_failed(&d->names) || cf_buf_failed(&d->counts))
        return cf_fail(err, CF_ENOMEM, "out of memory counting events");
    return 0;
}

int pg_counts_add(pg_store *s, const cf_event *ev, size_t n, const unsigned char *dup,
                  cf_err *err)
{
    deltas d = {CF_BUF_INIT, CF_BUF_INIT};
    int rc = cf_event_counts_group(ev, n, dup, add_one, &d, err);
    if (!rc && d.names.n) {
        /* text-format array literals (a binary parameter would be read
         * as an array's binary form) */
        cf_buf_append(&d.names, "}", 2);
        cf_buf_append(&d.counts, "}", 2);
        pg_params p;
        pg_params_init(&p);
        pg_p_cstr(&p, d.names.p);
        pg_p_cstr(&p, d.counts.p);
        rc = cf_buf_failed(&d.names) || cf_buf_failed(&d.counts)
                 ? cf_fail(err, CF_ENOMEM, "out of memory counting events")
                 : pg_run(s,
                          "INSERT INTO deployment_event_counts (deployment_id, n)"
                          " SELECT * FROM unnest($1::text[], $2::bigint[])",
                          &p, "counting events", err);
    }
    cf_buf_free(&d.names);
    cf_buf_free(&d.counts);
    return rc;
}

/* One fold (deployment NULL: every deployment's) in one statement. */
static int fold(pg_store *s, cf_str deployment, cf_err *err)
{
    pg_params p;
    pg_params_init(&p);
    pg_p_str(&p, deployment);
    return pg_run(s,
                  "WITH lk AS (SELECT pg_try_advisory_xact_lock(7280321012) AS ok),"
                  " d AS (DELETE FROM deployment_event_counts"
                  " WHERE (SELECT ok FROM lk) AND ($1::text IS NULL OR deployment_id = $1::text)"
                  " RETURNING deployment_id, n)"
                  " INSERT INTO deployment_event_counts (deployment_id, n)"
                  " SELECT deployment_id, sum(n)::bigint FROM d GROUP BY deployment_id"
                  " HAVING sum(n) <> 0",
                  &p, "folding event counts", err);
}

void pg_counts_after_batch(pg_store *s)
{
    if (++s->count_batches % FOLD_EVERY != 0)
        return;
    /* Best effort: the batch is committed whatever happens here, and a
     * fold that fails leaves the rows (and the sum) as they were. */
    cf_err ignored = {0};
    fold(s, (cf_str){NULL, 0}, &ignored);
}

typedef struct read_arg {
    cf_str deployment;
    int64_t n;
} read_arg;

static int read_op(pg_store *s, void *arg, int attempt, cf_err *err)
{
    (void)attempt;
    read_arg *a = arg;
    pg_params p;
    pg_params_init(&p);
    pg_p_str(&p, a->deployment);
    PGresult *r = pg_exec(s,
                          "SELECT coalesce(sum(n), 0)::bigint, count(*)"
                          " FROM deployment_event_counts WHERE deployment_id = $1::text",
                          &p, "reading an event count", err);
    if (!r)
        return -1;
    a->n = pg_col_int(r, 0, 0);
    int64_t rows = pg_col_int(r, 0, 1);
    PQclear(r);
    /* inside a caller's transaction the fold waits for a later count */
    if (rows > FOLD_AT && PQtransactionStatus(s->conn) == PQTRANS_IDLE)
        return fold(s, a->deployment, err);
    return 0;
}

int pg_counts_read(pg_store *s, cf_str deployment, int64_t *out, cf_err *err)
{
    read_arg a = {deployment, 0};
    *out = 0;
    if (pg_retry(s, read_op, &a, err))
        return -1;
    *out = a.n;
    return 0;
}
