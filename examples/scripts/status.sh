#!/bin/sh
# A quick look at the server: no arguments, so the index runs it with one click.
# Warnings go to stderr, which this tool shows tinted (stderr = "separate").
set -eu

echo "== $(uname -sn)"
echo "Time (UTC): $(date -u '+%Y-%m-%d %H:%M:%S')"
echo "Running as: $(id -un)"
echo
echo "== Free space here"
df -P -h . | tail -n 1
if [ "$(df -P . | awk 'NR == 2 { print $5 + 0 }')" -ge 90 ]; then
    echo "warning: this file system is over 90% full" >&2
fi
echo "warning: this is an example tool; nothing was changed" >&2
