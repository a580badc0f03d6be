/*
 * cope.c — contextual position encoding (Golovneva, Wang, Weston, Sukhbaatar 2024, "Contextual
 * Position Encoding: Learning to Count What's Important", arXiv:2405.18719; PE_SPEC.md §14).
 *
 * Positions are counted, not indexed: for query i of a head, with its scaled scores
 * z_ij = q_i . k_j / sqrt(HS) (keys j <= i),
 *
 *   g_ij = sigmoid(z_ij)                      gate: does key j count?
 *   p_ij = min(sum_{t=j..i} g_it, P - 1)      gated keys between j and i, both included
 *   c_ij = w e_i[ceil p_ij] + (1 - w) e_i[floor p_ij],  w = p_ij - floor p_ij,  e_i[p] = q_i . E[:, p]
 *   score_ij = z_ij + c_ij,  then softmax
 *
 * so p depends on content: two keys the same distance apart get different positions when the keys
 * between them gate differently. E (HS, P) is learned per layer and shared by the heads, as in the
 * reference module (one CoPE per attention layer, pos_emb (1, head_dim, npos_max)); init zeros as
 * in the reference, so CoPE starts as a no-op. P = npos_max; the paper's values are unverified
 * (PE_SPEC §U) and the reference code has no default: we take 64, enough distinct counts for the
 * contexts of our tiny models while positions past 63 gated keys share the last embedding (the
 * clamp the paper relies on beyond training length); at most COPE_MAX_NPOS. No weight decay: as
 * with the other positional parameters here, and decay would only pull E towards the no-op.
 *
 * The term acts on whole score rows through the score_row hooks (called by model/kernels.c in
 * training and evaluation). The backward recomputes gates and positions from the row's scores, in
 * the same order as the forward, so floors and ceilings match exactly. The interpolation's
 * derivative in p is e[ceil] - e[floor] (0 at integer and clamped positions, as autograd gives).
 * Layer l's block: E (HS, P), row d holds E[d, 0..P).
 *
 * inspect: `gate` and `cope_pos` of query args.query over keys 0..query for a fixed random q and
 * k (Normal(0, 1), seed COPE_INSPECT_SEED) — positions are a function of that content, not of
 * i - j alone — and `cope_term`, the added score c (layer 0), when parameters exist.
 */
#include <math.h>
#include <stdlib.h>

#include "pe/pe.h"

#define COPE_MAX_NPOS 1024 /* the rows keep e_i[0..P) on the stack; PE_SCORE_CARRY fits it */
#define COPE_INSPECT_SEED 2405

_Static_assert(COPE_MAX_NPOS + 2 <= PE_SCORE_CARRY, "a score_block carry holds the gate sum, a flag and zq");

typedef struct {
    int npos; /* P */
} CopeState;

static int cope_init(PeModel *pe, char *err) {
    static const char *const keys[] = {"npos_max", NULL};
    const PeSpec *spec = &pe->spec;
    if (spec->variant[0])
        return cb_error(err, CB_EINPUT, "unknown eval-time variant '%s' for scheme 'cope'", spec->variant);
    int rc = pe_check_keys(spec, keys, err);
    if (rc) return rc;
    CopeState *st = calloc(1, sizeof *st);
    if (!st) return cb_error(err, CB_ENOMEM, "cope: out of memory");
    pe->state = st;
    return pe_opt_int(spec, "npos_max", 64, 1, COPE_MAX_NPOS, &st->npos, err);
}

static void cope_destroy(PeModel *pe) {
    free(pe->state);
    pe->state = NULL;
}

static void cope_canonical(const PeModel *pe, char *buf, size_t n) {
    const CopeState *st = pe->state;
    snprintf(buf, n, "npos_max=%d", st->npos);
}

static size_t cope_layer_count(const PeModel *pe) {
    const CopeState *st = pe->state;
    return (size_t)pe->dims.head_size * (size_t)st->npos;
}

static size_t cope_param_count(const PeModel *pe) { return cope_layer_count(pe) * (size_t)pe->dims.n_layer; }

static void cope_param_init(PeModel *pe, Rng *rng) {
    (void)rng; /* zeros, as the reference: no draws */
    size_t count = cope_param_count(pe);
    for (size_t i = 0; i < count; i++) pe->params[i] = 0.0f;
}

static float cope_sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

/* zq[p] = q . E[:, p] for p = 0..top. */
static void cope_zq(float *zq, const float *E, const float *q, int HS, int P, int top) {
    for (int p = 0; p <= top; p++) zq[p] = 0.0f;
    for (int d = 0; d < HS; d++) {
        const float *row = E + (size_t)d * P;
        for (int p = 0; p <= top; p++) zq[p] += q[d] * row[p];
    }
}

/* The interpolation of a position: floor, ceil and the weight of ceil. */
typedef struct {
    int fl, ce;
    float w;
} CopePos;

static CopePos cope_pos(float acc, float cap) {
    CopePos r;
    float pos = acc < cap ? acc : cap;
    r.fl = (int)pos; /* pos >= 0 */
    r.w = pos - (float)r.fl;
    r.ce = r.w > 0.0f ? r.fl + 1 : r.fl;
    return r;
}

static void cope_score_row(const PeModel *pe, int layer, int h, int i, const float *q, float *s) {
    (void)h; /* one E for every head */
    const CopeState *st = pe->state;
    if (!pe->params) return;
    int P = st->npos, HS = pe->dims.head_size;
    int top = P - 1 < i + 1 ? P - 1 : i + 1; /* p_ij <= i - j + 1 */
    float zq[COPE_MAX_NPOS];
    cope_zq(zq, pe->params + (size_t)layer * cope_layer_count(pe), q, HS, P, top);
    float acc = 0.0f, cap = (float)(P - 1);
    for (int j = i; j >= 0; j--) {
        acc += cope_sigmoid(s[j]);
        CopePos c = cope_pos(acc, cap);
        s[j] += c.w * zq[c.ce] + (1.0f - c.w) * zq[c.fl];
    }
}

/* carry: [0] the running gate sum, [1] 1 once zq is filled, [2..2+P) zq. Blocks come from the
   diagonal down, so the sum runs over j = i, i-1, ... in the same order as cope_score_row. */
static void cope_score_block(const PeModel *pe, int layer, int h, int i, const float *q, int j0, int j1,
                             float *s, float *carry) {
    (void)h;
    const CopeState *st = pe->state;
    if (!pe->params) return;
    int P = st->npos, HS = pe->dims.head_size;
    int top = P - 1 < i + 1 ? P - 1 : i + 1;
    float *zq = carry + 2;
    if (carry[1] == 0.0f) {
        cope_zq(zq, pe->params + (size_t)layer * cope_layer_count(pe), q, HS, P, top);
        carry[1] = 1.0f;
    }
    float acc = carry[0], cap = (float)(P - 1);
    for (int j = j1 - 1; j >= j0; j--) {
        acc += cope_sigmoid(s[j - j0]);
        CopePos c = cope_pos(acc, cap);
        s[j - j0] += c.w * zq[c.ce] + (1.0f - c.w) * zq[c.fl];
    }
    carry[0] = acc;
}

/*
 * With u_j = ds_j * dc_j/dp_j (0 where p is clamped), dp_j/dz_t = g_t (1 - g_t) for j <= t, so
 * dz_t = ds_t + g_t (1 - g_t) sum_{j<=t} u_j. The score's dependence on E and q goes through
 * a[p] = sum_j ds_j * (interpolation weight of p in c_j): dq += E a, dE += q a^T.
 */
static void cope_score_row_backward(const PeModel *pe, int layer, int h, int i, const float *q, float *s,
                                    const float *ds, float *dq, float *work, float *dparams) {
    (void)h;
    const CopeState *st = pe->state;
    if (!pe->params) return; /* no term was added: s is its own gradient */
    int P = st->npos, HS = pe->dims.head_size;
    int top = P - 1 < i + 1 ? P - 1 : i + 1;
    const float *E = pe->params + (size_t)layer * cope_layer_count(pe);
    float zq[COPE_MAX_NPOS], a[COPE_MAX_NPOS];
    cope_zq(zq, E, q, HS, P, top);
    for (int p = 0; p <= top; p++) a[p] = 0.0f;
    float acc = 0.0f, cap = (float)(P - 1);
    for (int j = i; j >= 0; j--) {
        float g = cope_sigmoid(s[j]);
        acc += g;
        CopePos c = cope_pos(acc, cap);
        a[c.fl] += ds[j] * (1.0f - c.w);
        a[c.ce] += ds[j] * c.w;
        work[j] = acc < cap ? ds[j] * (zq[c.ce] - zq[c.fl]) : 0.0f;
        s[j] = g;
    }
    float pre = 0.0f;
    for (int t = 0; t <= i; t++) {
        pre += work[t];
        s[t] = ds[t] + s[t] * (1.0f - s[t]) * pre;
    }
    for (int d = 0; d < HS; d++) {
        const float *row = E + (size_t)d * P;
        float sum = 0.0f;
        for (int p = 0; p <= top; p++) sum += a[p] * row[p];
        dq[d] += sum;
        if (!dparams) continue;
        float *grow = dparams + (size_t)d * P;
        for (int p = 0; p <= top; p++) grow[p] += q[d] * a[p];
    }
}

static int cope_inspect(const PeModel *pe, const PeInspectArgs *args, FILE *out, char *err) {
    const CopeState *st = pe->state;
    int qi = args->query, HS = pe->dims.head_size;
    if (qi < 0 || qi >= args->context)
        return cb_error(err, CB_EINPUT, "cope: query position %d is outside the context [0, %d)", qi, args->context);
    size_t n = (size_t)qi + 1;
    float *k = malloc(n * (size_t)HS * sizeof *k), *q = malloc((size_t)HS * sizeof *q);
    float *z = malloc(n * sizeof *z), *c = malloc(n * sizeof *c);
    int rc = CB_OK;
    if (!k || !q || !z || !c) {
        rc = cb_error(err, CB_ENOMEM, "cope: out of memory for a row of %zu keys", n);
        goto done;
    }
    Rng rng;
    rng_seed(&rng, COPE_INSPECT_SEED);
    for (int d = 0; d < HS; d++) q[d] = rng_normal(&rng);
    for (size_t x = 0; x < n * (size_t)HS; x++) k[x] = rng_normal(&rng);
    float scale = 1.0f / sqrtf((float)HS);
    for (size_t j = 0; j < n; j++) {
        float s = 0.0f;
        for (int d = 0; d < HS; d++) s += q[d] * k[j * HS + d];
        z[j] = c[j] = s * scale;
    }
    cope_score_row(pe, 0, 0, qi, q, c);
    fputs("quantity,head,i,j,value\n", out);
    for (size_t j = 0; j < n; j++) fprintf(out, "gate,,%d,%zu,%.9g\n", qi, j, cope_sigmoid(z[j]));
    float acc = 0.0f, cap = (float)(st->npos - 1);
    for (int j = qi; j >= 0; j--) {
        acc += cope_sigmoid(z[j]);
        fprintf(out, "cope_pos,,%d,%d,%.9g\n", qi, j, acc < cap ? acc : cap);
    }
    for (size_t j = 0; pe->params && j < n; j++) fprintf(out, "cope_term,,%d,%zu,%.9g\n", qi, j, c[j] - z[j]);
    if (ferror(out)) rc = cb_error(err, CB_EIO, "cope: writing the inspect output failed");
done:
    free(k);
    free(q);
    free(z);
    free(c);
    return rc;
}

const PeScheme pe_cope = {
    .name = "cope",
    .summary = "contextual positions: gated key counts interpolate a learned embedding per layer",
    .paper = "Golovneva et al. 2024, arXiv:2405.18719",
    .init = cope_init,
    .destroy = cope_destroy,
    .canonical = cope_canonical,
    .param_count = cope_param_count,
    .param_init = cope_param_init,
    .param_decay = 0,
    .score_row = cope_score_row,
    .score_row_backward = cope_score_row_backward,
    .score_block = cope_score_block,
    .inspect = cope_inspect,
};
