#!/bin/sh
# The benchmark command: installs wrk if it is missing (Debian/Ubuntu), runs
# `cargo bench --bench ftw`, prints the table, and records it in BENCHMARKS.md between
# the "bench:start" and "bench:end" markers, with the machine it ran on.
#
#   bench/run.sh            # run and record
#   bench/run.sh --no-record
set -eu
cd "$(dirname "$0")/.."

if ! command -v wrk >/dev/null 2>&1; then
    if command -v apt-get >/dev/null 2>&1; then
        echo "== installing wrk"
        sudo_cmd=""
        [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
        $sudo_cmd apt-get update -qq
        $sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk
    else
        echo "wrk is not installed; the form page is measured with the built-in client" >&2
    fi
fi

cargo bench --bench ftw

if [ "${1:-}" = "--no-record" ]; then
    exit 0
fi
# Replace what lies between the markers with the new table.
awk -v table=target/bench.md '
    /<!-- bench:start -->/ { print; while ((getline line < table) > 0) print line; skip = 1; next }
    /<!-- bench:end -->/ { skip = 0 }
    !skip { print }
' BENCHMARKS.md > target/BENCHMARKS.md.new
mv target/BENCHMARKS.md.new BENCHMARKS.md
echo "== recorded in BENCHMARKS.md"
