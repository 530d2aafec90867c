--- crucible.api_docs: the one description of the public API functions
-- (`cf.NAME`): signature, what it does, its options and one example.
-- help() in the REPL prints from it, `cf` lists it, completion offers its
-- option names, and docs/api.md's function reference is generated from
-- it (tests/lua/api_docs_spec.lua checks that they agree).
--
--   local docs = require "crucible.api_docs"
--   docs.get("curate")     --> {name =, args =, summary =, options = {{name, text}}, example =}
--   docs.text("curate")    --> the help text
--   docs.markdown()        --> the reference section of docs/api.md
local M = {}

local function o(name, text) return { name = name, text = text } end

--- The entries, in the order help() and the docs list them.
M.FUNCTIONS = {
  -- ingestion
  { name = "log_inference", args = "event", area = "ingestion",
    summary = "buffers one inference event (sanitized, scored) for the next flush; returns its id",
    options = { o("deployment_id", "required"), o("prompt", "required"), o("response", "required"),
                o("model_version_id", "the model that answered (a string)"),
                o("latency_ms", "how long the answer took, in milliseconds (an integer >= 0)"),
                o("token_count", "tokens of the exchange (an integer >= 0)"),
                o("quality_score", "a score in [0, 1] (default: the quality checks' score,"
                  .. " when config quality.assess_on_ingest)"),
                o("user_id", "who asked (a string); only its hash is stored"),
                o("id", "your own event id (default: a new UUIDv7)"),
                o("metadata", "a table"),
                o("inserted_at", "when it happened: microseconds or UTC ISO 8601 (default: when accepted)") },
    example = [[cf.log_inference{deployment_id = "bot", prompt = "hi", response = "hello"}]] },
  { name = "record_signal", args = "id, signal_type[, metadata[, opts]]", area = "ingestion",
    summary = "records a user signal (thumbs_up, thumbs_down, regenerate, edit, copy, share, report)",
    options = { o("timestamp", "when it happened (default now)") },
    example = [[cf.record_signal(id, "thumbs_down")]] },
  { name = "record_user_edit", args = "id, edited_response[, metadata[, opts]]", area = "ingestion",
    summary = "records an edit signal with the user's corrected response",
    options = { o("timestamp", "when it happened (default now)") },
    example = [[cf.record_user_edit(id, "the corrected answer")]] },
  { name = "record_score", args = "id, name, value[, opts]", area = "ingestion",
    summary = "a typed score on an event (NUMERIC, BOOLEAN, CATEGORICAL, TEXT); a human boolean"
      .. " thumbs-like score is stored as a thumbs signal",
    options = { o("data_type", "NUMERIC, BOOLEAN, CATEGORICAL or TEXT (default: from the value)"),
                o("comment", "text kept with the score"),
                o("label", "a NUMERIC score's text form (an evaluator's \"pass\"), kept as its string_value"),
                o("source", "human (default), llm or code"),
                o("id", "your own id: the same id again stores nothing"),
                o("timestamp", "when it happened (microseconds or UTC ISO 8601)") },
    example = [[cf.record_score(id, "helpfulness", 0.8, {source = "llm"})]] },
  { name = "get_scores", args = "[query]", area = "ingestion",
    summary = "stored scores, oldest first",
    options = { o("deployment_id", "only this deployment's scores"),
                o("event_id", "only the scores of this inference event"),
                o("name", "only scores with this name"),
                o("id", "only the score with this id"),
                o("since", "only scores recorded at or after this time (ISO 8601 or microseconds)"),
                o("until", "only scores recorded before this time"),
                o("limit", "at most this many scores (default: all)") },
    example = [[cf.get_scores({deployment_id = "support-bot", name = "helpfulness"})]] },
  { name = "flush", args = "", area = "ingestion",
    summary = "writes the buffered events now", options = {}, example = [[cf.flush()]] },
  { name = "stats", args = "", area = "ingestion",
    summary = "ingestion counters (accepted, written, rejected, redactions, ...)", options = {},
    example = [[cf.stats().written]] },
  { name = "sanitize", args = "text[, counts]", area = "ingestion",
    summary = "the text with PII replaced as ingestion would store it", options = {},
    example = [[cf.sanitize("mail me at a@b.example")]] },
  { name = "ingest_file", args = "path[, opts]", area = "ingestion",
    summary = "ingests a JSON-lines file (\"-\": standard input); returns a summary",
    options = { o("rejects", "a file for the rejected lines"), o("quiet", "no per-line messages") },
    example = [[cf.ingest_file("events.jsonl", {rejects = "bad.jsonl"})]] },
  { name = "set_ingest_scorer", args = "fn", area = "ingestion",
    summary = "scores each event as it is ingested with fn(event) -> score", options = {},
    example = [[cf.set_ingest_scorer(function(ev) return #ev.response > 20 and 1 or 0 end)]] },
  -- exploration
  { name = "events", args = "[query]", area = "exploration",
    summary = "inference events as a printable result set (:head(n), :count(), :by(field), :to_csv(path))",
    options = { o("deployment", "a deployment id (default: every deployment)"),
                o("since", "ISO 8601 time, microseconds, or an age: \"30m\", \"12h\", \"1d\", \"2w\""),
                o("until", "as since"),
                o("where", "a function(event) -> boolean, or a table: field = value, "
                  .. "field = {op, value} (op: == ~= < <= > >=), signal = type or {types}"),
                o("limit", "at most this many events"),
                o("order", "\"desc\" (newest first, the default) or \"asc\"") },
    example = [[cf.events{since = "1d", where = {signal = "thumbs_down"}}:head(5)]] },
  { name = "report", args = "deployment_id[, opts]", area = "exploration",
    summary = "the report's aggregates (traffic, quality, signals, drift, curation, triggers,"
      .. " what to do) as a table; format = \"html\" or \"json\" returns the page or its JSON twin",
    options = { o("since", "ISO 8601 time or microseconds (default: the deployment's first event)"),
                o("until", "as since (default: now)"),
                o("bucket", "\"hour\", \"day\" or \"week\" (default: chosen from the span)"),
                o("format", "\"html\" or \"json\" (text) instead of the table"),
                o("output", "a path: the page or JSON is written there"),
                o("lowest", "how many lowest-scoring examples (default 5)"),
                o("drift", "options for measure_drift"),
                o("now", "the time \"now\" stands for") },
    example = [[cf.report("support-bot", {bucket = "day", format = "html", output = "report.html"})]] },
  -- quality
  { name = "assess_quality", args = "event[, opts]", area = "quality",
    summary = "scores one event {prompt, response}; returns score, checks",
    options = { o("min_length", "a shorter response fails the length check, in characters"
                  .. " (default: config quality.min_length, 20)"),
                o("max_length", "a longer response fails the length check, in characters"
                  .. " (default: config quality.max_length, 4000)"),
                o("custom", "false: skip the checks added with cf.quality.register"),
                o("llm_judge", "true, false or a judge function(event)"
                  .. " (default: config llm_judge.enabled, false)") },
    example = [[cf.assess_quality{prompt = "hi", response = "hello there"}]] },
  { name = "get_quality_stats", args = "deployment_id[, opts]", area = "quality",
    summary = "quality statistics of the deployment's recent events",
    options = { o("window_size", "how many recent events (default: config quality.window_size, 1000)"),
                o("checks", "false: no per-check pass rates") },
    example = [[cf.get_quality_stats("support-bot", {window_size = 500})]] },
  { name = "backfill_quality", args = "deployment_id[, opts]", area = "quality",
    summary = "scores the stored events that have no quality score yet",
    options = { o("since", "only events stored at or after this time (ISO 8601 or microseconds)"),
                o("until", "only events stored before this time"),
                o("limit", "score at most this many events (default: all)"),
                o("batch_size", "events scored per update transaction (default 1000)"),
                o("custom", "false: skip the checks added with cf.quality.register"),
                o("llm_judge", "true, false or a judge function(event)"
                  .. " (default: config quality.judge_on_ingest, false)"),
                o("min_length", "as assess_quality's"), o("max_length", "as assess_quality's") },
    example = [[cf.backfill_quality("support-bot", {limit = 1000})]] },
  -- drift
  { name = "detect_drift", args = "deployment_id[, opts]", area = "drift",
    summary = "compares the recent window with the baseline; returns one result per feature",
    options = { o("window_size", "events per window: the newest N are compared with the N before them"
                  .. " (default: config drift.window_size, 1000)"),
                o("features", "a list of \"prompt_length\", \"response_length\", \"latency_ms\","
                  .. " \"token_count\", \"quality_score\", \"model_version_id\","
                  .. " {metadata = \"key\", type = \"numeric\" or \"categorical\"}"
                  .. " (default: config drift.features, {\"prompt_length\"})"),
                o("since", "the recent window starts here (ISO 8601 or microseconds);"
                  .. " the baseline is as long, just before it (default: the newest window_size events)"),
                o("until", "the recent window ends before this time (default: now; needs since)"),
                o("baseline", "{from =, to =}: this window is the baseline; false: ignore the pinned one"),
                o("ks_threshold", "a numeric feature drifted when its KS statistic is above this"
                  .. " (default: config drift.ks_threshold, 0.1)"),
                o("psi_threshold", "a numeric feature drifted when its PSI is above this"
                  .. " (default: config drift.psi_threshold, 0.2)"),
                o("drift_threshold", "embedding drift: the distance of the mean embeddings above this"
                  .. " (default: config drift.drift_threshold, 0.5)"),
                o("length_threshold", "output drift: mean response length changed by more than this"
                  .. " share (default: config drift.length_threshold, 0.2)"),
                o("quality_threshold", "output drift: mean quality score changed by more than this"
                  .. " (default: config drift.quality_threshold, 0.2)"),
                o("js_threshold", "a categorical feature drifted when its Jensen-Shannon distance"
                  .. " is above this (default: config drift.js_threshold, 0.1)"),
                o("psi_bins", "bins of the PSI (default: config drift.psi_bins, 10)"),
                o("hist_bins", "shared bins of a numeric feature's Jensen-Shannon distance"
                  .. " (default: config drift.hist_bins, 10)"),
                o("mmd_samples", "embeddings per window sampled for the MMD test; 0: no MMD"
                  .. " (default: config drift.mmd_samples, 200)"),
                o("mmd_permutations", "permutations behind the MMD p-value"
                  .. " (default: config drift.mmd_permutations, 200)"),
                o("seed", "seeds the MMD sample and permutations (default: config drift.seed, 42)"),
                o("embedding_client", "\"builtin\", \"noop\", a function(texts) or {url =, model =, ...}"
                  .. " (default: config embedding_client, \"builtin\")") },
    example = [[cf.detect_drift("support-bot", {window_size = 500})]] },
  { name = "measure_drift", args = "deployment_id[, opts]", area = "drift",
    summary = "detect_drift without storing the results; each result also carries the"
      .. " baseline and current histograms (or the most frequent categories)",
    options = {}, example = [[cf.measure_drift("support-bot", {window_size = 500})]] },
  { name = "current_drift_score", args = "deployment_id[, opts]", area = "drift",
    summary = "the largest drift score detect_drift finds now (options as detect_drift)",
    options = {}, example = [[cf.current_drift_score("support-bot")]] },
  { name = "get_drift_history", args = "deployment_id[, opts]", area = "drift",
    summary = "stored drift results, newest first",
    options = { o("limit", "at most this many results (default: all)"),
                o("since", "only results stored at or after this time (ISO 8601 or microseconds)"),
                o("type", "\"statistical\", \"embedding\" or \"output\"") },
    example = [[cf.get_drift_history("support-bot", {limit = 5})]] },
  { name = "get_drift_baseline", args = "deployment_id", area = "drift",
    summary = "the pinned baseline window {from =, to =}, or nil", options = {},
    example = [[cf.get_drift_baseline("support-bot")]] },
  { name = "set_drift_baseline", args = "deployment_id, range", area = "drift",
    summary = "pins the baseline window {from =, to =} (times); nil unpins", options = {},
    example = [[cf.set_drift_baseline("support-bot", {from = "2026-11-01T00:00:00Z", to = "2026-11-08T00:00:00Z"})]] },
  { name = "embed", args = "texts", area = "drift",
    summary = "embedding vectors of a list of texts (the configured embedding client)", options = {},
    example = [[cf.embed{"hello", "world"}]] },
  -- curation
  { name = "curate", args = "deployment_id[, opts]", area = "curation",
    summary = "selects training examples with the configured strategies; returns them and counts",
    options = { o("strategies", "names, e.g. {\"user_edit\", \"high_quality\"}"
                  .. " (default: config curation.strategies)"),
                o("limit", "each strategy but user_edit keeps at most limit//3 picks"
                  .. " (default: config curation.limit, 1000)"),
                o("since", "only events stored at or after this time (ISO 8601 or microseconds)"),
                o("until", "only events stored before this time"),
                o("persist", "true: store them, except events curated before (default false)"),
                o("near_duplicates", "false: keep examples whose prompt nearly repeats an earlier one"
                  .. " (default: config curation.near_duplicates, true)"),
                o("near_duplicate_distance", "SimHash bits (of 64) apart still counted as a near"
                  .. " duplicate, 0 to 16 (default: config curation.near_duplicate_distance, 3)"),
                o("embedding_client", "for the diverse strategy, as detect_drift's"
                  .. " (default: config embedding_client)") },
    example = [[cf.curate("support-bot", {strategies = {"high_quality"}, limit = 100})]] },
  { name = "get_curated_count", args = "deployment_id[, opts]", area = "curation",
    summary = "how many curated examples are stored",
    options = { o("exported", "true: exported ones, false: not yet exported") },
    example = [[cf.get_curated_count("support-bot", {exported = false})]] },
  -- triggers
  { name = "check_triggers", args = "deployment_id[, opts]", area = "triggers",
    summary = "evaluates the trigger policies; returns the names that fired and a report",
    options = { o("triggers", "policy names, in order (default: config triggers.policies)"),
                o("now", "the time firings are stored with and cooldowns count from:"
                  .. " ISO 8601 or microseconds (default: the clock)"),
                o("dry_run", "true: evaluate only; nothing stored, no actions run"),
                o("cooldown_seconds", "seconds, overriding every configured cooldown (0: none)") },
    example = [[cf.check_triggers("support-bot", {dry_run = true})]] },
  { name = "get_trigger_history", args = "deployment_id[, opts]", area = "triggers",
    summary = "stored firings, newest first",
    options = { o("limit", "at most this many firings (default: all)"),
                o("since", "only firings stored at or after this time (ISO 8601 or microseconds)"),
                o("type", "a trigger name") },
    example = [[cf.get_trigger_history("support-bot", {limit = 5})]] },
  -- export
  { name = "export", args = "deployment_id[, opts]", area = "export",
    summary = "writes the curated examples not yet exported to a file",
    options = { o("format", "jsonl, csv, parquet, huggingface, openai-chat"
                  .. " (default: config export.format, jsonl)"),
                o("output_path", "a file (huggingface: a directory); \"-\": standard output"
                  .. " (default: export.output_dir/feedback_<unix time>.<ext>)"),
                o("columns", "the columns to write, in order, e.g. {\"inference_event_id\","
                  .. " \"prompt\", \"response\"} (default: all)"),
                o("include_exported", "true: every curated example, exported before or not"
                  .. " (default false)"),
                o("limit", "at most this many examples (default: all)"),
                o("export_batch_id", "recorded on the exported rows, at most 256 bytes"
                  .. " (default: a new UUIDv7)"),
                o("parquet", "parquet settings"),
                o("progress", "true: draw a progress bar on stderr (default false)"),
                o("mkdir", "true: create output_path's missing directories (default false)") },
    example = [[cf.export("support-bot", {format = "jsonl", output_path = "out.jsonl"})]] },
  { name = "export_preference_pairs", args = "deployment_id[, opts]", area = "export",
    summary = "writes (chosen, rejected) pairs from user edits",
    options = { o("format", "\"dpo\" (the default) or \"openai\" from edits, \"kto\" from thumbs"),
                o("output_path", "a file; \"-\": standard output (default: export.output_dir/"
                  .. "feedback_<unix time>_preferences.jsonl, _kto.jsonl or _openai.jsonl)"),
                o("include_exported", "true: every pair, exported before or not (default false)"),
                o("limit", "look at most at this many events (default: all)"),
                o("since", "only events stored at or after this time (ISO 8601 or microseconds)"),
                o("until", "only events stored before this time"),
                o("progress", "true: draw a progress bar on stderr (default false)"),
                o("mkdir", "true: create output_path's missing directories (default false)") },
    example = [[cf.export_preference_pairs("support-bot", {output_path = "pairs.jsonl"})]] },
  -- workflows and serving
  { name = "run_pipeline", args = "context_or_artifacts, steps", area = "workflows",
    summary = "runs pipeline stages in order; returns the context", options = {},
    example = [[cf.run_pipeline({deployment_id = "support-bot"}, {"assess_quality", "curate"})]] },
  { name = "serve", args = "[opts]", area = "workflows",
    summary = "serves the HTTP intake until SIGTERM or SIGINT",
    options = { o("listen", "HOST:PORT"),
                o("threads", "worker threads, 1 to 256 (default: config server.threads, 4)"),
                o("on_listening", "fn(host, port)") },
    example = [[cf.serve{listen = "127.0.0.1:4318"}]] },
  -- data lifecycle
  { name = "apply_retention", args = "[opts]", area = "lifecycle",
    summary = "deletes rows older than the config's retention (events with their signals,"
      .. " scores and curated examples); returns {removed = {table = n}, dry_run =}",
    options = { o("dry_run", "count, delete nothing"), o("now", "the time cut-offs count from"),
                o("batch_rows", "rows per transaction"),
                o("max_batches", "stop after this many (run again to go on)") },
    example = [[cf.apply_retention{dry_run = true}.removed.inference_events]] },
  { name = "forget_user", args = "user_id[, opts]", area = "lifecycle",
    summary = "deletes one user's events and everything that points at them, under every"
      .. " user id key; returns {complete =, removed =, exports =, deletion_id =}",
    options = { o("deployment", "only this deployment's events"),
                o("dry_run", "count, delete nothing"),
                o("rewrite_exports", "rewrite the export files (every format, preference pairs"
                  .. " too) without the user's rows"),
                o("batch_rows", "events per transaction"),
                o("max_batches", "stop after this many (run again to finish)") },
    example = [[cf.forget_user("alice", {rewrite_exports = true})]] },
  { name = "rotate_user_hmac", args = "[opts]", area = "lifecycle",
    summary = "a new key for user id hashes; the old one is kept for forget_user",
    options = { o("new_key", "the new key (default: random)") },
    example = [[cf.rotate_user_hmac().retired]] },
  { name = "backup", args = "path", area = "lifecycle",
    summary = "a consistent copy of the SQLite database while writers run (other backends:"
      .. " their own tools)", options = {},
    example = [[cf.backup("crucible-2026-01-01.db")]] },
  { name = "restore", args = "path", area = "lifecycle",
    summary = "replaces the SQLite database with a backup", options = {},
    example = [[cf.restore("crucible-2026-01-01.db")]] },
  { name = "lifecycle_orphans", args = "", area = "lifecycle",
    summary = "rows per dependent table whose event (or curated example) is gone; all 0 normally",
    options = {}, example = [[cf.lifecycle_orphans().scores]] },
  { name = "deletions", args = "[limit]", area = "lifecycle",
    summary = "the deletion audit, newest first: {id, action, subject (a hash), status, ...}",
    options = {}, example = [[cf.deletions(10)]] },
  -- the instance
  { name = "store", args = "", area = "instance",
    summary = "the open storage interface (see Storage)", options = {},
    example = [[cf.store():count_events{deployment_id = "support-bot"}]] },
  { name = "migrate", args = "", area = "instance",
    summary = "applies pending schema migrations", options = {}, example = [[cf.migrate()]] },
  { name = "on", args = "event, fn", area = "instance",
    summary = "subscribes fn(payload, event) to a telemetry event; returns a handle", options = {},
    example = [[cf.on("export.complete", function(p) print(p.path) end)]] },
  { name = "off", args = "handle", area = "instance",
    summary = "removes a subscription", options = {}, example = [[cf.off(handle)]] },
  { name = "close", args = "", area = "instance",
    summary = "flushes what features buffer and closes the store", options = {},
    example = [[cf.close()]] },
  { name = "new", args = "[opts]", area = "instance",
    summary = "a separate instance",
    options = { o("config", "a file or a table over the defaults"), o("db", "a database URL"),
                o("auto_migrate", "false: leave the schema alone") },
    example = [[require("crucible").new{config = {storage = {url = "sqlite:other.db"}}}]] },
  { name = "default", args = "", area = "instance",
    summary = "the default instance (what `cf.NAME` calls go to)", options = {},
    example = [[cf.default()]] },
  { name = "reset_default", args = "", area = "instance",
    summary = "closes and forgets the default instance", options = {},
    example = [[cf.reset_default()]] },
}

local by_name = {}
for _, f in ipairs(M.FUNCTIONS) do by_name[f.name] = f end

--- The entry of function `name`, or nil.
function M.get(name) return by_name[name] end

--- The function names, in order.
function M.names()
  local out = {}
  for i, f in ipairs(M.FUNCTIONS) do out[i] = f.name end
  return out
end

--- The option names of function `name` (a list; empty when none or unknown).
function M.option_names(name)
  local out = {}
  for i, opt in ipairs(by_name[name] and by_name[name].options or {}) do out[i] = opt.name end
  return out
end

--- "cf.NAME(ARGS)".
function M.signature(f) return ("cf.%s(%s)"):format(f.name, f.args) end

--- How wide help() lays out an option's description (its lines end by
-- this column) and where each of its lines starts.
M.WIDTH, M.OPTION_COLUMN = 79, 30

-- Appends the lines of one option to `lines`: its name, then its text
-- from OPTION_COLUMN on, wrapped at spaces to end by WIDTH (a word longer
-- than the room stands alone on its line).
local function option_lines(lines, opt)
  local indent = (" "):rep(M.OPTION_COLUMN - 2)
  local line, fresh = ("    %-" .. (M.OPTION_COLUMN - 6) .. "s"):format(opt.name), true
  for word in opt.text:gmatch("%S+") do
    if not fresh and #line + 1 + #word > M.WIDTH then
      lines[#lines + 1] = line
      line = indent
    end
    line, fresh = line .. " " .. word, false
  end
  lines[#lines + 1] = fresh and ("    %s"):format(opt.name) or line
end

--- The help text of one function: signature, summary, options, example.
function M.text(name)
  local f = by_name[name]
  if not f then return nil end
  local lines = { M.signature(f), "  " .. f.summary }
  if #f.options > 0 then
    lines[#lines + 1] = "  options:"
    for _, opt in ipairs(f.options) do option_lines(lines, opt) end
  end
  lines[#lines + 1] = "  example: " .. f.example
  return table.concat(lines, "\n")
end

--- The overview: one line per function, by area.
function M.overview()
  local lines, area = {}, nil
  for _, f in ipairs(M.FUNCTIONS) do
    if f.area ~= area then
      area = f.area
      lines[#lines + 1] = area .. ":"
    end
    local sig = M.signature(f)
    if #sig > 34 then
      lines[#lines + 1] = "  " .. sig
      lines[#lines + 1] = ("  %-34s %s"):format("", f.summary)
    else
      lines[#lines + 1] = ("  %-34s %s"):format(sig, f.summary)
    end
  end
  return table.concat(lines, "\n")
end

--- The function reference of docs/api.md (between its
-- "<!-- api-reference -->" markers).
function M.markdown()
  local out = { "| function | what it does | options | example |", "| --- | --- | --- | --- |" }
  for _, f in ipairs(M.FUNCTIONS) do
    local opts = {}
    for i, opt in ipairs(f.options) do
      opts[i] = "`" .. opt.name .. "`" .. (opt.text ~= "" and (" " .. opt.text) or "")
    end
    local cell = table.concat(opts, "; "):gsub("|", "\\|")
    out[#out + 1] = ("| `%s` | %s | %s | `%s` |"):format(M.signature(f), f.summary:gsub("|", "\\|"),
      cell, (f.example:gsub("|", "\\|")))
  end
  return table.concat(out, "\n")
end

return M
