#!/bin/sh
# Prints the files of a folder, one per line: the options of the "File" field of the
# "Peek at a file" tool (ftw runs it again when the folder changes).
# Usage: list-files.sh FOLDER
set -eu
for path in "$1"/*; do
    if [ -f "$path" ]; then
        printf '%s\n' "${path##*/}"
    fi
done
