#!/bin/sh
# Counts the lines, words and bytes of an uploaded file.
# Usage: wordcount.sh FILE
set -eu
file=$1

# ftw stores uploads under random names; the name it had on your machine is here:
echo "Counting ${FTW_ARG_FILE_FILENAME:-$(basename -- "$file")}"
set -- $(wc -l -w -c < "$file")
printf 'lines: %s\nwords: %s\nbytes: %s\n' "$1" "$2" "$3"
echo
echo "The ten most frequent words:"
tr -cs '[:alnum:]' '\n' < "$file" | tr '[:upper:]' '[:lower:]' | grep -v '^$' \
    | sort | uniq -c | sort -rn | head -n 10
