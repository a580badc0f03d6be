/*
 * t5.c — T5 relative attention bias (Raffel et al. 2020, "Exploring the Limits of Transfer
 * Learning with a Unified Text-to-Text Transformer", arXiv:1910.10683, §2.1), causal form.
 *
 *   logit_h(i, j) = q_i . k_j / sqrt(HS) + E[bucket(i - j)][h],   j <= i
 *   bucket(n), n = i - j >= 0, B buckets, max distance M, E = B/2:
 *     n < E:  n
 *     else:   min(B - 1, E + floor(ln(n / E) / ln(M / E) * (B - E)))
 *
 * One table E (B, NH) is shared by every layer, as T5 computes the bias in its first layer and
 * reuses it; bias_backward is called once per layer and accumulates into the same gradient.
 * Init Normal(0, C^-0.5); no weight decay. prepare caches the bucket of every distance 0..n-1.
 * (We keep the 1/sqrt(HS) scaling of the model; the bias is added after it.)
 */
#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pe/pe.h"

typedef struct {
    int buckets, max_distance;
    int *bucket; /* (n) bucket of distance i - j */
    int n;
    int far;     /* distances >= far all fall in the last bucket (buckets grow with distance) */
} T5State;

#define T5_MAX_BUCKETS 1024 /* bias_backward keeps one accumulator per bucket on the stack */

/* The unidirectional bucket of distance n >= 0; the log branch only runs for n >= max_exact. */
static int t5_bucket(int n, int buckets, int max_distance) {
    int max_exact = buckets / 2;
    if (n < max_exact) return n;
    int large = max_exact + (int)(log((double)n / max_exact) / log((double)max_distance / max_exact) *
                                  (buckets - max_exact));
    return large < buckets - 1 ? large : buckets - 1;
}

static int t5_init(PeModel *pe, char *err) {
    static const char *const keys[] = {"buckets", "max_distance", NULL};
    const PeSpec *spec = &pe->spec;
    if (spec->variant[0])
        return cb_error(err, CB_EINPUT, "unknown eval-time variant '%s' for scheme 't5'", spec->variant);
    int rc = pe_check_keys(spec, keys, err);
    if (rc) return rc;
    T5State *st = calloc(1, sizeof *st);
    if (!st) return cb_error(err, CB_ENOMEM, "t5: out of memory");
    pe->state = st;
    rc = pe_opt_int(spec, "buckets", 32, 2, T5_MAX_BUCKETS, &st->buckets, err);
    if (rc) return rc;
    rc = pe_opt_int(spec, "max_distance", 128, st->buckets / 2 + 1, (long long)CB_MAX_CONTEXT, &st->max_distance, err);
    if (rc) return rc;
    if (st->max_distance <= st->buckets / 2) /* the default 128 with many buckets */
        return cb_error(err, CB_EINPUT, "t5: option 'max_distance' must exceed buckets/2 = %d, got %d",
                        st->buckets / 2, st->max_distance);
    return CB_OK;
}

static void t5_destroy(PeModel *pe) {
    T5State *st = pe->state;
    if (st) {
        free(st->bucket);
    }
    free(st);
    pe->state = NULL;
}

static void t5_canonical(const PeModel *pe, char *buf, size_t n) {
    const T5State *st = pe->state;
    snprintf(buf, n, "buckets=%d,max_distance=%d", st->buckets, st->max_distance);
}

static size_t t5_param_count(const PeModel *pe) {
    const T5State *st = pe->state;
    return (size_t)st->buckets * (size_t)pe->dims.n_head;
}

static void t5_param_init(PeModel *pe, Rng *rng) {
    float sd = (float)(1.0 / sqrt((double)pe->dims.d_model));
    size_t count = t5_param_count(pe);
    for (size_t k = 0; k < count; k++) pe->params[k] = sd * rng_normal(rng);
}

static int t5_prepare(PeModel *pe, int n, char *err) {
    T5State *st = pe->state;
    if (st->n == n) return CB_OK; /* already built */
    int *b = malloc((size_t)n * sizeof *b);
    if (!b) return cb_error(err, CB_ENOMEM, "t5: out of memory for the bucket cache at context %d", n);
    for (int d = 0; d < n; d++) b[d] = t5_bucket(d, st->buckets, st->max_distance);
    st->far = n;
    while (st->far > 0 && b[st->far - 1] == st->buckets - 1) st->far--;
    free(st->bucket);
    st->bucket = b;
    st->n = n;
    return CB_OK;
}

static size_t t5_state_bytes(const PeModel *pe, int n) {
    (void)pe;
    return (size_t)n * sizeof(int);
}

static void t5_bias_row(const PeModel *pe, int layer, int h, int i, int j0, int j1, float *row) {
    (void)layer; /* one table for every layer */
    const T5State *st = pe->state;
    int NH = pe->dims.n_head;
    assert(i < st->n && j1 <= i + 1);
    const float *col = pe->params + h; /* E[.][h], stride NH */
    const int *bk = st->bucket;
    /* Keys at least `far` back share the last bucket: one value, added in a loop that vectorises. */
    int jf = i - st->far + 1 < j1 ? i - st->far + 1 : j1;
    float last = col[(size_t)(st->buckets - 1) * NH];
    for (int j = j0; j < jf; j++) row[j - j0] += last;
    for (int j = jf > j0 ? jf : j0; j < j1; j++) row[j - j0] += col[(size_t)bk[i - j] * NH];
}

/* grads[b][h] += sum over batch, i, j <= i with bucket(i - j) = b of dscores. Each head sums in a
   fixed order into its own double accumulators, so the result does not depend on threads. */
static void t5_bias_backward(PeModel *pe, int layer, const float *dscores, int B, int T) {
    (void)layer;
    const T5State *st = pe->state;
    int NH = pe->dims.n_head, NB = st->buckets;
    const int *bk = st->bucket;
    assert(T <= st->n);
#ifdef _OPENMP
#pragma omp parallel for schedule(static)
#endif
    for (int h = 0; h < NH; h++) {
        double acc[T5_MAX_BUCKETS];
        for (int k = 0; k < NB; k++) acc[k] = 0.0;
        for (int b = 0; b < B; b++)
            for (int i = 0; i < T; i++) {
                const float *d = dscores + (((size_t)b * NH + h) * T + i) * T;
                for (int j = 0; j <= i; j++) acc[bk[i - j]] += d[j];
            }
        for (int k = 0; k < NB; k++) pe->grads[(size_t)k * NH + h] += (float)acc[k];
    }
}

static int t5_inspect(const PeModel *pe, const PeInspectArgs *args, FILE *out, char *err) {
    const T5State *st = pe->state;
    int NH = pe->dims.n_head, q = args->query;
    if (args->context < 0) return cb_error(err, CB_EINPUT, "t5: context %d is negative", args->context);
    /* Bias rows need the table and the bucket cache; without a model only the buckets print. */
    int rows = pe->params != NULL;
    if (rows && (q < 0 || q >= st->n))
        return cb_error(err, CB_EINPUT, "t5: query position %d is outside the prepared context [0, %d)", q, st->n);
    float *row = rows ? malloc(((size_t)q + 1) * sizeof *row) : NULL;
    if (rows && !row) return cb_error(err, CB_ENOMEM, "t5: out of memory for a row of %d keys", q + 1);
    fputs("quantity,head,i,j,value\n", out);
    for (int d = 0; d < args->context; d++)
        fprintf(out, "bucket,,%d,,%d\n", d, t5_bucket(d, st->buckets, st->max_distance));
    for (int h = 0; rows && h < NH; h++) {
        for (int j = 0; j <= q; j++) row[j] = 0.0f;
        t5_bias_row(pe, 0, h, q, 0, q + 1, row);
        for (int j = 0; j <= q; j++) fprintf(out, "bias,%d,%d,%d,%.9g\n", h, q, j, row[j]);
    }
    free(row);
    return ferror(out) ? cb_error(err, CB_EIO, "t5: writing the inspect output failed") : CB_OK;
}

const PeScheme pe_t5 = {
    .name = "t5",
    .summary = "learned per-head bias of log-bucketed distance, shared by all layers",
    .paper = "Raffel et al. 2020, arXiv:1910.10683",
    .init = t5_init,
    .destroy = t5_destroy,
    .canonical = t5_canonical,
    .param_count = t5_param_count,
    .param_init = t5_param_init,
    .param_decay = 0,
    .prepare = t5_prepare,
    .state_bytes = t5_state_bytes,
    .bias_row = t5_bias_row,
    .bias_backward = t5_bias_backward,
    .inspect = t5_inspect,
};
