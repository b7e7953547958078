#!/usr/bin/env bash
# User-space instructions per proxied request, counted by valgrind's callgrind: a
# repeatable figure for comparing two builds on a shared or noisy machine, where
# timings drift by 10-30% from run to run. Kernel time is not counted; use
# scripts/bench.sh for the real throughput and latency.
#
#   bash scripts/bench-instructions.sh [GATEWAY_BINARY]   (default target/release/switchyard)
#   bash scripts/bench-instructions.sh --bare             (examples/bare_proxy instead: what
#                                                           hyper and tokio alone cost, so the
#                                                           difference is the gateway's own work)
#
# The gateway runs under callgrind on CPU 1, the mock upstream and wrk on CPU 0. After
# a 5 s warm-up the counters are zeroed, wrk sends requests for BENCH_SECONDS (default
# 15) at 8 connections, and the total is divided by the requests served. Needs valgrind,
# wrk and a release build of examples/bench_upstream
# (cargo build --release --bin switchyard --example bench_upstream).
# BENCH_KEEP_PROFILE=FILE keeps the callgrind dump for callgrind_annotate.
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=gateway
if [ "${1:-}" = --bare ]; then
    MODE=bare
    shift
fi
GATEWAY=${1:-target/release/switchyard}
[ "$MODE" = bare ] && GATEWAY=${CARGO_TARGET_DIR:-target}/release/examples/bare_proxy
MOCK=${CARGO_TARGET_DIR:-target}/release/examples/bench_upstream
SECONDS_MEASURED=${BENCH_SECONDS:-15}
PORT_BASE=${BENCH_PORT_BASE:-19200}
for tool in valgrind callgrind_control wrk taskset curl; do
    command -v "$tool" >/dev/null || { echo "bench-instructions.sh: needs $tool" >&2; exit 1; }
done
[ -x "$GATEWAY" ] && [ -x "$MOCK" ] || { echo "bench-instructions.sh: build $GATEWAY and $MOCK first" >&2; exit 1; }

WORK=$(mktemp -d -t switchyard-instr.XXXXXX)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

taskset -c 0 "$MOCK" --listen "127.0.0.1:$((PORT_BASE + 1))" >"$WORK/mock.log" 2>&1 &
PIDS+=($!)
if [ "$MODE" = bare ]; then
    taskset -c 1 valgrind --tool=callgrind --callgrind-out-file="$WORK/callgrind.out" \
        "$GATEWAY" --listen "127.0.0.1:$((PORT_BASE + 3))" --upstream "127.0.0.1:$((PORT_BASE + 1))" >"$WORK/gateway.log" 2>&1 &
else
    cat >"$WORK/gateway.toml" <<TOML
[server]
listen = "127.0.0.1:$((PORT_BASE + 3))"
[ledger]
url = "sqlite://$WORK/ledger.db"
[providers.mock]
kind = "openai-compatible"
base_url = "http://127.0.0.1:$((PORT_BASE + 1))/v1"
catalog = "openai"
[routes.bench]
targets = [{ provider = "mock", model = "gpt-4.1-mini" }]
TOML
    RUST_LOG=warn taskset -c 1 valgrind --tool=callgrind --callgrind-out-file="$WORK/callgrind.out" \
        "$GATEWAY" serve --config "$WORK/gateway.toml" >"$WORK/gateway.log" 2>&1 &
fi
GATEWAY_PID=$!
PIDS+=("$GATEWAY_PID")
for _ in $(seq 200); do
    curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:$((PORT_BASE + 3))/healthz" 2>/dev/null && break
    sleep 0.3
done

# The same request as scripts/bench.sh.
BODY='{"model":"bench","messages":[{"role":"system","content":"You are a concise assistant."},{"role":"user","content":"What is the capital of France? Answer in one sentence."}],"max_tokens":64,"temperature":0.2}'
printf 'wrk.method = "POST"\nwrk.body = %s\nwrk.headers["Content-Type"] = "application/json"\n' "'$BODY'" >"$WORK/post.lua"
URL="http://127.0.0.1:$((PORT_BASE + 3))/v1/chat/completions"
taskset -c 0 wrk -t1 -c8 -d5s -s "$WORK/post.lua" "$URL" >/dev/null
callgrind_control -z "$GATEWAY_PID" >/dev/null
timeout $((SECONDS_MEASURED + 30)) taskset -c 0 wrk -t1 -c8 -d"${SECONDS_MEASURED}s" -s "$WORK/post.lua" "$URL" >"$WORK/wrk.out"
# Count the ledger's work for these requests too: wait until its queue is empty (a
# writer that fell behind would otherwise make the gateway look cheaper than it is),
# then for the last batch, written within its 200 ms flush interval.
for _ in $(seq 120); do
    [ "$MODE" = bare ] && break
    depth=$(curl -fsS --max-time 5 "http://127.0.0.1:$((PORT_BASE + 3))/metrics" 2>/dev/null \
        | awk '$1 == "switchyard_ledger_queue_depth" {print $2}')
    [ "${depth:-1}" = 0 ] && break
    sleep 0.5
done
sleep 0.5
callgrind_control -d "$GATEWAY_PID" >/dev/null
requests=$(awk '/requests in/ {print $1}' "$WORK/wrk.out")
dump=$(ls -t "$WORK"/callgrind.out* | head -1)
instructions=$(awk '/^(summary|totals):/ {print $2; exit}' "$dump")
echo "requests=$requests instructions_per_request=$((instructions / requests))"
# BENCH_KEEP_PROFILE=FILE keeps the dump, for callgrind_annotate --inclusive=yes FILE.
[ -n "${BENCH_KEEP_PROFILE:-}" ] && cp "$dump" "$BENCH_KEEP_PROFILE"
true
