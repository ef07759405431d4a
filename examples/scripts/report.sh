#!/bin/sh
# Writes a small report from every kind of form value into $FTW_OUTPUT_DIR, where the
# run page offers it for download. The values arrive as FTW_ARG_* variables too; this
# script reads those, so it takes no arguments.
set -eu
out=${FTW_OUTPUT_DIR:?ftw sets FTW_OUTPUT_DIR}

report="$out/report.txt"
{
    echo "Report: ${FTW_ARG_TITLE}"
    echo "Period: ${FTW_ARG_FROM} to ${FTW_ARG_UNTIL}"
    echo "Daily at: ${FTW_ARG_AT:-(not set)}"
    echo "Deadline: ${FTW_ARG_DUE:-(not set)}"
    echo "Ratio: ${FTW_ARG_RATIO}"
    echo "Sections:"
    printf '%s\n' "${FTW_ARG_SECTIONS:-}" | sed 's/^/  - /'
    echo "Notify: ${FTW_ARG_NOTIFY:-nobody}"
    echo "Link: ${FTW_ARG_LINK:-(none)}"
    echo "Accent colour: ${FTW_ARG_ACCENT}"
    echo "Include totals: ${FTW_ARG_TOTALS}"
    if [ -n "${FTW_ARG_API_TOKEN:-}" ]; then
        echo "API token: given (not shown)"
    fi
    echo
    echo "Notes:"
    printf '%s\n' "${FTW_ARG_NOTES:-}"
} > "$report"

# A CSV beside it, and a tiny PNG to show that images appear inline on the run page.
printf 'day,value\n1,3\n2,5\n3,4\n' > "$out/data.csv"
printf '%s' 'iVBORw0KGgoAAAANSUhEUgAAADAAAAAgCAIAAADbtmxLAAAAQUlEQVR42u3OQRUAEBBAwU0ignByOIijHQ32ymP++wEm1mXFO6A6WzIQENABUI9sIKAPQGVkAwEBAQEBAQEB/Qra1Im6SLGgAOoAAAAASUVORK5CYII=' \
    | base64 -d > "$out/chart.png"

echo "Wrote $(basename -- "$report"), data.csv and chart.png:"
cat -- "$report"
