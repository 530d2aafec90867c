--- Two `crucible-feedback serve` processes sharing one PostgreSQL
-- database (CF_TEST_DB_URL: tests/servers/with-server.sh starts the
-- server; without it the test fails, never skips). Events, signals and
-- scores go to both at once, some with the same client ids to both; the
-- database then holds every one exactly once.
local support = require "support"
local srv = require "serve_support"
local store = require "crucible.store"
local core = require "crucible._core"
local cjson = require "cjson"

local URL = os.getenv("CF_TEST_DB_URL") or ""
local N, SHARED, BATCH = 300, 60, 30

-- NDJSON bodies of at most BATCH items each, in files under dir/name-K.
local function write_batches(dir, name, list)
  local files = {}
  for i = 1, #list, BATCH do
    local lines = {}
    for k = i, math.min(i + BATCH - 1, #list) do lines[#lines + 1] = cjson.encode(list[k]) end
    local f = ("%s/%s-%d"):format(dir, name, #files + 1)
    support.write_file(f, table.concat(lines, "\n") .. "\n")
    files[#files + 1] = f
  end
  return files
end

-- Posts every (server, path, files) job at once, each job's files in
-- order; returns the decoded answers: {status, body} per file.
local function post_all(jobs)
  local script = {}
  for _, j in ipairs(jobs) do
    local cmds = {}
    for _, f in ipairs(j.files) do
      cmds[#cmds + 1] = ("curl -s -m 120 -o %s -w '%%{http_code}' -H 'Content-Type: application/x-ndjson'"
        .. " --data-binary @%s %s > %s"):format(support.q(f .. ".out"), support.q(f),
        support.q(j.h.url .. j.path), support.q(f .. ".code"))
    end
    script[#script + 1] = "(" .. table.concat(cmds, "; ") .. ") &"
  end
  script[#script + 1] = "wait"
  assert(os.execute(table.concat(script, "\n")))
  local out = {}
  for _, j in ipairs(jobs) do
    for _, f in ipairs(j.files) do
      out[#out + 1] = { status = tonumber(srv.read_all(f .. ".code")),
                        body = cjson.decode(srv.read_all(f .. ".out")), file = f }
    end
  end
  return out
end

-- The answers' items: accepted count, already stored count; every answer must be 200.
local function tally(answers)
  local accepted, already = 0, 0
  for _, a in ipairs(answers) do
    assert.equals(200, a.status, a.file .. ": " .. cjson.encode(a.body))
    accepted = accepted + a.body.accepted
    already = already + #(a.body.already_stored or {})
  end
  return accepted, already
end

describe("two serve processes sharing one PostgreSQL database", function()
  local a, b, db, dir
  local dep = "shared-" .. core.uuid7()

  setup(function()
    assert(URL:match("^postgres"), "CF_TEST_DB_URL must name the PostgreSQL server (run through"
      .. " tests/servers/with-server.sh postgres), got '" .. URL .. "'")
    local config = "ingestion = { flush_interval = 50 }, sanitizer = { user_id_key = 'shared-key' }"
    a = srv.start(config, URL)
    b = srv.start(config, URL)
    db = assert(store.open(URL))
    dir = support.tmpdir()
  end)
  teardown(function()
    local sa = a and srv.stop(a)
    local sb = b and srv.stop(b)
    -- what a server that did not exit 0 wrote, before its directory goes
    local why = ""
    for _, h in ipairs { a, b } do
      if h then why = why .. srv.read_all(h.dir .. "/err") end
    end
    srv.cleanup(a)
    srv.cleanup(b)
    if db then db:close() end
    if dir then support.rm_rf(dir) end
    assert.same({ 0, 0 }, { sa, sb }, why)
  end)

  it("loses and duplicates nothing, with the same client ids sent to both", function()
    local function ev(id) return { id = id, deployment_id = dep, prompt = "q " .. id, response = "a",
                                   user_id = "u-" .. id, inserted_at = "2026-11-01T00:00:00Z" } end
    local ea, eb = {}, {}
    for i = 1, N do
      ea[#ea + 1], eb[#eb + 1] = ev(dep .. "-a" .. i), ev(dep .. "-b" .. i)
      if i <= SHARED then
        ea[#ea + 1], eb[#eb + 1] = ev(dep .. "-s" .. i), ev(dep .. "-s" .. i)
      end
    end
    local accepted = tally(post_all {
      { h = a, path = "/api/v1/events", files = write_batches(dir, "ev-a", ea) },
      { h = b, path = "/api/v1/events", files = write_batches(dir, "ev-b", eb) } })
    assert.equals(2 * N + 2 * SHARED, accepted)
    local want_events = 2 * N + SHARED
    assert(srv.wait_until(function() return db:count("events", { deployment_id = dep }) >= want_events end, 60))
    srv.sleep(0.5) -- a duplicate would arrive with the next flush
    assert.equals(want_events, db:count("events", { deployment_id = dep }))

    -- signals: without ids on a, with ids on b, and the shared ones with the same ids on both;
    -- scores with the same ids on both
    local sa, sb, sc = {}, {}, {}
    for i = 1, N do
      sa[#sa + 1] = { inference_event_id = dep .. "-a" .. i, signal_type = "thumbs_up" }
      sb[#sb + 1] = { inference_event_id = dep .. "-b" .. i, signal_type = "copy", id = dep .. "-sig-b" .. i }
      if i <= SHARED then
        local shared = { inference_event_id = dep .. "-s" .. i, signal_type = "thumbs_down",
                         id = dep .. "-sig-s" .. i }
        sa[#sa + 1], sb[#sb + 1] = shared, shared
        sc[#sc + 1] = { inference_event_id = dep .. "-s" .. i, name = "helpfulness", value = i / SHARED,
                        id = dep .. "-score-s" .. i }
      end
    end
    local answers = post_all {
      { h = a, path = "/api/v1/signals", files = write_batches(dir, "sig-a", sa) },
      { h = b, path = "/api/v1/signals", files = write_batches(dir, "sig-b", sb) },
      { h = a, path = "/api/v1/scores", files = write_batches(dir, "sc-a", sc) },
      { h = b, path = "/api/v1/scores", files = write_batches(dir, "sc-b", sc) } }
    local sig_answers, score_answers = {}, {}
    for _, x in ipairs(answers) do
      local list = x.file:find("/sc%-") and score_answers or sig_answers
      list[#list + 1] = x
    end
    local n, already = tally(sig_answers)
    assert.same({ 2 * N + 2 * SHARED, SHARED }, { n, already })
    n, already = tally(score_answers)
    assert.same({ 2 * SHARED, SHARED }, { n, already })
    assert.equals(2 * N + SHARED, db:count("signals", { deployment_id = dep }))
    local counts = assert(db:count_by_type("signals", { deployment_id = dep }))
    assert.same({ thumbs_up = N, copy = N, thumbs_down = SHARED }, counts)
    assert.equals(SHARED, #assert(db:scores { deployment_id = dep }))
    -- the same user id hashes the same on both servers
    local one = db:list("events", { id = dep .. "-s1", limit = 1 })[1]
    local hashes = {}
    for row in db:events { deployment_id = dep } do
      if row.user_id_hash == one.user_id_hash then hashes[#hashes + 1] = row.id end
    end
    assert.same({ dep .. "-s1" }, hashes)
  end)

  it("answer /readyz 503 within about a second while the database does not answer, then 200", function()
    assert.equals(200, (srv.curl(a, "/readyz")))
    -- another session holds a lock the readiness query waits on
    local release = dir .. "/release"
    finally(function() support.write_file(release, "") end)
    assert(os.execute(("(echo 'BEGIN; LOCK TABLE schema_migrations IN ACCESS EXCLUSIVE MODE;';"
      .. " echo 'SELECT 1;'; i=0; while [ ! -f %s ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done;"
      .. " echo 'COMMIT;') | psql -q %s > %s 2>&1 &"):format(support.q(release), support.q(URL),
      support.q(dir .. "/psql.out"))))
    assert(srv.wait_until(function() return srv.read_all(dir .. "/psql.out"):find("1 row", 1, true) end, 20),
      srv.read_all(dir .. "/psql.out"))
    srv.sleep(1.1) -- past the answer kept from before
    for _, h in ipairs { a, b } do
      local t0 = core.now_us()
      local code, body = srv.curl(h, "/readyz")
      local took = (core.now_us() - t0) / 1e6
      assert.equals(503, code, body)
      assert.matches("the store did not answer within 1000 ms", cjson.decode(body).error, 1, true)
      assert.is_true(took < 2, "the check took " .. took .. " s")
    end
    support.write_file(release, "")
    for _, h in ipairs { a, b } do
      assert(srv.wait_until(function() return (srv.curl(h, "/readyz")) == 200 end, 20))
    end
  end)
end)
