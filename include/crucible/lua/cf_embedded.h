/* The bundled Lua sources, generated at build time by tools/embed_lua.c. */
#ifndef CRUCIBLE_CF_EMBEDDED_H
#define CRUCIBLE_CF_EMBEDDED_H

#include <stddef.h>

typedef struct cf_embedded_module {
    const char *name;       /* "crucible.config" */
    const char *chunkname;  /* "@crucible/config.lua" */
    const char *source;
    size_t len;
} cf_embedded_module;

/* Terminated by an entry whose name is NULL. */
extern const cf_embedded_module cf_embedded_modules[];

/* Looks a module up by name; NULL when it is not bundled. */
const cf_embedded_module *cf_embedded_find(const char *name);

#endif
