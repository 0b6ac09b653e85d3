#!/usr/bin/env python3
"""Renders the agent-at-scale results of bench/agent_scale.sh (used by bench/report.py).

Alone: `python3 bench/report_agent_scale.py RESULT_DIR` prints the section with its own machine
line (for a run of bench/agent_scale.sh without the rest of `make bench`).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from report_format import jsonl, med, met, num, read_env  # noqa: E402

ISTIOD_CLA_MS, ISTIOD_CLA_KB = 2.1, 129
CLA_GOAL_MS, BYTES_GOAL_RATIO, RSS_GOAL_MIB = 1.0, 10, 64


def load(out):
    return (read_env(os.path.join(out, "agent_scale.env")), jsonl(os.path.join(out, "translate.jsonl")),
            jsonl(os.path.join(out, "ads_load.jsonl")))


def runs(rows, key, unit=""):
    return ", ".join(f"{num(r[key])}{unit}" for r in rows)


class Figures:
    """Medians over the runs of everything the summary and the section print."""

    def __init__(self, translate, ads):
        self.snapshot = [r for r in translate if r["case"] == "snapshot"]
        self.cla = [r for r in translate if r["case"] == "cla"]
        self.sotw = [r for r in ads if r["protocol"] == "sotw"]
        self.delta = [r for r in ads if r["protocol"] == "delta"]
        self.cla_ms = med(self.cla, "build_and_encode_ms")
        self.cla_bytes = self.cla[0]["bytes"]
        self.sotw_bytes = med(self.sotw, "change_bytes_per_stream_median")
        self.delta_bytes = med(self.delta, "change_bytes_per_stream_median")
        self.ratio = self.sotw_bytes / self.delta_bytes if self.delta_bytes else float("inf")
        self.rss = {p: med(rows, "agent_rss_serving_mib") for p, rows in (("sotw", self.sotw), ("delta", self.delta))}
        self.streams = self.sotw[0]["streams"]


def summary(translate, ads):
    """Summary bullet lines."""
    f = Figures(translate, ads)
    s = f.snapshot[0]
    return [
        f"- Agent, in process: one {f.cla[0]['endpoints']:,}-endpoint ClusterLoadAssignment built and encoded in "
        f"**{f.cla_ms} ms**, {f.cla_bytes:,} B (goal ≤ {CLA_GOAL_MS} ms: {met(f.cla_ms <= CLA_GOAL_MS)}; istiod reports "
        f"{ISTIOD_CLA_MS} ms / {ISTIOD_CLA_KB} KB for its own, not identical, endpoint set); {s['services']:,} services × {s['endpoints']} endpoints translated and "
        f"encoded in {num(med(f.snapshot, 'translate_and_encode_ms'))} ms, {s['total_bytes']:,} B.",
        f"- Agent, {f.streams} concurrent ADS streams: one endpoint changed → every stream ACKed in "
        f"{num(med(f.sotw, 'change_to_all_acked_ms'))} ms SotW / {num(med(f.delta, 'change_to_all_acked_ms'))} ms delta "
        f"(file notification + reload; first stream received → all ACKed: {num(med(f.sotw, 'first_received_to_all_acked_ms'))} / "
        f"{num(med(f.delta, 'first_received_to_all_acked_ms'))} ms); bytes per stream for the change "
        f"{f.sotw_bytes:,.0f} B SotW vs {f.delta_bytes:,.0f} B delta (**{f.ratio:,.0f}×**; goal ≥ {BYTES_GOAL_RATIO}×: "
        f"{met(f.ratio >= BYTES_GOAL_RATIO)}); agent RSS while serving them {f.rss['sotw']} MiB SotW, "
        f"{f.rss['delta']} MiB delta (goal ≤ {RSS_GOAL_MIB} MiB: SotW {met(f.rss['sotw'] <= RSS_GOAL_MIB)}, "
        f"delta {met(f.rss['delta'] <= RSS_GOAL_MIB)}).",
    ]


def section(translate, ads, machine=None):
    """The section's markdown lines; `machine` (agent_scale.env) adds the run's own machine line."""
    f = Figures(translate, ads)
    s, c = f.snapshot[0], f.cla[0]
    n = len(f.sotw)
    lines = ["## 5. Agent at scale: translation cost and 100 concurrent ADS streams\n"]
    if machine:
        lines.append(
            f"Run alone (not within a whole `make bench`): `{machine.get('command', 'bench/agent_scale.sh')}`, "
            f"{machine['runs']} runs of each part, {machine['seconds']} s; `nproc` = {machine['nproc']}, CPU: "
            f"{machine['cpu']}; load average {machine['loadavg_start']} at start, {machine['loadavg_end']} at the end "
            f"(shared machine); date {machine['date']}.\n")
    lines += [
        f"Command: `bench/agent_scale.sh` (part of `make bench`; {n} runs of each program, medians of the runs).\n",
        "### In process (`xds-agent/examples/translate_bench.rs`)\n",
        "`target/release/examples/translate_bench`: the agent's public API, no I/O. The configuration is the "
        f"same generated YAML as section 4 ({s['yaml_bytes']:,} bytes); *translate* is `translate::translate` "
        "(model → Envoy protos), *encode* is protobuf encoding of every resource, *snapshot* is `Snapshot::new` "
        "(pack into `Any`, consistency check, sha256 versions: the agent's real per-change work after translate). "
        f"Each run's figure is the median of {s['iterations']} iterations ({c['iterations']} for the single "
        "ClusterLoadAssignment) after a warm-up.\n",
        "| measure | median of runs | runs |",
        "|---|---:|---|",
    ]
    rows = [
        (f"{c['endpoints']:,}-endpoint ClusterLoadAssignment: build (`translate::load_assignment`)", f.cla, "build_ms", " ms"),
        ("… encode", f.cla, "encode_ms", " ms"),
        (f"… build + encode (goal ≤ {CLA_GOAL_MS} ms; istiod {ISTIOD_CLA_MS} ms)", f.cla, "build_and_encode_ms", " ms"),
        (f"… encoded bytes (istiod {ISTIOD_CLA_KB} KB)", f.cla, "bytes", " B"),
        (f"{s['services']:,} services × {s['endpoints']} endpoints: YAML load and validation", f.snapshot, "load_ms", " ms"),
        ("… translate", f.snapshot, "translate_ms", " ms"),
        ("… encode every resource", f.snapshot, "encode_ms", " ms"),
        ("… translate + encode", f.snapshot, "translate_and_encode_ms", " ms"),
        ("… `Snapshot::new` (pack, check, version)", f.snapshot, "snapshot_ms", " ms"),
        ("… encoded bytes, all types", f.snapshot, "total_bytes", " B"),
    ]
    for name, rows_, key, unit in rows:
        lines.append(f"| {name} | {num(med(rows_, key))}{unit} | {runs(rows_, key, unit)} |")
    b = s["bytes"]
    lines.append(f"\nEncoded bytes by type: CDS {b['cds']:,}, EDS {b['eds']:,}, RDS {b['rds']:,}, LDS {b['lds']:,}. "
                 f"Each endpoint carries its ring identity (`envoy.lb` `hash_key` metadata) and a weight.\n")
    a = f.sotw[0]
    lines += [
        f"### {f.streams} concurrent ADS streams (`xds-agent/examples/ads_load.rs`)\n",
        f"`target/release/examples/ads_load --agent target/release/xds-agent --protocol sotw|delta --streams {f.streams}`: "
        f"starts the real `xds-agent serve` on the {a['services']:,} × {a['endpoints']} configuration and opens "
        f"{f.streams} ADS streams (one gRPC connection each, one tokio thread for all of them), which subscribe like "
        "Envoy (CDS and LDS wildcard, then EDS for every EDS cluster and RDS for every route configuration the "
        "listener's HTTP connection manager names) and ACK every response with its nonce. Then, "
        f"{a['edits']} times, one endpoint's port is changed in the config file (temporary file + rename) and the "
        "time is taken until every stream has received AND ACKed the new EDS version; median of the edits per run, "
        "median of the runs. The agent learns of the change from a file notification (after 50 ms without further "
        "events; its 1 s poll is only the fallback), so *file written → first stream received it* is that wait plus the "
        "reload itself (YAML load, "
        "translate, snapshot: the in-process table above); *first stream received → all ACKed* is the fan-out itself. Bytes are gRPC messages (protobuf + "
        "5-byte prefix; HTTP/2 framing excluded) per stream, median over the streams. RSS is the agent's `VmRSS` "
        "once every stream has ACKed the whole snapshot. The client runs on the same 2 cores.\n",
        "| measure | SotW: median (runs) | delta: median (runs) |",
        "|---|---:|---:|",
    ]
    ads_rows = [
        ("agent start → accepting ADS", "agent_ready_ms", " ms"),
        (f"{f.streams} streams opened → every stream ACKed every type", "initial_sync_all_streams_ms", " ms"),
        ("bytes per stream for the whole snapshot", "initial_bytes_per_stream", " B"),
        ("agent RSS before any stream", "agent_rss_idle_mib", " MiB"),
        (f"agent RSS serving {f.streams} streams (goal ≤ {RSS_GOAL_MIB} MiB)", "agent_rss_serving_mib", " MiB"),
        ("agent RSS after the edits / peak (`VmHWM`)", None, None),
        ("one endpoint changed: file written → every stream ACKed", "change_to_all_acked_ms", " ms"),
        ("… file written → first stream received it", "change_to_first_received_ms", " ms"),
        ("… first stream received → every stream ACKed", "first_received_to_all_acked_ms", " ms"),
        ("bytes per stream for that change", "change_bytes_per_stream_median", " B"),
    ]
    for name, key, unit in ads_rows:
        if key is None:
            cells = [f"{med(rows_, 'agent_rss_after_edits_mib')} / {med(rows_, 'agent_peak_rss_mib')} MiB"
                     for rows_ in (f.sotw, f.delta)]
        else:
            cells = [f"{num(med(rows_, key))}{unit} ({runs(rows_, key)})" for rows_ in (f.sotw, f.delta)]
        lines.append(f"| {name} | {cells[0]} | {cells[1]} |")
    lines += [
        "",
        f"Goals (issue 6): one 1,000-endpoint ClusterLoadAssignment ≤ {CLA_GOAL_MS} ms: "
        f"{met(f.cla_ms <= CLA_GOAL_MS)} ({f.cla_ms} ms, {f.cla_bytes:,} B). Delta ≥ {BYTES_GOAL_RATIO}× fewer bytes than "
        f"SotW for a one-endpoint change: {met(f.ratio >= BYTES_GOAL_RATIO)} ({f.sotw_bytes:,.0f} B vs "
        f"{f.delta_bytes:,.0f} B, {f.ratio:,.0f}×). Agent RSS ≤ {RSS_GOAL_MIB} MiB serving {f.streams} streams: SotW "
        f"{met(f.rss['sotw'] <= RSS_GOAL_MIB)} ({f.rss['sotw']} MiB), delta {met(f.rss['delta'] <= RSS_GOAL_MIB)} "
        f"({f.rss['delta']} MiB).",
    ]
    return lines


def main():
    machine, translate, ads = load(sys.argv[1])
    if len(sys.argv) > 2:
        machine["command"] = sys.argv[2]
    print("\n".join(section(translate, ads, machine)))


if __name__ == "__main__":
    main()
