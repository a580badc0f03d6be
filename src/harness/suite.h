/*
 * suite.h — suite files (INI, parsed with inih) and their expansion into a grid of cases.
 *
 * A key holding a list ("contexts = 128, 256, 512", or a range "128-2048*2") spans a grid.
 * Every error is one line "FILE:LINE: [section] key: what is wrong", status CB_EINPUT.
 *
 *   [suite]   name, seeds (list), threads
 *   [corpus]  source, eval_bytes
 *   [model]   layers, d_model, heads, mlp_ratio            (each may be a list)
 *   [train]   context, steps, batch, lr, warmup, min_lr_ratio, weight_decay, grad_clip,
 *             beta1, beta2                                    (each may be a list)
 *   [eval]    contexts (list), schemes (list of spec strings), tasks (list: perplexity, passkey, cost),
 *             stride_divisors (list k: perplexity stride n/k, 1 = non-overlapping),
 *             passkey_depths (list in [0, 1]), passkey_trials
 *   [train]   ... passkey_share (share of training windows that are passkey episodes),
 *             precision (fp32 | bf16: operands of the linear layers' training GEMMs; one value)
 *   [limits]  time (wall seconds, a number > 0), memory (MiB): per child process, absent = none
 *   [cost]    repeats, warmup, train_limit: timings of the task "cost" (see harness/cost.h)
 *
 * Integer lists accept ranges: "A-B" (step 1), "A-B+K" (step add K), "A-B*K" (multiply by K).
 * A long list continues on indented lines. In a scheme list an item "k=v" continues the spec
 * before it, so "rope:base=1e6,fraction=0.5, alibi" is two specs. Lists keep the order written;
 * absent contexts default to L, 2L, 4L, 8L, 16L for every training context L (ascending).
 */
#ifndef CB_SUITE_H
#define CB_SUITE_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"
#include "model/model.h"

#define SUITE_MAX_LIST 64
/* suite_expand refuses grids larger than these (CB_EINPUT) instead of allocating them. */
#define SUITE_MAX_EXPERIMENTS ((size_t)1 << 20)
#define SUITE_MAX_CASES ((size_t)1 << 24)

typedef struct {
    char path[512];
    char *text;          /* the whole file, owned */
    char sha256[65];
    char name[64];
    uint64_t seeds[SUITE_MAX_LIST];
    int n_seeds;
    int threads;         /* 0 = not set */

    char corpus_source[512];
    size_t eval_bytes;

    /* Grids of model and training settings: n_x values each. */
    int layers[SUITE_MAX_LIST], n_layers;
    int d_model[SUITE_MAX_LIST], n_d_model;
    int heads[SUITE_MAX_LIST], n_heads;
    int mlp_ratio[SUITE_MAX_LIST], n_mlp_ratio;
    int train_ctx[SUITE_MAX_LIST], n_train_ctx;
    int steps[SUITE_MAX_LIST], n_steps;
    int batch[SUITE_MAX_LIST], n_batch;
    int warmup[SUITE_MAX_LIST], n_warmup;
    double lr[SUITE_MAX_LIST]; int n_lr;
    double min_lr_ratio[SUITE_MAX_LIST]; int n_min_lr_ratio;
    double weight_decay[SUITE_MAX_LIST]; int n_weight_decay;
    double grad_clip[SUITE_MAX_LIST]; int n_grad_clip;
    double beta1[SUITE_MAX_LIST]; int n_beta1;
    double beta2[SUITE_MAX_LIST]; int n_beta2;

    int contexts[SUITE_MAX_LIST], n_contexts;
    char schemes[SUITE_MAX_LIST][128];
    int n_schemes;
    char tasks[8][32];
    int n_tasks;
    int stride_divisors[SUITE_MAX_LIST], n_stride_divisors; /* perplexity stride n / k */
    double passkey_depths[SUITE_MAX_LIST]; int n_passkey_depths;
    int passkey_trials;
    double passkey_share;    /* [train] share of windows replaced by passkey episodes */
    int precision;           /* [train] Precision of the training GEMMs, CB_PRECISION_FP32 by default */

    /* [limits], applied to every child process (a model's training, each case); 0 = none. */
    double time_limit;       /* wall-clock seconds */
    size_t memory_limit_mb;  /* MiB of address space the child may add (see runner.h) */
    double compare_threshold; /* [compare] threshold: relative change flagged by compare; 0 = unset */

    /* [cost], for the task "cost": timed repetitions after warm-up runs, and the largest context
       at which a training step (batch 1) is timed as well (0 = never). */
    int cost_repeats;        /* 1..100, default 5 */
    int cost_warmup;         /* 0..10, default 1 */
    int cost_train_limit;    /* 0..CB_MAX_CONTEXT, default 8192 */
    double cost_budget;      /* seconds of timed runs per phase before repeating stops; 0 = none */
} Suite;

/* One model to train: a point of the model/train grid, a scheme and a seed. Specs naming an
   eval-time variant ("rope+pi") share the experiment of their base spec ("rope"). */
typedef struct {
    ModelConfig model;
    TrainConfig train;
    char scheme[128];  /* the trained spec as written (an eval-time variant's base spec) */
    uint64_t seed;
    int group;         /* index of its scheme among the suite's distinct trained specs */
} Experiment;

/* One point of the full grid: an experiment evaluated with one task at one context. */
typedef struct {
    int experiment;    /* index into the experiment list */
    char variant[128]; /* eval-time variant spec ("rope+yarn:factor=auto"), "" = the trained scheme */
    char task[32];
    int context;
} Case;

/* Reads and validates the suite (including scheme specs and the corpus source's syntax). */
int suite_load(Suite *s, const char *path, char *err);
/* Same from a string; `path` names it in messages. */
int suite_load_string(Suite *s, const char *path, const char *text, char *err);
void suite_free(Suite *s);

/* Expands the grid. Experiments vary slowest; within one, tasks then contexts ascending, with the
   training context always included first so ratios to it can be computed. The task "cost" is
   followed by one case of task "cost_fit" (context 0) that fits its growth exponents over the cost
   cases before it (same experiment and variant). Caller frees both.
   Experiment order, outermost first: layers, d_model, heads, mlp_ratio, context, steps, batch,
   warmup, lr, min_lr_ratio, weight_decay, grad_clip, beta1, beta2, scheme, seed (seeds of one
   configuration sit next to each other). Grids past SUITE_MAX_EXPERIMENTS / SUITE_MAX_CASES are
   refused with CB_EINPUT before anything is allocated; *exps and *cases are NULL on error. */
int suite_expand(const Suite *s, Experiment **exps, size_t *n_exps, Case **cases, size_t *n_cases,
                 char *err);

#endif
