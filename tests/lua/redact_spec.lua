-- Database and webhook passwords never reach what we print or store: every
-- output of migrate, run, repl and schedule --list against a closed port
-- (127.0.0.1:1), a store's tostring, and a failing webhook action's report,
-- events and stored rows, with the password in each form libpq and libcurl
-- accept. Passwords of 0 to 5 bytes, runs of '*' and substrings of the
-- server's message leave the message intact and the process alive.
local support = require "support"
local store = require "crucible.store"
local core = require "crucible._core"

local SECRET = "Sup3rSECRET"

-- The URL forms a password can take (the secret is the password in each).
local function db_urls(pw)
  return {
    ("postgres://u:%s@127.0.0.1:1/db"):format(pw),
    ("postgresql://u:%s@127.0.0.1:1/db?connect_timeout=2"):format(pw),
    ("postgres://u@127.0.0.1:1/db?password=%s"):format(pw),
    ("postgres://u@127.0.0.1:1/db?sslmode=disable&password=%s&application_name=x"):format(pw),
    ("postgres://u@127.0.0.1:1/db?pass%%77ord=%s"):format(pw),
  }
end

local function assert_clean(text, what)
  assert(not text:find(SECRET, 1, true), what .. " shows the password:\n" .. text)
end

-- No crash, and (in a sanitizer build) no memory or undefined-behaviour report.
local function assert_alive(err, code, what)
  assert(code ~= 139 and code ~= 134, what .. ": crashed")
  assert(not err:find("Sanitizer", 1, true) and not err:find("runtime error:", 1, true),
    what .. ":\n" .. err)
end

describe("database URLs in output", function()
  it("a store prints its URL without the password", function()
    for _, url in ipairs(db_urls(SECRET)) do
      local s = setmetatable({ url = url }, store.Store)
      local shown = tostring(s)
      assert_clean(shown, url)
      assert.matches("crucible.store (postgres", shown, 1, true)
      assert.matches("***", shown, 1, true)
    end
    assert.equal("crucible.store (sqlite:./x.db)",
      tostring(setmetatable({ url = "sqlite:./x.db" }, store.Store)))
  end)

  it("migrate, run, repl and schedule --list never print it", function()
    local dir = support.tmpdir()
    support.write_file(dir .. "/wf.lua", "return true\n")
    support.write_file(dir .. "/crucible.config.lua",
      'return { schedules = { { name = "n", every = 60, script = "wf.lua" } } }\n')
    local show = ("setmetatable({ url = %q }, require('crucible.store').Store)")
    for _, url in ipairs(db_urls(SECRET)) do
      local db = "--db " .. support.q(url) .. " "
      local runs = {
        { db .. "migrate" },
        { db .. "migrate --status" },
        { db .. "-e " .. support.q("print(require('crucible').store())") },
        { db .. "-e " .. support.q("print(" .. show:format(url) .. ")") },
        { db .. "repl", "cf.store()\n" .. show:format(url) .. "\n" },
        { db .. "schedule --list" },
      }
      for _, r in ipairs(runs) do
        local out, err, code = support.run(r[1], { cwd = dir, stdin = r[2],
                                                   env = { PGPASSWORD = SECRET } })
        assert_clean(out .. err, r[1])
        assert_alive(err, code, r[1])
      end
      local _, err, code = support.run(db .. "migrate", { cwd = dir })
      assert.equal(1, code)
      assert.matches("cannot connect to PostgreSQL at 127.0.0.1:1 (postgres", err, 1, true)
    end
    support.rm_rf(dir)
  end)

  it("short passwords, runs of '*' and words of the message leave the message whole", function()
    local pws = { "", "a", "ab", "abc", "abcd", "abcde", "*", "**", "***", "st", "Po", "ostg",
                  "SQL", "erver", "ection" }
    for _, pw in ipairs(pws) do
      for _, url in ipairs { ("postgres://u:%s@127.0.0.1:1/db"):format(pw),
                             ("postgres://u@127.0.0.1:1/db?password=%s"):format(pw) } do
        local _, err, code = support.run("--db " .. support.q(url) .. " migrate")
        assert_alive(err, code, url)
        assert.equal(1, code, url .. ":\n" .. err)
        -- the server's words survive; the URL's password shows as *** (or is empty)
        assert.matches("cannot connect to PostgreSQL at 127.0.0.1:1 (postgres", err, 1, true)
        assert.matches("Connection refused", err, 1, true)
        assert.matches("check that the server is running and the URL's host, port, user, password"
          .. " and database", err, 1, true)
        if pw ~= "" then
          assert.matches(url:find("password=", 1, true) and "?password=***)" or "u:***@127", err,
            1, true)
        end
      end
    end
  end)

  it("an '@' in the userinfo is refused, not split into a host name", function()
    local _, err, code = support.run("--db " .. support.q("postgres://u:ab@cd@127.0.0.1:1/db") .. " migrate")
    assert.equal(1, code)
    assert.matches("the user or password holds an '@'; write it as %40", err, 1, true)
    assert.is_nil(err:find("ab@cd", 1, true))
    assert.is_nil(err:find("cd@", 1, true))
  end)
end)

describe("a failing webhook action", function()
  local base, server
  setup(function() base, server = support.start_server("webhook_server.py", support.tmpdir() .. "/log") end)
  teardown(function() if server then server:close() end end)

  it("reports, emits and stores its URL and error without the password", function()
    local with_auth = base:gsub("^http://", "http://user:" .. SECRET .. "@")
    local on = { data_count = { actions = {
      { webhook = "http://user:" .. SECRET .. "@127.0.0.1:1/hook", retries = 0, timeout_ms = 2000 },
      { webhook = "http://127.0.0.1:1/hook?password=" .. SECRET, retries = 0, timeout_ms = 2000 },
      { webhook = with_auth .. "/fail/retrain", retries = 0 },
    } } }
    local cf, dir = support.client { triggers = { on = on } }
    local emitted = {}
    cf.on("triggers.action", function(p) emitted[#emitted + 1] = assert(core.to_json(p)) end)
    local _, report = assert(cf.check_triggers("hooked", { triggers = { "data_count" },
                                                          event_count = 2000 }))
    local acts = report.data_count.actions
    assert.same({ false, false, false }, { acts[1].ok, acts[2].ok, acts[3].ok })
    assert.matches("request to http://user:***@127.0.0.1:1/hook failed", acts[1].error, 1, true)
    assert.equal("http://127.0.0.1:1/hook?password=***", acts[2].url)
    assert.matches("HTTP 500 from http://user:***@127.0.0.1:", acts[3].error, 1, true)
    assert_clean(assert(core.to_json(report)), "the report")
    assert_clean(table.concat(emitted, "\n"), "the triggers.action events")
    cf.close()
    -- every stored row
    local p = io.popen("sqlite3 " .. support.q(dir .. "/test.db") .. " .dump")
    local dump = p:read("a")
    p:close()
    assert.matches("hooked", dump, 1, true)
    assert_clean(dump, "the database")
    support.rm_rf(dir)
  end)
end)
