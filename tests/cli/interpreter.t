The executable behaves like the standard `lua` command.

Standard input, -e and script files:

  $ echo 'print(1+1)' | crucible-feedback -
  2
  $ crucible-feedback -e 'print(_VERSION)'
  Lua 5.4
  $ printf 'print(arg[0], arg[1], arg[2], select("#", ...), ...)\n' > args.lua
  $ crucible-feedback args.lua one two
  args.lua	one	two	2	one	two
  $ crucible-feedback -e 'x = 41' -e 'print(x + 1)'
  42
  $ crucible-feedback -l string -e 'print(type(string.format))'
  function
  $ crucible-feedback -- args.lua --not-an-option
  args.lua	--not-an-option	nil	1	--not-an-option

A failing script prints file:line: message and a traceback, and exits 1:

  $ printf 'local t = {}\nlocal function f()\n  error("boom")\nend\nf()\n' > fail.lua
  $ crucible-feedback fail.lua
  crucible-feedback: fail.lua:3: boom
  stack traceback:
  ...
  [1]
  $ crucible-feedback fail.lua 2>&1 | grep -c 'fail.lua:5: in main chunk'
  1
  $ printf 'this is not lua\n' > syntax.lua
  $ crucible-feedback syntax.lua
  crucible-feedback: syntax.lua:1: syntax error near 'is'
  [1]
  $ crucible-feedback missing.lua
  crucible-feedback: cannot open missing.lua: No such file or directory
  [1]
  $ crucible-feedback -e 'error({})'
  crucible-feedback: (error object is a table value)
  stack traceback:
  ...
  [1]

os.exit sets the status and still runs finalizers (buffers flush on exit):

  $ crucible-feedback -e 'setmetatable({}, {__gc = function() print("finalized") end}) os.exit(3)'
  finalized
  [3]
  $ crucible-feedback -e 'os.exit(true)'
  $ crucible-feedback -e 'os.exit(false)'
  [1]

The C modules and lua-cjson are built in:

  $ crucible-feedback -e 'print(require("cjson").encode({a = {1, 2}}))'
  {"a":[1,2]}
  $ crucible-feedback -e 'print(require("crucible._core").uuid_valid(require("crucible._core").uuid7()))'
  true

Interactive mode after a script, reading piped input:

  $ printf 'x = 5\n' > five.lua
  $ printf 'x * 2\n' | crucible-feedback -i five.lua
  crucible%-feedback .* (re)
  > 10
  > 
  $ crucible-feedback -v
  crucible%-feedback 0%.1%.0 %(Lua 5%.4%.%d+, SQLite 3%.[%d.]+%) (re)
