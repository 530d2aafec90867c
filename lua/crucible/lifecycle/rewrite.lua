--- Rewriting export files without a forgotten user's rows
-- (crucible.lifecycle), two ways:
--
--   * JSONL and CSV files are rewritten in place (M.rewrite, before the
--     user's rows are deleted): their rows are read back and compared with
--     the user's by the columns the file has (the event id; else prompt
--     and response; else whichever of the two it has), and the rest
--     written under a temporary name renamed into place. A file none of
--     whose columns tells the rows apart is left as it was and reported.
--   * Every other format (Parquet, HuggingFace dataset directories, chat
--     JSONL) is regenerated (M.regenerate, once the user's rows are all
--     deleted): the batch's remaining rows are exported again from the
--     store by the same C exporter, with the columns and options the
--     export recorded (crucible.export's batch record), into a temporary
--     file or sibling directory that replaces the old one only when
--     complete; a failure leaves the old one as it was. A batch exported
--     before its options were recorded is not guessed at: it is reported.
local cexport = require "crucible._export"
local export = require "crucible.export"
local store_mod = require "crucible.store"
local json = require("cjson").new()

local M = {}

--- The formats rewritten in place (curated JSONL and CSV, and the
-- preference pair formats); the others are regenerated.
M.PAIRS = { dpo = true, kto = true, openai = true }
M.REWRITTEN = { jsonl = true, csv = true, dpo = true, kto = true, openai = true }

local function key(prompt, response) return #prompt .. ":" .. prompt .. response end

-- The records of CSV text (RFC 4180, CRLF or LF ends): a list of
-- {fields, text} where text is the record as written with its line end.
local function csv_records(text)
  local out, pos, n = {}, 1, #text
  while pos <= n do
    local fields, start = {}, pos
    repeat
      local v
      if text:sub(pos, pos) == '"' then
        local buf, i = {}, pos + 1
        while true do
          local q = text:find('"', i, true) or n + 1
          buf[#buf + 1] = text:sub(i, q - 1)
          if text:sub(q + 1, q + 1) == '"' then
            buf[#buf + 1] = '"'
            i = q + 2
          else
            pos = q + 1
            break
          end
        end
        v = table.concat(buf)
      else
        local e = text:find("[,\r\n]", pos) or n + 1
        v, pos = text:sub(pos, e - 1), e
      end
      fields[#fields + 1] = v
      local sep = text:sub(pos, pos)
      pos = pos + 1
    until sep ~= ","
    if text:sub(pos - 1, pos) == "\r\n" then pos = pos + 1 end
    out[#out + 1] = { fields = fields, text = text:sub(start, pos - 1) }
  end
  return out
end

-- Whether a row of a file is one of the user's `rows`, told by the most
-- specific of its columns: the event id, else prompt and response, else
-- the one of them it has. get(column) is the row's value of a column, or
-- nil when the file has none; nil when no column tells.
local function matcher(rows)
  local ids, both, prompts, responses = {}, {}, {}, {}
  for _, r in ipairs(rows) do
    if r.inference_event_id then ids[r.inference_event_id] = true end
    if r.prompt then prompts[r.prompt] = true end
    if r.response then responses[r.response] = true end
    if r.prompt and r.response then both[key(r.prompt, r.response)] = true end
  end
  return function(get)
    local id, p, resp = get("inference_event_id"), get("prompt"), get("response")
    if id then return ids[id] == true end
    if p and resp then return both[key(p, resp)] == true end
    if p then return prompts[p] == true end
    if resp then return responses[resp] == true end
    return nil
  end
end

-- The JSON lines of text without the user's: row_is_users(row) says, for
-- each line that decodes to an object, true, false, or nil when it cannot
-- tell (counted in untold; such lines, and lines that do not decode, are
-- kept).
local function filter_jsonl(text, row_is_users)
  local kept, removed, untold = {}, 0, 0
  for line in text:gmatch("[^\n]+") do
    local ok, row = pcall(json.decode, line)
    local users = nil
    if ok and type(row) == "table" then users = row_is_users(row) end
    if users then
      removed = removed + 1
    else
      if users == nil then untold = untold + 1 end
      kept[#kept + 1] = line .. "\n"
    end
  end
  return table.concat(kept), removed, untold
end

local function filter_csv(text, is_users)
  local kept, removed, untold, col = {}, 0, 0, {}
  for i, r in ipairs(csv_records(text)) do
    local users = false
    if i == 1 then -- the header: the columns' names
      for k, name in ipairs(r.fields) do col[name] = col[name] or k end
    else
      users = is_users(function(c) return col[c] and r.fields[col[c]] end)
    end
    if users then
      removed = removed + 1
    else
      if users == nil then untold = untold + 1 end
      kept[#kept + 1] = r.text
    end
  end
  return table.concat(kept), removed, untold
end

-- A preference pair line's event, as pair_keys names it: dpo and kto by
-- prompt and response (rejected, completion), openai by prompt (its
-- answer is the edit).
local function pair_key(row)
  if type(row.prompt) == "string" then
    local resp = row.rejected or row.completion
    return type(resp) == "string" and key(row.prompt, resp) or nil
  end
  local m = type(row.messages) == "table" and row.messages[1]
  if type(m) == "table" and m.role == "user" and type(m.content) == "string" then
    return "prompt:" .. m.content
  end
  return nil
end

-- The keys of the user's events (rows: {prompt =, response =}) that
-- pair_key gives their lines.
local function pair_keys(rows)
  local out = {}
  for _, r in ipairs(rows) do
    if r.prompt then
      out["prompt:" .. r.prompt] = true
      if r.response then out[key(r.prompt, r.response)] = true end
    end
  end
  return out
end

-- A curated JSONL row's test (filter_jsonl) from matcher's is_users.
local function by_columns(is_users)
  return function(row)
    return is_users(function(c) return type(row[c]) == "string" and row[c] or nil end)
  end
end

-- A preference pair line's test (filter_jsonl): made from one of mine.
local function by_pair(mine)
  return function(row) return mine[pair_key(row) or false] == true end
end

local function read_all(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local text = f:read("a")
  f:close()
  return text
end

local function write_replace(path, text)
  local tmp = path .. ".tmp-forget"
  local f, err = io.open(tmp, "wb")
  if not f then return nil, err end
  local ok, werr = f:write(text)
  f:close()
  if not ok then
    os.remove(tmp)
    return nil, werr
  end
  local rok, rerr = os.rename(tmp, path)
  if not rok then
    os.remove(tmp)
    return nil, rerr
  end
  return true
end

--- How many lines of a preference pairs file were made from the user's
-- events (rows: {prompt =, response =}), or nil, message when it cannot
-- be read.
function M.pair_lines(path, rows)
  local text, err = read_all(path)
  if not text then return nil, err end
  local _, n = filter_jsonl(text, by_pair(pair_keys(rows)))
  return n
end

--- Rewrites the file of one export batch without the rows in `rows`
-- (each {inference_event_id =, prompt =, response =}). batch: {path =,
-- format =}. Returns the number of rows removed, or nil, message (the
-- file left as it was).
function M.rewrite(batch, rows)
  if not M.REWRITTEN[batch.format] then
    return nil, ("format %s is not rewritten in place: export the batch again"):format(
      tostring(batch.format))
  end
  if M.PAIRS[batch.format] then
    local text, err = read_all(batch.path)
    if not text then return nil, err end
    local out, removed = filter_jsonl(text, by_pair(pair_keys(rows)))
    local ok, werr = write_replace(batch.path, out)
    if not ok then return nil, werr end
    return removed
  end
  for _, r in ipairs(rows) do
    if not (r.inference_event_id or (r.prompt and r.response)) then
      return nil, "a row without its event id, prompt and response cannot be told apart in"
        .. " the file: export the batch again"
    end
  end
  local text, err = read_all(batch.path)
  if not text then return nil, err end
  local out, removed, untold
  if batch.format == "jsonl" then
    out, removed, untold = filter_jsonl(text, by_columns(matcher(rows)))
  else
    out, removed, untold = filter_csv(text, matcher(rows))
  end
  if untold > 0 then
    return nil, ("%d rows of the file have none of the columns inference_event_id, prompt and"
      .. " response, so the user's cannot be told apart: export the batch again"):format(untold)
  end
  local ok, werr = write_replace(batch.path, out)
  if not ok then return nil, werr end
  return removed
end

-- Why rec (a batch record) cannot regenerate its file, or nil.
local function unrecorded(rec)
  if not rec then return "no export record for this batch" end
  if type(rec.options) ~= "table" or type(rec.count) ~= "number"
     or type(rec.deployment_id) ~= "string" then
    return "this export did not record its columns and options (it predates that):"
      .. " export the batch again"
  end
  return nil
end

--- Writes the file of one export batch again from the rows the store
-- still holds with its batch id, now that the user's `removed` rows of it
-- are deleted. batch: {batch_id =, path =, format =}. Returns `removed`,
-- or nil, message (the file left as it was).
function M.regenerate(store, batch, removed)
  local rec = export.batch_record(store, batch.batch_id)
  local why = unrecorded(rec)
  if why then return nil, why end
  local o = rec.options
  removed = math.tointeger(removed) or 0
  local expect = (math.tointeger(rec.count) or -1) - removed
  if expect < 0 then
    return nil, ("the batch record counts %d rows, fewer than the %d removed: export the"
      .. " batch again"):format(math.tointeger(rec.count), removed)
  end
  local r, err = cexport.curated(store.h, {
    format = batch.format, path = batch.path, deployment_id = rec.deployment_id,
    batch_id = batch.batch_id, regenerate = true, expect_rows = expect,
    columns = o.columns, parquet = o.parquet, export_time = o.export_time,
    include_exported = o.include_exported, limit = o.limit,
    db_path = export.database_file(store) })
  if not r then return nil, err end
  rec.count = r.count  -- a later forget starts from the file as it is now
  local ok, serr = store:set_setting(export.BATCH_SETTING .. batch.batch_id,
    store_mod.encode_json(rec))
  if not ok then return nil, "file regenerated, but its record not updated: " .. tostring(serr) end
  return removed
end

M._internal = { csv_records = csv_records }

return M
