#!/usr/bin/env bash
# AddPoints over gRPC and over HTTP/JSON (Connect) against this tree's ledgerd, and
# optionally over gRPC against another build's (the A/B of issue 13: HTTP beside gRPC
# must cost gRPC nothing, and an HTTP AddPoints at most 1.5 x a gRPC one).
#
#   benches/http-ab.sh [--base PATH/TO/OTHER/ledgerd] [--rounds N] [--seconds S] [--clients C]
#
# Builds the release binaries, starts the servers on fresh directories, then runs
# `ledger bench --op add-points` (this tree's client for every run) in interleaved
# rounds, so that each round's runs share the machine's load of that minute. Prints
# each run and the medians: throughput, latency, and the server's CPU per call
# (utime + stime from /proc over the run, divided by the calls), the figure that
# least depends on what else the machine runs. Needs python3 for the medians.
#
# A base build of another commit, for example main before a change:
#   git worktree add --detach /tmp/base COMMIT
#   (cd /tmp/base && CARGO_TARGET_DIR=/tmp/base-target cargo build --release -p ledger-grpc --bins)
#   benches/http-ab.sh --base /tmp/base-target/release/ledgerd
#   git worktree remove /tmp/base; rm -rf /tmp/base-target
set -euo pipefail

base=""
rounds=5
seconds=8
clients=16
while [ $# -gt 0 ]; do
    case $1 in
        --base) base=$2; shift 2 ;;
        --rounds) rounds=$2; shift 2 ;;
        --seconds) seconds=$2; shift 2 ;;
        --clients) clients=$2; shift 2 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done

cd "$(dirname "$0")/.."
cargo build --release -p ledger-grpc --bins >&2
target=${CARGO_TARGET_DIR:-target}
ledger=$target/release/ledger
workdir=$(mktemp -d)
pids=()
# The servers stop (SIGTERM, a clean shutdown) before their directories go.
trap 'kill "${pids[@]}" 2>/dev/null || true; wait; rm -rf "$workdir"' EXIT

# start NAME LEDGERD: writes $workdir/NAME.pid, and NAME.address once it listens.
start() {
    "$2" --data-dir "$workdir/$1" --listen 127.0.0.1:0 >"$workdir/$1.out" 2>&1 &
    echo $! >"$workdir/$1.pid"
    pids+=($!)
    for _ in $(seq 100); do
        grep -q 'listening on' "$workdir/$1.out" 2>/dev/null && break
        sleep 0.1
    done
    grep -o 'listening on 127.0.0.1:[0-9]*' "$workdir/$1.out" | grep -o '127.*' >"$workdir/$1.address"
}

# run LABEL NAME ADDRESS TRANSPORT: one bench line, then the server's CPU ticks over it.
run() {
    local pid ticks_before line ticks_after
    pid=$(cat "$workdir/$2.pid")
    ticks_before=$(awk '{print $14 + $15}' "/proc/$pid/stat")
    line=$("$ledger" --addr "$3" --token-file "$workdir/$2/admin.token" bench --program ab --op add-points \
        --clients "$clients" --seconds "$seconds" --transport "$4" --server-pid "$pid" 2>/dev/null)
    ticks_after=$(awk '{print $14 + $15}' "/proc/$pid/stat")
    echo "$1 $line $((ticks_after - ticks_before))"
}

start new "$target/release/ledgerd"
new_address=$(cat "$workdir/new.address")
if [ -n "$base" ]; then
    start base "$base"
    base_address=$(cat "$workdir/base.address")
fi
for round in $(seq "$rounds"); do
    echo "round $round $(date -u +%T) load $(cut -d' ' -f1 /proc/loadavg)" >&2
    if [ -n "$base" ]; then run base-grpc base "$base_address" grpc; fi
    run grpc new "$new_address" grpc
    run http new "$new_address" http
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
    print(f"{label:10} {row[0]:>9.0f} ops/s  p50 {row[1]:.3f} ms  p99 {row[2]:.3f} ms  server CPU {row[3]:.1f} us/call  errors {errors}")
print("medians:")
for label, rows in runs.items():
    median = [statistics.median(column) for column in zip(*rows)]
    print(f"{label:10} {median[0]:>9.0f} ops/s  p50 {median[1]:.3f} ms  p99 {median[2]:.3f} ms  server CPU {median[3]:.1f} us/call")
'
