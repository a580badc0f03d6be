/*
 * test_report.c — reports and example queries over a fixture database built through the store
 * API: two runs, four schemes, two seeds, unsupported and failed cases, bootstrap intervals,
 * passkey and attention-entropy curves, times that grow linearly and quadratically. Every .sql file
 * of results/queries must return rows on it (four are checked value by value); every
 * report format must show what the run holds; the HTML page must be self-contained with every
 * chart; prune must remove old runs in one go and keep models that kept runs still use.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <math.h>
#include <sqlite3.h>
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
    snprintf(dir, sizeof dir, "/tmp/ctxbench_report_XXXXXX");
    cr_assert_not_null(mkdtemp(dir), "mkdtemp failed for %s", dir);
    snprintf(db_path, sizeof db_path, "%s/results.db", dir);
}

static void teardown(void) {
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_expect_eq(system(cmd), 0, "removing %s", dir);
}

TestSuite(report, .init = setup, .fini = teardown);

/* ---- the fixture ------------------------------------------------------------------------------ */

static Store *open_rw(void) {
    Store *st = NULL;
    char err[CB_ERR_LEN] = "";
    int rc = store_open(&st, db_path, 0, err);
    cr_assert_eq(rc, CB_OK, "store_open returned %d: %s", rc, err);
    return st;
}

static int64_t add_run(Store *st, const char *suite) {
    RunInfo ri = {.suite_name = suite, .suite_path = "suites/fixture.ini",
                  .suite_text = "[suite]\nname = fixture\n", .suite_sha256 = "0123456789abcdef",
                  .threads = 2};
    store_provenance(&ri);
    int64_t id = 0;
    char err[CB_ERR_LEN] = "";
    int rc = store_begin_run(st, &ri, &id, err);
    cr_assert_eq(rc, CB_OK, "store_begin_run returned %d: %s", rc, err);
    return id;
}

static void finish_run(Store *st, int64_t run) {
    char err[CB_ERR_LEN] = "";
    int rc = store_finish_run(st, run, "complete", err);
    cr_assert_eq(rc, CB_OK, "store_finish_run returned %d: %s", rc, err);
}

static int64_t add_model(Store *st, int64_t run, const char *scheme, uint64_t seed, double bps) {
    char key[64];
    snprintf(key, sizeof key, "%s-%llu-%lld", scheme, (unsigned long long)seed, (long long)run);
    CurveRecord curve[] = {{"train_loss", 0, 5.5}, {"train_loss", 100, 2.0}};
    ModelRecord m = {.run_id = run, .scheme = scheme, .scheme_canon = scheme, .key = key,
                     .model_json = "{\"layers\":2}", .train_json = "{\"steps\":300}",
                     .corpus_source = "builtin:prose", .corpus_sha256 = "c0ffee0123456789",
                     .seed = seed, .train_ctx = 128, .n_params = 105000, .final_loss = 1.5,
                     .train_seconds = 10, .cpu_seconds = 20, .bytes_per_second = bps,
                     .peak_rss = 50 << 20, .status = "ok"};
    int64_t id = 0;
    char err[CB_ERR_LEN] = "";
    int rc = store_insert_model(st, &m, curve, 2, &id, err);
    cr_assert_eq(rc, CB_OK, "store_insert_model returned %d: %s", rc, err);
    return id;
}

/* A perplexity case: status "ok" with bpb (and a bootstrap interval of +-0.02) and the attention
   entropy of two layers by position bucket, or a status and reason without metrics. */
static void add_ppl_case(Store *st, int64_t run, int64_t model, const char *scheme, int n,
                         uint64_t seed, const char *status, double bpb, double secs) {
    int ok = !strcmp(status, "ok");
    CaseRecord c = {.run_id = run, .model_id = model, .scheme = scheme, .variant = "",
                    .task = "perplexity", .context = n, .train_ctx = 128, .seed = seed,
                    .status = status,
                    .error = ok ? NULL : !strcmp(status, "unsupported")
                                             ? "learned position table has 128 rows"
                                             : "killed by signal 9 (SIGKILL)",
                    .wall_seconds = secs, .cpu_seconds = secs * 2,
                    .peak_rss = ok ? (int64_t)(8 << 20) + (int64_t)n * 4096 : 0,
                    .param_bytes = 420000, .act_bytes = (int64_t)n * 1024, .pe_state_bytes = n};
    MetricRecord m[] = {
        {.name = "bpb", .value = bpb, .lo = bpb - 0.02, .hi = bpb + 0.02, .count = 65536, .unit = "bits/byte",
         .mode = "nonoverlap", .stride = n},
        {.name = "ppl", .value = exp2(bpb), .lo = NAN, .hi = NAN, .count = 65536, .unit = "",
         .mode = "nonoverlap", .stride = n},
        {.name = "bpb_ratio", .value = bpb / 2.5, .lo = NAN, .hi = NAN, .count = 65536, .unit = "",
         .mode = "nonoverlap", .stride = n},
    };
    char err[CB_ERR_LEN] = "";
    int64_t id = 0;
    CurveRecord ent[2 * 8];
    size_t ne = 0;
    for (int l = 0; l < 2 && ok; l++)
        for (int lo = 0, b = 0; lo < n; lo = lo ? 2 * lo : 128, b++)
            ent[ne++] = (CurveRecord){l ? "attention_entropy:layer=1" : "attention_entropy:layer=0", lo,
                                      2.0 + 0.5 * b + 0.25 * l};
    int rc = store_insert_case(st, &c, m, ok ? 3 : 0, ent, ne, &id, err);
    cr_assert_eq(rc, CB_OK, "store_insert_case returned %d: %s", rc, err);
}

/* A passkey case at 4096 bytes with curves 'passkey:depth=D' over lengths 1024..4096. */
static void add_passkey_case(Store *st, int64_t run, int64_t model, const char *scheme,
                             uint64_t seed, double skill) {
    CurveRecord pts[9];
    static const char *const names[] = {"passkey:depth=0", "passkey:depth=0.5", "passkey:depth=1"};
    size_t k = 0;
    for (int d = 0; d < 3; d++)
        for (int len = 1024; len <= 4096; len *= 2)
            pts[k++] = (CurveRecord){names[d], len, fmin(1, skill * 1024.0 / len + 0.1 * d)};
    CaseRecord c = {.run_id = run, .model_id = model, .scheme = scheme, .variant = "",
                    .task = "passkey", .context = 4096, .train_ctx = 128, .seed = seed,
                    .status = "ok", .wall_seconds = 3, .cpu_seconds = 6, .peak_rss = 30 << 20};
    MetricRecord m = {.name = "passkey_acc", .value = skill, .lo = NAN, .hi = NAN, .count = 50,
                      .unit = ""};
    char err[CB_ERR_LEN] = "";
    int64_t id = 0;
    int rc = store_insert_case(st, &c, &m, 1, pts, k, &id, err);
    cr_assert_eq(rc, CB_OK, "store_insert_case(passkey) returned %d: %s", rc, err);
}

/* Cost cases of the task "cost" in run `run` for nope (time linear in n) and rope (quadratic):
   timings at 512..4096 with a training step up to 1024, and each scheme's "cost_fit" case. */
static void add_cost_cases(Store *st, int64_t run) {
    static const char *const schemes[] = {"nope", "rope"};
    char err[CB_ERR_LEN] = "";
    int64_t id = 0;
    for (int s = 0; s < 2; s++) {
        for (int n = 512; n <= 4096; n *= 2) {
            double secs = s == 0 ? 1e-6 * n : 1e-9 * n * n, rss = (8 << 20) + 4096.0 * n;
            CaseRecord c = {.run_id = run, .scheme = schemes[s], .variant = "", .task = "cost", .context = n,
                            .train_ctx = 128, .seed = 1, .status = "ok", .wall_seconds = 8 * secs,
                            .cpu_seconds = 16 * secs, .peak_rss = (int64_t)rss, .param_bytes = 420000,
                            .act_bytes = (int64_t)n * 1024, .pe_state_bytes = n};
            MetricRecord m[] = {
                {.name = "eval_seconds", .value = secs, .lo = 0.9 * secs, .hi = 1.2 * secs, .count = 5, .unit = "s"},
                {.name = "eval_tokens_per_s", .value = n / secs, .lo = n / (1.2 * secs), .hi = n / (0.9 * secs),
                 .count = 5, .unit = "tokens/s"},
                {.name = "eval_gflops", .value = 10, .lo = 9, .hi = 11, .count = 5, .unit = "GFLOP/s"},
                {.name = "eval_peak_rss", .value = rss, .lo = NAN, .hi = NAN, .count = 1, .unit = "bytes"},
                {.name = "train_step_seconds", .value = 3 * secs, .lo = 2.8 * secs, .hi = 3.3 * secs, .count = 5,
                 .unit = "s"},
            };
            int rc = store_insert_case(st, &c, m, n <= 1024 ? 5 : 4, NULL, 0, &id, err);
            cr_assert_eq(rc, CB_OK, "store_insert_case(cost) returned %d: %s", rc, err);
        }
        CaseRecord f = {.run_id = run, .scheme = schemes[s], .variant = "", .task = "cost_fit", .context = 0,
                        .train_ctx = 128, .seed = 1, .status = "ok", .wall_seconds = NAN, .cpu_seconds = NAN,
                        .peak_rss = -1, .param_bytes = -1, .act_bytes = -1, .pe_state_bytes = -1};
        MetricRecord m[] = {
            {.name = "time_exponent", .value = 1.0 + s, .lo = 0.95 + s, .hi = 1.05 + s, .count = 4, .unit = ""},
            {.name = "memory_exponent", .value = 1.0, .lo = 0.9, .hi = 1.1, .count = 4, .unit = ""},
            {.name = "train_time_exponent", .value = 1.0 + s, .lo = NAN, .hi = NAN, .count = 2, .unit = ""},
        };
        int rc = store_insert_case(st, &f, m, 3, NULL, 0, &id, err);
        cr_assert_eq(rc, CB_OK, "store_insert_case(cost_fit) returned %d: %s", rc, err);
    }
}

/* Run 1 (older, small) and run 2 (the latest: everything the queries and reports look for).
   Run 2 reuses run 1's alibi model for seed 1. Returns run 2's id. */
static int64_t build_fixture(Store *st, int with_passkey) {
    int64_t r1 = add_run(st, "fixture");
    int64_t old_alibi = add_model(st, r1, "alibi", 1, 9e4);
    add_ppl_case(st, r1, old_alibi, "alibi", 128, 1, "ok", 2.8, 0.1);
    add_ppl_case(st, r1, old_alibi, "alibi", 256, 1, "ok", 2.8, 0.2);
    finish_run(st, r1);

    int64_t r2 = add_run(st, "fixture");
    static const char *const schemes[] = {"nope", "rope", "alibi", "learned"};
    for (int s = 0; s < 4; s++) {
        for (uint64_t seed = 1; seed <= 2; seed++) {
            int64_t model = s == 2 && seed == 1 ? old_alibi
                                                : add_model(st, r2, schemes[s], seed, 1e5 + 1e4 * s);
            for (int n = 128; n <= 2048; n *= 2) {
                double x = log2(n / 128.0), noise = seed == 1 ? -0.01 : 0.01;
                double bpb = s == 0 ? 3.4 + 0.03 * x : s == 1 ? 2.45 + 0.5 * x : 2.75 - 0.004 * x;
                /* nope: linear time; rope: quadratic; alibi: linear */
                double secs = s == 1 ? 1e-5 * n * n / 128 : 1e-3 * n;
                if (s == 3 && n > 128)
                    add_ppl_case(st, r2, model, schemes[s], n, seed, "unsupported", 0, 0.01);
                else if (s == 0 && n == 2048 && seed == 2)
                    add_ppl_case(st, r2, model, schemes[s], n, seed, "failed", 0, 0.5);
                else
                    add_ppl_case(st, r2, model, schemes[s], n, seed, "ok", bpb + noise, secs);
            }
            if (with_passkey && s < 3) add_passkey_case(st, r2, model, schemes[s], seed, 1.0 - 0.3 * s);
        }
    }
    finish_run(st, r2);
    return r2;
}

/* ---- helpers ---------------------------------------------------------------------------------- */

static char *report_text(Store *st, int64_t run, ReportFormat fmt, int context, int *rc) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    cr_assert_not_null(f);
    char err[CB_ERR_LEN] = "";
    *rc = report_write(st, run, fmt, context, f, err);
    fclose(f);
    return buf;
}

static char *report_ok(Store *st, int64_t run, ReportFormat fmt, int context) {
    int rc;
    char *s = report_text(st, run, fmt, context, &rc);
    cr_assert_eq(rc, CB_OK, "report_write(format %d) returned %d", (int)fmt, rc);
    return s;
}

static int64_t count(sqlite3 *db, const char *sql) {
    sqlite3_stmt *s = NULL;
    cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK, "%s: %s", sql, sqlite3_errmsg(db));
    cr_assert_eq(sqlite3_step(s), SQLITE_ROW, "%s: %s", sql, sqlite3_errmsg(db));
    int64_t v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return v;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* ---- example queries -------------------------------------------------------------------------- */

Test(report, every_example_query_answers_its_question_on_the_fixture) {
    Store *st = open_rw();
    add_cost_cases(st, build_fixture(st, 1));
    store_close(st);

    const char *src = getenv("CB_SOURCE_DIR");
    cr_assert_not_null(src, "CB_SOURCE_DIR is not set (ctest sets it)");
    char qdir[1024];
    snprintf(qdir, sizeof qdir, "%s/results/queries", src);
    DIR *dp = opendir(qdir);
    cr_assert_not_null(dp, "cannot open %s", qdir);
    char *files[64];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(dp)) && n < 64) {
        size_t l = strlen(e->d_name);
        if (l > 4 && !strcmp(e->d_name + l - 4, ".sql")) files[n++] = strdup(e->d_name);
    }
    closedir(dp);
    qsort(files, (size_t)n, sizeof *files, cmp_str);
    cr_assert_geq(n, 8, "results/queries holds %d .sql files, want at least 8", n);

    sqlite3 *db = NULL;
    cr_assert_eq(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    for (int i = 0; i < n; i++) {
        char path[1400];
        snprintf(path, sizeof path, "%s/%s", qdir, files[i]);
        FILE *f = fopen(path, "r");
        cr_assert_not_null(f, "cannot read %s", path);
        char sql[16384];
        size_t len = fread(sql, 1, sizeof sql - 1, f);
        sql[len] = 0;
        fclose(f);
        cr_expect(!strncmp(sql, "-- question:", 12), "%s does not start with '-- question:'", files[i]);
        sqlite3_stmt *s = NULL;
        const char *tail = NULL;
        int rc = sqlite3_prepare_v2(db, sql, -1, &s, &tail);
        cr_assert_eq(rc, SQLITE_OK, "%s: %s", files[i], sqlite3_errmsg(db));
        while (tail && (*tail == ' ' || *tail == '\n' || *tail == '\t' || *tail == '\r')) tail++;
        cr_expect(!tail || !*tail, "%s holds more than one statement", files[i]);
        int rows = 0;
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) rows++;
        cr_expect_eq(rc, SQLITE_DONE, "%s: %s", files[i], sqlite3_errmsg(db));
        cr_expect_geq(rows, 1, "%s returned no row on the fixture", files[i]);
        sqlite3_finalize(s);
        free(files[i]);
    }
    sqlite3_close(db);
}

Test(report, the_growth_query_names_the_quadratic_scheme_only) {
    Store *st = open_rw();
    build_fixture(st, 0);
    store_close(st);
    const char *src = getenv("CB_SOURCE_DIR");
    cr_assert_not_null(src);
    char path[1024], sql[8192];
    snprintf(path, sizeof path, "%s/results/queries/time_growth_faster_than_n1_5.sql", src);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "cannot read %s", path);
    sql[fread(sql, 1, sizeof sql - 1, f)] = 0;
    fclose(f);
    sqlite3 *db = NULL;
    cr_assert_eq(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *s = NULL;
    cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
    int rows = 0;
    while (sqlite3_step(s) == SQLITE_ROW) {
        rows++;
        const char *scheme = (const char *)sqlite3_column_text(s, 0);
        cr_expect_str_eq(scheme, "rope", "only rope's time is quadratic, got %s", scheme);
    }
    cr_expect_eq(rows, 1, "want one scheme, got %d", rows);
    sqlite3_finalize(s);
    sqlite3_close(db);
}

/* Runs results/queries/<file> on the fixture database: its rows as "a|b|c\n" lines (NULL as
   "NULL", reals as %.4f), which the caller frees. */
static char *query_file_rows(const char *file) {
    const char *src = getenv("CB_SOURCE_DIR");
    cr_assert_not_null(src, "CB_SOURCE_DIR is not set (ctest sets it)");
    char path[1024], sql[8192];
    snprintf(path, sizeof path, "%s/results/queries/%s", src, file);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "cannot read %s", path);
    sql[fread(sql, 1, sizeof sql - 1, f)] = 0;
    fclose(f);
    sqlite3 *db = NULL;
    cr_assert_eq(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *s = NULL;
    cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK, "%s: %s", file, sqlite3_errmsg(db));
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    while (sqlite3_step(s) == SQLITE_ROW) {
        for (int c = 0; c < sqlite3_column_count(s); c++) {
            int t = sqlite3_column_type(s, c);
            if (c) fputc('|', out);
            if (t == SQLITE_NULL) fputs("NULL", out);
            else if (t == SQLITE_FLOAT) fprintf(out, "%.4f", sqlite3_column_double(s, c));
            else fputs((const char *)sqlite3_column_text(s, c), out);
        }
        fputc('\n', out);
    }
    fclose(out);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return buf;
}

Test(report, the_16x_query_gives_the_seed_interval_or_the_single_seeds_bootstrap) {
    Store *st = open_rw();
    build_fixture(st, 0);
    store_close(st);
    char *rows = query_file_rows("bpb_at_16x_with_interval.sql");
    /* columns: scheme|variant|train_ctx|context|mode|stride|seeds|bpb|bpb_lo|bpb_hi|interval|status */
    /* alibi: 2.734 and 2.754, t(0.975, 1) = 12.706 times 0.01 */
    const char *want[] = {
        "alibi||128|2048|nonoverlap|2048|2|2.7340|2.6069|2.8611|across seeds|ok\n",
        /* nope: seed 2 failed, seed 1's bootstrap interval */
        "nope||128|2048|nonoverlap|2048|1|3.5100|3.4900|3.5300|bootstrap over windows|ok,failed\n",
        "rope||128|2048|nonoverlap|2048|2|4.4500|4.3229|4.5771|across seeds|ok\n",
        "learned||128|2048|NULL|NULL|NULL|NULL|NULL|NULL|NULL|unsupported\n",
    };
    char expect[1024] = "";
    for (size_t i = 0; i < 4; i++) strcat(expect, want[i]);
    cr_expect_str_eq(rows, expect, "rows:\n%s", rows);
    free(rows);
}

Test(report, the_entropy_and_passkey_grid_queries_read_their_curves) {
    Store *st = open_rw();
    build_fixture(st, 1);
    store_close(st);
    char *rows = query_file_rows("attention_entropy_by_bucket.sql");
    /* rope at 2048 (its largest context), two seeds: buckets 0, 128, ..., 1024 in both layers */
    cr_expect(strstr(rows, "rope||128|2048|0|0|0.0000|2.0000|2\n"), "rows:\n%s", rows);
    cr_expect(strstr(rows, "rope||128|2048|1|1024|8.0000|4.2500|2\n"), "rows:\n%s", rows);
    /* learned only succeeded at 128 */
    cr_expect(strstr(rows, "learned||128|128|0|0|0.0000|2.0000|2\n"), "rows:\n%s", rows);
    free(rows);
    rows = query_file_rows("passkey_accuracy_by_length_and_depth.sql");
    /* alibi (skill 0.4): depth 0.5 (the second depth, + 0.1) at 2048 = 0.4 * 1024 / 2048 + 0.1 */
    cr_expect(strstr(rows, "alibi||128|2048|16.0000|0.5000|0.3000|2\n"), "rows:\n%s", rows);
    int lines = 0;
    for (const char *p = rows; *p; p++) lines += *p == '\n';
    cr_expect_eq(lines, 3 * 3 * 3, "3 schemes x 3 lengths x 3 depths, got %d rows:\n%s", lines, rows);
    free(rows);
}

/* ---- report formats --------------------------------------------------------------------------- */

Test(report, the_text_report_shows_every_scheme_context_and_reason) {
    Store *st = open_rw();
    int64_t run = build_fixture(st, 1);
    int64_t newest = 0;
    char err[CB_ERR_LEN] = "";
    cr_assert_eq(report_newest_run(st, &newest, err), CB_OK, "%s", err);
    cr_expect_eq(newest, run, "newest run %lld, want %lld", (long long)newest, (long long)run);
    char *t = report_ok(st, run, REPORT_TEXT, 0);
    const char *want[] = {"nope", "rope", "alibi", "learned", "2048", "unsup", "failed",
                          "bits per byte", "bpb ratio", "wall seconds", "peak RSS",
                          "killed by signal 9", "training context 128", "2 seeds"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        cr_expect(strstr(t, want[i]), "text report lacks '%s':\n%s", want[i], t);
    /* rope at 128: seeds 2.44 and 2.46 -> mean 2.450 with an interval */
    cr_expect(strstr(t, "2.450±"), "rope's mean over two seeds with its interval is missing:\n%s", t);
    free(t);
    store_close(st);
}

Test(report, markdown_csv_and_json_hold_the_same_cells) {
    Store *st = open_rw();
    int64_t run = build_fixture(st, 1);
    char *md = report_ok(st, run, REPORT_MD, 0);
    cr_expect(strstr(md, "| scheme") && strstr(md, "| ------"), "markdown table missing:\n%s", md);
    char *csv = report_ok(st, run, REPORT_CSV, 0);
    cr_expect(!strncmp(csv, "run_id,suite,series,scheme,variant,train_ctx,context,status", 59),
              "csv header:\n%s", csv);
    cr_expect(strstr(csv, ",rope,rope,,128,2048,ok,2,4.4"), "rope at 2048 (mean 4.45) missing:\n%s", csv);
    cr_expect(strstr(csv, ",learned,learned,,128,256,unsupported,0,"), "learned unsupported row:\n%s", csv);
    char *json = report_ok(st, run, REPORT_JSON, 0);
    cr_expect(strstr(json, "\"rows\": [") && strstr(json, "\"passkey\": ["), "json:\n%s", json);
    cr_expect(strstr(json, "\"series\": \"alibi\", \"depth\": 0.5, \"length\": 4096"),
              "json passkey cell missing:\n%s", json);
    cr_expect(!strstr(json, "nan") && !strstr(json, "inf"), "json holds a non-number:\n%s", json);
    char *one = report_ok(st, run, REPORT_CSV, 512);
    cr_expect(!strstr(one, ",256,") && strstr(one, ",512,"), "--context 512 keeps only 512:\n%s", one);
    free(md);
    free(csv);
    free(json);
    free(one);
    store_close(st);
}

Test(report, the_html_page_is_self_contained_with_every_chart) {
    Store *st = open_rw();
    int64_t run = build_fixture(st, 1);
    char *h = report_ok(st, run, REPORT_HTML, 0);
    const char *want[] = {"<!DOCTYPE html>", "id=\"chart-bpb\"", "id=\"chart-passkey-0\"",
                          "id=\"chart-passkey-1\"", "id=\"chart-passkey-2\"", "id=\"chart-time\"",
                          "id=\"chart-memory\"", "id=\"chart-cost\"", "training length L = 128",
                          "evaluation context n (bytes, log scale)", "bits per byte",
                          "wall seconds (log scale)", "peak RSS (MiB, log scale)",
                          "quality against cost at context n = 2048", "depth of the key",
                          "length (bytes)", "</html>"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        cr_expect(strstr(h, want[i]), "html lacks '%s'", want[i]);
    /* nothing runs and nothing is fetched */
    const char *banned[] = {"<script", "<link", "<img", "<iframe", "src=", "href=", "url(", "@import",
                            "https:", "nan", "inf\""};
    for (size_t i = 0; i < sizeof banned / sizeof banned[0]; i++)
        cr_expect(!strstr(h, banned[i]), "html holds '%s'", banned[i]);
    const char *ns = "http://www.w3.org/2000/svg";
    for (const char *p = strstr(h, "http:"); p; p = strstr(p + 1, "http:"))
        cr_expect(!strncmp(p, ns, strlen(ns)), "html refers to %.40s", p);
    /* two seeds give interval bars: a vertical segment with caps ("V...M...H") */
    cr_expect(strstr(h, "stroke-width=\"1.5\" d=\"M"), "no interval bar drawn");
    free(h);

    char *at = report_ok(st, run, REPORT_HTML, 256);
    cr_expect(strstr(at, "quality against cost at context n = 256 bytes"), "--context 256 ignored");
    free(at);
    store_close(st);
}

Test(report, a_run_without_passkey_says_so) {
    Store *st = open_rw();
    int64_t run = build_fixture(st, 0);
    char *h = report_ok(st, run, REPORT_HTML, 0);
    cr_expect(strstr(h, "no passkey data in this run"), "missing the no-passkey note");
    cr_expect(!strstr(h, "chart-passkey-"), "a passkey chart without data");
    free(h);
    store_close(st);
}

Test(report, unknown_runs_contexts_and_formats_are_input_errors) {
    Store *st = open_rw();
    int64_t run = build_fixture(st, 0);
    int rc;
    free(report_text(st, run + 7, REPORT_TEXT, 0, &rc));
    cr_expect_eq(rc, CB_EINPUT, "unknown run gave %d", rc);
    free(report_text(st, run, REPORT_HTML, 300, &rc));
    cr_expect_eq(rc, CB_EINPUT, "a context the run lacks gave %d", rc);
    ReportFormat f;
    char err[CB_ERR_LEN] = "";
    cr_expect_eq(report_parse_format("pdf", &f, err), CB_EINPUT);
    cr_expect(strstr(err, "pdf"), "message: %s", err);
    store_close(st);

    char empty[160];
    snprintf(empty, sizeof empty, "%s/empty.db", dir);
    Store *e = NULL;
    cr_assert_eq(store_open(&e, empty, 0, err), CB_OK, "%s", err);
    int64_t id = 0;
    cr_expect_eq(report_newest_run(e, &id, err), CB_EINPUT, "an empty database has no newest run");
    store_close(e);
}

Test(report, the_cli_writes_the_html_report_and_refuses_unknown_runs) {
    Store *st = open_rw();
    build_fixture(st, 1);
    store_close(st);
    const char *bin = getenv("CB_BINARY");
    cr_assert_not_null(bin, "CB_BINARY is not set (ctest sets it)");
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s' report --db '%s' --format html --out '%s/r.html' 2>/dev/null",
             bin, db_path, dir);
    int st1 = system(cmd);
    cr_expect(WIFEXITED(st1) && WEXITSTATUS(st1) == 0, "report --format html exited %d", WEXITSTATUS(st1));
    char path[160];
    snprintf(path, sizeof path, "%s/r.html", dir);
    cr_expect_eq(access(path, R_OK), 0, "no %s", path);
    snprintf(cmd, sizeof cmd, "'%s' report 99 --db '%s' >/dev/null 2>&1", bin, db_path);
    int st2 = system(cmd);
    cr_expect(WIFEXITED(st2) && WEXITSTATUS(st2) == 2, "report of an unknown run exited %d",
              WEXITSTATUS(st2));
}

/* ---- prune ------------------------------------------------------------------------------------ */

Test(report, prune_keeps_the_newest_runs_and_the_models_they_use) {
    Store *st = open_rw();
    int64_t r2 = build_fixture(st, 1);
    sqlite3 *db = store_sqlite(st);
    int64_t cases_r1 = count(db, "SELECT count(*) FROM cases WHERE run_id = 1");
    int64_t metrics_r1 = count(db, "SELECT count(*) FROM metrics WHERE case_id IN "
                                   "(SELECT id FROM cases WHERE run_id = 1)");
    int64_t models_total = count(db, "SELECT count(*) FROM models");
    PruneCounts pc;
    char err[CB_ERR_LEN] = "";
    cr_assert_eq(store_prune(st, 1, &pc, err), CB_OK, "store_prune: %s", err);
    cr_expect_eq(pc.runs, 1, "runs removed: %lld", (long long)pc.runs);
    cr_expect_eq(pc.cases, cases_r1, "cases removed: %lld of %lld", (long long)pc.cases, (long long)cases_r1);
    cr_expect_eq(pc.metrics, metrics_r1, "metrics removed: %lld", (long long)pc.metrics);
    cr_expect_eq(pc.models, 0, "run 1's only model is used by run 2: removed %lld", (long long)pc.models);
    cr_expect_eq(pc.models_moved, 1, "models moved: %lld", (long long)pc.models_moved);
    cr_expect_eq(count(db, "SELECT count(*) FROM runs"), 1);
    cr_expect_eq(count(db, "SELECT min(id) FROM runs"), r2);
    cr_expect_eq(count(db, "SELECT count(*) FROM models"), models_total);
    cr_expect_eq(count(db, "SELECT count(*) FROM models WHERE run_id <> 2"), 0);
    cr_expect_eq(count(db, "SELECT count(*) FROM pragma_foreign_key_check"), 0, "dangling references");

    /* nothing more to remove; then remove everything */
    cr_assert_eq(store_prune(st, 5, &pc, err), CB_OK, "%s", err);
    cr_expect_eq(pc.runs + pc.cases + pc.metrics + pc.curves + pc.models, 0);
    cr_assert_eq(store_prune(st, 0, &pc, err), CB_OK, "%s", err);
    cr_expect_eq(pc.runs, 1);
    cr_expect_eq(pc.models, models_total, "models removed %lld of %lld", (long long)pc.models,
                 (long long)models_total);
    const char *tables[] = {"SELECT count(*) FROM runs", "SELECT count(*) FROM cases",
                            "SELECT count(*) FROM metrics", "SELECT count(*) FROM curves",
                            "SELECT count(*) FROM models"};
    for (size_t i = 0; i < 5; i++) cr_expect_eq(count(db, tables[i]), 0, "%s is not empty", tables[i]);
    cr_expect_eq(store_prune(st, -1, &pc, err), CB_EINPUT);
    store_close(st);
}

Test(report, prune_is_all_or_nothing) {
    Store *st = open_rw();
    build_fixture(st, 0);
    sqlite3 *db = store_sqlite(st);
    /* a trigger that fails the last step (deleting runs) must leave every row in place */
    char *msg = NULL;
    int rc = sqlite3_exec(db, "CREATE TEMP TRIGGER no_run_delete BEFORE DELETE ON runs "
                              "BEGIN SELECT RAISE(ABORT, 'runs are protected'); END;", NULL, NULL, &msg);
    cr_assert_eq(rc, SQLITE_OK, "%s", msg ? msg : "");
    int64_t before = count(db, "SELECT (SELECT count(*) FROM cases) + (SELECT count(*) FROM metrics)"
                               " + (SELECT count(*) FROM models) + (SELECT count(*) FROM curves)");
    PruneCounts pc;
    char err[CB_ERR_LEN] = "";
    cr_expect_eq(store_prune(st, 1, &pc, err), CB_EDB, "prune under a failing trigger succeeded");
    cr_expect(strstr(err, "runs are protected"), "message: %s", err);
    cr_expect_eq(count(db, "SELECT (SELECT count(*) FROM cases) + (SELECT count(*) FROM metrics)"
                           " + (SELECT count(*) FROM models) + (SELECT count(*) FROM curves)"),
                 before, "a failed prune removed rows");
    cr_expect_eq(count(db, "SELECT count(*) FROM models WHERE run_id = 1"), 1, "model move not undone");
    store_close(st);
}
