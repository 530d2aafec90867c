/* POST /api/v1/events (cf_serve_events.h). */
#include "crucible/serve/cf_serve_events.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crucible/ingest/cf_jsonl.h"

const char *const cf_serve_events_media[] = {"application/json", "application/x-ndjson", NULL};

static void free_scratch(void *p)
{
    cf_prepare_scratch_free(p);
}

int cf_serve_events_init(cf_serve_events *e, cf_ingest *g, int unknown_to_metadata,
                         cf_serve_metrics *m, cf_err *err)
{
    e->g = g;
    e->unknown_to_metadata = unknown_to_metadata;
    e->m = m;
    e->ext = NULL;
    e->ext_free = NULL;
    e->otlp_scores = NULL;
    e->join_window_ms = 10000;
    if (pthread_mutex_init(&e->ext_mu, NULL))
        return cf_fail(err, CF_ENOMEM, "cannot create a mutex");
    if (pthread_key_create(&e->scratch, free_scratch)) {
        pthread_mutex_destroy(&e->ext_mu);
        return cf_fail(err, CF_ENOMEM, "cannot create a thread key");
    }
    return 0;
}

void cf_serve_events_destroy(cf_serve_events *e)
{
    if (e->ext_free)
        e->ext_free(e->ext);
    e->ext = NULL;
    e->ext_free = NULL;
    pthread_mutex_destroy(&e->ext_mu);
    pthread_key_delete(e->scratch);
}

cf_prepare_scratch *cf_serve_events_scratch(cf_serve_events *e)
{
    cf_prepare_scratch *ps = pthread_getspecific(e->scratch);
    if (!ps) {
        ps = cf_prepare_scratch_new();
        if (ps && pthread_setspecific(e->scratch, ps)) {
            cf_prepare_scratch_free(ps);
            ps = NULL;
        }
    }
    return ps;
}

/* Accepted items whose entries wait for a refusal (then they are written
 * and the rest as they come); a larger batch writes them from here on. */
#define BACKFILL 256

/* What happened to each item, as the response is built. */
typedef struct batch {
    cf_buf ids;    /* "id","id",... for the 200 answer */
    cf_buf items;  /* {"index":..},... for the 207 / 4xx answer, from the first refusal */
    size_t id_end[BACKFILL]; /* where each id ends in ids, until then */
    int eager;     /* items is written as the items come (see backfill) */
    long accepted, rejected;
    int worst;     /* 503 > 500 > 429 > 403 > 400 among the refused */
    char first_error[400];
    int gave_up;   /* the buffer stayed full: the rest is not tried */
} batch;

static int rank(int status)
{
    return status == 503 ? 5 : status == 500 ? 4 : status == 429 ? 3 : status == 403 ? 2 : 1;
}

static void item_entry(batch *b, long index, const char *id, int status, const char *error)
{
    char head[64];
    snprintf(head, sizeof head, "%s{\"index\":%ld,\"id\":", b->items.n ? "," : "", index);
    cf_buf_str(&b->items, head);
    if (id && id[0] && cf_utf8_check(id, strlen(id)) == strlen(id))
        cf_buf_json_string_lossy(&b->items, id, strlen(id));
    else
        cf_buf_str(&b->items, "null");
    snprintf(head, sizeof head, ",\"status\":%d", status);
    cf_buf_str(&b->items, head);
    if (error) {
        cf_buf_str(&b->items, ",\"error\":");
        cf_buf_json_string_lossy(&b->items, error, strlen(error));
    }
    cf_buf_putc(&b->items, '}');
}

/* The first refusal (or the BACKFILL-th item): the items accepted before
 * it (indexes 0 .. accepted-1, their ids in ids) get their entries now, as
 * item_entry writes them; answers with no refusal never need them. */
static void backfill(batch *b)
{
    char head[64];
    b->eager = 1;
    size_t from = 0;
    for (long k = 0; k < b->accepted; k++) {
        size_t to = b->id_end[k];
        snprintf(head, sizeof head, "%s{\"index\":%ld,\"id\":", k ? "," : "", k);
        cf_buf_str(&b->items, head);
        cf_buf_append(&b->items, b->ids.p + from + (k ? 1 : 0), to - from - (k ? 1 : 0));
        cf_buf_str(&b->items, ",\"status\":200}");
        from = to;
    }
}

static void refuse(cf_serve_events *e, batch *b, long index, const char *id, int status,
                   const char *error)
{
    if (!b->eager)
        backfill(b);
    cf_reject_reason why = status == 400   ? CF_REJECT_INVALID
                           : status == 403 ? CF_REJECT_FORBIDDEN
                           : status == 429 ? CF_REJECT_FULL
                           : status == 503 ? CF_REJECT_CLOSED
                                           : CF_REJECT_ERROR;
    cf_serve_metrics_reject(e->m, why, 1);
    if (!b->rejected || rank(status) > rank(b->worst))
        b->worst = status;
    if (!b->rejected)
        snprintf(b->first_error, sizeof b->first_error, "item %ld: %s", index, error);
    b->rejected++;
    item_entry(b, index, id, status, error);
}

static int status_of(int code)
{
    return code == CF_EINVAL ? 400 : code == CF_EFULL ? 429 : code == CF_ECLOSED ? 503 : 500;
}

/* The client's own id into id, when it gave a usable one. */
static const char *client_id(const cf_event_in *in, const cf_jsonl_doc *doc, char *id)
{
    if (in->v[CF_F_ID].type == CF_V_STRING && in->v[CF_F_ID].s.n <= CF_MAX_ID_BYTES &&
        doc->arena != NULL) {
        memcpy(id, in->v[CF_F_ID].s.p, in->v[CF_F_ID].s.n);
        id[in->v[CF_F_ID].s.n] = '\0';
    }
    return id;
}

/* 0 when the request's key may write the item's deployment; else a
 * message naming it. */
static int forbidden(const cf_serve_key *key, const cf_event_in *in, char *msg, size_t cap)
{
    const cf_value *d = &in->v[CF_F_DEPLOYMENT_ID];
    if (!key || d->type != CF_V_STRING || cf_serve_key_allows(key, d->s.p, d->s.n))
        return 0;
    snprintf(msg, cap, "deployment_id: the key '%s' may not write deployment '%.*s'", key->name,
             (int)(d->s.n > 200 ? 200 : d->s.n), d->s.p);
    return 1;
}

/* One item: parse, check the key's deployments, submit, record the outcome. */
static void one_item(cf_serve_events *e, const cf_serve_key *key, cf_prepare_scratch *ps,
                     batch *b, long index, const char *s, size_t n)
{
    cf_jsonl_doc doc = CF_JSONL_DOC_INIT;
    cf_event_in in;
    cf_err err;
    cf_verrors v;
    char id[CF_MAX_ID_BYTES + 1] = "";
    int rc = cf_jsonl_parse(s, n, e->unknown_to_metadata, &doc, &in, &err);
    if (b->gave_up) {
        refuse(e, b, index, client_id(&in, &doc, id), 429, "not tried: the buffer is full");
        cf_jsonl_doc_free(&doc);
        return;
    }
    char denied[300];
    if (rc == 0 && forbidden(key, &in, denied, sizeof denied)) {
        refuse(e, b, index, client_id(&in, &doc, id), 403, denied);
        cf_jsonl_doc_free(&doc);
        return;
    }
    if (rc == 0)
        rc = cf_ingest_submit(e->g, &in, ps, 0, NULL, id, &v, &err);
    if (rc == 0) {
        cf_buf_str(&b->ids, b->accepted ? "," : "");
        cf_buf_json_string_lossy(&b->ids, id, strlen(id));
        if (b->eager)
            item_entry(b, index, id, 200, NULL);
        else
            b->id_end[b->accepted] = b->ids.n;
        if (++b->accepted == BACKFILL && !b->eager)
            backfill(b);
    } else {
        int status = status_of(err.code);
        id[0] = '\0'; /* submit's id for it was never stored: only the client's goes back */
        refuse(e, b, index, client_id(&in, &doc, id), status, err.msg);
        b->gave_up = status == 429 || status == 503;
    }
    cf_jsonl_doc_free(&doc);
}

static void answer(const batch *b, long nitems, cf_serve_resp *r)
{
    char head[96];
    if (b->rejected == 0) {
        r->status = 200;
        snprintf(head, sizeof head, "{\"accepted\":%ld,\"ids\":[", b->accepted);
        cf_buf_str(&r->body, head);
        cf_buf_append(&r->body, b->ids.p, b->ids.n);
        cf_buf_str(&r->body, "]}\n");
        return;
    }
    r->status = b->accepted ? 207 : b->worst;
    if (b->worst == 429 || b->worst == 503)
        r->retry_after = 1;
    cf_buf_str(&r->body, "{");
    if (!b->accepted) {
        cf_buf_str(&r->body, "\"error\":");
        char msg[480];
        snprintf(msg, sizeof msg, "%s%s", nitems > 1 ? "no event accepted; " : "",
                 b->first_error);
        cf_buf_json_string_lossy(&r->body, msg, strlen(msg));
        cf_buf_putc(&r->body, ',');
    }
    snprintf(head, sizeof head, "\"accepted\":%ld,\"rejected\":%ld,\"items\":[", b->accepted,
             b->rejected);
    cf_buf_str(&r->body, head);
    cf_buf_append(&r->body, b->items.p, b->items.n);
    cf_buf_str(&r->body, "]}\n");
}

void cf_serve_events_post(void *ud, const cf_serve_req *req, cf_serve_resp *r)
{
    cf_serve_events *e = ud;
    cf_err err;
    size_t *spans = NULL;
    int ndjson = strcmp(req->media_type, "application/x-ndjson") == 0;
    long n = cf_serve_split(req->body, req->body_len, ndjson, &spans, &err);
    if (n < 0) {
        cf_serve_error(r, err.code == CF_EINVAL ? 400 : 500, "%s", err.msg);
        return;
    }
    if (n == 0) {
        cf_serve_error(r, 400, "the body holds no events");
        return;
    }
    cf_prepare_scratch *ps = cf_serve_events_scratch(e);
    if (!ps) {
        free(spans);
        cf_serve_error(r, 500, "out of memory");
        return;
    }
    batch b;
    memset(&b, 0, sizeof b);
    for (long i = 0; i < n; i++)
        one_item(e, req->key, ps, &b, i, req->body + spans[2 * i], spans[2 * i + 1]);
    free(spans);
    cf_serve_metrics_events(e->m, (uint64_t)b.accepted);
    if (cf_buf_failed(&b.ids) || cf_buf_failed(&b.items))
        cf_serve_error(r, 500, "out of memory writing the response (%ld events accepted)",
                       b.accepted);
    else
        answer(&b, n, r);
    cf_buf_free(&b.ids);
    cf_buf_free(&b.items);
}
