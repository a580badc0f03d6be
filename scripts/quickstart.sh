#!/usr/bin/env bash
# Installs what is missing, builds the release preset, runs suites/quick.ini into
# results/ctxbench.db and prints the summary table.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cmake --preset release >/dev/null
cmake --build --preset release
./build/release/ctxbench run suites/quick.ini --db results/ctxbench.db
