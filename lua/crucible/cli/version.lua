--- `crucible-feedback version`: versions of the tool and what it embeds.
local M = {}

M.spec = {
  command = "version",
  summary = "print version information",
  options = { { name = "--verbose", key = "verbose", help = "also list the bundled Lua modules" } },
}

function M.main(opts)
  local cli = require "crucible.cli"
  local core = require "crucible._core"
  print(cli.version_line())
  if opts.verbose then
    print("bundled modules:")
    for _, name in ipairs(core.bundled_modules()) do print("  " .. name) end
    local path = core.lua_path()
    print("user module path: " .. (path ~= "" and path or "(none)"))
  end
  return 0
end

return M
