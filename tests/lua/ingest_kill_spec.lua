--- Kill tests: a script logs up to 100,000 events and ends normally, by an
-- error, by os.exit (closing the state or not), by SIGTERM or by SIGINT.
-- Every id log_inference returned (the script writes each one to a file
-- right after) must be in the database afterwards.
local support = require "support"
local cingest = require "crucible._ingest"

local N = 100000

local SCRIPT = [[
local cf = require "crucible"
local mode, n, ids_path, pid_path = arg[1], tonumber(arg[2]), arg[3], arg[4]
local ids = assert(io.open(ids_path, "w"))
ids:setvbuf("line")
local stat = assert(io.open("/proc/self/stat"))
local pid = stat:read("n")
stat:close()
local pf = assert(io.open(pid_path, "w"))
pf:write(pid, "\n")
pf:close()
local response = ("a response of about a kilobyte, call 555-123-4567 if needed. "):rep(12)
for i = 1, n do
  local id = assert(cf.log_inference { deployment_id = "kill-" .. mode, user_id = "user-" .. (i % 97),
    prompt = "prompt " .. i .. ": my email is someone@example.com", response = response,
    latency_ms = i % 500, metadata = { i = i } })
  ids:write(id, "\n")
end
if mode == "error" then error("boom after logging") end
if mode == "exit" then os.exit(3) end
if mode == "exit_noclose" then os.exit(0, false) end
]]

local function sleep(s) os.execute("sleep " .. s) end

local function read_all(path)
  local f = io.open(path, "rb")
  if not f then return "" end
  local s = f:read("a")
  f:close()
  return s
end

local function count_lines(path)
  local _, n = read_all(path):gsub("\n", "")
  return n
end

local function wait_until(fn, seconds)
  local deadline = cingest.clock_ns() + seconds * 1e9
  while cingest.clock_ns() < deadline do
    if fn() then return true end
    sleep(0.1)
  end
  return fn()
end

--- Starts the script in the background; returns a handle.
local function start(dir, mode, n)
  support.write_file(dir .. "/log.lua", SCRIPT)
  local cmd = ("cd %s && (%s --db sqlite:kill.db log.lua %s %d ids pid >out 2>err; echo $? > status) &")
    :format(support.q(dir), support.q(support.BINARY), mode, n)
  assert(os.execute(cmd))
  assert(wait_until(function() return read_all(dir .. "/pid"):match("%d+") ~= nil end, 30))
  return { dir = dir, pid = read_all(dir .. "/pid"):match("%d+") }
end

local function wait_exit(h)
  assert(wait_until(function() return read_all(h.dir .. "/status"):match("%d+") ~= nil end, 120),
    "the script did not end")
  return tonumber(read_all(h.dir .. "/status"):match("%d+"))
end

--- How many ids in the ids file are missing from the database, and how
-- many events the database holds.
local function check(dir)
  local f = assert(io.popen(("cd %s && sqlite3 kill.db 'CREATE TEMP TABLE accepted (id TEXT);' "
    .. "'.import ids accepted' 'SELECT count(*) FROM accepted;' "
    .. "'SELECT count(*) FROM accepted WHERE id NOT IN (SELECT id FROM inference_events);' "
    .. "'SELECT count(*) FROM inference_events;'"):format(support.q(dir))))
  local accepted, missing, stored = f:read("n", "n", "n")
  f:close()
  return accepted, missing, stored
end

describe("every accepted event reaches the database", function()
  local function ends_with(mode, want_status)
    local dir = support.tmpdir()
    local h = start(dir, mode, N)
    local status = wait_exit(h)
    assert.equal(want_status, status, read_all(dir .. "/err"))
    local accepted, missing, stored = check(dir)
    assert.equal(N, accepted)
    assert.equal(0, missing)
    assert.equal(N, stored)
    return dir
  end

  it("when the script ends normally", function()
    support.rm_rf(ends_with("normal", 0))
  end)

  it("when the script fails with an error", function()
    local dir = ends_with("error", 1)
    assert.truthy(read_all(dir .. "/err"):find("boom after logging", 1, true))
    support.rm_rf(dir)
  end)

  it("when the script calls os.exit", function()
    support.rm_rf(ends_with("exit", 3))
  end)

  it("when the script calls os.exit(0, false), which skips closing the state", function()
    support.rm_rf(ends_with("exit_noclose", 0))
  end)

  local function interrupted(signal, want_status)
    local dir = support.tmpdir()
    local h = start(dir, "signal", 10 * N)
    assert(wait_until(function() return count_lines(dir .. "/ids") >= N / 5 end, 120),
      "the script did not log: " .. read_all(dir .. "/err"))
    assert(os.execute(("kill -%s %s"):format(signal, h.pid)))
    local status = wait_exit(h)
    assert.equal(want_status, status, read_all(dir .. "/err"))
    local accepted, missing, stored = check(dir)
    assert.truthy(accepted >= N / 5)
    assert.equal(0, missing)
    assert.truthy(stored >= accepted) -- the last ones may be accepted, not yet noted
    support.rm_rf(dir)
  end

  it("when the process gets SIGTERM (and still ends by SIGTERM)", function()
    interrupted("TERM", 128 + 15)
  end)

  it("when the process gets SIGINT", function()
    interrupted("INT", 1)
  end)
end)

describe("events lost at exit", function()
  -- The script writes one event, then another process locks the database
  -- (for 4 s) and the script logs three more and ends: its pipeline gives
  -- up after shutdown_timeout_ms, with no dead-letter file that works.
  local LOSER = [[
local cf = require "crucible"
assert(cf.log_inference { deployment_id = "d", prompt = "p", response = "r" })
assert(cf.flush())
os.execute("(echo 'BEGIN IMMEDIATE; SELECT 1;'; sleep 4; echo 'COMMIT;') | sqlite3 t.db >/dev/null 2>&1 &")
os.execute("sleep 0.5")
for i = 1, 3 do assert(cf.log_inference { deployment_id = "d", prompt = "p" .. i, response = "r" }) end
]]

  local function lose_with(dead_letter)
    local dir = support.tmpdir()
    support.write_file(dir .. "/lose.lua", LOSER)
    support.write_file(dir .. "/c.lua", ("return { storage = { url = 'sqlite:t.db', busy_timeout_ms = 20 }, "
      .. "ingestion = { shutdown_timeout_ms = 300, retry_initial_ms = 20, retry_max_ms = 50, "
      .. "dead_letter_file = %s } }"):format(dead_letter))
    local out, err, code = support.run("--config c.lua lose.lua", { cwd = dir })
    sleep(4)
    support.rm_rf(dir)
    return out, err, code
  end

  it("exit with status 74 and say how many, when there is no dead-letter file", function()
    local _, err, code = lose_with("false")
    assert.equal(74, code, err)
    assert.truthy(err:find("3 events were lost: the database stayed unwritable for 300 ms and there "
      .. "is no dead-letter file", 1, true), err)
    assert.truthy(err:find("3 accepted events were lost", 1, true), err)
    assert.is_nil(err:find("went to", 1, true))
  end)

  it("exit with status 74 when the dead-letter file cannot be written", function()
    local _, err, code = lose_with("'no/such/dir/dead.jsonl'")
    assert.equal(74, code, err)
    assert.truthy(err:find("the dead-letter file no/such/dir/dead.jsonl could not take them", 1, true), err)
    assert.truthy(err:find("3 accepted events were lost", 1, true), err)
  end)
end)
