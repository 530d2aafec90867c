/*
 * crucible._readline: line editing, history and Tab completion for the
 * REPL, through libedit (BSD-licensed). When standard input is not a
 * terminal, lines are read plainly so piped sessions and tests behave
 * predictably. The history file is read and written by the Lua side
 * (crucible.repl_history) so it keeps spaces as they are.
 *
 *   rl.readline(prompt)            --> line | nil at end of input
 *   rl.add_history(line)
 *   rl.set_completer(fn)           fn(word, line_before_word) --> {candidates}
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

/* The completer: the Lua state readline runs in and the function's
 * registry reference; the candidates of the completion in progress. */
static lua_State *comp_L;
static int comp_ref = LUA_NOREF;
static char **comp_list;
static size_t comp_n, comp_next;

static void comp_clear(void)
{
    for (size_t i = 0; i < comp_n; i++)
        free(comp_list[i]);
    free(comp_list);
    comp_list = NULL;
    comp_n = comp_next = 0;
}

/* Calls the Lua completer (protected) and keeps its candidates. */
static void comp_fill(lua_State *L, const char *text, int start)
{
    comp_clear();
    int top = lua_gettop(L);
    lua_rawgeti(L, LUA_REGISTRYINDEX, comp_ref);
    lua_pushstring(L, text);
    lua_pushlstring(L, rl_line_buffer ? rl_line_buffer : "", rl_line_buffer ? (size_t)start : 0);
    if (lua_pcall(L, 2, 1, 0) != LUA_OK || !lua_istable(L, -1)) {
        lua_settop(L, top);
        return;
    }
    size_t n = (size_t)lua_rawlen(L, -1);
    comp_list = n ? calloc(n, sizeof *comp_list) : NULL;
    for (size_t i = 0; comp_list && i < n; i++) {
        if (lua_rawgeti(L, -1, (lua_Integer)i + 1) == LUA_TSTRING) {
            char *s = strdup(lua_tostring(L, -1));
            if (s)
                comp_list[comp_n++] = s;
        }
        lua_pop(L, 1);
    }
    lua_settop(L, top);
}

static char *comp_generate(const char *text, int state)
{
    (void)text;
    if (state == 0)
        comp_next = 0;
    if (comp_next >= comp_n)
        return NULL;
    return strdup(comp_list[comp_next++]);
}

static char **comp_attempt(const char *text, int start, int end)
{
    (void)end;
    rl_attempted_completion_over = 1; /* never fall back to file names */
    if (!comp_L || comp_ref == LUA_NOREF)
        return NULL;
    comp_fill(comp_L, text, start);
    if (comp_n == 0)
        return NULL;
    return rl_completion_matches(text, comp_generate);
}

/* Lua names stay one word across '.' and ':' (cf.curate, db:events). */
static char word_breaks[] = " \t\n\"\\'`@$><=;|&{(,+-*/%^~#[]";

static int l_set_completer(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TFUNCTION);
    if (comp_ref != LUA_NOREF)
        luaL_unref(L, LUA_REGISTRYINDEX, comp_ref);
    lua_pushvalue(L, 1);
    comp_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    comp_L = L;
    rl_attempted_completion_function = comp_attempt;
    rl_basic_word_break_characters = word_breaks;
    rl_completer_word_break_characters = word_breaks;
    rl_completion_append_character = '\0';
    return 0;
}

static int l_readline(lua_State *L)
{
    const char *prompt = luaL_optstring(L, 1, "> ");
    if (!isatty(STDIN_FILENO))
        return plain_readline(L, prompt);
    char *line = readline(prompt);
    comp_clear();
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

static int l_isatty(lua_State *L)
{
    lua_pushboolean(L, isatty(STDIN_FILENO));
    return 1;
}

static const luaL_Reg funcs[] = {
    {"readline", l_readline},
    {"add_history", l_add_history},
    {"set_completer", l_set_completer},
    {"isatty", l_isatty},
    {NULL, NULL},
};

int luaopen_crucible_readline(lua_State *L)
{
    luaL_newlib(L, funcs);
    return 1;
}
