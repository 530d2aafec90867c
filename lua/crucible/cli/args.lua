--- Option parsing shared by every subcommand.
-- A spec lists options ({name=, value=, help=, key=, repeatable=}: a
-- repeatable option's values are collected in a list) and positionals
-- ({name=, required=, help=}); `rest = true` stops at the first positional
-- left over and hands everything after it through untouched (`run`).
-- The global options (--config, --db, --lua-path, --help) are accepted by
-- every subcommand.
local M = {}

M.GLOBAL = {
  { name = "--config", value = "FILE", key = "config",
    help = "configuration file (default: $CRUCIBLE_CONFIG, else ./crucible.config.lua)" },
  { name = "--db", value = "URL", key = "db", help = "database URL (default: sqlite:./crucible.db)" },
  { name = "--lua-path", value = "DIR", key = "lua_path",
    help = "search DIR for Lua modules before the bundled ones (repeatable)" },
  { name = "--verbose", key = "verbose",
    help = "show the Lua traceback of a usage error too (as CRUCIBLE_DEBUG=1 does)" },
  { name = "--help", key = "help", help = "show this help", short = "-h" },
}

local function find(options, name)
  for _, o in ipairs(options) do
    if o.name == name or o.short == name then return o end
  end
  for _, o in ipairs(M.GLOBAL) do
    if o.name == name or o.short == name then return o end
  end
  return nil
end

--- "unknown option 'ARG'" with a suggestion among `options` and the
-- global ones (name: ARG without an inline =value).
function M.unknown_option(arg, name, options)
  local names = {}
  for _, list in ipairs { options, M.GLOBAL } do
    for _, o in ipairs(list) do
      if o.name:sub(1, 2) == "--" then names[#names + 1] = o.name:sub(3) end
    end
  end
  local hint = name:sub(1, 2) == "--"
    and require("crucible.schema").did_you_mean(name:sub(3), names, "--") or ""
  return ("unknown option '%s'%s"):format(arg, hint)
end

--- Parses argv[first..]. Returns opts (option values by key, positionals by
-- name, and `rest_index`, the argv index where pass-through arguments
-- start) or nil and a one-line message.
-- `apply(opt, value)` is called for each global option and may return
-- nil, message to reject its value.
function M.parse(spec, argv, first, apply)
  local opts = { lua_path = {} }
  local positionals = spec.positionals or {}
  local npos = 0
  local i = first
  while argv[i] ~= nil do
    local a = argv[i]
    if a == "--" then
      i = i + 1
      break
    end
    if a:sub(1, 1) == "-" and a ~= "-" then
      local name, inline = a:match("^(%-%-[^=]+)=(.*)$")
      name = name or a
      local o = find(spec.options or {}, name)
      if not o then return nil, M.unknown_option(a, name, spec.options or {}) end
      local value = true
      if o.value then
        value = inline
        if value == nil then
          i = i + 1
          value = argv[i]
        end
        if value == nil then
          return nil, ("option '%s' needs a value (%s)"):format(o.name, o.value)
        end
      elseif inline then
        return nil, ("option '%s' takes no value"):format(o.name)
      end
      if o.key == "lua_path" then
        opts.lua_path[#opts.lua_path + 1] = value
      elseif o.repeatable then
        opts[o.key] = opts[o.key] or {}
        table.insert(opts[o.key], value)
      else
        opts[o.key] = value
      end
      if apply then
        local ok, err = apply(o, value)
        if not ok then return nil, err end
      end
    else
      npos = npos + 1
      local p = positionals[npos]
      if not p then
        return nil, ("unexpected argument '%s'"):format(a)
      end
      opts[p.key or p.name] = a
      if spec.rest and npos == #positionals then
        i = i + 1
        break
      end
    end
    i = i + 1
  end
  opts.rest_index = i
  if not opts.help then
    for n = npos + 1, #positionals do
      if positionals[n].required then
        return nil, ("missing argument %s"):format(positionals[n].name)
      end
    end
    if not spec.rest and argv[i] ~= nil then
      return nil, ("unexpected argument '%s'"):format(argv[i])
    end
  end
  return opts
end

--- The width help text is wrapped to, and the widest flag column.
M.WIDTH = 80
M.MAX_FLAG = 24

local function wrap(text, width)
  local lines, cur = {}, ""
  for word in text:gmatch("%S+") do
    if cur ~= "" and #cur + 1 + #word > width then
      lines[#lines + 1] = cur
      cur = word
    else
      cur = cur == "" and word or (cur .. " " .. word)
    end
  end
  if cur ~= "" or #lines == 0 then lines[#lines + 1] = cur end
  return lines
end

--- Two-column rows {{flag, description}, ...} laid out for help: each
-- flag on its own line, descriptions aligned in one column and wrapped;
-- a flag wider than the column puts its description on the next line.
function M.columns(rows, out)
  local col = 0
  for _, r in ipairs(rows) do
    if #r[1] <= M.MAX_FLAG and #r[1] > col then col = #r[1] end
  end
  local indent = 2 + col + 2
  for _, r in ipairs(rows) do
    local desc = wrap(r[2] or "", M.WIDTH - indent)
    if #r[1] > col then
      out[#out + 1] = "  " .. r[1]
      if desc[1] ~= "" then out[#out + 1] = (" "):rep(indent) .. desc[1] end
    else
      out[#out + 1] = (("  %-" .. col .. "s  %s"):format(r[1], desc[1])):gsub("%s+$", "")
    end
    for i = 2, #desc do out[#out + 1] = (" "):rep(indent) .. desc[i] end
  end
  return out
end

--- The flag text of an option: "-f, --format FORMAT".
function M.flag(o)
  local flag = o.name .. (o.value and (" " .. o.value) or "")
  if o.short then flag = o.short .. ", " .. flag end
  return flag
end

--- The help text for a subcommand spec.
function M.help(progname, spec)
  local lines = {}
  local usage = { progname, spec.command, "[options]" }
  for _, p in ipairs(spec.positionals or {}) do
    usage[#usage + 1] = p.required and p.name or ("[" .. p.name .. "]")
  end
  if spec.rest then usage[#usage + 1] = "[args...]" end
  lines[#lines + 1] = "usage: " .. table.concat(usage, " ")
  lines[#lines + 1] = ""
  lines[#lines + 1] = spec.summary
  if spec.description then
    lines[#lines + 1] = ""
    lines[#lines + 1] = spec.description
  end
  if spec.positionals and #spec.positionals > 0 then
    lines[#lines + 1] = ""
    lines[#lines + 1] = "Arguments:"
    local rows = {}
    for i, p in ipairs(spec.positionals) do rows[i] = { p.name, p.help } end
    M.columns(rows, lines)
  end
  lines[#lines + 1] = ""
  lines[#lines + 1] = "Options:"
  local rows = {}
  local own = {}
  for _, o in ipairs(spec.options or {}) do
    rows[#rows + 1] = { M.flag(o), o.help }
    own[o.name] = true
  end
  for _, o in ipairs(M.GLOBAL) do
    if not own[o.name] then rows[#rows + 1] = { M.flag(o), o.help } end
  end
  M.columns(rows, lines)
  return table.concat(lines, "\n")
end

return M
