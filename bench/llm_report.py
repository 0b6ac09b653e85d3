#!/usr/bin/env python3
"""Markdown tables for `make bench-llm` from its JSON records.

Usage: llm_report.py REPLAY_JSONL SIM_WINDOW_JSONL
Prints one table: per strategy, for each Envoy count, the real replay's hit rate, max/mean requests
per backend and share of continuations moved (medians over rounds when repeated, with the
min-max range of the hit rate), beside the simulator's figures for the same requests (same
backends, replicas = Envoys).
"""
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from report_format import jsonl  # noqa: E402


def main():
    replay, sim = jsonl(sys.argv[1]), jsonl(sys.argv[2])
    strategies, envoys = [], sorted({r["replicas"] for r in replay})
    for r in replay:
        if r["strategy"] not in strategies:
            strategies.append(r["strategy"])
    rounds = len({r.get("round", 0) for r in replay})
    print(f"Replay through real Envoys ({replay[0]['requests']} requests, {replay[0]['backends']} backends,"
          f" time compressed {replay[0]['compress']:g}x; {rounds} round(s), medians) beside the simulator"
          " on the same requests\n")
    header = "| strategy |" + "".join(
        f" E={e} hit (sim) | E={e} max/mean (sim) | E={e} moved (sim) | E={e} errors |" for e in envoys)
    print(header)
    print("|---|" + "---:|---:|---:|---:|" * len(envoys))
    for name in strategies:
        row = f"| {name} |"
        for e in envoys:
            runs = [r for r in replay if r["strategy"] == name and r["replicas"] == e]
            twin = next((r for r in sim if r["strategy"] == name and r["replicas"] == e), None)
            if not runs:
                row += " – | – | – | – |"
                continue
            hit = statistics.median(r["hit_rate"] for r in runs)
            spread = ""
            if len(runs) > 1:
                spread = f" [{100 * min(r['hit_rate'] for r in runs):.1f}–{100 * max(r['hit_rate'] for r in runs):.1f}]"
            mm = statistics.median(r["max_over_mean"] for r in runs)
            moved = statistics.median(r["moved_share"] for r in runs)
            errors = sum(r["errors"] for r in runs)
            sim_hit = f"{100 * twin['hit_rate']:.1f}%" if twin else "–"
            sim_mm = f"{twin['max_over_mean']:.2f}" if twin else "–"
            sim_moved = f"{100 * twin['moved_share']:.1f}%" if twin else "–"
            row += (f" {100 * hit:.1f}%{spread} ({sim_hit}) | {mm:.2f} ({sim_mm}) |"
                    f" {100 * moved:.1f}% ({sim_moved}) | {errors} |")
        print(row)


if __name__ == "__main__":
    main()
