--- Drift detection: the math for Lua (policies, the REPL) and the public
-- API feature (cf.detect_drift, cf.get_drift_history, cf.set_drift_baseline).
--
--   local drift = require "crucible.drift"
--   drift.ks(recent, baseline)            --> {statistic=, pvalue=, location=, sign=, method=}
--   drift.psi(recent, baseline)           --> the reference's population stability index
--   drift.wasserstein(recent, baseline)   --> distance, distance / std(baseline)
--   drift.jensen_shannon(p, q[, base])    --> distance between two weight vectors
--   drift.chi2(recent_values, baseline_values) --> {statistic=, pvalue=, dof=, js_distance=}
--
-- Two-sample functions take the recent sample first and the baseline
-- second, like detect_drift's windows. The work is done in C
-- (crucible._drift); samples are sequences of finite numbers.
local cdrift = require "crucible._drift"

local M = {}

M.ks = cdrift.ks
M.psi = cdrift.psi
M.wasserstein = cdrift.wasserstein
M.histogram = cdrift.histogram
M.jensen_shannon = cdrift.jensen_shannon
M.chi2_counts = cdrift.chi2_counts
M.kstwo_sf = cdrift.kstwo_sf
M.smirnov_sf = cdrift.smirnov_sf
M.chi2_sf = cdrift.chi2_sf
M.mean_std = cdrift.mean_std

--- Category counts of two samples over the union of their categories.
-- Values may be strings, numbers or booleans; returns counts_a, counts_b,
-- categories (sorted by their string form).
function M.category_counts(a, b)
  if type(a) ~= "table" then error("a must be a table, got " .. type(a), 2) end
  if type(b) ~= "table" then error("b must be a table, got " .. type(b), 2) end
  local index, cats = {}, {}
  local function scan(list, name)
    for i, v in ipairs(list) do
      local tv = type(v)
      if tv ~= "string" and tv ~= "number" and tv ~= "boolean" then
        error(("%s[%d] must be a string, number or boolean, got %s"):format(name, i, tv), 3)
      end
      local key = tv .. ":" .. tostring(v)
      if not index[key] then
        cats[#cats + 1] = { key = key, value = v }
        index[key] = true
      end
    end
  end
  scan(a, "a")
  scan(b, "b")
  table.sort(cats, function(x, y) return x.key < y.key end)
  local pos, ca, cb, values = {}, {}, {}, {}
  for i, c in ipairs(cats) do
    pos[c.key], ca[i], cb[i], values[i] = i, 0, 0, c.value
  end
  for _, v in ipairs(a) do
    local k = pos[type(v) .. ":" .. tostring(v)]
    ca[k] = ca[k] + 1
  end
  for _, v in ipairs(b) do
    local k = pos[type(v) .. ":" .. tostring(v)]
    cb[k] = cb[k] + 1
  end
  return ca, cb, values
end

--- Chi-square test of independence and Jensen-Shannon distance (base 2)
-- between two categorical samples (lists of values).
function M.chi2(a, b)
  local ca, cb = M.category_counts(a, b)
  local r = cdrift.chi2_counts(ca, cb)
  r.js_distance = cdrift.jensen_shannon(ca, cb, 2)
  return r
end

return M
