/* Turning a raw event into an accepted record (see cf_record.h). */
#include "crucible/ingest/cf_record.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "crucible/core/cf_uuid.h"

struct cf_prepare_scratch {
    cf_sanitize_scratch *sc;
    cf_hmac_worker *hw;  /* bound to the last key used */
    cf_buf stage;        /* the record's strings, before the one allocation */
};

cf_prepare_scratch *cf_prepare_scratch_new(void)
{
    cf_prepare_scratch *ps = calloc(1, sizeof *ps);
    if (!ps)
        return NULL;
    ps->sc = cf_sanitize_scratch_new();
    if (!ps->sc) {
        free(ps);
        return NULL;
    }
    return ps;
}

void cf_prepare_scratch_free(cf_prepare_scratch *ps)
{
    if (!ps)
        return;
    cf_sanitize_scratch_free(ps->sc);
    cf_hmac_worker_free(ps->hw);
    cf_buf_free(&ps->stage);
    free(ps);
}

#define POOL_GRAIN 512
#define POOL_CLASSES 128 /* up to 64 KiB */

struct cf_record_pool {
    pthread_mutex_t mu;
    cf_record *free_list[POOL_CLASSES];
    size_t bytes, max_bytes;
};

cf_record_pool *cf_record_pool_new(size_t max_bytes)
{
    cf_record_pool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    pthread_mutex_init(&p->mu, NULL);
    p->max_bytes = max_bytes;
    return p;
}

void cf_record_pool_free(cf_record_pool *p)
{
    if (!p)
        return;
    for (int c = 0; c < POOL_CLASSES; c++)
        while (p->free_list[c]) {
            cf_record *r = p->free_list[c];
            p->free_list[c] = r->next_free;
            free(r);
        }
    pthread_mutex_destroy(&p->mu);
    free(p);
}

/* A record of at least size bytes (r->bytes says how many). */
static cf_record *record_alloc(cf_record_pool *p, size_t size)
{
    size_t cls = (size + POOL_GRAIN - 1) / POOL_GRAIN;
    if (!p || cls >= POOL_CLASSES) {
        cf_record *r = malloc(size);
        if (r) {
            r->pool = NULL;
            r->bytes = size;
        }
        return r;
    }
    pthread_mutex_lock(&p->mu);
    cf_record *r = p->free_list[cls];
    if (r) {
        p->free_list[cls] = r->next_free;
        p->bytes -= cls * POOL_GRAIN;
    }
    pthread_mutex_unlock(&p->mu);
    if (!r) {
        r = malloc(cls * POOL_GRAIN);
        if (!r)
            return NULL;
    }
    r->pool = p;
    r->bytes = cls * POOL_GRAIN;
    return r;
}

void cf_record_free_all(cf_record **recs, size_t n)
{
    cf_record_pool *p = NULL;
    for (size_t i = 0; i < n; i++) {
        cf_record *r = recs[i];
        if (!r)
            continue;
        if (!r->pool) {
            free(r);
            continue;
        }
        if (p != r->pool) {
            if (p)
                pthread_mutex_unlock(&p->mu);
            p = r->pool;
            pthread_mutex_lock(&p->mu);
        }
        size_t cls = r->bytes / POOL_GRAIN;
        if (p->bytes + r->bytes > p->max_bytes) {
            free(r);
            continue;
        }
        r->next_free = p->free_list[cls];
        p->free_list[cls] = r;
        p->bytes += r->bytes;
    }
    if (p)
        pthread_mutex_unlock(&p->mu);
}

void cf_record_free(cf_record *r)
{
    cf_record_free_all(&r, 1);
}

/* Offsets into the stage while it may still move. */
typedef struct slot {
    size_t off, n;
    int present;
} slot;

static int stage_str(cf_buf *b, const char *p, size_t n, slot *s)
{
    s->off = b->n;
    s->n = n;
    s->present = 1;
    return cf_buf_append(b, p, n) || cf_buf_putc(b, '\0');
}

static int stage_sanitized(const cf_prepare_cfg *cfg, cf_prepare_scratch *ps, cf_str in,
                           slot *s, uint32_t *counts, cf_err *err)
{
    cf_str clean;
    if (cf_sanitize(cfg->san, ps->sc, in.p, in.n, &clean, counts, err) < 0)
        return -1;
    if (stage_str(&ps->stage, clean.p, clean.n, s))
        return cf_fail(err, CF_ENOMEM, "out of memory preparing an event");
    return 0;
}

static cf_str at(const char *base, const slot *s)
{
    if (!s->present)
        return CF_NULL_STR;
    return (cf_str){base + s->off, s->n};
}

/* Where each string of an event lies in the stage. */
typedef struct staged {
    slot id, dep, mv, hash, prompt, resp, meta;
} staged;

/* The user id's keyed hash into hash (CF_USER_HASH_LEN + 1 bytes). */
static int hash_user(const cf_prepare_cfg *cfg, cf_prepare_scratch *ps, cf_str user_id,
                     char *hash, cf_err *err)
{
    if (!cfg->hmac)
        return cf_fail(err, CF_EINVAL, "user_id: no key to hash user ids with");
    if (!ps->hw || cf_hmac_worker_key(ps->hw) != cfg->hmac) {
        cf_hmac_worker_free(ps->hw);
        ps->hw = cf_hmac_worker_new(cfg->hmac);
        if (!ps->hw)
            return cf_fail(err, CF_ENOMEM, "out of memory hashing a user id");
    }
    return cf_hmac_worker_user_id(ps->hw, user_id.p, user_id.n, hash, err) ? -1 : 0;
}

/* Metadata JSON, sanitized unless the configuration says not to. */
static int stage_metadata(const cf_prepare_cfg *cfg, cf_prepare_scratch *ps, cf_str meta,
                          slot *s, uint32_t *counts, cf_err *err)
{
    cf_buf *b = &ps->stage;
    s->off = b->n;
    s->present = 1;
    if (cfg->sanitize_metadata) {
        if (cf_sanitize_json(cfg->san, ps->sc, meta.p, meta.n, b, counts, err) < 0)
            return -1;
    } else if (cf_buf_append(b, meta.p, meta.n)) {
        return cf_fail(err, CF_ENOMEM, "out of memory preparing an event");
    }
    s->n = b->n - s->off;
    if (cf_buf_putc(b, '\0'))
        return cf_fail(err, CF_ENOMEM, "out of memory preparing an event");
    return 0;
}

/* Every string of e into the stage, the free text sanitized. */
static int stage_event(const cf_prepare_cfg *cfg, cf_prepare_scratch *ps, const cf_event *e,
                       staged *s, uint32_t *counts, cf_err *err)
{
    cf_buf *b = &ps->stage;
    b->n = 0;
    if (stage_str(b, e->id.p, e->id.n, &s->id)
        || stage_str(b, e->deployment_id.p, e->deployment_id.n, &s->dep)
        || (e->model_version_id.p
            && stage_str(b, e->model_version_id.p, e->model_version_id.n, &s->mv))
        || (e->user_id_hash.p && stage_str(b, e->user_id_hash.p, e->user_id_hash.n, &s->hash)))
        return cf_fail(err, CF_ENOMEM, "out of memory preparing an event");
    if (stage_sanitized(cfg, ps, e->prompt, &s->prompt, counts, err)
        || stage_sanitized(cfg, ps, e->response, &s->resp, counts, err))
        return -1;
    if (e->metadata.p)
        return stage_metadata(cfg, ps, e->metadata, &s->meta, counts, err);
    return 0;
}

/* The record: one allocation holding the event and its staged strings. */
static cf_record *build_record(const cf_prepare_cfg *cfg, const cf_buf *b, const cf_event *e,
                               const staged *s, uint64_t tag)
{
    cf_record *r = record_alloc(cfg->pool, sizeof(cf_record) + b->n);
    if (!r)
        return NULL;
    memcpy(r->data, b->p, b->n);
    r->next_free = NULL;
    r->tag = tag;
    r->scored = 0;
    r->score_error = 0;
    r->ev = *e;
    r->ev.id = at(r->data, &s->id);
    r->ev.deployment_id = at(r->data, &s->dep);
    r->ev.model_version_id = at(r->data, &s->mv);
    r->ev.user_id_hash = at(r->data, &s->hash);
    r->ev.prompt = at(r->data, &s->prompt);
    r->ev.response = at(r->data, &s->resp);
    r->ev.metadata = at(r->data, &s->meta);
    r->ev.signals = NULL;
    r->ev.nsignals = 0;
    if (!r->ev.inserted_at)
        r->ev.inserted_at = cf_now_us();
    return r;
}

/* An event without a quality score gets the configured scorer's. */
static void score_record(const cf_prepare_cfg *cfg, cf_record *r)
{
    r->ev.quality_checks = 0;
    if (!isnan(r->ev.quality_score) || !cfg->scorer.score)
        return;
    uint32_t checks = 0;
    double q = cfg->scorer.score(cfg->scorer.ud, &r->ev, &checks);
    if (q >= 0.0 && q <= 1.0) {
        r->ev.quality_score = q;
        r->ev.quality_checks = checks;
        r->scored = 1;
    } else {
        r->score_error = 1;
    }
}

int cf_record_prepare(const cf_prepare_cfg *cfg, const cf_event_in *in, cf_prepare_scratch *ps,
                      uint64_t tag, cf_record **out, uint32_t *counts, cf_verrors *v,
                      cf_err *err)
{
    *out = NULL;
    cf_event e;
    cf_str user_id;
    if (cf_validate_event(in, cfg->max_event_bytes, &e, &user_id, v))
        return cf_verr_fail(v, err);
    char gen[CF_UUID_LEN + 1];
    if (!e.id.p) {
        if (cf_uuid7(gen))
            return cf_fail(err, CF_EIO, "cannot generate an id: the system random source failed");
        e.id = (cf_str){gen, CF_UUID_LEN};
    }
    char hash[CF_USER_HASH_LEN + 1];
    if (user_id.p) {
        if (hash_user(cfg, ps, user_id, hash, err))
            return -1;
        e.user_id_hash = (cf_str){hash, CF_USER_HASH_LEN};
    }
    staged s;
    memset(&s, 0, sizeof s);
    if (stage_event(cfg, ps, &e, &s, counts, err))
        return -1;
    cf_record *r = build_record(cfg, &ps->stage, &e, &s, tag);
    if (!r)
        return cf_fail(err, CF_ENOMEM, "out of memory: an event of %zu bytes",
                       sizeof(cf_record) + ps->stage.n);
    score_record(cfg, r);
    *out = r;
    return 0;
}
