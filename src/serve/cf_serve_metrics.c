/* Counters of `serve` and their Prometheus text (cf_serve_metrics.h). */
#include "crucible/serve/cf_serve_metrics.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The statuses the server answers with; anything else counts as "other". */
static const int STATUSES[] = {200, 204, 207, 400, 401, 403, 404, 405,
                              408, 409, 413, 415, 429, 500, 503};
#define NSTATUS (sizeof STATUSES / sizeof STATUSES[0])

/* Flush latency buckets, milliseconds (rendered in seconds). */
static const double BUCKETS_MS[] = {1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000};
#define NBUCKET (sizeof BUCKETS_MS / sizeof BUCKETS_MS[0])

static const char *const REASONS[CF_REJECT_COUNT] = {"invalid", "buffer_full", "shutting_down",
                                                     "error", "forbidden"};
static const char *const SIGNAL_REASONS[CF_SIGNAL_REASONS] = {"invalid", "not_found", "error",
                                                               "forbidden"};

struct cf_serve_metrics {
    const char *const *names;
    size_t nroutes;
    atomic_uint_fast64_t accepted;
    atomic_uint_fast64_t rejected[CF_REJECT_COUNT];
    atomic_uint_fast64_t flush_buckets[NBUCKET + 1]; /* the last is +Inf */
    atomic_uint_fast64_t flush_count;
    atomic_uint_fast64_t signals_accepted;
    atomic_uint_fast64_t signals_rejected[CF_SIGNAL_REASONS];
    atomic_uint_fast64_t scores_accepted;
    atomic_uint_fast64_t scores_rejected[CF_SIGNAL_REASONS];
    atomic_uint_fast64_t flush_sum_us;
    atomic_uint_fast64_t otlp[CF_OTLP_COUNTS];
    atomic_uint_fast64_t requests[]; /* (nroutes + 1) x (NSTATUS + 1) */
};

cf_serve_metrics *cf_serve_metrics_new(const char *const *route_names, size_t nroutes)
{
    size_t cells = (nroutes + 1) * (NSTATUS + 1);
    cf_serve_metrics *m = calloc(1, sizeof *m + cells * sizeof m->requests[0]);
    if (!m)
        return NULL;
    m->names = route_names;
    m->nroutes = nroutes;
    return m;
}

void cf_serve_metrics_free(cf_serve_metrics *m)
{
    free(m);
}

static size_t status_slot(int status)
{
    for (size_t i = 0; i < NSTATUS; i++)
        if (STATUSES[i] == status)
            return i;
    return NSTATUS;
}

void cf_serve_metrics_request(cf_serve_metrics *m, int route, int status)
{
    if (!m)
        return;
    size_t r = route < 0 || (size_t)route >= m->nroutes ? m->nroutes : (size_t)route;
    atomic_fetch_add(&m->requests[r * (NSTATUS + 1) + status_slot(status)], 1);
}

void cf_serve_metrics_events(cf_serve_metrics *m, uint64_t accepted)
{
    atomic_fetch_add(&m->accepted, accepted);
}

void cf_serve_metrics_reject(cf_serve_metrics *m, cf_reject_reason why, uint64_t n)
{
    atomic_fetch_add(&m->rejected[why], n);
}

void cf_serve_metrics_flush(cf_serve_metrics *m, double ms)
{
    size_t b = 0;
    while (b < NBUCKET && ms > BUCKETS_MS[b])
        b++;
    atomic_fetch_add(&m->flush_buckets[b], 1);
    atomic_fetch_add(&m->flush_count, 1);
    atomic_fetch_add(&m->flush_sum_us, (uint64_t)(ms > 0 ? ms * 1000.0 : 0));
}

void cf_serve_metrics_signals(cf_serve_metrics *m, uint64_t accepted,
                              const uint64_t rejected[CF_SIGNAL_REASONS])
{
    atomic_fetch_add(&m->signals_accepted, accepted);
    for (int i = 0; i < CF_SIGNAL_REASONS; i++)
        atomic_fetch_add(&m->signals_rejected[i], rejected[i]);
}

void cf_serve_metrics_scores(cf_serve_metrics *m, uint64_t accepted,
                             const uint64_t rejected[CF_SIGNAL_REASONS])
{
    atomic_fetch_add(&m->scores_accepted, accepted);
    for (int i = 0; i < CF_SIGNAL_REASONS; i++)
        atomic_fetch_add(&m->scores_rejected[i], rejected[i]);
}

void cf_serve_metrics_otlp(cf_serve_metrics *m, int which, uint64_t n)
{
    atomic_fetch_add(&m->otlp[which], n);
}

static void line(cf_buf *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void line(cf_buf *out, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0)
        cf_buf_append(out, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

static void render_requests(cf_serve_metrics *m, cf_buf *out)
{
    line(out, "# HELP crucible_http_requests_total HTTP requests by route and status.\n"
              "# TYPE crucible_http_requests_total counter\n");
    for (size_t r = 0; r <= m->nroutes; r++) {
        for (size_t s = 0; s <= NSTATUS; s++) {
            uint64_t v = atomic_load(&m->requests[r * (NSTATUS + 1) + s]);
            if (!v)
                continue;
            char status[16];
            if (s < NSTATUS)
                snprintf(status, sizeof status, "%d", STATUSES[s]);
            else
                snprintf(status, sizeof status, "other");
            line(out, "crucible_http_requests_total{route=\"%s\",status=\"%s\"} %llu\n",
                 r < m->nroutes ? m->names[r] : "none", status, (unsigned long long)v);
        }
    }
}

/* crucible_<what>_accepted_total and crucible_<what>_rejected_total{reason}. */
static void render_feedback(cf_buf *out, const char *what, const char *title,
                            atomic_uint_fast64_t *accepted, atomic_uint_fast64_t *rejected)
{
    line(out, "# HELP crucible_%s_accepted_total %s recorded.\n"
              "# TYPE crucible_%s_accepted_total counter\n"
              "crucible_%s_accepted_total %llu\n",
         what, title, what, what, (unsigned long long)atomic_load(accepted));
    line(out, "# HELP crucible_%s_rejected_total %s refused, by reason.\n"
              "# TYPE crucible_%s_rejected_total counter\n",
         what, title, what);
    for (int i = 0; i < CF_SIGNAL_REASONS; i++)
        line(out, "crucible_%s_rejected_total{reason=\"%s\"} %llu\n", what, SIGNAL_REASONS[i],
             (unsigned long long)atomic_load(&rejected[i]));
}

static void render_events(cf_serve_metrics *m, cf_buf *out)
{
    line(out, "# HELP crucible_events_accepted_total Events accepted into the buffer.\n"
              "# TYPE crucible_events_accepted_total counter\n"
              "crucible_events_accepted_total %llu\n",
         (unsigned long long)atomic_load(&m->accepted));
    line(out, "# HELP crucible_events_rejected_total Events refused, by reason.\n"
              "# TYPE crucible_events_rejected_total counter\n");
    for (int i = 0; i < CF_REJECT_COUNT; i++)
        line(out, "crucible_events_rejected_total{reason=\"%s\"} %llu\n", REASONS[i],
             (unsigned long long)atomic_load(&m->rejected[i]));
    render_feedback(out, "signals", "Signals", &m->signals_accepted, m->signals_rejected);
    render_feedback(out, "scores", "Scores", &m->scores_accepted, m->scores_rejected);
}

static void render_otlp(cf_serve_metrics *m, cf_buf *out)
{
    line(out, "# HELP crucible_otlp_spans_ignored_total OTLP spans acknowledged and not stored "
              "(not model calls).\n"
              "# TYPE crucible_otlp_spans_ignored_total counter\n"
              "crucible_otlp_spans_ignored_total %llu\n",
         (unsigned long long)atomic_load(&m->otlp[CF_OTLP_SPANS_IGNORED]));
    line(out, "# HELP crucible_otlp_logs_joined_total GenAI log records joined to their span's event.\n"
              "# TYPE crucible_otlp_logs_joined_total counter\n"
              "crucible_otlp_logs_joined_total %llu\n",
         (unsigned long long)atomic_load(&m->otlp[CF_OTLP_LOGS_JOINED]));
    line(out, "# HELP crucible_otlp_logs_unjoined_total GenAI log records whose span never came "
              "within the join window, or came with its content already.\n"
              "# TYPE crucible_otlp_logs_unjoined_total counter\n"
              "crucible_otlp_logs_unjoined_total %llu\n",
         (unsigned long long)atomic_load(&m->otlp[CF_OTLP_LOGS_UNJOINED]));
    line(out, "# HELP crucible_otlp_logs_ignored_total OTLP log records that are not GenAI content.\n"
              "# TYPE crucible_otlp_logs_ignored_total counter\n"
              "crucible_otlp_logs_ignored_total %llu\n",
         (unsigned long long)atomic_load(&m->otlp[CF_OTLP_LOGS_IGNORED]));
    line(out, "# HELP crucible_langfuse_items_ignored_total Langfuse ingestion items "
              "acknowledged and not stored (spans, events, SDK logs, ...).\n"
              "# TYPE crucible_langfuse_items_ignored_total counter\n"
              "crucible_langfuse_items_ignored_total %llu\n",
         (unsigned long long)atomic_load(&m->otlp[CF_LANGFUSE_IGNORED]));
}

static void render_flush(cf_serve_metrics *m, cf_buf *out)
{
    line(out, "# HELP crucible_flush_duration_seconds Time to write one batch to the store.\n"
              "# TYPE crucible_flush_duration_seconds histogram\n");
    uint64_t cum = 0;
    for (size_t b = 0; b <= NBUCKET; b++) {
        cum += atomic_load(&m->flush_buckets[b]);
        if (b < NBUCKET)
            line(out, "crucible_flush_duration_seconds_bucket{le=\"%g\"} %llu\n",
                 BUCKETS_MS[b] / 1000.0, (unsigned long long)cum);
        else
            line(out, "crucible_flush_duration_seconds_bucket{le=\"+Inf\"} %llu\n",
                 (unsigned long long)cum);
    }
    line(out, "crucible_flush_duration_seconds_sum %.6f\ncrucible_flush_duration_seconds_count %llu\n",
         (double)atomic_load(&m->flush_sum_us) / 1e6,
         (unsigned long long)atomic_load(&m->flush_count));
}

static void render_pipeline(cf_ingest *g, const cf_sanitizer *san, cf_buf *out)
{
    cf_ingest_stats s;
    cf_ingest_stats_get(g, &s);
    line(out, "# HELP crucible_buffer_depth Events waiting in the buffer or being written.\n"
              "# TYPE crucible_buffer_depth gauge\ncrucible_buffer_depth %zu\n",
         s.depth + s.inflight);
    line(out, "# HELP crucible_buffer_capacity Events the buffer holds.\n"
              "# TYPE crucible_buffer_capacity gauge\ncrucible_buffer_capacity %zu\n",
         s.capacity);
    line(out, "# HELP crucible_events_written_total Events written to the store.\n"
              "# TYPE crucible_events_written_total counter\ncrucible_events_written_total %llu\n",
         (unsigned long long)s.flushed);
    line(out, "# HELP crucible_events_duplicate_total Events not written again: their id was "
              "already stored.\n"
              "# TYPE crucible_events_duplicate_total counter\ncrucible_events_duplicate_total %llu\n",
         (unsigned long long)s.duplicates);
    line(out, "# HELP crucible_store_errors_total Store failures, by kind: failed batch writes "
              "(retried), rows refused, events lost.\n"
              "# TYPE crucible_store_errors_total counter\n"
              "crucible_store_errors_total{kind=\"write_failed\"} %llu\n"
              "crucible_store_errors_total{kind=\"refused\"} %llu\n"
              "crucible_store_errors_total{kind=\"lost\"} %llu\n",
         (unsigned long long)s.retried, (unsigned long long)s.refused,
         (unsigned long long)s.lost);
    if (!san)
        return;
    size_t nk = cf_sanitizer_nkinds(san);
    if (nk > 96)
        nk = 96;
    uint64_t red[96];
    cf_ingest_redactions(g, red, nk);
    line(out, "# HELP crucible_sanitizer_redactions_total Redactions by entity.\n"
              "# TYPE crucible_sanitizer_redactions_total counter\n");
    /* kinds may share a name (several patterns of one entity): one series each */
    for (size_t k = 0; k < nk; k++) {
        const char *name = cf_sanitizer_kind_name(san, k);
        int seen = 0;
        for (size_t j = 0; j < k && !seen; j++)
            seen = strcmp(cf_sanitizer_kind_name(san, j), name) == 0;
        if (seen)
            continue;
        uint64_t sum = 0;
        for (size_t j = k; j < nk; j++)
            if (strcmp(cf_sanitizer_kind_name(san, j), name) == 0)
                sum += red[j];
        line(out, "crucible_sanitizer_redactions_total{entity=\"%s\"} %llu\n", name,
             (unsigned long long)sum);
    }
}

int cf_serve_metrics_render(cf_serve_metrics *m, cf_ingest *g, const cf_sanitizer *san,
                            cf_buf *out)
{
    render_requests(m, out);
    render_events(m, out);
    render_otlp(m, out);
    render_flush(m, out);
    if (g)
        render_pipeline(g, san, out);
    return cf_buf_failed(out) ? -1 : 0;
}
