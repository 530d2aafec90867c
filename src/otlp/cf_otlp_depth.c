/*
 * The nesting guard run before protobuf-c unpacks an OTLP body
 * (cf_otlp.h). protobuf-c recurses once per nested message with no bound,
 * so a body of a few megabytes nesting kvlistValue in kvlistValue would
 * exhaust a worker thread's stack. This walks the body's fields with the
 * descriptors protoc-c compiled (no schema of its own): a length-delimited
 * field that the descriptor says is a message is walked in turn, up to
 * CF_OTLP_MAX_DEPTH levels. Decoding is left to protobuf-c.
 */
#include <stdint.h>

#include "crucible/otlp/cf_otlp.h"

static int varint_long(const uint8_t *p, size_t n, size_t *i, uint64_t *out)
{
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (*i >= n)
            return -1;
        uint8_t b = p[(*i)++];
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return 0;
        }
    }
    return -1;
}

static inline int varint(const uint8_t *p, size_t n, size_t *i, uint64_t *out)
{
    if (*i < n && p[*i] < 0x80) { /* one byte: nearly every key and length */
        *out = p[(*i)++];
        return 0;
    }
    return varint_long(p, n, i, out);
}

/* The field numbered id of d, NULL when none: where the numbers run from
 * 1 without gaps (most OTLP messages) the descriptor's fields, sorted by
 * number, are indexed by it; else protobuf-c looks for it. */
static const ProtobufCFieldDescriptor *field(const ProtobufCMessageDescriptor *d, uint64_t id)
{
    if (id - 1 < d->n_fields && d->fields[id - 1].id == id)
        return &d->fields[id - 1];
    return id <= UINT32_MAX ? protobuf_c_message_descriptor_get_field(d, (unsigned)id) : NULL;
}

/* 0; -1 malformed; -2 too deep */
static int walk(const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t n, int depth)
{
    if (depth > CF_OTLP_MAX_DEPTH)
        return -2;
    size_t i = 0;
    while (i < n) {
        uint64_t key, len;
        if (varint(p, n, &i, &key))
            return -1;
        switch (key & 7) {
        case 0:
            if (varint(p, n, &i, &len))
                return -1;
            break;
        case 1:
        case 5: {
            size_t w = (key & 7) == 1 ? 8 : 4;
            if (n - i < w)
                return -1;
            i += w;
            break;
        }
        case 2: {
            if (varint(p, n, &i, &len) || len > n - i)
                return -1;
            const ProtobufCFieldDescriptor *f = field(d, key >> 3);
            if (f && f->type == PROTOBUF_C_TYPE_MESSAGE) {
                int rc = walk(f->descriptor, p + i, (size_t)len, depth + 1);
                if (rc)
                    return rc;
            }
            i += (size_t)len;
            break;
        }
        default: /* groups (3, 4) are in no OTLP message */
            return -1;
        }
    }
    return 0;
}

int cf_otlp_depth_check(const ProtobufCMessageDescriptor *d, const void *p, size_t n,
                        cf_err *err)
{
    int rc = walk(d, p, n, 0);
    if (rc == -2)
        return cf_fail(err, CF_EINVAL, "the message nests deeper than %d levels",
                       CF_OTLP_MAX_DEPTH);
    if (rc)
        return cf_fail(err, CF_EINVAL, "not a valid protobuf %s (truncated or corrupt)",
                       d->name);
    return 0;
}
