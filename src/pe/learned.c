/*
 * learned.c — a learned absolute position table (GPT-2 `wpe`; Radford et al. 2019, "Language
 * Models are Unsupervised Multitask Learners"; learned positions first in Gehring et al. 2017).
 *
 *   h0[t] = wte[token_t] + W[pos_t],   W (rows, C) ~ Normal(0, 0.02)
 *
 * There is no row for pos >= rows: prepare(n) with n > rows is CB_EUNSUPPORTED, never clamped.
 * rows defaults to the training context.
 *
 * randomized=N (Ruoss et al. 2023, arXiv:2305.16843, PE_SPEC §13): each training window of T
 * tokens takes T sorted distinct positions drawn from [0, N) (N >= the training context, checked
 * at init), so every row of an N-row table is trained; rows then defaults to N and may not be
 * smaller. Evaluation keeps 0..n-1 (n <= rows). 0 or absent = off; the canonical form omits it.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "pe/pe.h"

typedef struct {
    int rows;
    int randomized; /* N: training positions sampled from [0, N); 0 = plain positions */
} LearnedState;

static int learned_init(PeModel *pe, char *err) {
    static const char *const keys[] = {"randomized", "rows", NULL};
    const PeSpec *spec = &pe->spec;
    if (spec->variant[0])
        return cb_error(err, CB_EINPUT, "unknown eval-time variant '%s' for scheme 'learned'", spec->variant);
    int rc = pe_check_keys(spec, keys, err);
    if (rc) return rc;
    LearnedState *st = calloc(1, sizeof *st);
    if (!st) return cb_error(err, CB_ENOMEM, "learned: out of memory");
    pe->state = st;
    rc = pe_opt_int(spec, "randomized", 0, 0, (long long)CB_MAX_CONTEXT, &st->randomized, err);
    if (rc) return rc;
    int N = st->randomized;
    if (N && N < pe->dims.train_ctx)
        return cb_error(err, CB_EINPUT,
                        "learned: randomized=%d must be at least the training context %d (a window draws that "
                        "many distinct positions from [0, %d))",
                        N, pe->dims.train_ctx, N);
    rc = pe_opt_int(spec, "rows", N ? N : pe->dims.train_ctx, 1, (long long)CB_MAX_CONTEXT, &st->rows, err);
    if (rc) return rc;
    if (N && st->rows < N)
        return cb_error(err, CB_EINPUT, "learned: rows=%d is too short for randomized=%d (positions reach %d)",
                        st->rows, N, N - 1);
    return CB_OK;
}

static void learned_destroy(PeModel *pe) {
    free(pe->state);
    pe->state = NULL;
}

static void learned_canonical(const PeModel *pe, char *buf, size_t n) {
    const LearnedState *st = pe->state;
    if (st->randomized) snprintf(buf, n, "randomized=%d,rows=%d", st->randomized, st->rows);
    else snprintf(buf, n, "rows=%d", st->rows);
}

static size_t learned_param_count(const PeModel *pe) {
    const LearnedState *st = pe->state;
    return (size_t)st->rows * (size_t)pe->dims.d_model;
}

static void learned_param_init(PeModel *pe, Rng *rng) {
    size_t count = learned_param_count(pe);
    for (size_t k = 0; k < count; k++) pe->params[k] = 0.02f * rng_normal(rng);
}

static int learned_prepare(PeModel *pe, int n, char *err) {
    const LearnedState *st = pe->state;
    if (n > st->rows)
        return cb_error(err, CB_EUNSUPPORTED, "learned position table has %d rows; context %d needs %d", st->rows,
                        n, n);
    return CB_OK;
}

static size_t learned_state_bytes(const PeModel *pe, int n) {
    (void)pe;
    (void)n;
    return 0; /* the table is a parameter; nothing is cached */
}

static void learned_embed_forward(const PeModel *pe, float *x, const int *pos, int T) {
    int C = pe->dims.d_model;
    for (int t = 0; t < T; t++) {
        assert(pos[t] >= 0 && pos[t] < ((const LearnedState *)pe->state)->rows);
        const float *w = pe->params + (size_t)pos[t] * C;
        float *xt = x + (size_t)t * C;
        for (int c = 0; c < C; c++) xt[c] += w[c];
    }
}

/* Serial on purpose: two tokens at the same position add into the same row. */
static void learned_embed_backward(PeModel *pe, float *dx, const int *pos, int T) {
    int C = pe->dims.d_model;
    for (int t = 0; t < T; t++) {
        float *g = pe->grads + (size_t)pos[t] * C;
        const float *d = dx + (size_t)t * C;
        for (int c = 0; c < C; c++) g[c] += d[c];
    }
}

static void learned_train_positions(const PeModel *pe, Rng *rng, int T, int *pos) {
    const LearnedState *st = pe->state;
    if (st->randomized) {
        pe_sample_positions(rng, st->randomized, T, pos);
        return;
    }
    for (int t = 0; t < T; t++) pos[t] = t;
}

static int learned_inspect(const PeModel *pe, const PeInspectArgs *args, FILE *out, char *err) {
    static const int def_pos[] = {0, 1, 2, 10};
    const LearnedState *st = pe->state;
    int C = pe->dims.d_model;
    const int *pos = args->n_positions > 0 ? args->positions : def_pos;
    int np = args->n_positions > 0 ? args->n_positions : 4;
    if (!pe->params)
        return cb_error(err, CB_EINPUT, "learned: the table has no values to show (inspect a trained model)");
    for (int k = 0; k < np; k++) {
        if (pos[k] < 0) return cb_error(err, CB_EINPUT, "learned: position %d is negative", pos[k]);
        /* The default positions are only examples: skip those a short table lacks. */
        if (pos[k] >= st->rows && args->n_positions > 0)
            return cb_error(err, CB_EUNSUPPORTED, "learned position table has %d rows; position %d needs %d",
                            st->rows, pos[k], pos[k] + 1);
    }
    fputs("quantity,head,i,j,value\n", out);
    for (int k = 0; k < np; k++) {
        if (pos[k] >= st->rows) continue;
        const float *w = pe->params + (size_t)pos[k] * C;
        for (int c = 0; c < C; c++) fprintf(out, "pe,,%d,%d,%.9g\n", pos[k], c, w[c]);
    }
    return ferror(out) ? cb_error(err, CB_EIO, "learned: writing the inspect output failed") : CB_OK;
}

const PeScheme pe_learned = {
    .name = "learned",
    .summary = "learned absolute position table added to the embeddings (GPT-2 wpe)",
    .paper = "Radford et al. 2019 (GPT-2); Gehring et al. 2017, arXiv:1705.03122",
    .init = learned_init,
    .destroy = learned_destroy,
    .canonical = learned_canonical,
    .param_count = learned_param_count,
    .param_init = learned_param_init,
    .param_decay = 1,
    .prepare = learned_prepare,
    .state_bytes = learned_state_bytes,
    .embed_forward = learned_embed_forward,
    .embed_backward = learned_embed_backward,
    .train_positions = learned_train_positions,
    .inspect = learned_inspect,
};
