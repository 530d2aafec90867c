#!/usr/bin/env bash
# Quality (issue 4): assess_quality throughput on a realistic corpus against
# the same four checks in Python, and get_quality_stats on 1,000,000 stored
# events against the same statistics computed with Python's sqlite3.
# Smaller runs while developing: QUALITY_CORPUS=20000 QUALITY_EVENTS=100000.
set -euo pipefail
bin=$1 work=$2
corpus_n=${QUALITY_CORPUS:-200000}
events_n=${QUALITY_EVENTS:-1000000}
signals_n=${QUALITY_SIGNALS:-100000}
"$bin" bench/quality_corpus.lua "$work/quality_corpus.jsonl" "$corpus_n"
# Passes, each timed alone: the best measures the code, the median the machine.
ours=$("$bin" bench/quality_assess.lua "$work/quality_corpus.jsonl" "${QUALITY_PASSES:-5}")
peer=$(/usr/bin/python3 bench/peers/py_quality.py "$work/quality_corpus.jsonl" "${QUALITY_PEER_PASSES:-3}")
# The first run fills the database (its timings would read a fresh WAL and
# are not kept); then ours and the peer alternate, medians of the rounds.
"$bin" bench/quality_stats.lua "$work/quality_stats.db" "$events_n" "$signals_n" >/dev/null
stats=() pstats=()
for _ in $(seq "${QUALITY_STATS_ROUNDS:-3}"); do
  stats+=("$("$bin" bench/quality_stats.lua "$work/quality_stats.db" "$events_n" "$signals_n")")
  pstats+=("$(/usr/bin/python3 bench/peers/py_quality_stats.py "$work/quality_stats.db")")
done
/usr/bin/python3 - "$ours" "$peer" "$(printf '%s\n' "${stats[@]}")" "$(printf '%s\n' "${pstats[@]}")" <<'PY'
import json, statistics, sys
o, p = json.loads(sys.argv[1]), json.loads(sys.argv[2])


def medians(text):
    runs = [json.loads(line) for line in text.splitlines() if line.strip()]
    out = dict(runs[0])
    for k, v in runs[0].items():
        if k.startswith("seconds_"):
            out[k] = statistics.median(r[k] for r in runs)
    out["rounds"] = len(runs)
    return out


s, ps = medians(sys.argv[3]), medians(sys.argv[4])
print("## Quality: assess_quality and get_quality_stats (issue 4)")
print()
print(f"Targets: assess_quality at least 200,000 events/s on one core without the judge;"
      f" get_quality_stats on {s['events']:,} stored events under 1 s.")
print()
print(f"Corpus: {o['events']:,} generated responses (bench/quality_corpus.lua: prose, JSON,"
      " markdown, refusals, loops, short, over-long and non-English text).")
print()
print(f"Each pass over the corpus is timed alone (CPU time): ours {o['passes']} passes, the peer {p['passes']}."
      " The best pass measures the code; the median shows how much the shared machine varied.")
print()
print("| | events a pass | CPU s (best pass) | events/s, best pass | events/s, median pass | mean score |")
print("| --- | ---: | ---: | ---: | ---: | ---: |")
print(f"| crucible-feedback cf.assess_quality (result tables in Lua) | {o['events']} | {o['cpu_seconds']:.3f} | {o['events_per_second']:.0f} | {o['events_per_second_median']:.0f} | {o['mean_score']:.6f} |")
print(f"| crucible-feedback C scorer (the ingest hook's work) | {o['events']} | | {o['c_scorer_events_per_second']:.0f} | {o['c_scorer_events_per_second_median']:.0f} | {o['c_mean_score']:.6f} |")
print(f"| peer: Python, the same four checks | {p['events']} | {p['cpu_seconds']:.3f} | {p['events_per_second']:.0f} | {p['events_per_second_median']:.0f} | {p['mean_score']:.6f} |")
print()
same = abs(o['mean_score'] - p['mean_score']) < 1e-9
best, med = o['events_per_second'], o['events_per_second_median']
print(f"Ratio (ours / peer events/s, best passes): {best / p['events_per_second']:.1f}; median passes:"
      f" {med / p['events_per_second_median']:.1f}."
      f" Target 200,000 events/s: {'met' if best >= 200000 else 'NOT met'} by the best pass,"
      f" {'met' if med >= 200000 else 'not met'} by the median pass."
      f" Mean scores {'agree' if same else 'DIFFER'}.")
print()
print(f"Stored: {s['events']:,} events of one deployment, {s['signals']:,} signals."
      f" Medians of {s['rounds']} rounds, ours and the peer alternately.")
print()
print("| | wall s |")
print("| --- | ---: |")
print(f"| crucible-feedback get_quality_stats (window 1000, pass rates, counts, signals), first call | {s['seconds_first']:.3f} |")
print(f"| crucible-feedback, the same call again | {s['seconds_default']:.3f} |")
print(f"| crucible-feedback, window = every event, scores only (checks=false) | {s['seconds_all_scores']:.3f} |")
print(f"| crucible-feedback, window = every event, with pass rates | {s['seconds_all_with_checks']:.3f} |")
print(f"| peer: Python sqlite3, the default statistics, first call | {ps['seconds_first']:.3f} |")
print(f"| peer: the same again | {ps['seconds_default']:.3f} |")
print(f"| peer: window = every event, scores only | {ps['seconds_all_scores']:.3f} |")
print()
agree = (abs(s['rolling_average'] - ps['rolling_average']) < 1e-9
         and abs(s['all_rolling_average'] - ps['all_rolling_average']) < 1e-9
         and abs(s['all_p50'] - ps['all_p50']) < 1e-9 and s['signal_score'] == ps['signal_score'])
r_def = ps['seconds_default'] / s['seconds_default']
r_all = ps['seconds_all_scores'] / s['seconds_all_scores']
print(f"Ratio (peer / ours): default call again {r_def:.2f}, first calls"
      f" {ps['seconds_first'] / s['seconds_first']:.2f}, every event as the window {r_all:.2f}."
      f" Targets: at least 2x the peer: {'met' if r_def >= 2 else 'NOT met'} (default call),"
      f" {'met' if r_all >= 2 else 'NOT met'} (every event);"
      f" the every-event window under 0.5 s: {'met' if s['seconds_all_scores'] < 0.5 else 'NOT met'};"
      f" under 1 s: {'met' if max(s['seconds_first'], s['seconds_default']) < 1 else 'NOT met'} (default call)."
      f" Results {'agree' if agree else 'DIFFER'} with the peer.")
PY
