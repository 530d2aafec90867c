--- high_quality: good answers that users liked. An event qualifies when its
-- quality_score is at least min_quality_score (0.8) and it has at least one
-- thumbs_up, copy, share or edit; its score is the quality score plus a
-- boost per signal (the reference's weights). Highest first; ties keep the
-- newest first.
--
-- Declared rather than looped: the test is a `keep` clause and the score a
-- linear score, both evaluated in C while the events stream by, so no
-- event becomes a Lua table. docs/curation.md shows a strategy written as a
-- Lua loop over ctx.records(), the form to start from; keep and
-- top_records are how such a loop is made fast once it works.
local curation = require "crucible.curation"

local BOOST = { thumbs_up = 3, copy = 2, share = 2, edit = 5, thumbs_down = -2 }
local POSITIVE = { "thumbs_up", "copy", "share", "edit" }

return curation.register {
  name = "high_quality",
  description = "quality_score >= min_quality_score with a positive signal, boosted by signals",
  options = { min_quality_score = "number" }, -- curate{min_quality_score = 0.9} reaches opts here
  select = function(ctx, opts)
    local min = opts.min_quality_score or ctx.config.min_quality_score
    -- score: quality_score + the boost of each signal; picks {{id =, score =}, ...}, best first
    return ctx.top_records(opts.limit, { quality = 1, signals = BOOST }, -- opts.limit is curation.limit // 3
      { keep = { { quality_min = min, signals_any = POSITIVE } } })
  end,
}
