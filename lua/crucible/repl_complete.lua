--- crucible.repl_complete: what Tab offers in the REPL.
--   complete(env, "cf.cur", "")           --> {"cf.curate"}
--   complete(env, "db:ev", "")            --> {"db:events"} (methods through metatables)
--   complete(env, "wind", "cf.detect_drift('d', {")  --> {"window_size"}
--   complete(env, "pri", "")              --> {"print"} (globals, keywords)
--   complete(env, ".ta", "")              --> {".tables"}
local api_docs = require "crucible.api_docs"

local M = {}

local KEYWORDS = { "and", "break", "do", "else", "elseif", "end", "false", "for", "function",
                   "goto", "if", "in", "local", "nil", "not", "or", "repeat", "return", "then",
                   "true", "until", "while" }

local IDENT = "^[%a_][%w_]*$"

-- The string keys of t and of the tables its metatables' __index lead to.
local function keys_of(v, out, depth)
  if depth > 4 then return end
  if type(v) == "table" then
    for k in next, v do
      if type(k) == "string" and k:match(IDENT) then out[k] = true end
    end
  end
  local mt = (type(v) == "table" or type(v) == "userdata") and getmetatable(v)
  if type(mt) == "table" and type(rawget(mt, "__index")) == "table" then
    keys_of(rawget(mt, "__index"), out, depth + 1)
  end
end

-- The value a dotted path names in env ("cf.quality"), without calling
-- anything but __index; nil when a step fails.
local function resolve(env, path)
  local v = env
  for name in path:gmatch("[^.:]+") do
    if v == env then
      v = rawget(env, name)
      if v == nil then v = rawget(_G, name) end
    else
      local ok, x = pcall(function() return v[name] end)
      if not ok then return nil end
      v = x
    end
    if v == nil then return nil end
  end
  return v
end

-- Whether v:k(...) is a call a user would type: k names a function,
-- and is no metamethod (__index, __tostring, ...).
local function is_method_name(v, k)
  if k:match("^__") then return false end
  local ok, is_fn = pcall(function() return type(v[k]) == "function" end)
  return ok and is_fn
end

local function candidates_of(v, is_method)
  local set = {}
  local crucible = package.loaded.crucible
  if v == crucible and type(crucible.api_names) == "function" then
    local ok, names = pcall(crucible.api_names)
    if ok then for _, n in ipairs(names) do set[n] = true end end
  end
  keys_of(v, set, 0)
  local out = {}
  for k in pairs(set) do
    if not is_method or type(v) == "string" or is_method_name(v, k) then
      out[#out + 1] = k
    end
  end
  return out
end

-- The API function whose option table is being typed at the end of
-- `before` ("cf.curate('d', {" or "cf.events{where = 1, "), or nil.
local function open_call(before)
  local fname, rest = before:match("cf%.([%w_]+)%s*(%b())$")
  if fname then return nil end
  for name, tail in before:gmatch("cf%.([%w_]+)%s*([({].*)$") do fname, rest = name, tail end
  if not fname then return nil end
  if select(2, rest:gsub("{", "")) <= select(2, rest:gsub("}", "")) then return nil end
  return fname
end

local function filter(prefix, names, base)
  local out, seen = {}, {}
  for _, n in ipairs(names) do
    if n:sub(1, #prefix) == prefix and not seen[n] then
      seen[n] = true
      out[#out + 1] = base .. n
    end
  end
  table.sort(out)
  return out
end

--- The completions of `word` (the text before the cursor back to a space
-- or bracket) given the line before it; `commands` the REPL's dot commands.
function M.complete(env, word, before, commands)
  if word:sub(1, 1) == "." and before:match("^%s*$") then
    return filter(word, commands or {}, "")
  end
  local base, sep, partial = word:match("^(.-)([.:])([%w_]*)$")
  if base and base ~= "" then
    local v = resolve(env, base)
    if v == nil then return {} end
    return filter(partial, candidates_of(v, sep == ":"), base .. sep)
  end
  local fname = open_call(before)
  if fname then
    local opts = filter(word, api_docs.option_names(fname), "")
    if #opts > 0 then return opts end
  end
  local names = {}
  for _, k in ipairs(KEYWORDS) do names[#names + 1] = k end
  for _, t in ipairs { env, _G } do
    for k in pairs(t) do
      if type(k) == "string" and k:match(IDENT) then names[#names + 1] = k end
    end
  end
  return filter(word, names, "")
end

return M
