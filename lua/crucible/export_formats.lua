--- The export formats, as registered in C (src/export/cf_export_registry.c,
-- listed by crucible._export.formats()). The configuration's export.format,
-- the export_feedback stage's schema, cf.export and `crucible-feedback
-- export` take their formats from here, so a new format needs no Lua edit.
--
--   formats.names("curated")  --> { "jsonl", "parquet", ... } in table order
--   formats.set("pairs")      --> { dpo = row, ... }
--   formats.list              --> every row: {name=, alias=, extension=,
--                                 description=, kind="curated"|"pairs",
--                                 directory=, columns=, signal_types=}
--   formats.columns           --> the columns of curated exports: {name=,
--                                 type=, from_event=} in their default order
local cexport = require "crucible._export"

local M = {}

M.list = cexport.formats()
M.columns = cexport.columns()

--- The names of the formats of that kind ("curated" or "pairs"; nil: all),
-- in the registry's order.
function M.names(kind)
  local names = {}
  for _, f in ipairs(M.list) do
    if kind == nil or f.kind == kind then names[#names + 1] = f.name end
  end
  return names
end

--- name -> row for the formats of that kind (nil: all); a format's alias
-- maps to its row too.
function M.set(kind)
  local set = {}
  for _, f in ipairs(M.list) do
    if kind == nil or f.kind == kind then
      set[f.name] = f
      if f.alias then set[f.alias] = f end
    end
  end
  return set
end

--- The names of the columns of curated exports, in their default order.
function M.column_names()
  local names = {}
  for i, c in ipairs(M.columns) do names[i] = c.name end
  return names
end

return M
