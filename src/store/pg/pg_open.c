/*
 * PostgreSQL backend (libpq): the URL, the connection and its recovery,
 * statement plumbing, migrations and settings. Writes are in
 * pg_write.c, reads in pg_read.c and pg_scan.c (paged by pg_pager.c),
 * workflow runs in pg_runs.c.
 *
 * Every value is a parameter (PQexecParams), never SQL text. A lost
 * connection (libpq reports it bad, or SQLSTATE class 08 / 57P0x) is
 * re-established with backoff (50 ms doubling to 2 s) for up to 60 s, and
 * the operation in flight runs again; operations are written so that a
 * retry after a commit whose reply was lost changes nothing twice.
 * Messages name the server as host:port and never carry the password.
 */
#include "pg_int.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crucible/core/cf_buf.h"
#include "crucible/core/cf_numtext.h"

#define RECONNECT_MS 60000

/* ---- parameters ------------------------------------------------------------ */

void pg_params_init(pg_params *p) { memset(p, 0, sizeof *p); }

static int slot(pg_params *p)
{
    if (p->n == PG_MAX_PARAMS) {
        p->overflow = 1;
        return -1;
    }
    return p->n++;
}

void pg_p_str(pg_params *p, cf_str v)
{
    int i = slot(p);
    if (i < 0)
        return;
    /* binary text: the bytes themselves, so no terminator is needed */
    p->v[i] = v.p ? (v.n ? v.p : "") : NULL;
    p->len[i] = (int)v.n;
    p->fmt[i] = 1;
}

void pg_p_int(pg_params *p, int64_t v)
{
    int i = slot(p);
    if (i < 0)
        return;
    if (v == CF_NULL_INT) {
        p->v[i] = NULL;
        return;
    }
    snprintf(p->num[i], sizeof p->num[i], "%lld", (long long)v);
    p->v[i] = p->num[i];
}

void pg_p_double(pg_params *p, double v)
{
    int i = slot(p);
    if (i < 0)
        return;
    if (isnan(v)) {
        p->v[i] = NULL;
        return;
    }
    if (isinf(v))
        snprintf(p->num[i], sizeof p->num[i], "%s", v > 0 ? "Infinity" : "-Infinity");
    else
        cf_format_double(v, p->num[i]);
    p->v[i] = p->num[i];
}

void pg_p_time(pg_params *p, int64_t us)
{
    int i = slot(p);
    if (i < 0)
        return;
    if (us == CF_NULL_INT) {
        p->v[i] = NULL;
        return;
    }
    cf_format_time(us, p->num[i], sizeof p->num[i]);
    p->v[i] = p->num[i];
}

void pg_p_cstr(pg_params *p, const char *v)
{
    int i = slot(p);
    if (i >= 0)
        p->v[i] = v;
}

void pg_p_bool(pg_params *p, int v)
{
    int i = slot(p);
    if (i < 0)
        return;
    p->v[i] = v ? "t" : "f";
}

/* ---- messages ----------------------------------------------------------------- */

void pg_scrub(const pg_store *s, char *msg, size_t cap)
{
    for (size_t i = 0; i < s->n_secrets; i++)
        cf_store_scrub(msg, cap, s->secrets[i]);
}

/* The connection-level SQLSTATE classes that mean "try again later". */
static int lost_state(const char *state)
{
    if (!state)
        return 0;
    return strncmp(state, "08", 2) == 0 || strcmp(state, "57P01") == 0
           || strcmp(state, "57P02") == 0 || strcmp(state, "57P03") == 0;
}

static int code_of(const char *state)
{
    if (!state)
        return CF_EDB;
    if (strncmp(state, "22", 2) == 0 || strncmp(state, "23", 2) == 0)
        return CF_EINVAL;
    return CF_EDB;
}

int pg_fail(pg_store *s, PGresult *res, const char *what, cf_err *err)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    char text[400];
    snprintf(text, sizeof text, "%s", primary ? primary : PQerrorMessage(s->conn));
    size_t n = strlen(text);
    while (n && (text[n - 1] == '\n' || text[n - 1] == ' '))
        text[--n] = '\0';
    snprintf(s->state, sizeof s->state, "%s", state ? state : "");
    /* No SQLSTATE: the error is libpq's own, the connection failing (a
     * crashed server is not always CONNECTION_BAD yet when the command
     * fails). Every error the server reports has one. */
    s->lost = PQstatus(s->conn) != CONNECTION_OK || lost_state(state) || !state || !*state;
    if (s->lost)
        cf_fail(err, CF_EDB,
                "%s: the connection to PostgreSQL at %s was lost (%s); check that the server "
                "is running and reachable",
                what, s->server, text);
    else
        cf_fail(err, code_of(state), "%s: %s (PostgreSQL at %s%s%s)", what, text, s->server,
                state ? ", SQLSTATE " : "", state ? state : "");
    if (err)
        pg_scrub(s, err->msg, sizeof err->msg);
    return -1;
}

/* ---- statements ----------------------------------------------------------------- */

PGresult *pg_exec(pg_store *s, const char *sql, const pg_params *p, const char *what,
                  cf_err *err)
{
    if (p && p->overflow) {
        cf_fail(err, CF_EINVAL, "%s: too many parameters", what);
        return NULL;
    }
    pg_settle(s);
    /* Without parameters the simple protocol: several statements at once. */
    PGresult *r = p ? PQexecParams(s->conn, sql, p->n, NULL, p->v, p->len, p->fmt, 0)
                    : PQexec(s->conn, sql);
    ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
        return r;
    pg_fail(s, r, what, err);
    PQclear(r);
    return NULL;
}

int pg_run(pg_store *s, const char *sql, const pg_params *p, const char *what, cf_err *err)
{
    PGresult *r = pg_exec(s, sql, p, what, err);
    if (!r)
        return -1;
    PQclear(r);
    return 0;
}

void pg_rollback(pg_store *s)
{
    if (s->conn)
        pg_settle(s);
    if (s->conn && PQstatus(s->conn) == CONNECTION_OK
        && PQtransactionStatus(s->conn) != PQTRANS_IDLE)
        PQclear(PQexec(s->conn, "ROLLBACK"));
}

cf_str pg_col_str(const PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col))
        return CF_NULL_STR;
    return (cf_str){PQgetvalue(r, row, col), (size_t)PQgetlength(r, row, col)};
}

int64_t pg_col_int(const PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col))
        return CF_NULL_INT;
    const char *v = PQgetvalue(r, row, col);
    int64_t i;
    if (cf_text_i64(v, (size_t)PQgetlength(r, row, col), &i) == 0)
        return i;
    return strtoll(v, NULL, 10);
}

double pg_col_double(const PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col))
        return NAN;
    const char *v = PQgetvalue(r, row, col);
    double d;
    if (cf_text_f64(v, (size_t)PQgetlength(r, row, col), &d) == 0)
        return d;
    if (strcmp(v, "Infinity") == 0)
        return INFINITY;
    if (strcmp(v, "-Infinity") == 0)
        return -INFINITY;
    return strtod(v, NULL);
}

int pg_col_bool(const PGresult *r, int row, int col)
{
    return !PQgetisnull(r, row, col) && PQgetvalue(r, row, col)[0] == 't';
}

int pg_check_text(cf_str v, const char *what, size_t i, const char *field, cf_err *err)
{
    if (!v.p)
        return 0;
    if (memchr(v.p, '\0', v.n))
        return cf_fail(err, CF_EINVAL,
                       "%s[%zu].%s: contains a NUL character (U+0000), which PostgreSQL text "
                       "cannot store",
                       what, i, field);
    if (v.n > 0x3fffffff)
        return cf_fail(err, CF_EINVAL, "%s[%zu].%s: %zu bytes is over PostgreSQL's 1 GB limit",
                       what, i, field, v.n);
    size_t bad = cf_utf8_check(v.p, v.n);
    if (bad != v.n)
        return cf_fail(err, CF_EINVAL, "%s[%zu].%s: not valid UTF-8 (byte %zu)", what, i, field,
                       bad);
    return 0;
}

/* ---- connecting --------------------------------------------------------------------- */

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static void quiet_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

static int connect_now(pg_store *s, cf_err *err)
{
    if (s->conn) {
        pg_settle(s);
        PQfinish(s->conn);
    }
    s->batch_table = 0;
    /* Defaults first: the URL's own parameters override them. */
    const char *keys[] = {"connect_timeout", "application_name", "dbname", NULL};
    const char *vals[] = {"10", "crucible-feedback", s->url, NULL};
    s->conn = PQconnectdbParams(keys, vals, 1);
    if (!s->conn)
        return cf_fail(err, CF_ENOMEM, "out of memory connecting to PostgreSQL at %s", s->server);
    if (PQstatus(s->conn) != CONNECTION_OK) {
        char text[400];
        snprintf(text, sizeof text, "%s", PQerrorMessage(s->conn));
        for (char *c = text; *c; c++)
            if (*c == '\n' || *c == '\t')
                *c = ' ';
        cf_fail(err, CF_EDB,
                "cannot connect to PostgreSQL at %s (%s): %s; check that the server is running "
                "and the URL's host, port, user, password and database",
                s->server, s->redacted, text);
        if (err)
            pg_scrub(s, err->msg, sizeof err->msg);
        s->lost = 1;
        return -1;
    }
    /* Server notices (a shutdown's warning, say) are not printed: failures
     * reach the caller as errors. */
    PQsetNoticeProcessor(s->conn, quiet_notice, NULL);
    PGresult *r = PQexec(s->conn, "SET TIME ZONE 'UTC'; SET client_min_messages = warning;"
                          " SET crucible.counts_kept = 'on'" /* pg_counts.c */);
    int ok = r && PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    if (!ok)
        return pg_fail(s, NULL, "setting up the PostgreSQL session", err);
    return 0;
}

int pg_retry(pg_store *s, pg_op op, void *arg, cf_err *err)
{
    int64_t deadline = mono_ms() + s->reconnect_ms, delay = 50;
    for (int attempt = 0;; attempt++) {
        s->lost = 0;
        int rc;
        if (!s->conn || PQstatus(s->conn) != CONNECTION_OK)
            rc = connect_now(s, err);
        else
            rc = 0;
        if (rc == 0) {
            rc = op(s, arg, attempt, err);
            if (rc >= 0 || !s->lost)
                return rc;
        }
        pg_rollback(s);
        if (mono_ms() + delay > deadline) {
            if (err) {
                size_t n = strlen(err->msg);
                snprintf(err->msg + n, sizeof err->msg - n, " (gave up after %lld s of retries)",
                         (long long)(s->reconnect_ms / 1000));
            }
            return -1;
        }
        sleep_ms(delay);
        delay = delay * 2 > 2000 ? 2000 : delay * 2;
    }
}

/* ---- URL ---------------------------------------------------------------------------------- */

/* The passwords to scrub: the URL's, then $PGPASSWORD (libpq's default). */
static int collect_secrets(pg_store *s, const char *url, cf_err *err)
{
    if (cf_store_url_secrets(url, s->secrets, PG_MAX_SECRETS - 1, &s->n_secrets))
        return cf_fail(err, CF_ENOMEM, "out of memory opening PostgreSQL");
    const char *env = getenv("PGPASSWORD");
    if (env && *env && !(s->secrets[s->n_secrets++] = strdup(env)))
        return cf_fail(err, CF_ENOMEM, "out of memory opening PostgreSQL");
    return 0;
}

/* libpq ends the userinfo at its first '@' and the host list at the last
 * one, so an unencoded '@' in the password would reach the server's
 * messages as part of a host name. */
static int check_userinfo(const pg_store *s, const char *url, cf_err *err)
{
    const char *p = strstr(url, "://");
    if (!p)
        return 0;
    p += 3;
    size_t ats = 0, stop = strcspn(p, "/?#");
    for (size_t i = 0; i < stop; i++)
        ats += p[i] == '@';
    if (ats > 1)
        return cf_fail(err, CF_EINVAL,
                       "invalid PostgreSQL URL '%s': the user or password holds an '@'; write "
                       "it as %%40",
                       s->redacted);
    return 0;
}

static int parse_url(pg_store *s, const char *url, cf_err *err)
{
    if (collect_secrets(s, url, err))
        return -1;
    /* each password of one byte or more becomes three */
    size_t cap = 3 * strlen(url) + 8;
    if (!(s->redacted = malloc(cap)))
        return cf_fail(err, CF_ENOMEM, "out of memory opening PostgreSQL");
    cf_store_redact_url(url, s->redacted, cap);
    if (check_userinfo(s, url, err))
        return -1;
    char *perr = NULL;
    PQconninfoOption *opts = PQconninfoParse(url, &perr);
    if (!opts) {
        char text[300];
        snprintf(text, sizeof text, "%s", perr ? perr : "cannot be parsed");
        PQfreemem(perr);
        for (char *c = text; *c; c++)
            if (*c == '\n' || *c == '\t')
                *c = ' ';
        cf_fail(err, CF_EINVAL,
                "invalid PostgreSQL URL '%s': %s; expected "
                "postgres://user:password@host:port/database",
                s->redacted, text);
        if (err)
            pg_scrub(s, err->msg, sizeof err->msg);
        return -1;
    }
    const char *host = NULL, *port = NULL;
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (strcmp(o->keyword, "host") == 0 && o->val && *o->val)
            host = o->val;
        else if (strcmp(o->keyword, "hostaddr") == 0 && o->val && *o->val && !host)
            host = o->val;
        else if (strcmp(o->keyword, "port") == 0 && o->val && *o->val)
            port = o->val;
    }
    snprintf(s->server, sizeof s->server, "%s:%s", host ? host : "localhost",
             port ? port : "5432");
    PQconninfoFree(opts);
    return 0;
}

/* ---- migrations ------------------------------------------------------------------------------ */

typedef struct pg_migration {
    int version;
    const char *name;
    const char *sql;
} pg_migration;

/* The same versions and logical schema as SQLite's (sqlite_open.c):
 * ids are text (callers may give any id; generated ones are UUIDv7),
 * times timestamptz (microseconds, exact), JSON columns jsonb. seq keeps
 * insertion order for ties and is the last key of every time index, so a
 * cursor pages through (inserted_at, seq) with index range scans. */
static const pg_migration migrations[] = {
    {1, "initial schema",
     "CREATE TABLE inference_events ("
     "  seq bigint GENERATED BY DEFAULT AS IDENTITY,"
     "  id text PRIMARY KEY,"
     "  deployment_id text NOT NULL,"
     "  model_version_id text,"
     "  user_id_hash text,"
     "  prompt text NOT NULL,"
     "  response text NOT NULL,"
     "  latency_ms bigint,"
     "  token_count bigint,"
     "  quality_score double precision,"
     "  metadata jsonb NOT NULL DEFAULT '{}',"
     "  inserted_at timestamptz NOT NULL);"
     "CREATE INDEX inference_events_deployment_time"
     "  ON inference_events (deployment_id, inserted_at, seq);"
     "CREATE INDEX inference_events_time ON inference_events (inserted_at, seq);"
     "CREATE TABLE user_signals ("
     "  seq bigint GENERATED BY DEFAULT AS IDENTITY,"
     "  id text PRIMARY KEY,"
     "  inference_event_id text NOT NULL,"
     "  deployment_id text NOT NULL,"
     "  signal_type text NOT NULL,"
     "  edited_response text,"
     "  metadata jsonb NOT NULL DEFAULT '{}',"
     "  inserted_at timestamptz NOT NULL);"
     "CREATE INDEX user_signals_event ON user_signals (inference_event_id);"
     "CREATE INDEX user_signals_deployment_time ON user_signals (deployment_id, inserted_at, seq);"
     "CREATE TABLE curated_examples ("
     "  seq bigint GENERATED BY DEFAULT AS IDENTITY,"
     "  id text PRIMARY KEY,"
     "  inference_event_id text NOT NULL,"
     "  deployment_id text NOT NULL,"
     "  curation_source text NOT NULL,"
     "  curation_score double precision,"
     "  prompt text,"
     "  response text,"
     "  exported boolean NOT NULL DEFAULT false,"
     "  export_batch_id text,"
     "  inserted_at timestamptz NOT NULL,"
     "  updated_at timestamptz NOT NULL);"
     "CREATE INDEX curated_examples_deployment"
     "  ON curated_examples (deployment_id, exported, inserted_at);"
     "CREATE INDEX curated_examples_event ON curated_examples (inference_event_id);"
     "CREATE TABLE drift_results ("
     "  seq bigint GENERATED BY DEFAULT AS IDENTITY,"
     "  id text PRIMARY KEY,"
     "  deployment_id text NOT NULL,"
     "  drift_type text NOT NULL,"
     "  score double precision NOT NULL,"
     "  drifted boolean NOT NULL,"
     "  details jsonb NOT NULL DEFAULT '{}',"
     "  inserted_at timestamptz NOT NULL);"
     "CREATE INDEX drift_results_deployment_time"
     "  ON drift_results (deployment_id, inserted_at, seq);"
     "CREATE TABLE trigger_events ("
     "  seq bigint GENERATED BY DEFAULT AS IDENTITY,"
     "  id text PRIMARY KEY,"
     "  deployment_id text NOT NULL,"
     "  trigger_type text NOT NULL,"
     "  details jsonb NOT NULL DEFAULT '{}',"
     "  inserted_at timestamptz NOT NULL);"
     "CREATE INDEX trigger_events_deployment_time"
     "  ON trigger_events (deployment_id, trigger_type, inserted_at);"
     "CREATE INDEX trigger_events_deployment_seq"
     "  ON trigger_events (deployment_id, inserted_at, seq);"
     "CREATE TABLE settings ("
     "  key text PRIMARY KEY,"
     "  value text NOT NULL,"
     "  updated_at timestamptz NOT NULL);"},
    {2, "quality indexes",
     "CREATE INDEX inference_events_unscored"
     "  ON inference_events (deployment_id, inserted_at, seq) WHERE quality_score IS NULL;"
     "CREATE INDEX user_signals_deployment_type ON user_signals (deployment_id, signal_type);"},
    {3, "curated export marks",
     "CREATE TABLE curated_export_marks ("
     "  curated_id text PRIMARY KEY,"
     "  export_batch_id text NOT NULL,"
     "  exported_at timestamptz NOT NULL);"
     "CREATE INDEX curated_examples_deployment_time"
     "  ON curated_examples (deployment_id, inserted_at, seq);"},
    {4, "workflow runs",
     "CREATE TABLE workflow_runs ("
     "  seq bigint GENERATED BY DEFAULT AS IDENTITY,"
     "  id text PRIMARY KEY,"
     "  name text NOT NULL,"
     "  script text,"
     "  status text NOT NULL,"
     "  scheduled_for timestamptz,"
     "  started_at timestamptz NOT NULL,"
     "  finished_at timestamptz,"
     "  lease_until timestamptz,"
     "  error text,"
     "  details jsonb NOT NULL DEFAULT '{}');"
     "CREATE INDEX workflow_runs_name_time ON workflow_runs (name, started_at);"
     "CREATE INDEX workflow_runs_running ON workflow_runs (name) WHERE status = 'running';"},
    /* Export claims: the rows an export in progress holds (one claim a
     * row, by the primary key), so that concurrent exports share them. */
    {5, "curated export claims",
     "CREATE TABLE curated_export_claims ("
     "  curated_id text PRIMARY KEY,"
     "  deployment_id text NOT NULL,"
     "  claim_token text NOT NULL,"
     "  claimed_until timestamptz NOT NULL);"
     "CREATE INDEX curated_export_claims_token ON curated_export_claims (claim_token);"},
    /* Light scans (curation, quality statistics, triggers) read the narrow
     * columns of a deployment's events in time order: an index-only scan
     * of this index serves them without the wide rows. It replaces the
     * (deployment_id, inserted_at, seq) index, its key. */
    {6, "light scan covering index",
     "CREATE INDEX inference_events_light ON inference_events (deployment_id, inserted_at, seq)"
     "  INCLUDE (id, model_version_id, quality_score, latency_ms, token_count);"
     "DROP INDEX inference_events_deployment_time;"},
    {7, "api keys", pg_keys_migration}, /* pg_keys.c */
    /* Typed scores on events that no signal type fits (pg_scores.c). */
    {8, "scores",
     "CREATE TABLE scores ("
     "  seq bigint GENERATED BY DEFAULT AS IDENTITY,"
     "  id text PRIMARY KEY,"
     "  inference_event_id text NOT NULL,"
     "  deployment_id text NOT NULL,"
     "  name text NOT NULL,"
     "  data_type text NOT NULL,"
     "  value double precision,"
     "  string_value text,"
     "  comment text,"
     "  source text NOT NULL,"
     "  inserted_at timestamptz NOT NULL);"
     "CREATE INDEX scores_deployment_name_time ON scores (deployment_id, name, inserted_at);"
     "CREATE INDEX scores_event ON scores (inference_event_id);"},
    /* The data lifecycle: the deletion audit (never a raw user id), and an
     * index that finds one user's events for forget. */
    {9, "data lifecycle",
     "CREATE TABLE deletion_audit ("
     "  seq bigint GENERATED BY DEFAULT AS IDENTITY,"
     "  id text PRIMARY KEY,"
     "  action text NOT NULL,"
     "  subject text,"
     "  deployment_id text,"
     "  status text NOT NULL,"
     "  started_at timestamptz NOT NULL,"
     "  finished_at timestamptz,"
     "  details jsonb NOT NULL DEFAULT '{}');"
     "CREATE INDEX inference_events_user"
     "  ON inference_events (user_id_hash) WHERE user_id_hash IS NOT NULL;"},
    /* Which quality checks ran on an event and which passed (CF_QCHECKS_*
     * bits; NULL: none, as for every older row), carried by the light
     * scans' covering index so the report's pass rates stay index-only. */
    {10, "quality checks",
     "ALTER TABLE inference_events ADD COLUMN quality_checks integer;"
     "DROP INDEX inference_events_light;"
     "CREATE INDEX inference_events_light ON inference_events (deployment_id, inserted_at, seq)"
     "  INCLUDE (id, model_version_id, quality_score, latency_ms, token_count, quality_checks);"},
    /* SQLite's user index by bucket; PostgreSQL keeps its full-hash index,
     * whose random inserts its buffer cache absorbs: nothing to do. */
    {11, "user index by bucket", NULL},
    {12, "deployment event counts", pg_counts_migration}, /* pg_counts.c */
    /* retention of scores on their own age walks them in this order */
    {13, "scores by deployment and time",
     "CREATE INDEX IF NOT EXISTS scores_deployment_time_seq"
     "  ON scores (deployment_id, inserted_at, seq);"},
    /* The deletion audit is never purged: a forget's check for a running
     * record and a listing of the newest go along an index, not through
     * every record. */
    {14, "deletion audit by status and time",
     "CREATE INDEX IF NOT EXISTS deletion_audit_status_time"
     "  ON deletion_audit (status, started_at, seq);"
     "CREATE INDEX IF NOT EXISTS deletion_audit_time ON deletion_audit (started_at, seq);"},
};

#define N_MIGRATIONS (sizeof migrations / sizeof migrations[0])

/* One transaction; an advisory lock serialises nodes migrating at once. */
static int migrate_op(pg_store *s, void *arg, int attempt, cf_err *err)
{
    (void)attempt;
    int *applied = arg;
    *applied = 0;
    if (pg_run(s, "BEGIN", NULL, "starting the migration", err)
        || pg_run(s, "SELECT pg_advisory_xact_lock(7280321001)", NULL, "locking the schema", err)
        || pg_run(s,
                  "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY,"
                  " name text NOT NULL, applied_at timestamptz NOT NULL)",
                  NULL, "creating schema_migrations", err))
        goto fail;
    PGresult *r = pg_exec(s, "SELECT coalesce(max(version), 0) FROM schema_migrations", NULL,
                          "reading schema_migrations", err);
    if (!r)
        goto fail;
    int current = (int)pg_col_int(r, 0, 0);
    PQclear(r);
    if (current > migrations[N_MIGRATIONS - 1].version) {
        cf_store_refuse_newer_schema(current, migrations[N_MIGRATIONS - 1].version, err);
        goto fail;
    }
    for (size_t i = 0; i < N_MIGRATIONS; i++) {
        const pg_migration *m = &migrations[i];
        if (m->version <= current)
            continue;
        char what[128];
        snprintf(what, sizeof what, "migration %d (%s)", m->version, m->name);
        pg_params p;
        pg_params_init(&p);
        pg_p_int(&p, m->version);
        pg_p_str(&p, cf_cstr(m->name));
        if ((m->sql && pg_run(s, m->sql, NULL, what, err))
            || pg_run(s,
                      "INSERT INTO schema_migrations (version, name, applied_at)"
                      " VALUES ($1::int, $2::text, now())",
                      &p, what, err))
            goto fail;
        (*applied)++;
    }
    if (pg_run(s, "COMMIT", NULL, "committing the migration", err))
        goto fail;
    return 0;
fail:
    pg_rollback(s);
    return -1;
}

static int pg_migrate(cf_store *base, int *applied, cf_err *err)
{
    int n = 0;
    if (pg_retry((pg_store *)base, migrate_op, &n, err))
        return -1;
    if (applied)
        *applied = n;
    return 0;
}

static int version_op(pg_store *s, void *arg, int attempt, cf_err *err)
{
    (void)attempt;
    int *v = arg;
    PGresult *r = pg_exec(s, "SELECT to_regclass('schema_migrations') IS NOT NULL", NULL,
                          "reading the schema version", err);
    if (!r)
        return -1;
    int exists = pg_col_bool(r, 0, 0);
    PQclear(r);
    *v = 0;
    if (!exists)
        return 0;
    r = pg_exec(s, "SELECT coalesce(max(version), 0) FROM schema_migrations", NULL,
                "reading the schema version", err);
    if (!r)
        return -1;
    *v = (int)pg_col_int(r, 0, 0);
    PQclear(r);
    return 0;
}

static int pg_schema_version(cf_store *base, int *version, cf_err *err)
{
    *version = 0;
    return pg_retry((pg_store *)base, version_op, version, err);
}

/* ---- settings ------------------------------------------------------------------------------------ */

typedef struct kv_arg {
    const char *key;
    cf_str value;
    int mode; /* 0 get, 1 set, 2 get or set */
    char **out;
} kv_arg;

static int kv_op(pg_store *s, void *arg, int attempt, cf_err *err)
{
    (void)attempt;
    kv_arg *a = arg;
    pg_params p;
    pg_params_init(&p);
    pg_p_str(&p, cf_cstr(a->key));
    if (a->mode) {
        pg_p_str(&p, a->value);
        if (pg_run(s,
                   a->mode == 1
                       ? "INSERT INTO settings (key, value, updated_at) VALUES ($1, $2, now())"
                         " ON CONFLICT (key) DO UPDATE SET value = excluded.value,"
                         " updated_at = excluded.updated_at"
                       : "INSERT INTO settings (key, value, updated_at) VALUES ($1, $2, now())"
                         " ON CONFLICT (key) DO NOTHING",
                   &p, "writing a setting", err))
            return -1;
        if (a->mode == 1)
            return 0;
        p.n = 1;
    }
    PGresult *r = pg_exec(s, "SELECT value FROM settings WHERE key = $1", &p,
                          "reading a setting", err);
    if (!r)
        return -1;
    *a->out = NULL;
    if (PQntuples(r) > 0) {
        cf_str v = pg_col_str(r, 0, 0);
        *a->out = strndup(v.p ? v.p : "", v.n);
        if (!*a->out) {
            PQclear(r);
            return cf_fail(err, CF_ENOMEM, "out of memory reading setting '%s'", a->key);
        }
    }
    PQclear(r);
    return 0;
}

static int kv_check(const char *key, cf_str value, int need_value, cf_err *err)
{
    if (need_value && !value.p)
        return cf_fail(err, CF_EINVAL, "setting '%s': value is required", key);
    if (pg_check_text(cf_cstr(key), "settings", 0, "key", err)
        || pg_check_text(value, "settings", 0, "value", err))
        return -1;
    return 0;
}

static int pg_kv_get(cf_store *base, const char *key, char **out, cf_err *err)
{
    *out = NULL;
    kv_arg a = {key, CF_NULL_STR, 0, out};
    return kv_check(key, CF_NULL_STR, 0, err) ? -1 : pg_retry((pg_store *)base, kv_op, &a, err);
}

static int pg_kv_set(cf_store *base, const char *key, cf_str value, cf_err *err)
{
    kv_arg a = {key, value, 1, NULL};
    return kv_check(key, value, 1, err) ? -1 : pg_retry((pg_store *)base, kv_op, &a, err);
}

static int pg_kv_get_or_set(cf_store *base, const char *key, cf_str value, char **out,
                            cf_err *err)
{
    *out = NULL;
    kv_arg a = {key, value, 2, out};
    return kv_check(key, value, 1, err) ? -1 : pg_retry((pg_store *)base, kv_op, &a, err);
}

/* ---- lifetime --------------------------------------------------------------------------------------- */

static void pg_close(cf_store *base)
{
    pg_store *s = (pg_store *)base;
    if (s->conn) {
        pg_settle(s);
        PQfinish(s->conn);
    }
    for (size_t i = 0; i < s->n_secrets; i++) {
        memset(s->secrets[i], 0, strlen(s->secrets[i]));
        free(s->secrets[i]);
    }
    if (s->url)
        memset(s->url, 0, strlen(s->url));
    free(s->url);
    free(s->redacted);
    free(s);
}

static const cf_store_vt pg_vt = {
    .name = "postgres",
    .migrate = pg_migrate,
    .schema_version = pg_schema_version,
    .insert_events = pg_insert_events,
    .insert_signal = pg_insert_signal,
    .update_events = pg_update_events,
    .insert_curated = pg_insert_curated,
    .mark_curated_exported = pg_mark_curated_exported,
    .insert_drift = pg_insert_drift,
    .insert_trigger = pg_insert_trigger,
    .open_cursor = pg_open_cursor,
    .count = pg_count,
    .kv_get = pg_kv_get,
    .kv_set = pg_kv_set,
    .kv_get_or_set = pg_kv_get_or_set,
    .close = pg_close,
    .count_by_type = pg_count_by_type,
    .open_unscored_cursor = pg_open_unscored_cursor,
    .open_columns = pg_open_columns,
    .mark_curated_exported_stream = pg_mark_curated_exported_stream,
    .open_light_events = pg_open_light_events,
    .open_events_page = pg_open_events_page,
    .events_page = PG_IDS_PAGE,
    .insert_curated_new = pg_insert_curated_new,
    .last_export_at = pg_last_export_at,
    .list_deployments = pg_list_deployments,
    .events_by_response_id = pg_events_by_response_id,
    .insert_run = pg_insert_run,
    .update_run = pg_update_run,
    .list_runs = pg_list_runs,
    .insert_score = pg_insert_score,
    .list_scores = pg_list_scores,
    .claim_curated = pg_claim_curated,
    .release_curated_claim = pg_release_curated_claim,
    .insert_key = pg_insert_key,
    .list_keys = pg_list_keys,
    .revoke_key = pg_revoke_key,
    .touch_key = pg_touch_key,
    .purge = pg_purge,
    .purge_guards = 1,
    .list_user_exports = pg_list_user_exports,
    .count_orphans = pg_count_orphans,
    .put_deletion = pg_put_deletion,
    .list_deletions = pg_list_deletions,
};

int cf_store_pg_open(const char *url, const cf_store_opts *opts, cf_store **out, cf_err *err)
{
    (void)opts;
    *out = NULL;
    pg_store *s = calloc(1, sizeof *s);
    if (!s)
        return cf_fail(err, CF_ENOMEM, "out of memory opening PostgreSQL");
    s->base.vt = &pg_vt;
    s->reconnect_ms = RECONNECT_MS;
    s->url = strdup(url);
    if (!s->url) {
        pg_close(&s->base);
        return cf_fail(err, CF_ENOMEM, "out of memory opening PostgreSQL");
    }
    if (parse_url(s, url, err) || connect_now(s, err)) {
        pg_close(&s->base);
        return -1;
    }
    *out = &s->base;
    return 0;
}
