#!/usr/bin/env python3
"""A backend killed behind 3 Envoys on one agent: which keys move and do the replicas agree (used by `make bench`).

Per number of backends (4, 20), load balancer (ring hash at Istio's 1024, ring hash at the agent's default size,
Maglev 65537) and detection (Envoy's active health check, Envoy's outlier detection, the agent's own health check
`healthCheck.by: agent`, none — retries only), with the real `xds-agent serve`, 3 real Envoys (`xds-agent
bootstrap`, dynamic base ids) and real demo backends on 127.0.0.1:

1. sweep: each of 200 users (`x-user-id`) through each Envoy → the backend that answered;
2. steady load, 100 req/s spread over the 3 Envoys, retries as the agent configures them;
3. SIGKILL one backend (b0); poll every Envoy's admin `/clusters` every 50 ms (detection: kill → the host is no
   longer `healthy` in that Envoy; the slowest of the 3 is reported), sweep again and again during the outage;
4. report: users of surviving backends that moved (final sweep, worst Envoy), users the 3 Envoys routed
   differently (worst sweep during the outage, and the final one), detection time, failed requests of the load.

Each Envoy gets its own static listener (`--config-yaml`) whose routes come from the agent over RDS, so a request
reaches the Envoy it is meant for (the agent's own listener is shared with SO_REUSEPORT). Medians over --runs.
Writes a Markdown section to --out. Every process started here is stopped by its pid.
"""
import argparse
import concurrent.futures
import http.client
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from balance_envoy import Processes, free_port  # noqa: E402

USERS = 200
RATE = 100
VICTIM = "b0"
LBS = [("ring 1024", "{ringHash: {minimumRingSize: 1024}}"), ("ring, agent size", "{ringHash: {}}"),
       ("Maglev 65537", "{maglev: {tableSize: 65537}}")]
CHECK = "path: /healthz, interval: 1s, timeout: 500ms, unhealthyThreshold: 2, healthyThreshold: 1"
DETECTIONS = [
    ("Envoy health check", f"    healthCheck: {{by: envoy, {CHECK}}}\n"),
    ("Envoy outlier detection",
     "    outlierDetection: {consecutive5xx: 3, interval: 1s, baseEjectionTime: 30s, maxEjectionPercent: 50}\n"),
    ("agent health check", f"    healthCheck: {{by: agent, {CHECK}}}\n"),
    ("none (retries only)", ""),
]
RETRIES = "    retries: {attempts: 3, on: [connect-failure, reset, 503]}\n"
def wait(predicate, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if predicate():
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"timed out after {timeout}s waiting for {what}")


def get(url, timeout=1.0):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


def static_listener(port, route_name):
    return json.dumps({"static_resources": {"listeners": [{
        "name": f"probe-{port}",
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
        "filter_chains": [{"filters": [{
            "name": "envoy.filters.network.http_connection_manager",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                "stat_prefix": "probe",
                "rds": {"route_config_name": route_name,
                        "config_source": {"ads": {}, "resource_api_version": "V3"}},
                "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}],
            }}]}],
    }]}})


def host_flags(admin):
    """Envoy's hosts of cluster `web`: address → health flags."""
    flags = {}
    for line in get(f"http://127.0.0.1:{admin}/clusters").splitlines():
        if line.startswith("web::") and "::health_flags::" in line:
            address, value = line[len("web::"):].split("::health_flags::")
            flags[address] = value.strip()
    return flags


class Client:
    """Keep-alive connections per (thread, port)."""

    def __init__(self):
        self.local = threading.local()
        self.last_error = None

    def backend(self, port, user):
        conns = getattr(self.local, "conns", None)
        if conns is None:
            conns = self.local.conns = {}
        for attempt in range(2):
            conn = conns.get(port)
            if conn is None:
                conn = conns[port] = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            try:
                conn.request("GET", "/", headers={"x-user-id": user})
                response = conn.getresponse()
                body = response.read()
                if response.status != 200:
                    self.last_error = f"{response.status} {body[:80]!r}"
                    return None
                return response.getheader("x-backend")
            except (OSError, http.client.HTTPException) as e:
                self.last_error = repr(e)
                conn.close()
                conns.pop(port, None)
                if attempt == 1:
                    return None
        return None


def scenario(args, procs, workdir, n, lb, detection):
    client = Client()
    backends = {}
    for i in range(n):
        port = free_port()
        name = f"b{i}"
        proc = procs.start([args.backend, "--listen", f"127.0.0.1:{port}", "--name", name],
                           open(os.path.join(workdir, f"{name}.log"), "w"))
        backends[name] = (port, proc)
    for name, (port, _) in backends.items():
        wait(lambda: get(f"http://127.0.0.1:{port}/healthz") is not None, 10, f"backend {name}")
    endpoints = "".join(f"      - {{address: '127.0.0.1:{port}', hashKey: {name}}}\n"
                        for name, (port, _) in backends.items())
    config = (f"listeners:\n  - name: ingress\n    address: 127.0.0.1:{free_port()}\n    routes: [{{prefix: /, service: web}}]\n"
              f"services:\n  - name: web\n    endpoints:\n{endpoints}"
              f"    affinity: {{mode: native, keys: [{{header: x-user-id}}]}}\n"
              f"    loadBalancer: {lb}\n{detection}{RETRIES}")
    config_path = os.path.join(workdir, "agent.yaml")
    with open(config_path, "w") as f:
        f.write(config)
    grpc, agent_admin = free_port(), free_port()
    procs.start([args.agent, "serve", "--config", config_path, "--grpc", f"127.0.0.1:{grpc}",
                 "--admin", f"127.0.0.1:{agent_admin}"], open(os.path.join(workdir, "agent.log"), "w"))
    wait(lambda: get(f"http://127.0.0.1:{agent_admin}/readyz").startswith("ready"), 15, "agent /readyz")
    envoys = []
    for i in range(3):
        admin, listen = free_port(), free_port()
        node = f"failover-{i}"
        bootstrap = subprocess.run([args.agent, "bootstrap", "--node-id", node, "--xds", f"127.0.0.1:{grpc}",
                                    "--admin-port", str(admin)], check=True, capture_output=True, text=True).stdout
        path = os.path.join(workdir, f"{node}.yaml")
        with open(path, "w") as f:
            f.write(bootstrap)
        procs.start([args.envoy, "-c", path, "--config-yaml", static_listener(listen, "ingress"),
                     "--concurrency", "1", "--use-dynamic-base-id", "--log-level", "warning"],
                    open(os.path.join(workdir, f"{node}.log"), "w"))
        envoys.append((admin, listen))
    addresses = {f"127.0.0.1:{port}": name for name, (port, _) in backends.items()}
    for admin, listen in envoys:
        wait(lambda: set(host_flags(admin)) == set(addresses) and
             all(v == "healthy" for v in host_flags(admin).values()), 30, f"Envoy {admin}: {n} healthy hosts")
        wait(lambda: client.backend(listen, "warmup") is not None, 15, f"Envoy {admin} routing")

    users = [f"user-{i}" for i in range(USERS)]
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=12)

    def sweep():
        jobs = {(e, u): pool.submit(client.backend, listen, u) for e, (_, listen) in enumerate(envoys) for u in users}
        return [{u: jobs[(e, u)].result() for u in users} for e in range(len(envoys))]

    before = sweep()
    reference = before[0]
    if any(b != reference for b in before[1:]) or any(v is None for v in reference.values()):
        raise RuntimeError("Envoys disagree or fail before the kill")

    stop = threading.Event()
    load = {"sent": 0, "failed": 0, "failed_at": []}
    kill_time = [None]

    def steady():
        i, start = 0, time.time()
        while not stop.is_set():
            target = start + i / RATE
            pause = target - time.time()
            if pause > 0:
                time.sleep(pause)
            _, listen = envoys[i % 3]
            ok = client.backend(listen, users[i % USERS]) is not None
            if kill_time[0] is not None:
                load["sent"] += 1
                if not ok:
                    load["failed"] += 1
                    load["failed_at"].append(time.time() - kill_time[0])
                    load.setdefault("errors", set()).add(client.last_error)
            i += 1

    loaders = [threading.Thread(target=steady, daemon=True)]
    for t in loaders:
        t.start()
    time.sleep(1.0)
    victim_port, victim = backends[VICTIM]
    victim_address = f"127.0.0.1:{victim_port}"
    kill_time[0] = time.time()
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    detected = [None] * len(envoys)

    def poll():
        while not stop.is_set() and any(d is None for d in detected):
            for e, (admin, _) in enumerate(envoys):
                if detected[e] is None:
                    try:
                        flag = host_flags(admin).get(victim_address)
                    except OSError:
                        continue
                    if flag != "healthy":
                        detected[e] = time.time() - kill_time[0]
            time.sleep(0.05)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    sweeps = []
    deadline = kill_time[0] + args.outage_seconds
    while time.time() < deadline:
        sweeps.append(sweep())
        if all(d is not None for d in detected) and time.time() > kill_time[0] + max(detected) + 1.5:
            break
    time.sleep(0.5)
    final = sweep()
    stop.set()
    for t in loaders:
        t.join()
    poller.join()
    pool.shutdown()

    def disagreements(maps):
        return sum(1 for u in users if len({m[u] for m in maps}) > 1)

    survivors = [u for u in users if reference[u] != VICTIM]
    moved = max(sum(1 for u in survivors if m[u] != reference[u]) for m in final)
    still_on_victim = max(sum(1 for u in users if m[u] == VICTIM) for m in final)
    return {
        "victim_users": USERS - len(survivors),
        "moved_survivors": moved,
        "still_on_victim": still_on_victim,
        "disagree_max": max([disagreements(s) for s in sweeps] + [disagreements(final)]),
        "disagree_final": disagreements(final),
        "detect_s": None if any(d is None for d in detected) else round(max(detected), 2),
        "detect_min_s": None if any(d is None for d in detected) else round(min(detected), 2),
        "failed": load["failed"],
        "sent_after_kill": load["sent"],
        "sweeps": len(sweeps),
        "errors": sorted(load.get("errors", set()))[:3],
        "failed_at_s": [round(t, 2) for t in load["failed_at"][:5]] + [round(t, 2) for t in load["failed_at"][-2:]],
    }


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--agent", required=True)
    parser.add_argument("--envoy", required=True)
    parser.add_argument("--backend", required=True)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--hosts", default="4,20")
    parser.add_argument("--outage-seconds", type=float, default=8.0)
    parser.add_argument("--out", required=True, help="Markdown file to write")
    parser.add_argument("--detections", help="only these detections (comma-separated indexes)")
    parser.add_argument("--json", help="raw results (JSON lines) to write")
    parser.add_argument("--command", default="make bench")
    parser.add_argument("--report-from", help="only render --out from these JSON-lines files (comma-separated)")
    args = parser.parse_args()
    started = time.time()
    if args.report_from:
        grouped = {}
        for path in args.report_from.split(","):
            for line in open(path):
                r = json.loads(line)
                grouped.setdefault((r["hosts"], r["lb"], r["detection"]), []).append(r)
        args.runs = "/".join(sorted({str(len(v)) for v in grouped.values()}))
        write_report(args, [(*key, results) for key, results in grouped.items()], None)
        return
    rows = []
    raw = open(args.json, "w") if args.json else None
    for n in [int(h) for h in args.hosts.split(",")]:
        for lb_name, lb in LBS:
            for index, (det_name, det) in enumerate(DETECTIONS):
                if args.detections and str(index) not in args.detections.split(","):
                    continue
                results = []
                for run in range(args.runs):
                    procs = Processes()
                    with tempfile.TemporaryDirectory(prefix="failover-") as workdir:
                        try:
                            result = scenario(args, procs, workdir, n, lb, det)
                        finally:
                            procs.stop_all()
                    result.update({"hosts": n, "lb": lb_name, "detection": det_name, "run": run})
                    print(json.dumps(result), file=sys.stderr)
                    if raw:
                        raw.write(json.dumps(result) + "\n")
                    results.append(result)
                rows.append((n, lb_name, det_name, results))
    elapsed = time.time() - started
    write_report(args, rows, elapsed)


def fmt(value, unit=""):
    if value is None:
        return "—"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:g}{unit}"
    return f"{int(value)}{unit}"


def write_report(args, rows, elapsed):
    envoy_version = subprocess.run([args.envoy, "--version"], capture_output=True, text=True).stdout
    envoy_version = next((w for w in envoy_version.split() if w.count("/") >= 2), "?").split("/")[1]
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    out = []
    p = out.append
    p("## Failover: a backend killed behind 3 Envoys (`bench/failover.py`)")
    p("")
    p(f"`{args.command}` ran `python3 bench/failover.py --runs {args.runs} --hosts {args.hosts}`: the real agent, "
      f"3 real Envoys ({envoy_version}, `--concurrency 1`) and N real demo backends on 127.0.0.1; {USERS} users "
      f"(`x-user-id`, native hash policy), {RATE} req/s spread over the 3 Envoys with the agent's retries "
      "(`attempts: 3, on: [connect-failure, reset, 503]`, previous hosts avoided); b0 killed with SIGKILL. "
      f"Health checks: `{CHECK}`; outlier detection: `consecutive5xx: 3, interval: 1s`. "
      f"Medians of {args.runs} runs per row (the runs column); {os.cpu_count()} cores ({cpu}), shared with other "
      "builds" + (f"; {elapsed:.0f} s in all." if elapsed else "."))
    p("")
    p("- **moved**: users of surviving backends that another backend answered after the outage was detected "
      "(worst Envoy); the minimum is 0 — only b0's users should move.")
    p("- **disagree**: users the 3 Envoys sent to different backends — worst sweep during the outage / final sweep; "
      "the minimum is 0.")
    p("- **detection**: kill → b0 no longer `healthy` in an Envoy's `/clusters` (slowest of the 3); — = never "
      "(requests to b0 fail over one by one by retry).")
    p("- **failed**: requests of the steady load that failed after the kill (of about "
      f"{RATE} × the outage in seconds).")
    p("")
    p("| backends | load balancer | detection | runs | b0's users | moved | disagree (worst / final) | detection | failed |")
    p("|---:|---|---|---:|---:|---:|---:|---:|---:|")
    for n, lb_name, det_name, results in rows:
        m = lambda key: median([r[key] for r in results])
        p(f"| {n} | {lb_name} | {det_name} | {len(results)} | {fmt(m('victim_users'))} | {fmt(m('moved_survivors'))} | "
          f"{fmt(m('disagree_max'))} / {fmt(m('disagree_final'))} | {fmt(m('detect_s'), ' s')} | {fmt(m('failed'))} |")
    p("")
    with open(args.out, "w") as f:
        f.write("\n".join(out))


if __name__ == "__main__":
    main()
