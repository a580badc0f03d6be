#!/usr/bin/env bash
# Installs what is missing, then configures, builds and runs every test with ctest
# (the release workflow preset; pass "debug" for the sanitizer build).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh test
cmake --workflow --preset "${1:-release}"
