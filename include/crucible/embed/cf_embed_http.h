/*
 * An OpenAI-compatible embeddings provider over HTTP (libcurl):
 * POST {url}/embeddings with {"model": ..., "input": [texts...]} and reads
 * {"data": [{"index": i, "embedding": [...]}, ...]}. Texts are sent in
 * batches of batch_size; network errors, timeouts, 429 and 5xx answers are
 * retried (retries times, exponential backoff from 200 ms); other answers
 * fail with the status and the server's message.
 */
#ifndef CRUCIBLE_CF_EMBED_HTTP_H
#define CRUCIBLE_CF_EMBED_HTTP_H

#include "crucible/embed/cf_embed.h"

typedef struct cf_embed_http_opts {
    const char *url;      /* base URL, e.g. "http://127.0.0.1:8000/v1" */
    const char *model;
    const char *api_key;  /* NULL: no Authorization header */
    size_t batch_size;    /* texts per request (1..2048) */
    long timeout_ms;      /* per request */
    int retries;          /* extra attempts after a retryable failure */
    long dimensions;      /* > 0: sent as "dimensions" */
} cf_embed_http_opts;

int cf_embedder_http_new(const cf_embed_http_opts *o, cf_embedder **out, cf_err *err);

#endif
