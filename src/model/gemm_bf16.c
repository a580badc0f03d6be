/*
 * gemm_bf16.c — the training GEMMs of the linear layers with bf16 operands and fp32 accumulation
 * (ModelConfig.precision = CB_PRECISION_BF16; see kernels.h).
 *
 * The fp32 operands are rounded to bf16 (round to nearest even) into a scratch block of the calling
 * thread, and oneDNN's gemm_bf16bf16f32 multiplies them with fp32 accumulation into the fp32
 * output. Measured on the development machine's Zen 5 at one thread, for the shapes of a training
 * shard (1024 rows, widths 64..512): 1.65x (d_model 64) and 1.9x (d_model 128) the speed of
 * OpenBLAS's sgemm, the rounding included (README.md, "Training precision"). Debian's OpenBLAS
 * 0.3.21 declares cblas_sbgemm but is built without it.
 *
 * oneDNN 2.6 exports dnnl_gemm_bf16bf16f32 (row-major, like dnnl_sgemm) without declaring it in its
 * headers, so it is declared here under a name of ours. It runs on OpenMP (Debian builds it with
 * libgomp, the runtime of OpenBLAS and ctxbench): inside a parallel region, where the training runs
 * one batch shard per thread, it runs single-threaded, with the same bits as a call outside at one
 * thread. Its partition depends only on the thread count, so results are reproducible per count.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/kernels.h"

#ifdef CB_HAVE_DNNL
#include <dnnl.h>
#include <immintrin.h>

extern dnnl_status_t cb_dnnl_gemm_bf16(char transa, char transb, dnnl_dim_t M, dnnl_dim_t N, dnnl_dim_t K,
                                       float alpha, const uint16_t *A, dnnl_dim_t lda, const uint16_t *B,
                                       dnnl_dim_t ldb, float beta, float *C, dnnl_dim_t ldc)
    __asm__("dnnl_gemm_bf16bf16f32");
#endif

/* The calling thread's bf16 operands, grown on demand and kept for its next GEMM, and the first
   failure since bf16_gemm_take_status() was last called. */
static _Thread_local uint16_t *scratch;
static _Thread_local size_t scratch_cap;
static _Thread_local int thread_status;

int bf16_gemm_supported(char *why, size_t why_n) {
    const char *off = getenv("CTXBENCH_BF16");
    if (off && !strcmp(off, "off")) {
        snprintf(why, why_n, "bf16 GEMMs are switched off by CTXBENCH_BF16=off");
        return 0;
    }
#if defined(CB_HAVE_DNNL) && (defined(__x86_64__) || defined(__i386__))
    __builtin_cpu_init();
    /* AMX CPUs have AVX512-BF16 too: it is what the rounding below needs either way. */
    if (!__builtin_cpu_supports("avx512bf16") || !__builtin_cpu_supports("avx512bw") ||
        !__builtin_cpu_supports("avx512vl")) {
        snprintf(why, why_n, "this CPU has no AVX512-BF16 (bf16 GEMMs need AVX512-BF16 or AMX)");
        return 0;
    }
    /* ISA values are bit sets, each holding those of the ISAs it extends. */
    if ((dnnl_get_effective_cpu_isa() & dnnl_cpu_isa_avx512_core_bf16) != dnnl_cpu_isa_avx512_core_bf16) {
        snprintf(why, why_n, "oneDNN is limited to an ISA without AVX512-BF16 (DNNL_MAX_CPU_ISA?)");
        return 0;
    }
    return 1;
#elif defined(CB_HAVE_DNNL)
    snprintf(why, why_n, "bf16 GEMMs are implemented for x86-64 only");
    return 0;
#else
    snprintf(why, why_n, "ctxbench was built without oneDNN (libdnnl-dev), which runs the bf16 GEMMs");
    return 0;
#endif
}

uint16_t bf16_round_one(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    if ((u & 0x7f800000u) == 0) return (uint16_t)((u >> 16) & 0x8000u); /* denormal in: signed 0 */
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x0040u); /* NaN stays quiet NaN */
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

void bf16_round_naive(uint16_t *out, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = bf16_round_one(x[i]);
}

#ifdef CB_HAVE_DNNL
/* VCVTNEPS2BF16: 16 floats at a time, the tail through a mask. */
__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16"))) static void round_avx512(uint16_t *out,
                                                                                         const float *x, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm256_storeu_si256((__m256i *)(out + i), (__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(x + i)));
    if (i < n) {
        __mmask16 k = (__mmask16)((1u << (n - i)) - 1u);
        __m256bh v = _mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(k, x + i));
        _mm256_mask_storeu_epi16(out + i, k, (__m256i)v);
    }
}
#endif

#define ROUND_CHUNK 16384 /* elements per task of the rounding */

void bf16_round(uint16_t *out, const float *x, size_t n) {
#ifdef CB_HAVE_DNNL
    /* Elementwise, so the chunks give the same bits at any thread count; serial inside a shard. */
#pragma omp parallel for schedule(static) if (n > 4 * ROUND_CHUNK)
    for (size_t i0 = 0; i0 < n; i0 += ROUND_CHUNK)
        round_avx512(out + i0, x + i0, n - i0 < ROUND_CHUNK ? n - i0 : ROUND_CHUNK);
#else
    bf16_round_naive(out, x, n);
#endif
}

int bf16_gemm_take_status(void) {
    int rc = thread_status;
    thread_status = CB_OK;
    return rc;
}

/* Records a failure and fills out (rows, cols) with NaN, so that nothing downstream looks sound. */
static void fail(int rc, float *out, size_t rows, size_t cols) {
    if (!thread_status) thread_status = rc;
    if (!out) return;
    for (size_t i = 0; i < rows * cols; i++) out[i] = NAN;
}

/* The calling thread's scratch of at least n bf16 values, NULL if it cannot grow. */
static uint16_t *scratch_for(size_t n) {
    if (n > scratch_cap) {
        uint16_t *p = realloc(scratch, n * sizeof *p);
        if (!p) return NULL;
        scratch = p;
        scratch_cap = n;
    }
    return scratch;
}

void bf16_gemm_release(void) {
    free(scratch);
    scratch = NULL;
    scratch_cap = 0;
}

#ifdef CB_HAVE_DNNL
static int gemm(char ta, char tb, size_t M, int N, int K, const uint16_t *A, int lda, const uint16_t *B, int ldb,
                float beta, float *C) {
    dnnl_status_t st = cb_dnnl_gemm_bf16(ta, tb, (dnnl_dim_t)M, N, K, 1.0f, A, lda, B, ldb, beta, C, N);
    return st == dnnl_success ? CB_OK : st == dnnl_out_of_memory ? CB_ENOMEM : CB_EUNSUPPORTED;
}
#endif

void matmul_forward_bf16(float *out, const float *inp, const float *w, const float *bias, size_t N, int IC,
                         int OC) {
    size_t nx = N * (size_t)IC, nw = (size_t)OC * IC;
    uint16_t *xb = scratch_for(nx + nw);
    if (!xb) {
        fail(CB_ENOMEM, out, N, (size_t)OC);
        return;
    }
#ifdef CB_HAVE_DNNL
    uint16_t *wb = xb + nx;
    bf16_round(xb, inp, nx);
    bf16_round(wb, w, nw);
    if (bias) matmul_bias_rows(out, bias, N, OC);
    int rc = gemm('N', 'T', N, OC, IC, xb, IC, wb, IC, bias ? 1.0f : 0.0f, out);
    if (rc) fail(rc, out, N, (size_t)OC);
#else
    (void)inp, (void)w, (void)bias;
    fail(CB_EUNSUPPORTED, out, N, (size_t)OC);
#endif
}

void matmul_backward_bf16(float *dinp, int accumulate, float *dw, float *dbias, const float *dout,
                          const float *inp, const float *w, size_t N, int IC, int OC) {
    size_t nd = N * (size_t)OC, nw = (size_t)OC * IC, nx = N * (size_t)IC;
    uint16_t *db = scratch_for(nd + nw + nx);
    if (!db) {
        fail(CB_ENOMEM, dinp, N, (size_t)IC);
        fail(CB_ENOMEM, dw, (size_t)OC, (size_t)IC);
        return;
    }
#ifdef CB_HAVE_DNNL
    uint16_t *wb = db + nd, *xb = wb + nw;
    bf16_round(db, dout, nd);
    int rc = CB_OK;
    if (dinp) {
        bf16_round(wb, w, nw);
        rc = gemm('N', 'N', N, IC, OC, db, OC, wb, IC, accumulate ? 1.0f : 0.0f, dinp);
        if (rc) fail(rc, dinp, N, (size_t)IC);
    }
    bf16_round(xb, inp, nx);
    rc = gemm('T', 'N', (size_t)OC, IC, (int)N, db, OC, xb, IC, 1.0f, dw);
    if (rc) fail(rc, dw, (size_t)OC, (size_t)IC);
    if (dbias) matmul_bias_backward(dbias, dout, N, OC); /* fp32, from the fp32 dout */
#else
    (void)accumulate, (void)dbias, (void)dout, (void)inp, (void)w;
    fail(CB_EUNSUPPORTED, dinp, N, (size_t)IC);
    fail(CB_EUNSUPPORTED, dw, (size_t)OC, (size_t)IC);
#endif
}
