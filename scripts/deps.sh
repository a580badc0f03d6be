#!/usr/bin/env bash
# Installs, from Debian's archive, whatever ctxbench needs that this machine lacks. Run as root.
# `deps.sh test` adds what the tests need beyond building and running: headless Chromium, fonts and
# ImageMagick for the report_html ctest, which renders the HTML report and checks its screenshot.
set -euo pipefail
# fortunes: real English text for `[corpus] source = file:/usr/share/games/fortunes` (suites/fortunes.ini).
# libdnnl-dev: oneDNN, the bf16 GEMMs of `[train] precision = bf16` (optional for the build).
packages=(gcc make cmake pkg-config git sqlite3 libsqlite3-dev libcriterion-dev
          libopenblas-openmp-dev libinih-dev nettle-dev fortunes libdnnl-dev)
if [[ ${1:-} == test ]]; then
  packages+=(chromium fonts-dejavu-core imagemagick bsdutils)
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
