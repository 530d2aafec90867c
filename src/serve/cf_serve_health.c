/* GET /healthz, /readyz, /metrics (cf_serve_metrics.h). */
#include <stdio.h>

#include "crucible/serve/cf_serve.h"
#include "crucible/serve/cf_serve_metrics.h"
#include "crucible/serve/cf_serve_ready.h"

void cf_serve_healthz(void *ud, const cf_serve_req *req, cf_serve_resp *r)
{
    (void)ud;
    (void)req;
    r->status = 200;
    cf_buf_str(&r->body, "{\"status\":\"ok\"}\n");
}

void cf_serve_readyz(void *ud, const cf_serve_req *req, cf_serve_resp *r)
{
    (void)req;
    const cf_serve_status *st = ud;
    cf_ingest_stats s;
    cf_ingest_stats_get(st->g, &s);
    size_t depth = s.depth + s.inflight;
    if (s.failing) {
        r->retry_after = 1;
        cf_serve_error(r, 503, "not ready: writes to the store are failing: %s", s.last_error);
        return;
    }
    if (s.depth >= s.capacity) {
        r->retry_after = 1;
        cf_serve_error(r, 503, "not ready: the buffer is full (%zu of %zu events)", depth,
                       s.capacity);
        return;
    }
    char why[600];
    if (st->ready && !cf_serve_ready_check(st->ready, why, sizeof why)) {
        r->retry_after = 1;
        cf_serve_error(r, 503, "not ready: the store does not answer: %s", why);
        return;
    }
    char body[160];
    snprintf(body, sizeof body,
             "{\"status\":\"ready\",\"buffer_depth\":%zu,\"buffer_capacity\":%zu}\n", depth,
             s.capacity);
    r->status = 200;
    cf_buf_str(&r->body, body);
}

void cf_serve_metrics_get(void *ud, const cf_serve_req *req, cf_serve_resp *r)
{
    (void)req;
    const cf_serve_status *st = ud;
    r->status = 200;
    r->content_type = "text/plain; version=0.0.4; charset=utf-8";
    if (st->srv) {
        char line[200];
        snprintf(line, sizeof line,
                 "# HELP crucible_http_requests_in_flight Requests started and not finished "
                 "(this one included).\n# TYPE crucible_http_requests_in_flight gauge\n"
                 "crucible_http_requests_in_flight %u\n",
                 cf_serve_inflight(st->srv));
        cf_buf_str(&r->body, line);
    }
    if (cf_serve_metrics_render(st->m, st->g, st->san, &r->body))
        cf_serve_error(r, 500, "out of memory writing the metrics");
}
