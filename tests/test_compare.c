/*
 * test_compare.c — comparing runs: identical runs show no change and exit 0; a scheme made worse on
 * purpose is named and exits 1 (through the library and the CLI); thresholds come from the flag or
 * the suite's [compare] section; with several seeds a change within two standard errors is not
 * flagged; accuracies regress downwards; a case that stopped succeeding is a regression; unknown
 * runs are bad input (exit 2); --last picks the two newest complete runs of a suite.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "report/report.h"
#include "store/store.h"

static char dir[64];
static char db_path[128];

static void setup(void) {
    snprintf(dir, sizeof dir, "/tmp/ctxbench_compare_XXXXXX");
    cr_assert_not_null(mkdtemp(dir), "mkdtemp failed for %s", dir);
    snprintf(db_path, sizeof db_path, "%s/results.db", dir);
}

static void teardown(void) {
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_expect_eq(system(cmd), 0, "removing %s", dir);
}

TestSuite(compare, .init = setup, .fini = teardown);

static Store *open_rw(void) {
    Store *st = NULL;
    char err[CB_ERR_LEN] = "";
    int rc = store_open(&st, db_path, 0, err);
    cr_assert_eq(rc, CB_OK, "store_open returned %d: %s", rc, err);
    return st;
}

static const char *const SCHEMES[] = {"nope", "rope", "alibi"};
static const int CONTEXTS[] = {128, 256, 512};

/* How a fixture run departs from the baseline numbers. */
typedef struct {
    const char *worse_scheme; /* this scheme's bpb is multiplied by worse_factor */
    double worse_factor;
    double shift;             /* added to every bpb (all schemes) */
    int seeds;                /* models per scheme */
    double noise;             /* seed k adds noise * (-1, +1, 0, ...) to bpb */
    double acc;               /* passkey_acc metric of every case; 0 = none */
    const char *fail_scheme;  /* this scheme's cases at 512 fail */
    const char *suite_text;
    const char *status;       /* run status at the end */
} Variant;

static int64_t add_run(Store *st, const Variant *v) {
    RunInfo ri = {.suite_name = "fixture", .suite_path = "suites/fixture.ini",
                  .suite_text = v->suite_text ? v->suite_text : "[suite]\nname = fixture\n",
                  .suite_sha256 = "ab", .threads = 2};
    store_provenance(&ri);
    int64_t run = 0;
    char err[CB_ERR_LEN] = "";
    cr_assert_eq(store_begin_run(st, &ri, &run, err), CB_OK, "%s", err);
    int seeds = v->seeds ? v->seeds : 1;
    for (int s = 0; s < 3; s++)
        for (int k = 0; k < seeds; k++) {
            char key[64];
            snprintf(key, sizeof key, "%s-%d-%lld", SCHEMES[s], k, (long long)run);
            ModelRecord m = {.run_id = run, .scheme = SCHEMES[s], .scheme_canon = SCHEMES[s],
                             .key = key, .seed = (uint64_t)k + 1, .train_ctx = 128, .status = "ok",
                             .bytes_per_second = 1e5};
            int64_t model = 0;
            cr_assert_eq(store_insert_model(st, &m, NULL, 0, &model, err), CB_OK, "%s", err);
            for (int c = 0; c < 3; c++) {
                int n = CONTEXTS[c];
                double bpb = 2.0 + 0.25 * s + 0.1 * c + v->shift;
                static const double sign[] = {-1, 1, 0, -0.5, 0.5};
                bpb += v->noise * sign[k % 5];
                if (v->worse_scheme && !strcmp(v->worse_scheme, SCHEMES[s])) bpb *= v->worse_factor;
                int fail = v->fail_scheme && !strcmp(v->fail_scheme, SCHEMES[s]) && n == 512;
                CaseRecord cr = {.run_id = run, .model_id = model, .scheme = SCHEMES[s], .variant = "",
                                 .task = "perplexity", .context = n, .train_ctx = 128,
                                 .seed = (uint64_t)k + 1, .status = fail ? "failed" : "ok",
                                 .error = fail ? "killed by signal 9" : NULL, .wall_seconds = 1};
                MetricRecord mr[] = {
                    {.name = "bpb", .value = bpb, .lo = NAN, .hi = NAN, .count = 1000,
                     .unit = "bits/byte", .mode = "nonoverlap", .stride = n},
                    {.name = "windows", .value = 4096.0 / n, .lo = NAN, .hi = NAN, .count = 1,
                     .unit = "", .mode = "nonoverlap", .stride = n},
                    {.name = "passkey_acc", .value = v->acc, .lo = NAN, .hi = NAN, .count = 50, .unit = ""},
                };
                int64_t id = 0;
                cr_assert_eq(store_insert_case(st, &cr, mr, fail ? 0 : v->acc > 0 ? 3 : 2, NULL, 0, &id,
                                               err), CB_OK, "%s", err);
            }
        }
    cr_assert_eq(store_finish_run(st, run, v->status ? v->status : "complete", err), CB_OK, "%s", err);
    return run;
}

/* Compares and returns the printed text (malloc'd); res filled. */
static char *compare(Store *st, int64_t a, int64_t b, double threshold, CompareResult *res) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    cr_assert_not_null(f);
    CompareOptions o = {.threshold = threshold, .markdown = 0};
    char err[CB_ERR_LEN] = "";
    int rc = compare_runs(st, a, b, &o, f, res, err);
    fclose(f);
    cr_assert_eq(rc, CB_OK, "compare_runs returned %d: %s", rc, err);
    return buf;
}

static int cli(const char *args) {
    const char *bin = getenv("CB_BINARY");
    cr_assert_not_null(bin, "CB_BINARY is not set (ctest sets it)");
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s' %s --db '%s' >/dev/null 2>&1", bin, args, db_path);
    int st = system(cmd);
    cr_assert(WIFEXITED(st), "%s did not exit", cmd);
    return WEXITSTATUS(st);
}

Test(compare, identical_runs_show_no_change_and_exit_0) {
    Store *st = open_rw();
    Variant v = {0};
    int64_t a = add_run(st, &v), b = add_run(st, &v);
    CompareResult res;
    char *out = compare(st, a, b, -1, &res);
    cr_expect_eq(res.n_matched, 18, "matched %d metrics, want 9 cases x 2", res.n_matched);
    cr_expect_eq(res.n_changed, 0);
    cr_expect_eq(res.n_regressions, 0);
    cr_expect(strstr(out, "no change"), "output:\n%s", out);
    cr_expect(strstr(out, "threshold 2% relative (default)"), "output:\n%s", out);
    free(out);
    store_close(st);
    cr_expect_eq(cli("compare 1 2"), 0);
}

Test(compare, a_scheme_made_worse_is_named_and_exits_1) {
    Store *st = open_rw();
    Variant base = {0}, worse = {.worse_scheme = "rope", .worse_factor = 1.05};
    int64_t a = add_run(st, &base), b = add_run(st, &worse);
    CompareResult res;
    char *out = compare(st, a, b, -1, &res);
    cr_expect_eq(res.n_regressions, 3, "rope at 3 contexts, got %d:\n%s", res.n_regressions, out);
    cr_expect_eq(res.n_changed, 3);
    char *line = strstr(out, "REGRESSION");
    cr_assert_not_null(line, "output:\n%s", out);
    for (char *p = out; (p = strstr(p, "REGRESSION")); p++) {
        char *bol = p;
        while (bol > out && bol[-1] != '\n') bol--;
        cr_expect(!strncmp(bol, "rope ", 5), "a regression not of rope: %.60s", bol);
    }
    cr_expect(strstr(out, "+5.00%"), "the change is +5%%:\n%s", out);
    free(out);
    store_close(st);
    cr_expect_eq(cli("compare 1 2"), 1);
    cr_expect_eq(cli("compare 1 2 --format md"), 1);
    cr_expect_eq(cli("compare 2 1"), 0, "the other way round it is an improvement");
}

Test(compare, the_threshold_comes_from_the_flag_or_the_suite) {
    Store *st = open_rw();
    Variant base = {0}, worse = {.worse_scheme = "alibi", .worse_factor = 1.01};
    int64_t a = add_run(st, &base), b = add_run(st, &worse);
    CompareResult res;
    free(compare(st, a, b, -1, &res));
    cr_expect_eq(res.n_regressions, 0, "1%% is below the default 2%%");
    cr_expect_eq(res.n_changed, 3);
    free(compare(st, a, b, 0.005, &res));
    cr_expect_eq(res.n_regressions, 3, "1%% is past 0.5%%");

    Variant strict = worse;
    strict.suite_text = "[suite]\nname = fixture ; x\n\n[compare]\nthreshold = 0.005  ; half a percent\n";
    int64_t c = add_run(st, &strict);
    char *out = compare(st, a, c, -1, &res);
    cr_expect_eq(res.n_regressions, 3, "suite threshold 0.5%% not used:\n%s", out);
    cr_expect(strstr(out, "[compare]"), "the source of the threshold is not named:\n%s", out);
    free(out);
    free(compare(st, a, c, 0.05, &res));
    cr_expect_eq(res.n_regressions, 0, "the flag beats the suite");
    double t;
    int found;
    char err[CB_ERR_LEN] = "";
    cr_expect_eq(compare_suite_threshold("[compare]\nthreshold = lots\n", &t, &found, err), CB_EINPUT);
    cr_expect_eq(compare_suite_threshold("[suite]\nname = x\n", &t, &found, err), CB_OK);
    cr_expect_eq(found, 0);
    store_close(st);
    cr_expect_eq(cli("compare 1 3"), 1);
    cr_expect_eq(cli("compare 1 3 --threshold 0.05"), 0);
}

Test(compare, with_seeds_a_change_within_two_standard_errors_is_not_flagged) {
    Store *st = open_rw();
    /* three seeds at +-0.2 around the mean: a 3 % shift of the mean (about 0.07) is past the
       threshold but well inside two standard errors (about 0.33) */
    Variant noisy = {.seeds = 3, .noise = 0.2}, noisy_shift = {.seeds = 3, .noise = 0.2, .shift = 0.07};
    int64_t a = add_run(st, &noisy), b = add_run(st, &noisy_shift);
    CompareResult res;
    char *out = compare(st, a, b, -1, &res);
    cr_expect_eq(res.n_regressions, 0, "noise flagged:\n%s", out);
    cr_expect(strstr(out, "within 2 se"), "output:\n%s", out);
    cr_expect(strstr(out, "3/3"), "seed counts not shown:\n%s", out);
    free(out);
    /* the same shift with quiet seeds is a regression everywhere */
    Variant quiet = {.seeds = 3, .noise = 0.002}, quiet_shift = {.seeds = 3, .noise = 0.002, .shift = 0.07};
    int64_t c = add_run(st, &quiet), d = add_run(st, &quiet_shift);
    out = compare(st, c, d, -1, &res);
    cr_expect_eq(res.n_regressions, 9, "want 9 regressions:\n%s", out);
    free(out);
    /* a single seed on one side: only the threshold applies */
    Variant one = {.seeds = 1, .shift = 0.07};
    int64_t e = add_run(st, &one);
    free(compare(st, a, e, -1, &res));
    cr_expect_eq(res.n_regressions, 9, "with one seed the interval test does not apply");
    store_close(st);
}

Test(compare, a_drop_in_accuracy_is_a_regression_a_rise_is_not) {
    Store *st = open_rw();
    Variant good = {.acc = 0.9}, bad = {.acc = 0.6};
    int64_t a = add_run(st, &good), b = add_run(st, &bad);
    CompareResult res;
    char *out = compare(st, a, b, -1, &res);
    cr_expect_eq(res.n_regressions, 9, "accuracy drop at 9 cases:\n%s", out);
    free(out);
    free(compare(st, b, a, -1, &res));
    cr_expect_eq(res.n_regressions, 0);
    cr_expect_eq(res.n_improvements, 9);
    store_close(st);
}

Test(compare, a_case_that_stopped_succeeding_is_a_regression) {
    Store *st = open_rw();
    Variant base = {0}, broken = {.fail_scheme = "nope"};
    int64_t a = add_run(st, &base), b = add_run(st, &broken);
    CompareResult res;
    char *out = compare(st, a, b, -1, &res);
    cr_expect_eq(res.n_lost, 2, "bpb and windows of nope at 512 lost:\n%s", out);
    cr_expect_eq(res.n_regressions, 2);
    cr_expect(strstr(out, "case not ok in NEW"), "output:\n%s", out);
    free(out);
    store_close(st);
    cr_expect_eq(cli("compare 1 2"), 1);
}

Test(compare, unknown_runs_are_bad_input) {
    Store *st = open_rw();
    Variant v = {0};
    int64_t a = add_run(st, &v);
    CompareResult res;
    CompareOptions o = {.threshold = -1};
    char err[CB_ERR_LEN] = "";
    cr_expect_eq(compare_runs(st, a, 42, &o, NULL, &res, err), CB_EINPUT);
    cr_expect(strstr(err, "42"), "message: %s", err);
    store_close(st);
    cr_expect_eq(cli("compare 1 42"), 2);
    cr_expect_eq(cli("compare 1"), 2);
    cr_expect_eq(cli("compare 1 2 --threshold -3"), 2);
    cr_expect_eq(cli("compare --last nosuchsuite"), 2);
}

Test(compare, last_picks_the_two_newest_complete_runs_of_the_suite) {
    Store *st = open_rw();
    Variant base = {0}, worse = {.worse_scheme = "nope", .worse_factor = 1.5},
            broken = {.worse_scheme = "rope", .worse_factor = 2, .status = "failed"};
    add_run(st, &worse);                 /* 1: older */
    int64_t b = add_run(st, &base);      /* 2 */
    int64_t c = add_run(st, &worse);     /* 3: newest complete */
    add_run(st, &broken);                /* 4: failed, ignored */
    int64_t x = 0, y = 0, prev = 0;
    char err[CB_ERR_LEN] = "";
    cr_assert_eq(compare_last_two(st, "fixture", &x, &y, err), CB_OK, "%s", err);
    cr_expect_eq(x, b);
    cr_expect_eq(y, c);
    cr_assert_eq(compare_previous_run(st, "fixture", c, &prev, err), CB_OK, "%s", err);
    cr_expect_eq(prev, b);
    cr_assert_eq(compare_previous_run(st, "fixture", 1, &prev, err), CB_OK, "%s", err);
    cr_expect_eq(prev, 0, "run 1 has no predecessor");
    cr_expect_eq(compare_last_two(st, "other", &x, &y, err), CB_EINPUT);
    store_close(st);
    cr_expect_eq(cli("compare --last fixture"), 1, "2 -> 3 makes nope worse");
}
