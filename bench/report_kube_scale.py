#!/usr/bin/env python3
"""Renders the Kubernetes-at-scale results of bench/kube_scale.sh (used by bench/report.py).

Alone: `python3 bench/report_kube_scale.py RESULT_DIR [COMMAND]` prints the section with its own machine
line (for a run of bench/kube_scale.sh without the rest of `make bench`).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from report_format import jsonl, med, met, num, read_env  # noqa: E402

CHANGE_GOAL_MS, RSS_GOAL_MIB = 1000, 64


def load(out):
    return read_env(os.path.join(out, "kube_scale.env")), jsonl(os.path.join(out, "kube_load.jsonl"))


def ratio(a, b):
    return f"{a / b:,.2f}×" if b else "n/a"


class Figures:
    """The runs by protocol and the medians the goals are judged on."""

    def __init__(self, rows):
        self.sotw = [r for r in rows if r["protocol"] == "sotw"]
        self.delta = [r for r in rows if r["protocol"] == "delta"]
        self.by_protocol = (("SotW", self.sotw), ("delta", self.delta))
        first = self.sotw[0]
        self.streams, self.slices = first["streams"], first["slices"]
        self.endpoints, self.per_slice = first["endpoints"], first["endpoints_per_slice"]
        self.change_ms = {p: med(r, "change_to_all_acked_ms") for p, r in self.by_protocol}
        self.rss = {p: med(r, "agent_rss_serving_mib") for p, r in self.by_protocol}
        self.bytes = {p: med(r, "change_bytes_per_stream_median") for p, r in self.by_protocol}


def summary(rows):
    """The summary bullet line."""
    f = Figures(rows)
    return [
        f"- Agent from Kubernetes, {f.endpoints:,} endpoints in {f.slices} EndpointSlices of one Service, "
        f"{f.streams} ADS streams: one slice changed → every stream ACKed in {num(f.change_ms['SotW'])} ms SotW / "
        f"{num(f.change_ms['delta'])} ms delta (goal ≤ {CHANGE_GOAL_MS:,} ms: SotW {met(f.change_ms['SotW'] <= CHANGE_GOAL_MS)}, "
        f"delta {met(f.change_ms['delta'] <= CHANGE_GOAL_MS)}); {f.bytes['SotW']:,.0f} B SotW / {f.bytes['delta']:,.0f} B "
        f"delta per stream for it; agent RSS {f.rss['SotW']} / {f.rss['delta']} MiB (goal ≤ {RSS_GOAL_MIB} MiB: "
        f"SotW {met(f.rss['SotW'] <= RSS_GOAL_MIB)}, delta {met(f.rss['delta'] <= RSS_GOAL_MIB)}); agent start → ready "
        f"{num(med(f.sotw + f.delta, 'agent_ready_ms'))} ms.",
    ]


def section(rows, machine=None):
    """The section's markdown lines; `machine` (kube_scale.env) adds the run's own machine line."""
    f = Figures(rows)
    n = len(f.sotw)
    lines = [f"## 5b. Agent at scale from Kubernetes: {f.endpoints:,} endpoints in {f.slices} EndpointSlices, "
             f"{f.streams} ADS streams\n"]
    if machine:
        lines.append(
            f"Run alone (not within a whole `make bench`): `{machine.get('command', 'bench/kube_scale.sh')}`, "
            f"{machine['runs']} runs of each protocol, {machine['seconds']} s; `nproc` = {machine['nproc']}, CPU: "
            f"{machine['cpu']}; load average {machine['loadavg_start']} at start, {machine['loadavg_end']} at the end "
            f"(shared machine); date {machine['date']}.\n")
    lines += [
        f"Command: `bench/kube_scale.sh` (part of `make bench`; {n} runs of each protocol, medians of the runs), i.e. "
        f"`target/release/examples/ads_load --source kubernetes --kube-fake target/release/examples/kube_fake "
        f"--slices {f.slices} --endpoints {f.per_slice} --protocol sotw|delta --streams {f.streams}`. "
        "The API server is the e2e crate's fake (`tests/examples/kube_fake.rs`, a process of its own speaking the "
        f"Kubernetes list/watch API over HTTP on 127.0.0.1) holding the Service `shop/web` and {f.slices} "
        f"EndpointSlices of {f.per_slice} ready endpoints (one pod each; addresses are never dialled). The real "
        "`xds-agent serve --kubeconfig` watches it (kube-rs) and serves the Service as one service `web`: one "
        f"cluster whose one ClusterLoadAssignment holds all {f.endpoints:,} endpoints. The {f.streams} ADS streams are "
        "section 5's client (one gRPC connection each, subscribing and ACKing like Envoy). Then, "
        f"{f.sotw[0]['edits']} times, one endpoint of one slice moves to a new address (the fake's `apply` of that "
        "slice) and the time is taken until every stream has received AND ACKed the new EDS version, split where "
        "the new version is first seen: at the agent's `/debug/snapshot` (polled every 5 ms) or by a stream, "
        "whichever is first (a busy agent can answer its admin API after its first push; the row in parentheses "
        "is `/debug/snapshot` alone). The part before the split holds the "
        "watch event, the agent's 100 ms coalescing of cluster changes, composing and translating. Median of the "
        "edits per run, median of the runs. Bytes are gRPC messages (protobuf + 5-byte prefix) per stream, median "
        "over the streams. RSS is the agent's `VmRSS` once every stream has ACKed the whole snapshot. The fake, the "
        "client and the agent share the same 2 cores.\n",
        "| measure | SotW: median (runs) | delta: median (runs) |",
        "|---|---:|---:|",
    ]
    table = [
        (f"fake API server: Service + {f.slices} slices applied", "kube_fake_load_ms", " ms"),
        (f"agent start → `/readyz` 200 (every watch listed, {f.endpoints:,} endpoints in the snapshot)",
         "agent_ready_ms", " ms"),
        (f"{f.streams} streams opened → every stream ACKed every type", "initial_sync_all_streams_ms", " ms"),
        ("bytes per stream for the whole snapshot", "initial_bytes_per_stream", " B"),
        ("agent RSS when ready, before any stream", "agent_rss_idle_mib", " MiB"),
        (f"agent RSS serving {f.streams} streams (goal ≤ {RSS_GOAL_MIB} MiB)", "agent_rss_serving_mib", " MiB"),
        ("agent RSS after the edits", "agent_rss_after_edits_mib", " MiB"),
        ("agent peak RSS (`VmHWM`)", "agent_peak_rss_mib", " MiB"),
        (f"one slice changed: apply → every stream ACKed (goal ≤ {CHANGE_GOAL_MS:,} ms)", "change_to_all_acked_ms", " ms"),
        ("… apply → new EDS version in the agent's snapshot", "change_to_snapshot_ms", " ms"),
        ("… new snapshot → every stream ACKed", "snapshot_to_all_acked_ms", " ms"),
        ("(apply → `/debug/snapshot` answered with the new version)", "change_to_debug_snapshot_ms", " ms"),
        ("… apply → first stream received it", "change_to_first_received_ms", " ms"),
        ("… first stream received → every stream ACKed", "first_received_to_all_acked_ms", " ms"),
        ("the fake's `apply` of the slice itself", "apply_ms", " ms"),
        ("bytes per stream for that change", "change_bytes_per_stream_median", " B"),
    ]
    for name, key, unit in table:
        cells = [f"{num(med(r, key))}{unit} ({', '.join(num(x[key]) for x in r)})" for _, r in f.by_protocol]
        lines.append(f"| {name} | {cells[0]} | {cells[1]} |")
    lines += [
        "",
        f"Goals: a slice change → every stream ACKed ≤ {CHANGE_GOAL_MS:,} ms (issue 11): SotW "
        f"{met(f.change_ms['SotW'] <= CHANGE_GOAL_MS)} ({num(f.change_ms['SotW'])} ms), delta "
        f"{met(f.change_ms['delta'] <= CHANGE_GOAL_MS)} ({num(f.change_ms['delta'])} ms). Agent RSS ≤ {RSS_GOAL_MIB} MiB "
        f"serving {f.streams} streams (issue 13): SotW {met(f.rss['SotW'] <= RSS_GOAL_MIB)} ({f.rss['SotW']} MiB), delta "
        f"{met(f.rss['delta'] <= RSS_GOAL_MIB)} ({f.rss['delta']} MiB). Bytes per stream for the change: "
        f"{f.bytes['SotW']:,.0f} B SotW vs {f.bytes['delta']:,.0f} B delta ({ratio(f.bytes['SotW'], f.bytes['delta'])}): "
        "xDS's unit is the resource and one Service is one cluster, so its one ClusterLoadAssignment of "
        f"{f.endpoints:,} endpoints goes out whole over either protocol.",
    ]
    return lines


def main():
    machine, rows = load(sys.argv[1])
    if len(sys.argv) > 2:
        machine["command"] = sys.argv[2]
    print("\n".join(section(rows, machine)))


if __name__ == "__main__":
    main()
