-- Bulk ingestion is exactly-once across a crash, on every backend: the
-- database is the URL in CF_TEST_DB_URL (unset: a fresh temporary SQLite
-- file), as in the conformance suite (tests/servers/with-server.sh starts
-- PostgreSQL or ClickHouse and sets it). `crucible-feedback ingest` is
-- killed with SIGKILL after some of a large file's lines are stored, then
-- run again over the same file: every line ends up stored exactly once, and
-- the second run counts the lines the first one stored as already stored.
local store = require "crucible.store"
local core = require "crucible._core"
local cingest = require "crucible._ingest"
local support = require "support"

local URL = os.getenv("CF_TEST_DB_URL")
local tmp
if not URL or URL == "" then
  tmp = support.tmpdir()
  URL = "sqlite:" .. tmp .. "/resume.db"
end

-- Lines in the file: enough that the first run is still writing when
-- it is killed (small batches make more, slower transactions).
local N = 60000
local CONFIG = "return { ingestion = { max_batch_size = 250, flush_interval = 50 } }\n"

local function sleep(s) os.execute("sleep " .. s) end

local function wait_until(fn, seconds)
  local deadline = cingest.clock_ns() + seconds * 1e9
  while cingest.clock_ns() < deadline do
    if fn() then return true end
    sleep(0.05)
  end
  return fn()
end

-- The input: N events without ids under deployment dep, each line unique.
local function write_input(path, dep)
  local f = assert(io.open(path, "w"))
  local response = ("a response of a few words, "):rep(6)
  for i = 1, N do
    f:write(('{"deployment_id":"%s","prompt":"line %d of the input","response":"%s","latency_ms":%d}\n')
      :format(dep, i, response, i % 500))
  end
  f:close()
end

-- The ingest command line for dir's input and configuration.
local function ingest_cmd(dir)
  return ("cd %s && exec %s --config crucible.config.lua --db %s ingest --quiet in.jsonl")
    :format(support.q(dir), support.q(support.BINARY), support.q(URL))
end

-- Starts the ingest in the background; returns its pid.
local function start(dir)
  local p = assert(io.popen(("sh -c %s"):format(support.q(
    ingest_cmd(dir) .. " >first.out 2>first.err & echo $!"))))
  local pid = p:read("l")
  p:close()
  return assert(pid:match("^%d+$"), "no pid")
end

local function alive(pid)
  return os.execute(("kill -0 %s 2>/dev/null"):format(pid)) == true
end

describe("bulk ingestion killed with SIGKILL (" .. URL:gsub(":[^:@/]*@", ":***@") .. ")", function()
  local db
  setup(function()
    db = assert(store.open(URL))
    assert(db:migrate())
  end)
  teardown(function()
    if db then db:close() end
    if tmp then support.rm_rf(tmp) end
  end)

  it("stores every line exactly once when run again, counting those already stored", function()
    local dir = support.tmpdir()
    local dep = "resume-" .. core.uuid7()
    write_input(dir .. "/in.jsonl", dep)
    support.write_file(dir .. "/crucible.config.lua", CONFIG)
    local count = function() return assert(db:count_events { deployment_id = dep }) end
    local pid = start(dir)
    assert(wait_until(function() return count() >= 2000 or not alive(pid) end, 300),
      "nothing was stored: " .. support.read_file(dir .. "/first.err"))
    assert(os.execute("kill -KILL " .. pid))
    assert(wait_until(function() return not alive(pid) end, 30), "the ingest did not die")
    local stored = count()
    assert.truthy(stored > 0 and stored < N,
      ("killed after %d of %d lines: make the input larger"):format(stored, N))
    -- the second run, to its end
    local out = assert(io.popen("(" .. ingest_cmd(dir) .. ") 2>&1; echo status=$?"))
    local text = out:read("a")
    out:close()
    assert.equal(N, count())
    assert.truthy(text:find("status=0", 1, true), text)
    assert.truthy(text:find(("in.jsonl: %d events accepted, %d already stored, 0 lines rejected, %d lines read")
      :format(N - stored, stored, N), 1, true), text)
    -- nothing was refused or dead-lettered
    assert.is_nil(io.open(dir .. "/crucible-dead-letter.jsonl"))
    -- and a third run stores nothing more
    out = assert(io.popen(ingest_cmd(dir) .. " 2>&1"))
    text = out:read("a")
    out:close()
    assert.truthy(text:find(("0 events accepted, %d already stored"):format(N), 1, true), text)
    assert.equal(N, count())
    support.rm_rf(dir)
  end)
end)
