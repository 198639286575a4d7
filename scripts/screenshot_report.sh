#!/usr/bin/env bash
# Render a report page in headless Chromium (Debian's `chromium` package) to a PNG.
# Usage: scripts/screenshot_report.sh REPORT_HTML OUT_PNG [WIDTH,HEIGHT]
set -euo pipefail
html=$(realpath "$1")
out=$(realpath -m "$2")
size=${3:-1280,2400}
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
# No network flags: the page must render from the file alone.
chromium --headless --no-sandbox --disable-gpu --disable-background-networking \
  --disable-component-update --disable-sync --no-first-run --hide-scrollbars \
  --user-data-dir="$profile" --window-size="$size" --screenshot="$out" "file://$html" \
  2>/dev/null
echo "$out"
