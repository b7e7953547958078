#!/usr/bin/env bash
# Gateway overhead benchmark: a mock OpenAI upstream on loopback that answers at once,
# called (a) directly, (b) through nginx, (c) through a bare hyper proxy
# (examples/bare_proxy.rs: about the ceiling for a proxy on the gateway's HTTP crates),
# (d) through switchyard, with wrk at 32 connections, non-streaming. Prints a summary table and writes target/bench/summary.json.
# See BENCHMARKS.md for what is measured and why it is set up this way.
#
#   bash scripts/bench.sh
#
# Knobs (environment):
#   BENCH_ROUNDS=3         rounds of measuring: each round runs every path once, in an
#                          order that rotates from round to round (see "Rounds" below)
#   BENCH_DURATION=10      seconds per path per saturation round
#   BENCH_WARMUP=5         seconds of warm-up for each path before the first round
#   BENCH_FIXED_DURATION=8 seconds per path per fixed-load round
#   BENCH_THINK_MS=10      per-connection pause between requests in the fixed-load runs
#   BENCH_CONNECTIONS=32   BENCH_WRK_THREADS=2
#   BENCH_PIN=1            pin wrk+mock to BENCH_LOAD_CPUS and the proxy under test to
#                          BENCH_PROXY_CPUS (defaults 0 and 1); BENCH_PIN=0: no pinning
#   BENCH_NICE=-10         niceness of everything measured (root only), so that other work on a
#                          shared machine (builds) disturbs the runs less; 0 to disable
#   BENCH_QUIET_WAIT=60    seconds to wait for other processes to calm down before measuring
#   BENCH_MIN_REQUESTS=100000  requests the gateway must have served before its RSS is read
#   BENCH_LEDGER_BATCH=    ledger.batch_size for the gateway (default: the gateway's own)
#   BENCH_PORT_BASE=19100  mock = +1, nginx = +2, gateway = +3, bare proxy = +4 (127.0.0.1 only)
#   BENCH_SKIP_BUILD=1     use the existing target/release binaries
#
# Bounded: every wrk run has a duration and a `timeout`; the measuring takes 3-5 minutes
# on 2 cores (plus up to BENCH_QUIET_WAIT, plus the build). Everything it starts is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

ROUNDS=${BENCH_ROUNDS:-3}
DURATION=${BENCH_DURATION:-10}
WARMUP=${BENCH_WARMUP:-5}
FIXED_DURATION=${BENCH_FIXED_DURATION:-8}
THINK_MS=${BENCH_THINK_MS:-10}
CONNS=${BENCH_CONNECTIONS:-32}
WRK_THREADS=${BENCH_WRK_THREADS:-2}
PIN=${BENCH_PIN:-1}
LOAD_CPUS=${BENCH_LOAD_CPUS:-0}
PROXY_CPUS=${BENCH_PROXY_CPUS:-1}
MIN_REQUESTS=${BENCH_MIN_REQUESTS:-100000}
LEDGER_BATCH=${BENCH_LEDGER_BATCH:-}
PORT_BASE=${BENCH_PORT_BASE:-19100}
MOCK_PORT=$((PORT_BASE + 1))
NGINX_PORT=$((PORT_BASE + 2))
GW_PORT=$((PORT_BASE + 3))
BARE_PORT=$((PORT_BASE + 4))
OUT_DIR=$ROOT/target/bench

log() { printf 'bench.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------- tools
need_install=()
command -v wrk >/dev/null 2>&1 || need_install+=(wrk)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need_install+=(nginx)
command -v curl >/dev/null 2>&1 || need_install+=(curl)
command -v taskset >/dev/null 2>&1 || need_install+=(util-linux)
if [ ${#need_install[@]} -gt 0 ]; then
    [ "$(id -u)" = 0 ] || die "missing ${need_install[*]}; install them (apt-get install -y ${need_install[*]}) or run as root"
    command -v apt-get >/dev/null 2>&1 || die "missing ${need_install[*]} and no apt-get to install them"
    # Only refresh the package lists when they do not know a candidate yet.
    if apt-cache policy "${need_install[@]}" 2>/dev/null | grep -q 'Candidate: (none)' \
        || [ -z "$(apt-cache policy "${need_install[@]}" 2>/dev/null)" ]; then
        log "apt-get update"
        apt-get update -qq
    fi
    log "installing ${need_install[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_install[@]}" >/dev/null
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

# ---------------------------------------------------------------- build
if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
    log "cargo build --release --bin switchyard --example bench_upstream --example bare_proxy"
    cargo build --release --bin switchyard --example bench_upstream --example bare_proxy
fi
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
GATEWAY_BIN=$TARGET_DIR/release/switchyard
MOCK_BIN=$TARGET_DIR/release/examples/bench_upstream
BARE_BIN=$TARGET_DIR/release/examples/bare_proxy
[ -x "$GATEWAY_BIN" ] && [ -x "$MOCK_BIN" ] && [ -x "$BARE_BIN" ] || die "binaries missing; build them first"

# ---------------------------------------------------------------- processes
WORK=$(mktemp -d -t switchyard-bench.XXXXXX)
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        # Bounded wait, then force.
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
    done
    if [ "${BENCH_KEEP_WORKDIR:-0}" = 1 ]; then log "work dir kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

NICE=${BENCH_NICE:-$([ "$(id -u)" = 0 ] && echo -10 || echo 0)}
if [ "$NICE" != 0 ]; then PRIO=(nice -n "$NICE"); else PRIO=(); fi

if [ "$PIN" = 1 ] && [ "$(nproc)" -ge 2 ]; then
    LOAD=("${PRIO[@]}" taskset -c "$LOAD_CPUS")
    PROXY=("${PRIO[@]}" taskset -c "$PROXY_CPUS")
    PROXY_NCPU=$(taskset -c "$PROXY_CPUS" nproc)
    PIN_DESC="wrk+mock on CPU $LOAD_CPUS, proxy under test on CPU $PROXY_CPUS"
else
    PIN=0
    LOAD=("${PRIO[@]}")
    PROXY=("${PRIO[@]}")
    PROXY_NCPU=$(nproc)
    PIN_DESC="no pinning: everything shares all $(nproc) CPUs"
fi
[ "$NICE" != 0 ] && PIN_DESC="$PIN_DESC; all at nice $NICE"
log "$PIN_DESC"

for port in "$MOCK_PORT" "$NGINX_PORT" "$GW_PORT" "$BARE_PORT"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then die "port $port is in use; set BENCH_PORT_BASE"; fi
done

wait_http() { # url pid name
    for _ in $(seq 100); do
        kill -0 "$2" 2>/dev/null || die "$3 exited at startup (logs in $WORK)"
        curl -fsS -o /dev/null --max-time 1 "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    die "$3 did not become ready at $1"
}

# The mock upstream.
"${LOAD[@]}" "$MOCK_BIN" --listen "127.0.0.1:$MOCK_PORT" >"$WORK/mock.log" 2>&1 &
MOCK_PID=$!
PIDS+=("$MOCK_PID")
wait_http "http://127.0.0.1:$MOCK_PORT/healthz" "$MOCK_PID" mock

# nginx: one worker per CPU it may use (like the gateway's one tokio worker per CPU),
# keep-alive to the upstream, no access log, no per-connection request cap.
mkdir -p "$WORK/nginx"
cat >"$WORK/nginx/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes $PROXY_NCPU;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $WORK/nginx/body;
    proxy_temp_path $WORK/nginx/proxy;
    fastcgi_temp_path $WORK/nginx/fastcgi;
    uwsgi_temp_path $WORK/nginx/uwsgi;
    scgi_temp_path $WORK/nginx/scgi;
    keepalive_requests 10000000;
    keepalive_timeout 120s;
    upstream mock {
        server 127.0.0.1:$MOCK_PORT;
        keepalive 64;
        keepalive_requests 10000000;
    }
    server {
        listen 127.0.0.1:$NGINX_PORT;
        location / {
            proxy_pass http://mock;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
        location = /nginx-healthz { return 200 "ok"; }
    }
}
EOF
"${PROXY[@]}" "$NGINX" -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -e "$WORK/nginx/error.log" >"$WORK/nginx/stdout.log" 2>&1 &
NGINX_PID=$!
PIDS+=("$NGINX_PID")
wait_http "http://127.0.0.1:$NGINX_PORT/nginx-healthz" "$NGINX_PID" nginx

# The bare hyper proxy: what the gateway's HTTP crates cost with nothing else to do.
"${PROXY[@]}" "$BARE_BIN" --listen "127.0.0.1:$BARE_PORT" --upstream "127.0.0.1:$MOCK_PORT" >"$WORK/bare.log" 2>&1 &
BARE_PID=$!
PIDS+=("$BARE_PID")
wait_http "http://127.0.0.1:$BARE_PORT/healthz" "$BARE_PID" bare

# The gateway: one route, one openai-compatible target, SQLite ledger in the work dir.
{
    echo '[server]'
    echo "listen = \"127.0.0.1:$GW_PORT\""
    echo
    echo '[ledger]'
    echo "url = \"sqlite://$WORK/ledger.db\""
    [ -n "$LEDGER_BATCH" ] && echo "batch_size = $LEDGER_BATCH"
    echo
    echo '[providers.mock]'
    echo 'kind = "openai-compatible"'
    echo "base_url = \"http://127.0.0.1:$MOCK_PORT/v1\""
    echo '# Priced as OpenAI, so the ledger path does the same work as for real traffic.'
    echo 'catalog = "openai"'
    echo
    echo '[routes.bench]'
    echo 'targets = [{ provider = "mock", model = "gpt-4.1-mini" }]'
} >"$WORK/gateway.toml"
"$GATEWAY_BIN" check --config "$WORK/gateway.toml" >/dev/null || die "gateway config rejected: $WORK/gateway.toml"
RUST_LOG=warn "${PROXY[@]}" "$GATEWAY_BIN" serve --config "$WORK/gateway.toml" --listen "127.0.0.1:$GW_PORT" >"$WORK/gateway.log" 2>&1 &
GW_PID=$!
PIDS+=("$GW_PID")
wait_http "http://127.0.0.1:$GW_PORT/healthz" "$GW_PID" gateway

# ---------------------------------------------------------------- load
BODY='{"model":"bench","messages":[{"role":"system","content":"You are a concise assistant."},{"role":"user","content":"What is the capital of France? Answer in one sentence."}],"max_tokens":64,"temperature":0.2}'
cat >"$WORK/post.lua" <<EOF
wrk.method = "POST"
wrk.body = '$BODY'
wrk.headers["Content-Type"] = "application/json"
-- Optional cap: each thread stops after BENCH_CAP responses and leaves a marker file,
-- so the script can end the run once every thread is done (see run_capped).
local cap = tonumber(os.getenv("BENCH_CAP") or "0")
local count = 0
function setup(thread)
    thread_count = (thread_count or 0) + 1
    thread:set("id", thread_count)
end
if cap > 0 then
    function response(status, headers, body)
        count = count + 1
        if count == cap then
            local f = io.open(os.getenv("BENCH_CAP_DIR") .. "/done-" .. tostring(id), "w")
            if f then f:close() end
            wrk.thread:stop()
        end
    end
end
local think = tonumber(os.getenv("BENCH_THINK") or "0")
if think > 0 then
    function delay() return think end
end
function done(summary, latency, requests)
    local f = assert(io.open(os.getenv("BENCH_RESULT"), "w"))
    local e = summary.errors
    f:write(string.format("requests=%d\nduration_us=%d\nrps=%.1f\n", summary.requests, summary.duration,
        summary.requests / (summary.duration / 1e6)))
    f:write(string.format("p50_us=%d\np90_us=%d\np99_us=%d\np999_us=%d\nmax_us=%d\nmean_us=%.1f\n",
        latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
        latency.max, latency.mean))
    f:write(string.format("errors=%d\n", e.connect + e.read + e.write + e.status + e.timeout))
    f:close()
end
EOF

# Sanity: every path answers the same body with 200.
for target in "direct:$MOCK_PORT" "nginx:$NGINX_PORT" "bare:$BARE_PORT" "gateway:$GW_PORT"; do
    name=${target%%:*}; port=${target#*:}
    answer=$(curl -sS --max-time 5 -w '\n%{http_code}' -H 'content-type: application/json' -d "$BODY" "http://127.0.0.1:$port/v1/chat/completions")
    code=${answer##*$'\n'}
    [ "$code" = 200 ] && grep -q '"chat.completion"' <<<"$answer" || die "$name answered $code: ${answer%$'\n'*}"
done

url_of() {
    case $1 in
        direct) echo "http://127.0.0.1:$MOCK_PORT/v1/chat/completions" ;;
        nginx) echo "http://127.0.0.1:$NGINX_PORT/v1/chat/completions" ;;
        bare) echo "http://127.0.0.1:$BARE_PORT/v1/chat/completions" ;;
        gateway) echo "http://127.0.0.1:$GW_PORT/v1/chat/completions" ;;
    esac
}
get() { awk -F= -v k="$2" '$1 == k { print $2 }' "$1"; }
# CPU ticks (user+system, or only "user" or "sys") of a process and its child processes (nginx workers).
cpu_ticks() {
    local total=0 pid
    for pid in "$1" $(pgrep -P "$1" || true); do
        if [ -r "/proc/$pid/stat" ]; then
            total=$((total + $(awk -v part="${2:-all}" '{ sub(/^.*\) /, ""); print (part == "user" ? $12 : part == "sys" ? $13 : $12 + $13) }' "/proc/$pid/stat")))
        fi
    done
    echo "$total"
}
proxy_pid() { case $1 in nginx) echo "$NGINX_PID" ;; bare) echo "$BARE_PID" ;; gateway) echo "$GW_PID" ;; *) echo "" ;; esac; }
GW_REQUESTS=0

# Busy CPU ticks of the whole machine (user, nice, system, irq, softirq, steal).
machine_busy() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }
# CPU ticks of everything this script runs in the background (mock, nginx, bare proxy, gateway).
ours_ticks() { echo $(( $(cpu_ticks "$MOCK_PID") + $(cpu_ticks "$NGINX_PID") + $(cpu_ticks "$BARE_PID") + $(cpu_ticks "$GW_PID") )); }
NCPU=$(nproc)
CLK_TCK=$(getconf CLK_TCK)
# Percent of the machine's CPU used by anything else (other users' builds, ...).
other_pct() { # busy_delta ours_delta ms
    awk -v b="$1" -v o="$2" -v ms="$3" -v n="$NCPU" -v hz="$CLK_TCK" 'BEGIN { x = 100 * (b - o) / (ms / 1000 * hz * n); printf "%.1f", (x < 0 ? 0 : x) }'
}
now_ms() { date +%s%3N; }

# Waits (bounded) until the machine is quiet enough to measure: others using < 10%.
wait_quiet() {
    local limit=${BENCH_QUIET_WAIT:-60} waited=0 b0 o0 t0 pct
    while :; do
        b0=$(machine_busy); o0=$(ours_ticks); t0=$(now_ms)
        sleep 2
        pct=$(other_pct $(( $(machine_busy) - b0 )) $(( $(ours_ticks) - o0 )) $(( $(now_ms) - t0 )))
        awk -v p="$pct" 'BEGIN { exit !(p < 10) }' && return 0
        if [ "$waited" -ge "$limit" ]; then
            log "warning: other processes still use ${pct}% of the CPUs; measuring anyway (see the 'other CPU' column)"
            return 0
        fi
        log "other processes use ${pct}% of the CPUs; waiting for quiet (${waited}/${limit}s)"
        waited=$((waited + 2))
    done
}

# run_wrk NAME LABEL SECONDS THINK_MS -> result file $WORK/NAME-LABEL.txt
run_wrk() {
    local name=$1 label=$2 secs=$3 think=$4 result="$WORK/$1-$2.txt" pid before after b0 o0 t0 wrk_ticks
    pid=$(proxy_pid "$name")
    before=$([ -n "$pid" ] && cpu_ticks "$pid" || echo 0)
    local sys_before
    sys_before=$([ -n "$pid" ] && cpu_ticks "$pid" sys || echo 0)
    b0=$(machine_busy); o0=$(ours_ticks); t0=$(now_ms)
    local TIMEFORMAT='%3U %3S'
    { time BENCH_RESULT="$result" BENCH_THINK="$think" timeout $((secs + 30)) \
        "${LOAD[@]}" wrk -t "$WRK_THREADS" -c "$CONNS" -d "${secs}s" --timeout 5s -s "$WORK/post.lua" "$(url_of "$name")" \
        >"$WORK/$name-$label.wrk" 2>&1; } 2>"$WORK/$name-$label.time" \
        || die "wrk failed for $name ($label): $(cat "$WORK/$name-$label.wrk")"
    wrk_ticks=$(awk -v hz="$CLK_TCK" '{ printf "%d", ($1 + $2) * hz }' "$WORK/$name-$label.time")
    after=$([ -n "$pid" ] && cpu_ticks "$pid" || echo 0)
    {
        echo "cpu_ticks=$((after - before))"
        echo "cpu_sys_ticks=$(( $([ -n "$pid" ] && cpu_ticks "$pid" sys || echo 0) - sys_before ))"
        echo "other_cpu_pct=$(other_pct $(( $(machine_busy) - b0 )) $(( $(ours_ticks) - o0 + wrk_ticks )) $(( $(now_ms) - t0 )))"
    } >>"$result"
    [ "$name" = gateway ] && GW_REQUESTS=$((GW_REQUESTS + $(get "$result" requests)))
    local errors
    errors=$(get "$result" errors)
    [ "$errors" = 0 ] || log "warning: $name $label: $errors errors (see $WORK/$name-$label.wrk)"
    log "$(printf '%-8s %-9s %8.0f req/s  p50 %6d us  p99 %6d us  (others: %s%% CPU)' "$name" "$label" "$(get "$result" rps)" \
        "$(get "$result" p50_us)" "$(get "$result" p99_us)" "$(get "$result" other_cpu_pct)")"
}

# run_capped NAME LABEL TOTAL MAX_SECONDS: saturating load that stops once TOTAL
# responses (split over the wrk threads) have arrived, or after MAX_SECONDS.
run_capped() {
    local name=$1 label=$2 total=$3 max=$4 result="$WORK/$1-$2.txt" caps="$WORK/caps-$1-$2" wrk_pid
    mkdir -p "$caps"
    BENCH_RESULT="$result" BENCH_THINK=0 BENCH_CAP=$(( (total + WRK_THREADS - 1) / WRK_THREADS )) BENCH_CAP_DIR="$caps" \
        "${LOAD[@]}" wrk -t "$WRK_THREADS" -c "$CONNS" -d "${max}s" --timeout 5s -s "$WORK/post.lua" "$(url_of "$name")" \
        >"$WORK/$name-$label.wrk" 2>&1 &
    wrk_pid=$!
    for _ in $(seq $((max * 10 + 50))); do
        [ "$(find "$caps" -name 'done-*' | wc -l)" -ge "$WRK_THREADS" ] && break
        kill -0 "$wrk_pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -INT "$wrk_pid" 2>/dev/null || true # wrk prints its summary on SIGINT
    wait "$wrk_pid" || die "wrk failed for $name ($label): $(cat "$WORK/$name-$label.wrk")"
    [ "$name" = gateway ] && GW_REQUESTS=$((GW_REQUESTS + $(get "$result" requests)))
    log "$(printf '%-8s %-9s %8d requests in %.1f s' "$name" "$label" "$(get "$result" requests)" \
        "$(awk -v d="$(get "$result" duration_us)" 'BEGIN { print d / 1e6 }')")"
}

status_kib() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }

wait_quiet
# 0. Memory: the freshly started gateway serves MIN_REQUESTS requests (saturating, 32
#    connections), then its resident set is read. Read again at the very end, after
#    everything else, to show whether it keeps growing with traffic.
GW_RSS_IDLE_KIB=$(status_kib "$GW_PID" VmRSS)
run_capped gateway memory "$MIN_REQUESTS" 240
sleep 1 # let the ledger writer write its last batch
GW_MEM_REQUESTS=$GW_REQUESTS
GW_RSS_KIB=$(status_kib "$GW_PID" VmRSS)
GW_HWM_KIB=$(status_kib "$GW_PID" VmHWM)
# Rounds: this machine's speed drifts by 10-20% over minutes (BENCHMARKS.md), more than
# the margins measured here. Each path is measured in ROUNDS short runs, interleaved with
# the others' and in an order that rotates, so a drift lands on every path alike instead
# of on whichever ran last; the rounds are then combined (combine_rounds) and the
# comparisons made round by round (round_ratios).
PATHS=(direct nginx bare gateway)
measure() { # MODE SECONDS THINK_MS
    local round i
    for round in $(seq "$ROUNDS"); do
        for i in "${!PATHS[@]}"; do
            run_wrk "${PATHS[$(( (i + round - 1) % ${#PATHS[@]} ))]}" "$1-$round" "$2" "$3"
        done
    done
    for i in "${PATHS[@]}"; do combine_rounds "$i" "$1"; done
}
# The median of the numbers on standard input, one per line.
median() { sort -g | awk '{ v[NR] = $1 } END { printf "%.3f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# Combines NAME-MODE-1.txt ... NAME-MODE-ROUNDS.txt into NAME-MODE.txt: counts and CPU
# summed (so req/s and CPU per request cover all rounds), latency percentiles the median
# of the rounds', the maximum the largest, other processes' CPU the worst round's.
combine_rounds() { # NAME MODE
    local files=() round key
    for round in $(seq "$ROUNDS"); do files+=("$WORK/$1-$2-$round.txt"); done
    awk -F= '
        $1 ~ /^(requests|duration_us|errors|cpu_ticks|cpu_sys_ticks)$/ { sum[$1] += $2 }
        $1 == "max_us" || $1 == "other_cpu_pct" { if (!($1 in top) || $2 + 0 > top[$1] + 0) top[$1] = $2 }
        $1 == "mean_us" { mean[FILENAME] = $2 }
        $1 == "requests" { count[FILENAME] = $2 }
        END {
            for (file in mean) weighted_mean += mean[file] * count[file]
            for (k in sum) printf "%s=%d\n", k, sum[k]
            printf "rps=%.1f\n", sum["requests"] / (sum["duration_us"] / 1e6)
            printf "mean_us=%.1f\n", weighted_mean / (sum["requests"] > 0 ? sum["requests"] : 1)
            for (k in top) printf "%s=%s\n", k, top[k]
        }' "${files[@]}" >"$WORK/$1-$2.txt"
    for key in p50_us p90_us p99_us p999_us; do
        printf '%s=%.0f\n' "$key" "$(for round in "${files[@]}"; do get "$round" "$key"; done | median)" >>"$WORK/$1-$2.txt"
    done
}
# NAME's req/s over nginx's, round by round: "MEDIAN|ROUND1 ROUND2 ...".
round_ratios() { # NAME
    local round list=""
    for round in $(seq "$ROUNDS"); do
        list="$list $(calc %.3f "$(get "$WORK/$1-saturate-$round.txt" rps) / $(get "$WORK/nginx-saturate-$round.txt" rps)")"
    done
    echo "$(tr ' ' '\n' <<<"${list# }" | median)|${list# }"
}

# 1. Saturation: throughput and latency with 32 connections pushing as fast as they can.
for name in "${PATHS[@]}"; do
    run_wrk "$name" warmup "$WARMUP" 0
done
measure saturate "$DURATION" 0
# 2. Fixed load: same 32 connections, each pausing THINK_MS between requests, so every
#    path sees the same offered load well below capacity: latency without queueing.
measure fixed "$FIXED_DURATION" "$THINK_MS"
# 3. Memory again, after all the gateway's traffic.
sleep 1
GW_RSS_END_KIB=$(status_kib "$GW_PID" VmRSS)
GW_HWM_END_KIB=$(status_kib "$GW_PID" VmHWM)
GW_THREADS=$(status_kib "$GW_PID" Threads)
NGINX_RSS_KIB=0
for pid in "$NGINX_PID" $(pgrep -P "$NGINX_PID" || true); do
    NGINX_RSS_KIB=$((NGINX_RSS_KIB + $(status_kib "$pid" VmRSS)))
done
LEDGER_DEPTH=$(curl -fsS --max-time 5 "http://127.0.0.1:$GW_PORT/metrics" | awk '$1 == "switchyard_ledger_queue_depth" { print $2 }')
LEDGER_ROWS=$("$GATEWAY_BIN" report spend --by route --since 1h --format json --ledger "sqlite://$WORK/ledger.db" 2>/dev/null \
    | grep -o '"requests": *[0-9]*' | head -1 | grep -o '[0-9]*$' || echo "?")
[ "$GW_MEM_REQUESTS" -ge "$MIN_REQUESTS" ] || log "warning: the gateway served only $GW_MEM_REQUESTS requests (< $MIN_REQUESTS) before its RSS was read"

# ---------------------------------------------------------------- summary
f() { get "$WORK/$1.txt" "$2"; }
calc() { awk "BEGIN { printf \"$1\", $2 }"; }
added_p50_sat=$(( $(f gateway-saturate p50_us) - $(f direct-saturate p50_us) ))
added_p99_sat=$(( $(f gateway-saturate p99_us) - $(f direct-saturate p99_us) ))
added_p50_fix=$(( $(f gateway-fixed p50_us) - $(f direct-fixed p50_us) ))
added_p99_fix=$(( $(f gateway-fixed p99_us) - $(f direct-fixed p99_us) ))
nginx_added_p50_fix=$(( $(f nginx-fixed p50_us) - $(f direct-fixed p50_us) ))
nginx_added_p99_fix=$(( $(f nginx-fixed p99_us) - $(f direct-fixed p99_us) ))
IFS='|' read -r ratio ratio_rounds <<<"$(round_ratios gateway)"
IFS='|' read -r bare_ratio bare_ratio_rounds <<<"$(round_ratios bare)"
bare_added_p50_fix=$(( $(f bare-fixed p50_us) - $(f direct-fixed p50_us) ))
bare_added_p99_fix=$(( $(f bare-fixed p99_us) - $(f direct-fixed p99_us) ))
cpu_us_per_req() { # run [field] -> CPU microseconds the proxy used per request ("null" for direct)
    case $1 in direct-*) echo null ;; *) calc %.1f "$(f "$1" "${2:-cpu_ticks}") * 1000000 / $CLK_TCK / ($(f "$1" requests) > 0 ? $(f "$1" requests) : 1)" ;; esac
}
# nginx's CPU per request over the gateway's, at saturation: the throughput ratio were
# both proxies held back by their own CPU alone (informational; nginx at ~50k requests/s
# is partly held back by the load side sharing the other CPU, which lifts the throughput
# ratio above this one).
cpu_ratio=$(calc %.3f "$(cpu_us_per_req nginx-saturate) / $(cpu_us_per_req gateway-saturate)")
rss_mib=$(calc %.1f "$GW_RSS_KIB / 1024")
hwm_mib=$(calc %.1f "$GW_HWM_KIB / 1024")
idle_mib=$(calc %.1f "$GW_RSS_IDLE_KIB / 1024")
rss_end_mib=$(calc %.1f "$GW_RSS_END_KIB / 1024")
hwm_end_mib=$(calc %.1f "$GW_HWM_END_KIB / 1024")
# Growth of the resident set per 100k requests between the two readings.
growth_mib=$(calc %.1f "($GW_RSS_END_KIB - $GW_RSS_KIB) / 1024 / (($GW_REQUESTS - $GW_MEM_REQUESTS) > 0 ? ($GW_REQUESTS - $GW_MEM_REQUESTS) : 1) * 100000")
nginx_mib=$(calc %.1f "$NGINX_RSS_KIB / 1024")
verdict() { if awk "BEGIN { exit !($1) }"; then echo PASS; else echo MISS; fi; }
v_p99_fix=$(verdict "$added_p99_fix <= 1000")
v_tput=$(verdict "$ratio >= 0.70")
v_rss=$(verdict "$GW_RSS_KIB <= 60 * 1024")
CPU_MODEL=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ)

{
    echo
    echo "Switchyard gateway benchmark  $DATE  commit $(git describe --always --dirty 2>/dev/null || echo '?')"
    echo "$NCPU CPUs ($CPU_MODEL); $PIN_DESC"
    echo "wrk -c $CONNS -t $WRK_THREADS, non-streaming POST /v1/chat/completions;" \
        "$ROUNDS rounds of saturation ${DURATION}s and fixed load ${FIXED_DURATION}s (${THINK_MS} ms think time per connection) per path"
    echo
    printf '%-20s %8s %8s %8s %8s %9s %16s %8s\n' "run" "req/s" "p50 us" "p90 us" "p99 us" "p99.9 us" "proxy CPU us/req" "others"
    printf '%-20s %8s %8s %8s %8s %9s %16s %8s\n' "" "" "" "" "" "" "total (kernel)" "CPU %"
    for mode in saturate fixed; do
        for name in direct nginx bare gateway; do
            r=$name-$mode
            cpu=$(cpu_us_per_req $r)
            [ "$cpu" = null ] && cpu=- || cpu="$cpu ($(cpu_us_per_req $r cpu_sys_ticks))"
            printf '%-20s %8.0f %8d %8d %8d %9d %16s %8s\n' "$name ($([ $mode = fixed ] && echo fixed load || echo saturation))" \
                "$(f $r rps)" "$(f $r p50_us)" "$(f $r p90_us)" "$(f $r p99_us)" "$(f $r p999_us)" "$cpu" "$(f $r other_cpu_pct)"
        done
    done
    echo
    printf '%-44s %s\n' "gateway added latency, fixed load p50/p99" "${added_p50_fix} / ${added_p99_fix} us   (target p99 <= 1000 us: $v_p99_fix)"
    printf '%-44s %s\n' "gateway added latency, saturation p50/p99" "${added_p50_sat} / ${added_p99_sat} us   (queueing: informational only)"
    printf '%-44s %s\n' "nginx added latency, fixed load p50/p99" "${nginx_added_p50_fix} / ${nginx_added_p99_fix} us"
    printf '%-44s %s\n' "bare hyper proxy added latency, fixed p50/p99" "${bare_added_p50_fix} / ${bare_added_p99_fix} us"
    printf '%-44s %s\n' "gateway throughput / nginx (saturation)" "$ratio   (target >= 0.70: $v_tput; the median of rounds $ratio_rounds)"
    printf '%-44s %s\n' "bare hyper proxy throughput / nginx" "$bare_ratio   (about the ceiling on these crates; rounds $bare_ratio_rounds)"
    printf '%-44s %s\n' "nginx CPU per request / gateway's" "$cpu_ratio   (saturation; informational: the ratio by CPU alone)"
    printf '%-44s %s\n' "gateway RSS after $GW_MEM_REQUESTS requests" "$rss_mib MiB (peak $hwm_mib; idle before: $idle_mib)   (target <= 60 MiB: $v_rss)"
    printf '%-44s %s\n' "gateway RSS after $GW_REQUESTS requests" "$rss_end_mib MiB (peak $hwm_end_mib): $growth_mib MiB more per 100k requests"
    printf '%-44s %s\n' "nginx RSS (master + workers)" "$nginx_mib MiB"
    printf '%-44s %s\n' "gateway ledger rows written / queue depth" "${LEDGER_ROWS:-?} / ${LEDGER_DEPTH:-?}"
} | tee "$WORK/summary.txt"

mkdir -p "$OUT_DIR"
run_json() {
    printf '{"requests": %s, "rps": %s, "p50_us": %s, "p90_us": %s, "p99_us": %s, "p999_us": %s, "max_us": %s, "errors": %s, "proxy_cpu_us_per_request": %s, "proxy_kernel_cpu_us_per_request": %s, "other_cpu_pct": %s}' \
        "$(f "$1" requests)" "$(f "$1" rps)" "$(f "$1" p50_us)" "$(f "$1" p90_us)" "$(f "$1" p99_us)" "$(f "$1" p999_us)" \
        "$(f "$1" max_us)" "$(f "$1" errors)" "$(cpu_us_per_req "$1")" "$(cpu_us_per_req "$1" cpu_sys_ticks)" "$(f "$1" other_cpu_pct)"
}
cat >"$OUT_DIR/summary.json" <<EOF
{
  "date": "$DATE",
  "commit": "$(git rev-parse HEAD 2>/dev/null || echo unknown)",
  "uncommitted_changes": $([ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ] && echo true || echo false),
  "gateway_binary": "$GATEWAY_BIN",
  "machine": {"nproc": $NCPU, "cpu": "$CPU_MODEL", "pinned": $([ "$PIN" = 1 ] && echo true || echo false), "pinning": "$PIN_DESC"},
  "load": {"tool": "wrk", "connections": $CONNS, "threads": $WRK_THREADS, "rounds": $ROUNDS, "saturation_seconds_per_round": $DURATION, "fixed_load_seconds_per_round": $FIXED_DURATION, "think_ms": $THINK_MS},
  "saturation": {"direct": $(run_json direct-saturate), "nginx": $(run_json nginx-saturate), "bare_proxy": $(run_json bare-saturate), "gateway": $(run_json gateway-saturate)},
  "fixed_load": {"direct": $(run_json direct-fixed), "nginx": $(run_json nginx-fixed), "bare_proxy": $(run_json bare-fixed), "gateway": $(run_json gateway-fixed)},
  "gateway_added_latency_us": {"fixed_load": {"p50": $added_p50_fix, "p99": $added_p99_fix}, "saturation": {"p50": $added_p50_sat, "p99": $added_p99_sat}},
  "nginx_added_latency_us": {"fixed_load": {"p50": $nginx_added_p50_fix, "p99": $nginx_added_p99_fix}},
  "throughput_ratio_gateway_over_nginx": $ratio,
  "throughput_ratio_gateway_over_nginx_by_round": [$(echo $ratio_rounds | tr ' ' ',')],
  "throughput_ratio_bare_proxy_over_nginx": $bare_ratio,
  "throughput_ratio_bare_proxy_over_nginx_by_round": [$(echo $bare_ratio_rounds | tr ' ' ',')],
  "cpu_per_request_ratio_nginx_over_gateway": $cpu_ratio,
  "bare_proxy_added_latency_us": {"fixed_load": {"p50": $bare_added_p50_fix, "p99": $bare_added_p99_fix}},
  "gateway_memory": {"requests_served": $GW_MEM_REQUESTS, "rss_mib": $rss_mib, "peak_rss_mib": $hwm_mib, "idle_rss_mib": $idle_mib,
    "end": {"requests_served": $GW_REQUESTS, "rss_mib": $rss_end_mib, "peak_rss_mib": $hwm_end_mib, "growth_mib_per_100k_requests": $growth_mib}, "threads": $GW_THREADS},
  "nginx_rss_mib": $nginx_mib,
  "ledger": {"rows": "${LEDGER_ROWS:-?}", "queue_depth": "${LEDGER_DEPTH:-?}", "batch_size": "${LEDGER_BATCH:-default}"},
  "targets": {"added_p99_us_max": 1000, "throughput_ratio_min": 0.70, "rss_mib_max": 60},
  "verdicts": {"added_p99_fixed_load": "$v_p99_fix", "throughput": "$v_tput", "rss_after_min_requests": "$v_rss"}
}
EOF
log "wrote $OUT_DIR/summary.json"
