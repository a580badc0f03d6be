/*
 * test_rope_unseen.c — the unseen_angle_share diagnostic of the rotary schemes (RoPE, its eval-time
 * variants, randomized positions, xPos) against shares counted here by hand from
 * theta_t = base^(-2t/d): a pair trained at positions 0..P has seen every angle when
 * P theta_t >= 2 pi, and otherwise leaves its range once the evaluation reaches P + 1.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>

#include "pe/pe.h"

/* An encoding of one head of HS dims trained at L (not prepared: the hook needs no caches). */
static void make_enc(PeModel *pe, const char *spec, int HS, int L) {
    char err[CB_ERR_LEN] = "";
    PeDims dims = {.n_layer = 1, .n_head = 1, .head_size = HS, .d_model = HS, .train_ctx = L};
    int rc = pe_create(pe, spec, &dims, err);
    cr_assert_eq(rc, CB_OK, "pe_create('%s') returned %d: %s", spec, rc, err);
}

static double share_of(const char *spec, int HS, int L, int n) {
    PeModel pe;
    make_enc(&pe, spec, HS, L);
    int pairs = -1;
    double s = pe_unseen_angle_share(&pe, n, &pairs);
    if (isnan(s)) cr_expect_eq(pairs, 0, "%s: no share but %d pairs", spec, pairs);
    else cr_expect_eq(pairs, HS / 2, "%s: %d pairs, want HS/2 = %d", spec, pairs, HS / 2);
    pe_destroy(&pe);
    return s;
}

/* Share of the d/2 pairs with P theta_t < 2 pi, theta_t = base^(-2t/d), counted directly. */
static double hand_share(double base, int d, double P) {
    int np = d / 2, below = 0;
    for (int t = 0; t < np; t++)
        if (P * pow(base, -2.0 * t / d) < 2.0 * M_PI) below++;
    return (double)below / np;
}

Test(rope_unseen, plain_rope_at_the_training_context_has_seen_every_angle) {
    static const int HS[] = {8, 16, 64}, L[] = {16, 128, 512};
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 3; b++) {
            double s = share_of("rope", HS[a], L[b], L[b]);
            cr_expect_eq(s, 0.0, "rope HS=%d L=%d at n = L: share %g, want 0", HS[a], L[b], s);
            s = share_of("rope", HS[a], L[b], L[b] / 2);
            cr_expect_eq(s, 0.0, "rope HS=%d L=%d at n = L/2: share %g, want 0", HS[a], L[b], s);
        }
}

Test(rope_unseen, plain_rope_at_twice_the_training_context_counts_the_pairs_below_one_turn) {
    static const struct {
        int HS, L;
        double base;
        const char *spec;
    } cases[] = {{16, 128, 10000, "rope"}, {64, 512, 10000, "rope"}, {32, 128, 500000, "rope:base=500000"},
                 {64, 4096, 10000, "rope"}, {16, 16, 100, "rope:base=100"}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        double want = hand_share(cases[k].base, cases[k].HS, cases[k].L - 1);
        double got = share_of(cases[k].spec, cases[k].HS, cases[k].L, 2 * cases[k].L);
        cr_expect(fabs(got - want) < 1e-12, "%s HS=%d L=%d at 2L: share %g, hand count %g", cases[k].spec,
                  cases[k].HS, cases[k].L, got, want);
        cr_expect(want > 0.0 && want < 1.0, "the case should have pairs on both sides, hand count %g", want);
        /* one position past L is already out of range; farther adds nothing */
        double next = share_of(cases[k].spec, cases[k].HS, cases[k].L, cases[k].L + 1);
        double far = share_of(cases[k].spec, cases[k].HS, cases[k].L, 16 * cases[k].L);
        cr_expect(fabs(next - want) < 1e-12 && fabs(far - want) < 1e-12, "at L + 1: %g, at 16 L: %g, want %g",
                  next, far, want);
    }
    /* HS = 16, L = 128: 127 theta_t < 2 pi for t = 3..7 of 8 */
    cr_expect_eq(share_of("rope", 16, 128, 256), 5.0 / 8.0);
}

Test(rope_unseen, position_interpolation_with_factor_n_over_l_stays_in_range) {
    for (int m = 1; m <= 16; m *= 2) {
        char spec[48];
        snprintf(spec, sizeof spec, "rope+pi:factor=%d", m);
        double s = share_of(spec, 16, 128, 128 * m);
        cr_expect_eq(s, 0.0, "%s at n = %d: share %g, want 0", spec, 128 * m, s);
        s = share_of("rope+pi", 16, 128, 128 * m);
        cr_expect_eq(s, 0.0, "rope+pi (factor auto) at n = %d: share %g, want 0", 128 * m, s);
    }
    /* a factor too small for n leaves the range again */
    cr_expect_gt(share_of("rope+pi:factor=2", 16, 128, 1024), 0.0, "rope+pi:factor=2 at 8 L");
}

Test(rope_unseen, ntk_and_yarn_leave_fewer_pairs_out_of_range_than_plain_rope) {
    for (int m = 2; m <= 16; m *= 2) {
        int n = 128 * m;
        double rope = share_of("rope", 32, 128, n);
        const char *const scaled[] = {"rope+ntk", "rope+yarn", "rope+llama3"};
        for (int v = 0; v < 3; v++) {
            double s = share_of(scaled[v], 32, 128, n);
            cr_expect_lt(s, rope, "%s at n = %d: share %g, not below rope's %g", scaled[v], n, s, rope);
        }
    }
}

Test(rope_unseen, every_variant_at_n_up_to_l_has_seen_every_angle) {
    const char *const specs[] = {"rope",          "rope+pi",          "rope+ntk",
                                 "rope+dynamic-ntk", "rope+yarn",     "rope+llama3",
                                 "rope+self-extend", "rope+rerope",   "rope+leaky-rerope",
                                 "rope+logn",     "rope+lambda",      "rope:randomized=512"};
    for (size_t k = 0; k < sizeof specs / sizeof specs[0]; k++)
        for (int n = 1; n <= 128; n *= 2) {
            double s = share_of(specs[k], 16, 128, n);
            cr_expect_eq(s, 0.0, "%s at n = %d: share %g, want 0", specs[k], n, s);
        }
}

Test(rope_unseen, remapping_variants_use_their_largest_effective_distance) {
    int L = 128, HS = 16;
    double rope = hand_share(10000, HS, L - 1);
    /* ReRoPE caps distances at its window L/2; LM-Infinite with limit L - 1 stays inside L - 1. */
    cr_expect_eq(share_of("rope+rerope", HS, L, 16 * L), 0.0, "rerope at 16 L");
    cr_expect_eq(share_of("rope+lambda:limit=127", HS, L, 16 * L), 0.0, "lambda with limit L - 1 at 16 L");
    /* the default limit = local = L is one position past training */
    cr_expect_eq(share_of("rope+lambda", HS, L, 16 * L), rope, "lambda with limit L at 16 L");
    /* Self-Extend (G 4, W L/4) reaches (n - 1)/4 + W - W/4: 0.69 L at 2 L, 4.2 L at 16 L */
    cr_expect_eq(share_of("rope+self-extend", HS, L, 2 * L), 0.0, "self-extend at 2 L");
    cr_expect_eq(share_of("rope+self-extend", HS, L, 16 * L), rope, "self-extend at 16 L");
    /* Leaky ReRoPE (w L/2, k 16) reaches (n - 1 + w (k - 1)) / k: 0.99 L at 8 L (n - 1 = 1023) */
    cr_expect_eq(share_of("rope+leaky-rerope", HS, L, 8 * L), 0.0, "leaky-rerope at 8 L");
    cr_expect_eq(share_of("rope+leaky-rerope", HS, L, 16 * L), rope, "leaky-rerope at 16 L");
    /* log-n changes no angle */
    cr_expect_eq(share_of("rope+logn", HS, L, 4 * L), rope, "logn at 4 L");
}

Test(rope_unseen, randomized_positions_train_the_angles_up_to_n_minus_1) {
    cr_expect_eq(share_of("rope:randomized=1024", 16, 128, 1024), 0.0, "randomized=1024 at 1024");
    double want = hand_share(10000, 16, 1023);
    double got = share_of("rope:randomized=1024", 16, 128, 2048);
    cr_expect(fabs(got - want) < 1e-12, "randomized=1024 at 2048: share %g, hand count %g", got, want);
    cr_expect_lt(got, share_of("rope", 16, 128, 2048), "randomized training sees more angles");
}

Test(rope_unseen, xpos_counts_like_interleaved_rope_and_biases_have_no_share) {
    cr_expect_eq(share_of("xpos", 16, 128, 128), 0.0);
    double want = hand_share(10000, 16, 127);
    double got = share_of("xpos", 16, 128, 512);
    cr_expect(fabs(got - want) < 1e-12, "xpos at 4 L: share %g, hand count %g", got, want);
    const char *const none[] = {"nope", "alibi", "t5", "sinusoidal", "learned"};
    for (size_t k = 0; k < sizeof none / sizeof none[0]; k++) {
        double s = share_of(none[k], 16, 128, 512);
        cr_expect(isnan(s), "%s has no rotation but gave a share %g", none[k], s);
    }
}

Test(rope_unseen, partial_rotation_counts_only_the_rotated_pairs) {
    PeModel pe;
    make_enc(&pe, "rope:fraction=0.5", 32, 128);
    int pairs = 0;
    double got = pe_unseen_angle_share(&pe, 256, &pairs);
    pe_destroy(&pe);
    double want = hand_share(10000, 16, 127); /* d_rot = 16 of 32 dims: theta_t = base^(-2t/16) */
    cr_expect_eq(pairs, 8, "%d pairs, want d_rot/2 = 8", pairs);
    cr_expect(fabs(got - want) < 1e-12, "share %g, hand count %g", got, want);
}
