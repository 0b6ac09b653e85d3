#!/usr/bin/env bash
# `make run`: the demo on 127.0.0.1 — 3 demo backends, the xds-agent serving examples/demo.yaml, and one Envoy
# bootstrapped from the agent. Prints where to send requests and proves stickiness with a few requests, then runs
# until Ctrl-C / SIGTERM (or until its parent, e.g. make, goes away) and stops everything it started.
#
# Ports (all on 127.0.0.1) can be overridden:
#   LISTEN_PORT=10000  BACKEND_PORTS="8081 8082 8083"  AGENT_GRPC_PORT=18000  AGENT_ADMIN_PORT=19000  AGENT_DEBUG_PORT=19001
#   ENVOY_ADMIN_PORT=9901
# Binaries come from the same variables the Makefile exports: ENVOY_BIN, XDS_AGENT_BIN, DEMO_BACKEND_BIN,
# AFFINITY_WASM. DEMO_CONFIG selects another agent config written for the demo's default ports.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$repo/target}
[[ $target = /* ]] || target=$repo/$target

LISTEN_PORT=${LISTEN_PORT:-10000}
BACKEND_PORTS=${BACKEND_PORTS:-"8081 8082 8083"}
AGENT_GRPC_PORT=${AGENT_GRPC_PORT:-18000}
AGENT_ADMIN_PORT=${AGENT_ADMIN_PORT:-19000}
AGENT_DEBUG_PORT=${AGENT_DEBUG_PORT:-19001}
ENVOY_ADMIN_PORT=${ENVOY_ADMIN_PORT:-9901}
ENVOY_BIN=${ENVOY_BIN:-$repo/.tools/bin/envoy-${ENVOY_VERSION:-$(cat "$repo/.envoy-version")}}
XDS_AGENT_BIN=${XDS_AGENT_BIN:-$target/release/xds-agent}
DEMO_BACKEND_BIN=${DEMO_BACKEND_BIN:-$target/release/demo-backend}
AFFINITY_WASM=${AFFINITY_WASM:-$target/wasm32-wasip1/release/affinity_filter.wasm}
DEMO_CONFIG=${DEMO_CONFIG:-$repo/examples/demo.yaml}
DEMO_LISTEN=127.0.0.1:10000
DEMO_BACKENDS=(127.0.0.1:8081 127.0.0.1:8082 127.0.0.1:8083)

say() { printf '%s\n' "$*"; }
fail() {
  printf 'make run: %s\n' "$*" >&2
  exit 1
}

read -r -a backend_ports <<<"${BACKEND_PORTS//,/ }"
((${#backend_ports[@]} == ${#DEMO_BACKENDS[@]})) ||
  fail "BACKEND_PORTS needs ${#DEMO_BACKENDS[@]} ports (got '${BACKEND_PORTS}')"

for bin in "$ENVOY_BIN" "$XDS_AGENT_BIN" "$DEMO_BACKEND_BIN" "$AFFINITY_WASM"; do
  [[ -e $bin ]] || fail "$bin is missing: run 'make build' and 'make setup' (make run does both)"
done
[[ -f $DEMO_CONFIG ]] || fail "$DEMO_CONFIG not found"

# Every port must be free before anything starts: name the variable that moves it.
check_port() { # NAME PORT [SUGGESTED SETTING]
  [[ $2 =~ ^[0-9]+$ ]] && (($2 > 0 && $2 < 65536)) || fail "$1: '$2' is not a port number"
  if (exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null; then
    fail "port $2 on 127.0.0.1 is already in use (move it: ${3:-$1=$(($2 + 100))} make run)"
  fi
}
check_port LISTEN_PORT "$LISTEN_PORT"
moved_backends="BACKEND_PORTS=\"$(for port in "${backend_ports[@]}"; do printf '%s ' $((port + 100)); done | sed 's/ $//')\""
for port in "${backend_ports[@]}"; do check_port BACKEND_PORTS "$port" "$moved_backends"; done
check_port AGENT_GRPC_PORT "$AGENT_GRPC_PORT"
check_port AGENT_ADMIN_PORT "$AGENT_ADMIN_PORT"
check_port AGENT_DEBUG_PORT "$AGENT_DEBUG_PORT"
check_port ENVOY_ADMIN_PORT "$ENVOY_ADMIN_PORT"
all_ports=$(printf '%s\n' "$LISTEN_PORT" "${backend_ports[@]}" "$AGENT_GRPC_PORT" "$AGENT_ADMIN_PORT" "$AGENT_DEBUG_PORT" "$ENVOY_ADMIN_PORT")
[[ -z $(sort <<<"$all_ports" | uniq -d) ]] || fail "two services were given the same port: $(sort <<<"$all_ports" | uniq -d | tr '\n' ' ')"

run_dir=$(mktemp -d "${TMPDIR:-/tmp}/envoy-affinity-run.XXXXXX")
pids=()
names=()

stop_all() {
  trap - INT TERM EXIT
  if ((${#pids[@]})); then
    say ""
    say "stopping: ${names[*]}"
    kill -TERM "${pids[@]}" 2>/dev/null || true
    for _ in $(seq 50); do
      alive=0
      for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
      ((alive)) || break
      sleep 0.1
    done
    kill -KILL "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
    say "stopped; logs kept in $run_dir"
  fi
}
trap stop_all EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

start() { # NAME COMMAND...
  local name=$1
  shift
  "$@" >"$run_dir/$name.log" 2>&1 </dev/null &
  pids+=($!)
  names+=("$name")
}

tail_log() { # NAME
  say "---- last lines of $run_dir/$1.log ----" >&2
  tail -n 20 "$run_dir/$1.log" >&2 || true
}

wait_http() { # NAME URL SECONDS
  local name=$1 url=$2 deadline=$((SECONDS + $3))
  until curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null; do
    if ((SECONDS >= deadline)); then
      tail_log "$name"
      fail "$name did not become ready at $url within $3s"
    fi
    for i in "${!pids[@]}"; do
      if ! kill -0 "${pids[$i]}" 2>/dev/null; then
        tail_log "${names[$i]}"
        fail "${names[$i]} exited during start-up"
      fi
    done
    sleep 0.2
  done
}

# The agent config: the demo file with the chosen ports and this checkout's filter .wasm.
config="$run_dir/demo.yaml"
sed_args=(-E -e "s#$DEMO_LISTEN\\b#127.0.0.1:$LISTEN_PORT#g")
for i in "${!DEMO_BACKENDS[@]}"; do
  sed_args+=(-e "s#${DEMO_BACKENDS[$i]}\\b#@backend$i@#g")
done
for i in "${!DEMO_BACKENDS[@]}"; do
  sed_args+=(-e "s#@backend$i@#127.0.0.1:${backend_ports[$i]}#g")
done
sed_args+=(-e "s|^([[:space:]]*wasm:[[:space:]]*)[^[:space:]#]+|\\1$AFFINITY_WASM|")
sed "${sed_args[@]}" "$DEMO_CONFIG" >"$config"
grep -q "127.0.0.1:$LISTEN_PORT" "$config" || fail "$DEMO_CONFIG has no listener on $DEMO_LISTEN to move to port $LISTEN_PORT"
"$XDS_AGENT_BIN" validate "$config" >"$run_dir/validate.log" 2>&1 || {
  cat "$run_dir/validate.log" >&2
  fail "the demo config does not validate ($config)"
}

backend_names=()
for i in "${!backend_ports[@]}"; do
  backend_names+=("backend-$((i + 1))")
  start "${backend_names[$i]}" "$DEMO_BACKEND_BIN" --listen "127.0.0.1:${backend_ports[$i]}" --name "${backend_names[$i]}"
done
for i in "${!backend_ports[@]}"; do
  wait_http "${backend_names[$i]}" "http://127.0.0.1:${backend_ports[$i]}/healthz" 10
done

start xds-agent "$XDS_AGENT_BIN" serve --config "$config" \
  --grpc "127.0.0.1:$AGENT_GRPC_PORT" --admin "127.0.0.1:$AGENT_ADMIN_PORT" \
  --debug-admin "127.0.0.1:$AGENT_DEBUG_PORT"
wait_http xds-agent "http://127.0.0.1:$AGENT_ADMIN_PORT/readyz" 30

"$XDS_AGENT_BIN" bootstrap --node-id demo-envoy --xds "127.0.0.1:$AGENT_GRPC_PORT" \
  --admin-port "$ENVOY_ADMIN_PORT" >"$run_dir/envoy-bootstrap.yaml"
start envoy "$ENVOY_BIN" -c "$run_dir/envoy-bootstrap.yaml" --use-dynamic-base-id --concurrency 1 \
  --drain-time-s 1 --parent-shutdown-time-s 2
wait_http envoy "http://127.0.0.1:$ENVOY_ADMIN_PORT/ready" 60
wait_http envoy "http://127.0.0.1:$LISTEN_PORT/" 30

url="http://127.0.0.1:$LISTEN_PORT/"
backend_of() { # CURL ARGS... → the x-backend that answered
  curl -sS -o /dev/null -D - --max-time 5 "$@" "$url" | tr -d '\r' | awk -F': ' 'tolower($1) == "x-backend" {print $2}'
}
five() { # CURL ARGS... → five answers on one line
  local out=()
  for _ in 1 2 3 4 5; do out+=("$(backend_of "$@")"); done
  printf '%s ' "${out[@]}"
}

say ""
say "envoy-affinity demo is running (logs: $run_dir)"
say "  send requests to  $url"
say "  backends          $(for i in "${!backend_ports[@]}"; do printf '%s=127.0.0.1:%s ' "${backend_names[$i]}" "${backend_ports[$i]}"; done)"
say "  agent admin       http://127.0.0.1:$AGENT_ADMIN_PORT/metrics   debug: http://127.0.0.1:$AGENT_DEBUG_PORT/debug/nodes  /debug/snapshot"
say "  envoy admin       http://127.0.0.1:$ENVOY_ADMIN_PORT/"
say "  agent config      $config (edit it: the agent applies valid changes, rejects invalid ones)"
say ""
say "try (the x-backend header and the JSON body say which backend answered and which key it saw):"
say "  curl -si -H 'x-user-id: alice' $url     # alice always reaches the same backend"
say "  curl -si -H 'x-user-id: bob' $url"
say "  curl -si --cookie 'session=s-42' $url   # a session cookie is a key too"
say "  curl -si -H 'x-user-id: alice' -H 'x-affinity-key: spoofed' $url   # a client cannot pick its backend"
say ""
say "right now, five requests each:"
say "  x-user-id: alice   -> $(five -H 'x-user-id: alice')"
say "  x-user-id: bob     -> $(five -H 'x-user-id: bob')"
say "  x-user-id: carol   -> $(five -H 'x-user-id: carol')"
say "  cookie session=s-42 -> $(five --cookie 'session=s-42')"
say "  alice + spoofed x-affinity-key -> $(five -H 'x-user-id: alice' -H 'x-affinity-key: spoofed')"
say ""
say "Ctrl-C stops everything."

parent=$PPID
while true; do
  for i in "${!pids[@]}"; do
    if ! kill -0 "${pids[$i]}" 2>/dev/null; then
      tail_log "${names[$i]}"
      fail "${names[$i]} exited unexpectedly"
    fi
  done
  # Parent gone (e.g. make killed with SIGTERM): stop too rather than leave processes behind.
  kill -0 "$parent" 2>/dev/null || exit 143
  sleep 1 &
  wait $! || true
done
