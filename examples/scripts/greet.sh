#!/bin/sh
# Greets someone, a number of times, optionally loudly and in colour.
# Usage: greet.sh [--shout] [--color=#rrggbb] GREETING NAME TIMES
set -eu

shout=no
color=
while [ $# -gt 0 ]; do
    case $1 in
        --shout) shout=yes; shift ;;
        --color=*) color=${1#--color=}; shift ;;
        --) shift; break ;;
        *) break ;;
    esac
done
greeting=$1 name=$2 times=$3

line="$greeting, $name!"
if [ "$shout" = yes ]; then
    line=$(printf '%s\n' "$line" | tr '[:lower:]' '[:upper:]')
fi

# A #rrggbb colour becomes a 24-bit ANSI escape, which the run page renders.
start= end=
if [ -n "$color" ]; then
    r=$(printf '%d' "0x$(printf '%s' "$color" | cut -c2-3)")
    g=$(printf '%d' "0x$(printf '%s' "$color" | cut -c4-5)")
    b=$(printf '%d' "0x$(printf '%s' "$color" | cut -c6-7)")
    start=$(printf '\033[38;2;%d;%d;%dm' "$r" "$g" "$b")
    end=$(printf '\033[0m')
fi

i=1
while [ "$i" -le "$times" ]; do
    printf '%s%s%s\n' "$start" "$line" "$end"
    i=$((i + 1))
done
