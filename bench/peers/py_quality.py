"""Peer for bench/quality_assess.lua: the reference's four checks in Python,
with the same scores, thresholds and result shape, over the same corpus.

    /usr/bin/python3 py_quality.py CORPUS.jsonl [ROUNDS]

Prints one line of JSON (CPU time, events/s, mean score)."""
import json
import re
import sys
import statistics
import time

MIN_LENGTH, MAX_LENGTH = 20, 4000
APOS = "['\u2019\u2018\u02bc]"
REFUSALS = [re.compile(p, re.IGNORECASE) for p in (
    "I cannot|I can" + APOS + "t|I" + APOS + "m unable to",
    "I apologize, but",
    "As an AI",
    "I don" + APOS + "t have the ability")]
# Elixir's String.split/1 separators: Unicode White_Space minus no-break spaces
SPLIT = re.compile("[\t-\r \x85\u1680\u2000-\u2006\u2008-\u200a\u2028\u2029\u205f\u3000]+")


def reject_constant(name):
    raise ValueError(name)


def format_check(text):
    try:
        json.loads(text, parse_constant=reject_constant)
        score, fmt = 1.0, "json"
    except (ValueError, RecursionError):
        count = text.count("```")
        if count > 0 and count % 2 == 0:
            score, fmt = 0.9, "markdown"
        else:
            score, fmt = 0.7, "plain"
    return {"check": "format", "score": score, "passed": score >= 0.7,
            "details": {"format": fmt, "valid": True}}


def length_check(text):
    n = len(text)
    short, long_ = n < MIN_LENGTH, n > MAX_LENGTH
    score = 0.4 if short or long_ else 1.0
    return {"check": "length", "score": score, "passed": score == 1.0,
            "details": {"length": n, "min": MIN_LENGTH, "max": MAX_LENGTH,
                        "too_short": short, "too_long": long_ and not short}}


def refusal_check(text):
    has = any(p.search(text) for p in REFUSALS)
    score = 0.3 if has else 1.0
    return {"check": "refusal", "score": score, "passed": not has,
            "details": {"has_refusal": has}}


def repetition_check(text):
    words = [w for w in SPLIT.split(text) if w]
    if len(words) < 10:
        ratio = 0.0
    else:
        trigrams = list(zip(words, words[1:], words[2:]))
        ratio = 1.0 - len(set(trigrams)) / max(len(trigrams), 1)
    score = max(0.0, 1.0 - ratio)
    return {"check": "repetition", "score": score, "passed": score >= 0.7,
            "details": {"repetition_ratio": ratio}}


def assess(event):
    text = event.get("response", "")
    checks = [format_check(text), length_check(text), refusal_check(text),
              repetition_check(text)]
    return {"score": sum(c["score"] for c in checks) / len(checks), "checks": checks}


def main():
    events = [json.loads(line) for line in open(sys.argv[1], encoding="utf-8")]
    passes = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    total, rates = 0.0, []
    for _ in range(passes):  # each pass timed alone, as ours
        t0 = time.process_time()
        for e in events:
            total += assess(e)["score"]
        rates.append(len(events) / (time.process_time() - t0))
    rates.sort()
    n = len(events)
    print(json.dumps({"bench": "py_assess_quality", "events": n, "passes": passes,
                      "cpu_seconds": n / rates[-1], "events_per_second": rates[-1],
                      "events_per_second_median": statistics.median(rates),
                      "mean_score": total / (n * passes)}))


if __name__ == "__main__":
    main()
