/*
 * crucible._readline: line editing and history for the REPL, through
 * libedit (BSD-licensed). When standard input is not a terminal, lines are
 * read plainly so piped sessions and tests behave predictably.
 */
#include <editline/readline.h>
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int plain_readline(lua_State *L, const char *prompt)
{
    fputs(prompt, stdout);
    fflush(stdout);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    int c, any = 0;
    while ((c = getchar()) != EOF) {
        any = 1;
        if (c == '\n')
            break;
        luaL_addchar(&b, (char)c);
    }
    if (!any) {
        luaL_pushresult(&b);
        lua_pop(L, 1);
        lua_pushnil(L);
        return 1;
    }
    luaL_pushresult(&b);
    return 1;
}

static int l_readline(lua_State *L)
{
    const char *prompt = luaL_optstring(L, 1, "> ");
    if (!isatty(STDIN_FILENO))
        return plain_readline(L, prompt);
    char *line = readline(prompt);
    if (!line) {
        lua_pushnil(L);
        return 1;
    }
    lua_pushstring(L, line);
    free(line);
    return 1;
}

static int l_add_history(lua_State *L)
{
    const char *line = luaL_checkstring(L, 1);
    if (isatty(STDIN_FILENO) && *line)
        add_history(line);
    return 0;
}

static int l_read_history(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    if (isatty(STDIN_FILENO))
        read_history(path);
    return 0;
}

static int l_write_history(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    if (isatty(STDIN_FILENO)) {
        write_history(path);
        history_truncate_file(path, 1000);
    }
    return 0;
}

static const luaL_Reg funcs[] = {
    {"readline", l_readline},
    {"add_history", l_add_history},
    {"read_history", l_read_history},
    {"write_history", l_write_history},
    {NULL, NULL},
};

int luaopen_crucible_readline(lua_State *L)
{
    luaL_newlib(L, funcs);
    return 1;
}
