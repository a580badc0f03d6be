/*
 * alibi.c — attention with linear biases (Press, Smith, Lewis 2022, "Train Short, Test Long:
 * Attention with Linear Biases Enables Input Length Extrapolation", arXiv:2108.12409, §3).
 *
 *   logit_h(i, j) = q_i . k_j / sqrt(HS) - m_h (i - j),   j <= i   (paper form; bias(i, i) = 0)
 *
 * Slopes, heads k = 1..NH (closed form of the reference get_slopes):
 *   NH a power of two:  m_k = 2^(-8k/NH)
 *   otherwise, c = 2^floor(log2 NH): first 2^(-8k/c), k = 1..c, then 2^(-8(2t-1)/(2c)), t = 1..NH-c
 * No parameters, no options.
 */
#include <math.h>
#include <stdlib.h>

#include "pe/pe.h"

typedef struct {
    double *log2_slope; /* (NH) */
    float *slope;       /* (NH) */
} AlibiState;

static int alibi_init(PeModel *pe, char *err) {
    static const char *const keys[] = {NULL};
    const PeSpec *spec = &pe->spec;
    if (spec->variant[0])
        return cb_error(err, CB_EINPUT, "unknown eval-time variant '%s' for scheme 'alibi'", spec->variant);
    int rc = pe_check_keys(spec, keys, err);
    if (rc) return rc;
    int NH = pe->dims.n_head;
    AlibiState *st = calloc(1, sizeof *st);
    if (!st) return cb_error(err, CB_ENOMEM, "alibi: out of memory");
    pe->state = st;
    st->log2_slope = malloc((size_t)NH * sizeof *st->log2_slope);
    st->slope = malloc((size_t)NH * sizeof *st->slope);
    if (!st->log2_slope || !st->slope) return cb_error(err, CB_ENOMEM, "alibi: out of memory");
    int c = 1;
    while (c * 2 <= NH) c *= 2;
    for (int k = 1; k <= c; k++) st->log2_slope[k - 1] = -8.0 * k / c;
    for (int t = 1; t <= NH - c; t++) st->log2_slope[c + t - 1] = -8.0 * (2 * t - 1) / (2.0 * c);
    for (int h = 0; h < NH; h++) st->slope[h] = (float)exp2(st->log2_slope[h]);
    return CB_OK;
}

static void alibi_destroy(PeModel *pe) {
    AlibiState *st = pe->state;
    if (st) {
        free(st->log2_slope);
        free(st->slope);
    }
    free(st);
    pe->state = NULL;
}

static size_t alibi_state_bytes(const PeModel *pe, int n) {
    (void)n;
    return (size_t)pe->dims.n_head * (sizeof(float) + sizeof(double));
}

static void alibi_bias_row(const PeModel *pe, int layer, int h, int i, int j0, int j1, float *row) {
    (void)layer;
    const AlibiState *st = pe->state;
    float m = st->slope[h];
    for (int j = j0; j < j1; j++) row[j - j0] -= m * (float)(i - j);
}

static int alibi_inspect(const PeModel *pe, const PeInspectArgs *args, FILE *out, char *err) {
    const AlibiState *st = pe->state;
    int NH = pe->dims.n_head, q = args->query;
    if (q < 0) return cb_error(err, CB_EINPUT, "alibi: query position %d is negative", q);
    float *row = malloc(((size_t)q + 1) * sizeof *row);
    if (!row) return cb_error(err, CB_ENOMEM, "alibi: out of memory for a row of %d keys", q + 1);
    fputs("quantity,head,i,j,value\n", out);
    for (int h = 0; h < NH; h++) fprintf(out, "slope,%d,,,%.9g\n", h, exp2(st->log2_slope[h]));
    for (int h = 0; h < NH; h++) fprintf(out, "log2_slope,%d,,,%.9g\n", h, st->log2_slope[h]);
    for (int h = 0; h < NH; h++) {
        for (int j = 0; j <= q; j++) row[j] = 0.0f;
        alibi_bias_row(pe, 0, h, q, 0, q + 1, row);
        for (int j = 0; j <= q; j++) fprintf(out, "bias,%d,%d,%d,%.9g\n", h, q, j, row[j]);
    }
    free(row);
    return ferror(out) ? cb_error(err, CB_EIO, "alibi: writing the inspect output failed") : CB_OK;
}

const PeScheme pe_alibi = {
    .name = "alibi",
    .summary = "linear distance penalty on the attention logits, one slope per head",
    .paper = "Press, Smith, Lewis 2022, arXiv:2108.12409",
    .init = alibi_init,
    .destroy = alibi_destroy,
    .state_bytes = alibi_state_bytes,
    .bias_row = alibi_bias_row,
    .inspect = alibi_inspect,
};
