/*
 * SQLite backend, the operations curation and triggers use: light event
 * scans with per-event signal counts, events by id, inserting curated
 * examples for events not curated yet, and the time of the last export.
 *
 * Signal counts: the deployment's signals are read once into a hash table
 * keyed by event id (one pass over user_signals), then the event scan
 * looks each event up; that is one sequential read of each table instead
 * of an index probe per event.
 */
#include "cf_store_sqlite_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "crucible/core/cf_uuid.h"

/* ---- signal counts by event id ------------------------------------------------ */

/* Slots hold a hash and an entry number, so a probe for an event without
 * signals (most of them) touches only the 16-byte slot array. */
typedef struct sig_slot {
    uint64_t hash;        /* 0: empty */
    size_t entry;
} sig_slot;

typedef struct sig_entry {
    const char *key;
    size_t len;
    uint32_t counts[CF_SIG_COUNT_];
} sig_entry;

typedef struct sig_table {
    sig_slot *slots;
    size_t cap;
    sig_entry *entries;
    size_t used, entries_cap;
    char **chunks;        /* key storage */
    size_t nchunks, chunk_used;
} sig_table;

#define CHUNK_BYTES (1u << 20)

static uint64_t hash_bytes(const char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 0x100000001b3ull;
    h = cf_mix64(h);
    return h ? h : 1;
}

static void sig_free(sig_table *t)
{
    for (size_t i = 0; i < t->nchunks; i++)
        free(t->chunks[i]);
    free(t->chunks);
    free(t->slots);
    free(t->entries);
    memset(t, 0, sizeof *t);
}

static char *sig_keep(sig_table *t, const char *p, size_t n)
{
    if (!t->nchunks || t->chunk_used + n > CHUNK_BYTES) {
        size_t size = n > CHUNK_BYTES ? n : CHUNK_BYTES;
        char **cs = realloc(t->chunks, (t->nchunks + 1) * sizeof *cs);
        if (!cs)
            return NULL;
        t->chunks = cs;
        cs[t->nchunks] = malloc(size);
        if (!cs[t->nchunks])
            return NULL;
        t->nchunks++;
        t->chunk_used = 0;
    }
    char *dst = t->chunks[t->nchunks - 1] + t->chunk_used;
    memcpy(dst, p, n);
    t->chunk_used += n;
    return dst;
}

/* The slot of key p[0..n), or the empty slot where it would go (cap > 0). */
static sig_slot *sig_find(const sig_table *t, uint64_t h, const char *p, size_t n)
{
    for (size_t i = h & (t->cap - 1);; i = (i + 1) & (t->cap - 1)) {
        sig_slot *s = &t->slots[i];
        if (!s->hash)
            return s;
        if (s->hash == h) {
            const sig_entry *e = &t->entries[s->entry];
            if (e->len == n && memcmp(e->key, p, n) == 0)
                return s;
        }
    }
}

static int sig_grow(sig_table *t)
{
    size_t cap = t->cap ? t->cap * 2 : 1024;
    sig_slot *slots = calloc(cap, sizeof *slots);
    if (!slots)
        return -1;
    sig_slot *old = t->slots;
    size_t old_cap = t->cap;
    t->slots = slots;
    t->cap = cap;
    for (size_t i = 0; i < old_cap; i++)
        if (old[i].hash) {
            size_t j = old[i].hash & (cap - 1);
            while (slots[j].hash)
                j = (j + 1) & (cap - 1);
            slots[j] = old[i];
        }
    free(old);
    return 0;
}

static int sig_add(sig_table *t, cf_str id, cf_str type)
{
    if ((t->used + 1) * 2 > t->cap && sig_grow(t))
        return -1;
    uint64_t h = hash_bytes(id.p, id.n);
    sig_slot *s = sig_find(t, h, id.p, id.n);
    if (!s->hash) {
        if (t->used == t->entries_cap) {
            size_t cap = t->entries_cap ? t->entries_cap * 2 : 512;
            sig_entry *e = realloc(t->entries, cap * sizeof *e);
            if (!e)
                return -1;
            t->entries = e;
            t->entries_cap = cap;
        }
        sig_entry *e = &t->entries[t->used];
        memset(e, 0, sizeof *e);
        if (!(e->key = sig_keep(t, id.p, id.n)))
            return -1;
        e->len = id.n;
        s->hash = h;
        s->entry = t->used++;
    }
    t->entries[s->entry].counts[cf_signal_kind_of(type)]++;
    return 0;
}

static int load_signal_counts(sq_store *s, cf_str deployment_id, sig_table *t, cf_err *err)
{
    sqlite3_stmt *st = NULL;
    const char *sql = deployment_id.p
                          ? "SELECT inference_event_id, signal_type FROM user_signals"
                            " WHERE deployment_id = ?1 ORDER BY inserted_at"
                          : "SELECT inference_event_id, signal_type FROM user_signals";
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
        return sq_fail(s, err, "preparing the signal counts");
    if (deployment_id.p)
        sq_bind_str(st, 1, deployment_id);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        cf_str id = sq_col_str(st, 0), type = sq_col_str(st, 1);
        if (id.p && sig_add(t, id, type)) {
            sqlite3_finalize(st);
            return cf_fail(err, CF_ENOMEM, "out of memory counting signals");
        }
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return sq_fail(s, err, "reading signal counts");
    return 0;
}

/* ---- light scans -------------------------------------------------------------------- */

typedef struct sq_light {
    cf_light_scan base;
    sq_store *s;
    sqlite3_stmt *st;
    unsigned want;
    sig_table sigs;
} sq_light;

static int light_next(cf_light_scan *base, cf_light_event *row, cf_err *err)
{
    sq_light *c = (sq_light *)base;
    memset(row, 0, sizeof *row);
    int rc = sq_step_row(c->s, &c->st, "reading events", err);
    if (rc <= 0)
        return rc;
    sqlite3_stmt *st = c->st;
    row->id = sq_col_str(st, 0);
    row->model_version_id = sq_col_str(st, 1);
    row->inserted_at = sqlite3_column_int64(st, 2);
    row->quality_score =
        sqlite3_column_type(st, 3) == SQLITE_NULL ? NAN : sqlite3_column_double(st, 3);
    row->latency_ms =
        sqlite3_column_type(st, 4) == SQLITE_NULL ? CF_NULL_INT : sqlite3_column_int64(st, 4);
    row->token_count =
        sqlite3_column_type(st, 5) == SQLITE_NULL ? CF_NULL_INT : sqlite3_column_int64(st, 5);
    int col = 6;
    if (c->want & CF_LIGHT_PROMPT)
        row->prompt = sq_col_str(st, col++);
    if (c->want & CF_LIGHT_RESPONSE)
        row->response = sq_col_str(st, col++);
    if ((c->want & CF_LIGHT_SIGNALS) && c->sigs.used && row->id.p) {
        sig_slot *e = sig_find(&c->sigs, hash_bytes(row->id.p, row->id.n), row->id.p,
                               row->id.n);
        if (e->hash)
            memcpy(row->signals, c->sigs.entries[e->entry].counts, sizeof row->signals);
    }
    return 1;
}

static void light_close(cf_light_scan *base)
{
    sq_light *c = (sq_light *)base;
    sqlite3_finalize(c->st);
    sig_free(&c->sigs);
    free(c);
}

static const cf_light_scan_vt light_vt = {light_next, light_close};

int sq_open_light_events(cf_store *base, const cf_query *q, unsigned want, cf_light_scan **out,
                         cf_err *err)
{
    sq_store *s = (sq_store *)base;
    *out = NULL;
    char sql[512] = "SELECT id, model_version_id, inserted_at, quality_score, latency_ms,"
                    " token_count";
    size_t len = strlen(sql);
#define PUT(frag)                                                                   \
    do {                                                                            \
        size_t k_ = strlen(frag);                                                   \
        memcpy(sql + len, frag, k_ + 1);                                            \
        len += k_;                                                                  \
    } while (0)
    if (want & CF_LIGHT_PROMPT)
        PUT(", prompt");
    if (want & CF_LIGHT_RESPONSE)
        PUT(", response");
    PUT(" FROM inference_events WHERE 1");
    if (q->deployment_id.p)
        PUT(" AND deployment_id = ?1");
    if (q->since != CF_NO_TIME)
        PUT(" AND inserted_at >= ?2");
    if (q->until != CF_NO_TIME)
        PUT(" AND inserted_at < ?3");
    PUT(q->descending ? " ORDER BY inserted_at DESC, seq DESC" : " ORDER BY inserted_at, seq");
    PUT(" LIMIT ?4 OFFSET ?5");
#undef PUT
    sq_light *c = calloc(1, sizeof *c);
    if (!c)
        return cf_fail(err, CF_ENOMEM, "out of memory opening a scan");
    c->base.vt = &light_vt;
    c->s = s;
    c->want = want;
    if ((want & CF_LIGHT_SIGNALS) && load_signal_counts(s, q->deployment_id, &c->sigs, err)) {
        light_close(&c->base);
        return -1;
    }
    if (sqlite3_prepare_v2(s->db, sql, -1, &c->st, NULL) != SQLITE_OK) {
        sq_fail(s, err, "preparing an event scan");
        light_close(&c->base);
        return -1;
    }
    if (q->deployment_id.p)
        sqlite3_bind_text64(c->st, 1, q->deployment_id.p, q->deployment_id.n, SQLITE_TRANSIENT,
                            SQLITE_UTF8);
    if (q->since != CF_NO_TIME)
        sqlite3_bind_int64(c->st, 2, q->since);
    if (q->until != CF_NO_TIME)
        sqlite3_bind_int64(c->st, 3, q->until);
    sqlite3_bind_int64(c->st, 4, q->limit < 0 ? -1 : q->limit);
    sqlite3_bind_int64(c->st, 5, q->offset > 0 ? q->offset : 0);
    *out = &c->base;
    return 0;
}

/* ---- events by id ---------------------------------------------------------------------- */

typedef struct sq_byids {
    cf_cursor base;
    sq_store *s;
    char **ids;
    size_t *lens;
    size_t n, next;
    cf_cursor *cur; /* the current id's cursor */
} sq_byids;

static int byids_next(cf_cursor *base, cf_row *row, cf_err *err)
{
    sq_byids *c = (sq_byids *)base;
    for (;;) {
        if (c->cur) {
            int r = cf_cursor_next(c->cur, row, err);
            if (r != 0)
                return r;
            cf_cursor_close(c->cur);
            c->cur = NULL;
        }
        if (c->next == c->n)
            return 0;
        cf_query q;
        cf_query_init(&q);
        q.id.p = c->ids[c->next];
        q.id.n = c->lens[c->next];
        q.limit = 1;
        c->next++;
        if (sq_open_cursor(&c->s->base, CF_KIND_EVENTS, &q, &c->cur, err))
            return -1;
    }
}

static void byids_close(cf_cursor *base)
{
    sq_byids *c = (sq_byids *)base;
    cf_cursor_close(c->cur);
    for (size_t i = 0; i < c->n; i++)
        free(c->ids[i]);
    free(c->ids);
    free(c->lens);
    free(c);
}

static const cf_cursor_vt byids_vt = {byids_next, byids_close};

int sq_open_events_by_ids(cf_store *base, const cf_str *ids, size_t n, cf_cursor **out,
                          cf_err *err)
{
    *out = NULL;
    sq_byids *c = calloc(1, sizeof *c);
    if (!c)
        return cf_fail(err, CF_ENOMEM, "out of memory opening a cursor");
    c->base.vt = &byids_vt;
    c->base.kind = CF_KIND_EVENTS;
    c->s = (sq_store *)base;
    c->ids = calloc(n ? n : 1, sizeof *c->ids);
    c->lens = calloc(n ? n : 1, sizeof *c->lens);
    if (!c->ids || !c->lens) {
        byids_close(&c->base);
        return cf_fail(err, CF_ENOMEM, "out of memory opening a cursor");
    }
    c->n = n;
    for (size_t i = 0; i < n; i++) {
        if (!ids[i].p) {
            byids_close(&c->base);
            return cf_fail(err, CF_EINVAL, "ids[%zu]: missing", i + 1);
        }
        c->ids[i] = malloc(ids[i].n + 1);
        if (!c->ids[i]) {
            byids_close(&c->base);
            return cf_fail(err, CF_ENOMEM, "out of memory opening a cursor");
        }
        memcpy(c->ids[i], ids[i].p, ids[i].n);
        c->ids[i][ids[i].n] = '\0';
        c->lens[i] = ids[i].n;
    }
    *out = &c->base;
    return 0;
}

/* ---- curated examples for events not curated yet ---------------------------------------- */

static const char insert_new_sql[] =
    "INSERT INTO curated_examples (id, inference_event_id, deployment_id, curation_source,"
    " curation_score, prompt, response, exported, export_batch_id, inserted_at, updated_at)"
    " SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10"
    " WHERE NOT EXISTS (SELECT 1 FROM curated_examples WHERE inference_event_id = ?2)";

static int exec(sq_store *s, const char *sql, cf_err *err)
{
    if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return err ? sq_fail(s, err, sql) : -1;
    return 0;
}

int sq_insert_curated_new(cf_store *base, const cf_curated *c, size_t n, unsigned char *inserted,
                          int64_t *count, cf_err *err)
{
    sq_store *s = (sq_store *)base;
    *count = 0;
    for (size_t i = 0; i < n; i++) {
        const char *missing = !c[i].inference_event_id.p ? "inference_event_id"
                              : !c[i].deployment_id.p    ? "deployment_id"
                              : !c[i].curation_source.p  ? "curation_source"
                                                         : NULL;
        if (missing)
            return cf_fail(err, CF_EINVAL, "curated[%zu].%s: missing required field", i,
                           missing);
        if (inserted)
            inserted[i] = 0;
    }
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, insert_new_sql, -1, &st, NULL) != SQLITE_OK)
        return sq_fail(s, err, "preparing a curated insert");
    if (exec(s, "BEGIN IMMEDIATE", err)) {
        sqlite3_finalize(st);
        return -1;
    }
    int64_t now = cf_now_us(), written = 0;
    for (size_t i = 0; i < n; i++) {
        char gen[37];
        cf_str id = c[i].id;
        if (!id.p) {
            if (cf_uuid7(gen)) {
                cf_fail(err, CF_EIO, "cannot generate an id: the system random source failed");
                goto fail;
            }
            id = (cf_str){gen, 36};
        }
        sqlite3_reset(st);
        sq_bind_curated(st, &c[i], id, now);
        if (sqlite3_step(st) != SQLITE_DONE) {
            cf_fail(err, CF_EDB, "curated[%zu] (event '%.64s'): %s (sqlite %s)", i,
                    c[i].inference_event_id.p, sqlite3_errmsg(s->db), s->path);
            goto fail;
        }
        if (sqlite3_changes(s->db) > 0) {
            written++;
            if (inserted)
                inserted[i] = 1;
        }
    }
    sqlite3_finalize(st);
    st = NULL;
    if (exec(s, "COMMIT", err))
        goto fail;
    *count = written;
    return 0;
fail:
    sqlite3_finalize(st);
    if (!sqlite3_get_autocommit(s->db))
        exec(s, "ROLLBACK", NULL);
    if (inserted)
        memset(inserted, 0, n);
    return -1;
}

/* ---- the last export ------------------------------------------------------------------- */

int sq_last_export_at(cf_store *base, cf_str deployment_id, int64_t *at, cf_err *err)
{
    sq_store *s = (sq_store *)base;
    *at = CF_NO_TIME;
    if (!deployment_id.p)
        return cf_fail(err, CF_EINVAL, "deployment_id: missing required value");
    sqlite3_stmt *st = NULL;
    const char *sql =
        "SELECT max(coalesce(m.exported_at, CASE WHEN c.exported <> 0 THEN c.updated_at END))"
        " FROM curated_examples c LEFT JOIN curated_export_marks m ON m.curated_id = c.id"
        " WHERE c.deployment_id = ?1";
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
        return sq_fail(s, err, "preparing the last export query");
    sq_bind_str(st, 1, deployment_id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
        *at = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : sq_fail(s, err, "reading the last export");
}
