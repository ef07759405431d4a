#!/bin/sh
# A tiny client for ftw's JSON API, in POSIX sh with curl.
#
#   export FTW_URL=http://127.0.0.1:8000   FTW_TOKEN=ftw_...   (from `ftw gen-token`)
#   ftw-api.sh tools                         # the tools you may run (JSON)
#   ftw-api.sh run greet name=Ada times=2    # run, wait, print the output; exit with its code
#   ftw-api.sh start slow-counter seconds=30 # start; print the run's id
#   ftw-api.sh follow ID                     # the output as it comes (Server-Sent Events)
#   ftw-api.sh cancel ID
#
# Arguments are name=value (strings) or name:=json (numbers, true/false, arrays).
set -eu

: "${FTW_URL:?set FTW_URL, e.g. http://127.0.0.1:8000}"
: "${FTW_TOKEN:?set FTW_TOKEN to a token from ftw gen-token}"

api() {
    method=$1 path=$2
    shift 2
    curl -sS -X "$method" -H "Authorization: Bearer $FTW_TOKEN" "$@" "$FTW_URL/api$path"
}

# name=value pairs as {"args": {...}}.
args_json() {
    json= sep=
    for pair in "$@"; do
        case $pair in
            *:=*) name=${pair%%:=*} value=${pair#*:=} ;;
            *=*)
                name=${pair%%=*}
                value=$(printf '%s' "${pair#*=}" | sed 's/\\/\\\\/g; s/"/\\"/g')
                value="\"$value\""
                ;;
            *) echo "ftw-api.sh: $pair: write name=value or name:=json" >&2; exit 2 ;;
        esac
        json="$json$sep\"$name\": $value"
        sep=", "
    done
    printf '{"args": {%s}}' "$json"
}

# The value of a top-level "key" in a one-line JSON object (string or number).
field() {
    sed -n "s/.*\"$1\":\"\\{0,1\\}\\([^\",}]*\\).*/\\1/p"
}

command=${1:-}
[ $# -gt 0 ] && shift
case $command in
    tools)
        api GET /tools
        echo
        ;;
    run)
        tool=$1
        shift
        result=$(api POST "/tools/$tool/runs?wait=true" -H 'Content-Type: application/json' -d "$(args_json "$@")")
        case $result in
            *'"exit_code"'*) ;;
            *) echo "$result" >&2; exit 1 ;;
        esac
        if command -v jq >/dev/null 2>&1; then
            printf '%s' "$result" | jq -r '.output' | sed '$ { /^$/d; }'
            code=$(printf '%s' "$result" | jq -r '.exit_code // 1')
        else
            echo "$result"
            code=$(printf '%s' "$result" | field exit_code)
        fi
        exit "${code:-1}"
        ;;
    start)
        tool=$1
        shift
        api POST "/tools/$tool/runs" -H 'Content-Type: application/json' -d "$(args_json "$@")" | field id
        ;;
    follow)
        api GET "/runs/$1/events" -N | sed -n 's/^data://p'
        ;;
    cancel)
        api POST "/runs/$1/cancel"
        echo
        ;;
    *)
        sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
        exit 2
        ;;
esac
