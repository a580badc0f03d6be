/*
 * shaw.c — relative position representations (Shaw, Uszkoreit, Vaswani 2018, "Self-Attention with
 * Relative Position Representations", arXiv:1803.02155, eqs. 3-4; PE_SPEC.md §3), causal form.
 *
 *   e_ij = q_i . (k_j + wK[x]) / sqrt(HS)
 *   z_i  = sum_j softmax_j(e_ij) (v_j + wV[x]),      x = clip(j - i, -k, k) + k  (key minus query)
 *
 * Per layer two learned tables wK, wV (2k+1, HS), shared by the heads as in the paper. Under the
 * causal mask j <= i only rows 0..k are read (row k = distance 0, row 0 = every distance >= k);
 * rows k+1..2k would serve future keys and keep a zero gradient. The kernels (model/kernels.c)
 * apply the tables through the relkv hook and accumulate their gradients.
 *
 * Option k, the clipping distance: default 20, tensor2tensor's `max_relative_position` of
 * transformer_relative() (PE_SPEC §3; the paper's own k is unverified, §U).
 * Init: the paper does not specify one (PE_SPEC §U): we use Normal(0, 0.02) like the model's other
 * embeddings. No weight decay: the tables are positional parameters like T5's bias table, KERPLE's
 * and FIRE's here (none decays), so the relative schemes differ only in their encoding; and decay
 * would pull every row towards the position-free point wK = wV = 0.
 * Layer l's block: wK (2k+1, HS), then wV (2k+1, HS).
 *
 * inspect: `index` i,j -> x for i, j < context (the full matrix, as in the spec's example; only
 * j <= i is used), and when parameters exist `wk_norm` / `wv_norm`: i = layer, j = row x, value the
 * row's Euclidean norm.
 */
#include <math.h>
#include <stdlib.h>

#include "pe/pe.h"

#define SHAW_INSPECT_MAX_CONTEXT 1024 /* the index matrix prints context^2 rows */

typedef struct {
    int k;
} ShawState;

static int shaw_init(PeModel *pe, char *err) {
    static const char *const keys[] = {"k", NULL};
    const PeSpec *spec = &pe->spec;
    if (spec->variant[0])
        return cb_error(err, CB_EINPUT, "unknown eval-time variant '%s' for scheme 'shaw'", spec->variant);
    int rc = pe_check_keys(spec, keys, err);
    if (rc) return rc;
    ShawState *st = calloc(1, sizeof *st);
    if (!st) return cb_error(err, CB_ENOMEM, "shaw: out of memory");
    pe->state = st;
    return pe_opt_int(spec, "k", 20, 1, PE_RELKV_MAX_K, &st->k, err);
}

static void shaw_destroy(PeModel *pe) {
    free(pe->state);
    pe->state = NULL;
}

static void shaw_canonical(const PeModel *pe, char *buf, size_t n) {
    const ShawState *st = pe->state;
    snprintf(buf, n, "k=%d", st->k);
}

/* Floats of one table, and of one layer's block (two tables). */
static size_t shaw_table(const PeModel *pe) {
    const ShawState *st = pe->state;
    return (size_t)(2 * st->k + 1) * (size_t)pe->dims.head_size;
}

static size_t shaw_param_count(const PeModel *pe) { return 2 * shaw_table(pe) * (size_t)pe->dims.n_layer; }

static void shaw_param_init(PeModel *pe, Rng *rng) {
    size_t count = shaw_param_count(pe);
    for (size_t i = 0; i < count; i++) pe->params[i] = 0.02f * rng_normal(rng);
}

static int shaw_relkv(const PeModel *pe, int layer, const float **wk, const float **wv, float **dwk,
                      float **dwv) {
    const ShawState *st = pe->state;
    size_t tab = shaw_table(pe), off = 2 * tab * (size_t)layer;
    *wk = pe->params + off;
    *wv = pe->params + off + tab;
    *dwk = pe->grads ? pe->grads + off : NULL;
    *dwv = pe->grads ? pe->grads + off + tab : NULL;
    return st->k;
}

/* clip(j - i, -k, k) + k */
static int shaw_index(int i, int j, int k) {
    int d = j - i;
    return (d < -k ? -k : d > k ? k : d) + k;
}

static int shaw_inspect(const PeModel *pe, const PeInspectArgs *args, FILE *out, char *err) {
    const ShawState *st = pe->state;
    int n = args->context, HS = pe->dims.head_size, rows = 2 * st->k + 1;
    if (n < 0 || n > SHAW_INSPECT_MAX_CONTEXT)
        return cb_error(err, CB_EINPUT, "shaw: inspect prints the index matrix for contexts 0..%d, got %d",
                        SHAW_INSPECT_MAX_CONTEXT, n);
    fputs("quantity,head,i,j,value\n", out);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) fprintf(out, "index,,%d,%d,%d\n", i, j, shaw_index(i, j, st->k));
    for (int l = 0; pe->params && l < pe->dims.n_layer; l++)
        for (int t = 0; t < 2; t++) {
            const float *tab = pe->params + (2 * (size_t)l + t) * shaw_table(pe);
            for (int x = 0; x < rows; x++) {
                double s = 0.0;
                for (int d = 0; d < HS; d++) s += (double)tab[(size_t)x * HS + d] * tab[(size_t)x * HS + d];
                fprintf(out, "%s,,%d,%d,%.9g\n", t ? "wv_norm" : "wk_norm", l, x, sqrt(s));
            }
        }
    return ferror(out) ? cb_error(err, CB_EIO, "shaw: writing the inspect output failed") : CB_OK;
}

const PeScheme pe_shaw = {
    .name = "shaw",
    .summary = "learned relative key and value tables by clipped distance, shared by heads",
    .paper = "Shaw et al. 2018, arXiv:1803.02155",
    .init = shaw_init,
    .destroy = shaw_destroy,
    .canonical = shaw_canonical,
    .param_count = shaw_param_count,
    .param_init = shaw_param_init,
    .param_decay = 0,
    .relkv = shaw_relkv,
    .inspect = shaw_inspect,
};
