/* Farthest selection on a thread of its own (see cf_diverse_job.h). */
#include "crucible/curate/cf_diverse_job.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "crucible/core/cf_shutdown.h"

struct cf_diverse_job {
    pthread_t th;
    int joined, waited;
    char *url;
    cf_store_opts so;
    cf_query q;
    char *deployment; /* q.deployment_id's bytes */
    cf_embedder *e;   /* the copy, owned */
    cf_diverse_opts o;
    /* the outcome, read after the join */
    int rc;
    cf_err err;
    cf_topk *top;
    cf_diverse_info info;
};

static void *run(void *arg)
{
    cf_diverse_job *j = arg;
    cf_store *s = NULL;
    j->rc = cf_store_open(j->url, &j->so, &s, &j->err);
    if (j->rc == 0)
        j->rc = cf_diverse_farthest(s, &j->q, j->e, &j->o, &j->top, &j->info, &j->err);
    cf_store_close(s);
    return NULL;
}

/* A second connection to url sees the database the first one does. */
static int shareable(const char *url)
{
    cf_store_url u;
    cf_err err;
    return cf_store_parse_url(url, &u, &err) == 0 && !cf_store_url_private(&u);
}

/* Only the filters a curation scope has. */
static int plain_scope(const cf_query *q)
{
    return !q->id.p && !q->event_id.p && !q->type.p && !q->claim.p && !q->n_with_signal_types
           && !q->include_signals && q->limit < 0 && q->offset == 0;
}

static void job_free(cf_diverse_job *j)
{
    cf_embedder_free(j->e);
    cf_topk_free(j->top);
    free(j->url);
    free(j->deployment);
    free(j);
}

int cf_diverse_farthest_start(const char *url, const cf_store_opts *so, const cf_query *q,
                              const cf_embedder *e, const cf_diverse_opts *o,
                              cf_diverse_job **out, cf_err *err)
{
    *out = NULL;
    if (!e->vt->clone || !url || !shareable(url) || !plain_scope(q))
        return 0;
    cf_diverse_job *j = calloc(1, sizeof *j);
    if (!j)
        return cf_fail(err, CF_ENOMEM, "out of memory starting diverse selection");
    j->url = strdup(url);
    j->so = so ? *so : (cf_store_opts){0};
    j->q = *q;
    j->o = *o;
    if (q->deployment_id.p) {
        j->deployment = malloc(q->deployment_id.n + 1);
        if (j->deployment) {
            memcpy(j->deployment, q->deployment_id.p, q->deployment_id.n);
            j->deployment[q->deployment_id.n] = '\0';
            j->q.deployment_id = (cf_str){j->deployment, q->deployment_id.n};
        }
    }
    if (!j->url || (q->deployment_id.p && !j->deployment)) {
        job_free(j);
        return cf_fail(err, CF_ENOMEM, "out of memory starting diverse selection");
    }
    if (e->vt->clone(e, &j->e, err)) {
        job_free(j);
        return -1;
    }
    if (cf_thread_start(&j->th, run, j)) {
        job_free(j);
        return cf_fail(err, CF_EIO, "cannot start a thread for diverse selection");
    }
    *out = j;
    return 1;
}

static void join(cf_diverse_job *j)
{
    if (!j->joined) {
        pthread_join(j->th, NULL);
        j->joined = 1;
    }
}

int cf_diverse_job_wait(cf_diverse_job *j, cf_topk **out, cf_diverse_info *info, cf_err *err)
{
    *out = NULL;
    if (j->waited)
        return cf_fail(err, CF_EINVAL, "this diverse selection was already waited for");
    join(j);
    j->waited = 1;
    *info = j->info;
    if (j->rc) {
        *err = j->err;
        return -1;
    }
    *out = j->top;
    j->top = NULL;
    return 0;
}

void cf_diverse_job_free(cf_diverse_job *j)
{
    if (!j)
        return;
    join(j);
    job_free(j);
}
