/* libFuzzer target: _core.from_json, the decoder of the feedback routes'
 * bodies (signals, scores, ingest --signals), on arbitrary bytes. Checks:
 * it returns a value or raises a message (never crashes or leaves the
 * stack unbalanced), and every text jansson reads as JSON (short enough
 * that nesting stays under the decoder's depth bound, no raw NUL) it reads too; a
 * number or a string that is read becomes the same Lua type jansson says. */
#include <jansson.h>
#include <lauxlib.h>
#include <lualib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/lua/l_fromjson.h"

static lua_State *L_;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!L_) {
        L_ = luaL_newstate();
        if (!L_)
            abort();
    }
    int top = lua_gettop(L_);
    lua_pushcfunction(L_, l_from_json);
    lua_pushlstring(L_, (const char *)data, size);
    int ok = lua_pcall(L_, 1, 1, 0) == LUA_OK;
    if (!ok && lua_type(L_, -1) != LUA_TSTRING)
        abort();
    json_error_t je;
    /* jansson stops at a raw NUL byte as at the end; no JSON text has one */
    int comparable = size < 900 && !memchr(data, 0, size);
    json_t *j = comparable ? json_loadb((const char *)data, size,
                                        JSON_DECODE_ANY | JSON_ALLOW_NUL, &je)
                           : NULL;
    if (j) {
        if (!ok) {
            fprintf(stderr, "from_json refused what jansson reads: %s\n", lua_tostring(L_, -1));
            abort();
        }
        int t = lua_type(L_, -1);
        if ((json_is_object(j) || json_is_array(j)) && t != LUA_TTABLE)
            abort();
        if (json_is_string(j) && t != LUA_TSTRING)
            abort();
        if (json_is_integer(j) && !lua_isinteger(L_, -1))
            abort();
        if (json_is_real(j) && (t != LUA_TNUMBER || lua_isinteger(L_, -1)))
            abort();
        if (json_is_null(j) && (t != LUA_TLIGHTUSERDATA || lua_touserdata(L_, -1) != NULL))
            abort();
        json_decref(j);
    }
    lua_settop(L_, top);
    if (lua_gettop(L_) != 0)
        abort();
    lua_gc(L_, LUA_GCCOLLECT);
    return 0;
}
