/*
 * test_bf16.c — training at precision bf16: the rounding against its scalar twin, the bf16 GEMMs of
 * the linear layers against fp32 (exactly the fp32 GEMM of the rounded operands up to summation
 * order, the raw fp32 one within bf16 rounding), bit-identical training runs at one and at two
 * threads, a loss close to fp32's, and the unsupported path: a model refused with the reason, and a
 * suite whose models and cases are recorded as unsupported. Tests that run bf16 GEMMs skip on a CPU
 * without AVX512-BF16.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/runner.h"
#include "harness/suite.h"
#include "model/kernels.h"
#include "model/model.h"
#include "support/sql_fixture.h"
#include "support/tmpdir_fixture.h"

static void skip_without_bf16(void) {
    char why[256];
    if (!bf16_gemm_supported(why, sizeof why)) cr_skip_test("bf16 GEMMs unsupported here: %s", why);
}

static float from_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static float bf16_value(uint16_t h) { return from_bits((uint32_t)h << 16); }

static void fill(float *x, size_t n, Rng *rng, float scale) {
    for (size_t i = 0; i < n; i++) x[i] = scale * rng_normal(rng);
}

/* ||a - b|| / ||b||: the scale-free error of a against the reference b. */
static double rel_norm_err(const float *a, const float *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - b[i];
        num += d * d;
        den += (double)b[i] * b[i];
    }
    return sqrt(num / (den > 0 ? den : 1));
}

Test(bf16, the_scalar_rounding_is_round_to_nearest_even_with_denormals_to_zero) {
    struct {
        uint32_t in;
        uint16_t out;
    } cases[] = {
        {0x3f800000, 0x3f80}, /* 1 */
        {0x3f808000, 0x3f80}, /* 1 + 2^-8: a tie, to the even 1 */
        {0x3f818000, 0x3f82}, /* 1 + 3 * 2^-8: a tie, to the even above */
        {0x3f808001, 0x3f81}, /* just past the tie: up */
        {0x3f807fff, 0x3f80}, /* just below: down */
        {0xbf808001, 0xbf81}, /* negative: by magnitude */
        {0x7f7fffff, 0x7f80}, /* the largest float rounds to infinity */
        {0x7f800000, 0x7f80}, /* +inf */
        {0xff800000, 0xff80}, /* -inf */
        {0x00000001, 0x0000}, /* denormals to zero, keeping the sign */
        {0x807fffff, 0x8000},
        {0x00800000, 0x0080}, /* the smallest normal stays */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint16_t got = bf16_round_one(from_bits(cases[i].in));
        cr_assert_eq(got, cases[i].out, "0x%08x rounds to 0x%04x, expected 0x%04x", cases[i].in, got, cases[i].out);
    }
    uint16_t nan = bf16_round_one(from_bits(0x7f800001)); /* a signalling NaN whose payload is all low bits */
    cr_assert(isnan(bf16_value(nan)), "NaN rounded to 0x%04x, not a NaN", nan);
}

Test(bf16, the_vector_rounding_equals_its_scalar_twin_on_every_kind_of_value) {
    skip_without_bf16();
    enum { N = 4099 }; /* not a multiple of 16: the masked tail */
    static float x[N];
    static uint16_t got[N], want[N];
    Rng rng;
    rng_seed(&rng, 3);
    for (int i = 0; i < N; i++) {
        uint32_t u = (uint32_t)rng_below(&rng, 1u << 16) << 16 | (uint32_t)rng_below(&rng, 1u << 16);
        x[i] = i % 3 ? from_bits(u) : rng_normal(&rng); /* any bit pattern: NaN, inf, denormals */
    }
    x[0] = from_bits(0x3f808000), x[1] = from_bits(0x3f818000), x[2] = from_bits(0x00000001);
    for (int threads = 1; threads <= 2; threads++) {
        omp_set_num_threads(threads);
        for (int n = 0; n <= N; n += n < 40 ? 1 : 997) {
            memset(got, 0xab, sizeof got);
            bf16_round(got, x, (size_t)n);
            bf16_round_naive(want, x, (size_t)n);
            for (int i = 0; i < n; i++) {
                int both_nan = isnan(bf16_value(got[i])) && isnan(bf16_value(want[i]));
                cr_assert(got[i] == want[i] || both_nan, "n %d, x[%d] = %a: 0x%04x, scalar 0x%04x", n, i, x[i],
                          got[i], want[i]);
            }
            cr_assert_eq(got[n], 0xabab, "n %d: wrote past the end", n);
        }
    }
}

/* The linear layer at one shape: forward and backward in bf16 (k = 0) against fp32 on the operands
   rounded to bf16 (k = 1: equal up to the order of the fp32 sums) and on the raw operands (k = 2:
   within bf16 rounding). The bias gradient is an fp32 sum of the raw dout: the same bits as k = 2. */
static void check_linear(size_t N, int IC, int OC, int with_bias, int accumulate) {
    Rng rng;
    rng_seed(&rng, N * 31 + (size_t)IC * 7 + (size_t)OC);
    size_t nx = N * IC, nw = (size_t)OC * IC, ny = N * OC, nmax = nx > nw ? nx : nw;
    nmax = nmax > ny ? nmax : ny;
    float *raw[3] = {malloc(nx * 4), malloc(nw * 4), malloc(ny * 4)}; /* x, w, dout */
    float *rounded[3] = {malloc(nx * 4), malloc(nw * 4), malloc(ny * 4)}, *b = malloc(OC * 4);
    size_t len[3] = {nx, nw, ny};
    uint16_t *h = malloc(nmax * 2);
    for (int t = 0; t < 3; t++) {
        fill(raw[t], len[t], &rng, t == 1 ? 0.1f : 1.0f);
        bf16_round_naive(h, raw[t], len[t]);
        for (size_t i = 0; i < len[t]; i++) rounded[t][i] = bf16_value(h[i]);
    }
    fill(b, OC, &rng, 0.1f);
    float *y[3], *dx[3], *dw[3], *db[3];
    for (int k = 0; k < 3; k++) {
        y[k] = malloc(ny * 4), dx[k] = malloc(nx * 4), dw[k] = malloc(nw * 4), db[k] = malloc(OC * 4);
        for (size_t i = 0; i < nx; i++) dx[k][i] = 0.5f; /* what accumulate adds to */
        for (size_t i = 0; i < nw; i++) dw[k][i] = 0.25f;
        for (int i = 0; i < OC; i++) db[k][i] = 0.125f;
        float **in = k == 1 ? rounded : raw;
        MatmulForward *fwd = k == 0 ? matmul_forward_bf16 : matmul_forward;
        MatmulBackward *bwd = k == 0 ? matmul_backward_bf16 : matmul_backward;
        fwd(y[k], in[0], in[1], with_bias ? b : NULL, N, IC, OC);
        bwd(dx[k], accumulate, dw[k], with_bias ? db[k] : NULL, in[2], in[0], in[1], N, IC, OC);
    }
    cr_assert_eq(bf16_gemm_take_status(), CB_OK, "a bf16 GEMM failed");
    const char *names[3] = {"out", "dinp", "dw"};
    float **res[3] = {y, dx, dw};
    size_t n[3] = {ny, nx, nw};
    for (int r = 0; r < 3; r++) {
        double exact = rel_norm_err(res[r][0], res[r][1], n[r]), fp32 = rel_norm_err(res[r][0], res[r][2], n[r]);
        cr_assert(exact < 2e-6, "%s (%zu, %d, %d): %g from fp32 of the bf16-rounded operands", names[r], N, IC, OC,
                  exact);
        /* Within bf16 rounding of fp32, and not fp32 itself. */
        cr_assert(fp32 < 1e-2 && fp32 > 1e-5, "%s (%zu, %d, %d): %g from fp32", names[r], N, IC, OC, fp32);
    }
    if (with_bias) cr_assert(!memcmp(db[0], db[2], OC * 4), "dbias (%zu, %d, %d) is not fp32's", N, IC, OC);
    for (int k = 0; k < 3; k++) free(y[k]), free(dx[k]), free(dw[k]), free(db[k]);
    for (int t = 0; t < 3; t++) free(raw[t]), free(rounded[t]);
    free(b), free(h);
}

Test(bf16, linear_forward_and_backward_agree_with_fp32_within_bf16_rounding) {
    skip_without_bf16();
    for (int threads = 1; threads <= 2; threads++) {
        omp_set_num_threads(threads);
        check_linear(37, 24, 40, 1, 0);  /* odd sizes */
        check_linear(5, 3, 1, 0, 1);     /* tiny, accumulating, no bias */
        check_linear(1024, 64, 256, 1, 0); /* the quick suite's MLP and head at a shard of 8 x 128 */
        check_linear(1024, 256, 64, 1, 1);
    }
    bf16_gemm_release();
}

/* Two bf16 GEMMs of the same inputs: at one and two threads, and inside a parallel region (one
   per thread, as the batch shards run them), the same bits as a call at one thread. */
Test(bf16, gemms_give_the_same_bits_at_any_thread_count_and_inside_a_parallel_region) {
    skip_without_bf16();
    enum { N = 512, IC = 64, OC = 192 };
    Rng rng;
    rng_seed(&rng, 9);
    static float x[N * IC], w[OC * IC], dy[N * OC], y[4][N * OC], dx[4][N * IC], dw[4][OC * IC];
    fill(x, N * IC, &rng, 1), fill(w, OC * IC, &rng, 0.1f), fill(dy, N * OC, &rng, 1);
    for (int k = 0; k < 3; k++) {
        omp_set_num_threads(k == 0 ? 1 : 2);
        memset(dw[k], 0, sizeof dw[k]);
        if (k < 2) {
            matmul_forward_bf16(y[k], x, w, NULL, N, IC, OC);
            matmul_backward_bf16(dx[k], 0, dw[k], NULL, dy, x, w, N, IC, OC);
        } else {
            memset(dw[3], 0, sizeof dw[3]);
#pragma omp parallel num_threads(2)
            {
                int t = omp_get_thread_num();
                matmul_forward_bf16(y[2 + t], x, w, NULL, N, IC, OC);
                matmul_backward_bf16(dx[2 + t], 0, dw[2 + t], NULL, dy, x, w, N, IC, OC);
                bf16_gemm_release();
            }
        }
    }
    for (int k = 1; k < 4; k++) {
        cr_assert(!memcmp(y[k], y[0], sizeof y[0]), "forward %d differs from the one-thread call", k);
        cr_assert(!memcmp(dx[k], dx[0], sizeof dx[0]), "dinp %d differs from the one-thread call", k);
        cr_assert(!memcmp(dw[k], dw[0], sizeof dw[0]), "dw %d differs from the one-thread call", k);
    }
    bf16_gemm_release();
}

/* ---- training ---- */

static ModelConfig config(int precision) {
    return (ModelConfig){.n_layer = 2, .d_model = 32, .n_head = 4, .mlp_ratio = 4, .train_ctx = 32,
                         .precision = precision};
}

static void random_bytes(uint8_t *b, size_t n, uint64_t seed) {
    Rng rng;
    rng_seed(&rng, seed);
    for (size_t i = 0; i < n; i++) b[i] = (uint8_t)(97 + rng_below(&rng, 8));
}

/* Trains 20 steps of batch 8 (two shards at two threads); the parameters and the last loss. */
static float *train(const char *spec, int precision, float *last_loss, size_t *n_params) {
    enum { B = 8, T = 32, STEPS = 20 };
    char err[CB_ERR_LEN];
    Model m;
    ModelConfig cfg = config(precision);
    cr_assert_eq(model_build(&m, &cfg, spec, 11, err), CB_OK, "%s", err);
    TrainConfig tc = {.steps = STEPS, .batch = B, .warmup = 2, .lr = 3e-3, .min_lr_ratio = 0.1, .weight_decay = 0.1,
                      .beta1 = 0.9, .beta2 = 0.95, .eps = 1e-8, .grad_clip = 1.0};
    uint8_t in[B * T], tg[B * T];
    for (int s = 0; s < STEPS; s++) {
        random_bytes(in, B * T, 100 + s);
        memcpy(tg, in + 1, B * T - 1);
        tg[B * T - 1] = 'a';
        float gn;
        cr_assert_eq(model_train_step(&m, in, tg, B, T, &tc, train_lr_at(&tc, s), last_loss, &gn, err), CB_OK,
                     "%s", err);
    }
    float *p = malloc(m.n_params * sizeof *p);
    memcpy(p, m.params, m.n_params * sizeof *p);
    *n_params = m.n_params;
    model_free(&m);
    return p;
}

Test(bf16, two_training_runs_give_the_same_bits_at_one_and_at_two_threads_and_differ_from_fp32) {
    skip_without_bf16();
    for (int threads = 1; threads <= 2; threads++) {
        omp_set_num_threads(threads);
        float la, lb, lf;
        size_t na, nb, nf;
        float *a = train("rope", CB_PRECISION_BF16, &la, &na), *b = train("rope", CB_PRECISION_BF16, &lb, &nb);
        float *f = train("rope", CB_PRECISION_FP32, &lf, &nf);
        cr_assert(na == nb && !memcmp(a, b, na * sizeof *a), "%d threads: two bf16 runs differ (losses %.9g, %.9g)",
                  threads, la, lb);
        /* Never fp32 under a bf16 label: the weights differ, the loss stays close. */
        cr_assert(memcmp(a, f, na * sizeof *a), "%d threads: the bf16 run has the fp32 run's weights", threads);
        cr_assert(fabsf(la - lf) < 0.02f * lf, "%d threads: loss %.5f in bf16, %.5f in fp32", threads, la, lf);
        free(a), free(b), free(f);
    }
}

/* ---- unsupported ---- */

Test(bf16, a_model_in_bf16_is_refused_with_the_reason_where_bf16_is_unsupported) {
    setenv("CTXBENCH_BF16", "off", 1); /* this test's own process: Criterion forks each test */
    char err[CB_ERR_LEN] = "";
    Model m;
    ModelConfig cfg = config(CB_PRECISION_BF16);
    int rc = model_build(&m, &cfg, "nope", 1, err);
    cr_assert_eq(rc, CB_EUNSUPPORTED, "model_build: rc %d (%s)", rc, err);
    cr_assert_str_eq(err, "model: precision bf16: bf16 GEMMs are switched off by CTXBENCH_BF16=off");
    cfg.precision = CB_PRECISION_FP32;
    cr_assert_eq(model_build(&m, &cfg, "nope", 1, err), CB_OK, "fp32: %s", err);
    model_free(&m);
    cfg.precision = 7;
    cr_assert_eq(model_build(&m, &cfg, "nope", 1, err), CB_EINPUT, "precision 7: %s", err);
}

TestSuite(bf16_suite, .init = make_tmpdir, .fini = remove_tmpdir);

static const char SUITE[] =
    "[suite]\nname = bf16-tiny\nthreads = 2\n[corpus]\nsource = builtin:prose:bytes=65536\neval_bytes = 4096\n"
    "[model]\nlayers = 1\nd_model = 16\nheads = 2\n[train]\ncontext = 16\nsteps = 3\nbatch = 4\nwarmup = 1\n"
    "precision = bf16\n[eval]\ncontexts = 16, 32\nschemes = nope, rope\n";

static void run(const char *db, RunSummary *sum) {
    char err[CB_ERR_LEN] = "";
    Suite s;
    cr_assert_eq(suite_load_string(&s, "bf16-tiny.ini", SUITE, err), CB_OK, "%s", err);
    RunOptions o = {.db_path = db};
    cr_assert_eq(runner_run(&s, &o, sum, err), CB_OK, "%s", err);
    suite_free(&s);
}

Test(bf16_suite, a_bf16_suite_stores_its_precision_with_each_model) {
    skip_without_bf16();
    char db[300];
    snprintf(db, sizeof db, "%s/r.db", tmpdir);
    RunSummary sum;
    run(db, &sum);
    cr_assert_eq(sum.n_ok, 4, "ok cases: %d of %d", sum.n_ok, sum.n_cases);
    sqlite3 *h = open_db(db);
    cr_assert_eq(scalar(h, "SELECT count(*) FROM models WHERE status = 'ok' AND "
                           "train_json LIKE '%\"precision\":\"bf16\"}'"), 2);
    sqlite3_close(h);
}

Test(bf16_suite, where_bf16_is_unsupported_every_model_and_case_says_so_with_the_reason) {
    setenv("CTXBENCH_BF16", "off", 1); /* inherited by the runner's children */
    char db[300];
    snprintf(db, sizeof db, "%s/r.db", tmpdir);
    RunSummary sum;
    run(db, &sum);
    cr_assert_eq(sum.n_cases, 4, "cases: %d", sum.n_cases);
    cr_assert_eq(sum.n_unsupported, 4, "unsupported: %d of %d", sum.n_unsupported, sum.n_cases);
    sqlite3 *h = open_db(db);
    /* The models table knows no "unsupported": the row is "failed" and its error says why. */
    cr_assert_eq(scalar(h, "SELECT count(*) FROM models WHERE status = 'failed' AND weights IS NULL AND "
                           "error = 'unsupported: model: precision bf16: bf16 GEMMs are switched off by CTXBENCH_BF16=off'"),
                 2);
    cr_assert_eq(scalar(h, "SELECT count(*) FROM cases WHERE status = 'unsupported' AND "
                           "error LIKE '%precision bf16: bf16 GEMMs are switched off%'"), 4);
    sqlite3_close(h);
}
