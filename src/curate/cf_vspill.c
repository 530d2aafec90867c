/* A spill file of vectors (see cf_vspill.h).
 *
 * A record: the id's length (u32), the id, a tag, the vector. Every
 * MARK_EVERY records the file offset is noted, so that a part of the file
 * starts on a record; a part is read with pread into a buffer of its own,
 * so parts can be read by threads at once. */
#include "crucible/curate/cf_vspill.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crucible/embed/cf_embed.h"

enum { TAG_FLOATS = 0, TAG_INT8 = 1, TAG_INT4 = 2, TAG_INT32 = 4 };
#define WRITE_BUFFER (1u << 20)
#define READ_BUFFER (1u << 20)
#define MARK_EVERY 1024

struct cf_vspill {
    FILE *f;
    char *wbuf;           /* the stream's buffer (glibc sizes its own by the block size) */
    size_t dim;
    int64_t n;
    int finished;
    int64_t end;          /* the file's size, once finished */
    int64_t *marks;       /* marks[i]: offset of record i * MARK_EVERY */
    size_t nmarks, cap_marks;
    unsigned char *pack;  /* one lattice packed (dim bytes) */
};

int cf_vspill_open(size_t dim, cf_vspill **out, cf_err *err)
{
    *out = NULL;
    cf_vspill *s = calloc(1, sizeof *s);
    if (!s || !(s->pack = malloc(dim ? dim : 1))) {
        free(s);
        return cf_fail(err, CF_ENOMEM, "out of memory embedding prompts");
    }
    s->dim = dim;
    if (!(s->f = tmpfile())) {
        cf_vspill_close(s);
        return cf_fail(err, CF_EIO, "cannot create a temporary file for embeddings");
    }
    if ((s->wbuf = malloc(WRITE_BUFFER)))
        setvbuf(s->f, s->wbuf, _IOFBF, WRITE_BUFFER);
    *out = s;
    return 0;
}

void cf_vspill_close(cf_vspill *s)
{
    if (!s)
        return;
    if (s->f)
        fclose(s->f);
    free(s->wbuf);
    free(s->marks);
    free(s->pack);
    free(s);
}

int64_t cf_vspill_count(const cf_vspill *s) { return s->n; }

static int put(cf_vspill *s, cf_str id, unsigned char tag, const void *v, size_t bytes,
               cf_err *err)
{
    if (s->finished)
        return cf_fail(err, CF_EINVAL, "the embeddings' temporary file is already read");
    if (id.n > UINT32_MAX)
        return cf_fail(err, CF_EINVAL, "an event id of %zu bytes is too long", id.n);
    if (s->n % MARK_EVERY == 0) {
        if (s->nmarks == s->cap_marks) {
            size_t cap = s->cap_marks ? 2 * s->cap_marks : 64;
            int64_t *p = realloc(s->marks, cap * sizeof *p);
            if (!p)
                return cf_fail(err, CF_ENOMEM, "out of memory embedding prompts");
            s->marks = p;
            s->cap_marks = cap;
        }
        off_t at = ftello(s->f);
        if (at < 0)
            return cf_fail(err, CF_EIO, "cannot write embeddings to a temporary file");
        s->marks[s->nmarks++] = (int64_t)at;
    }
    uint32_t len = (uint32_t)id.n;
    if (fwrite(&len, sizeof len, 1, s->f) != 1 || fwrite(id.p, 1, id.n, s->f) != id.n
        || fwrite(&tag, 1, 1, s->f) != 1 || fwrite(v, 1, bytes, s->f) != bytes)
        return cf_fail(err, CF_EIO, "cannot write embeddings to a temporary file");
    s->n++;
    return 0;
}

int cf_vspill_put_floats(cf_vspill *s, cf_str id, const float *x, cf_err *err)
{
    return put(s, id, TAG_FLOATS, x, s->dim * sizeof *x, err);
}

int cf_vspill_put_lattice(cf_vspill *s, cf_str id, const int32_t *m, cf_err *err)
{
    size_t dim = s->dim;
    int32_t lo = 0, hi = 0;
    for (size_t k = 0; k < dim; k++) {
        lo = m[k] < lo ? m[k] : lo;
        hi = m[k] > hi ? m[k] : hi;
    }
    unsigned char *q = s->pack;
    if (lo >= -8 && hi <= 7) {
        for (size_t k = 0; k < dim / 2; k++)
            q[k] = (unsigned char)((m[2 * k] & 0xf) | (m[2 * k + 1] & 0xf) << 4);
        if (dim % 2)
            q[dim / 2] = (unsigned char)(m[dim - 1] & 0xf);
        return put(s, id, TAG_INT4, q, (dim + 1) / 2, err);
    }
    if (lo >= -128 && hi <= 127) {
        for (size_t k = 0; k < dim; k++)
            q[k] = (unsigned char)(m[k] & 0xff);
        return put(s, id, TAG_INT8, q, dim, err);
    }
    return put(s, id, TAG_INT32, m, dim * sizeof *m, err);
}

int cf_vspill_finish(cf_vspill *s, cf_err *err)
{
    if (s->finished)
        return 0;
    off_t end;
    if (fflush(s->f) || (end = ftello(s->f)) < 0)
        return cf_fail(err, CF_EIO, "cannot write embeddings to a temporary file");
    s->end = (int64_t)end;
    s->finished = 1;
    return 0;
}

/* ---- reading a part ---------------------------------------------------------------- */

typedef struct reader {
    int fd;
    int64_t pos, end;     /* file offsets still to read */
    unsigned char *buf;
    size_t cap, at, have; /* buf[at, have) is read and not yet used */
} reader;

/* Makes `need` bytes available at buf + at; 0, or -1 at a short file. */
static int want(reader *r, size_t need, cf_err *err)
{
    if (r->have - r->at >= need)
        return 0;
    memmove(r->buf, r->buf + r->at, r->have - r->at);
    r->have -= r->at;
    r->at = 0;
    if (need > r->cap) {
        unsigned char *p = realloc(r->buf, need);
        if (!p)
            return cf_fail(err, CF_ENOMEM, "out of memory ranking embeddings");
        r->buf = p;
        r->cap = need;
    }
    while (r->have < need) {
        size_t room = r->cap - r->have;
        if ((int64_t)room > r->end - r->pos)
            room = (size_t)(r->end - r->pos);
        ssize_t got = room ? pread(r->fd, r->buf + r->have, room, (off_t)r->pos) : 0;
        if (got <= 0)
            return cf_fail(err, CF_EIO, "cannot read embeddings back from a temporary file");
        r->pos += got;
        r->have += (size_t)got;
    }
    return 0;
}

/* The vector of a record's payload into x (m: scratch for a lattice). */
static int decode(unsigned char tag, const unsigned char *p, size_t dim, int32_t *m, float *x)
{
    switch (tag) {
    case TAG_FLOATS:
        memcpy(x, p, dim * sizeof *x);
        return 0;
    case TAG_INT4:
        /* a nibble v is (v ^ 8) - 8: 0..7 stay, 8..15 are -8..-1 */
        for (size_t k = 0; k < dim; k++)
            m[k] = (int32_t)(((p[k / 2] >> (4 * (k % 2))) & 0xf) ^ 8) - 8;
        break;
    case TAG_INT8:
        for (size_t k = 0; k < dim; k++)
            m[k] = (int32_t)(p[k] ^ 0x80) - 0x80;
        break;
    case TAG_INT32:
        memcpy(m, p, dim * sizeof *m);
        break;
    default:
        return -1;
    }
    cf_embed_lattice_normalize(m, x, dim);
    return 0;
}

static size_t payload(unsigned char tag, size_t dim)
{
    switch (tag) {
    case TAG_INT4:
        return (dim + 1) / 2;
    case TAG_INT8:
        return dim;
    default: /* floats and int32: four bytes a value (an unknown tag fails in decode) */
        return dim * 4;
    }
}

int cf_vspill_read(cf_vspill *s, unsigned part, unsigned parts, cf_vspill_fn fn, void *ud,
                   cf_err *err)
{
    if (!s->finished)
        return cf_fail(err, CF_EINVAL, "the embeddings' temporary file is still being written");
    if (parts == 0 || part >= parts || !s->nmarks)
        return 0;
    size_t first = s->nmarks * part / parts, last = s->nmarks * (part + 1) / parts;
    if (first == last)
        return 0;
    reader r = {fileno(s->f), s->marks[first], last < s->nmarks ? s->marks[last] : s->end,
                NULL, 0, 0, 0};
    int32_t *m = malloc(s->dim * sizeof *m);
    float *x = malloc(s->dim * sizeof *x);
    r.buf = malloc(READ_BUFFER);
    r.cap = READ_BUFFER;
    int rc = m && x && r.buf ? 0 : cf_fail(err, CF_ENOMEM, "out of memory ranking embeddings");
    while (!rc && (r.pos < r.end || r.at < r.have)) {
        uint32_t len;
        if ((rc = want(&r, sizeof len + 1, err)))
            break;
        memcpy(&len, r.buf + r.at, sizeof len);
        /* the id, the tag, and the longest payload a tag can have */
        if ((rc = want(&r, sizeof len + (size_t)len + 1, err)))
            break;
        unsigned char tag = r.buf[r.at + sizeof len + len];
        size_t need = sizeof len + (size_t)len + 1 + payload(tag, s->dim);
        if ((rc = want(&r, need, err)))
            break;
        const unsigned char *rec = r.buf + r.at;
        if (decode(tag, rec + sizeof len + len + 1, s->dim, m, x)) {
            rc = cf_fail(err, CF_EIO, "the embeddings' temporary file is damaged");
            break;
        }
        rc = fn(ud, (cf_str){(const char *)rec + sizeof len, len}, x, err);
        r.at += need;
    }
    free(r.buf);
    free(m);
    free(x);
    return rc;
}
