/*
 * ClickHouse backend: the HTTP interface through the one HTTP client
 * (cf_http_conn: kept-alive connections, replies read as they arrive).
 * This file is the request plumbing: requests and their retries, value
 * escaping (18.16 has no query parameters), the TabSeparated reader.
 * Opening, the schema and settings are in ch_open.c, writes in ch_write.c,
 * reads in ch_read.c, scans in ch_scan.c, workflow runs in ch_runs.c.
 */
#include "ch_int.h"

#include <ctype.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- values into SQL text ------------------------------------------------- */

int ch_quote(cf_buf *b, cf_str s)
{
    static const char hex[] = "0123456789abcdef";
    if (!s.p)
        return cf_buf_str(b, "NULL");
    if (s.n > (SIZE_MAX - 2) / 4 || cf_buf_reserve(b, s.n * 4 + 2)) {
        b->oom = 1;
        return -1;
    }
    char *o = b->p + b->n;
    *o++ = '\'';
    for (size_t i = 0; i < s.n; i++) {
        unsigned char c = (unsigned char)s.p[i];
        if (c == '\\' || c == '\'') {
            *o++ = '\\';
            *o++ = (char)c;
        } else if (c < 0x20 || c == 0x7f) {
            *o++ = '\\';
            *o++ = 'x';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        } else {
            *o++ = (char)c;
        }
    }
    *o++ = '\'';
    b->n = (size_t)(o - b->p);
    return 0;
}

int ch_quote_list(cf_buf *b, const cf_str *ids, size_t n)
{
    cf_buf_putc(b, '(');
    for (size_t i = 0; i < n; i++) {
        if (i)
            cf_buf_putc(b, ',');
        ch_quote(b, ids[i]);
    }
    return cf_buf_putc(b, ')');
}

/* ---- JSONEachRow fields ----------------------------------------------------- */

void ch_json_key(cf_buf *b, const char *key, int first)
{
    cf_buf_putc(b, first ? '{' : ',');
    cf_buf_putc(b, '"');
    cf_buf_str(b, key);
    cf_buf_str(b, "\":");
}

void ch_json_str(cf_buf *b, const char *key, cf_str v)
{
    ch_json_key(b, key, 0);
    if (v.p)
        cf_buf_json_string(b, v.p, v.n);
    else
        cf_buf_str(b, "null");
}

void ch_json_int(cf_buf *b, const char *key, int64_t v)
{
    ch_json_key(b, key, 0);
    if (v == CF_NULL_INT)
        cf_buf_str(b, "null");
    else
        cf_buf_int(b, v);
}

void ch_json_bits(cf_buf *b, const char *key, double v)
{
    ch_json_key(b, key, 0);
    if (isnan(v)) {
        cf_buf_str(b, "null");
        return;
    }
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    char tmp[24];
    size_t k = sizeof tmp;
    do {
        tmp[--k] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    cf_buf_append(b, tmp + k, sizeof tmp - k);
}

int64_t ch_int(cf_str f)
{
    if (!f.p)
        return CF_NULL_INT;
    return strtoll(f.p, NULL, 10);
}

double ch_bits_double(cf_str f)
{
    if (!f.p)
        return NAN;
    uint64_t u = strtoull(f.p, NULL, 10);
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

uint64_t ch_next_seq(void)
{
    static _Atomic uint64_t last;
    uint64_t now = (uint64_t)cf_now_us(), cur = atomic_load(&last), next;
    do {
        next = cur + 1 > now ? cur + 1 : now;
    } while (!atomic_compare_exchange_weak(&last, &cur, next));
    return next;
}

/* ---- errors ---------------------------------------------------------------------- */

int ch_fail(ch_store *s, cf_err *err, const char *what, const char *problem)
{
    return cf_fail(err, CF_EDB, "%s: %s (clickhouse %s)", what, problem, s->server);
}

/* "Code: 60, e.displayText() = DB::Exception: Table x doesn't exist., e.what() = ..."
 * -> "Table x doesn't exist. (code 60)"; a hint for the codes a user fixes. */
static int server_fail(ch_store *s, cf_err *err, const char *what, long status, char *body)
{
    int code = 0;
    const char *msg = body;
    if (strncmp(body, "Code: ", 6) == 0) {
        code = atoi(body + 6);
        const char *m = strstr(body, "DB::Exception: ");
        if (m)
            msg = m + strlen("DB::Exception: ");
        char *end = strstr(body, ", e.what() = ");
        if (end)
            *end = '\0';
    }
    const char *hint = "";
    if (code == 192 || code == 193 || code == 516 || status == 401 || status == 403)
        hint = "; check the user and password in the database URL";
    else if (code == 81)
        hint = "; check the database name in the URL";
    else if (code == 60)
        hint = "; run 'crucible-feedback migrate' against this database";
    return cf_fail(err, CF_EDB, "%s: %s (clickhouse %s, HTTP %ld%s%d)%s", what,
                   msg[0] ? msg : "no message", s->server, status, code ? ", code " : "",
                   code, hint);
}

/* ---- requests ------------------------------------------------------------------------ */

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

static double mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static cf_http_conn *acquire(ch_store *s, cf_err *err)
{
    if (s->nidle)
        return s->idle[--s->nidle];
    cf_http_conn *c = NULL;
    if (cf_http_conn_open(&c, err))
        return NULL;
    return c;
}

static void release(ch_store *s, cf_http_conn *c)
{
    if (!c)
        return;
    if (s->nidle < CH_MAX_IDLE)
        s->idle[s->nidle++] = c;
    else
        cf_http_conn_close(c);
}

/* Sends one request. repeatable: any transport failure may be retried
 * (reads, DDL); otherwise only a failure to connect (nothing was sent).
 * Retries with backoff (100 ms doubling to 1 s) until s->retry_ms. On
 * success *conn holds the connection with the reply to read. */
static int request(ch_store *s, const char *url, const char *body, size_t len, int repeatable,
                   const char *what, cf_http_conn **conn, cf_err *err)
{
    double deadline = mono_ms() + (double)s->retry_ms;
    long wait = 100;
    *conn = NULL;
    for (;;) {
        cf_http_conn *c = acquire(s, err);
        if (!c)
            return -1;
        cf_http_call call = {.url = url, .body = body, .body_len = len, .headers = s->headers,
                             .connect_timeout_ms = 5000};
        long status = 0;
        char msg[1024];
        int rc = cf_http_conn_send(c, &call, &status, msg, sizeof msg);
        if (rc == 0) {
            *conn = c;
            return 0;
        }
        if (status) {
            release(s, c);
            return server_fail(s, err, what, status, msg);
        }
        /* A failed connection is not reused (it may be a stale keep-alive). */
        cf_http_conn_close(c);
        if ((rc == -2 || repeatable) && mono_ms() + (double)wait < deadline) {
            sleep_ms(wait);
            wait = wait * 2 > 1000 ? 1000 : wait * 2;
            continue;
        }
        s->transport_failed = 1;
        char problem[1200];
        snprintf(problem, sizeof problem,
                 "%s; check that the server is running and the URL's host and port", msg);
        return ch_fail(s, err, what, problem);
    }
}

/* Reads and discards the rest of a reply; the connection goes back to the pool. */
static int drain(ch_store *s, cf_http_conn *c, const char *what, cf_err *err)
{
    const char *p;
    size_t n;
    char msg[512];
    int r;
    while ((r = cf_http_conn_read(c, &p, &n, msg, sizeof msg)) > 0)
        ;
    if (r < 0) {
        cf_http_conn_close(c);
        return ch_fail(s, err, what, msg);
    }
    release(s, c);
    return 0;
}

static char *url_with_query(ch_store *s, const char *base, const char *sql, cf_err *err)
{
    cf_buf u = CF_BUF_INIT;
    cf_buf_str(&u, base);
    cf_buf_str(&u, "&query=");
    for (const unsigned char *p = (const unsigned char *)sql; *p; p++) {
        if (isalnum(*p) || *p == '_' || *p == '.' || *p == '-')
            cf_buf_putc(&u, (char)*p);
        else {
            char h[4] = {'%', "0123456789ABCDEF"[*p >> 4], "0123456789ABCDEF"[*p & 15], 0};
            cf_buf_str(&u, h);
        }
    }
    if (cf_buf_failed(&u)) {
        cf_buf_free(&u);
        cf_fail(err, CF_ENOMEM, "out of memory building a request (clickhouse %s)", s->server);
        return NULL;
    }
    return (char *)cf_buf_cstr(&u);
}

int ch_exec(ch_store *s, const char *sql, size_t len, const char *what, cf_err *err)
{
    cf_http_conn *c;
    if (request(s, s->url, sql, len, 1, what, &c, err))
        return -1;
    return drain(s, c, what, err);
}

int ch_insert(ch_store *s, const char *table, const cf_buf *rows, const char *what, cf_err *err)
{
    char sql[128];
    snprintf(sql, sizeof sql, "INSERT INTO %s FORMAT JSONEachRow", table);
    char *url = url_with_query(s, s->url, sql, err);
    if (!url)
        return -1;
    cf_http_conn *c;
    int rc = request(s, url, rows->p ? rows->p : "", rows->n, 0, what, &c, err);
    free(url);
    if (rc)
        return -1;
    return drain(s, c, what, err);
}

int ch_query(ch_store *s, const cf_buf *sql, const char *what, ch_rows *out, cf_err *err)
{
    memset(out, 0, sizeof *out);
    out->s = s;
    out->what = what;
    cf_buf q = CF_BUF_INIT;
    cf_buf_append(&q, sql->p, sql->n);
    cf_buf_str(&q, " FORMAT TabSeparated");
    if (cf_buf_failed(sql) || cf_buf_failed(&q)) {
        cf_buf_free(&q);
        return cf_fail(err, CF_ENOMEM, "%s: out of memory building the query", what);
    }
    int rc = request(s, s->url, q.p, q.n, 1, what, &out->conn, err);
    cf_buf_free(&q);
    return rc;
}

static char unescape_char(char c)
{
    switch (c) {
    case 'b': return '\b';
    case 'f': return '\f';
    case 'n': return '\n';
    case 'r': return '\r';
    case 't': return '\t';
    case '0': return '\0';
    default: return c;
    }
}

/* Splits the line p[0..n) (its '\n' excluded) into fields, unescaped in
 * place and NUL-terminated. */
static size_t split(ch_rows *r, char *p, size_t n)
{
    size_t nf = 0, i = 0;
    for (;;) {
        char *start = p + i, *o = start;
        while (i < n && p[i] != '\t') {
            if (p[i] == '\\' && i + 1 < n) {
                *o++ = unescape_char(p[i + 1]);
                i += 2;
            } else {
                *o++ = p[i++];
            }
        }
        /* NULL is the raw text "\N" (now unescaped to "N"). */
        int null = o - start == 1 && start[0] == 'N' && (p + i) - start == 2;
        if (nf < CH_MAX_FIELDS) {
            r->f[nf].p = null ? NULL : start;
            r->f[nf].n = null ? 0 : (size_t)(o - start);
        }
        nf++;
        if (i >= n) {
            *o = '\0';
            break;
        }
        *o = '\0';
        i++; /* the tab */
    }
    return nf;
}

int ch_rows_next(ch_rows *r, size_t nfields, cf_err *err)
{
    if (!r->conn)
        return 0;
    for (;;) {
        char *start = r->in.p ? r->in.p + r->pos : NULL;
        size_t avail = r->in.n - r->pos;
        char *nl = avail ? memchr(start, '\n', avail) : NULL;
        if (nl) {
            size_t len = (size_t)(nl - start);
            r->pos += len + 1;
            r->nf = split(r, start, len);
            if (r->nf == nfields)
                return 1;
            int code = strncmp(start, "Code: ", 6) == 0;
            cf_fail(err, CF_EDB, "%s: %s%.300s (clickhouse %s)", r->what,
                    code ? "the server failed while sending: " : "a malformed row: ",
                    start, r->s->server);
            ch_rows_close(r);
            return -1;
        }
        if (r->eof) {
            if (avail) {
                cf_fail(err, CF_EDB, "%s: the reply ended inside a row (clickhouse %s)", r->what,
                        r->s->server);
                ch_rows_close(r);
                return -1;
            }
            ch_rows_close(r);
            return 0;
        }
        /* Keep the partial line, read more. */
        if (r->pos) {
            memmove(r->in.p, r->in.p + r->pos, avail);
            r->in.n = avail;
            r->pos = 0;
        }
        const char *p;
        size_t n;
        char msg[512];
        int rc = cf_http_conn_read(r->conn, &p, &n, msg, sizeof msg);
        if (rc < 0) {
            ch_fail(r->s, err, r->what, msg);
            cf_http_conn_close(r->conn);
            r->conn = NULL;
            ch_rows_close(r);
            return -1;
        }
        if (rc == 0)
            r->eof = 1;
        else if (cf_buf_append(&r->in, p, n)) {
            cf_fail(err, CF_ENOMEM, "%s: out of memory reading rows", r->what);
            ch_rows_close(r);
            return -1;
        }
    }
}

void ch_rows_close(ch_rows *r)
{
    if (r->conn) {
        /* A finished reply keeps its connection; one left midway is dropped. */
        if (r->eof)
            release(r->s, r->conn);
        else
            cf_http_conn_close(r->conn);
        r->conn = NULL;
    }
    cf_buf_free(&r->in);
    r->pos = 0;
}

int ch_query_int(ch_store *s, const cf_buf *sql, const char *what, int64_t *out, cf_err *err)
{
    ch_rows r;
    *out = 0;
    if (ch_query(s, sql, what, &r, err))
        return -1;
    int rc = ch_rows_next(&r, 1, err);
    if (rc < 0)
        return -1;
    if (rc == 1)
        *out = ch_int(r.f[0]);
    ch_rows_close(&r);
    return 0;
}
