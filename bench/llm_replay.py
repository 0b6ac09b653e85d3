#!/usr/bin/env python3
"""LLM trace replay through real Envoys (used by `make bench-llm`).

Sends the requests written by `llm-requests` (the first K of a Mooncake-format trace, rendered as
OpenAI chat bodies) at their trace arrival times divided by --compress, spread round robin over
E Envoys (request i to Envoy i mod E), to 8 `demo-backend --llm` processes (simulated vLLM prefix
caches). For every strategy the backends and Envoys are started fresh (cold caches), with a static
bootstrap:
  round-robin, least-request   -- the cluster's lb_policy, no filter;
  ours-*                       -- our wasm filter (allow_on_headers_stop_iteration: true) with the
                                  strategy's key config writes x-affinity-key; the route hashes it;
                                  the cluster is ring hash with the agent's default minimum ring size
                                  (2048 x backends), with hash_balance_factor 125 for -bounded.
The backends listen on 127.0.0.1:20000..20007 (--backend-base-port), the host addresses the simulator
gives Envoy's ring, so both build the same ring. The backends wait --prefill-ms-per-token / compress per uncached prompt token and
--decode-ms-per-token / compress per completion token, so requests stay in flight as long (in
trace time) as in the simulator. Reports per strategy and Envoy count what the simulator reports:
token-weighted prefix-cache hit rate (from the backends' vllm:prefix_cache_* counters), max/mean
requests per backend (vllm:request_success), the share of continuations that reached another
backend than the request they continue (x-backend), plus errors. One JSON object per line.

Everything listens on 127.0.0.1; every process started here is stopped by its pid on exit.
"""
import argparse
import concurrent.futures
import http.client
import json
import os
import re
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from balance_envoy import Processes, free_port, wait_http  # noqa: E402

BACKENDS = 8
RING_SIZE = 2048 * BACKENDS  # affinity_predictor::min_ring_size_for_weights for equal weights
STRATEGIES = {
    "round-robin": {"lb": "ROUND_ROBIN"},
    "least-request": {"lb": "LEAST_REQUEST"},
    "ours-json-body-user": {"keys": '{"keys":[{"jsonBody":"/user"}]}'},
    "ours-json-body-user-bounded": {"keys": '{"keys":[{"jsonBody":"/user"}]}', "factor": 125},
    "ours-prompt-prefix-conversation": {"keys": '{"keys":[{"promptPrefix":{"scope":"conversation"}}]}'},
    "ours-prompt-prefix-conversation-bounded": {
        "keys": '{"keys":[{"promptPrefix":{"scope":"conversation"}}]}', "factor": 125},
}


def envoy_bootstrap(listen, admin, backend_ports, strategy, wasm):
    eps = "".join(f"""
        - endpoint: {{address: {{socket_address: {{address: 127.0.0.1, port_value: {p}}}}}}}"""
                  for p in backend_ports)
    wasm_filter, hash_policy = "", ""
    if "keys" in strategy:
        wasm_filter = f"""
          - name: envoy.filters.http.wasm
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
              config:
                name: affinity
                allow_on_headers_stop_iteration: true
                vm_config:
                  vm_id: affinity
                  runtime: envoy.wasm.runtime.v8
                  code: {{local: {{filename: "{wasm}"}}}}
                configuration:
                  "@type": type.googleapis.com/google.protobuf.StringValue
                  value: '{strategy["keys"]}'"""
        hash_policy = ", hash_policy: [{header: {header_name: x-affinity-key}}]"
        factor = strategy.get("factor")
        bounded = f"\n            consistent_hashing_lb_config: {{hash_balance_factor: {factor}}}" if factor else ""
        lb = f"""
    load_balancing_policy:
      policies:
      - typed_extension_config:
          name: envoy.load_balancing_policies.ring_hash
          typed_config:
            "@type": type.googleapis.com/envoy.extensions.load_balancing_policies.ring_hash.v3.RingHash
            minimum_ring_size: {RING_SIZE}
            maximum_ring_size: 8388608{bounded}"""
    else:
        lb = f"\n    lb_policy: {strategy['lb']}"
    return f"""
admin:
  address: {{socket_address: {{address: 127.0.0.1, port_value: {admin}}}}}
static_resources:
  listeners:
  - name: ingress
    address: {{socket_address: {{address: 127.0.0.1, port_value: {listen}}}}}
    per_connection_buffer_limit_bytes: 4194304
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
              routes:
              - match: {{prefix: "/"}}
                route: {{cluster: llm, timeout: 120s{hash_policy}}}
          http_filters:{wasm_filter}
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
  - name: llm
    type: STATIC
    connect_timeout: 1s
    per_connection_buffer_limit_bytes: 4194304
    circuit_breakers: {{thresholds: [{{max_connections: 100000, max_pending_requests: 100000, max_requests: 100000}}]}}{lb}
    load_assignment:
      cluster_name: llm
      endpoints:
      - lb_endpoints:{eps}
"""


def metrics(port):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    conn.close()
    return {name: int(value) for name, value in re.findall(r"^(vllm:\w+)_total\{[^}]*\} (\d+)$", text, re.M)}


class Client:
    """One kept-alive connection per (thread, Envoy)."""

    def __init__(self, ports):
        self.ports = ports
        self.local = threading.local()

    def post(self, envoy, body):
        conns = getattr(self.local, "conns", None)
        if conns is None:
            conns = self.local.conns = {}
        for attempt in (0, 1):
            conn = conns.get(envoy)
            if conn is None:
                conn = conns[envoy] = http.client.HTTPConnection("127.0.0.1", self.ports[envoy], timeout=120)
            try:
                conn.request("POST", "/v1/chat/completions", body=body,
                             headers={"content-type": "application/json"})
                response = conn.getresponse()
                data = response.read()
                return response.status, response.getheader("x-backend"), data
            except (http.client.HTTPException, OSError):
                conn.close()
                conns.pop(envoy, None)
                if attempt:
                    raise
        return None, None, b""


def replay(requests, envoys, compress):
    client = Client(envoys)
    results = [None] * len(requests)

    def send(i, request):
        try:
            status, backend, data = client.post(i % len(envoys), request["body"].encode())
            usage = json.loads(data).get("usage", {}) if status == 200 else {}
            results[i] = (status, backend, usage.get("prompt_tokens_details", {}).get("cached_tokens"))
        except Exception as error:  # noqa: BLE001 -- counted as an error, reported
            results[i] = (None, None, repr(error))

    start = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=256) as pool:
        futures = []
        for i, request in enumerate(requests):
            delay = start + request["arrival_ms"] / 1000.0 / compress - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            futures.append(pool.submit(send, i, request))
        concurrent.futures.wait(futures)
    return results, time.monotonic() - start


def run_strategy(args, name, strategy, envoy_count, requests, workdir):
    procs = Processes()
    try:
        # The simulator's hosts are 127.0.0.1:20000+i: the same addresses give the same ring.
        backend_ports = [args.backend_base_port + b for b in range(BACKENDS)]
        for b, port in enumerate(backend_ports):
            procs.start([args.backend, "--listen", f"127.0.0.1:{port}", "--name", f"b{b}", "--llm",
                         "--cache-blocks", str(args.cache_blocks),
                         "--ms-per-uncached-token", str(args.prefill_ms_per_token / args.compress),
                         "--ms-per-output-token", str(args.decode_ms_per_token / args.compress)],
                        open(os.path.join(workdir, f"{name}-{envoy_count}-b{b}.log"), "w"))
        listen_ports = []
        for e in range(envoy_count):
            listen, admin = free_port(), free_port()
            path = os.path.join(workdir, f"{name}-{envoy_count}-envoy{e}.yaml")
            with open(path, "w") as f:
                f.write(envoy_bootstrap(listen, admin, backend_ports, strategy, args.wasm))
            procs.start([args.envoy, "-c", path, "--concurrency", "1", "--base-id", str(100 + e),
                         "--log-level", "warning"],
                        open(os.path.join(workdir, f"{name}-{envoy_count}-envoy{e}.log"), "w"))
            listen_ports.append((listen, admin))
        for port in backend_ports:
            wait_http(f"http://127.0.0.1:{port}/healthz")
        for _, admin in listen_ports:
            wait_http(f"http://127.0.0.1:{admin}/ready")
        results, seconds = replay(requests, [listen for listen, _ in listen_ports], args.compress)
        counters = [metrics(port) for port in backend_ports]
    finally:
        procs.stop_all()
    errors = [r for r in results if r[0] != 200]
    by_name = {f"b{b}": b for b in range(BACKENDS)}
    backend_of = [by_name.get(r[1]) for r in results]
    continuations = moved = 0
    for i, request in enumerate(requests):
        parent = request["parent"]
        if parent is not None and backend_of[i] is not None and backend_of[parent] is not None:
            continuations += 1
            moved += backend_of[i] != backend_of[parent]
    queries = sum(c.get("vllm:prefix_cache_queries", 0) for c in counters)
    hits = sum(c.get("vllm:prefix_cache_hits", 0) for c in counters)
    per_backend = [c.get("vllm:request_success", 0) for c in counters]
    total = sum(per_backend)
    return {
        "kind": "replay", "strategy": name, "backends": BACKENDS, "replicas": envoy_count,
        "requests": len(requests), "errors": len(errors),
        "error_samples": [str(e) for e in errors[:3]],
        "prompt_tokens": queries, "cached_tokens": hits,
        "hit_rate": hits / queries if queries else 0.0,
        "cached_tokens_from_responses": sum(r[2] for r in results if r[0] == 200 and isinstance(r[2], int)),
        "requests_per_backend": per_backend,
        "max_over_mean": max(per_backend) * BACKENDS / total if total else 0.0,
        "continuations": continuations, "moved": moved,
        "moved_share": moved / continuations if continuations else 0.0,
        "seconds": round(seconds, 1), "compress": args.compress,
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", required=True, help="JSONL written by llm-requests")
    parser.add_argument("--envoy", required=True)
    parser.add_argument("--wasm", required=True)
    parser.add_argument("--backend", required=True, help="demo-backend binary")
    parser.add_argument("--envoys", default="1,3")
    parser.add_argument("--strategies", default=",".join(STRATEGIES))
    parser.add_argument("--compress", type=float, default=20.0)
    parser.add_argument("--cache-blocks", type=int, default=31250)
    parser.add_argument("--prefill-ms-per-token", type=float, default=0.1)
    parser.add_argument("--decode-ms-per-token", type=float, default=25.0)
    parser.add_argument("--rounds", type=int, default=1, help="runs of every setting (report medians)")
    parser.add_argument("--backend-base-port", type=int, default=20000,
                        help="backends listen on 127.0.0.1:BASE..BASE+7, the simulator's host addresses")
    args = parser.parse_args()
    with open(args.requests) as f:
        requests = [json.loads(line) for line in f]
    workdir = tempfile.mkdtemp(prefix="bench-llm-")
    print(f"llm_replay: {len(requests)} requests, logs in {workdir}", file=sys.stderr)
    for round_index in range(args.rounds):
        for envoy_count in [int(x) for x in args.envoys.split(",")]:
            for name in args.strategies.split(","):
                record = run_strategy(args, name, STRATEGIES[name], envoy_count, requests, workdir)
                record["round"] = round_index
                print(json.dumps(record), flush=True)
                print(f"llm_replay: {name} x{envoy_count} Envoys: hit {record['hit_rate']:.3f}, "
                      f"max/mean {record['max_over_mean']:.2f}, moved {record['moved_share']:.3f}, "
                      f"errors {record['errors']}, {record['seconds']} s", file=sys.stderr)


if __name__ == "__main__":
    main()
