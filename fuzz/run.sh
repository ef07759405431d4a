#!/bin/sh
# Runs every fuzz target for a while (default 600 s each, two at a time) and prints
# what libFuzzer reports at the end: executions, speed, coverage, and any crash.
#
#   fuzz/run.sh [SECONDS [TARGET...]]
#
# Needs the nightly toolchain and cargo-fuzz (cargo install cargo-fuzz --locked).
# Crashes are saved under fuzz/artifacts/TARGET/; reproduce one with
#   cargo +nightly fuzz run TARGET fuzz/artifacts/TARGET/crash-...
set -eu
cd "$(dirname "$0")"
seconds=${1:-600}
[ $# -gt 0 ] && shift
targets=${*:-manifest form_argv session_cookie next}
jobs=${FUZZ_JOBS:-2}

# Seeds: the bundled manifests, so the manifest fuzzer starts from real ones.
mkdir -p corpus/manifest
cp ../examples/*.toml corpus/manifest/

cargo +nightly fuzz build -O
mkdir -p logs
run() {
    cargo +nightly fuzz run -O "$1" -- -max_total_time="$seconds" -print_final_stats=1 \
        >"logs/$1.log" 2>&1 || echo "$1: FAILED (see fuzz/logs/$1.log)"
}
set -- $targets
while [ $# -gt 0 ]; do
    pids=
    n=0
    while [ $# -gt 0 ] && [ "$n" -lt "$jobs" ]; do
        run "$1" &
        pids="$pids $!"
        n=$((n + 1))
        shift
    done
    for pid in $pids; do wait "$pid"; done
done

printf '%-16s %14s %10s %8s %s\n' target executions "exec/s" edges result
for t in $targets; do
    log="logs/$t.log"
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    edges=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
    if grep -q 'SUMMARY: libFuzzer\|panicked at' "$log"; then result="CRASH (see $log)"; else result="no findings"; fi
    printf '%-16s %14s %10s %8s %s\n' "$t" "${runs:-?}" "${speed:-?}" "${edges:-?}" "$result"
done
