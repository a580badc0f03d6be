/*
 * kernels.c — forward/backward kernels of the transformer (see kernels.h).
 * Parallel loops split over independent outputs, never over a reduction, so the result of every
 * kernel is the same for any thread count.
 */
#include "model/kernels.h"

#include <assert.h>
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#define LN_EPS 1e-5f
#define COL_BAND 32 /* columns per task of the column sums */

static void layernorm_row(float *out, float *mean, float *rstd, const float *x, const float *w,
                          const float *b, int C) {
    /* simd reductions: partial sums in vector lanes instead of one chain of C dependent adds (a
       fixed order for a given build, so the same bits every run). */
    float m = 0.0f;
#pragma omp simd reduction(+ : m)
    for (int c = 0; c < C; c++) m += x[c];
    m /= (float)C;
    float v = 0.0f;
#pragma omp simd reduction(+ : v)
    for (int c = 0; c < C; c++) {
        float d = x[c] - m;
        v += d * d;
    }
    v /= (float)C;
    float s = 1.0f / sqrtf(v + LN_EPS);
    for (int c = 0; c < C; c++) out[c] = (x[c] - m) * s * w[c] + b[c];
    *mean = m;
    *rstd = s;
}

void layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *w,
                       const float *b, size_t N, int C) {
#pragma omp parallel for schedule(static)
    for (size_t n = 0; n < N; n++)
        layernorm_row(out + n * C, mean + n, rstd + n, inp + n * C, w, b, C);
}

void layernorm_forward_naive(float *out, float *mean, float *rstd, const float *inp,
                             const float *w, const float *b, size_t N, int C) {
    for (size_t n = 0; n < N; n++)
        layernorm_row(out + n * C, mean + n, rstd + n, inp + n * C, w, b, C);
}

void layernorm_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                        const float *w, const float *mean, const float *rstd, size_t N, int C) {
    /* Input gradients are independent per row. */
#pragma omp parallel for schedule(static)
    for (size_t n = 0; n < N; n++) {
        const float *dy = dout + n * C, *x = inp + n * C;
        float m = mean[n], s = rstd[n];
        float mean_dxhat = 0.0f, mean_dxhat_xhat = 0.0f;
#pragma omp simd reduction(+ : mean_dxhat, mean_dxhat_xhat)
        for (int c = 0; c < C; c++) {
            float xhat = (x[c] - m) * s;
            float dxhat = dy[c] * w[c];
            mean_dxhat += dxhat;
            mean_dxhat_xhat += dxhat * xhat;
        }
        mean_dxhat /= (float)C;
        mean_dxhat_xhat /= (float)C;
        float *dx = dinp + n * C;
        for (int c = 0; c < C; c++) {
            float xhat = (x[c] - m) * s;
            float dxhat = dy[c] * w[c];
            dx[c] += (dxhat - mean_dxhat - xhat * mean_dxhat_xhat) * s;
        }
    }
    /* Weight gradients: each column summed over rows in a fixed order, a band of columns per
       task so the inner loop runs along a row. */
#pragma omp parallel for schedule(static)
    for (int c0 = 0; c0 < C; c0 += COL_BAND) {
        int c1 = c0 + COL_BAND < C ? c0 + COL_BAND : C;
        float sw[COL_BAND] = {0}, sb[COL_BAND] = {0};
        for (size_t n = 0; n < N; n++) {
            const float *x = inp + n * C, *dy = dout + n * C;
            float m = mean[n], s = rstd[n];
#pragma omp simd
            for (int c = c0; c < c1; c++) {
                sw[c - c0] += dy[c] * ((x[c] - m) * s);
                sb[c - c0] += dy[c];
            }
        }
        for (int c = c0; c < c1; c++) dw[c] += sw[c - c0], db[c] += sb[c - c0];
    }
}

/* sum[o] += column o of x (N, OC), rows added in order: bands of columns run in parallel. */
static void column_sums(float *sum, const float *x, size_t N, int OC) {
#pragma omp parallel for schedule(static)
    for (int o0 = 0; o0 < OC; o0 += COL_BAND) {
        int o1 = o0 + COL_BAND < OC ? o0 + COL_BAND : OC;
        float acc[COL_BAND] = {0};
        for (size_t n = 0; n < N; n++) {
            const float *row = x + n * OC;
#pragma omp simd
            for (int o = o0; o < o1; o++) acc[o - o0] += row[o];
        }
        for (int o = o0; o < o1; o++) sum[o] += acc[o - o0];
    }
}

void matmul_bias_rows(float *out, const float *bias, size_t N, int OC) {
#pragma omp parallel for schedule(static)
    for (size_t n = 0; n < N; n++) memcpy(out + n * OC, bias, sizeof(float) * (size_t)OC);
}

/* Rows [r0, r1) of matmul_forward: the bias rows first and the product added to them (beta = 1),
   one pass over out fewer than adding the bias afterwards to a product written over zeros. */
static void matmul_rows(float *out, const float *inp, const float *w, const float *bias, size_t r0,
                        size_t r1, int IC, int OC) {
    if (bias) matmul_bias_rows(out + r0 * OC, bias, r1 - r0, OC);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)(r1 - r0), OC, IC, 1.0f, inp + r0 * IC, IC, w,
                IC, bias ? 1.0f : 0.0f, out + r0 * OC, OC);
}

/* Rows per thread below which matmul_forward leaves the threading to the BLAS. */
#define MATMUL_SPLIT_ROWS 256

void matmul_forward(float *out, const float *inp, const float *w, const float *bias, size_t N,
                    int IC, int OC) {
    /* Outside a parallel region, long inputs are split into one band of rows per thread, each a
       single-threaded sgemm: measured 1.4x faster at two threads than OpenBLAS's own split of an
       8192 x 128 -> 512 product, which scaled 1.4x where the bands scale 2x. Every output row is
       the same dot products either way, summed in an order that OpenBLAS may pick by the band's
       shape: the numbers depend on the thread count, as the rest of the model's do. */
    size_t parts = omp_in_parallel() ? 1 : (size_t)omp_get_max_threads();
    if (parts > N / MATMUL_SPLIT_ROWS) parts = N / MATMUL_SPLIT_ROWS;
    if (parts <= 1) {
        matmul_rows(out, inp, w, bias, 0, N, IC, OC);
        return;
    }
#pragma omp parallel for num_threads((int)parts) schedule(static, 1)
    for (size_t k = 0; k < parts; k++) matmul_rows(out, inp, w, bias, N * k / parts, N * (k + 1) / parts, IC, OC);
}

void matmul_backward(float *dinp, int accumulate, float *dw, float *dbias, const float *dout,
                     const float *inp, const float *w, size_t N, int IC, int OC) {
    if (dinp)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)N, IC, OC, 1.0f, dout, OC, w,
                    IC, accumulate ? 1.0f : 0.0f, dinp, IC);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OC, IC, (int)N, 1.0f, dout, OC, inp, IC,
                1.0f, dw, IC);
    if (dbias) column_sums(dbias, dout, N, OC);
}

void matmul_bias_backward(float *dbias, const float *dout, size_t N, int OC) { column_sums(dbias, dout, N, OC); }

#define GELU_K 0.7978845608028654f /* sqrt(2/pi) */

/* tanh through one exponential: glibc's tanhf is several times slower and GELU is a hot loop; the
   inline cb_exp lets the loops vectorise. Saturates cleanly (e^88 gives 1, underflow -1). */
static inline float fast_tanh(float u) { return 1.0f - 2.0f / (cb_exp(2.0f * u) + 1.0f); }

/* tanh(sqrt(2/pi) (x + 0.044715 x^3)), and GELU's derivative given it: shared by the forward,
   the backward and the training forward, so all three compute the same bits. */
static inline float gelu_tanh(float x) { return fast_tanh(GELU_K * (x + 0.044715f * x * x * x)); }

static inline float gelu_deriv(float x, float t) {
    float sech2 = 1.0f - t * t;
    float du = GELU_K * (1.0f + 3.0f * 0.044715f * x * x);
    return 0.5f * (1.0f + t) + 0.5f * x * sech2 * du;
}

void gelu_forward(float *out, const float *inp, size_t n) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        float x = inp[i];
        out[i] = 0.5f * x * (1.0f + gelu_tanh(x));
    }
}

void gelu_backward(float *dinp, const float *inp, const float *dout, size_t n) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        float x = inp[i];
        dinp[i] = dout[i] * gelu_deriv(x, gelu_tanh(x));
    }
}

/* GELU's forward for training: out = gelu(x) and x replaced in place by gelu'(x), the one thing
   the backward needs, so the backward is a product and the tanh is computed once per step. */
void gelu_forward_train(float *out, float *inp_to_deriv, size_t n) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        float x = inp_to_deriv[i], t = gelu_tanh(x);
        out[i] = 0.5f * x * (1.0f + t);
        inp_to_deriv[i] = gelu_deriv(x, t);
    }
}

void gelu_backward_saved(float *dinp, const float *deriv, const float *dout, size_t n) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) dinp[i] = dout[i] * deriv[i];
}

/* What one query row of one head reads. */
typedef struct {
    const float *q;        /* (HS) the query */
    const float *k, *v;    /* key 0 and value 0 of this head; rows `stride` floats apart */
    const float *qa, *ka;  /* the alternative query and key 0, or NULL (eval-time variants) */
    size_t stride;
    int i, HS;
    float scale;
    const PeModel *pe;
    int layer, h;
    const float *wk, *wv;  /* Shaw tables (2 rel_k + 1, HS) or NULL */
    int rel_k;
} AttRow;

/* Index of the relative table row for key j of query i (j <= i). */
static inline int relkv_index(int j, int i, int k) {
    int d = j - i;
    return (d < -k ? -k : d) + k;
}

/* a . b over HS: the one place scores are summed, so the backward recomputes them bit for bit. */
static inline float dot_hs(const float *a, const float *b, int HS) {
    float s = 0.0f;
    for (int d = 0; d < HS; d++) s += a[d] * b[d];
    return s;
}

/*
 * p[j] = softmax_j(score(i, j)) for j <= i and out = sum_j p[j] (v_j [+ wv[idx]]), where
 * score = (q.k_j [+ q.wk[idx]]) * scale [+ the content term of score_row] + b(i, j), or the
 * alternative q.k for keys the encoding says, and -inf for masked keys. p has room for i + 1 floats.
 */
static void attention_row(float *out, float *p, const AttRow *r) {
    int i = r->i, HS = r->HS;
    int alt_end = 0, mask_lo = 0, mask_hi = 0;
    if (r->pe && r->pe->scheme->alt_row) r->pe->scheme->alt_row(r->pe, i, &alt_end, &mask_lo, &mask_hi);
    if (!r->qa) alt_end = 0;
    for (int j = 0; j <= i; j++) {
        const float *qq = j < alt_end ? r->qa : r->q;
        const float *kj = (j < alt_end ? r->ka : r->k) + (size_t)j * r->stride;
        p[j] = dot_hs(qq, kj, HS) * r->scale;
    }
    float qw[PE_RELKV_MAX_K + 1];
    if (r->wk) {
        for (int x = 0; x <= r->rel_k; x++) {
            const float *w = r->wk + (size_t)x * HS;
            float s = 0.0f;
            for (int d = 0; d < HS; d++) s += r->q[d] * w[d];
            qw[x] = s * r->scale;
        }
        for (int j = 0; j <= i; j++) p[j] += qw[relkv_index(j, i, r->rel_k)];
    }
    if (r->pe && r->pe->scheme->score_row) r->pe->scheme->score_row(r->pe, r->layer, r->h, i, r->q, p);
    if (r->pe && r->pe->scheme->bias_row) r->pe->scheme->bias_row(r->pe, r->layer, r->h, i, 0, i + 1, p);
    for (int j = mask_lo; j < mask_hi && j <= i; j++) p[j] = -INFINITY;
    float maxv = -INFINITY;
    for (int j = 0; j <= i; j++) maxv = p[j] > maxv ? p[j] : maxv;
    float sum = 0.0f;
    for (int j = 0; j <= i; j++) {
        p[j] = expf(p[j] - maxv);
        sum += p[j];
    }
    float inv = 1.0f / sum;
    for (int d = 0; d < HS; d++) out[d] = 0.0f;
    for (int j = 0; j <= i; j++) {
        p[j] *= inv;
        const float *vj = r->v + (size_t)j * r->stride;
        for (int d = 0; d < HS; d++) out[d] += p[j] * vj[d];
    }
    if (r->wv)
        for (int j = 0; j <= i; j++) {
            const float *w = r->wv + (size_t)relkv_index(j, i, r->rel_k) * HS;
            for (int d = 0; d < HS; d++) out[d] += p[j] * w[d];
        }
}

int layer_relkv(const PeModel *pe, int layer, const float **wk, const float **wv, float **dwk,
                       float **dwv) {
    *wk = *wv = NULL;
    if (dwk) *dwk = *dwv = NULL;
    if (!pe || !pe->scheme->relkv) return 0;
    float *gk, *gv;
    int k = pe->scheme->relkv(pe, layer, wk, wv, &gk, &gv);
    if (dwk) *dwk = gk, *dwv = gv;
    return k;
}

static void attention_head(float *out, float *att, const float *qkv, const PeModel *pe, int layer,
                           int b, int h, int T, int C, int NH) {
    int HS = C / NH;
    size_t stride = 3 * (size_t)C;
    const float *base = qkv + (size_t)b * T * stride;
    float *a = att + ((size_t)b * NH + h) * T * T;
    AttRow r = {.k = base + C + h * HS, .v = base + 2 * C + h * HS, .stride = stride, .HS = HS,
                .scale = 1.0f / sqrtf((float)HS), .pe = pe, .layer = layer, .h = h};
    r.rel_k = layer_relkv(pe, layer, &r.wk, &r.wv, NULL, NULL);
    for (int i = 0; i < T; i++) {
        float *p = a + (size_t)i * T;
        r.i = i;
        r.q = base + i * stride + h * HS;
        attention_row(out + ((size_t)b * T + i) * C + h * HS, p, &r);
        for (int j = i + 1; j < T; j++) p[j] = 0.0f;
    }
}

void attention_forward_naive(float *out, float *att, const float *qkv, const PeModel *pe,
                             int layer, int B, int T, int C, int NH) {
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) attention_head(out, att, qkv, pe, layer, b, h, T, C, NH);
}

/* Shaw's tables: each row x of dwk and dwv sums over every (b, h, i, j) whose clipped distance
   maps to x; rows are independent, so the loop over x runs in parallel with a fixed order inside. */
void relkv_table_backward(float *dwk, float *dwv, int rel_k, const float *dscores,
                                 const float *att, const float *qkv, const float *dout, int B, int T,
                                 int C, int NH) {
    int HS = C / NH;
    size_t stride = 3 * (size_t)C;
    float scale = 1.0f / sqrtf((float)HS);
#pragma omp parallel for schedule(dynamic, 1)
    for (int x = 0; x <= 2 * rel_k; x++) {
        float *gk = dwk + (size_t)x * HS, *gv = dwv + (size_t)x * HS;
        for (int b = 0; b < B; b++)
            for (int h = 0; h < NH; h++)
                for (int i = 0; i < T; i++) {
                    const float *ds = dscores + (((size_t)b * NH + h) * T + i) * T;
                    const float *p = att + (((size_t)b * NH + h) * T + i) * T;
                    /* keys j <= i with relkv_index(j, i) == x */
                    int d = x - rel_k, jlo, jhi;
                    if (d > 0) continue;
                    if (d == -rel_k) jlo = 0, jhi = i - rel_k;
                    else jlo = jhi = i + d;
                    if (jhi < 0) continue;
                    if (jlo < 0) jlo = 0;
                    float sds = 0.0f, sp = 0.0f;
                    for (int j = jlo; j <= jhi; j++) sds += ds[j], sp += p[j];
                    const float *q = qkv + ((size_t)b * T + i) * stride + h * HS;
                    const float *dy = dout + ((size_t)b * T + i) * C + h * HS;
                    for (int e = 0; e < HS; e++) {
                        gk[e] += scale * sds * q[e];
                        gv[e] += sp * dy[e];
                    }
                }
    }
}

/* What one (b, h) of the backward reads besides its slices of qkv, att, dout, dqkv and dscores. */
typedef struct {
    const PeModel *pe;
    int layer;
    float scale;
    const float *wk, *wv; /* Shaw tables or NULL */
    int rel_k;
    float *work;   /* score_row_backward: (2T) scratch rows, or NULL */
    float *dparam; /* score_row_backward: this (b, h)'s partial parameter gradient, or NULL */
} AttBack;

/* dqkv (T, 3C) of sequence b, head h = set, dscores (T, T) of (b, h) = set. */
static void attention_head_backward(float *dbase, float *ds, const float *dout_b, const float *base,
                                    const float *a, const AttBack *ab, int h, int T, int C, int NH) {
    int HS = C / NH;
    size_t stride = 3 * (size_t)C;
    float scale = ab->scale;
    const float *wk = ab->wk, *wv = ab->wv;
    int rel_k = ab->rel_k;
    for (int t = 0; t < T; t++)
        for (int c = 0; c < 3; c++) memset(dbase + t * stride + c * C + h * HS, 0, sizeof(float) * HS);
    for (int i = 0; i < T; i++) {
        const float *p = a + (size_t)i * T;
        float *dsi = ds + (size_t)i * T;
        const float *dy = dout_b + (size_t)i * C + h * HS;
        const float *q = base + i * stride + h * HS;
        float *dq = dbase + i * stride + h * HS;
        float dot = 0.0f;
        for (int j = 0; j <= i; j++) {
            const float *vj = base + j * stride + 2 * C + h * HS;
            float *dvj = dbase + j * stride + 2 * C + h * HS;
            float dp = 0.0f;
            for (int d = 0; d < HS; d++) {
                dp += dy[d] * vj[d];
                dvj[d] += p[j] * dy[d];
            }
            if (wv) {
                const float *w = wv + (size_t)relkv_index(j, i, rel_k) * HS;
                for (int d = 0; d < HS; d++) dp += dy[d] * w[d];
            }
            dsi[j] = dp;
            dot += p[j] * dp;
        }
        for (int j = 0; j <= i; j++) dsi[j] = p[j] * (dsi[j] - dot);
        /* dsi: the gradient w.r.t. the final scores. A content term (CoPE) maps it to the gradient
           w.r.t. the scaled q.k scores, recomputed here exactly as the forward computed them. */
        const float *gs = dsi;
        if (ab->work) {
            float *s = ab->work;
            for (int j = 0; j <= i; j++) s[j] = dot_hs(q, base + j * stride + C + h * HS, HS) * scale;
            ab->pe->scheme->score_row_backward(ab->pe, ab->layer, h, i, q, s, dsi, dq, ab->work + T, ab->dparam);
            gs = s;
        }
        for (int j = 0; j <= i; j++) {
            float g = gs[j];
            const float *kj = base + j * stride + C + h * HS;
            float *dkj = dbase + j * stride + C + h * HS;
            for (int d = 0; d < HS; d++) {
                dq[d] += g * scale * kj[d];
                dkj[d] += g * scale * q[d];
            }
            if (wk) {
                const float *w = wk + (size_t)relkv_index(j, i, rel_k) * HS;
                for (int d = 0; d < HS; d++) dq[d] += g * scale * w[d];
            }
        }
        for (int j = i + 1; j < T; j++) dsi[j] = 0.0f;
    }
}

int attention_backward_naive(float *dqkv, float *dscores, const float *dout, const float *qkv,
                             const float *att, const PeModel *pe, int layer, int B, int T, int C, int NH) {
    int HS = C / NH;
    size_t stride = 3 * (size_t)C;
    AttBack ab = {.pe = pe, .layer = layer, .scale = 1.0f / sqrtf((float)HS)};
    float *dwk, *dwv;
    ab.rel_k = layer_relkv(pe, layer, &ab.wk, &ab.wv, &dwk, &dwv);
    /* A content term (CoPE): each (b, h) gets two scratch rows and, when training the encoding, a
       partial gradient of the layer's parameters; partials are summed in (b, h) order below, so
       the result is the same for every thread count. */
    int scored = pe && pe->scheme->score_row_backward;
    assert(!(scored && ab.wk)); /* score_row schemes have no relkv tables */
    size_t G = scored && pe->grads ? pe_param_count(pe) / (size_t)pe->dims.n_layer : 0;
    size_t per = 2 * (size_t)T + G;
    float *work = NULL;
    if (scored) {
        work = calloc((size_t)B * NH * per, sizeof *work);
        if (!work) return CB_ENOMEM;
    }
    /* Each (b, h) owns its slice of dqkv, dscores and work, so the loop needs no synchronisation. */
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++) {
        for (int h = 0; h < NH; h++) {
            AttBack kb = ab;
            if (work) {
                kb.work = work + ((size_t)b * NH + h) * per;
                kb.dparam = G ? kb.work + 2 * (size_t)T : NULL;
            }
            attention_head_backward(dqkv + (size_t)b * T * stride, dscores + ((size_t)b * NH + h) * T * T,
                                    dout + (size_t)b * T * C, qkv + (size_t)b * T * stride,
                                    att + ((size_t)b * NH + h) * T * T, &kb, h, T, C, NH);
        }
    }
    if (G) {
        float *dparam = pe->grads + (size_t)layer * G;
#pragma omp parallel for schedule(static)
        for (size_t x = 0; x < G; x++) {
            float sum = 0.0f;
            for (size_t bh = 0; bh < (size_t)B * NH; bh++) sum += work[bh * per + 2 * (size_t)T + x];
            dparam[x] += sum;
        }
    }
    free(work);
    if (dwk) relkv_table_backward(dwk, dwv, ab.rel_k, dscores, att, qkv, dout, B, T, C, NH);
    return CB_OK;
}

void attention_eval_naive(float *out, float *entropy, float *scratch, const float *qkv, const float *qkv_alt,
                    const PeModel *pe, int layer, int n, int C, int NH) {
    int HS = C / NH;
    size_t stride = 3 * (size_t)C;
    const float *wk, *wv;
    int rel_k = layer_relkv(pe, layer, &wk, &wv, NULL, NULL);
#pragma omp parallel
    {
        float *p = scratch + (size_t)omp_get_thread_num() * (size_t)n;
        AttRow r = {.stride = stride, .HS = HS, .scale = 1.0f / sqrtf((float)HS), .pe = pe,
                    .layer = layer, .wk = wk, .wv = wv, .rel_k = rel_k};
        /* Row i costs O(i): dynamic scheduling keeps every thread busy. */
#pragma omp for collapse(2) schedule(dynamic, 8)
        for (int h = 0; h < NH; h++)
            for (int i = 0; i < n; i++) {
                r.h = h;
                r.i = i;
                r.q = qkv + (size_t)i * stride + h * HS;
                r.k = qkv + C + h * HS;
                r.v = qkv + 2 * C + h * HS;
                r.qa = qkv_alt ? qkv_alt + (size_t)i * stride + h * HS : NULL;
                r.ka = qkv_alt ? qkv_alt + C + h * HS : NULL;
                attention_row(out + (size_t)i * C + h * HS, p, &r);
                if (entropy) {
                    float e = 0.0f;
                    for (int j = 0; j <= i; j++)
                        if (p[j] > 0.0f) e -= p[j] * logf(p[j]);
                    entropy[(size_t)h * n + i] = e;
                }
            }
    }
}

void crossentropy_forward(float *probs, float *losses, const float *logits,
                          const unsigned char *targets, size_t N, int V) {
#pragma omp parallel for schedule(static)
    for (size_t n = 0; n < N; n++) {
        const float *z = logits + n * V;
        float *p = probs + n * V;
        float zt = z[targets[n]]; /* read before p may overwrite z */
        float maxv = -INFINITY;
#pragma omp simd reduction(max : maxv)
        for (int v = 0; v < V; v++) maxv = z[v] > maxv ? z[v] : maxv;
        float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
        for (int v = 0; v < V; v++) {
            p[v] = cb_exp(z[v] - maxv);
            sum += p[v];
        }
        float inv = 1.0f / sum;
        for (int v = 0; v < V; v++) p[v] *= inv;
        losses[n] = -(zt - maxv - logf(sum));
    }
}

void crossentropy_backward(float *probs, const unsigned char *targets, size_t N, int V, float scale) {
#pragma omp parallel for schedule(static)
    for (size_t n = 0; n < N; n++) {
        float *p = probs + n * V;
        p[targets[n]] -= 1.0f;
        for (int v = 0; v < V; v++) p[v] *= scale;
    }
}
