/*
 * model.h — a byte-level decoder-only pre-norm transformer with tied embeddings, its forward and
 * backward passes, and AdamW.
 *
 * Dimension letters, used in every shape comment:
 *   B batch, T context, C width (d_model), NH heads, HS head size (C / NH),
 *   L layers, V vocabulary (256 bytes), F MLP width (mlp_ratio * C), P encoding parameters.
 *
 * Parameters, gradients, AdamW moments and activations each live in one contiguous block.
 * One X-macro (CB_PARAM_TENSORS) lists the parameter tensors: it feeds sizes, pointers, names,
 * weight-decay flags and the checkpoint format.
 */
#ifndef CB_MODEL_H
#define CB_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"
#include "pe/pe.h"

#define CB_VOCAB 256

/* Precision of the training GEMMs of the linear layers (forward and both backward products; the
   attention GEMMs stay fp32). Parameters, gradients, AdamW and evaluation are fp32 either way. */
typedef enum {
    CB_PRECISION_FP32 = 0,
    CB_PRECISION_BF16 = 1, /* operands rounded to bf16, fp32 accumulation (kernels.h) */
} Precision;

static inline const char *precision_name(int p) { return p == CB_PRECISION_BF16 ? "bf16" : "fp32"; }

typedef struct {
    int n_layer;   /* L */
    int d_model;   /* C */
    int n_head;    /* NH */
    int mlp_ratio; /* F = mlp_ratio * C */
    int train_ctx; /* the training context; the encoding is built for it */
    int precision; /* Precision of the training GEMMs ([train] precision); not in checkpoints */
} ModelConfig;

typedef struct {
    int steps;
    int batch;
    int warmup;          /* linear warm-up steps */
    double lr;           /* peak learning rate */
    double min_lr_ratio; /* cosine decay ends at lr * min_lr_ratio */
    double weight_decay;
    double beta1, beta2, eps;
    double grad_clip;    /* global-norm clip; <= 0 disables */
    double passkey_share; /* share of training windows replaced by passkey episodes */
} TrainConfig;

/* X(name, shape-count expression, weight decay) — cfg-derived sizes use C, F, L, V, P. */
#define CB_PARAM_TENSORS(X)              \
    X(wte,      V * C,         1) /* (V, C) token embedding, tied with the output */ \
    X(ln1w,     L * C,         0) /* (L, C) */ \
    X(ln1b,     L * C,         0) /* (L, C) */ \
    X(qkvw,     L * 3 * C * C, 1) /* (L, 3C, C) */ \
    X(qkvb,     L * 3 * C,     0) /* (L, 3C) */ \
    X(attprojw, L * C * C,     1) /* (L, C, C) */ \
    X(attprojb, L * C,         0) /* (L, C) */ \
    X(ln2w,     L * C,         0) /* (L, C) */ \
    X(ln2b,     L * C,         0) /* (L, C) */ \
    X(fcw,      L * F * C,     1) /* (L, F, C) */ \
    X(fcb,      L * F,         0) /* (L, F) */ \
    X(fcprojw,  L * C * F,     1) /* (L, C, F) */ \
    X(fcprojb,  L * C,         0) /* (L, C) */ \
    X(lnfw,     C,             0) /* (C) */ \
    X(lnfb,     C,             0) /* (C) */ \
    X(pe,       P,             -1) /* (P) the encoding's parameters; decay from the scheme */

typedef struct {
#define CB_X(name, count, decay) float *name;
    CB_PARAM_TENSORS(CB_X)
#undef CB_X
} ParamTensors;

typedef struct {
    ModelConfig cfg;
    PeModel pe;
    size_t n_params;
    float *params;  /* one block, ParamTensors point into it */
    ParamTensors p;
    float *grads;   /* NULL until training starts */
    ParamTensors g;
    float *adam_m, *adam_v;
    int adam_t;
    Rng pos_rng; /* draws training positions for schemes that randomize them */
    /* Training splits each batch into shards of whole sequences, one per thread: each runs its
       forward and backward on its own thread with single-threaded GEMMs into its own gradient
       block, and the blocks are summed in shard order. Sized for (B, T, threads) on first use. */
    struct TrainShard *shards;
    int n_shards, acts_B, acts_T;
    double *grad_parts; /* partial sums of the gradient norm */
    /* Diagnostics: when set, model_eval_window writes the attention entropy in nats of every
       query, (L, NH, n) for a window of n bytes; the caller owns it and sizes it. NULL: skipped. */
    float *eval_entropy;
    float *eval_buf; /* model_eval_window's buffers, kept between calls (eval_cap floats) */
    size_t eval_cap;
} Model;

/* Builds a model with freshly initialised parameters from `seed` and the encoding `pe_spec`.
   Errors: CB_EINPUT (bad config or spec), CB_ENOMEM, CB_EUNSUPPORTED (precision bf16 where
   bf16_gemm_supported() says no, with its reason). On error the model is freed. */
int model_build(Model *m, const ModelConfig *cfg, const char *pe_spec, uint64_t seed, char *err);
void model_free(Model *m); /* no-op on a zeroed or freed model */

/* Bytes of parameters (float32). */
size_t model_param_bytes(const Model *m);
/* Analytic bytes of activations: training at (B, T), or one evaluation forward at context n. */
size_t model_train_act_bytes(const ModelConfig *cfg, int B, int T);
size_t model_eval_act_bytes(const Model *m, int n);

/* One training step on inputs/targets (B, T) bytes: forward, backward, clip, AdamW at `lr`.
   Returns the mean loss in nats in *loss. CB_EDIVERGED if the loss or gradient is not finite. */
int model_train_step(Model *m, const uint8_t *inputs, const uint8_t *targets, int B, int T,
                     const TrainConfig *tc, double lr, float *loss, float *grad_norm, char *err);

/* Learning rate at `step` (0-based): linear warm-up, then cosine decay to lr * min_lr_ratio. */
double train_lr_at(const TrainConfig *tc, int step);

/* Forward + backward only (no update), accumulating into grads after zeroing them: for gradient
   checks. Returns the mean loss in nats. */
int model_loss_and_grad(Model *m, const uint8_t *inputs, const uint8_t *targets, int B, int T,
                        float *loss, char *err);

/* Evaluation forward over one window of n input bytes: writes the loss in nats of predicting
   targets[t] at every position t (n floats), or the logits (n, V) if logits != NULL.
   Streams attention in blocks: no n x n buffer. The encoding must be prepared for n. */
int model_eval_window(Model *m, const uint8_t *inputs, const uint8_t *targets, int n,
                      float *losses, float *logits, char *err);

/* Checkpoint: the parameter block with a small header (config, spec). */
int model_save(const Model *m, const char *pe_spec, uint8_t **blob, size_t *size, char *err);
/* spec_override: evaluate the stored weights with another spec of the same parameter layout (an
   eval-time variant such as "rope+yarn"); NULL = the stored spec. */
int model_load(Model *m, const uint8_t *blob, size_t size, const char *spec_override, char *err);

#endif
