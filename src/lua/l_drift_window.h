/* crucible._drift.measure (l_drift_window.c), added to crucible._drift. */
#ifndef CRUCIBLE_L_DRIFT_WINDOW_H
#define CRUCIBLE_L_DRIFT_WINDOW_H

#include <lua.h>

/* Adds `measure` to the table on top of the stack. */
void l_drift_window_register(lua_State *L);

#endif
