#!/usr/bin/env python3
"""Prints one markdown row per k6 summary in load-tests/results/ (or the files
given): the script's main latency (p50/p95/p99), throughput, failed requests,
429s, drain time and whether every threshold held. Used for
docs/load-testing.md."""
import json
import pathlib
import sys

# The latency each script is about, in the order tried.
MAIN = [
    "http_req_duration{name:start_run}",
    "approval_to_succeeded_ms",
    "workflow_run_ms",
    "http_req_duration",
]
# What counts as its throughput.
RATE = ["runs_started", "workflows_finished", "iterations", "http_reqs"]


def fmt_ms(v):
    return "-" if v is None else (f"{v:.1f}" if v < 100 else f"{v:.0f}")


def row(path):
    m = json.loads(path.read_text())["metrics"]
    name = path.stem
    main = next(k for k in MAIN if k in m)
    lat = m[main]
    rate_key = next(k for k in RATE if k in m)
    failed = m["http_req_failed"]
    reqs = m["http_reqs"]["count"]
    failed_n = failed.get("passes", 0)  # passes of http_req_failed = failed requests
    t429 = m.get("rate_limited_429", {}).get("count", 0)
    drain = m.get("drain_ms", {}).get("max")
    broken = [
        f"{k}: {t}"
        for k, v in m.items()
        for t, crossed in v.get("thresholds", {}).items()
        if crossed
    ]
    return (
        f"| {name} | `{main}` | {fmt_ms(lat.get('med'))} | {fmt_ms(lat.get('p(95)'))} | "
        f"{fmt_ms(lat.get('p(99)'))} | {m[rate_key]['rate']:.1f} {rate_key}/s | "
        f"{failed_n} of {reqs} ({100 * failed.get('value', 0):.2f}%) | {t429} | "
        f"{'-' if drain is None else f'{drain / 1000:.1f} s'} | "
        f"{'all passed' if not broken else 'FAILED ' + '; '.join(broken)} |"
    )


def main():
    paths = [pathlib.Path(p) for p in sys.argv[1:]] or sorted(
        (pathlib.Path(__file__).parent / "results").glob("*.json")
    )
    print("| run | latency | p50 ms | p95 ms | p99 ms | throughput | failed requests | 429s | drain | thresholds |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for p in paths:
        print(row(p))


if __name__ == "__main__":
    main()
