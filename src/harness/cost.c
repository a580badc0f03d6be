/*
 * cost.c — the task "cost": repeated timings of the evaluation forward and of a training step in
 * the case's child, and the growth exponents fitted over a model's cost cases (see cost.h).
 */
#include "harness/cost.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "eval/eval.h"

/* ---- analytic FLOPs ---- */

/* 2 FLOPs (a multiply and an add) per weight of every GEMM per token: per layer the qkv (3C x C),
   attention projection (C x C) and the two MLP matrices (F x C, C x F), plus the tied output
   projection (V x C). Biases, layer norms, softmax, GELU and the encoding's own work are left out:
   they are O(n C) or O(n^2 NH), small next to the rest.
   Causal attention per layer: query t scores t + 1 keys, so QK^T takes C multiply-adds for each of
   the n(n+1)/2 (query, key) pairs summed over heads, and PV as many: 2 * C * n(n+1) ≈ 2 n^2 C. */
double cost_forward_flops(const ModelConfig *cfg, int n) {
    double C = cfg->d_model, F = (double)cfg->mlp_ratio * C, L = cfg->n_layer, N = n;
    double gemm_weights = L * (3 * C * C + C * C + 2 * F * C) + CB_VOCAB * C;
    return 2.0 * gemm_weights * N + L * 2.0 * C * N * (N + 1.0);
}

/* The backward takes about twice the forward: the gradients of the inputs and of the weights. */
double cost_train_flops(const ModelConfig *cfg, int n) { return 3.0 * cost_forward_flops(cfg, n); }

/* ---- measuring in the child ---- */

/* Resident bytes of this process now (second field of /proc/self/statm), -1 if unknown. */
static double rss_now(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size = 0, resident = 0;
    int ok = f && fscanf(f, "%lu %lu", &size, &resident) == 2;
    if (f) fclose(f);
    return ok ? (double)resident * (double)sysconf(_SC_PAGESIZE) : -1.0;
}

/* Peak resident bytes of this process so far (what wait4 reports for it at the end). */
static double rss_peak(void) {
    struct rusage ru;
    return getrusage(RUSAGE_SELF, &ru) ? -1.0 : (double)ru.ru_maxrss * 1024.0;
}

/* Times one forward (train = 0) or one training step at learning rate 0 (train = 1). */
static int timed_call(Model *m, const TrainConfig *tc, const uint8_t *text, int n, int train, float *losses,
                      double *secs, char *err) {
    double t0 = clock_now();
    int rc;
    if (train) {
        float loss, gnorm;
        rc = model_train_step(m, text, text + 1, 1, n, tc, 0.0, &loss, &gnorm, err);
    } else {
        rc = model_eval_window(m, text, text + 1, n, losses, NULL, err);
    }
    *secs = clock_now() - t0;
    return rc;
}

/* Warm-up runs, then the repetitions; writes the metrics "<prefix>_seconds" and those derived
   from it. */
static int time_phase(Model *m, const CostOptions *o, const TrainConfig *tc, const uint8_t *text, int n,
                      int train, float *losses, ChildMsg *out, char *err) {
    const char *prefix = train ? "train_step" : "eval";
    double secs[128], dt; /* a suite allows 100 repetitions */
    int reps = o->repeats < 128 ? o->repeats : 128, done = 0;
    double spent = 0.0;
    for (int i = 0; i < o->warmup + reps; i++) {
        if (o->budget > 0 && spent >= o->budget && (done > 0 || i < o->warmup)) {
            if (done > 0) break;
            i = o->warmup - 1; /* out of budget in the warm-up: go to the timed run */
            continue;
        }
        int rc = timed_call(m, tc, text, n, train, losses, &dt, err);
        if (rc) return rc;
        spent += dt;
        if (i >= o->warmup) secs[done++] = dt;
    }
    reps = done;
    double med = eval_median(secs, reps), lo = secs[0], hi = secs[reps - 1];
    double flops = train ? cost_train_flops(&m->cfg, n) : cost_forward_flops(&m->cfg, n);
    char name[48];
    snprintf(name, sizeof name, "%s_seconds", prefix);
    msg_metric_interval(out, name, med, lo, hi, reps, "s", NULL, 0);
    snprintf(name, sizeof name, "%s_tokens_per_s", prefix);
    msg_metric_interval(out, name, n / med, n / hi, n / lo, reps, "tokens/s", NULL, 0);
    snprintf(name, sizeof name, "%s_gflops", prefix);
    msg_metric_interval(out, name, flops / med * 1e-9, flops / hi * 1e-9, flops / lo * 1e-9, reps, "GFLOP/s", NULL,
                        0);
    snprintf(name, sizeof name, "%s_flops", prefix);
    msg_metric(out, name, flops, n, "FLOP", NULL, 0);
    return CB_OK;
}

int cost_measure(Model *m, const CostOptions *o, const TrainConfig *tc, const uint8_t *text, int n,
                 int time_train, ChildMsg *out, char *err) {
    float *losses = malloc((size_t)n * sizeof *losses);
    if (!losses) return cb_error(err, CB_ENOMEM, "cost: cannot allocate %d losses", n);
    double rss0 = rss_now();
    int rc = time_phase(m, o, tc, text, n, 0, losses, out, err);
    free(losses);
    if (rc) return rc;
    double peak = rss_peak();
    if (peak >= 0) msg_metric(out, "eval_peak_rss", peak, 1, "bytes", NULL, 0);
    if (rss0 >= 0 && peak >= 0) msg_metric(out, "eval_added_rss", fmax(peak - rss0, 0.0), 1, "bytes", NULL, 0);
    if (!time_train) return CB_OK;

    rc = time_phase(m, o, tc, text, n, 1, NULL, out, err);
    if (rc) {
        char why[CB_ERR_LEN];
        snprintf(why, sizeof why, "%s", err);
        return cb_error(err, rc, "training step at context %d: %s", n, why);
    }
    if (rss_peak() >= 0) msg_metric(out, "train_step_peak_rss", rss_peak(), 1, "bytes", NULL, 0);
    msg_metric(out, "train_step_act_bytes", (double)model_train_act_bytes(&m->cfg, 1, n), 1, "bytes", NULL, 0);
    return CB_OK;
}

/* ---- fitting in the parent ---- */

static void add_metric(ChildResult *r, const char *name, double value, double lo, double hi, int64_t count) {
    if (r->n_metrics >= CHILD_MAX_METRICS) return;
    size_t k = r->n_metrics++;
    snprintf(r->metric_names[k], sizeof r->metric_names[k], "%s", name);
    r->metric_units[k][0] = '\0';
    r->metrics[k] = (MetricRecord){.name = r->metric_names[k], .value = value, .lo = lo, .hi = hi,
                                   .count = count, .unit = r->metric_units[k]};
}

static void set_scalar(ChildResult *r, const char *key, double value) {
    if (r->n_scalars >= 32) return;
    snprintf(r->scalar_keys[r->n_scalars], sizeof r->scalar_keys[0], "%s", key);
    r->scalars[r->n_scalars++] = value;
}

/* A model's cost cases at every context of a suite, the training context included. */
#define CB_COST_MAX_POINTS 128

/* Fits metric `from` of the model's cost cases and adds `name` when there are 2 points or more.
   Points whose value is 0 (no measurable growth of the RSS at a small context) are left out; the
   metric's count says how many were fitted. Returns the number of points there were, or CB_EDB. */
static int fit_one(Store *st, int64_t run_id, int64_t model_id, const char *variant, const char *from,
                   const char *name, ChildResult *res, char *err) {
    double x[CB_COST_MAX_POINTS], y[CB_COST_MAX_POINTS];
    int n = 0, k = 0;
    int rc = store_metric_by_context(st, run_id, model_id, variant, "cost", from, x, y, CB_COST_MAX_POINTS, &n,
                                     err);
    if (rc) return rc;
    for (int i = 0; i < n; i++)
        if (y[i] > 0) x[k] = x[i], y[k] = y[i], k++;
    PowerFit f;
    char why[CB_ERR_LEN];
    if (k >= 2 && eval_fit_power(x, y, k, &f, why) == CB_OK)
        add_metric(res, name, f.exponent, f.exponent_lo, f.exponent_hi, k);
    return k;
}

int cost_fit(Store *st, int64_t run_id, int64_t model_id, const char *variant, ChildResult *res, char *err) {
    memset(res, 0, sizeof *res);
    res->wall_seconds = res->cpu_seconds = NAN;
    res->peak_rss = -1;
    set_scalar(res, "param_bytes", -1);
    set_scalar(res, "act_bytes", -1);
    set_scalar(res, "pe_state_bytes", -1);
    int k = fit_one(st, run_id, model_id, variant, "eval_seconds", "time_exponent", res, err);
    if (k < 0) return k;
    if (k < 2) {
        snprintf(res->status, sizeof res->status, "unsupported");
        snprintf(res->error, sizeof res->error, "no growth to fit: %d cost case%s succeeded, a fit needs 2", k,
                 k == 1 ? "" : "s");
        return CB_OK;
    }
    snprintf(res->status, sizeof res->status, "ok");
    int rc = fit_one(st, run_id, model_id, variant, "eval_added_rss", "memory_exponent", res, err);
    if (rc >= 0) rc = fit_one(st, run_id, model_id, variant, "train_step_seconds", "train_time_exponent", res, err);
    return rc < 0 ? rc : CB_OK;
}
