/* JSON lines <-> events, with jansson (no Lua state needed). */
#include "crucible/cf_jsonl.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "crucible/cf_buf.h"

static const char *json_type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a fractional number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    default: return "null";
    }
}

static void set_value(cf_value *x, json_t *v)
{
    memset(x, 0, sizeof *x);
    x->type_name = json_type_name(v);
    switch (json_typeof(v)) {
    case JSON_STRING:
        x->type = CF_V_STRING;
        x->s.p = json_string_value(v);
        x->s.n = json_string_length(v);
        break;
    case JSON_INTEGER:
        x->type = CF_V_INT;
        x->i = (int64_t)json_integer_value(v);
        break;
    case JSON_REAL:
        x->type = CF_V_FLOAT;
        x->d = json_real_value(v);
        break;
    case JSON_OBJECT:
        x->type = CF_V_OBJECT;
        break;
    case JSON_NULL:
        x->type = CF_V_ABSENT;
        break;
    default:
        x->type = CF_V_OTHER;
    }
}

void cf_jsonl_doc_free(cf_jsonl_doc *doc)
{
    if (doc->root)
        json_decref((json_t *)doc->root);
    free(doc->meta);
    doc->root = NULL;
    doc->meta = NULL;
}

int cf_jsonl_parse(const char *line, size_t n, int unknown_to_metadata, cf_jsonl_doc *doc,
                   cf_event_in *in, cf_err *err)
{
    memset(in, 0, sizeof *in);
    in->object_name = "an object";
    doc->root = NULL;
    doc->meta = NULL;
    json_error_t je;
    json_t *root = json_loadb(line, n, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
    if (!root)
        return cf_fail(err, CF_EINVAL, "not valid JSON: %s (column %d)", je.text, je.column);
    doc->root = root;
    if (!json_is_object(root))
        return cf_fail(err, CF_EINVAL, "a line must be a JSON object, got %s",
                       json_type_name(root));
    json_t *meta = NULL;
    json_t *moved = NULL;
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v)
    {
        int f = cf_field_from_name(key, strlen(key));
        if (f >= 0) {
            set_value(&in->v[f], v);
            if (f == CF_F_METADATA && json_is_object(v))
                meta = v;
            continue;
        }
        if (unknown_to_metadata) {
            if (!moved && !(moved = json_object()))
                return cf_fail(err, CF_ENOMEM, "out of memory reading a line");
            json_object_set(moved, key, v);
        } else {
            if (!in->unknown_field)
                in->unknown_field = key;
            in->nunknown++;
        }
    }
    if (moved) {
        if (!meta && in->v[CF_F_METADATA].type != CF_V_ABSENT) {
            json_decref(moved); /* metadata is not an object: validation says so */
            moved = NULL;
        } else {
            json_t *merged = meta ? json_deep_copy(meta) : json_object();
            if (!merged) {
                json_decref(moved);
                return cf_fail(err, CF_ENOMEM, "out of memory reading a line");
            }
            json_object_foreach(moved, key, v)
            {
                if (json_object_get(merged, key)) {
                    /* the message first: key belongs to moved */
                    cf_fail(err, CF_EINVAL,
                            "invalid event: %.100s: given both at the top level and in metadata",
                            key);
                    json_decref(moved);
                    json_decref(merged);
                    return -1;
                }
                json_object_set(merged, key, v);
            }
            json_decref(moved);
            json_object_set_new(root, "metadata", merged); /* root owns it now */
            meta = merged;
            set_value(&in->v[CF_F_METADATA], merged);
        }
    }
    if (meta) {
        doc->meta = json_dumps(meta, JSON_COMPACT | JSON_REAL_PRECISION(17));
        if (!doc->meta)
            return cf_fail(err, CF_ENOMEM, "out of memory reading a line");
        in->metadata_json = cf_cstr(doc->meta);
    }
    return 0;
}

int cf_jsonl_write_event(cf_buf *b, const cf_event *ev)
{
    int rc = cf_buf_append(b, "{\"id\":", 6) || cf_buf_json_string(b, ev->id.p, ev->id.n)
             || cf_buf_append(b, ",\"deployment_id\":", 17)
             || cf_buf_json_string(b, ev->deployment_id.p, ev->deployment_id.n);
    if (!rc && ev->model_version_id.p)
        rc = cf_buf_append(b, ",\"model_version_id\":", 20)
             || cf_buf_json_string(b, ev->model_version_id.p, ev->model_version_id.n);
    if (!rc && ev->user_id_hash.p)
        rc = cf_buf_append(b, ",\"user_id_hash\":", 16)
             || cf_buf_json_string(b, ev->user_id_hash.p, ev->user_id_hash.n);
    if (!rc)
        rc = cf_buf_append(b, ",\"prompt\":", 10)
             || cf_buf_json_string(b, ev->prompt.p, ev->prompt.n)
             || cf_buf_append(b, ",\"response\":", 12)
             || cf_buf_json_string(b, ev->response.p, ev->response.n);
    if (!rc && ev->latency_ms != CF_NULL_INT)
        rc = cf_buf_append(b, ",\"latency_ms\":", 14) || cf_buf_int(b, ev->latency_ms);
    if (!rc && ev->token_count != CF_NULL_INT)
        rc = cf_buf_append(b, ",\"token_count\":", 15) || cf_buf_int(b, ev->token_count);
    if (!rc && !isnan(ev->quality_score))
        rc = cf_buf_append(b, ",\"quality_score\":", 17) || cf_buf_double(b, ev->quality_score);
    if (!rc && ev->metadata.p)
        rc = cf_buf_append(b, ",\"metadata\":", 12)
             || cf_buf_append(b, ev->metadata.p, ev->metadata.n);
    if (!rc && ev->inserted_at)
        rc = cf_buf_append(b, ",\"inserted_at\":", 15) || cf_buf_int(b, ev->inserted_at);
    if (!rc)
        rc = cf_buf_append(b, "}\n", 2);
    return rc ? -1 : 0;
}
