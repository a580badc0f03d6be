/*
 * attention_train.c — training attention through GEMMs (see kernels.h).
 *
 * Per sequence b and head h, in blocks of ATT_ROWS query rows, the scores of rows [i0, i1) against
 * keys [0, i1) come from one sgemm (the causal triangle, block by block), the encoding's terms and
 * the softmax are applied row by row, and P V is a second sgemm. The backward is four sgemms per
 * block (dP = dO V^T, dV += P^T dO, dQ += dS K, dK += dS^T Q) around a row-wise softmax backward.
 * The probabilities (B, NH, T, T) are kept for the backward as before.
 *
 * Each (b, h) is one OpenMP task; sgemm inside a parallel region runs on the calling thread
 * (OpenBLAS's OpenMP build), so results do not depend on the thread count. The row-wise scalar
 * kernels in kernels.c are the naive twins.
 */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/kernels.h"

#define ATT_ROWS 64

/* What one (b, h) reads. */
typedef struct {
    const PeModel *pe;
    int layer, T, C, NH, HS, h;
    float scale;
    const float *wk, *wv; /* Shaw tables (2k + 1, HS) or NULL */
    int rel_k;
} Head;

static inline int rel_index(int j, int i, int k) {
    int d = j - i;
    return (d < -k ? -k : d) + k;
}

/* Row i of the scores (keys 0..i, the raw q.k in p): the encoding's terms, then the softmax; keys
   past i become 0. */
static void row_softmax(float *p, const float *q, const Head *a, int i) {
    const PeScheme *sc = a->pe ? a->pe->scheme : NULL;
#pragma omp simd
    for (int j = 0; j <= i; j++) p[j] *= a->scale;
    if (a->wk)
        for (int x = 0; x <= a->rel_k && x <= i + a->rel_k; x++) {
            const float *w = a->wk + (size_t)x * a->HS;
            float s = 0.0f;
            for (int d = 0; d < a->HS; d++) s += q[d] * w[d];
            s *= a->scale;
            /* keys with clipped distance x - k: one key, or every key at or past k back */
            int dist = x - a->rel_k;
            if (x == 0)
                for (int j = 0; j <= i - a->rel_k; j++) p[j] += s;
            else if (i + dist >= 0)
                p[i + dist] += s;
        }
    if (sc && sc->score_row) sc->score_row(a->pe, a->layer, a->h, i, q, p);
    if (sc && sc->bias_row) sc->bias_row(a->pe, a->layer, a->h, i, 0, i + 1, p);
    float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
    for (int j = 0; j <= i; j++) mx = p[j] > mx ? p[j] : mx;
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int j = 0; j <= i; j++) {
        p[j] = cb_exp(p[j] - mx);
        sum += p[j];
    }
    float inv = 1.0f / sum;
#pragma omp simd
    for (int j = 0; j <= i; j++) p[j] *= inv;
    for (int j = i + 1; j < a->T; j++) p[j] = 0.0f;
}

static void head_forward(float *out, float *att, const float *base, const Head *a) {
    int T = a->T, C = a->C, HS = a->HS;
    int ld = 3 * C;
    const float *Q = base + a->h * HS, *K = Q + C, *V = Q + 2 * C;
    for (int i0 = 0; i0 < T; i0 += ATT_ROWS) {
        int rows = T - i0 < ATT_ROWS ? T - i0 : ATT_ROWS, i1 = i0 + rows;
        float *P = att + (size_t)i0 * T;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, i1, HS, 1.0f, Q + (size_t)i0 * ld, ld, K, ld,
                    0.0f, P, T);
        for (int r = 0; r < rows; r++) row_softmax(P + (size_t)r * T, Q + (size_t)(i0 + r) * ld, a, i0 + r);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, HS, i1, 1.0f, P, T, V, ld, 0.0f,
                    out + (size_t)i0 * C + a->h * HS, C);
        if (!a->wv) continue;
        for (int r = 0; r < rows; r++) {
            int i = i0 + r;
            const float *p = P + (size_t)r * T;
            float *o = out + (size_t)i * C + a->h * HS;
            for (int j = 0; j <= i; j++) {
                const float *w = a->wv + (size_t)rel_index(j, i, a->rel_k) * HS;
                for (int d = 0; d < HS; d++) o[d] += p[j] * w[d];
            }
        }
    }
}

void attention_forward(float *out, float *att, const float *qkv, const PeModel *pe, int layer,
                       int B, int T, int C, int NH) {
    Head a = {.pe = pe, .layer = layer, .T = T, .C = C, .NH = NH, .HS = C / NH,
              .scale = 1.0f / sqrtf((float)(C / NH))};
    a.rel_k = layer_relkv(pe, layer, &a.wk, &a.wv, NULL, NULL);
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            Head ah = a;
            ah.h = h;
            head_forward(out + (size_t)b * T * C, att + ((size_t)b * NH + h) * T * T, qkv + (size_t)b * T * 3 * C, &ah);
        }
}

/* Row i of the backward: ds (keys 0..i) holds dO.V^T in, the gradient w.r.t. the final scores out
   (0 past i); g gets the gradient w.r.t. the scaled q.k scores (== ds unless a content term
   maps it, when work holds 2T floats and s the row's raw q.k). dq gets the content term's and
   Shaw's key-table share. */
static void row_backward(float *ds, float *g, float *dq, const float *p, const float *q, const float *dy,
                         const float *s, const Head *a, int i, float *work, float *dparam) {
    if (a->wv)
        for (int x = 0; x <= a->rel_k; x++) {
            const float *w = a->wv + (size_t)x * a->HS;
            float dw = 0.0f;
            for (int d = 0; d < a->HS; d++) dw += dy[d] * w[d];
            int dist = x - a->rel_k;
            if (x == 0)
                for (int j = 0; j <= i - a->rel_k; j++) ds[j] += dw;
            else if (i + dist >= 0)
                ds[i + dist] += dw;
        }
    float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
    for (int j = 0; j <= i; j++) dot += p[j] * ds[j];
#pragma omp simd
    for (int j = 0; j <= i; j++) ds[j] = p[j] * (ds[j] - dot);
    for (int j = i + 1; j < a->T; j++) ds[j] = 0.0f;
    if (g != ds) {
        for (int j = 0; j <= i; j++) g[j] = s[j] * a->scale;
        a->pe->scheme->score_row_backward(a->pe, a->layer, a->h, i, q, g, ds, dq, work, dparam);
        for (int j = i + 1; j < a->T; j++) g[j] = 0.0f;
    }
    if (a->wk) {
        /* dq += scale * sum_j g_j wk[idx(j)]: the mass of each table row first */
        for (int x = 0; x <= a->rel_k; x++) {
            int dist = x - a->rel_k;
            float m = 0.0f;
            if (x == 0)
                for (int j = 0; j <= i - a->rel_k; j++) m += g[j];
            else if (i + dist >= 0)
                m = g[i + dist];
            const float *w = a->wk + (size_t)x * a->HS;
            for (int d = 0; d < a->HS; d++) dq[d] += a->scale * m * w[d];
        }
    }
}

/* dbase (T, 3C) of this sequence: this head's columns set. G: (ATT_ROWS, T) scratch for a content
   term's score gradient (NULL without one), work (2T) and dparam its row scratch and partial. */
static void head_backward(float *dbase, float *ds, const float *dout, const float *base, const float *att,
                          const Head *a, float *G, float *work, float *dparam) {
    int T = a->T, C = a->C, HS = a->HS, ld = 3 * C;
    const float *Q = base + a->h * HS, *K = Q + C, *V = Q + 2 * C;
    float *dQ = dbase + a->h * HS, *dK = dQ + C, *dV = dQ + 2 * C;
    for (int t = 0; t < T; t++)
        for (int c = 0; c < 3; c++) memset(dQ + (size_t)t * ld + c * C, 0, sizeof(float) * HS);
    for (int i0 = 0; i0 < T; i0 += ATT_ROWS) {
        int rows = T - i0 < ATT_ROWS ? T - i0 : ATT_ROWS, i1 = i0 + rows;
        const float *P = att + (size_t)i0 * T, *dO = dout + (size_t)i0 * C + a->h * HS;
        float *dS = ds + (size_t)i0 * T;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, i1, HS, 1.0f, dO, C, V, ld, 0.0f, dS, T);
        if (G) /* the raw scores again, with the forward's very call: the same bits */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, i1, HS, 1.0f, Q + (size_t)i0 * ld, ld, K,
                        ld, 0.0f, G, T);
        for (int r = 0; r < rows; r++) {
            int i = i0 + r;
            float *dsr = dS + (size_t)r * T, *g = G ? G + (size_t)r * T : dsr;
            row_backward(dsr, g, dQ + (size_t)i * ld, P + (size_t)r * T, Q + (size_t)i * ld, dO + (size_t)r * C,
                         g, a, i, work, dparam);
        }
        const float *Gs = G ? G : dS;
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, i1, HS, rows, 1.0f, P, T, dO, C, 1.0f, dV, ld);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, HS, i1, a->scale, Gs, T, K, ld, 1.0f,
                    dQ + (size_t)i0 * ld, ld);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, i1, HS, rows, a->scale, Gs, T, Q + (size_t)i0 * ld,
                    ld, 1.0f, dK, ld);
    }
}

int attention_backward(float *dqkv, float *dscores, const float *dout, const float *qkv,
                       const float *att, const PeModel *pe, int layer, int B, int T, int C, int NH) {
    Head a = {.pe = pe, .layer = layer, .T = T, .C = C, .NH = NH, .HS = C / NH,
              .scale = 1.0f / sqrtf((float)(C / NH))};
    float *dwk, *dwv;
    a.rel_k = layer_relkv(pe, layer, &a.wk, &a.wv, &dwk, &dwv);
    /* A content term (CoPE) needs per (b, h) a block of score gradients, two scratch rows and,
       when training the encoding, a partial gradient of the layer's parameters; partials are
       summed in (b, h) order below, so the result is the same for every thread count. */
    int scored = pe && pe->scheme->score_row_backward;
    size_t G = scored && pe->grads ? pe_param_count(pe) / (size_t)pe->dims.n_layer : 0;
    size_t per = scored ? (size_t)ATT_ROWS * T + 2 * (size_t)T + G : 0;
    float *work = NULL;
    if (scored) {
        work = calloc((size_t)B * NH * per, sizeof *work);
        if (!work) return CB_ENOMEM;
    }
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            Head ah = a;
            ah.h = h;
            float *w = work ? work + ((size_t)b * NH + h) * per : NULL;
            head_backward(dqkv + (size_t)b * T * 3 * C, dscores + ((size_t)b * NH + h) * T * T,
                          dout + (size_t)b * T * C, qkv + (size_t)b * T * 3 * C, att + ((size_t)b * NH + h) * T * T,
                          &ah, w, w ? w + (size_t)ATT_ROWS * T : NULL,
                          G ? w + (size_t)ATT_ROWS * T + 2 * (size_t)T : NULL);
        }
    if (G) {
        float *dparam = pe->grads + (size_t)layer * G;
#pragma omp parallel for schedule(static)
        for (size_t x = 0; x < G; x++) {
            float sum = 0.0f;
            for (size_t bh = 0; bh < (size_t)B * NH; bh++) sum += work[bh * per + (size_t)ATT_ROWS * T + 2 * (size_t)T + x];
            dparam[x] += sum;
        }
    }
    free(work);
    if (dwk) relkv_table_backward(dwk, dwv, a.rel_k, dscores, att, qkv, dout, B, T, C, NH);
    return CB_OK;
}
