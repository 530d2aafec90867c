/* Exporters, pure C layer: Thrift compact encoding, the RLE/bit-packed
 * hybrid, statistics bounds, JSON/CSV text, UTF-8 validation, atomic
 * publication, and the export driver against a store that is locked or a
 * disk that fills up mid-export. (DuckDB reads the files back in
 * tests/lua/export_spec.lua.) */
#include "cf_test.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "export/parquet/cf_parquet_int.h"
#include "crucible/export/cf_export.h"
#include "crucible/export/cf_thrift.h"


/* cf_utf8_check as "offset of the first bad byte, or -1". */
static int64_t invalid_at(const char *s, size_t n)
{
    size_t at = cf_utf8_check(s, n);
    return at == n ? -1 : (int64_t)at;
}

static int exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

static char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)len + 1);
    if (s && fread(s, 1, (size_t)len, f) != (size_t)len) {
        free(s);
        s = NULL;
    }
    fclose(f);
    if (s) {
        s[len] = '\0';
        *n = (size_t)len;
    }
    return s;
}

static void spit(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    fputs(text, f);
    fclose(f);
}

static int file_is(const char *path, const char *want)
{
    size_t n;
    char *s = slurp(path, &n);
    int ok = s && n == strlen(want) && memcmp(s, want, n) == 0;
    if (!ok)
        fprintf(stderr, "%s holds \"%s\", expected \"%s\"\n", path, s ? s : "(missing)", want);
    free(s);
    return ok;
}

#define CHECK_BYTES(buf, ...)                                                      \
    do {                                                                           \
        static const unsigned char want_[] = {__VA_ARGS__};                        \
        CHECK((buf).n == sizeof want_ && memcmp((buf).p, want_, sizeof want_) == 0); \
    } while (0)

/* ---- Thrift compact protocol ------------------------------------------------- */

static void test_thrift(void)
{
    cf_buf b = CF_BUF_INIT;
    cf_thrift t;
    cft_init(&t, &b);
    cft_i32(&t, 1, 1);           /* delta 1, i32: 0x15, zigzag(1) = 2 */
    cft_i64(&t, 3, -1);          /* delta 2, i64: 0x26, zigzag(-1) = 1 */
    cft_i32(&t, 20, 300);        /* delta 17: long form 0x05, id zigzag 40, value 600 */
    cft_bool(&t, 21, 1);         /* 0x11 */
    cft_bool(&t, 22, 0);         /* 0x12 */
    cft_binary(&t, 23, "ab", 2); /* 0x18 0x02 a b */
    cft_list(&t, 24, CFT_I32, 2);
    cft_elem_i32(&t, -2);
    cft_elem_i32(&t, 64);
    cft_struct(&t, 25);
    cft_i16(&t, 1, 7);
    cft_end(&t);
    cft_list(&t, 26, CFT_STRUCT, 16); /* 15 or more: 0xF0 | type, then varint size */
    cft_end(&t);
    CHECK_BYTES(b, 0x15, 0x02, 0x26, 0x01, 0x05, 0x28, 0xD8, 0x04, 0x11, 0x12, 0x18, 0x02, 'a',
                'b', 0x19, 0x25, 0x03, 0x80, 0x01, 0x1C, 0x14, 0x0E, 0x00, 0x19, 0xFC, 0x10, 0x00);
    CHECK(t.depth == 0 && !t.overflow);
    cf_buf_free(&b);
}

/* ---- RLE / bit-packed hybrid ------------------------------------------------------ */

/* A reference decoder for the hybrid, to round-trip what the encoder writes. */
static size_t decode_rle(const unsigned char *p, size_t n, int width, uint32_t *out, size_t want)
{
    size_t i = 0, got = 0;
    while (i < n && got < want) {
        uint64_t h = 0;
        int shift = 0;
        while (p[i] & 0x80) {
            h |= (uint64_t)(p[i++] & 0x7F) << shift;
            shift += 7;
        }
        h |= (uint64_t)p[i++] << shift;
        if (h & 1) {
            size_t count = (size_t)(h >> 1) * 8;
            uint64_t acc = 0;
            int bits = 0;
            for (size_t k = 0; k < count; k++) {
                while (bits < width) {
                    acc |= (uint64_t)p[i++] << bits;
                    bits += 8;
                }
                uint32_t v = (uint32_t)(acc & ((1ull << width) - 1));
                acc >>= width;
                bits -= width;
                if (got < want)
                    out[got++] = v;
            }
        } else {
            size_t count = (size_t)(h >> 1);
            uint32_t v = 0;
            for (int k = 0; k < (width + 7) / 8; k++)
                v |= (uint32_t)p[i++] << (8 * k);
            for (size_t k = 0; k < count && got < want; k++)
                out[got++] = v;
        }
    }
    return got;
}

static void test_rle(void)
{
    cf_buf b = CF_BUF_INIT;
    uint8_t ones[10] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    pq_rle_u8(&b, ones, 10, 1);
    CHECK_BYTES(b, 0x14, 0x01); /* one run of 10 */
    b.n = 0;
    uint8_t alt[9] = {0, 1, 0, 1, 0, 1, 0, 1, 1};
    pq_rle_u8(&b, alt, 9, 1);
    CHECK_BYTES(b, 0x05, 0xAA, 0x01); /* two bit-packed groups, the last padded */
    CHECK(pq_bit_width(0) == 1 && pq_bit_width(1) == 1 && pq_bit_width(2) == 2 &&
          pq_bit_width(255) == 8 && pq_bit_width(256) == 9 && pq_bit_width(UINT32_MAX) == 32);

    /* round trips: runs, literals and their mixes, at every width */
    uint32_t v[1000], back[1000];
    unsigned seed = 12345;
    for (int width = 1; width <= 32; width += (width < 4 ? 1 : 7)) {
        uint32_t mask = width == 32 ? UINT32_MAX : (1u << width) - 1;
        for (int shape = 0; shape < 4; shape++) {
            size_t n = shape == 3 ? 7 : 1000;
            for (size_t i = 0; i < n; i++) {
                seed = seed * 1103515245u + 12345u;
                uint32_t r = seed >> 3;
                v[i] = (shape == 0 ? r : shape == 1 ? (uint32_t)(i / 37) : (i % 50 < 20 ? 3 : r)) &
                       mask;
            }
            b.n = 0;
            pq_rle_u32(&b, v, n, width);
            CHECK(!cf_buf_failed(&b));
            CHECK(decode_rle((const unsigned char *)b.p, b.n, width, back, n) == n && memcmp(v, back, n * 4) == 0);
        }
    }
    cf_buf_free(&b);
}

/* ---- dictionary and statistics bounds -------------------------------------------------- */

static void test_dict(void)
{
    pq_dict d;
    memset(&d, 0, sizeof d);
    char key[32];
    int bad = 0;
    for (int i = 0; i < 5000; i++) {
        int n = snprintf(key, sizeof key, "value-%d", i);
        if (pq_dict_find(&d, key, (size_t)n) != -1 || pq_dict_add(&d, key, (size_t)n) != i ||
            pq_dict_find(&d, key, (size_t)n) != i)
            bad++;
    }
    CHECK(bad == 0);
    CHECK(d.n == 5000);
    CHECK(pq_dict_find(&d, "value-4321", 10) == 4321);
    CHECK(pq_dict_find(&d, "value-5000", 10) == -1);
    CHECK(pq_dict_find(&d, "", 0) == -1);
    CHECK(pq_dict_add(&d, "", 0) == 5000 && pq_dict_find(&d, "", 0) == 5000);
    /* the PLAIN dictionary page: length-prefixed entries in order */
    CHECK(memcmp(d.plain.p, "\x07\0\0\0value-0\x07\0\0\0value-1", 22) == 0);
    pq_dict_reset(&d);
    CHECK(d.n == 0 && pq_dict_find(&d, "value-1", 7) == -1);
    pq_dict_free(&d);
}

static void test_stat_bounds(void)
{
    unsigned char out[PQ_STAT_MAX + 4];
    int exact;
    const unsigned char *shortv = (const unsigned char *)"short";
    CHECK(pq_stat_min(shortv, 5, &exact) == 5 && exact);
    CHECK(pq_stat_max(shortv, 5, out, &exact) == 5 && exact && memcmp(out, "short", 5) == 0);

    unsigned char s[PQ_STAT_KEEP];
    memset(s, 'a', sizeof s); /* 65 bytes: longer than the bound */
    CHECK(pq_stat_min(s, sizeof s, &exact) == PQ_STAT_MAX && !exact);
    size_t n = pq_stat_max(s, sizeof s, out, &exact);
    CHECK(n == PQ_STAT_MAX && !exact && out[63] == 'b' && memcmp(out, s, 63) == 0);

    /* a cut through a multibyte character backs up to its start */
    memset(s, 'a', sizeof s);
    memcpy(s + 62, "\xe2\x82\xac", 3); /* € over 62..64: the 64-byte cut falls inside it */
    CHECK(pq_stat_min(s, sizeof s, &exact) == 62 && !exact);

    /* incrementing: 0x7F grows into a two-byte character */
    memset(s, 'a', sizeof s);
    s[63] = 0x7F;
    n = pq_stat_max(s, sizeof s, out, &exact);
    CHECK(n == 65 && memcmp(out + 63, "\xc2\x80", 2) == 0);

    /* U+10FFFF cannot grow: the character before it is incremented */
    memset(s, 'a', sizeof s);
    memcpy(s + 60, "\xf4\x8f\xbf\xbf", 4); /* U+10FFFF at 60..63 */
    n = pq_stat_max(s, sizeof s, out, &exact);
    CHECK(n == 60 && out[59] == 'b');

    /* surrogates are skipped: U+D7FF + 1 is U+E000 */
    memset(s, 'a', sizeof s);
    memcpy(s + 61, "\xed\x9f\xbf", 3); /* U+D7FF at 61..63 */
    n = pq_stat_max(s, sizeof s, out, &exact);
    CHECK(n == 64 && memcmp(out + 61, "\xee\x80\x80", 3) == 0);
}

/* ---- text ------------------------------------------------------------------------------ */

static void test_text(void)
{
    cf_buf b = CF_BUF_INIT;
    const char in[] = "a\"b\\c\n\r\t\b\f\x01\x1f\x7f é😀";
    cf_buf_json_string(&b, in, sizeof in - 1);
    const char want[] = "\"a\\\"b\\\\c\\n\\r\\t\\b\\f\\u0001\\u001f\\u007f é😀\"";
    CHECK(b.n == sizeof want - 1 && memcmp(b.p, want, b.n) == 0);
    cf_buf_free(&b);

    char num[32];
    cf_format_double(0.1, num);
    CHECK_STR(num, "0.1");
    cf_format_double(0.1 + 0.2, num);
    CHECK_STR(num, "0.30000000000000004");
    cf_format_double(10.0, num);
    CHECK_STR(num, "10.0");
    cf_format_double(-0.0, num);
    CHECK_STR(num, "-0.0");
    cf_format_double(1e21, num);
    CHECK_STR(num, "1e+21");
    cf_format_double(5e-324, num);
    CHECK_STR(num, "4.94065645841247e-324");
    cf_format_double(1.0 / 3.0, num);
    CHECK_STR(num, "0.3333333333333333");
    /* every double round-trips */
    unsigned long long x = 0x9E3779B97F4A7C15ull;
    int bad = 0;
    for (int i = 0; i < 20000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        double d;
        memcpy(&d, &x, 8);
        if (!isfinite(d))
            continue;
        cf_format_double(d, num);
        if (strtod(num, NULL) != d)
            bad++;
    }
    CHECK(bad == 0);

    CHECK(invalid_at("plain ascii text, long enough for the fast path", 47) == -1);
    CHECK(invalid_at("é日😀\xf4\x8f\xbf\xbf", 13) == -1);
    CHECK(invalid_at("ok\xc0\x80", 4) == 2);            /* overlong */
    CHECK(invalid_at("abcdefgh\xed\xa0\x80", 11) == 8); /* surrogate */
    CHECK(invalid_at("\xf4\x90\x80\x80", 4) == 0);      /* past U+10FFFF */
    CHECK(invalid_at("x\xe6\x97", 3) == 1);             /* truncated */
    CHECK(invalid_at("x\xff", 2) == 1);
    CHECK(invalid_at("\x80", 1) == 0);                  /* lone continuation */
    CHECK(invalid_at("", 0) == -1);
}

/* The plain per-character definition, to check the fast paths against. */
static int64_t utf8_reference(const unsigned char *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = p[i], len = c < 0x80 ? 1 : c < 0xC0 ? 0 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : c < 0xF8 ? 4 : 0;
        if (len == 0 || i + len > n)
            return (int64_t)i;
        uint32_t cp = len == 1 ? c : c & (0x7F >> len);
        for (unsigned k = 1; k < len; k++) {
            if ((p[i + k] & 0xC0) != 0x80)
                return (int64_t)i;
            cp = cp << 6 | (p[i + k] & 0x3F);
        }
        static const uint32_t min[5] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < min[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return (int64_t)i;
        i += len;
    }
    return -1;
}

static void test_utf8_fuzz(void)
{
    static const char *const pieces[] = {"a", "hello world ", "\xc3\xa9", "\xe6\x97\xa5", "\xf0\x9f\x98\x80",
                                         "\x80", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe6",
                                         "\xf0\x9f", "\xff", "\x7f", "0123456789abcdef"};
    unsigned seed = 7;
    int bad = 0, invalid = 0;
    for (int round = 0; round < 20000; round++) {
        unsigned char buf[256];
        size_t n = 0;
        seed = seed * 1103515245u + 12345u;
        int parts = (int)(seed >> 16) % 24;
        for (int k = 0; k < parts; k++) {
            seed = seed * 1103515245u + 12345u;
            unsigned pick = (seed >> 16) % 14;
            /* mostly valid pieces, an invalid one now and then */
            if (pick >= 5 && pick <= 11 && (seed >> 8) % 4)
                pick = (seed >> 4) % 5;
            size_t len = strlen(pieces[pick]);
            if (n + len > sizeof buf)
                break;
            memcpy(buf + n, pieces[pick], len);
            n += len;
        }
        int64_t want = utf8_reference(buf, n);
        if (invalid_at((const char *)buf, n) != want)
            bad++;
        invalid += want >= 0;
    }
    CHECK(bad == 0);
    CHECK(invalid > 2000 && invalid < 18000); /* both kinds were tried */
}

static void row_init(cf_export_row *r, const char *id, cf_str prompt, cf_str response,
                     cf_str source, double score, const char *event)
{
    memset(r, 0, sizeof *r);
    r->id = cf_cstr(id);
    r->prompt = prompt;
    r->response = response;
    r->source = source;
    r->score = score;
    r->inference_event_id = cf_cstr(event);
    r->deployment_id = cf_cstr("d");
    r->created_at = CF_NULL_INT;
    r->quality_score = NAN;
    for (int i = 0; i < CF_EXPORT_SIGNAL_TYPES; i++)
        r->signals[i] = CF_NULL_INT;
}

/* cols from a comma-separated list of column names (all must exist). */
static void pick_columns(cf_export_cols *cols, const char *list)
{
    cols->n = 0;
    while (*list) {
        size_t n = strcspn(list, ",");
        int c = cf_export_column_find(list, n);
        CHECK(c >= 0);
        if (c >= 0)
            cols->idx[cols->n++] = (unsigned char)c;
        list += n + (list[n] == ',');
    }
}

static void test_writers(void)
{
    cf_err err;
    cf_out o;
    cf_row_writer *w;
    cf_export_row rows[3];
    row_init(&rows[0], "c1", cf_cstr("say \"hi\""), cf_cstr("a,b"), cf_cstr(""), 1.5, "e1");
    row_init(&rows[1], "c2", CF_NULL_STR, cf_cstr("x\r\ny"), cf_cstr("s"), NAN, "e2");
    row_init(&rows[2], "c3", cf_cstr("p"), cf_cstr("r"), cf_cstr("s"), 1e300 * 1e300, "e3");
    cf_export_cols four;
    pick_columns(&four, "prompt,response,source,score");

    CHECK(cf_out_open(&o, "w/out.csv", &err) == 0 && cf_csv_writer(&w, &o, &four, &err) == 0);
    for (int i = 0; i < 3; i++)
        CHECK(w->row(w, &rows[i], &err) == 0);
    CHECK(w->finish(w, &err) == 0);
    w->destroy(w);
    CHECK(cf_out_publish(&o, CF_OUT_REPLACE, &err) == 0);
    cf_out_settle(&o);
    cf_out_abort(&o);
    CHECK(file_is("w/out.csv", "prompt,response,source,score\r\n\"say \"\"hi\"\"\",\"a,b\",\"\",1.5\r\n"
                               ",\"x\r\ny\",s,\r\np,r,s,inf\r\n"));

    CHECK(cf_out_open(&o, "w/out.jsonl", &err) == 0 && cf_jsonl_writer(&w, &o, &four, &err) == 0);
    CHECK(w->row(w, &rows[0], &err) == 0 && w->row(w, &rows[1], &err) == 0);
    CHECK(w->row(w, &rows[2], &err) == -1 && err.code == CF_EINVAL);
    CHECK_STR(err.msg, "curated example 'c3': score is infinite, which JSON cannot hold");
    CHECK(w->finish(w, &err) == 0);
    w->destroy(w);
    CHECK(cf_out_publish(&o, CF_OUT_REPLACE, &err) == 0);
    cf_out_settle(&o);
    cf_out_abort(&o);
    CHECK(file_is("w/out.jsonl",
                  "{\"prompt\":\"say \\\"hi\\\"\",\"response\":\"a,b\",\"source\":\"\",\"score\":1.5}\n"
                  "{\"prompt\":null,\"response\":\"x\\r\\ny\",\"source\":\"s\",\"score\":null}\n"));

    /* an empty CSV still has its header */
    CHECK(cf_out_open(&o, "w/empty.csv", &err) == 0 && cf_csv_writer(&w, &o, &four, &err) == 0);
    CHECK(w->finish(w, &err) == 0);
    w->destroy(w);
    CHECK(cf_out_publish(&o, CF_OUT_REPLACE, &err) == 0);
    cf_out_settle(&o);
    cf_out_abort(&o);
    CHECK(file_is("w/empty.csv", "prompt,response,source,score\r\n"));

    /* a Parquet file starts and ends with PAR1, the footer length before the end */
    CHECK(cf_out_open(&o, "w/x.parquet", &err) == 0 &&
          cf_parquet_row_writer(&w, &o, NULL, NULL, &err) == 0);
    CHECK(w->row(w, &rows[0], &err) == 0 && w->row(w, &rows[1], &err) == 0);
    CHECK(w->finish(w, &err) == 0);
    w->destroy(w);
    CHECK(cf_out_publish(&o, CF_OUT_REPLACE, &err) == 0);
    cf_out_settle(&o);
    cf_out_abort(&o);
    size_t n;
    char *pq = slurp("w/x.parquet", &n);
    CHECK(pq && n > 12 && memcmp(pq, "PAR1", 4) == 0 && memcmp(pq + n - 4, "PAR1", 4) == 0);
    if (pq) {
        uint32_t flen = (uint32_t)(unsigned char)pq[n - 8] | (uint32_t)(unsigned char)pq[n - 7] << 8 |
                        (uint32_t)(unsigned char)pq[n - 6] << 16 |
                        (uint32_t)(unsigned char)pq[n - 5] << 24;
        CHECK(flen > 0 && flen < n - 12);
        int found = 0;
        for (size_t i = n - 8 - flen; i + 18 <= n - 8 && !found; i++)
            found = memcmp(pq + i, "inference_event_id", 18) == 0;
        CHECK(found);
    }
    free(pq);

    /* DuckDB reads it back (a missing DuckDB fails the check) */
    const char *src = getenv("CF_SOURCE_DIR");
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "node '%s/tests/lua/duckdb_query.cjs' '%s/.cache/npm/node_modules/@duckdb/node-api' "
             "--sql \"SELECT prompt, response, source, score, inference_event_id AS e "
             "FROM 'w/x.parquet'\" > w/duck.json",
             src ? src : ".", src ? src : ".");
    CHECK(system(cmd) == 0);
    CHECK(file_is("w/duck.json",
                  "[{\"prompt\":\"say \\\"hi\\\"\",\"response\":\"a,b\",\"source\":\"\","
                  "\"score\":1.5,\"e\":\"e1\"},{\"prompt\":null,\"response\":\"x\\r\\ny\","
                  "\"source\":\"s\",\"score\":null,\"e\":\"e2\"}]\n"));
}

/* Rows with what traces them to production: typed columns in every format. */
static void test_trace_columns(void)
{
    cf_err err;
    cf_out o;
    cf_row_writer *w;
    cf_export_row r;
    row_init(&r, "c1", cf_cstr("p"), cf_cstr("r"), cf_cstr("high_quality"), 0.5, "e1");
    r.model_version_id = cf_cstr("v2");
    r.created_at = 1796514365000001;  /* 2026-12-05T23:46:05.000001Z */
    r.quality_score = 0.75;
    for (int i = 0; i < CF_EXPORT_SIGNAL_TYPES; i++)
        r.signals[i] = i;
    cf_export_row gone;  /* its inference event is gone: those columns are absent */
    row_init(&gone, "c2", cf_cstr("p2"), cf_cstr("r2"), cf_cstr("s"), NAN, "e2");

    CHECK(cf_out_open(&o, "w/t.jsonl", &err) == 0 && cf_jsonl_writer(&w, &o, NULL, &err) == 0);
    CHECK(w->row(w, &r, &err) == 0 && w->row(w, &gone, &err) == 0 && w->finish(w, &err) == 0);
    w->destroy(w);
    CHECK(cf_out_publish(&o, CF_OUT_REPLACE, &err) == 0);
    cf_out_settle(&o);
    cf_out_abort(&o);
    CHECK(file_is("w/t.jsonl",
                  "{\"prompt\":\"p\",\"response\":\"r\",\"source\":\"high_quality\",\"score\":0.5,"
                  "\"inference_event_id\":\"e1\",\"deployment_id\":\"d\",\"model_version_id\":\"v2\","
                  "\"created_at\":\"2026-12-05T23:46:05.000001Z\",\"quality_score\":0.75,"
                  "\"signals_thumbs_up\":0,\"signals_thumbs_down\":1,\"signals_regenerate\":2,"
                  "\"signals_edit\":3,\"signals_copy\":4,\"signals_share\":5,\"signals_report\":6}\n"
                  "{\"prompt\":\"p2\",\"response\":\"r2\",\"source\":\"s\",\"score\":null,"
                  "\"inference_event_id\":\"e2\",\"deployment_id\":\"d\",\"model_version_id\":null,"
                  "\"created_at\":null,\"quality_score\":null,\"signals_thumbs_up\":null,"
                  "\"signals_thumbs_down\":null,\"signals_regenerate\":null,\"signals_edit\":null,"
                  "\"signals_copy\":null,\"signals_share\":null,\"signals_report\":null}\n"));

    cf_export_cols some;
    pick_columns(&some, "inference_event_id,created_at,signals_edit,prompt");
    CHECK(cf_out_open(&o, "w/t.csv", &err) == 0 && cf_csv_writer(&w, &o, &some, &err) == 0);
    CHECK(w->row(w, &r, &err) == 0 && w->row(w, &gone, &err) == 0 && w->finish(w, &err) == 0);
    w->destroy(w);
    CHECK(cf_out_publish(&o, CF_OUT_REPLACE, &err) == 0);
    cf_out_settle(&o);
    cf_out_abort(&o);
    CHECK(file_is("w/t.csv", "inference_event_id,created_at,signals_edit,prompt\r\n"
                             "e1,2026-12-05T23:46:05.000001Z,3,p\r\ne2,,,p2\r\n"));

    CHECK(cf_out_open(&o, "w/t.parquet", &err) == 0 &&
          cf_parquet_row_writer(&w, &o, NULL, NULL, &err) == 0);
    CHECK(w->row(w, &r, &err) == 0 && w->row(w, &gone, &err) == 0 && w->finish(w, &err) == 0);
    w->destroy(w);
    CHECK(cf_out_publish(&o, CF_OUT_REPLACE, &err) == 0);
    cf_out_settle(&o);
    cf_out_abort(&o);
    const char *src = getenv("CF_SOURCE_DIR");
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "node '%s/tests/lua/duckdb_query.cjs' '%s/.cache/npm/node_modules/@duckdb/node-api' "
             "--sql \"SELECT model_version_id AS m, typeof(created_at) AS tt, "
             "epoch_us(created_at) AS us, typeof(quality_score) AS qt, quality_score AS q, "
             "typeof(signals_edit) AS st, signals_report AS rep FROM 'w/t.parquet' "
             "ORDER BY inference_event_id\" > w/t.json",
             src ? src : ".", src ? src : ".");
    CHECK(system(cmd) == 0);
    CHECK(file_is("w/t.json",
                  "[{\"m\":\"v2\",\"tt\":\"TIMESTAMP WITH TIME ZONE\",\"us\":\"1796514365000001\","
                  "\"qt\":\"DOUBLE\",\"q\":0.75,\"st\":\"BIGINT\",\"rep\":\"6\"},"
                  "{\"m\":null,\"tt\":\"TIMESTAMP WITH TIME ZONE\",\"us\":null,\"qt\":\"DOUBLE\","
                  "\"q\":null,\"st\":\"BIGINT\",\"rep\":null}]\n"));
}

/* The chat format: system prompt and chat turns from the event's metadata. */
static void test_chat_writer(void)
{
    cf_err err;
    cf_out o;
    cf_row_writer *w;
    cf_export_row plain, sys, chat, bad;
    row_init(&plain, "c1", cf_cstr("hi"), cf_cstr("hello"), cf_cstr("s"), NAN, "e1");
    row_init(&sys, "c2", cf_cstr("q"), cf_cstr("a"), cf_cstr("s"), NAN, "e2");
    sys.metadata = cf_cstr("{\"x\":[1,{\"y\":2}],\"system_prompt\":\"Be \\\"brief\\\"\"}");
    row_init(&chat, "c3",
             cf_cstr("[{\"role\":\"user\",\"content\":\"one\"},"
                     " {\"content\":\"two\",\"role\":\"assistant\"}, {\"role\":\"user\",\"content\":\"\\u00e9\"}]"),
             cf_cstr("three"), cf_cstr("s"), NAN, "e3");
    chat.metadata = cf_cstr("{\"prompt_format\":\"chat\",\"system_prompt\":\"S\"}");
    row_init(&bad, "c4", cf_cstr("not json"), cf_cstr("a"), cf_cstr("s"), NAN, "e4");
    bad.metadata = cf_cstr("{\"prompt_format\":\"chat\"}");

    CHECK(cf_out_open(&o, "w/chat.jsonl", &err) == 0 && cf_chat_writer(&w, &o, &err) == 0);
    CHECK(w->row(w, &plain, &err) == 0 && w->row(w, &sys, &err) == 0 &&
          w->row(w, &chat, &err) == 0);
    CHECK(w->row(w, &bad, &err) == -1 && err.code == CF_EINVAL);
    CHECK_STR(err.msg, "curated example 'c4': prompt_format is \"chat\" but the prompt is not a "
                       "JSON array of {\"role\", \"content\"} turns");
    CHECK(w->finish(w, &err) == 0);
    w->destroy(w);
    CHECK(cf_out_publish(&o, CF_OUT_REPLACE, &err) == 0);
    cf_out_settle(&o);
    cf_out_abort(&o);
    CHECK(file_is("w/chat.jsonl",
                  "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"},"
                  "{\"role\":\"assistant\",\"content\":\"hello\"}]}\n"
                  "{\"messages\":[{\"role\":\"system\",\"content\":\"Be \\\"brief\\\"\"},"
                  "{\"role\":\"user\",\"content\":\"q\"},{\"role\":\"assistant\",\"content\":\"a\"}]}\n"
                  "{\"messages\":[{\"role\":\"system\",\"content\":\"S\"},"
                  "{\"role\":\"user\",\"content\":\"one\"},{\"role\":\"assistant\",\"content\":\"two\"},"
                  "{\"role\":\"user\",\"content\":\"\xc3\xa9\"},"
                  "{\"role\":\"assistant\",\"content\":\"three\"}]}\n"));
    CHECK(cf_exporter_find("messages", 8) == cf_exporter_find("openai-chat", 11) &&
          cf_exporter_find("messages", 8) != NULL);
}

/* ---- atomic publication ------------------------------------------------------------------ */

static const char *const DS_OWNS[] = {"dataset_info.json", NULL};

static void test_out(void)
{
    cf_err err;
    cf_out o;
    mkdir("o", 0777);
    /* replace: the old content waits as a backup until settled or retracted */
    spit("o/a.txt", "old");
    CHECK(cf_out_open(&o, "o/a.txt", &err) == 0);
    CHECK(o.tmp && strstr(o.tmp, "o/.a.txt.tmp-") == o.tmp && exists(o.tmp));
    CHECK(cf_out_write(&o, "new", 3, &err) == 0);
    CHECK(file_is("o/a.txt", "old")); /* nothing visible before publishing */
    CHECK(cf_out_publish(&o, CF_OUT_REPLACE, &err) == 0);
    CHECK(file_is("o/a.txt", "new"));
    CHECK(cf_out_retract(&o, &err) == 0);
    CHECK(file_is("o/a.txt", "old"));
    cf_out_abort(&o);

    /* abort before publishing removes the temporary */
    CHECK(cf_out_open(&o, "o/b.txt", &err) == 0);
    char *tmp = strdup(o.tmp);
    cf_out_abort(&o);
    CHECK(!exists(tmp) && !exists("o/b.txt"));
    free(tmp);

    /* unique: never replaces, numbers the name instead */
    for (int i = 0; i < 3; i++) {
        CHECK(cf_out_open(&o, "o/u.jsonl", &err) == 0 && cf_out_write(&o, "x", 1, &err) == 0);
        CHECK(cf_out_publish(&o, CF_OUT_UNIQUE, &err) == 0);
        CHECK_STR(o.path, i == 0 ? "o/u.jsonl" : i == 1 ? "o/u_2.jsonl" : "o/u_3.jsonl");
        cf_out_settle(&o);
        cf_out_abort(&o);
    }
    /* retracting a fresh file removes it */
    CHECK(cf_out_open(&o, "o/new/deep/c.txt", &err) == 0 && cf_out_publish(&o, 0, &err) == 0);
    CHECK(exists("o/new/deep/c.txt") && cf_out_retract(&o, &err) == 0 && !exists("o/new/deep/c.txt"));
    cf_out_abort(&o);
    /* a directory is not a file */
    CHECK(cf_out_open(&o, "o", &err) == -1 && err.code == CF_EINVAL);
    CHECK_STR(err.msg, "output path o is a directory");
    cf_out_abort(&o);

    /* directories: replace an earlier dataset (exchange), retract restores it */
    CHECK(cf_out_open_dir(&o, "o/ds", &err) == 0);
    o.owns = DS_OWNS;
    char *inner = cf_path_join(o.tmp, "dataset_info.json");
    spit(inner, "first");
    free(inner);
    CHECK(cf_out_publish(&o, CF_OUT_REPLACE, &err) == 0 && file_is("o/ds/dataset_info.json", "first"));
    cf_out_settle(&o);
    cf_out_abort(&o);
    CHECK(cf_out_open_dir(&o, "o/ds/", &err) == 0);
    o.owns = DS_OWNS;
    inner = cf_path_join(o.tmp, "dataset_info.json");
    spit(inner, "second");
    free(inner);
    CHECK(cf_out_publish(&o, CF_OUT_REPLACE, &err) == 0 && file_is("o/ds/dataset_info.json", "second"));
    CHECK(cf_out_retract(&o, &err) == 0 && file_is("o/ds/dataset_info.json", "first"));
    cf_out_abort(&o);
    /* ... but never a directory that is not one */
    mkdir("o/home", 0777);
    spit("o/home/notes.txt", "keep");
    CHECK(cf_out_open_dir(&o, "o/home", &err) == 0);
    CHECK(cf_out_publish(&o, CF_OUT_REPLACE, &err) == -1 && err.code == CF_EINVAL);
    cf_out_abort(&o);
    CHECK(file_is("o/home/notes.txt", "keep"));
    /* nor an earlier dataset that holds anything else besides */
    spit("o/home/dataset_info.json", "mine");
    CHECK(cf_out_open_dir(&o, "o/home", &err) == 0);
    o.owns = DS_OWNS;
    CHECK(cf_out_publish(&o, CF_OUT_REPLACE, &err) == -1 && err.code == CF_EINVAL);
    CHECK(strstr(err.msg, "holds notes.txt, which an export did not write") != NULL);
    cf_out_abort(&o);
    CHECK(file_is("o/home/notes.txt", "keep") && file_is("o/home/dataset_info.json", "mine"));

    /* a file replaces only a regular file: never a FIFO or a symlink */
    CHECK(mkfifo("o/fifo", 0666) == 0 && symlink("a.txt", "o/link") == 0);
    CHECK(cf_out_open(&o, "o/fifo", &err) == -1 && err.code == CF_EINVAL);
    CHECK_STR(err.msg, "output path o/fifo exists and is a FIFO, not a regular file: "
                       "refusing to replace it");
    cf_out_abort(&o);
    CHECK(cf_out_open(&o, "o/link", &err) == -1 && strstr(err.msg, "a symbolic link") != NULL);
    cf_out_abort(&o);
    /* ... also when it appears between opening and publishing */
    CHECK(cf_out_open(&o, "o/late", &err) == 0 && symlink("a.txt", "o/late") == 0);
    CHECK(cf_out_publish(&o, CF_OUT_REPLACE, &err) == -1 && err.code == CF_EINVAL);
    cf_out_abort(&o);
    struct stat st;
    CHECK(lstat("o/fifo", &st) == 0 && S_ISFIFO(st.st_mode));
    CHECK(lstat("o/late", &st) == 0 && S_ISLNK(st.st_mode));
    CHECK(cf_remove_tree("o") == 0 && !exists("o"));
}

/* ---- the driver against a store ------------------------------------------------------------ */

#define DB "test_export.db"

static cf_store *fresh_store(int busy_ms)
{
    unlink(DB);
    unlink(DB "-wal");
    unlink(DB "-shm");
    cf_store *s = NULL;
    cf_err err;
    cf_store_opts so = {.busy_timeout_ms = busy_ms};
    if (cf_store_open("sqlite:" DB, &so, &s, &err) || cf_store_migrate(s, NULL, &err)) {
        fprintf(stderr, "store: %s\n", err.msg);
        return NULL;
    }
    return s;
}

static void add_curated(cf_store *s, int n, size_t text_len)
{
    char *text = malloc(text_len + 1);
    memset(text, 'x', text_len);
    text[text_len] = '\0';
    cf_curated *c = calloc((size_t)n, sizeof *c);
    char (*ids)[16] = calloc((size_t)n, 16);
    char **texts = calloc((size_t)n, sizeof *texts);
    for (int i = 0; i < n; i++) {
        snprintf(ids[i], 16, "c%d", i);
        texts[i] = strdup(text);
        memcpy(texts[i], ids[i], strlen(ids[i]) < text_len ? strlen(ids[i]) : text_len);
        c[i].id = cf_cstr(ids[i]);
        c[i].inference_event_id = cf_cstr("e");
        c[i].deployment_id = cf_cstr("d");
        c[i].curation_source = cf_cstr("high_quality");
        c[i].curation_score = i;
        c[i].prompt = cf_cstr(texts[i]); /* distinct: no dictionary shrinks them */
        c[i].response = cf_cstr("r");
    }
    cf_err err;
    CHECK(cf_store_insert_curated(s, c, (size_t)n, &err) == n);
    for (int i = 0; i < n; i++)
        free(texts[i]);
    free(texts);
    free(ids);
    free(c);
    free(text);
}

static int64_t count_exported(cf_store *s, int exported)
{
    cf_query q;
    cf_query_init(&q);
    q.deployment_id = cf_cstr("d");
    q.exported = exported;
    int64_t n = -1;
    cf_err err;
    cf_store_count(s, CF_KIND_CURATED, &q, &n, &err);
    return n;
}

static int progress_calls;
static int64_t progress_last;
static void on_progress(void *ud, int64_t done, int64_t total, uint64_t bytes)
{
    (void)ud;
    (void)bytes;
    progress_calls++;
    progress_last = done;
    CHECK(total == 5000);
}

static void test_driver_locked_database(void)
{
    cf_store *s = fresh_store(100);
    add_curated(s, 5000, 20);
    spit("prev.jsonl", "previous export\n");
    /* another connection holds the write lock: marking fails */
    sqlite3 *other;
    CHECK(sqlite3_open(DB, &other) == SQLITE_OK);
    CHECK(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK);
    cf_export_opts o;
    cf_export_opts_init(&o);
    o.format = cf_exporter_find("jsonl", 5);
    o.path = "prev.jsonl";
    o.deployment_id = cf_cstr("d");
    o.batch_id = cf_cstr("b1");
    o.progress = on_progress;
    cf_export_result r;
    cf_err err;
    CHECK(cf_export_curated(s, &o, &r, &err) == -1 && err.code == CF_EDB);
    CHECK(strstr(err.msg, "locked") != NULL);
    CHECK(r.path == NULL && r.count == 0);
    CHECK(file_is("prev.jsonl", "previous export\n")); /* the earlier file is back */
    CHECK(sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(other);
    CHECK(count_exported(s, 1) == 0);

    /* lock gone: the same export goes through, with progress */
    progress_calls = 0;
    CHECK(cf_export_curated(s, &o, &r, &err) == 0);
    CHECK(r.count == 5000 && r.marked == 5000 && r.path && strcmp(r.path, "prev.jsonl") == 0);
    CHECK(progress_calls >= 2 && progress_last == 5000);
    cf_export_result_free(&r);
    CHECK(count_exported(s, 1) == 5000 && count_exported(s, 0) == 0);
    unlink("prev.jsonl");
    cf_store_close(s);
}

/* In a child: the file size limit stands in for a full disk (write fails
 * with EFBIG once the export file reaches 256 KB; below that the
 * database's WAL has room for the export's claim and its release). */
static void test_driver_disk_full(void)
{
    cf_store *s = fresh_store(1000);
    add_curated(s, 200, 2000);
    cf_store_close(s);
    unlink("full.out");
    cf_remove_tree("full_dir");
    for (size_t f = 0; f < cf_exporter_count(); f++) {
        const cf_exporter *x = cf_exporter_at(f);
        if (x->kind != CF_EXPORT_CURATED)
            continue;
        pid_t pid = fork();
        if (pid == 0) {
            signal(SIGXFSZ, SIG_IGN);
            struct rlimit rl = {256 * 1024, 256 * 1024};
            setrlimit(RLIMIT_FSIZE, &rl);
            cf_store *cs = NULL;
            cf_err err;
            if (cf_store_open("sqlite:" DB, NULL, &cs, &err))
                _exit(3);
            cf_export_opts o;
            cf_export_opts_init(&o);
            o.format = x;
            o.path = x->directory ? "full_dir" : "full.out";
            o.deployment_id = cf_cstr("d");
            o.batch_id = cf_cstr("b");
            o.parquet.codec = CF_PQ_UNCOMPRESSED;
            cf_export_result r;
            int rc = cf_export_curated(cs, &o, &r, &err);
            cf_store_close(cs);
            if (rc == 0)
                _exit(4);
            if (!strstr(err.msg, "File too large"))
                fprintf(stderr, "format %s: %s\n", x->name, err.msg);
            _exit(strstr(err.msg, "File too large") ? 0 : 5);
        }
        int status = 0;
        waitpid(pid, &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            fprintf(stderr, "format %s: status %d\n", x->name, status);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        CHECK(!exists("full.out") && !exists("full_dir"));
        /* Opened and closed without the limit: the WAL the child could not
         * checkpoint is folded back, so the next child starts with room. */
        cf_store *w = NULL;
        cf_err werr;
        CHECK(cf_store_open("sqlite:" DB, NULL, &w, &werr) == 0);
        cf_store_close(w);
    }
    s = fresh_store(1000); /* reopened: nothing was marked */
    CHECK(count_exported(s, 1) == 0);
    cf_store_close(s);
}

/* ---- the registry of formats ----------------------------------------------------------------- */

/* Every row is complete for its kind, names are unique and found, and each
 * driver refuses a format of the other kind. */
static void test_registry(void)
{
    size_t n = cf_exporter_count();
    CHECK(n > 0 && cf_exporter_at(n) == NULL);
    int kinds[2] = {0, 0};
    for (size_t i = 0; i < n; i++) {
        const cf_exporter *f = cf_exporter_at(i);
        CHECK(f->name && *f->name && f->extension && f->description && *f->description);
        if (!f->name)
            continue;
        for (size_t j = 0; j < i; j++)
            CHECK(strcmp(cf_exporter_at(j)->name, f->name) != 0); /* no duplicate name */
        CHECK(cf_exporter_find(f->name, strlen(f->name)) == f);
        CHECK(f->kind == CF_EXPORT_CURATED || f->kind == CF_EXPORT_PAIRS);
        if (f->kind == CF_EXPORT_CURATED) {
            CHECK(f->open_writer && !f->pair_line && f->n_signal_types == 0);
        } else {
            CHECK(f->pair_line && !f->open_writer && !f->directory);
            CHECK(f->signal_types && f->n_signal_types > 0 &&
                  f->n_signal_types <= CF_QUERY_MAX_SIGNAL_TYPES);
        }
        kinds[f->kind == CF_EXPORT_PAIRS]++;
    }
    CHECK(kinds[0] > 0 && kinds[1] > 0);
    CHECK(cf_exporter_find("xml", 3) == NULL && cf_exporter_find("json", 4) == NULL);
    CHECK(cf_exporter_first(CF_EXPORT_CURATED)->kind == CF_EXPORT_CURATED);
    CHECK(cf_exporter_first(CF_EXPORT_PAIRS)->kind == CF_EXPORT_PAIRS);

    cf_store *s = fresh_store(10);
    cf_err err;
    cf_export_result r;
    cf_export_opts o;
    cf_export_opts_init(&o);
    CHECK(o.format == cf_exporter_first(CF_EXPORT_CURATED));
    o.format = cf_exporter_first(CF_EXPORT_PAIRS);
    o.path = "kind.out";
    o.deployment_id = cf_cstr("d");
    o.batch_id = cf_cstr("b");
    CHECK(cf_export_curated(s, &o, &r, &err) == -1 && err.code == CF_EINVAL);
    CHECK(strstr(err.msg, "not a format of curated examples") != NULL);
    cf_pairs_opts po;
    cf_pairs_opts_init(&po);
    CHECK(po.format == cf_exporter_first(CF_EXPORT_PAIRS));
    po.format = cf_exporter_first(CF_EXPORT_CURATED);
    po.path = "kind.out";
    po.deployment_id = cf_cstr("d");
    CHECK(cf_export_pairs(s, &po, &r, &err) == -1 && err.code == CF_EINVAL);
    CHECK(!exists("kind.out"));
    cf_store_close(s);
}

/* ---- storage additions --------------------------------------------------------------------- */

typedef struct list_iter {
    const char *const *ids;
    int i, fail_at;
} list_iter;

static int next_id(void *ctx, cf_str *id, cf_err *err)
{
    list_iter *it = ctx;
    if (it->i == it->fail_at)
        return cf_fail(err, CF_EIO, "iterator failed");
    if (!it->ids[it->i])
        return 0;
    *id = cf_cstr(it->ids[it->i++]);
    return 1;
}

static void test_mark_stream_and_signal_filter(void)
{
    cf_store *s = fresh_store(1000);
    add_curated(s, 3, 5);
    const char *ids[] = {"c0", "c2", "missing", NULL};
    list_iter it = {ids, 0, 2};
    int64_t marked = -1;
    cf_err err;
    CHECK(cf_store_mark_curated_exported_stream(s, next_id, &it, cf_cstr("b"), &marked, &err) == -1);
    CHECK(count_exported(s, 1) == 0); /* all or nothing */
    it = (list_iter){ids, 0, -1};
    CHECK(cf_store_mark_curated_exported_stream(s, next_id, &it, cf_cstr("b"), &marked, &err) == 0);
    CHECK(marked == 2 && count_exported(s, 1) == 2 && count_exported(s, 0) == 1);
    it = (list_iter){ids, 0, -1};
    CHECK(cf_store_mark_curated_exported_stream(s, next_id, &it, CF_NULL_STR, &marked, &err) == -1 &&
          err.code == CF_EINVAL);

    cf_event ev[3];
    memset(ev, 0, sizeof ev);
    const char *eids[3] = {"e1", "e2", "e3"};
    for (int i = 0; i < 3; i++) {
        ev[i].id = cf_cstr(eids[i]);
        ev[i].deployment_id = cf_cstr("d");
        ev[i].prompt = cf_cstr("p");
        ev[i].response = cf_cstr("r");
        ev[i].latency_ms = ev[i].token_count = CF_NULL_INT;
        ev[i].quality_score = NAN;
    }
    CHECK(cf_store_insert_events(s, ev, 3, NULL, NULL, &err) == 3);
    cf_signal g;
    memset(&g, 0, sizeof g);
    g.inference_event_id = cf_cstr("e2");
    g.signal_type = cf_cstr("edit");
    g.edited_response = cf_cstr("better");
    CHECK(cf_store_insert_signal(s, &g, NULL, &err) == 0);
    g.inference_event_id = cf_cstr("e3");
    g.signal_type = cf_cstr("thumbs_down");
    g.edited_response = CF_NULL_STR;
    CHECK(cf_store_insert_signal(s, &g, NULL, &err) == 0);
    cf_str types[2] = {cf_cstr("thumbs_up"), cf_cstr("edit")};
    cf_query q;
    cf_query_init(&q);
    q.with_signal_types = types;
    q.n_with_signal_types = 2;
    q.include_signals = 1;
    cf_cursor *c;
    cf_row row;
    CHECK(cf_store_open_cursor(s, CF_KIND_EVENTS, &q, &c, &err) == 0);
    CHECK(cf_cursor_next(c, &row, &err) == 1);
    CHECK_MEM(row.event.id.p, row.event.id.n, "e2");
    CHECK(row.event.nsignals == 1);
    CHECK(cf_cursor_next(c, &row, &err) == 0);
    cf_cursor_close(c);
    int64_t n;
    q.include_signals = 0;
    types[0] = cf_cstr("thumbs_down");
    CHECK(cf_store_count(s, CF_KIND_EVENTS, &q, &n, &err) == 0 && n == 2);
    CHECK(cf_store_open_cursor(s, CF_KIND_CURATED, &q, &c, &err) == -1 && err.code == CF_EINVAL);
    cf_store_close(s);
}

int main(void)
{
    mkdir("w", 0777);
    RUN(test_thrift);
    RUN(test_rle);
    RUN(test_dict);
    RUN(test_stat_bounds);
    RUN(test_text);
    RUN(test_utf8_fuzz);
    RUN(test_writers);
    RUN(test_trace_columns);
    RUN(test_chat_writer);
    RUN(test_out);
    RUN(test_driver_locked_database);
    RUN(test_driver_disk_full);
    RUN(test_mark_stream_and_signal_filter);
    RUN(test_registry);
    return cf_test_done();
}
