/*
 * test_store.c — the results database: a run round-trips through SQLite value by value, the views
 * answer the common questions, and bad files, newer schemas, writing queries and failed inserts
 * are refused without leaving anything behind.
 *
 * Every test gets its own directory from mkdtemp (Criterion forks per test) and checks values
 * with sqlite3 directly, independent of the code under test.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/store.h"

static char dir[64];
static char db_path[128];

static void setup(void) {
    snprintf(dir, sizeof dir, "/tmp/ctxbench_store_XXXXXX");
    cr_assert_not_null(mkdtemp(dir), "mkdtemp failed for %s", dir);
    snprintf(db_path, sizeof db_path, "%s/results.db", dir);
}

static void teardown(void) {
    const char *suffixes[] = {"", "-wal", "-shm", "-journal"};
    char p[160];
    for (size_t i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s%s", db_path, suffixes[i]);
        unlink(p);
    }
    snprintf(p, sizeof p, "%s/notes.txt", dir);
    unlink(p);
    rmdir(dir);
}

TestSuite(store, .init = setup, .fini = teardown);

/* ---- helpers ---------------------------------------------------------------------------------- */

static Store *open_rw(void) {
    Store *st = NULL;
    char err[CB_ERR_LEN] = "";
    int rc = store_open(&st, db_path, 0, err);
    cr_assert_eq(rc, CB_OK, "store_open read-write returned %d: %s", rc, err);
    return st;
}

static int64_t begin_run(Store *st, const char *suite) {
    RunInfo ri = {.suite_name = suite, .suite_path = "suites/quick.ini",
                  .suite_text = "[suite]\nname = quick\n", .suite_sha256 = "abc123", .threads = 2};
    store_provenance(&ri);
    int64_t id = 0;
    char err[CB_ERR_LEN] = "";
    int rc = store_begin_run(st, &ri, &id, err);
    cr_assert_eq(rc, CB_OK, "store_begin_run returned %d: %s", rc, err);
    cr_assert_gt(id, 0, "run id %lld", (long long)id);
    return id;
}

static int64_t add_model(Store *st, int64_t run, const char *scheme, const char *key) {
    ModelRecord m = {.run_id = run, .scheme = scheme, .scheme_canon = scheme, .key = key,
                     .model_json = "{}", .train_json = "{}", .corpus_source = "builtin:prose",
                     .corpus_sha256 = "c0ffee", .seed = 1, .train_ctx = 128, .n_params = 1000,
                     .final_loss = 1.0, .train_seconds = 2.0, .cpu_seconds = 4.0,
                     .bytes_per_second = 1e5, .peak_rss = 1 << 20, .status = "ok"};
    int64_t id = 0;
    char err[CB_ERR_LEN] = "";
    int rc = store_insert_model(st, &m, NULL, 0, &id, err);
    cr_assert_eq(rc, CB_OK, "store_insert_model returned %d: %s", rc, err);
    return id;
}

/* A perplexity case; bpb < 0 means unsupported (no metrics). */
static int64_t add_bpb_case(Store *st, int64_t run, int64_t model, const char *scheme, int context,
                            double bpb) {
    CaseRecord c = {.run_id = run, .model_id = model, .scheme = scheme, .variant = "",
                    .task = "perplexity", .context = context, .train_ctx = 128, .seed = 1,
                    .status = bpb < 0 ? "unsupported" : "ok",
                    .error = bpb < 0 ? "learned table has 128 positions, context is 512" : NULL,
                    .wall_seconds = 0.5, .cpu_seconds = 0.4};
    MetricRecord m[] = {
        {.name = "bpb", .value = bpb, .lo = NAN, .hi = NAN, .count = context, .unit = "bits/byte",
         .mode = "nonoverlap"},
        {.name = "ppl", .value = exp2(bpb), .lo = NAN, .hi = NAN, .count = context, .unit = ""},
    };
    int64_t id = 0;
    char err[CB_ERR_LEN] = "";
    int rc = store_insert_case(st, &c, m, bpb < 0 ? 0 : 2, NULL, 0, &id, err);
    cr_assert_eq(rc, CB_OK, "store_insert_case returned %d: %s", rc, err);
    return id;
}

static void finish(Store *st, int64_t run, const char *status) {
    char err[CB_ERR_LEN] = "";
    int rc = store_finish_run(st, run, status, err);
    cr_assert_eq(rc, CB_OK, "store_finish_run returned %d: %s", rc, err);
}

/* Runs a query through store_query and returns its output (malloc'd). */
static char *query(Store *st, const char *sql, int csv) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    cr_assert_not_null(f);
    char err[CB_ERR_LEN] = "";
    int rc = store_query(st, sql, csv, f, err);
    fclose(f);
    cr_assert_eq(rc, CB_OK, "store_query(%s) returned %d: %s", sql, rc, err);
    return buf;
}

static sqlite3 *open_raw(int flags) {
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(db_path, &db, flags, NULL);
    cr_assert_eq(rc, SQLITE_OK, "sqlite3_open_v2(%s) returned %d", db_path, rc);
    return db;
}

/* One integer from a statement without parameters. */
static int64_t raw_int(sqlite3 *db, const char *sql) {
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &s, NULL);
    cr_assert_eq(rc, SQLITE_OK, "prepare %s: %s", sql, sqlite3_errmsg(db));
    rc = sqlite3_step(s);
    cr_assert_eq(rc, SQLITE_ROW, "step %s gave %d: %s", sql, rc, sqlite3_errmsg(db));
    int64_t v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return v;
}

static sqlite3_stmt *raw_row(sqlite3 *db, const char *sql) {
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &s, NULL);
    cr_assert_eq(rc, SQLITE_OK, "prepare %s: %s", sql, sqlite3_errmsg(db));
    rc = sqlite3_step(s);
    cr_assert_eq(rc, SQLITE_ROW, "step %s gave %d: %s", sql, rc, sqlite3_errmsg(db));
    return s;
}

static void expect_text(sqlite3_stmt *s, int col, const char *want) {
    const char *got = (const char *)sqlite3_column_text(s, col);
    if (!want) {
        cr_expect_eq(sqlite3_column_type(s, col), SQLITE_NULL, "column %s: want NULL, got '%s'",
                     sqlite3_column_name(s, col), got ? got : "");
        return;
    }
    cr_expect(got && strcmp(got, want) == 0, "column %s: want '%s', got '%s'",
              sqlite3_column_name(s, col), want, got ? got : "NULL");
}

static void expect_int(sqlite3_stmt *s, int col, int64_t want) {
    cr_expect_eq(sqlite3_column_type(s, col), SQLITE_INTEGER, "column %s: type %d, not INTEGER",
                 sqlite3_column_name(s, col), sqlite3_column_type(s, col));
    int64_t got = sqlite3_column_int64(s, col);
    cr_expect_eq(got, want, "column %s: want %lld, got %lld", sqlite3_column_name(s, col),
                 (long long)want, (long long)got);
}

static void expect_real(sqlite3_stmt *s, int col, double want) {
    double got = sqlite3_column_double(s, col);
    cr_expect(sqlite3_column_type(s, col) == SQLITE_FLOAT && fabs(got - want) <= 1e-12 * fabs(want),
              "column %s: want %.17g, got %.17g (type %d)", sqlite3_column_name(s, col), want, got,
              sqlite3_column_type(s, col));
}

static void expect_null(sqlite3_stmt *s, int col) {
    cr_expect_eq(sqlite3_column_type(s, col), SQLITE_NULL, "column %s: want NULL, got type %d",
                 sqlite3_column_name(s, col), sqlite3_column_type(s, col));
}

/* ---- tests ------------------------------------------------------------------------------------ */

Test(store, a_run_round_trips_every_value_through_the_database) {
    Store *st = open_rw();
    char err[CB_ERR_LEN] = "";
    int64_t run = begin_run(st, "quick");

    unsigned char weights[3000];
    for (size_t i = 0; i < sizeof weights; i++) weights[i] = (unsigned char)(i * 7 + 3);
    CurveRecord train_curve[] = {{"train_loss", 0, 5.5}, {"train_loss", 100, 2.25},
                                 {"train_loss", 200, 1.75}};
    ModelRecord m = {.run_id = run, .scheme = "rope(base=10000)", .scheme_canon = "rope",
                     .key = "k-rope-1", .model_json = "{\"layers\":2}", .train_json = "{\"steps\":400}",
                     .corpus_source = "file:corpora/fortunes", .corpus_sha256 = "feed",
                     .corpus_path = "/srv/corpora/fortunes", .corpus_bytes = 2643146, .seed = 42,
                     .train_ctx = 128, .n_params = 105000, .final_loss = 1.125,
                     .train_seconds = 12.5, .cpu_seconds = 24.75, .bytes_per_second = 65536.5,
                     .peak_rss = 123456789, .status = "ok", .error = NULL, .weights = weights,
                     .weights_size = sizeof weights};
    int64_t model = 0;
    int rc = store_insert_model(st, &m, train_curve, 3, &model, err);
    cr_assert_eq(rc, CB_OK, "store_insert_model returned %d: %s", rc, err);

    CaseRecord ok = {.run_id = run, .model_id = model, .scheme = "rope(base=10000)",
                     .variant = "yarn", .task = "perplexity", .context = 512, .train_ctx = 128,
                     .seed = 42, .status = "ok", .error = NULL, .wall_seconds = 3.5,
                     .cpu_seconds = 6.25, .peak_rss = 99999, .param_bytes = 420000,
                     .act_bytes = 1048576, .pe_state_bytes = 2048};
    MetricRecord metrics[] = {
        {"bpb", 2.5, 2.375, 2.625, 65536, "bits/byte", "nonoverlap", 0},
        {"ppl", 5.656854249492381, NAN, NAN, 65536, "", "nonoverlap", 0},
        {"bpb_ratio", 1.25, NAN, NAN, 1, "", NULL, 256},
    };
    CurveRecord buckets[] = {{"loss_by_bucket", 0, 1.5}, {"loss_by_bucket", 128, 1.75}};
    int64_t case_ok = 0;
    rc = store_insert_case(st, &ok, metrics, 3, buckets, 2, &case_ok, err);
    cr_assert_eq(rc, CB_OK, "store_insert_case returned %d: %s", rc, err);

    CaseRecord unsup = ok;
    unsup.variant = NULL;
    unsup.context = 1024;
    unsup.status = "unsupported";
    unsup.error = "learned table has 128 positions, context is 1024";
    int64_t case_unsup = 0;
    rc = store_insert_case(st, &unsup, NULL, 0, NULL, 0, &case_unsup, err);
    cr_assert_eq(rc, CB_OK, "store_insert_case (unsupported) returned %d: %s", rc, err);
    cr_assert_gt(case_unsup, case_ok, "case ids %lld then %lld", (long long)case_ok,
                 (long long)case_unsup);
    finish(st, run, "complete");
    store_close(st);

    /* The store reads it back read-only ... */
    Store *ro = NULL;
    rc = store_open(&ro, db_path, 1, err);
    cr_assert_eq(rc, CB_OK, "store_open read-only returned %d: %s", rc, err);
    char *csv = query(ro, "SELECT id, suite_name, status, finished_at IS NOT NULL AS done FROM runs",
                      1);
    char want[128];
    snprintf(want, sizeof want, "id,suite_name,status,done\n%lld,quick,complete,1\n", (long long)run);
    cr_expect_str_eq(csv, want, "runs as CSV: %s", csv);
    free(csv);
    int64_t dummy = 0;
    rc = store_begin_run(ro, &(RunInfo){.suite_name = "x"}, &dummy, err);
    cr_expect_eq(rc, CB_EDB, "begin_run on a read-only store returned %d", rc);
    store_close(ro);

    /* ... and so does sqlite3 itself, value by value. */
    sqlite3 *db = open_raw(SQLITE_OPEN_READONLY);
    RunInfo prov = {0};
    store_provenance(&prov);
    sqlite3_stmt *s = raw_row(db,
        "SELECT suite_name, suite_path, suite_text, suite_sha256, git_rev, host, cpu, threads,"
        " compiler, cflags, blas, version, status, started_at, finished_at FROM runs");
    expect_text(s, 0, "quick");
    expect_text(s, 1, "suites/quick.ini");
    expect_text(s, 2, "[suite]\nname = quick\n");
    expect_text(s, 3, "abc123");
    expect_text(s, 4, prov.git_rev);
    expect_text(s, 5, prov.host);
    expect_text(s, 6, prov.cpu);
    expect_int(s, 7, 2);
    expect_text(s, 8, prov.compiler);
    expect_text(s, 9, prov.cflags);
    expect_text(s, 10, prov.blas);
    expect_text(s, 11, prov.version);
    expect_text(s, 12, "complete");
    const char *started = (const char *)sqlite3_column_text(s, 13);
    cr_expect(started && strlen(started) == 20 && started[10] == 'T' && started[19] == 'Z',
              "started_at is not ISO-8601 UTC: %s", started ? started : "NULL");
    cr_expect_neq(sqlite3_column_type(s, 14), SQLITE_NULL, "finished_at is NULL");
    sqlite3_finalize(s);

    s = raw_row(db, "SELECT run_id, scheme, scheme_canon, model_key, model_json, train_json,"
                    " corpus_source, corpus_sha256, seed, train_ctx, n_params, final_loss,"
                    " train_seconds, cpu_seconds, bytes_per_second, peak_rss, status, error, weights,"
                    " corpus_path, corpus_bytes FROM models");
    expect_int(s, 0, run);
    expect_text(s, 1, "rope(base=10000)");
    expect_text(s, 2, "rope");
    expect_text(s, 3, "k-rope-1");
    expect_text(s, 4, "{\"layers\":2}");
    expect_text(s, 5, "{\"steps\":400}");
    expect_text(s, 6, "file:corpora/fortunes");
    expect_text(s, 7, "feed");
    expect_int(s, 8, 42);
    expect_int(s, 9, 128);
    expect_int(s, 10, 105000);
    expect_real(s, 11, 1.125);
    expect_real(s, 12, 12.5);
    expect_real(s, 13, 24.75);
    expect_real(s, 14, 65536.5);
    expect_int(s, 15, 123456789);
    expect_text(s, 16, "ok");
    expect_null(s, 17);
    int nblob = sqlite3_column_bytes(s, 18);
    cr_expect_eq(nblob, (int)sizeof weights, "weights blob has %d bytes", nblob);
    cr_expect(nblob == (int)sizeof weights &&
              memcmp(sqlite3_column_blob(s, 18), weights, sizeof weights) == 0,
              "weights blob differs from what was written");
    expect_text(s, 19, "/srv/corpora/fortunes");
    expect_int(s, 20, 2643146);
    sqlite3_finalize(s);

    cr_expect_eq(raw_int(db, "SELECT count(*) FROM curves WHERE model_id IS NOT NULL"), 3);
    s = raw_row(db, "SELECT group_concat(x || ':' || y, ' ') FROM"
                    " (SELECT x, y FROM curves WHERE name = 'train_loss' ORDER BY id)");
    expect_text(s, 0, "0.0:5.5 100.0:2.25 200.0:1.75");
    sqlite3_finalize(s);

    s = raw_row(db, "SELECT run_id, model_id, scheme, variant, task, context, train_ctx, seed,"
                    " status, error, wall_seconds, cpu_seconds, peak_rss, param_bytes, act_bytes,"
                    " pe_state_bytes FROM cases ORDER BY id");
    expect_int(s, 0, run);
    expect_int(s, 1, model);
    expect_text(s, 2, "rope(base=10000)");
    expect_text(s, 3, "yarn");
    expect_text(s, 4, "perplexity");
    expect_int(s, 5, 512);
    expect_int(s, 6, 128);
    expect_int(s, 7, 42);
    expect_text(s, 8, "ok");
    expect_null(s, 9);
    expect_real(s, 10, 3.5);
    expect_real(s, 11, 6.25);
    expect_int(s, 12, 99999);
    expect_int(s, 13, 420000);
    expect_int(s, 14, 1048576);
    expect_int(s, 15, 2048);
    cr_assert_eq(sqlite3_step(s), SQLITE_ROW, "the unsupported case is missing");
    expect_text(s, 3, "");
    expect_int(s, 5, 1024);
    expect_text(s, 8, "unsupported");
    expect_text(s, 9, "learned table has 128 positions, context is 1024");
    sqlite3_finalize(s);

    s = raw_row(db, "SELECT case_id, name, value, lo, hi, count, unit, mode, stride FROM metrics"
                    " ORDER BY id");
    expect_int(s, 0, case_ok);
    expect_text(s, 1, "bpb");
    expect_real(s, 2, 2.5);
    expect_real(s, 3, 2.375);
    expect_real(s, 4, 2.625);
    expect_int(s, 5, 65536);
    expect_text(s, 6, "bits/byte");
    expect_text(s, 7, "nonoverlap");
    expect_null(s, 8);
    cr_assert_eq(sqlite3_step(s), SQLITE_ROW);
    expect_text(s, 1, "ppl");
    expect_real(s, 2, 5.656854249492381);
    expect_null(s, 3); /* NaN interval bounds are NULL */
    expect_null(s, 4);
    cr_assert_eq(sqlite3_step(s), SQLITE_ROW);
    expect_text(s, 1, "bpb_ratio");
    expect_null(s, 7);
    expect_int(s, 8, 256);
    cr_expect_eq(sqlite3_step(s), SQLITE_DONE, "more than three metrics");
    sqlite3_finalize(s);

    int64_t n_case_curves = raw_int(db, "SELECT count(*) FROM curves WHERE case_id IS NOT NULL");
    cr_expect_eq(n_case_curves, 2, "case curve points: %lld", (long long)n_case_curves);
    s = raw_row(db, "SELECT case_id, name, x, y FROM curves WHERE case_id IS NOT NULL ORDER BY id"
                    " LIMIT 1 OFFSET 1");
    expect_int(s, 0, case_ok);
    expect_text(s, 1, "loss_by_bucket");
    expect_real(s, 2, 128);
    expect_real(s, 3, 1.75);
    sqlite3_finalize(s);
    sqlite3_close(db);
}

Test(store, a_fresh_database_is_in_wal_mode_at_the_current_schema_version) {
    Store *st = open_rw();
    store_close(st);
    sqlite3 *db = open_raw(SQLITE_OPEN_READONLY);
    int64_t version = raw_int(db, "PRAGMA user_version");
    cr_expect_eq(version, STORE_SCHEMA_VERSION, "user_version %lld", (long long)version);
    sqlite3_stmt *s = raw_row(db, "PRAGMA journal_mode");
    expect_text(s, 0, "wal");
    sqlite3_finalize(s);
    int64_t views = raw_int(db, "SELECT count(*) FROM sqlite_schema WHERE type = 'view'"
                                " AND name IN ('v_cases', 'v_metrics', 'v_bpb', 'v_latest_bpb')");
    cr_expect_eq(views, 4, "found %lld of the 4 views", (long long)views);
    sqlite3_close(db);
    /* Opening again neither migrates nor fails. */
    st = open_rw();
    store_close(st);
}

Test(store, v_latest_bpb_shows_the_newest_complete_run_with_null_bpb_for_unsupported_cases) {
    Store *st = open_rw();
    int64_t old_run = begin_run(st, "old");
    int64_t m = add_model(st, old_run, "learned", "k1");
    add_bpb_case(st, old_run, m, "learned", 128, 3.0);
    finish(st, old_run, "complete");

    int64_t run = begin_run(st, "new");
    int64_t ml = add_model(st, run, "learned", "k2");
    int64_t mr = add_model(st, run, "rope", "k3");
    add_bpb_case(st, run, ml, "learned", 128, 2.0);
    add_bpb_case(st, run, ml, "learned", 512, -1);
    add_bpb_case(st, run, mr, "rope", 128, 1.5);
    add_bpb_case(st, run, mr, "rope", 512, 1.75);
    finish(st, run, "complete");

    int64_t unfinished = begin_run(st, "unfinished");
    add_bpb_case(st, unfinished, mr, "rope", 128, 9.0);

    char *csv = query(st, "SELECT scheme, context, bpb FROM v_latest_bpb;", 1);
    cr_expect_str_eq(csv,
                     "scheme,context,bpb\n"
                     "learned,128,2.0\n"
                     "learned,512,\n"
                     "rope,128,1.5\n"
                     "rope,512,1.75\n",
                     "v_latest_bpb gave:\n%s", csv);
    free(csv);
    csv = query(st, "SELECT DISTINCT run_id, suite FROM v_latest_bpb", 1);
    char want[64];
    snprintf(want, sizeof want, "run_id,suite\n%lld,new\n", (long long)run);
    cr_expect_str_eq(csv, want, "v_latest_bpb read run: %s", csv);
    free(csv);
    csv = query(st, "SELECT status, ctx_ratio, ppl IS NULL FROM v_latest_bpb"
                    " WHERE scheme = 'learned' AND context = 512", 1);
    cr_expect_str_eq(csv, "status,ctx_ratio,ppl IS NULL\nunsupported,4.0,1\n", "got %s", csv);
    free(csv);
    store_close(st);
}

Test(store, v_latest_bpb_falls_back_to_the_newest_run_when_none_is_complete) {
    Store *st = open_rw();
    int64_t a = begin_run(st, "a");
    add_bpb_case(st, a, 0, "nope", 128, 4.0);
    finish(st, a, "interrupted");
    int64_t b = begin_run(st, "b");
    add_bpb_case(st, b, 0, "nope", 128, 3.5);
    char *csv = query(st, "SELECT suite, bpb FROM v_latest_bpb", 1);
    cr_expect_str_eq(csv, "suite,bpb\nb,3.5\n", "v_latest_bpb gave: %s", csv);
    free(csv);
    store_close(st);
}

Test(store, v_metrics_and_v_cases_join_each_number_with_its_case) {
    Store *st = open_rw();
    int64_t run = begin_run(st, "quick");
    add_bpb_case(st, run, 0, "alibi", 256, 2.0);
    char *csv = query(st, "SELECT suite, scheme, task, context, ctx_ratio, name, value, unit, mode"
                          " FROM v_metrics ORDER BY name", 1);
    cr_expect_str_eq(csv,
                     "suite,scheme,task,context,ctx_ratio,name,value,unit,mode\n"
                     "quick,alibi,perplexity,256,2.0,bpb,2.0,bits/byte,nonoverlap\n"
                     "quick,alibi,perplexity,256,2.0,ppl,4.0,,\n",
                     "v_metrics gave:\n%s", csv);
    free(csv);
    csv = query(st, "SELECT suite, scheme, ctx_ratio, status FROM v_cases", 1);
    cr_expect_str_eq(csv, "suite,scheme,ctx_ratio,status\nquick,alibi,2.0,ok\n", "v_cases: %s", csv);
    free(csv);
    store_close(st);
}

Test(store, a_database_with_a_newer_schema_is_refused_in_both_modes) {
    sqlite3 *db = open_raw(SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    cr_assert_eq(sqlite3_exec(db, "CREATE TABLE t(x); PRAGMA user_version = 7", NULL, NULL, NULL),
                 SQLITE_OK, "%s", sqlite3_errmsg(db));
    sqlite3_close(db);
    char want[256];
    snprintf(want, sizeof want, "%s: schema version 7 is newer than this ctxbench (%d)", db_path,
             STORE_SCHEMA_VERSION);
    for (int readonly = 0; readonly <= 1; readonly++) {
        Store *st = NULL;
        char err[CB_ERR_LEN] = "";
        int rc = store_open(&st, db_path, readonly, err);
        cr_expect_eq(rc, CB_EDB, "readonly=%d: store_open returned %d (%s)", readonly, rc, err);
        cr_expect_null(st, "readonly=%d: a store was returned", readonly);
        cr_expect_str_eq(err, want, "readonly=%d: message was: %s", readonly, err);
    }
    db = open_raw(SQLITE_OPEN_READONLY);
    int64_t version = raw_int(db, "PRAGMA user_version");
    cr_expect_eq(version, 7, "user_version changed to %lld", (long long)version);
    sqlite3_close(db);
}

Test(store, a_file_that_is_not_sqlite_is_refused_with_a_clear_message) {
    FILE *f = fopen(db_path, "w");
    cr_assert_not_null(f);
    for (int i = 0; i < 200; i++) fprintf(f, "this is a text file, line %d\n", i);
    fclose(f);
    for (int readonly = 0; readonly <= 1; readonly++) {
        Store *st = NULL;
        char err[CB_ERR_LEN] = "";
        int rc = store_open(&st, db_path, readonly, err);
        cr_expect_eq(rc, CB_EDB, "readonly=%d: store_open returned %d (%s)", readonly, rc, err);
        cr_expect(strstr(err, db_path) && strstr(err, "not an SQLite database"),
                  "readonly=%d: message was: %s", readonly, err);
        cr_expect_null(strchr(err, '\n'), "message is more than one line: %s", err);
    }
}

Test(store, an_sqlite_file_with_other_tables_is_not_taken_over) {
    sqlite3 *db = open_raw(SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    cr_assert_eq(sqlite3_exec(db, "CREATE TABLE notes(x)", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    Store *st = NULL;
    char err[CB_ERR_LEN] = "";
    int rc = store_open(&st, db_path, 0, err);
    cr_expect_eq(rc, CB_EDB, "store_open returned %d (%s)", rc, err);
    cr_expect(strstr(err, "not a ctxbench database") != NULL, "message was: %s", err);
    db = open_raw(SQLITE_OPEN_READONLY);
    int64_t n = raw_int(db, "SELECT count(*) FROM sqlite_schema");
    cr_expect_eq(n, 1, "the file now has %lld schema objects", (long long)n);
    sqlite3_close(db);
}

Test(store, opening_a_missing_file_read_only_is_refused_and_creates_nothing) {
    Store *st = NULL;
    char err[CB_ERR_LEN] = "";
    int rc = store_open(&st, db_path, 1, err);
    cr_expect_eq(rc, CB_EDB, "store_open returned %d (%s)", rc, err);
    cr_expect(strstr(err, db_path) && strstr(err, "No such file"), "message was: %s", err);
    cr_expect_neq(access(db_path, F_OK), 0, "%s was created", db_path);
}

Test(store, opening_in_a_missing_directory_names_the_directory) {
    char path[192];
    snprintf(path, sizeof path, "%s/nowhere/results.db", dir);
    Store *st = NULL;
    char err[CB_ERR_LEN] = "";
    int rc = store_open(&st, path, 0, err);
    cr_expect_eq(rc, CB_EDB, "store_open returned %d (%s)", rc, err);
    cr_expect(strstr(err, "nowhere") && strstr(err, "No such file"), "message was: %s", err);
}

Test(store, store_query_refuses_statements_that_write) {
    Store *st = open_rw();
    const char *writes[] = {
        "INSERT INTO runs (suite_name) VALUES ('x')",
        "DROP TABLE metrics",
        "DELETE FROM runs",
        "UPDATE runs SET status = 'failed'",
        "CREATE TABLE t(x)",
        "ATTACH DATABASE '/tmp/ctxbench_attached.db' AS other",
        "BEGIN",
        "PRAGMA user_version = 9",
        "PRAGMA journal_mode = DELETE",
    };
    for (size_t i = 0; i < sizeof writes / sizeof *writes; i++) {
        char err[CB_ERR_LEN] = "";
        int rc = store_query(st, writes[i], 1, stdout, err);
        cr_expect_eq(rc, CB_EINPUT, "%s: returned %d (%s)", writes[i], rc, err);
        cr_expect_str_eq(err, "query: only read-only statements are allowed", "%s: message was: %s",
                         writes[i], err);
    }
    cr_expect_neq(access("/tmp/ctxbench_attached.db", F_OK), 0, "ATTACH created a file");
    char *csv = query(st, "SELECT count(*) AS n FROM sqlite_schema WHERE name = 'metrics'", 1);
    cr_expect_str_eq(csv, "n\n1\n", "metrics table: %s", csv);
    free(csv);
    csv = query(st, "PRAGMA user_version", 1);
    char want_version[64];
    snprintf(want_version, sizeof want_version, "user_version\n%d\n", STORE_SCHEMA_VERSION);
    cr_expect_str_eq(csv, want_version, "user_version: %s", csv);
    free(csv);
    store_close(st);
}

Test(store, store_query_refuses_more_than_one_statement) {
    Store *st = open_rw();
    const char *multi[] = {"SELECT 1; SELECT 2", "SELECT 1; DROP TABLE runs", "SELECT 1; garbage"};
    for (size_t i = 0; i < sizeof multi / sizeof *multi; i++) {
        char err[CB_ERR_LEN] = "";
        int rc = store_query(st, multi[i], 0, stdout, err);
        cr_expect_eq(rc, CB_EINPUT, "%s: returned %d (%s)", multi[i], rc, err);
        cr_expect_str_eq(err, "query: only one statement is allowed", "%s: message was: %s",
                         multi[i], err);
    }
    /* A trailing semicolon, whitespace or comment is one statement. */
    char *csv = query(st, "-- the question\nSELECT 1 AS one;  \n -- done\n", 1);
    cr_expect_str_eq(csv, "one\n1\n", "got %s", csv);
    free(csv);
    char err[CB_ERR_LEN] = "";
    int rc = store_query(st, "SELEC 1", 1, stdout, err);
    cr_expect_eq(rc, CB_EINPUT, "a syntax error returned %d (%s)", rc, err);
    rc = store_query(st, "  -- nothing\n", 1, stdout, err);
    cr_expect_eq(rc, CB_EINPUT, "an empty query returned %d (%s)", rc, err);
    store_close(st);
}

Test(store, store_query_quotes_csv_and_aligns_tables) {
    Store *st = open_rw();
    const char *sql = "SELECT 'a,b' AS t, 'say \"hi\"' AS q, NULL AS n, 12 AS i, 0.1 AS r"
                      " UNION ALL SELECT 'line\nbreak', 'x', 'y', 1234567, 2.5";
    char *csv = query(st, sql, 1);
    cr_expect_str_eq(csv,
                     "t,q,n,i,r\n"
                     "\"a,b\",\"say \"\"hi\"\"\",,12,0.1\n"
                     "\"line\nbreak\",x,y,1234567,2.5\n",
                     "CSV was:\n%s", csv);
    free(csv);
    char *table = query(st, sql, 0);
    cr_expect_str_eq(table,
                     "t           q         n           i    r\n"
                     "----------  --------  ----  -------  ---\n"
                     "a,b         say \"hi\"  NULL       12  0.1\n"
                     "line break  x         y     1234567  2.5\n",
                     "table was:\n%s", table);
    free(table);
    store_close(st);
}

Test(store, a_failed_case_insert_leaves_no_partial_rows) {
    Store *st = open_rw();
    int64_t run = begin_run(st, "quick");
    char err[CB_ERR_LEN] = "";
    MetricRecord metrics[] = {{"bpb", 2.0, NAN, NAN, 1, "bits/byte", NULL, 0},
                              {"ppl", 4.0, NAN, NAN, 1, "", NULL, 0}};
    CurveRecord curve[] = {{"loss_by_bucket", 0, 1.0}};

    /* The case itself is refused: its model does not exist. */
    CaseRecord c = {.run_id = run, .model_id = 9999, .scheme = "rope", .variant = "",
                    .task = "perplexity", .context = 256, .train_ctx = 128, .status = "ok"};
    int64_t id = -1;
    int rc = store_insert_case(st, &c, metrics, 2, curve, 1, &id, err);
    cr_expect_eq(rc, CB_EDB, "a case with a missing model returned %d (%s)", rc, err);
    cr_expect_eq(id, 0, "case id %lld after a failure", (long long)id);
    cr_expect(strstr(err, "FOREIGN KEY") != NULL, "message was: %s", err);

    /* The second metric is refused after the case and the first metric were written. */
    c.model_id = 0;
    metrics[1].name = NULL;
    rc = store_insert_case(st, &c, metrics, 2, curve, 1, &id, err);
    cr_expect_eq(rc, CB_EDB, "a metric without a name returned %d (%s)", rc, err);
    cr_expect(strstr(err, "NOT NULL") != NULL, "message was: %s", err);

    /* A bad status is refused by the CHECK constraint. */
    metrics[1].name = "ppl";
    c.status = "exploded";
    rc = store_insert_case(st, &c, metrics, 2, curve, 1, &id, err);
    cr_expect_eq(rc, CB_EDB, "status 'exploded' returned %d (%s)", rc, err);

    char *csv = query(st, "SELECT (SELECT count(*) FROM cases) AS cases,"
                          " (SELECT count(*) FROM metrics) AS metrics,"
                          " (SELECT count(*) FROM curves) AS curves", 1);
    cr_expect_str_eq(csv, "cases,metrics,curves\n0,0,0\n", "rows left behind: %s", csv);
    free(csv);

    /* The connection is usable afterwards: no transaction was left open. */
    c.status = "ok";
    rc = store_insert_case(st, &c, metrics, 2, curve, 1, &id, err);
    cr_expect_eq(rc, CB_OK, "a good case after failures returned %d (%s)", rc, err);
    csv = query(st, "SELECT (SELECT count(*) FROM cases) AS cases,"
                    " (SELECT count(*) FROM metrics) AS metrics", 1);
    cr_expect_str_eq(csv, "cases,metrics\n1,2\n", "after a good insert: %s", csv);
    free(csv);
    store_close(st);
}

Test(store, a_failed_model_insert_leaves_no_partial_rows) {
    Store *st = open_rw();
    int64_t run = begin_run(st, "quick");
    char err[CB_ERR_LEN] = "";
    ModelRecord m = {.run_id = run, .scheme = "rope", .key = "k", .status = "ok"};
    CurveRecord curve[] = {{"train_loss", 0, 5.0}, {NULL, 1, 4.0}};
    int64_t id = -1;
    int rc = store_insert_model(st, &m, curve, 2, &id, err);
    cr_expect_eq(rc, CB_EDB, "a curve point without a name returned %d (%s)", rc, err);
    cr_expect_eq(id, 0, "model id %lld after a failure", (long long)id);
    char *csv = query(st, "SELECT (SELECT count(*) FROM models) AS models,"
                          " (SELECT count(*) FROM curves) AS curves", 1);
    cr_expect_str_eq(csv, "models,curves\n0,0\n", "rows left behind: %s", csv);
    free(csv);
    store_close(st);
}

Test(store, finishing_a_run_checks_the_status_and_the_run) {
    Store *st = open_rw();
    int64_t run = begin_run(st, "quick");
    char err[CB_ERR_LEN] = "";
    int rc = store_finish_run(st, run, "done", err);
    cr_expect_eq(rc, CB_EINPUT, "status 'done' returned %d (%s)", rc, err);
    rc = store_finish_run(st, run + 100, "complete", err);
    cr_expect_eq(rc, CB_EINPUT, "a missing run returned %d (%s)", rc, err);
    finish(st, run, "interrupted");
    rc = store_reopen_run(st, run, err);
    cr_expect_eq(rc, CB_OK, "store_reopen_run returned %d (%s)", rc, err);
    char *csv = query(st, "SELECT status, finished_at FROM runs", 1);
    cr_expect_str_eq(csv, "status,finished_at\nrunning,\n", "after reopening: %s", csv);
    free(csv);
    store_close(st);
}

Test(store, store_list_runs_counts_ok_and_total_cases) {
    Store *st = open_rw();
    int64_t run = begin_run(st, "quick");
    add_bpb_case(st, run, 0, "learned", 128, 2.0);
    add_bpb_case(st, run, 0, "learned", 512, -1);
    finish(st, run, "complete");
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    char err[CB_ERR_LEN] = "";
    int rc = store_list_runs(st, f, err);
    fclose(f);
    cr_assert_eq(rc, CB_OK, "store_list_runs returned %d (%s)", rc, err);
    cr_expect(strncmp(buf, "id  suite  status    started", 28) == 0, "header: %s", buf);
    cr_expect(strstr(buf, "cases ok/total") != NULL, "no case column: %s", buf);
    cr_expect(strstr(buf, " 1/2 ") != NULL || strstr(buf, "1/2") != NULL, "no 1/2 count: %s", buf);
    free(buf);
    store_close(st);
}

Test(store, store_find_model_returns_the_newest_ok_model_with_its_weights) {
    Store *st = open_rw();
    int64_t run = begin_run(st, "quick");
    char err[CB_ERR_LEN] = "";
    unsigned char w1[4] = {1, 2, 3, 4}, w2[5] = {9, 8, 7, 6, 5};
    ModelRecord m = {.run_id = run, .scheme = "rope", .key = "same", .status = "ok",
                     .weights = w1, .weights_size = sizeof w1};
    int64_t first = 0, second = 0, failed = 0;
    cr_assert_eq(store_insert_model(st, &m, NULL, 0, &first, err), CB_OK, "%s", err);
    m.weights = w2;
    m.weights_size = sizeof w2;
    cr_assert_eq(store_insert_model(st, &m, NULL, 0, &second, err), CB_OK, "%s", err);
    m.status = "diverged";
    m.error = "loss became NaN at step 12";
    m.final_loss = NAN;
    cr_assert_eq(store_insert_model(st, &m, NULL, 0, &failed, err), CB_OK, "%s", err);

    int64_t id = -1;
    void *w = NULL;
    size_t n = 0;
    int rc = store_find_model(st, "same", &id, &w, &n, err);
    cr_assert_eq(rc, CB_OK, "store_find_model returned %d (%s)", rc, err);
    cr_expect_eq(id, second, "found model %lld, want %lld", (long long)id, (long long)second);
    cr_expect(n == sizeof w2 && w && memcmp(w, w2, n) == 0, "weights of %zu bytes differ", n);
    free(w);
    rc = store_find_model(st, "other", &id, &w, &n, err);
    cr_expect(rc == CB_OK && id == 0 && w == NULL, "a missing key gave rc %d id %lld", rc,
              (long long)id);
    char *csv = query(st, "SELECT final_loss FROM models WHERE status = 'diverged'", 1);
    cr_expect_str_eq(csv, "final_loss\n\n", "a NaN loss is stored as: %s", csv);
    free(csv);
    store_close(st);
}

Test(store, provenance_fills_every_field) {
    RunInfo ri = {0};
    store_provenance(&ri);
    const char *fields[] = {ri.git_rev, ri.host, ri.cpu, ri.compiler, ri.cflags, ri.blas, ri.version};
    const char *names[] = {"git_rev", "host", "cpu", "compiler", "cflags", "blas", "version"};
    for (size_t i = 0; i < 7; i++)
        cr_expect_gt(strlen(fields[i]), 0, "%s is empty", names[i]);
    cr_expect(strstr(ri.blas, "OpenBLAS") != NULL, "blas: %s", ri.blas);
}

/* One ok case of seed `seed` with a single bpb metric. */
static void add_seed_case(Store *st, int64_t run, int64_t model, uint64_t seed, double bpb) {
    CaseRecord c = {.run_id = run, .model_id = model, .scheme = "rope", .variant = "", .task = "perplexity",
                    .context = 512, .train_ctx = 128, .seed = seed, .status = "ok"};
    MetricRecord m = {.name = "bpb", .value = bpb, .lo = NAN, .hi = NAN, .count = 512, .unit = "bits/byte",
                      .mode = "nonoverlap", .stride = 512};
    int64_t id;
    char err[CB_ERR_LEN] = "";
    cr_assert_eq(store_insert_case(st, &c, &m, 1, NULL, 0, &id, err), CB_OK, "%s", err);
}

Test(store, v_seed_groups_gives_the_mean_and_a_student_t_interval_across_seeds) {
    Store *st = open_rw();
    int64_t run = begin_run(st, "seeds");
    int64_t m = add_model(st, run, "rope", "ks");
    add_seed_case(st, run, m, 1, 1.0);
    add_seed_case(st, run, m, 2, 2.0);
    add_seed_case(st, run, m, 3, 3.0);
    /* mean 2, standard deviation 1: half width t(0.975, 2) / sqrt(3) = 4.303 / 1.7320508 */
    char *csv = query(st, "SELECT seeds, mean, round(lo, 4), round(hi, 4) FROM v_seed_groups WHERE name = 'bpb'", 1);
    cr_expect_str_eq(csv, "seeds,mean,\"round(lo, 4)\",\"round(hi, 4)\"\n3,2.0,-0.4843,4.4843\n", "got %s", csv);
    free(csv);
    store_close(st);
}

Test(store, a_version_1_database_is_migrated_forward_and_keeps_its_rows) {
    sqlite3 *db;
    cr_assert_eq(sqlite3_open(db_path, &db), SQLITE_OK);
    extern const char *const store_migrations[];
    cr_assert_eq(sqlite3_exec(db, store_migrations[0], NULL, NULL, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
    cr_assert_eq(sqlite3_exec(db, "PRAGMA user_version = 1; INSERT INTO runs (suite_name, status, started_at) "
                                  "VALUES ('old', 'complete', '2026-01-01T00:00:00Z')", NULL, NULL, NULL),
                 SQLITE_OK, "%s", sqlite3_errmsg(db));
    sqlite3_close(db);
    /* Read-only, the older file reads as it is and is not changed. */
    Store *ro = NULL;
    char err[CB_ERR_LEN] = "";
    cr_assert_eq(store_open(&ro, db_path, 1, err), CB_OK, "read-only open of a version 1 file: %s", err);
    char *old_csv = query(ro, "SELECT (SELECT user_version FROM pragma_user_version) AS v, count(*) AS runs FROM runs", 1);
    cr_expect_str_eq(old_csv, "v,runs\n1,1\n", "read-only: %s", old_csv);
    free(old_csv);
    store_close(ro);
    Store *st = open_rw();
    char *csv = query(st, "SELECT (SELECT user_version FROM pragma_user_version) AS v, count(*) AS runs, "
                          "(SELECT count(*) FROM sqlite_schema WHERE name = 'v_seed_groups') AS view FROM runs", 1);
    char want[64];
    snprintf(want, sizeof want, "v,runs,view\n%d,1,1\n", STORE_SCHEMA_VERSION);
    cr_expect_str_eq(csv, want, "after migration: %s", csv);
    free(csv);
    store_close(st);
}

Test(store, a_version_2_database_gains_the_corpus_path_and_size_and_keeps_its_models) {
    sqlite3 *db;
    cr_assert_eq(sqlite3_open(db_path, &db), SQLITE_OK);
    extern const char *const store_migrations[];
    for (int k = 0; k < 2; k++)
        cr_assert_eq(sqlite3_exec(db, store_migrations[k], NULL, NULL, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
    cr_assert_eq(sqlite3_exec(db, "PRAGMA user_version = 2; INSERT INTO runs (suite_name) VALUES ('old');"
                                  "INSERT INTO models (run_id, scheme, corpus_source, corpus_sha256)"
                                  " VALUES (1, 'rope', 'builtin:prose', 'c0ffee')", NULL, NULL, NULL),
                 SQLITE_OK, "%s", sqlite3_errmsg(db));
    sqlite3_close(db);
    Store *st = open_rw();
    char *csv = query(st, "SELECT (SELECT user_version FROM pragma_user_version) AS v, scheme, corpus_sha256,"
                          " corpus_path IS NULL AS no_path, corpus_bytes IS NULL AS no_size FROM models", 1);
    cr_expect_str_eq(csv, "v,scheme,corpus_sha256,no_path,no_size\n3,rope,c0ffee,1,1\n", "after migration: %s", csv);
    free(csv);
    /* a new model of the migrated file stores both; a built-in corpus has no path */
    int64_t id = add_model(st, 1, "alibi", "k-alibi");
    ModelRecord m = {.run_id = 1, .scheme = "nope", .key = "k-nope", .corpus_source = "file:x",
                     .corpus_path = "/abs/x", .corpus_bytes = 4096, .status = "ok"};
    int64_t id2 = 0;
    char err[CB_ERR_LEN] = "";
    cr_assert_eq(store_insert_model(st, &m, NULL, 0, &id2, err), CB_OK, "%s", err);
    csv = query(st, "SELECT id, corpus_path, corpus_bytes FROM models WHERE id > 1 ORDER BY id", 1);
    char want[128];
    snprintf(want, sizeof want, "id,corpus_path,corpus_bytes\n%lld,,\n%lld,/abs/x,4096\n", (long long)id,
             (long long)id2);
    cr_expect_str_eq(csv, want, "new models: %s", csv);
    free(csv);
    store_close(st);
}
