#!/usr/bin/env bash
# Builds the libFuzzer targets in fuzz/ with clang (-fsanitize=fuzzer,address,undefined) against
# the parser sources and runs one or all of them for a given number of seconds.
#
#   bash scripts/fuzz.sh [SECONDS] [suite|spec|all]     default: 60 seconds, all (one after another)
#
# Needs clang (Debian: apt-get install clang); it is not in scripts/deps.sh because fuzzing is a
# manual step, not part of the tests. Each target's corpus lives in build/fuzz/corpus-<target>,
# seeded from suites/ and tests/suites/ (suite) or from the spec strings found there (spec), and
# grows from run to run; crashes are written to build/fuzz/ as crash-<hash>.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
which=${2:-all}
cc=${CLANG:-clang}
command -v "$cc" >/dev/null || { echo "fuzz.sh: $cc not found (apt-get install clang)" >&2; exit 2; }
out=build/fuzz
mkdir -p "$out"

blas_inc=$(ls -d /usr/include/*/openblas-openmp 2>/dev/null | head -1)
flags=(-std=c17 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined
       -fno-sanitize-recover=undefined -Isrc ${blas_inc:+-I"$blas_inc"})
# The parsers and what they reach: core, the schemes, the corpus-source check, the suite parser.
lib=(src/core/*.c src/pe/*.c src/data/*.c src/harness/suite.c)
libs=(-linih -lnettle -lm)

build() { # target
  "$cc" "${flags[@]}" "fuzz/fuzz_$1.c" "${lib[@]}" "${libs[@]}" -o "$out/fuzz_$1"
}

seed() { # target
  local dir=$out/corpus-$1
  mkdir -p "$dir"
  if [ "$1" = suite ]; then
    cp suites/*.ini tests/suites/*.ini "$dir"/
  else
    # One file per spec: the first byte picks the model shape, the rest is the spec string.
    local i=0
    for s in nope sinusoidal learned rope alibi t5 "rope:base=500000,pairing=interleaved" \
             "rope+pi" "rope+ntk" "rope+yarn:factor=auto" "rope+dynamic-ntk" \
             "rope+self-extend:group=4,window=128" "t5:buckets=32,max_distance=128" \
             "sinusoidal:layout=concat,embed_scale=1" "learned:rows=64" "rope:fraction=0.5" \
             $(grep -ho 'schemes *=.*' suites/*.ini tests/suites/*.ini | sed 's/schemes *= *//; s/;.*//' | tr ',' '\n' | tr -d ' '); do
      printf '\001%s' "$s" >"$dir/seed-$i"
      i=$((i + 1))
    done
  fi
}

run() { # target
  build "$1"
  seed "$1"
  echo "fuzz.sh: running fuzz_$1 for $seconds s" >&2
  "$out/fuzz_$1" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
    -artifact_prefix="$out/" "$out/corpus-$1"
}

case $which in
  suite|spec) run "$which" ;;
  all) run suite; run spec ;;
  *) echo "fuzz.sh: unknown target '$which' (suite, spec or all)" >&2; exit 2 ;;
esac
