/*
 * Streaming Apache Parquet writer (see cf_parquet.h).
 *
 * Per column: the current data page (definition levels, and PLAIN values
 * or dictionary indices), the column chunk's finished pages (headers and
 * compressed bodies, in memory until the row group ends), the chunk's
 * dictionary, and its statistics. A row group is written column by column
 * (dictionary page first) when it reaches row_group_size rows or holds
 * row_group_bytes; the footer lists every row group's chunks.
 */
#include "crucible/export/cf_parquet.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "cf_parquet_int.h"
#include "crucible/export/cf_thrift.h"

enum { ENC_PLAIN = 1, ENC_RLE = 2, ENC_DICT = 4 };

typedef struct pq_chunk_meta {
    int64_t num_values, null_count;
    int64_t uncompressed, compressed;  /* including page headers */
    int64_t data_offset, dict_offset;  /* dict_offset -1: none */
    unsigned encodings;
    int has_minmax, min_exact, max_exact;
    unsigned char min[PQ_STAT_MAX + 4], max[PQ_STAT_MAX + 4];
    size_t min_len, max_len;
    double dmin, dmax;
    int64_t imin, imax;
} pq_chunk_meta;

typedef struct pq_rowgroup {
    pq_chunk_meta *cols;
    int64_t rows, offset, uncompressed, compressed;
} pq_rowgroup;

typedef struct pq_col {
    cf_pq_column def;
    char *name;
    /* current page */
    uint8_t *defs;
    size_t ndefs, defs_cap;
    cf_buf values;        /* PLAIN-encoded non-null values (plain pages) */
    uint32_t *idx;        /* dictionary indices (dictionary pages) */
    size_t nidx, idx_cap;
    size_t page_bytes;    /* what the page would take PLAIN-encoded */
    /* chunk */
    cf_buf pages;         /* finished data pages: header + body */
    int64_t num_values, null_count, uncompressed, compressed;
    int data_pages;
    unsigned encodings;
    int dict_on;          /* this chunk still dictionary-encodes */
    pq_dict dict;
    size_t plain_total;   /* PLAIN size of the chunk's dictionary-encoded values */
    /* statistics */
    int has_minmax;
    unsigned char min[PQ_STAT_KEEP], max[PQ_STAT_KEEP];
    size_t min_len, max_len;
    double dmin, dmax;
    int64_t imin, imax;
} pq_col;

struct cf_pq_writer {
    cf_out *out;
    cf_pq_opts o;
    pq_col *cols;
    int ncols;
    int64_t offset;       /* bytes written to out so far */
    int64_t rows, rg_rows;
    size_t buffered;      /* bytes held in finished pages of the current row group */
    pq_rowgroup *rgs;
    int nrg, rg_cap;
    ZSTD_CCtx *zc;
    pq_pipe *pipe;        /* zstd: data pages compress on a worker thread */
    cf_buf body, packed, header, scratch;
    int finished;
};

void cf_pq_opts_init(cf_pq_opts *o)
{
    memset(o, 0, sizeof *o);
    o->codec = CF_PQ_ZSTD;
    o->zstd_level = 3;
    o->row_group_size = 122880;
    o->row_group_bytes = (size_t)64 << 20;
    o->page_size = (size_t)1 << 20;
    o->dictionary = 1;
    o->dictionary_limit = (size_t)1 << 20;
    o->created_by = "crucible-feedback version " CF_VERSION;
}

int64_t cf_pq_rows(const cf_pq_writer *w) { return w->rows; }
int cf_pq_row_groups(const cf_pq_writer *w) { return w->nrg; }

static int nomem(cf_err *err) { return cf_fail(err, CF_ENOMEM, "out of memory writing Parquet"); }

static int emit(cf_pq_writer *w, const void *p, size_t n, cf_err *err)
{
    if (cf_out_write(w->out, p, n, err))
        return -1;
    w->offset += (int64_t)n;
    return 0;
}

/* ---- pages ------------------------------------------------------------------ */

/* Compresses raw into w->packed (or passes it through when uncompressed). */
static int compress(cf_pq_writer *w, const char *raw, size_t n, const char **data, size_t *len,
                    cf_err *err)
{
    if (w->o.codec == CF_PQ_UNCOMPRESSED) {
        *data = raw;
        *len = n;
        return 0;
    }
    size_t bound = ZSTD_compressBound(n);
    w->packed.n = 0;
    if (cf_buf_reserve(&w->packed, bound))
        return nomem(err);
    size_t r = ZSTD_compressCCtx(w->zc, w->packed.p, bound, raw, n, w->o.zstd_level);
    if (ZSTD_isError(r))
        return cf_fail(err, CF_EIO, "zstd compression failed: %s", ZSTD_getErrorName(r));
    *data = w->packed.p;
    *len = r;
    return 0;
}

/* Appends a page (header, then raw compressed) to dst, on this thread. */
static int put_page(cf_pq_writer *w, cf_buf *dst, int type, const char *raw, size_t n,
                    int32_t num_values, int encoding, int64_t *uncompressed, int64_t *compressed,
                    cf_err *err)
{
    const char *data = NULL;
    size_t len = 0;
    if (n > INT32_MAX)
        return cf_fail(err, CF_EINVAL, "a Parquet page would be larger than 2 GiB");
    if (compress(w, raw, n, &data, &len, err))
        return -1;
    w->header.n = 0;
    pq_page_header(&w->header, type, n, len, num_values, encoding);
    cf_buf_append(dst, w->header.p, w->header.n);
    cf_buf_append(dst, data, len);
    if (cf_buf_failed(&w->header) || cf_buf_failed(dst))
        return nomem(err);
    *uncompressed += (int64_t)(w->header.n + n);
    *compressed += (int64_t)(w->header.n + len);
    return 0;
}

/* Finishes the current data page of c into its chunk. */
static int flush_page(cf_pq_writer *w, pq_col *c, cf_err *err)
{
    if (c->ndefs == 0)
        return 0;
    cf_buf *b = &w->body;
    b->n = 0;
    cf_buf_u32le(b, 0); /* definition levels' length, patched below */
    pq_rle_u8(b, c->defs, c->ndefs, 1);
    if (cf_buf_failed(b))
        return nomem(err);
    uint32_t dl = (uint32_t)(b->n - 4);
    b->p[0] = (char)dl;
    b->p[1] = (char)(dl >> 8);
    b->p[2] = (char)(dl >> 16);
    b->p[3] = (char)(dl >> 24);
    int encoding = PQ_E_PLAIN;
    if (c->dict_on) {
        int width = pq_bit_width(c->dict.n ? (uint32_t)(c->dict.n - 1) : 0);
        cf_buf_putc(b, (char)width);
        pq_rle_u32(b, c->idx, c->nidx, width);
        encoding = PQ_E_RLE_DICTIONARY;
        c->encodings |= ENC_DICT;
    } else {
        cf_buf_append(b, c->values.p, c->values.n);
        c->encodings |= ENC_PLAIN;
    }
    c->encodings |= ENC_RLE;
    if (cf_buf_failed(b))
        return nomem(err);
    if (b->n > INT32_MAX)
        return cf_fail(err, CF_EINVAL, "a Parquet page would be larger than 2 GiB");
    if (w->pipe) {
        /* compressed on the worker thread; the chunk is ours again after a drain */
        if (pq_pipe_submit(w->pipe, b, &c->pages, &c->uncompressed, &c->compressed, PQ_P_DATA,
                           (int32_t)c->ndefs, encoding, err))
            return -1;
    } else {
        size_t before = c->pages.n;
        if (put_page(w, &c->pages, PQ_P_DATA, b->p, b->n, (int32_t)c->ndefs, encoding,
                     &c->uncompressed, &c->compressed, err))
            return -1;
        w->buffered += c->pages.n - before;
    }
    /* A dictionary nearly as large as the values it replaces does not pay:
     * the rest of the chunk is PLAIN (pages so far keep the dictionary). */
    if (c->dict_on) {
        c->plain_total += c->page_bytes;
        if (c->dict.plain.n * 10 >= c->plain_total * 9)
            c->dict_on = 0;
    }
    c->ndefs = 0;
    c->nidx = 0;
    c->values.n = 0;
    c->page_bytes = 0;
    return 0;
}

/* ---- values --------------------------------------------------------------- */

static int push_def(pq_col *c, uint8_t d, cf_err *err)
{
    if (c->ndefs == c->defs_cap) {
        size_t cap = c->defs_cap ? c->defs_cap * 2 : 4096;
        uint8_t *p = realloc(c->defs, cap);
        if (!p)
            return nomem(err);
        c->defs = p;
        c->defs_cap = cap;
    }
    c->defs[c->ndefs++] = d;
    return 0;
}

/* Tracks the smallest and largest PQ_STAT_KEEP-byte prefixes: the prefix
 * of the max is the max of the prefixes (byte order is monotone). */
static void stat_string(pq_col *c, const unsigned char *s, size_t n)
{
    size_t k = n < PQ_STAT_KEEP ? n : PQ_STAT_KEEP;
    if (!c->has_minmax) {
        memcpy(c->min, s, k);
        memcpy(c->max, s, k);
        c->min_len = c->max_len = k;
        c->has_minmax = 1;
        return;
    }
    size_t m = k < c->min_len ? k : c->min_len;
    int r = memcmp(s, c->min, m);
    if (r < 0 || (r == 0 && k < c->min_len)) {
        memcpy(c->min, s, k);
        c->min_len = k;
    }
    m = k < c->max_len ? k : c->max_len;
    r = memcmp(s, c->max, m);
    if (r > 0 || (r == 0 && k > c->max_len)) {
        memcpy(c->max, s, k);
        c->max_len = k;
    }
}

static int add_index(pq_col *c, uint32_t e, cf_err *err)
{
    if (c->nidx == c->idx_cap) {
        size_t cap = c->idx_cap ? c->idx_cap * 2 : 4096;
        uint32_t *p = realloc(c->idx, cap * sizeof *p);
        if (!p)
            return nomem(err);
        c->idx = p;
        c->idx_cap = cap;
    }
    c->idx[c->nidx++] = e;
    return 0;
}

static int add_string(cf_pq_writer *w, pq_col *c, cf_str s, cf_err *err)
{
    if (s.n > INT32_MAX)
        return cf_fail(err, CF_EINVAL, "column %s: a value of %zu bytes is over Parquet's 2 GiB",
                       c->name, s.n);
    stat_string(c, (const unsigned char *)s.p, s.n);
    if (c->dict_on) {
        int64_t e = pq_dict_find(&c->dict, s.p, s.n);
        if (e < 0 && c->dict.plain.n + 4 + s.n > w->o.dictionary_limit) {
            /* The dictionary is full: PLAIN from here to the end of the chunk. */
            if (flush_page(w, c, err))
                return -1;
            c->dict_on = 0;
        } else {
            if (e < 0 && (e = pq_dict_add(&c->dict, s.p, s.n)) < 0)
                return nomem(err);
            c->page_bytes += 4 + s.n;
            return add_index(c, (uint32_t)e, err);
        }
    }
    cf_buf_u32le(&c->values, (uint32_t)s.n);
    cf_buf_append(&c->values, s.p, s.n);
    if (cf_buf_failed(&c->values))
        return nomem(err);
    c->page_bytes += 4 + s.n;
    return 0;
}

static int add_double(pq_col *c, double d, cf_err *err)
{
    uint64_t u;
    memcpy(&u, &d, 8);
    unsigned char x[8];
    for (int i = 0; i < 8; i++)
        x[i] = (unsigned char)(u >> (8 * i));
    cf_buf_append(&c->values, x, 8);
    if (cf_buf_failed(&c->values))
        return nomem(err);
    if (!c->has_minmax) {
        c->dmin = c->dmax = d;
        c->has_minmax = 1;
    } else {
        if (d < c->dmin)
            c->dmin = d;
        if (d > c->dmax)
            c->dmax = d;
    }
    c->page_bytes += 8;
    return 0;
}

static int add_int64(pq_col *c, int64_t v, cf_err *err)
{
    uint64_t u = (uint64_t)v;
    unsigned char x[8];
    for (int i = 0; i < 8; i++)
        x[i] = (unsigned char)(u >> (8 * i));
    cf_buf_append(&c->values, x, 8);
    if (cf_buf_failed(&c->values))
        return nomem(err);
    if (!c->has_minmax) {
        c->imin = c->imax = v;
        c->has_minmax = 1;
    } else {
        if (v < c->imin)
            c->imin = v;
        if (v > c->imax)
            c->imax = v;
    }
    c->page_bytes += 8;
    return 0;
}

/* The physical type of a column. */
static int physical(const pq_col *c)
{
    switch (c->def.type) {
    case CF_PQ_STRING:
        return PQ_T_BYTE_ARRAY;
    case CF_PQ_DOUBLE:
        return PQ_T_DOUBLE;
    default:
        return PQ_T_INT64;
    }
}

static int is_null(const pq_col *c, const cf_pq_value *v)
{
    switch (c->def.type) {
    case CF_PQ_STRING:
        return v->s.p == NULL;
    case CF_PQ_DOUBLE:
        return isnan(v->d);
    default:
        return v->i == CF_NULL_INT;
    }
}

static int add_value(cf_pq_writer *w, pq_col *c, const cf_pq_value *v, cf_err *err)
{
    switch (c->def.type) {
    case CF_PQ_STRING:
        return add_string(w, c, v->s, err);
    case CF_PQ_DOUBLE:
        return add_double(c, v->d, err);
    default:
        return add_int64(c, v->i, err);
    }
}

/* ---- row groups -------------------------------------------------------------- */

static void reset_chunk(cf_pq_writer *w, pq_col *c)
{
    c->pages.n = 0;
    c->num_values = c->null_count = c->uncompressed = c->compressed = 0;
    c->encodings = 0;
    c->dict_on = c->def.type == CF_PQ_STRING && w->o.dictionary;
    pq_dict_reset(&c->dict);
    c->plain_total = 0;
    c->has_minmax = 0;
    c->min_len = c->max_len = 0;
}

static void chunk_stats(pq_col *c, pq_chunk_meta *m)
{
    m->has_minmax = c->has_minmax;
    if (!c->has_minmax)
        return;
    if (c->def.type == CF_PQ_DOUBLE) {
        m->dmin = c->dmin == 0 ? -0.0 : c->dmin;
        m->dmax = c->dmax == 0 ? 0.0 : c->dmax;
        m->min_exact = m->max_exact = 1;
        return;
    }
    if (c->def.type != CF_PQ_STRING) {
        m->imin = c->imin;
        m->imax = c->imax;
        m->min_exact = m->max_exact = 1;
        return;
    }
    m->min_len = pq_stat_min(c->min, c->min_len, &m->min_exact);
    memcpy(m->min, c->min, m->min_len);
    m->max_len = pq_stat_max(c->max, c->max_len, m->max, &m->max_exact);
    if (m->max_len == (size_t)-1)
        m->has_minmax = 0; /* no short upper bound exists: no min/max at all */
}

static int flush_rowgroup(cf_pq_writer *w, cf_err *err)
{
    if (w->rg_rows == 0)
        return 0;
    if (w->nrg == w->rg_cap) {
        int cap = w->rg_cap ? w->rg_cap * 2 : 8;
        pq_rowgroup *r = realloc(w->rgs, (size_t)cap * sizeof *r);
        if (!r)
            return nomem(err);
        w->rgs = r;
        w->rg_cap = cap;
    }
    pq_rowgroup *rg = &w->rgs[w->nrg];
    memset(rg, 0, sizeof *rg);
    rg->cols = calloc((size_t)w->ncols, sizeof *rg->cols);
    if (!rg->cols)
        return nomem(err);
    w->nrg++;
    rg->rows = w->rg_rows;
    rg->offset = w->offset;
    for (int i = 0; i < w->ncols; i++)
        if (flush_page(w, &w->cols[i], err))
            return -1;
    if (w->pipe && pq_pipe_drain(w->pipe, err))
        return -1;
    for (int i = 0; i < w->ncols; i++) {
        pq_col *c = &w->cols[i];
        pq_chunk_meta *m = &rg->cols[i];
        m->dict_offset = -1;
        if (c->encodings & ENC_DICT) {
            w->scratch.n = 0;
            m->dict_offset = w->offset;
            if (put_page(w, &w->scratch, PQ_P_DICTIONARY, c->dict.plain.p, c->dict.plain.n,
                         (int32_t)c->dict.n, PQ_E_PLAIN, &c->uncompressed, &c->compressed, err) ||
                emit(w, w->scratch.p, w->scratch.n, err))
                return -1;
            c->encodings |= ENC_PLAIN;
        }
        m->data_offset = w->offset;
        if (emit(w, c->pages.p, c->pages.n, err))
            return -1;
        m->num_values = c->num_values;
        m->null_count = c->null_count;
        m->uncompressed = c->uncompressed;
        m->compressed = c->compressed;
        m->encodings = c->encodings;
        chunk_stats(c, m);
        rg->uncompressed += c->uncompressed;
        rg->compressed += c->compressed;
        reset_chunk(w, c);
    }
    w->rg_rows = 0;
    w->buffered = 0;
    if (w->pipe)
        pq_pipe_reset_bytes(w->pipe);
    return 0;
}

int cf_pq_write(cf_pq_writer *w, const cf_pq_value *row, cf_err *err)
{
    if (w->finished)
        return cf_fail(err, CF_EINVAL, "the Parquet file is already finished");
    size_t pending = 0;
    for (int i = 0; i < w->ncols; i++) {
        pq_col *c = &w->cols[i];
        const cf_pq_value *v = &row[i];
        int null = is_null(c, v);
        /* The value first: adding it may end the current page (dictionary
         * full), and its definition level belongs to the page it lands in. */
        if (null) {
            c->null_count++;
            c->page_bytes++;
        } else if (add_value(w, c, v, err)) {
            return -1;
        }
        if (push_def(c, null ? 0 : 1, err))
            return -1;
        c->num_values++;
        if (c->page_bytes >= w->o.page_size && flush_page(w, c, err))
            return -1;
        pending += c->page_bytes;
    }
    w->rows++;
    w->rg_rows++;
    size_t buffered = w->pipe ? pq_pipe_bytes(w->pipe) : w->buffered;
    if (w->rg_rows >= w->o.row_group_size || buffered + pending >= w->o.row_group_bytes)
        return flush_rowgroup(w, err);
    return 0;
}

/* ---- footer ------------------------------------------------------------------ */

static void put_double_bytes(cf_thrift *t, int16_t id, double d)
{
    uint64_t u;
    memcpy(&u, &d, 8);
    unsigned char x[8];
    for (int i = 0; i < 8; i++)
        x[i] = (unsigned char)(u >> (8 * i));
    cft_binary(t, id, x, 8);
}

static void put_int64_bytes(cf_thrift *t, int16_t id, int64_t v)
{
    uint64_t u = (uint64_t)v;
    unsigned char x[8];
    for (int i = 0; i < 8; i++)
        x[i] = (unsigned char)(u >> (8 * i));
    cft_binary(t, id, x, 8);
}

static void put_stats(cf_thrift *t, const pq_col *c, const pq_chunk_meta *m)
{
    cft_struct(t, 12);
    int dbl = c->def.type == CF_PQ_DOUBLE, num = c->def.type != CF_PQ_STRING;
    if (dbl && m->has_minmax) { /* the deprecated fields too: doubles order the same way */
        put_double_bytes(t, 1, m->dmax);
        put_double_bytes(t, 2, m->dmin);
    } else if (num && m->has_minmax) { /* and signed integers */
        put_int64_bytes(t, 1, m->imax);
        put_int64_bytes(t, 2, m->imin);
    }
    cft_i64(t, 3, m->null_count);
    if (m->has_minmax) {
        if (dbl) {
            put_double_bytes(t, 5, m->dmax);
            put_double_bytes(t, 6, m->dmin);
        } else if (num) {
            put_int64_bytes(t, 5, m->imax);
            put_int64_bytes(t, 6, m->imin);
        } else {
            cft_binary(t, 5, m->max, m->max_len);
            cft_binary(t, 6, m->min, m->min_len);
        }
        cft_bool(t, 7, m->max_exact);
        cft_bool(t, 8, m->min_exact);
    }
    if (dbl)
        cft_i64(t, 9, 0); /* NULL stands for NaN here: no NaN is ever stored */
    cft_end(t);
}

static void put_chunk(cf_thrift *t, const pq_col *c, const pq_chunk_meta *m, int codec)
{
    cft_elem_struct(t);               /* ColumnChunk */
    cft_i64(t, 2, 0);                 /* file_offset: metadata lives in the footer only */
    cft_struct(t, 3);                 /* ColumnMetaData */
    cft_i32(t, 1, physical(c));
    int encs[3], ne = 0;
    if (m->encodings & ENC_PLAIN)
        encs[ne++] = PQ_E_PLAIN;
    if (m->encodings & ENC_RLE)
        encs[ne++] = PQ_E_RLE;
    if (m->encodings & ENC_DICT)
        encs[ne++] = PQ_E_RLE_DICTIONARY;
    cft_list(t, 2, CFT_I32, (size_t)ne);
    for (int i = 0; i < ne; i++)
        cft_elem_i32(t, encs[i]);
    cft_list(t, 3, CFT_BINARY, 1);
    cft_elem_binary(t, c->name, strlen(c->name));
    cft_i32(t, 4, codec);
    cft_i64(t, 5, m->num_values);
    cft_i64(t, 6, m->uncompressed);
    cft_i64(t, 7, m->compressed);
    cft_i64(t, 9, m->data_offset);
    if (m->dict_offset >= 0)
        cft_i64(t, 11, m->dict_offset);
    put_stats(t, c, m);
    cft_end(t);                       /* ColumnMetaData */
    cft_end(t);                       /* ColumnChunk */
}

/* The converted and logical type of a column's schema element, if any:
 * strings UTF8, timestamps TIMESTAMP_MICROS adjusted to UTC. */
static void put_logical(cf_thrift *t, const pq_col *c)
{
    if (c->def.type == CF_PQ_STRING) {
        cft_i32(t, 6, 0);     /* ConvertedType UTF8 */
        cft_struct(t, 10);    /* LogicalType */
        cft_struct(t, 1);     /* STRING */
        cft_end(t);
        cft_end(t);
    } else if (c->def.type == CF_PQ_TIMESTAMP) {
        cft_i32(t, 6, 10);    /* ConvertedType TIMESTAMP_MICROS */
        cft_struct(t, 10);    /* LogicalType */
        cft_struct(t, 8);     /* TIMESTAMP */
        cft_bool(t, 1, 1);    /* isAdjustedToUTC */
        cft_struct(t, 2);     /* unit */
        cft_struct(t, 2);     /* MICROS */
        cft_end(t);
        cft_end(t);
        cft_end(t);
        cft_end(t);
    }
}

static int write_footer(cf_pq_writer *w, cf_err *err)
{
    cf_buf f = CF_BUF_INIT;
    cf_thrift t;
    cft_init(&t, &f);
    cft_i32(&t, 1, 1);
    cft_list(&t, 2, CFT_STRUCT, (size_t)w->ncols + 1);
    cft_elem_struct(&t);
    cft_string(&t, 4, "schema");
    cft_i32(&t, 5, w->ncols);
    cft_end(&t);
    for (int i = 0; i < w->ncols; i++) {
        const pq_col *c = &w->cols[i];
        cft_elem_struct(&t);
        cft_i32(&t, 1, physical(c));
        cft_i32(&t, 3, 1); /* OPTIONAL */
        cft_string(&t, 4, c->name);
        put_logical(&t, c);
        cft_end(&t);
    }
    cft_i64(&t, 3, w->rows);
    cft_list(&t, 4, CFT_STRUCT, (size_t)w->nrg);
    for (int g = 0; g < w->nrg; g++) {
        const pq_rowgroup *rg = &w->rgs[g];
        cft_elem_struct(&t);
        cft_list(&t, 1, CFT_STRUCT, (size_t)w->ncols);
        for (int i = 0; i < w->ncols; i++)
            put_chunk(&t, &w->cols[i], &rg->cols[i], w->o.codec);
        cft_i64(&t, 2, rg->uncompressed);
        cft_i64(&t, 3, rg->rows);
        cft_i64(&t, 5, rg->offset);
        cft_i64(&t, 6, rg->compressed);
        cft_i16(&t, 7, (int16_t)(g < INT16_MAX ? g : INT16_MAX));
        cft_end(&t);
    }
    cft_string(&t, 6, w->o.created_by);
    cft_list(&t, 7, CFT_STRUCT, (size_t)w->ncols);
    for (int i = 0; i < w->ncols; i++) {
        cft_elem_struct(&t); /* ColumnOrder */
        cft_struct(&t, 1);   /* TYPE_ORDER */
        cft_end(&t);
        cft_end(&t);
    }
    cft_end(&t);
    int r = -1;
    if (cf_buf_failed(&f) || t.overflow || f.n > UINT32_MAX) {
        nomem(err);
    } else {
        unsigned char tail[8];
        uint32_t n = (uint32_t)f.n;
        tail[0] = (unsigned char)n;
        tail[1] = (unsigned char)(n >> 8);
        tail[2] = (unsigned char)(n >> 16);
        tail[3] = (unsigned char)(n >> 24);
        memcpy(tail + 4, "PAR1", 4);
        r = emit(w, f.p, f.n, err) || emit(w, tail, 8, err) ? -1 : 0;
    }
    cf_buf_free(&f);
    return r;
}

/* ---- lifetime -------------------------------------------------------------------- */

int cf_pq_open(cf_pq_writer **out, cf_out *o, const cf_pq_column *cols, int ncols,
               const cf_pq_opts *opts, cf_err *err)
{
    *out = NULL;
    if (ncols <= 0)
        return cf_fail(err, CF_EINVAL, "a Parquet file needs at least one column");
    cf_pq_writer *w = calloc(1, sizeof *w);
    if (!w)
        return nomem(err);
    if (opts)
        w->o = *opts;
    else
        cf_pq_opts_init(&w->o);
    if (w->o.codec != CF_PQ_ZSTD && w->o.codec != CF_PQ_UNCOMPRESSED) {
        int codec = w->o.codec;
        free(w);
        return cf_fail(err, CF_EINVAL, "unsupported Parquet compression codec %d", codec);
    }
    if (w->o.row_group_size < 1)
        w->o.row_group_size = 1;
    if (w->o.page_size < 1)
        w->o.page_size = 1;
    if (!w->o.created_by)
        w->o.created_by = "crucible-feedback version " CF_VERSION;
    w->out = o;
    w->ncols = ncols;
    w->cols = calloc((size_t)ncols, sizeof *w->cols);
    if (!w->cols) {
        free(w);
        return nomem(err);
    }
    for (int i = 0; i < ncols; i++) {
        w->cols[i].def = cols[i];
        w->cols[i].name = strdup(cols[i].name);
        if (!w->cols[i].name) {
            cf_pq_free(w);
            return nomem(err);
        }
        reset_chunk(w, &w->cols[i]);
    }
    if (w->o.codec == CF_PQ_ZSTD &&
        (!(w->zc = ZSTD_createCCtx()) || pq_pipe_start(&w->pipe, w->o.zstd_level, err))) {
        if (!w->zc)
            nomem(err);
        cf_pq_free(w);
        return -1;
    }
    if (emit(w, "PAR1", 4, err)) {
        cf_pq_free(w);
        return -1;
    }
    *out = w;
    return 0;
}

int cf_pq_finish(cf_pq_writer *w, cf_err *err)
{
    if (w->finished)
        return cf_fail(err, CF_EINVAL, "the Parquet file is already finished");
    if (flush_rowgroup(w, err) || write_footer(w, err))
        return -1;
    w->finished = 1;
    return 0;
}

void cf_pq_free(cf_pq_writer *w)
{
    if (!w)
        return;
    pq_pipe_stop(w->pipe); /* first: the worker may still write into the chunks */
    for (int i = 0; i < w->ncols; i++) {
        pq_col *c = &w->cols[i];
        free(c->name);
        free(c->defs);
        free(c->idx);
        cf_buf_free(&c->values);
        cf_buf_free(&c->pages);
        pq_dict_free(&c->dict);
    }
    for (int g = 0; g < w->nrg; g++)
        free(w->rgs[g].cols);
    free(w->rgs);
    free(w->cols);
    ZSTD_freeCCtx(w->zc);
    cf_buf_free(&w->body);
    cf_buf_free(&w->packed);
    cf_buf_free(&w->header);
    cf_buf_free(&w->scratch);
    free(w);
}
