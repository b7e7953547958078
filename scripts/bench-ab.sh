#!/usr/bin/env bash
# Throughput A/B of two gateway builds, with nginx as the yardstick: the same mock
# upstream, the same pinning and load as scripts/bench.sh (wrk and the mock on CPU 0,
# the proxy under test on CPU 1, 32 connections, non-streaming), but the three are
# measured in alternating rounds, so that a drift of the machine shows in every one of
# them instead of favouring whichever ran first.
#
#   bash scripts/bench-ab.sh OLD_BINARY NEW_BINARY
#
# Build the old one from a worktree, e.g.
#   git worktree add /tmp/old COMMIT && (cd /tmp/old && cargo build --release --bin switchyard)
# Needs wrk, nginx and a release build of examples/bench_upstream. Knobs: BENCH_ROUNDS=4
# (even, so each build runs second and third equally often),
# BENCH_DURATION=10 (seconds per measured run, after a 3 s warm-up), BENCH_PORT_BASE=19400,
# BENCH_PIN=0 (no pinning: everything shares every CPU, the gateways serve with a thread
# per CPU and nginx with a worker per CPU, as `BENCH_PIN=0 bash scripts/bench.sh` runs them).
# Prints, per run, requests per second and the proxy's CPU (user + kernel) per request.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# = 2 ] || { echo "usage: bash scripts/bench-ab.sh OLD_BINARY NEW_BINARY" >&2; exit 2; }
OLD=$1
NEW=$2
ROUNDS=${BENCH_ROUNDS:-4}
DURATION=${BENCH_DURATION:-10}
PORT_BASE=${BENCH_PORT_BASE:-19400}
MOCK=${CARGO_TARGET_DIR:-target}/release/examples/bench_upstream
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
for tool in wrk taskset curl "$NGINX"; do
    command -v "$tool" >/dev/null || { echo "bench-ab.sh: needs $tool" >&2; exit 1; }
done
[ -x "$OLD" ] && [ -x "$NEW" ] && [ -x "$MOCK" ] || { echo "bench-ab.sh: build both gateways and $MOCK first" >&2; exit 1; }

WORK=$(mktemp -d -t switchyard-ab.XXXXXX)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
PRIO=()
[ "$(id -u)" = 0 ] && PRIO=(nice -n -10)
if [ "${BENCH_PIN:-1}" = 1 ]; then
    LOAD=("${PRIO[@]}" taskset -c 0)
    PROXY=("${PRIO[@]}" taskset -c 1)
    NGINX_WORKERS=1
else
    LOAD=("${PRIO[@]}")
    PROXY=("${PRIO[@]}")
    NGINX_WORKERS=$(nproc)
fi

"${LOAD[@]}" "$MOCK" --listen "127.0.0.1:$((PORT_BASE + 1))" >"$WORK/mock.log" 2>&1 &
PIDS+=($!)
gateway() { # name binary port
    cat >"$WORK/$1.toml" <<TOML
[server]
listen = "127.0.0.1:$3"
[ledger]
url = "sqlite://$WORK/$1.db"
[providers.mock]
kind = "openai-compatible"
base_url = "http://127.0.0.1:$((PORT_BASE + 1))/v1"
catalog = "openai"
[routes.bench]
targets = [{ provider = "mock", model = "gpt-4.1-mini" }]
TOML
    RUST_LOG=warn "${PROXY[@]}" "$2" serve --config "$WORK/$1.toml" >"$WORK/$1.log" 2>&1 &
    PIDS+=($!)
}
gateway old "$OLD" $((PORT_BASE + 3))
OLD_PID=${PIDS[-1]}
gateway new "$NEW" $((PORT_BASE + 4))
NEW_PID=${PIDS[-1]}
mkdir -p "$WORK/nginx"
cat >"$WORK/nginx/nginx.conf" <<CONF
daemon off; master_process on; worker_processes $NGINX_WORKERS; pid $WORK/nginx/nginx.pid; error_log $WORK/nginx/error.log warn;
events { worker_connections 4096; }
http {
    access_log off; client_body_temp_path $WORK/nginx/body; proxy_temp_path $WORK/nginx/proxy;
    fastcgi_temp_path $WORK/nginx/fastcgi; uwsgi_temp_path $WORK/nginx/uwsgi; scgi_temp_path $WORK/nginx/scgi;
    keepalive_requests 10000000; keepalive_timeout 120s;
    upstream mock { server 127.0.0.1:$((PORT_BASE + 1)); keepalive 64; keepalive_requests 10000000; }
    server { listen 127.0.0.1:$((PORT_BASE + 2)); location / { proxy_pass http://mock; proxy_http_version 1.1; proxy_set_header Connection ""; } }
}
CONF
"${PROXY[@]}" "$NGINX" -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -e "$WORK/nginx/error.log" >/dev/null 2>&1 &
NGINX_PID=$!
PIDS+=("$NGINX_PID")
for port in $((PORT_BASE + 3)) $((PORT_BASE + 4)); do
    for _ in $(seq 100); do curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:$port/healthz" 2>/dev/null && break; sleep 0.1; done
done
sleep 1

BODY='{"model":"bench","messages":[{"role":"system","content":"You are a concise assistant."},{"role":"user","content":"What is the capital of France? Answer in one sentence."}],"max_tokens":64,"temperature":0.2}'
printf 'wrk.method = "POST"\nwrk.body = %s\nwrk.headers["Content-Type"] = "application/json"\n' "'$BODY'" >"$WORK/post.lua"
# CPU ticks (user + kernel) of a process, all its threads, and its child processes.
ticks() {
    local total=0 pid
    for pid in "$1" $(pgrep -P "$1" || true); do
        total=$((total + $(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$pid/stat")))
    done
    echo "$total"
}
HZ=$(getconf CLK_TCK)
run() { # name port pid
    local url="http://127.0.0.1:$2/v1/chat/completions" before after requests
    "${LOAD[@]}" wrk -t2 -c32 -d3s -s "$WORK/post.lua" "$url" >/dev/null
    before=$(ticks "$3")
    requests=$("${LOAD[@]}" wrk -t2 -c32 -d"${DURATION}s" -s "$WORK/post.lua" "$url" | awk '/requests in/ { print $1 }')
    after=$(ticks "$3")
    awk -v n="$requests" -v t=$((after - before)) -v hz="$HZ" -v d="$DURATION" -v name="$1" \
        'BEGIN { printf "%-6s %8.0f req/s  %5.1f us CPU/request\n", name, n / d, t / hz * 1e6 / n }'
}
# The two gateways swap places every round: on a noisy VM the run in third place was
# seen to come out about 10% slower whichever build it was.
for round in $(seq "$ROUNDS"); do
    echo "round $round"
    run nginx $((PORT_BASE + 2)) "$NGINX_PID"
    if [ $((round % 2)) = 1 ]; then
        run old $((PORT_BASE + 3)) "$OLD_PID"
        run new $((PORT_BASE + 4)) "$NEW_PID"
    else
        run new $((PORT_BASE + 4)) "$NEW_PID"
        run old $((PORT_BASE + 3)) "$OLD_PID"
    fi
done
