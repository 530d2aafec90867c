/*
 * crucible-feedback: the executable. A small C core that builds the Lua
 * runtime and hands the command line to crucible.cli (lua/crucible/cli),
 * which is both a standard `lua`-style interpreter and the subcommands.
 */
#include <lauxlib.h>
#include <stdio.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "crucible/ingest/cf_ingest.h"
#include "crucible/lua/cf_runtime.h"

/* The exit status of a process that lost accepted events (EX_IOERR):
 * the database could not take them and no dead-letter file did. */
#define EXIT_LOST 74

static int pmain(lua_State *L)
{
    int argc = (int)lua_tointeger(L, 1);
    char **argv = (char **)lua_touserdata(L, 2);
    lua_settop(L, 0);
    lua_getglobal(L, "require");
    lua_pushliteral(L, "crucible.cli");
    lua_call(L, 1, 1);
    lua_getfield(L, -1, "main");
    lua_createtable(L, argc, 1);
    for (int i = 0; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i);
    }
    lua_call(L, 1, 1);
    return 1;
}

/* glibc gives the free top of its heap back to the kernel once it passes
 * 128 KB. A PostgreSQL result page (10,000 rows, about 10 MB in 2 KB
 * blocks) freed at the top was given back and faulted in again by the
 * next page: two thirds of a PostgreSQL cursor's time, once the Lua
 * state's small blocks (cf_lalloc.c) no longer sat above it. Up to 64 MB
 * of free top is kept. Setting that fixes the mmap threshold too (glibc
 * stops adapting both), so it is set where glibc would have moved it for
 * blocks like request bodies: below 4 MB from the heap, larger mapped. */
static void tune_malloc(void)
{
#ifdef __GLIBC__
    mallopt(M_MMAP_THRESHOLD, 4 * 1024 * 1024);
    mallopt(M_TRIM_THRESHOLD, 64 * 1024 * 1024);
#endif
}

int main(int argc, char **argv)
{
    tune_malloc();
    lua_State *L = cf_runtime_new();
    if (!L) {
        fprintf(stderr, "%s: cannot create the Lua state: not enough memory\n", argv[0]);
        return 1;
    }
    lua_pushcfunction(L, pmain);
    lua_pushinteger(L, argc);
    lua_pushlightuserdata(L, argv);
    int code;
    if (cf_runtime_pcall(L, 2, 1) != LUA_OK) {
        const char *msg = lua_tostring(L, -1);
        fprintf(stderr, "crucible-feedback: %s\n", msg ? msg : "(error object is not a string)");
        code = 1;
    } else {
        code = lua_isinteger(L, -1) ? (int)lua_tointeger(L, -1) : lua_toboolean(L, -1) ? 0 : 1;
    }
    lua_close(L);
    uint64_t lost = cf_ingest_lost_total();
    if (lost) {
        fprintf(stderr, "crucible-feedback: %llu accepted events were lost (not written, not kept "
                        "in a dead-letter file); exit status %d\n",
                (unsigned long long)lost, EXIT_LOST);
        code = EXIT_LOST;
    }
    return code;
}
