/*
 * kernels.h — the layers of the transformer as forward/backward pairs.
 *
 * Argument order: outputs, then inputs and weights, then sizes. Backward passes accumulate (+=)
 * into parameter gradients; input gradients are accumulated too unless a name says "set".
 * GEMMs go through CBLAS; the other loops use OpenMP over independent outputs, so results do not
 * depend on scheduling. Each OpenMP kernel keeps a serial _naive twin for the tests.
 */
#ifndef CB_KERNELS_H
#define CB_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "pe/pe.h"

/* out (N, C) = layernorm(inp (N, C)) * w + b; mean, rstd (N) saved for backward. */
void layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *w,
                       const float *b, size_t N, int C);
void layernorm_forward_naive(float *out, float *mean, float *rstd, const float *inp,
                             const float *w, const float *b, size_t N, int C);
/* dinp += ..., dw += ..., db += ... given dout (N, C). */
void layernorm_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                        const float *w, const float *mean, const float *rstd, size_t N, int C);

/* out (N, OC) = inp (N, IC) @ w^T (w: (OC, IC)) + bias (OC, may be NULL). */
typedef void MatmulForward(float *out, const float *inp, const float *w, const float *bias, size_t N,
                           int IC, int OC);
/* dinp (N, IC) = (accumulate ? dinp : 0) + dout @ w;  dw += dout^T @ inp;  dbias += sum(dout).
   dinp may be NULL (no input gradient). */
typedef void MatmulBackward(float *dinp, int accumulate, float *dw, float *dbias, const float *dout,
                            const float *inp, const float *w, size_t N, int IC, int OC);
MatmulForward matmul_forward;
MatmulBackward matmul_backward;

/* out (N, OC) = bias in every row: matmul_forward's start when it has a bias (the product is then
   added with beta = 1). */
void matmul_bias_rows(float *out, const float *bias, size_t N, int OC);
/* dbias (OC) += sum over rows of dout (N, OC): matmul_backward's bias gradient on its own. */
void matmul_bias_backward(float *dbias, const float *dout, size_t N, int OC);

/*
 * The same two GEMMs with bf16 operands and fp32 accumulation (gemm_bf16.c), for training at
 * precision bf16: inp, w and dout are rounded to bf16 (round to nearest even), the products
 * accumulate in fp32 into the fp32 outputs, and bias gradients are summed in fp32. Same arguments
 * and results up to bf16 rounding; same bits for the same inputs and thread count. Only after
 * bf16_gemm_supported() said yes. The rounded operands go to a scratch block of the calling thread
 * that grows on demand and is kept for its next call. A failure (that block cannot grow, oneDNN
 * returns an error) fills the outputs with NaN and is kept for bf16_gemm_take_status().
 */
MatmulForward matmul_forward_bf16;
MatmulBackward matmul_backward_bf16;
/* The first failure of the calling thread's bf16 GEMMs since the last call (CB_ENOMEM, or
   CB_EUNSUPPORTED for another oneDNN error), then CB_OK; CB_OK if none. */
int bf16_gemm_take_status(void);
/* Frees the calling thread's scratch (the next bf16 GEMM allocates it again). */
void bf16_gemm_release(void);
/* 1 if this build and CPU run the bf16 GEMMs (oneDNN, AVX512-BF16: AMX CPUs have it too);
   otherwise 0 with the reason, one line, in why. CTXBENCH_BF16=off makes it say no. */
int bf16_gemm_supported(char *why, size_t why_n);
/* out[i] = x[i] rounded to bf16: nearest even, denormals to signed zero, NaN to a quiet NaN (what
   AVX512-BF16's VCVTNEPS2BF16 does; bf16_round runs it, OpenMP over chunks outside a parallel
   region; only after bf16_gemm_supported() said yes). bf16_round_one and bf16_round_naive are its
   scalar twins, for any CPU. */
void bf16_round(uint16_t *out, const float *x, size_t n);
void bf16_round_naive(uint16_t *out, const float *x, size_t n);
uint16_t bf16_round_one(float x);

/* tanh-approximation GELU, elementwise over n. */
void gelu_forward(float *out, const float *inp, size_t n);
void gelu_backward(float *dinp, const float *inp, const float *dout, size_t n); /* dinp = set */
/* Training's pair: out = gelu(x) with x overwritten by gelu'(x); then dinp = dout * gelu'(x).
   Bit-identical to gelu_forward followed by gelu_backward (the reference twins). */
void gelu_forward_train(float *out, float *inp_to_deriv, size_t n);
void gelu_backward_saved(float *dinp, const float *deriv, const float *dout, size_t n); /* dinp = set */

/*
 * Causal attention with the encoding's logit bias.
 * qkv (B, T, 3C): q, k, v of every head; out (B, T, C); att (B, NH, T, T) the probabilities
 * (row i holds keys 0..i, zeros after), kept for backward.
 */
void attention_forward(float *out, float *att, const float *qkv, const PeModel *pe, int layer,
                       int B, int T, int C, int NH);
/* The naive twin: one row at a time, scalar dot products. */
void attention_forward_naive(float *out, float *att, const float *qkv, const PeModel *pe,
                             int layer, int B, int T, int C, int NH);
/* dqkv (B, T, 3C) = set; dscores (B, NH, T, T) = set: gradient w.r.t. the final (scaled, biased)
   scores. Relative key/value tables of the encoding (Shaw) and the parameters of a content term
   (CoPE's score_row_backward) get their gradients accumulated too (when pe->grads is set).
   Returns CB_OK, or CB_ENOMEM when the scratch of a content term cannot be allocated (other
   encodings allocate nothing). */
int attention_backward(float *dqkv, float *dscores, const float *dout, const float *qkv,
                       const float *att, const PeModel *pe, int layer, int B, int T, int C, int NH);
int attention_backward_naive(float *dqkv, float *dscores, const float *dout, const float *qkv,
                             const float *att, const PeModel *pe, int layer, int B, int T, int C, int NH);

/* Shared by the attention kernels (not for callers): the encoding's relative tables of `layer`
   (returns k, 0 without), and their gradients from dscores and att. */
int layer_relkv(const PeModel *pe, int layer, const float **wk, const float **wv, float **dwk, float **dwv);
void relkv_table_backward(float *dwk, float *dwv, int rel_k, const float *dscores, const float *att,
                          const float *qkv, const float *dout, int B, int T, int C, int NH);

/* Evaluation attention over one sequence of n positions: out (n, C) from qkv (n, 3C).
   qkv_alt (n, 3C): the alternative q and k of an eval-time variant, or NULL.
   entropy (NH, n): the entropy in nats of each query's attention distribution, or NULL.
   Streams keys in blocks of bk for blocks of bq queries with an online softmax (no n x n buffer);
   scratch: attention_eval_scratch_floats(...) floats, omp_get_max_threads() tiles of
   O(bq * bk) each. attention_eval uses the default blocks CB_ATT_BQ x CB_ATT_BK. */
#define CB_ATT_BQ 64
#define CB_ATT_BK 256
size_t attention_eval_scratch_floats(const PeModel *pe, int layer, int n, int C, int NH, int alt,
                                     int bq, int bk, int threads);
void attention_eval(float *out, float *entropy, float *scratch, const float *qkv, const float *qkv_alt,
                    const PeModel *pe, int layer, int n, int C, int NH);
void attention_eval_blocked(float *out, float *entropy, float *scratch, const float *qkv,
                            const float *qkv_alt, const PeModel *pe, int layer, int n, int C, int NH,
                            int bq, int bk);
/* The naive twin: one query row at a time with a full score row; scratch (threads, n). */
void attention_eval_naive(float *out, float *entropy, float *scratch, const float *qkv,
                          const float *qkv_alt, const PeModel *pe, int layer, int n, int C, int NH);
/* The exponential of the hot loops, inline so loops over it vectorise: 2^k * p(r) with a
   degree-6 Taylor polynomial on |r| <= ln2/2 (relative error ~2e-7); exactly 0 below -87 and
   for -inf (masked keys); e^88 for anything above 88; NaN for NaN (a diverging model must show). */
static inline float cb_exp(float x) {
    float xc = x < -87.0f ? -87.0f : x > 88.0f ? 88.0f : x == x ? x : 0.0f;
    float k = (xc * 1.44269504f + 12582912.0f) - 12582912.0f; /* round to nearest */
    float r = xc - k * 0.693145752f - k * 1.42860677e-6f;
    float p = 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    union {
        int i;
        float f;
    } two = {.i = ((int)k + 127) << 23};
    return x < -87.0f ? 0.0f : x == x ? p * two.f : x;
}
/* cb_exp as a function, for tests. */
float attention_exp(float x);

/* Cross-entropy: probs (N, V) = softmax(logits) (probs may equal logits); losses (N) in nats. */
void crossentropy_forward(float *probs, float *losses, const float *logits, const unsigned char *targets,
                          size_t N, int V);
/* dlogits (N, V) = (probs - onehot) * scale, written over probs. */
void crossentropy_backward(float *probs, const unsigned char *targets, size_t N, int V, float scale);

#endif
