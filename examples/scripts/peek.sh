#!/bin/sh
# Shows a file, or its first lines.
# Usage: peek.sh FOLDER FILE [LINES]
set -eu
path="$1/$2"
if [ $# -ge 3 ]; then
    echo "== the first $3 lines of $path"
    head -n "$3" -- "$path"
else
    echo "== $path"
    cat -- "$path"
fi
