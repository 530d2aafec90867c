/* Thrift compact protocol writer (see cf_thrift.h). */
#include "crucible/export/cf_thrift.h"

void cft_init(cf_thrift *t, cf_buf *b)
{
    t->b = b;
    t->depth = 0;
    t->last[0] = 0;
    t->overflow = 0;
}

static void push(cf_thrift *t)
{
    if (t->depth + 1 >= CFT_MAX_DEPTH) {
        t->overflow = 1;
        return;
    }
    t->last[++t->depth] = 0;
}

void cft_end(cf_thrift *t)
{
    cf_buf_putc(t->b, 0);
    if (t->depth > 0)
        t->depth--;
}

static void field(cf_thrift *t, int16_t id, int type)
{
    int delta = id - t->last[t->depth];
    if (delta > 0 && delta <= 15) {
        cf_buf_putc(t->b, (unsigned char)(delta << 4 | type));
    } else {
        cf_buf_putc(t->b, (unsigned char)type);
        cf_buf_uvarint(t->b, (uint32_t)(((uint32_t)id << 1) ^ (uint32_t)(id >> 15)));
    }
    t->last[t->depth] = id;
}

void cft_i16(cf_thrift *t, int16_t id, int16_t v)
{
    field(t, id, CFT_I16);
    cf_buf_uvarint(t->b, cft_zigzag64(v));
}

void cft_i32(cf_thrift *t, int16_t id, int32_t v)
{
    field(t, id, CFT_I32);
    cf_buf_uvarint(t->b, cft_zigzag64(v));
}

void cft_i64(cf_thrift *t, int16_t id, int64_t v)
{
    field(t, id, CFT_I64);
    cf_buf_uvarint(t->b, cft_zigzag64(v));
}

void cft_bool(cf_thrift *t, int16_t id, int v)
{
    field(t, id, v ? CFT_TRUE : CFT_FALSE);
}

void cft_binary(cf_thrift *t, int16_t id, const void *p, size_t n)
{
    field(t, id, CFT_BINARY);
    cf_buf_uvarint(t->b, n);
    cf_buf_append(t->b, p, n);
}

void cft_string(cf_thrift *t, int16_t id, const char *s)
{
    cft_binary(t, id, s, strlen(s));
}

void cft_struct(cf_thrift *t, int16_t id)
{
    field(t, id, CFT_STRUCT);
    push(t);
}

void cft_list(cf_thrift *t, int16_t id, int elem_type, size_t n)
{
    field(t, id, CFT_LIST);
    if (n < 15) {
        cf_buf_putc(t->b, (unsigned char)(n << 4 | (size_t)elem_type));
    } else {
        cf_buf_putc(t->b, (unsigned char)(0xF0 | elem_type));
        cf_buf_uvarint(t->b, n);
    }
}

void cft_elem_i32(cf_thrift *t, int32_t v) { cf_buf_uvarint(t->b, cft_zigzag64(v)); }

void cft_elem_binary(cf_thrift *t, const void *p, size_t n)
{
    cf_buf_uvarint(t->b, n);
    cf_buf_append(t->b, p, n);
}

void cft_elem_struct(cf_thrift *t) { push(t); }
