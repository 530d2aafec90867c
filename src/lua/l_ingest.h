/* The ingestion pipeline userdata (crucible._ingest), for other bindings
 * that feed it from C (crucible._serve). */
#ifndef CRUCIBLE_L_INGEST_H
#define CRUCIBLE_L_INGEST_H

#include <lua.h>

#include "crucible/ingest/cf_ingest.h"

/* The open pipeline at idx (raises when it is not one, or closed), its
 * sanitizer and whether unknown top-level fields go into metadata. */
cf_ingest *l_ingest_check(lua_State *L, int idx, const cf_sanitizer **san,
                          int *unknown_to_metadata);

#endif
