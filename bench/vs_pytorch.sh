#!/usr/bin/env bash
# vs_pytorch.sh — training speed of ctxbench next to eager-mode PyTorch on the same model (issue 11).
#
# Model: 4 layers, d_model 128, 4 heads, MLP x4, byte vocabulary, context 128, batch 16, AdamW,
# schemes nope and rope (see bench/vs_pytorch.py for the exact definition). ctxbench runs
# `build/release/bench train`, PyTorch runs bench/vs_pytorch.py under /usr/bin/python3 (Debian's
# python3-torch, installed here if missing). Both use the same threads, the same warm-up and timed
# steps, and the same byte stream. PyTorch gets OPENBLAS_CORETYPE = the blas_core ctxbench reports
# (its choice of OpenBLAS kernel for this CPU); ctxbench's environment is left as it is.
#
# Rounds are interleaved (ctxbench nope, torch nope, ctxbench rope, torch rope; each a fresh
# process) because a shared VM's speed drifts; the table gives medians and the per-round ratios.
# Exits non-zero only on errors, never because of a ratio.
#
# usage: bench/vs_pytorch.sh [--threads T] [--rounds R] [--steps N] [--warmup-steps W]
#                            [--schemes nope,rope] [--aten-cpu-capability auto|avx2|avx512|default]
#                            [--verbose] [--check]
#   --threads T        threads of both engines (default 2)
#   --rounds R         interleaved rounds (default 5)
#   --steps N          timed training steps per run (default 20), after
#   --warmup-steps W   untimed ones (default 3)
#   --schemes S        nope, rope or both (default nope,rope)
#   --aten-cpu-capability C   PyTorch's ATEN_CPU_CAPABILITY; auto = avx512 where the CPU has it
#   --verbose          print torch.__config__ and the BLAS PyTorch loaded, once
#   --check            instead: 50 training steps of each engine, losses side by side
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
py=/usr/bin/python3 # Debian's interpreter, where python3-torch lives; not a pyenv python on PATH
bench="$root/build/release/bench"
threads=2 rounds=5 steps=20 warm=3 schemes=nope,rope verbose=0 check=0 aten_cap=auto

usage() { sed -n '/^# usage:/,/^[^#]/{/^#/s/^# \{0,1\}//p}' "${BASH_SOURCE[0]}"; }
die() { echo "vs_pytorch.sh: $*" >&2; exit 1; }
posint() { if ! [[ $2 =~ ^[0-9]+$ ]] || (( 10#$2 < $3 )); then die "$1: '$2' is not an integer >= $3"; fi; }

while (( $# )); do
    case $1 in
        --threads) posint "$1" "${2-}" 1; threads=$2; shift 2 ;;
        --rounds) posint "$1" "${2-}" 1; rounds=$2; shift 2 ;;
        --steps) posint "$1" "${2-}" 1; steps=$2; shift 2 ;;
        --warmup-steps) posint "$1" "${2-}" 0; warm=$2; shift 2 ;;
        --schemes) [[ ${2-} =~ ^(nope|rope)(,(nope|rope))*$ ]] || die "--schemes: nope and/or rope, comma-separated"
                   schemes=$2; shift 2 ;;
        --aten-cpu-capability) [[ ${2-} =~ ^(auto|avx2|avx512|default)$ ]] ||
                                   die "--aten-cpu-capability: auto, avx2, avx512 or default"
                   aten_cap=$2; shift 2 ;;
        --verbose) verbose=1; shift ;;
        --check) check=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown option '$1'" ;;
    esac
done

# --- PyTorch: Debian's python3-torch for /usr/bin/python3 -------------------------------------
torch_ok() { "$py" -c 'import torch' >/dev/null 2>&1; }
if ! torch_ok; then
    status=$(dpkg-query -W -f='${Status}' python3-torch 2>/dev/null || true)
    if [[ $status != "install ok installed" ]]; then
        # Another apt may be installing it right now: wait for its lock rather than fail.
        echo "vs_pytorch.sh: installing python3-torch (status: ${status:-not installed})" >&2
        sudo=()
        (( EUID == 0 )) || sudo=(sudo)
        "${sudo[@]}" apt-get -o DPkg::Lock::Timeout=1800 install -y --no-install-recommends python3-torch >&2 ||
            die "apt-get install python3-torch failed"
    fi
    # Unpacked but perhaps still being configured by another apt: wait until it imports.
    for (( i = 0; i < 180; i++ )); do
        torch_ok && break
        (( i % 6 )) || echo "vs_pytorch.sh: waiting for '$py -c \"import torch\"' to work" >&2
        sleep 10
    done
    torch_ok || die "$py cannot import torch: $("$py" -c 'import torch' 2>&1 | tail -1)"
fi

# --- ctxbench: the release preset ---------------------------------------------------------------
if [[ ! -x $bench ]]; then
    echo "vs_pytorch.sh: building the release preset" >&2
    (cd "$root" && cmake --preset release >&2 && cmake --build build/release -j2 >&2) || die "the release build failed"
fi
probe=$("$bench" train --scheme nope --layers 1 --d-model 16 --heads 2 --context 8 --batch 1 --steps 1 \
        --warmup-steps 0 --threads 1 2>&1) ||
    die "$bench has no working train mode (rebuild: cmake --build build/release): $probe"
core=$(grep -o 'blas_core=[^ ]*' <<<"$probe" | cut -d= -f2) || true
[[ -n $core ]] || die "bench train printed no blas_core=: $probe"

# PyTorch 1.13 runs its own vectorised kernels (GELU, softmax, LayerNorm, AdamW...) at AVX2 even on
# an AVX-512 CPU; ATEN_CPU_CAPABILITY=avx512 is its documented switch and measured faster here.
if [[ $aten_cap == auto ]]; then
    aten_cap=avx2
    flags=$(grep -m1 '^flags' /proc/cpuinfo || true)
    [[ " $flags " == *" avx512f "* && " $flags " == *" avx512bw "* && " $flags " == *" avx512vl "* &&
       " $flags " == *" avx512dq "* ]] && aten_cap=avx512
fi
export OMP_NUM_THREADS=$threads
torch_env=(env OPENBLAS_CORETYPE="$core" OMP_NUM_THREADS="$threads" ATEN_CPU_CAPABILITY="$aten_cap")

if (( check )); then
    # vs_pytorch.py runs ctxbench first with this environment, then sets its own OPENBLAS_CORETYPE
    # to ctxbench's blas_core before it loads torch.
    args=(--check --threads "$threads" --schemes "$schemes" --bench "$bench")
    (( verbose )) && args+=(--verbose)
    exec env ATEN_CPU_CAPABILITY="$aten_cap" "$py" "$here/vs_pytorch.py" "${args[@]}"
fi

model=(--layers 4 --d-model 128 --heads 4 --context 128 --batch 16)
echo "ctxbench vs PyTorch $("$py" -c 'import torch; print(torch.__version__)' 2>/dev/null): ${model[*]}," \
     "threads $threads, $warm warm-up + $steps timed steps, $rounds interleaved rounds"
echo "ctxbench: $bench, OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE-(unset)} as inherited, blas_core=$core"
echo "PyTorch:  $py $here/vs_pytorch.py, OPENBLAS_CORETYPE=$core (ctxbench's blas_core)," \
     "ATEN_CPU_CAPABILITY=$aten_cap"
# Other work on the machine: CPU time (user, system, irq, steal) of everything but our own children,
# in CPUs on average over a measurement. The load average would count our own runs.
tck=$(getconf CLK_TCK)
cpu_busy() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat; }
own_cpu() { awk '{ print $16 + $17 }' "/proc/$$/stat"; } # children's user + system, clock ticks
mark() { m_busy=$(cpu_busy); m_own=$(own_cpu); m_t=$EPOCHREALTIME; }
other_cpu() {
    awk -v b0="$m_busy" -v b1="$(cpu_busy)" -v o0="$m_own" -v o1="$(own_cpu)" -v t0="$m_t" \
        -v t1="$EPOCHREALTIME" -v tck="$tck" \
        'BEGIN { x = ((b1 - b0) - (o1 - o0)) / tck / (t1 - t0); printf "%.2f", x < 0 ? 0 : x }'
}
mark
sleep 1
idle_other=$(other_cpu)
if awk -v x="$idle_other" 'BEGIN { exit !(x > 0.2) }'; then
    echo "vs_pytorch.sh: warning: other processes keep $idle_other CPUs busy: both engines' numbers will be" \
         "noisy (each line ends with other_cpu=, the CPUs other work used during that run)" >&2
fi
echo

out=$(mktemp "${TMPDIR:-/tmp}/vs_pytorch.XXXXXX")
trap 'rm -f "$out"' EXIT
first=1
IFS=, read -r -a scheme_list <<<"$schemes"
for (( r = 1; r <= rounds; r++ )); do
    for s in "${scheme_list[@]}"; do
        mark
        line=$("$bench" train --scheme "$s" "${model[@]}" --steps "$steps" --warmup-steps "$warm" \
               --threads "$threads" 2>&1) || die "ctxbench ($s, round $r) failed: $line"
        line=$(grep '^train ' <<<"$line") || die "ctxbench ($s, round $r) printed no result line"
        line+=" other_cpu=$(other_cpu)"
        c=$(grep -o 'blas_core=[^ ]*' <<<"$line" | cut -d= -f2) || true
        [[ $c == "$core" ]] || echo "vs_pytorch.sh: warning: ctxbench reported blas_core=$c, PyTorch uses $core" >&2
        echo "$r $line" | tee -a "$out"

        vflag=()
        if (( verbose && first )); then vflag=(--verbose); first=0; fi
        mark
        log=$("${torch_env[@]}" "$py" "$here/vs_pytorch.py" --scheme "$s" "${model[@]}" --steps "$steps" \
              --warmup-steps "$warm" --threads "$threads" "${vflag[@]}" 2>&1) ||
            die "PyTorch ($s, round $r) failed: $log"
        line=$(grep '^torch ' <<<"$log") || die "PyTorch ($s, round $r) printed no result line: $log"
        line+=" other_cpu=$(other_cpu)"
        if (( ${#vflag[@]} )); then grep -v '^torch ' <<<"$log" || true; fi
        t=$(grep -o 'blas_core=[^ ]*' <<<"$line" | cut -d= -f2) || true
        [[ $t == "$core" ]] || echo "vs_pytorch.sh: warning: PyTorch's OpenBLAS runs core $t, not $core" >&2
        echo "$r $line" | tee -a "$out"
    done
done
echo
"$py" "$here/vs_pytorch.py" --summarize "$out" || die "the summary failed"
