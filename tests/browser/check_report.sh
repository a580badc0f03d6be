#!/usr/bin/env bash
# check_report.sh HTML [PNG] — renders a ctxbench HTML report in headless Chromium and checks it:
#   1. the page holds no <script> at all, so it cannot raise script errors;
#   2. every chart (<svg id="...">) of the file is present in the DOM Chromium rendered;
#   3. the screenshot (1280x2400, kept at PNG if given) is not blank: bigger than 20 kB and more
#      than 50 distinct colours (ImageMagick's identify).
# Needs /usr/bin/chromium and identify (scripts/deps.sh installs chromium and imagemagick).
set -euo pipefail
html=${1:?usage: check_report.sh HTML [PNG]}
[[ -r $html ]] || { echo "check_report: cannot read $html" >&2; exit 2; }
chromium=${CHROMIUM:-/usr/bin/chromium}
command -v "$chromium" >/dev/null || { echo "check_report: $chromium not found" >&2; exit 2; }
command -v identify >/dev/null || { echo "check_report: identify (imagemagick) not found" >&2; exit 2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
png=${2:-$work/report.png}
url="file://$(cd "$(dirname "$html")" && pwd)/$(basename "$html")"
browse() {
  timeout 180 "$chromium" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$(mktemp -d -p "$work")" "$@" "$url"
}

fail=0
if grep -qi '<script' "$html"; then
  echo "check_report: FAIL: $html holds a <script>"; fail=1
else
  echo "check_report: no <script> in the page (no script errors possible)"
fi

browse --dump-dom >"$work/dom.html" 2>"$work/dom.log" || { cat "$work/dom.log" >&2; echo "check_report: chromium --dump-dom failed" >&2; exit 1; }
mapfile -t ids < <(grep -o '<svg id="[^"]*"' "$html" | sed 's/<svg id="//; s/"$//')
if ((${#ids[@]} == 0)); then
  echo "check_report: FAIL: no chart (<svg id=...>) in $html"; fail=1
fi
for id in "${ids[@]}"; do
  if grep -q "<svg id=\"$id\"" "$work/dom.html"; then echo "check_report: chart $id rendered"
  else echo "check_report: FAIL: chart $id missing from the rendered DOM"; fail=1; fi
done

browse --screenshot="$png" --window-size=1280,2400 >"$work/shot.log" 2>&1 || { cat "$work/shot.log" >&2; echo "check_report: chromium --screenshot failed" >&2; exit 1; }
size=$(stat -c %s "$png")
colours=$(identify -format '%k' "$png")
dims=$(identify -format '%wx%h' "$png")
echo "check_report: screenshot $png: $dims, $size bytes, $colours distinct colours"
if ((size < 20000 || colours <= 50)); then
  echo "check_report: FAIL: the screenshot looks blank"; fail=1
fi
((fail == 0)) && echo "check_report: $html passed"
exit "$fail"
