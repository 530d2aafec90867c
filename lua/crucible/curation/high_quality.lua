--- high_quality: good answers that users liked. An event qualifies when its
-- quality_score is at least min_quality_score (0.8) and it has at least one
-- thumbs_up, copy, share or edit; its score is the quality score plus a
-- boost per signal (the reference's weights). Highest first; ties keep the
-- newest first.
--
-- The pattern to copy: stream light records (no prompt or response in
-- memory), keep the best with a top-k, return {id =, score =} picks. The
-- text of the picked events is fetched afterwards.
local curation = require "crucible.curation"

local BOOST = { thumbs_up = 3, copy = 2, share = 2, edit = 5, thumbs_down = -2 }

return curation.register {
  name = "high_quality",
  description = "quality_score >= min_quality_score with a positive signal, boosted by signals",
  options = { min_quality_score = "number" }, -- curate{min_quality_score = 0.9} reaches opts here
  select = function(ctx, opts)
    local min = opts.min_quality_score or ctx.config.min_quality_score
    local top = ctx.topk(opts.limit) -- opts.limit is curation.limit // 3
    for r in ctx.records() do
      local q, s = r.quality_score, r.signals -- q is nil when the event has no score
      if q and q >= min and s.thumbs_up + s.copy + s.share + s.edit > 0 then
        local boost = 0
        for signal, weight in pairs(BOOST) do boost = boost + weight * s[signal] end
        top:push(r.id, q + boost)
      end
    end
    return top:results() -- {{id =, score =}, ...}, best first
  end,
}
