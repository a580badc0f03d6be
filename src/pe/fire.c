/*
 * fire.c — functional interpolation for relative positions (Li et al. 2023, "Functional Interpolation
 * for Relative Positions Improves Long Context Transformers", arXiv:2310.04418; PE_SPEC.md §11).
 *
 *   psi(x) = ln(|c x| + 1)
 *   L_thr  = |L_multiplier * init_L|
 *   u(i,j) = psi(i - j) / (psi(max(i, L_thr)) + eps)          i = query position, j = key
 *   b_h(i,j) = f(u(i,j))[h],   f: Linear(1 -> width) -> ReLU -> Linear(width -> NH)
 *
 * Learned per layer (one FIRE module per layer): c (init 0.1), L_multiplier (init 1.0) and the MLP,
 * initialised like PyTorch's nn.Linear (weights and biases U(-1/sqrt(fan_in), 1/sqrt(fan_in))).
 * Fixed: init_L (option init_l, default 512), eps = 1e-6. Options: width (default 32). No weight decay.
 * Layer l's block of P = 2 + 2 width + NH width + NH floats: [c, L_multiplier, w1 (width),
 * b1 (width), w2 (NH, width), b2 (NH)].
 *
 * u is computed in double, the MLP in float. The MLP is shared by the heads, so bias_backward sums
 * rows in fixed blocks, each into its own partial gradient, and adds the partials in block order:
 * the same bits at every thread count.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pe/pe.h"

#define FIRE_EPS 1e-6
#define FIRE_INIT_C 0.1f
#define FIRE_INIT_LMULT 1.0f
#define FIRE_BLOCK_ROWS 16 /* rows per partial gradient in bias_backward; fixed, not per thread */

typedef struct {
    int width;
    double init_l;
    size_t P;       /* parameters per layer */
    double *spare;  /* (2 P + width + NH) for bias_backward when its block buffer cannot be allocated */
    /* Cache built by prepare: log1p(|c_l| d) for d < tab_n of each layer l, valid while c_l still
       equals tab_c[l] (parameters change during training; bias_row checks before use). */
    double *tab;    /* (L, tab_n) */
    float *tab_c;   /* (L) */
    int tab_n;
} FireState;

/* Offsets inside one layer's block. */
enum { FIRE_C = 0, FIRE_LMULT = 1, FIRE_W1 = 2 };
static size_t fire_b1(const FireState *st) { return FIRE_W1 + (size_t)st->width; }
static size_t fire_w2(const FireState *st) { return FIRE_W1 + 2 * (size_t)st->width; }
static size_t fire_b2(const FireState *st, int NH) { return fire_w2(st) + (size_t)NH * st->width; }

static void fmt_double(double x, char *buf, size_t n) {
    for (int prec = 6; prec <= 17; prec++) {
        snprintf(buf, n, "%.*g", prec, x);
        if (strtod(buf, NULL) == x) return;
    }
}

static int fire_init(PeModel *pe, char *err) {
    static const char *const keys[] = {"init_l", "width", NULL};
    const PeSpec *spec = &pe->spec;
    if (spec->variant[0])
        return cb_error(err, CB_EINPUT, "unknown eval-time variant '%s' for scheme 'fire'", spec->variant);
    int rc = pe_check_keys(spec, keys, err);
    if (rc) return rc;
    FireState *st = calloc(1, sizeof *st);
    if (!st) return cb_error(err, CB_ENOMEM, "fire: out of memory");
    pe->state = st;
    rc = pe_opt_int(spec, "width", 32, 1, 4096, &st->width, err);
    if (rc) return rc;
    rc = pe_opt_double(spec, "init_l", 512.0, 1.0, (double)CB_MAX_CONTEXT, &st->init_l, err);
    if (rc) return rc;
    int NH = pe->dims.n_head;
    st->P = fire_b2(st, NH) + (size_t)NH;
    st->spare = malloc((2 * st->P + (size_t)st->width + (size_t)NH) * sizeof *st->spare);
    if (!st->spare) return cb_error(err, CB_ENOMEM, "fire: out of memory");
    return CB_OK;
}

static void fire_destroy(PeModel *pe) {
    FireState *st = pe->state;
    if (st) free(st->spare), free(st->tab), free(st->tab_c);
    free(st);
    pe->state = NULL;
}

static void fire_canonical(const PeModel *pe, char *buf, size_t n) {
    const FireState *st = pe->state;
    char l[40];
    fmt_double(st->init_l, l, sizeof l);
    snprintf(buf, n, "init_l=%s,width=%d", l, st->width);
}

static size_t fire_param_count(const PeModel *pe) {
    const FireState *st = pe->state;
    return st->P * (size_t)pe->dims.n_layer;
}

static void fill_uniform(float *x, size_t n, double bound, Rng *rng) {
    for (size_t k = 0; k < n; k++) x[k] = (float)(bound * (2.0 * rng_uniform(rng) - 1.0));
}

static void fire_param_init(PeModel *pe, Rng *rng) {
    const FireState *st = pe->state;
    int NH = pe->dims.n_head, W = st->width;
    for (int l = 0; l < pe->dims.n_layer; l++) {
        float *p = pe->params + (size_t)l * st->P;
        p[FIRE_C] = FIRE_INIT_C;
        p[FIRE_LMULT] = FIRE_INIT_LMULT;
        fill_uniform(p + FIRE_W1, (size_t)W, 1.0, rng); /* fan_in 1 */
        fill_uniform(p + fire_b1(st), (size_t)W, 1.0, rng);
        fill_uniform(p + fire_w2(st), (size_t)NH * W, 1.0 / sqrt((double)W), rng);
        fill_uniform(p + fire_b2(st, NH), (size_t)NH, 1.0 / sqrt((double)W), rng);
    }
}

static size_t fire_state_bytes(const PeModel *pe, int n) {
    const FireState *st = pe->state;
    return sizeof *st + (2 * st->P + (size_t)st->width + (size_t)pe->dims.n_head) * sizeof(double) +
           (size_t)pe->dims.n_layer * ((size_t)n * sizeof(double) + sizeof(float));
}

/* The log-distance table for the current c of every layer: the one transcendental per element
   of bias_row, shared by every query and head. Without parameters there is nothing to cache. */
static int fire_prepare(PeModel *pe, int n, char *err) {
    FireState *st = pe->state;
    int L = pe->dims.n_layer;
    if (!pe->params) return CB_OK;
    if (n > st->tab_n) {
        double *tab = realloc(st->tab, (size_t)L * n * sizeof *tab);
        float *tc = st->tab_c ? st->tab_c : malloc((size_t)L * sizeof *tc);
        if (!tab || !tc) {
            if (tab) st->tab = tab;
            if (tc) st->tab_c = tc;
            st->tab_n = 0;
            return cb_error(err, CB_ENOMEM, "fire: out of memory for a %d-entry distance table", n);
        }
        st->tab = tab, st->tab_c = tc, st->tab_n = n;
        for (int l = 0; l < L; l++) st->tab_c[l] = NAN; /* rebuilt below */
    }
    for (int l = 0; l < L; l++) {
        float c = pe->params[(size_t)l * st->P + FIRE_C];
        if (st->tab_c[l] == c) continue;
        double ca = fabs((double)c);
        for (int d = 0; d < st->tab_n; d++) st->tab[(size_t)l * st->tab_n + d] = log1p(ca * d);
        st->tab_c[l] = c;
    }
    return CB_OK;
}

/* What one query row i shares: the normaliser D = psi(max(i, L_thr)) + eps and its derivatives. */
typedef struct {
    double c_abs, c_sign; /* |c| and d|c|/dc */
    double D, dD_dc, dD_dlm;
} FireRow;

static FireRow fire_row(double c, double lmult, double init_l, int i) {
    FireRow r;
    r.c_abs = fabs(c);
    r.c_sign = c > 0 ? 1.0 : c < 0 ? -1.0 : 0.0;
    double lthr = fabs(lmult * init_l);
    double M = (double)i > lthr ? (double)i : lthr;
    r.D = log1p(r.c_abs * M) + FIRE_EPS;
    r.dD_dc = r.c_sign * M / (1.0 + r.c_abs * M);
    /* d psi(L_thr) / d L_multiplier, only when the threshold is the larger (ties go to L_thr) */
    double lm_sign = lmult > 0 ? 1.0 : lmult < 0 ? -1.0 : 0.0;
    r.dD_dlm = (double)i > lthr ? 0.0 : r.c_abs / (1.0 + r.c_abs * lthr) * lm_sign * init_l;
    return r;
}

static double fire_u(const FireRow *r, int d) { return log1p(r->c_abs * d) / r->D; }

static void fire_bias_row(const PeModel *pe, int layer, int h, int i, int j0, int j1, float *row) {
    const FireState *st = pe->state;
    int NH = pe->dims.n_head, W = st->width;
    const float *p = pe->params + (size_t)layer * st->P;
    const float *w1 = p + FIRE_W1, *b1 = p + fire_b1(st), *w2 = p + fire_w2(st) + (size_t)h * W;
    float b2 = p[fire_b2(st, NH) + h];
    FireRow r = fire_row(p[FIRE_C], p[FIRE_LMULT], st->init_l, i);
    const double *tab = st->tab && st->tab_c[layer] == p[FIRE_C] && i < st->tab_n ? st->tab + (size_t)layer * st->tab_n : NULL;
    /* Chunks of keys, the hidden units outer: the loop over keys vectorises and each key still
       sums its units in order k = 0, 1, ... */
    enum { CHUNK = 64 };
    float u[CHUNK], out[CHUNK];
    for (int c0 = j0; c0 < j1; c0 += CHUNK) {
        int m = j1 - c0 < CHUNK ? j1 - c0 : CHUNK;
        for (int c = 0; c < m; c++) {
            int d = i - (c0 + c);
            u[c] = (float)(tab ? tab[d] / r.D : fire_u(&r, d));
            out[c] = b2;
        }
        for (int k = 0; k < W; k++) {
            float a = w1[k], b = b1[k], w = w2[k];
#pragma omp simd
            for (int c = 0; c < m; c++) {
                float z = a * u[c] + b;
                out[c] += w * (z > 0.0f ? z : 0.0f);
            }
        }
        for (int c = 0; c < m; c++) row[c0 + c - j0] += out[c];
    }
}

/* Adds the gradient of rows [i0, i1) into g (P doubles); scratch holds width + NH doubles. */
static void fire_rows_grad(const PeModel *pe, int layer, const float *dscores, int B, int T, int i0, int i1,
                           double *g, double *scratch) {
    const FireState *st = pe->state;
    int NH = pe->dims.n_head, W = st->width;
    const float *p = pe->params + (size_t)layer * st->P;
    const float *w1 = p + FIRE_W1, *b1 = p + fire_b1(st), *w2 = p + fire_w2(st);
    double *gw1 = g + FIRE_W1, *gb1 = g + fire_b1(st), *gw2 = g + fire_w2(st), *gb2 = g + fire_b2(st, NH);
    double *z = scratch, *G = scratch + W;
    for (int i = i0; i < i1; i++) {
        FireRow r = fire_row(p[FIRE_C], p[FIRE_LMULT], st->init_l, i);
        for (int j = 0; j <= i; j++) {
            int d = i - j;
            double u = fire_u(&r, d);
            float uf = (float)u;
            for (int k = 0; k < W; k++) z[k] = w1[k] * uf + b1[k]; /* as the forward rounds it */
            for (int h = 0; h < NH; h++) {
                double s = 0.0;
                for (int b = 0; b < B; b++) s += dscores[(((size_t)b * NH + h) * T + i) * T + j];
                G[h] = s;
            }
            double du = 0.0;
            for (int k = 0; k < W; k++) {
                double a = z[k] > 0.0 ? z[k] : 0.0, da = 0.0;
                for (int h = 0; h < NH; h++) {
                    gw2[(size_t)h * W + k] += G[h] * a;
                    da += G[h] * w2[(size_t)h * W + k];
                }
                if (z[k] > 0.0) {
                    gw1[k] += da * u;
                    gb1[k] += da;
                    du += da * w1[k];
                }
            }
            for (int h = 0; h < NH; h++) gb2[h] += G[h];
            /* u = N / D with N = psi(d): du/dc = (dN/dc - u dD/dc) / D, du/dL = -u dD/dL / D */
            double dN_dc = r.c_sign * d / (1.0 + r.c_abs * d);
            g[FIRE_C] += du * (dN_dc - u * r.dD_dc) / r.D;
            g[FIRE_LMULT] -= du * u * r.dD_dlm / r.D;
        }
    }
}

/* fire_bias_backward without memory to spare: the same blocks one at a time in the state's spare
   buffer, so the same sums. */
static void fire_bias_backward_spare(PeModel *pe, int layer, const float *dscores, int B, int T) {
    const FireState *st = pe->state;
    size_t P = st->P;
    int nblocks = (T + FIRE_BLOCK_ROWS - 1) / FIRE_BLOCK_ROWS;
    double *total = st->spare, *g = st->spare + P;
    for (size_t k = 0; k < P; k++) total[k] = 0.0;
    for (int bl = 0; bl < nblocks; bl++) {
        int i0 = bl * FIRE_BLOCK_ROWS, i1 = i0 + FIRE_BLOCK_ROWS < T ? i0 + FIRE_BLOCK_ROWS : T;
        for (size_t k = 0; k < P; k++) g[k] = 0.0;
        fire_rows_grad(pe, layer, dscores, B, T, i0, i1, g, g + P);
        for (size_t k = 0; k < P; k++) total[k] += g[k];
    }
    float *out = pe->grads + (size_t)layer * P;
    for (size_t k = 0; k < P; k++) out[k] += (float)total[k];
}

static void fire_bias_backward(PeModel *pe, int layer, const float *dscores, int B, int T) {
    const FireState *st = pe->state;
    size_t P = st->P, area = P + (size_t)st->width + (size_t)pe->dims.n_head; /* partial + scratch */
    int nblocks = (T + FIRE_BLOCK_ROWS - 1) / FIRE_BLOCK_ROWS;
    /* The total lives after the blocks; the spare buffer only when they cannot be allocated.
       Training shards call this concurrently: the spare path then takes turns. */
    double *blocks = malloc(((size_t)nblocks * area + P) * sizeof *blocks);
    if (!blocks) {
#pragma omp critical(fire_spare)
        fire_bias_backward_spare(pe, layer, dscores, B, T);
        return;
    }
    double *total = blocks + (size_t)nblocks * area;
    for (size_t k = 0; k < P; k++) total[k] = 0.0;
#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic, 1)
#endif
    for (int bl = 0; bl < nblocks; bl++) {
        double *g = blocks + (size_t)bl * area;
        int i0 = bl * FIRE_BLOCK_ROWS, i1 = i0 + FIRE_BLOCK_ROWS < T ? i0 + FIRE_BLOCK_ROWS : T;
        for (size_t k = 0; k < P; k++) g[k] = 0.0;
        fire_rows_grad(pe, layer, dscores, B, T, i0, i1, g, g + P);
    }
    for (int bl = 0; bl < nblocks; bl++)
        for (size_t k = 0; k < P; k++) total[k] += blocks[(size_t)bl * area + k];
    float *out = pe->grads + (size_t)layer * P;
    for (size_t k = 0; k < P; k++) out[k] += (float)total[k];
    free(blocks);
}

static int fire_inspect(const PeModel *pe, const PeInspectArgs *args, FILE *out, char *err) {
    /* Query rows: §R.10's points and a few more, those below the context, and the last position. */
    static const int grid_i[] = {0, 1, 2, 5, 10, 50, 100, 511, 512, 1000, 4000, 10000, 100000};
    const FireState *st = pe->state;
    int NH = pe->dims.n_head, q = args->query, ctx = args->context;
    if (q < 0) return cb_error(err, CB_EINPUT, "fire: query position %d is negative", q);
    if (ctx < 0) return cb_error(err, CB_EINPUT, "fire: context %d is negative", ctx);
    /* Layer 0; without parameters u uses the initial c and L_multiplier and no bias rows print. */
    int rows = pe->params != NULL;
    double c = rows ? pe->params[FIRE_C] : FIRE_INIT_C, lm = rows ? pe->params[FIRE_LMULT] : FIRE_INIT_LMULT;
    float *row = rows ? malloc(((size_t)q + 1) * sizeof *row) : NULL;
    if (rows && !row) return cb_error(err, CB_ENOMEM, "fire: out of memory for a row of %d keys", q + 1);
    fputs("quantity,head,i,j,value\n", out);
    size_t ng = sizeof grid_i / sizeof grid_i[0];
    for (size_t k = 0; k <= ng; k++) {
        int i = k < ng ? grid_i[k] : ctx - 1; /* the grid, then the last position unless listed */
        int listed = 0;
        for (size_t m = 0; k == ng && m < ng; m++) listed |= grid_i[m] == i;
        if (i < 0 || i >= ctx || listed) continue;
        FireRow r = fire_row(c, lm, st->init_l, i);
        int js[4] = {0, i / 2, i >= 10 ? i - 10 : 0, i};
        for (int a = 0; a < 4; a++) {
            int seen = 0;
            for (int b = 0; b < a; b++) seen |= js[b] == js[a];
            if (!seen) fprintf(out, "u,,%d,%d,%.9g\n", i, js[a], fire_u(&r, i - js[a]));
        }
    }
    for (int h = 0; rows && h < NH; h++) {
        for (int j = 0; j <= q; j++) row[j] = 0.0f;
        fire_bias_row(pe, 0, h, q, 0, q + 1, row);
        for (int j = 0; j <= q; j++) fprintf(out, "bias,%d,%d,%d,%.9g\n", h, q, j, row[j]);
    }
    free(row);
    return ferror(out) ? cb_error(err, CB_EIO, "fire: writing the inspect output failed") : CB_OK;
}

const PeScheme pe_fire = {
    .name = "fire",
    .summary = "learned MLP of the log-distance normalised by the query position, per layer",
    .paper = "Li et al. 2023, arXiv:2310.04418",
    .init = fire_init,
    .destroy = fire_destroy,
    .canonical = fire_canonical,
    .param_count = fire_param_count,
    .param_init = fire_param_init,
    .param_decay = 0,
    .prepare = fire_prepare,
    .state_bytes = fire_state_bytes,
    .bias_row = fire_bias_row,
    .bias_backward = fire_bias_backward,
    .inspect = fire_inspect,
};
