/*
 * sinusoidal.c — fixed sinusoidal absolute positions (Vaswani et al. 2017, "Attention Is All You
 * Need", §3.5), added to the token embeddings before layer 1.
 *
 *   omega_t = base^(-2t/C),  t = 0 .. C/2-1
 *   interleaved (paper):  PE[p, 2t] = sin(p omega_t),  PE[p, 2t+1]    = cos(p omega_t)
 *   concat (Transformer-XL): PE[p, t] = sin(p omega_t), PE[p, t + C/2] = cos(p omega_t)
 *
 * The paper feeds E[token] * sqrt(C) + PE[pos] to layer 1 (§3.4): option embed_scale=sqrt
 * (default) does that, embed_scale=1 adds PE to the unscaled embeddings.
 * No parameters. prepare caches the rows 0..n-1 as floats (computed in double).
 *
 * randomized=N (Ruoss et al. 2023, arXiv:2305.16843, PE_SPEC §13): each training window of T
 * tokens takes T sorted distinct positions drawn from [0, N) instead of 0..T-1 (N >= the training
 * context, checked at init); evaluation keeps 0..n-1. prepare then caches max(n, N) rows.
 * 0 or absent = off, and the canonical form omits it.
 */
#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pe/pe.h"

enum { LAYOUT_INTERLEAVED, LAYOUT_CONCAT };

typedef struct {
    double base;
    int layout;
    int sqrt_scale; /* token embeddings multiplied by sqrt(C) */
    int randomized; /* N: training positions sampled from [0, N); 0 = plain positions */
    float *rows; /* (n, C) cached encodings */
    int n;
} SinState;

/* Shortest %g that parses back to the same double, so canonical forms round-trip. */
static void fmt_double(double x, char *buf, size_t n) {
    for (int prec = 6; prec <= 17; prec++) {
        snprintf(buf, n, "%.*g", prec, x);
        if (strtod(buf, NULL) == x) return;
    }
}

static int sin_init(PeModel *pe, char *err) {
    static const char *const keys[] = {"base", "embed_scale", "layout", "randomized", NULL};
    const PeSpec *spec = &pe->spec;
    if (spec->variant[0])
        return cb_error(err, CB_EINPUT, "unknown eval-time variant '%s' for scheme 'sinusoidal'", spec->variant);
    int rc = pe_check_keys(spec, keys, err);
    if (rc) return rc;
    if (pe->dims.d_model % 2)
        return cb_error(err, CB_EINPUT, "sinusoidal: d_model must be even, got %d", pe->dims.d_model);
    SinState *st = calloc(1, sizeof *st);
    if (!st) return cb_error(err, CB_ENOMEM, "sinusoidal: out of memory");
    pe->state = st;
    rc = pe_opt_double(spec, "base", 10000.0, 1.0, 1e12, &st->base, err);
    if (rc) return rc;
    const char *layout = pe_opt(spec, "layout");
    if (!layout || strcmp(layout, "interleaved") == 0) st->layout = LAYOUT_INTERLEAVED;
    else if (strcmp(layout, "concat") == 0) st->layout = LAYOUT_CONCAT;
    else
        return cb_error(err, CB_EINPUT, "sinusoidal: option 'layout' must be interleaved or concat, got '%s'", layout);
    const char *scale = pe_opt(spec, "embed_scale");
    if (!scale || strcmp(scale, "sqrt") == 0) st->sqrt_scale = 1;
    else if (strcmp(scale, "1") == 0) st->sqrt_scale = 0;
    else
        return cb_error(err, CB_EINPUT, "sinusoidal: option 'embed_scale' must be sqrt or 1, got '%s'", scale);
    rc = pe_opt_int(spec, "randomized", 0, 0, (long long)CB_MAX_CONTEXT, &st->randomized, err);
    if (rc) return rc;
    if (st->randomized && st->randomized < pe->dims.train_ctx)
        return cb_error(err, CB_EINPUT,
                        "sinusoidal: randomized=%d must be at least the training context %d (a window draws "
                        "that many distinct positions from [0, %d))",
                        st->randomized, pe->dims.train_ctx, st->randomized);
    return CB_OK;
}

static void sin_destroy(PeModel *pe) {
    SinState *st = pe->state;
    if (st) free(st->rows);
    free(st);
    pe->state = NULL;
}

static void sin_canonical(const PeModel *pe, char *buf, size_t n) {
    const SinState *st = pe->state;
    char base[40];
    fmt_double(st->base, base, sizeof base);
    int w = snprintf(buf, n, "base=%s,embed_scale=%s,layout=%s", base, st->sqrt_scale ? "sqrt" : "1",
                     st->layout == LAYOUT_CONCAT ? "concat" : "interleaved");
    if (st->randomized && w >= 0 && (size_t)w < n) snprintf(buf + w, n - (size_t)w, ",randomized=%d", st->randomized);
}

/* Rows the cache needs for context n: training positions may reach randomized - 1. */
static int sin_rows_needed(const SinState *st, int n) { return n > st->randomized ? n : st->randomized; }

/* The encoding of position p, out (C). Shared by prepare and inspect. */
static void sin_row(const SinState *st, int C, long p, float *out) {
    int half = C / 2;
    for (int t = 0; t < half; t++) {
        double omega = pow(st->base, -2.0 * t / C);
        double s = sin((double)p * omega), c = cos((double)p * omega);
        if (st->layout == LAYOUT_INTERLEAVED) {
            out[2 * t] = (float)s;
            out[2 * t + 1] = (float)c;
        } else {
            out[t] = (float)s;
            out[t + half] = (float)c;
        }
    }
}

static int sin_prepare(PeModel *pe, int n, char *err) {
    SinState *st = pe->state;
    n = sin_rows_needed(st, n);
    if (st->n == n) return CB_OK; /* already built */
    int C = pe->dims.d_model;
    size_t count;
    if (size_mul((size_t)n, (size_t)C, &count) || count > SIZE_MAX / sizeof(float))
        return cb_error(err, CB_EINPUT, "sinusoidal: context %d too large", n);
    float *rows = malloc(count * sizeof *rows);
    if (!rows) return cb_error(err, CB_ENOMEM, "sinusoidal: out of memory for %d cached rows", n);
    for (int p = 0; p < n; p++) sin_row(st, C, p, rows + (size_t)p * C);
    free(st->rows);
    st->rows = rows;
    st->n = n;
    return CB_OK;
}

static size_t sin_state_bytes(const PeModel *pe, int n) {
    return (size_t)sin_rows_needed(pe->state, n) * (size_t)pe->dims.d_model * sizeof(float);
}

static void sin_train_positions(const PeModel *pe, Rng *rng, int T, int *pos) {
    const SinState *st = pe->state;
    if (st->randomized) {
        pe_sample_positions(rng, st->randomized, T, pos);
        return;
    }
    for (int t = 0; t < T; t++) pos[t] = t;
}

static void sin_embed_forward(const PeModel *pe, float *x, const int *pos, int T) {
    const SinState *st = pe->state;
    int C = pe->dims.d_model;
    float scale = st->sqrt_scale ? sqrtf((float)C) : 1.0f;
    for (int t = 0; t < T; t++) {
        assert(pos[t] >= 0 && pos[t] < st->n);
        const float *r = st->rows + (size_t)pos[t] * C;
        float *xt = x + (size_t)t * C;
        for (int c = 0; c < C; c++) xt[c] = xt[c] * scale + r[c];
    }
}

static void sin_embed_backward(PeModel *pe, float *dx, const int *pos, int T) {
    (void)pos;
    const SinState *st = pe->state;
    if (!st->sqrt_scale) return;
    float scale = sqrtf((float)pe->dims.d_model);
    for (size_t i = 0; i < (size_t)T * pe->dims.d_model; i++) dx[i] *= scale;
}

static int sin_inspect(const PeModel *pe, const PeInspectArgs *args, FILE *out, char *err) {
    static const int def_pos[] = {0, 1, 2, 10};
    const SinState *st = pe->state;
    int C = pe->dims.d_model;
    const int *pos = args->n_positions > 0 ? args->positions : def_pos;
    int np = args->n_positions > 0 ? args->n_positions : 4;
    for (int k = 0; k < np; k++)
        if (pos[k] < 0) return cb_error(err, CB_EINPUT, "sinusoidal: position %d is negative", pos[k]);
    float *row = malloc((size_t)C * sizeof *row);
    if (!row) return cb_error(err, CB_ENOMEM, "sinusoidal: out of memory");
    fputs("quantity,head,i,j,value\n", out);
    for (int k = 0; k < np; k++) {
        sin_row(st, C, pos[k], row);
        for (int c = 0; c < C; c++) fprintf(out, "pe,,%d,%d,%.9g\n", pos[k], c, row[c]);
    }
    free(row);
    return ferror(out) ? cb_error(err, CB_EIO, "sinusoidal: writing the inspect output failed") : CB_OK;
}

const PeScheme pe_sinusoidal = {
    .name = "sinusoidal",
    .summary = "fixed sin/cos absolute positions added to the embeddings",
    .paper = "Vaswani et al. 2017, arXiv:1706.03762",
    .init = sin_init,
    .destroy = sin_destroy,
    .canonical = sin_canonical,
    .prepare = sin_prepare,
    .state_bytes = sin_state_bytes,
    .embed_forward = sin_embed_forward,
    .embed_backward = sin_embed_backward,
    .train_positions = sin_train_positions,
    .inspect = sin_inspect,
};
