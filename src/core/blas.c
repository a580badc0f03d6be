/*
 * blas.c — chooses OpenBLAS's kernels for this CPU (see blas.h).
 *
 * A DYNAMIC_ARCH OpenBLAS reads OPENBLAS_CORETYPE in its load-time constructor, so the only way
 * to change its kernels is to load it again: set the variable and exec this same program. The
 * guard variable CTXBENCH_BLAS_REEXEC carries what the first image saw ("<core>;<its
 * OPENBLAS_CORETYPE>") to the second one, which then only checks and describes the result.
 */
#include "core/blas.h"

#include <cblas.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define CB_X86 1
#else
#define CB_X86 0
#endif

#define FORCE_ENV "CTXBENCH_BLAS_CORE"
#define GUARD_ENV "CTXBENCH_BLAS_REEXEC"
#define CORE_ENV "OPENBLAS_CORETYPE"

/* The cores of OpenBLAS 0.3.21's DYNAMIC_ARCH build on x86, as openblas_get_corename() and
   OPENBLAS_CORETYPE spell them, with the class of their kernels and the features they use. */
typedef struct {
    const char *name;
    int rank;
    unsigned needs;
} BlasCore;

#define AVX2_FMA (CB_CPU_AVX | CB_CPU_AVX2 | CB_CPU_FMA)
static const BlasCore cores[] = {
    {"Katmai", 0, 0}, {"Coppermine", 0, 0}, {"Northwood", 0, 0}, {"Prescott", 0, 0},
    {"Banias", 0, 0}, {"Atom", 0, 0}, {"Core2", 0, 0}, {"Penryn", 0, 0},
    {"Dunnington", 0, 0}, {"Nehalem", 0, 0}, {"Athlon", 0, 0}, {"Opteron", 0, 0},
    {"Opteron_SSE3", 0, 0}, {"Barcelona", 0, 0}, {"Nano", 0, 0}, {"Bobcat", 0, 0},
    {"Sandybridge", 1, CB_CPU_AVX},
    /* AMD's FMA4 families; Excavator added AVX2 */
    {"Bulldozer", 1, CB_CPU_AVX | CB_CPU_FMA4},
    {"Piledriver", 1, CB_CPU_AVX | CB_CPU_FMA | CB_CPU_FMA4},
    {"Steamroller", 1, CB_CPU_AVX | CB_CPU_FMA | CB_CPU_FMA4},
    {"Excavator", 2, AVX2_FMA | CB_CPU_FMA4},
    {"Haswell", 2, AVX2_FMA}, {"Zen", 2, AVX2_FMA}, {"Dhyana", 2, AVX2_FMA},
    /* Cooperlake adds BF16 kernels; its FP32 GEMM is SkylakeX's, so both rank the same */
    {"SkylakeX", 3, AVX2_FMA | CB_CPU_AVX512},
    {"Cooperlake", 3, AVX2_FMA | CB_CPU_AVX512 | CB_CPU_AVX512BF16},
};

static const BlasCore *core_find(const char *name) {
    for (size_t i = 0; name && i < sizeof cores / sizeof cores[0]; i++)
        if (!strcasecmp(name, cores[i].name)) return &cores[i];
    return NULL;
}

int blas_core_rank(const char *name) {
    const BlasCore *c = core_find(name);
    return c ? c->rank : -1;
}

#if CB_X86
static uint64_t xgetbv0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}
#endif

unsigned blas_cpu_features(void) {
    unsigned f = 0;
#if CB_X86
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    /* XCR0: bits 1-2 SSE and YMM state, bits 5-7 opmask and the two halves of ZMM state. */
    uint64_t xcr0 = (c >> 27) & 1 ? xgetbv0() : 0; /* OSXSAVE: XGETBV is usable */
    int ymm = (xcr0 & 0x6) == 0x6, zmm = ymm && (xcr0 & 0xe0) == 0xe0;
    if (ymm && (c >> 28) & 1) f |= CB_CPU_AVX;
    if (ymm && (c >> 12) & 1) f |= CB_CPU_FMA;
    if (__get_cpuid_max(0, NULL) >= 7) {
        __cpuid_count(7, 0, a, b, c, d);
        unsigned subleaves = a;
        if (ymm && (b >> 5) & 1) f |= CB_CPU_AVX2;
        if (zmm) {
            if ((b >> 16) & 1) f |= CB_CPU_AVX512F;
            if ((b >> 17) & 1) f |= CB_CPU_AVX512DQ;
            if ((b >> 28) & 1) f |= CB_CPU_AVX512CD;
            if ((b >> 30) & 1) f |= CB_CPU_AVX512BW;
            if ((b >> 31) & 1) f |= CB_CPU_AVX512VL;
        }
        if (zmm && subleaves >= 1) {
            __cpuid_count(7, 1, a, b, c, d);
            if ((a >> 5) & 1) f |= CB_CPU_AVX512BF16;
        }
    }
    if (ymm && __get_cpuid(0x80000001, &a, &b, &c, &d) && (c >> 16) & 1) f |= CB_CPU_FMA4;
#endif
    return f;
}

const char *blas_best_core(unsigned f) {
    if ((f & CB_CPU_AVX512) == CB_CPU_AVX512) return f & CB_CPU_AVX512BF16 ? "Cooperlake" : "SkylakeX";
    if ((f & (CB_CPU_AVX2 | CB_CPU_FMA)) == (CB_CPU_AVX2 | CB_CPU_FMA)) return "Haswell";
    if (f & CB_CPU_AVX) return "Sandybridge";
    return NULL;
}

/* ---- the choice ------------------------------------------------------------------------------- */

static char choice[400];
static int selected;

static const char *running_core(void) {
    const char *c = openblas_get_corename();
    return c && *c ? c : "unknown";
}

/* What the CPU offers, for the reason of a choice. */
static const char *features_text(unsigned f) {
    if ((f & CB_CPU_AVX512) == CB_CPU_AVX512) return f & CB_CPU_AVX512BF16 ? "AVX-512 with BF16" : "AVX-512";
    if ((f & (CB_CPU_AVX2 | CB_CPU_FMA)) == (CB_CPU_AVX2 | CB_CPU_FMA)) return "AVX2 and FMA";
    return f & CB_CPU_AVX ? "AVX" : "no AVX";
}

/* Feature names of a set of bits, for "needs ...". */
static void needs_text(unsigned bits, char *out, size_t n) {
    static const struct {
        unsigned bit;
        const char *name;
    } names[] = {{CB_CPU_AVX, "AVX"}, {CB_CPU_FMA, "FMA"}, {CB_CPU_AVX2, "AVX2"}, {CB_CPU_AVX512F, "AVX512F"},
                 {CB_CPU_AVX512DQ, "AVX512DQ"}, {CB_CPU_AVX512CD, "AVX512CD"}, {CB_CPU_AVX512BW, "AVX512BW"},
                 {CB_CPU_AVX512VL, "AVX512VL"}, {CB_CPU_AVX512BF16, "AVX512-BF16"}, {CB_CPU_FMA4, "FMA4"}};
    size_t len = 0;
    out[0] = '\0';
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if ((bits & names[i].bit) && len < n)
            len += (size_t)snprintf(out + len, n - len, "%s%s", len ? ", " : "", names[i].name);
}

/* Where the running core came from: "from OPENBLAS_CORETYPE=X" or OpenBLAS's own detection. */
static void origin_text(const char *env, char *out, size_t n) {
    if (*env)
        snprintf(out, n, "from " CORE_ENV "=%.40s", env);
    else
        snprintf(out, n, "OpenBLAS's own choice");
}

/* The cost of running `running` where `best` would do, as the end of a sentence. */
static const char *cost_text(const BlasCore *running, const char *best, unsigned features) {
    if (running && (running->needs & ~features)) return "its GEMMs may stop the process with an illegal instruction";
    int gap = blas_core_rank(best) - (running ? running->rank : 0);
    return !running || running->rank == 0 || gap >= 2 ? "GEMMs will be several times slower"
                                                      : "GEMMs will be up to twice as slow";
}

/* Copies an environment variable (at most n - 1 bytes) into out; returns whether it is set. */
static int env_copy(const char *name, char *out, size_t n) {
    const char *v = getenv(name);
    snprintf(out, n, "%s", v ? v : "");
    return v != NULL;
}

/* Re-executes this program with OPENBLAS_CORETYPE=target; returns only on failure, with the
   environment as it was and why in out. */
static void reexec(char **argv, const char *target, const char *running, const char *env, int env_set, char *out,
                   size_t n) {
    char guard[128];
    snprintf(guard, sizeof guard, "%.40s;%.80s", running, env);
    if (setenv(CORE_ENV, target, 1) || setenv(GUARD_ENV, guard, 1)) {
        snprintf(out, n, "cannot set " CORE_ENV ": %s", strerror(errno));
    } else {
        fflush(NULL);
        execv("/proc/self/exe", argv);
        snprintf(out, n, "re-executing /proc/self/exe with " CORE_ENV "=%.40s failed: %s", target, strerror(errno));
    }
    if (env_set)
        setenv(CORE_ENV, env, 1);
    else
        unsetenv(CORE_ENV);
    unsetenv(GUARD_ENV);
}

void blas_select_core(char **argv) {
    selected = 1;
    unsigned features = blas_cpu_features();
    const char *running = running_core();
    const char *config = openblas_get_config();
    int dynamic = config && strstr(config, "DYNAMIC_ARCH") != NULL;
    const BlasCore *run = core_find(running);
    char env[96], force[64], guard[128], origin[80];
    int env_set = env_copy(CORE_ENV, env, sizeof env);
    env_copy(FORCE_ENV, force, sizeof force);
    /* After a re-execution, the core and OPENBLAS_CORETYPE the first image saw; the guard is
       dropped so that programs this one starts check their own choice. */
    int again = env_copy(GUARD_ENV, guard, sizeof guard);
    unsetenv(GUARD_ENV);
    const char *before = guard, *before_env = "";
    char *semi = strchr(guard, ';');
    if (semi) {
        *semi = '\0';
        before_env = semi + 1;
    }
    origin_text(again ? before_env : env, origin, sizeof origin);

    const char *target = NULL;
    if (!strcasecmp(force, "library")) {
        snprintf(choice, sizeof choice, "core %s (left to OpenBLAS by " FORCE_ENV "=library: %s)", running, origin);
        return;
    }
    if (*force) {
        const BlasCore *want = core_find(force);
        if (want && (want->needs & ~features)) {
            char lack[128];
            needs_text(want->needs & ~features, lack, sizeof lack);
            fprintf(stderr, "ctxbench: warning: " FORCE_ENV "=%s needs %s, which this CPU or its OS does not offer; "
                    "OpenBLAS keeps its %s kernels\n", force, lack, running);
            snprintf(choice, sizeof choice, "core %s (%s; " FORCE_ENV "=%s ignored: the CPU lacks %s)", running, origin,
                     force, lack);
            return;
        }
        target = want ? want->name : force;
        if (!strcasecmp(running, target)) {
            snprintf(choice, sizeof choice, "core %s (forced by " FORCE_ENV "=%s)", running, force);
            return;
        }
    } else {
        const char *best = blas_best_core(features);
        if (!best || !run) {
            snprintf(choice, sizeof choice, "core %s (%s; %s)", running, origin,
                     !CB_X86 ? "ctxbench chooses only on x86" : !best ? "the CPU has no AVX"
                                                                     : "a core ctxbench does not rank");
            return;
        }
        if (!(run->needs & ~features) && run->rank >= blas_core_rank(best)) {
            if (again && strcasecmp(before, running)) {
                const BlasCore *b = core_find(before);
                snprintf(choice, sizeof choice, "core %s (chosen by ctxbench: CPU has %s; OpenBLAS had %s%s%.40s%s)",
                         running, features_text(features), *before ? before : "another core",
                         *before_env ? " from " CORE_ENV "=" : "", before_env,
                         b && (b->needs & ~features) ? ", which this CPU cannot run" : "");
            } else {
                snprintf(choice, sizeof choice, "core %s (%s, the best for this CPU)", running, origin);
            }
            return;
        }
        target = best;
    }

    /* The running core is not the one wanted: switch, unless this image is already the switch. */
    char why[200];
    if (again)
        snprintf(why, sizeof why, "re-executing with " CORE_ENV "=%.40s did not change it", target);
    else if (!dynamic)
        snprintf(why, sizeof why, "this OpenBLAS is built for one core");
    else
        reexec(argv, target, running, env, env_set, why, sizeof why);
    if (*force) {
        fprintf(stderr, "ctxbench: warning: " FORCE_ENV "=%s did not take effect (%s); OpenBLAS runs its %s kernels\n",
                force, why, running);
        snprintf(choice, sizeof choice, "core %s (%s; " FORCE_ENV "=%s did not take effect: %s)", running, origin,
                 force, why);
    } else {
        fprintf(stderr, "ctxbench: warning: OpenBLAS runs its %s%s kernels on a CPU with %s (%s); %s%s\n",
                run->rank == 0 ? "generic " : "", running, features_text(features & ~CB_CPU_AVX512BF16), why,
                cost_text(run, target, features), dynamic ? " (set " FORCE_ENV " to force one)" : "");
        snprintf(choice, sizeof choice, "core %s (%s; %s would be faster, but %s)", running, origin, target, why);
    }
}

const char *blas_core_choice(void) {
    if (!selected) {
        char env[96], origin[80];
        env_copy(CORE_ENV, env, sizeof env);
        origin_text(env, origin, sizeof origin);
        snprintf(choice, sizeof choice, "core %s (%s; not checked by ctxbench)", running_core(), origin);
    }
    return choice;
}

void blas_describe(char *out, size_t n) {
    const char *config = openblas_get_config();
    snprintf(out, n, "%.100s %s", config && *config ? config : "OpenBLAS", blas_core_choice());
}
