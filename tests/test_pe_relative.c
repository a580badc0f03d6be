/*
 * test_pe_relative.c — Shaw's relative key/value tables (PE_SPEC.md §3), randomized positions for
 * sinusoidal and learned (§13) and CoPE (§14): the spec's examples and properties, finite
 * differences of their gradients through the kernels and the whole model, and the determinism of
 * CoPE's shared parameter gradient. Causality and the generic gradient check of both schemes run in
 * test_model.c, which loops over every registered scheme.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "model/kernels.h"
#include "model/model.h"
#include "pe/pe.h"

/* ---- helpers ---------------------------------------------------------------------------------- */

static void fill(float *x, size_t n, Rng *rng, float scale) {
    for (size_t i = 0; i < n; i++) x[i] = scale * rng_normal(rng);
}

static double dot(const float *a, const float *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

/* An encoding with its own zeroed parameter and gradient blocks, prepared for ctx. */
typedef struct {
    PeModel pe;
    float *params, *grads;
} TestPe;

static void make_pe(TestPe *tp, const char *spec, int L, int NH, int HS, int ctx) {
    char err[CB_ERR_LEN] = "";
    PeDims dims = {.n_layer = L, .n_head = NH, .head_size = HS, .d_model = NH * HS, .train_ctx = ctx};
    memset(tp, 0, sizeof *tp);
    int rc = pe_create(&tp->pe, spec, &dims, err);
    cr_assert_eq(rc, CB_OK, "pe_create('%s') returned %d: %s", spec, rc, err);
    size_t np = pe_param_count(&tp->pe);
    if (np) {
        tp->params = calloc(np, sizeof(float));
        tp->grads = calloc(np, sizeof(float));
        cr_assert(tp->params && tp->grads, "calloc of %zu parameters failed", np);
        tp->pe.params = tp->params;
        tp->pe.grads = tp->grads;
    }
    rc = pe_prepare(&tp->pe, ctx, err);
    cr_assert_eq(rc, CB_OK, "pe_prepare('%s', %d) returned %d: %s", spec, ctx, rc, err);
}

static void free_pe(TestPe *tp) {
    pe_destroy(&tp->pe);
    free(tp->params);
    free(tp->grads);
}

/* Inspect CSV rows of one quantity: (i, j, value); head is ignored (these schemes leave it empty). */
typedef struct {
    int i, j;
    double value;
} Row;

typedef struct {
    Row *rows;
    int n;
} Rows;

static Rows inspect_rows(const PeModel *pe, const char *quantity, int context, int query) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    cr_assert(f, "open_memstream failed");
    PeInspectArgs args = {.context = context, .query = query};
    char err[CB_ERR_LEN] = "";
    int rc = pe->scheme->inspect(pe, &args, f, err);
    fclose(f);
    cr_assert_eq(rc, CB_OK, "%s inspect returned %d: %s", pe->scheme->name, rc, err);
    const char *header = "quantity,head,i,j,value\n";
    cr_assert_eq(strncmp(buf, header, strlen(header)), 0, "inspect output starts '%.40s'", buf);
    Rows out = {malloc(len * sizeof(Row)), 0};
    size_t qlen = strlen(quantity);
    for (char *line = buf + strlen(header); *line;) {
        char *nl = strchr(line, '\n');
        cr_assert(nl, "inspect line without newline: '%s'", line);
        *nl = '\0';
        if (strncmp(line, quantity, qlen) == 0 && line[qlen] == ',') {
            Row *r = &out.rows[out.n++];
            char *c = strchr(line + qlen + 1, ','); /* after the head field */
            cr_assert(c && sscanf(c + 1, "%d,%d,%lf", &r->i, &r->j, &r->value) == 3, "bad inspect line '%s'", line);
        }
        line = nl + 1;
    }
    free(buf);
    return out;
}

static ModelConfig tiny_config(int T) {
    return (ModelConfig){.n_layer = 2, .d_model = 16, .n_head = 2, .mlp_ratio = 2, .train_ctx = T};
}

static void random_bytes(uint8_t *b, size_t n, uint64_t seed) {
    Rng rng;
    rng_seed(&rng, seed);
    for (size_t i = 0; i < n; i++) b[i] = (uint8_t)(97 + rng_below(&rng, 8));
}

static void build(Model *m, const char *spec, int T, uint64_t seed) {
    char err[CB_ERR_LEN] = "";
    ModelConfig cfg = tiny_config(T);
    int rc = model_build(m, &cfg, spec, seed, err);
    cr_assert_eq(rc, CB_OK, "model_build('%s') returned %d: %s", spec, rc, err);
}

static double loss_at(Model *m, size_t i, float value, const uint8_t *in, const uint8_t *tg, int B, int T) {
    char err[CB_ERR_LEN] = "";
    float keep = m->params[i], loss;
    m->params[i] = value;
    int rc = model_loss_and_grad(m, in, tg, B, T, &loss, err);
    cr_assert_eq(rc, CB_OK, "model_loss_and_grad returned %d: %s", rc, err);
    m->params[i] = keep;
    return loss;
}

/* Central differences of the loss against the analytic gradient for the encoding's parameters
   [lo, hi) (offsets in its block) whose gradient is not negligible; returns how many were checked. */
static int check_pe_gradient(Model *m, size_t lo, size_t hi, const uint8_t *in, const uint8_t *tg, int B, int T) {
    char err[CB_ERR_LEN] = "";
    float loss;
    cr_assert_eq(model_loss_and_grad(m, in, tg, B, T, &loss, err), CB_OK, "%s", err);
    size_t np = hi - lo, base = (size_t)(m->p.pe - m->params) + lo;
    float *g = malloc(np * sizeof *g);
    memcpy(g, m->g.pe + lo, np * sizeof *g);
    int checked = 0;
    for (size_t k = 0; k < np; k++) {
        if (fabsf(g[k]) < 1e-5f) continue;
        size_t i = base + k;
        float h = 1e-2f;
        double fd = (loss_at(m, i, m->params[i] + h, in, tg, B, T) - loss_at(m, i, m->params[i] - h, in, tg, B, T)) /
                    (2 * h);
        cr_assert(fabs(fd - g[k]) <= 2e-4 + 2e-2 * fabs(fd), "%s parameter %zu: analytic %g, numeric %g",
                  m->pe.scheme->name, lo + k, g[k], fd);
        checked++;
    }
    free(g);
    return checked;
}

/* ---- Shaw ------------------------------------------------------------------------------------- */

Test(shaw, index_matrix_of_length_4_and_k_2_matches_the_spec_example) {
    static const int want[4][4] = {{2, 3, 4, 4}, {1, 2, 3, 4}, {0, 1, 2, 3}, {0, 0, 1, 2}};
    TestPe tp;
    make_pe(&tp, "shaw:k=2", 1, 2, 4, 4);
    Rows r = inspect_rows(&tp.pe, "index", 4, 0);
    cr_assert_eq(r.n, 16, "expected 16 index entries, got %d", r.n);
    for (int k = 0; k < r.n; k++)
        cr_assert_eq((int)r.rows[k].value, want[r.rows[k].i][r.rows[k].j], "index[%d][%d] = %g, want %d",
                     r.rows[k].i, r.rows[k].j, r.rows[k].value, want[r.rows[k].i][r.rows[k].j]);
    free(r.rows);
    free_pe(&tp);
}

Test(shaw, every_distance_of_k_or_more_uses_the_same_table_row) {
    enum { N = 40, K = 5 };
    TestPe tp;
    make_pe(&tp, "shaw:k=5", 1, 2, 4, N);
    Rows r = inspect_rows(&tp.pe, "index", N, 0);
    for (int k = 0; k < r.n; k++) {
        int d = r.rows[k].j - r.rows[k].i, x = (int)r.rows[k].value;
        int want = d <= -K ? 0 : d >= K ? 2 * K : d + K;
        cr_assert_eq(x, want, "index of i=%d j=%d is %d, want %d", r.rows[k].i, r.rows[k].j, x, want);
    }
    free(r.rows);
    free_pe(&tp);
}

Test(shaw, keys_k_or_more_behind_the_query_get_equal_attention_when_keys_are_equal) {
    /* Identical keys: scores differ only by q . wK[x], so keys sharing row 0 share a probability,
       while the nearer ones, each with its own row, do not. */
    enum { B = 1, T = 12, C = 8, NH = 2, HS = C / NH, K = 3 };
    TestPe tp;
    make_pe(&tp, "shaw:k=3", 1, NH, HS, T);
    Rng rng;
    rng_seed(&rng, 31);
    fill(tp.params, pe_param_count(&tp.pe), &rng, 0.5f);
    static float qkv[B * T * 3 * C], out[B * T * C], att[B * NH * T * T];
    fill(qkv, B * T * 3 * C, &rng, 1.0f);
    for (int t = 1; t < T; t++) memcpy(qkv + t * 3 * C + C, qkv + C, sizeof(float) * C);
    attention_forward(out, att, qkv, &tp.pe, 0, B, T, C, NH);
    for (int h = 0; h < NH; h++)
        for (int i = K; i < T; i++) {
            const float *p = att + ((size_t)h * T + i) * T;
            for (int j = 1; j <= i - K; j++)
                cr_assert_float_eq(p[j], p[0], 1e-6f * p[0], "head %d query %d: p[%d] = %g, p[0] = %g", h, i, j, p[j],
                                   p[0]);
            for (int j = i - K + 1; j <= i; j++)
                cr_assert(fabsf(p[j] - p[0]) > 1e-6f, "head %d query %d: nearer key %d has p %g like the far ones",
                          h, i, j, p[j]);
        }
    free_pe(&tp);
}

Test(shaw, zero_tables_give_exactly_the_outputs_of_nope) {
    enum { T = 16 };
    Model s, n;
    build(&s, "shaw:k=4", T, 41); /* the tables are drawn after every other weight: the rest match */
    build(&n, "nope", T, 41);
    cr_assert_eq(s.n_params - pe_param_count(&s.pe), n.n_params, "parameter counts %zu and %zu", s.n_params,
                 n.n_params);
    for (size_t i = 0; i < pe_param_count(&s.pe); i++) s.p.pe[i] = 0.0f;
    uint8_t x[T + 1];
    random_bytes(x, T + 1, 42);
    static float ls[T * CB_VOCAB], ln[T * CB_VOCAB];
    char err[CB_ERR_LEN] = "";
    cr_assert_eq(model_eval_window(&s, x, x + 1, T, NULL, ls, err), CB_OK, "%s", err);
    cr_assert_eq(model_eval_window(&n, x, x + 1, T, NULL, ln, err), CB_OK, "%s", err);
    for (int k = 0; k < T * CB_VOCAB; k++)
        cr_assert_float_eq(ls[k], ln[k], 1e-6f * (1 + fabsf(ln[k])), "logit %d: shaw %g, nope %g", k, ls[k], ln[k]);
    float loss_s, loss_n;
    cr_assert_eq(model_loss_and_grad(&s, x, x + 1, 1, T, &loss_s, err), CB_OK, "%s", err);
    cr_assert_eq(model_loss_and_grad(&n, x, x + 1, 1, T, &loss_n, err), CB_OK, "%s", err);
    cr_assert_float_eq(loss_s, loss_n, 1e-6f, "training loss: shaw %g, nope %g", loss_s, loss_n);
    model_free(&s);
    model_free(&n);
}

Test(shaw, table_gradients_match_finite_differences_through_the_model) {
    enum { B = 2, T = 8, K = 3, HS = 8, ROWS = 2 * K + 1 };
    Model m;
    build(&m, "shaw:k=3", T, 51);
    Rng rng;
    rng_seed(&rng, 52);
    for (size_t i = 0; i < m.n_params; i++) m.params[i] += 0.05f * rng_normal(&rng);
    fill(m.p.pe, pe_param_count(&m.pe), &rng, 0.3f);
    uint8_t in[B * T], tg[B * T];
    random_bytes(in, B * T, 53);
    random_bytes(tg, B * T, 54);
    int checked = check_pe_gradient(&m, 0, pe_param_count(&m.pe), in, tg, B, T);
    cr_assert_geq(checked, 100, "only %d table entries had a gradient to check", checked);
    /* rows of future distances (x > k) are never read under the causal mask */
    for (int l = 0; l < 2; l++)
        for (int t = 0; t < 2; t++)
            for (int x = K + 1; x < ROWS; x++)
                for (int d = 0; d < HS; d++) {
                    float g = m.g.pe[((size_t)(2 * l + t) * ROWS + x) * HS + d];
                    cr_assert_eq(g, 0.0f, "layer %d table %d row %d: gradient %g on a future distance", l, t, x, g);
                }
    model_free(&m);
}

Test(shaw, options_defaults_init_and_inspected_norms) {
    enum { L = 2, HS = 16 };
    TestPe tp;
    make_pe(&tp, "shaw", L, 4, HS, 64);
    char canon[128], err[CB_ERR_LEN] = "";
    pe_canonical(&tp.pe, canon, sizeof canon);
    cr_assert_str_eq(canon, "shaw:k=20", "canonical was '%s'", canon);
    size_t np = pe_param_count(&tp.pe);
    cr_assert_eq(np, (size_t)L * 2 * 41 * HS, "param_count %zu", np);
    cr_assert_eq(tp.pe.scheme->param_decay, 0, "param_decay %d", tp.pe.scheme->param_decay);
    Rng rng;
    rng_seed(&rng, 61);
    tp.pe.scheme->param_init(&tp.pe, &rng);
    double s2 = 0;
    for (size_t i = 0; i < np; i++) s2 += (double)tp.params[i] * tp.params[i];
    cr_assert(fabs(sqrt(s2 / np) - 0.02) < 0.002, "init standard deviation %g, want 0.02", sqrt(s2 / np));
    Rows r = inspect_rows(&tp.pe, "wv_norm", 4, 0);
    cr_assert_eq(r.n, L * 41, "%d wv_norm rows, want %d", r.n, L * 41);
    for (int k = 0; k < r.n; k++) {
        const float *row = tp.params + ((size_t)(2 * r.rows[k].i + 1) * 41 + r.rows[k].j) * HS;
        double want = sqrt(dot(row, row, HS));
        cr_assert(fabs(r.rows[k].value - want) <= 1e-7 * want, "wv_norm layer %d row %d: %g, want %g", r.rows[k].i,
                  r.rows[k].j, r.rows[k].value, want);
    }
    free(r.rows);
    free_pe(&tp);
    static const char *bad[] = {"shaw:k=0", "shaw:k=257", "shaw:clip=4", "shaw+x"};
    PeDims dims = {.n_layer = 1, .n_head = 2, .head_size = 4, .d_model = 8, .train_ctx = 16};
    for (int k = 0; k < 4; k++) {
        PeModel pe;
        int rc = pe_create(&pe, bad[k], &dims, err);
        cr_assert_eq(rc, CB_EINPUT, "'%s' created with status %d", bad[k], rc);
        cr_assert(err[0] && !strchr(err, '\n'), "'%s': message '%s'", bad[k], err);
    }
}

/* ---- randomized positions --------------------------------------------------------------------- */

Test(randomized, samples_are_sorted_distinct_in_range_and_uniform) {
    enum { N = 50, T = 20, DRAWS = 20000 };
    Rng rng;
    rng_seed(&rng, 71);
    static int count[N];
    int pos[T];
    for (int d = 0; d < DRAWS; d++) {
        pe_sample_positions(&rng, N, T, pos);
        for (int t = 0; t < T; t++) {
            cr_assert(pos[t] >= 0 && pos[t] < N, "draw %d: position %d out of [0, %d)", d, pos[t], N);
            cr_assert(t == 0 || pos[t] > pos[t - 1], "draw %d: positions %d, %d not strictly increasing", d,
                      t ? pos[t - 1] : 0, pos[t]);
            count[pos[t]]++;
        }
    }
    /* each position is in a sample with probability T/N: 8000 expected, sd ~69 */
    double want = (double)DRAWS * T / N;
    for (int p = 0; p < N; p++)
        cr_assert(fabs(count[p] - want) < 400, "position %d drawn %d times, expected about %g", p, count[p], want);
}

Test(randomized, n_equal_to_t_gives_the_plain_positions) {
    Rng rng;
    rng_seed(&rng, 72);
    static int pos[1000];
    pe_sample_positions(&rng, 1000, 1000, pos);
    for (int t = 0; t < 1000; t++) cr_assert_eq(pos[t], t, "pos[%d] = %d", t, pos[t]);
    pe_sample_positions(&rng, 1, 1, pos);
    cr_assert_eq(pos[0], 0, "N = T = 1 gave %d", pos[0]);
}

Test(randomized, options_are_checked_at_init_and_canonical) {
    static const struct {
        const char *spec, *canon;
    } ok[] = {
        {"learned:randomized=256", "learned:randomized=256,rows=256"},
        {"learned:rows=300,randomized=256", "learned:randomized=256,rows=300"},
        {"learned:randomized=0", "learned:rows=128"},
        {"sinusoidal:randomized=4096", "sinusoidal:base=10000,embed_scale=sqrt,layout=interleaved,randomized=4096"},
        {"sinusoidal:randomized=0", "sinusoidal:base=10000,embed_scale=sqrt,layout=interleaved"},
    };
    PeDims dims = {.n_layer = 1, .n_head = 4, .head_size = 16, .d_model = 64, .train_ctx = 128};
    for (size_t k = 0; k < sizeof ok / sizeof ok[0]; k++) {
        PeModel a, b;
        char err[CB_ERR_LEN] = "", ca[256], cb[256];
        cr_assert_eq(pe_create(&a, ok[k].spec, &dims, err), CB_OK, "'%s': %s", ok[k].spec, err);
        pe_canonical(&a, ca, sizeof ca);
        cr_assert_str_eq(ca, ok[k].canon, "'%s' canonical was '%s'", ok[k].spec, ca);
        cr_assert_eq(pe_create(&b, ca, &dims, err), CB_OK, "canonical '%s' does not parse: %s", ca, err);
        pe_canonical(&b, cb, sizeof cb);
        cr_assert_str_eq(cb, ca, "canonical '%s' became '%s'", ca, cb);
        pe_destroy(&a);
        pe_destroy(&b);
    }
    char err[CB_ERR_LEN] = "";
    PeModel pe;
    cr_assert_eq(pe_create(&pe, "sinusoidal:randomized=100", &dims, err), CB_EINPUT, "N < L accepted");
    cr_assert_str_eq(err,
                     "sinusoidal: randomized=100 must be at least the training context 128 (a window draws that "
                     "many distinct positions from [0, 100))",
                     "message was '%s'", err);
    cr_assert_eq(pe_create(&pe, "learned:randomized=64", &dims, err), CB_EINPUT, "N < L accepted");
    cr_assert(strstr(err, "at least the training context 128"), "message was '%s'", err);
    cr_assert_eq(pe_create(&pe, "learned:randomized=256,rows=200", &dims, err), CB_EINPUT, "rows < N accepted");
    cr_assert_str_eq(err, "learned: rows=200 is too short for randomized=256 (positions reach 255)", "message was '%s'",
                     err);
    cr_assert_eq(pe_create(&pe, "learned:randomized=-1", &dims, err), CB_EINPUT, "negative N accepted");
}

Test(randomized, learned_training_step_puts_gradient_only_on_the_sampled_rows) {
    enum { B = 2, T = 16, N = 64, C = 16 };
    Model m;
    build(&m, "learned:randomized=64", T, 81);
    cr_assert_eq(pe_param_count(&m.pe), (size_t)N * C, "the table has %zu floats, want %d rows", pe_param_count(&m.pe),
                 N);
    Rng copy = m.pos_rng;
    int want[T];
    m.pe.scheme->train_positions(&m.pe, &copy, T, want);
    uint8_t in[B * T], tg[B * T];
    random_bytes(in, B * T, 82);
    random_bytes(tg, B * T, 83);
    float loss;
    char err[CB_ERR_LEN] = "";
    cr_assert_eq(model_loss_and_grad(&m, in, tg, B, T, &loss, err), CB_OK, "%s", err);
    cr_assert_gt(want[T - 1], T - 1, "the draw was the plain positions (last %d)", want[T - 1]);
    int t = 0;
    for (int row = 0; row < N; row++) {
        int sampled = t < T && want[t] == row;
        t += sampled;
        double norm = sqrt(dot(m.g.pe + (size_t)row * C, m.g.pe + (size_t)row * C, C));
        cr_assert(sampled ? norm > 0 : norm == 0, "row %d (%s): gradient norm %g", row,
                  sampled ? "sampled" : "not sampled", norm);
    }
    /* the step drew exactly one window from the model's own stream */
    cr_assert(!memcmp(&copy, &m.pos_rng, sizeof copy), "the step did not draw one window from the position stream");
    model_free(&m);
}

Test(randomized, evaluation_uses_plain_positions_and_training_the_sampled_ones) {
    /* Same weights: learned:randomized=32 and learned:rows=32 draw the same table. Evaluation
       (positions 0..n-1) agrees; a training step of the randomized one reads other rows. */
    enum { T = 16 };
    Model r, p;
    build(&r, "learned:randomized=32", T, 91);
    build(&p, "learned:rows=32", T, 91);
    cr_assert(!memcmp(r.params, p.params, r.n_params * sizeof(float)), "the two models start from different weights");
    uint8_t x[T + 1];
    random_bytes(x, T + 1, 92);
    float lr[T], lp[T], tr, tp;
    char err[CB_ERR_LEN] = "";
    cr_assert_eq(model_eval_window(&r, x, x + 1, T, lr, NULL, err), CB_OK, "%s", err);
    cr_assert_eq(model_eval_window(&p, x, x + 1, T, lp, NULL, err), CB_OK, "%s", err);
    cr_assert(!memcmp(lr, lp, sizeof lr), "evaluation of the randomized model differs from the plain one");
    cr_assert_eq(model_loss_and_grad(&r, x, x + 1, 1, T, &tr, err), CB_OK, "%s", err);
    cr_assert_eq(model_loss_and_grad(&p, x, x + 1, 1, T, &tp, err), CB_OK, "%s", err);
    cr_assert_neq(tr, tp, "training losses are equal (%g): the sampled positions were not used", tr);
    model_free(&r);
    model_free(&p);
}

Test(randomized, sinusoidal_caches_rows_up_to_n_and_embeds_the_sampled_positions) {
    enum { T = 16, N = 100, C = 8 };
    TestPe tp;
    make_pe(&tp, "sinusoidal:randomized=100,embed_scale=1", 1, 2, 4, T);
    cr_assert_eq(pe_state_bytes(&tp.pe, T), (size_t)N * C * sizeof(float), "state_bytes(%d) = %zu", T,
                 pe_state_bytes(&tp.pe, T));
    cr_assert_eq(pe_state_bytes(&tp.pe, 200), (size_t)200 * C * sizeof(float), "state_bytes(200) = %zu",
                 pe_state_bytes(&tp.pe, 200));
    Rng rng;
    rng_seed(&rng, 93);
    int pos[T];
    tp.pe.scheme->train_positions(&tp.pe, &rng, T, pos);
    cr_assert_gt(pos[T - 1], T - 1, "the draw was the plain positions");
    float x[T * C] = {0};
    tp.pe.scheme->embed_forward(&tp.pe, x, pos, T);
    for (int t = 0; t < T; t++)
        for (int c = 0; c < C; c++) {
            int pair = c / 2;
            double ang = pos[t] * pow(10000.0, -2.0 * pair / C);
            double want = c % 2 ? cos(ang) : sin(ang);
            cr_assert(fabs(x[t * C + c] - want) < 1e-6, "position %d dim %d: %g, want %g", pos[t], c, x[t * C + c],
                      want);
        }
    free_pe(&tp);
}

/* ---- CoPE ------------------------------------------------------------------------------------- */

Test(cope, gates_of_one_count_every_key_so_positions_are_i_minus_j_plus_one) {
    /* E[0][p] = p and q = (1, 0, ...) make the added term the position itself. */
    enum { HS = 4, P = 8, I = 11 };
    TestPe tp;
    make_pe(&tp, "cope:npos_max=8", 1, 1, HS, 16);
    for (int p = 0; p < P; p++) tp.params[p] = (float)p;
    float q[HS] = {1, 0, 0, 0}, s[I + 1];
    for (int j = 0; j <= I; j++) s[j] = 40.0f; /* sigmoid(40) rounds to 1 */
    tp.pe.scheme->score_row(&tp.pe, 0, 0, I, q, s);
    for (int j = 0; j <= I; j++) {
        int want = I - j + 1 < P - 1 ? I - j + 1 : P - 1;
        cr_assert_eq(s[j] - 40.0f, (float)want, "key %d: position %g, want %d", j, s[j] - 40.0f, want);
    }
    free_pe(&tp);
}

Test(cope, inspected_positions_are_suffix_sums_of_content_gates) {
    enum { Q = 20 };
    TestPe tp;
    make_pe(&tp, "cope", 1, 2, 8, 64);
    Rows g = inspect_rows(&tp.pe, "gate", 64, Q), p = inspect_rows(&tp.pe, "cope_pos", 64, Q);
    cr_assert_eq(g.n, Q + 1, "%d gates for query %d", g.n, Q);
    cr_assert_eq(p.n, Q + 1, "%d positions for query %d", p.n, Q);
    double gate[Q + 1], pos[Q + 1];
    for (int k = 0; k <= Q; k++) gate[g.rows[k].j] = g.rows[k].value, pos[p.rows[k].j] = p.rows[k].value;
    double acc = 0;
    int off_grid = 0;
    for (int j = Q; j >= 0; j--) {
        acc += gate[j];
        cr_assert(gate[j] > 0 && gate[j] < 1, "gate of key %d is %g", j, gate[j]);
        cr_assert(fabs(pos[j] - acc) < 1e-5 * (1 + acc), "position of key %d: %g, suffix sum of gates %g", j, pos[j],
                  acc);
        off_grid += fabs(pos[j] - (Q - j + 1)) > 0.5;
    }
    cr_assert_gt(off_grid, 0, "every position equals i - j + 1: no content dependence shows");
    free(g.rows);
    free(p.rows);
    free_pe(&tp);
}

Test(cope, zero_embedding_at_init_gives_exactly_the_outputs_of_nope) {
    enum { T = 16 };
    Model c, n;
    build(&c, "cope", T, 101);
    build(&n, "nope", T, 101);
    for (size_t i = 0; i < pe_param_count(&c.pe); i++)
        cr_assert_eq(c.p.pe[i], 0.0f, "CoPE parameter %zu initialised to %g", i, c.p.pe[i]);
    uint8_t x[T + 1];
    random_bytes(x, T + 1, 102);
    static float lc[T * CB_VOCAB], ln[T * CB_VOCAB];
    char err[CB_ERR_LEN] = "";
    cr_assert_eq(model_eval_window(&c, x, x + 1, T, NULL, lc, err), CB_OK, "%s", err);
    cr_assert_eq(model_eval_window(&n, x, x + 1, T, NULL, ln, err), CB_OK, "%s", err);
    for (int k = 0; k < T * CB_VOCAB; k++)
        cr_assert_float_eq(lc[k], ln[k], 1e-6f * (1 + fabsf(ln[k])), "logit %d: cope %g, nope %g", k, lc[k], ln[k]);
    model_free(&c);
    model_free(&n);
}

/* J = <wo, attention(qkv)> and its gradient w.r.t. qkv and E, by the kernels. */
static void cope_kernel_fd(const char *spec) {
    enum { B = 2, T = 7, C = 8, NH = 2, HS = C / NH };
    TestPe tp;
    make_pe(&tp, spec, 2, NH, HS, T);
    Rng rng;
    rng_seed(&rng, 111);
    size_t np = pe_param_count(&tp.pe);
    fill(tp.params, np, &rng, 0.7f);
    static float qkv[B * T * 3 * C], out[B * T * C], att[B * NH * T * T], wo[B * T * C];
    static float dqkv[B * T * 3 * C], ds[B * NH * T * T];
    fill(qkv, B * T * 3 * C, &rng, 1.0f);
    fill(wo, B * T * C, &rng, 1.0f);
    attention_forward(out, att, qkv, &tp.pe, 1, B, T, C, NH);
    cr_assert_eq(attention_backward(dqkv, ds, wo, qkv, att, &tp.pe, 1, B, T, C, NH), CB_OK, "backward failed");
    float *targets[2] = {qkv, tp.params}, *grads[2] = {dqkv, tp.grads};
    size_t sizes[2] = {B * T * 3 * C, np};
    for (int t = 0; t < 2; t++)
        for (size_t i = 0; i < sizes[t]; i++) {
            float keep = targets[t][i], h = 1e-2f;
            targets[t][i] = keep + h;
            attention_forward(out, att, qkv, &tp.pe, 1, B, T, C, NH);
            double jp = dot(out, wo, B * T * C);
            targets[t][i] = keep - h;
            attention_forward(out, att, qkv, &tp.pe, 1, B, T, C, NH);
            double jm = dot(out, wo, B * T * C);
            targets[t][i] = keep;
            double fd = (jp - jm) / (2 * h);
            cr_assert(fabs(fd - grads[t][i]) <= 1e-3 + 2e-2 * fabs(fd), "%s: %s[%zu]: analytic %g, numeric %g", spec,
                      t ? "E" : "qkv", i, grads[t][i], fd);
        }
    /* layer 0's block is untouched by layer 1's backward */
    for (size_t i = 0; i < np / 2; i++) cr_assert_eq(tp.grads[i], 0.0f, "layer 0 gradient %zu is %g", i, tp.grads[i]);
    free_pe(&tp);
}

Test(cope, kernel_backward_matches_finite_differences_for_qkv_and_the_embedding) {
    cope_kernel_fd("cope:npos_max=16"); /* positions below the cap */
    cope_kernel_fd("cope:npos_max=3");  /* most positions clamped */
}

Test(cope, embedding_gradients_match_finite_differences_through_the_model) {
    enum { B = 2, T = 8 };
    Model m;
    build(&m, "cope:npos_max=6", T, 121);
    Rng rng;
    rng_seed(&rng, 122);
    for (size_t i = 0; i < m.n_params; i++) m.params[i] += 0.05f * rng_normal(&rng);
    fill(m.p.pe, pe_param_count(&m.pe), &rng, 0.5f);
    uint8_t in[B * T], tg[B * T];
    random_bytes(in, B * T, 123);
    random_bytes(tg, B * T, 124);
    int checked = check_pe_gradient(&m, 0, pe_param_count(&m.pe), in, tg, B, T);
    cr_assert_geq(checked, 60, "only %d embedding entries had a gradient to check", checked);
    model_free(&m);
}

Test(cope, evaluation_kernel_agrees_with_training_and_gradients_are_the_same_bits_at_one_and_two_threads) {
    enum { B = 3, T = 19, C = 16, NH = 4, HS = C / NH };
    TestPe tp;
    make_pe(&tp, "cope:npos_max=10", 1, NH, HS, T);
    Rng rng;
    rng_seed(&rng, 131);
    size_t np = pe_param_count(&tp.pe);
    fill(tp.params, np, &rng, 0.5f);
    static float qkv[B * T * 3 * C], y[B * T * C], ye[T * C], att[B * NH * T * T], wo[B * T * C];
    static float dq1[B * T * 3 * C], dq2[B * T * 3 * C], ds[B * NH * T * T];
    fill(qkv, B * T * 3 * C, &rng, 1.0f);
    fill(wo, B * T * C, &rng, 1.0f);
    float *g1 = calloc(np, sizeof(float));
    for (int threads = 1; threads <= 2; threads++) {
        omp_set_num_threads(threads);
        attention_forward(y, att, qkv, &tp.pe, 0, B, T, C, NH);
        float *scratch = malloc(sizeof(float) * attention_eval_scratch_floats(&tp.pe, 0, T, C, NH, 0, CB_ATT_BQ, CB_ATT_BK,
                                                                             omp_get_max_threads()));
        attention_eval(ye, NULL, scratch, qkv + (size_t)2 * T * 3 * C, NULL, &tp.pe, 0, T, C, NH);
        free(scratch);
        for (int i = 0; i < T * C; i++)
            cr_assert_float_eq(ye[i], y[2 * T * C + i], 2e-6f, "%d threads: eval output %d is %g, training %g", threads,
                               i, ye[i], y[2 * T * C + i]);
        memset(tp.grads, 0, np * sizeof(float));
        attention_backward(threads == 1 ? dq1 : dq2, ds, wo, qkv, att, &tp.pe, 0, B, T, C, NH);
        if (threads == 1) memcpy(g1, tp.grads, np * sizeof(float));
    }
    cr_assert(!memcmp(dq1, dq2, sizeof dq1), "dqkv differs between one and two threads");
    cr_assert(!memcmp(g1, tp.grads, np * sizeof(float)), "the embedding gradient differs between one and two threads");
    free(g1);
    free_pe(&tp);
}

Test(cope, options_defaults_and_refusals) {
    TestPe tp;
    make_pe(&tp, "cope", 3, 4, 16, 64);
    char canon[128], err[CB_ERR_LEN] = "";
    pe_canonical(&tp.pe, canon, sizeof canon);
    cr_assert_str_eq(canon, "cope:npos_max=64", "canonical was '%s'", canon);
    cr_assert_eq(pe_param_count(&tp.pe), (size_t)3 * 16 * 64, "param_count %zu", pe_param_count(&tp.pe));
    cr_assert_eq(tp.pe.scheme->param_decay, 0, "param_decay %d", tp.pe.scheme->param_decay);
    free_pe(&tp);
    static const char *bad[] = {"cope:npos_max=0", "cope:npos_max=1025", "cope:npos=8", "cope+x"};
    PeDims dims = {.n_layer = 1, .n_head = 2, .head_size = 4, .d_model = 8, .train_ctx = 16};
    for (int k = 0; k < 4; k++) {
        PeModel pe;
        int rc = pe_create(&pe, bad[k], &dims, err);
        cr_assert_eq(rc, CB_EINPUT, "'%s' created with status %d", bad[k], rc);
        cr_assert(err[0] && !strchr(err, '\n'), "'%s': message '%s'", bad[k], err);
    }
}
