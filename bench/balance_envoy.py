#!/usr/bin/env python3
"""Balance and churn through a real Envoy (used by `make bench`).

Starts N backends and one Envoy (static bootstrap, 1 worker) with one cluster per load
balancer setting (ring hash at Istio's default 1024, ring hash at the agent's auto size, Maglev
65537), sends keys k0..k{KEYS-1} once each with wrk (bench/keys.lua records which backend answered
each key), then restarts Envoy without the last backend and sends them again.

The backends are N listeners of one more Envoy process ("upstream Envoy") answering every request
with `x-backend: bN` and echoing the key in `x-affinity-key-seen`: one light process for 100
backends. (The demo backend writes its response in several small writes without TCP_NODELAY and
stalls ~40 ms per request on Nagle/delayed ACK, which would make the benchmark measure that.) Prints one JSON
object per setting: max/mean of the real per-backend key counts, the fraction of keys that really
moved, and how many keys the predictor placed on the same backend as Envoy did.

Everything listens on 127.0.0.1; every process started here is stopped by its pid on exit.
"""
import argparse
import collections
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
SETTINGS = [("ring1024", "ring:1024"), ("ringauto", "ring:auto"), ("maglev", "maglev:65537")]


_HANDED_OUT = set()


def free_port():
    """A free 127.0.0.1 port not handed out before by this process (the kernel may offer the same
    ephemeral port twice once the probing socket is closed; 100 upstream listeners met that)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


def wait_http(url, timeout=30.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} not ready after {timeout}s")


def auto_ring(n):
    # recommended_min_ring_size for n equal hosts: 2048 entries per host, within 1024..=8388608.
    return min(max(2048 * n, 1024), 8388608)


def policy(setting, n):
    kind, size = setting.split(":")
    if kind == "ring":
        size = auto_ring(n) if size == "auto" else int(size)
        return ("envoy.load_balancing_policies.ring_hash",
                "type.googleapis.com/envoy.extensions.load_balancing_policies.ring_hash.v3.RingHash",
                f"minimum_ring_size: {size}\n              maximum_ring_size: 8388608")
    return ("envoy.load_balancing_policies.maglev",
            "type.googleapis.com/envoy.extensions.load_balancing_policies.maglev.v3.Maglev",
            f"table_size: {size}")


def upstream_bootstrap(ports, admin):
    listeners = "".join(f"""
  - name: b{i}
    address: {{socket_address: {{address: 127.0.0.1, port_value: {port}}}}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: b{i}
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {{prefix: "/"}}
                direct_response: {{status: 200, body: {{inline_string: "ok"}}}}
                response_headers_to_add:
                - header: {{key: x-backend, value: b{i}}}
                - header: {{key: x-affinity-key-seen, value: "%REQ(x-affinity-key)%"}}
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"""
                        for i, port in enumerate(ports))
    return f"""
admin:
  address: {{socket_address: {{address: 127.0.0.1, port_value: {admin}}}}}
static_resources:
  listeners:{listeners}
"""


def start_upstreams(procs, envoy_bin, count, workdir):
    """N backends as listeners of one upstream Envoy; returns their ports."""
    ports, admin = [free_port() for _ in range(count)], free_port()
    path = os.path.join(workdir, "upstream.yaml")
    with open(path, "w") as f:
        f.write(upstream_bootstrap(ports, admin))
    procs.start([envoy_bin, "-c", path, "--concurrency", "1", "--use-dynamic-base-id",
                 "--log-level", "warning"], open(os.path.join(workdir, "upstream.log"), "w"))
    wait_http(f"http://127.0.0.1:{admin}/ready")
    return ports


def bootstrap(ports, listen, admin):
    routes, clusters = [], []
    for name, setting in SETTINGS:
        routes.append(f"""
              - match: {{prefix: "/{name}/"}}
                route: {{cluster: {name}, hash_policy: [{{header: {{header_name: x-affinity-key}}}}]}}""")
        ext, typ, body = policy(setting, len(ports))
        eps = "".join(f"""
        - endpoint: {{address: {{socket_address: {{address: 127.0.0.1, port_value: {p}}}}}}}""" for p in ports)
        clusters.append(f"""
  - name: {name}
    type: STATIC
    connect_timeout: 1s
    load_balancing_policy:
      policies:
      - typed_extension_config:
          name: {ext}
          typed_config:
            "@type": {typ}
            {body.replace(chr(10) + '              ', chr(10) + '            ')}
    load_assignment:
      cluster_name: {name}
      endpoints:
      - lb_endpoints:{eps}""")
    return f"""
admin:
  address: {{socket_address: {{address: 127.0.0.1, port_value: {admin}}}}}
static_resources:
  listeners:
  - name: ingress
    address: {{socket_address: {{address: 127.0.0.1, port_value: {listen}}}}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ingress
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:{''.join(routes)}
              - match: {{prefix: "/"}}
                direct_response: {{status: 204}}
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:{''.join(clusters)}
"""


class Processes:
    def __init__(self):
        self.procs = []

    def start(self, args, log):
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        self.procs.append(proc)
        return proc

    def stop(self, proc):
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def stop_all(self):
        for proc in reversed(self.procs):
            self.stop(proc)


def run_envoy(procs, envoy_bin, ports, workdir, tag):
    listen, admin = free_port(), free_port()
    path = os.path.join(workdir, f"envoy-{tag}.yaml")
    with open(path, "w") as f:
        f.write(bootstrap(ports, listen, admin))
    log = open(os.path.join(workdir, f"envoy-{tag}.log"), "w")
    proc = procs.start([envoy_bin, "-c", path, "--concurrency", "1", "--use-dynamic-base-id",
                        "--log-level", "warning"], log)
    wait_http(f"http://127.0.0.1:{admin}/ready")
    return proc, listen


def send_keys(listen, name, keys, workdir, tag):
    out = os.path.join(workdir, f"{tag}-{name}.txt")
    env = dict(os.environ, KEYS=str(keys), OUT=out)
    # wrk stops itself after the last response; -d only bounds a stuck run.
    subprocess.run(["wrk", "-t1", "-c8", f"-d{30 + keys // 500}s", "--timeout", "10s", "-s",
                    os.path.join(HERE, "keys.lua"), f"http://127.0.0.1:{listen}", "--", f"/{name}/x"],
                   env=env, check=True, stdout=subprocess.DEVNULL)
    with open(out) as f:
        mapping = dict(line.split() for line in f if line.strip())
    if len(mapping) != keys:
        raise RuntimeError(f"{tag}/{name}: {len(mapping)} of {keys} keys answered")
    return mapping


def predicted(predictor, addresses, setting, keys, workdir, tag):
    dump = os.path.join(workdir, f"{tag}-{setting.replace(':', '')}-predicted.txt")
    subprocess.run([predictor, "--hosts", ",".join(addresses), "--lb", setting, "--keys", str(keys),
                    "--dump", dump], check=True, stdout=subprocess.DEVNULL)
    with open(dump) as f:
        return dict(line.split() for line in f if line.strip())


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--hosts", type=int, required=True)
    parser.add_argument("--keys", type=int, default=100000)
    parser.add_argument("--envoy", required=True)
    parser.add_argument("--predictor", required=True)
    args = parser.parse_args()
    procs = Processes()
    workdir = tempfile.mkdtemp(prefix="bench-balance-")
    try:
        ports = start_upstreams(procs, args.envoy, args.hosts, workdir)
        addr_of_name = {f"b{i}": f"127.0.0.1:{p}" for i, p in enumerate(ports)}
        addresses = [f"127.0.0.1:{p}" for p in ports]
        runs = {}
        for tag, live_ports in (("before", ports), ("after", ports[:-1])):
            envoy, listen = run_envoy(procs, args.envoy, live_ports, workdir, tag)
            for name, _ in SETTINGS:
                started = time.time()
                runs[(tag, name)] = send_keys(listen, name, args.keys, workdir, tag)
                runs[(tag, name, "seconds")] = time.time() - started
            procs.stop(envoy)
        for name, setting in SETTINGS:
            before, after = runs[("before", name)], runs[("after", name)]
            counts = collections.Counter(before.values())
            mean = args.keys / args.hosts
            moved = sum(1 for k in before if before[k] != after[k])
            removed = f"b{args.hosts - 1}"
            necessary = sum(1 for k in before if before[k] == removed)
            prediction = predicted(args.predictor, addresses, setting, args.keys, workdir, "before")
            agree = sum(1 for k, b in before.items() if addr_of_name.get(b) == prediction.get(k))
            print(json.dumps({
                "lb": setting, "hosts": args.hosts, "keys": args.keys,
                "max_over_mean": round(max(counts.values()) / mean, 4),
                "moved": round(moved / args.keys, 5), "necessary": round(necessary / args.keys, 5),
                "predictor_agrees": agree,
                "seconds": round(runs[("before", name, "seconds")] + runs[("after", name, "seconds")], 1),
            }), flush=True)
    finally:
        procs.stop_all()


if __name__ == "__main__":
    sys.exit(main())
