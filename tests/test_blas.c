/*
 * test_blas.c — the choice of OpenBLAS's kernels (src/core/blas.c): the pure map from CPU
 * features to the best core, the ranking of cores, the feature reader against the compiler's own
 * CPU detection, and `ctxbench --version` under OPENBLAS_CORETYPE and CTXBENCH_BLAS_CORE: a worse
 * core is replaced silently, a forced one stays, `library` keeps OpenBLAS's choice, and a switch
 * that fails prints exactly one warning line.
 */
#include <cblas.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/blas.h"
#include "store/store.h"
#include "support/tmpdir_fixture.h"

/* ---- the pure parts --------------------------------------------------------------------------- */

#define AVX2_FMA (CB_CPU_AVX | CB_CPU_AVX2 | CB_CPU_FMA)

Test(blas, features_map_to_the_best_core_for_fp32_gemm) {
    static const struct {
        unsigned features;
        const char *core; /* NULL: OpenBLAS's own choice stands */
    } rows[] = {
        {0, NULL},
        {CB_CPU_FMA4, NULL},
        {CB_CPU_AVX, "Sandybridge"},
        {CB_CPU_AVX | CB_CPU_FMA, "Sandybridge"},
        {CB_CPU_AVX | CB_CPU_AVX2, "Sandybridge"},
        {CB_CPU_AVX | CB_CPU_FMA | CB_CPU_FMA4, "Sandybridge"},
        {AVX2_FMA, "Haswell"},
        {AVX2_FMA | CB_CPU_FMA4, "Haswell"},
        {AVX2_FMA | CB_CPU_AVX512BF16, "Haswell"},
        /* Knights Landing: F and CD without BW, VL and DQ */
        {AVX2_FMA | CB_CPU_AVX512F | CB_CPU_AVX512CD, "Haswell"},
        {AVX2_FMA | (CB_CPU_AVX512 & ~CB_CPU_AVX512VL), "Haswell"},
        {AVX2_FMA | CB_CPU_AVX512, "SkylakeX"},
        {AVX2_FMA | CB_CPU_AVX512 | CB_CPU_AVX512BF16, "Cooperlake"},
        {AVX2_FMA | CB_CPU_AVX512 | CB_CPU_AVX512BF16 | CB_CPU_FMA4, "Cooperlake"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const char *got = blas_best_core(rows[i].features);
        if (!rows[i].core)
            cr_expect_null(got, "features 0x%x: got %s, want none", rows[i].features, got);
        else
            cr_expect(got && !strcmp(got, rows[i].core), "features 0x%x: got %s, want %s", rows[i].features,
                      got ? got : "none", rows[i].core);
    }
}

Test(blas, cores_rank_by_the_class_of_their_kernels_in_any_case) {
    static const struct {
        const char *name;
        int rank;
    } rows[] = {
        {"Prescott", 0}, {"Nehalem", 0}, {"Core2", 0}, {"Sandybridge", 1}, {"Bulldozer", 1},
        {"Haswell", 2}, {"Zen", 2}, {"SkylakeX", 3}, {"Cooperlake", 3},
        {"cooperlake", 3}, {"HASWELL", 2}, {"NoSuchCore", -1}, {"", -1},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        cr_expect_eq(blas_core_rank(rows[i].name), rows[i].rank, "rank of '%s': %d, want %d", rows[i].name,
                     blas_core_rank(rows[i].name), rows[i].rank);
    cr_expect_eq(blas_core_rank(NULL), -1, "rank of NULL: %d", blas_core_rank(NULL));
    /* every core the map can pick is known and ranks as its class */
    cr_expect_eq(blas_core_rank(blas_best_core(CB_CPU_AVX)), 1);
    cr_expect_eq(blas_core_rank(blas_best_core(AVX2_FMA)), 2);
    cr_expect_eq(blas_core_rank(blas_best_core(AVX2_FMA | CB_CPU_AVX512 | CB_CPU_AVX512BF16)), 3);
}

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__) && !defined(__clang__)
/* GCC's runtime detection also requires the OS to save the AVX and AVX-512 state. */
Test(blas, cpu_features_agree_with_gccs_cpu_detection) {
    __builtin_cpu_init();
    static const struct {
        unsigned bit;
        const char *name;
    } rows[] = {{CB_CPU_AVX, "avx"}, {CB_CPU_FMA, "fma"}, {CB_CPU_AVX2, "avx2"}, {CB_CPU_AVX512F, "avx512f"},
                {CB_CPU_AVX512DQ, "avx512dq"}, {CB_CPU_AVX512CD, "avx512cd"}, {CB_CPU_AVX512BW, "avx512bw"},
                {CB_CPU_AVX512VL, "avx512vl"}, {CB_CPU_AVX512BF16, "avx512bf16"}, {CB_CPU_FMA4, "fma4"}};
    int gcc[] = {__builtin_cpu_supports("avx"), __builtin_cpu_supports("fma"), __builtin_cpu_supports("avx2"),
                 __builtin_cpu_supports("avx512f"), __builtin_cpu_supports("avx512dq"),
                 __builtin_cpu_supports("avx512cd"), __builtin_cpu_supports("avx512bw"),
                 __builtin_cpu_supports("avx512vl"), __builtin_cpu_supports("avx512bf16"),
                 __builtin_cpu_supports("fma4")};
    unsigned f = blas_cpu_features();
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        cr_expect_eq(!!(f & rows[i].bit), !!gcc[i], "%s: blas_cpu_features says %d, GCC says %d", rows[i].name,
                     !!(f & rows[i].bit), !!gcc[i]);
}
#endif

Test(blas, provenance_carries_the_choice) {
    RunInfo ri = {0};
    store_provenance(&ri);
    const char *choice = blas_core_choice();
    size_t n = strlen(ri.blas), m = strlen(choice);
    cr_expect(!strncmp(choice, "core ", 5), "choice: '%s'", choice);
    cr_expect(n > m && !strcmp(ri.blas + n - m, choice), "blas '%s' does not end with the choice '%s'", ri.blas,
              choice);
}

/* ---- ctxbench --version under various environments --------------------------------------------- */

TestSuite(blas_cli, .init = make_tmpdir, .fini = remove_tmpdir);

typedef struct {
    int code;
    char out[2048], err[2048];
    char core[64];      /* the running core, from "core NAME (" */
    const char *choice; /* "core NAME (...)" inside out */
} Version;

static void slurp(const char *path, char *buf, size_t n) {
    FILE *f = fopen(path, "rb");
    size_t got = f ? fread(buf, 1, n - 1, f) : 0;
    buf[got] = '\0';
    if (f) fclose(f);
}

/* Runs `ctxbench ARGS...` (NULL-terminated) with the ctxbench and OpenBLAS core variables cleared
   and then set from env ("NAME=VALUE" strings, NULL-terminated). */
static void run_cli(Version *v, const char *const *env, const char *const *args) {
    const char *bin = getenv("CB_BINARY");
    cr_assert_not_null(bin, "CB_BINARY is not set (run through ctest)");
    char outp[300], errp[300];
    snprintf(outp, sizeof outp, "%s/stdout", tmpdir);
    snprintf(errp, sizeof errp, "%s/stderr", tmpdir);
    char *argv[16];
    int argc = 0;
    argv[argc++] = (char *)bin;
    for (; *args && argc < 15; args++) argv[argc++] = (char *)*args;
    argv[argc] = NULL;
    fflush(NULL);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        int o = open(outp, O_WRONLY | O_CREAT | O_TRUNC, 0644), e = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (o < 0 || e < 0) _exit(127);
        dup2(o, 1);
        dup2(e, 2);
        unsetenv("OPENBLAS_CORETYPE");
        unsetenv("CTXBENCH_BLAS_CORE");
        unsetenv("CTXBENCH_BLAS_REEXEC");
        for (; *env; env++) putenv((char *)*env);
        execv(bin, argv);
        _exit(127);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0) cr_assert_eq(errno, EINTR);
    v->code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    slurp(outp, v->out, sizeof v->out);
    slurp(errp, v->err, sizeof v->err);
    v->core[0] = '\0';
    v->choice = strstr(v->out, " core ");
    if (v->choice) {
        v->choice++;
        sscanf(v->choice, "core %63s", v->core);
    }
}

static void version(Version *v, const char *const *env) {
    static const char *const args[] = {"--version", NULL};
    run_cli(v, env, args);
    cr_assert_eq(v->code, 0, "exit code %d; stderr: %s", v->code, v->err);
    cr_assert(!strncmp(v->out, "ctxbench ", 9), "stdout: %s", v->out);
    cr_assert(strstr(v->out, "\nBLAS: "), "no BLAS line in: %s", v->out);
    cr_assert_not_null(v->choice, "no 'core NAME (...)' in: %s", v->out);
}

/* Whether s is exactly one line (with its newline) that starts with prefix. */
static int one_line_starting(const char *s, const char *prefix) {
    size_t n = strlen(s);
    return n > 0 && s[n - 1] == '\n' && strchr(s, '\n') == s + n - 1 && !strncmp(s, prefix, strlen(prefix));
}

static int dynamic_arch(void) {
    const char *config = openblas_get_config();
    return config && strstr(config, "DYNAMIC_ARCH");
}

Test(blas_cli, a_forced_prescott_is_replaced_by_a_better_core_silently) {
    Version v;
    version(&v, (const char *const[]){"OPENBLAS_CORETYPE=Prescott", NULL});
    const char *best = blas_best_core(blas_cpu_features());
    if (!best) {
        /* below AVX there is nothing better: Prescott stays, and that is no failure */
        cr_expect_eq(blas_core_rank(v.core), 0, "core %s on a CPU without AVX: %s", v.core, v.out);
        cr_expect_str_eq(v.err, "", "stderr: %s", v.err);
    } else if (dynamic_arch()) {
        cr_expect_gt(blas_core_rank(v.core), 0, "still on core %s: %s", v.core, v.out);
        cr_expect_geq(blas_core_rank(v.core), blas_core_rank(best), "core %s, the CPU supports %s: %s", v.core, best,
                      v.out);
        cr_expect(strstr(v.choice, "chosen by ctxbench") && strstr(v.choice, "from OPENBLAS_CORETYPE=Prescott"),
                  "the reason does not say why: %s", v.choice);
        cr_expect_str_eq(v.err, "", "stderr: %s", v.err);
    } else {
        cr_expect(one_line_starting(v.err, "ctxbench: warning: OpenBLAS runs its generic Prescott kernels"),
                  "a library built for one core, but no single warning line: '%s'", v.err);
    }
}

Test(blas_cli, ctxbench_blas_core_forces_prescott) {
    Version v;
    version(&v, (const char *const[]){"CTXBENCH_BLAS_CORE=Prescott", "OPENBLAS_CORETYPE=Haswell", NULL});
    cr_expect_str_eq(v.core, "Prescott", "core %s: %s", v.core, v.out);
    cr_expect(strstr(v.choice, "forced by CTXBENCH_BLAS_CORE=Prescott"), "the reason does not say forced: %s",
              v.choice);
    cr_expect_str_eq(v.err, "", "stderr: %s", v.err);
}

Test(blas_cli, ctxbench_blas_core_library_keeps_openblas_coretype) {
    Version v;
    version(&v, (const char *const[]){"CTXBENCH_BLAS_CORE=library", "OPENBLAS_CORETYPE=Haswell", NULL});
    cr_expect_str_eq(v.core, "Haswell", "core %s: %s", v.core, v.out);
    cr_expect(strstr(v.choice, "CTXBENCH_BLAS_CORE=library") && strstr(v.choice, "OPENBLAS_CORETYPE=Haswell"),
              "the reason: %s", v.choice);
    cr_expect_str_eq(v.err, "", "stderr: %s", v.err);
}

/* CTXBENCH_BLAS_REEXEC is the guard the first image sets before re-executing: with it set, this
   image believes it is the second one, so Prescott still running is a switch that failed. */
Test(blas_cli, a_switch_that_failed_prints_one_warning_and_runs_on) {
    const char *best = blas_best_core(blas_cpu_features());
    if (!best || !dynamic_arch()) cr_skip_test("nothing to switch to on this CPU or library");
    Version v;
    version(&v, (const char *const[]){"OPENBLAS_CORETYPE=Prescott", "CTXBENCH_BLAS_REEXEC=Prescott;Prescott", NULL});
    cr_expect_str_eq(v.core, "Prescott", "core %s: %s", v.core, v.out);
    cr_expect(one_line_starting(v.err, "ctxbench: warning: OpenBLAS runs its generic Prescott kernels on a CPU with "),
              "not one warning line: '%s'", v.err);
    cr_expect(strstr(v.err, "did not change it") && strstr(v.err, "GEMMs will be several times slower") &&
                  strstr(v.err, "(set CTXBENCH_BLAS_CORE to force one)\n"),
              "the warning does not say why or what it costs: '%s'", v.err);
    cr_expect(strstr(v.choice, "would be faster, but"), "the reason: %s", v.choice);
}

Test(blas_cli, an_unknown_forced_core_prints_one_warning_and_runs_on) {
    if (!dynamic_arch()) cr_skip_test("a library built for one core cannot switch");
    Version v;
    version(&v, (const char *const[]){"CTXBENCH_BLAS_CORE=NoSuchCore", NULL});
    cr_expect(one_line_starting(v.err, "ctxbench: warning: CTXBENCH_BLAS_CORE=NoSuchCore did not take effect"),
              "not one warning line: '%s'", v.err);
    cr_expect(strstr(v.choice, "did not take effect"), "the reason: %s", v.choice);
}

Test(blas_cli, the_re_execution_keeps_a_subcommands_arguments) {
    static const char *const args[] = {"inspect", "alibi", "--heads", "4", "--query", "3", NULL};
    Version plain, switched;
    run_cli(&plain, (const char *const[]){"CTXBENCH_BLAS_CORE=library", NULL}, args);
    run_cli(&switched, (const char *const[]){"OPENBLAS_CORETYPE=Prescott", NULL}, args);
    cr_assert_eq(plain.code, 0, "exit code %d; stderr: %s", plain.code, plain.err);
    cr_expect_eq(switched.code, 0, "exit code %d; stderr: %s", switched.code, switched.err);
    cr_expect_str_eq(switched.out, plain.out, "output differs after the re-execution");
    cr_expect_str_eq(switched.err, "", "stderr: %s", switched.err);
}
