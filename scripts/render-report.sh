#!/usr/bin/env bash
# Renders a run's report.html (mi-report writes it) to a PNG with headless Chromium, to look at the
# page as a reader sees it: scripts/render-report.sh RUN_DIR [OUT.png] [WIDTH]. Needs Debian's
# `chromium` (apt-get install chromium). The page is a local file and fetches nothing.
set -euo pipefail
run=${1:?usage: scripts/render-report.sh RUN_DIR [OUT.png] [WIDTH]}
out=${2:-$run/report.png}
width=${3:-900}
bin="${MI_BIN_DIR:-$(dirname "$0")/../.build/release}"
"$bin/mi-report" "$run" --quiet
page="$(cd "$run" && pwd)/report.html"
# Tall enough for the whole page: about 500 px per chart, table rows and files on top.
charts=$(grep -o '<figure' "$page" | wc -l)
rows=$(grep -o '<tr>' "$page" | wc -l)
height=$((600 + charts * 520 + rows * 22))
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --user-data-dir="$profile" \
    --window-size="$width,$height" --screenshot="$out" "file://$page" 2>/dev/null
echo "$out ($width × $height)" >&2
