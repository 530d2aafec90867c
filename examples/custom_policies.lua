--- A workflow with user policies: curates with a user strategy and checks a
-- user trigger, both loaded by name from a user directory.
--
--   crucible-feedback --lua-path examples/policies run examples/custom_policies.lua --deployment d
--
-- examples/policies/crucible/curation/slow_but_liked.lua and
-- examples/policies/crucible/triggers/slow_answers.lua are the two policies;
-- copy the directory, change them, point --lua-path (or CRUCIBLE_PATH, or
-- lua_path in the config) at your copy.
local pipeline = require "crucible.pipeline"
local workflow = require "crucible.workflow"

local opts = workflow.args(arg, {
  deployment = { required = true, help = "the deployment id" },
  min_latency_ms = { integer = true, default = 1000, help = "what counts as slow" },
  format = { default = "jsonl", help = "jsonl, csv, parquet or huggingface" },
  quiet = { flag = true, help = "print nothing" },
})

local ctx = assert(pipeline.run({ deployment_id = opts.deployment }, {
  -- options: what the user strategy declares (checked before anything runs)
  { stage = "curate", opts = { strategies = { "user_edit", "slow_but_liked" },
                               options = { min_latency_ms = opts.min_latency_ms } } },
  { stage = "check_triggers", opts = { policies = { "slow_answers" },
                                       options = { max_latency_ms = opts.min_latency_ms },
                                       halt_if_none = true } },
  { stage = "export_feedback", opts = { format = opts.format } },
}))

if not opts.quiet then workflow.report(ctx) end
return ctx
