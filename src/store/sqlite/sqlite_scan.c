/*
 * SQLite backend, scans: column scans over inference events
 * (cf_store_open_columns) and light event scans with per-event signal
 * counts (curation).
 *
 * Column scans read only the requested columns; a metadata key is looked up with
 * json_each and a bound key, so any key text (quotes, dots, SQL) is plain
 * data. The SQL text is assembled from constant fragments only.
 *
 * Signal counts: the deployment's signals are read once into a hash table
 * keyed by event id (one pass over user_signals), then the event scan
 * looks each event up; that is one sequential read of each table instead
 * of an index probe per event.
 */
#include "sqlite_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_COLUMNS 64

static const char *const column_sql[] = {
    [CF_COL_PROMPT] = "prompt",
    [CF_COL_RESPONSE] = "response",
    [CF_COL_MODEL_VERSION] = "model_version_id",
    [CF_COL_LATENCY] = "latency_ms",
    [CF_COL_TOKENS] = "token_count",
    [CF_COL_QUALITY] = "quality_score",
    [CF_COL_INSERTED_AT] = "inserted_at",
    [CF_COL_METADATA_KEY] =
        "(SELECT CASE j.type WHEN 'true' THEN 'true' WHEN 'false' THEN 'false'"
        " WHEN 'null' THEN NULL WHEN 'object' THEN json(j.value) WHEN 'array' THEN json(j.value)"
        " ELSE j.value END FROM json_each(CASE WHEN json_valid(metadata) THEN metadata"
        " ELSE '{}' END) AS j WHERE j.key = ?)",
};

typedef struct sq_colscan {
    cf_colscan base;
    sq_store *s;
    sqlite3_stmt *st;
} sq_colscan;

static int cs_next(cf_colscan *base, cf_colval *vals, cf_err *err)
{
    sq_colscan *c = (sq_colscan *)base;
    int rc = sq_step_row(c->s, &c->st, "reading event columns", err);
    if (rc <= 0)
        return rc;
    for (size_t i = 0; i < base->ncols; i++) {
        cf_colval *v = &vals[i];
        memset(v, 0, sizeof *v);
        switch (sqlite3_column_type(c->st, (int)i)) {
        case SQLITE_INTEGER:
            v->type = CF_COLVAL_INT;
            v->i = sqlite3_column_int64(c->st, (int)i);
            v->d = (double)v->i;
            break;
        case SQLITE_FLOAT:
            v->type = CF_COLVAL_REAL;
            v->d = sqlite3_column_double(c->st, (int)i);
            break;
        case SQLITE_NULL:
            v->type = CF_COLVAL_NULL;
            break;
        default:
            v->type = CF_COLVAL_TEXT;
            v->s = sq_col_str(c->st, (int)i);
            break;
        }
    }
    return 1;
}

static void cs_close(cf_colscan *base)
{
    sq_colscan *c = (sq_colscan *)base;
    sqlite3_finalize(c->st);
    free(c);
}

static const cf_colscan_vt cs_vt = {cs_next, cs_close};

static int append(char *buf, size_t cap, size_t *len, const char *frag)
{
    size_t n = strlen(frag);
    if (*len + n + 1 > cap)
        return -1;
    memcpy(buf + *len, frag, n + 1);
    *len += n;
    return 0;
}

int sq_open_columns(cf_store *base, const cf_query *q, const cf_column *cols, size_t ncols,
                    cf_colscan **out, cf_err *err)
{
    sq_store *s = (sq_store *)base;
    *out = NULL;
    if (ncols == 0 || ncols > MAX_COLUMNS)
        return cf_fail(err, CF_EINVAL, "a column scan needs 1 to %d columns, got %zu",
                       MAX_COLUMNS, ncols);
    char sql[16384];
    size_t len = 0;
    int bad = append(sql, sizeof sql, &len, "SELECT ");
    for (size_t i = 0; i < ncols; i++) {
        if ((unsigned)cols[i].kind > CF_COL_METADATA_KEY)
            return cf_fail(err, CF_EINVAL, "column %zu: unknown column kind", i + 1);
        if (cols[i].kind == CF_COL_METADATA_KEY && !cols[i].key.p)
            return cf_fail(err, CF_EINVAL, "column %zu: a metadata column needs a key", i + 1);
        bad |= append(sql, sizeof sql, &len, i ? ", " : "");
        bad |= append(sql, sizeof sql, &len, column_sql[cols[i].kind]);
    }
    bad |= append(sql, sizeof sql, &len, " FROM inference_events WHERE 1");
    if (q->deployment_id.p)
        bad |= append(sql, sizeof sql, &len, " AND deployment_id = ?");
    if (q->since != CF_NO_TIME)
        bad |= append(sql, sizeof sql, &len, " AND inserted_at >= ?");
    if (q->until != CF_NO_TIME)
        bad |= append(sql, sizeof sql, &len, " AND inserted_at < ?");
    bad |= append(sql, sizeof sql, &len,
                  q->descending ? " ORDER BY inserted_at DESC, seq DESC LIMIT ? OFFSET ?"
                                : " ORDER BY inserted_at, seq LIMIT ? OFFSET ?");
    if (bad)
        return cf_fail(err, CF_EINVAL, "column scan query too long");
    sq_colscan *c = calloc(1, sizeof *c);
    if (!c)
        return cf_fail(err, CF_ENOMEM, "out of memory opening a column scan");
    c->base.vt = &cs_vt;
    c->base.ncols = ncols;
    c->s = s;
    if (sqlite3_prepare_v2(s->db, sql, -1, &c->st, NULL) != SQLITE_OK) {
        free(c);
        return sq_fail(s, err, "preparing a column scan");
    }
    int k = 1;
    for (size_t i = 0; i < ncols; i++)
        if (cols[i].kind == CF_COL_METADATA_KEY)
            sq_bind_str(c->st, k++, cols[i].key);
    if (q->deployment_id.p)
        sq_bind_str(c->st, k++, q->deployment_id);
    if (q->since != CF_NO_TIME)
        sqlite3_bind_int64(c->st, k++, q->since);
    if (q->until != CF_NO_TIME)
        sqlite3_bind_int64(c->st, k++, q->until);
    sqlite3_bind_int64(c->st, k++, q->limit < 0 ? -1 : q->limit);
    sqlite3_bind_int64(c->st, k, q->offset > 0 ? q->offset : 0);
    *out = &c->base;
    return 0;
}

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
    uint64_t *bits;       /* one bit per hash value mod nbits: most probes are */
    size_t nbits;         /* for events without signals; a clear bit answers them */
    sig_entry *entries;
    size_t used, entries_cap;
    char **chunks;        /* key storage */
    size_t nchunks, chunk_used;
} sig_table;

#define CHUNK_BYTES (1u << 20)

/* Eight bytes a step: every light record's id is hashed once per scan. */
static uint64_t hash_bytes(const char *p, size_t n)
{
    uint64_t h = 0x9e3779b97f4a7c15ull ^ n;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = cf_mix64(h ^ w);
        p += 8;
        n -= 8;
    }
    uint64_t tail = 0;
    memcpy(&tail, p, n);
    h = cf_mix64(h ^ tail);
    return h ? h : 1;
}

static void sig_free(sig_table *t)
{
    for (size_t i = 0; i < t->nchunks; i++)
        free(t->chunks[i]);
    free(t->chunks);
    free(t->slots);
    free(t->entries);
    free(t->bits);
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

/* Sets the presence bits once every id is in: 16 bits an entry keep false
 * positives near 1 in 16 while the bitmap stays within the cache. */
static int sig_seal(sig_table *t)
{
    size_t nbits = 1024;
    while (nbits < t->used * 16)
        nbits *= 2;
    if (!(t->bits = calloc(nbits / 64, sizeof *t->bits)))
        return -1;
    t->nbits = nbits;
    for (size_t i = 0; i < t->cap; i++)
        if (t->slots[i].hash) {
            uint64_t b = (t->slots[i].hash >> 20) & (nbits - 1);
            t->bits[b / 64] |= 1ull << (b % 64);
        }
    return 0;
}

/* The counts of id, or NULL when it has no signals. */
static const uint32_t *sig_counts(const sig_table *t, const char *p, size_t n)
{
    if (!t->used)
        return NULL;
    uint64_t h = hash_bytes(p, n);
    uint64_t b = (h >> 20) & (t->nbits - 1);
    if (!(t->bits[b / 64] >> (b % 64) & 1))
        return NULL;
    const sig_slot *s = sig_find(t, h, p, n);
    return s->hash ? t->entries[s->entry].counts : NULL;
}

/* The statement reading the signals to count: one deployment's in time
 * order, from the (deployment_id, inserted_at) index, so the rows are read
 * in about the order they are stored. The (deployment_id, signal_type)
 * index the planner picks without the ORDER BY walks the table once per
 * signal type. */
static const char *signal_counts_sql(cf_str deployment_id)
{
    return deployment_id.p ? "SELECT inference_event_id, signal_type FROM user_signals"
                             " WHERE deployment_id = ?1 ORDER BY inserted_at"
                           : "SELECT inference_event_id, signal_type FROM user_signals";
}

static int load_signal_counts(sq_store *s, cf_str deployment_id, sig_table *t, cf_err *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, signal_counts_sql(deployment_id), -1, &st, NULL) != SQLITE_OK)
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
    if (t->used && sig_seal(t))
        return cf_fail(err, CF_ENOMEM, "out of memory counting signals");
    return 0;
}

/* ---- light scans -------------------------------------------------------------------- */

/* Signal counts shared by the light scans of one deployment while the
 * database does not change: curation opens a scan per strategy, and each
 * would otherwise read every signal again. Reference counted: the store
 * holds one reference, each scan using it another. */
struct sq_sig_cache {
    int refs;
    sig_table t;
    int has_dep;
    char *dep;
    size_t dep_n;
    int64_t data_version, changes; /* what the database was when it was read */
};

void sq_sig_cache_release(sq_sig_cache *c)
{
    if (!c || --c->refs > 0)
        return;
    sig_free(&c->t);
    free(c->dep);
    free(c);
}

/* PRAGMA data_version (changes by other connections) and this connection's
 * change count: equal readings mean the signals read then are still true. */
static int db_state(sq_store *s, int64_t *version, int64_t *changes, cf_err *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, "PRAGMA data_version", -1, &st, NULL) != SQLITE_OK
        || sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_finalize(st);
        return sq_fail(s, err, "reading the data version");
    }
    *version = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    *changes = sqlite3_total_changes64(s->db);
    return 0;
}

static int cache_fits(const sq_sig_cache *c, cf_str dep, int64_t version, int64_t changes)
{
    return c && c->data_version == version && c->changes == changes
           && c->has_dep == (dep.p != NULL)
           && (!dep.p || (c->dep_n == dep.n && memcmp(c->dep, dep.p, dep.n) == 0));
}

/* The signal counts of dep, from the store's cache when still true, else
 * read afresh (and cached); a new reference, or NULL on failure. */
static sq_sig_cache *signal_counts(sq_store *s, cf_str dep, cf_err *err)
{
    int64_t version = 0, changes = 0;
    if (db_state(s, &version, &changes, err))
        return NULL;
    if (cache_fits(s->sigs, dep, version, changes)) {
        s->sigs->refs++;
        return s->sigs;
    }
    sq_sig_cache *c = calloc(1, sizeof *c);
    if (!c || (dep.p && !(c->dep = malloc(dep.n ? dep.n : 1)))) {
        free(c);
        cf_fail(err, CF_ENOMEM, "out of memory counting signals");
        return NULL;
    }
    c->refs = 1;
    c->has_dep = dep.p != NULL;
    if (dep.p) {
        memcpy(c->dep, dep.p, dep.n);
        c->dep_n = dep.n;
    }
    if (load_signal_counts(s, dep, &c->t, err)) {
        sq_sig_cache_release(c);
        return NULL;
    }
    c->data_version = version;
    c->changes = changes;
    sq_sig_cache_release(s->sigs);
    s->sigs = c;
    c->refs++;
    return c;
}

typedef struct sq_light {
    cf_light_scan base;
    sq_store *s;
    sqlite3_stmt *st;
    unsigned want;
    sq_sig_cache *sigs; /* CF_LIGHT_SIGNALS */
} sq_light;

static int light_next(cf_light_scan *base, cf_light_event *row, cf_err *err)
{
    sq_light *c = (sq_light *)base;
    memset(row, 0, sizeof *row);
    int rc = sq_step_row(c->s, &c->st, "reading events", err);
    if (rc <= 0)
        return rc;
    sqlite3_stmt *st = c->st;
    int col = 0;
    if (c->want & CF_LIGHT_SCORE_ONLY) {
        row->latency_ms = row->token_count = CF_NULL_INT;
    } else {
        row->id = sq_col_str(st, 0);
        row->model_version_id = sq_col_str(st, 1);
        row->inserted_at = sqlite3_column_int64(st, 2);
        row->latency_ms =
            sqlite3_column_type(st, 4) == SQLITE_NULL ? CF_NULL_INT : sqlite3_column_int64(st, 4);
        row->token_count =
            sqlite3_column_type(st, 5) == SQLITE_NULL ? CF_NULL_INT : sqlite3_column_int64(st, 5);
        col = 3;
    }
    row->quality_score =
        sqlite3_column_type(st, col) == SQLITE_NULL ? NAN : sqlite3_column_double(st, col);
    col = col ? 6 : 1;
    if (c->want & CF_LIGHT_CHECKS)
        row->quality_checks = (uint32_t)sqlite3_column_int64(st, col++);
    if (c->want & CF_LIGHT_PROMPT)
        row->prompt = sq_col_str(st, col++);
    if (c->want & CF_LIGHT_RESPONSE)
        row->response = sq_col_str(st, col++);
    if ((c->want & CF_LIGHT_SIGNALS) && row->id.p) {
        const uint32_t *counts = sig_counts(&c->sigs->t, row->id.p, row->id.n);
        if (counts)
            memcpy(row->signals, counts, sizeof row->signals);
    }
    return 1;
}

static void light_close(cf_light_scan *base)
{
    sq_light *c = (sq_light *)base;
    sqlite3_finalize(c->st);
    sq_sig_cache_release(c->sigs);
    free(c);
}

static const cf_light_scan_vt light_vt = {light_next, light_close};

/* The light scan's columns: signals need the id, so not the score alone. */
static unsigned light_columns(unsigned want)
{
    return (want & CF_LIGHT_SIGNALS) ? want & ~(unsigned)CF_LIGHT_SCORE_ONLY : want;
}

#define LIGHT_SQL_MAX 512

/* The light scan's statement for q and want (light_columns), into sql
 * (LIGHT_SQL_MAX bytes); parameters ?1 deployment, ?2 since, ?3 until,
 * ?4 limit, ?5 offset. */
static void light_sql(const cf_query *q, unsigned want, char *sql)
{
    size_t len = 0;
#define PUT(frag)                                                                   \
    do {                                                                            \
        size_t k_ = strlen(frag);                                                   \
        memcpy(sql + len, frag, k_ + 1);                                            \
        len += k_;                                                                  \
    } while (0)
    PUT("SELECT ");
    PUT(want & CF_LIGHT_SCORE_ONLY
            ? "quality_score"
            : "id, model_version_id, inserted_at, quality_score, latency_ms, token_count");
    if (want & CF_LIGHT_CHECKS)
        PUT(", quality_checks");
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
}

int sq_open_light_events(cf_store *base, const cf_query *q, unsigned want, cf_light_scan **out,
                         cf_err *err)
{
    sq_store *s = (sq_store *)base;
    *out = NULL;
    want = light_columns(want);
    char sql[LIGHT_SQL_MAX];
    light_sql(q, want, sql);
    sq_light *c = calloc(1, sizeof *c);
    if (!c)
        return cf_fail(err, CF_ENOMEM, "out of memory opening a scan");
    c->base.vt = &light_vt;
    c->s = s;
    c->want = want;
    if ((want & CF_LIGHT_SIGNALS) && !(c->sigs = signal_counts(s, q->deployment_id, err))) {
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

/* EXPLAIN QUERY PLAN of sql: each step's detail to cb, as stmt. */
static int explain(sq_store *s, const char *stmt, const char *sql, cf_plan_fn cb, void *ud,
                   cf_err *err)
{
    static const char prefix[] = "EXPLAIN QUERY PLAN ";
    size_t n = strlen(sql);
    char *text = malloc(sizeof prefix + n);
    if (!text)
        return cf_fail(err, CF_ENOMEM, "out of memory explaining a scan");
    memcpy(text, prefix, sizeof prefix - 1);
    memcpy(text + sizeof prefix - 1, sql, n + 1);
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, text, -1, &st, NULL);
    free(text);
    if (rc != SQLITE_OK)
        return sq_fail(s, err, "explaining a scan");
    int stop = 0;
    while (!stop && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const unsigned char *detail = sqlite3_column_text(st, 3);
        stop = cb(ud, stmt, detail ? (const char *)detail : "");
    }
    sqlite3_finalize(st);
    if (stop)
        return stop;
    return rc == SQLITE_DONE ? 0 : sq_fail(s, err, "explaining a scan");
}

int sq_plan_light_events(cf_store *base, const cf_query *q, unsigned want, cf_plan_fn cb,
                         void *ud, cf_err *err)
{
    sq_store *s = (sq_store *)base;
    want = light_columns(want);
    char sql[LIGHT_SQL_MAX];
    light_sql(q, want, sql);
    int rc = explain(s, "events", sql, cb, ud, err);
    if (!rc && (want & CF_LIGHT_SIGNALS))
        rc = explain(s, "signals", signal_counts_sql(q->deployment_id), cb, ud, err);
    return rc;
}
