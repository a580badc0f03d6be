/*
 * attention_stream.c — evaluation attention in blocks with an online softmax (see kernels.h).
 *
 * Each task is one head and one block of bq queries. It walks the key blocks of bk keys from the
 * diagonal down to key 0; per block, the scores come from one sgemm (Q_blk K_blk^T), the
 * encoding's terms are added in the same order as the row kernel adds them (relative key table,
 * content term, bias, mask), and a running maximum m, sum l and output acc are rescaled so no
 * row ever needs more than one block of scores. Memory is O(bq * bk) per thread whatever n is.
 * The descending order lets a content term that counts keys from the query backwards (CoPE)
 * carry its count across blocks; the online softmax itself does not care about order.
 *
 * sgemm runs inside an OpenMP parallel region, where OpenBLAS's OpenMP build stays on the calling
 * thread: a task's arithmetic is the same for every thread count.
 */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <string.h>

#include "model/kernels.h"

float attention_exp(float x) { return cb_exp(x); }

/* The per-thread scratch of one task, carved from one block. */
typedef struct {
    float *s, *sa;     /* (bq, bk) scores; the alternative branch's, when there is one */
    float *acc;        /* (bq, HS) unnormalised output */
    float *m, *l, *t;  /* (bq) running max, sum of e^(s - m), sum of e^(s - m) (s - m) */
    float *qw, *bins;  /* (bq, k + 1) Shaw: q . wk[x] * scale; probability mass per table row */
    float *carry;      /* (bq, PE_SCORE_CARRY) content term state */
    int *alt_end, *mask_lo, *mask_hi; /* (bq) */
} Tile;

static size_t tile_floats(const PeModel *pe, int HS, int bq, int bk, int rel_k, int alt) {
    size_t f = (size_t)bq * bk * (alt ? 2 : 1) + (size_t)bq * HS + 3 * (size_t)bq + 3 * (size_t)bq;
    if (rel_k) f += 2 * (size_t)bq * (rel_k + 1);
    if (pe && pe->scheme->score_block) f += (size_t)bq * PE_SCORE_CARRY;
    return f;
}

static int layer_rel_k(const PeModel *pe, int layer, const float **wk, const float **wv) {
    float *gk, *gv;
    *wk = *wv = NULL;
    if (!pe || !pe->scheme->relkv) return 0;
    return pe->scheme->relkv(pe, layer, wk, wv, &gk, &gv);
}

size_t attention_eval_scratch_floats(const PeModel *pe, int layer, int n, int C, int NH, int alt,
                                     int bq, int bk, int threads) {
    (void)n;
    const float *wk, *wv;
    int rel_k = layer_rel_k(pe, layer, &wk, &wv);
    return (size_t)threads * tile_floats(pe, C / NH, bq, bk, rel_k, alt);
}

static Tile tile_carve(float *f, const PeModel *pe, int HS, int bq, int bk, int rel_k, int alt) {
    Tile t = {0};
    t.s = f, f += (size_t)bq * bk;
    if (alt) t.sa = f, f += (size_t)bq * bk;
    t.acc = f, f += (size_t)bq * HS;
    t.m = f, f += bq;
    t.l = f, f += bq;
    t.t = f, f += bq;
    t.alt_end = (int *)f, f += bq; /* int and float have the same size here */
    t.mask_lo = (int *)f, f += bq;
    t.mask_hi = (int *)f, f += bq;
    if (rel_k) {
        t.qw = f, f += (size_t)bq * (rel_k + 1);
        t.bins = f, f += (size_t)bq * (rel_k + 1);
    }
    if (pe && pe->scheme->score_block) t.carry = f;
    return t;
}

_Static_assert(sizeof(int) == sizeof(float), "the tile keeps int rows in float slots");

/* What one task reads. */
typedef struct {
    const float *qkv, *qkv_alt; /* (n, 3C) */
    const PeModel *pe;
    int layer, n, C, NH, HS, bq, bk;
    float scale;
    const float *wk, *wv;
    int rel_k;
} Stream;

/* Adds row r's encoding terms to its scores s[0..cols) of keys j0.. and masks what it must. */
static void block_terms(const Stream *a, const Tile *t, int h, int i, int r, int j0, int cols, float *s) {
    int jend = j0 + cols; /* keys past the query are masked below */
    int jlast = i + 1 < jend ? i + 1 : jend;
    if (jlast < j0) jlast = j0; /* the whole block lies past the query */
    if (t->sa && t->alt_end[r] > j0) {
        const float *sa = t->sa + (size_t)r * a->bk;
        int hi = t->alt_end[r] < jlast ? t->alt_end[r] : jlast;
        for (int j = j0; j < hi; j++) s[j - j0] = sa[j - j0];
    }
#pragma omp simd
    for (int c = 0; c < cols; c++) s[c] *= a->scale;
    if (a->rel_k) {
        /* keys at least k back all read table row 0 */
        const float *qw = t->qw + (size_t)r * (a->rel_k + 1);
        int jf = i - a->rel_k + 1 < jlast ? i - a->rel_k + 1 : jlast;
        for (int j = j0; j < jf; j++) s[j - j0] += qw[0];
        for (int j = jf > j0 ? jf : j0; j < jlast; j++) s[j - j0] += qw[j - i + a->rel_k];
    }
    const PeScheme *sc = a->pe ? a->pe->scheme : NULL;
    const float *q = a->qkv + (size_t)i * 3 * a->C + h * a->HS;
    if (sc && sc->score_block && jlast > j0)
        sc->score_block(a->pe, a->layer, h, i, q, j0, jlast, s, t->carry + (size_t)r * PE_SCORE_CARRY);
    if (sc && sc->bias_row && jlast > j0) sc->bias_row(a->pe, a->layer, h, i, j0, jlast, s);
    for (int j = jlast; j < jend; j++) s[j - j0] = -INFINITY;
    int lo = t->mask_lo[r] > j0 ? t->mask_lo[r] : j0, hi = t->mask_hi[r] < jlast ? t->mask_hi[r] : jlast;
    for (int j = lo; j < hi; j++) s[j - j0] = -INFINITY;
}

/* Online softmax update of row r with its block scores s (cols), turned into weights in place. */
static void block_softmax(Tile *t, const Stream *a, int r, int i, int j0, int cols, float *s) {
    float mx = t->m[r];
#pragma omp simd reduction(max : mx)
    for (int c = 0; c < cols; c++) mx = s[c] > mx ? s[c] : mx;
    if (mx == -INFINITY) { /* the whole block is masked for this row */
        for (int c = 0; c < cols; c++) s[c] = 0.0f;
        return;
    }
    float alpha = cb_exp(t->m[r] - mx); /* 0 on the row's first block (m = -inf) */
    float sum = 0.0f, ts = 0.0f;
    /* The sums run in SIMD lanes: a fixed order for a given build, whatever the thread count. */
#pragma omp simd reduction(+ : sum, ts)
    for (int c = 0; c < cols; c++) {
        float z = s[c] - mx;
        float p = cb_exp(z);
        sum += p;
        ts += p > 0.0f ? p * z : 0.0f;
        s[c] = p;
    }
    float lold = t->l[r];
    /* t is sum p (s - m): moving m to mx shifts each old term by m - mx before the rescale. */
    t->t[r] = lold > 0.0f ? alpha * (t->t[r] + (t->m[r] - mx) * lold) + ts : ts;
    t->l[r] = alpha * lold + sum;
    t->m[r] = mx;
    float *acc = t->acc + (size_t)r * a->HS;
    if (alpha != 1.0f)
        for (int d = 0; d < a->HS; d++) acc[d] *= alpha;
    if (a->rel_k) {
        float *bins = t->bins + (size_t)r * (a->rel_k + 1);
        if (alpha != 1.0f)
            for (int x = 0; x <= a->rel_k; x++) bins[x] *= alpha;
        int jlast = i + 1 < j0 + cols ? i + 1 : j0 + cols; /* > j0: the block was not all masked */
        int jf = i - a->rel_k + 1 < jlast ? i - a->rel_k + 1 : jlast;
        float far = 0.0f;
#pragma omp simd reduction(+ : far)
        for (int j = j0; j < jf; j++) far += s[j - j0];
        bins[0] += far;
        for (int j = jf > j0 ? jf : j0; j < jlast; j++) bins[j - i + a->rel_k] += s[j - j0];
    }
}

/* One head h, queries [i0, i0 + rows). */
static void stream_task(const Stream *a, Tile *t, float *out, float *entropy, int h, int i0, int rows) {
    int HS = a->HS, C = a->C;
    size_t ld = 3 * (size_t)C;
    const float *Q = a->qkv + (size_t)i0 * ld + h * HS;
    const float *K = a->qkv + C + h * HS, *V = a->qkv + 2 * C + h * HS;
    const float *Qa = a->qkv_alt ? a->qkv_alt + (size_t)i0 * ld + h * HS : NULL;
    const float *Ka = a->qkv_alt ? a->qkv_alt + C + h * HS : NULL;
    const PeScheme *sc = a->pe ? a->pe->scheme : NULL;
    int alt_any = 0;
    for (int r = 0; r < rows; r++) {
        int ae = 0, mlo = 0, mhi = 0;
        if (sc && sc->alt_row) sc->alt_row(a->pe, i0 + r, &ae, &mlo, &mhi);
        t->alt_end[r] = a->qkv_alt ? ae : 0;
        t->mask_lo[r] = mlo, t->mask_hi[r] = mhi;
        alt_any |= t->alt_end[r] > 0;
        t->m[r] = -INFINITY, t->l[r] = 0.0f, t->t[r] = 0.0f;
        if (a->rel_k) {
            float *qw = t->qw + (size_t)r * (a->rel_k + 1);
            const float *q = Q + (size_t)r * ld;
            for (int x = 0; x <= a->rel_k; x++) {
                const float *w = a->wk + (size_t)x * HS;
                float s = 0.0f;
                for (int d = 0; d < HS; d++) s += q[d] * w[d];
                qw[x] = s * a->scale;
                t->bins[(size_t)r * (a->rel_k + 1) + x] = 0.0f;
            }
        }
        if (t->carry) memset(t->carry + (size_t)r * PE_SCORE_CARRY, 0, sizeof(float) * PE_SCORE_CARRY);
    }
    memset(t->acc, 0, sizeof(float) * (size_t)rows * HS);
    int iend = i0 + rows; /* keys < iend */
    int jtop = ((iend - 1) / a->bk) * a->bk;
    for (int j0 = jtop; j0 >= 0; j0 -= a->bk) {
        int cols = iend - j0 < a->bk ? iend - j0 : a->bk;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, cols, HS, 1.0f, Q, (int)ld,
                    K + (size_t)j0 * ld, (int)ld, 0.0f, t->s, a->bk);
        if (alt_any && t->sa)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, cols, HS, 1.0f, Qa, (int)ld,
                        Ka + (size_t)j0 * ld, (int)ld, 0.0f, t->sa, a->bk);
        for (int r = 0; r < rows; r++) {
            float *s = t->s + (size_t)r * a->bk;
            block_terms(a, t, h, i0 + r, r, j0, cols, s);
            block_softmax(t, a, r, i0 + r, j0, cols, s);
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, HS, cols, 1.0f, t->s, a->bk,
                    V + (size_t)j0 * ld, (int)ld, 1.0f, t->acc, HS);
    }
    for (int r = 0; r < rows; r++) {
        float inv = 1.0f / t->l[r];
        float *o = out + (size_t)(i0 + r) * C + h * HS;
        const float *acc = t->acc + (size_t)r * HS;
        for (int d = 0; d < HS; d++) o[d] = acc[d] * inv;
        if (a->rel_k) {
            const float *bins = t->bins + (size_t)r * (a->rel_k + 1);
            for (int x = 0; x <= a->rel_k; x++) {
                float p = bins[x] * inv;
                const float *w = a->wv + (size_t)x * HS;
                for (int d = 0; d < HS; d++) o[d] += p * w[d];
            }
        }
        /* H = -sum p log p with p = e^(s - m) / l: log l - t / l. */
        if (entropy) entropy[(size_t)h * a->n + i0 + r] = logf(t->l[r]) - t->t[r] * inv;
    }
}

void attention_eval_blocked(float *out, float *entropy, float *scratch, const float *qkv,
                            const float *qkv_alt, const PeModel *pe, int layer, int n, int C, int NH,
                            int bq, int bk) {
    Stream a = {.qkv = qkv, .qkv_alt = qkv_alt, .pe = pe, .layer = layer, .n = n, .C = C, .NH = NH,
                .HS = C / NH, .bq = bq, .bk = bk, .scale = 1.0f / sqrtf((float)(C / NH))};
    a.rel_k = layer_rel_k(pe, layer, &a.wk, &a.wv);
    int alt = qkv_alt != NULL;
    size_t per = tile_floats(pe, a.HS, bq, bk, a.rel_k, alt);
    int nqb = (n + bq - 1) / bq;
#pragma omp parallel
    {
        Tile t = tile_carve(scratch + (size_t)omp_get_thread_num() * per, pe, a.HS, bq, bk, a.rel_k, alt);
        /* Later query blocks cost more (more keys): hand them out first, one at a time. */
#pragma omp for schedule(dynamic, 1)
        for (int task = 0; task < nqb * NH; task++) {
            int qb = nqb - 1 - task / NH, h = task % NH;
            int i0 = qb * bq, rows = n - i0 < bq ? n - i0 : bq;
            stream_task(&a, &t, out, entropy, h, i0, rows);
        }
    }
}

void attention_eval(float *out, float *entropy, float *scratch, const float *qkv, const float *qkv_alt,
                    const PeModel *pe, int layer, int n, int C, int NH) {
    attention_eval_blocked(out, entropy, scratch, qkv, qkv_alt, pe, layer, n, C, NH, CB_ATT_BQ, CB_ATT_BK);
}
