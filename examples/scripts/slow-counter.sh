#!/bin/sh
# Counts up slowly, one line per step, so the output can be watched live (and cancelled).
# Usage: slow-counter.sh SECONDS
set -eu
seconds=$1

i=1
while [ "$i" -le "$seconds" ]; do
    if [ $((i % 2)) -eq 0 ]; then
        printf '\033[32mtick %d of %d\033[0m\n' "$i" "$seconds"
    else
        printf 'tick %d of %d\n' "$i" "$seconds"
    fi
    sleep 1
    i=$((i + 1))
done
echo "done after $seconds seconds" >&2
