/*
 * rope.c — rotary position embedding (Su et al. 2021, "RoFormer: Enhanced Transformer with Rotary
 * Position Embedding", arXiv:2104.09864, eq. 34).
 *
 *   theta_t = base^(-2t/d_rot),  t = 0 .. d_rot/2-1,  phi = pos * theta_t
 *   each pair (a, b) of q and k:  a' = a cos phi - b sin phi,  b' = a sin phi + b cos phi
 *   pairing=interleaved: pair t = (x[2t], x[2t+1])          (RoFormer, Meta LLaMA, ggml NORMAL)
 *   pairing=half:        pair t = (x[t], x[t + d_rot/2])     (GPT-NeoX, HF rotate_half, ggml NEOX)
 *
 * Partial rotary: d_rot = round(HS * fraction) rounded down to even; dims d_rot..HS-1 pass through.
 * The same rotation acts in every layer and head. The backward of a rotation is the rotation by
 * -phi. cos/sin are cached per (position, pair) in prepare so the hooks do no transcendentals.
 */
#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pe/pe.h"

enum { PAIR_HALF, PAIR_INTERLEAVED };

typedef struct {
    double base, fraction;
    int pairing;
    int d_rot;        /* rotated dims per head, even */
    double *inv_freq; /* (d_rot/2) */
    float *cos_c;     /* (n, d_rot/2) */
    float *sin_c;     /* (n, d_rot/2) */
    int n;
} RopeState;

static void fmt_double(double x, char *buf, size_t n) {
    for (int prec = 6; prec <= 17; prec++) {
        snprintf(buf, n, "%.*g", prec, x);
        if (strtod(buf, NULL) == x) return;
    }
}

static int rope_init(PeModel *pe, char *err) {
    static const char *const keys[] = {"base", "fraction", "pairing", NULL};
    const PeSpec *spec = &pe->spec;
    if (spec->variant[0])
        return cb_error(err, CB_EINPUT, "unknown eval-time variant '%s' for scheme 'rope'", spec->variant);
    int rc = pe_check_keys(spec, keys, err);
    if (rc) return rc;
    RopeState *st = calloc(1, sizeof *st);
    if (!st) return cb_error(err, CB_ENOMEM, "rope: out of memory");
    pe->state = st;
    rc = pe_opt_double(spec, "base", 10000.0, 1.0, 1e12, &st->base, err);
    if (rc) return rc;
    rc = pe_opt_double(spec, "fraction", 1.0, 0.0, 1.0, &st->fraction, err);
    if (rc || st->fraction <= 0.0)
        return cb_error(err, CB_EINPUT, "rope: option 'fraction' must be a number in (0, 1], got '%s'",
                        pe_opt(spec, "fraction"));
    const char *pairing = pe_opt(spec, "pairing");
    if (!pairing || strcmp(pairing, "half") == 0) st->pairing = PAIR_HALF;
    else if (strcmp(pairing, "interleaved") == 0) st->pairing = PAIR_INTERLEAVED;
    else
        return cb_error(err, CB_EINPUT, "rope: option 'pairing' must be half or interleaved, got '%s'", pairing);

    int HS = pe->dims.head_size;
    long r = lround(HS * st->fraction);
    st->d_rot = (int)(r - r % 2);
    if (st->d_rot < 2)
        return cb_error(err, CB_EINPUT, "rope: fraction %g of head size %d rotates no pair of dimensions",
                        st->fraction, HS);
    int np = st->d_rot / 2;
    st->inv_freq = malloc((size_t)np * sizeof *st->inv_freq);
    if (!st->inv_freq) return cb_error(err, CB_ENOMEM, "rope: out of memory");
    for (int t = 0; t < np; t++) st->inv_freq[t] = pow(st->base, -2.0 * t / st->d_rot);
    return CB_OK;
}

static void rope_destroy(PeModel *pe) {
    RopeState *st = pe->state;
    if (st) {
        free(st->inv_freq);
        free(st->cos_c);
        free(st->sin_c);
    }
    free(st);
    pe->state = NULL;
}

static void rope_canonical(const PeModel *pe, char *buf, size_t n) {
    const RopeState *st = pe->state;
    char base[40], frac[40];
    fmt_double(st->base, base, sizeof base);
    fmt_double(st->fraction, frac, sizeof frac);
    snprintf(buf, n, "base=%s,fraction=%s,pairing=%s", base, frac,
             st->pairing == PAIR_HALF ? "half" : "interleaved");
}

static int rope_prepare(PeModel *pe, int n, char *err) {
    RopeState *st = pe->state;
    if (st->n == n) return CB_OK; /* already built */
    size_t np = (size_t)st->d_rot / 2, count;
    if (size_mul((size_t)n, np, &count) || count > SIZE_MAX / sizeof(float))
        return cb_error(err, CB_EINPUT, "rope: context %d too large", n);
    float *c = malloc(count * sizeof *c), *s = malloc(count * sizeof *s);
    if (!c || !s) {
        free(c);
        free(s);
        return cb_error(err, CB_ENOMEM, "rope: out of memory for the cos/sin cache at context %d", n);
    }
    for (int p = 0; p < n; p++)
        for (size_t t = 0; t < np; t++) {
            double phi = (double)p * st->inv_freq[t];
            c[(size_t)p * np + t] = (float)cos(phi);
            s[(size_t)p * np + t] = (float)sin(phi);
        }
    free(st->cos_c);
    free(st->sin_c);
    st->cos_c = c;
    st->sin_c = s;
    st->n = n;
    return CB_OK;
}

static size_t rope_state_bytes(const PeModel *pe, int n) {
    const RopeState *st = pe->state;
    size_t np = (size_t)st->d_rot / 2;
    return 2 * (size_t)n * np * sizeof(float) + np * sizeof(double);
}

/* Rotates one head's pairs (a[t], b[t]) by the cached angles; s_sign -1 rotates backwards.
   Interleaved pairs are a = x, b = x + 1 with step 2; half pairs a = x, b = x + np with step 1. */
static inline void rotate_pairs(float *x, int np, int step, int off, const float *cs, const float *sn,
                                float s_sign) {
    for (int t = 0; t < np; t++) {
        float a = x[t * step], b = x[t * step + off];
        float c = cs[t], s = s_sign * sn[t];
        x[t * step] = a * c - b * s;
        x[t * step + off] = a * s + b * c;
    }
}

/* Rotates q and k of every head of every row by +phi (s_sign = 1) or -phi (s_sign = -1). */
static void rope_apply(const PeModel *pe, float *qkv, size_t stride, const int *pos, int T, float s_sign) {
    const RopeState *st = pe->state;
    int NH = pe->dims.n_head, HS = pe->dims.head_size, C = pe->dims.d_model;
    int np = st->d_rot / 2;
    int interleaved = st->pairing == PAIR_INTERLEAVED;
    for (int r = 0; r < T; r++) {
        assert(pos[r] >= 0 && pos[r] < st->n);
        const float *cs = st->cos_c + (size_t)pos[r] * np;
        const float *sn = st->sin_c + (size_t)pos[r] * np;
        float *row = qkv + (size_t)r * stride;
        for (int h = 0; h < 2 * NH; h++) { /* q heads at column 0, then k heads at column C */
            float *x = row + (size_t)(h / NH) * C + (size_t)(h % NH) * HS;
            /* constant strides per call so the compiler can vectorise each form */
            if (interleaved) rotate_pairs(x, np, 2, 1, cs, sn, s_sign);
            else rotate_pairs(x, np, 1, np, cs, sn, s_sign);
        }
    }
}

static void rope_qk_forward(const PeModel *pe, int layer, float *qkv, size_t stride, const int *pos, int T) {
    (void)layer;
    rope_apply(pe, qkv, stride, pos, T, 1.0f);
}

static void rope_qk_backward(const PeModel *pe, int layer, float *dqkv, size_t stride, const int *pos, int T) {
    (void)layer;
    rope_apply(pe, dqkv, stride, pos, T, -1.0f);
}

static int rope_inspect(const PeModel *pe, const PeInspectArgs *args, FILE *out, char *err) {
    static const int def_pos[] = {0, 1, 2, 10};
    const RopeState *st = pe->state;
    int np = st->d_rot / 2;
    const int *pos = args->n_positions > 0 ? args->positions : def_pos;
    int npos = args->n_positions > 0 ? args->n_positions : 4;
    for (int k = 0; k < npos; k++)
        if (pos[k] < 0) return cb_error(err, CB_EINPUT, "rope: position %d is negative", pos[k]);
    fputs("quantity,head,i,j,value\n", out);
    for (int t = 0; t < np; t++) fprintf(out, "inv_freq,,,%d,%.9g\n", t, st->inv_freq[t]);
    for (int t = 0; t < np; t++) fprintf(out, "wavelength,,,%d,%.9g\n", t, 2.0 * M_PI / st->inv_freq[t]);
    for (int t = 0; t < np; t++) fprintf(out, "magnitude,,,%d,%.9g\n", t, 1.0);
    for (int k = 0; k < npos; k++)
        for (int t = 0; t < np; t++) fprintf(out, "angle,,%d,%d,%.9g\n", pos[k], t, pos[k] * st->inv_freq[t]);
    return ferror(out) ? cb_error(err, CB_EIO, "rope: writing the inspect output failed") : CB_OK;
}

const PeScheme pe_rope = {
    .name = "rope",
    .summary = "rotary position embedding: q and k rotated by position-dependent angles",
    .paper = "Su et al. 2021, arXiv:2104.09864",
    .init = rope_init,
    .destroy = rope_destroy,
    .canonical = rope_canonical,
    .prepare = rope_prepare,
    .state_bytes = rope_state_bytes,
    .qk_forward = rope_qk_forward,
    .qk_backward = rope_qk_backward,
    .inspect = rope_inspect,
};
