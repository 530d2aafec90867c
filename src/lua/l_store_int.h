/* Field writers of l_store.c, shared with the other l_store_*.c files:
 * absent values (NULL strings, CF_NULL_INT) are not written. Readers are
 * cf_lua_field_* (cf_lua.h). */
#ifndef CRUCIBLE_L_STORE_INT_H
#define CRUCIBLE_L_STORE_INT_H

#include <lua.h>

#include "crucible/store/cf_store.h"

void l_store_set_str(lua_State *L, const char *field, cf_str v);
void l_store_set_int(lua_State *L, const char *field, int64_t v);

/* Rows as tables (l_store_rows.c). l_store_push_row_keys pushes the table
 * of interned field names and returns its stack index; with it,
 * l_store_push_row_with pushes a row as the table h:cursor yields (with
 * its signals when with_signals is set), with one lua_rawset per field. */
int l_store_push_row_keys(lua_State *L);
void l_store_push_row_with(lua_State *L, int keys, cf_kind kind, const cf_row *row,
                           int with_signals);

/* The cursor class (l_store_cursor.c): h:cursor, h:unscored_cursor and the
 * cursor's methods, registered on the store's metatable store_mt;
 * l_store_close_cursors closes the cursors that the store userdata at idx
 * registered in its uservalue (before its connection closes). */
void l_store_cursor_register(lua_State *L, const char *store_mt);
void l_store_close_cursors(lua_State *L, int idx);

#endif
