--- Rewriting export files without a forgotten user's rows
-- (crucible.lifecycle): JSONL and CSV files, whose rows are read back,
-- compared by prompt and response with the rows removed, and written
-- again under a temporary name renamed into place. Other formats
-- (parquet, huggingface) are reported for regeneration.
local json = require("cjson").new()

local M = {}

--- The formats rewritten in place.
M.REWRITTEN = { jsonl = true, csv = true }

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

local function filter_jsonl(text, drop)
  local kept, removed = {}, 0
  for line in text:gmatch("[^\n]+") do
    local ok, row = pcall(json.decode, line)
    if ok and type(row) == "table" and type(row.prompt) == "string"
       and type(row.response) == "string" and drop[key(row.prompt, row.response)] then
      removed = removed + 1
    else
      kept[#kept + 1] = line .. "\n"
    end
  end
  return table.concat(kept), removed
end

local function filter_csv(text, drop)
  local kept, removed = {}, 0
  for i, r in ipairs(csv_records(text)) do
    local p, resp = r.fields[1], r.fields[2]
    if i > 1 and p and resp and drop[key(p, resp)] then
      removed = removed + 1
    else
      kept[#kept + 1] = r.text
    end
  end
  return table.concat(kept), removed
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

--- Rewrites the file of one export batch without the rows in `rows`
-- (each {prompt =, response =}). batch: {path =, format =}. Returns the
-- number of rows removed, or nil, message.
function M.rewrite(batch, rows)
  if not M.REWRITTEN[batch.format] then
    return nil, ("format %s is not rewritten in place: export the batch again"):format(
      tostring(batch.format))
  end
  local drop = {}
  for _, r in ipairs(rows) do
    if not (r.prompt and r.response) then
      return nil, "a row without its own prompt and response cannot be told apart in the"
        .. " file: export the batch again"
    end
    drop[key(r.prompt, r.response)] = true
  end
  local text, err = read_all(batch.path)
  if not text then return nil, err end
  local filter = batch.format == "jsonl" and filter_jsonl or filter_csv
  local out, removed = filter(text, drop)
  local ok, werr = write_replace(batch.path, out)
  if not ok then return nil, werr end
  return removed
end

M._internal = { csv_records = csv_records }

return M
