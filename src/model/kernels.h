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
void matmul_forward(float *out, const float *inp, const float *w, const float *bias, size_t N,
                    int IC, int OC);
/* dinp (N, IC) = (accumulate ? dinp : 0) + dout @ w;  dw += dout^T @ inp;  dbias += sum(dout). */
void matmul_backward(float *dinp, int accumulate, float *dw, float *dbias, const float *dout,
                     const float *inp, const float *w, size_t N, int IC, int OC);

/* tanh-approximation GELU, elementwise over n. */
void gelu_forward(float *out, const float *inp, size_t n);
void gelu_backward(float *dinp, const float *inp, const float *dout, size_t n); /* dinp = set */

/*
 * Causal attention with the encoding's logit bias.
 * qkv (B, T, 3C): q, k, v of every head; out (B, T, C); att (B, NH, T, T) the probabilities
 * (row i holds keys 0..i, zeros after), kept for backward.
 */
void attention_forward(float *out, float *att, const float *qkv, const PeModel *pe, int layer,
                       int B, int T, int C, int NH);
void attention_forward_naive(float *out, float *att, const float *qkv, const PeModel *pe,
                             int layer, int B, int T, int C, int NH);
/* dqkv (B, T, 3C) = set; dscores (B, NH, T, T) = set: gradient w.r.t. the final (scaled, biased)
   scores. Relative key/value tables of the encoding (Shaw) and the parameters of a content term
   (CoPE's score_row_backward) get their gradients accumulated too (when pe->grads is set).
   Returns CB_OK, or CB_ENOMEM when the scratch of a content term cannot be allocated (other
   encodings allocate nothing). */
int attention_backward(float *dqkv, float *dscores, const float *dout, const float *qkv,
                       const float *att, const PeModel *pe, int layer, int B, int T, int C, int NH);

/* Evaluation attention over one sequence of n positions: out (n, C) from qkv (n, 3C), streaming
   one query row at a time. scratch (omp_get_max_threads(), n): one score row per thread.
   qkv_alt (n, 3C): the alternative q and k of an eval-time variant, or NULL.
   entropy (NH, n): the entropy in nats of each query's attention distribution, or NULL. */
void attention_eval(float *out, float *entropy, float *scratch, const float *qkv, const float *qkv_alt,
                    const PeModel *pe, int layer, int n, int C, int NH);

/* Cross-entropy: probs (N, V) = softmax(logits) (probs may equal logits); losses (N) in nats. */
void crossentropy_forward(float *probs, float *losses, const float *logits, const unsigned char *targets,
                          size_t N, int V);
/* dlogits (N, V) = (probs - onehot) * scale, written over probs. */
void crossentropy_backward(float *probs, const unsigned char *targets, size_t N, int V, float scale);

#endif
