/* The events the join stored lately: key -> event id, at most cap of
 * them; the oldest is forgotten first (cf_otlp_seen.c). Not locked: the
 * join holds its mutex. */
#ifndef CF_OTLP_SEEN_H
#define CF_OTLP_SEEN_H

#include <stddef.h>

typedef struct cf_otlp_seen cf_otlp_seen;

/* NULL when out of memory. */
cf_otlp_seen *cf_otlp_seen_new(size_t cap);
void cf_otlp_seen_free(cf_otlp_seen *s);
/* Remembers key -> event (a key already there keeps its event). 0, or -1
 * when out of memory (nothing remembered). */
int cf_otlp_seen_put(cf_otlp_seen *s, const char *key, const char *event);
/* The event of key, NULL when not remembered. */
const char *cf_otlp_seen_get(const cf_otlp_seen *s, const char *key);

#endif
