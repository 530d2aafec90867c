-- Concurrent exports under a real race, run against each backend like the
-- conformance suite (CF_TEST_DB_URL; unset: a temporary SQLite file):
-- several `crucible-feedback export` processes of one deployment at once
-- write every curated example exactly once across their files; an export
-- that fails releases its claim; a claim left behind by a dead process
-- stops holding its row once it expires.
local store = require "crucible.store"
local core = require "crucible._core"
local support = require "support"
local json = require("cjson").new()

local URL = os.getenv("CF_TEST_DB_URL")
local tmp = support.tmpdir()
if not URL or URL == "" then URL = "sqlite:" .. tmp .. "/race.db" end
local BACKEND = URL:match("^clickhouse://") and "clickhouse"
  or URL:match("^postgres") and "postgres" or "sqlite"
local PROCESSES, ROWS = 4, 3000

local function uid(prefix) return prefix .. "-" .. core.uuid7() end

-- ROWS curated examples of a new deployment; returns its id.
local function seed(db, rows)
  local dep = uid("race")
  local list = {}
  for i = 1, rows do
    list[#list + 1] = { id = ("%s-c%05d"):format(dep, i), inference_event_id = ("%s-e%05d"):format(dep, i),
                        deployment_id = dep, curation_source = "high_quality", curation_score = 0.5,
                        prompt = ("prompt %d "):format(i) .. ("x"):rep(200), response = "r" .. i,
                        inserted_at = 1000 + i }
    if #list == 1000 or i == rows then
      assert(db:insert_curated(list))
      list = {}
    end
  end
  return dep
end

-- The rows of a JSONL export, by the number in their prompt (none when the
-- file is absent).
local function ids_in(path, into)
  local f = io.open(path)
  if not f then return 0 end
  local n = 0
  for line in f:lines() do
    local row = json.decode(line)
    into[#into + 1] = tonumber(row.prompt:match("^prompt (%d+) "))
    n = n + 1
  end
  f:close()
  return n
end

-- Runs `crucible-feedback export dep -o OUT.i` n times at once (one shell,
-- started back to back) and returns the output paths and their stderr.
local function export_at_once(dep, n, extra)
  local cmds, outs = {}, {}
  for i = 1, n do
    outs[i] = ("%s/%s.%d.jsonl"):format(tmp, dep, i)
    cmds[i] = ("%s --db %s export %s -f jsonl -o %s %s >/dev/null 2>%s &"):format(
      support.q(support.BINARY), support.q(URL), support.q(dep), support.q(outs[i]), extra or "",
      support.q(outs[i] .. ".err"))
  end
  assert(os.execute(table.concat(cmds, " ") .. " wait"))
  local errs = {}
  for i = 1, n do errs[i] = support.read_file(outs[i] .. ".err") end
  return outs, errs
end

-- Runs one statement on the backend's own client (a claim as a killed
-- process leaves it).
local function raw_sql(sql)
  local cmd
  if BACKEND == "sqlite" then
    cmd = ("sqlite3 %s %s"):format(support.q((URL:gsub("^sqlite:", ""):gsub("^//", ""))), support.q(sql))
  elseif BACKEND == "postgres" then
    cmd = ("psql -q -v ON_ERROR_STOP=1 %s -c %s"):format(support.q(URL), support.q(sql))
  else
    local user, pass, hostport, db = URL:match("^clickhouse://([^:@/]+):?([^@/]*)@([^/?]+)/?([%w_]*)")
    assert(user, "cannot read the ClickHouse URL")
    cmd = ("curl -sSf --max-time 30 -H %s -H %s --data-binary %s %s"):format(
      support.q("X-ClickHouse-User: " .. user), support.q("X-ClickHouse-Key: " .. pass),
      support.q(sql), support.q(("http://%s/?database=%s"):format(hostport, db ~= "" and db or "default")))
  end
  assert(os.execute(cmd .. " >/dev/null"), cmd)
end

-- A claim row of `token` on `curated_id`, valid until `until_us`.
local function leave_claim(dep, curated_id, token, until_us)
  if BACKEND == "sqlite" then
    raw_sql(("INSERT INTO curated_export_claims VALUES ('%s', '%s', '%s', %d)"):format(
      curated_id, dep, token, until_us))
  elseif BACKEND == "postgres" then
    raw_sql(("INSERT INTO curated_export_claims VALUES ('%s', '%s', '%s', to_timestamp(%d / 1e6))")
      :format(curated_id, dep, token, until_us))
  else
    raw_sql(("INSERT INTO curated_export_claims (deployment_id, curated_id, claim_token,"
      .. " claimed_until, withdrawn, version) VALUES ('%s', '%s', '%s', %d, 0, 1)"):format(
      dep, curated_id, token, until_us))
  end
end

local function count_unexported(db, dep)
  return assert(db:count("curated", { deployment_id = dep, exported = false }))
end

describe("concurrent exports (" .. URL:gsub(":[^:@/]*@", ":***@") .. ")", function()
  local db

  setup(function()
    db = assert(store.open(URL))
    assert(db:migrate())
  end)
  teardown(function()
    if db then db:close() end
    support.rm_rf(tmp)
  end)

  it("export every row exactly once across the processes' files", function()
    for _ = 1, 2 do
      local dep = seed(db, ROWS)
      local outs, errs = export_at_once(dep, PROCESSES)
      local ids, seen = {}, {}
      for i = 1, PROCESSES do ids_in(outs[i], ids) end
      for _, id in ipairs(ids) do
        assert.is_nil(seen[id], ("row %d exported twice; stderr: %s"):format(id, table.concat(errs, " | ")))
        seen[id] = true
      end
      assert.equal(ROWS, #ids, "rows exported in all; stderr: " .. table.concat(errs, " | "))
      assert.equal(0, count_unexported(db, dep))
    end
  end)

  it("release the claim of an export that fails, so the next one takes the rows", function()
    local dep = seed(db, 20)
    local blocker = tmp .. "/not-a-directory"
    support.write_file(blocker, "a file")
    local _, err, code = support.run(("--db %s export %s -f jsonl -o %s"):format(support.q(URL),
      support.q(dep), support.q(blocker .. "/out.jsonl")))
    assert.are_not.equal(0, code, "the export into a file's 'directory' must fail: " .. err)
    assert.equal(20, count_unexported(db, dep))
    local outs = export_at_once(dep, 1)
    local ids = {}
    assert.equal(20, ids_in(outs[1], ids), "rows the failed export had claimed")
    assert.equal(0, count_unexported(db, dep))
  end)

  it("skip rows a live claim holds and take those whose claim expired", function()
    local dep = seed(db, 5)
    local now = core.now_us()
    leave_claim(dep, dep .. "-c00001", uid("dead"), now - 1000000)
    leave_claim(dep, dep .. "-c00002", uid("live"), now + 3600 * 1000000)
    local outs = export_at_once(dep, 1)
    local ids = {}
    assert.equal(4, ids_in(outs[1], ids))
    for _, n in ipairs(ids) do assert.are_not.equal(2, n) end
    assert.equal(1, count_unexported(db, dep))
  end)
end)
