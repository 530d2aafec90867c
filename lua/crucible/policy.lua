--- Registries of user-written policies (curation strategies, trigger
-- policies): one validated registration call, lookup by name that loads
-- the module of that name on first use, protected calls that report a
-- failure with its file and line, and option checking for the calls that
-- run them.
--
--   local reg = policy.registry { what = "curation strategy", api = "curation.register",
--                                 prefix = "crucible.curation.", run = "select",
--                                 fields = { select = "function", source = "string?" } }
--   reg:register { name = "mine", select = function(ctx, opts) ... end }
--   local spec = reg:get("mine")             -- loads crucible.curation.mine if needed
--   local ok, a, b = policy.call(spec.select, ctx, opts)   -- ok false: a is "file:line: msg"
local config = require "crucible.config"

local M = {}

local NAME_PATTERN = "^[%a][%w_]*$"

local TYPE_NAMES = {
  ["string"] = "a string", ["function"] = "a function", ["boolean"] = "a boolean",
  ["list"] = "a list of strings", ["table"] = "a table",
}

local function describe(v)
  if math.type(v) == "float" then return "a fractional number" end
  if math.type(v) == "integer" then return "an integer" end
  if v == nil then return "nil" end
  return "a " .. type(v)
end

--- "file:line" where a function is defined.
function M.where(fn)
  local info = debug.getinfo(fn, "S")
  if not info then return "?" end
  return ("%s:%d"):format(info.short_src, info.linedefined)
end

local function is_list_of_strings(v)
  if type(v) ~= "table" then return false end
  local n = 0
  for _ in pairs(v) do n = n + 1 end
  if n ~= #v then return false end
  for _, x in ipairs(v) do
    if type(x) ~= "string" then return false end
  end
  return true
end

--- The option types a policy may declare, with their descriptions.
M.OPTION_NAMES = {
  integer = "an integer", number = "a number", string = "a string", boolean = "a boolean",
  table = "a table", list = "a list of strings", time = "microseconds (an integer) or an ISO 8601 time",
  any = "any value", ["function"] = "a function",
}

local Registry = {}
Registry.__index = Registry

--- A registry. spec: what (for messages), api (the registration call's
-- name), prefix (module prefix for lookup by name), run (the name of the
-- required function field), fields (extra fields: name -> type, "?" =
-- optional; types "string", "function", "boolean", "list", "table").
function M.registry(spec)
  local fields = { name = "string", description = "string?", options = "table?",
                   replace = "boolean?" }
  fields[spec.run] = "function"
  for k, v in pairs(spec.fields or {}) do fields[k] = v end
  return setmetatable({ what = spec.what, api = spec.api, prefix = spec.prefix, run = spec.run,
                        fields = fields, entries = {} }, Registry)
end

--- Validates and registers a policy; returns the stored spec. Raises a
-- message naming the bad field, at the caller of `level` (default: the
-- caller of register).
function Registry:register(spec, level)
  level = (level or 1) + 1
  local api = self.api
  if type(spec) ~= "table" then
    error(("%s: expected a table {name = ..., %s = function ... end}, got %s")
      :format(api, self.run, describe(spec)), level)
  end
  local name = spec.name
  if name == nil then
    error(("%s: field 'name' is required (a string like \"my_%s\")")
      :format(api, self.run == "select" and "strategy" or "policy"), level)
  end
  if type(name) ~= "string" or not name:match(NAME_PATTERN) then
    error(("%s: field 'name' must be letters, digits and underscores starting with a letter,"
      .. " got %s"):format(api, type(name) == "string" and ("%q"):format(name) or describe(name)),
      level)
  end
  local at = ("%s{name = %q}"):format(api, name)
  local keys = {}
  for k in pairs(spec) do keys[#keys + 1] = tostring(k) end
  table.sort(keys)
  for _, k in ipairs(keys) do
    if not self.fields[k] then
      error(("%s: unknown field '%s' (did you mean '%s'?)")
        :format(at, k, config.closest(k, self.fields)), level)
    end
  end
  local names = {}
  for k in pairs(self.fields) do names[#names + 1] = k end
  table.sort(names)
  for _, k in ipairs(names) do
    local want = self.fields[k]
    local optional = want:sub(-1) == "?"
    local t = optional and want:sub(1, -2) or want
    local v = spec[k]
    if v == nil then
      if not optional then
        error(("%s: field '%s' is required (%s)"):format(at, k, TYPE_NAMES[t]), level)
      end
    elseif (t == "list" and not is_list_of_strings(v)) or (t ~= "list" and type(v) ~= t) then
      error(("%s: field '%s' must be %s, got %s"):format(at, k, TYPE_NAMES[t], describe(v)),
        level)
    end
  end
  for k, t in pairs(spec.options or {}) do
    if type(k) ~= "string" or not k:match(NAME_PATTERN) then
      error(("%s: field 'options' maps option names to types (options = {min_score = \"number\"}),"
        .. " got the key %s"):format(at, type(k) == "string" and ("%q"):format(k) or describe(k)),
        level)
    end
    if not M.OPTION_NAMES[t] then
      local valid = {}
      for n in pairs(M.OPTION_NAMES) do valid[#valid + 1] = n end
      table.sort(valid)
      error(("%s: options.%s must be one of the type names %s, got %s"):format(at, k,
        table.concat(valid, ", "), type(t) == "string" and ("%q"):format(t) or describe(t)), level)
    end
  end
  local origin = M.where(spec[self.run]) -- where its function is defined
  local old = self.entries[name]
  if old and not spec.replace and old.origin ~= origin then
    error(("%s: a %s named '%s' is already registered (at %s); set replace = true to replace it")
      :format(at, self.what, name, old.origin), level)
  end
  local entry = {}
  for k, v in pairs(spec) do entry[k] = v end
  entry.replace = nil
  entry.origin = origin
  entry.options = entry.options or {}
  self.entries[name] = entry
  return entry
end

--- Removes a registration; true when there was one.
function Registry:unregister(name)
  local had = self.entries[name] ~= nil
  self.entries[name] = nil
  return had
end

--- The names registered so far, sorted.
function Registry:names()
  local out = {}
  for k in pairs(self.entries) do out[#out + 1] = k end
  table.sort(out)
  return out
end

--- The spec registered as `name`, loading module prefix..name on first
-- use (the user's directories are searched before the bundled modules).
-- Raises (at `level`) when there is none.
function Registry:get(name, level)
  level = (level or 1) + 1
  local e = self.entries[name]
  if e then return e end
  if type(name) ~= "string" or not name:match(NAME_PATTERN) then
    error(("unknown %s %s"):format(self.what, tostring(name)), level)
  end
  local module = self.prefix .. name
  local ok, err = pcall(require, module)
  if not ok then
    if type(err) == "string" and err:find("module '" .. module .. "' not found", 1, true) then
      local hint = config.closest(name, self.entries)
      error(("unknown %s '%s'%s: register one with %s, or put a module %s.lua in a user"
        .. " directory (--lua-path, CRUCIBLE_PATH or lua_path)")
        :format(self.what, name, hint and (" (did you mean '" .. hint .. "'?)") or "", self.api,
          module:gsub("%.", "/")), level)
    end
    error(("%s '%s': loading %s failed: %s"):format(self.what, name, module, tostring(err)), level)
  end
  e = self.entries[name]
  if not e then
    error(("%s '%s': module %s loaded but did not call %s{name = %q, ...}")
      :format(self.what, name, module, self.api, name), level)
  end
  return e
end

--- The specs for a list of names (raising at `level` on a bad or unknown
-- name, `fname` naming the public call and `field` its option) and the
-- options the call accepts: `base` plus those the specs declare.
function Registry:resolve(names, base, fname, field, level)
  level = (level or 1) + 1
  local specs, allowed = {}, {}
  for k, v in pairs(base) do allowed[k] = v end
  for i, name in ipairs(type(names) == "table" and names or {}) do
    if type(name) ~= "string" then
      error(("%s: %s[%d] must be a name, got %s"):format(fname, field, i, describe(name)), level)
    end
    specs[i] = self:get(name, level)
    for o, t in pairs(specs[i].options) do allowed[o] = allowed[o] or t end
  end
  return specs, allowed
end

--- For checks made before a call runs (a pipeline stage's validate): nil
-- when resolve(names, base, ...) and check_options(fname, opts, allowed)
-- would both pass, else their message without the "file:line: " prefix.
function Registry:check_call(names, base, fname, field, opts)
  local ok, err = pcall(function()
    local _, allowed = self:resolve(names, base, fname, field, 2)
    M.check_options(fname, opts, allowed)
  end)
  if ok then return nil end
  return (tostring(err):gsub("^[^\n]-:%d+: ", ""))
end

--- Adds the registry's functions to a module table: register(spec) (the
-- spec checked, raising at the caller), unregister(name), names(), get(name).
function Registry:expose(module)
  local reg = self
  function module.register(spec)
    local entry = reg:register(spec, 2) -- not a tail call: level 2 is the caller
    return entry
  end
  function module.unregister(name) return reg:unregister(name) end
  function module.names() return reg:names() end
  function module.get(name)
    local entry = reg:get(name, 2)
    return entry
  end
  return module
end

local function message_of(fn)
  return function(err)
    if type(err) == "string" and err:find("^[^\n]-:%d+: ") then return err end
    return ("%s: %s"):format(M.where(fn), type(err) == "string" and err or tostring(err))
  end
end

--- Calls fn protected. Returns true and its results, or false and a message
-- that starts with the file and line of the failure.
function M.call(fn, ...)
  return xpcall(fn, message_of(fn), ...)
end

local OPTION_TYPES = {
  integer = function(v) return math.type(v) == "integer" end,
  number = function(v) return type(v) == "number" and v == v end,
  time = function(v) return math.type(v) == "integer" or type(v) == "string" end,
}

--- Checks the options of a public call: every key must be in `allowed`
-- (name -> type: "integer", "number", "string", "boolean", "table",
-- "list", "time", "function", "any", or a list of those). Raises at the
-- caller of the public function.
function M.check_options(fname, opts, allowed)
  if opts == nil then return {} end
  if type(opts) ~= "table" then
    error(("bad argument #2 to '%s' (table expected, got %s)"):format(fname, type(opts)), 3)
  end
  local keys = {}
  for k in pairs(opts) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  for _, k in ipairs(keys) do
    local want = type(k) == "string" and allowed[k]
    if not want then
      error(("%s: unknown option '%s' (did you mean '%s'?)"):format(fname, tostring(k),
        config.closest(tostring(k), allowed)), 3)
    end
    local types = type(want) == "table" and want or { want }
    local ok = false
    for _, t in ipairs(types) do
      local check = OPTION_TYPES[t]
      if t == "any" or (check and check(opts[k])) or (t == "list" and is_list_of_strings(opts[k]))
        or (not check and t ~= "list" and type(opts[k]) == t) then
        ok = true
        break
      end
    end
    if not ok then
      local names = {}
      for i, t in ipairs(types) do names[i] = M.OPTION_NAMES[t] or t end
      error(("%s: option '%s' must be %s, got %s"):format(fname, k, table.concat(names, " or "),
        opts[k] ~= opts[k] and "nan" or describe(opts[k])), 3)
    end
  end
  return opts
end

return M
