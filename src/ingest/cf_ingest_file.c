/* Bulk ingestion of JSON lines (see cf_ingest_file.h). */
#include "crucible/ingest/cf_ingest_file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crucible/ingest/cf_jsonl.h"

#define CHUNK (1 << 20)

static void pass_reports(cf_ingest *g, const cf_bulk_opts *o)
{
    if (!cf_ingest_reports_pending(g))
        return;
    cf_ingest_report *r = cf_ingest_take_reports(g);
    for (cf_ingest_report *x = r; x; x = x->next)
        if (o->on_report)
            o->on_report(o->ud, x);
    cf_ingest_reports_free(r);
}

static int is_blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
            return 0;
    return 1;
}

/* Bulk ingestion waits for a slow database (see cf_ingest_submit); without
 * a stop flag it waits until writes fail. */
static volatile sig_atomic_t never;

/* One line: parse, validate, submit. Returns -1 only when the pipeline
 * refuses everything (closing). */
static int one_line(cf_ingest *g, cf_prepare_scratch *ps, const cf_bulk_opts *o,
                    cf_bulk_result *res, const char *s, size_t n, cf_err *err)
{
    if (n && s[n - 1] == '\r')
        n--;
    if (is_blank(s, n))
        return 0;
    cf_jsonl_doc doc = CF_JSONL_DOC_INIT;
    cf_event_in in;
    cf_err e;
    char id[CF_MAX_ID_BYTES + 1];
    cf_verrors v;
    int rc = cf_jsonl_parse(s, n, o->unknown_to_metadata, &doc, &in, &e);
    if (rc == 0)
        rc = cf_ingest_submit(g, &in, ps, res->lines, o->stop ? o->stop : &never, id, &v, &e);
    cf_jsonl_doc_free(&doc);
    if (rc == 0) {
        res->accepted++;
        return 0;
    }
    if (e.code == CF_ECLOSED || e.code == CF_ENOMEM) {
        *err = e;
        return -1;
    }
    res->rejected++;
    if (o->on_reject)
        o->on_reject(o->ud, res->lines, s, n, e.msg);
    return 0;
}

int cf_ingest_fd(cf_ingest *g, int fd, const cf_bulk_opts *o, cf_bulk_result *res, cf_err *err)
{
    memset(res, 0, sizeof *res);
    cf_prepare_scratch *ps = cf_prepare_scratch_new();
    cf_buf buf = CF_BUF_INIT;
    if (!ps || cf_buf_reserve(&buf, CHUNK)) {
        cf_prepare_scratch_free(ps);
        cf_buf_free(&buf);
        return cf_fail(err, CF_ENOMEM, "out of memory reading input");
    }
    size_t max_line = o->max_line ? o->max_line : (size_t)64 << 20;
    size_t start = 0;     /* first byte of the current line in buf */
    size_t scanned = 0;   /* bytes of it already searched for '\n' */
    int skipping = 0;     /* inside an over-long line */
    int rc = 0, eof = 0;
    while (!eof) {
        if (o->stop && *o->stop) {
            res->interrupted = 1;
            break;
        }
        /* keep the unfinished line at the front, then read more */
        if (start > 0) {
            memmove(buf.p, buf.p + start, buf.n - start);
            buf.n -= start;
            start = 0;
        }
        if (cf_buf_reserve(&buf, CHUNK)) {
            rc = cf_fail(err, CF_ENOMEM, "out of memory reading input");
            break;
        }
        ssize_t got = read(fd, buf.p + buf.n, CHUNK);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            rc = cf_fail(err, CF_EIO, "reading input: %s", strerror(errno));
            break;
        }
        if (got == 0)
            eof = 1;
        buf.n += (size_t)got;
        res->bytes += (uint64_t)got;
        for (;;) {
            char *nl = memchr(buf.p + start + scanned, '\n', buf.n - start - scanned);
            size_t len;
            if (nl) {
                len = (size_t)(nl - (buf.p + start));
            } else if (eof && buf.n > start) {
                len = buf.n - start; /* the last line has no newline */
            } else {
                scanned = buf.n - start;
                if (!skipping && scanned > max_line) {
                    skipping = 1;
                    res->lines++;
                    res->rejected++;
                    if (o->on_reject) {
                        char why[120];
                        snprintf(why, sizeof why, "line longer than %zu bytes", max_line);
                        o->on_reject(o->ud, res->lines, buf.p + start,
                                     scanned < 200 ? scanned : 200, why);
                    }
                }
                if (skipping) {
                    start = buf.n;
                    scanned = 0;
                }
                break;
            }
            if (skipping) {
                skipping = 0;
            } else {
                res->lines++;
                if (len > max_line) {
                    res->rejected++;
                    if (o->on_reject) {
                        char why[120];
                        snprintf(why, sizeof why, "line longer than %zu bytes", max_line);
                        o->on_reject(o->ud, res->lines, buf.p + start, len < 200 ? len : 200, why);
                    }
                } else if (one_line(g, ps, o, res, buf.p + start, len, err)) {
                    rc = -1;
                    break;
                }
            }
            start += len + (nl ? 1 : 0);
            scanned = 0;
            if (!nl)
                break;
        }
        if (rc)
            break;
        pass_reports(g, o);
    }
    cf_prepare_scratch_free(ps);
    cf_buf_free(&buf);
    cf_err ferr;
    int frc = cf_ingest_flush(g, -1, &ferr);
    /* writes failing: keep waiting while they are retried, so the summary
     * covers every line (interrupting stops the wait) */
    while (frc && !(o->stop && *o->stop)) {
        pass_reports(g, o);
        usleep(50000);
        frc = cf_ingest_flush(g, -1, &ferr);
    }
    pass_reports(g, o);
    if (frc && rc == 0) {
        *err = ferr;
        rc = -1;
    }
    return rc;
}
