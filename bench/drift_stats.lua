--- KS statistic + p-value + PSI on two samples of N values each, timed
-- (best of --reps), and the samples written as float64 files for the SciPy
-- peer (bench/peers/py_drift_stats.py) to time the same work.
--
--   crucible-feedback bench/drift_stats.lua --n 1000000 --dir DIR [--reps 3]
local drift = require "crucible.drift"

local opts = { n = "1000000", dir = ".", reps = "3" }
local i = 1
while arg[i] do
  local k = arg[i]:match("^%-%-(.+)$")
  if not k or not arg[i + 1] then error("usage: drift_stats.lua --n N --dir DIR [--reps R]") end
  opts[k] = arg[i + 1]
  i = i + 2
end
local n, reps = math.tointeger(tonumber(opts.n)), math.tointeger(tonumber(opts.reps))

-- Prompt-length-like samples: the baseline around 120 characters, the
-- recent window slightly longer and wider (a small drift, so the p-value
-- takes the series, not a shortcut).
math.randomseed(7)
local function normal(mu, sigma)
  local u1, u2 = math.random(), math.random()
  return mu + sigma * math.sqrt(-2 * math.log(1 - u1)) * math.cos(2 * math.pi * u2)
end
local a, b = {}, {}
for k = 1, n do
  a[k] = math.floor(normal(121, 41) + 0.5) * 1.0
  b[k] = math.floor(normal(120, 40) + 0.5) * 1.0
end
local function write(path, t)
  local f = assert(io.open(path, "wb"))
  local chunk = {}
  for k = 1, #t do
    chunk[#chunk + 1] = string.pack("<d", t[k])
    if #chunk == 4096 then f:write(table.concat(chunk)) chunk = {} end
  end
  f:write(table.concat(chunk))
  f:close()
end
write(opts.dir .. "/a.f64", a)
write(opts.dir .. "/b.f64", b)

local best, r, p
for _ = 1, reps do
  collectgarbage()
  local t0 = os.clock()
  r = drift.compare(a, b)
  p = r.psi
  local dt = os.clock() - t0
  best = best and math.min(best, dt) or dt
end
print(string.format('{"n": %d, "seconds": %.6f, "statistic": %.17g, "pvalue": %.17g, "psi": %.17g}',
  n, best, r.ks, r.ks_pvalue, p))
