#!/usr/bin/env bash
# Bounded load test: concurrent streaming requests through a route whose primary fails
# 30% of the time, against a real `switchyard serve` on 127.0.0.1. Not part of the
# default test suite (it needs a release build and takes a few minutes).
#
#   bash scripts/load-test.sh
#
# Passes (each with a fresh gateway and a fresh SQLite ledger):
#   5xx           primary fails 30% with a simulated 500 (default circuit breaker)
#   5xx-nobreaker the same with a breaker that never opens, so every request meets the
#                 30% primary and fails over itself
#   reset         primary fails 30% with a simulated connection reset
#   429           primary answers 30% with 429 and a short retry-after
# Each pass runs LOAD_WAVES waves of LOAD_CONCURRENCY streams started at once (default
# 5 x 1000 = 5,000 streams), samples the gateway's VmRSS/VmHWM from /proc, sends
# SIGTERM, waits for the drain and ledger flush, then checks the ledger with the
# library's LedgerStore (examples/load_test.rs --check-ledger) and with sqlite3.
#
# Targets, checked per pass: zero client-visible errors; ledger rows == streams sent,
# no id twice, the answering target and attempt count of every stream (response
# headers) agreeing with the ledger; failed attempts carry an error_kind;
# memory bounded (RSS after the last wave within LOAD_RSS_GROWTH_PCT of after wave 1).
# Writes target/load/summary.json and one JSON per pass; exits non-zero on a miss.
#
# Knobs (environment):
#   LOAD_CONCURRENCY=1000  LOAD_WAVES=5  LOAD_PASSES="5xx 5xx-nobreaker reset 429"
#   LOAD_PORT=19200 (127.0.0.1 only)  LOAD_TIMEOUT=60 (seconds, per request)
#   LOAD_RSS_GROWTH_PCT=50  LOAD_SKIP_BUILD=1  LOAD_KEEP_WORKDIR=1
#   LOAD_SCRAPE_INTERVAL=0  seconds between GET /metrics during the load (0: no scraping)
#   LOAD_GATEWAY_ENV=       extra environment for the gateway, e.g. "MALLOC_ARENA_MAX=2"
#   LOAD_LEDGER_BATCH=      ledger.batch_size for the gateway (default: the gateway's own)
#
# Bounded: every request has a timeout, every wait loop a limit, the gateway a drain
# timeout; after the build the default run takes about 1-2 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

CONCURRENCY=${LOAD_CONCURRENCY:-1000}
WAVES=${LOAD_WAVES:-5}
PASSES=${LOAD_PASSES:-"5xx 5xx-nobreaker reset 429"}
PORT=${LOAD_PORT:-19200}
REQ_TIMEOUT=${LOAD_TIMEOUT:-60}
RSS_GROWTH_PCT=${LOAD_RSS_GROWTH_PCT:-50}
OUT_DIR=$ROOT/target/load
SCRIPT_STARTED=$(date +%s)

log() { printf 'load-test.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# 1,000 client connections and 1,000 gateway connections per wave, plus slack.
if ! ulimit -n 65535 2>/dev/null; then
    ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
fi
log "open-file limit: $(ulimit -n)"
[ "$(ulimit -n)" = unlimited ] || [ "$(ulimit -n)" -ge $((CONCURRENCY * 2 + 256)) ] \
    || die "open-file limit $(ulimit -n) is too low for $CONCURRENCY concurrent streams"

# ---------------------------------------------------------------- build
if [ "${LOAD_SKIP_BUILD:-0}" != 1 ]; then
    log "cargo build --release --bin switchyard --example load_test"
    cargo build --release --bin switchyard --example load_test
fi
GATEWAY_BIN=$ROOT/target/release/switchyard
LOAD_BIN=$ROOT/target/release/examples/load_test
[ -x "$GATEWAY_BIN" ] && [ -x "$LOAD_BIN" ] || die "binaries missing; build them first"
HAVE_SQLITE=0
command -v sqlite3 >/dev/null 2>&1 && HAVE_SQLITE=1
command -v jq >/dev/null 2>&1 || die "jq is needed for the summary (apt-get install -y jq)"

# ---------------------------------------------------------------- processes
WORK=$(mktemp -d -t switchyard-load.XXXXXX)
# Private copies: a concurrent `cargo build --release` must not swap binaries mid-run.
mkdir -p "$WORK/bin"
cp "$GATEWAY_BIN" "$LOAD_BIN" "$WORK/bin/"
GATEWAY_BIN=$WORK/bin/switchyard
LOAD_BIN=$WORK/bin/load_test
GW_PID=
SCRAPER=
cleanup() {
    [ -z "$SCRAPER" ] || kill "$SCRAPER" 2>/dev/null || true
    if [ -n "$GW_PID" ]; then
        kill "$GW_PID" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$GW_PID" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$GW_PID" 2>/dev/null || true
    fi
    if [ "${LOAD_KEEP_WORKDIR:-0}" = 1 ]; then log "work dir kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then die "port $PORT is in use; set LOAD_PORT"; fi
mkdir -p "$OUT_DIR"

write_config() { # pass config-path ledger-path
    local pass=$1 config=$2 ledger=$3 failure breaker=""
    case "$pass" in
        5xx) failure='failure_kind = "5xx"' ;;
        5xx-nobreaker)
            failure='failure_kind = "5xx"'
            breaker='breaker = { consecutive_failures = 1000000, error_rate = 1.0, min_requests = 1000000 }' ;;
        reset) failure='failure_kind = "reset"' ;;
        429) failure='failure_kind = "429", retry_after = "50ms"' ;;
        *) die "unknown pass $pass" ;;
    esac
    cat >"$config" <<EOF
# Written by scripts/load-test.sh (pass $pass).
[server]
listen = "127.0.0.1:$PORT"
drain_timeout = "30s"

[ledger]
url = "sqlite://$ledger"
${LOAD_LEDGER_BATCH:+batch_size = $LOAD_LEDGER_BATCH}

[providers.flaky-primary]
kind = "sim"
catalog = "openai"
topology = { vendor = "openai", operator = "microsoft", cloud = "azure", region = "eastus2" }
sim = { time_to_first_token = "20ms", tokens_per_second = 2000, output_tokens = 50, failure_rate = 0.3, $failure }
$breaker

[providers.steady-secondary]
kind = "sim"
catalog = "anthropic"
topology = { vendor = "anthropic", operator = "aws", cloud = "aws", region = "us-west-2" }
sim = { time_to_first_token = "20ms", tokens_per_second = 2000, output_tokens = 50 }

[routes.load]
description = "Load test: a primary failing 30% of the time, a healthy secondary on another cloud."
targets = [
  { provider = "flaky-primary", model = "gpt-4.1-mini" },
  { provider = "steady-secondary", model = "claude-haiku-4-5" },
]
retries = 1
backoff = "20ms"
max_backoff = "100ms"
EOF
}

wait_ready() { # pid
    local pid=$1
    for _ in $(seq 300); do
        kill -0 "$pid" 2>/dev/null || return 1
        if curl -fsS -m 1 "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1; then return 0; fi
        sleep 0.1
    done
    return 1
}

FAILED=()
PASS_FILES=()
for pass in $PASSES; do
    dir=$WORK/$pass
    mkdir -p "$dir"
    config=$dir/switchyard.toml
    ledger=$dir/ledger.db
    write_config "$pass" "$config" "$ledger"
    "$GATEWAY_BIN" check --config "$config" >/dev/null || die "pass $pass: the generated config does not check"

    log "pass $pass: starting the gateway on 127.0.0.1:$PORT"
    env RUST_LOG="${RUST_LOG:-warn}" ${LOAD_GATEWAY_ENV:-} "$GATEWAY_BIN" serve --config "$config" >"$dir/gateway.log" 2>&1 &
    GW_PID=$!
    wait_ready "$GW_PID" || { tail -20 "$dir/gateway.log" >&2; die "pass $pass: the gateway did not become ready"; }
    SCRAPER=
    if [ "${LOAD_SCRAPE_INTERVAL:-0}" != 0 ]; then
        # As Prometheus would: GET /metrics every LOAD_SCRAPE_INTERVAL seconds (bounded loop).
        ( for _ in $(seq 3600); do curl -fsS -m 5 -o /dev/null "http://127.0.0.1:$PORT/metrics" || true; sleep "$LOAD_SCRAPE_INTERVAL"; done ) &
        SCRAPER=$!
    fi

    load_rc=0
    "$LOAD_BIN" --url "http://127.0.0.1:$PORT" --route load --requests "$CONCURRENCY" --waves "$WAVES" \
        --timeout "$REQ_TIMEOUT" --gateway-pid "$GW_PID" --label "$pass" \
        --json "$dir/load.json" >/dev/null || load_rc=$?
    if [ -n "$SCRAPER" ]; then kill "$SCRAPER" 2>/dev/null || true; wait "$SCRAPER" 2>/dev/null || true; SCRAPER=; fi
    [ -s "$dir/load.json" ] || die "pass $pass: the load generator wrote no results (exit $load_rc)"

    # Graceful shutdown: drain, flush the ledger, exit. Bounded by the drain timeout.
    log "pass $pass: SIGTERM, waiting for drain and ledger flush"
    term_at=$(date +%s%3N)
    kill -TERM "$GW_PID"
    exited=0
    # drain_timeout (30 s) plus time to write what the ledger queue still holds.
    for _ in $(seq 1200); do
        if ! kill -0 "$GW_PID" 2>/dev/null; then exited=1; break; fi
        sleep 0.1
    done
    gw_rc=0
    if [ "$exited" = 1 ]; then wait "$GW_PID" || gw_rc=$?; else kill -9 "$GW_PID" 2>/dev/null || true; wait "$GW_PID" 2>/dev/null || true; gw_rc=timeout; fi
    GW_PID=
    shutdown_ms=$(( $(date +%s%3N) - term_at ))

    sent=$(jq '.requests_sent' "$dir/load.json")
    check_rc=0
    "$LOAD_BIN" --check-ledger "sqlite://$ledger" --expect "$sent" --client-json "$dir/load.json" \
        --json "$dir/ledger.json" >/dev/null || check_rc=$?
    [ -s "$dir/ledger.json" ] || die "pass $pass: the ledger check wrote no results (exit $check_rc)"

    sqlite_json=null
    if [ "$HAVE_SQLITE" = 1 ]; then
        read -r rows distinct < <(sqlite3 -separator ' ' "$ledger" "SELECT COUNT(*), COUNT(DISTINCT id) FROM ledger_requests")
        kinds=$(sqlite3 -separator '=' "$ledger" "SELECT COALESCE(error_kind,'none'), COUNT(*) FROM ledger_attempts GROUP BY 1 ORDER BY 1" | paste -sd, -)
        sqlite_json=$(jq -n --argjson rows "$rows" --argjson distinct "$distinct" --arg kinds "$kinds" \
            '{rows: $rows, distinct_ids: $distinct, attempt_error_kinds: $kinds}')
    fi

    errors_log=$(grep -c -E ' ERROR |"level":"ERROR"' "$dir/gateway.log" || true)
    jq -n --arg pass "$pass" --slurpfile load "$dir/load.json" --slurpfile ledger "$dir/ledger.json" \
        --argjson sqlite "$sqlite_json" --arg gw_rc "$gw_rc" --argjson shutdown_ms "$shutdown_ms" \
        --argjson errors_log "$errors_log" \
        '{pass: $pass, load: $load[0], ledger: $ledger[0], sqlite3: $sqlite,
          gateway_exit: $gw_rc, shutdown_ms: $shutdown_ms,
          gateway_error_log_lines: $errors_log}' >"$OUT_DIR/$pass.json"
    PASS_FILES+=("$OUT_DIR/$pass.json")
    cp "$dir/gateway.log" "$OUT_DIR/$pass.gateway.log"

    # ------------------------------------------------------------ verdict for this pass
    misses=()
    client_errors=$(jq '.client_errors' "$dir/load.json")
    [ "$client_errors" = 0 ] || misses+=("$client_errors client-visible errors")
    [ "$load_rc" = 0 ] || misses+=("load generator exit $load_rc")
    [ "$check_rc" = 0 ] || misses+=("ledger check: $(jq -r '.problems | join("; ")' "$dir/ledger.json" | cut -c1-400)")
    [ "$gw_rc" = 0 ] || misses+=("gateway exit $gw_rc after SIGTERM")
    if [ "$HAVE_SQLITE" = 1 ] && [ "$(jq '.rows' <<<"$sqlite_json")" != "$sent" ]; then
        misses+=("sqlite3 counts $(jq '.rows' <<<"$sqlite_json") rows for $sent sent")
    fi
    first_rss=$(jq '.waves[0].gateway_rss_kib_after // 0' "$dir/load.json")
    last_rss=$(jq '.waves[-1].gateway_rss_kib_after // 0' "$dir/load.json")
    if [ "$WAVES" -gt 1 ] && [ "$first_rss" -gt 0 ] && [ "$last_rss" -gt $((first_rss * (100 + RSS_GROWTH_PCT) / 100)) ]; then
        misses+=("RSS grew from $first_rss KiB after wave 1 to $last_rss KiB after wave $WAVES")
    fi
    if [ ${#misses[@]} -gt 0 ]; then
        FAILED+=("$pass: $(IFS='; '; echo "${misses[*]}")")
        log "pass $pass: MISSED: ${misses[*]}"
    else
        log "pass $pass: ok"
    fi
done

# ---------------------------------------------------------------- summary
jq -s --arg concurrency "$CONCURRENCY" --arg waves "$WAVES" --arg seconds "$(( $(date +%s) - SCRIPT_STARTED ))" \
    '{concurrency: ($concurrency|tonumber), waves: ($waves|tonumber), script_seconds: ($seconds|tonumber), passes: .}' \
    "${PASS_FILES[@]}" >"$OUT_DIR/summary.json"

printf '\n%-14s %6s %6s %7s %7s %9s %9s %9s %9s %8s %9s %9s  %s\n' \
    pass sent errors ledger dupes ttfb_p50 ttfb_p99 total_p99 req/s failovr peakRSS_MB HWM_MB "answered by (ledger)"
for f in "${PASS_FILES[@]}"; do
    jq -r '[.pass, .load.requests_sent, .load.client_errors, .ledger.ledger_requests, .ledger.duplicate_ids,
            .load.ttfb.p50_ms, .load.ttfb.p99_ms, .load.total.p99_ms, .load.requests_per_second,
            .ledger.requests_with_failover_reason,
            (([.load.waves[].gateway_peak_rss_kib // 0] | max) / 1024 | floor),
            ((.load.gateway_memory_kib.hwm // 0) / 1024 | floor),
            (.ledger.answered_by_target | to_entries | map("\(.key)=\(.value)") | join(" "))] | @tsv' "$f" |
        awk -F'\t' '{printf "%-14s %6s %6s %7s %7s %9s %9s %9s %9s %8s %9s %9s  %s\n", $1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13}'
done
printf '\nattempt error kinds (ledger):\n'
for f in "${PASS_FILES[@]}"; do
    jq -r '"  \(.pass): \(.ledger.attempt_error_kinds | to_entries | map("\(.key)=\(.value)") | join(" ")); attempts \(.ledger.attempt_rows); per request \(.ledger.attempt_count_histogram | to_entries | map("\(.key)x\(.value)") | join(" "))"' "$f"
done
printf '\nRSS after each wave (MiB):\n'
for f in "${PASS_FILES[@]}"; do
    jq -r '"  \(.pass): before \((.load.gateway_memory_kib.before // 0) / 1024 | floor); " + ([.load.waves[] | "w\(.wave) \((.gateway_rss_kib_after // 0) / 1024 | floor) (peak \((.gateway_peak_rss_kib // 0) / 1024 | floor))"] | join(", ")) + "; settled \((.load.gateway_memory_kib.settled_after // 0) / 1024 | floor)"' "$f"
done
log "summary: $OUT_DIR/summary.json ($(( $(date +%s) - SCRIPT_STARTED )) s)"

if [ ${#FAILED[@]} -gt 0 ]; then
    for miss in "${FAILED[@]}"; do log "MISSED: $miss"; done
    exit 1
fi
log "all passes met the targets"
