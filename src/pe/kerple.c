/*
 * kerple.c — kernelized relative positional embedding (Chi et al. 2022, "KERPLE: Kernelized Relative
 * Positional Embedding for Length Extrapolation", arXiv:2205.09921; reference ParallelKerpleLog /
 * ParallelKerplePower, PE_SPEC.md §9). Distance D = i - j >= 0:
 *
 *   variant=log:    b_h(D) = -r1_h ln(1 + r2_h D)     r1 = bias_p ~ U(0,2), r2 = bias_a ~ U(0,1)
 *   variant=power:  b_h(D) = -r1_h D^r2_h              r1 = bias_a ~ U(0,1), r2 = bias_p ~ U(0,2)
 *
 * Learned r1, r2 per head and per layer, layout per layer l: [r1 (NH) | r2 (NH)] at l * 2 NH. The
 * forward uses clamp(r, 1e-2) (the power exponent also <= 2); the backward passes gradient only where
 * the clamp is inactive. The reference instead clamps the stored parameter in place before every
 * forward; param_init clamps the initial draw the same way so that no head starts below the bound.
 * No weight decay. prepare tabulates ln(1 + r2 D) or D^r2 by distance for the current parameters;
 * bias_row uses the table while the head's r2 is unchanged (evaluation, and the first forward after
 * each prepare in training) and computes per element otherwise.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pe/pe.h"

#define KERPLE_EPS 1e-2f
#define KERPLE_MAX_POWER 2.0f

enum { KERPLE_LOG, KERPLE_POWER };

typedef struct {
    int variant;
    /* Cache built by prepare: g(r2, d) = ln(1 + r2 d) or d^r2 for d < tab_n, per layer and head,
       valid while that head's clamped r2 still equals tab_r2 (parameters change during training;
       bias_row checks before use). */
    float *tab;    /* (L, NH, tab_n) */
    float *tab_r2; /* (L, NH) */
    int tab_n;
} KerpleState;

static int kerple_init(PeModel *pe, char *err) {
    static const char *const keys[] = {"variant", NULL};
    const PeSpec *spec = &pe->spec;
    if (spec->variant[0])
        return cb_error(err, CB_EINPUT, "unknown eval-time variant '%s' for scheme 'kerple'", spec->variant);
    int rc = pe_check_keys(spec, keys, err);
    if (rc) return rc;
    KerpleState *st = calloc(1, sizeof *st);
    if (!st) return cb_error(err, CB_ENOMEM, "kerple: out of memory");
    pe->state = st;
    const char *v = pe_opt(spec, "variant");
    if (!v || strcmp(v, "log") == 0) st->variant = KERPLE_LOG;
    else if (strcmp(v, "power") == 0) st->variant = KERPLE_POWER;
    else return cb_error(err, CB_EINPUT, "kerple: option 'variant' must be log or power, got '%s'", v);
    return CB_OK;
}

static void kerple_destroy(PeModel *pe) {
    KerpleState *st = pe->state;
    if (st) free(st->tab), free(st->tab_r2);
    free(pe->state);
    pe->state = NULL;
}

static void kerple_canonical(const PeModel *pe, char *buf, size_t n) {
    const KerpleState *st = pe->state;
    snprintf(buf, n, "variant=%s", st->variant == KERPLE_LOG ? "log" : "power");
}

static size_t kerple_param_count(const PeModel *pe) {
    return 2 * (size_t)pe->dims.n_head * (size_t)pe->dims.n_layer;
}

/* Upper bound of r2: the power exponent is at most 2, the log variant's r2 is unbounded. */
static float kerple_r2_max(const KerpleState *st) { return st->variant == KERPLE_POWER ? KERPLE_MAX_POWER : INFINITY; }

static float clampf(float x, float lo, float hi) { return x < lo ? lo : x > hi ? hi : x; }

/* Per layer: bias_p for every head, then bias_a (the reference's order); each mapped to r1/r2. */
static void kerple_param_init(PeModel *pe, Rng *rng) {
    const KerpleState *st = pe->state;
    int NH = pe->dims.n_head;
    for (int l = 0; l < pe->dims.n_layer; l++) {
        float *r1 = pe->params + (size_t)l * 2 * NH, *r2 = r1 + NH;
        float *bias_p = st->variant == KERPLE_LOG ? r1 : r2;
        float *bias_a = st->variant == KERPLE_LOG ? r2 : r1;
        for (int h = 0; h < NH; h++) bias_p[h] = (float)(2.0 * rng_uniform(rng));
        for (int h = 0; h < NH; h++) bias_a[h] = (float)rng_uniform(rng);
        for (int h = 0; h < NH; h++) {
            r1[h] = clampf(r1[h], KERPLE_EPS, INFINITY);
            r2[h] = clampf(r2[h], KERPLE_EPS, kerple_r2_max(st));
        }
    }
}

static size_t kerple_state_bytes(const PeModel *pe, int n) {
    size_t heads = (size_t)pe->dims.n_layer * pe->dims.n_head;
    return sizeof(KerpleState) + heads * ((size_t)n + 1) * sizeof(float);
}

/* The clamped (r1, r2) of head h in layer l, as the forward uses them. */
static void kerple_params(const PeModel *pe, int l, int h, float *r1, float *r2) {
    const KerpleState *st = pe->state;
    const float *p = pe->params + (size_t)l * 2 * pe->dims.n_head;
    *r1 = clampf(p[h], KERPLE_EPS, INFINITY);
    *r2 = clampf(p[pe->dims.n_head + h], KERPLE_EPS, kerple_r2_max(st));
}

static float kerple_g(int variant, float r2, int d) {
    if (variant == KERPLE_LOG) return log1pf(r2 * (float)d);
    return d == 0 ? 0.0f : powf((float)d, r2);
}

/* Distance tables for the current r2 of every head: one transcendental per distance instead of
   one per (query, key). Without parameters there is nothing to cache. */
static int kerple_prepare(PeModel *pe, int n, char *err) {
    KerpleState *st = pe->state;
    int L = pe->dims.n_layer, NH = pe->dims.n_head;
    if (!pe->params) return CB_OK;
    if (n > st->tab_n) {
        float *tab = realloc(st->tab, (size_t)L * NH * n * sizeof *tab);
        float *tr = st->tab_r2 ? st->tab_r2 : malloc((size_t)L * NH * sizeof *tr);
        if (!tab || !tr) {
            if (tab) st->tab = tab;
            if (tr) st->tab_r2 = tr;
            st->tab_n = 0;
            return cb_error(err, CB_ENOMEM, "kerple: out of memory for a %d-entry distance table", n);
        }
        st->tab = tab, st->tab_r2 = tr, st->tab_n = n;
        for (int x = 0; x < L * NH; x++) st->tab_r2[x] = NAN; /* rebuilt below */
    }
    for (int l = 0; l < L; l++)
        for (int h = 0; h < NH; h++) {
            float r1, r2;
            kerple_params(pe, l, h, &r1, &r2);
            size_t x = (size_t)l * NH + h;
            if (st->tab_r2[x] == r2) continue;
            for (int d = 0; d < st->tab_n; d++) st->tab[x * st->tab_n + d] = kerple_g(st->variant, r2, d);
            st->tab_r2[x] = r2;
        }
    return CB_OK;
}

static void kerple_bias_row(const PeModel *pe, int layer, int h, int i, int j0, int j1, float *row) {
    const KerpleState *st = pe->state;
    float r1, r2;
    kerple_params(pe, layer, h, &r1, &r2);
    size_t x = (size_t)layer * pe->dims.n_head + h;
    if (st->tab && st->tab_r2[x] == r2 && i < st->tab_n) {
        const float *g = st->tab + x * st->tab_n + i; /* g[-j] = g(i - j) */
        for (int j = j0; j < j1; j++) row[j - j0] -= r1 * g[-j];
        return;
    }
    if (st->variant == KERPLE_LOG)
        for (int j = j0; j < j1; j++) row[j - j0] -= r1 * log1pf(r2 * (float)(i - j));
    else
        for (int j = j0; j < j1; j++) row[j - j0] -= i == j ? 0.0f : r1 * powf((float)(i - j), r2);
}

/* sum[D] of dscores over batch and rows of head h at distance D, for D in [0, T), and then the two
   derivatives; acc (T doubles) may be NULL (out of memory), in which case diagonals are summed in place. */
static void kerple_head_grad(const PeModel *pe, int layer, int h, const float *dscores, int B, int T,
                             double *acc, double g[2]) {
    const KerpleState *st = pe->state;
    int NH = pe->dims.n_head;
    float r1f, r2f;
    kerple_params(pe, layer, h, &r1f, &r2f);
    double r1 = r1f, r2 = r2f;
    if (acc) {
        for (int d = 0; d < T; d++) acc[d] = 0.0;
        for (int b = 0; b < B; b++)
            for (int i = 0; i < T; i++) {
                const float *ds = dscores + (((size_t)b * NH + h) * T + i) * T;
                for (int j = 0; j <= i; j++) acc[i - j] += ds[j];
            }
    }
    g[0] = g[1] = 0.0;
    for (int d = 1; d < T; d++) { /* distance 0 has bias 0 for every r1, r2 */
        double s = 0.0;
        if (acc) s = acc[d];
        else
            for (int b = 0; b < B; b++)
                for (int i = d; i < T; i++) s += dscores[(((size_t)b * NH + h) * T + i) * T + (i - d)];
        if (st->variant == KERPLE_LOG) {
            g[0] -= s * log1p(r2 * d);
            g[1] -= s * r1 * d / (1.0 + r2 * d);
        } else {
            double pw = pow((double)d, r2);
            g[0] -= s * pw;
            g[1] -= s * r1 * pw * log((double)d);
        }
    }
}

/* Each head owns its two parameters and sums in a fixed order: the same bits at any thread count. */
static void kerple_bias_backward(PeModel *pe, int layer, const float *dscores, int B, int T) {
    const KerpleState *st = pe->state;
    int NH = pe->dims.n_head;
    double *acc = malloc((size_t)NH * (size_t)T * sizeof *acc);
    const float *p = pe->params + (size_t)layer * 2 * NH;
    float *g = pe->grads + (size_t)layer * 2 * NH;
#ifdef _OPENMP
#pragma omp parallel for schedule(static)
#endif
    for (int h = 0; h < NH; h++) {
        double gh[2];
        kerple_head_grad(pe, layer, h, dscores, B, T, acc ? acc + (size_t)h * T : NULL, gh);
        if (p[h] >= KERPLE_EPS) g[h] += (float)gh[0];
        if (p[NH + h] >= KERPLE_EPS && p[NH + h] <= kerple_r2_max(st)) g[NH + h] += (float)gh[1];
    }
    free(acc);
}

static int kerple_inspect(const PeModel *pe, const PeInspectArgs *args, FILE *out, char *err) {
    int NH = pe->dims.n_head, q = args->query;
    if (q < 0) return cb_error(err, CB_EINPUT, "kerple: query position %d is negative", q);
    /* Layer 0's effective (clamped) parameters and bias rows; nothing without parameters. */
    int rows = pe->params != NULL;
    float *row = rows ? malloc(((size_t)q + 1) * sizeof *row) : NULL;
    if (rows && !row) return cb_error(err, CB_ENOMEM, "kerple: out of memory for a row of %d keys", q + 1);
    fputs("quantity,head,i,j,value\n", out);
    for (int h = 0; rows && h < NH; h++) {
        float r1, r2;
        kerple_params(pe, 0, h, &r1, &r2);
        fprintf(out, "r1,%d,,,%.9g\nr2,%d,,,%.9g\n", h, r1, h, r2);
    }
    for (int h = 0; rows && h < NH; h++) {
        for (int j = 0; j <= q; j++) row[j] = 0.0f;
        kerple_bias_row(pe, 0, h, q, 0, q + 1, row);
        for (int j = 0; j <= q; j++) fprintf(out, "bias,%d,%d,%d,%.9g\n", h, q, j, row[j]);
    }
    free(row);
    return ferror(out) ? cb_error(err, CB_EIO, "kerple: writing the inspect output failed") : CB_OK;
}

const PeScheme pe_kerple = {
    .name = "kerple",
    .summary = "learned per-head logarithmic or power decay of the logits in distance, per layer",
    .paper = "Chi et al. 2022, arXiv:2205.09921",
    .init = kerple_init,
    .destroy = kerple_destroy,
    .canonical = kerple_canonical,
    .param_count = kerple_param_count,
    .param_init = kerple_param_init,
    .param_decay = 0,
    .prepare = kerple_prepare,
    .state_bytes = kerple_state_bytes,
    .bias_row = kerple_bias_row,
    .bias_backward = kerple_bias_backward,
    .inspect = kerple_inspect,
};
