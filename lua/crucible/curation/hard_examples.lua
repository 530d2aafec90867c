--- hard_examples: where the model struggles. An event qualifies when its
-- quality_score is at most max_quality_score (curation.max_hard_quality,
-- 0.5; an event without a score counts as 0) or it has a thumbs_down,
-- regenerate or report. Its difficulty is 1 - quality_score plus a penalty
-- per negative signal (the reference's weights). Hardest first.
--
-- The examples keep the reference's source name, "hard_example".
local curation = require "crucible.curation"

local PENALTY = { thumbs_down = 2.0, regenerate = 1.5, report = 2.5 }

return curation.register {
  name = "hard_examples",
  source = "hard_example",
  description = "low quality_score or a negative signal, hardest first",
  options = { max_quality_score = "number" },
  select = function(ctx, opts)
    local max = opts.max_quality_score or ctx.config.max_hard_quality
    -- qualifies: quality_score <= max (none counts as 0.0) or a negative
    -- signal; a C filter and a linear score, so no event becomes a Lua table
    local keep = { { quality_max = max }, { signals_any = { "thumbs_down", "regenerate", "report" } } }
    if max >= 0.0 then keep[#keep + 1] = { quality_missing = true } end
    -- score: (1 - quality_score) + the penalty of each signal
    return ctx.top_records(opts.limit,
      { constant = 1, quality = -1, missing_quality = 0, signals = PENALTY }, { keep = keep })
  end,
}
