/*
 * test_eval.c — evaluation: non-overlapping perplexity bookkeeping and position buckets, the
 * attention entropy by position bucket, and the passkey generator and scorer.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <omp.h>
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

static void tiny_model(Model *m, const char *spec, int L) {
    char err[CB_ERR_LEN];
    ModelConfig cfg = {.n_layer = 1, .d_model = 16, .n_head = 2, .mlp_ratio = 2, .train_ctx = L};
    cr_assert_eq(model_build(m, &cfg, spec, 5, err), CB_OK, "%s", err);
    Rng rng;
    rng_seed(&rng, 6);
    for (size_t i = 0; i < m->n_params; i++) m->params[i] += 0.1f * rng_normal(&rng);
}

static void held_out(uint8_t *b, size_t n) {
    Rng rng;
    rng_seed(&rng, 7);
    for (size_t i = 0; i < n; i++) b[i] = (uint8_t)('a' + rng_below(&rng, 6));
}

/* The mean loss, recomputed here window by window, of the last S predictions of windows of n
   bytes starting every S bytes. */
static double manual_bpb(Model *m, const uint8_t *h, size_t E, int n, int S, int *windows) {
    char err[CB_ERR_LEN];
    float *loss = malloc(sizeof(float) * (size_t)n);
    double total = 0;
    size_t count = 0;
    *windows = 0;
    for (size_t start = 0; start + (size_t)n + 1 <= E; start += (size_t)S, (*windows)++) {
        cr_assert_eq(model_eval_window(m, h + start, h + start + 1, n, loss, NULL, err), CB_OK, "%s", err);
        for (int t = n - S; t < n; t++) total += loss[t], count++;
    }
    free(loss);
    return total / (double)count / M_LN2;
}

Test(perplexity, sliding_windows_with_stride_n_equal_the_non_overlapping_value) {
    enum { E = 300, N = 16 };
    Model m;
    tiny_model(&m, "alibi", N);
    uint8_t h[E];
    held_out(h, E);
    char err[CB_ERR_LEN];
    PplResult a, b;
    cr_assert_eq(eval_perplexity(&m, h, E, N, &a, err), CB_OK, "%s", err);
    cr_assert_eq(eval_perplexity_sliding(&m, h, E, N, N, &b, err), CB_OK, "%s", err);
    int w;
    double manual = manual_bpb(&m, h, E, N, N, &w);
    cr_assert(a.bpb == b.bpb, "non-overlapping %.12g, sliding with S = n %.12g", a.bpb, b.bpb);
    cr_assert(fabs(a.bpb - manual) < 1e-9, "non-overlapping %.12g, recomputed %.12g", a.bpb, manual);
    cr_assert_eq(a.windows, w, "%d windows, expected %d", a.windows, w);
    cr_assert_eq(a.count, (size_t)w * N, "%zu scored bytes", a.count);
    cr_assert(a.bpb_lo < a.bpb && a.bpb < a.bpb_hi, "bootstrap interval [%g, %g] around %g", a.bpb_lo, a.bpb_hi, a.bpb);
    model_free(&m);
}

Test(perplexity, sliding_windows_score_the_last_stride_bytes_of_each_window) {
    enum { E = 200, N = 16 };
    Model m;
    tiny_model(&m, "rope", N);
    uint8_t h[E];
    held_out(h, E);
    char err[CB_ERR_LEN];
    int strides[] = {1, 4, 8};
    for (int k = 0; k < 3; k++) {
        PplResult r;
        cr_assert_eq(eval_perplexity_sliding(&m, h, E, N, strides[k], &r, err), CB_OK, "%s", err);
        int w;
        double manual = manual_bpb(&m, h, E, N, strides[k], &w);
        cr_assert(fabs(r.bpb - manual) < 1e-9, "S = %d: %.12g, recomputed %.12g", strides[k], r.bpb, manual);
        cr_assert(r.windows == w && r.stride == strides[k], "S = %d: %d windows (expected %d)", strides[k], r.windows, w);
    }
    PplResult r;
    cr_assert_eq(eval_perplexity_sliding(&m, h, E, N, 0, &r, err), CB_EINPUT, "stride 0 accepted");
    cr_assert_eq(eval_perplexity_sliding(&m, h, E, N, N + 1, &r, err), CB_EINPUT, "stride > n accepted");
    model_free(&m);
}

/* Short windows run one per thread; the sums go in window order, so one thread and two give the
   same bits, intervals and buckets included. */
Test(perplexity, one_thread_and_two_give_the_same_numbers) {
    enum { E = 400, N = 16, S = 4 };
    Model m;
    tiny_model(&m, "t5", N);
    uint8_t h[E];
    held_out(h, E);
    char err[CB_ERR_LEN];
    PplResult r[2];
    for (int threads = 1; threads <= 2; threads++) {
        omp_set_num_threads(threads);
        cr_assert_eq(eval_perplexity_sliding(&m, h, E, N, S, &r[threads - 1], err), CB_OK, "%s", err);
    }
    omp_set_num_threads(2);
    cr_assert(r[0].bpb == r[1].bpb && r[0].bpb_lo == r[1].bpb_lo && r[0].bpb_hi == r[1].bpb_hi,
              "bpb %.12g [%.12g, %.12g] at 1 thread, %.12g [%.12g, %.12g] at 2", r[0].bpb, r[0].bpb_lo,
              r[0].bpb_hi, r[1].bpb, r[1].bpb_lo, r[1].bpb_hi);
    for (int b = 0; b < r[0].n_buckets; b++)
        cr_assert(r[0].bucket_bpb[b] == r[1].bucket_bpb[b], "bucket %d: %.12g and %.12g", b, r[0].bucket_bpb[b],
                  r[1].bucket_bpb[b]);
    model_free(&m);
}

Test(entropy, uniform_attention_gives_the_mean_log_of_the_visible_keys_per_bucket_and_layer) {
    enum { E = 400, N = 64, L = 16 };
    char err[CB_ERR_LEN];
    Model m;
    ModelConfig cfg = {.n_layer = 2, .d_model = 16, .n_head = 2, .mlp_ratio = 2, .train_ctx = L};
    cr_assert_eq(model_build(&m, &cfg, "nope", 5, err), CB_OK, "%s", err);
    /* q = k = 0: every score is 0 and query t attends uniformly to its t + 1 keys */
    int C = cfg.d_model;
    for (int l = 0; l < cfg.n_layer; l++) {
        memset(m.p.qkvw + (size_t)l * 3 * C * C, 0, sizeof(float) * 2 * C * C);
        memset(m.p.qkvb + (size_t)l * 3 * C, 0, sizeof(float) * 2 * C);
    }
    uint8_t h[E];
    held_out(h, E);
    PplResult r;
    EntropyResult ent;
    cr_assert_eq(eval_perplexity_entropy(&m, h, E, N, N, 0, &r, &ent, err), CB_OK, "%s", err);
    cr_assert(ent.n_layer == 2 && ent.n_buckets == 3 && r.n_buckets == 3, "%d layers, %d buckets", ent.n_layer,
              ent.n_buckets);
    cr_assert_eq(ent.windows, r.windows, "measured %d of %d windows", ent.windows, r.windows);
    for (int l = 0; l < 2; l++)
        for (int b = 0; b < 3; b++) {
            double want = 0.0;
            for (int t = r.bucket_lo[b]; t < r.bucket_hi[b]; t++) want += log(t + 1.0);
            want /= r.bucket_hi[b] - r.bucket_lo[b];
            double got = ent.nats[l * ent.n_buckets + b];
            cr_expect(fabs(got - want) < 1e-4, "layer %d bucket [%d, %d): %.6f nats, want %.6f", l, r.bucket_lo[b],
                      r.bucket_hi[b], got, want);
        }
    eval_entropy_free(&ent);
    eval_entropy_free(&ent); /* twice is a no-op */
    model_free(&m);
}

Test(entropy, the_measurement_leaves_the_losses_unchanged_and_averages_evenly_spaced_windows) {
    enum { E = 300, N = 16, K = 3 };
    Model m;
    tiny_model(&m, "rope", 8);
    uint8_t h[E];
    held_out(h, E);
    char err[CB_ERR_LEN];
    PplResult a, b;
    EntropyResult ent;
    cr_assert_eq(eval_perplexity(&m, h, E, N, &a, err), CB_OK, "%s", err);
    cr_assert_eq(eval_perplexity_entropy(&m, h, E, N, N, K, &b, &ent, err), CB_OK, "%s", err);
    cr_assert(a.bpb == b.bpb && a.bpb_lo == b.bpb_lo, "bpb %.12g with the measurement, %.12g without", b.bpb, a.bpb);
    cr_assert(m.eval_entropy == NULL, "the model keeps the entropy buffer");
    cr_assert_eq(ent.windows, K, "measured %d windows, asked %d", ent.windows, K);
    /* recompute: windows floor(k W / K) for k = 0..K-1, mean over heads and the bucket's queries */
    int W = a.windows, NH = m.cfg.n_head;
    float *buf = malloc(sizeof(float) * NH * N), *loss = malloc(sizeof(float) * N);
    double sum[EVAL_MAX_BUCKETS] = {0};
    for (int k = 0; k < K; k++) {
        const uint8_t *in = h + (size_t)(k * W / K) * N;
        m.eval_entropy = buf;
        cr_assert_eq(model_eval_window(&m, in, in + 1, N, loss, NULL, err), CB_OK, "%s", err);
        m.eval_entropy = NULL;
        for (int bk = 0; bk < b.n_buckets; bk++)
            for (int hd = 0; hd < NH; hd++)
                for (int t = b.bucket_lo[bk]; t < b.bucket_hi[bk]; t++) sum[bk] += buf[hd * N + t];
    }
    for (int bk = 0; bk < b.n_buckets; bk++) {
        double want = sum[bk] / ((double)K * NH * (b.bucket_hi[bk] - b.bucket_lo[bk]));
        cr_expect(fabs(ent.nats[bk] - want) < 1e-9, "bucket %d: %.12g nats, recomputed %.12g", bk, ent.nats[bk], want);
        cr_expect(ent.nats[bk] >= 0.0 && ent.nats[bk] <= log((double)N), "bucket %d: %g nats", bk, ent.nats[bk]);
    }
    free(buf);
    free(loss);
    eval_entropy_free(&ent);
    /* asking for more windows than there are measures each once */
    cr_assert_eq(eval_perplexity_entropy(&m, h, E, N, N, 1000, &b, &ent, err), CB_OK, "%s", err);
    cr_expect_eq(ent.windows, W, "measured %d windows of %d", ent.windows, W);
    eval_entropy_free(&ent);
    model_free(&m);
}

Test(intervals, the_seed_interval_shrinks_as_seeds_are_added) {
    /* Synthetic per-seed values: a fixed mean plus seeded noise. */
    Rng rng;
    rng_seed(&rng, 11);
    double x[40];
    for (int i = 0; i < 40; i++) x[i] = 2.0 + 0.1 * rng_normal(&rng);
    double prev = INFINITY;
    int ks[] = {3, 5, 10, 20, 40};
    for (int j = 0; j < 5; j++) {
        double mean, lo, hi;
        eval_seed_interval(x, ks[j], &mean, &lo, &hi);
        cr_assert(lo < mean && mean < hi, "%d seeds: [%g, %g] around %g", ks[j], lo, hi, mean);
        cr_assert(hi - lo < prev, "%d seeds: width %g did not shrink from %g", ks[j], hi - lo, prev);
        prev = hi - lo;
    }
    double mean, lo, hi, one = 1.5;
    eval_seed_interval(&one, 1, &mean, &lo, &hi);
    cr_assert(mean == 1.5 && isnan(lo) && isnan(hi), "one seed: %g [%g, %g]", mean, lo, hi);
    cr_assert(fabs(eval_t975(1) - 12.706) < 1e-3 && fabs(eval_t975(100) - 1.984) < 2e-3,
              "t quantiles %g, %g", eval_t975(1), eval_t975(100));
}

Test(intervals, bootstrap_interval_of_a_constant_is_a_point_and_of_noise_covers_the_mean) {
    double c[10], x[200];
    for (int i = 0; i < 10; i++) c[i] = 3.25;
    double lo, hi;
    eval_bootstrap_mean(c, 10, 500, 1, &lo, &hi);
    cr_assert(lo == 3.25 && hi == 3.25, "constant: [%g, %g]", lo, hi);
    Rng rng;
    rng_seed(&rng, 2);
    double mean = 0;
    for (int i = 0; i < 200; i++) x[i] = rng_normal(&rng), mean += x[i] / 200;
    eval_bootstrap_mean(x, 200, 1000, 3, &lo, &hi);
    cr_assert(lo < mean && mean < hi && hi - lo < 0.4 && hi - lo > 0.15, "noise: [%g, %g] around %g", lo, hi, mean);
}

Test(passkey, an_untrained_model_scores_between_zero_and_one_and_repeats_for_a_seed) {
    Model m;
    tiny_model(&m, "alibi", 64);
    char err[CB_ERR_LEN];
    double depths[3] = {0.0, 0.5, 1.0}, a[3], b[3];
    cr_assert_eq(eval_passkey(&m, 160, depths, 3, 4, 9, a, err), CB_OK, "%s", err);
    cr_assert_eq(eval_passkey(&m, 160, depths, 3, 4, 9, b, err), CB_OK, "%s", err);
    for (int d = 0; d < 3; d++) {
        cr_assert(a[d] >= 0 && a[d] <= 1, "accuracy %g", a[d]);
        cr_assert(a[d] == b[d], "depth %g: %g then %g", depths[d], a[d], b[d]);
    }
    cr_assert_eq(eval_passkey(&m, 40, depths, 3, 4, 9, a, err), CB_EINPUT, "a 40-byte context was accepted");
    model_free(&m);
}

Test(passkey, a_training_batch_gets_about_its_share_of_episodes) {
    enum { B = 400, T = 128 };
    static uint8_t in[B * T], tg[B * T];
    memset(in, 'x', sizeof in);
    memset(tg, 'x', sizeof tg);
    Rng rng;
    rng_seed(&rng, 4);
    int k = passkey_mix_batch(&rng, 0.25, B, T, in, tg);
    cr_assert(k > 70 && k < 130, "%d of %d rows replaced at share 0.25", k, B);
    int rows = 0;
    for (int b = 0; b < B; b++) {
        const uint8_t *r = in + (size_t)b * T;
        if (memchr(r, '?', T)) {
            rows++;
            cr_assert(!memcmp(tg + (size_t)b * T, r + 1, T - 1), "row %d: targets are not inputs shifted", b);
        }
    }
    cr_assert_eq(rows, k, "%d rows hold a question, %d were replaced", rows, k);
    cr_assert_eq(passkey_mix_batch(&rng, 0.0, B, T, in, tg), 0, "share 0 replaced rows");
}
