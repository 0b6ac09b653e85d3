#!/usr/bin/env python3
"""The agent serving a large snapshot to real Envoys (used by `make bench`).

Config: one listener routing to S services of E endpoints each (ring hash, default sizes; the
endpoints are never dialled: no health checks). Measures, with the real `xds-agent serve` and
real Envoys (SotW and delta, bootstrapped by `xds-agent bootstrap`):
  - agent start to /readyz (load, validate, translate, encode the snapshot), and its RSS;
  - time until the first Envoy ACKs every type, and the bytes it received from the agent
    (Envoy's `cluster.xds-agent.upstream_cx_rx_bytes_total`: gRPC + HTTP/2 framing included);
  - one endpoint changed in the config file: time from writing the file until every Envoy ACKed
    the new EDS version (agent /debug/nodes; split into file write -> new snapshot, which includes
    the agent's file-watch interval, and new snapshot -> all ACKed; polled every 10 ms), and the
    bytes each Envoy received for it
    (SotW resends the whole EDS type; delta sends the one ClusterLoadAssignment);
  - agent RSS while serving all the Envoys.
Everything listens on 127.0.0.1; every process started here is stopped by its pid on exit.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from balance_envoy import Processes, free_port, wait_http  # noqa: E402

TYPES = ["lds", "rds", "cds", "eds"]


def config(services, endpoints, listen, changed_port=None):
    lines = ["listeners:", "  - name: ingress", f"    address: 127.0.0.1:{listen}", "    routes:"]
    for s in range(services):
        lines += [f"      - prefix: /s{s}/", f"        service: s{s}"]
    lines.append("services:")
    for s in range(services):
        lines += [f"  - name: s{s}", "    endpoints:"]
        for e in range(endpoints):
            port = 20000 + e
            if s == 0 and e == 0 and changed_port:
                port = changed_port
            lines.append(f"      - address: 10.{s // 250}.{s % 250}.{e + 1}:{port}")
        lines += ["    loadBalancer:", "      ringHash: {hashFunction: xxHash}"]
    return "\n".join(lines) + "\n"


def get_json(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())


def envoy_stat(admin, name):
    with urllib.request.urlopen(f"http://127.0.0.1:{admin}/stats?filter=^{name}$", timeout=5) as r:
        for line in r.read().decode().splitlines():
            key, _, value = line.partition(": ")
            if key == name:
                return int(value)
    return 0


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def acked(agent_debug, nodes, types):
    snapshot = get_json(f"http://127.0.0.1:{agent_debug}/debug/snapshot")
    status = get_json(f"http://127.0.0.1:{agent_debug}/debug/nodes")
    return all(status.get(n, {}).get("types", {}).get(t, {}).get("acked_version")
               == snapshot["types"][t]["version"] for n in nodes for t in types)


def wait(predicate, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.01)
    raise RuntimeError(f"timed out waiting for {what}")


def write_atomically(path, text):
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.rename(path + ".tmp", path)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--agent", required=True)
    parser.add_argument("--envoy", required=True)
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--endpoints", type=int, default=10)
    parser.add_argument("--envoys", type=int, default=2, help="per protocol (SotW and delta)")
    args = parser.parse_args()
    procs = Processes()
    workdir = tempfile.mkdtemp(prefix="bench-agent-")
    result = {"services": args.services, "endpoints": args.endpoints, "envoys_per_protocol": args.envoys}
    try:
        path = os.path.join(workdir, "config.yaml")
        listen = free_port()
        write_atomically(path, config(args.services, args.endpoints, listen))
        result["config_bytes"] = os.path.getsize(path)
        grpc, admin, debug = free_port(), free_port(), free_port()
        started = time.time()
        agent = procs.start([args.agent, "serve", "--config", path, "--grpc", f"127.0.0.1:{grpc}",
                             "--admin", f"127.0.0.1:{admin}", "--debug-admin", f"127.0.0.1:{debug}"], open(os.path.join(workdir, "agent.log"), "w"))
        wait_http(f"http://127.0.0.1:{admin}/readyz", timeout=120)
        result["agent_ready_ms"] = round((time.time() - started) * 1000)
        result["agent_rss_idle_mib"] = round(rss_kib(agent.pid) / 1024, 1)

        envoys = []  # (node, admin port, protocol)
        for protocol in ("sotw", "delta"):
            for i in range(args.envoys):
                node, envoy_admin = f"{protocol}-{i}", free_port()
                extra = ["--delta"] if protocol == "delta" else []
                yaml = subprocess.run([args.agent, "bootstrap", "--node-id", node, "--xds", f"127.0.0.1:{grpc}",
                                       "--admin-port", str(envoy_admin)] + extra,
                                      check=True, capture_output=True, text=True).stdout
                bootstrap = os.path.join(workdir, f"{node}.yaml")
                with open(bootstrap, "w") as f:
                    f.write(yaml)
                started = time.time()
                procs.start([args.envoy, "-c", bootstrap, "--concurrency", "1", "--use-dynamic-base-id",
                             "--log-level", "warning"], open(os.path.join(workdir, f"{node}.log"), "w"))
                wait(lambda: acked(debug, [node], TYPES), 120, f"{node} to ACK the snapshot")
                if i == 0:
                    result[f"{protocol}_initial_ack_ms"] = round((time.time() - started) * 1000)
                    result[f"{protocol}_initial_bytes"] = envoy_stat(envoy_admin, "cluster.xds-agent.upstream_cx_rx_bytes_total")
                envoys.append((node, envoy_admin, protocol))
        result["agent_rss_serving_mib"] = round(rss_kib(agent.pid) / 1024, 1)

        before = {node: envoy_stat(port, "cluster.xds-agent.upstream_cx_rx_bytes_total") for node, port, _ in envoys}
        eds_before = get_json(f"http://127.0.0.1:{debug}/debug/snapshot")["types"]["eds"]["version"]
        started = time.time()
        write_atomically(path, config(args.services, args.endpoints, listen, changed_port=29999))
        wait(lambda: get_json(f"http://127.0.0.1:{debug}/debug/snapshot")["types"]["eds"]["version"] != eds_before,
             60, "the agent to reload")
        reloaded = time.time()
        wait(lambda: acked(debug, [n for n, _, _ in envoys], ["eds"]), 60, "every Envoy to ACK the change")
        done = time.time()
        result["change_to_all_acked_ms"] = round((done - started) * 1000)
        result["file_write_to_new_snapshot_ms"] = round((reloaded - started) * 1000)
        result["new_snapshot_to_all_acked_ms"] = round((done - reloaded) * 1000)
        time.sleep(0.5)  # let the byte counters settle
        for protocol in ("sotw", "delta"):
            deltas = [envoy_stat(port, "cluster.xds-agent.upstream_cx_rx_bytes_total") - before[node]
                      for node, port, p in envoys if p == protocol]
            result[f"{protocol}_change_bytes"] = max(deltas)
        if result["delta_change_bytes"]:
            result["sotw_over_delta_change_bytes"] = round(result["sotw_change_bytes"] / result["delta_change_bytes"], 1)
        print(json.dumps(result), flush=True)
    finally:
        procs.stop_all()


if __name__ == "__main__":
    sys.exit(main())
