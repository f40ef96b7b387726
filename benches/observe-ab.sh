#!/usr/bin/env bash
# What request logs and metrics cost AddPoints (issue 15: at most 3 % of its throughput).
# Three ledgerd servers of this tree, each on a fresh directory:
#
#   quiet    RUST_LOG=warn, no --metrics: no request lines, no series kept
#   log      RUST_LOG=info: one request line per call, to a file as a log shipper would read it
#   metrics  RUST_LOG=info and --metrics 127.0.0.1:0, scraped once a second while it runs
#
# then `ledger bench --op add-points` against each in interleaved rounds, so that each
# round's runs share the machine's load of that minute. Prints each run, the medians per
# setup, and each setup's median throughput as a share of quiet's.
#
#   benches/observe-ab.sh [--rounds N] [--seconds S] [--clients C] [--debug]
#
# Builds the release binaries first (--debug: the debug ones, to check this script
# quickly; their figures mean nothing). Needs python3 for the medians, curl for scrapes.
set -euo pipefail

rounds=5
seconds=8
clients=16
profile=release
while [ $# -gt 0 ]; do
    case $1 in
        --rounds) rounds=$2; shift 2 ;;
        --seconds) seconds=$2; shift 2 ;;
        --clients) clients=$2; shift 2 ;;
        --debug) profile=debug; shift ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done

cd "$(dirname "$0")/.."
if [ "$profile" = release ]; then
    cargo build --release -p ledger-grpc --bins >&2
else
    cargo build -p ledger-grpc --bins >&2
fi
target=${CARGO_TARGET_DIR:-target}
ledgerd=$target/$profile/ledgerd
ledger=$target/$profile/ledger
workdir=$(mktemp -d)
pids=()
# The servers (and the scraper) stop, the servers with SIGTERM (a clean shutdown),
# before their directories go.
trap 'kill "${pids[@]}" 2>/dev/null || true; wait; rm -rf "$workdir"' EXIT

# start NAME RUST_LOG [FLAGS...]: writes $workdir/NAME.pid and NAME.address once it listens;
# its stdout (the start lines) in NAME.out, its log (stderr) in NAME.log.
start() {
    local name=$1 level=$2
    shift 2
    RUST_LOG=$level "$ledgerd" --data-dir "$workdir/$name" --listen 127.0.0.1:0 "$@" \
        >"$workdir/$name.out" 2>"$workdir/$name.log" &
    echo $! >"$workdir/$name.pid"
    pids+=($!)
    for _ in $(seq 300); do
        grep -q 'listening on' "$workdir/$name.out" 2>/dev/null && break
        sleep 0.1
    done
    grep -o 'listening on 127.0.0.1:[0-9]*' "$workdir/$name.out" | grep -o '127.*' >"$workdir/$name.address"
}

# run NAME: one bench line against server NAME, prefixed with its name, then the
# server's CPU ticks over it (utime + stime): CPU per call is what the log and the
# metrics add, and it is steadier than throughput on a shared machine.
run() {
    local pid line ticks_before ticks_after
    pid=$(cat "$workdir/$1.pid")
    ticks_before=$(awk '{print $14 + $15}' "/proc/$pid/stat")
    line=$("$ledger" --addr "$(cat "$workdir/$1.address")" --token-file "$workdir/$1/admin.token" \
        bench --program ab --op add-points --clients "$clients" --seconds "$seconds" --server-pid "$pid" 2>/dev/null)
    ticks_after=$(awk '{print $14 + $15}' "/proc/$pid/stat")
    echo "$1 $line $((ticks_after - ticks_before))"
}

start quiet warn
start log info
start metrics info --metrics 127.0.0.1:0
metrics_url=$(grep -o 'metrics on http://[^ ]*' "$workdir/metrics.out" | cut -d' ' -f3)
# Scraped as Prometheus would, so that rendering the series counts too.
(while sleep 1; do curl --silent --output /dev/null "$metrics_url" || true; done) &
pids+=($!)

for round in $(seq "$rounds"); do
    echo "round $round $(date -u +%T) load $(cut -d' ' -f1 /proc/loadavg)" >&2
    # Each round starts with the next setup, so that none always runs first (or
    # always right after another server's run, whose checkpoint may still be going).
    case $((round % 3)) in
        1) order="quiet log metrics" ;;
        2) order="log metrics quiet" ;;
        0) order="metrics quiet log" ;;
    esac
    for name in $order; do
        run "$name"
    done
done | python3 -c '
import json, statistics, sys
ticks_per_s = 100  # USER_HZ on Linux
runs = {}
for line in sys.stdin:
    label, rest = line.split(" ", 1)
    report, ticks = rest.strip().rsplit(" ", 1)
    report = json.loads(report)
    cpu_us = int(ticks) * 1e6 / ticks_per_s / max(report["requests"], 1)
    row = (report["ops_per_s"], report["p50_ms"], report["p99_ms"], cpu_us)
    errors = report["errors"]
    runs.setdefault(label, []).append(row)
    print(f"{label:8} {row[0]:>9.0f} ops/s  p50 {row[1]:.3f} ms  p99 {row[2]:.3f} ms  server CPU {row[3]:.1f} us/call  errors {errors}")
print("medians:")
medians = {label: [statistics.median(column) for column in zip(*rows)] for label, rows in runs.items()}
base = medians["quiet"]
for label, median in medians.items():
    share = median[0] / base[0] if base[0] else float("nan")
    cpu = median[3] / base[3] if base[3] else float("nan")
    print(f"{label:8} {median[0]:>9.0f} ops/s  p50 {median[1]:.3f} ms  p99 {median[2]:.3f} ms  {share:6.1%} of quiet"
          f"  server CPU {median[3]:.1f} us/call  {cpu:6.1%} of quiet")
'
lines=$(grep -c 'ledgerd::request' "$workdir/log.log" || true)
echo "request lines logged by log: $lines" >&2
