--- The weekly export: the curated examples not exported yet as a
-- HuggingFace dataset directory (Parquet and JSONL inside), plus the last
-- seven days of preference data as DPO pairs (from edits) and KTO examples
-- (from thumbs), all in one directory per run.
--
--   crucible-feedback run examples/weekly_export.lua --deployment deploy-1 [--dir exports]
--
-- Schedule it from the config:
--   schedules = {{ name = "weekly-export", cron = "0 4 * * mon",
--                  script = "examples/weekly_export.lua", args = { "--deployment", "deploy-1" } }}
local pipeline = require "crucible.pipeline"
local workflow = require "crucible.workflow"

local opts = workflow.args(arg, {
  deployment = { required = true, help = "the deployment id" },
  dir = { default = "exports", help = "where the run's directory goes" },
  quiet = { flag = true, help = "print nothing" },
})

-- exports/<deployment>/<ISO week>-<time>/: a new directory each run, so a
-- second run in the same week never replaces the first one's files. The
-- deployment id is one path component ("../x" becomes "..%2Fx"): the run
-- never writes outside --dir.
local now = os.time()
local out = ("%s/%s/%s"):format(opts.dir, workflow.path_component(opts.deployment),
                                os.date("!%G-W%V-%Y%m%dT%H%M%SZ", now))
local week_ago = os.date("!%Y-%m-%dT%H:%M:%SZ", now - 7 * 86400)

local ctx = assert(pipeline.run({ deployment_id = opts.deployment }, {
  { stage = "export_feedback", name = "curated",
    opts = { format = "huggingface", output_path = out .. "/dataset", mkdir = true } },
  { stage = "export_feedback", name = "dpo_pairs",
    opts = { format = "dpo", output_path = out .. "/dpo.jsonl", mkdir = true,
             filters = { since = week_ago } } },
  { stage = "export_feedback", name = "kto_examples",
    opts = { format = "kto", output_path = out .. "/kto.jsonl", mkdir = true,
             filters = { since = week_ago } } },
}))

if not opts.quiet then workflow.report(ctx) end
return ctx
