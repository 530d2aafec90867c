/* The embedded Lua runtime: state creation, module loading, protected calls. */
#ifndef CRUCIBLE_CF_RUNTIME_H
#define CRUCIBLE_CF_RUNTIME_H

#include <lua.h>

/* A new state with the standard libraries, every C module in
 * package.preload, and module search in this order: preload, the user's
 * directories (--lua-path, CRUCIBLE_PATH, config lua_path), the bundled
 * lua/ tree, then Lua's own path and cpath. os.exit closes the state by
 * default, so finalizers (buffer flushes, database handles) always run.
 * NULL when memory is exhausted. */
lua_State *cf_runtime_new(void);

/* Message handler for lua_pcall: adds a traceback to the error. */
int cf_runtime_traceback(lua_State *L);

/* lua_pcall with cf_runtime_traceback as handler. While it runs, SIGINT
 * raises "interrupted!" inside Lua (a second SIGINT kills the process). */
int cf_runtime_pcall(lua_State *L, int nargs, int nresults);

/* Appends a directory to the user module path (searched before bundled
 * modules). */
void cf_runtime_add_user_dir(lua_State *L, const char *dir);

/* C modules, one luaopen per module (registered in package.preload). */
int luaopen_crucible_core(lua_State *L);      /* crucible._core */
int luaopen_crucible_store(lua_State *L);     /* crucible._store */
int luaopen_crucible_readline(lua_State *L);  /* crucible._readline */
int luaopen_crucible_sanitize(lua_State *L);  /* crucible._sanitize */
int luaopen_crucible_ingest(lua_State *L);    /* crucible._ingest */
int luaopen_crucible_quality(lua_State *L);   /* crucible._quality */
int luaopen_crucible_drift(lua_State *L);     /* crucible._drift */
int luaopen_crucible_embed(lua_State *L);     /* crucible._embed */
int luaopen_crucible_export(lua_State *L);    /* crucible._export */
int luaopen_crucible_curate(lua_State *L);    /* crucible._curate */
int luaopen_crucible_http(lua_State *L);      /* crucible._http */
int luaopen_crucible_sched(lua_State *L);     /* crucible._sched */
int luaopen_crucible_lifecycle(lua_State *L); /* crucible._lifecycle */
int luaopen_crucible_serve(lua_State *L);     /* crucible._serve */
int luaopen_crucible_report(lua_State *L);    /* crucible._report */

#endif
