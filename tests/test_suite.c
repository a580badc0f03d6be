/*
 * test_suite.c — suite files: values, lists and ranges, defaults, one-line errors that name the
 * file, line and key for every bad fixture in tests/suites/, and the grid expansion.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/suite.h"

static void fixture_path(char *buf, size_t n, const char *name) {
    const char *dir = getenv("CB_SOURCE_DIR");
    snprintf(buf, n, "%s/tests/suites/%s", dir && *dir ? dir : ".", name);
}

static void load_fixture(Suite *s, const char *name) {
    char path[1024], err[CB_ERR_LEN] = "";
    fixture_path(path, sizeof path, name);
    int rc = suite_load(s, path, err);
    cr_assert_eq(rc, CB_OK, "%s: rc %d: %s", name, rc, err);
}

/* Loads text that must fail; returns the message. */
static int load_text_error(const char *text, char *err) {
    Suite s;
    int rc = suite_load_string(&s, "t.ini", text, err);
    cr_assert_neq(rc, CB_OK, "accepted:\n%s", text);
    cr_assert_null(s.text, "a failed load kept the text");
    return rc;
}

/* ---- good suites --------------------------------------------------------------------------- */

Test(suite, a_good_suite_parses_with_the_values_written) {
    Suite s;
    load_fixture(&s, "good.ini");
    cr_expect_str_eq(s.name, "good-suite");
    cr_expect_eq(s.n_seeds, 2, "n_seeds %d", s.n_seeds);
    cr_expect_eq(s.seeds[0], 1);
    cr_expect_eq(s.seeds[1], 2);
    cr_expect_str_eq(s.corpus_source, "builtin:prose:bytes=300000,seed=7");
    cr_expect_eq(s.eval_bytes, 16384, "eval_bytes %zu", s.eval_bytes);
    cr_expect_eq(s.n_layers, 2, "n_layers %d", s.n_layers);
    cr_expect_eq(s.layers[0], 1);
    cr_expect_eq(s.layers[1], 2);
    cr_expect_eq(s.d_model[0], 32);
    cr_expect_eq(s.heads[0], 2);
    cr_expect_eq(s.n_mlp_ratio, 1);
    cr_expect_eq(s.mlp_ratio[0], 4, "mlp_ratio default %d", s.mlp_ratio[0]);
    cr_expect_eq(s.train_ctx[0], 64);
    cr_expect_eq(s.n_steps, 3, "steps 10-30+10 gave %d values", s.n_steps);
    cr_expect_eq(s.steps[0], 10);
    cr_expect_eq(s.steps[1], 20);
    cr_expect_eq(s.steps[2], 30);
    cr_expect_eq(s.n_lr, 2);
    cr_expect_float_eq(s.lr[0], 1e-3, 1e-12);
    cr_expect_float_eq(s.lr[1], 3e-3, 1e-12);

    int want[] = {128, 256, 512, 1024, 2048};
    cr_assert_eq(s.n_contexts, 5, "128-2048*2 gave %d values", s.n_contexts);
    for (int i = 0; i < 5; i++) cr_expect_eq(s.contexts[i], want[i], "contexts[%d] = %d", i, s.contexts[i]);

    /* The scheme list continues on an indented line; options with commas stay one spec. */
    cr_assert_eq(s.n_schemes, 3, "n_schemes %d", s.n_schemes);
    cr_expect_str_eq(s.schemes[0], "nope");
    cr_expect_str_eq(s.schemes[1], "rope:base=500000,pairing=half");
    cr_expect_str_eq(s.schemes[2], "alibi");
    cr_assert_eq(s.n_tasks, 1);
    cr_expect_str_eq(s.tasks[0], "perplexity");

    cr_assert_not_null(s.text);
    cr_expect_not_null(strstr(s.text, "name  = good-suite"), "text not kept");
    char hex[65];
    sha256_hex(s.text, strlen(s.text), hex);
    cr_expect_str_eq(s.sha256, hex);
    cr_expect_not_null(strstr(s.path, "good.ini"), "path %s", s.path);
    suite_free(&s);
    suite_free(&s); /* a no-op the second time */
}

Test(suite, absent_keys_take_their_defaults) {
    Suite s;
    char err[CB_ERR_LEN] = "";
    int rc = suite_load_string(&s, "d.ini", "[suite]\nname = d\n", err);
    cr_assert_eq(rc, CB_OK, "rc %d: %s", rc, err);
    cr_expect_eq(s.n_seeds, 1);
    cr_expect_eq(s.seeds[0], 1);
    cr_expect_eq(s.threads, 0);
    cr_expect_str_eq(s.corpus_source, "builtin:prose");
    cr_expect_eq(s.eval_bytes, 65536);
    cr_expect_eq(s.layers[0], 2);
    cr_expect_eq(s.d_model[0], 64);
    cr_expect_eq(s.heads[0], 4);
    cr_expect_eq(s.mlp_ratio[0], 4);
    cr_expect_eq(s.train_ctx[0], 128);
    cr_expect_eq(s.steps[0], 300);
    cr_expect_eq(s.batch[0], 16);
    cr_expect_eq(s.warmup[0], 30);
    cr_expect_float_eq(s.lr[0], 3e-3, 1e-12);
    cr_expect_float_eq(s.min_lr_ratio[0], 0.1, 1e-12);
    cr_expect_float_eq(s.weight_decay[0], 0.1, 1e-12);
    cr_expect_float_eq(s.grad_clip[0], 1.0, 1e-12);
    cr_expect_float_eq(s.beta1[0], 0.9, 1e-12);
    cr_expect_float_eq(s.beta2[0], 0.95, 1e-12);
    cr_expect_eq(s.precision, CB_PRECISION_FP32, "precision %d", s.precision);
    cr_expect_str_eq(s.tasks[0], "perplexity");
    cr_expect_eq(s.n_schemes, 1);
    cr_expect_str_eq(s.schemes[0], "nope");
    int want[] = {128, 256, 512, 1024, 2048};
    cr_assert_eq(s.n_contexts, 5, "default contexts: %d values", s.n_contexts);
    for (int i = 0; i < 5; i++) cr_expect_eq(s.contexts[i], want[i], "contexts[%d] = %d", i, s.contexts[i]);
    suite_free(&s);
}

Test(suite, integer_lists_accept_geometric_and_arithmetic_ranges) {
    Suite s;
    char err[CB_ERR_LEN] = "";
    const char *text = "[suite]\nname = r\nseeds = 0-3, 9223372036854775808\n"
                       "[model]\nlayers = 1-7+3\nd_model = 16-64*2\nheads = 2\n"
                       "[eval]\ncontexts = 100-300, 2048\n";
    /* 100-300 is +1: too many values; checked below. First a valid variant. */
    int rc = suite_load_string(&s, "r.ini", text, err);
    cr_expect_eq(rc, CB_EINPUT, "rc %d: %s", rc, err);
    cr_expect_not_null(strstr(err, "r.ini:9: [eval] contexts: more than 64 values"), "message: %s", err);

    text = "[suite]\nname = r\nseeds = 0-3, 9223372036854775808\n"
           "[model]\nlayers = 1-7+3\nd_model = 16-64*2\nheads = 2\n"
           "[eval]\ncontexts = 100-104, 2048\n";
    rc = suite_load_string(&s, "r.ini", text, err);
    cr_assert_eq(rc, CB_OK, "rc %d: %s", rc, err);
    cr_assert_eq(s.n_seeds, 5, "n_seeds %d", s.n_seeds);
    for (int i = 0; i < 4; i++) cr_expect_eq(s.seeds[i], (uint64_t)i, "seeds[%d] = %llu", i, (unsigned long long)s.seeds[i]);
    cr_expect_eq(s.seeds[4], 1ULL << 63, "seeds[4] = %llu", (unsigned long long)s.seeds[4]);
    cr_assert_eq(s.n_layers, 3, "1-7+3 gave %d values", s.n_layers);
    cr_expect(s.layers[0] == 1 && s.layers[1] == 4 && s.layers[2] == 7, "layers %d %d %d", s.layers[0], s.layers[1],
              s.layers[2]);
    cr_assert_eq(s.n_d_model, 3, "16-64*2 gave %d values", s.n_d_model);
    cr_expect(s.d_model[0] == 16 && s.d_model[1] == 32 && s.d_model[2] == 64, "d_model %d %d %d", s.d_model[0],
              s.d_model[1], s.d_model[2]);
    cr_assert_eq(s.n_contexts, 6, "contexts gave %d values", s.n_contexts);
    cr_expect_eq(s.contexts[4], 104);
    cr_expect_eq(s.contexts[5], 2048);
    suite_free(&s);
}

Test(suite, a_geometric_range_stops_at_the_last_value_not_above_the_end) {
    Suite s;
    char err[CB_ERR_LEN] = "";
    int rc = suite_load_string(&s, "g.ini", "[suite]\nname = g\n[eval]\ncontexts = 128-1000*2\n", err);
    cr_assert_eq(rc, CB_OK, "rc %d: %s", rc, err);
    cr_assert_eq(s.n_contexts, 3, "128-1000*2 gave %d values", s.n_contexts);
    cr_expect_eq(s.contexts[2], 512, "last value %d", s.contexts[2]);
    suite_free(&s);
}

Test(suite, the_shipped_suites_load) {
    const char *names[] = {"suites/quick.ini", "suites/smoke.ini", "suites/rope-extension.ini", "suites/passkey.ini",
                           "suites/cost.ini", "suites/fortunes.ini", "suites/nightly.ini", "suites/bf16.ini"};
    const char *dir = getenv("CB_SOURCE_DIR");
    for (int i = 0; i < (int)(sizeof names / sizeof names[0]); i++) {
        char path[1024], err[CB_ERR_LEN] = "";
        snprintf(path, sizeof path, "%s/%s", dir && *dir ? dir : ".", names[i]);
        Suite s;
        int rc = suite_load(&s, path, err);
        cr_assert_eq(rc, CB_OK, "%s: rc %d: %s", names[i], rc, err);
        Experiment *e;
        Case *c;
        size_t ne, nc;
        rc = suite_expand(&s, &e, &ne, &c, &nc, err);
        cr_assert_eq(rc, CB_OK, "%s: expand rc %d: %s", names[i], rc, err);
        if (i == 0) {
            cr_expect_str_eq(s.name, "quick");
            cr_expect_eq(ne, 12, "quick: %zu experiments", ne);
            cr_expect_eq(nc, 75, "quick: %zu cases", nc);
            /* rope+pi, rope+ntk and rope+yarn are evaluated on the one trained rope model. */
            int variant_cases = 0;
            for (size_t k = 0; k < nc; k++)
                if (!strncmp(c[k].variant, "rope+", 5)) {
                    variant_cases++;
                    cr_expect_str_eq(e[c[k].experiment].scheme, "rope", "variant %s trains '%s'", c[k].variant,
                                     e[c[k].experiment].scheme);
                }
            cr_expect_eq(variant_cases, 15, "quick: %d variant cases", variant_cases);
            cr_expect_eq(e[0].model.precision, CB_PRECISION_FP32, "quick: precision %d", e[0].model.precision);
        } else if (i == 1) {
            cr_expect_str_eq(s.name, "smoke");
            cr_expect_eq(ne, 4, "smoke: %zu experiments", ne);
            cr_expect_eq(nc, 12, "smoke: %zu cases", nc);
        } else if (i == 4) {
            /* Every trained scheme at 128 (the training context) and 512..131072, and a fit each. */
            cr_expect_eq(ne, 12, "cost: %zu experiments", ne);
            cr_expect_eq(nc, 12 * 11, "cost: %zu cases", nc);
            cr_expect_eq(c[nc - 2].context, 131072, "cost: last context %d", c[nc - 2].context);
            cr_expect_str_eq(c[nc - 1].task, "cost_fit");
        } else if (i == 6) {
            /* Every trained scheme x 3 seeds, each at L = 512 ... 32L for perplexity and passkey. */
            cr_expect_eq(ne, 12 * 3, "nightly: %zu experiments", ne);
            cr_expect_eq(nc, 12 * 3 * 6 * 2, "nightly: %zu cases", nc);
            cr_expect_eq(s.n_stride_divisors, 2, "nightly: %d stride divisors", s.n_stride_divisors);
        } else if (i == 7) {
            /* quick.ini's grid with every model at precision bf16. */
            cr_expect_eq(ne, 12, "bf16: %zu experiments", ne);
            cr_expect_eq(nc, 75, "bf16: %zu cases", nc);
            for (size_t k = 0; k < ne; k++)
                cr_expect_eq(e[k].model.precision, CB_PRECISION_BF16, "bf16: experiment %zu has precision %d", k,
                             e[k].model.precision);
        }
        free(e);
        free(c);
        suite_free(&s);
    }
}

/* ---- bad fixtures: one line naming file, line and key --------------------------------------- */

static void expect_bad(const char *name, int line, const char *key, const char *also) {
    char path[1024], err[CB_ERR_LEN] = "", where[128];
    fixture_path(path, sizeof path, name);
    Suite s;
    int rc = suite_load(&s, path, err);
    cr_expect_eq(rc, CB_EINPUT, "%s: rc %d (%s)", name, rc, err);
    snprintf(where, sizeof where, "%s:%d: ", name, line);
    cr_expect_not_null(strstr(err, where), "%s: expected '%s' in: %s", name, where, err);
    cr_expect_eq(strncmp(err, path, strlen(path)), 0, "%s: message does not start with the path: %s", name, err);
    cr_expect_not_null(strstr(err, key), "%s: key '%s' not named in: %s", name, key, err);
    if (also) cr_expect_not_null(strstr(err, also), "%s: '%s' not in: %s", name, also, err);
    cr_expect_null(strchr(err, '\n'), "%s: message has more than one line: %s", name, err);
    cr_expect_null(s.text, "%s: text kept after an error", name);
    cr_expect_eq(s.n_layers, 0, "%s: suite not cleared after an error", name);
}

Test(suite, an_unknown_key_names_its_line_and_the_known_keys) {
    expect_bad("bad_unknown_key.ini", 7, "[model] dmodel", "unknown key");
}

Test(suite, an_unknown_section_names_its_line) {
    expect_bad("bad_unknown_section.ini", 5, "[modle]", "unknown section");
}

Test(suite, a_duplicate_key_names_both_lines) {
    expect_bad("bad_duplicate_key.ini", 9, "[train] steps", "first set on line 7");
}

Test(suite, a_bad_number_shows_the_offending_text) {
    expect_bad("bad_number.ini", 8, "[train] steps", "'3OO' is not an integer");
}

Test(suite, an_unknown_scheme_is_reported_at_the_schemes_line) {
    expect_bad("bad_unknown_scheme.ini", 7, "[eval] schemes", "rotary");
}

Test(suite, a_bad_scheme_option_is_reported_at_the_schemes_line) {
    expect_bad("bad_scheme_option.ini", 6, "[eval] schemes", "bse");
}

Test(suite, a_context_of_a_trillion_is_refused_with_the_allowed_range) {
    expect_bad("bad_huge_context.ini", 9, "[eval] contexts", "'1000000000000' is out of range (2..1048576)");
}

Test(suite, d_model_not_divisible_by_heads_is_reported_at_d_model) {
    expect_bad("bad_heads.ini", 7, "[model] d_model", "not divisible");
}

Test(suite, an_unknown_task_is_named) {
    expect_bad("bad_task.ini", 7, "[eval] tasks", "unknown task 'summarization'");
}

Test(suite, a_corpus_source_of_unknown_kind_is_reported_at_its_line) {
    expect_bad("bad_corpus.ini", 7, "[corpus] source", "http://example.com/corpus.txt");
}

Test(suite, a_missing_suite_file_is_an_io_error) {
    char err[CB_ERR_LEN] = "";
    Suite s;
    int rc = suite_load(&s, "suites/does-not-exist.ini", err);
    cr_expect_eq(rc, CB_EIO, "rc %d", rc);
    cr_expect_str_eq(err, "suites/does-not-exist.ini: No such file or directory");
}

Test(suite, a_suite_without_a_name_is_refused) {
    char err[CB_ERR_LEN] = "";
    int rc = load_text_error("[model]\nlayers = 2\n", err);
    cr_expect_eq(rc, CB_EINPUT, "rc %d", rc);
    cr_expect_str_eq(err, "t.ini: [suite] name: missing (every suite needs a name)");
}

Test(suite, out_of_range_values_name_the_allowed_range) {
    struct {
        const char *text, *want;
    } cases[] = {
        {"[suite]\nname = x\n[model]\nlayers = 65\n", "t.ini:4: [model] layers: '65' is out of range (1..64)"},
        {"[suite]\nname = x\n[model]\nheads = 0\n", "t.ini:4: [model] heads: '0' is out of range (1..64)"},
        {"[suite]\nname = x\n[model]\nd_model = 4\n", "t.ini:4: [model] d_model: '4' is out of range (8..4096)"},
        {"[suite]\nname = x\n[model]\nmlp_ratio = 17\n", "'17' is out of range (1..16)"},
        {"[suite]\nname = x\n[train]\ncontext = 4\n", "t.ini:4: [train] context: '4' is out of range (8..65536)"},
        {"[suite]\nname = x\n[train]\nsteps = 0\n", "'0' is out of range (1..10000000)"},
        {"[suite]\nname = x\n[train]\nbatch = 5000\n", "'5000' is out of range (1..4096)"},
        {"[suite]\nname = x\n[train]\nlr = 0\n", "t.ini:4: [train] lr: '0' is out of range (0, 1]"},
        {"[suite]\nname = x\n[train]\nlr = 1.5\n", "'1.5' is out of range (0, 1]"},
        {"[suite]\nname = x\n[train]\nweight_decay = -0.1\n", "'-0.1' is out of range [0, 1]"},
        {"[suite]\nname = x\n[train]\ngrad_clip = -1\n", "'-1' is out of range >= 0"},
        {"[suite]\nname = x\n[train]\nbeta1 = 1\n", "t.ini:4: [train] beta1: '1' is out of range [0, 1)"},
        {"[suite]\nname = x\n[train]\nbeta2 = 1.0\n", "[train] beta2: '1.0' is out of range [0, 1)"},
        {"[suite]\nname = x\n[eval]\ncontexts = 1\n", "t.ini:4: [eval] contexts: '1' is out of range (2..1048576)"},
        {"[suite]\nname = x\nseeds = 9223372036854775809\n", "t.ini:3: [suite] seeds: '9223372036854775809' is out of range"},
        {"[suite]\nname = x\nseeds = -1\n", "t.ini:3: [suite] seeds: '-1' is out of range"},
        {"[suite]\nname = x\n[train]\nlr = fast\n", "t.ini:4: [train] lr: 'fast' is not a number"},
        {"[suite]\nname = x\n[eval]\ncontexts = 128, 128\n", "t.ini:4: [eval] contexts: 128 is listed twice"},
        {"[suite]\nname = x\n[eval]\ncontexts = 512-128*2\n", "start is larger than end"},
        {"[suite]\nname = x\n[eval]\ncontexts = 128-512*1\n", "step '1' must be at least 2"},
        {"[suite]\nname = x\n[eval]\ncontexts =\n", "t.ini:4: [eval] contexts: empty value"},
        {"[suite]\nname = x\n[corpus]\neval_bytes = 1000\n[eval]\ncontexts = 1000\n",
         "t.ini:6: [eval] contexts: eval context 1000 needs eval_bytes >= 1001"},
        {"[suite]\nname = x\n[corpus]\neval_bytes = 1000\n", "t.ini:4: [corpus] eval_bytes"},
        {"[suite]\nname = x\n[model]\nd_model = 96\nheads = 32\n", "head size d_model/heads = 96/32 = 3 is odd"},
        {"[suite]\nname = x\n[eval]\nschemes = rope+nonsense\n", "t.ini:4: [eval] schemes: 'rope+nonsense'"},
        {"[suite]\nname = x y\n", "t.ini:2: [suite] name: 'x y' has an invalid character"},
        {"name = x\n", "t.ini:1: name: key outside any section"},
        {"[suite]\nname = x\nthis line has no equals sign\n", "t.ini:3: expected 'key = value'"},
        {"[suite\nname = x\n", "t.ini:1: section header without a closing ']'"},
        {"[suite]\nname = x\nthreads = 2, 4\n", "t.ini:3: [suite] threads: '2, 4': expects one value"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char err[CB_ERR_LEN] = "";
        int rc = load_text_error(cases[i].text, err);
        cr_expect_eq(rc, CB_EINPUT, "case %zu: rc %d", i, rc);
        cr_expect_not_null(strstr(err, cases[i].want), "case %zu: expected '%s' in: %s", i, cases[i].want, err);
        cr_expect_null(strchr(err, '\n'), "case %zu: multi-line message: %s", i, err);
    }
}

Test(suite, parsing_stops_at_the_first_error_in_file_order) {
    char err[CB_ERR_LEN] = "";
    load_text_error("[suite]\nname = x\n[train]\nsteps = zero\n[nosuch]\nbatch = -1\n", err);
    cr_expect_not_null(strstr(err, "t.ini:4: [train] steps"), "message: %s", err);
}

Test(suite, an_overlong_line_is_refused_and_a_continued_list_is_not) {
    char text[4096], err[CB_ERR_LEN] = "";
    int n = snprintf(text, sizeof text, "[suite]\nname = x\n[eval]\ncontexts = ");
    for (int c = 100; c < 160; c++) n += snprintf(text + n, sizeof text - (size_t)n, "%d, ", c);
    snprintf(text + n, sizeof text - (size_t)n, "160\n");
    load_text_error(text, err);
    cr_expect_not_null(strstr(err, "t.ini:4: line is longer than"), "message: %s", err);

    n = snprintf(text, sizeof text, "[suite]\nname = x\n[eval]\ncontexts = ");
    for (int c = 100; c < 160; c++)
        n += snprintf(text + n, sizeof text - (size_t)n, "%d,%s", c, c % 10 == 9 ? "\n    " : " ");
    snprintf(text + n, sizeof text - (size_t)n, "160\n; a comment\nschemes = nope\n");
    Suite s;
    int rc = suite_load_string(&s, "t.ini", text, err);
    cr_assert_eq(rc, CB_OK, "rc %d: %s", rc, err);
    cr_expect_eq(s.n_contexts, 61, "n_contexts %d", s.n_contexts);
    cr_expect_eq(s.contexts[60], 160);
    suite_free(&s);
}

/* ---- expansion ----------------------------------------------------------------------------- */

Test(suite, expansion_counts_and_orders_experiments_and_cases) {
    Suite s;
    load_fixture(&s, "good.ini");
    char err[CB_ERR_LEN] = "";
    Experiment *e;
    Case *c;
    size_t ne, nc;
    int rc = suite_expand(&s, &e, &ne, &c, &nc, err);
    cr_assert_eq(rc, CB_OK, "rc %d: %s", rc, err);
    /* layers 2 x steps 3 x lr 2 x schemes 3 x seeds 2 */
    cr_assert_eq(ne, 72, "%zu experiments", ne);
    /* contexts 128..2048 plus the training context 64, one task */
    cr_assert_eq(nc, 72 * 6, "%zu cases", nc);

    /* Seeds vary fastest, then schemes, then the training grid, then the model grid. */
    cr_expect_eq(e[0].seed, 1);
    cr_expect_eq(e[1].seed, 2);
    cr_expect_str_eq(e[0].scheme, "nope");
    cr_expect_str_eq(e[2].scheme, "rope:base=500000,pairing=half");
    cr_expect_str_eq(e[4].scheme, "alibi");
    cr_expect_float_eq(e[0].train.lr, 1e-3, 1e-12);
    cr_expect_float_eq(e[6].train.lr, 3e-3, 1e-12);
    cr_expect_eq(e[11].train.steps, 10);
    cr_expect_eq(e[12].train.steps, 20);
    cr_expect_eq(e[35].model.n_layer, 1);
    cr_expect_eq(e[36].model.n_layer, 2);
    const Experiment *last = &e[71];
    cr_expect(last->model.n_layer == 2 && last->train.steps == 30 && last->seed == 2, "last: L%d steps %d seed %llu",
              last->model.n_layer, last->train.steps, (unsigned long long)last->seed);
    cr_expect_str_eq(last->scheme, "alibi");
    cr_expect_eq(e[0].model.d_model, 32);
    cr_expect_eq(e[0].model.n_head, 2);
    cr_expect_eq(e[0].model.mlp_ratio, 4);
    cr_expect_eq(e[0].model.train_ctx, 64);
    cr_expect_eq(e[0].train.batch, 4);
    cr_expect_eq(e[0].train.warmup, 30);
    cr_expect_float_eq(e[0].train.beta2, 0.95, 1e-12);

    /* Within an experiment: the training context first, then ascending, no duplicates. */
    int want[] = {64, 128, 256, 512, 1024, 2048};
    for (size_t i = 0; i < nc; i++) {
        cr_assert_eq(c[i].experiment, (int)(i / 6), "case %zu belongs to experiment %d", i, c[i].experiment);
        cr_assert_eq(c[i].context, want[i % 6], "case %zu has context %d", i, c[i].context);
        cr_assert_str_eq(c[i].task, "perplexity");
    }
    free(e);
    free(c);
    suite_free(&s);
}

Test(suite, a_training_context_in_the_list_is_not_repeated) {
    Suite s;
    char err[CB_ERR_LEN] = "";
    int rc = suite_load_string(&s, "t.ini",
                               "[suite]\nname = t\n[train]\ncontext = 128, 256\n[eval]\ncontexts = 2048, 64, 256\n",
                               err);
    cr_assert_eq(rc, CB_OK, "rc %d: %s", rc, err);
    Experiment *e;
    Case *c;
    size_t ne, nc;
    rc = suite_expand(&s, &e, &ne, &c, &nc, err);
    cr_assert_eq(rc, CB_OK, "rc %d: %s", rc, err);
    cr_assert_eq(ne, 2, "%zu experiments", ne);
    cr_assert_eq(nc, 4 + 3, "%zu cases", nc); /* L=128: 128 64 256 2048; L=256: 256 64 2048 */
    int want[] = {128, 64, 256, 2048, 256, 64, 2048};
    for (size_t i = 0; i < nc; i++) cr_expect_eq(c[i].context, want[i], "case %zu: context %d", i, c[i].context);
    free(e);
    free(c);
    suite_free(&s);
}

Test(suite, a_grid_too_large_to_run_is_refused_before_allocating_it) {
    Suite s;
    char err[CB_ERR_LEN] = "";
    int rc = suite_load_string(&s, "big.ini",
                               "[suite]\nname = big\n[model]\nlayers = 1-64+1\nheads = 1\nd_model = 8-134+2\n"
                               "[train]\nsteps = 1-64+1\nbatch = 1-64+1\n",
                               err);
    cr_assert_eq(rc, CB_OK, "rc %d: %s", rc, err);
    Experiment *e = (Experiment *)1;
    Case *c = (Case *)1;
    size_t ne = 1, nc = 1;
    rc = suite_expand(&s, &e, &ne, &c, &nc, err);
    cr_expect_eq(rc, CB_EINPUT, "rc %d", rc);
    cr_expect_not_null(strstr(err, "more than"), "message: %s", err);
    cr_expect(e == NULL && c == NULL && ne == 0 && nc == 0, "outputs not cleared");
    suite_free(&s);
}

Test(suite, a_grid_with_too_many_cases_is_refused_before_allocating_it) {
    Suite s;
    char err[CB_ERR_LEN] = "";
    /* 2^19 experiments (within the limit) x 64 contexts = 2^25 cases (past it). */
    int rc = suite_load_string(&s, "many.ini",
                               "[suite]\nname = many\nseeds = 1, 2\n[model]\nlayers = 1-64+1\n"
                               "[train]\nsteps = 1-64+1\nbatch = 1-64+1\n[eval]\ncontexts = 2-128+2\n",
                               err);
    cr_assert_eq(rc, CB_OK, "rc %d: %s", rc, err);
    Experiment *e;
    Case *c;
    size_t ne, nc;
    rc = suite_expand(&s, &e, &ne, &c, &nc, err);
    cr_expect_eq(rc, CB_EINPUT, "rc %d", rc);
    cr_expect_not_null(strstr(err, "cases"), "message: %s", err);
    cr_expect(e == NULL && c == NULL, "outputs not cleared");
    suite_free(&s);
}
