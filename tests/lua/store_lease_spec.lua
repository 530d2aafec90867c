-- The workflow lease under a real race, run against each backend like the
-- conformance suite (CF_TEST_DB_URL; unset: a temporary SQLite file):
-- separate crucible-feedback processes claim the same run at the same
-- moment and exactly one gets it. On ClickHouse the lease is a timed
-- protocol (src/store/ch/ch_runs.c); its withdrawal paths and the
-- lease_settle_ms URL parameter are tested here too.
local store = require "crucible.store"
local core = require "crucible._core"
local support = require "support"

local URL = os.getenv("CF_TEST_DB_URL")
local tmp = support.tmpdir()
if not URL or URL == "" then URL = "sqlite:" .. tmp .. "/lease.db" end
local CLICKHOUSE = URL:match("^clickhouse://") ~= nil
local PROCESSES, ROUNDS = 6, 3

local function uid(prefix) return prefix .. "-" .. core.uuid7() end

-- The URL with one more query parameter.
local function with_param(url, kv)
  return url .. (url:find("?", 1, true) and "&" or "?") .. kv
end

-- One claimant: opens the store, sleeps until the shared start time, takes
-- the lease once and writes "id ID", "lost" or "error MESSAGE" to its file.
local CLAIMANT = [[
local store = require "crucible.store"
local core = require "crucible._core"
local sched = require "crucible._sched"
local name, start, out = arg[1], math.tointeger(tonumber(arg[2])), arg[3]
local function finish(text)
  local f = assert(io.open(out, "w"))
  f:write(text)
  f:close()
end
local db, err = store.open(os.getenv("CF_LEASE_URL"))
if not db then return finish("error " .. tostring(err)) end
sched.sleep_until(start)
local id, ierr = db:insert_run { name = name, status = "running",
                                 lease_until = core.now_us() + 60000000 }
db:close()
if id then finish("id " .. id) elseif id == false then finish("lost")
else finish("error " .. tostring(ierr)) end
]]

-- Starts PROCESSES claimants of `name` at once (a shared start 1.5 s
-- ahead: time to start and connect) and returns what each one wrote.
local function race(name)
  local script = tmp .. "/claimant.lua"
  support.write_file(script, CLAIMANT)
  local start = core.now_us() + 1500000
  local cmds = {}
  for i = 1, PROCESSES do
    cmds[i] = ("%s %s %s %d %s 2>%s &"):format(support.q(support.BINARY), support.q(script),
      support.q(name), start, support.q(("%s/out.%d"):format(tmp, i)),
      support.q(("%s/err.%d"):format(tmp, i)))
  end
  local sh = ("CF_LEASE_URL=%s; export CF_LEASE_URL; %s wait"):format(support.q(URL),
    table.concat(cmds, " "))
  assert(os.execute(sh))
  local results = {}
  for i = 1, PROCESSES do
    local f = io.open(("%s/out.%d"):format(tmp, i))
    results[i] = f and f:read("a") or ("no result; stderr: " .. support.read_file(
      ("%s/err.%d"):format(tmp, i)))
    if f then f:close() end
    os.remove(("%s/out.%d"):format(tmp, i))
  end
  return results
end

-- ClickHouse rows as stored (withdrawn ones included), through its HTTP
-- interface with curl: the statuses of the rows of a run name.
local function stored_statuses(name)
  local user, pass, hostport, db = URL:match("^clickhouse://([^:@/]+):?([^@/]*)@([^/?]+)/?([%w_]*)")
  assert(user, "cannot read the ClickHouse URL")
  local sql = ("SELECT status FROM workflow_runs FINAL WHERE name = '%s' ORDER BY status"
    .. " FORMAT TabSeparated"):format(name)
  local p = assert(io.popen(("curl -sS --max-time 30 -H %s -H %s --data-binary %s %s"):format(
    support.q("X-ClickHouse-User: " .. user), support.q("X-ClickHouse-Key: " .. pass),
    support.q(sql), support.q(("http://%s/?database=%s"):format(hostport, db ~= "" and db or "default")))))
  local out = p:read("a")
  p:close()
  local statuses = {}
  for line in out:gmatch("[^\n]+") do statuses[#statuses + 1] = line end
  return statuses
end

describe("workflow lease (" .. URL:gsub(":[^:@/]*@", ":***@") .. ")", function()
  local db

  setup(function()
    db = assert(store.open(URL))
    assert(db:migrate())
  end)
  teardown(function()
    if db then db:close() end
    support.rm_rf(tmp)
  end)

  it("is taken by exactly one of " .. PROCESSES .. " processes racing for it", function()
    for round = 1, ROUNDS do
      local name = uid("race" .. round)
      local results = race(name)
      local winners, lost = {}, 0
      for i, r in ipairs(results) do
        local id = r:match("^id (.+)$")
        if id then winners[#winners + 1] = id
        elseif r == "lost" then lost = lost + 1
        else error(("round %d, process %d: %s"):format(round, i, r)) end
      end
      assert.equal(1, #winners, table.concat(results, " | "))
      assert.equal(PROCESSES - 1, lost)
      local runs = assert(db:runs { name = name })
      assert.equal(1, #runs)
      assert.equal(winners[1], runs[1].id)
      assert.equal("running", runs[1].status)
      -- nothing the losers wrote shows anywhere
      for _, r in ipairs(assert(db:runs { limit = 1000 })) do
        assert.is_not.equal("withdrawn", r.status)
      end
      if CLICKHOUSE then
        for _, st in ipairs(stored_statuses(name)) do
          assert.truthy(st == "running" or st == "withdrawn", st)
        end
      end
    end
  end)

  it("refuses a bad lease_settle_ms (ClickHouse) or any unknown URL parameter, naming it", function()
    if not CLICKHOUSE then return end
    for _, v in ipairs { "abc", "-5", "0", "60001", "", "1.5" } do
      local ok, err, kind = store.open(with_param(URL, "lease_settle_ms=" .. v))
      assert.is_nil(ok)
      assert.equal("invalid", kind)
      assert.truthy(err:find("lease_settle_ms must be a whole number of milliseconds from 1 to 60000, got '"
        .. v .. "'", 1, true), err)
    end
    local ok, err = store.open(with_param(URL, "lease_settle=5"))
    assert.is_nil(ok)
    assert.truthy(err:find("unknown parameter 'lease_settle'", 1, true), err)
    -- on the command line too
    local _, stderr, code = support.run(("--db %s migrate --status"):format(
      support.q(with_param(URL, "lease_settle_ms=soon"))))
    assert.is_not.equal(0, code)
    assert.truthy(stderr:find("lease_settle_ms", 1, true), stderr)
    local good = assert(store.open(with_param(URL, "lease_settle_ms=60000")))
    good:close()
  end)

  it("withdraws a slow claim: shown nowhere, its id free again (ClickHouse)", function()
    if not CLICKHOUSE then return end
    -- 1 ms: no check and insert finish within half of it, so step 2 trips
    local hasty = assert(store.open(with_param(URL, "lease_settle_ms=1")))
    local name, id = uid("slow"), core.uuid7()
    local lease = core.now_us() + 60000000
    assert.is_false(hasty:insert_run { id = id, name = name, status = "running", lease_until = lease })
    assert.same({}, assert(db:runs { name = name }))
    assert.same({ "withdrawn" }, stored_statuses(name)) -- it was claimed, then withdrawn
    local ok, _, kind = db:update_run { id = id, status = "ok" }
    assert.is_nil(ok)
    assert.equal("not_found", kind)
    -- the withdrawn claim blocks nobody, and its id can be taken again
    assert.equal(id, db:insert_run { id = id, name = name, status = "running", lease_until = lease })
    local runs = assert(db:runs { name = name })
    assert.equal(1, #runs)
    assert.equal("running", runs[1].status)
    assert.same({ "running" }, stored_statuses(name))
    assert(db:update_run { id = id, status = "ok", finished_at = lease })
    assert.equal("ok", assert(db:runs { name = name })[1].status)
    -- runs that are not a live lease never wait nor withdraw
    assert.is_string(hasty:insert_run { name = name, status = "skipped" })
    assert.is_string(hasty:insert_run { name = name, status = "running" })
    assert.equal(3, #assert(db:runs { name = name }))
    hasty:close()
  end)
end)
