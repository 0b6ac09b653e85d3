#!/usr/bin/env python3
"""Filter overhead through one real Envoy (used by `make bench`).

One Envoy (1 worker) with three listeners in front of the same 3 backends (RING_HASH; the
backends are listeners of a second Envoy, see balance_envoy.py):
  filter  -- our wasm filter derives the key from x-user-id and writes x-affinity-key; the route
             hashes x-affinity-key;
  native  -- no filter; the route's hash_policy hashes the client's x-user-id header itself;
  none    -- no filter, no hash_policy (Envoy picks at random).
Rounds alternate the three, so machine noise hits them alike. Per round and variant: saturating
throughput (wrk -t1 -c16) and latency at a fixed rate below saturation (wrk with a per-connection
delay). Each request carries a different user (bench/users.lua). Prints one JSON object with the
medians and their ratios to native.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from balance_envoy import Processes, free_port, start_upstreams, wait_http  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def listener(name, port, hash_header, wasm):
    wasm_filter = ""
    if wasm:
        wasm_filter = f"""
          - name: envoy.filters.http.wasm
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
              config:
                name: affinity
                vm_config:
                  vm_id: affinity
                  runtime: envoy.wasm.runtime.v8
                  code: {{local: {{filename: "{wasm}"}}}}
                configuration:
                  "@type": type.googleapis.com/google.protobuf.StringValue
                  value: '{{"keys":[{{"header":"x-user-id"}}]}}'"""
    hash_policy = f", hash_policy: [{{header: {{header_name: {hash_header}}}}}]" if hash_header else ""
    return f"""
  - name: {name}
    address: {{socket_address: {{address: 127.0.0.1, port_value: {port}}}}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: {name}
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {{prefix: "/"}}
                route: {{cluster: backends{hash_policy}}}
          http_filters:{wasm_filter}
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"""


def bootstrap(ports, backend_ports, admin, wasm):
    eps = "".join(f"""
        - endpoint: {{address: {{socket_address: {{address: 127.0.0.1, port_value: {p}}}}}}}"""
                  for p in backend_ports)
    return f"""
admin:
  address: {{socket_address: {{address: 127.0.0.1, port_value: {admin}}}}}
static_resources:
  listeners:{listener("filter", ports["filter"], "x-affinity-key", wasm)}{listener("native", ports["native"], "x-user-id", None)}{listener("none", ports["none"], None, None)}
  clusters:
  - name: backends
    type: STATIC
    connect_timeout: 1s
    lb_policy: RING_HASH
    load_assignment:
      cluster_name: backends
      endpoints:
      - lb_endpoints:{eps}
"""


def to_us(text):
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 1, "ms": 1000, "s": 1_000_000}[unit]


def wrk(port, seconds, connections, delay_ms):
    env = dict(os.environ, DELAY_MS=str(delay_ms))
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s",
                          os.path.join(HERE, "users.lua"), f"http://127.0.0.1:{port}/"],
                         env=env, check=True, capture_output=True, text=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    pct = {p: to_us(v) for p, v in re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", out, re.M)}
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        raise RuntimeError(f"port {port}: {non2xx.group(1)} non-2xx responses\n{out}")
    return rps, pct


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--envoy", required=True)
    parser.add_argument("--wasm", required=True)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=5)
    args = parser.parse_args()
    procs = Processes()
    workdir = tempfile.mkdtemp(prefix="bench-filter-")
    try:
        backend_ports = start_upstreams(procs, args.envoy, 3, workdir)
        ports = {name: free_port() for name in ("filter", "native", "none")}
        admin = free_port()
        path = os.path.join(workdir, "envoy.yaml")
        with open(path, "w") as f:
            f.write(bootstrap(ports, backend_ports, admin, os.path.abspath(args.wasm)))
        procs.start([args.envoy, "-c", path, "--concurrency", "1", "--use-dynamic-base-id",
                     "--log-level", "warning"], open(os.path.join(workdir, "envoy.log"), "w"))
        wait_http(f"http://127.0.0.1:{admin}/ready")
        for name in ports:  # warm-up: V8 compiles the module, connections open
            wrk(ports[name], 1, 4, 0)
        throughput = {name: [] for name in ports}
        p99 = {name: [] for name in ports}
        p50 = {name: [] for name in ports}
        for _ in range(args.rounds):
            for name in ports:
                rps, _ = wrk(ports[name], args.seconds, 16, 0)
                throughput[name].append(rps)
            for name in ports:
                # 4 connections, 5 ms pause per connection between requests: ~800 req/s at most.
                _, pct = wrk(ports[name], args.seconds, 4, 5)
                p50[name].append(pct["50"])
                p99[name].append(pct["99"])
        med = {name: statistics.median(v) for name, v in throughput.items()}
        # Ratios within a round (runs seconds apart), then the median over rounds.
        ratio = {name: statistics.median(a / b for a, b in zip(throughput[name], throughput["native"]))
                 for name in ports}
        added_p99 = statistics.median(a - b for a, b in zip(p99["filter"], p99["native"]))
        result = {
            "rounds": args.rounds, "seconds_per_run": args.seconds,
            "throughput_rps_median": {k: round(v) for k, v in med.items()},
            "throughput_runs": {k: [round(x) for x in v] for k, v in throughput.items()},
            "filter_over_native": round(ratio["filter"], 3),
            "none_over_native": round(ratio["none"], 3),
            "p50_us_median": {k: round(statistics.median(v)) for k, v in p50.items()},
            "p99_us_median": {k: round(statistics.median(v)) for k, v in p99.items()},
            "p99_us_runs": {k: [round(x) for x in v] for k, v in p99.items()},
            "p99_added_us_filter_vs_native": round(added_p99),
        }
        print(json.dumps(result), flush=True)
    finally:
        procs.stop_all()


if __name__ == "__main__":
    sys.exit(main())
