`report` writes one self-contained HTML page of a deployment and prints
its path; --format json writes the same numbers as JSON.

  $ crucible-feedback report support-bot
  report.html
  $ grep -c 'No data yet' report.html
  1
  $ crucible-feedback -e 'local db = assert(require("crucible").store()); assert(db:insert_events { { deployment_id = "support-bot", prompt = "<script>alert(1)</script>", response = "fine", model_version_id = "v1", latency_ms = 80, quality_score = 0.25, inserted_at = "2026-01-01T10:00:00Z" } })'
  $ crucible-feedback report support-bot -o page.html --since 2026-01-01T00:00:00Z --until 2026-01-02T00:00:00Z
  page.html
  $ grep -c '<script' page.html
  0
  [1]
  $ grep -o '&lt;script&gt;alert(1)&lt;/script&gt;' page.html | head -n 1
  &lt;script&gt;alert(1)&lt;/script&gt;
  $ grep -o 'data-key="traffic.events" data-value="1"' page.html
  data-key="traffic.events" data-value="1"
  $ crucible-feedback report support-bot --since 2026-01-01T00:00:00Z --until 2026-01-02T00:00:00Z --bucket hour -f json -o - | crucible-feedback -e 'local d = require("cjson").decode(io.read("a")); print(d.schema, d.window.bucket, math.tointeger(d.window.buckets), math.tointeger(d.traffic.events), d.quality.lowest[1].score)'
  crucible.report/1	hour	24	1	0.25

Bad options are usage errors:

  $ crucible-feedback report support-bot --bucket month
  crucible-feedback: --bucket: expected hour, day or week, got 'month' (see 'crucible-feedback report --help')
  [2]
  $ crucible-feedback report support-bot --format pdf
  crucible-feedback: --format: expected html or json, got 'pdf' (see 'crucible-feedback report --help')
  [2]
  $ crucible-feedback report support-bot --since yesterday
  crucible-feedback: report: since: invalid time 'yesterday': expected UTC ISO 8601 like 2026-11-23T08:00:00.000000Z
  [1]
