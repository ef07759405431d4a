#!/bin/sh
# Shows free space of the file system holding a folder, then its largest entries.
# Usage: disk-usage.sh FOLDER TOP
set -eu
folder=$1 top=$2

echo "== Free space"
df -h -- "$folder"
echo
echo "== The $top largest entries in $folder (KiB)"
# Unreadable entries are skipped quietly; this is a report, not an audit.
du -k -a -x -- "$folder" 2>/dev/null | sort -rn | head -n "$top"
