-- The lifecycle benchmark (bench/lifecycle.sh): on one database, N events
-- (each with a signal) in each of four deployments, half of them 100 days
-- old; ten users, each with every 10,000th event from its own offset (in
-- the second pair, each user's first event has a curated example).
-- Event ids sort in insertion order, as the UUIDv7 ids the pipeline gives
-- events do. cf.forget_user and the same delete written by hand as plain
-- SQL (one transaction, through the database's own client, timed by it)
-- remove each user from each pair (the medians compared);
-- our retention (cf.apply_retention) and its hand-written SQL purge the
-- old half of the same pair; then of the other pair while another process
-- inserts batches of 10 events as fast as it can, reporting the longest
-- one of its inserts waited. Each step checks that both sides left the
-- same rows. Prints one Markdown table row per measurement.
--   crucible-feedback bench/lifecycle.lua --db URL [--events N]
local core = require "crucible._core"
local clife = require "crucible._lifecycle"
local workflow = require "crucible.workflow"

local opts = workflow.args(arg, {
  db = { required = true, help = "database URL (sqlite:PATH or postgres://...)" },
  events = { integer = true, default = 1000000, help = "events per deployment" },
  work = { default = "/tmp", help = "a directory for scratch files" },
})
local KEY, USER = "bench-lifecycle-key", "bench-user"
local DAY = 86400 * 1000000
local now = core.now_us()
local url, n = opts.db, opts.events
local sqlite_file = url:match("^sqlite:(.*)$")
-- USERS users, one's events every 10,000th from its own offset; forget is
-- timed once per user, the two sides in turn, and the medians compared
-- (one forget of 100 rows takes 10 to 40 ms: a single one is at the
-- machine's mercy)
local USERS = 10
local hashes = {}
for k = 1, USERS do hashes[k] = assert(clife.user_hash(KEY, USER .. k)) end
-- the CASE giving event i its user's hash (%% for the format strings below)
local function user_case(i)
  local c = { "CASE " .. i .. " %% 10000" }
  for k = 1, USERS do c[#c + 1] = ("WHEN %d THEN '%s'"):format((k - 1) * 1000, hashes[k]) end
  return table.concat(c, " ") .. " END"
end

local function q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

-- Runs SQL text with the backend's own client; returns the seconds its
-- statements took, as the client times them (.timer / \timing: the
-- client's start-up is not counted).
local function sql(text)
  local cmd
  if sqlite_file then
    local f = assert(io.open(opts.work .. "/lifecycle.sql", "w"))
    f:write(text, "\n")
    f:close()
    cmd = ("sqlite3 -cmd '.timeout 60000' -cmd '.timer on' %s < %s"):format(q(sqlite_file),
      q(opts.work .. "/lifecycle.sql"))
  else
    cmd = ("psql -X -q -v ON_ERROR_STOP=1 %s -c '\\timing on' -c %s"):format(
      q(url:gsub("^postgres://", "postgresql://")), q(text))
  end
  local p = assert(io.popen(cmd))
  local out = p:read("a")
  assert(p:close(), cmd .. "\n" .. out)
  local total = 0
  for secs in out:gmatch("Run Time: real ([%d.]+)") do total = total + tonumber(secs) end
  for ms in out:gmatch("Time: ([%d.]+) ms") do total = total + tonumber(ms) / 1000 end
  return total
end

local function seed_sql(dep)
  local old, new = now - 100 * DAY, now - DAY
  if sqlite_file then
    return ([[WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < %d)
INSERT INTO inference_events (id, deployment_id, user_id_hash, prompt, response, metadata,
  inserted_at)
SELECT printf('%s-%%010d', i), '%s', ]] .. user_case("i") .. [[,
  'prompt ' || i || ' ' || hex(randomblob(50)), 'response ' || hex(randomblob(50)), '{}',
  CASE WHEN i < %d THEN %d + i ELSE %d + i END FROM s;
INSERT INTO user_signals (id, inference_event_id, deployment_id, signal_type, metadata,
  inserted_at) SELECT 's-' || id, id, deployment_id, 'thumbs_up', '{}', inserted_at
  FROM inference_events WHERE deployment_id = '%s';]]):format(n - 1, dep, dep, n // 2,
      old, new, dep)
  end
  return ([[INSERT INTO inference_events (id, deployment_id, user_id_hash, prompt, response,
  inserted_at)
SELECT '%s-' || lpad(i::text, 10, '0'), '%s', ]] .. user_case("i") .. [[,
  'prompt ' || i || ' ' || md5(i::text) || repeat('x', 70), 'response ' || repeat('y', 100),
  timestamptz 'epoch' + (CASE WHEN i < %d THEN %d + i ELSE %d + i END) * interval '1 microsecond'
  FROM generate_series(0, %d) i;
INSERT INTO user_signals (id, inference_event_id, deployment_id, signal_type, inserted_at)
  SELECT 's-' || id, id, deployment_id, 'thumbs_up', inserted_at FROM inference_events
  WHERE deployment_id = '%s';]]):format(dep, dep, n // 2, old, new, n - 1, dep)
end

-- Starts the writer and waits until its first insert is in (that one,
-- which may also copy what an earlier step left in SQLite's WAL, is not
-- the purge's doing and is not timed); returns a function that stops it
-- and returns its longest wait (ms).
local function start_writer(tag)
  local stop = ("%s/lifecycle-writer-%s.stop"):format(opts.work, tag)
  local ready = ("%s/lifecycle-writer-%s.ready"):format(opts.work, tag)
  os.remove(stop)
  os.remove(ready)
  local p = assert(io.popen(("exec %s bench/lifecycle_writer.lua %s %s %s"):format(
    q(arg[-1] or "crucible-feedback"), q(url), q(stop), q(ready))))
  local t0 = core.now_us()
  local function started()
    local f = io.open(ready)
    if f then f:close() end
    return f ~= nil
  end
  while not started() do
    assert(core.now_us() - t0 < 60e6, "the writer did not start")
    os.execute("sleep 0.05")
  end
  os.remove(ready)
  os.execute("sleep 0.2")
  return function()
    io.open(stop, "w"):close()
    local out = p:read("a")
    p:close()
    os.remove(stop)
    local _, worst = out:match("(%d+) ([%d.]+)")
    return tonumber(worst)
  end
end

-- An instance whose retention purges deployment dep's events older than 30 days.
local function client(dep)
  local c = assert(require("crucible").new { config = {
    storage = { url = url }, sanitizer = { user_id_key = KEY },
    retention = { deployments = { [dep] = { events = "30d" } } } } })
  assert(c.store())
  return c
end

local setup = client("bench-ours") -- makes the schema
-- PostgreSQL's event counts follow plain SQL through row triggers (our
-- own sessions keep the counts per batch and skip them): dropped here so
-- the seeding and the hand-written deletes pay no per-row work ours does
-- not. The rows are compared by scanning (a count with a time range).
if not sqlite_file then
  sql("DROP TRIGGER inference_events_counted_insert ON inference_events;"
      .. " DROP TRIGGER inference_events_counted_delete ON inference_events;")
  -- No autovacuum on the tables the deletes touch: started by the
  -- seeding's inserts or by a side's deletes, it would run beside
  -- whichever side comes next, reading and writing the same tables; the
  -- seeding's VACUUM below does its work up front, once, for both sides.
  for _, t in ipairs { "inference_events", "user_signals", "scores", "curated_examples",
                       "curated_export_marks", "curated_export_claims", "deletion_audit",
                       "deployment_event_counts" } do
    sql(("ALTER TABLE %s SET (autovacuum_enabled = off, toast.autovacuum_enabled = off)")
      :format(t))
  end
end
for _, dep in ipairs { "bench-ours", "bench-hand", "bench-ours-w", "bench-hand-w" } do
  sql(seed_sql(dep))
end
-- In the second pair, each user's first event has a curated example (not
-- exported): their forget also takes curated rows, and ours then sends the
-- deletes of the examples' export marks and claims too.
for _, dep in ipairs { "bench-ours-w", "bench-hand-w" } do
  local first = {}
  for k = 1, USERS do first[k] = ("'%s-%010d'"):format(dep, (k - 1) * 1000) end
  sql(([[INSERT INTO curated_examples (id, inference_event_id, deployment_id, curation_source,
  prompt, response, inserted_at, updated_at)
SELECT 'c-' || id, id, deployment_id, 'high_quality', prompt, response, inserted_at, inserted_at
  FROM inference_events WHERE id IN (%s);]]):format(table.concat(first, ", ")))
end
-- PostgreSQL: the seeded rows vacuumed (their hint bits and visibility
-- map set: whichever side read a page first would otherwise write it),
-- then the dirty pages written out (CHECKPOINT), so that neither side's
-- timed statements pay for writing them back to make room in the buffer
-- pool (a forget then spent a third of its time doing so)
if not sqlite_file then
  sql("VACUUM (ANALYZE)")
  sql("CHECKPOINT")
end
setup.close()
-- ours connects after the seeding, as the hand side's client does: a
-- connection left open through it has its cached catalogs invalidated
-- by the bulk load and the ANALYZE, and rebuilds them in our timings
local cf = client("bench-ours")

local function row(what, ours, hand, w_ours, w_hand)
  local function ms(v) return v and ("%.0f ms"):format(v) or "-" end
  print(("| %s | %s | %d | %.3f s | %.3f s | %.2fx | %s | %s |"):format(
    sqlite_file and "SQLite" or "PostgreSQL", what, n, ours, hand, hand / ours, ms(w_ours),
    ms(w_hand)))
end

-- Both deployments hold the same rows after each step (the hand SQL did
-- what ours did).
local function same_rows(step, ours_dep, hand_dep)
  local db = assert(cf.store())
  local a = assert(db:count("events", { deployment_id = ours_dep, since = 1 }))
  local b = assert(db:count("events", { deployment_id = hand_dep, since = 1 }))
  local sa = assert(db:count("signals", { deployment_id = ours_dep }))
  local sb = assert(db:count("signals", { deployment_id = hand_dep }))
  local ca = assert(db:count("curated", { deployment_id = ours_dep }))
  local cb = assert(db:count("curated", { deployment_id = hand_dep }))
  assert(a == b and sa == sb and ca == cb, ("%s: ours left %d events, %d signals, %d curated;"
    .. " hand %d, %d, %d"):format(step, a, sa, ca, b, sb, cb))
end

-- forget-user among all N events of a deployment, once per user: ours
-- through a client connected for it (as `crucible-feedback forget` is,
-- and as the hand side's client is for its statements), then by hand.
-- The hand side deletes from every table that points at the user's events
-- (curated rows' export marks and claims, signals, scores, curated rows),
-- then the events: plain SQL cannot ask first whether the user has a
-- curated example. Ours asks (PostgreSQL) and leaves the marks' and
-- claims' deletes out when there is none, as in the first pair; in the
-- second pair every user has one, and both sides delete from every table.
-- A forget of a few rows costs mostly the touching of each table.
-- (Retention's hand-written SQL below names only the tables that hold
-- rows here: over 500,000 events SQLite walks an IN list's whole subquery
-- even for an empty table, which ours skips, and that is not what is
-- being compared.)
local function hand_forget(dep, h)
  local user_events = ("SELECT id FROM inference_events WHERE deployment_id = '%s'"
    .. " AND user_id_hash = '%s'"):format(dep, h)
  local user_curated = "SELECT id FROM curated_examples WHERE inference_event_id IN ("
    .. user_events .. ")"
  return sql(table.concat({ "BEGIN;",
    "DELETE FROM curated_export_marks WHERE curated_id IN (" .. user_curated .. ");",
    "DELETE FROM curated_export_claims WHERE curated_id IN (" .. user_curated .. ");",
    "DELETE FROM user_signals WHERE inference_event_id IN (" .. user_events .. ");",
    "DELETE FROM scores WHERE inference_event_id IN (" .. user_events .. ");",
    "DELETE FROM curated_examples WHERE inference_event_id IN (" .. user_events .. ");",
    ("DELETE FROM inference_events WHERE deployment_id = '%s' AND user_id_hash = '%s';")
      :format(dep, h),
    "COMMIT;" }, "\n"))
end

local function median(t)
  table.sort(t)
  local m = #t // 2
  return #t % 2 == 1 and t[m + 1] or (t[m] + t[m + 1]) / 2
end

-- Forgets every user from ours_dep (ours) and hand_dep (by hand); prints
-- the row of the medians.
local function forget_users(ours_dep, hand_dep, what)
  local ours_t, hand_t, removed, curated = {}, {}, 0, 0
  for k = 1, USERS do
    -- The user's rows of every deployment share one index and their pages:
    -- whichever side ran first read them from disk (PostgreSQL also set
    -- their hint bits, dirtying each page) and the other found them cached.
    -- Both sides start from them read once: every row, as count(deployment_id)
    -- makes the read fetch each from its table page (count(*) is answered
    -- from the index alone where PostgreSQL's visibility map allows, which
    -- left a quarter of the pages for ours to read from disk).
    sql(("SELECT count(deployment_id) FROM inference_events WHERE user_id_hash = '%s';")
      :format(hashes[k]))
    -- the two sides in turn: ours first for odd users, the hand side first
    -- for even ones (whichever runs second finds the shared index pages as
    -- the first left them)
    if k % 2 == 0 then hand_t[k] = hand_forget(hand_dep, hashes[k]) end
    local fc = client(ours_dep)
    local t0 = core.now_us()
    local f = assert(fc.forget_user(USER .. k, { deployment = ours_dep }))
    ours_t[k] = (core.now_us() - t0) / 1e6
    fc.close()
    assert(f.complete and f.removed.inference_events > 0)
    removed, curated = f.removed.inference_events, f.removed.curated_examples or 0
    if k % 2 == 1 then hand_t[k] = hand_forget(hand_dep, hashes[k]) end
  end
  same_rows(what, ours_dep, hand_dep)
  row(("%s (%d of the events%s; median of %d users)"):format(what, removed,
    curated > 0 and (", %d curated"):format(curated) or "", USERS), median(ours_t), median(hand_t))
end
forget_users("bench-ours", "bench-hand", "forget-user")
forget_users("bench-ours-w", "bench-hand-w", "forget-user, each with a curated example")

local cut = now - 30 * DAY
local cut_sql = sqlite_file and tostring(cut)
  or ("timestamptz 'epoch' + %d * interval '1 microsecond'"):format(cut)
local function hand_retention(dep)
  return sql(([[BEGIN;
DELETE FROM user_signals WHERE inference_event_id IN (SELECT id FROM inference_events
  WHERE deployment_id = '%s' AND inserted_at < %s);
DELETE FROM inference_events WHERE deployment_id = '%s' AND inserted_at < %s;
COMMIT;]]):format(dep, cut_sql, dep, cut_sql))
end
local function our_retention(c)
  local t0 = core.now_us()
  local r = assert(c.apply_retention {})
  assert(r.removed.inference_events >= n // 2 - USERS * (n // 10000) - 1,
    "retention removed " .. r.removed.inference_events)
  return (core.now_us() - t0) / 1e6
end

-- retention alone: the old half of a deployment, ours then by hand
local ours = our_retention(cf)
local hand = hand_retention("bench-hand")
same_rows("retention", "bench-ours", "bench-hand")
row("retention: 50% of events + signals", ours, hand)
cf.close()

-- the same with a writer inserting meanwhile: how long it waited
local cw = client("bench-ours-w")
local stop = start_writer("ours")
ours = our_retention(cw)
local w_ours = stop()
stop = start_writer("hand")
hand = hand_retention("bench-hand-w")
local w_hand = stop()
cf = cw
same_rows("retention with a writer", "bench-ours-w", "bench-hand-w")
row("retention, a writer inserting meanwhile", ours, hand, w_ours, w_hand)
cw.close()
