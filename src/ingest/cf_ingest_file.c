/* Bulk ingestion of JSON lines (see cf_ingest_file.h). */
#include "crucible/ingest/cf_ingest_file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crucible/ingest/cf_jsonl.h"
#include "crucible/ingest/cf_line_id.h"

#define CHUNK (1 << 20)
#define BOM "\xEF\xBB\xBF"

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

/* A parsed line without an id gets the one derived from the source, its
 * number and its bytes (lids NULL: none, the pipeline makes a UUIDv7);
 * id (37 bytes) holds it. */
static int derive_id(cf_line_ids *lids, uint64_t line, const char *s, size_t n,
                     cf_event_in *in, char *id, cf_err *err)
{
    if (!lids || in->v[CF_F_ID].type != CF_V_ABSENT)
        return 0;
    if (cf_line_id(lids, line, s, n, id, err))
        return -1;
    in->v[CF_F_ID].type = CF_V_STRING;
    in->v[CF_F_ID].s = (cf_str){id, 36};
    return 0;
}

/* One line: parse, validate, submit. Returns -1 only when the pipeline
 * refuses everything (closing). */
static int one_line(cf_ingest *g, cf_prepare_scratch *ps, cf_line_ids *lids,
                    const cf_bulk_opts *o, cf_bulk_result *res, const char *s, size_t n,
                    cf_err *err)
{
    if (n && s[n - 1] == '\r')
        n--;
    if (res->lines == 1 && n >= 3 && memcmp(s, BOM, 3) == 0) {
        s += 3;
        n -= 3;
    }
    if (is_blank(s, n))
        return 0;
    if (n >= 3 && memcmp(s, BOM, 3) == 0) {
        res->rejected++;
        if (o->on_reject)
            o->on_reject(o->ud, res->lines, s, n,
                         "the line starts with a UTF-8 byte order mark (allowed only at the "
                         "start of the input)");
        return 0;
    }
    cf_jsonl_doc doc = CF_JSONL_DOC_INIT;
    cf_event_in in;
    cf_err e;
    char id[CF_MAX_ID_BYTES + 1], derived[37];
    cf_verrors v;
    int rc = cf_jsonl_parse(s, n, o->unknown_to_metadata, &doc, &in, &e);
    if (rc == 0 && derive_id(lids, res->lines, s, n, &in, derived, err)) {
        cf_jsonl_doc_free(&doc);
        return -1;
    }
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
    if (e.code == CF_EFULL)
        res->full++;
    if (o->on_reject)
        o->on_reject(o->ud, res->lines, s, n, e.msg);
    return 0;
}

/* One pass over an input: the buffer and where its current line starts. */
typedef struct reader {
    cf_ingest *g;
    cf_prepare_scratch *ps;
    cf_line_ids *lids; /* derived ids (o->source), or NULL */
    const cf_bulk_opts *o;
    cf_bulk_result *res;
    cf_err *err;
    cf_buf buf;
    size_t max_line;
    size_t start;   /* first byte of the current line in buf */
    size_t scanned; /* bytes of it already searched for '\n' */
    int skipping;   /* inside an over-long line */
    int eof;
} reader;

/* A line over max_line: rejected, with its first 200 bytes shown. */
static void reject_long(reader *r, size_t len)
{
    r->res->rejected++;
    if (r->o->on_reject) {
        char why[120];
        snprintf(why, sizeof why, "line longer than %zu bytes", r->max_line);
        r->o->on_reject(r->o->ud, r->res->lines, r->buf.p + r->start, len < 200 ? len : 200, why);
    }
}

/* Keeps the unfinished line at the front, then reads more: 0 when read
 * (or at the end), 1 when interrupted by a signal, -1 on an error. */
static int fill(reader *r, int fd)
{
    if (r->start > 0) {
        memmove(r->buf.p, r->buf.p + r->start, r->buf.n - r->start);
        r->buf.n -= r->start;
        r->start = 0;
    }
    if (cf_buf_reserve(&r->buf, CHUNK))
        return cf_fail(r->err, CF_ENOMEM, "out of memory reading input");
    ssize_t got = read(fd, r->buf.p + r->buf.n, CHUNK);
    if (got < 0) {
        if (errno == EINTR)
            return 1;
        return cf_fail(r->err, CF_EIO, "reading input: %s", strerror(errno));
    }
    if (got == 0)
        r->eof = 1;
    r->buf.n += (size_t)got;
    r->res->bytes += (uint64_t)got;
    return 0;
}

/* No newline in what is buffered: remember how far was searched, and
 * drop the text of a line that is already too long. */
static void partial_line(reader *r)
{
    r->scanned = r->buf.n - r->start;
    if (!r->skipping && r->scanned > r->max_line) {
        r->skipping = 1;
        r->res->lines++;
        reject_long(r, r->scanned);
    }
    if (r->skipping) {
        r->start = r->buf.n;
        r->scanned = 0;
    }
}

/* Every complete line in the buffer (and the last one at the end). */
static int scan_lines(reader *r)
{
    for (;;) {
        char *nl = memchr(r->buf.p + r->start + r->scanned, '\n',
                          r->buf.n - r->start - r->scanned);
        size_t len;
        if (nl) {
            len = (size_t)(nl - (r->buf.p + r->start));
        } else if (r->eof && r->buf.n > r->start) {
            len = r->buf.n - r->start; /* the last line has no newline */
        } else {
            partial_line(r);
            return 0;
        }
        if (r->skipping) {
            r->skipping = 0;
        } else {
            r->res->lines++;
            if (len > r->max_line)
                reject_long(r, len);
            else if (one_line(r->g, r->ps, r->lids, r->o, r->res, r->buf.p + r->start, len,
                              r->err))
                return -1;
        }
        r->start += len + (nl ? 1 : 0);
        r->scanned = 0;
        if (!nl)
            return 0;
    }
}

/* Waits for everything submitted to be written, passing reports on. */
static int drain(cf_ingest *g, const cf_bulk_opts *o, int rc, cf_err *err)
{
    cf_err ferr;
    int frc = cf_ingest_flush(g, -1, &ferr);
    /* writes failing: keep waiting while they are retried, so the summary
     * covers every line (interrupting stops the wait; the bound ends it) */
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

int cf_ingest_fd(cf_ingest *g, int fd, const cf_bulk_opts *o, cf_bulk_result *res, cf_err *err)
{
    memset(res, 0, sizeof *res);
    reader r = {g, cf_prepare_scratch_new(), NULL, o, res, err, CF_BUF_INIT, 0, 0, 0, 0, 0};
    if (o->source && !(r.lids = cf_line_ids_new(o->source, o->source_n, err))) {
        cf_prepare_scratch_free(r.ps);
        return -1;
    }
    if (!r.ps || cf_buf_reserve(&r.buf, CHUNK)) {
        cf_prepare_scratch_free(r.ps);
        cf_line_ids_free(r.lids);
        cf_buf_free(&r.buf);
        return cf_fail(err, CF_ENOMEM, "out of memory reading input");
    }
    r.max_line = o->max_line ? o->max_line : (size_t)64 << 20;
    cf_ingest_stats before, after;
    cf_ingest_stats_get(g, &before);
    cf_ingest_set_bounded(g, 1);
    int rc = 0;
    while (!r.eof) {
        if (o->stop && *o->stop) {
            res->interrupted = 1;
            break;
        }
        int frc = fill(&r, fd);
        if (frc == 1)
            continue;
        if (frc || scan_lines(&r)) {
            rc = -1;
            break;
        }
        pass_reports(g, o);
    }
    cf_prepare_scratch_free(r.ps);
    cf_line_ids_free(r.lids);
    cf_buf_free(&r.buf);
    rc = drain(g, o, rc, err);
    cf_ingest_set_bounded(g, 0);
    cf_ingest_stats_get(g, &after);
    res->unwritten = after.timed_out - before.timed_out;
    res->lost = after.lost - before.lost;
    res->duplicates = after.duplicates - before.duplicates;
    return rc;
}
