#!/usr/bin/env bash
# A member base being imported, then restarted: one row of the table in
# ARCHITECTURE.md ("Where memory goes").
#
#   benches/member-base.sh [--members N] [--no-references] [--cache-mib M] [--workdir DIR]
#
# Builds the release binaries, starts ledgerd on a fresh directory, imports N new
# members (1,000-item bulks, 4 clients; each item a new member and, unless
# --no-references, its own reference) with `ledger bench`, which prints the
# server's peak resident memory and the disk per event. Then it kills ledgerd
# with SIGKILL while a second import runs, and times the restart until a read
# answers; then a clean stop (SIGTERM) and the same timing. Needs a free port
# (it picks one) and disk for about 550 bytes per member.
set -euo pipefail

members=1000000
references=--references
cache_mib=256
workdir=$(mktemp -d)
while [ $# -gt 0 ]; do
    case $1 in
        --members) members=$2; shift 2 ;;
        --no-references) references=""; shift ;;
        --cache-mib) cache_mib=$2; shift 2 ;;
        --workdir) workdir=$2; shift 2 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done

cd "$(dirname "$0")/.."
cargo build --release --bins --quiet
bin=$PWD/target/release
mkdir -p "$workdir"
data=$workdir/ledger-data
rm -rf "$data"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
addr=127.0.0.1:$port

start() {
    "$bin/ledgerd" --data-dir "$data" --listen "$addr" --expiry-sweep-secs 0 --cache-mib "$cache_mib" \
        >>"$workdir/ledgerd.log" 2>&1 &
    pid=$!
}

# Starts ledgerd and sets `elapsed` to the seconds until a read of the first
# member answers (not in a subshell: `pid` must reach the caller).
time_start() {
    local begin end
    begin=$(date +%s.%N)
    start
    until "$bin/ledger" --addr "$addr" --token-file "$data/admin.token" \
        member show --program import member-000000000 >/dev/null 2>&1; do
        sleep 0.01
    done
    end=$(date +%s.%N)
    elapsed=$(python3 -c "print(f'{$end - $begin:.2f}')")
}

bench() {
    "$bin/ledger" --addr "$addr" --token-file "$data/admin.token" bench --program import --op bulk-add \
        --items 1000 --clients 4 --distinct $references "$@"
}

start
until [ -f "$data/admin.token" ] && grep -q listening "$workdir/ledgerd.log"; do sleep 0.05; done
echo "import of $members members ($cache_mib MiB of cache):"
bench --members "$members" --data-dir "$data" --settle-seconds 5

# A second import, killed with SIGKILL after 5 s.
"$bin/ledger" --addr "$addr" --token-file "$data/admin.token" bench --program import --op bulk-add \
    --items 1000 --clients 4 --distinct $references --members 100000000 --start "$members" --seconds 30 \
    >/dev/null 2>&1 &
loader=$!
sleep 5
kill -9 "$pid"
wait "$pid" 2>/dev/null || true
# The loader would go on writing into the restarted server.
kill "$loader" 2>/dev/null || true
wait "$loader" 2>/dev/null || true
time_start
echo "restart after SIGKILL under load: a read answers after $elapsed s"
grep -o 'ledger opened.*' "$workdir/ledgerd.log" | tail -1
sleep 3
echo "resident memory 3 s after that start: $(grep VmRSS /proc/$pid/status | awk '{print $2 / 1024}') MiB"
kill -TERM "$pid"
wait "$pid" || true
time_start
echo "clean restart: a read answers after $elapsed s"
grep -o 'ledger opened.*' "$workdir/ledgerd.log" | tail -1
kill -TERM "$pid"
wait "$pid" || true
echo "data directory: $data (ledgerd's log: $workdir/ledgerd.log)"
