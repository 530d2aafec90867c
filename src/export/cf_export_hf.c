/*
 * The HuggingFace exporter: a dataset directory that datasets.load_dataset
 * reads as a "train" split.
 *
 *   README.md                           dataset card: YAML (configs, features,
 *                                       split sizes), then counts per source,
 *                                       export time, deployment, filters
 *   dataset_info.json                   the features: the chosen export
 *                                       columns with their dtypes
 *   data/train-00000-of-00001.parquet   the default config
 *   data/train-00000-of-00001.jsonl     config "jsonl": the same rows
 *
 * The directory given is a temporary one that the driver publishes whole.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crucible/export/cf_export.h"

#define MAX_SOURCES 1000

const char *const cf_hf_owns[] = {"README.md",
                                  "dataset_info.json",
                                  "data",
                                  "data/train-00000-of-00001.parquet",
                                  "data/train-00000-of-00001.jsonl",
                                  NULL};

typedef struct source_count {
    char *name; /* NULL: examples without a source */
    size_t len;
    int64_t count;
} source_count;

typedef struct hf_writer {
    cf_row_writer base;
    char *dir;
    cf_out pq_out, jsonl_out;
    cf_row_writer *pq, *jsonl;
    source_count *sources;
    size_t nsources;
    int64_t other_sources; /* examples past MAX_SOURCES distinct sources */
    int64_t rows;
    cf_pq_opts popts;
    cf_hf_info info;
    char *deployment;
    char *filters;
    char *batch;
    cf_export_cols cols;
} hf_writer;

static char *dup_str(cf_str s)
{
    char *r = malloc(s.n + 1);
    if (r) {
        if (s.n)
            memcpy(r, s.p, s.n);
        r[s.n] = '\0';
    }
    return r;
}

static int count_source(hf_writer *w, cf_str src, cf_err *err)
{
    for (size_t i = 0; i < w->nsources; i++) {
        source_count *c = &w->sources[i];
        if ((!src.p && !c->name) ||
            (src.p && c->name && c->len == src.n && memcmp(c->name, src.p, src.n) == 0)) {
            c->count++;
            return 0;
        }
    }
    if (w->nsources == MAX_SOURCES) {
        w->other_sources++;
        return 0;
    }
    source_count *s = realloc(w->sources, (w->nsources + 1) * sizeof *s);
    if (!s)
        return cf_fail(err, CF_ENOMEM, "out of memory");
    w->sources = s;
    source_count *c = &s[w->nsources];
    c->name = NULL;
    if (src.p && !(c->name = dup_str(src)))
        return cf_fail(err, CF_ENOMEM, "out of memory");
    c->len = src.n;
    c->count = 1;
    w->nsources++;
    return 0;
}

static int hf_row(cf_row_writer *base, const cf_export_row *r, cf_err *err)
{
    hf_writer *w = (hf_writer *)base;
    if (w->pq->row(w->pq, r, err) || w->jsonl->row(w->jsonl, r, err) ||
        count_source(w, r->source, err))
        return -1;
    w->rows++;
    return 0;
}

/* Markdown text: characters that format escaped, line breaks as spaces. */
static void md(cf_buf *b, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c < 0x20) {
            cf_buf_putc(b, ' ');
            continue;
        }
        if (strchr("\\`*_[]<>|~", c))
            cf_buf_putc(b, '\\');
        cf_buf_putc(b, c);
    }
}

static int write_file(hf_writer *w, const char *name, const cf_buf *content, cf_err *err)
{
    if (cf_buf_failed(content))
        return cf_fail(err, CF_ENOMEM, "out of memory writing %s", name);
    char *path = cf_path_join(w->dir, name);
    if (!path)
        return cf_fail(err, CF_ENOMEM, "out of memory");
    cf_out o;
    int r = cf_out_open_direct(&o, path, err) || cf_out_write(&o, content->p, content->n, err) ||
                    cf_out_close(&o, err)
                ? -1
                : 0;
    cf_out_abort(&o);
    free(path);
    return r;
}

static const cf_export_column *feature(const hf_writer *w, size_t i)
{
    return cf_export_column_at(w->cols.idx[i]);
}

static void yaml_config(const hf_writer *w, cf_buf *b, const char *name, uint64_t bytes,
                        int64_t rows)
{
    char line[128];
    cf_buf_str(b, "- config_name: ");
    cf_buf_str(b, name);
    cf_buf_str(b, "\n  features:\n");
    for (size_t i = 0; i < w->cols.n; i++) {
        snprintf(line, sizeof line, "  - name: %s\n    dtype: %s\n", feature(w, i)->name,
                 feature(w, i)->hf_dtype);
        cf_buf_str(b, line);
    }
    snprintf(line, sizeof line,
             "  splits:\n  - name: train\n    num_bytes: %" PRIu64 "\n    num_examples: %" PRId64
             "\n",
             bytes, rows);
    cf_buf_str(b, line);
}

static int write_card(hf_writer *w, cf_err *err)
{
    cf_buf b = CF_BUF_INIT;
    char line[256], when[48];
    cf_format_time(w->info.export_time_us, when, sizeof when);
    uint64_t pq_bytes = cf_out_bytes(&w->pq_out), js_bytes = cf_out_bytes(&w->jsonl_out);
    cf_buf_str(&b, "---\nconfigs:\n"
                   "- config_name: default\n  data_files:\n  - split: train\n"
                   "    path: data/train-*.parquet\n"
                   "- config_name: jsonl\n  data_files:\n  - split: train\n"
                   "    path: data/train-*.jsonl\n"
                   "dataset_info:\n");
    yaml_config(w, &b, "default", pq_bytes, w->rows);
    yaml_config(w, &b, "jsonl", js_bytes, w->rows);
    cf_buf_str(&b, "---\n\n# Curated feedback from deployment ");
    md(&b, w->deployment, strlen(w->deployment));
    cf_buf_str(&b, "\n\nTraining examples curated from production feedback by "
                   "crucible-feedback " CF_VERSION ".\n\n");
    snprintf(line, sizeof line, "- examples: %" PRId64 " (split `train`)\n", w->rows);
    cf_buf_str(&b, line);
    cf_buf_str(&b, "- deployment: ");
    md(&b, w->deployment, strlen(w->deployment));
    cf_buf_str(&b, "\n- exported at: ");
    cf_buf_str(&b, when);
    cf_buf_str(&b, "\n- filters: ");
    md(&b, w->filters, strlen(w->filters));
    cf_buf_str(&b, "\n- export batch: ");
    md(&b, w->batch, strlen(w->batch));
    cf_buf_str(&b, "\n\n## Examples per source\n\n| source | examples |\n| --- | ---: |\n");
    for (size_t i = 0; i < w->nsources; i++) {
        const source_count *c = &w->sources[i];
        cf_buf_str(&b, "| ");
        if (c->name)
            md(&b, c->name, c->len);
        else
            cf_buf_str(&b, "(none)");
        snprintf(line, sizeof line, " | %" PRId64 " |\n", c->count);
        cf_buf_str(&b, line);
    }
    if (w->other_sources) {
        snprintf(line, sizeof line, "| (other sources) | %" PRId64 " |\n", w->other_sources);
        cf_buf_str(&b, line);
    }
    snprintf(line, sizeof line,
             "\n## Files\n\n"
             "- `data/train-00000-of-00001.parquet`: %" PRIu64 " bytes (%s), the default config\n"
             "- `data/train-00000-of-00001.jsonl`: %" PRIu64 " bytes, config `jsonl`\n",
             pq_bytes, w->popts.codec == CF_PQ_ZSTD ? "zstd" : "uncompressed", js_bytes);
    cf_buf_str(&b, line);
    cf_buf_str(&b, "\nFeatures:");
    for (size_t i = 0; i < w->cols.n; i++) {
        snprintf(line, sizeof line, "%s `%s` (%s)", i ? "," : "", feature(w, i)->name,
                 feature(w, i)->hf_dtype);
        cf_buf_str(&b, line);
    }
    cf_buf_str(&b, "; null when absent. `inference_event_id` traces an example back to "
                   "the production event it came from.\n\n"
                   "## Loading\n\n```python\nfrom datasets import load_dataset\n"
                   "ds = load_dataset(\"path/to/this/directory\")           # Parquet\n"
                   "ds = load_dataset(\"path/to/this/directory\", \"jsonl\")  # the same rows\n"
                   "```\n");
    int r = write_file(w, "README.md", &b, err);
    cf_buf_free(&b);
    return r;
}

static int write_info(hf_writer *w, cf_err *err)
{
    cf_buf b = CF_BUF_INIT;
    char line[256];
    uint64_t bytes = cf_out_bytes(&w->pq_out);
    cf_buf_str(&b, "{\n  \"description\": \"CrucibleFeedback curated dataset\",\n"
                   "  \"features\": {\n");
    for (size_t i = 0; i < w->cols.n; i++) {
        snprintf(line, sizeof line, "    \"%s\": {\"dtype\": \"%s\", \"_type\": \"Value\"}%s\n",
                 feature(w, i)->name, feature(w, i)->hf_dtype, i + 1 < w->cols.n ? "," : "");
        cf_buf_str(&b, line);
    }
    snprintf(line, sizeof line,
             "  },\n  \"splits\": {\n    \"train\": {\"name\": \"train\", \"num_bytes\": %" PRIu64
             ", \"num_examples\": %" PRId64 "}\n  },\n",
             bytes, w->rows);
    cf_buf_str(&b, line);
    snprintf(line, sizeof line, "  \"dataset_size\": %" PRIu64 ",\n  \"deployment_id\": ", bytes);
    cf_buf_str(&b, line);
    cf_buf_json_string(&b, w->deployment, strlen(w->deployment));
    cf_buf_str(&b, ",\n  \"export_batch_id\": ");
    cf_buf_json_string(&b, w->batch, strlen(w->batch));
    cf_buf_str(&b, "\n}\n");
    int r = write_file(w, "dataset_info.json", &b, err);
    cf_buf_free(&b);
    return r;
}

static int hf_finish(cf_row_writer *base, cf_err *err)
{
    hf_writer *w = (hf_writer *)base;
    if (w->pq->finish(w->pq, err) || w->jsonl->finish(w->jsonl, err) ||
        cf_out_close(&w->pq_out, err) || cf_out_close(&w->jsonl_out, err))
        return -1;
    return write_info(w, err) || write_card(w, err) ? -1 : 0;
}

static void hf_destroy(cf_row_writer *base)
{
    hf_writer *w = (hf_writer *)base;
    if (w->pq)
        w->pq->destroy(w->pq);
    if (w->jsonl)
        w->jsonl->destroy(w->jsonl);
    cf_out_abort(&w->pq_out);
    cf_out_abort(&w->jsonl_out);
    for (size_t i = 0; i < w->nsources; i++)
        free(w->sources[i].name);
    free(w->sources);
    free(w->dir);
    free(w->deployment);
    free(w->filters);
    free(w->batch);
    free(w);
}

static uint64_t hf_bytes(cf_row_writer *base)
{
    hf_writer *w = (hf_writer *)base;
    return cf_out_bytes(&w->pq_out) + cf_out_bytes(&w->jsonl_out);
}

int cf_hf_writer(cf_row_writer **out_w, const char *dir, const cf_pq_opts *opts,
                 const cf_hf_info *info, cf_err *err)
{
    hf_writer *w = calloc(1, sizeof *w);
    if (!w)
        return cf_fail(err, CF_ENOMEM, "out of memory");
    w->pq_out.fd = w->jsonl_out.fd = -1;
    w->base.row = hf_row;
    w->base.finish = hf_finish;
    w->base.destroy = hf_destroy;
    w->base.bytes = hf_bytes;
    w->info = *info;
    w->cols = *cf_export_cols_get(info->cols);
    w->info.cols = &w->cols;
    if (opts)
        w->popts = *opts;
    else
        cf_pq_opts_init(&w->popts);
    w->dir = strdup(dir);
    w->deployment = dup_str(info->deployment_id);
    w->filters = strdup(info->filters ? info->filters : "");
    w->batch = dup_str(info->batch_id);
    char *data = cf_path_join(dir, "data");
    char *pq_path = data ? cf_path_join(data, "train-00000-of-00001.parquet") : NULL;
    char *js_path = data ? cf_path_join(data, "train-00000-of-00001.jsonl") : NULL;
    int r = 0;
    if (!w->dir || !w->deployment || !w->filters || !w->batch || !pq_path || !js_path)
        r = cf_fail(err, CF_ENOMEM, "out of memory");
    else if (cf_mkdirs(data, err) || cf_out_open_direct(&w->pq_out, pq_path, err) ||
             cf_out_open_direct(&w->jsonl_out, js_path, err) ||
             cf_parquet_row_writer(&w->pq, &w->pq_out, &w->popts, &w->cols, err) ||
             cf_jsonl_writer(&w->jsonl, &w->jsonl_out, &w->cols, err))
        r = -1;
    free(data);
    free(pq_path);
    free(js_path);
    if (r) {
        hf_destroy(&w->base);
        return -1;
    }
    *out_w = &w->base;
    return 0;
}

static void describe_filters(const cf_export_opts *o, char *buf, size_t cap)
{
    int n = snprintf(buf, cap, "%s",
                     o->include_exported ? "every curated example, exported before or not"
                                         : "curated examples not exported before");
    if (o->limit >= 0 && n > 0 && (size_t)n < cap)
        snprintf(buf + n, cap - (size_t)n, "; at most %lld", (long long)o->limit);
}

int cf_hf_open(cf_row_writer **w, cf_out *out, const cf_export_opts *o, cf_err *err)
{
    char filters[160];
    describe_filters(o, filters, sizeof filters);
    cf_hf_info info = {o->deployment_id, o->export_time_us ? o->export_time_us : cf_now_us(),
                       filters, o->batch_id, &o->columns};
    return cf_hf_writer(w, out->tmp, &o->parquet, &info, err);
}
