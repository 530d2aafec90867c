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
local core = require "crucible._core"
local schema = require "crucible.schema"
local time_limit = require "crucible.time_limit"

local M = {}

local NAME_PATTERN = "^[%a][%w_]*$"
local describe = schema.describe

--- "file:line" where a function is defined.
function M.where(fn)
  local info = debug.getinfo(fn, "S")
  if not info then return "?" end
  return ("%s:%d"):format(info.short_src, info.linedefined)
end

local LIST_OF_STRINGS = { list = "string" }

-- A policy's type in the schema vocabulary: the same, but a bare "list"
-- is a list of strings.
local function as_schema(t)
  if t == "list" then return LIST_OF_STRINGS end
  if type(t) == "table" and t.enum == nil and t.list == nil and t.map == nil then
    local out = {}
    for i, x in ipairs(t) do out[i] = as_schema(x) end
    return out
  end
  return t
end

local function as_schema_fields(fields)
  local out = {}
  for k, t in pairs(fields) do out[k] = as_schema(t) end
  return out
end

--- The option types a policy may declare (crucible.schema's, "list" being
-- a list of strings), with their descriptions.
M.OPTION_NAMES = {}
for _, n in ipairs(schema.type_names()) do M.OPTION_NAMES[n] = schema.type_name(as_schema(n)) end

local Registry = {}
Registry.__index = Registry

--- A registry. spec: what (for messages), api (the registration call's
-- name), prefix (module prefix for lookup by name), run (the name of the
-- required function field), fields (extra fields: name -> type, "?" =
-- optional; types as for options: "string", "function", "boolean",
-- "list" (of strings), "table", ...).
function M.registry(spec)
  local fields = { name = "string", description = "string?", options = "table?",
                   replace = "boolean?", time_limit_ms = "integer?" }
  fields[spec.run] = "function"
  for k, v in pairs(spec.fields or {}) do fields[k] = v end
  local types, required = {}, {}
  for k, want in pairs(fields) do
    local optional = want:sub(-1) == "?"
    types[k] = as_schema(optional and want:sub(1, -2) or want)
    required[k] = not optional or nil
  end
  return setmetatable({ what = spec.what, api = spec.api, prefix = spec.prefix, run = spec.run,
                        types = types, required = required, entries = {} }, Registry)
end

local function quoted_or_described(v)
  return type(v) == "string" and ("%q"):format(v) or describe(v)
end

-- The name of a spec given to register: a message when it is not valid.
local function name_problem(api, run, name)
  if name == nil then
    return ("%s: field 'name' is required (a string like \"my_%s\")")
      :format(api, run == "select" and "strategy" or "policy")
  end
  if type(name) ~= "string" or not name:match(NAME_PATTERN) then
    return ("%s: field 'name' must be letters, digits and underscores starting with a letter,"
      .. " got %s"):format(api, quoted_or_described(name))
  end
  return nil
end

-- A problem with the declared options (name -> type) of a spec, or nil.
local function options_problem(at, options)
  for _, k in ipairs(schema.sorted_keys(options or {})) do
    local t = options[k]
    if type(k) ~= "string" or not k:match(NAME_PATTERN) then
      return ("%s: field 'options' maps option names to types (options = {min_score = \"number\"}),"
        .. " got the key %s"):format(at, quoted_or_described(k))
    end
    if type(t) ~= "table" and not M.OPTION_NAMES[t] then
      return ("%s: options.%s must be one of the type names %s (or {enum = {...}}, {list = TYPE},"
        .. " {map = TYPE}, a list of types), got %s")
        :format(at, k, table.concat(schema.type_names(), ", "), quoted_or_described(t))
    end
    local err = type(t) == "table" and schema.check_type(as_schema(t))
    if err then return ("%s: options.%s: %s"):format(at, k, err) end
  end
  return nil
end

--- Validates and registers a policy; returns the stored spec. Raises a
-- message naming the bad field, at the caller of `level` (default: the
-- caller of register).
function Registry:register(spec, level)
  level = (level or 1) + 1
  if type(spec) ~= "table" then
    error(("%s: expected a table {name = ..., %s = function ... end}, got %s")
      :format(self.api, self.run, describe(spec)), level)
  end
  local name = spec.name
  local bad = name_problem(self.api, self.run, name)
  if bad then error(bad, level) end
  local at = ("%s{name = %q}"):format(self.api, name)
  local problems = schema.check_fields(spec, self.types, { noun = "field", required = self.required })
  if problems[1] then error(("%s: %s"):format(at, problems[1]), level) end
  bad = options_problem(at, spec.options)
  if bad then error(bad, level) end
  if spec.time_limit_ms ~= nil and spec.time_limit_ms < 1 then
    error(("%s: field 'time_limit_ms' must be at least 1 (milliseconds), got %d")
      :format(at, spec.time_limit_ms), level)
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

--- The names of the modules `prefix`NAME (prefix "crucible.curation.")
-- found as files in the user's directories (--lua-path, CRUCIBLE_PATH,
-- lua_path): DIR/crucible/curation/NAME.lua, sorted.
function M.user_modules(prefix)
  local sub = prefix:gsub("%.$", ""):gsub("%.", "/")
  local seen, out = {}, {}
  for template in (core.lua_path() or ""):gmatch("[^;]+") do
    local dir = template:match("^(.*)/%?%.lua$")
    for _, f in ipairs(dir and core.list_dir(dir .. "/" .. sub) or {}) do
      local n = f:match("^(.+)%.lua$")
      if n and n:match(NAME_PATTERN) and not seen[n] then
        seen[n] = true
        out[#out + 1] = n
      end
    end
  end
  table.sort(out)
  return out
end

--- The spec registered as `name`, loading module prefix..name on first
-- use (the user's directories are searched before the bundled modules).
-- Every name a user could mean: the registered ones and the bundled
-- modules under the registry's prefix (loaded or not).
function Registry:known_names()
  local names = {}
  for n in pairs(self.entries) do names[n] = true end
  local prefix = self.prefix
  for _, m in ipairs(core.bundled_modules()) do
    if m:sub(1, #prefix) == prefix and not m:find(".", #prefix + 1, true) then
      names[m:sub(#prefix + 1)] = true
    end
  end
  for _, n in ipairs(M.user_modules(prefix)) do names[n] = true end
  return names
end

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
      error(("unknown %s '%s'%s: register one with %s, or put a module %s.lua in a user"
        .. " directory (--lua-path, CRUCIBLE_PATH or lua_path)")
        :format(self.what, name, schema.did_you_mean(name, self:known_names()), self.api,
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

local function after_cut(handler, cut, ok, ...)
  if cut then return false, handler(cut) end
  return ok, ...
end

--- As call, with a time limit in milliseconds (nil: none): past it fn is
-- stopped and the message says "time limit of MS ms exceeded".
function M.call_limited(limit_ms, fn, ...)
  if limit_ms == nil then return xpcall(fn, message_of(fn), ...) end
  local handler = message_of(fn)
  return after_cut(handler, time_limit.call(time_limit.after_ms(limit_ms, core.now_us), handler,
    fn, ...))
end

--- Checks the options of a public call: every key must be in `allowed`
-- (name -> a type of crucible.schema, "list" being a list of strings).
-- Raises at the caller of the public function.
function M.check_options(fname, opts, allowed)
  if opts == nil then return {} end
  if type(opts) ~= "table" then
    error(("bad argument #2 to '%s' (table expected, got %s)"):format(fname, type(opts)), 3)
  end
  local problems = schema.check_fields(opts, as_schema_fields(allowed), { noun = "option" })
  if problems[1] then error(("%s: %s"):format(fname, problems[1]), 3) end
  return opts
end

return M
