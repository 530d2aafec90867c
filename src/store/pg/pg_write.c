/*
 * PostgreSQL backend, writes. Event batches go through COPY (text format,
 * escaped here), in one transaction: straight into inference_events on a
 * first attempt; when an id is already there, or on a retry, into a
 * per-connection staging table and then one
 * INSERT ... SELECT ... ON CONFLICT (id) DO NOTHING. Refusing duplicates
 * (no dup flags asked for): a batch retried after its commit's reply was
 * lost finds its rows already there and adds nothing, while an id taken by
 * a different event is still refused (CF_EINVAL, nothing written).
 * Skipping them (dup flags): the insert keeps each id's first row of the
 * batch and reports which rows it wrote; the others are duplicates (after
 * a lost commit reply, the rows that commit wrote count as duplicates on
 * the retry: stored once either way). Everything else is parameterised
 * statements; single inserts add ON CONFLICT (id) DO NOTHING when they run
 * again after a lost connection.
 */
#include "pg_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "crucible/core/cf_buf.h"

void pg_array_elem(cf_buf *b, cf_str s)
{
    cf_buf_putc(b, '"');
    size_t from = 0;
    for (size_t i = 0; i < s.n; i++) {
        if (s.p[i] == '"' || s.p[i] == '\\') {
            cf_buf_append(b, s.p + from, i - from);
            cf_buf_putc(b, '\\');
            from = i;
        }
    }
    cf_buf_append(b, s.p + from, s.n - from);
    cf_buf_putc(b, '"');
}

static int require(cf_str v, const char *what, size_t i, const char *field, cf_err *err)
{
    if (!v.p)
        return cf_fail(err, CF_EINVAL, "%s.%s[%zu]: missing required field", what, field, i);
    return pg_check_text(v, what, i, field, err);
}

/* ---- event batches (COPY) ------------------------------------------------------- */

/* One COPY text field: backslash, newline, carriage return and tab escaped;
 * absent as \N. */
static void copy_str(cf_buf *b, cf_str v)
{
    if (!v.p) {
        cf_buf_append(b, "\\N", 2);
        return;
    }
    size_t from = 0;
    for (size_t i = 0; i < v.n; i++) {
        char c = v.p[i], e;
        switch (c) {
        case '\\': e = '\\'; break;
        case '\n': e = 'n'; break;
        case '\r': e = 'r'; break;
        case '\t': e = 't'; break;
        default: continue;
        }
        cf_buf_append(b, v.p + from, i - from);
        cf_buf_putc(b, '\\');
        cf_buf_putc(b, e);
        from = i + 1;
    }
    cf_buf_append(b, v.p + from, v.n - from);
}

static void copy_int(cf_buf *b, int64_t v)
{
    if (v == CF_NULL_INT)
        cf_buf_append(b, "\\N", 2);
    else
        cf_buf_int(b, v);
}

static void copy_double(cf_buf *b, double v)
{
    char tmp[32];
    if (isnan(v))
        cf_buf_append(b, "\\N", 2);
    else if (isinf(v))
        cf_buf_str(b, v > 0 ? "Infinity" : "-Infinity");
    else
        cf_buf_append(b, tmp, cf_format_double(v, tmp));
}

typedef struct events_arg {
    const cf_event *ev;
    size_t n;
    int64_t now;
    unsigned char *dup;  /* NULL: refuse duplicates */
    size_t written;
} events_arg;

static const char staging_sql[] =
    "CREATE TEMP TABLE IF NOT EXISTS cf_event_batch (ord integer, id text, deployment_id text,"
    " model_version_id text, user_id_hash text, prompt text, response text, latency_ms bigint,"
    " token_count bigint, quality_score double precision, metadata text,"
    " inserted_at timestamptz, quality_checks integer) ON COMMIT DELETE ROWS";

/* staged: into the staging table (with each row's position), else
 * straight into inference_events. */
static int copy_rows(pg_store *s, const events_arg *a, int staged, cf_err *err)
{
    pg_settle(s);
    PGresult *r = PQexec(s->conn, staged ? "COPY cf_event_batch FROM STDIN"
                                         : "COPY inference_events (id, deployment_id,"
                                           " model_version_id, user_id_hash, prompt, response,"
                                           " latency_ms, token_count, quality_score, metadata,"
                                           " inserted_at, quality_checks) FROM STDIN");
    if (!r || PQresultStatus(r) != PGRES_COPY_IN) {
        pg_fail(s, r, "writing events (COPY)", err);
        PQclear(r);
        return -1;
    }
    PQclear(r);
    cf_buf b = CF_BUF_INIT;
    char tbuf[40];
    int ok = 1;
    for (size_t i = 0; i < a->n && ok; i++) {
        const cf_event *e = &a->ev[i];
        if (staged) {
            cf_buf_int(&b, (int64_t)i);
            cf_buf_putc(&b, '\t');
        }
        copy_str(&b, a->ev[i].id);
        cf_buf_putc(&b, '\t');
        copy_str(&b, e->deployment_id);
        cf_buf_putc(&b, '\t');
        copy_str(&b, e->model_version_id);
        cf_buf_putc(&b, '\t');
        copy_str(&b, e->user_id_hash);
        cf_buf_putc(&b, '\t');
        copy_str(&b, e->prompt);
        cf_buf_putc(&b, '\t');
        copy_str(&b, e->response);
        cf_buf_putc(&b, '\t');
        copy_int(&b, e->latency_ms);
        cf_buf_putc(&b, '\t');
        copy_int(&b, e->token_count);
        cf_buf_putc(&b, '\t');
        copy_double(&b, e->quality_score);
        cf_buf_putc(&b, '\t');
        copy_str(&b, e->metadata.p ? e->metadata : cf_cstr("{}"));
        cf_buf_putc(&b, '\t');
        cf_buf_str(&b, cf_format_time(e->inserted_at ? e->inserted_at : a->now, tbuf,
                                      sizeof tbuf));
        cf_buf_putc(&b, '\t');
        copy_int(&b, e->quality_checks ? (int64_t)e->quality_checks : CF_NULL_INT);
        cf_buf_putc(&b, '\n');
        if (cf_buf_failed(&b)) {
            ok = 0;
            cf_fail(err, CF_ENOMEM, "out of memory writing %zu events", a->n);
            break;
        }
        if (b.n >= (1u << 20) || i + 1 == a->n) {
            if (PQputCopyData(s->conn, b.p, (int)b.n) != 1) {
                ok = 0;
                pg_fail(s, NULL, "writing events (COPY)", err);
            }
            b.n = 0;
        }
    }
    cf_buf_free(&b);
    if (PQputCopyEnd(s->conn, ok ? NULL : "aborted by the client") != 1 && ok) {
        pg_fail(s, NULL, "writing events (COPY)", err);
        ok = 0;
    }
    while ((r = PQgetResult(s->conn)) != NULL) {
        if (ok && PQresultStatus(r) != PGRES_COMMAND_OK) {
            pg_fail(s, r, "writing events (COPY)", err);
            ok = 0;
        }
        PQclear(r);
    }
    if (!ok && PQstatus(s->conn) != CONNECTION_OK)
        s->lost = 1;
    return ok ? 0 : -1;
}

/* The staged rows into inference_events, skipping ids already stored:
 * each id's first row of the batch goes in, and the statement returns the
 * positions (ord) it wrote; every other row is flagged in a->dup. */
static int insert_staged_skip(pg_store *s, events_arg *a, cf_err *err)
{
    PGresult *r = pg_exec(
        s,
        "WITH ins AS (INSERT INTO inference_events (id, deployment_id, model_version_id,"
        " user_id_hash, prompt, response, latency_ms, token_count, quality_score, metadata,"
        " inserted_at, quality_checks)"
        " SELECT id, deployment_id, model_version_id, user_id_hash, prompt, response,"
        " latency_ms, token_count, quality_score, metadata::jsonb, inserted_at, quality_checks"
        " FROM (SELECT DISTINCT ON (id) * FROM cf_event_batch ORDER BY id, ord) b ORDER BY ord"
        " ON CONFLICT (id) DO NOTHING RETURNING id, deployment_id),"
        " c AS (INSERT INTO deployment_event_counts (deployment_id, n)" /* pg_counts.c */
        " SELECT deployment_id, count(*) FROM ins GROUP BY 1)"
        " SELECT min(b.ord) FROM cf_event_batch b JOIN ins ON ins.id = b.id GROUP BY b.id",
        NULL, "writing events", err);
    if (!r)
        return -1;
    memset(a->dup, 1, a->n);
    int rows = PQntuples(r);
    for (int k = 0; k < rows; k++) {
        int64_t ord = pg_col_int(r, k, 0);
        if (ord >= 0 && (size_t)ord < a->n)
            a->dup[ord] = 0;
    }
    a->written = (size_t)rows;
    PQclear(r);
    return 0;
}

/* The staged rows into inference_events, refusing an id stored for
 * another event (the same content is this batch's own, written by a
 * commit whose reply was lost). */
static int insert_staged_refuse(pg_store *s, events_arg *a, cf_err *err)
{
    PGresult *r = pg_exec(
        s,
        "WITH ins AS (INSERT INTO inference_events (id, deployment_id, model_version_id,"
        " user_id_hash, prompt, response, latency_ms, token_count, quality_score, metadata,"
        " inserted_at, quality_checks)"
        " SELECT id, deployment_id, model_version_id, user_id_hash, prompt, response,"
        " latency_ms, token_count, quality_score, metadata::jsonb, inserted_at, quality_checks"
        " FROM cf_event_batch ORDER BY ord ON CONFLICT (id) DO NOTHING RETURNING deployment_id),"
        " c AS (INSERT INTO deployment_event_counts (deployment_id, n)" /* pg_counts.c */
        " SELECT deployment_id, count(*) FROM ins GROUP BY 1)"
        " SELECT count(*) FROM ins",
        NULL, "writing events", err);
    if (!r)
        return -1;
    size_t written = (size_t)pg_col_int(r, 0, 0);
    PQclear(r);
    a->written = a->n;
    if (written < a->n) {
        /* Rows already there are this batch's own (a retry) unless their
         * content differs: then the id belongs to another event. */
        r = pg_exec(s,
                    "SELECT b.ord FROM cf_event_batch b JOIN inference_events e ON e.id = b.id"
                    " WHERE (e.deployment_id, e.prompt, e.response) IS DISTINCT FROM"
                    " (b.deployment_id, b.prompt, b.response) ORDER BY b.ord LIMIT 1",
                    NULL, "checking duplicate event ids", err);
        if (!r)
            return -1;
        if (PQntuples(r) > 0) {
            size_t i = (size_t)pg_col_int(r, 0, 0);
            PQclear(r);
            cf_str id = a->ev[i].id;
            return cf_fail(err, CF_EINVAL, "events[%zu]: id '%.*s' already exists", i,
                           (int)(id.n > 100 ? 100 : id.n), id.p);
        }
        PQclear(r);
    }
    return 0;
}

static int events_op(pg_store *s, void *arg, int attempt, cf_err *err)
{
    events_arg *a = arg;
    if (attempt == 0) {
        /* The common case, a first attempt with new ids: COPY straight into
         * the table. An id already there sends the batch the staged way. */
        if (pg_run(s, "BEGIN", NULL, "writing events", err) == 0 && copy_rows(s, a, 0, err) == 0
            && pg_counts_add(s, a->ev, a->n, NULL, err) == 0
            && pg_run(s, "COMMIT", NULL, "committing events", err) == 0) {
            a->written = a->n;
            return 0;
        }
        pg_rollback(s);
        if (s->lost || strcmp(s->state, "23505") != 0)
            return -1;
    }
    if (!s->batch_table) {
        if (pg_run(s, staging_sql, NULL, "creating the event staging table", err))
            return -1;
        s->batch_table = 1;
    }
    if (pg_run(s, "BEGIN", NULL, "writing events", err) || copy_rows(s, a, 1, err)
        || (a->dup ? insert_staged_skip(s, a, err) : insert_staged_refuse(s, a, err))
        || pg_run(s, "COMMIT", NULL, "committing events", err)) {
        pg_rollback(s);
        if (a->dup)
            memset(a->dup, 0, a->n);
        return -1;
    }
    return 0;
}

int pg_insert_events(cf_store *base, const cf_event *ev, size_t n, unsigned char *dup,
                     cf_err *err)
{
    static const char *const what = "events";
    for (size_t i = 0; i < n; i++) {
        const cf_event *e = &ev[i];
        if (require(e->deployment_id, what, i, "deployment_id", err)
            || require(e->prompt, what, i, "prompt", err)
            || require(e->response, what, i, "response", err)
            || pg_check_text(e->id, what, i, "id", err)
            || pg_check_text(e->model_version_id, what, i, "model_version_id", err)
            || pg_check_text(e->user_id_hash, what, i, "user_id_hash", err)
            || pg_check_text(e->metadata, what, i, "metadata", err))
            return -1;
    }
    if (n == 0)
        return 0;
    events_arg a = {ev, n, cf_now_us(), dup, 0};
    if (pg_retry((pg_store *)base, events_op, &a, err))
        return -1;
    pg_counts_after_batch((pg_store *)base);
    return (int)a.written;
}

/* ---- single rows ---------------------------------------------------------------- */

typedef struct one_arg {
    const char *sql;         /* first attempt */
    const char *retry_sql;   /* after a lost connection: ON CONFLICT (id) DO NOTHING */
    const char *exists_sql;  /* retry that changed nothing: is the row there? ($1 = id) */
    pg_params p;
    cf_str id;
    const char *what;
    int64_t changed;
} one_arg;

static int one_op(pg_store *s, void *arg, int attempt, cf_err *err)
{
    one_arg *a = arg;
    PGresult *r = pg_exec(s, attempt ? a->retry_sql : a->sql, &a->p, a->what, err);
    if (!r)
        return -1;
    a->changed = strtoll(PQcmdTuples(r), NULL, 10);
    PQclear(r);
    if (a->changed == 0 && attempt && a->exists_sql) {
        pg_params q;
        pg_params_init(&q);
        pg_p_str(&q, a->id);
        r = pg_exec(s, a->exists_sql, &q, a->what, err);
        if (!r)
            return -1;
        a->changed = PQntuples(r);
        PQclear(r);
    }
    return 0;
}

#define SIGNAL_SQL                                                                         \
    "INSERT INTO user_signals (id, inference_event_id, deployment_id, signal_type,"       \
    " edited_response, metadata, inserted_at)"                                            \
    " SELECT $1::text, e.id, e.deployment_id, $2::text, $3::text, $4::text::jsonb,"       \
    " $5::timestamptz FROM inference_events e WHERE e.id = $6::text"

int pg_insert_signal(cf_store *base, const cf_signal *sig, cf_err *err)
{
    if (pg_check_text(sig->id, "signal", 0, "id", err)
        || pg_check_text(sig->inference_event_id, "signal", 0, "inference_event_id", err)
        || pg_check_text(sig->signal_type, "signal", 0, "signal_type", err)
        || pg_check_text(sig->edited_response, "signal", 0, "edited_response", err)
        || pg_check_text(sig->metadata, "signal", 0, "metadata", err))
        return -1;
    one_arg a = {SIGNAL_SQL, SIGNAL_SQL " ON CONFLICT (id) DO NOTHING",
                 "SELECT 1 FROM user_signals WHERE id = $1", {0}, sig->id, "recording a signal",
                 0};
    pg_params_init(&a.p);
    pg_p_str(&a.p, a.id);
    pg_p_str(&a.p, sig->signal_type);
    pg_p_str(&a.p, sig->edited_response);
    pg_p_str(&a.p, sig->metadata.p ? sig->metadata : cf_cstr("{}"));
    pg_p_time(&a.p, sig->inserted_at ? sig->inserted_at : cf_now_us());
    pg_p_str(&a.p, sig->inference_event_id);
    if (pg_retry((pg_store *)base, one_op, &a, err))
        return -1;
    if (a.changed == 0)
        return cf_fail(err, CF_ENOTFOUND, "inference event '%.*s' not found",
                       (int)(sig->inference_event_id.n > 100 ? 100 : sig->inference_event_id.n),
                       sig->inference_event_id.p);
    return 0;
}

#define DRIFT_SQL                                                                          \
    "INSERT INTO drift_results (id, deployment_id, drift_type, score, drifted, details,"  \
    " inserted_at) VALUES ($1::text, $2::text, $3::text, $4::float8, $5::boolean,"        \
    " $6::text::jsonb, $7::timestamptz)"

int pg_insert_drift(cf_store *base, const cf_drift_result *d, cf_err *err)
{
    if (pg_check_text(d->id, "drift", 0, "id", err)
        || pg_check_text(d->deployment_id, "drift", 0, "deployment_id", err)
        || pg_check_text(d->drift_type, "drift", 0, "drift_type", err)
        || pg_check_text(d->details, "drift", 0, "details", err))
        return -1;
    one_arg a = {DRIFT_SQL, DRIFT_SQL " ON CONFLICT (id) DO NOTHING", NULL, {0}, d->id,
                 "recording a drift result", 0};
    pg_params_init(&a.p);
    pg_p_str(&a.p, a.id);
    pg_p_str(&a.p, d->deployment_id);
    pg_p_str(&a.p, d->drift_type);
    pg_p_double(&a.p, isnan(d->score) ? 0.0 : d->score);
    pg_p_bool(&a.p, d->drifted);
    pg_p_str(&a.p, d->details.p ? d->details : cf_cstr("{}"));
    pg_p_time(&a.p, d->inserted_at ? d->inserted_at : cf_now_us());
    return pg_retry((pg_store *)base, one_op, &a, err);
}

#define TRIGGER_SQL                                                                        \
    "INSERT INTO trigger_events (id, deployment_id, trigger_type, details, inserted_at)"  \
    " VALUES ($1::text, $2::text, $3::text, $4::text::jsonb, $5::timestamptz)"

int pg_insert_trigger(cf_store *base, const cf_trigger_event *t, cf_err *err)
{
    if (pg_check_text(t->id, "triggers", 0, "id", err)
        || pg_check_text(t->deployment_id, "triggers", 0, "deployment_id", err)
        || pg_check_text(t->trigger_type, "triggers", 0, "trigger_type", err)
        || pg_check_text(t->details, "triggers", 0, "details", err))
        return -1;
    one_arg a = {TRIGGER_SQL, TRIGGER_SQL " ON CONFLICT (id) DO NOTHING", NULL, {0}, t->id,
                 "recording a trigger event", 0};
    pg_params_init(&a.p);
    pg_p_str(&a.p, a.id);
    pg_p_str(&a.p, t->deployment_id);
    pg_p_str(&a.p, t->trigger_type);
    pg_p_str(&a.p, t->details.p ? t->details : cf_cstr("{}"));
    pg_p_time(&a.p, t->inserted_at ? t->inserted_at : cf_now_us());
    return pg_retry((pg_store *)base, one_op, &a, err);
}

/* ---- updates ---------------------------------------------------------------------- */

typedef struct update_arg {
    const cf_str *ids;
    const cf_event_update *u;
    size_t n;
} update_arg;

static int update_op(pg_store *s, void *arg, int attempt, cf_err *err)
{
    (void)attempt;
    update_arg *a = arg;
    if (pg_run(s, "BEGIN", NULL, "updating inference events", err))
        return -1;
    for (size_t i = 0; i < a->n; i++) {
        const cf_event_update *u = &a->u[i];
        pg_params p;
        pg_params_init(&p);
        pg_p_bool(&p, !!(u->fields & CF_UPD_QUALITY));
        pg_p_double(&p, u->quality_score);
        pg_p_bool(&p, !!(u->fields & CF_UPD_METADATA));
        pg_p_str(&p, u->metadata.p ? u->metadata : cf_cstr("{}"));
        pg_p_bool(&p, !!(u->fields & CF_UPD_MODEL_VERSION));
        pg_p_str(&p, u->model_version_id);
        pg_p_bool(&p, !!(u->fields & CF_UPD_LATENCY));
        pg_p_int(&p, u->latency_ms);
        pg_p_bool(&p, !!(u->fields & CF_UPD_TOKENS));
        pg_p_int(&p, u->token_count);
        pg_p_str(&p, a->ids[i]);
        pg_p_bool(&p, !!(u->fields & CF_UPD_CHECKS));
        pg_p_int(&p, u->quality_checks ? (int64_t)u->quality_checks : CF_NULL_INT);
        pg_p_bool(&p, !!(u->fields & CF_UPD_PROMPT));
        pg_p_str(&p, u->prompt.p ? u->prompt : cf_cstr(""));
        pg_p_bool(&p, !!(u->fields & CF_UPD_RESPONSE));
        pg_p_str(&p, u->response.p ? u->response : cf_cstr(""));
        PGresult *r = pg_exec(
            s,
            "UPDATE inference_events SET"
            " quality_score = CASE WHEN $1::boolean THEN $2::float8 ELSE quality_score END,"
            " metadata = CASE WHEN $3::boolean THEN $4::text::jsonb ELSE metadata END,"
            " model_version_id = CASE WHEN $5::boolean THEN $6::text ELSE model_version_id END,"
            " latency_ms = CASE WHEN $7::boolean THEN $8::int8 ELSE latency_ms END,"
            " token_count = CASE WHEN $9::boolean THEN $10::int8 ELSE token_count END,"
            " quality_checks = CASE WHEN $12::boolean THEN $13::int4 ELSE quality_checks END,"
            " prompt = CASE WHEN $14::boolean THEN $15::text ELSE prompt END,"
            " response = CASE WHEN $16::boolean THEN $17::text ELSE response END"
            " WHERE id = $11::text",
            &p, "updating an inference event", err);
        if (!r)
            goto fail;
        int changed = atoi(PQcmdTuples(r));
        PQclear(r);
        if (changed == 0) {
            cf_fail(err, CF_ENOTFOUND, "inference event '%.*s' not found",
                    (int)(a->ids[i].n > 100 ? 100 : a->ids[i].n),
                    a->ids[i].p ? a->ids[i].p : "");
            goto fail;
        }
    }
    if (pg_run(s, "COMMIT", NULL, "committing the updates", err))
        goto fail;
    return 0;
fail:
    pg_rollback(s);
    return -1;
}

int pg_update_events(cf_store *base, const cf_str *ids, const cf_event_update *u, size_t n,
                     cf_err *err)
{
    for (size_t i = 0; i < n; i++)
        if (require(ids[i], "updates", i, "id", err)
            || pg_check_text(u[i].metadata, "updates", i, "metadata", err)
            || pg_check_text(u[i].model_version_id, "updates", i, "model_version_id", err)
            || pg_check_text(u[i].prompt, "updates", i, "prompt", err)
            || pg_check_text(u[i].response, "updates", i, "response", err))
            return -1;
    update_arg a = {ids, u, n};
    return pg_retry((pg_store *)base, update_op, &a, err) ? -1 : (int)n;
}

/* ---- curated examples ------------------------------------------------------------------ */

static void curated_params(pg_params *p, const cf_curated *c, cf_str id, int64_t now)
{
    pg_params_init(p);
    pg_p_str(p, id);
    pg_p_str(p, c->inference_event_id);
    pg_p_str(p, c->deployment_id);
    pg_p_str(p, c->curation_source);
    pg_p_double(p, c->curation_score);
    pg_p_str(p, c->prompt);
    pg_p_str(p, c->response);
    pg_p_bool(p, c->exported);
    pg_p_str(p, c->export_batch_id);
    pg_p_time(p, c->inserted_at ? c->inserted_at : now);
}

#define CURATED_COLUMNS                                                                    \
    "INSERT INTO curated_examples (id, inference_event_id, deployment_id, curation_source," \
    " curation_score, prompt, response, exported, export_batch_id, inserted_at, updated_at)"
#define CURATED_VALUES                                                                     \
    " $1::text, $2::text, $3::text, $4::text, $5::float8, $6::text, $7::text, $8::boolean," \
    " $9::text, $10::timestamptz, $10::timestamptz"

typedef struct curated_arg {
    const cf_curated *c;
    size_t n;
    int64_t now;
    int only_new;
    unsigned char *inserted;
    int64_t written;
} curated_arg;

static int curated_op(pg_store *s, void *arg, int attempt, cf_err *err)
{
    curated_arg *a = arg;
    const char *sql =
        a->only_new ? CURATED_COLUMNS " SELECT" CURATED_VALUES
                                      " WHERE NOT EXISTS (SELECT 1 FROM curated_examples"
                                      " WHERE inference_event_id = $2::text)"
        : attempt   ? CURATED_COLUMNS " VALUES (" CURATED_VALUES ") ON CONFLICT (id) DO NOTHING"
                    : CURATED_COLUMNS " VALUES (" CURATED_VALUES ")";
    a->written = 0;
    if (a->inserted)
        memset(a->inserted, 0, a->n);
    if (pg_run(s, "BEGIN", NULL, "writing curated examples", err))
        return -1;
    /* insert-if-new: one writer at a time, so two nodes never both add an
     * example for the same event */
    if (a->only_new && pg_run(s, "SELECT pg_advisory_xact_lock(7280321002)", NULL,
                              "locking curated examples", err))
        goto fail;
    for (size_t i = 0; i < a->n; i++) {
        pg_params p;
        curated_params(&p, &a->c[i], a->c[i].id, a->now);
        char what[96];
        snprintf(what, sizeof what, "curated[%zu]", i);
        PGresult *r = pg_exec(s, sql, &p, what, err);
        if (!r)
            goto fail;
        if (atoi(PQcmdTuples(r)) > 0) {
            a->written++;
            if (a->inserted)
                a->inserted[i] = 1;
        }
        PQclear(r);
    }
    if (pg_run(s, "COMMIT", NULL, "committing curated examples", err))
        goto fail;
    return 0;
fail:
    pg_rollback(s);
    if (a->inserted)
        memset(a->inserted, 0, a->n);
    return -1;
}

static int write_curated(pg_store *s, const cf_curated *c, size_t n, int only_new,
                         unsigned char *inserted, int64_t *count, cf_err *err)
{
    for (size_t i = 0; i < n; i++) {
        if (inserted)
            inserted[i] = 0;
        if (require(c[i].inference_event_id, "curated", i, "inference_event_id", err)
            || require(c[i].deployment_id, "curated", i, "deployment_id", err)
            || require(c[i].curation_source, "curated", i, "curation_source", err)
            || pg_check_text(c[i].id, "curated", i, "id", err)
            || pg_check_text(c[i].prompt, "curated", i, "prompt", err)
            || pg_check_text(c[i].response, "curated", i, "response", err)
            || pg_check_text(c[i].export_batch_id, "curated", i, "export_batch_id", err))
            return -1;
    }
    curated_arg a = {c, n, cf_now_us(), only_new, inserted, 0};
    int rc = pg_retry(s, curated_op, &a, err);
    if (count)
        *count = rc ? 0 : a.written;
    return rc;
}

int pg_insert_curated(cf_store *base, const cf_curated *c, size_t n, cf_err *err)
{
    return write_curated((pg_store *)base, c, n, 0, NULL, NULL, err) ? -1 : (int)n;
}

int pg_insert_curated_new(cf_store *base, const cf_curated *c, size_t n, unsigned char *inserted,
                          int64_t *count, cf_err *err)
{
    *count = 0;
    return write_curated((pg_store *)base, c, n, 1, inserted, count, err);
}

/* ---- export marks ------------------------------------------------------------------------ */

#define MARK_CHUNK 1000

static const char mark_sql[] =
    "INSERT INTO curated_export_marks (curated_id, export_batch_id, exported_at)"
    " SELECT id, $1::text, $2::timestamptz FROM curated_examples WHERE id = ANY($3::text[])"
    " ON CONFLICT (curated_id) DO UPDATE SET export_batch_id = excluded.export_batch_id,"
    " exported_at = excluded.exported_at";

/* Marks the ids in arr (a text[] literal being built) and empties it. */
static int mark_chunk(pg_store *s, cf_buf *arr, cf_str batch, int64_t now, int64_t *changed,
                      cf_err *err)
{
    cf_buf_putc(arr, '}');
    if (cf_buf_failed(arr))
        return cf_fail(err, CF_ENOMEM, "out of memory marking curated examples");
    pg_params p;
    pg_params_init(&p);
    pg_p_str(&p, batch);
    pg_p_time(&p, now);
    pg_p_cstr(&p, cf_buf_cstr(arr));
    PGresult *r = pg_exec(s, mark_sql, &p, "marking curated examples exported", err);
    arr->n = 0;
    cf_buf_putc(arr, '{');
    if (!r)
        return -1;
    *changed += strtoll(PQcmdTuples(r), NULL, 10);
    PQclear(r);
    return 0;
}

typedef struct mark_arg {
    const cf_str *ids;  /* a list, or */
    size_t n;
    int (*next)(void *, cf_str *, cf_err *); /* a stream, read once: */
    void *ctx;
    cf_buf seen;        /* the ids it gave so far (a size_t length, SIZE_MAX for
                         * none, then the bytes), */
    int ended;          /* replayed by a retry after a lost connection */
    cf_str batch;
    int64_t changed;
} mark_arg;

/* The next streamed id: first the ones a failed attempt already read, then
 * new ones from the stream (kept for a retry). 1, 0 at the end, -1. */
static int next_streamed(mark_arg *a, size_t *pos, cf_str *id, cf_err *err)
{
    if (*pos < a->seen.n) {
        size_t len;
        memcpy(&len, a->seen.p + *pos, sizeof len);
        *pos += sizeof len;
        if (len == SIZE_MAX) { /* the stream gave no id there */
            *id = (cf_str){NULL, 0};
            return 1;
        }
        *id = (cf_str){a->seen.p + *pos, len};
        *pos += len;
        return 1;
    }
    if (a->ended)
        return 0;
    int r = a->next(a->ctx, id, err);
    if (r <= 0) {
        a->ended = r == 0;
        return r;
    }
    size_t len = id->p ? id->n : SIZE_MAX;
    cf_buf_append(&a->seen, (const char *)&len, sizeof len);
    if (id->p)
        cf_buf_append(&a->seen, id->p, id->n);
    if (cf_buf_failed(&a->seen))
        return cf_fail(err, CF_ENOMEM, "out of memory keeping the streamed ids");
    *pos = a->seen.n;
    return 1;
}

static int mark_op(pg_store *s, void *arg, int attempt, cf_err *err)
{
    (void)attempt;
    mark_arg *a = arg;
    int64_t now = cf_now_us();
    size_t k = 0, pos = 0;
    cf_buf arr = CF_BUF_INIT;
    cf_buf_putc(&arr, '{');
    a->changed = 0;
    if (pg_run(s, "BEGIN", NULL, "marking curated examples exported", err))
        goto fail;
    for (size_t i = 0;; i++) {
        cf_str id;
        if (a->next) {
            int r = next_streamed(a, &pos, &id, err);
            if (r < 0) {
                s->lost = 0; /* the stream's own failure: no retry */
                goto fail;
            }
            if (r == 0)
                break;
        } else {
            if (i == a->n)
                break;
            id = a->ids[i];
        }
        if (!id.p)
            continue;
        if (memchr(id.p, '\0', id.n))
            continue; /* no stored id has one */
        if (k++)
            cf_buf_putc(&arr, ',');
        pg_array_elem(&arr, id);
        if (k == MARK_CHUNK) {
            if (mark_chunk(s, &arr, a->batch, now, &a->changed, err))
                goto fail;
            k = 0;
        }
    }
    if (k && mark_chunk(s, &arr, a->batch, now, &a->changed, err))
        goto fail;
    if (pg_run(s, "COMMIT", NULL, "committing export marks", err))
        goto fail;
    cf_buf_free(&arr);
    return 0;
fail:
    cf_buf_free(&arr);
    pg_rollback(s);
    return -1;
}

int pg_mark_curated_exported(cf_store *base, const cf_str *ids, size_t n, cf_str batch,
                             cf_err *err)
{
    if (!batch.p)
        return cf_fail(err, CF_EINVAL, "export_batch_id: missing required value");
    if (pg_check_text(batch, "export", 0, "export_batch_id", err))
        return -1;
    mark_arg a = {ids, n, NULL, NULL, CF_BUF_INIT, 0, batch, 0};
    if (pg_retry((pg_store *)base, mark_op, &a, err))
        return -1;
    return (int)a.changed;
}

int pg_mark_curated_exported_stream(cf_store *base, int (*next)(void *, cf_str *, cf_err *),
                                    void *ctx, cf_str batch, int64_t *marked, cf_err *err)
{
    if (marked)
        *marked = 0;
    if (!batch.p || batch.n == 0)
        return cf_fail(err, CF_EINVAL, "export_batch_id: missing required value");
    if (pg_check_text(batch, "export", 0, "export_batch_id", err))
        return -1;
    /* One transaction; a lost connection retries it from the first id,
     * replaying the ids already read from the stream (kept in memory). */
    mark_arg a = {NULL, 0, next, ctx, CF_BUF_INIT, 0, batch, 0};
    int rc = pg_retry((pg_store *)base, mark_op, &a, err);
    cf_buf_free(&a.seen);
    if (rc)
        return -1;
    if (marked)
        *marked = a.changed;
    return 0;
}

/* ---- export claims ------------------------------------------------------------
 * One statement: the free rows are inserted as claims; curated_export_claims'
 * primary key holds one claim a row. A concurrent claim of the same row
 * waits for the first to commit, then finds it live and skips the row (ON
 * CONFLICT ... WHERE re-checks the committed claim); an expired claim is
 * taken over in place. */

static const char claim_sql[] =
    "WITH ins AS (INSERT INTO curated_export_claims"
    " (curated_id, deployment_id, claim_token, claimed_until)"
    " SELECT t.id, t.deployment_id, $2::text, $3::timestamptz"
    " FROM curated_examples t LEFT JOIN curated_export_marks m ON m.curated_id = t.id"
    " WHERE t.deployment_id = $1::text AND ($4::boolean OR (NOT t.exported AND m.curated_id IS NULL))"
    " AND NOT EXISTS (SELECT 1 FROM curated_export_claims c WHERE c.curated_id = t.id"
    " AND c.claimed_until > $5::timestamptz)"
    " ORDER BY t.inserted_at, t.seq LIMIT $6::int8"
    " ON CONFLICT (curated_id) DO UPDATE SET deployment_id = excluded.deployment_id,"
    " claim_token = excluded.claim_token, claimed_until = excluded.claimed_until"
    " WHERE curated_export_claims.claimed_until <= $5::timestamptz"
    " RETURNING 1) SELECT count(*) FROM ins";

typedef struct claim_arg {
    const cf_claim *c;
    int64_t claimed;
} claim_arg;

static int claim_op(pg_store *s, void *arg, int attempt, cf_err *err)
{
    (void)attempt;
    claim_arg *a = arg;
    pg_params p;
    pg_params_init(&p);
    pg_p_str(&p, a->c->deployment_id);
    pg_p_str(&p, a->c->token);
    pg_p_time(&p, a->c->until);
    pg_p_bool(&p, a->c->include_exported != 0);
    pg_p_time(&p, cf_now_us());
    pg_p_int(&p, a->c->limit < 0 ? CF_NULL_INT : a->c->limit);
    PGresult *r = pg_exec(s, claim_sql, &p, "claiming rows to export", err);
    if (!r)
        return -1;
    a->claimed = pg_col_int(r, 0, 0);
    PQclear(r);
    return 0;
}

int pg_claim_curated(cf_store *base, const cf_claim *c, int64_t *claimed, cf_err *err)
{
    *claimed = 0;
    if (!c->deployment_id.p || !c->token.p || c->token.n == 0)
        return cf_fail(err, CF_EINVAL, "an export claim needs a deployment_id and a token");
    if (pg_check_text(c->deployment_id, "export", 0, "deployment_id", err) ||
        pg_check_text(c->token, "export", 0, "claim token", err))
        return -1;
    claim_arg a = {c, 0};
    if (pg_retry((pg_store *)base, claim_op, &a, err))
        return -1;
    *claimed = a.claimed;
    return 0;
}

static int release_op(pg_store *s, void *arg, int attempt, cf_err *err)
{
    (void)attempt;
    pg_params p;
    pg_params_init(&p);
    pg_p_str(&p, *(const cf_str *)arg);
    return pg_run(s, "DELETE FROM curated_export_claims WHERE claim_token = $1::text", &p,
                  "releasing an export claim", err);
}

int pg_release_curated_claim(cf_store *base, cf_str deployment_id, cf_str token, cf_err *err)
{
    (void)deployment_id;
    if (!token.p)
        return cf_fail(err, CF_EINVAL, "an export claim needs a token");
    if (pg_check_text(token, "export", 0, "claim token", err))
        return -1;
    return pg_retry((pg_store *)base, release_op, &token, err);
}
