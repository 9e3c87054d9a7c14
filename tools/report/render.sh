#!/usr/bin/env bash
# Renders a report HTML file to a PNG with headless Chromium (apt-get install -y chromium).
#   bash tools/report/render.sh report.html report.png [WIDTH] [HEIGHT]
# The page needs no network and no JavaScript; Chromium runs with a fresh profile and every background
# service off. Exit 0 only when the PNG was written.
set -euo pipefail
if [ $# -lt 2 ]; then echo "usage: $0 HTML PNG [WIDTH=1200] [HEIGHT=2400]" >&2; exit 2; fi
html=$1 png=$2 width=${3:-1200} height=${4:-2400}
[ -f "$html" ] || { echo "$0: $html: no such file" >&2; exit 2; }
chrome=${CHROMIUM:-}
if [ -z "$chrome" ]; then
  for c in /usr/bin/chromium /usr/bin/chromium-browser /usr/bin/google-chrome; do [ -x "$c" ] && { chrome=$c; break; }; done
fi
[ -n "$chrome" ] || { echo "$0: no chromium found (apt-get install -y chromium, or set CHROMIUM=path)" >&2; exit 3; }
profile=$(mktemp -d "${TMPDIR:-/tmp}/lmdistill-chromium-XXXXXX")
trap 'rm -rf "$profile"' EXIT
abs_html=$(cd "$(dirname "$html")" && pwd)/$(basename "$html")
abs_png=$(cd "$(dirname "$png")" 2>/dev/null && pwd)/$(basename "$png") || { echo "$0: folder of $png does not exist" >&2; exit 2; }
rm -f "$abs_png"
timeout 90 "$chrome" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync --disable-extensions \
  --hide-scrollbars --force-device-scale-factor=1 --user-data-dir="$profile" \
  --window-size="$width,$height" --screenshot="$abs_png" "file://$abs_html" >"$profile/log" 2>&1 || true
if [ ! -s "$abs_png" ]; then echo "$0: chromium wrote no screenshot; its log:" >&2; cat "$profile/log" >&2; exit 1; fi
echo "$png"
