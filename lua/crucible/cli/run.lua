--- `crucible-feedback run SCRIPT [args]`: runs a workflow or policy script.
local M = {}

M.spec = {
  command = "run",
  summary = "run a workflow or policy script",
  description = "The script runs inside the crucible runtime: `require \"crucible\"` gives the\n"
    .. "configured API, `arg` and `...` hold the arguments after SCRIPT. An error\n"
    .. "prints file:line: message and a traceback and exits with status 1.",
  positionals = { { name = "SCRIPT", key = "script", required = true, help = "a Lua file, or - for standard input" } },
  rest = true,
}

function M.main(opts, argv)
  local cli = require "crucible.cli"
  return cli.run_script(argv, opts.rest_index - 1)
end

return M
