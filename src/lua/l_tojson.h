/* Lua values to JSON text, in C (no cjson: integers stay exact, floats
 * keep 17 digits, strings must be valid UTF-8). For metadata tables. */
#ifndef CRUCIBLE_L_TOJSON_H
#define CRUCIBLE_L_TOJSON_H

#include <lua.h>

#include "crucible/core/cf_buf.h"

/*
 * Appends the value at idx as JSON. A table with keys 1..n only is an
 * array, any other table an object (keys: strings, or numbers written as
 * strings); the empty table is {}. nil and cjson.null (a NULL light
 * userdata) are null. Nested deeper than 32 levels (a cycle?), functions,
 * userdata, NaN and infinities, invalid UTF-8, boolean keys: -1 and a
 * message naming the path ("metadata.tags[2]: cannot encode a function")
 * in msg. `object_only`: the top value must be a table encoding to an
 * object.
 */
int l_tojson(lua_State *L, int idx, const char *name, int object_only, cf_buf *out, char *msg,
             size_t cap);

#endif
