--- diverse: examples that cover the space of prompts. With embeddings
-- (embedding_client, the built-in embedder by default) it takes the
-- events whose prompt lies farthest from the mean of all prompts (the
-- reference's method), or with method = "k_center" a greedy farthest-point
-- selection over a sample of pool_size events, which spreads the picks
-- instead of taking the outliers of one direction. Without embeddings
-- (embedding_client = "noop", or the provider failed) it takes the
-- longest prompts. Every pick scores 1.0, as in the reference. A database
-- failure is this strategy's error (no fallback).
--
-- The embedding work is C (ctx.farthest, ctx.k_center): a strategy never
-- holds a deployment's prompts or vectors in Lua.
local curation = require "crucible.curation"

local function score_one(picks)
  for _, p in ipairs(picks) do p.score = 1.0 end
  return picks
end

return curation.register {
  name = "diverse",
  description = "prompts far apart in embedding space (centroid or k-center), else the longest",
  options = { method = "string", pool_size = "integer", seed = "integer" },
  select = function(ctx, opts)
    if opts.limit == 0 then return {} end
    local method = opts.method or ctx.config.diverse_method
    local picks, err, kind
    if method == "centroid" then
      picks, err, kind = ctx.farthest(opts.limit)
    elseif method == "k_center" then
      picks, err, kind = ctx.k_center(opts.limit, {
        pool_size = opts.pool_size or ctx.config.k_center_pool, seed = opts.seed or ctx.config.seed })
    else
      error(("diverse: method must be \"centroid\" or \"k_center\", got %q"):format(tostring(method)))
    end
    if picks then return score_one(picks) end
    -- the database failing is this strategy's error, not "no embeddings"
    if kind == "db" then error(("diverse: reading the events failed: %s"):format(err)) end
    ctx.warn(("diverse: no embeddings (%s); took the longest prompts instead"):format(err))
    return score_one(ctx.top_records(opts.limit, "prompt_length"))
  end,
}
