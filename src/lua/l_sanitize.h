/* The Sanitizer userdata, shared by crucible._sanitize and crucible._ingest. */
#ifndef CRUCIBLE_L_SANITIZE_H
#define CRUCIBLE_L_SANITIZE_H

#include <lua.h>

#include "crucible/sanitize/cf_sanitize.h"

#define SANITIZER_MT "crucible.Sanitizer"

typedef struct l_sanitizer {
    cf_sanitizer *s;
    cf_sanitize_scratch *sc;
} l_sanitizer;

/* The open sanitizer at idx (raises when it is not one, or closed). */
l_sanitizer *l_check_sanitizer(lua_State *L, int idx);

#endif
