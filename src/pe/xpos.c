/*
 * xpos.c — extrapolatable position embedding (Sun et al. 2022, "A Length-Extrapolatable
 * Transformer", arXiv:2212.10554; torchscale XPOS, PE_SPEC.md §8).
 *
 *   interleaved RoPE, pair t = (x[2t], x[2t+1]),  theta_t = 10000^(-2t/HS),  phi = pos * theta_t
 *   zeta_t = (2t + gamma HS) / ((1 + gamma) HS),   gamma = 0.4
 *   s = pos - ceil(T/2)              (torchscale: min_pos = -ceil(T/2), s = min_pos + position)
 *   q pair:  zeta_t^( s/scale_base) * R(phi) (a, b)
 *   k pair:  zeta_t^(-s/scale_base) * R(phi) (a, b)
 *
 * so q'_m . k'_n = sum_t zeta_t^((m-n)/scale_base) (rotated pair products): RoPE with a per-frequency
 * decay in the distance. The offset ceil(T/2) cancels in every q.k product; it only centres the
 * scales so that fp32 holds them. The backward is the transpose: rotation by -phi with the same
 * per-pair factor (q's scale on dq, k's inverse scale on dk). No parameters.
 *
 * prepare(n) caches cos/sin for positions 0..n-1 and both scales for s in [-ceil(n/2), n/2), every
 * s a window of T <= n positions 0..T-1 can reach (other positions get their scales computed in the
 * hook). It refuses a context whose scales would leave the fp32 range (zeta_0^(ceil(n/2)/scale_base)
 * beyond e^-80: n > ~65000 at the defaults).
 */
#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pe/pe.h"

#define XPOS_MAX_LOG_SCALE 80.0 /* |ln scale| allowed in the cache; ln(FLT_MAX) is 88.7 */

static const int xpos_decay_dist[] = {1, 10, 100, 512, 2048}; /* inspect's decay rows */

typedef struct {
    double gamma, scale_base;
    int np;           /* pairs per head, HS/2 */
    double *inv_freq; /* (np) */
    double *zeta;     /* (np) */
    float *cos_c;     /* (n, np) */
    float *sin_c;     /* (n, np) */
    float *scale;     /* (n, np) zeta^(s/scale_base), row s + ceil(n/2) */
    float *iscale;    /* (n, np) zeta^(-s/scale_base) */
    int n;
} XposState;

static void fmt_double(double x, char *buf, size_t n) {
    for (int prec = 6; prec <= 17; prec++) {
        snprintf(buf, n, "%.*g", prec, x);
        if (strtod(buf, NULL) == x) return;
    }
}

static int xpos_init(PeModel *pe, char *err) {
    static const char *const keys[] = {"gamma", "scale_base", NULL};
    const PeSpec *spec = &pe->spec;
    if (spec->variant[0])
        return cb_error(err, CB_EINPUT, "unknown eval-time variant '%s' for scheme 'xpos'", spec->variant);
    int rc = pe_check_keys(spec, keys, err);
    if (rc) return rc;
    XposState *st = calloc(1, sizeof *st);
    if (!st) return cb_error(err, CB_ENOMEM, "xpos: out of memory");
    pe->state = st;
    rc = pe_opt_double(spec, "gamma", 0.4, 0.0, 1e6, &st->gamma, err);
    if (rc || st->gamma <= 0.0) /* zeta_0 = gamma/(1+gamma) must be positive */
        return cb_error(err, CB_EINPUT, "xpos: option 'gamma' must be a number in (0, 1e6], got '%s'",
                        pe_opt(spec, "gamma"));
    rc = pe_opt_double(spec, "scale_base", 512.0, 1.0, 1e9, &st->scale_base, err);
    if (rc) return rc;
    int HS = pe->dims.head_size;
    if (HS % 2)
        return cb_error(err, CB_EINPUT, "xpos: head size %d is odd; xpos rotates pairs of dimensions", HS);
    st->np = HS / 2;
    st->inv_freq = malloc((size_t)st->np * sizeof *st->inv_freq);
    st->zeta = malloc((size_t)st->np * sizeof *st->zeta);
    if (!st->inv_freq || !st->zeta) return cb_error(err, CB_ENOMEM, "xpos: out of memory");
    for (int t = 0; t < st->np; t++) {
        st->inv_freq[t] = pow(10000.0, -2.0 * t / HS);
        st->zeta[t] = (2.0 * t + st->gamma * HS) / ((1.0 + st->gamma) * HS);
    }
    return CB_OK;
}

static void xpos_free_caches(XposState *st) {
    free(st->cos_c);
    free(st->sin_c);
    free(st->scale);
    free(st->iscale);
    st->cos_c = st->sin_c = st->scale = st->iscale = NULL;
    st->n = 0;
}

static void xpos_destroy(PeModel *pe) {
    XposState *st = pe->state;
    if (st) {
        xpos_free_caches(st);
        free(st->inv_freq);
        free(st->zeta);
    }
    free(st);
    pe->state = NULL;
}

static void xpos_canonical(const PeModel *pe, char *buf, size_t n) {
    const XposState *st = pe->state;
    char g[40], sb[40];
    fmt_double(st->gamma, g, sizeof g);
    fmt_double(st->scale_base, sb, sizeof sb);
    snprintf(buf, n, "gamma=%s,scale_base=%s", g, sb);
}

static int xpos_prepare(PeModel *pe, int n, char *err) {
    XposState *st = pe->state;
    if (st->n == n) return CB_OK; /* already built */
    int np = st->np, half = (n + 1) / 2;
    /* zeta_0 is the smallest zeta; it sets the widest scale at |s| = ceil(n/2). */
    double widest = fabs(log(st->zeta[0])) * half / st->scale_base;
    if (widest > XPOS_MAX_LOG_SCALE)
        return cb_error(err, CB_EUNSUPPORTED,
                        "xpos: context %d needs scales up to e^%.0f (zeta_0^(%d/%g)), beyond fp32; at most e^%.0f",
                        n, widest, half, st->scale_base, XPOS_MAX_LOG_SCALE);
    size_t count;
    if (size_mul((size_t)n, (size_t)np, &count) || count > SIZE_MAX / sizeof(float))
        return cb_error(err, CB_EINPUT, "xpos: context %d too large", n);
    xpos_free_caches(st);
    st->cos_c = malloc(count * sizeof(float));
    st->sin_c = malloc(count * sizeof(float));
    st->scale = malloc(count * sizeof(float));
    st->iscale = malloc(count * sizeof(float));
    if (!st->cos_c || !st->sin_c || !st->scale || !st->iscale) {
        xpos_free_caches(st);
        return cb_error(err, CB_ENOMEM, "xpos: out of memory for the caches at context %d", n);
    }
    for (int p = 0; p < n; p++)
        for (int t = 0; t < np; t++) {
            size_t k = (size_t)p * np + t;
            double phi = (double)p * st->inv_freq[t];
            double e = (double)(p - half) / st->scale_base; /* row p holds s = p - ceil(n/2) */
            st->cos_c[k] = (float)cos(phi);
            st->sin_c[k] = (float)sin(phi);
            st->scale[k] = (float)pow(st->zeta[t], e);
            st->iscale[k] = (float)pow(st->zeta[t], -e);
        }
    st->n = n;
    return CB_OK;
}

static size_t xpos_state_bytes(const PeModel *pe, int n) {
    const XposState *st = pe->state;
    return 4 * (size_t)n * (size_t)st->np * sizeof(float) + 2 * (size_t)st->np * sizeof(double);
}

/* One head: pair t of x becomes m[t] * R(s_sign * phi_t) (x[2t], x[2t+1]). */
static inline void xpos_pairs(float *x, int np, const float *cs, const float *sn, const float *m, float s_sign) {
    for (int t = 0; t < np; t++) {
        float a = x[2 * t], b = x[2 * t + 1];
        float c = m[t] * cs[t], s = s_sign * m[t] * sn[t];
        x[2 * t] = a * c - b * s;
        x[2 * t + 1] = a * s + b * c;
    }
}

/* The same with the factors zeta_t^e computed here: for positions that are not a window 0..T-1 and
   fall outside the cached scale rows (no caller does this today). */
static void xpos_pairs_uncached(float *x, int np, const float *cs, const float *sn, const double *zeta, double e,
                                float s_sign) {
    for (int t = 0; t < np; t++) {
        float m = (float)pow(zeta[t], e);
        xpos_pairs(x + 2 * t, 1, cs + t, sn + t, &m, s_sign);
    }
}

/* Forward (s_sign = 1) or transposed (s_sign = -1) map on q and k of every head of every row. */
static void xpos_apply(const PeModel *pe, float *qkv, size_t stride, const int *pos, int T, float s_sign) {
    const XposState *st = pe->state;
    int NH = pe->dims.n_head, HS = pe->dims.head_size, C = pe->dims.d_model, np = st->np;
    int shift = (st->n + 1) / 2 - (T + 1) / 2; /* cache row of s = pos - ceil(T/2) is pos + shift */
    for (int r = 0; r < T; r++) {
        assert(pos[r] >= 0 && pos[r] < st->n);
        int row_s = pos[r] + shift;
        const float *cs = st->cos_c + (size_t)pos[r] * np, *sn = st->sin_c + (size_t)pos[r] * np;
        float *row = qkv + (size_t)r * stride;
        if (row_s < 0 || row_s >= st->n) {
            double e = (double)(pos[r] - (T + 1) / 2) / st->scale_base;
            for (int h = 0; h < NH; h++) {
                xpos_pairs_uncached(row + (size_t)h * HS, np, cs, sn, st->zeta, e, s_sign);
                xpos_pairs_uncached(row + (size_t)C + (size_t)h * HS, np, cs, sn, st->zeta, -e, s_sign);
            }
            continue;
        }
        const float *qs = st->scale + (size_t)row_s * np, *ks = st->iscale + (size_t)row_s * np;
        for (int h = 0; h < NH; h++) {
            xpos_pairs(row + (size_t)h * HS, np, cs, sn, qs, s_sign);
            xpos_pairs(row + (size_t)C + (size_t)h * HS, np, cs, sn, ks, s_sign);
        }
    }
}

static void xpos_qk_forward(const PeModel *pe, int layer, float *qkv, size_t stride, const int *pos, int T) {
    (void)layer;
    xpos_apply(pe, qkv, stride, pos, T, 1.0f);
}

static void xpos_qk_backward(const PeModel *pe, int layer, float *dqkv, size_t stride, const int *pos, int T) {
    (void)layer;
    xpos_apply(pe, dqkv, stride, pos, T, -1.0f);
}

/* Fixed quantities only: nothing depends on the query, the context or parameters. */
static int xpos_inspect(const PeModel *pe, const PeInspectArgs *args, FILE *out, char *err) {
    (void)args;
    const XposState *st = pe->state;
    fputs("quantity,head,i,j,value\n", out);
    for (int t = 0; t < st->np; t++) fprintf(out, "inv_freq,,,%d,%.9g\n", t, st->inv_freq[t]);
    for (int t = 0; t < st->np; t++) fprintf(out, "zeta,,,%d,%.9g\n", t, st->zeta[t]);
    for (size_t k = 0; k < sizeof xpos_decay_dist / sizeof xpos_decay_dist[0]; k++)
        for (int t = 0; t < st->np; t++)
            fprintf(out, "decay,,%d,%d,%.9g\n", xpos_decay_dist[k], t,
                    pow(st->zeta[t], xpos_decay_dist[k] / st->scale_base));
    return ferror(out) ? cb_error(err, CB_EIO, "xpos: writing the inspect output failed") : CB_OK;
}

/* The rotation is plain RoPE's at positions 0..L-1 in training and 0..n-1 at evaluation (the decay
   does not change the angles). */
static double xpos_unseen_angle_share(const PeModel *pe, int n, int *pairs) {
    const XposState *st = pe->state;
    if (pairs) *pairs = st->np;
    double *reach = malloc((size_t)st->np * sizeof *reach);
    if (!reach) return NAN;
    double d = n > 1 ? n - 1 : 0;
    for (int t = 0; t < st->np; t++) reach[t] = d * st->inv_freq[t];
    double share = pe_rotary_unseen_share(st->inv_freq, reach, st->np, pe->dims.train_ctx - 1.0);
    free(reach);
    return share;
}

const PeScheme pe_xpos = {
    .name = "xpos",
    .summary = "interleaved RoPE with a per-frequency exponential decay in distance (q scaled up, k down)",
    .paper = "Sun et al. 2022, arXiv:2212.10554",
    .init = xpos_init,
    .destroy = xpos_destroy,
    .canonical = xpos_canonical,
    .prepare = xpos_prepare,
    .state_bytes = xpos_state_bytes,
    .qk_forward = xpos_qk_forward,
    .qk_backward = xpos_qk_backward,
    .inspect = xpos_inspect,
    .unseen_angle_share = xpos_unseen_angle_share,
};
