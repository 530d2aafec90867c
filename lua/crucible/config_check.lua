--- crucible.config_check: the checks of a configuration file that need
-- more than its types, made when it is loaded rather than when the
-- feature first runs: schedules (keys, cron fields, script paths),
-- triggers.on (actions' keys), drift.features (known names), curation
-- strategies and trigger policies (registered, bundled or a module in a
-- user directory). Each problem names its key path.
--
--   local problems = config_check.check(cfg, "crucible.config.lua")  --> {} or {"config: ...", ...}
local M = {}

local function dirname(path)
  return path and path:match("^(.*)/[^/]*$") or "."
end

local function strip(err)
  return (tostring(err):gsub("^[^\n]-%.lua:%d+: ", ""))
end

local function check_names(problems, names, module, key)
  local reg = require(module)
  for i, name in ipairs(type(names) == "table" and names or {}) do
    local ok, err = pcall(reg.get, name)
    if not ok then
      problems[#problems + 1] = ("config: %s[%d]: %s"):format(key, i, strip(err))
    end
  end
end

-- Each schedule's script exists (relative to the config file's directory).
local function check_scripts(problems, schedules, base_dir)
  for i, s in ipairs(schedules) do
    if type(s) == "table" and type(s.script) == "string" and s.script ~= "" then
      local path = s.script:sub(1, 1) == "/" and s.script or (base_dir .. "/" .. s.script)
      local f = io.open(path, "r")
      if f then
        f:close()
      else
        problems[#problems + 1] = ("config: schedules[%d]: script '%s' does not exist"):format(i, path)
      end
    end
  end
end

--- The problems of configuration cfg (already type-checked; `path` the
-- file it came from, for relative script paths): a list of messages.
function M.check(cfg, path)
  local problems = {}
  if cfg.schedules and #cfg.schedules > 0 then
    local ok, err = require("crucible.scheduler").check(cfg.schedules, dirname(path))
    if not ok then
      for line in err:gmatch("[^\n]+") do problems[#problems + 1] = line end
    end
    check_scripts(problems, cfg.schedules, dirname(path))
  end
  local ok, err = pcall(require("crucible.triggers").check_on, cfg.triggers.on)
  if not ok then problems[#problems + 1] = strip(err) end
  ok, err = pcall(require("crucible.drift").resolve_features, cfg.drift.features)
  if not ok then problems[#problems + 1] = "config: " .. strip(err) end
  check_names(problems, cfg.curation.strategies, "crucible.curation", "curation.strategies")
  check_names(problems, cfg.triggers.policies, "crucible.triggers", "triggers.policies")
  return problems
end

return M
