/*
 * cost.h — the task "cost": how long one evaluation forward pass, and up to a limit one training
 * step, takes at context n, and how time and memory grow with n.
 *
 * In the case's child (cost_measure): warm-up runs, then R timed repetitions of model_eval_window
 * over the first n bytes of the held-out text (median, min, max); then the same for
 * model_train_step at batch 1 and context n when the caller asks for it. In the parent, once the
 * cost cases of one model and evaluation spec are stored (cost_fit): least-squares fits of
 * log(cost) = a + b log(n) over its ok cases, whose slopes b are the growth exponents.
 *
 * Metrics of a cost case (timings: value = median, lo = min, hi = max over the R repetitions):
 *   eval_seconds, eval_tokens_per_s, eval_gflops (achieved, from the analytic FLOPs), eval_flops
 *   (analytic FLOPs of one forward), eval_peak_rss (peak RSS of the child after the timings),
 *   eval_added_rss (that peak less the RSS before the first forward: what the forward adds);
 *   train_step_seconds, _tokens_per_s, _gflops, _flops, _peak_rss, _act_bytes when timed.
 * Metrics of a cost_fit case: time_exponent (of eval_seconds), memory_exponent (of eval_added_rss),
 * train_time_exponent (of train_step_seconds), each with its 95% interval in lo/hi and the number
 * of contexts fitted in count.
 */
#ifndef CB_COST_H
#define CB_COST_H

#include <stdint.h>

#include "harness/child.h"
#include "model/model.h"
#include "store/store.h"

typedef struct {
    int repeats; /* timed repetitions, >= 1 */
    int warmup;  /* untimed runs before them, >= 0 */
    double budget; /* > 0: no new run once the phase's runs have used this many seconds and at
                      least one timed run is done (warm-ups count); 0: no limit */
} CostOptions;

/* Analytic model FLOPs of one evaluation forward over n tokens, and of one training step (forward
   and backward) at batch 1 and context n. */
double cost_forward_flops(const ModelConfig *cfg, int n);
double cost_train_flops(const ModelConfig *cfg, int n);

/* Times the forward over text[0..n) predicting text[1..n] (text holds n + 1 bytes) and, if
   time_train, a training step on the same bytes, writing the metrics above to out. The training
   step runs at learning rate 0, so the same work leaves the weights as they were. m must be
   prepared for n. Returns the first failing call's status with err; out is then incomplete. */
int cost_measure(Model *m, const CostOptions *o, const TrainConfig *tc, const uint8_t *text, int n,
                 int time_train, ChildMsg *out, char *err);

/* Fits the growth exponents of the cost cases of run run_id, model model_id and variant (as stored,
   "" for none) from the database into res, as a child's result: status "ok" with the metrics, or
   "unsupported" when fewer than 2 cost cases succeeded. Time and sizes are marked not measured
   (NaN, -1). Store errors: CB_EDB with err. */
int cost_fit(Store *st, int64_t run_id, int64_t model_id, const char *variant, ChildResult *res, char *err);

#endif
