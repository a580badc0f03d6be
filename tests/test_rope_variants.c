/*
 * test_rope_variants.c — RoPE's eval-time extension variants and randomized positions against
 * PE_SPEC §R.5–§R.7, §R.11, §R.12 (read back through the inspect CSV, the code path of
 * `ctxbench inspect`), their properties through the qk hooks (plain RoPE where the spec says so,
 * PI's angle identity, pairing and partial rotation, adjoint backward, the alternative branch
 * against the effective positions it reports), and end to end through model_eval_window
 * (Self-Extend with a window past n is plain RoPE, every variant is causal).
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "model/model.h"
#include "pe/pe.h"
#include "support/inspect_csv.h"

/* ---- helpers ---------------------------------------------------------------------------------- */

/* An encoding of NH heads of HS dims trained at L, prepared at n. */
static void make_enc(PeModel *pe, const char *spec, int NH, int HS, int L, int n) {
    char err[CB_ERR_LEN] = "";
    PeDims dims = {.n_layer = 1, .n_head = NH, .head_size = HS, .d_model = NH * HS, .train_ctx = L};
    int rc = pe_create(pe, spec, &dims, err);
    cr_assert_eq(rc, CB_OK, "pe_create('%s') returned %d: %s", spec, rc, err);
    rc = pe_prepare(pe, n, err);
    cr_assert_eq(rc, CB_OK, "pe_prepare('%s', %d) returned %d: %s", spec, n, rc, err);
}

static int create_status(const char *spec, int L, char *err) {
    PeDims dims = {.n_layer = 1, .n_head = 2, .head_size = 8, .d_model = 16, .train_ctx = L};
    PeModel pe;
    int rc = pe_create(&pe, spec, &dims, err);
    pe_destroy(&pe);
    return rc;
}

/* One line of the inspect CSV (quantity,head,i,j,value); -1 for an empty field, NaN allowed. */
static void assert_rel(double got, double want, double rel, const char *what) {
    cr_assert(fabs(got - want) <= rel * fabs(want), "%s: got %.12g, want %.12g (relative error %.3g > %.3g)", what,
              got, want, fabs(got - want) / fabs(want), rel);
}

/* Inspects `spec` (one head of HS dims, trained at L) at context n and returns the row value. */
static double inspect_value(const char *spec, int HS, int L, int n, const char *q, int j) {
    PeModel pe;
    make_enc(&pe, spec, 1, HS, L, L);
    Csv csv = inspect_csv(&pe, n, 0, NULL, 0);
    double v = csv_get(&csv, q, -1, -1, j);
    free(csv.rows);
    pe_destroy(&pe);
    return v;
}

static void fill_normal(float *x, size_t n, uint64_t seed) {
    Rng rng;
    rng_seed(&rng, seed);
    for (size_t i = 0; i < n; i++) x[i] = rng_normal(&rng);
}

/* ---- §R.5 NTK-aware and dynamic NTK ----------------------------------------------------------- */

Test(rope_variants, ntk_bases_match_the_reference_and_the_last_pair_is_fully_interpolated) {
    static const struct {
        int d;
        double s, base;
    } cases[] = {{64, 4, 41829.365929}, {128, 2, 20221.261690}, {128, 4, 40889.942432}, {128, 8, 82684.622641}};
    for (size_t k = 0; k < 4; k++) {
        char spec[64], what[96];
        snprintf(spec, sizeof spec, "rope+ntk:factor=%g", cases[k].s);
        snprintf(what, sizeof what, "NTK base d=%d s=%g", cases[k].d, cases[k].s);
        assert_rel(inspect_value(spec, cases[k].d, 512, 512, "base", -1), cases[k].base, 1e-9, what);
        /* factor=auto at n = s L gives the same base */
        assert_rel(inspect_value("rope+ntk", cases[k].d, 512, (int)(512 * cases[k].s), "base", -1), cases[k].base,
                   1e-9, what);
        double first = inspect_value(spec, cases[k].d, 512, 512, "scale_factor", 0);
        double last = inspect_value(spec, cases[k].d, 512, 512, "scale_factor", cases[k].d / 2 - 1);
        assert_close(first, 1.0, 0.0, "NTK ratio of pair 0");
        assert_rel(last, 1.0 / cases[k].s, 1e-9, "NTK ratio of the last pair");
    }
}

Test(rope_variants, dynamic_ntk_bases_follow_hf_and_are_unchanged_up_to_the_training_context) {
    static const struct {
        int d, L, n;
        double s, eff, base;
    } cases[] = {
        {128, 4096, 2048, 2, 1, 10000.0},       {128, 4096, 4096, 2, 1, 10000.0},
        {128, 4096, 6144, 2, 2, 20221.261690},  {128, 4096, 8192, 2, 3, 30527.736749},
        {128, 4096, 16384, 2, 7, 72195.860087}, {64, 512, 1024, 4, 5, 52664.434336},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        char spec[64], what[96];
        snprintf(spec, sizeof spec, "rope+dynamic-ntk:factor=%g", cases[k].s);
        snprintf(what, sizeof what, "dynamic NTK base d=%d L=%d n=%d", cases[k].d, cases[k].L, cases[k].n);
        assert_rel(inspect_value(spec, cases[k].d, cases[k].L, cases[k].n, "base", -1), cases[k].base, 1e-9, what);
        assert_rel(inspect_value(spec, cases[k].d, cases[k].L, cases[k].n, "factor", -1), cases[k].eff, 1e-12, what);
    }
    /* the default factor is HF's 2 */
    assert_rel(inspect_value("rope+dynamic-ntk", 128, 4096, 6144, "base", -1), 20221.261690, 1e-9, "default factor");
}

/* ---- §R.6 YaRN -------------------------------------------------------------------------------- */

Test(rope_variants, yarn_matches_the_reference_ramp_frequencies_and_magnitude) {
    static const double inv[17] = {1,
                                   0.7498942093,
                                   0.5623413252,
                                   0.4216965034,
                                   0.2979838564,
                                   0.2097753663,
                                   0.1470500281,
                                   0.1025785717,
                                   0.07115384615,
                                   0.04903154446,
                                   0.03352419439,
                                   0.02270673480,
                                   0.01520325798,
                                   0.01003273491,
                                   0.006497559383,
                                   0.004103142868,
                                   0.0025};
    /* explicit factor, and factor=auto at n = 4 L */
    const char *specs[2] = {"rope+yarn:factor=4", "rope+yarn"};
    for (int v = 0; v < 2; v++) {
        PeModel pe;
        make_enc(&pe, specs[v], 1, 64, 512, 512);
        Csv csv = inspect_csv(&pe, 2048, 0, NULL, 0);
        assert_close(csv_get(&csv, "ramp_low", -1, -1, -1), 3, 0, "low");
        assert_close(csv_get(&csv, "ramp_high", -1, -1, -1), 16, 0, "high");
        for (int t = 0; t < 17; t++) {
            char what[64];
            snprintf(what, sizeof what, "%s inv' of pair %d", specs[v], t);
            assert_rel(csv_get(&csv, "inv_freq", -1, -1, t), inv[t], 1e-6, what);
        }
        static const struct {
            int t;
            double inv;
        } tail[3] = {{17, 0.001874735523}, {24, 0.00025}, {31, 3.333803580e-05}};
        for (int k = 0; k < 3; k++) assert_rel(csv_get(&csv, "inv_freq", -1, -1, tail[k].t), tail[k].inv, 1e-6, "tail");
        for (int t = 0; t < 32; t++)
            assert_close(csv_get(&csv, "magnitude", -1, -1, t), 1.138629436112, 1e-11, "mscale");
        free(csv.rows);
        pe_destroy(&pe);
    }
}

Test(rope_variants, yarn_cache_holds_the_reference_cos_and_sin_times_mscale_at_position_1000) {
    /* qk_forward on a unit vector per pair reads back (cos, sin) * mscale. Half pairing: pair t = (t, t+32). */
    static const struct {
        int t;
        double c, s;
    } want[5] = {{0, 0.640341371, 0.941509385}, {4, -1.016479784, 0.513074889}, {10, -0.582939164, 0.978089425},
                 {16, -0.912205703, 0.681438000}, {31, 1.137996744, 0.037952638}};
    PeModel pe;
    make_enc(&pe, "rope+yarn:factor=4", 1, 64, 512, 1001);
    for (int k = 0; k < 5; k++) {
        float qkv[3 * 64] = {0};
        qkv[want[k].t] = 1.0f;
        int p = 1000;
        pe.scheme->qk_forward(&pe, 0, qkv, 3 * 64, &p, 1);
        char what[64];
        snprintf(what, sizeof what, "cos*m of pair %d", want[k].t);
        assert_close(qkv[want[k].t], want[k].c, 2e-6, what);
        snprintf(what, sizeof what, "sin*m of pair %d", want[k].t);
        assert_close(qkv[want[k].t + 32], want[k].s, 2e-6, what);
    }
    pe_destroy(&pe);
}

Test(rope_variants, yarn_second_case_llama2_d128_s16_l4096_has_the_reference_ramp) {
    PeModel pe;
    make_enc(&pe, "rope+yarn:factor=16", 1, 128, 4096, 4096);
    Csv csv = inspect_csv(&pe, 4096, 0, NULL, 0);
    assert_close(csv_get(&csv, "ramp_low", -1, -1, -1), 20, 0, "low");
    assert_close(csv_get(&csv, "ramp_high", -1, -1, -1), 46, 0, "high");
    assert_close(csv_get(&csv, "magnitude", -1, -1, 0), 1.277258872224, 1e-11, "mscale");
    for (int t = 0; t < 64; t++) {
        /* scale_factor = w_ext + (1 - w_ext)/s  =>  w_ext = (scale_factor - 1/s) / (1 - 1/s) */
        double sf = csv_get(&csv, "scale_factor", -1, -1, t);
        double w_ext = (sf - 1.0 / 16) / (1 - 1.0 / 16);
        double want = t <= 20 ? 1.0 : t >= 46 ? 0.0 : 1.0 - (t - 20) / 26.0;
        char what[64];
        snprintf(what, sizeof what, "w_ext of pair %d", t);
        assert_close(w_ext, want, 1e-7, what);
    }
    assert_close((csv_get(&csv, "scale_factor", -1, -1, 21) - 1.0 / 16) / (15.0 / 16), 0.9615, 5e-5, "t=21");
    assert_close((csv_get(&csv, "scale_factor", -1, -1, 33) - 1.0 / 16) / (15.0 / 16), 0.5, 1e-7, "t=33");
    assert_close((csv_get(&csv, "scale_factor", -1, -1, 44) - 1.0 / 16) / (15.0 / 16), 0.0769, 5e-5, "t=44");
    free(csv.rows);
    pe_destroy(&pe);
}

/* ---- §R.7 Llama 3.1 --------------------------------------------------------------------------- */

Test(rope_variants, llama3_ratios_match_the_reference_bands) {
    static const double mid[6] = {0.828168, 0.643743, 0.493507, 0.371122, 0.271425, 0.190211};
    PeModel pe;
    make_enc(&pe, "rope:base=500000+llama3:factor=8", 1, 128, 8192, 8192);
    Csv csv = inspect_csv(&pe, 8192, 0, NULL, 0);
    for (int t = 0; t < 64; t++) {
        double want = t <= 28 ? 1.0 : t >= 35 ? 0.125 : mid[t - 29];
        char what[64];
        snprintf(what, sizeof what, "ratio of pair %d", t);
        assert_close(csv_get(&csv, "scale_factor", -1, -1, t), want, 1e-6, what);
        assert_close(csv_get(&csv, "magnitude", -1, -1, t), 1.0, 0.0, "llama3 magnitude");
    }
    free(csv.rows);
    pe_destroy(&pe);
}

/* ---- §R.11 Self-Extend, §R.12 ReRoPE / Leaky / log-n, LM-Infinite ----------------------------- */

Test(rope_variants, self_extend_effective_positions_match_the_reference_table) {
    static const int want[6][10] = {{4, 3, 2, 1, 0},       {4, 4, 3, 2, 1, 0},       {5, 5, 4, 3, 2, 1, 0},
                                    {5, 5, 4, 4, 3, 2, 1, 0}, {6, 6, 5, 5, 4, 3, 2, 1, 0}, {6, 6, 5, 5, 4, 4, 3, 2, 1, 0}};
    PeModel pe;
    make_enc(&pe, "rope+self-extend:group=2,window=4", 1, 8, 64, 10);
    Csv csv = inspect_csv(&pe, 10, 0, NULL, 0);
    for (int i = 0; i < 10; i++)
        for (int j = 0; j <= i; j++) {
            double w = i < 4 ? i - j : want[i - 4][j];
            char what[64];
            snprintf(what, sizeof what, "rel_pos(%d, %d)", i, j);
            assert_close(csv_get(&csv, "rel_pos", -1, i, j), w, 0.0, what);
        }
    free(csv.rows);
    pe_destroy(&pe);
}

Test(rope_variants, rerope_and_leaky_rerope_distances_match_the_reference) {
    static const int dist[6] = {511, 512, 513, 1000, 4096, 8192};
    static const double rerope[6] = {511, 512, 512, 512, 512, 512};
    static const double leaky[6] = {511, 512, 512.0625, 542.5, 736, 992};
    const char *specs[2] = {"rope+rerope:window=512", "rope+leaky-rerope:window=512,k=16"};
    for (int v = 0; v < 2; v++) {
        PeModel pe;
        make_enc(&pe, specs[v], 1, 8, 4096, 8193);
        Csv csv = inspect_csv(&pe, 1, 8192, NULL, 0); /* row 0 and row 8192 */
        for (int k = 0; k < 6; k++) {
            char what[96];
            snprintf(what, sizeof what, "%s at distance %d", specs[v], dist[k]);
            assert_close(csv_get(&csv, "rel_pos", -1, 8192, 8192 - dist[k]), v ? leaky[k] : rerope[k], 1e-9, what);
        }
        free(csv.rows);
        pe_destroy(&pe);
    }
}

Test(rope_variants, logn_scale_matches_the_reference_and_multiplies_only_q) {
    static const int pos[7] = {0, 1, 4095, 4096, 8191, 16383, 65535};
    static const double want[7] = {1, 1, 1, 1.000029348, 1.083333333, 1.166666667, 1.333333333};
    PeModel pe;
    make_enc(&pe, "rope+logn", 1, 8, 4096, 65536);
    Csv csv = inspect_csv(&pe, 16, 0, pos, 7);
    for (int k = 0; k < 7; k++) {
        char what[64];
        snprintf(what, sizeof what, "kappa(%d)", pos[k]);
        assert_close(csv_get(&csv, "q_scale", -1, pos[k], -1), want[k], 1e-7, what);
    }
    free(csv.rows);
    /* q at 16383 has 7/6 the norm of plain-rotated q; k keeps its norm. */
    float qkv[24];
    fill_normal(qkv, 24, 3);
    double nq = 0, nk = 0, nq2 = 0, nk2 = 0;
    for (int d = 0; d < 8; d++) nq += qkv[d] * qkv[d], nk += qkv[8 + d] * qkv[8 + d];
    int p = 16383;
    pe.scheme->qk_forward(&pe, 0, qkv, 24, &p, 1);
    for (int d = 0; d < 8; d++) nq2 += qkv[d] * qkv[d], nk2 += qkv[8 + d] * qkv[8 + d];
    assert_close(sqrt(nq2 / nq), 7.0 / 6.0, 1e-5, "q norm ratio");
    assert_close(sqrt(nk2 / nk), 1.0, 1e-5, "k norm ratio");
    pe_destroy(&pe);
}

Test(rope_variants, lambda_keeps_the_local_window_caps_global_keys_and_masks_the_middle) {
    PeModel pe;
    make_enc(&pe, "rope+lambda:local=4,global=2,limit=4", 1, 8, 64, 12);
    Csv csv = inspect_csv(&pe, 12, 0, NULL, 0);
    for (int i = 0; i < 12; i++)
        for (int j = 0; j <= i; j++) {
            double got = csv_get(&csv, "rel_pos", -1, i, j);
            char what[64];
            snprintf(what, sizeof what, "rel_pos(%d, %d)", i, j);
            if (i - j < 4) assert_close(got, i - j, 0, what);
            else if (j < 2) assert_close(got, 4, 0, what);
            else cr_assert(isnan(got), "%s: got %g, want NaN (masked)", what, got);
        }
    free(csv.rows);
    pe_destroy(&pe);
}

/* ---- properties through the hooks ------------------------------------------------------------- */

/* q/k of NH heads rotated at positions 0..T-1 by `spec` (prepared at n), into out (T, 3C). */
static void forward_rows(const char *spec, int NH, int HS, int L, int n, int T, const float *in, float *out) {
    PeModel pe;
    make_enc(&pe, spec, NH, HS, L, n);
    int C = NH * HS;
    memcpy(out, in, sizeof(float) * (size_t)T * 3 * C);
    int *pos = malloc(sizeof(int) * (size_t)T);
    for (int t = 0; t < T; t++) pos[t] = t;
    pe.scheme->qk_forward(&pe, 0, out, 3 * (size_t)C, pos, T);
    free(pos);
    pe_destroy(&pe);
}

static void assert_same_rows(const char *a, const char *b, int NH, int HS, int L, int n) {
    enum { T = 64 };
    int C = NH * HS;
    float *in = malloc(sizeof(float) * T * 3 * C), *x = malloc(sizeof(float) * T * 3 * C),
          *y = malloc(sizeof(float) * T * 3 * C);
    fill_normal(in, (size_t)T * 3 * C, 17);
    int rows = T < n ? T : n;
    forward_rows(a, NH, HS, L, n, rows, in, x);
    forward_rows(b, NH, HS, L, n, rows, in, y);
    for (int k = 0; k < rows * 3 * C; k++)
        cr_assert_eq(x[k], y[k], "'%s' vs '%s' at n=%d: element %d is %.9g vs %.9g", a, b, n, k, x[k], y[k]);
    free(in);
    free(x);
    free(y);
}

Test(rope_variants, yarn_with_factor_one_is_plain_rope_bit_for_bit) {
    const char *bases[3] = {"rope", "rope:pairing=interleaved", "rope:fraction=0.5,base=500"};
    const char *vars[3] = {"+yarn:factor=1", "+yarn", "+llama3:factor=1"};
    for (int b = 0; b < 3; b++)
        for (int v = 0; v < 3; v++) {
            char spec[96];
            snprintf(spec, sizeof spec, "%s%s", bases[b], vars[v]);
            assert_same_rows(bases[b], spec, 2, 16, 64, 64); /* auto at n = L: s = 1 */
        }
}

Test(rope_variants, every_variant_at_n_up_to_l_is_plain_rope_where_the_spec_says_so) {
    /* auto factors, dynamic NTK, log-n (kappa = 1 below L) and LM-Infinite (local = L) */
    const char *specs[] = {"rope+pi", "rope+ntk", "rope+dynamic-ntk", "rope+yarn", "rope+llama3", "rope+logn",
                           "rope+lambda"};
    for (size_t k = 0; k < sizeof specs / sizeof specs[0]; k++) {
        assert_same_rows("rope", specs[k], 2, 16, 64, 64);
        assert_same_rows("rope", specs[k], 2, 16, 64, 40);
    }
    /* and the alternative branch of LM-Infinite, Self-Extend and ReRoPE is unused when the window covers n */
    const char *alts[] = {"rope+lambda", "rope+self-extend:window=64", "rope+rerope:window=64",
                          "rope+leaky-rerope:window=64"};
    for (size_t k = 0; k < sizeof alts / sizeof alts[0]; k++) {
        PeModel pe;
        make_enc(&pe, alts[k], 2, 16, 64, 64);
        cr_assert(pe.scheme->alt_row, "%s has no alt_row", alts[k]);
        for (int i = 0; i < 64; i++) {
            int e = -1, lo = -1, hi = -1;
            pe.scheme->alt_row(&pe, i, &e, &lo, &hi);
            cr_assert(e == 0 && lo >= hi, "%s row %d: alt_end %d, mask [%d, %d)", alts[k], i, e, lo, hi);
        }
        pe_destroy(&pe);
        assert_same_rows("rope", alts[k], 2, 16, 64, 64);
    }
}

Test(rope_variants, plain_rope_has_no_alternative_branch) {
    PeModel pe;
    make_enc(&pe, "rope", 2, 8, 32, 32);
    cr_assert(!pe.scheme->qk_alt_forward && !pe.scheme->alt_row, "plain rope pays for an alternative branch");
    pe_destroy(&pe);
}

Test(rope_variants, pi_angle_at_5000_with_factor_4_equals_the_plain_angle_at_1250) {
    PeModel a, b;
    make_enc(&a, "rope+pi:factor=4", 1, 16, 512, 5001);
    make_enc(&b, "rope", 1, 16, 512, 5001);
    int pa = 5000, pb = 1250;
    Csv ca = inspect_csv(&a, 5001, 0, &pa, 1), cb = inspect_csv(&b, 5001, 0, &pb, 1);
    for (int t = 0; t < 8; t++)
        assert_rel(csv_get(&ca, "angle", -1, 5000, t), csv_get(&cb, "angle", -1, 1250, t), 1e-12, "angle");
    free(ca.rows);
    free(cb.rows);
    float x[48], y[48];
    fill_normal(x, 48, 5);
    memcpy(y, x, sizeof x);
    a.scheme->qk_forward(&a, 0, x, 48, &pa, 1);
    b.scheme->qk_forward(&b, 0, y, 48, &pb, 1);
    for (int d = 0; d < 32; d++) assert_close(x[d], y[d], 1e-6, "rotated element");
    pe_destroy(&a);
    pe_destroy(&b);
}

/* Score of q and k whose rotations differ by rel positions, in double: the pair form of
   <R(a) q, R(b) k> with a - b = rel (half pairing, HS dims, plain frequencies). */
static double score_at(const float *q, const float *k, double rel, int HS, double base) {
    int np = HS / 2;
    double s = 0;
    for (int t = 0; t < np; t++) {
        double th = pow(base, -2.0 * t / HS), c = cos(rel * th), sn = sin(rel * th);
        double qa = q[t], qb = q[t + np], ka = k[t], kb = k[t + np];
        s += (qa * ka + qb * kb) * c + (qa * kb - qb * ka) * sn;
    }
    return s;
}

Test(rope_variants, alternative_scores_equal_plain_rope_at_the_reported_effective_distance) {
    enum { HS = 16, N = 40 };
    const char *specs[] = {"rope+self-extend:group=3,window=5", "rope+rerope:window=7",
                           "rope+leaky-rerope:window=6,k=4", "rope+lambda:local=5,global=3,limit=9"};
    float *raw = malloc(sizeof(float) * N * 3 * HS), *alt = malloc(sizeof(float) * N * 3 * HS),
          *ord = malloc(sizeof(float) * N * 3 * HS);
    fill_normal(raw, (size_t)N * 3 * HS, 23);
    int pos[N];
    for (int t = 0; t < N; t++) pos[t] = t;
    for (size_t v = 0; v < sizeof specs / sizeof specs[0]; v++) {
        PeModel pe;
        make_enc(&pe, specs[v], 1, HS, 16, N);
        Csv csv = inspect_csv(&pe, N, 0, NULL, 0);
        memcpy(alt, raw, sizeof(float) * N * 3 * HS);
        memcpy(ord, raw, sizeof(float) * N * 3 * HS);
        pe.scheme->qk_alt_forward(&pe, 0, alt, 3 * HS, pos, N);
        pe.scheme->qk_forward(&pe, 0, ord, 3 * HS, pos, N);
        int n_alt = 0;
        for (int i = 0; i < N; i++) {
            int e, lo, hi;
            pe.scheme->alt_row(&pe, i, &e, &lo, &hi);
            for (int j = 0; j <= i; j++) {
                double rel = csv_get(&csv, "rel_pos", -1, i, j);
                if (j >= lo && j < hi) {
                    cr_assert(isnan(rel), "%s (%d, %d) masked but rel_pos %g", specs[v], i, j, rel);
                    continue;
                }
                const float *qq = (j < e ? alt : ord) + (size_t)i * 3 * HS;
                const float *kk = (j < e ? alt : ord) + (size_t)j * 3 * HS + HS;
                double got = 0;
                for (int d = 0; d < HS; d++) got += (double)qq[d] * kk[d];
                double want = score_at(raw + (size_t)i * 3 * HS, raw + (size_t)j * 3 * HS + HS, rel, HS, 10000.0);
                char what[128];
                snprintf(what, sizeof what, "%s score (%d, %d) at rel %g", specs[v], i, j, rel);
                assert_close(got, want, 2e-5 * (1 + fabs(want)), what);
                n_alt += j < e;
            }
        }
        cr_assert_gt(n_alt, 0, "%s never used its alternative branch", specs[v]);
        free(csv.rows);
        pe_destroy(&pe);
    }
    free(raw);
    free(alt);
    free(ord);
}

Test(rope_variants, every_variant_respects_pairing_and_partial_rotation) {
    /* Interleaved equals half up to the fixed permutation of the rotated dims; the tail of a partial
       rotation is only ever scaled by the query scale. HS 16, fraction 0.5: 8 rotated dims. */
    enum { HS = 16, DR = 8, NP = 4, N = 24 };
    const char *vars[] = {"",          "+pi:factor=3",     "+ntk:factor=3",          "+dynamic-ntk",
                          "+yarn:factor=3", "+llama3:factor=3", "+self-extend:window=4", "+rerope:window=4",
                          "+leaky-rerope:window=4", "+logn", "+lambda:local=4"};
    int perm[HS]; /* half-pairing index -> interleaved index */
    for (int t = 0; t < NP; t++) perm[t] = 2 * t, perm[t + NP] = 2 * t + 1;
    for (int d = DR; d < HS; d++) perm[d] = d;
    float raw[N * 3 * HS], ph[N * 3 * HS], pi_[N * 3 * HS];
    fill_normal(raw, N * 3 * HS, 29);
    int pos[N];
    for (int t = 0; t < N; t++) pos[t] = t;
    for (size_t v = 0; v < sizeof vars / sizeof vars[0]; v++) {
        char sh[96], si[96];
        snprintf(sh, sizeof sh, "rope:fraction=0.5,pairing=half%s", vars[v]);
        snprintf(si, sizeof si, "rope:fraction=0.5,pairing=interleaved%s", vars[v]);
        PeModel h, il;
        make_enc(&h, sh, 1, HS, 8, N);
        make_enc(&il, si, 1, HS, 8, N);
        for (int branch = 0; branch < 2; branch++) {
            if (branch && !h.scheme->qk_alt_forward) continue;
            memcpy(ph, raw, sizeof raw);
            for (int r = 0; r < N * 3; r++)
                for (int d = 0; d < HS; d++) pi_[r * HS + perm[d]] = raw[r * HS + d];
            if (branch) {
                h.scheme->qk_alt_forward(&h, 0, ph, 3 * HS, pos, N);
                il.scheme->qk_alt_forward(&il, 0, pi_, 3 * HS, pos, N);
            } else {
                h.scheme->qk_forward(&h, 0, ph, 3 * HS, pos, N);
                il.scheme->qk_forward(&il, 0, pi_, 3 * HS, pos, N);
            }
            for (int r = 0; r < N * 3; r++)
                for (int d = 0; d < HS; d++)
                    cr_assert_eq(ph[r * HS + d], pi_[r * HS + perm[d]], "%s branch %d row %d dim %d: %.9g vs %.9g",
                                 sh, branch, r, d, ph[r * HS + d], pi_[r * HS + perm[d]]);
            for (int t = 0; t < N; t++) {
                float g = ph[(t * 3) * HS + DR] / raw[(t * 3) * HS + DR]; /* q tail: the query scale */
                for (int d = DR; d < HS; d++) {
                    assert_close(ph[(t * 3) * HS + d], g * raw[(t * 3) * HS + d], 1e-6, "q tail scaled uniformly");
                    cr_assert_eq(ph[(t * 3 + 1) * HS + d], raw[(t * 3 + 1) * HS + d], "%s: k tail dim %d changed", sh,
                                 d);
                    cr_assert_eq(ph[(t * 3 + 2) * HS + d], raw[(t * 3 + 2) * HS + d], "%s: v changed", sh);
                }
            }
        }
        pe_destroy(&h);
        pe_destroy(&il);
    }
}

Test(rope_variants, qk_backward_is_the_adjoint_of_qk_forward_with_magnitude_and_query_scale) {
    enum { HS = 16, NH = 2, C = NH * HS, N = 40 };
    const char *specs[] = {"rope+yarn:factor=4", "rope:pairing=interleaved+logn", "rope+ntk"};
    static float x[N * 3 * C], y[N * 3 * C], fx[N * 3 * C], by[N * 3 * C];
    fill_normal(x, N * 3 * C, 31);
    fill_normal(y, N * 3 * C, 37);
    int pos[N];
    for (int t = 0; t < N; t++) pos[t] = t;
    for (size_t v = 0; v < 3; v++) {
        PeModel pe;
        make_enc(&pe, specs[v], NH, HS, 8, N);
        memcpy(fx, x, sizeof x);
        memcpy(by, y, sizeof y);
        pe.scheme->qk_forward(&pe, 0, fx, 3 * C, pos, N);
        pe.scheme->qk_backward(&pe, 0, by, 3 * C, pos, N);
        double a = 0, b = 0;
        for (int k = 0; k < N * 3 * C; k++) a += (double)fx[k] * y[k], b += (double)x[k] * by[k];
        assert_close(a, b, 1e-4 * fabs(a), specs[v]);
        pe_destroy(&pe);
    }
}

/* ---- randomized positions (§13) --------------------------------------------------------------- */

Test(rope_variants, randomized_positions_are_sorted_distinct_in_range_and_n_equal_t_gives_0_to_t_minus_1) {
    enum { T = 32 };
    PeModel pe;
    make_enc(&pe, "rope:randomized=200", 1, 8, T, T);
    Rng rng;
    rng_seed(&rng, 41);
    int pos[T], first[T], differs = 0;
    for (int draw = 0; draw < 50; draw++) {
        pe.scheme->train_positions(&pe, &rng, T, pos);
        for (int t = 0; t < T; t++) {
            cr_assert(pos[t] >= 0 && pos[t] < 200, "draw %d: position %d = %d out of [0, 200)", draw, t, pos[t]);
            if (t) cr_assert_gt(pos[t], pos[t - 1], "draw %d: positions %d, %d not strictly increasing", draw,
                                pos[t - 1], pos[t]);
        }
        if (!draw) memcpy(first, pos, sizeof pos);
        else differs |= memcmp(first, pos, sizeof pos) != 0;
    }
    cr_assert(differs, "50 draws gave the same positions");
    /* the cache covers N: a rotation at 199 works after prepare at T */
    float qkv[24];
    fill_normal(qkv, 24, 2);
    int p = 199;
    pe.scheme->qk_forward(&pe, 0, qkv, 24, &p, 1);
    pe_destroy(&pe);

    make_enc(&pe, "rope:randomized=32", 1, 8, T, T);
    pe.scheme->train_positions(&pe, &rng, T, pos);
    for (int t = 0; t < T; t++) cr_assert_eq(pos[t], t, "N = T: position %d is %d", t, pos[t]);
    pe_destroy(&pe);
}

Test(rope_variants, errors_name_the_variant_option_or_value) {
    char err[CB_ERR_LEN] = "";
    int rc = create_status("rope+yarnn", 64, err);
    cr_assert(rc == CB_EINPUT && !strcmp(err, "unknown eval-time variant 'yarnn' for scheme 'rope'"),
              "rc %d, message '%s'", rc, err);
    rc = create_status("rope+yarn:beta=3", 64, err);
    cr_assert(rc == CB_EINPUT && strstr(err, "rope+yarn") && strstr(err, "'beta'"), "rc %d, message '%s'", rc, err);
    rc = create_status("rope+pi:factor=0.5", 64, err);
    cr_assert(rc == CB_EINPUT && strstr(err, "'factor'") && strstr(err, "auto"), "rc %d, message '%s'", rc, err);
    rc = create_status("rope+dynamic-ntk:factor=auto", 64, err);
    cr_assert(rc == CB_EINPUT && strstr(err, "'factor'"), "rc %d, message '%s'", rc, err);
    rc = create_status("rope+self-extend:group=0", 64, err);
    cr_assert(rc == CB_EINPUT && strstr(err, "'group'"), "rc %d, message '%s'", rc, err);
    rc = create_status("rope:randomized=32", 64, err);
    cr_assert(rc == CB_EINPUT && strstr(err, "randomized") && strstr(err, "64"), "rc %d, message '%s'", rc, err);
    rc = create_status("rope:randomized=64+yarn:factor=auto,beta_fast=16", 64, err);
    cr_assert_eq(rc, CB_OK, "a valid combination failed: %d, %s", rc, err);
    for (const PeVariantInfo *v = pe_variants(); v->name; v++) {
        char spec[64];
        snprintf(spec, sizeof spec, "%s+%s", v->scheme, v->name);
        rc = create_status(spec, 64, err);
        cr_assert_eq(rc, CB_OK, "listed variant '%s' does not create: %d, %s", spec, rc, err);
    }
}

/* ---- end to end through the model ------------------------------------------------------------- */

static ModelConfig tiny_config(int L) {
    return (ModelConfig){.n_layer = 2, .d_model = 16, .n_head = 2, .mlp_ratio = 2, .train_ctx = L};
}

static void random_bytes(uint8_t *b, size_t n, uint64_t seed) {
    Rng rng;
    rng_seed(&rng, seed);
    for (size_t i = 0; i < n; i++) b[i] = (uint8_t)(97 + rng_below(&rng, 8));
}

/* Losses of the model `blob` evaluated as `spec` over the n bytes in (targets in + 1). */
static void eval_as(const uint8_t *blob, size_t size, const char *spec, const uint8_t *in, int n, float *losses) {
    char err[CB_ERR_LEN] = "";
    Model m;
    cr_assert_eq(model_load(&m, blob, size, spec, err), CB_OK, "load as %s: %s", spec, err);
    cr_assert_eq(pe_prepare(&m.pe, n, err), CB_OK, "prepare %s at %d: %s", spec, n, err);
    cr_assert_eq(model_eval_window(&m, in, in + 1, n, losses, NULL, err), CB_OK, "eval %s: %s", spec, err);
    model_free(&m);
}

Test(rope_variants, self_extend_with_a_window_past_n_gives_plain_rope_losses_and_a_small_window_differs) {
    enum { L = 16, N = 48 };
    char err[CB_ERR_LEN] = "";
    Model m;
    ModelConfig cfg = tiny_config(L);
    cr_assert_eq(model_build(&m, &cfg, "rope", 3, err), CB_OK, "%s", err);
    Rng rng;
    rng_seed(&rng, 4);
    for (size_t i = 0; i < m.n_params; i++) m.params[i] += 0.1f * rng_normal(&rng);
    uint8_t *blob;
    size_t size;
    cr_assert_eq(model_save(&m, "rope", &blob, &size, err), CB_OK, "%s", err);
    model_free(&m);
    uint8_t in[N + 1];
    random_bytes(in, N + 1, 5);
    float plain[N], wide[N], narrow[N];
    eval_as(blob, size, "rope", in, N, plain);
    eval_as(blob, size, "rope+self-extend:group=2,window=48", in, N, wide);
    eval_as(blob, size, "rope+self-extend:group=2,window=4", in, N, narrow);
    int differ = 0;
    for (int t = 0; t < N; t++) {
        cr_assert_eq(wide[t], plain[t], "window 48, position %d: loss %.9g vs plain %.9g", t, wide[t], plain[t]);
        cr_assert(isfinite(narrow[t]), "window 4, position %d: loss %g", t, narrow[t]);
        if (t < 4) cr_assert_eq(narrow[t], plain[t], "window 4, position %d (< W): %.9g vs %.9g", t, narrow[t], plain[t]);
        differ += narrow[t] != plain[t];
    }
    cr_assert_gt(differ, N / 2, "window 4 changed only %d of %d losses", differ, N);
    free(blob);
}

Test(rope_variants, every_variant_is_causal_later_bytes_leave_earlier_logits_unchanged) {
    enum { L = 16, N = 48, CUT = 30 };
    uint8_t a[N + 1], b[N + 1];
    random_bytes(a, N + 1, 13);
    memcpy(b, a, sizeof a);
    for (int t = CUT + 1; t <= N; t++) b[t] = (uint8_t)(b[t] ^ 0x55);
    float *la = malloc(sizeof(float) * N * CB_VOCAB), *lb = malloc(sizeof(float) * N * CB_VOCAB);
    int checked = 0;
    for (const PeVariantInfo *v = pe_variants(); v->name; v++) {
        if (strcmp(v->scheme, "rope")) continue;
        for (int form = 0; form < 2; form++) {
            char spec[96], err[CB_ERR_LEN] = "";
            snprintf(spec, sizeof spec, "%s+%s", form ? "rope:pairing=interleaved,fraction=0.5" : "rope", v->name);
            Model m;
            ModelConfig cfg = tiny_config(L);
            cr_assert_eq(model_build(&m, &cfg, spec, 11, err), CB_OK, "%s: %s", spec, err);
            Rng rng;
            rng_seed(&rng, 12);
            for (size_t i = 0; i < m.n_params; i++) m.params[i] += 0.05f * rng_normal(&rng);
            cr_assert_eq(pe_prepare(&m.pe, N, err), CB_OK, "%s: %s", spec, err);
            cr_assert_eq(model_eval_window(&m, a, a + 1, N, NULL, la, err), CB_OK, "%s", err);
            cr_assert_eq(model_eval_window(&m, b, b + 1, N, NULL, lb, err), CB_OK, "%s", err);
            for (int t = 0; t <= CUT; t++)
                for (int c = 0; c < CB_VOCAB; c++) {
                    float x = la[t * CB_VOCAB + c], y = lb[t * CB_VOCAB + c];
                    cr_assert(fabsf(x - y) <= 1e-6f * (1 + fabsf(x)), "%s: logit (%d, %d) changed from %.9g to %.9g",
                              spec, t, c, x, y);
                }
            int later = 0;
            for (int t = CUT + 1; t < N; t++) later += la[t * CB_VOCAB] != lb[t * CB_VOCAB];
            cr_assert_gt(later, 0, "%s: changing the later bytes changed no later logit", spec);
            model_free(&m);
            checked++;
        }
    }
    cr_assert_eq(checked, 20, "checked %d variant forms, want 20", checked);
    free(la);
    free(lb);
}
