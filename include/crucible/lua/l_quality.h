/* crucible._quality from C: for modules that take a quality configuration
 * built in Lua (the ingestion path's scoring hook). */
#ifndef CRUCIBLE_L_QUALITY_H
#define CRUCIBLE_L_QUALITY_H

#include <lua.h>

#include "crucible/quality/cf_quality.h"

#define CF_QUALITY_CFG_MT "crucible.QualityConfig"
#define CF_JUDGE_MT "crucible.Judge"

/* The cf_quality_cfg of the crucible.QualityConfig userdata at idx; raises
 * when it is not one or is closed. The cfg lives as long as the userdata:
 * keep a reference to it (e.g. in a uservalue) while C code uses the cfg. */
cf_quality_cfg *l_quality_checkcfg(lua_State *L, int idx);

#endif
