/* JSON text to Lua values, in C (no cjson: a number written as an integer
 * stays an integer, so metadata keeps it exact; cjson reads every number
 * as a float). For request bodies whose fields are checked afterwards. */
#ifndef CRUCIBLE_L_FROMJSON_H
#define CRUCIBLE_L_FROMJSON_H

#include <lua.h>

/*
 * _core.from_json(text) --> value; raises "what at byte N" for text that
 * is not one JSON value. Objects and arrays are tables (the last of a
 * repeated key wins), null is cjson.null (a NULL light userdata), numbers
 * without fraction or exponent that fit 64 bits are integers, others
 * floats. Strings keep their bytes as sent, escapes decoded: text that is
 * not UTF-8 is left for the caller to refuse, naming its field.
 */
int l_from_json(lua_State *L);

#endif
