/*
 * kernels.c — forward/backward kernels of the transformer (see kernels.h).
 * Parallel loops split over independent outputs, never over a reduction, so the result of every
 * kernel is the same for any thread count.
 */
#include "model/kernels.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#define LN_EPS 1e-5f

static void layernorm_row(float *out, float *mean, float *rstd, const float *x, const float *w,
                          const float *b, int C) {
    float m = 0.0f;
    for (int c = 0; c < C; c++) m += x[c];
    m /= (float)C;
    float v = 0.0f;
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
    /* Weight gradients: each column summed over rows in a fixed order. */
#pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) {
        float sw = 0.0f, sb = 0.0f;
        for (size_t n = 0; n < N; n++) {
            float xhat = (inp[n * C + c] - mean[n]) * rstd[n];
            sw += dout[n * C + c] * xhat;
            sb += dout[n * C + c];
        }
        dw[c] += sw;
        db[c] += sb;
    }
}

void matmul_forward(float *out, const float *inp, const float *w, const float *bias, size_t N,
                    int IC, int OC) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)N, OC, IC, 1.0f, inp, IC, w, IC,
                0.0f, out, OC);
    if (!bias) return;
#pragma omp parallel for schedule(static)
    for (size_t n = 0; n < N; n++)
        for (int o = 0; o < OC; o++) out[n * OC + o] += bias[o];
}

void matmul_backward(float *dinp, int accumulate, float *dw, float *dbias, const float *dout,
                     const float *inp, const float *w, size_t N, int IC, int OC) {
    if (dinp)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)N, IC, OC, 1.0f, dout, OC, w,
                    IC, accumulate ? 1.0f : 0.0f, dinp, IC);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OC, IC, (int)N, 1.0f, dout, OC, inp, IC,
                1.0f, dw, IC);
    if (!dbias) return;
#pragma omp parallel for schedule(static)
    for (int o = 0; o < OC; o++) {
        float s = 0.0f;
        for (size_t n = 0; n < N; n++) s += dout[n * OC + o];
        dbias[o] += s;
    }
}

#define GELU_K 0.7978845608028654f /* sqrt(2/pi) */

void gelu_forward(float *out, const float *inp, size_t n) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        float x = inp[i];
        out[i] = 0.5f * x * (1.0f + tanhf(GELU_K * (x + 0.044715f * x * x * x)));
    }
}

void gelu_backward(float *dinp, const float *inp, const float *dout, size_t n) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        float x = inp[i];
        float u = GELU_K * (x + 0.044715f * x * x * x);
        float t = tanhf(u);
        float sech2 = 1.0f - t * t;
        float du = GELU_K * (1.0f + 3.0f * 0.044715f * x * x);
        dinp[i] = dout[i] * (0.5f * (1.0f + t) + 0.5f * x * sech2 * du);
    }
}

/*
 * One query row: p[j] = softmax_j(q.k_j * scale + b(i, j)) for j <= i, out = sum_j p[j] v_j.
 * k and v point at key 0 of this head; rows are `stride` floats apart. p has room for i + 1.
 */
static void attention_row(float *out, float *p, const float *q, const float *k, const float *v,
                          size_t stride, int i, int HS, float scale, const PeModel *pe, int layer,
                          int h) {
    float maxv = -INFINITY;
    for (int j = 0; j <= i; j++) {
        const float *kj = k + (size_t)j * stride;
        float s = 0.0f;
        for (int d = 0; d < HS; d++) s += q[d] * kj[d];
        p[j] = s * scale;
    }
    if (pe && pe->scheme->bias_row) pe->scheme->bias_row(pe, layer, h, i, 0, i + 1, p);
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
        const float *vj = v + (size_t)j * stride;
        for (int d = 0; d < HS; d++) out[d] += p[j] * vj[d];
    }
}

static void attention_head(float *out, float *att, const float *qkv, const PeModel *pe, int layer,
                           int b, int h, int T, int C, int NH) {
    int HS = C / NH;
    size_t stride = 3 * (size_t)C;
    float scale = 1.0f / sqrtf((float)HS);
    const float *base = qkv + (size_t)b * T * stride;
    float *a = att + ((size_t)b * NH + h) * T * T;
    for (int i = 0; i < T; i++) {
        float *p = a + (size_t)i * T;
        attention_row(out + ((size_t)b * T + i) * C + h * HS, p, base + i * stride + h * HS,
                      base + C + h * HS, base + 2 * C + h * HS, stride, i, HS, scale, pe, layer, h);
        for (int j = i + 1; j < T; j++) p[j] = 0.0f;
    }
}

void attention_forward(float *out, float *att, const float *qkv, const PeModel *pe, int layer,
                       int B, int T, int C, int NH) {
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) attention_head(out, att, qkv, pe, layer, b, h, T, C, NH);
}

void attention_forward_naive(float *out, float *att, const float *qkv, const PeModel *pe,
                             int layer, int B, int T, int C, int NH) {
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) attention_head(out, att, qkv, pe, layer, b, h, T, C, NH);
}

void attention_backward(float *dqkv, float *dscores, const float *dout, const float *qkv,
                        const float *att, int B, int T, int C, int NH) {
    int HS = C / NH;
    size_t stride = 3 * (size_t)C;
    float scale = 1.0f / sqrtf((float)HS);
    /* Each (b, h) owns its slice of dqkv and dscores, so the loop needs no synchronisation. */
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++) {
        for (int h = 0; h < NH; h++) {
            const float *base = qkv + (size_t)b * T * stride;
            float *dbase = dqkv + (size_t)b * T * stride;
            for (int t = 0; t < T; t++)
                for (int c = 0; c < 3; c++)
                    memset(dbase + t * stride + c * C + h * HS, 0, sizeof(float) * HS);
            const float *a = att + ((size_t)b * NH + h) * T * T;
            float *ds = dscores + ((size_t)b * NH + h) * T * T;
            for (int i = 0; i < T; i++) {
                const float *p = a + (size_t)i * T;
                float *dsi = ds + (size_t)i * T;
                const float *dy = dout + ((size_t)b * T + i) * C + h * HS;
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
                    dsi[j] = dp;
                    dot += p[j] * dp;
                }
                for (int j = 0; j <= i; j++) {
                    float g = p[j] * (dsi[j] - dot);
                    dsi[j] = g;
                    const float *kj = base + j * stride + C + h * HS;
                    float *dkj = dbase + j * stride + C + h * HS;
                    for (int d = 0; d < HS; d++) {
                        dq[d] += g * scale * kj[d];
                        dkj[d] += g * scale * q[d];
                    }
                }
                for (int j = i + 1; j < T; j++) dsi[j] = 0.0f;
            }
        }
    }
}

void attention_eval(float *out, float *scratch, const float *qkv, const PeModel *pe, int layer,
                    int n, int C, int NH) {
    int HS = C / NH;
    size_t stride = 3 * (size_t)C;
    float scale = 1.0f / sqrtf((float)HS);
#pragma omp parallel
    {
        float *p = scratch + (size_t)omp_get_thread_num() * (size_t)n;
        /* Row i costs O(i): dynamic scheduling keeps every thread busy. */
#pragma omp for collapse(2) schedule(dynamic, 8)
        for (int h = 0; h < NH; h++)
            for (int i = 0; i < n; i++)
                attention_row(out + (size_t)i * C + h * HS, p, qkv + (size_t)i * stride + h * HS,
                              qkv + C + h * HS, qkv + 2 * C + h * HS, stride, i, HS, scale, pe,
                              layer, h);
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
        for (int v = 0; v < V; v++) maxv = z[v] > maxv ? z[v] : maxv;
        float sum = 0.0f;
        for (int v = 0; v < V; v++) {
            p[v] = expf(z[v] - maxv);
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
