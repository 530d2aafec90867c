/*
 * ClickHouse backend, writes. A batch is one INSERT ... FORMAT JSONEachRow
 * request (one block: all rows or none). Without transactions, ids are the
 * key: before a batch of events goes in, the ids it gives are looked up in
 * inference_event_ids; an id stored with the same deployment and time is
 * the same event (a retry after a lost reply) and is skipped, any other is
 * refused as a duplicate, so a retried batch never doubles. Asked to skip
 * duplicates (dup flags), every id found by the first lookup, and every
 * repeat of an id within the batch, is a duplicate: not sent, flagged;
 * lookups before later tries only skip what an earlier try stored. Updates
 * write a new version of each row (ReplacingMergeTree, read with FINAL).
 */
#include "ch_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>


/* ---- ids, sorted for lookups ----------------------------------------------------- */

typedef struct keyed {
    cf_str s;
    size_t i;
} keyed;

static int cmp_str(cf_str a, cf_str b)
{
    size_t n = a.n < b.n ? a.n : b.n;
    int c = n ? memcmp(a.p, b.p, n) : 0;
    return c ? c : (a.n > b.n) - (a.n < b.n);
}

static int cmp_keyed(const void *x, const void *y)
{
    const keyed *a = x, *b = y;
    int c = cmp_str(a->s, b->s);
    return c ? c : (a->i > b->i) - (a->i < b->i);
}

/* ids[0..n) sorted by text (then position); NULL when out of memory. */
static keyed *sort_ids(const cf_str *ids, size_t n)
{
    keyed *k = malloc((n ? n : 1) * sizeof *k);
    if (!k)
        return NULL;
    for (size_t i = 0; i < n; i++)
        k[i] = (keyed){ids[i], i};
    qsort(k, n, sizeof *k, cmp_keyed);
    return k;
}

/* The first position of s in k[0..n), or n. */
static size_t find(const keyed *k, size_t n, cf_str s)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cmp_str(k[mid].s, s) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && cmp_str(k[lo].s, s) == 0 ? lo : n;
}

static int show_len(cf_str s) { return (int)(s.n > 100 ? 100 : s.n); }

static int oom(cf_err *err, const char *what)
{
    return cf_fail(err, CF_ENOMEM, "out of memory %s", what);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* ---- events ------------------------------------------------------------------------ */

static void event_row(cf_buf *b, const cf_event *e, cf_str id, int64_t at, uint64_t seq,
                      uint64_t version)
{
    ch_json_key(b, "id", 1);
    cf_buf_json_string(b, id.p, id.n);
    ch_json_str(b, "deployment_id", e->deployment_id);
    ch_json_str(b, "model_version_id", e->model_version_id);
    ch_json_str(b, "user_id_hash", e->user_id_hash);
    ch_json_str(b, "prompt", e->prompt);
    ch_json_str(b, "response", e->response);
    ch_json_int(b, "latency_ms", e->latency_ms);
    ch_json_int(b, "token_count", e->token_count);
    ch_json_bits(b, "quality_bits", e->quality_score);
    ch_json_str(b, "metadata", e->metadata.p ? e->metadata : cf_cstr("{}"));
    ch_json_int(b, "inserted_at", at);
    ch_json_int(b, "seq", (int64_t)seq);
    ch_json_int(b, "version", (int64_t)version);
    ch_json_int(b, "quality_checks", e->quality_checks ? (int64_t)e->quality_checks : CF_NULL_INT);
    cf_buf_str(b, "}\n");
}

/* Ids sharing their first RANGE_PREFIX bytes are looked up as one range of
 * the id view's sort key: UUIDv7 ids of one batch (the ingest path) share
 * their millisecond prefix, so the lookup reads a granule or two instead
 * of parsing a list of every id. Rows in a range that are not the batch's
 * are ignored. */
#define RANGE_PREFIX 10

static int same_prefix(cf_str a, cf_str b)
{
    return a.n >= RANGE_PREFIX && b.n >= RANGE_PREFIX && memcmp(a.p, b.p, RANGE_PREFIX) == 0;
}

/* Looks the batch's ids up: skip[i] = 1 for the batch's rows already stored
 * (any: whatever the stored row holds; else only with the same deployment
 * and time, and CF_EINVAL for an id stored otherwise). k: the batch's ids
 * sorted (sort_ids). */
static int check_existing(ch_store *s, const cf_event *ev, const keyed *k, size_t n,
                          int any, unsigned char *skip, cf_err *err)
{
    memset(skip, 0, n);
    cf_buf q = CF_BUF_INIT;
    cf_buf_str(&q, "SELECT DISTINCT id, deployment_id, inserted_at FROM inference_event_ids"
                   " WHERE 0");
    size_t m = 0;
    for (size_t j = 0; j < n;) {
        size_t e = j;
        while (e + 1 < n && same_prefix(k[j].s, k[e + 1].s))
            e++;
        cf_buf_str(&q, " OR id ");
        if (e == j) {
            cf_buf_str(&q, "= ");
            ch_quote(&q, k[j].s);
        } else {
            cf_buf_str(&q, "BETWEEN ");
            ch_quote(&q, k[j].s);
            cf_buf_str(&q, " AND ");
            ch_quote(&q, k[e].s);
        }
        m++;
        j = e + 1;
    }
    if (m == 0) {
        cf_buf_free(&q);
        return 0;
    }
    ch_rows r;
    int rc = ch_query(s, &q, "checking event ids", &r, err);
    cf_buf_free(&q);
    while (rc == 0 && (rc = ch_rows_next(&r, 3, err)) == 1) {
        rc = 0;
        for (size_t j = find(k, n, r.f[0]); j < n && cmp_str(k[j].s, r.f[0]) == 0; j++) {
            const cf_event *e = &ev[k[j].i];
            if (any
                || (cmp_str(e->deployment_id, r.f[1]) == 0 && e->inserted_at == ch_int(r.f[2]))) {
                skip[k[j].i] = 1;
                continue;
            }
            rc = cf_fail(err, CF_EINVAL, "events[%zu]: id '%.*s' already exists", k[j].i,
                         show_len(r.f[0]), r.f[0].p);
            ch_rows_close(&r);
            break;
        }
        if (rc)
            break;
    }
    return rc < 0 ? -1 : 0;
}

/* Sends the batch's rows (body; row i is body[off[i]..off[i + 1])): the
 * server may go away mid-request, so the ids are looked up again before
 * each try and only the rows not stored yet are sent, until the reconnect
 * window ends. skip: n bytes of scratch. dup (skipping duplicates; the
 * batch's repeats already flagged): the first lookup's finds are flagged
 * too, and no flagged row is sent. */
static int send_missing(ch_store *s, const cf_event *ev, const keyed *k, size_t n,
                        unsigned char *skip, unsigned char *dup, const cf_buf *body,
                        const size_t *off, cf_err *err)
{
    cf_buf part = CF_BUF_INIT;
    int rc = -1, first = 1;
    long wait = 200;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        if (check_existing(s, ev, k, n, dup != NULL, skip, err))
            break;
        for (size_t i = 0; dup && i < n; i++) {
            if (first && skip[i])
                dup[i] = 1;
            skip[i] |= dup[i];
        }
        first = 0;
        const cf_buf *send = body;
        size_t todo = 0;
        for (size_t i = 0; i < n; i++)
            todo += !skip[i];
        if (todo == 0) {
            rc = 0;
            break;
        }
        if (todo < n) {
            part.n = 0;
            for (size_t i = 0; i < n; i++)
                if (!skip[i])
                    cf_buf_append(&part, body->p + off[i], off[i + 1] - off[i]);
            if (cf_buf_failed(&part)) {
                oom(err, "writing events");
                break;
            }
            send = &part;
        }
        s->transport_failed = 0;
        if (ch_insert(s, "inference_events", send, "writing events", err) == 0) {
            rc = 0;
            break;
        }
        struct timespec t1;
        clock_gettime(CLOCK_MONOTONIC, &t1);
        long spent = (long)(t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
        if (!s->transport_failed || spent + wait > s->retry_ms)
            break;
        sleep_ms(wait);
        wait = wait * 2 > 1000 ? 1000 : wait * 2;
    }
    cf_buf_free(&part);
    return rc;
}

int ch_insert_events(cf_store *base, const cf_event *in, size_t n, unsigned char *dup,
                     cf_err *err)
{
    ch_store *s = (ch_store *)base;
    static const char *const req[] = {"events.deployment_id", "events.prompt", "events.response"};
    for (size_t i = 0; i < n; i++) {
        const cf_str v[3] = {in[i].deployment_id, in[i].prompt, in[i].response};
        for (int k = 0; k < 3; k++)
            if (!v[k].p)
                return cf_fail(err, CF_EINVAL, "%s[%zu]: missing required field", req[k], i);
    }
    if (n == 0)
        return 0;
    int rc = -1;
    cf_event *ev = malloc(n * sizeof *ev);
    cf_str *ids = malloc(n * sizeof *ids);
    unsigned char *skip = calloc(n, 1);
    size_t *off = malloc((n + 1) * sizeof *off);
    keyed *k = NULL;
    cf_buf body = CF_BUF_INIT;
    if (!ev || !ids || !skip || !off) {
        oom(err, "writing events");
        goto done;
    }
    int64_t now = cf_now_us();
    uint64_t version = ch_next_seq();
    for (size_t i = 0; i < n; i++) {
        ev[i] = in[i];
        if (!ev[i].inserted_at)
            ev[i].inserted_at = now;
        ids[i] = in[i].id;
        off[i] = body.n;
        event_row(&body, &ev[i], ids[i], ev[i].inserted_at, ch_next_seq(), version);
    }
    off[n] = body.n;
    if (cf_buf_failed(&body)) {
        oom(err, "writing events");
        goto done;
    }
    /* A batch that names one id twice: the repeat is a duplicate (its
     * first row goes in), or refused like one. */
    if (!(k = sort_ids(ids, n))) {
        oom(err, "writing events");
        goto done;
    }
    for (size_t j = 1; j < n; j++)
        if (cmp_str(k[j - 1].s, k[j].s) == 0) {
            if (dup) {
                dup[k[j].i] = 1;
                continue;
            }
            cf_fail(err, CF_EINVAL, "events[%zu]: id '%.*s' already exists", k[j].i,
                    show_len(k[j].s), k[j].s.p);
            goto done;
        }
    if (send_missing(s, ev, k, n, skip, dup, &body, off, err))
        goto done;
    rc = (int)n;
    for (size_t i = 0; dup && i < n; i++)
        rc -= dup[i];
done:
    if (rc < 0 && dup)
        memset(dup, 0, n);
    free(ev);
    free(ids);
    free(skip);
    free(off);
    free(k);
    cf_buf_free(&body);
    return rc;
}

int ch_event_deployment(ch_store *s, cf_str id, const char *what, char **dep, cf_err *err)
{
    *dep = NULL;
    cf_buf q = CF_BUF_INIT;
    cf_buf_str(&q, "SELECT deployment_id FROM inference_event_ids WHERE id = ");
    ch_quote(&q, id);
    cf_buf_str(&q, " LIMIT 1");
    ch_rows r;
    int rc = ch_query(s, &q, what, &r, err);
    cf_buf_free(&q);
    if (rc)
        return -1;
    rc = ch_rows_next(&r, 1, err);
    if (rc == 1) {
        *dep = strndup(r.f[0].p, r.f[0].n);
        ch_rows_close(&r);
        if (!*dep)
            return oom(err, what);
    }
    return rc < 0 ? -1 : 0;
}

/* CF_EINVAL when a row of table (in deployment dep) already has this id. */
static int refuse_taken(ch_store *s, const char *table, cf_str dep, cf_str id, const char *what,
                        cf_err *err)
{
    cf_buf q = CF_BUF_INIT;
    cf_buf_str(&q, "SELECT count() FROM ");
    cf_buf_str(&q, table);
    cf_buf_str(&q, " WHERE deployment_id = ");
    ch_quote(&q, dep);
    cf_buf_str(&q, " AND id = ");
    ch_quote(&q, id);
    int64_t c = 0;
    int rc = ch_query_int(s, &q, what, &c, err);
    cf_buf_free(&q);
    if (rc)
        return -1;
    if (c > 0)
        return cf_fail(err, CF_EINVAL, "%s[0]: id '%.*s' already exists", what, show_len(id),
                       id.p);
    return 0;
}

int ch_insert_signal(cf_store *base, const cf_signal *sig, cf_err *err)
{
    ch_store *s = (ch_store *)base;
    cf_str id = sig->id;
    char *dep = NULL;
    if (ch_event_deployment(s, sig->inference_event_id, "finding an inference event", &dep, err))
        return -1;
    if (!dep)
        return cf_fail(err, CF_ENOTFOUND, "inference event '%.*s' not found",
                       show_len(sig->inference_event_id), sig->inference_event_id.p);
    int rc = refuse_taken(s, "user_signals", cf_cstr(dep), id, "signals", err);
    if (rc == 0) {
        cf_buf b = CF_BUF_INIT;
        ch_json_key(&b, "id", 1);
        cf_buf_json_string(&b, id.p, id.n);
        ch_json_str(&b, "inference_event_id", sig->inference_event_id);
        ch_json_str(&b, "deployment_id", cf_cstr(dep));
        ch_json_str(&b, "signal_type", sig->signal_type);
        ch_json_str(&b, "edited_response", sig->edited_response);
        ch_json_str(&b, "metadata", sig->metadata.p ? sig->metadata : cf_cstr("{}"));
        ch_json_int(&b, "inserted_at", sig->inserted_at ? sig->inserted_at : cf_now_us());
        ch_json_int(&b, "seq", (int64_t)ch_next_seq());
        cf_buf_str(&b, "}\n");
        rc = cf_buf_failed(&b) ? oom(err, "writing a signal")
                               : ch_insert(s, "user_signals", &b, "writing a signal", err);
        cf_buf_free(&b);
    }
    free(dep);
    return rc;
}

/* ---- updates: a new version of each row ---------------------------------------------- */

#define EVENT_COLUMNS                                                                       \
    "id, deployment_id, model_version_id, user_id_hash, prompt, response, latency_ms,"     \
    " token_count, quality_bits, metadata, inserted_at, seq, version, quality_checks"

/* Where each event is: deps and times receive the lists "(...)" of the
 * deployments and times of the ids' rows (their sort keys);
 * CF_ENOTFOUND for an id that does not exist. */
static int locate_events(ch_store *s, const cf_str *ids, const keyed *k, size_t n, cf_buf *deps,
                         cf_buf *times, cf_err *err)
{
    unsigned char *found = calloc(n, 1);
    cf_buf q = CF_BUF_INIT;
    ch_rows r;
    int got = -1;
    if (!found) {
        oom(err, "updating events");
        goto done;
    }
    cf_buf_str(&q, "SELECT DISTINCT id, deployment_id, inserted_at FROM inference_event_ids"
                   " WHERE id IN ");
    ch_quote_list(&q, ids, n);
    if (ch_query(s, &q, "updating events", &r, err))
        goto done;
    while ((got = ch_rows_next(&r, 3, err)) == 1) {
        for (size_t j = find(k, n, r.f[0]); j < n && cmp_str(k[j].s, r.f[0]) == 0; j++)
            found[k[j].i] = 1;
        cf_buf_putc(deps, deps->n ? ',' : '(');
        ch_quote(deps, r.f[1]);
        cf_buf_str(times, times->n ? "," : "(");
        cf_buf_append(times, r.f[2].p, r.f[2].n);
    }
    for (size_t i = 0; got == 0 && i < n; i++)
        if (!found[i])
            got = cf_fail(err, CF_ENOTFOUND, "inference event '%.*s' not found",
                          show_len(ids[i]), ids[i].p);
    cf_buf_putc(deps, ')');
    cf_buf_putc(times, ')');
    if (got == 0 && (cf_buf_failed(deps) || cf_buf_failed(times)))
        got = oom(err, "updating events");
done:
    free(found);
    cf_buf_free(&q);
    return got < 0 ? -1 : 0;
}

/* The stored event in row f (EVENT_COLUMNS) with every update of its id
 * applied, in the order given. */
static void updated_event(const cf_str *f, const keyed *k, size_t n, const cf_event_update *u,
                          cf_event *e)
{
    memset(e, 0, sizeof *e);
    ch_read_event(f, e, 0);
    int64_t checks = ch_int(f[13]);
    e->quality_checks = checks == CF_NULL_INT ? 0 : (uint32_t)checks;
    for (size_t j = find(k, n, f[0]); j < n && cmp_str(k[j].s, f[0]) == 0; j++) {
        const cf_event_update *x = &u[k[j].i];
        if (x->fields & CF_UPD_QUALITY)
            e->quality_score = x->quality_score;
        if (x->fields & CF_UPD_METADATA)
            e->metadata = x->metadata.p ? x->metadata : cf_cstr("{}");
        if (x->fields & CF_UPD_MODEL_VERSION)
            e->model_version_id = x->model_version_id;
        if (x->fields & CF_UPD_LATENCY)
            e->latency_ms = x->latency_ms;
        if (x->fields & CF_UPD_TOKENS)
            e->token_count = x->token_count;
        if (x->fields & CF_UPD_CHECKS)
            e->quality_checks = x->quality_checks;
        if (x->fields & CF_UPD_PROMPT)
            e->prompt = x->prompt.p ? x->prompt : cf_cstr("");
        if (x->fields & CF_UPD_RESPONSE)
            e->response = x->response.p ? x->response : cf_cstr("");
    }
}

int ch_update_events(cf_store *base, const cf_str *ids, const cf_event_update *u, size_t n,
                     cf_err *err)
{
    ch_store *s = (ch_store *)base;
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!ids[i].p)
            return cf_fail(err, CF_EINVAL, "updates[%zu].id: missing required field", i);
    keyed *k = sort_ids(ids, n);
    cf_buf q = CF_BUF_INIT, deps = CF_BUF_INIT, times = CF_BUF_INIT, out = CF_BUF_INIT;
    int rc = -1, got;
    ch_rows r;
    if (!k) {
        oom(err, "updating events");
        goto done;
    }
    if (locate_events(s, ids, k, n, &deps, &times, err))
        goto done;
    cf_buf_str(&q, "SELECT " EVENT_COLUMNS " FROM inference_events FINAL WHERE deployment_id IN ");
    cf_buf_append(&q, deps.p, deps.n);
    cf_buf_str(&q, " AND inserted_at IN ");
    cf_buf_append(&q, times.p, times.n);
    cf_buf_str(&q, " AND id IN ");
    ch_quote_list(&q, ids, n);
    if (ch_query(s, &q, "updating events", &r, err))
        goto done;
    uint64_t seq_version = ch_next_seq();
    while ((got = ch_rows_next(&r, 14, err)) == 1) {
        cf_event e;
        updated_event(r.f, k, n, u, &e);
        uint64_t old = (uint64_t)ch_int(r.f[12]);
        event_row(&out, &e, r.f[0], ch_int(r.f[10]), (uint64_t)ch_int(r.f[11]),
                  old + 1 > seq_version ? old + 1 : seq_version);
    }
    if (got < 0)
        goto done;
    if (cf_buf_failed(&out)) {
        oom(err, "updating events");
        goto done;
    }
    if (ch_insert(s, "inference_events", &out, "updating events", err))
        goto done;
    rc = (int)n;
done:
    free(k);
    cf_buf_free(&q);
    cf_buf_free(&deps);
    cf_buf_free(&times);
    cf_buf_free(&out);
    return rc;
}

/* ---- curated examples ------------------------------------------------------------------ */

static void curated_row(cf_buf *b, const cf_curated *c, cf_str id, int64_t now)
{
    int64_t at = c->inserted_at ? c->inserted_at : now;
    ch_json_key(b, "id", 1);
    cf_buf_json_string(b, id.p, id.n);
    ch_json_str(b, "inference_event_id", c->inference_event_id);
    ch_json_str(b, "deployment_id", c->deployment_id);
    ch_json_str(b, "curation_source", c->curation_source);
    ch_json_bits(b, "curation_bits", c->curation_score);
    ch_json_str(b, "prompt", c->prompt);
    ch_json_str(b, "response", c->response);
    ch_json_int(b, "exported", c->exported ? 1 : 0);
    ch_json_str(b, "export_batch_id", c->export_batch_id);
    ch_json_int(b, "inserted_at", at);
    ch_json_int(b, "updated_at", at);
    ch_json_int(b, "seq", (int64_t)ch_next_seq());
    cf_buf_str(b, "}\n");
}

static int check_curated(const cf_curated *c, size_t n, cf_err *err)
{
    for (size_t i = 0; i < n; i++) {
        const char *missing = !c[i].inference_event_id.p ? "inference_event_id"
                              : !c[i].deployment_id.p    ? "deployment_id"
                              : !c[i].curation_source.p  ? "curation_source"
                                                         : NULL;
        if (missing)
            return cf_fail(err, CF_EINVAL, "curated.%s[%zu]: missing required field", missing,
                           i);
    }
    return 0;
}

/* Runs q (one column of strings) and sets hit[k[j].i] for every batch
 * entry equal to a value returned. */
static int mark_hits(ch_store *s, const cf_buf *q, const keyed *k, size_t n, unsigned char *hit,
                     const char *what, cf_err *err)
{
    ch_rows r;
    if (ch_query(s, q, what, &r, err))
        return -1;
    int got;
    while ((got = ch_rows_next(&r, 1, err)) == 1)
        for (size_t j = find(k, n, r.f[0]); j < n && cmp_str(k[j].s, r.f[0]) == 0; j++)
            hit[k[j].i] = 1;
    return got < 0 ? -1 : 0;
}

int ch_insert_curated(cf_store *base, const cf_curated *c, size_t n, cf_err *err)
{
    ch_store *s = (ch_store *)base;
    if (check_curated(c, n, err))
        return -1;
    if (n == 0)
        return 0;
    cf_str *ids = malloc(n * sizeof *ids);
    unsigned char *hit = calloc(n, 1);
    keyed *k = NULL;
    cf_buf q = CF_BUF_INIT, body = CF_BUF_INIT;
    int rc = -1;
    if (!ids || !hit) {
        oom(err, "writing curated examples");
        goto done;
    }
    int64_t now = cf_now_us();
    for (size_t i = 0; i < n; i++) {
        ids[i] = c[i].id;
        curated_row(&body, &c[i], ids[i], now);
    }
    if (!(k = sort_ids(ids, n))) {
        oom(err, "writing curated examples");
        goto done;
    }
    for (size_t j = 1; j < n; j++)
        if (cmp_str(k[j - 1].s, k[j].s) == 0) {
            cf_fail(err, CF_EINVAL, "curated[%zu]: id '%.*s' already exists", k[j].i,
                    show_len(k[j].s), k[j].s.p);
            goto done;
        }
    cf_buf_str(&q, "SELECT id FROM curated_examples WHERE id IN ");
    ch_quote_list(&q, ids, n);
    if (mark_hits(s, &q, k, n, hit, "writing curated examples", err))
        goto done;
    for (size_t i = 0; i < n; i++)
        if (hit[i]) {
            cf_fail(err, CF_EINVAL, "curated[%zu]: id '%.*s' already exists", i,
                    show_len(ids[i]), ids[i].p);
            goto done;
        }
    if (cf_buf_failed(&body)) {
        oom(err, "writing curated examples");
        goto done;
    }
    if (ch_insert(s, "curated_examples", &body, "writing curated examples", err))
        goto done;
    rc = (int)n;
done:
    free(ids);
    free(hit);
    free(k);
    cf_buf_free(&q);
    cf_buf_free(&body);
    return rc;
}

int ch_insert_curated_new(cf_store *base, const cf_curated *c, size_t n, unsigned char *inserted,
                          int64_t *count, cf_err *err)
{
    ch_store *s = (ch_store *)base;
    *count = 0;
    if (check_curated(c, n, err))
        return -1;
    if (inserted)
        memset(inserted, 0, n);
    if (n == 0)
        return 0;
    cf_str *events = malloc(n * sizeof *events);
    unsigned char *hit = calloc(n, 1);
    keyed *k = NULL;
    cf_buf q = CF_BUF_INIT, body = CF_BUF_INIT;
    int rc = -1;
    if (!events || !hit) {
        oom(err, "writing curated examples");
        goto done;
    }
    for (size_t i = 0; i < n; i++)
        events[i] = c[i].inference_event_id;
    if (!(k = sort_ids(events, n))) {
        oom(err, "writing curated examples");
        goto done;
    }
    cf_buf_str(&q, "SELECT DISTINCT inference_event_id FROM curated_examples"
                   " WHERE inference_event_id IN ");
    ch_quote_list(&q, events, n);
    if (mark_hits(s, &q, k, n, hit, "writing curated examples", err))
        goto done;
    /* Within the batch, the first row of an event wins (k is sorted by
     * event, then position). */
    for (size_t j = 1; j < n; j++)
        if (cmp_str(k[j - 1].s, k[j].s) == 0)
            hit[k[j].i] = 1;
    int64_t now = cf_now_us(), written = 0;
    for (size_t i = 0; i < n; i++) {
        if (hit[i])
            continue;
        curated_row(&body, &c[i], c[i].id, now);
        written++;
    }
    if (cf_buf_failed(&body)) {
        oom(err, "writing curated examples");
        goto done;
    }
    if (written && ch_insert(s, "curated_examples", &body, "writing curated examples", err))
        goto done;
    for (size_t i = 0; inserted && i < n; i++)
        inserted[i] = !hit[i];
    *count = written;
    rc = 0;
done:
    free(events);
    free(hit);
    free(k);
    cf_buf_free(&q);
    cf_buf_free(&body);
    return rc;
}

/* ---- export marks -------------------------------------------------------------------------- */

/* Appends marks for those of ids[0..n) that exist (one per distinct id) to
 * body; *marked += how many of the ids exist. */
static int add_marks(ch_store *s, const cf_str *ids, size_t n, cf_str batch, int64_t now,
                     cf_buf *body, int64_t *marked, cf_err *err)
{
    if (n == 0)
        return 0;
    keyed *k = sort_ids(ids, n);
    if (!k)
        return oom(err, "marking curated examples exported");
    cf_buf q = CF_BUF_INIT;
    cf_buf_str(&q, "SELECT DISTINCT id, deployment_id FROM curated_examples WHERE id IN ");
    ch_quote_list(&q, ids, n);
    ch_rows r;
    int rc = ch_query(s, &q, "marking curated examples exported", &r, err);
    cf_buf_free(&q);
    while (rc == 0 && (rc = ch_rows_next(&r, 2, err)) == 1) {
        rc = 0;
        for (size_t j = find(k, n, r.f[0]); j < n && cmp_str(k[j].s, r.f[0]) == 0; j++)
            (*marked)++;
        ch_json_key(body, "deployment_id", 1);
        cf_buf_json_string(body, r.f[1].p, r.f[1].n);
        ch_json_str(body, "curated_id", r.f[0]);
        ch_json_str(body, "export_batch_id", batch);
        ch_json_int(body, "exported_at", now);
        cf_buf_str(body, "}\n");
    }
    free(k);
    if (rc < 0)
        return -1;
    if (cf_buf_failed(body))
        return oom(err, "marking curated examples exported");
    return 0;
}

int ch_mark_curated_exported(cf_store *base, const cf_str *ids, size_t n, cf_str batch,
                             cf_err *err)
{
    ch_store *s = (ch_store *)base;
    if (!batch.p)
        return cf_fail(err, CF_EINVAL, "export_batch_id: missing required value");
    for (size_t i = 0; i < n; i++)
        if (!ids[i].p)
            return cf_fail(err, CF_EINVAL, "ids[%zu]: missing", i + 1);
    cf_buf body = CF_BUF_INIT;
    int64_t marked = 0;
    int rc = add_marks(s, ids, n, batch, cf_now_us(), &body, &marked, err);
    if (rc == 0 && body.n)
        rc = ch_insert(s, "curated_export_marks", &body, "marking curated examples exported",
                       err);
    cf_buf_free(&body);
    return rc ? -1 : (int)marked;
}

/* Ids are looked up MARK_CHUNK at a time; the marks of the whole stream go
 * in with one INSERT at the end (one block: all or none). */
#define MARK_CHUNK 4096

int ch_mark_curated_exported_stream(cf_store *base, int (*next)(void *, cf_str *, cf_err *),
                                    void *ctx, cf_str batch, int64_t *marked, cf_err *err)
{
    ch_store *s = (ch_store *)base;
    if (marked)
        *marked = 0;
    if (!batch.p || batch.n == 0)
        return cf_fail(err, CF_EINVAL, "export_batch_id: missing required value");
    cf_buf body = CF_BUF_INIT, arena = CF_BUF_INIT;
    cf_str ids[MARK_CHUNK];
    size_t offs[MARK_CHUNK], n = 0;
    int64_t count = 0, now = cf_now_us();
    int rc = -1;
    for (;;) {
        cf_str id;
        int r = next(ctx, &id, err);
        if (r < 0)
            goto done;
        if (r > 0 && id.p) {
            offs[n] = arena.n;
            ids[n].n = id.n;
            if (cf_buf_append(&arena, id.p, id.n)) {
                oom(err, "marking curated examples exported");
                goto done;
            }
            n++;
        }
        if (n == MARK_CHUNK || (r == 0 && n)) {
            for (size_t j = 0; j < n; j++)
                ids[j].p = arena.p + offs[j];
            if (add_marks(s, ids, n, batch, now, &body, &count, err))
                goto done;
            n = 0;
            arena.n = 0;
        }
        if (r == 0)
            break;
    }
    if (body.n && ch_insert(s, "curated_export_marks", &body,
                            "marking curated examples exported", err))
        goto done;
    if (marked)
        *marked = count;
    rc = 0;
done:
    cf_buf_free(&body);
    cf_buf_free(&arena);
    return rc;
}

/* ---- history -------------------------------------------------------------------------------- */

int ch_insert_drift(cf_store *base, const cf_drift_result *d, cf_err *err)
{
    ch_store *s = (ch_store *)base;
    cf_str id = d->id;
    if (refuse_taken(s, "drift_results", d->deployment_id, id, "drift", err))
        return -1;
    cf_buf b = CF_BUF_INIT;
    ch_json_key(&b, "id", 1);
    cf_buf_json_string(&b, id.p, id.n);
    ch_json_str(&b, "deployment_id", d->deployment_id);
    ch_json_str(&b, "drift_type", d->drift_type);
    ch_json_bits(&b, "score_bits", isnan(d->score) ? 0.0 : d->score);
    ch_json_int(&b, "drifted", d->drifted ? 1 : 0);
    ch_json_str(&b, "details", d->details.p ? d->details : cf_cstr("{}"));
    ch_json_int(&b, "inserted_at", d->inserted_at ? d->inserted_at : cf_now_us());
    ch_json_int(&b, "seq", (int64_t)ch_next_seq());
    cf_buf_str(&b, "}\n");
    int rc = cf_buf_failed(&b) ? oom(err, "writing a drift result")
                               : ch_insert(s, "drift_results", &b, "writing a drift result", err);
    cf_buf_free(&b);
    return rc;
}

int ch_insert_trigger(cf_store *base, const cf_trigger_event *t, cf_err *err)
{
    ch_store *s = (ch_store *)base;
    cf_str id = t->id;
    if (refuse_taken(s, "trigger_events", t->deployment_id, id, "triggers", err))
        return -1;
    cf_buf b = CF_BUF_INIT;
    ch_json_key(&b, "id", 1);
    cf_buf_json_string(&b, id.p, id.n);
    ch_json_str(&b, "deployment_id", t->deployment_id);
    ch_json_str(&b, "trigger_type", t->trigger_type);
    ch_json_str(&b, "details", t->details.p ? t->details : cf_cstr("{}"));
    ch_json_int(&b, "inserted_at", t->inserted_at ? t->inserted_at : cf_now_us());
    ch_json_int(&b, "seq", (int64_t)ch_next_seq());
    cf_buf_str(&b, "}\n");
    int rc = cf_buf_failed(&b) ? oom(err, "writing a trigger event")
                               : ch_insert(s, "trigger_events", &b, "writing a trigger event",
                                           err);
    cf_buf_free(&b);
    return rc;
}
