/*
 * pe.h — the positional-encoding interface and its registry.
 *
 * A scheme is one file in src/pe/ and one line in the registry (pe.c). It is a const PeScheme of
 * optional hooks, one per place an encoding can act (NULL = does nothing there):
 *
 *   embed   adds position vectors to the token embeddings before layer 1 (sinusoidal, learned)
 *   qk      transforms q and k of every head per position (RoPE and its extensions)
 *   bias    additive pre-softmax score b_h(i, j), added after the 1/sqrt(HS) scaling (ALiBi, T5)
 *   relkv   key and value tables indexed by clipped j - i (Shaw)
 *   score   a content-dependent term added to each query's score row, a function of q and the
 *           row's scores (CoPE)
 *   alt     eval-time alternative scores for some keys of each query, and masked keys
 *           (Self-Extend, ReRoPE, LM-Infinite): a second transform of the raw q and k
 *
 * Every hook that depends on parameters has a backward that accumulates (+=) into pe->grads.
 * The qk backward applies the transposed transform to dq and dk in place.
 *
 * A scheme is named by a spec string: NAME[:key=value,...], e.g. "rope:base=500000".
 * Eval-time variants ("rope+yarn:factor=auto") parse into spec.variant; a scheme that has none
 * refuses them in init.
 *
 * Shapes: T positions, C = d_model, NH heads, HS = head size (C = NH * HS).
 */
#ifndef CB_PE_H
#define CB_PE_H

#include <stddef.h>
#include <stdio.h>

#include "core/core.h"

#define PE_MAX_OPTS 16
#define PE_RELKV_MAX_K 256 /* largest clipping distance of relative key/value tables */
#define PE_SCORE_CARRY 1026 /* floats of state a score_block row carries across key blocks */

typedef struct {
    char key[32];
    char value[96];
} PeOption;

typedef struct {
    char name[32];     /* scheme name, e.g. "rope" */
    char variant[32];  /* eval-time variant after '+', "" if none */
    PeOption opts[PE_MAX_OPTS];  /* options after ':' of the scheme */
    int n_opts;
    PeOption vopts[PE_MAX_OPTS]; /* options after ':' of the variant */
    int n_vopts;
} PeSpec;

typedef struct {
    int n_layer;
    int n_head;    /* NH */
    int head_size; /* HS */
    int d_model;   /* C */
    int train_ctx; /* L: the context the model is (or was) trained at */
} PeDims;

typedef struct PeScheme PeScheme;

typedef struct PeModel {
    const PeScheme *scheme;
    PeSpec spec;
    PeDims dims;
    float *params; /* the scheme's parameters inside the model's block, NULL if it has none */
    float *grads;  /* their gradients (same layout), NULL when not training */
    void *state;   /* owned by the scheme: parsed options and caches */
    int ctx;       /* largest context (positions 0..ctx-1) the caches are prepared for */
} PeModel;

/* What `ctxbench inspect` asks a scheme to print. */
typedef struct {
    int context;      /* positions / distances range over [0, context) */
    int query;        /* query position for bias rows */
    const int *positions; /* explicit positions for embedding rows / rotations */
    int n_positions;
} PeInspectArgs;

struct PeScheme {
    const char *name;
    const char *summary; /* one line for `ctxbench list` */
    const char *paper;   /* citation, e.g. "Su et al. 2021, arXiv:2104.09864" */

    /* Parses pe->spec options into pe->state (allocated here). An unknown key, a bad value or an
       unsupported variant gives CB_EINPUT and one line naming the key. */
    int (*init)(PeModel *pe, char *err);
    void (*destroy)(PeModel *pe); /* frees pe->state; safe on a failed init */
    /* Writes the options in canonical form ("base=10000,pairing=interleaved"), all of them, defaults
       included; "" for a scheme without options. */
    void (*canonical)(const PeModel *pe, char *buf, size_t n);

    size_t (*param_count)(const PeModel *pe);
    void (*param_init)(PeModel *pe, Rng *rng); /* writes pe->params */
    int param_decay; /* 1 if weight decay applies to its parameters */

    /* Builds caches for positions 0..n-1. CB_EUNSUPPORTED with the reason when the scheme cannot
       serve context n (a learned table shorter than n). */
    int (*prepare)(PeModel *pe, int n, char *err);
    /* Bytes of state the scheme holds at context n (caches and tables, not its parameters). */
    size_t (*state_bytes)(const PeModel *pe, int n);

    /* x (T, C) = f(x, pos): usually x += PE(pos[t]); may also scale the token embeddings. */
    void (*embed_forward)(const PeModel *pe, float *x, const int *pos, int T);
    /* Given dx (T, C) w.r.t. the output: grads += d/dparams (when pe->grads is set), and dx is
       replaced in place by the gradient w.r.t. the input token embeddings. */
    void (*embed_backward)(PeModel *pe, float *dx, const int *pos, int T);

    /* qkv (T, stride): q at column 0, k at column C, each (NH, HS). Transforms q and k in place. */
    void (*qk_forward)(const PeModel *pe, int layer, float *qkv, size_t stride, const int *pos, int T);
    /* dqkv: the gradients w.r.t. transformed q and k in, w.r.t. the untransformed ones out. */
    void (*qk_backward)(const PeModel *pe, int layer, float *dqkv, size_t stride, const int *pos, int T);

    /* row[j - j0] += b_h(i, j) for keys j in [j0, j1), query i (j1 <= i + 1). */
    void (*bias_row)(const PeModel *pe, int layer, int h, int i, int j0, int j1, float *row);
    /* grads += sum over b, h, i, j<=i of dscores[b][h][i][j] * db_h(i,j)/dparams.
       dscores (B, NH, T, T), the gradient w.r.t. the biased, scaled scores. */
    void (*bias_backward)(PeModel *pe, int layer, const float *dscores, int B, int T);

    /* Shaw: the relative key and value tables of `layer`, each (2k+1, HS) and shared by the heads,
       row clip(j - i, -k, k) + k; their gradient tables (same shape), NULL when not training.
       Returns k (at most PE_RELKV_MAX_K). */
    int (*relkv)(const PeModel *pe, int layer, const float **wk, const float **wv, float **dwk,
                 float **dwv);

    /* Content-dependent scores (CoPE). Query i of head h, q (HS) its query: s (i + 1) holds the
       scaled scores q.k_j / sqrt(HS) of keys 0..i; adds the encoding's term in place. Runs before
       bias_row, in training and evaluation alike. A scheme with score_row has no relkv. */
    void (*score_row)(const PeModel *pe, int layer, int h, int i, const float *q, float *s);
    /* Backward of score_row for one row (required with it). s (i + 1): the scores score_row
       received in, the gradient w.r.t. them out; ds (i + 1): the gradient w.r.t. its output;
       dq (HS) += the gradient through the added term; work: i + 1 floats of scratch. dparams
       (NULL: skip) += the gradient w.r.t. the layer's parameters, laid out like the layer's block
       pe->params + layer * (param_count / n_layer): a scheme with score_row keeps n_layer equal
       blocks. Writes nothing else, so rows of different (b, h) run in parallel and the caller
       gives each (b, h) its own dparams partial. */
    void (*score_row_backward)(const PeModel *pe, int layer, int h, int i, const float *q, float *s,
                               const float *ds, float *dq, float *work, float *dparams);

    /* Streaming form of score_row for evaluation (required with it): the same term for keys
       [j0, j1) of query i (j1 <= i + 1), s (j1 - j0) their scaled scores, in place. The caller
       walks a row's key blocks from the diagonal down to key 0 and zeroes carry
       (PE_SCORE_CARRY floats) before the row's first block; carry holds what runs across blocks. */
    void (*score_block)(const PeModel *pe, int layer, int h, int i, const float *q, int j0, int j1,
                        float *s, float *carry);

    /* Positions of one training window (randomized positions): fills pos[0..T). NULL = 0..T-1.
       Evaluation always uses 0..n-1. */
    void (*train_positions)(const PeModel *pe, Rng *rng, int T, int *pos);

    /* Evaluation only. qkv_alt (T, stride) holds a copy of the raw (untransformed) q, k, v;
       transforms its q and k in place for the alternative branch. */
    void (*qk_alt_forward)(const PeModel *pe, int layer, float *qkv_alt, size_t stride, const int *pos,
                           int T);
    /* For query i: keys j < *alt_end are scored with the alternative q and k; keys in
       [*mask_lo, *mask_hi) are masked out; the rest use the ordinary ones. Required with
       qk_alt_forward; may also be given alone (a mask only). */
    void (*alt_row)(const PeModel *pe, int i, int *alt_end, int *mask_lo, int *mask_hi);

    /* Prints the scheme's positional quantities as CSV with a header line. */
    int (*inspect)(const PeModel *pe, const PeInspectArgs *args, FILE *out, char *err);

    /* Diagnostics, schemes that rotate q and k only (RoPE and its variants, xPos): the share in
       [0, 1] of rotary pairs whose angles at context n leave the range seen in training (the
       definition is in results/README.md, "rope_unseen_angle_share"), and in *pairs (when not
       NULL) the number of rotary pairs per head it is a share of. Needs no prepare; NaN when it
       cannot be computed (out of memory). NULL: the scheme has no rotation. */
    double (*unseen_angle_share)(const PeModel *pe, int n, int *pairs);
};

/* Eval-time variants: a trained scheme's model evaluated with a changed encoding, sharing its
   checkpoint ("rope+yarn"). Listed for `ctxbench list`; the base scheme's init implements them. */
typedef struct {
    const char *scheme;  /* base scheme, e.g. "rope" */
    const char *name;    /* variant name after '+', e.g. "yarn" */
    const char *summary;
    const char *paper;
} PeVariantInfo;

/* NULL-terminated (name == NULL) list of every eval-time variant. */
const PeVariantInfo *pe_variants(void);

/* Registry: NULL-terminated array of every scheme, and lookup by name (NULL if unknown). */
const PeScheme *const *pe_all(void);
const PeScheme *pe_find(const char *name);

/* Parses "name[:k=v,...][+variant[:k=v,...]]" (whitespace-free). Syntax errors: CB_EINPUT. */
int pe_spec_parse(const char *text, PeSpec *spec, char *err);

/* Finds the scheme, copies spec and dims, runs init. On error pe is left destroyed. */
int pe_create(PeModel *pe, const char *spec_text, const PeDims *dims, char *err);
void pe_destroy(PeModel *pe); /* no-op on a zeroed or destroyed PeModel */

/* Canonical spec string: "name:opts" (+ "+variant:vopts" for variants). */
void pe_canonical(const PeModel *pe, char *buf, size_t n);

/* Convenience wrappers that tolerate NULL hooks. */
int pe_prepare(PeModel *pe, int n, char *err);
size_t pe_param_count(const PeModel *pe);
size_t pe_state_bytes(const PeModel *pe, int n);
/* The scheme's unseen_angle_share at context n and its pair count (pairs may be NULL); NaN and 0
   pairs for a scheme without rotation. */
double pe_unseen_angle_share(const PeModel *pe, int n, int *pairs);

/* Randomized positions (Ruoss et al. 2023, PE_SPEC §13): pos[0..T) = T distinct integers drawn
   uniformly from [0, N) with rng and sorted ascending; 1 <= T <= N <= CB_MAX_CONTEXT. N = T gives
   0..T-1. Floyd's algorithm: T draws, no allocation. */
void pe_sample_positions(Rng *rng, int N, int T, int *pos);

/* For schemes that rotate pairs (the unseen_angle_share hook): the share of np pairs that leave
   the angles seen in training. Pair t trained with frequency theta[t] at positions 0..P has seen
   the angles [0, P theta[t]], all of them when P theta[t] >= 2 pi; at evaluation its largest
   angle is reach[t]. It is out of range when P theta[t] < 2 pi and reach[t] >= (P + 1) theta[t]:
   the evaluation reaches the angle of a position training never had. (Interpolated positions
   below P + 1, as in position interpolation with s = n / L, count as seen.) NaN for np < 1. */
double pe_rotary_unseen_share(const double *theta, const double *reach, int np, double P);

/* Option helpers for schemes: value lookup and typed parsing with one-line errors. */
const char *pe_opt(const PeSpec *spec, const char *key); /* NULL if absent */
/* Checks every option key is in the NULL-terminated list `known`; else CB_EINPUT naming it. */
int pe_check_keys(const PeSpec *spec, const char *const *known, char *err);
int pe_opt_double(const PeSpec *spec, const char *key, double def, double lo, double hi, double *out, char *err);
int pe_opt_int(const PeSpec *spec, const char *key, long long def, long long lo, long long hi, int *out, char *err);

#endif
