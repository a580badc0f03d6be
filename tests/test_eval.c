/*
 * test_eval.c — evaluation: non-overlapping perplexity bookkeeping and position buckets, and the
 * passkey generator and scorer.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval/eval.h"
#include "eval/passkey.h"

Test(passkey, the_generator_places_the_key_at_the_requested_depth_with_the_exact_length) {
    char err[CB_ERR_LEN];
    static uint8_t buf[4096];
    double depths[] = {0.0, 0.25, 0.5, 0.75, 1.0};
    for (int k = 0; k < 5; k++) {
        PasskeyEpisode ep;
        cr_assert_eq(passkey_build(buf, 1000, depths[k], 31337, &ep, err), CB_OK, "%s", err);
        cr_assert_eq(ep.length, 1000);
        cr_assert(!memcmp(buf + ep.key_at, "31337. Remember it.", 19), "depth %g: key text at %d is '%.19s'",
                  depths[k], ep.key_at, buf + ep.key_at);
        cr_assert(!memcmp(buf + ep.answer_at, "31337.", 6) && ep.answer_at + 6 == 1000,
                  "answer at %d: '%.6s'", ep.answer_at, buf + ep.answer_at);
        int garbage = 1000 - passkey_min_length(31337);
        double got = (double)(ep.key_at - (int)strlen("\nThe pass key is ")) / garbage;
        cr_assert(fabs(got - depths[k]) <= 1.0 / garbage, "asked depth %g, key sentence at depth %g", depths[k], got);
        for (int i = 0; i < 1000; i++) cr_assert(buf[i] >= 10 && buf[i] < 127, "byte %d is %d", i, buf[i]);
    }
    PasskeyEpisode ep;
    cr_assert_eq(passkey_build(buf, 50, 0.5, 7, &ep, err), CB_EINPUT, "a 50-byte episode was accepted");
    cr_assert_eq(passkey_build(buf, 500, 1.5, 7, &ep, err), CB_EINPUT, "depth 1.5 was accepted");
}

/* Logits whose argmax at every position is the byte `want[t + 1]`. */
static float *oracle_logits(const uint8_t *want, int n) {
    float *l = calloc((size_t)n * 256, sizeof(float));
    for (int t = 0; t < n; t++) l[(size_t)t * 256 + want[t + 1]] = 5.0f;
    return l;
}

Test(passkey, the_scorer_accepts_exactly_the_right_digits) {
    char err[CB_ERR_LEN];
    static uint8_t buf[600], alt[600];
    PasskeyEpisode ep;
    cr_assert_eq(passkey_build(buf, 600, 0.3, 4242, &ep, err), CB_OK, "%s", err);
    int n = ep.length - 1;
    float *l = oracle_logits(buf, n);
    cr_assert_eq(passkey_correct(l, buf, &ep), 1, "the right digits were refused");
    free(l);
    /* One wrong digit. */
    memcpy(alt, buf, sizeof buf);
    alt[ep.answer_at + 2] = '9';
    l = oracle_logits(alt, n);
    cr_assert_eq(passkey_correct(l, buf, &ep), 0, "a wrong third digit was accepted");
    free(l);
    /* The right digits followed by one more digit: 42421 is not 4242. */
    memcpy(alt, buf, sizeof buf);
    alt[ep.answer_at + 4] = '1';
    l = oracle_logits(alt, n);
    cr_assert_eq(passkey_correct(l, buf, &ep), 0, "a longer number was accepted");
    free(l);
    /* The right digits followed by a space instead of the full stop: still the number 4242. */
    memcpy(alt, buf, sizeof buf);
    alt[ep.answer_at + 4] = ' ';
    l = oracle_logits(alt, n);
    cr_assert_eq(passkey_correct(l, buf, &ep), 1, "4242 followed by a space was refused");
    free(l);
}

Test(passkey, random_training_episodes_have_keys_in_range_and_fill_the_window) {
    char err[CB_ERR_LEN];
    Rng rng;
    rng_seed(&rng, 3);
    uint8_t buf[256];
    for (int i = 0; i < 200; i++) {
        PasskeyEpisode ep;
        cr_assert_eq(passkey_random(buf, 129, &rng, &ep, err), CB_OK, "%s", err);
        cr_assert(ep.key >= 1 && ep.key <= PASSKEY_KEY_MAX, "key %u", ep.key);
        cr_assert_eq(ep.answer_at + ep.answer_len, 129);
    }
}

Test(perplexity, position_buckets_double_from_the_training_length) {
    int lo[EVAL_MAX_BUCKETS], hi[EVAL_MAX_BUCKETS];
    int n = eval_position_buckets(1000, 128, lo, hi);
    int want_lo[] = {0, 128, 256, 512}, want_hi[] = {128, 256, 512, 1000};
    cr_assert_eq(n, 4, "%d buckets", n);
    for (int k = 0; k < 4; k++)
        cr_assert(lo[k] == want_lo[k] && hi[k] == want_hi[k], "bucket %d = [%d, %d)", k, lo[k], hi[k]);
    n = eval_position_buckets(64, 128, lo, hi);
    cr_assert(n == 1 && lo[0] == 0 && hi[0] == 64, "short window: %d buckets, [%d, %d)", n, lo[0], hi[0]);
}
