/*
 * blas.h — makes OpenBLAS run the best GEMM kernels this CPU offers.
 *
 * A DYNAMIC_ARCH OpenBLAS picks its kernels (its "core") once, when it is loaded, from CPUID or
 * from the environment variable OPENBLAS_CORETYPE. On a CPU it does not know it falls back to its
 * generic Prescott kernels, and a stale OPENBLAS_CORETYPE forces older kernels than the CPU can
 * run: sgemm then runs at a half to a fifth of its speed. blas_select_core() compares the running
 * core with the best one for this CPU's features and, when the running one is worse, sets
 * OPENBLAS_CORETYPE and re-executes the program once so that the library loads again with it.
 *
 * CTXBENCH_BLAS_CORE=NAME forces a core (NAME as OPENBLAS_CORETYPE spells it, any case);
 * CTXBENCH_BLAS_CORE=library leaves OpenBLAS's own choice, OPENBLAS_CORETYPE included, alone.
 */
#ifndef CB_BLAS_H
#define CB_BLAS_H

#include <stddef.h>

/* CPU features the choice depends on. A bit is set only when the CPU has the feature and the
   OS saves its registers (XGETBV): AVX needs the YMM state, AVX-512 the opmask and ZMM states. */
enum {
    CB_CPU_AVX = 1u << 0,
    CB_CPU_FMA = 1u << 1,
    CB_CPU_AVX2 = 1u << 2,
    CB_CPU_AVX512F = 1u << 3,
    CB_CPU_AVX512DQ = 1u << 4,
    CB_CPU_AVX512CD = 1u << 5,
    CB_CPU_AVX512BW = 1u << 6,
    CB_CPU_AVX512VL = 1u << 7,
    CB_CPU_AVX512BF16 = 1u << 8,
    CB_CPU_FMA4 = 1u << 9,
};
/* The AVX-512 subsets OpenBLAS's SkylakeX kernels use. */
#define CB_CPU_AVX512 (CB_CPU_AVX512F | CB_CPU_AVX512DQ | CB_CPU_AVX512CD | CB_CPU_AVX512BW | CB_CPU_AVX512VL)

/* This CPU's features as CB_CPU_* bits, read with CPUID and XGETBV; 0 off x86. */
unsigned blas_cpu_features(void);

/* The best OpenBLAS core for FP32 GEMM on a CPU with these features: Cooperlake (AVX-512 with
   BF16), SkylakeX (AVX-512), Haswell (AVX2 and FMA), Sandybridge (AVX); NULL below AVX, where
   OpenBLAS's own choice stands. Pure: a function of the bits only. */
const char *blas_best_core(unsigned features);

/* The class of a core's kernels, for comparing two cores: 0 SSE (Prescott, Nehalem, ...),
   1 AVX (Sandybridge, Bulldozer), 2 AVX2/FMA (Haswell, Zen), 3 AVX-512 (SkylakeX, Cooperlake).
   Case-insensitive; -1 for a name ctxbench does not know. */
int blas_core_rank(const char *name);

/* Call first thing in main(), before any BLAS call or thread: may replace the process with a
   fresh copy of itself (execv of /proc/self/exe with the same argv, once; a guard variable
   prevents loops) so that OpenBLAS loads again with OPENBLAS_CORETYPE set. Fixes silently;
   when it cannot (exec fails, the core did not change, a library built for one core), prints
   one warning line on stderr saying what it costs and returns: the program runs on. It prints
   the line itself because it runs before a command knows where its messages go, and it must
   behave the same in every binary. Starts no thread (it only reads OpenBLAS's core name and
   configuration string). */
void blas_select_core(char **argv);

/* One line on the running core and why it runs, e.g. "core Cooperlake (OpenBLAS's own choice,
   the best for this CPU)". Static storage; valid before blas_select_core() too (then it says
   ctxbench did not check the choice). */
const char *blas_core_choice(void);

/* OpenBLAS's configuration string and blas_core_choice(), as "<config> <choice>", into out
   (n bytes, always terminated): for provenance and `ctxbench --version`. */
void blas_describe(char *out, size_t n);

#endif
