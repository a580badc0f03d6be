/*
 * rope.c — rotary position embedding (Su et al. 2021, "RoFormer: Enhanced Transformer with Rotary
 * Position Embedding", arXiv:2104.09864, eq. 34), its caches and hooks.
 *
 *   theta_t = base^(-2t/d_rot),  t = 0 .. d_rot/2-1,  phi = pos * theta_t
 *   each pair (a, b) of q and k:  a' = a cos phi - b sin phi,  b' = a sin phi + b cos phi
 *   pairing=interleaved: pair t = (x[2t], x[2t+1])          (RoFormer, Meta LLaMA, ggml NORMAL)
 *   pairing=half:        pair t = (x[t], x[t + d_rot/2])     (GPT-NeoX, HF rotate_half, ggml NEOX)
 *
 * Partial rotary: d_rot = round(HS * fraction) rounded down to even; dims d_rot..HS-1 pass through.
 * The same rotation acts in every layer and head. The backward of a rotation is the rotation by
 * -phi. cos/sin are cached per (position, pair) in prepare so the hooks do no transcendentals.
 *
 * randomized=N (Ruoss et al. 2023, arXiv:2305.16843, PE_SPEC §13): a training window of T bytes
 * takes a sorted subset of T distinct positions drawn uniformly from [0, N) (N >= L); evaluation
 * uses 0..n-1. The caches then cover max(n, N) positions.
 *
 * Eval-time variants ("rope+yarn:factor=auto", see rope_variants.c) change the cached frequencies
 * and magnitude, add a per-position query scale (log-n), or add an alternative branch for far keys
 * (Self-Extend, ReRoPE, LM-Infinite). A variant with an alternative branch swaps pe->scheme for
 * pe_rope_alt in init: the same scheme with the qk_alt_forward and alt_row hooks, so that plain
 * RoPE evaluation does not pay for a second copy of q and k.
 */
#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pe/rope_internal.h"

static const PeScheme pe_rope_alt;

static void fmt_double(double x, char *buf, size_t n) {
    for (int prec = 6; prec <= 17; prec++) {
        snprintf(buf, n, "%.*g", prec, x);
        if (strtod(buf, NULL) == x) return;
    }
}

static int rope_init(PeModel *pe, char *err) {
    static const char *const keys[] = {"base", "fraction", "pairing", "randomized", NULL};
    const PeSpec *spec = &pe->spec;
    int rc = pe_check_keys(spec, keys, err);
    if (rc) return rc;
    RopeState *st = calloc(1, sizeof *st);
    if (!st) return cb_error(err, CB_ENOMEM, "rope: out of memory");
    pe->state = st;
    st->train_ctx = pe->dims.train_ctx;
    rc = pe_opt_double(spec, "base", 10000.0, 1.0, 1e12, &st->base, err);
    if (rc) return rc;
    rc = pe_opt_double(spec, "fraction", 1.0, 0.0, 1.0, &st->fraction, err);
    if (rc || st->fraction <= 0.0)
        return cb_error(err, CB_EINPUT, "rope: option 'fraction' must be a number in (0, 1], got '%s'",
                        pe_opt(spec, "fraction"));
    const char *pairing = pe_opt(spec, "pairing");
    if (!pairing || strcmp(pairing, "half") == 0) st->pairing = ROPE_PAIR_HALF;
    else if (strcmp(pairing, "interleaved") == 0) st->pairing = ROPE_PAIR_INTERLEAVED;
    else
        return cb_error(err, CB_EINPUT, "rope: option 'pairing' must be half or interleaved, got '%s'", pairing);
    rc = pe_opt_int(spec, "randomized", 0, 0, (long long)CB_MAX_CONTEXT, &st->randomized, err);
    if (rc) return rc;
    if (st->randomized && st->randomized < st->train_ctx)
        return cb_error(err, CB_EINPUT, "rope: option 'randomized' (%d) must be at least the training context %d",
                        st->randomized, st->train_ctx);

    int HS = pe->dims.head_size;
    long r = lround(HS * st->fraction);
    st->d_rot = (int)(r - r % 2);
    if (st->d_rot < 2)
        return cb_error(err, CB_EINPUT, "rope: fraction %g of head size %d rotates no pair of dimensions",
                        st->fraction, HS);
    int np = st->d_rot / 2;
    st->inv_freq = malloc((size_t)np * sizeof *st->inv_freq);
    st->inv_eff = malloc((size_t)np * sizeof *st->inv_eff);
    if (!st->inv_freq || !st->inv_eff) return cb_error(err, CB_ENOMEM, "rope: out of memory");
    for (int t = 0; t < np; t++) st->inv_freq[t] = pow(st->base, -2.0 * t / st->d_rot);

    rc = rope_variant_parse(pe, st, err);
    if (rc) return rc;
    if (rope_variant_has_alt(&st->var)) pe->scheme = &pe_rope_alt;
    return CB_OK;
}

static void free_caches(RopeState *st) {
    free(st->cos_c);
    free(st->sin_c);
    free(st->q_scale);
    free(st->aq_pos);
    free(st->ak_pos);
    free(st->aq_cos);
    free(st->aq_sin);
    free(st->ak_cos);
    free(st->ak_sin);
    st->cos_c = st->sin_c = st->q_scale = st->aq_cos = st->aq_sin = st->ak_cos = st->ak_sin = NULL;
    st->aq_pos = st->ak_pos = NULL;
    st->n = st->n_cache = 0;
}

static void rope_destroy(PeModel *pe) {
    RopeState *st = pe->state;
    if (st) {
        free_caches(st);
        free(st->inv_freq);
        free(st->inv_eff);
    }
    free(st);
    pe->state = NULL;
}

/* The scheme's own options; a variant's options are printed by pe_canonical as given. randomized
   appears only when set, so plain RoPE keeps its canonical form. */
static void rope_canonical(const PeModel *pe, char *buf, size_t n) {
    const RopeState *st = pe->state;
    char base[40], frac[40], rnd[40] = "";
    fmt_double(st->base, base, sizeof base);
    fmt_double(st->fraction, frac, sizeof frac);
    if (st->randomized) snprintf(rnd, sizeof rnd, ",randomized=%d", st->randomized);
    snprintf(buf, n, "base=%s,fraction=%s,pairing=%s%s", base, frac,
             st->pairing == ROPE_PAIR_HALF ? "half" : "interleaved", rnd);
}

/* cos/sin tables (n, np): angle (pos[p] or p) * inv[t] * angle, times the magnitude. */
static void fill_table(float *c, float *s, int n, int np, const double *inv, const double *pos, double angle,
                       double mag) {
    for (int p = 0; p < n; p++) {
        double at = pos ? pos[p] : (double)p;
        for (int t = 0; t < np; t++) {
            double phi = at * inv[t] * angle;
            c[(size_t)p * np + t] = (float)(cos(phi) * mag);
            s[(size_t)p * np + t] = (float)(sin(phi) * mag);
        }
    }
}

static int rope_prepare(PeModel *pe, int n, char *err) {
    RopeState *st = pe->state;
    if (st->n == n && st->cos_c) return CB_OK; /* already built (variants depend on n only) */
    int nc = n > st->randomized ? n : st->randomized;
    size_t np = (size_t)st->d_rot / 2, count;
    if (size_mul((size_t)nc, np, &count) || count > SIZE_MAX / sizeof(float) / 4)
        return cb_error(err, CB_EINPUT, "rope: context %d too large", n);
    free_caches(st);
    int alt = rope_variant_has_alt(&st->var), qs = rope_variant_has_q_scale(&st->var);
    st->cos_c = malloc(count * sizeof(float));
    st->sin_c = malloc(count * sizeof(float));
    int ok = st->cos_c && st->sin_c;
    if (qs) ok = ok && (st->q_scale = malloc((size_t)nc * sizeof(float)));
    if (alt) {
        st->aq_pos = malloc((size_t)nc * sizeof(double));
        st->ak_pos = malloc((size_t)nc * sizeof(double));
        st->aq_cos = malloc(count * sizeof(float));
        st->aq_sin = malloc(count * sizeof(float));
        st->ak_cos = malloc(count * sizeof(float));
        st->ak_sin = malloc(count * sizeof(float));
        ok = ok && st->aq_pos && st->ak_pos && st->aq_cos && st->aq_sin && st->ak_cos && st->ak_sin;
    }
    if (!ok) {
        free_caches(st);
        return cb_error(err, CB_ENOMEM, "rope: out of memory for the cos/sin cache at context %d", n);
    }
    rope_variant_freqs(st, n, st->inv_eff, &st->info);
    fill_table(st->cos_c, st->sin_c, nc, (int)np, st->inv_eff, NULL, 1.0, st->info.mscale);
    if (qs)
        for (int p = 0; p < nc; p++) st->q_scale[p] = (float)rope_variant_q_scale(st, p);
    if (alt) {
        for (int p = 0; p < nc; p++) rope_variant_alt_pos(st, p, &st->aq_pos[p], &st->ak_pos[p]);
        st->alt_angle = rope_variant_alt_angle(st);
        fill_table(st->aq_cos, st->aq_sin, nc, (int)np, st->inv_freq, st->aq_pos, st->alt_angle, 1.0);
        fill_table(st->ak_cos, st->ak_sin, nc, (int)np, st->inv_freq, st->ak_pos, st->alt_angle, 1.0);
    }
    st->n = n;
    st->n_cache = nc;
    return CB_OK;
}

static size_t rope_state_bytes(const PeModel *pe, int n) {
    const RopeState *st = pe->state;
    size_t np = (size_t)st->d_rot / 2, nc = (size_t)(n > st->randomized ? n : st->randomized);
    size_t bytes = 2 * nc * np * sizeof(float) + 2 * np * sizeof(double);
    if (rope_variant_has_q_scale(&st->var)) bytes += nc * sizeof(float);
    if (rope_variant_has_alt(&st->var)) bytes += 4 * nc * np * sizeof(float) + 2 * nc * sizeof(double);
    return bytes;
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

/* One set of tables a transform reads: q and k rotations (n_cache, np) and the query scale. */
typedef struct {
    const float *qc, *qs, *kc, *ks;
    const float *q_scale; /* (n_cache) or NULL */
} Tables;

/* Rotates q and k of every head of every row by the tables' angles (s_sign 1) or their inverse
   (s_sign -1), and scales q by q_scale. Scaling commutes with rotation, so the same call with
   s_sign -1 is the transpose used by the backward. */
static void rope_apply(const PeModel *pe, const Tables *tb, float *qkv, size_t stride, const int *pos, int T,
                       float s_sign) {
    const RopeState *st = pe->state;
    int NH = pe->dims.n_head, HS = pe->dims.head_size, C = pe->dims.d_model;
    int np = st->d_rot / 2;
    int interleaved = st->pairing == ROPE_PAIR_INTERLEAVED;
    for (int r = 0; r < T; r++) {
        assert(pos[r] >= 0 && pos[r] < st->n_cache);
        size_t off = (size_t)pos[r] * np;
        float *row = qkv + (size_t)r * stride;
        for (int h = 0; h < 2 * NH; h++) { /* q heads at column 0, then k heads at column C */
            int is_k = h >= NH;
            float *x = row + (size_t)is_k * C + (size_t)(h % NH) * HS;
            const float *cs = (is_k ? tb->kc : tb->qc) + off, *sn = (is_k ? tb->ks : tb->qs) + off;
            /* constant strides per call so the compiler can vectorise each form */
            if (interleaved) rotate_pairs(x, np, 2, 1, cs, sn, s_sign);
            else rotate_pairs(x, np, 1, np, cs, sn, s_sign);
        }
        if (tb->q_scale) {
            float g = tb->q_scale[pos[r]];
            for (int c = 0; c < C; c++) row[c] *= g;
        }
    }
}

static Tables main_tables(const RopeState *st) {
    return (Tables){st->cos_c, st->sin_c, st->cos_c, st->sin_c, st->q_scale};
}

static void rope_qk_forward(const PeModel *pe, int layer, float *qkv, size_t stride, const int *pos, int T) {
    (void)layer;
    Tables tb = main_tables(pe->state);
    rope_apply(pe, &tb, qkv, stride, pos, T, 1.0f);
}

static void rope_qk_backward(const PeModel *pe, int layer, float *dqkv, size_t stride, const int *pos, int T) {
    (void)layer;
    Tables tb = main_tables(pe->state);
    rope_apply(pe, &tb, dqkv, stride, pos, T, -1.0f);
}

/* The alternative branch: raw q rotated at aq_pos[i], raw k at ak_pos[j] (and q scaled as in the
   ordinary branch). */
static void rope_qk_alt_forward(const PeModel *pe, int layer, float *qkv_alt, size_t stride, const int *pos,
                                int T) {
    (void)layer;
    const RopeState *st = pe->state;
    Tables tb = {st->aq_cos, st->aq_sin, st->ak_cos, st->ak_sin, st->q_scale};
    rope_apply(pe, &tb, qkv_alt, stride, pos, T, 1.0f);
}

static void rope_alt_row(const PeModel *pe, int i, int *alt_end, int *mask_lo, int *mask_hi) {
    rope_variant_alt_row(pe->state, i, alt_end, mask_lo, mask_hi);
}

/* Randomized positions: Knuth's selection sampling (Algorithm S) visits 0..N-1 once and keeps each
   with probability (still needed)/(still left), which gives a uniform sorted subset of size T. */
static void rope_train_positions(const PeModel *pe, Rng *rng, int T, int *pos) {
    const RopeState *st = pe->state;
    int N = st->randomized;
    if (!N) {
        for (int t = 0; t < T; t++) pos[t] = t;
        return;
    }
    assert(T <= N);
    for (int x = 0, k = 0; k < T; x++)
        if (rng_below(rng, (uint32_t)(N - x)) < (uint32_t)(T - k)) pos[k++] = x;
}

/* The effective relative position of key j for query i in the variant's attention: i - j for the
   ordinary branch, the alternative's rotation difference, or NaN for a masked key. */
static double rel_pos(const RopeState *st, int i, int j) {
    int alt_end, mask_lo, mask_hi;
    rope_variant_alt_row(st, i, &alt_end, &mask_lo, &mask_hi);
    if (j >= mask_lo && j < mask_hi) return NAN;
    if (j < alt_end) return (st->aq_pos[i] - st->ak_pos[j]) * st->alt_angle;
    return (double)(i - j);
}

/*
 * CSV rows: per pair t (column j) inv_freq, wavelength, magnitude and scale_factor (ratio to plain
 * RoPE) at context n = args->context; base and factor in use; YaRN's ramp_low / ramp_high; angle
 * (i = position); q_scale (i = position) for log-n; rel_pos (i, j) for the variants with an
 * alternative branch, rows i < context plus row `query` when it lies beyond (NaN = masked).
 */
static int rope_inspect(const PeModel *pe, const PeInspectArgs *args, FILE *out, char *err) {
    static const int def_pos[] = {0, 1, 2, 10};
    const RopeState *st = pe->state;
    int np = st->d_rot / 2;
    const int *pos = args->n_positions > 0 ? args->positions : def_pos;
    int npos = args->n_positions > 0 ? args->n_positions : 4;
    for (int k = 0; k < npos; k++)
        if (pos[k] < 0) return cb_error(err, CB_EINPUT, "rope: position %d is negative", pos[k]);
    int alt = rope_variant_has_alt(&st->var), qs = rope_variant_has_q_scale(&st->var);
    int last_row = args->query >= args->context ? args->query : args->context - 1;
    if ((alt || qs) && last_row >= st->n_cache)
        return cb_error(err, CB_EINPUT, "rope: positions up to %d are not prepared (prepared %d)", last_row,
                        st->n_cache);
    double *inv = malloc((size_t)np * sizeof *inv);
    if (!inv) return cb_error(err, CB_ENOMEM, "rope: out of memory");
    RopeFreqInfo info;
    rope_variant_freqs(st, args->context, inv, &info);

    fputs("quantity,head,i,j,value\n", out);
    for (int t = 0; t < np; t++) fprintf(out, "inv_freq,,,%d,%.9g\n", t, inv[t]);
    for (int t = 0; t < np; t++) fprintf(out, "wavelength,,,%d,%.9g\n", t, 2.0 * M_PI / inv[t]);
    for (int t = 0; t < np; t++) fprintf(out, "magnitude,,,%d,%.12g\n", t, info.mscale);
    for (int t = 0; t < np; t++) fprintf(out, "scale_factor,,,%d,%.9g\n", t, inv[t] / st->inv_freq[t]);
    fprintf(out, "base,,,,%.12g\n", info.base);
    fprintf(out, "factor,,,,%.12g\n", info.s);
    if (st->var.kind == RV_YARN) {
        fprintf(out, "ramp_low,,,,%.9g\n", info.low);
        fprintf(out, "ramp_high,,,,%.9g\n", info.high);
    }
    for (int k = 0; k < npos; k++)
        for (int t = 0; t < np; t++) fprintf(out, "angle,,%d,%d,%.9g\n", pos[k], t, pos[k] * inv[t]);
    free(inv);
    if (qs) {
        if (args->n_positions > 0) {
            for (int k = 0; k < npos; k++)
                if (pos[k] < st->n_cache) fprintf(out, "q_scale,,%d,,%.9g\n", pos[k], st->q_scale[pos[k]]);
        } else {
            for (int p = 0; p < args->context; p++) fprintf(out, "q_scale,,%d,,%.9g\n", p, st->q_scale[p]);
        }
    }
    if (alt) {
        for (int i = 0; i <= last_row; i++) {
            if (i >= args->context && i != args->query) continue;
            for (int j = 0; j <= i; j++) fprintf(out, "rel_pos,,%d,%d,%.9g\n", i, j, rel_pos(st, i, j));
        }
    }
    return ferror(out) ? cb_error(err, CB_EIO, "rope: writing the inspect output failed") : CB_OK;
}

/* Pair t trained at positions 0..P (P = L - 1, or N - 1 with randomized=N) with frequency
   inv_freq[t]; at context n it reaches max(d_ord inv_eff[t], d_alt inv_freq[t]), the ordinary
   branch at the variant's frequencies and the alternative one at the plain frequencies. */
static double rope_unseen_angle_share(const PeModel *pe, int n, int *pairs) {
    const RopeState *st = pe->state;
    int np = st->d_rot / 2;
    if (pairs) *pairs = np;
    double *inv = malloc(2 * (size_t)np * sizeof *inv);
    if (!inv) return NAN;
    double *reach = inv + np, d_ord, d_alt;
    RopeFreqInfo info;
    rope_variant_freqs(st, n, inv, &info);
    rope_variant_max_rel(st, n, &d_ord, &d_alt);
    for (int t = 0; t < np; t++) {
        double a = d_ord * inv[t], b = d_alt * st->inv_freq[t];
        reach[t] = a > b ? a : b;
    }
    double P = (st->randomized ? st->randomized : st->train_ctx) - 1.0;
    double share = pe_rotary_unseen_share(st->inv_freq, reach, np, P);
    free(inv);
    return share;
}

#define ROPE_HOOKS                                                                         \
    .name = "rope", .summary = "rotary position embedding: q and k rotated by position-dependent angles", \
    .paper = "Su et al. 2021, arXiv:2104.09864", .init = rope_init, .destroy = rope_destroy,  \
    .canonical = rope_canonical, .prepare = rope_prepare, .state_bytes = rope_state_bytes,    \
    .qk_forward = rope_qk_forward, .qk_backward = rope_qk_backward,                          \
    .train_positions = rope_train_positions, .inspect = rope_inspect,                        \
    .unseen_angle_share = rope_unseen_angle_share

const PeScheme pe_rope = {ROPE_HOOKS};

/* The same scheme with the alternative branch, for Self-Extend, ReRoPE, Leaky ReRoPE, LM-Infinite. */
static const PeScheme pe_rope_alt = {ROPE_HOOKS, .qk_alt_forward = rope_qk_alt_forward, .alt_row = rope_alt_row};
