--- `crucible-feedback repl`: explore feedback data interactively.
local M = {}

M.spec = {
  command = "repl",
  summary = "explore your data interactively",
  description = "A Lua prompt with line editing and history (~/.crucible_history).\n"
    .. "`cf` is the configured crucible API; expressions are printed, tables readably.",
}

function M.main()
  local cli = require "crucible.cli"
  return require("crucible.repl").run { banner = cli.version_line() }
end

return M
