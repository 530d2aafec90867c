--- A user curation strategy (copy it): answers users liked although they
-- were slow, which a latency-tuned model must keep answering well.
--
-- Found by name when examples/policies is a user directory:
--   crucible-feedback --lua-path examples/policies run examples/custom_policies.lua --deployment d
--   cf.curate("d", { strategies = { "user_edit", "slow_but_liked" }, min_latency_ms = 1500 })
local curation = require "crucible.curation"

return curation.register {
  name = "slow_but_liked",
  description = "events at least min_latency_ms slow with a thumbs_up, copy or share",
  options = { min_latency_ms = "integer" },   -- curate() options it reads, with types
  select = function(ctx, opts)
    local min = opts.min_latency_ms or 1000
    local top = ctx.topk(opts.limit)          -- opts.limit: curation.limit // 3
    for r in ctx.records() do                 -- light records (no text), newest first
      local s = r.signals
      if (r.latency_ms or 0) >= min and s.thumbs_up + s.copy + s.share > 0 then
        top:push(r.id, (r.quality_score or 0) + s.thumbs_up)
      end
    end
    return top:results()                      -- {{id =, score =}, ...}, best first
  end,
}
