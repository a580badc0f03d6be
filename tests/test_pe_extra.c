/*
 * test_pe_extra.c — xPos, KERPLE, FIRE and Sandwich against PE_SPEC.md §8–§11 and the reference
 * vectors §R.8–§R.10 (read back through each scheme's inspect CSV), their defining properties, and
 * finite-difference checks of every backward hook. Causality and model-level gradients of these
 * schemes are covered by test_model.c, which loops over every registered scheme.
 */
#include <criterion/criterion.h>
#include <math.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "pe/pe.h"
#include "support/inspect_csv.h"
#include "support/pe_fixture.h"

/* ---- helpers ---------------------------------------------------------------------------------- */

/* Random dscores (B, NH, T, T). */
static float *random_dscores(int B, int NH, int T, uint64_t seed) {
    size_t n = (size_t)B * NH * T * T;
    float *ds = malloc(n * sizeof *ds);
    cr_assert(ds, "malloc of %zu dscores failed", n);
    Rng rng;
    rng_seed(&rng, seed);
    for (size_t k = 0; k < n; k++) ds[k] = rng_normal(&rng);
    return ds;
}

/* sum over b, h, i, j <= i of ds * b_h(i, j) in `layer`, through bias_row. */
static double bias_loss(const TestPe *tp, int layer, const float *ds, int B, int T) {
    int NH = tp->pe.dims.n_head;
    float *row = malloc((size_t)T * sizeof *row);
    cr_assert(row, "malloc failed");
    double s = 0;
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++)
            for (int i = 0; i < T; i++) {
                for (int j = 0; j <= i; j++) row[j] = 0.0f;
                tp->pe.scheme->bias_row(&tp->pe, layer, h, i, 0, i + 1, row);
                const float *d = ds + (((size_t)b * NH + h) * T + i) * T;
                for (int j = 0; j <= i; j++) s += (double)d[j] * row[j];
            }
    free(row);
    return s;
}

/* Runs bias_backward for `layer` from zeroed gradients and checks every parameter of that layer
   (offset lo, count n) against central differences with step h; other parameters get nothing. */
static void check_bias_backward(TestPe *tp, int layer, size_t lo, size_t n, int B, int T, double h, double rtol,
                                const char *what) {
    size_t total = pe_param_count(&tp->pe);
    float *ds = random_dscores(B, tp->pe.dims.n_head, T, 99 + layer);
    memset(tp->grads, 0, total * sizeof(float));
    tp->pe.scheme->bias_backward(&tp->pe, layer, ds, B, T);
    for (size_t k = 0; k < total; k++)
        if (k < lo || k >= lo + n)
            cr_assert_eq(tp->grads[k], 0.0f, "%s: parameter %zu outside layer %d got gradient %g", what, k, layer,
                         tp->grads[k]);
    for (size_t k = lo; k < lo + n; k++) {
        float saved = tp->params[k];
        tp->params[k] = (float)(saved + h);
        double lp = bias_loss(tp, layer, ds, B, T);
        tp->params[k] = (float)(saved - h);
        double lm = bias_loss(tp, layer, ds, B, T);
        tp->params[k] = saved;
        double fd = (lp - lm) / (2.0 * h);
        cr_assert(fabs(fd - tp->grads[k]) <= rtol * (1.0 + fabs(fd)),
                  "%s: parameter %zu (layer %d, entry %zu): backward %.9g, finite difference %.9g", what, k, layer,
                  k - lo, tp->grads[k], fd);
    }
    free(ds);
}

/* bias_backward of layer 0 at one and at two threads; every gradient bit must agree. */
static void check_bias_backward_threads(TestPe *tp, int B, int T) {
    size_t n = pe_param_count(&tp->pe);
    float *ds = random_dscores(B, tp->pe.dims.n_head, T, 8);
    float *g1 = malloc(n * sizeof *g1);
    cr_assert(g1, "malloc failed");
    for (int run = 0; run < 2; run++) {
#ifdef _OPENMP
        omp_set_num_threads(run + 1);
#endif
        memset(tp->grads, 0, n * sizeof(float));
        tp->pe.scheme->bias_backward(&tp->pe, 0, ds, B, T);
        if (run == 0) memcpy(g1, tp->grads, n * sizeof(float));
    }
    for (size_t k = 0; k < n; k++)
        cr_assert_eq(g1[k], tp->grads[k], "%s entry %zu: %.9g at 1 thread, %.9g at 2", tp->pe.spec.name, k, g1[k],
                     tp->grads[k]);
    free(g1);
    free(ds);
}

/* ---- §8, §R.8 xPos ---------------------------------------------------------------------------- */

Test(xpos, zeta_and_the_decay_table_match_the_reference_for_head_size_8) {
    static const double zeta[4] = {0.285714286, 0.464285714, 0.642857143, 0.821428571};
    static const struct {
        int d;
        double v[4];
    } decay[] = {
        {1, {0.997556188, 0.998502577, 0.999137418, 0.999615874}},
        {10, {0.975828889, 0.985126271, 0.991407582, 0.996165373}},
        {100, {0.782954835, 0.860833200, 0.917323159, 0.962308706}},
        {512, {0.285714286, 0.464285714, 0.642857143, 0.821428571}},
        {2048, {0.006663890, 0.046466642, 0.170788213, 0.455280677}},
    };
    TestPe tp;
    make_pe(&tp, "xpos", 2, 8, 16);
    Csv csv = inspect_csv(&tp.pe, 16, 0, NULL, 0);
    cr_assert_eq(csv_count(&csv, "zeta"), 4, "head size 8: %d zeta rows, want 4", csv_count(&csv, "zeta"));
    cr_assert_eq(csv_count(&csv, "decay"), 20, "%d decay rows, want 5 x 4", csv_count(&csv, "decay"));
    for (int t = 0; t < 4; t++) {
        assert_close(csv_get(&csv, "zeta", -1, -1, t), zeta[t], 1e-9, "zeta");
        assert_close(csv_get(&csv, "inv_freq", -1, -1, t), pow(10000.0, -2.0 * t / 8), 1e-9, "inv_freq");
        for (int k = 0; k < 5; k++) {
            char what[64];
            snprintf(what, sizeof what, "decay at distance %d, pair %d", decay[k].d, t);
            assert_close(csv_get(&csv, "decay", -1, decay[k].d, t), decay[k].v[t], 1e-9, what);
        }
    }
    free(csv.rows);
    free_pe(&tp);
}

/* Scale exponent s of every row of a window of T positions, read back from the pair-0 norms. */
static void check_scale_positions(int T, const int *want) {
    enum { NH = 1, HS = 4, C = NH * HS, S = 3 * C };
    TestPe tp;
    make_pe(&tp, "xpos", NH, HS, 64);
    float qkv[8 * S];
    int pos[8];
    cr_assert_leq(T, 8, "window too long for the test buffer");
    for (int t = 0; t < T; t++) {
        pos[t] = t;
        for (int c = 0; c < S; c++) qkv[t * S + c] = c % 2 ? 0.6f : 0.8f; /* pair norms 1 */
    }
    tp.pe.scheme->qk_forward(&tp.pe, 0, qkv, S, pos, T);
    double zeta0 = 0.4 / 1.4;
    for (int t = 0; t < T; t++) {
        double nq = hypot(qkv[t * S], qkv[t * S + 1]), nk = hypot(qkv[t * S + C], qkv[t * S + C + 1]);
        char what[64];
        snprintf(what, sizeof what, "T=%d row %d: s from the q norm", T, t);
        assert_close(512.0 * log(nq) / log(zeta0), want[t], 1e-3, what);
        snprintf(what, sizeof what, "T=%d row %d: s from the k norm", T, t);
        assert_close(-512.0 * log(nk) / log(zeta0), want[t], 1e-3, what);
    }
    free_pe(&tp);
}

Test(xpos, scale_positions_of_a_window_start_at_minus_ceil_half_its_length) {
    check_scale_positions(5, (const int[]){-3, -2, -1, 0, 1});
    check_scale_positions(6, (const int[]){-3, -2, -1, 0, 1, 2});
    check_scale_positions(1, (const int[]){-1});
}

/* q'_m . k'_n of head 0 after qk_forward on a window 0..T-1 holding q at row m and k at row n. */
static double xpos_score(const TestPe *tp, const float *q, const float *k, int m, int n, int T) {
    int HS = tp->pe.dims.head_size, C = HS, S = 3 * C;
    float *qkv = calloc((size_t)T * S, sizeof *qkv);
    int *pos = malloc((size_t)T * sizeof *pos);
    cr_assert(qkv && pos, "malloc failed");
    for (int t = 0; t < T; t++) pos[t] = t;
    memcpy(qkv + (size_t)m * S, q, sizeof(float) * HS);
    memcpy(qkv + (size_t)n * S + C, k, sizeof(float) * HS);
    tp->pe.scheme->qk_forward(&tp->pe, 0, qkv, S, pos, T);
    double s = 0;
    for (int d = 0; d < HS; d++) s += (double)qkv[(size_t)m * S + d] * qkv[(size_t)n * S + C + d];
    free(qkv);
    free(pos);
    return s;
}

Test(xpos, scores_depend_only_on_the_distance_and_equal_the_decayed_rope_product) {
    enum { HS = 8 };
    static const float q[HS] = {0.3f, -1.2f, 0.7f, 2.0f, 0.1f, -0.4f, 1.1f, 0.9f};
    static const float k[HS] = {1.0f, 0.5f, -0.3f, 0.2f, -0.8f, 1.4f, 0.6f, -1.1f};
    static const struct {
        int m, n, T;
    } cases[] = {{7, 3, 8}, {7, 3, 40}, {104, 100, 105}, {104, 100, 300}, {1004, 1000, 1010}, {1004, 1000, 2000}};
    TestPe tp;
    make_pe(&tp, "xpos", 1, HS, 2048);
    /* sum over interleaved pairs of zeta_t^(4/512) <R(4 theta_t) q_t, k_t>, in double */
    double want = 0;
    for (int t = 0; t < HS / 2; t++) {
        double th = 4.0 * pow(10000.0, -2.0 * t / HS), zeta = (2.0 * t + 0.4 * HS) / (1.4 * HS);
        double qa = q[2 * t], qb = q[2 * t + 1], ka = k[2 * t], kb = k[2 * t + 1];
        want += pow(zeta, 4.0 / 512) * (cos(th) * (qa * ka + qb * kb) + sin(th) * (qa * kb - qb * ka));
    }
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        double got = xpos_score(&tp, q, k, cases[c].m, cases[c].n, cases[c].T);
        char what[96];
        snprintf(what, sizeof what, "q at %d, k at %d in a window of %d", cases[c].m, cases[c].n, cases[c].T);
        assert_close(got, want, 2e-5 * (1 + fabs(want)), what);
    }
    /* at distance 0 the score is the plain dot product: the decay is 1 and the rotations cancel */
    double dot = 0;
    for (int d = 0; d < HS; d++) dot += (double)q[d] * k[d];
    assert_close(xpos_score(&tp, q, k, 9, 9, 31), dot, 1e-5 * (1 + fabs(dot)), "distance 0");
    free_pe(&tp);
}

Test(xpos, qk_backward_is_the_adjoint_of_qk_forward_and_matches_finite_differences) {
    enum { NH = 2, HS = 8, C = NH * HS, T = 6, S = 3 * C + 2 }; /* a stride wider than 3C */
    static const int pos[T] = {0, 1, 2, 3, 4, 5};
    const char *specs[2] = {"xpos", "xpos:gamma=0.1,scale_base=4"}; /* the second scales strongly */
    for (int s = 0; s < 2; s++) {
        TestPe tp;
        make_pe(&tp, specs[s], NH, HS, 64);
        float x[T * S], fx[T * S], dy[T * S], g[T * S];
        Rng rng;
        rng_seed(&rng, 21 + s);
        for (int k = 0; k < T * S; k++) x[k] = rng_normal(&rng), dy[k] = rng_normal(&rng);
        memcpy(fx, x, sizeof x);
        memcpy(g, dy, sizeof dy);
        tp.pe.scheme->qk_forward(&tp.pe, 1, fx, S, pos, T);
        tp.pe.scheme->qk_backward(&tp.pe, 1, g, S, pos, T);
        double lhs = 0, rhs = 0;
        for (int k = 0; k < T * S; k++) lhs += (double)dy[k] * fx[k], rhs += (double)g[k] * x[k];
        cr_assert(fabs(lhs - rhs) <= 1e-5 * (1 + fabs(lhs)), "%s: <dy, f(x)> = %.9g but <f^T(dy), x> = %.9g",
                  specs[s], lhs, rhs);
        const float eps = 1e-2f;
        for (int k = 0; k < T * S; k++) {
            float xp[T * S], xm[T * S];
            memcpy(xp, x, sizeof x);
            memcpy(xm, x, sizeof x);
            xp[k] += eps;
            xm[k] -= eps;
            tp.pe.scheme->qk_forward(&tp.pe, 0, xp, S, pos, T);
            tp.pe.scheme->qk_forward(&tp.pe, 0, xm, S, pos, T);
            double lp = 0, lm = 0;
            for (int e = 0; e < T * S; e++) lp += (double)dy[e] * xp[e], lm += (double)dy[e] * xm[e];
            double fd = (lp - lm) / (2.0 * eps);
            cr_assert(fabs(fd - g[k]) <= 1e-3 * (1 + fabs(fd)), "%s entry %d: backward %.9g, finite difference %.9g",
                      specs[s], k, g[k], fd);
        }
        free_pe(&tp);
    }
}

Test(xpos, positions_outside_a_window_get_the_same_scales_as_cached_ones) {
    enum { NH = 1, HS = 4, S = 3 * HS, T = 2 };
    TestPe tp;
    make_pe(&tp, "xpos", NH, HS, 64);
    /* positions {40, 60} with T = 2: s = 39 and 59, past the cached rows [-32, 32) */
    static const int far[T] = {40, 60}, near[T] = {0, 1};
    float a[T * S], b[T * S];
    for (int k = 0; k < T * S; k++) a[k] = b[k] = 0.5f + 0.01f * k;
    tp.pe.scheme->qk_forward(&tp.pe, 0, a, S, far, T);
    tp.pe.scheme->qk_forward(&tp.pe, 0, b, S, near, T);
    double zeta0 = 0.4 / 1.4;
    for (int t = 0; t < T; t++) {
        double n0 = hypot(0.5 + 0.01 * (t * S), 0.5 + 0.01 * (t * S + 1));
        double s = 512.0 * log(hypot(a[t * S], a[t * S + 1]) / n0) / log(zeta0);
        assert_close(s, far[t] - 1, 1e-2, "scale exponent of an uncached row");
        s = 512.0 * log(hypot(b[t * S], b[t * S + 1]) / n0) / log(zeta0);
        assert_close(s, near[t] - 1, 1e-2, "scale exponent of a cached row");
    }
    free_pe(&tp);
}

Test(xpos, prepare_refuses_a_context_whose_scales_leave_float_range_and_options_are_checked) {
    TestPe tp;
    make_pe(&tp, "xpos", 2, 8, 64);
    char err[CB_ERR_LEN] = "";
    int rc = pe_prepare(&tp.pe, 200000, err);
    cr_assert_eq(rc, CB_EUNSUPPORTED, "prepare(200000) returned %d (%s)", rc, err);
    cr_assert(strstr(err, "xpos") && strstr(err, "200000"), "message was '%s'", err);
    rc = pe_prepare(&tp.pe, 32768, err);
    cr_assert_eq(rc, CB_OK, "prepare(32768) returned %d (%s)", rc, err);
    char canon[128];
    pe_canonical(&tp.pe, canon, sizeof canon);
    cr_assert_str_eq(canon, "xpos:gamma=0.4,scale_base=512", "canonical was '%s'", canon);
    free_pe(&tp);
    rc = create_status("xpos:gamma=0", err);
    cr_assert(rc == CB_EINPUT && strstr(err, "'gamma'"), "gamma 0: rc %d, message '%s'", rc, err);
    rc = create_status("xpos:base=10", err);
    cr_assert(rc == CB_EINPUT && strstr(err, "'base'"), "unknown key: rc %d, message '%s'", rc, err);
    rc = create_status("xpos+yarn", err);
    cr_assert(rc == CB_EINPUT && strstr(err, "'yarn'"), "variant: rc %d, message '%s'", rc, err);
}

/* ---- §9 KERPLE -------------------------------------------------------------------------------- */

static void set_kerple(TestPe *tp, int layer, const float *r1, const float *r2) {
    int NH = tp->pe.dims.n_head;
    memcpy(tp->params + (size_t)layer * 2 * NH, r1, sizeof(float) * NH);
    memcpy(tp->params + (size_t)layer * 2 * NH + NH, r2, sizeof(float) * NH);
}

Test(kerple, log_bias_with_unit_parameters_matches_the_reference) {
    static const int dist[5] = {0, 1, 2, 10, 100};
    static const double want[5] = {0, -0.693147181, -1.098612289, -2.397895273, -4.615120517};
    TestPe tp;
    make_pe(&tp, "kerple", 2, 4, 128);
    set_kerple(&tp, 0, (const float[]){1, 1}, (const float[]){1, 1});
    Csv csv = inspect_csv(&tp.pe, 128, 100, NULL, 0);
    for (int h = 0; h < 2; h++) {
        assert_close(csv_get(&csv, "r1", h, -1, -1), 1.0, 0.0, "r1");
        assert_close(csv_get(&csv, "r2", h, -1, -1), 1.0, 0.0, "r2");
        for (int k = 0; k < 5; k++) {
            char what[64];
            snprintf(what, sizeof what, "head %d, distance %d", h, dist[k]);
            assert_close(csv_get(&csv, "bias", h, 100, 100 - dist[k]), want[k], 1e-6 * (1 + fabs(want[k])), what);
        }
    }
    free(csv.rows);
    free_pe(&tp);
}

Test(kerple, bias_is_zero_at_distance_0_and_strictly_decreasing_for_initial_parameters) {
    enum { NH = 8, Q = 300 };
    const char *specs[2] = {"kerple", "kerple:variant=power"};
    for (int s = 0; s < 2; s++) {
        TestPe tp;
        make_pe(&tp, specs[s], NH, 4, Q + 1);
        Csv csv = inspect_csv(&tp.pe, Q + 1, Q, NULL, 0);
        for (int h = 0; h < NH; h++) {
            double prev = csv_get(&csv, "bias", h, Q, Q);
            cr_assert_eq(prev, 0.0, "%s head %d: bias at distance 0 is %g", specs[s], h, prev);
            for (int j = Q - 1; j >= 0; j--) {
                double b = csv_get(&csv, "bias", h, Q, j);
                cr_assert_lt(b, prev, "%s head %d: bias at distance %d is %.9g, not below %.9g at %d", specs[s], h,
                             Q - j, b, prev, Q - j - 1);
                prev = b;
            }
        }
        free(csv.rows);
        free_pe(&tp);
    }
}

Test(kerple, power_bias_uses_the_clamped_parameters) {
    TestPe tp;
    make_pe(&tp, "kerple:variant=power", 3, 4, 64);
    /* head 0: -sqrt(D); head 1: exponent 3 clamps to 2; head 2: r1 -1 and r2 0 clamp to 0.01 */
    set_kerple(&tp, 0, (const float[]){1, 0.5f, -1}, (const float[]){0.5f, 3, 0});
    Csv csv = inspect_csv(&tp.pe, 64, 40, NULL, 0);
    assert_close(csv_get(&csv, "r2", 1, -1, -1), 2.0, 0.0, "clamped exponent");
    assert_close(csv_get(&csv, "r1", 2, -1, -1), 0.01, 1e-9, "clamped r1");
    assert_close(csv_get(&csv, "r2", 2, -1, -1), 0.01, 1e-9, "clamped r2");
    for (int d = 0; d <= 40; d++) {
        assert_close(csv_get(&csv, "bias", 0, 40, 40 - d), -sqrt(d), 2e-6 * (1 + d), "head 0: -sqrt(D)");
        assert_close(csv_get(&csv, "bias", 1, 40, 40 - d), -0.5 * d * d, 2e-6 * (1 + d * d), "head 1: -D^2/2");
        double w = d ? -0.01 * pow(d, 0.01) : 0.0;
        assert_close(csv_get(&csv, "bias", 2, 40, 40 - d), w, 1e-8, "head 2: -0.01 D^0.01");
    }
    free(csv.rows);
    free_pe(&tp);
}

Test(kerple, init_draws_per_layer_parameters_in_the_reference_ranges_without_weight_decay) {
    enum { NH = 64 };
    const char *specs[2] = {"kerple", "kerple:variant=power"};
    for (int s = 0; s < 2; s++) {
        TestPe tp;
        make_pe(&tp, specs[s], NH, 4, 16);
        size_t n = pe_param_count(&tp.pe);
        cr_assert_eq(n, 2u * NH * 2u, "%s: param_count %zu, want 2 NH L = %u", specs[s], n, 2u * NH * 2u);
        /* log: r1 = bias_p ~ U(0,2), r2 = bias_a ~ U(0,1); power the other way round */
        double hi1 = s ? 1.0 : 2.0, hi2 = s ? 2.0 : 1.0, max1 = 0, max2 = 0;
        for (int l = 0; l < 2; l++)
            for (int h = 0; h < NH; h++) {
                float r1 = tp.params[l * 2 * NH + h], r2 = tp.params[l * 2 * NH + NH + h];
                cr_assert(r1 >= 0.01f && r1 < hi1, "%s layer %d head %d: r1 = %g", specs[s], l, h, r1);
                cr_assert(r2 >= 0.01f && r2 < hi2, "%s layer %d head %d: r2 = %g", specs[s], l, h, r2);
                max1 = fmax(max1, r1), max2 = fmax(max2, r2);
            }
        cr_assert(max1 > 0.75 * hi1 && max2 > 0.75 * hi2, "%s: largest r1 %g, r2 %g look like the wrong range",
                  specs[s], max1, max2);
        cr_assert(memcmp(tp.params, tp.params + 2 * NH, sizeof(float) * 2 * NH) != 0,
                  "%s: layers 0 and 1 got the same parameters", specs[s]);
        cr_assert_eq(tp.pe.scheme->param_decay, 0, "param_decay is %d", tp.pe.scheme->param_decay);
        free_pe(&tp);
    }
}

Test(kerple, bias_backward_matches_finite_differences_for_both_variants) {
    enum { B = 2, NH = 3, T = 24 };
    TestPe tp;
    make_pe(&tp, "kerple", NH, 4, T);
    set_kerple(&tp, 1, (const float[]){0.7f, 1.3f, 0.2f}, (const float[]){0.4f, 1.1f, 2.5f});
    check_bias_backward(&tp, 1, 2 * NH, 2 * NH, B, T, 1e-3, 2e-3, "kerple log");
    free_pe(&tp);
    make_pe(&tp, "kerple:variant=power", NH, 4, T);
    set_kerple(&tp, 1, (const float[]){0.7f, 1.3f, 0.2f}, (const float[]){0.4f, 1.1f, 1.9f});
    check_bias_backward(&tp, 1, 2 * NH, 2 * NH, B, T, 1e-3, 2e-3, "kerple power");
    free_pe(&tp);
}

Test(kerple, clamped_parameters_get_no_gradient) {
    enum { B = 1, NH = 2, T = 16 };
    TestPe tp;
    make_pe(&tp, "kerple:variant=power", NH, 4, T);
    set_kerple(&tp, 0, (const float[]){0.005f, 1.0f}, (const float[]){1.0f, 2.5f});
    float *ds = random_dscores(B, NH, T, 3);
    memset(tp.grads, 0, sizeof(float) * 4 * NH);
    tp.pe.scheme->bias_backward(&tp.pe, 0, ds, B, T);
    cr_assert_eq(tp.grads[0], 0.0f, "r1 below the bound got gradient %g", tp.grads[0]);
    cr_assert_eq(tp.grads[NH + 1], 0.0f, "exponent above 2 got gradient %g", tp.grads[NH + 1]);
    cr_assert_neq(tp.grads[1], 0.0f, "r1 inside the bounds got no gradient");
    cr_assert_neq(tp.grads[NH], 0.0f, "r2 inside the bounds got no gradient");
    free(ds);
    free_pe(&tp);
}

Test(kerple, bias_backward_gives_the_same_bits_at_one_and_two_threads) {
    TestPe tp;
    make_pe(&tp, "kerple", 4, 4, 130);
    check_bias_backward_threads(&tp, 3, 130);
    free_pe(&tp);
    make_pe(&tp, "kerple:variant=power", 4, 4, 130);
    check_bias_backward_threads(&tp, 3, 130);
    free_pe(&tp);
}

/* ---- §11, §R.10 FIRE -------------------------------------------------------------------------- */

Test(fire, u_matches_the_reference_at_c_0_1_and_threshold_512) {
    static const struct {
        int i, j;
        double u;
    } ref[] = {{0, 0, 0},           {10, 0, 0.175254753},   {100, 0, 0.606281833}, {511, 0, 0.999514916},
               {1000, 0, 0.999999783}, {1000, 990, 0.150190451}, {4000, 0, 0.999999833}};
    TestPe tp;
    make_pe(&tp, "fire", 2, 4, 16);
    Csv csv = inspect_csv(&tp.pe, 4001, 5, NULL, 0);
    for (size_t k = 0; k < sizeof ref / sizeof ref[0]; k++) {
        char what[64];
        snprintf(what, sizeof what, "u(%d, %d)", ref[k].i, ref[k].j);
        /* 1e-8: the learned c is the float nearest 0.1, which moves u by up to 2e-9 */
        assert_close(csv_get(&csv, "u", -1, ref[k].i, ref[k].j), ref[k].u, 1e-8, what);
    }
    for (int k = 0; k < csv.n; k++) {
        const CsvRow *r = &csv.rows[k];
        if (strcmp(r->quantity, "u") != 0) continue;
        if (r->i == r->j) cr_assert_eq(r->value, 0.0, "u(%d, %d) = %g, not 0", r->i, r->j, r->value);
        cr_assert(r->value >= 0 && r->value < 1, "u(%d, %d) = %.9g outside [0, 1)", r->i, r->j, r->value);
    }
    free(csv.rows);
    free_pe(&tp);
}

/* b_h(i, j) of layer l from the parameter block, in double (width W). */
static double fire_reference_bias(const TestPe *tp, int l, int W, int h, int i, int j, double init_l) {
    int NH = tp->pe.dims.n_head;
    const float *p = tp->params + (size_t)l * (2 + 2 * W + NH * W + NH);
    const float *w1 = p + 2, *b1 = w1 + W, *w2 = b1 + W + h * W, *b2 = b1 + W + NH * W;
    double c = fabs(p[0]), lthr = fabs(p[1] * init_l);
    double u = log(c * (i - j) + 1) / (log(c * fmax(i, lthr) + 1) + 1e-6), out = b2[h];
    for (int k = 0; k < W; k++) out += w2[k] * fmax(0.0, w1[k] * u + b1[k]);
    return out;
}

Test(fire, bias_rows_are_the_mlp_of_u_per_head_and_layers_are_separate) {
    enum { NH = 3, W = 5, Q = 40 };
    TestPe tp;
    make_pe(&tp, "fire:width=5,init_l=16", NH, 4, 64);
    size_t P = 2 + 2 * W + NH * W + NH;
    cr_assert_eq(pe_param_count(&tp.pe), 2 * P, "param_count %zu, want %zu", pe_param_count(&tp.pe), 2 * P);
    cr_assert(tp.params[0] == 0.1f && tp.params[1] == 1.0f && tp.params[P] == 0.1f && tp.params[P + 1] == 1.0f,
              "c and L_multiplier start at %g, %g (layer 0) and %g, %g (layer 1)", tp.params[0], tp.params[1],
              tp.params[P], tp.params[P + 1]);
    tp.params[P] = -0.3f; /* layer 1 differs: negative c acts through |c| */
    Csv csv = inspect_csv(&tp.pe, 64, Q, NULL, 0);
    for (int h = 0; h < NH; h++)
        for (int j = 0; j <= Q; j++) {
            double want = fire_reference_bias(&tp, 0, W, h, Q, j, 16.0);
            assert_close(csv_get(&csv, "bias", h, Q, j), want, 1e-5 * (1 + fabs(want)), "layer 0 bias");
        }
    float row[8] = {0};
    tp.pe.scheme->bias_row(&tp.pe, 1, 2, 10, 3, 11, row); /* a window of layer 1 */
    for (int j = 3; j < 11; j++)
        assert_close(row[j - 3], fire_reference_bias(&tp, 1, W, 2, 10, j, 16.0), 1e-5, "layer 1 bias_row window");
    free(csv.rows);
    free_pe(&tp);
}

Test(fire, init_follows_pytorch_linear_bounds_and_has_no_weight_decay) {
    enum { NH = 16, W = 64 };
    TestPe tp;
    make_pe(&tp, "fire:width=64", NH, 4, 16);
    const float *w1 = tp.params + 2, *b1 = w1 + W, *w2 = b1 + W, *b2 = w2 + NH * W;
    double m1 = 0, m2 = 0, bound2 = 1.0 / sqrt(W);
    for (int k = 0; k < W; k++) m1 = fmax(m1, fmax(fabs(w1[k]), fabs(b1[k])));
    for (int k = 0; k < NH * W; k++) m2 = fmax(m2, fabs(w2[k]));
    for (int k = 0; k < NH; k++) m2 = fmax(m2, fabs(b2[k]));
    cr_assert(m1 <= 1.0 && m1 > 0.8, "first layer: largest |value| %g, want in (0.8, 1]", m1);
    cr_assert(m2 <= bound2 && m2 > 0.8 * bound2, "second layer: largest |value| %g, want in (%g, %g]", m2,
              0.8 * bound2, bound2);
    cr_assert_eq(tp.pe.scheme->param_decay, 0, "param_decay is %d", tp.pe.scheme->param_decay);
    char canon[128];
    pe_canonical(&tp.pe, canon, sizeof canon);
    cr_assert_str_eq(canon, "fire:init_l=512,width=64", "canonical was '%s'", canon);
    free_pe(&tp);
}

Test(fire, bias_backward_matches_finite_differences_for_every_parameter) {
    enum { B = 2, NH = 2, W = 4, T = 20, P = 2 + 2 * W + NH * W + NH };
    TestPe tp;
    make_pe(&tp, "fire:width=4,init_l=8", NH, 4, T);
    /* Layer 1: c and L_thr = 8.24 so rows on both sides of the threshold (and no tie); hidden units
       either clear of zero for every u in [0, 1] or crossing it once (unit 3, at u = 0.3). */
    float *p = tp.params + P;
    p[0] = 0.3f, p[1] = 1.03f;
    static const float w1[W] = {0.8f, -0.6f, 1.2f, 2.0f}, b1[W] = {0.3f, -0.25f, 0.5f, -0.6f};
    memcpy(p + 2, w1, sizeof w1);
    memcpy(p + 2 + W, b1, sizeof b1);
    check_bias_backward(&tp, 1, P, P, B, T, 1e-3, 2e-3, "fire");
    free_pe(&tp);
}

Test(fire, bias_backward_gives_the_same_bits_at_one_and_two_threads) {
    TestPe tp;
    make_pe(&tp, "fire:width=8,init_l=64", 3, 4, 100); /* rows on both sides of L_thr, several blocks */
    check_bias_backward_threads(&tp, 2, 100);
    free_pe(&tp);
}

/* ---- §10, §R.9 Sandwich ----------------------------------------------------------------------- */

Test(sandwich, bias_by_distance_matches_the_reference_for_heads_1_and_8) {
    static const int dist[5] = {0, 1, 2, 10, 100};
    static const double h1[5] = {0, -1.446618505, -5.201992631, -19.340906072, -33.318914170};
    static const double h8[5] = {0, -0.180827313, -0.650249079, -2.417613259, -4.164864271};
    TestPe tp;
    make_pe(&tp, "sandwich", 8, 4, 128);
    Csv csv = inspect_csv(&tp.pe, 128, 3, NULL, 0);
    cr_assert_eq(csv_count(&csv, "bias_by_distance"), 2 * 128, "%d bias_by_distance rows, want 2 x 128",
                 csv_count(&csv, "bias_by_distance"));
    for (int k = 0; k < 5; k++) {
        char what[64];
        snprintf(what, sizeof what, "head 1, distance %d", dist[k]);
        assert_close(csv_get(&csv, "bias_by_distance", 0, dist[k], -1), h1[k], 1e-8 * (1 + fabs(h1[k])), what);
        snprintf(what, sizeof what, "head 8, distance %d", dist[k]);
        assert_close(csv_get(&csv, "bias_by_distance", 7, dist[k], -1), h8[k], 1e-8 * (1 + fabs(h8[k])), what);
    }
    free(csv.rows);
    free_pe(&tp);
}

Test(sandwich, bias_rows_scale_one_curve_by_8h_over_heads_and_never_exceed_zero) {
    enum { NH = 6, Q = 90 };
    TestPe tp;
    make_pe(&tp, "sandwich:dprime=32", NH, 4, 128);
    Csv csv = inspect_csv(&tp.pe, 128, Q, NULL, 0);
    for (int j = 0; j <= Q; j++) {
        double s1 = csv_get(&csv, "bias_by_distance", 0, Q - j, -1); /* S(r) * NH / 8 */
        for (int h = 0; h < NH; h++) {
            double b = csv_get(&csv, "bias", h, Q, j), want = s1 / (h + 1.0);
            assert_close(b, want, 1e-6 * (1 + fabs(want)), "bias row against the head-1 curve");
            cr_assert_leq(b, 0.0, "head %d distance %d: bias %g is positive", h, Q - j, b);
        }
    }
    assert_close(csv_get(&csv, "bias", 0, Q, Q), 0.0, 0.0, "bias at distance 0");
    free(csv.rows);
    free_pe(&tp);
}

Test(sandwich, growing_the_context_gives_the_same_bits_as_preparing_it_at_once) {
    TestPe a, b;
    make_pe(&a, "sandwich", 4, 4, 50);
    make_pe(&b, "sandwich", 4, 4, 300);
    char err[CB_ERR_LEN] = "";
    cr_assert_eq(pe_prepare(&a.pe, 300, err), CB_OK, "prepare(300): %s", err);
    for (int h = 0; h < 4; h++) {
        float ra[300] = {0}, rb[300] = {0};
        a.pe.scheme->bias_row(&a.pe, 0, h, 299, 0, 300, ra);
        b.pe.scheme->bias_row(&b.pe, 1, h, 299, 0, 300, rb);
        for (int j = 0; j < 300; j++)
            cr_assert_eq(ra[j], rb[j], "head %d key %d: %.9g after growing, %.9g prepared at once", h, j, ra[j], rb[j]);
    }
    free_pe(&a);
    free_pe(&b);
}

Test(sandwich, options_are_checked_and_canonical) {
    char err[CB_ERR_LEN] = "";
    int rc = create_status("sandwich:dprime=7", err);
    cr_assert(rc == CB_EINPUT && strstr(err, "'dprime'"), "odd dprime: rc %d, message '%s'", rc, err);
    rc = create_status("sandwich:dp=8", err);
    cr_assert(rc == CB_EINPUT && strstr(err, "'dp'"), "unknown key: rc %d, message '%s'", rc, err);
    TestPe tp;
    make_pe(&tp, "sandwich", 2, 4, 8);
    char canon[128];
    pe_canonical(&tp.pe, canon, sizeof canon);
    cr_assert_str_eq(canon, "sandwich:dprime=128", "canonical was '%s'", canon);
    free_pe(&tp);
}

/* ---- all four --------------------------------------------------------------------------------- */

Test(registry, the_four_schemes_are_registered_and_their_canonical_forms_round_trip) {
    static const struct {
        const char *spec, *canon;
    } cases[] = {
        {"xpos", "xpos:gamma=0.4,scale_base=512"},
        {"xpos:scale_base=1024,gamma=0.25", "xpos:gamma=0.25,scale_base=1024"},
        {"kerple", "kerple:variant=log"},
        {"kerple:variant=power", "kerple:variant=power"},
        {"fire", "fire:init_l=512,width=32"},
        {"fire:width=16,init_l=128", "fire:init_l=128,width=16"},
        {"sandwich", "sandwich:dprime=128"},
        {"sandwich:dprime=64", "sandwich:dprime=64"},
    };
    PeDims dims = {.n_layer = 2, .n_head = 4, .head_size = 16, .d_model = 64, .train_ctx = 128};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        PeModel a, b;
        char err[CB_ERR_LEN] = "", ca[256], cb[256];
        int rc = pe_create(&a, cases[k].spec, &dims, err);
        cr_assert_eq(rc, CB_OK, "'%s': status %d, %s", cases[k].spec, rc, err);
        pe_canonical(&a, ca, sizeof ca);
        cr_assert_str_eq(ca, cases[k].canon, "'%s' canonical was '%s'", cases[k].spec, ca);
        rc = pe_create(&b, ca, &dims, err);
        cr_assert_eq(rc, CB_OK, "canonical '%s' does not parse: %d, %s", ca, rc, err);
        pe_canonical(&b, cb, sizeof cb);
        cr_assert_str_eq(cb, ca, "canonical '%s' became '%s'", ca, cb);
        pe_destroy(&a);
        pe_destroy(&b);
    }
    char err[CB_ERR_LEN] = "";
    int rc = create_status("kerple:variant=cubic", err);
    cr_assert(rc == CB_EINPUT && strstr(err, "cubic"), "bad variant: rc %d, message '%s'", rc, err);
    rc = create_status("fire:width=0", err);
    cr_assert(rc == CB_EINPUT && strstr(err, "'width'"), "width 0: rc %d, message '%s'", rc, err);
    static const char *names[] = {"xpos", "kerple", "fire", "sandwich"};
    for (int k = 0; k < 4; k++) {
        char spec[64];
        snprintf(spec, sizeof spec, "%s+x", names[k]);
        rc = create_status(spec, err);
        cr_assert_eq(rc, CB_EINPUT, "'%s' created with status %d", spec, rc);
        cr_assert(pe_find(names[k]) != NULL, "'%s' is not registered", names[k]);
    }
}
