-- Exports a trainer can trace: curated rows carry their inference event's
-- id, deployment, model version, time, quality score and signal counts
-- (typed in Parquet), a choice of columns, and the chat (SFT) format with
-- the recorded system prompt and chat turns.
local support = require "support"
local duck = require "duckdb"
local json = require("cjson").new()

local cf, dir, db

local T0 = 1796514365000000 -- 2026-12-05T23:46:05Z

local function setup()
  dir = support.tmpdir()
  cf = assert(require("crucible").new { config = {
    storage = { url = "sqlite:" .. dir .. "/t.db" },
    export = { output_dir = dir .. "/exports" },
  } })
  db = assert(cf.store())
  assert(db:insert_events {
    { id = "e1", deployment_id = "d", model_version_id = "v7", prompt = "p1", response = "r1",
      quality_score = 0.9, inserted_at = T0 },
    { id = "e2", deployment_id = "d", model_version_id = "v8", prompt = "p2", response = "r2",
      inserted_at = T0 + 1,
      metadata = { system_prompt = "You are terse.", channel = "web" } },
    { id = "e3", deployment_id = "d", prompt = json.encode {
        { role = "system", content = "Be kind." }, { role = "user", content = "Hi" },
        { role = "assistant", content = "Hello!" }, { role = "user", content = "Refund?" } },
      response = "Sure.", inserted_at = T0 + 2, metadata = { prompt_format = "chat" } },
  })
  for _, s in ipairs { { "e1", "thumbs_up" }, { "e1", "thumbs_up" }, { "e1", "edit" },
                       { "e2", "report" } } do
    assert(db:insert_signal { inference_event_id = s[1], signal_type = s[2],
                              edited_response = s[2] == "edit" and "r1!" or nil })
  end
  local curated = {}
  for i = 1, 3 do
    curated[i] = { id = "c" .. i, inference_event_id = "e" .. i, deployment_id = "d",
                   curation_source = "high_quality", curation_score = i / 2,
                   prompt = i == 3 and nil or ("p" .. i), response = "r" .. i, inserted_at = i }
  end
  curated[3].prompt = (db:events { id = "e3" })().prompt
  assert(db:insert_curated(curated))
end

local function teardown()
  if cf then cf.close() end
  if dir then support.rm_rf(dir) end
  cf, dir, db = nil, nil, nil
end

local function lines(path)
  local out = {}
  for line in support.read_file(path):gmatch("[^\n]+") do out[#out + 1] = json.decode(line) end
  return out
end

describe("traceable exports", function()
  after_each(teardown)

  it("write each row's event, deployment, model version, time, quality and signals", function()
    setup()
    local path = assert(cf.export("d", { format = "parquet", output_path = dir .. "/t.parquet" }))
    local r = duck.rows(("SELECT inference_event_id AS e, deployment_id AS d, model_version_id AS m, "
      .. "typeof(created_at) AS tt, epoch_us(created_at) AS us, quality_score AS q, "
      .. "typeof(signals_thumbs_up) AS it, signals_thumbs_up AS up, signals_edit AS ed, "
      .. "signals_report AS rep, score FROM read_parquet(%s) ORDER BY e"):format(duck.lit(path)))
    assert.same({ e = "e1", d = "d", m = "v7", tt = "TIMESTAMP WITH TIME ZONE",
                  us = tostring(T0), q = 0.9, it = "BIGINT", up = "2", ed = "1", rep = "0",
                  score = 0.5 }, r[1])
    assert.same({ "e2", "v8", "0", "1" }, { r[2].e, r[2].m, r[2].up, r[2].rep })
    assert.equal(json.null, r[2].q) -- no quality score recorded
    local jpath = assert(cf.export("d", { output_path = dir .. "/t.jsonl",
                                          include_exported = true }))
    local j = lines(jpath)[1]
    assert.same({ "e1", "v7", "2026-12-05T23:46:05.000000Z", 0.9, 2, 1 },
                { j.inference_event_id, j.model_version_id, j.created_at, j.quality_score,
                  j.signals_thumbs_up, j.signals_edit })
  end)

  it("write the chosen columns in the order given; unknown ones are named", function()
    setup()
    local path = assert(cf.export("d", { format = "csv", output_path = dir .. "/c.csv",
      columns = { "inference_event_id", "model_version_id", "signals_thumbs_up" } }))
    assert.equal("inference_event_id,model_version_id,signals_thumbs_up\r\ne1,v7,2\r\ne2,v8,0\r\n"
      .. "e3,,0\r\n", support.read_file(path))
    assert.has_error(function() cf.export("d", { columns = { "prompt", "modle_version_id" } }) end,
      "export: option 'columns': unknown column 'modle_version_id' (did you mean "
      .. "'model_version_id'?) (columns: " .. table.concat(
        require("crucible.export_formats").column_names(), ", ") .. ")")
    assert.has_error(function() cf.export("d", { columns = {} }) end,
      "export: option 'columns': name at least one column")
    assert.has_error(function() cf.export("d", { columns = { "prompt", "prompt" } }) end,
      "export: option 'columns': column 'prompt' is named twice")
    assert.has_error(function()
      cf.export("d", { format = "openai-chat", columns = { "prompt" } })
    end, "export: option 'columns': columns do not apply to format 'openai-chat' "
      .. "(they do to: jsonl, parquet, csv, huggingface)")
  end)

  it("--columns on the command line, with a suggestion for a misspelt one", function()
    setup()
    cf.close()
    cf = nil
    local db_url = support.q("sqlite:" .. dir .. "/t.db")
    local out, err, code = support.run(("export d -f csv -o - --columns prompt,quality_score "
      .. "--db %s"):format(db_url), { cwd = dir })
    assert.equal(0, code, err)
    assert.equal("prompt,quality_score\r\np1,0.9\r\np2,\r\n", out:match("^[^\n]*\n[^\n]*\n[^\n]*\n"))
    local _, err2, code2 = support.run(("export d --columns prompt,qualty_score --db %s"):format(
      db_url), { cwd = dir })
    assert.equal(2, code2)
    assert.truthy(err2:find("--columns: unknown column 'qualty_score' (did you mean "
      .. "'quality_score'?)", 1, true), err2)
  end)

  it("openai-chat writes messages with the system prompt and the chat turns", function()
    setup()
    local path = assert(cf.export("d", { format = "openai-chat",
                                         output_path = dir .. "/chat.jsonl" }))
    local got = lines(path)
    assert.same({ messages = { { role = "user", content = "p1" },
                               { role = "assistant", content = "r1" } } }, got[1])
    assert.same({ messages = { { role = "system", content = "You are terse." },
                               { role = "user", content = "p2" },
                               { role = "assistant", content = "r2" } } }, got[2])
    assert.same({ messages = { { role = "system", content = "Be kind." },
                               { role = "user", content = "Hi" },
                               { role = "assistant", content = "Hello!" },
                               { role = "user", content = "Refund?" },
                               { role = "assistant", content = "r3" } } }, got[3])
    -- marked like every curated export; the alias 'messages' names the same format
    local again, info = cf.export("d", { format = "messages", output_path = dir .. "/2.jsonl" })
    assert.is_false(again)
    assert.equal("0 new rows; 3 already exported", info.reason)
    local p2 = assert(cf.export("d", { format = "messages", include_exported = true,
                                       output_path = dir .. "/3.jsonl" }))
    assert.equal(support.read_file(path), support.read_file(p2))
  end)

  it("preference pairs are marked: a second run writes only new or changed pairs", function()
    setup()
    local function pairs_of(format, opts)
      opts = opts or {}
      opts.format, opts.output_path = format, dir .. "/" .. format .. "_" .. os.clock() .. ".jsonl"
      local path, info = cf.export_preference_pairs("d", opts)
      if not path then return {}, info end
      return lines(path), info
    end
    local got = pairs_of("dpo")
    assert.same({ { prompt = "p1", chosen = "r1!", rejected = "r1" } }, got)
    local again, info = pairs_of("dpo")
    assert.same({}, again)
    assert.same({ 0, 1, "0 new rows; 1 already exported" },
                { info.count, info.already_exported, info.reason })
    -- a new edit is new; a limited export writes it but does not move the mark
    assert(db:insert_signal { inference_event_id = "e2", signal_type = "edit",
                              edited_response = "r2!" })
    assert.same({ { prompt = "p2", chosen = "r2!", rejected = "r2" } }, (pairs_of("dpo", { limit = 5 })))
    assert.same({ { prompt = "p2", chosen = "r2!", rejected = "r2" } }, (pairs_of("dpo")))
    assert.same({}, (pairs_of("dpo")))
    assert.equal(2, #pairs_of("dpo", { include_exported = true }))
    -- kto: a vote flipped after the mark is a changed pair
    assert.same({ { prompt = "p1", completion = "r1", label = true } }, (pairs_of("kto")))
    assert.same({}, (pairs_of("kto")))
    assert(db:insert_signal { inference_event_id = "e1", signal_type = "thumbs_down" })
    assert.same({ { prompt = "p1", completion = "r1", label = false } }, (pairs_of("kto")))
    -- each format keeps its own mark
    assert.equal(2, #pairs_of("openai"))
  end)
end)
