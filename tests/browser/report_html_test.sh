#!/usr/bin/env bash
# report_html_test.sh CTXBENCH SOURCE_DIR — the ctest "report_html": runs the smoke suite into a
# fresh database, writes its HTML report and checks it in headless Chromium (check_report.sh).
set -euo pipefail
bin=${1:?usage: report_html_test.sh CTXBENCH SOURCE_DIR}
src=${2:?usage: report_html_test.sh CTXBENCH SOURCE_DIR}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$bin" run "$src/suites/smoke.ini" --db "$work/smoke.db" --quiet >/dev/null
"$bin" report --db "$work/smoke.db" --format html --out "$work/report.html"
bash "$src/tests/browser/check_report.sh" "$work/report.html"
