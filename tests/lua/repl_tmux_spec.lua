-- The REPL on a real terminal: tmux runs it, keys are typed (Tab
-- included) and the screen is read back with capture-pane. The data is
-- what scripts/demo.lua leaves, and the first lines typed are the session
-- docs/repl.md shows a newcomer.
local support = require "support"

local q = support.q

local function sh(cmd)
  local ok = os.execute(cmd)
  assert(ok, "failed: " .. cmd)
end

local Term = {}
Term.__index = Term

local function start(dir, socket)
  local cmd = ("cd %s && HOME=%s %s repl"):format(q(dir), q(dir), q(support.BINARY))
  sh(("tmux -L %s -f /dev/null new-session -d -s t -x 220 -y 60 %s"):format(q(socket), q(cmd)))
  return setmetatable({ socket = socket }, Term)
end

function Term:keys(...)
  local parts = {}
  for i, k in ipairs { ... } do parts[i] = q(k) end
  sh(("tmux -L %s send-keys -t t %s"):format(q(self.socket), table.concat(parts, " ")))
end

function Term:type(text) sh(("tmux -L %s send-keys -t t -l %s"):format(q(self.socket), q(text))) end

function Term:screen()
  local p = io.popen(("tmux -L %s capture-pane -p -J -t t -S -200"):format(q(self.socket)))
  local s = p:read("a")
  p:close()
  return s
end

--- Waits (up to 10 s) until the screen holds `text` (plain); returns the screen.
function Term:wait_for(text)
  local screen
  for _ = 1, 100 do
    screen = self:screen()
    if screen:find(text, 1, true) then return screen end
    os.execute("sleep 0.1")
  end
  error(("the screen never showed %q:\n%s"):format(text, screen))
end

function Term:kill() os.execute(("tmux -L %s kill-server 2>/dev/null"):format(q(self.socket))) end

describe("the REPL in a terminal (tmux)", function()
  local dir, term

  setup(function()
    dir = support.tmpdir()
    local _, err, code = support.run(q(support.SOURCE_DIR .. "/scripts/demo.lua") .. " --events 400",
      { cwd = dir })
    assert.are.equal(0, code, err)
    term = start(dir, "cf-repl-" .. tostring(os.time()) .. "-" .. tostring(math.random(1e6)))
    term:wait_for("Ctrl-D exits")
  end)

  teardown(function()
    if term then term:kill() end
    support.rm_rf(dir)
  end)

  it("shows the worst-rated answers of the last day in one line", function()
    term:type('cf.events{since = "1d", where = {signal = "thumbs_down"}}:head(5)')
    term:keys("Enter")
    local screen = term:wait_for("(5 records)")
    assert.truthy(screen:find("signals: [^\n]*thumbs_down"))
    assert.truthy(screen:find("prompt:   \""))
    assert.truthy(screen:find("%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d[.%d]*Z  support%-bot"))
  end)

  it("completes API functions, their option names and store methods with Tab", function()
    term:type("cf.get_quality_st")
    term:keys("Tab")
    term:wait_for("> cf.get_quality_stats")
    term:keys("C-u")
    term:type("cf.events{wher")
    term:keys("Tab")
    term:wait_for("> cf.events{where")
    term:keys("C-u")
    term:type("db = cf.store()")
    term:keys("Enter")
    term:type("db:count_ev")
    term:keys("Tab")
    term:wait_for("> db:count_events")
    term:keys("C-u")
  end)

  it("prints help for a function and errors as the line's message", function()
    term:type("help(cf.curate)")
    term:keys("Enter")
    term:wait_for("example: cf.curate(")
    term:type('cf.get_quality_stat("support-bot")')
    term:keys("Enter")
    term:wait_for("did you mean get_quality_stats?")
    term:type('error("boom " .. "here")')
    term:keys("Enter")
    local screen = term:wait_for("stdin:1: boom here")
    assert.is_nil(screen:find("crucible/repl.lua", 1, true))
    assert.is_nil(screen:find("stack traceback", 1, true))
  end)

  it("keeps the history as typed, spaces included", function()
    term:type('x = "a b"')
    term:keys("Enter")
    term:type(".quit")
    term:keys("Enter")
    -- the REPL writes it as it exits: wait for the file (support.read_file
    -- raises while it is missing)
    local text
    for _ = 1, 100 do
      local f = io.open(dir .. "/.crucible_history", "rb")
      if f then
        text = f:read("a")
        f:close()
        if text:find("\n", 1, true) then break end
      end
      os.execute("sleep 0.1")
    end
    assert.truthy(text and text:find('x = "a b"\n', 1, true), text)
    assert.is_nil(text:find("\\040", 1, true))
  end)
end)
