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
    local top = ctx.topk(opts.limit)
    for r in ctx.records() do
      local q, s = r.quality_score or 0.0, r.signals
      if q <= max or s.thumbs_down + s.regenerate + s.report > 0 then
        local penalty = 0.0
        for signal, weight in pairs(PENALTY) do penalty = penalty + weight * s[signal] end
        top:push(r.id, (1.0 - q) + penalty)
      end
    end
    return top:results()
  end,
}
