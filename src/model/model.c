/*
 * model.c — parameters, training forward/backward, AdamW, evaluation forward and checkpoints of
 * the byte-level pre-norm transformer (see model.h). Layer kernels live in kernels.c.
 */
#include "model/model.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "model/kernels.h"

/* Training activations: X(name, count) in terms of B, T, C, F, L, NH, V. */
#define CB_ACT_TENSORS(X)                   \
    X(encoded, B * T * C)     /* (B, T, C) */ \
    X(ln1, L * B * T * C)     /* (L, B, T, C) */ \
    X(ln1_mean, L * B * T)    /* (L, B, T) */ \
    X(ln1_rstd, L * B * T)    /* (L, B, T) */ \
    X(qkv, L * B * T * 3 * C) /* (L, B, T, 3C) q and k after the encoding's transform */ \
    X(att, L * B * NH * T * T) /* (L, B, NH, T, T) attention probabilities */ \
    X(atty, L * B * T * C)    /* (L, B, T, C) */ \
    X(res2, L * B * T * C)    /* (L, B, T, C) residual after attention */ \
    X(ln2, L * B * T * C)     /* (L, B, T, C) */ \
    X(ln2_mean, L * B * T)    /* (L, B, T) */ \
    X(ln2_rstd, L * B * T)    /* (L, B, T) */ \
    X(fch, L * B * T * F)     /* (L, B, T, F) fc's output, then GELU's derivative there */ \
    X(fch_gelu, L * B * T * F) /* (L, B, T, F) */ \
    X(res3, L * B * T * C)    /* (L, B, T, C) residual after the MLP: the layer's output */ \
    X(lnf, B * T * C)         /* (B, T, C) */ \
    X(lnf_mean, B * T)        /* (B, T) */ \
    X(lnf_rstd, B * T)        /* (B, T) */ \
    X(probs, B * T * V)       /* (B, T, V) softmax, then the logits' gradient */ \
    X(losses, B * T)          /* (B, T) */

/* Backward scratch, reused by every layer. */
#define CB_DACT_TENSORS(X)                   \
    X(dres, B * T * C)        /* (B, T, C) gradient of the residual stream */ \
    X(dln, B * T * C)         /* (B, T, C) */ \
    X(dqkv, B * T * 3 * C)    /* (B, T, 3C) */ \
    X(dscores, B * NH * T * T) /* (B, NH, T, T) */ \
    X(datty, B * T * C)       /* (B, T, C) */ \
    X(dfch, B * T * F)        /* (B, T, F) */ \
    X(dfch_gelu, B * T * F)   /* (B, T, F) */

typedef struct {
#define CB_X(name, count) float *name;
    CB_ACT_TENSORS(CB_X)
#undef CB_X
} Acts;

typedef struct {
#define CB_X(name, count) float *name;
    CB_DACT_TENSORS(CB_X)
#undef CB_X
} DActs;

/* One shard of a training batch: sequences [b0, b0 + B) with their own activations and gradient
   block (see Model.shards). */
typedef struct TrainShard {
    int b0, B;
    float *acts, *dacts;
    float *grads; /* (n_params): shard 0 writes the model's own block, the others their own */
    ParamTensors g;
    PeModel pe;   /* the model's encoding with its gradients pointed into this shard's block */
} TrainShard;

/* Sizes of every parameter tensor, in X-macro order. */
static void param_sizes(const ModelConfig *cfg, size_t P, size_t *sizes) {
    size_t C = cfg->d_model, L = cfg->n_layer, F = (size_t)cfg->mlp_ratio * C, V = CB_VOCAB;
    int k = 0;
#define CB_X(name, count, decay) sizes[k++] = (count);
    CB_PARAM_TENSORS(CB_X)
#undef CB_X
}

enum {
#define CB_X(name, count, decay) PT_##name,
    CB_PARAM_TENSORS(CB_X)
#undef CB_X
    PT_COUNT
};

static void point_tensors(ParamTensors *t, float *block, const size_t *sizes) {
    float *p = block;
#define CB_X(name, count, decay) t->name = p; p += sizes[PT_##name];
    CB_PARAM_TENSORS(CB_X)
#undef CB_X
}

static int config_check(const ModelConfig *cfg, char *err) {
    if (cfg->n_layer < 1 || cfg->d_model < 2 || cfg->n_head < 1 || cfg->mlp_ratio < 1 ||
        cfg->train_ctx < 2)
        return cb_error(err, CB_EINPUT, "model: layers, d_model, heads, mlp_ratio and context must be positive");
    if (cfg->d_model % cfg->n_head)
        return cb_error(err, CB_EINPUT, "model: d_model %d is not divisible by heads %d", cfg->d_model,
                        cfg->n_head);
    if ((cfg->d_model / cfg->n_head) % 2)
        return cb_error(err, CB_EINPUT, "model: head size %d must be even", cfg->d_model / cfg->n_head);
    if (cfg->precision != CB_PRECISION_FP32 && cfg->precision != CB_PRECISION_BF16)
        return cb_error(err, CB_EINPUT, "model: unknown precision %d", cfg->precision);
    char why[CB_ERR_LEN - 64];
    if (cfg->precision == CB_PRECISION_BF16 && !bf16_gemm_supported(why, sizeof why))
        return cb_error(err, CB_EUNSUPPORTED, "model: precision bf16: %s", why);
    return CB_OK;
}

static void free_shards(Model *m) {
    for (int k = 0; k < m->n_shards; k++) {
        free(m->shards[k].acts);
        free(m->shards[k].dacts);
        if (k > 0) free(m->shards[k].grads);
    }
    free(m->shards);
    m->shards = NULL;
    m->n_shards = 0;
}

static void fill_normal(float *x, size_t n, float std, Rng *rng) {
    for (size_t i = 0; i < n; i++) x[i] = std * rng_normal(rng);
}

static void fill_const(float *x, size_t n, float v) {
    for (size_t i = 0; i < n; i++) x[i] = v;
}

int model_build(Model *m, const ModelConfig *cfg, const char *pe_spec, uint64_t seed, char *err) {
    memset(m, 0, sizeof *m);
    int rc = config_check(cfg, err);
    if (rc) return rc;
    m->cfg = *cfg;
    PeDims dims = {.n_layer = cfg->n_layer, .n_head = cfg->n_head,
                   .head_size = cfg->d_model / cfg->n_head, .d_model = cfg->d_model,
                   .train_ctx = cfg->train_ctx};
    rc = pe_create(&m->pe, pe_spec, &dims, err);
    if (rc) return rc;
    size_t sizes[PT_COUNT];
    param_sizes(cfg, pe_param_count(&m->pe), sizes);
    m->n_params = 0;
    for (int k = 0; k < PT_COUNT; k++) m->n_params += sizes[k];
    m->params = calloc(m->n_params, sizeof(float));
    if (!m->params) {
        model_free(m);
        return cb_error(err, CB_ENOMEM, "model: cannot allocate %zu parameters", m->n_params);
    }
    point_tensors(&m->p, m->params, sizes);
    m->pe.params = sizes[PT_pe] ? m->p.pe : NULL;

    /* GPT-2 style init: N(0, 0.02), residual projections scaled by 1/sqrt(2L). */
    Rng rng;
    rng_seed(&rng, seed);
    rng_seed(&m->pos_rng, seed ^ 0x9051710A5ULL); /* training positions: their own stream */
    size_t C = cfg->d_model, L = cfg->n_layer, F = (size_t)cfg->mlp_ratio * C;
    float proj_std = 0.02f / sqrtf(2.0f * (float)L);
    fill_normal(m->p.wte, CB_VOCAB * C, 0.02f, &rng);
    fill_const(m->p.ln1w, L * C, 1.0f);
    fill_normal(m->p.qkvw, L * 3 * C * C, 0.02f, &rng);
    fill_normal(m->p.attprojw, L * C * C, proj_std, &rng);
    fill_const(m->p.ln2w, L * C, 1.0f);
    fill_normal(m->p.fcw, L * F * C, 0.02f, &rng);
    fill_normal(m->p.fcprojw, L * C * F, proj_std, &rng);
    fill_const(m->p.lnfw, C, 1.0f);
    if (m->pe.params && m->pe.scheme->param_init) m->pe.scheme->param_init(&m->pe, &rng);

    rc = pe_prepare(&m->pe, cfg->train_ctx, err);
    if (rc) {
        model_free(m);
        return rc;
    }
    return CB_OK;
}

void model_free(Model *m) {
    if (!m) return;
    pe_destroy(&m->pe);
    free(m->params);
    free(m->grads);
    free(m->adam_m);
    free(m->adam_v);
    free_shards(m);
    free(m->grad_parts);
    free(m->eval_buf);
    memset(m, 0, sizeof *m);
}

size_t model_param_bytes(const Model *m) { return m->n_params * sizeof(float); }

static size_t acts_count(const ModelConfig *cfg, size_t B, size_t T, int backward) {
    size_t C = cfg->d_model, L = cfg->n_layer, F = (size_t)cfg->mlp_ratio * C, NH = cfg->n_head,
           V = CB_VOCAB, total = 0;
#define CB_X(name, count) total += (count);
    if (backward) {
        CB_DACT_TENSORS(CB_X)
    } else {
        CB_ACT_TENSORS(CB_X)
    }
#undef CB_X
    return total;
}

size_t model_train_act_bytes(const ModelConfig *cfg, int B, int T) {
    return (acts_count(cfg, B, T, 0) + acts_count(cfg, B, T, 1)) * sizeof(float);
}

/* Evaluation keeps one layer's buffers: x, ln, qkv, atty, fch, the attention tiles of every
   thread and a chunk of logits. */
#define EVAL_LOGIT_ROWS 256

/* Floats of the attention tiles: the largest any layer needs. */
static size_t eval_scratch_floats(const Model *m, int n, int threads) {
    size_t most = 0;
    int alt = m->pe.scheme->qk_alt_forward != NULL;
    for (int l = 0; l < m->cfg.n_layer; l++) {
        size_t f = attention_eval_scratch_floats(&m->pe, l, n, m->cfg.d_model, m->cfg.n_head, alt,
                                                 CB_ATT_BQ, CB_ATT_BK, threads);
        most = f > most ? f : most;
    }
    return most;
}

/* Floats of model_eval_window's one block at context n with `threads` attention tiles; the
   analytic activation bytes are this block. */
static size_t eval_floats(const Model *m, int n, int threads) {
    size_t C = m->cfg.d_model, F = (size_t)m->cfg.mlp_ratio * C, N = n;
    size_t alt = m->pe.scheme->qk_alt_forward ? N * 3 * C : 0;
    return N * C * 4 + N * 3 * C + N * F + N * 2 + eval_scratch_floats(m, n, threads) +
           (size_t)EVAL_LOGIT_ROWS * CB_VOCAB * 2 + alt;
}

size_t model_eval_act_bytes(const Model *m, int n) {
    return eval_floats(m, n, omp_get_max_threads()) * sizeof(float);
}

/* Gradient norm blocks: fixed in size, so the sum is the same for every thread count. */
#define NORM_BLOCK 4096

/* Points a gradient block's tensors, and the shard's copy of the encoding at its share. */
static void point_grads(Model *m, TrainShard *sh) {
    size_t sizes[PT_COUNT];
    param_sizes(&m->cfg, pe_param_count(&m->pe), sizes);
    point_tensors(&sh->g, sh->grads, sizes);
    sh->pe = m->pe;
    sh->pe.grads = m->pe.params ? sh->g.pe : NULL;
}

/* Optimizer state, and the shards for batch (B, T): one per thread, at most B. */
static int ensure_training_buffers(Model *m, int B, int T, char *err) {
    if (!m->grads) {
        m->grads = calloc(m->n_params, sizeof(float));
        m->adam_m = calloc(m->n_params, sizeof(float));
        m->adam_v = calloc(m->n_params, sizeof(float));
        m->grad_parts = malloc((m->n_params / NORM_BLOCK + 1) * sizeof(double));
        if (!m->grads || !m->adam_m || !m->adam_v || !m->grad_parts)
            return cb_error(err, CB_ENOMEM, "model: cannot allocate optimizer state");
        size_t sizes[PT_COUNT];
        param_sizes(&m->cfg, pe_param_count(&m->pe), sizes);
        point_tensors(&m->g, m->grads, sizes);
        m->pe.grads = m->pe.params ? m->g.pe : NULL;
    }
    int S = omp_get_max_threads() < B ? omp_get_max_threads() : B;
    if (m->shards && m->acts_B == B && m->acts_T == T && m->n_shards == S) return CB_OK;
    free_shards(m);
    m->shards = calloc((size_t)S, sizeof *m->shards);
    if (!m->shards) return cb_error(err, CB_ENOMEM, "model: out of memory");
    m->n_shards = S;
    for (int k = 0; k < S; k++) {
        TrainShard *sh = &m->shards[k];
        sh->b0 = B / S * k + (k < B % S ? k : B % S);
        sh->B = B / S + (k < B % S);
        sh->acts = malloc(acts_count(&m->cfg, sh->B, T, 0) * sizeof(float));
        sh->dacts = malloc(acts_count(&m->cfg, sh->B, T, 1) * sizeof(float));
        sh->grads = k == 0 ? m->grads : malloc(m->n_params * sizeof(float));
        if (!sh->acts || !sh->dacts || !sh->grads) {
            free_shards(m);
            return cb_error(err, CB_ENOMEM, "model: cannot allocate activations for batch %d x %d", B, T);
        }
        point_grads(m, sh);
    }
    m->acts_B = B;
    m->acts_T = T;
    return CB_OK;
}

static void point_acts(const Model *m, const TrainShard *sh, Acts *a, DActs *d) {
    size_t B = sh->B, T = m->acts_T, C = m->cfg.d_model, L = m->cfg.n_layer,
           F = (size_t)m->cfg.mlp_ratio * C, NH = m->cfg.n_head, V = CB_VOCAB;
    float *p = sh->acts;
#define CB_X(name, count) a->name = p; p += (count);
    CB_ACT_TENSORS(CB_X)
#undef CB_X
    p = sh->dacts;
#define CB_X(name, count) d->name = p; p += (count);
    CB_DACT_TENSORS(CB_X)
#undef CB_X
    (void)V;
}

static void embed_tokens(float *x, const float *wte, const uint8_t *tokens, size_t N, int C) {
#pragma omp parallel for schedule(static)
    for (size_t n = 0; n < N; n++) memcpy(x + n * C, wte + (size_t)tokens[n] * C, sizeof(float) * C);
}

static void add_inplace(float *y, const float *x, size_t n) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) y[i] += x[i];
}

/* Training forward over one shard's (B, T) (inputs, targets: its rows); returns the sum of its
   losses in nats. */
static double forward_train(Model *m, const TrainShard *sh, const Acts *a, const uint8_t *inputs,
                            const uint8_t *targets, const int *pos) {
    const ModelConfig *cfg = &m->cfg;
    int B = sh->B, T = m->acts_T, C = cfg->d_model, NH = cfg->n_head, L = cfg->n_layer;
    int F = cfg->mlp_ratio * C;
    size_t BT = (size_t)B * T;
    const PeScheme *sc = m->pe.scheme;
    MatmulForward *linear_forward = cfg->precision == CB_PRECISION_BF16 ? matmul_forward_bf16 : matmul_forward;

    embed_tokens(a->encoded, m->p.wte, inputs, BT, C);
    if (sc->embed_forward)
        for (int b = 0; b < B; b++) sc->embed_forward(&m->pe, a->encoded + (size_t)b * T * C, pos, T);

    for (int l = 0; l < L; l++) {
        const float *resid = l == 0 ? a->encoded : a->res3 + (size_t)(l - 1) * BT * C;
        float *ln1 = a->ln1 + l * BT * C, *qkv = a->qkv + l * BT * 3 * C;
        float *att = a->att + (size_t)l * B * NH * T * T, *atty = a->atty + l * BT * C;
        float *res2 = a->res2 + l * BT * C, *ln2 = a->ln2 + l * BT * C;
        float *fch = a->fch + l * BT * F, *fchg = a->fch_gelu + l * BT * F;
        float *res3 = a->res3 + l * BT * C;
        layernorm_forward(ln1, a->ln1_mean + l * BT, a->ln1_rstd + l * BT, resid,
                          m->p.ln1w + l * C, m->p.ln1b + l * C, BT, C);
        linear_forward(qkv, ln1, m->p.qkvw + (size_t)l * 3 * C * C, m->p.qkvb + l * 3 * C, BT, C, 3 * C);
        if (sc->qk_forward)
            for (int b = 0; b < B; b++)
                sc->qk_forward(&m->pe, l, qkv + (size_t)b * T * 3 * C, 3 * (size_t)C, pos, T);
        attention_forward(atty, att, qkv, &sh->pe, l, B, T, C, NH);
        linear_forward(res2, atty, m->p.attprojw + (size_t)l * C * C, m->p.attprojb + l * C, BT, C, C);
        add_inplace(res2, resid, BT * C);
        layernorm_forward(ln2, a->ln2_mean + l * BT, a->ln2_rstd + l * BT, res2,
                          m->p.ln2w + l * C, m->p.ln2b + l * C, BT, C);
        linear_forward(fch, ln2, m->p.fcw + (size_t)l * F * C, m->p.fcb + l * F, BT, C, F);
        gelu_forward_train(fchg, fch, BT * F); /* fch now holds gelu'(fc) */
        linear_forward(res3, fchg, m->p.fcprojw + (size_t)l * C * F, m->p.fcprojb + l * C, BT, F, C);
        add_inplace(res3, res2, BT * C);
    }
    const float *last = a->res3 + (size_t)(L - 1) * BT * C;
    layernorm_forward(a->lnf, a->lnf_mean, a->lnf_rstd, last, m->p.lnfw, m->p.lnfb, BT, C);
    linear_forward(a->probs, a->lnf, m->p.wte, NULL, BT, C, CB_VOCAB);
    crossentropy_forward(a->probs, a->losses, a->probs, targets, BT, CB_VOCAB);
    double sum = 0.0;
    for (size_t n = 0; n < BT; n++) sum += a->losses[n];
    return sum;
}

/* One shard's backward into its gradient block; scale: 1 / the whole batch's B T (the loss is the
   batch mean). CB_OK, or CB_ENOMEM from an attention backward that needs scratch (a content term). */
static int backward_train(Model *m, TrainShard *sh, const Acts *a, const DActs *d, const uint8_t *inputs,
                          const uint8_t *targets, const int *pos, float scale) {
    const ModelConfig *cfg = &m->cfg;
    int B = sh->B, T = m->acts_T, C = cfg->d_model, NH = cfg->n_head, L = cfg->n_layer;
    int F = cfg->mlp_ratio * C;
    size_t BT = (size_t)B * T;
    const PeScheme *sc = m->pe.scheme;
    ParamTensors *g = &sh->g;
    PeModel *pe = &sh->pe;
    MatmulBackward *linear_backward = cfg->precision == CB_PRECISION_BF16 ? matmul_backward_bf16 : matmul_backward;

    crossentropy_backward(a->probs, targets, BT, CB_VOCAB, scale);
    float *dlogits = a->probs;
    linear_backward(d->dln, 0, g->wte, NULL, dlogits, a->lnf, m->p.wte, BT, C, CB_VOCAB);
    memset(d->dres, 0, sizeof(float) * BT * C);
    const float *last = a->res3 + (size_t)(L - 1) * BT * C;
    layernorm_backward(d->dres, g->lnfw, g->lnfb, d->dln, last, m->p.lnfw, a->lnf_mean, a->lnf_rstd,
                       BT, C);

    for (int l = L - 1; l >= 0; l--) {
        const float *resid = l == 0 ? a->encoded : a->res3 + (size_t)(l - 1) * BT * C;
        const float *ln1 = a->ln1 + l * BT * C, *qkv = a->qkv + l * BT * 3 * C;
        const float *att = a->att + (size_t)l * B * NH * T * T, *atty = a->atty + l * BT * C;
        const float *res2 = a->res2 + l * BT * C, *ln2 = a->ln2 + l * BT * C;
        const float *fch = a->fch + l * BT * F, *fchg = a->fch_gelu + l * BT * F;

        /* MLP: res3 = res2 + fcproj(gelu(fc(ln2(res2)))); dres flows through unchanged. */
        linear_backward(d->dfch_gelu, 0, g->fcprojw + (size_t)l * C * F, g->fcprojb + l * C, d->dres,
                        fchg, m->p.fcprojw + (size_t)l * C * F, BT, F, C);
        gelu_backward_saved(d->dfch, fch, d->dfch_gelu, BT * F);
        linear_backward(d->dln, 0, g->fcw + (size_t)l * F * C, g->fcb + l * F, d->dfch, ln2,
                        m->p.fcw + (size_t)l * F * C, BT, C, F);
        layernorm_backward(d->dres, g->ln2w + l * C, g->ln2b + l * C, d->dln, res2, m->p.ln2w + l * C,
                           a->ln2_mean + l * BT, a->ln2_rstd + l * BT, BT, C);

        /* Attention: res2 = resid + attproj(attention(encoding(qkv(ln1(resid))))). */
        linear_backward(d->datty, 0, g->attprojw + (size_t)l * C * C, g->attprojb + l * C, d->dres,
                        atty, m->p.attprojw + (size_t)l * C * C, BT, C, C);
        int rc = attention_backward(d->dqkv, d->dscores, d->datty, qkv, att, pe, l, B, T, C, NH);
        if (rc) return rc;
        if (sc->bias_backward && pe->grads) sc->bias_backward(pe, l, d->dscores, B, T);
        if (sc->qk_backward)
            for (int b = 0; b < B; b++)
                sc->qk_backward(pe, l, d->dqkv + (size_t)b * T * 3 * C, 3 * (size_t)C, pos, T);
        linear_backward(d->dln, 0, g->qkvw + (size_t)l * 3 * C * C, g->qkvb + l * 3 * C, d->dqkv, ln1,
                        m->p.qkvw + (size_t)l * 3 * C * C, BT, C, 3 * C);
        layernorm_backward(d->dres, g->ln1w + l * C, g->ln1b + l * C, d->dln, resid, m->p.ln1w + l * C,
                           a->ln1_mean + l * BT, a->ln1_rstd + l * BT, BT, C);
    }
    if (sc->embed_backward)
        for (int b = 0; b < B; b++) sc->embed_backward(pe, d->dres + (size_t)b * T * C, pos, T);
    /* Token rows are shared between positions: accumulate serially in a fixed order. */
    for (size_t n = 0; n < BT; n++) {
        float *row = g->wte + (size_t)inputs[n] * C;
        const float *dx = d->dres + n * C;
        for (int c = 0; c < C; c++) row[c] += dx[c];
    }
    return CB_OK;
}

static int *plain_positions(int T) {
    int *pos = malloc(sizeof(int) * (size_t)T);
    if (pos)
        for (int t = 0; t < T; t++) pos[t] = t;
    return pos;
}

/* Forward and backward of shard k into its gradient block (zeroed first). */
static int shard_step(Model *m, int k, const uint8_t *inputs, const uint8_t *targets, const int *pos,
                      float scale, double *loss_sum) {
    TrainShard *sh = &m->shards[k];
    point_grads(m, sh); /* the encoding may have been prepared anew since */
    size_t off = (size_t)sh->b0 * m->acts_T;
    Acts a;
    DActs d;
    point_acts(m, sh, &a, &d);
    memset(sh->grads, 0, sizeof(float) * m->n_params);
    *loss_sum = forward_train(m, sh, &a, inputs + off, targets + off, pos);
    int rc = backward_train(m, sh, &a, &d, inputs + off, targets + off, pos, scale);
    int bf16_rc = m->cfg.precision == CB_PRECISION_BF16 ? bf16_gemm_take_status() : CB_OK;
    return rc ? rc : bf16_rc;
}

static int loss_and_grad(Model *m, const uint8_t *inputs, const uint8_t *targets, int B, int T,
                         float *loss, char *err) {
    /* Prepared every step, not only for a longer T: tables that depend on the encoding's
       parameters (KERPLE's and FIRE's distance terms) are rebuilt after each update, where a
       stale table would send every score through the transcendental fallback. Unchanged
       tables return at once. */
    int rc = pe_prepare(&m->pe, T > m->pe.ctx ? T : m->pe.ctx, err);
    if (rc) return rc;
    rc = ensure_training_buffers(m, B, T, err);
    if (rc) return rc;
    int *pos = plain_positions(T);
    if (!pos) return cb_error(err, CB_ENOMEM, "model: out of memory");
    if (m->pe.scheme->train_positions) m->pe.scheme->train_positions(&m->pe, &m->pos_rng, T, pos);
    int S = m->n_shards;
    float scale = 1.0f / (float)((size_t)B * T);
    double sums[S];
    int rcs[S];
    if (S == 1) {
        rcs[0] = shard_step(m, 0, inputs, targets, pos, scale, &sums[0]);
    } else {
        /* One shard per thread; the kernels inside run serially (nested regions are inactive, and
           OpenBLAS's OpenMP build runs single-threaded inside a parallel region). */
#pragma omp parallel for num_threads(S) schedule(static, 1)
        for (int k = 0; k < S; k++) rcs[k] = shard_step(m, k, inputs, targets, pos, scale, &sums[k]);
    }
    /* The shards' gradients summed into shard 0's (the model's) in shard order, and in the same
       pass the squared norm of each fixed block of NORM_BLOCK gradients (summed in block order by
       model_train_step: the same norm at every thread count). */
    size_t nb = (m->n_params + NORM_BLOCK - 1) / NORM_BLOCK;
#pragma omp parallel for schedule(static)
    for (size_t b = 0; b < nb; b++) {
        size_t i1 = (b + 1) * NORM_BLOCK < m->n_params ? (b + 1) * NORM_BLOCK : m->n_params;
        double part = 0.0;
#pragma omp simd reduction(+ : part)
        for (size_t i = b * NORM_BLOCK; i < i1; i++) {
            float gsum = m->grads[i];
            for (int k = 1; k < S; k++) gsum += m->shards[k].grads[i];
            m->grads[i] = gsum;
            part += (double)gsum * gsum;
        }
        m->grad_parts[b] = part;
    }
    free(pos);
    double total = 0.0;
    for (int k = 0; k < S; k++) {
        if (rcs[k])
            return cb_error(err, rcs[k], "model: %s in the training step of %s",
                            rcs[k] == CB_ENOMEM ? "out of memory" : "oneDNN's bf16 GEMM failed", m->pe.scheme->name);
        total += sums[k];
    }
    *loss = (float)(total / ((double)B * T));
    return CB_OK;
}

int model_loss_and_grad(Model *m, const uint8_t *inputs, const uint8_t *targets, int B, int T,
                        float *loss, char *err) {
    return loss_and_grad(m, inputs, targets, B, T, loss, err);
}

double train_lr_at(const TrainConfig *tc, int step) {
    if (tc->warmup > 0 && step < tc->warmup) return tc->lr * (double)(step + 1) / (double)tc->warmup;
    int decay_steps = tc->steps - tc->warmup;
    if (decay_steps <= 1) return tc->lr;
    double progress = (double)(step - tc->warmup) / (double)(decay_steps - 1);
    if (progress > 1.0) progress = 1.0;
    double min_lr = tc->lr * tc->min_lr_ratio;
    return min_lr + 0.5 * (tc->lr - min_lr) * (1.0 + cos(M_PI * progress));
}

/* AdamW with decoupled weight decay on the tensors whose flag says so. */
static void adamw_update(Model *m, const TrainConfig *tc, double lr, float clip_scale) {
    size_t sizes[PT_COUNT];
    param_sizes(&m->cfg, pe_param_count(&m->pe), sizes);
    int decay[PT_COUNT] = {
#define CB_X(name, count, dec) dec,
        CB_PARAM_TENSORS(CB_X)
#undef CB_X
    };
    decay[PT_pe] = m->pe.scheme->param_decay;
    m->adam_t++;
    float b1 = (float)tc->beta1, b2 = (float)tc->beta2, eps = (float)tc->eps;
    float c1 = 1.0f / (1.0f - powf(b1, (float)m->adam_t));
    float c2 = 1.0f / (1.0f - powf(b2, (float)m->adam_t));
    float flr = (float)lr;
    size_t offs[PT_COUNT], off = 0;
    for (int k = 0; k < PT_COUNT; k++) offs[k] = off, off += sizes[k];
    /* One parallel region for every tensor: the tensors are independent, so no barrier between
       them (nowait); each element's update is the same whoever computes it. */
#pragma omp parallel
    for (int k = 0; k < PT_COUNT; k++) {
        float wd = decay[k] ? (float)tc->weight_decay : 0.0f;
        float *p = m->params + offs[k], *g = m->grads + offs[k], *mm = m->adam_m + offs[k],
              *vv = m->adam_v + offs[k];
#pragma omp for schedule(static) nowait
        for (size_t i = 0; i < sizes[k]; i++) {
            float gi = g[i] * clip_scale;
            mm[i] = b1 * mm[i] + (1.0f - b1) * gi;
            vv[i] = b2 * vv[i] + (1.0f - b2) * gi * gi;
            float mhat = mm[i] * c1, vhat = vv[i] * c2;
            p[i] -= flr * (mhat / (sqrtf(vhat) + eps) + wd * p[i]);
        }
    }
}

int model_train_step(Model *m, const uint8_t *inputs, const uint8_t *targets, int B, int T,
                     const TrainConfig *tc, double lr, float *loss, float *grad_norm, char *err) {
    int rc = loss_and_grad(m, inputs, targets, B, T, loss, err);
    if (rc) return rc;
    /* Global gradient norm in double: loss_and_grad left the blocks' squared sums. */
    size_t nb = (m->n_params + NORM_BLOCK - 1) / NORM_BLOCK;
    double sq = 0.0;
    for (size_t b = 0; b < nb; b++) sq += m->grad_parts[b];
    double norm = sqrt(sq);
    if (grad_norm) *grad_norm = (float)norm;
    if (!isfinite(*loss) || !isfinite(norm))
        return cb_error(err, CB_EDIVERGED, "training diverged: loss %g, gradient norm %g", *loss, norm);
    float clip_scale = 1.0f;
    if (tc->grad_clip > 0 && norm > tc->grad_clip) clip_scale = (float)(tc->grad_clip / norm);
    adamw_update(m, tc, lr, clip_scale);
    return CB_OK;
}

int model_eval_window(Model *m, const uint8_t *inputs, const uint8_t *targets, int n,
                      float *losses, float *logits_out, char *err) {
    const ModelConfig *cfg = &m->cfg;
    int C = cfg->d_model, NH = cfg->n_head, L = cfg->n_layer, F = cfg->mlp_ratio * C;
    size_t N = n;
    if (n < 1 || n > m->pe.ctx)
        return cb_error(err, CB_EINPUT, "model: context %d is not prepared (encoding ready up to %d)", n,
                        m->pe.ctx);
    int nthreads = omp_get_max_threads();
    const PeScheme *sc = m->pe.scheme;
    size_t alt = sc->qk_alt_forward ? N * 3 * C : 0; /* the alternative q, k of eval-time variants */
    /* The block is kept in the model between calls: a fresh one is fresh pages, and the page
       faults of touching tens of MiB cost more than a short window's arithmetic (and serialise the
       threads). Calls from inside a parallel region (windows evaluated one per thread) each take
       their own. */
    size_t need = eval_floats(m, n, nthreads);
    int shared = !omp_in_parallel();
    if (shared && m->eval_cap < need) {
        free(m->eval_buf);
        m->eval_buf = malloc(need * sizeof(float));
        m->eval_cap = m->eval_buf ? need : 0;
    }
    float *block = shared ? m->eval_buf : malloc(need * sizeof(float));
    int *pos = plain_positions(n);
    if (!block || !pos) {
        if (!shared) free(block);
        free(pos);
        return cb_error(err, CB_ENOMEM, "model: cannot allocate evaluation buffers for context %d", n);
    }
    float *x = block, *ln = x + N * C, *atty = ln + N * C, *tmp = atty + N * C, *qkv = tmp + N * C;
    float *fch = qkv + N * 3 * C, *mean = fch + N * F, *rstd = mean + N, *scratch = rstd + N;
    float *lchunk = scratch + eval_scratch_floats(m, n, nthreads), *pchunk = lchunk + EVAL_LOGIT_ROWS * CB_VOCAB;
    float *qkv_alt = alt ? pchunk + EVAL_LOGIT_ROWS * CB_VOCAB : NULL;

    embed_tokens(x, m->p.wte, inputs, N, C);
    if (sc->embed_forward) sc->embed_forward(&m->pe, x, pos, n);
    for (int l = 0; l < L; l++) {
        layernorm_forward(ln, mean, rstd, x, m->p.ln1w + l * C, m->p.ln1b + l * C, N, C);
        matmul_forward(qkv, ln, m->p.qkvw + (size_t)l * 3 * C * C, m->p.qkvb + l * 3 * C, N, C, 3 * C);
        if (qkv_alt) {
            memcpy(qkv_alt, qkv, sizeof(float) * N * 3 * C);
            sc->qk_alt_forward(&m->pe, l, qkv_alt, 3 * (size_t)C, pos, n);
        }
        if (sc->qk_forward) sc->qk_forward(&m->pe, l, qkv, 3 * (size_t)C, pos, n);
        attention_eval(atty, m->eval_entropy ? m->eval_entropy + (size_t)l * NH * N : NULL, scratch, qkv,
                       qkv_alt, &m->pe, l, n, C, NH);
        matmul_forward(tmp, atty, m->p.attprojw + (size_t)l * C * C, m->p.attprojb + l * C, N, C, C);
        add_inplace(x, tmp, N * C);
        layernorm_forward(ln, mean, rstd, x, m->p.ln2w + l * C, m->p.ln2b + l * C, N, C);
        matmul_forward(fch, ln, m->p.fcw + (size_t)l * F * C, m->p.fcb + l * F, N, C, F);
        gelu_forward(fch, fch, N * F);
        matmul_forward(tmp, fch, m->p.fcprojw + (size_t)l * C * F, m->p.fcprojb + l * C, N, F, C);
        add_inplace(x, tmp, N * C);
    }
    layernorm_forward(ln, mean, rstd, x, m->p.lnfw, m->p.lnfb, N, C);
    /* Logits in chunks of rows: no (n, V) buffer unless the caller asks for one. */
    for (size_t r0 = 0; r0 < N; r0 += EVAL_LOGIT_ROWS) {
        size_t rows = N - r0 < EVAL_LOGIT_ROWS ? N - r0 : EVAL_LOGIT_ROWS;
        float *lg = logits_out ? logits_out + r0 * CB_VOCAB : lchunk;
        matmul_forward(lg, ln + r0 * C, m->p.wte, NULL, rows, C, CB_VOCAB);
        if (losses) crossentropy_forward(pchunk, losses + r0, lg, targets + r0, rows, CB_VOCAB);
    }
    if (!shared) free(block);
    free(pos);
    return CB_OK;
}

/* Checkpoint layout (little-endian host order): magic "CBCK1\0\0\0", five int32 config values,
   int32 spec length, spec bytes, uint64 parameter count, float32 parameters. */
static const char CK_MAGIC[8] = {'C', 'B', 'C', 'K', '1', 0, 0, 0};

int model_save(const Model *m, const char *pe_spec, uint8_t **blob, size_t *size, char *err) {
    int32_t hdr[6] = {m->cfg.n_layer, m->cfg.d_model, m->cfg.n_head, m->cfg.mlp_ratio,
                      m->cfg.train_ctx, (int32_t)strlen(pe_spec)};
    uint64_t np = m->n_params;
    size_t total = sizeof CK_MAGIC + sizeof hdr + (size_t)hdr[5] + sizeof np + np * sizeof(float);
    uint8_t *b = malloc(total), *p = b;
    if (!b) return cb_error(err, CB_ENOMEM, "checkpoint: cannot allocate %zu bytes", total);
    memcpy(p, CK_MAGIC, sizeof CK_MAGIC), p += sizeof CK_MAGIC;
    memcpy(p, hdr, sizeof hdr), p += sizeof hdr;
    memcpy(p, pe_spec, (size_t)hdr[5]), p += hdr[5];
    memcpy(p, &np, sizeof np), p += sizeof np;
    memcpy(p, m->params, np * sizeof(float));
    *blob = b;
    *size = total;
    return CB_OK;
}

int model_load(Model *m, const uint8_t *blob, size_t size, const char *spec_override, char *err) {
    int32_t hdr[6];
    uint64_t np;
    if (size < sizeof CK_MAGIC + sizeof hdr || memcmp(blob, CK_MAGIC, sizeof CK_MAGIC))
        return cb_error(err, CB_EINPUT, "checkpoint: not a ctxbench checkpoint");
    const uint8_t *p = blob + sizeof CK_MAGIC;
    memcpy(hdr, p, sizeof hdr), p += sizeof hdr;
    if (hdr[5] < 1 || hdr[5] > 1000 || (size_t)(p - blob) + (size_t)hdr[5] + sizeof np > size)
        return cb_error(err, CB_EINPUT, "checkpoint: corrupt header");
    char spec[1001];
    memcpy(spec, p, (size_t)hdr[5]), p += hdr[5];
    spec[hdr[5]] = '\0';
    memcpy(&np, p, sizeof np), p += sizeof np;
    ModelConfig cfg = {.n_layer = hdr[0], .d_model = hdr[1], .n_head = hdr[2], .mlp_ratio = hdr[3],
                       .train_ctx = hdr[4]};
    int rc = model_build(m, &cfg, spec_override ? spec_override : spec, 0, err);
    if (rc) return rc;
    if (np != m->n_params || (size_t)(p - blob) + np * sizeof(float) != size) {
        model_free(m);
        return cb_error(err, CB_EINPUT, "checkpoint: parameter count does not match its config");
    }
    memcpy(m->params, p, np * sizeof(float));
    return CB_OK;
}
