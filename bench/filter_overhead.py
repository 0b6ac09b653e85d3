#!/usr/bin/env python3
"""Filter overhead through one real Envoy (used by `make bench`).

One Envoy (1 worker) with one listener per variant, all in front of the same 3 backends (RING_HASH;
the backends are listeners of a second Envoy, see balance_envoy.py). Every request carries another
user both in `x-user-id` and in a `session` cookie (bench/users.lua):
  native           -- no filter; the route's hash_policy hashes x-user-id itself;
  none             -- no filter, no hash_policy (Envoy picks at random);
  noop             -- a proxy-wasm Rust SDK filter that does nothing (bench/noop-filter), route as native:
                      the floor any SDK filter costs;
  filter-header    -- our filter, keys [header x-user-id]; the route hashes x-affinity-key;
  filter-cookie    -- our filter, keys [cookie session];
  filter-fallback  -- our filter, keys [header x-session (never sent), cookie session]: the first source
                      misses, the second keys the request.
Rounds alternate the variants (the order reversed every other round), so machine noise hits them alike.
Per round and variant: saturating throughput (wrk -t1 -c16) and the front Envoy's CPU time per request
(utime + stime from /proc over the run, divided by the requests wrk completed); latency at a fixed rate
below saturation for native and filter-header.

Then, unless --instructions-seconds is 0, a second Envoy runs under valgrind's callgrind, which counts
the instructions the whole Envoy process executes: repeatable whatever else the machine is doing, so it
resolves what throughput on a shared machine cannot. Per variant, twice: counters zeroed, one wrk
connection for a few seconds, counters dumped; instructions / requests completed. Besides the variants
above it runs the probes (bench/probe-filter with host calls named in its configuration), which price
each kind of host call, and noop-trimmed (the do-nothing module with only the exports our filter keeps,
filter/exports.json) with trimmed-get-set (that module reading one header and writing one: the least an SDK
filter doing our filter's header work can cost), and the floors of any proxy-wasm filter, without an SDK
(bench/raw-filter.wat): raw-noop does nothing, raw-get-set reads one header and writes one.

Prints one JSON object: medians, and per-round ratios' medians to native and to noop.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from balance_envoy import Processes, free_port, start_upstreams, wait_http  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def listener(name, port, hash_header, wasm):
    """`wasm` is None or (module path, VM id, plugin configuration JSON)."""
    wasm_filter = ""
    if wasm:
        path, vm_id, configuration = wasm
        wasm_filter = f"""
          - name: envoy.filters.http.wasm
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
              config:
                name: {name}
                vm_config:
                  vm_id: {vm_id}
                  runtime: envoy.wasm.runtime.v8
                  code: {{local: {{filename: "{path}"}}}}
                configuration:
                  "@type": type.googleapis.com/google.protobuf.StringValue
                  value: '{configuration}'"""
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


def variants(wasm, probe_wasm):
    """The variants both measurements run: name -> (header the route hashes, wasm filter or None)."""
    ours = lambda keys: (os.path.abspath(wasm), "affinity", json.dumps({"keys": keys}))  # noqa: E731
    return {
        "native": ("x-user-id", None),
        "none": (None, None),
        "noop": ("x-user-id", (os.path.abspath(probe_wasm), "probe", "")),
        "filter-header": ("x-affinity-key", ours([{"header": "x-user-id"}])),
        "filter-cookie": ("x-affinity-key", ours([{"cookie": "session"}])),
        "filter-fallback": ("x-affinity-key", ours([{"header": "x-session"}, {"cookie": "session"}])),
    }


def probes(probe_wasm, trimmed_probe_wasm, raw_wasm):
    """The extra variants of the instruction count: the do-nothing module trimmed, host-call probes, and the
    SDK-less floors. Every module runs in one VM whatever its uses: V8 under valgrind fails to create more
    than a few VMs (and Envoy then passes requests without the filter)."""
    probe = lambda calls, hashed: (hashed, (os.path.abspath(probe_wasm), "probe", calls))  # noqa: E731
    trimmed = os.path.abspath(trimmed_probe_wasm)
    return {
        "noop-trimmed": ("x-user-id", (trimmed, "probe-trimmed", "")),
        "trimmed-get-set": ("x-affinity-key", (trimmed, "probe-trimmed", "get set")),
        "raw-noop": ("x-user-id", (os.path.abspath(raw_wasm), "raw", "")),
        "raw-get-set": ("x-affinity-key", (os.path.abspath(raw_wasm), "raw", "get set")),
        "probe-get": probe("get", "x-user-id"),
        "probe-absent": probe("absent", "x-user-id"),
        "probe-map": probe("map", "x-user-id"),
        "probe-count": probe("count", "x-user-id"),
        "probe-get-set": probe("get set", "x-affinity-key"),
        "probe-absent-get-set-count": probe("absent get set count", "x-affinity-key"),
    }


def bootstrap(ports, backend_ports, admin, setups):
    eps = "".join(f"""
        - endpoint: {{address: {{socket_address: {{address: 127.0.0.1, port_value: {p}}}}}}}"""
                  for p in backend_ports)
    return f"""
admin:
  address: {{socket_address: {{address: 127.0.0.1, port_value: {admin}}}}}
static_resources:
  listeners:{"".join(listener(name, ports[name], *setups[name]) for name in setups)}
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


def cpu_seconds(pid):
    """utime + stime of a process, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_envoy(procs, envoy_bin, workdir, name, ports, backend_ports, setups, wrapper=()):
    """One front Envoy (1 worker) with a listener per variant; returns (process, admin port)."""
    admin = free_port()
    path = os.path.join(workdir, f"{name}.yaml")
    with open(path, "w") as f:
        f.write(bootstrap(ports, backend_ports, admin, setups))
    envoy = procs.start([*wrapper, envoy_bin, "-c", path, "--concurrency", "1", "--use-dynamic-base-id",
                         "--log-level", "warning"], open(os.path.join(workdir, f"{name}.log"), "w"))
    return envoy, admin


def assert_no_failed_vm(log_path):
    """A listener whose wasm VM failed serves without its filter: what it measures would be meaningless."""
    with open(log_path) as f:
        failed = [line.strip() for line in f if "Wasm VM failed" in line]
    if failed:
        raise RuntimeError(f"a wasm VM failed ({failed[0]}): see {log_path}")


def instructions_per_request(procs, envoy_bin, workdir, backend_ports, setups, seconds):
    """name -> [instructions per request, per round] of a front Envoy run under callgrind."""
    ports = {name: free_port() for name in setups}
    out = os.path.join(workdir, "callgrind.out")
    envoy, admin = start_envoy(procs, envoy_bin, workdir, "callgrind", ports, backend_ports, setups, wrapper=(
        "valgrind", "--tool=callgrind", "--smc-check=all-non-file", f"--callgrind-out-file={out}"))
    deadline = time.time() + 600  # V8 and Envoy start slowly under valgrind (about 3 minutes here)
    while True:
        if envoy.poll() is not None:
            raise RuntimeError(f"Envoy under callgrind exited: see {workdir}/callgrind.log")
        try:
            wait_http(f"http://127.0.0.1:{admin}/ready", timeout=5)
            break
        except RuntimeError:
            if time.time() > deadline:
                raise
    for name in ports:  # warm-up: V8 compiles the modules (lazily, per function), connections open
        wrk(ports[name], 2, 1, 0)
    assert_no_failed_vm(os.path.join(workdir, "callgrind.log"))
    counts = {name: [] for name in ports}
    dumps = 0
    for _ in range(2):
        for name in ports:
            subprocess.run(["callgrind_control", "--zero", str(envoy.pid)], check=True, capture_output=True)
            _, requests, _ = wrk(ports[name], seconds, 1, 0)
            subprocess.run(["callgrind_control", "--dump", str(envoy.pid)], check=True, capture_output=True)
            dumps += 1
            with open(f"{out}.{dumps}") as f:
                total = next(int(line.split()[1]) for line in f if line.startswith("summary:"))
            counts[name].append(total / requests)
    return counts


def wrk(port, seconds, connections, delay_ms):
    env = dict(os.environ, DELAY_MS=str(delay_ms))
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s",
                          os.path.join(HERE, "users.lua"), f"http://127.0.0.1:{port}/"],
                         env=env, check=True, capture_output=True, text=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    pct = {p: to_us(v) for p, v in re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", out, re.M)}
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        raise RuntimeError(f"port {port}: {non2xx.group(1)} non-2xx responses\n{out}")
    return rps, requests, pct


def per_round_median(values, baseline):
    return statistics.median(a / b for a, b in zip(values, baseline))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--envoy", required=True)
    parser.add_argument("--wasm", required=True)
    parser.add_argument("--probe-wasm", required=True, help="bench/probe-filter's module")
    parser.add_argument("--trimmed-probe-wasm", required=True,
                        help="the same with only filter/exports.json's exports (wasm-metadce)")
    parser.add_argument("--raw-wasm", required=True, help="bench/raw-filter.wat, assembled")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--instructions-seconds", type=int, default=4,
                        help="seconds of load per variant and round under callgrind; 0 skips the count")
    args = parser.parse_args()
    procs = Processes()
    workdir = tempfile.mkdtemp(prefix="bench-filter-")
    try:
        backend_ports = start_upstreams(procs, args.envoy, 3, workdir)
        setups = variants(args.wasm, args.probe_wasm)
        ports = {name: free_port() for name in setups}
        envoy, admin = start_envoy(procs, args.envoy, workdir, "front", ports, backend_ports, setups)
        wait_http(f"http://127.0.0.1:{admin}/ready")
        for name in ports:  # warm-up: V8 compiles the modules, connections open
            wrk(ports[name], 1, 4, 0)
        assert_no_failed_vm(os.path.join(workdir, "front.log"))
        throughput = {name: [] for name in ports}
        cpu_us = {name: [] for name in ports}
        latency = ("native", "filter-header")
        p50 = {name: [] for name in latency}
        p99 = {name: [] for name in latency}
        for round_index in range(args.rounds):
            order = list(ports) if round_index % 2 == 0 else list(reversed(ports))
            for name in order:
                before = cpu_seconds(envoy.pid)
                rps, requests, _ = wrk(ports[name], args.seconds, 16, 0)
                throughput[name].append(rps)
                cpu_us[name].append((cpu_seconds(envoy.pid) - before) * 1e6 / requests)
            for name in latency:
                # 4 connections, 5 ms pause per connection between requests: ~800 req/s at most.
                _, _, pct = wrk(ports[name], args.seconds, 4, 5)
                p50[name].append(pct["50"])
                p99[name].append(pct["99"])
        envoy.terminate()
        envoy.wait()
        result = {
            "rounds": args.rounds, "seconds_per_run": args.seconds,
            "variants": list(ports),
            "throughput_rps_median": {k: round(statistics.median(v)) for k, v in throughput.items()},
            "throughput_runs": {k: [round(x) for x in v] for k, v in throughput.items()},
            "over_native": {k: round(per_round_median(v, throughput["native"]), 3) for k, v in throughput.items()},
            "over_noop": {k: round(per_round_median(v, throughput["noop"]), 3) for k, v in throughput.items()},
            "cpu_us_per_request_median": {k: round(statistics.median(v), 1) for k, v in cpu_us.items()},
            "cpu_us_added_over_noop": {k: round(statistics.median(a - b for a, b in zip(v, cpu_us["noop"])), 1)
                                       for k, v in cpu_us.items()},
            "p50_us_median": {k: round(statistics.median(v)) for k, v in p50.items()},
            "p99_us_median": {k: round(statistics.median(v)) for k, v in p99.items()},
            "p99_us_runs": {k: [round(x) for x in v] for k, v in p99.items()},
            "p99_added_us_filter_vs_native": round(statistics.median(
                a - b for a, b in zip(p99["filter-header"], p99["native"]))),
        }
        if args.instructions_seconds > 0:
            counted = instructions_per_request(procs, args.envoy, workdir, backend_ports,
                                               {**setups, **probes(args.probe_wasm, args.trimmed_probe_wasm, args.raw_wasm)},
                                               args.instructions_seconds)
            median = {k: statistics.median(v) for k, v in counted.items()}
            result["instructions_seconds"] = args.instructions_seconds
            result["instructions_per_request"] = {k: [round(x) for x in v] for k, v in counted.items()}
            # Where the CPU is the limit, throughput goes as 1 / instructions per request.
            result["instructions_noop_over"] = {k: round(median["noop"] / v, 3) for k, v in median.items()}
            result["instructions_added_over_noop"] = {k: round(v - median["noop"]) for k, v in median.items()}
        print(json.dumps(result), flush=True)
    finally:
        procs.stop_all()


if __name__ == "__main__":
    sys.exit(main())
