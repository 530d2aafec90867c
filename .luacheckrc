-- luacheck configuration: Lua 5.4, no globals in modules.
std = "lua54"
max_line_length = 120
codes = true

files["tests/lua"] = { std = "+busted" }
files["tests/lua/helper.lua"] = { globals = { "package" } }
-- wrk's scripting API is globals: wrk.*, and the request/delay/done hooks it calls.
files["bench/serve_wrk.lua"] = { std = "luajit", globals = { "wrk", "request", "delay", "done" } }
