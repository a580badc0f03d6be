/*
 * bench.c — kernel benchmarks against the machine's own limits, measured in the same process.
 *
 * Prints the BLAS kernel in use; the FP32 FMA peak of one thread and of two (a kernel of its own:
 * the ceiling no GEMM can pass) and sgemm at 1 and 2 threads; attention forward (evaluation
 * kernel) GFLOP/s at n = 512 ... 16384 and backward (training kernel, which keeps n x n
 * probabilities) up to 8192, for head size 64; the training step of a 4-layer, 128-wide model
 * (bench/vs_pytorch.sh's) in model FLOP/s, each as a share of both sgemm and the FMA peak; the
 * speed-up from 1 to 2 threads of that training step and of a long-context evaluation; and, per
 * scheme, the extra time of its encoding over nope for a training step and for a model evaluation
 * at n = 512 and 8192. Every figure is the median of repeated timings (warm-up first), thread
 * counts and schemes in interleaved rounds. With --db FILE the rows also go to the results
 * database as a run of suite "bench".
 *
 * usage: bench [--quick] [--db FILE]
 *        bench train [--scheme S] [--layers L] [--d-model C] [--heads NH] [--context T] [--batch B]
 *                    [--steps N] [--warmup-steps W] [--threads N]
 * The train mode times N training steps (after W untimed ones) of one model and prints one line of
 * key=value pairs (tokens_per_s among them): bench/vs_pytorch.sh compares it with PyTorch.
 */
#include <cblas.h>
#include <immintrin.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/blas.h"
#include "model/kernels.h"
#include "model/model.h"
#include "store/store.h"

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median seconds of `reps` timed calls after one warm-up call. */
#define TIME_MEDIAN(reps, out, call)                                   \
    do {                                                               \
        double t_[64];                                                 \
        call;                                                          \
        for (int r_ = 0; r_ < (reps); r_++) {                          \
            double s_ = clock_now();                                   \
            call;                                                      \
            t_[r_] = clock_now() - s_;                                 \
        }                                                              \
        qsort(t_, (size_t)(reps), sizeof(double), cmp_double);         \
        (out) = t_[(reps) / 2];                                        \
    } while (0)

static void set_threads(int t) {
    omp_set_num_threads(t);
    openblas_set_num_threads(t);
}

static float *random_floats(size_t n, uint64_t seed) {
    float *x = malloc(n * sizeof(float));
    Rng rng;
    rng_seed(&rng, seed);
    for (size_t i = 0; i < n; i++) x[i] = rng_normal(&rng);
    return x;
}

typedef struct {
    Store *st;
    int64_t run_id;
} Sink;

static void record(Sink *sink, const char *scheme, const char *task, int context, const char *name,
                   double value, const char *unit) {
    printf("  %-12s %-22s n=%-6d %-26s %12.4f %s\n", scheme, task, context, name, value, unit);
    if (!sink->st) return;
    CaseRecord c = {.run_id = sink->run_id, .scheme = scheme, .variant = "", .task = task,
                    .context = context, .status = "ok"};
    MetricRecord m = {.name = name, .value = value, .lo = NAN, .hi = NAN, .count = 1, .unit = unit};
    int64_t id;
    char err[CB_ERR_LEN];
    if (store_insert_case(sink->st, &c, &m, 1, NULL, 0, &id, err)) fprintf(stderr, "bench: %s\n", err);
}

/* A kernel's GFLOP/s with its share of the same run's 2-thread sgemm and FMA peak. */
static void record_gflops(Sink *sink, const char *scheme, const char *task, int n, double gf, double sgemm2,
                          double peak2) {
    record(sink, scheme, task, n, "gflops", gf, "GFLOP/s");
    record(sink, scheme, task, n, "share_of_sgemm", gf / sgemm2, "");
    record(sink, scheme, task, n, "share_of_peak", gf / peak2, "");
}

static double sgemm_gflops(int threads, int size, int reps) {
    set_threads(threads);
    float *a = random_floats((size_t)size * size, 1), *b = random_floats((size_t)size * size, 2);
    float *c = calloc((size_t)size * size, sizeof(float));
    double t;
    TIME_MEDIAN(reps, t, cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, size, size, size, 1.0f, a, size,
                                     b, size, 0.0f, c, size));
    free(a), free(b), free(c);
    return 2.0 * size * size * (double)size / t / 1e9;
}

/*
 * The FP32 FMA peak: the ceiling no GEMM can pass. 16 independent chains of fused multiply-adds
 * on the widest vectors the CPU has (chosen at run time, whatever the build's -march), enough to
 * cover the latency of two FMA pipes; nothing touches memory inside the loop. Returns GFLOP/s of
 * one thread over `iters` iterations (2 FLOPs per lane per FMA).
 */
#define FMA_CHAINS 16
__attribute__((target("avx512f"))) static double fma_run_avx512(long iters) {
    __m512 acc[FMA_CHAINS], a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
    for (int c = 0; c < FMA_CHAINS; c++) acc[c] = _mm512_set1_ps((float)c);
    double t0 = clock_now();
    for (long i = 0; i < iters; i++)
        for (int c = 0; c < FMA_CHAINS; c++) acc[c] = _mm512_fmadd_ps(acc[c], a, b);
    double t = clock_now() - t0;
    float sink[16], total = 0;
    for (int c = 0; c < FMA_CHAINS; c++) {
        _mm512_storeu_ps(sink, acc[c]);
        total += sink[0];
    }
    if (total == 12345.0f) puts(""); /* keeps the chains alive */
    return 2.0 * 16 * FMA_CHAINS * (double)iters / t / 1e9;
}

__attribute__((target("avx2,fma"))) static double fma_run_avx2(long iters) {
    __m256 acc[FMA_CHAINS], a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
    for (int c = 0; c < FMA_CHAINS; c++) acc[c] = _mm256_set1_ps((float)c);
    double t0 = clock_now();
    for (long i = 0; i < iters; i++)
        for (int c = 0; c < FMA_CHAINS; c++) acc[c] = _mm256_fmadd_ps(acc[c], a, b);
    double t = clock_now() - t0;
    float sink[8], total = 0;
    for (int c = 0; c < FMA_CHAINS; c++) {
        _mm256_storeu_ps(sink, acc[c]);
        total += sink[0];
    }
    if (total == 12345.0f) puts("");
    return 2.0 * 8 * FMA_CHAINS * (double)iters / t / 1e9;
}

/* Which vectors fma_peak runs: "avx512", "avx2+fma", or NULL (no FMA unit: no peak measured). */
static const char *fma_kind(void) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return "avx512";
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "avx2+fma";
    return NULL;
}

/* FMA peak GFLOP/s summed over `threads` threads running at once (median of `reps`). */
static double fma_peak(int threads, int reps) {
    const char *kind = fma_kind();
    if (!kind) return NAN;
    long iters = 20000000;
    double best[64];
    for (int r = 0; r < reps; r++) {
        double sum = 0;
#pragma omp parallel num_threads(threads) reduction(+ : sum)
        sum += !strcmp(kind, "avx512") ? fma_run_avx512(iters) : fma_run_avx2(iters);
        best[r] = sum;
    }
    qsort(best, (size_t)reps, sizeof(double), cmp_double);
    return best[reps / 2];
}

/* Model FLOPs of one training step: 6 per parameter per token for the GEMMs (forward 2, backward
   4), and attention's QK^T and PV over the causal half, forward 2 x 2 and backward 2 x 4 per
   query, key and channel, per layer. */
static double train_step_flops(const Model *m, int B, int T) {
    double tokens = (double)B * T;
    return 6.0 * (double)m->n_params * tokens + 6.0 * m->cfg.n_layer * tokens * (double)T * m->cfg.d_model;
}

static int parse_int_arg(const char *flag, const char *v, int lo, int hi, int *out) {
    char *end;
    long x = strtol(v, &end, 10);
    if (*v == '\0' || *end != '\0' || x < lo || x > hi) {
        fprintf(stderr, "bench: %s: '%s' is not an integer in %d..%d\n", flag, v, lo, hi);
        return -1;
    }
    *out = (int)x;
    return 0;
}

/* bench train ...: tokens per second of training steps of one model. */
static int bench_train(int argc, char **argv) {
    const char *scheme = "nope";
    int L = 4, C = 128, NH = 4, T = 128, B = 16, steps = 20, warm = 3, threads = 2;
    struct {
        const char *flag;
        int *val, lo, hi;
    } ints[] = {{"--layers", &L, 1, 64},   {"--d-model", &C, 2, 4096},  {"--heads", &NH, 1, 256},
                {"--context", &T, 2, 65536}, {"--batch", &B, 1, 4096},  {"--steps", &steps, 1, 100000},
                {"--warmup-steps", &warm, 0, 100000}, {"--threads", &threads, 1, 1024}};
    for (int i = 1; i < argc; i++) {
        int done = 0;
        if (!strcmp(argv[i], "--scheme") && i + 1 < argc) scheme = argv[++i], done = 1;
        for (size_t k = 0; !done && k < sizeof ints / sizeof ints[0]; k++)
            if (!strcmp(argv[i], ints[k].flag) && i + 1 < argc) {
                if (parse_int_arg(ints[k].flag, argv[i + 1], ints[k].lo, ints[k].hi, ints[k].val)) return 2;
                i++, done = 1;
            }
        if (!done) {
            fprintf(stderr, "bench train: unknown or incomplete option '%s'\n", argv[i]);
            return 2;
        }
    }
    set_threads(threads);
    char err[CB_ERR_LEN];
    ModelConfig cfg = {.n_layer = L, .d_model = C, .n_head = NH, .mlp_ratio = 4, .train_ctx = T};
    TrainConfig tc = {.steps = warm + steps, .batch = B, .warmup = 0, .lr = 1e-3, .min_lr_ratio = 0.1,
                      .weight_decay = 0.1, .beta1 = 0.9, .beta2 = 0.95, .eps = 1e-8, .grad_clip = 1.0};
    Model m;
    if (model_build(&m, &cfg, scheme, 1, err)) {
        fprintf(stderr, "bench train: %s\n", err);
        return 2;
    }
    /* A fixed byte stream: windows of it, each step the next ones. */
    size_t len = (size_t)1 << 20;
    uint8_t *text = malloc(len);
    Rng rng;
    rng_seed(&rng, 7);
    for (size_t i = 0; i < len; i++) text[i] = (uint8_t)(' ' + rng_next(&rng) % 95);
    uint8_t *in = malloc((size_t)B * T), *tg = malloc((size_t)B * T);
    double t0 = 0;
    float loss = 0, gn;
    for (int s = 0; s < warm + steps; s++) {
        if (s == warm) t0 = clock_now();
        for (int b = 0; b < B; b++) {
            size_t at = ((size_t)(s * B + b) * 9973) % (len - (size_t)T - 1);
            memcpy(in + (size_t)b * T, text + at, (size_t)T);
            memcpy(tg + (size_t)b * T, text + at + 1, (size_t)T);
        }
        if (model_train_step(&m, in, tg, B, T, &tc, train_lr_at(&tc, s), &loss, &gn, err)) {
            fprintf(stderr, "bench train: %s\n", err);
            return 1;
        }
    }
    double secs = clock_now() - t0;
    double tps = (double)steps * B * T / secs;
    printf("train scheme=%s layers=%d d_model=%d heads=%d context=%d batch=%d threads=%d steps=%d "
           "seconds=%.4f tokens_per_s=%.1f model_gflops=%.2f final_loss=%.4f blas_core=%s\n",
           scheme, L, C, NH, T, B, threads, steps, secs, tps,
           train_step_flops(&m, B, T) * steps / secs / 1e9, loss, openblas_get_corename());
    model_free(&m);
    free(text), free(in), free(tg);
    return 0;
}

int main(int argc, char **argv) {
    blas_select_core(argv); /* the best OpenBLAS kernel for this CPU, as ctxbench itself runs */
    if (argc > 1 && !strcmp(argv[1], "train")) {
        cb_flush_denormals();
        return bench_train(argc - 1, argv + 1);
    }
    int quick = 0;
    const char *db = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) quick = 1;
        else if (!strcmp(argv[i], "--db") && i + 1 < argc) db = argv[++i];
        else {
            fprintf(stderr, "usage: bench [--quick] [--db FILE]\n");
            return 2;
        }
    }
    cb_flush_denormals(); /* as the suite runner's children do */
    char err[CB_ERR_LEN];
    Sink sink = {0};
    if (db) {
        if (store_open(&sink.st, db, 0, err)) {
            fprintf(stderr, "bench: %s\n", err);
            return 2;
        }
        RunInfo ri = {.suite_name = "bench", .suite_path = "bench", .suite_text = "", .suite_sha256 = "",
                      .threads = 2};
        store_provenance(&ri);
        if (store_begin_run(sink.st, &ri, &sink.run_id, err)) {
            fprintf(stderr, "bench: %s\n", err);
            return 2;
        }
    }
    int reps = quick ? 3 : 5, maxn = quick ? 4096 : 16384;

    char blas[512];
    blas_describe(blas, sizeof blas);
    printf("BLAS: %s\n", blas);
    printf("FP32 FMA peak (%s vectors, 16 chains, median of %d) and sgemm (OpenBLAS, 1024^3)\n",
           fma_kind() ? fma_kind() : "none", reps);
    double p1 = fma_peak(1, reps), p2 = fma_peak(2, reps);
    record(&sink, "-", "fma_peak", 0, "gflops_1_thread", p1, "GFLOP/s");
    record(&sink, "-", "fma_peak", 0, "gflops_2_threads", p2, "GFLOP/s");
    double g1 = sgemm_gflops(1, 1024, reps), g2 = sgemm_gflops(2, 1024, reps);
    record(&sink, "-", "sgemm", 1024, "gflops_1_thread", g1, "GFLOP/s");
    record(&sink, "-", "sgemm", 1024, "gflops_2_threads", g2, "GFLOP/s");
    record(&sink, "-", "sgemm", 1024, "share_of_peak_1_thread", g1 / p1, "");
    record(&sink, "-", "sgemm", 1024, "share_of_peak_2_threads", g2 / p2, "");
    set_threads(2);

    printf("attention, head size 64, one head, 2 threads (share = of 2-thread sgemm)\n");
    PeModel nope = {0};
    PeDims dims = {1, 1, 64, 64, 128};
    if (pe_create(&nope, "nope", &dims, err)) return 1;
    for (int n = 512; n <= maxn; n *= 2) {
        float *qkv = random_floats((size_t)n * 3 * 64, 3), *out = malloc(sizeof(float) * (size_t)n * 64);
        float *scratch = malloc(sizeof(float) * attention_eval_scratch_floats(&nope, 0, n, 64, 1, 0, CB_ATT_BQ,
                                                                             CB_ATT_BK, omp_get_max_threads()));
        double t;
        int r = n >= 8192 ? 3 : reps;
        TIME_MEDIAN(r, t, attention_eval(out, NULL, scratch, qkv, NULL, &nope, 0, n, 64, 1));
        double gf = 2.0 * (double)n * n * 64 / t / 1e9; /* QK^T and PV over the causal half */
        record_gflops(&sink, "nope", "attention_forward", n, gf, g2, p2);
        if (n <= 8192) {
            /* Two sequences: the training kernel runs one (sequence, head) per thread. */
            size_t N2 = 2 * (size_t)n;
            float *q2 = random_floats(N2 * 3 * 64, 4), *o2 = malloc(sizeof(float) * N2 * 64);
            float *att = malloc(sizeof(float) * N2 * n), *dq = malloc(sizeof(float) * N2 * 3 * 64);
            float *ds = malloc(sizeof(float) * N2 * n);
            attention_forward(o2, att, q2, &nope, 0, 2, n, 64, 1);
            TIME_MEDIAN(r, t, attention_backward(dq, ds, o2, q2, att, &nope, 0, 2, n, 64, 1));
            gf = 2 * 4.0 * (double)n * n * 64 / t / 1e9;
            free(q2), free(o2);
            record_gflops(&sink, "nope", "attention_backward", n, gf, g2, p2);
            free(att), free(dq), free(ds);
        }
        free(qkv), free(out), free(scratch);
    }
    pe_destroy(&nope);

    /* Training: the model of the PyTorch comparison (bench/vs_pytorch.sh). Thread counts and
       schemes are timed in interleaved rounds, each round every configuration once, so drift in
       the machine's speed hits them alike; figures are medians over the rounds. */
    enum { ROUNDS = 7, MAX_SCHEMES = 32 };
    int rounds = quick ? 3 : ROUNDS;
    printf("training step: 4 layers, d_model 128, 4 heads, batch 16 x 128, median of %d interleaved rounds\n",
           rounds);
    ModelConfig cfg = {.n_layer = 4, .d_model = 128, .n_head = 4, .mlp_ratio = 4, .train_ctx = 128};
    TrainConfig tc = {.steps = 100, .batch = 16, .warmup = 0, .lr = 1e-3, .min_lr_ratio = 0.1,
                      .weight_decay = 0.1, .beta1 = 0.9, .beta2 = 0.95, .eps = 1e-8, .grad_clip = 1.0};
    int B = 16, T = 128;
    uint8_t *in = malloc((size_t)B * T), *tg = malloc((size_t)B * T);
    for (int i = 0; i < B * T; i++) in[i] = (uint8_t)('a' + i % 23), tg[i] = (uint8_t)('a' + (i + 1) % 23);
    {
        Model m1, m2;
        if (model_build(&m1, &cfg, "rope", 1, err) || model_build(&m2, &cfg, "rope", 1, err)) return 1;
        double t1[ROUNDS], t2[ROUNDS], ratio[ROUNDS];
        float loss, gn;
        for (int r = -1; r < rounds; r++) { /* round -1 warms up */
            for (int threads = 1; threads <= 2; threads++) {
                set_threads(threads);
                Model *m = threads == 1 ? &m1 : &m2;
                double s0 = clock_now();
                for (int k = 0; k < 3; k++) model_train_step(m, in, tg, B, T, &tc, 1e-3, &loss, &gn, err);
                double t = (clock_now() - s0) / 3;
                if (r >= 0) *(threads == 1 ? &t1[r] : &t2[r]) = t;
            }
            if (r >= 0) ratio[r] = t1[r] / t2[r];
        }
        qsort(t2, (size_t)rounds, sizeof(double), cmp_double);
        qsort(ratio, (size_t)rounds, sizeof(double), cmp_double);
        double gf = train_step_flops(&m2, B, T) / t2[rounds / 2] / 1e9;
        record(&sink, "rope", "train_step", T, "tokens_per_s", (double)B * T / t2[rounds / 2], "tokens/s");
        record_gflops(&sink, "rope", "train_step", T, gf, g2, p2);
        record(&sink, "rope", "train_step", T, "speedup_1_to_2_threads", ratio[rounds / 2], "x");
        model_free(&m1), model_free(&m2);
    }
    set_threads(2);
    printf("training step overhead over nope, 2 threads, median of %d interleaved rounds\n", rounds);
    {
        Model ms[MAX_SCHEMES];
        const char *names[MAX_SCHEMES];
        int ns = 0;
        for (const PeScheme *const *s = pe_all(); *s && ns < MAX_SCHEMES; s++)
            if (!model_build(&ms[ns], &cfg, (*s)->name, 1, err)) names[ns++] = (*s)->name;
        double t[MAX_SCHEMES][ROUNDS];
        float loss, gn;
        for (int r = -1; r < rounds; r++)
            for (int i = 0; i < ns; i++) {
                double s0 = clock_now();
                for (int k = 0; k < 4; k++) model_train_step(&ms[i], in, tg, B, T, &tc, 1e-3, &loss, &gn, err);
                if (r >= 0) t[i][r] = (clock_now() - s0) / 4;
            }
        double base = 0;
        for (int i = 0; i < ns; i++) {
            qsort(t[i], (size_t)rounds, sizeof(double), cmp_double);
            double med = t[i][rounds / 2];
            if (!strcmp(names[i], "nope")) base = med;
            record(&sink, names[i], "train_step", T, "seconds", med, "s");
            if (base > 0) record(&sink, names[i], "train_step", T, "overhead_over_nope", med / base - 1.0, "");
            model_free(&ms[i]);
        }
    }

    int long_n = quick ? 2048 : 8192;
    uint8_t *text = malloc((size_t)long_n + 1);
    for (int i = 0; i <= long_n; i++) text[i] = (uint8_t)('a' + (i * 7) % 26);
    {
        /* Interleaved: one thread, then two, in each round; the median of the rounds' ratios. */
        Model m;
        if (model_build(&m, &cfg, "rope", 1, err) || pe_prepare(&m.pe, long_n, err)) return 1;
        float *losses = malloc(sizeof(float) * (size_t)long_n);
        double ratio[ROUNDS], t[3] = {0};
        for (int r = -1; r < rounds; r++) {
            for (int threads = 1; threads <= 2; threads++) {
                set_threads(threads);
                double s0 = clock_now();
                model_eval_window(&m, text, text + 1, long_n, losses, NULL, err);
                t[threads] = clock_now() - s0;
            }
            if (r >= 0) ratio[r] = t[1] / t[2];
        }
        qsort(ratio, (size_t)rounds, sizeof(double), cmp_double);
        record(&sink, "rope", "eval_forward", long_n, "speedup_1_to_2_threads", ratio[rounds / 2], "x");
        free(losses);
        model_free(&m);
        set_threads(2);
    }

    printf("encoding overhead over nope: model evaluation forward, 2 threads, median of %d interleaved rounds\n",
           ROUNDS);
    set_threads(2);
    int sizes[2] = {512, long_n};
    for (int k = 0; k < 2; k++) {
        int n = sizes[k], ns = 0;
        Model ms[MAX_SCHEMES];
        const char *names[MAX_SCHEMES];
        for (const PeScheme *const *s = pe_all(); *s && ns < MAX_SCHEMES; s++) {
            if (model_build(&ms[ns], &cfg, (*s)->name, 1, err)) continue;
            if (pe_prepare(&ms[ns].pe, n, err)) {
                printf("  %-12s n=%-6d %s\n", (*s)->name, n, err);
                model_free(&ms[ns]);
                continue;
            }
            names[ns++] = (*s)->name;
        }
        float *losses = malloc(sizeof(float) * (size_t)n);
        double t[MAX_SCHEMES][ROUNDS];
        for (int r = -1; r < ROUNDS; r++) /* round -1 warms up */
            for (int i = 0; i < ns; i++) {
                double s0 = clock_now();
                model_eval_window(&ms[i], text, text + 1, n, losses, NULL, err);
                if (r >= 0) t[i][r] = clock_now() - s0;
            }
        double base = 0;
        for (int i = 0; i < ns; i++) {
            qsort(t[i], ROUNDS, sizeof(double), cmp_double);
            double med = t[i][ROUNDS / 2];
            if (!strcmp(names[i], "nope")) base = med;
            record(&sink, names[i], "eval_forward", n, "seconds", med, "s");
            if (base > 0) record(&sink, names[i], "eval_forward", n, "overhead_over_nope", med / base - 1.0, "");
            model_free(&ms[i]);
        }
        free(losses);
    }
    free(text), free(in), free(tg);
    if (sink.st) {
        store_finish_run(sink.st, sink.run_id, "complete", err);
        store_close(sink.st);
        printf("rows written to %s as run %lld\n", db, (long long)sink.run_id);
    }
    return 0;
}
