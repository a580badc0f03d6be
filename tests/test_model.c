/*
 * test_model.c — the transformer engine: finite-difference gradients of every layer and of the
 * whole model under every scheme, causality for every scheme, AdamW against a hand-computed step,
 * the learning-rate schedule, bit-identical repeat runs, OpenMP kernels against their serial twins,
 * and checkpoints.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "model/kernels.h"
#include "model/model.h"

static void fill(float *x, size_t n, Rng *rng, float scale) {
    for (size_t i = 0; i < n; i++) x[i] = scale * rng_normal(rng);
}

static double dot(const float *a, const float *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

/* Relative error with a floor, as in ggml's scale-free comparisons. */
static double rel_err(double a, double b) { return fabs(a - b) / fmax(1e-3, fmax(fabs(a), fabs(b))); }

/* ---- per-layer gradient checks: objective J = <w, out> with random w ---- */

Test(layers, layernorm_backward_matches_finite_differences) {
    enum { N = 3, C = 8 };
    Rng rng;
    rng_seed(&rng, 1);
    float x[N * C], w[C], b[C], out[N * C], wo[N * C], mean[N], rstd[N];
    fill(x, N * C, &rng, 1.0f), fill(w, C, &rng, 1.0f), fill(b, C, &rng, 1.0f), fill(wo, N * C, &rng, 1.0f);
    float dx[N * C] = {0}, dw[C] = {0}, db[C] = {0};
    layernorm_forward_naive(out, mean, rstd, x, w, b, N, C);
    layernorm_backward(dx, dw, db, wo, x, w, mean, rstd, N, C);
    float *targets[3] = {x, w, b}, *grads[3] = {dx, dw, db};
    size_t sizes[3] = {N * C, C, C};
    for (int t = 0; t < 3; t++)
        for (size_t i = 0; i < sizes[t]; i++) {
            float keep = targets[t][i], h = 1e-2f;
            targets[t][i] = keep + h;
            layernorm_forward_naive(out, mean, rstd, x, w, b, N, C);
            double jp = dot(out, wo, N * C);
            targets[t][i] = keep - h;
            layernorm_forward_naive(out, mean, rstd, x, w, b, N, C);
            double jm = dot(out, wo, N * C);
            targets[t][i] = keep;
            double fd = (jp - jm) / (2 * h);
            cr_assert(rel_err(fd, grads[t][i]) < 2e-2, "tensor %d index %zu: analytic %g, numeric %g", t, i,
                      grads[t][i], fd);
        }
}

Test(layers, matmul_backward_matches_finite_differences) {
    enum { N = 4, IC = 5, OC = 3 };
    Rng rng;
    rng_seed(&rng, 2);
    float x[N * IC], w[OC * IC], bias[OC], out[N * OC], wo[N * OC];
    fill(x, N * IC, &rng, 1.0f), fill(w, OC * IC, &rng, 1.0f), fill(bias, OC, &rng, 1.0f);
    fill(wo, N * OC, &rng, 1.0f);
    float dx[N * IC], dw[OC * IC] = {0}, db[OC] = {0};
    matmul_backward(dx, 0, dw, db, wo, x, w, N, IC, OC);
    float *targets[3] = {x, w, bias}, *grads[3] = {dx, dw, db};
    size_t sizes[3] = {N * IC, OC * IC, OC};
    for (int t = 0; t < 3; t++)
        for (size_t i = 0; i < sizes[t]; i++) {
            float keep = targets[t][i], h = 1e-2f;
            targets[t][i] = keep + h;
            matmul_forward(out, x, w, bias, N, IC, OC);
            double jp = dot(out, wo, N * OC);
            targets[t][i] = keep - h;
            matmul_forward(out, x, w, bias, N, IC, OC);
            double jm = dot(out, wo, N * OC);
            targets[t][i] = keep;
            double fd = (jp - jm) / (2 * h);
            cr_assert(rel_err(fd, grads[t][i]) < 1e-2, "tensor %d index %zu: analytic %g, numeric %g", t, i,
                      grads[t][i], fd);
        }
}

Test(layers, gelu_backward_matches_finite_differences) {
    enum { N = 16 };
    Rng rng;
    rng_seed(&rng, 3);
    float x[N], dy[N], dx[N], yp, ym;
    fill(x, N, &rng, 2.0f), fill(dy, N, &rng, 1.0f);
    gelu_backward(dx, x, dy, N);
    for (int i = 0; i < N; i++) {
        float h = 1e-2f, xp = x[i] + h, xm = x[i] - h;
        gelu_forward(&yp, &xp, 1);
        gelu_forward(&ym, &xm, 1);
        double fd = dy[i] * ((double)yp - ym) / (2 * h);
        cr_assert(rel_err(fd, dx[i]) < 1e-2, "x=%g: analytic %g, numeric %g", x[i], dx[i], fd);
    }
}

/* Training keeps GELU's derivative from the forward: the same bits as the reference pair, at one
   thread and two, over a range that reaches both saturations. */
Test(layers, gelu_training_pair_equals_the_reference_forward_and_backward) {
    enum { N = 4099 };
    static float x[N], dy[N], y_ref[N], dx_ref[N], y[N], deriv[N], dx[N];
    Rng rng;
    rng_seed(&rng, 4);
    fill(x, N, &rng, 6.0f), fill(dy, N, &rng, 1.0f);
    x[0] = 0.0f, x[1] = -40.0f, x[2] = 40.0f;
    gelu_forward(y_ref, x, N);
    gelu_backward(dx_ref, x, dy, N);
    for (int threads = 1; threads <= 2; threads++) {
        omp_set_num_threads(threads);
        memcpy(deriv, x, sizeof x);
        gelu_forward_train(y, deriv, N);
        gelu_backward_saved(dx, deriv, dy, N);
        for (int i = 0; i < N; i++) {
            cr_assert(y[i] == y_ref[i], "%d threads, x=%g: gelu %.9g, reference %.9g", threads, x[i], y[i], y_ref[i]);
            cr_assert(dx[i] == dx_ref[i], "%d threads, x=%g: gradient %.9g, reference %.9g", threads, x[i], dx[i],
                      dx_ref[i]);
        }
    }
    omp_set_num_threads(2);
}

Test(layers, attention_backward_matches_finite_differences_with_and_without_a_bias) {
    enum { B = 2, T = 5, C = 8, NH = 2 };
    const char *specs[] = {"nope", "alibi"};
    for (int s = 0; s < 2; s++) {
        char err[CB_ERR_LEN];
        PeModel pe;
        PeDims dims = {1, NH, C / NH, C, T};
        cr_assert_eq(pe_create(&pe, specs[s], &dims, err), CB_OK, "%s", err);
        cr_assert_eq(pe_prepare(&pe, T, err), CB_OK, "%s", err);
        Rng rng;
        rng_seed(&rng, 4);
        float qkv[B * T * 3 * C], out[B * T * C], att[B * NH * T * T], wo[B * T * C];
        float dqkv[B * T * 3 * C], ds[B * NH * T * T];
        fill(qkv, B * T * 3 * C, &rng, 1.0f), fill(wo, B * T * C, &rng, 1.0f);
        attention_forward(out, att, qkv, &pe, 0, B, T, C, NH);
        attention_backward(dqkv, ds, wo, qkv, att, &pe, 0, B, T, C, NH);
        for (size_t i = 0; i < B * T * 3 * C; i++) {
            float keep = qkv[i], h = 1e-2f;
            qkv[i] = keep + h;
            attention_forward(out, att, qkv, &pe, 0, B, T, C, NH);
            double jp = dot(out, wo, B * T * C);
            qkv[i] = keep - h;
            attention_forward(out, att, qkv, &pe, 0, B, T, C, NH);
            double jm = dot(out, wo, B * T * C);
            qkv[i] = keep;
            double fd = (jp - jm) / (2 * h);
            cr_assert(rel_err(fd, dqkv[i]) < 2e-2, "%s: qkv[%zu]: analytic %g, numeric %g", specs[s], i,
                      dqkv[i], fd);
        }
        pe_destroy(&pe);
    }
}

Test(layers, crossentropy_backward_is_softmax_minus_onehot) {
    enum { N = 2, V = 6 };
    float logits[N * V] = {0.1f, -1, 2, 0.5f, 0, 1, 3, 2, 1, 0, -1, -2}, probs[N * V], losses[N];
    unsigned char targets[N] = {2, 4};
    crossentropy_forward(probs, losses, logits, targets, N, V);
    for (int n = 0; n < N; n++) {
        double s = 0;
        for (int v = 0; v < V; v++) s += exp(logits[n * V + v]);
        double expect = -(logits[n * V + targets[n]] - log(s));
        cr_assert(fabs(losses[n] - expect) < 1e-5, "row %d: loss %g, expected %g", n, losses[n], expect);
    }
    float p4 = probs[4];
    crossentropy_backward(probs, targets, N, V, 0.5f);
    cr_assert(fabs(probs[4] - 0.5f * p4) < 1e-7, "non-target gradient %g, expected %g", probs[4], 0.5f * p4);
    cr_assert(probs[2] < 0, "target gradient %g should be negative", probs[2]);
}

/* ---- whole model ---- */

static ModelConfig tiny_config(int T) {
    return (ModelConfig){.n_layer = 2, .d_model = 16, .n_head = 2, .mlp_ratio = 2, .train_ctx = T};
}

static void random_bytes(uint8_t *b, size_t n, uint64_t seed) {
    Rng rng;
    rng_seed(&rng, seed);
    for (size_t i = 0; i < n; i++) b[i] = (uint8_t)(97 + rng_below(&rng, 8));
}

/* Sets a random nonzero value on every parameter so that encoding parameters initialised to
   zero (and biases) carry gradient through every path. */
static void jitter_params(Model *m, uint64_t seed) {
    Rng rng;
    rng_seed(&rng, seed);
    for (size_t i = 0; i < m->n_params; i++) m->params[i] += 0.05f * rng_normal(&rng);
}

/* Indices of the k largest |g| entries in [lo, hi). */
static int top_entries(const float *g, size_t lo, size_t hi, int k, size_t *out) {
    int n = 0;
    for (size_t i = lo; i < hi; i++) {
        int pos = n < k ? n++ : k;
        if (pos == k && fabsf(g[i]) <= fabsf(g[out[k - 1]])) continue;
        if (pos == k) pos = k - 1;
        while (pos > 0 && fabsf(g[out[pos - 1]]) < fabsf(g[i])) out[pos] = out[pos - 1], pos--;
        out[pos] = i;
    }
    return n;
}

static double loss_at(Model *m, size_t i, float value, const uint8_t *in, const uint8_t *tg, int B, int T) {
    char err[CB_ERR_LEN];
    float keep = m->params[i], loss;
    m->params[i] = value;
    model_loss_and_grad(m, in, tg, B, T, &loss, err);
    m->params[i] = keep;
    return loss;
}

Test(model, gradient_of_every_scheme_matches_finite_differences) {
    enum { B = 2, T = 8, NT = sizeof(ParamTensors) / sizeof(float *) };
    uint8_t in[B * T], tg[B * T];
    random_bytes(in, B * T, 5);
    random_bytes(tg, B * T, 6);
    for (const PeScheme *const *s = pe_all(); *s; s++) {
        char err[CB_ERR_LEN];
        Model m;
        ModelConfig cfg = tiny_config(T);
        cr_assert_eq(model_build(&m, &cfg, (*s)->name, 7, err), CB_OK, "%s: %s", (*s)->name, err);
        jitter_params(&m, 8);
        float loss;
        cr_assert_eq(model_loss_and_grad(&m, in, tg, B, T, &loss, err), CB_OK, "%s", err);
        float *g = malloc(sizeof(float) * m.n_params);
        memcpy(g, m.grads, sizeof(float) * m.n_params);
        /* Every tensor (each third of qkvw separately): its largest gradients, where a wrong
           factor shows, must match central differences. */
        float **tensors = (float **)&m.p;
        int checked = 0;
        for (int t = 0; t < NT; t++) {
            size_t lo = (size_t)(tensors[t] - m.params);
            size_t hi = t + 1 < NT ? (size_t)(tensors[t + 1] - m.params) : m.n_params;
            int parts = tensors[t] == m.p.qkvw ? 3 * cfg.n_layer : 1;
            for (int part = 0; part < parts; part++) {
                size_t plo = lo + (hi - lo) * part / parts, phi = lo + (hi - lo) * (part + 1) / parts;
                size_t idx[3];
                int n = top_entries(g, plo, phi, 3, idx);
                for (int k = 0; k < n; k++) {
                    size_t i = idx[k];
                    float h = 1e-2f;
                    double fd = (loss_at(&m, i, m.params[i] + h, in, tg, B, T) -
                                 loss_at(&m, i, m.params[i] - h, in, tg, B, T)) / (2 * h);
                    if (fabs(g[i]) < 1e-5) continue;
                    checked++;
                    cr_assert(fabs(fd - g[i]) <= 2e-4 + 2e-2 * fabs(fd),
                              "%s: tensor %d part %d entry %zu: analytic %g, numeric %g", (*s)->name, t, part,
                              i - lo, g[i], fd);
                }
            }
        }
        cr_assert(checked >= 25, "%s: only %d gradient entries were large enough to check", (*s)->name, checked);
        free(g);
        model_free(&m);
    }
}

/* Training at two threads splits the batch into two shards of sequences with their own gradient
   blocks, summed afterwards; one thread runs the whole batch as one. Same loss and gradients up to
   the order of float sums, for every scheme, with an odd batch (unequal shards). */
Test(model, batch_shards_at_two_threads_give_the_one_thread_gradients) {
    enum { B = 3, T = 12 };
    uint8_t in[B * T], tg[B * T];
    random_bytes(in, B * T, 21);
    random_bytes(tg, B * T, 22);
    for (const PeScheme *const *s = pe_all(); *s; s++) {
        char err[CB_ERR_LEN];
        float *g[2] = {NULL, NULL}, loss[2];
        size_t np = 0;
        for (int threads = 1; threads <= 2; threads++) {
            omp_set_num_threads(threads);
            Model m;
            ModelConfig cfg = tiny_config(T);
            cr_assert_eq(model_build(&m, &cfg, (*s)->name, 31, err), CB_OK, "%s: %s", (*s)->name, err);
            jitter_params(&m, 32);
            cr_assert_eq(model_loss_and_grad(&m, in, tg, B, T, &loss[threads - 1], err), CB_OK, "%s: %s",
                         (*s)->name, err);
            cr_assert_eq(m.n_shards, threads, "%s: %d shards at %d threads", (*s)->name, m.n_shards, threads);
            np = m.n_params;
            g[threads - 1] = malloc(sizeof(float) * np);
            memcpy(g[threads - 1], m.grads, sizeof(float) * np);
            model_free(&m);
        }
        cr_assert(fabsf(loss[0] - loss[1]) <= 1e-6f * fabsf(loss[0]), "%s: loss %.9g at 1 thread, %.9g at 2",
                  (*s)->name, loss[0], loss[1]);
        double num = 0, den = 0;
        for (size_t i = 0; i < np; i++) {
            double d = (double)g[0][i] - g[1][i];
            num += d * d;
            den += (double)g[0][i] * g[0][i];
        }
        cr_assert(den > 0 && num / den < 1e-10, "%s: gradients differ: squared error / squared norm = %g",
                  (*s)->name, den > 0 ? num / den : -1.0);
        free(g[0]), free(g[1]);
    }
    omp_set_num_threads(2);
}

/* The gradient norm is summed in the same pass as the shards' gradients: at one thread and two it
   is the norm of the gradient the step leaves in m.grads. */
Test(model, the_step_reports_the_norm_of_the_summed_gradient) {
    enum { B = 3, T = 12 };
    uint8_t in[B * T], tg[B * T];
    random_bytes(in, B * T, 23);
    random_bytes(tg, B * T, 24);
    TrainConfig tc = {.steps = 10, .batch = B, .lr = 1e-3, .min_lr_ratio = 0.1, .weight_decay = 0.1,
                      .beta1 = 0.9, .beta2 = 0.95, .eps = 1e-8, .grad_clip = 1e9};
    for (int threads = 1; threads <= 2; threads++) {
        omp_set_num_threads(threads);
        char err[CB_ERR_LEN];
        Model m;
        ModelConfig cfg = tiny_config(T);
        cr_assert_eq(model_build(&m, &cfg, "t5", 33, err), CB_OK, "%s", err);
        float loss, gn;
        cr_assert_eq(model_train_step(&m, in, tg, B, T, &tc, 1e-3, &loss, &gn, err), CB_OK, "%s", err);
        double sq = 0;
        for (size_t i = 0; i < m.n_params; i++) sq += (double)m.grads[i] * m.grads[i];
        cr_assert(fabs(gn - sqrt(sq)) <= 1e-6 * sqrt(sq), "%d threads: reported norm %.9g, norm of m.grads %.9g",
                  threads, gn, sqrt(sq));
        model_free(&m);
    }
    omp_set_num_threads(2);
}

Test(model, every_scheme_is_causal_later_bytes_leave_earlier_logits_unchanged) {
    enum { T = 24, CUT = 11 };
    for (const PeScheme *const *s = pe_all(); *s; s++) {
        char err[CB_ERR_LEN];
        Model m;
        ModelConfig cfg = tiny_config(T);
        cr_assert_eq(model_build(&m, &cfg, (*s)->name, 11, err), CB_OK, "%s: %s", (*s)->name, err);
        jitter_params(&m, 12);
        uint8_t a[T + 1], b[T + 1];
        random_bytes(a, T + 1, 13);
        memcpy(b, a, sizeof a);
        for (int t = CUT + 1; t <= T; t++) b[t] = (uint8_t)(b[t] ^ 0x55);
        float *la = malloc(sizeof(float) * T * CB_VOCAB), *lb = malloc(sizeof(float) * T * CB_VOCAB);
        cr_assert_eq(model_eval_window(&m, a, a + 1, T, NULL, la, err), CB_OK, "%s", err);
        cr_assert_eq(model_eval_window(&m, b, b + 1, T, NULL, lb, err), CB_OK, "%s", err);
        for (int t = 0; t <= CUT; t++)
            for (int v = 0; v < CB_VOCAB; v++)
                cr_assert(fabsf(la[t * CB_VOCAB + v] - lb[t * CB_VOCAB + v]) <= 1e-6f * (1 + fabsf(la[t * CB_VOCAB + v])),
                          "%s: logit (%d, %d) changed from %g to %g", (*s)->name, t, v, la[t * CB_VOCAB + v],
                          lb[t * CB_VOCAB + v]);
        double diff = 0;
        for (int v = 0; v < CB_VOCAB; v++) diff += fabsf(la[(CUT + 1) * CB_VOCAB + v] - lb[(CUT + 1) * CB_VOCAB + v]);
        cr_assert(diff > 0, "%s: the changed byte at %d did not change its own logits", (*s)->name, CUT + 1);
        free(la);
        free(lb);
        model_free(&m);
    }
}

Test(model, evaluation_forward_agrees_with_the_training_forward) {
    enum { T = 16 };
    for (const PeScheme *const *s = pe_all(); *s; s++) {
        char err[CB_ERR_LEN];
        Model m;
        ModelConfig cfg = tiny_config(T);
        cr_assert_eq(model_build(&m, &cfg, (*s)->name, 14, err), CB_OK, "%s", err);
        jitter_params(&m, 15);
        uint8_t x[T + 1];
        random_bytes(x, T + 1, 16);
        float train_loss, losses[T];
        cr_assert_eq(model_loss_and_grad(&m, x, x + 1, 1, T, &train_loss, err), CB_OK, "%s", err);
        cr_assert_eq(model_eval_window(&m, x, x + 1, T, losses, NULL, err), CB_OK, "%s", err);
        double mean = 0;
        for (int t = 0; t < T; t++) mean += losses[t] / T;
        cr_assert(fabs(mean - train_loss) < 1e-4, "%s: eval loss %g, training loss %g", (*s)->name, mean, train_loss);
        model_free(&m);
    }
}

Test(model, adamw_first_step_matches_a_hand_computed_update) {
    enum { B = 2, T = 8 };
    char err[CB_ERR_LEN];
    Model m;
    ModelConfig cfg = tiny_config(T);
    cr_assert_eq(model_build(&m, &cfg, "t5", 17, err), CB_OK, "%s", err);
    uint8_t in[B * T], tg[B * T];
    random_bytes(in, B * T, 18);
    random_bytes(tg, B * T, 19);
    float loss, gn;
    cr_assert_eq(model_loss_and_grad(&m, in, tg, B, T, &loss, err), CB_OK, "%s", err);
    float *p0 = malloc(sizeof(float) * m.n_params), *g0 = malloc(sizeof(float) * m.n_params);
    memcpy(p0, m.params, sizeof(float) * m.n_params);
    memcpy(g0, m.grads, sizeof(float) * m.n_params);
    TrainConfig tc = {.steps = 10, .batch = B, .warmup = 0, .lr = 0.01, .min_lr_ratio = 0.1,
                      .weight_decay = 0.1, .beta1 = 0.9, .beta2 = 0.95, .eps = 1e-8, .grad_clip = 0};
    cr_assert_eq(model_train_step(&m, in, tg, B, T, &tc, 0.01, &loss, &gn, err), CB_OK, "%s", err);
    /* Step 1: m_hat = g, v_hat = g^2, so p' = p - lr (g / (|g| + eps) + wd p) where decay applies. */
    size_t wte0 = 0, ln1w0 = (size_t)(m.p.ln1w - m.params), pe0 = (size_t)(m.p.pe - m.params);
    size_t probes[3] = {wte0 + 5, ln1w0 + 3, pe0 + 2};
    float wd[3] = {0.1f, 0.0f, 0.0f}; /* wte decays; layer-norm weights and T5's table do not */
    for (int k = 0; k < 3; k++) {
        size_t i = probes[k];
        double g = g0[i], p = p0[i];
        double expect = p - 0.01 * (g / (fabs(g) + 1e-8) + wd[k] * p);
        cr_assert(fabs(m.params[i] - expect) < 1e-6, "parameter %zu: got %.9g, expected %.9g", i, m.params[i], expect);
    }
    free(p0);
    free(g0);
    model_free(&m);
}

Test(model, learning_rate_warms_up_linearly_then_decays_by_cosine) {
    TrainConfig tc = {.steps = 110, .warmup = 10, .lr = 1.0, .min_lr_ratio = 0.1};
    cr_assert(fabs(train_lr_at(&tc, 0) - 0.1) < 1e-12, "step 0: %g", train_lr_at(&tc, 0));
    cr_assert(fabs(train_lr_at(&tc, 9) - 1.0) < 1e-12, "step 9: %g", train_lr_at(&tc, 9));
    cr_assert(fabs(train_lr_at(&tc, 10) - 1.0) < 1e-12, "step 10: %g", train_lr_at(&tc, 10));
    double mid = train_lr_at(&tc, 10 + 99 / 2.0 > 59 ? 59 : 59);
    cr_assert(mid < 1.0 && mid > 0.1, "middle of decay: %g", mid);
    cr_assert(fabs(train_lr_at(&tc, 109) - 0.1) < 1e-12, "last step: %g", train_lr_at(&tc, 109));
}

static void train_few_steps(const char *spec, float *params_out, size_t *n_out) {
    enum { B = 4, T = 16 };
    char err[CB_ERR_LEN];
    Model m;
    ModelConfig cfg = tiny_config(T);
    cr_assert_eq(model_build(&m, &cfg, spec, 21, err), CB_OK, "%s", err);
    TrainConfig tc = {.steps = 5, .batch = B, .warmup = 2, .lr = 3e-3, .min_lr_ratio = 0.1,
                      .weight_decay = 0.1, .beta1 = 0.9, .beta2 = 0.95, .eps = 1e-8, .grad_clip = 1.0};
    uint8_t in[B * T], tg[B * T];
    for (int s = 0; s < tc.steps; s++) {
        random_bytes(in, B * T, 100 + s);
        random_bytes(tg, B * T, 200 + s);
        float loss, gn;
        cr_assert_eq(model_train_step(&m, in, tg, B, T, &tc, train_lr_at(&tc, s), &loss, &gn, err), CB_OK, "%s", err);
    }
    memcpy(params_out, m.params, sizeof(float) * m.n_params);
    *n_out = m.n_params;
    model_free(&m);
}

Test(model, same_seed_and_threads_give_bit_identical_parameters) {
    static float a[200000], b[200000];
    size_t na, nb;
    omp_set_num_threads(2);
    train_few_steps("rope", a, &na);
    train_few_steps("rope", b, &nb);
    cr_assert_eq(na, nb, "parameter counts %zu and %zu", na, nb);
    cr_assert(memcmp(a, b, na * sizeof(float)) == 0, "two runs with the same seed differ");
}

/* Long inputs go through matmul_forward in one band of rows per thread, each its own sgemm: the
   output of one sgemm over all rows (one thread), bias or not, bands of unequal length, up to the
   order of the sums (OpenBLAS picks its kernel by shape; 7 is about the size of a sum of 48
   products of unit normals). */
Test(kernels, matmul_forward_in_bands_of_rows_equals_one_product) {
    enum { N = 1001, IC = 48, OC = 40 };
    static float x[N * IC], w[OC * IC], b[OC], y1[N * OC], y2[N * OC];
    Rng rng;
    rng_seed(&rng, 25);
    fill(x, N * IC, &rng, 1), fill(w, OC * IC, &rng, 1), fill(b, OC, &rng, 1);
    for (int with_bias = 0; with_bias <= 1; with_bias++) {
        omp_set_num_threads(1);
        matmul_forward(y1, x, w, with_bias ? b : NULL, N, IC, OC);
        omp_set_num_threads(2);
        matmul_forward(y2, x, w, with_bias ? b : NULL, N, IC, OC);
        for (int i = 0; i < N * OC; i++)
            cr_assert(fabsf(y1[i] - y2[i]) <= 1e-5f * (fabsf(y1[i]) + 7.0f), "bias %d, [%d]: %.9g at 1 thread, %.9g at 2",
                      with_bias, i, y1[i], y2[i]);
    }
}

Test(kernels, openmp_kernels_equal_their_serial_twins_at_one_and_two_threads) {
    enum { B = 2, T = 33, C = 16, NH = 4 };
    Rng rng;
    rng_seed(&rng, 22);
    static float x[B * T * C], w[C], bb[C], o1[B * T * C], o2[B * T * C], m1[B * T], r1[B * T], m2[B * T], r2[B * T];
    static float qkv[B * T * 3 * C], a1[B * NH * T * T], a2[B * NH * T * T], y1[B * T * C], y2[B * T * C];
    fill(x, B * T * C, &rng, 1), fill(w, C, &rng, 1), fill(bb, C, &rng, 1), fill(qkv, B * T * 3 * C, &rng, 1);
    char err[CB_ERR_LEN];
    PeModel pe;
    PeDims dims = {1, NH, C / NH, C, T};
    cr_assert_eq(pe_create(&pe, "alibi", &dims, err), CB_OK, "%s", err);
    cr_assert_eq(pe_prepare(&pe, T, err), CB_OK, "%s", err);
    layernorm_forward_naive(o1, m1, r1, x, w, bb, B * T, C);
    /* The blocked attention is checked against its naive twin in test_attention.c; here it must
       give the same bits at one and two threads. */
    static float y3[B * T * C], a3[B * NH * T * T];
    for (int threads = 1; threads <= 2; threads++) {
        omp_set_num_threads(threads);
        layernorm_forward(o2, m2, r2, x, w, bb, B * T, C);
        attention_forward(threads == 1 ? y1 : y2, threads == 1 ? a1 : a2, qkv, &pe, 0, B, T, C, NH);
        cr_assert(!memcmp(o1, o2, sizeof o1), "layernorm differs at %d threads", threads);
        if (threads == 2)
            cr_assert(!memcmp(y1, y2, sizeof y1) && !memcmp(a1, a2, sizeof a1), "attention differs at 2 threads");
        attention_forward_naive(y3, a3, qkv, &pe, 0, B, T, C, NH);
        for (int i = 0; i < B * T * C; i++)
            cr_assert(fabsf(y3[i] - y1[i]) < 2e-6f, "attention_forward[%d] = %g, naive %g", i, y1[i], y3[i]);
        /* The streaming evaluation kernel agrees with the training kernel on one sequence. */
        float *scratch = malloc(sizeof(float) * attention_eval_scratch_floats(&pe, 0, T, C, NH, 0, CB_ATT_BQ, CB_ATT_BK,
                                                                             omp_get_max_threads()));
        attention_eval(y2, NULL, scratch, qkv, NULL, &pe, 0, T, C, NH);
        for (int i = 0; i < T * C; i++)
            cr_assert(fabsf(y2[i] - y1[i]) < 2e-6f, "attention_eval[%d] = %g, training kernel %g", i, y2[i], y1[i]);
        free(scratch);
    }
    pe_destroy(&pe);
}

Test(model, checkpoint_round_trip_gives_identical_losses) {
    enum { T = 16 };
    char err[CB_ERR_LEN];
    Model m, r;
    ModelConfig cfg = tiny_config(T);
    cr_assert_eq(model_build(&m, &cfg, "learned", 23, err), CB_OK, "%s", err);
    jitter_params(&m, 24);
    uint8_t *blob;
    size_t size;
    cr_assert_eq(model_save(&m, "learned", &blob, &size, err), CB_OK, "%s", err);
    cr_assert_eq(model_load(&r, blob, size, NULL, err), CB_OK, "%s", err);
    uint8_t x[T + 1];
    random_bytes(x, T + 1, 25);
    float l1[T], l2[T];
    model_eval_window(&m, x, x + 1, T, l1, NULL, err);
    model_eval_window(&r, x, x + 1, T, l2, NULL, err);
    cr_assert(!memcmp(l1, l2, sizeof l1), "losses differ after a checkpoint round trip");
    model_free(&r);
    blob[0] = 'X';
    cr_assert_eq(model_load(&r, blob, size, NULL, err), CB_EINPUT, "a corrupt checkpoint was accepted");
    free(blob);
    model_free(&m);
}

Test(model, bad_configurations_are_refused_with_a_message) {
    char err[CB_ERR_LEN] = "";
    Model m;
    ModelConfig cfg = {.n_layer = 1, .d_model = 10, .n_head = 3, .mlp_ratio = 2, .train_ctx = 8};
    cr_assert_eq(model_build(&m, &cfg, "nope", 1, err), CB_EINPUT);
    cr_assert(strstr(err, "divisible"), "message: %s", err);
    cfg.n_head = 2;
    cr_assert_eq(model_build(&m, &cfg, "nope", 1, err), CB_EINPUT, "head size 5 accepted");
    cfg = tiny_config(8);
    cr_assert_eq(model_build(&m, &cfg, "no-such-scheme", 1, err), CB_EINPUT, "unknown scheme accepted");
}
