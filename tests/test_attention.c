/*
 * test_attention.c — the blocked kernels against their naive twins: streaming evaluation
 * attention (online softmax over key blocks) for every scheme and every eval-time variant at
 * several block sizes, contexts that are not multiples of the blocks included.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "model/kernels.h"
#include "pe/pe.h"
#include "support/pe_fixture.h"

enum { NH = 2, HS = 8, C = NH * HS, L = 32 };

static void fill(float *x, size_t n, Rng *rng, float scale) {
    for (size_t i = 0; i < n; i++) x[i] = scale * rng_normal(rng);
}

/* Largest |a - b| / (1 + |b|) over n floats. */
static float max_rel_err(const float *a, const float *b, size_t n, size_t *where) {
    float worst = 0.0f;
    for (size_t i = 0; i < n; i++) {
        float e = fabsf(a[i] - b[i]) / (1.0f + fabsf(b[i]));
        if (!(e <= worst)) worst = e, *where = i; /* NaN counts as worst */
    }
    return worst;
}

/* Streaming equals naive for spec at context n with blocks (bq, bk), outputs and entropies. */
static void check_spec(const char *spec, int n, int bq, int bk, uint64_t seed) {
    TestPe tp;
    make_pe(&tp, spec, NH, HS, L);
    char err[CB_ERR_LEN];
    if (pe_prepare(&tp.pe, n, err) != CB_OK) { /* learned past its table: nothing to compare */
        free_pe(&tp);
        return;
    }
    Rng rng;
    rng_seed(&rng, seed);
    size_t np = pe_param_count(&tp.pe);
    for (size_t i = 0; i < np; i++) tp.params[i] += 0.3f * rng_normal(&rng); /* make every term bite */
    size_t N = n;
    float *raw = malloc(sizeof(float) * N * 3 * C), *qkv = malloc(sizeof(float) * N * 3 * C);
    float *alt = NULL;
    fill(raw, N * 3 * C, &rng, 1.5f);
    int *pos = malloc(sizeof(int) * N);
    for (int t = 0; t < n; t++) pos[t] = t;
    const PeScheme *sc = tp.pe.scheme;
    memcpy(qkv, raw, sizeof(float) * N * 3 * C);
    if (sc->qk_forward) sc->qk_forward(&tp.pe, 1, qkv, 3 * C, pos, n);
    if (sc->qk_alt_forward) {
        alt = malloc(sizeof(float) * N * 3 * C);
        memcpy(alt, raw, sizeof(float) * N * 3 * C);
        sc->qk_alt_forward(&tp.pe, 1, alt, 3 * C, pos, n);
    }
    float *y0 = malloc(sizeof(float) * N * C), *y1 = malloc(sizeof(float) * N * C);
    float *e0 = malloc(sizeof(float) * N * NH), *e1 = malloc(sizeof(float) * N * NH);
    int threads = omp_get_max_threads();
    float *s0 = malloc(sizeof(float) * N * threads);
    float *s1 = malloc(sizeof(float) * attention_eval_scratch_floats(&tp.pe, 1, n, C, NH, alt != NULL, bq, bk, threads));
    attention_eval_naive(y0, e0, s0, qkv, alt, &tp.pe, 1, n, C, NH);
    attention_eval_blocked(y1, e1, s1, qkv, alt, &tp.pe, 1, n, C, NH, bq, bk);
    size_t at = 0;
    float ey = max_rel_err(y1, y0, N * C, &at);
    /* sgemm sums q.k in another order than the row kernel; CoPE's gated counts amplify that to
       ~1e-5. A wrong rescale or term is off by far more. */
    cr_assert(ey < 1e-4f, "%s n=%d blocks %dx%d: output %zu is %.8g, naive %.8g", spec, n, bq, bk, at, y1[at], y0[at]);
    float ee = max_rel_err(e1, e0, N * NH, &at);
    cr_assert(ee < 1e-4f, "%s n=%d blocks %dx%d: entropy %zu is %.8g, naive %.8g", spec, n, bq, bk, at, e1[at], e0[at]);
    free(raw), free(qkv), free(alt), free(pos), free(y0), free(y1), free(e0), free(e1), free(s0), free(s1);
    free_pe(&tp);
}

static const int blocks[][2] = {{1, 1}, {7, 13}, {16, 16}, {32, 50}, {64, 256}};
static const int contexts[] = {1, 37, 200};

Test(attention, streaming_equals_naive_for_every_scheme_at_several_block_sizes) {
    uint64_t seed = 1;
    for (const PeScheme *const *s = pe_all(); *s; s++)
        for (size_t b = 0; b < sizeof blocks / sizeof *blocks; b++)
            for (size_t c = 0; c < sizeof contexts / sizeof *contexts; c++)
                check_spec((*s)->name, contexts[c], blocks[b][0], blocks[b][1], seed++);
}

Test(attention, streaming_equals_naive_for_every_eval_time_variant) {
    uint64_t seed = 100;
    char spec[96];
    for (const PeVariantInfo *v = pe_variants(); v->name; v++) {
        snprintf(spec, sizeof spec, "%s+%s", v->scheme, v->name);
        for (size_t b = 0; b < sizeof blocks / sizeof *blocks; b++) check_spec(spec, 200, blocks[b][0], blocks[b][1], seed++);
    }
}

Test(attention, streaming_gives_the_same_bits_at_one_and_two_threads) {
    enum { n = 301 };
    TestPe tp;
    make_pe(&tp, "alibi", NH, HS, n);
    Rng rng;
    rng_seed(&rng, 7);
    static float qkv[n * 3 * C], y[2][n * C], e[2][n * NH];
    fill(qkv, n * 3 * C, &rng, 1.0f);
    for (int threads = 1; threads <= 2; threads++) {
        omp_set_num_threads(threads);
        float *s = malloc(sizeof(float) * attention_eval_scratch_floats(&tp.pe, 0, n, C, NH, 0, 64, 64, threads));
        attention_eval_blocked(y[threads - 1], e[threads - 1], s, qkv, NULL, &tp.pe, 0, n, C, NH, 64, 64);
        free(s);
    }
    cr_assert(!memcmp(y[0], y[1], sizeof y[0]), "outputs differ between one and two threads");
    cr_assert(!memcmp(e[0], e[1], sizeof e[0]), "entropies differ between one and two threads");
    free_pe(&tp);
}

Test(attention, scratch_does_not_grow_with_the_context) {
    TestPe tp;
    make_pe(&tp, "shaw", NH, HS, L);
    size_t small = attention_eval_scratch_floats(&tp.pe, 0, 512, C, NH, 1, 64, 256, 2);
    size_t large = attention_eval_scratch_floats(&tp.pe, 0, 1 << 20, C, NH, 1, 64, 256, 2);
    cr_assert_eq(small, large, "scratch %zu floats at n = 512 but %zu at n = 2^20", small, large);
    cr_assert_lt(large, (size_t)1 << 20, "scratch of %zu floats is not O(block)", large);
    free_pe(&tp);
}

Test(attention, entropy_of_uniform_attention_is_log_of_the_keys) {
    enum { n = 100 };
    TestPe tp;
    make_pe(&tp, "nope", NH, HS, n);
    static float qkv[n * 3 * C], y[n * C], e[n * NH];
    Rng rng;
    rng_seed(&rng, 9);
    fill(qkv, n * 3 * C, &rng, 1.0f);
    for (int t = 0; t < n; t++) memset(qkv + (size_t)t * 3 * C + C, 0, sizeof(float) * C); /* k = 0: equal scores */
    float *s = malloc(sizeof(float) * attention_eval_scratch_floats(&tp.pe, 0, n, C, NH, 0, 16, 24, omp_get_max_threads()));
    attention_eval_blocked(y, e, s, qkv, NULL, &tp.pe, 0, n, C, NH, 16, 24);
    for (int h = 0; h < NH; h++)
        for (int i = 0; i < n; i++)
            cr_assert_float_eq(e[h * n + i], logf((float)(i + 1)), 2e-5f, "head %d query %d: entropy %g, log(%d) = %g", h,
                               i, e[h * n + i], i + 1, logf((float)(i + 1)));
    free(s);
    free_pe(&tp);
}

Test(attention, streaming_exponential_matches_expf) {
    cr_assert_eq(attention_exp(0.0f), 1.0f, "exp(0) = %g", attention_exp(0.0f));
    cr_assert_eq(attention_exp(-INFINITY), 0.0f, "exp(-inf) = %g", attention_exp(-INFINITY));
    cr_assert_eq(attention_exp(-100.0f), 0.0f, "exp(-100) = %g", attention_exp(-100.0f));
    cr_assert(isnan(attention_exp(NAN)), "exp(NaN) = %g", attention_exp(NAN));
    float worst = 0.0f, at = 0.0f;
    for (float x = -86.0f; x <= 0.0f; x += 0.0137f) {
        float e = fabsf(attention_exp(x) - expf(x)) / expf(x);
        if (e > worst) worst = e, at = x;
    }
    cr_assert_lt(worst, 5e-7f, "relative error %g at x = %g", worst, at);
}

/* Training attention (GEMM blocks) against its naive twin for spec at T: probabilities, outputs,
   score gradients, dqkv and the encoding's parameter gradients. */
static void check_training(const char *spec, int T, uint64_t seed) {
    enum { B = 2 };
    TestPe tp;
    make_pe(&tp, spec, NH, HS, T);
    Rng rng;
    rng_seed(&rng, seed);
    size_t np = pe_param_count(&tp.pe);
    for (size_t i = 0; i < np; i++) tp.params[i] += 0.3f * rng_normal(&rng);
    size_t BT = (size_t)B * T, A = (size_t)B * NH * T * T;
    float *qkv = malloc(sizeof(float) * BT * 3 * C), *dout = malloc(sizeof(float) * BT * C);
    fill(qkv, BT * 3 * C, &rng, 1.5f);
    fill(dout, BT * C, &rng, 1.0f);
    float *y[2], *att[2], *ds[2], *dq[2], *g[2];
    for (int k = 0; k < 2; k++) {
        y[k] = malloc(sizeof(float) * BT * C), att[k] = malloc(sizeof(float) * A), ds[k] = malloc(sizeof(float) * A);
        dq[k] = malloc(sizeof(float) * BT * 3 * C), g[k] = calloc(np + 1, sizeof(float));
        if (np) memset(tp.grads, 0, np * sizeof(float));
        if (k == 0) {
            attention_forward_naive(y[k], att[k], qkv, &tp.pe, 1, B, T, C, NH);
            cr_assert_eq(attention_backward_naive(dq[k], ds[k], dout, qkv, att[k], &tp.pe, 1, B, T, C, NH), CB_OK);
        } else {
            attention_forward(y[k], att[k], qkv, &tp.pe, 1, B, T, C, NH);
            cr_assert_eq(attention_backward(dq[k], ds[k], dout, qkv, att[k], &tp.pe, 1, B, T, C, NH), CB_OK);
        }
        if (np) memcpy(g[k], tp.grads, np * sizeof(float));
    }
    size_t at = 0;
    float e;
    e = max_rel_err(y[1], y[0], BT * C, &at);
    cr_assert(e < 1e-4f, "%s T=%d: output %zu is %.8g, naive %.8g", spec, T, at, y[1][at], y[0][at]);
    e = max_rel_err(att[1], att[0], A, &at);
    cr_assert(e < 1e-4f, "%s T=%d: probability %zu is %.8g, naive %.8g", spec, T, at, att[1][at], att[0][at]);
    e = max_rel_err(ds[1], ds[0], A, &at);
    cr_assert(e < 1e-4f, "%s T=%d: score gradient %zu is %.8g, naive %.8g", spec, T, at, ds[1][at], ds[0][at]);
    e = max_rel_err(dq[1], dq[0], BT * 3 * C, &at);
    cr_assert(e < 1e-4f, "%s T=%d: dqkv %zu is %.8g, naive %.8g", spec, T, at, dq[1][at], dq[0][at]);
    e = max_rel_err(g[1], g[0], np, &at);
    cr_assert(e < 1e-3f, "%s T=%d: parameter gradient %zu is %.8g, naive %.8g", spec, T, at, g[1][at], g[0][at]);
    for (int k = 0; k < 2; k++) free(y[k]), free(att[k]), free(ds[k]), free(dq[k]), free(g[k]);
    free(qkv), free(dout);
    free_pe(&tp);
}

Test(attention, training_blocks_equal_the_naive_kernels_for_every_scheme) {
    static const int lengths[] = {1, 37, 64, 130}; /* 130: two full row blocks and a partial one */
    uint64_t seed = 500;
    for (const PeScheme *const *s = pe_all(); *s; s++)
        for (size_t k = 0; k < sizeof lengths / sizeof *lengths; k++) check_training((*s)->name, lengths[k], seed++);
}
