--- The nightly workflow: score what is unscored, measure drift, curate
-- training examples, check the retraining triggers, and export a training
-- set (curated examples and DPO preference pairs) when a trigger fired.
--
--   crucible-feedback run examples/nightly.lua --deployment deploy-1
--   crucible-feedback run examples/nightly.lua --deployment deploy-1 --format jsonl --always-export
--
-- Schedule it from the config:
--   schedules = {{ name = "nightly", cron = "0 3 * * *", script = "examples/nightly.lua",
--                  args = { "--deployment", "deploy-1" }, catch_up = true }}
--
-- Copy it and change the steps: each is a stage (lua/crucible/stages/) and
-- its options, checked before anything runs.
local pipeline = require "crucible.pipeline"
local workflow = require "crucible.workflow"

local opts = workflow.args(arg, {
  deployment = { required = true, help = "the deployment id" },
  format = { default = "parquet", help = "curated examples as jsonl, csv, parquet or huggingface" },
  window_size = { integer = true, default = 1000, help = "events per drift window" },
  always_export = { flag = true, help = "export even when no trigger fired" },
  quiet = { flag = true, help = "print nothing (the caller reports)" },
})

local ctx = assert(pipeline.run({ deployment_id = opts.deployment }, {
  { stage = "assess_quality" },
  { stage = "detect_drift", opts = { window_size = opts.window_size } },
  { stage = "curate" },
  -- ends the pipeline here (status "halted") when no trigger fired
  { stage = "check_triggers", opts = { halt_if_none = not opts.always_export } },
  { stage = "export_feedback", name = "export_curated", opts = { format = opts.format } },
  { stage = "export_feedback", name = "export_preferences", opts = { format = "dpo" } },
}))

if not opts.quiet then workflow.report(ctx) end
return ctx
