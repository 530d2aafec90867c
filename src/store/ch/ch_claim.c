/*
 * ClickHouse backend: export claims. No transactions and no unique keys,
 * so a row's claim is a version in curated_export_claims (a
 * ReplacingMergeTree keyed by deployment, row and claim token, read FINAL)
 * and the protocol is the workflow lease's (ch_runs.c: Fischer's timed
 * mutual exclusion), applied to every row at once. With S =
 * lease_settle_ms (URL parameter, default 2000):
 *  1. c = monotonic clock, now = wall clock. One INSERT ... SELECT writes
 *     my claim (withdrawn 0, until c->until) for every row of the
 *     deployment that is to export (not exported, unless include_exported;
 *     oldest first, at most limit) and that no live claim holds (not
 *     withdrawn, until > now). w = monotonic clock once it returned. If
 *     w - c > S/2 (my check may be stale): withdraw all mine, and fail
 *     saying so.
 *  2. Wait until w + S, then withdraw my claim on every row that another
 *     live claim with a smaller token also holds: per row, the smallest
 *     token wins. What remains mine is claimed.
 * Withdrawing writes a newer version of my claim rows with withdrawn 1
 * (server-side, INSERT ... SELECT); releasing is withdrawing all of them.
 * The argument that two claims never both keep a row is ch_runs.c's, row by
 * row; its assumptions are too: one server (not Distributed or replicated
 * tables), clocks running at the same rate, and the claiming statement
 * finishing within S/2 (a large export on a slow server needs a larger
 * lease_settle_ms; it is told so rather than claiming nothing silently).
 * A claim not released stops counting at its until (the process died).
 */
#include "ch_int.h"

#include <string.h>
#include <time.h>

static int exec_buf(ch_store *s, cf_buf *q, const char *what, cf_err *err)
{
    int rc = cf_buf_failed(q) ? cf_fail(err, CF_ENOMEM, "out of memory %s", what)
                              : ch_exec(s, q->p, q->n, what, err);
    cf_buf_free(q);
    return rc;
}

/* " deployment_id = 'd'" (after a WHERE or an AND) */
static void in_deployment(cf_buf *q, cf_str d)
{
    cf_buf_str(q, " deployment_id = ");
    ch_quote(q, d);
}

/* Step 1: my claim on the free rows to export, at version ver. */
static int claim_free_rows(ch_store *s, const cf_claim *c, int64_t now, uint64_t ver,
                           cf_err *err)
{
    cf_buf q = CF_BUF_INIT;
    cf_buf_str(&q, "INSERT INTO curated_export_claims (deployment_id, curated_id, claim_token,"
                   " claimed_until, withdrawn, version) SELECT ");
    ch_quote(&q, c->deployment_id);
    cf_buf_str(&q, ", id, ");
    ch_quote(&q, c->token);
    cf_buf_str(&q, ", ");
    cf_buf_int(&q, c->until);
    cf_buf_str(&q, ", 0, ");
    cf_buf_int(&q, (int64_t)ver);
    cf_buf_str(&q, " FROM (SELECT id, min(inserted_at) AS t, min(seq) AS n, max(exported) AS e"
                   " FROM curated_examples WHERE");
    in_deployment(&q, c->deployment_id);
    cf_buf_str(&q, " GROUP BY id) WHERE id NOT IN (SELECT curated_id FROM"
                   " curated_export_claims FINAL WHERE");
    in_deployment(&q, c->deployment_id);
    cf_buf_str(&q, " AND withdrawn = 0 AND claimed_until > ");
    cf_buf_int(&q, now);
    cf_buf_putc(&q, ')');
    if (!c->include_exported) {
        cf_buf_str(&q, " AND e = 0 AND id NOT IN (SELECT curated_id FROM curated_export_marks"
                       " WHERE");
        in_deployment(&q, c->deployment_id);
        cf_buf_putc(&q, ')');
    }
    cf_buf_str(&q, " ORDER BY t, n LIMIT ");
    cf_buf_int(&q, c->limit < 0 ? INT64_MAX : c->limit);
    return exec_buf(s, &q, "claiming rows to export", err);
}

/* Withdraws my live claims: all of them, or (lost_since != CF_NO_TIME)
 * those on rows that a live claim with a smaller token also holds (live:
 * not withdrawn, until after lost_since). */
static int withdraw(ch_store *s, cf_str d, cf_str token, int64_t lost_since, cf_err *err)
{
    cf_buf q = CF_BUF_INIT;
    cf_buf_str(&q, "INSERT INTO curated_export_claims (deployment_id, curated_id, claim_token,"
                   " claimed_until, withdrawn, version) SELECT deployment_id, curated_id,"
                   " claim_token, claimed_until, 1, version + 1"
                   " FROM curated_export_claims FINAL WHERE");
    in_deployment(&q, d);
    cf_buf_str(&q, " AND withdrawn = 0 AND claim_token = ");
    ch_quote(&q, token);
    if (lost_since != CF_NO_TIME) {
        cf_buf_str(&q, " AND curated_id IN (SELECT curated_id FROM curated_export_claims FINAL"
                       " WHERE");
        in_deployment(&q, d);
        cf_buf_str(&q, " AND withdrawn = 0 AND claimed_until > ");
        cf_buf_int(&q, lost_since);
        cf_buf_str(&q, " AND claim_token < ");
        ch_quote(&q, token);
        cf_buf_putc(&q, ')');
    }
    return exec_buf(s, &q, "withdrawing an export claim", err);
}

static int count_mine(ch_store *s, cf_str d, cf_str token, int64_t *n, cf_err *err)
{
    cf_buf q = CF_BUF_INIT;
    cf_buf_str(&q, "SELECT count() FROM curated_export_claims FINAL WHERE");
    in_deployment(&q, d);
    cf_buf_str(&q, " AND withdrawn = 0 AND claim_token = ");
    ch_quote(&q, token);
    int rc = ch_query_int(s, &q, "counting claimed rows", n, err);
    cf_buf_free(&q);
    return rc;
}

static void sleep_until_ns(int64_t deadline_ns)
{
    for (int64_t now = cf_mono_ns(); now < deadline_ns; now = cf_mono_ns()) {
        int64_t d = deadline_ns - now;
        struct timespec ts = {(time_t)(d / 1000000000), (long)(d % 1000000000)};
        nanosleep(&ts, NULL);
    }
}

int ch_claim_curated(cf_store *base, const cf_claim *c, int64_t *claimed, cf_err *err)
{
    ch_store *s = (ch_store *)base;
    *claimed = 0;
    if (!c->deployment_id.p || !c->token.p || c->token.n == 0)
        return cf_fail(err, CF_EINVAL, "an export claim needs a deployment_id and a token");
    int64_t check_ns = cf_mono_ns(), now = cf_now_us();
    if (claim_free_rows(s, c, now, ch_next_seq(), err)) {
        cf_err ignored;
        withdraw(s, c->deployment_id, c->token, CF_NO_TIME, &ignored);
        return -1;
    }
    int64_t settle_ns = (int64_t)s->lease_settle_ms * 1000000;
    int64_t written_ns = cf_mono_ns();
    if (ch_lease_slow(check_ns, written_ns, settle_ns)) {
        if (withdraw(s, c->deployment_id, c->token, CF_NO_TIME, err))
            return -1;
        return cf_fail(err, CF_EDB,
                       "claiming the rows to export took %lld ms, more than half of"
                       " lease_settle_ms (%ld ms), so another export may hold some of them;"
                       " nothing was exported; try again, or raise lease_settle_ms in the"
                       " ClickHouse URL",
                       (long long)((written_ns - check_ns) / 1000000), s->lease_settle_ms);
    }
    sleep_until_ns(written_ns + settle_ns);
    if (withdraw(s, c->deployment_id, c->token, now, err) ||
        count_mine(s, c->deployment_id, c->token, claimed, err)) {
        cf_err ignored;
        withdraw(s, c->deployment_id, c->token, CF_NO_TIME, &ignored);
        return -1;
    }
    return 0;
}

int ch_release_curated_claim(cf_store *base, cf_str deployment_id, cf_str token, cf_err *err)
{
    if (!deployment_id.p || !token.p)
        return cf_fail(err, CF_EINVAL, "an export claim needs a deployment_id and a token");
    return withdraw((ch_store *)base, deployment_id, token, CF_NO_TIME, err);
}
