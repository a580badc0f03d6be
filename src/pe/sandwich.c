/*
 * sandwich.c — Sandwich relative bias (Chi et al. 2023, "Dissecting Transformer Length Extrapolation
 * via the Lens of Receptive Field Analysis", arXiv:2212.10356; NeMo's implementation, PE_SPEC.md §10):
 * the inner product of two sinusoidal embeddings, shifted to 0 at distance 0, with ALiBi-like
 * per-head compensation. r = i - j >= 0, heads h = 1..NH:
 *
 *   S(r)      = sum_{k=1}^{d'/2} cos(r 10000^(-2k/d')) - d'/2
 *   bias_h(r) = S(r) / (8 h / NH)
 *
 * d' (option dprime) is NeMo's "hidden size per attention head". Its default is 128, the value of
 * §R.9, independent of the model's head size (the paper's recommended d' was not verified). No
 * parameters. prepare caches S(r) in double for r in [0, n), each summed once in a fixed order.
 * Inspect heads are 0-based (head 0 is h = 1).
 */
#include <assert.h>
#include <math.h>
#include <stdlib.h>

#include "pe/pe.h"

typedef struct {
    int dprime;
    double *omega; /* (d'/2) 10000^(-2k/d'), k = 1..d'/2 */
    double *sum;   /* (n) S(r) */
    float *scale;  /* (NH) NH / (8 h) */
    int n;
} SandwichState;

static int sandwich_init(PeModel *pe, char *err) {
    static const char *const keys[] = {"dprime", NULL};
    const PeSpec *spec = &pe->spec;
    if (spec->variant[0])
        return cb_error(err, CB_EINPUT, "unknown eval-time variant '%s' for scheme 'sandwich'", spec->variant);
    int rc = pe_check_keys(spec, keys, err);
    if (rc) return rc;
    SandwichState *st = calloc(1, sizeof *st);
    if (!st) return cb_error(err, CB_ENOMEM, "sandwich: out of memory");
    pe->state = st;
    rc = pe_opt_int(spec, "dprime", 128, 2, 65536, &st->dprime, err);
    if (rc) return rc;
    if (st->dprime % 2)
        return cb_error(err, CB_EINPUT, "sandwich: option 'dprime' must be even, got %d", st->dprime);
    int NH = pe->dims.n_head;
    st->scale = malloc((size_t)NH * sizeof *st->scale);
    st->omega = malloc((size_t)(st->dprime / 2) * sizeof *st->omega);
    if (!st->scale || !st->omega) return cb_error(err, CB_ENOMEM, "sandwich: out of memory");
    for (int k = 1; k <= st->dprime / 2; k++) st->omega[k - 1] = pow(10000.0, -2.0 * k / st->dprime);
    for (int h = 1; h <= NH; h++) st->scale[h - 1] = (float)((double)NH / (8.0 * h));
    return CB_OK;
}

static void sandwich_destroy(PeModel *pe) {
    SandwichState *st = pe->state;
    if (st) {
        free(st->omega);
        free(st->sum);
        free(st->scale);
    }
    free(st);
    pe->state = NULL;
}

static void sandwich_canonical(const PeModel *pe, char *buf, size_t n) {
    const SandwichState *st = pe->state;
    snprintf(buf, n, "dprime=%d", st->dprime);
}

/* S(r) in double, k in increasing order. */
static double sandwich_sum(const SandwichState *st, int r) {
    double s = 0.0;
    for (int k = 0; k < st->dprime / 2; k++) s += cos((double)r * st->omega[k]);
    return s - st->dprime / 2;
}

/* Keeps the distances already computed when the context grows. */
static int sandwich_prepare(PeModel *pe, int n, char *err) {
    SandwichState *st = pe->state;
    if (st->n == n) return CB_OK;
    double *sum = realloc(st->sum, (size_t)n * sizeof *sum);
    if (!sum) return cb_error(err, CB_ENOMEM, "sandwich: out of memory for the distance cache at context %d", n);
    st->sum = sum;
    int from = st->n < n ? st->n : n;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (n - from > 4096)
#endif
    for (int r = from; r < n; r++) sum[r] = sandwich_sum(st, r);
    st->n = n;
    return CB_OK;
}

static size_t sandwich_state_bytes(const PeModel *pe, int n) {
    const SandwichState *st = pe->state;
    return (size_t)n * sizeof(double) + (size_t)(st->dprime / 2) * sizeof(double) +
           (size_t)pe->dims.n_head * sizeof(float) + sizeof(SandwichState);
}

static void sandwich_bias_row(const PeModel *pe, int layer, int h, int i, int j0, int j1, float *row) {
    (void)layer;
    const SandwichState *st = pe->state;
    assert(i < st->n && j1 <= i + 1);
    double scale = st->scale[h];
    for (int j = j0; j < j1; j++) row[j - j0] += (float)(st->sum[i - j] * scale);
}

static int sandwich_inspect(const PeModel *pe, const PeInspectArgs *args, FILE *out, char *err) {
    const SandwichState *st = pe->state;
    int NH = pe->dims.n_head, q = args->query;
    if (args->context < 0) return cb_error(err, CB_EINPUT, "sandwich: context %d is negative", args->context);
    if (q < 0 || q >= st->n)
        return cb_error(err, CB_EINPUT, "sandwich: query position %d is outside the prepared context [0, %d)", q,
                        st->n);
    float *row = malloc(((size_t)q + 1) * sizeof *row);
    if (!row) return cb_error(err, CB_ENOMEM, "sandwich: out of memory for a row of %d keys", q + 1);
    fputs("quantity,head,i,j,value\n", out);
    for (int h = 0; h < NH; h++) {
        for (int j = 0; j <= q; j++) row[j] = 0.0f;
        sandwich_bias_row(pe, 0, h, q, 0, q + 1, row);
        for (int j = 0; j <= q; j++) fprintf(out, "bias,%d,%d,%d,%.9g\n", h, q, j, row[j]);
    }
    /* the first and the last head's bias against distance, in double */
    for (int h = 0; h < NH; h += NH - 1 > 0 ? NH - 1 : 1)
        for (int r = 0; r < args->context; r++)
            fprintf(out, "bias_by_distance,%d,%d,,%.9g\n", h, r,
                    (r < st->n ? st->sum[r] : sandwich_sum(st, r)) * NH / (8.0 * (h + 1)));
    free(row);
    return ferror(out) ? cb_error(err, CB_EIO, "sandwich: writing the inspect output failed") : CB_OK;
}

const PeScheme pe_sandwich = {
    .name = "sandwich",
    .summary = "inner product of sinusoidal embeddings as a fixed logit bias, scaled per head",
    .paper = "Chi et al. 2023, arXiv:2212.10356",
    .init = sandwich_init,
    .destroy = sandwich_destroy,
    .canonical = sandwich_canonical,
    .prepare = sandwich_prepare,
    .state_bytes = sandwich_state_bytes,
    .bias_row = sandwich_bias_row,
    .inspect = sandwich_inspect,
};
