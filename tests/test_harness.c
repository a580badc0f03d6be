/*
 * test_harness.c — the runner end to end: a tiny suite runs into a fresh database with a row for
 * every case, unsupported rows where the learned table is too short, repeat runs give identical
 * metrics, and the command line refuses bad suites with one line, exit code 2 and no run row.
 */
#include <criterion/criterion.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness/child.h"
#include "harness/runner.h"
#include "harness/suite.h"
#include "support/sql_fixture.h"
#include "support/tmpdir_fixture.h"

TestSuite(harness, .init = make_tmpdir, .fini = remove_tmpdir);

static const char *source_dir(void) {
    const char *d = getenv("CB_SOURCE_DIR");
    return d ? d : ".";
}

static void run_suite(const char *db, RunSummary *sum) {
    char path[512], err[CB_ERR_LEN] = "";
    snprintf(path, sizeof path, "%s/tests/suites/e2e_tiny.ini", source_dir());
    Suite s;
    cr_assert_eq(suite_load(&s, path, err), CB_OK, "%s", err);
    RunOptions o = {.db_path = db, .threads = 2};
    cr_assert_eq(runner_run(&s, &o, sum, err), CB_OK, "%s", err);
    suite_free(&s);
}

Test(harness, a_tiny_suite_stores_every_case_with_unsupported_rows_where_they_apply) {
    char db[300];
    snprintf(db, sizeof db, "%s/sub/dir/r.db", tmpdir);
    RunSummary sum;
    run_suite(db, &sum);
    /* 3 schemes x 3 contexts; learned has 16 rows, so 32 and 64 are unsupported. */
    cr_assert_eq(sum.n_cases, 9, "cases: %d", sum.n_cases);
    cr_assert_eq(sum.n_unsupported, 2, "unsupported: %d", sum.n_unsupported);
    cr_assert_eq(sum.n_failed, 0, "failed: %d", sum.n_failed);
    sqlite3 *h = open_db(db);
    cr_assert_eq(scalar(h, "SELECT count(*) FROM runs WHERE status = 'complete'"), 1);
    cr_assert_eq(scalar(h, "SELECT count(*) FROM models WHERE status = 'ok' AND weights IS NOT NULL"), 3);
    cr_assert_eq(scalar(h, "SELECT count(*) FROM v_bpb WHERE status = 'ok' AND bpb > 0 AND bpb < 8"), 7);
    cr_assert_eq(scalar(h, "SELECT count(*) FROM cases WHERE status = 'unsupported' AND scheme = 'learned' "
                           "AND error LIKE '%rows%' AND context > 16"), 2);
    /* The ratio at the training context is exactly 1; bucket curves cover the window. */
    cr_assert_eq(scalar(h, "SELECT count(*) FROM v_bpb WHERE context = 16 AND abs(bpb_ratio - 1) < 1e-12"), 3);
    cr_assert_eq(scalar(h, "SELECT count(*) FROM curves c JOIN cases k ON k.id = c.case_id "
                           "WHERE k.context = 64 AND c.name = 'loss_by_bucket'"), 6); /* [0,16) [16,32) [32,64) x 2 */
    /* The attention entropy of the one layer over the same buckets, between 0 and ln 64 nats; no
       rotary scheme, so no rope_unseen_angle_share. */
    cr_assert_eq(scalar(h, "SELECT count(*) FROM curves c JOIN cases k ON k.id = c.case_id WHERE k.context = 64 "
                           "AND c.name = 'attention_entropy:layer=0' AND c.y > 0 AND c.y < 4.1589"), 6);
    cr_assert_eq(scalar(h, "SELECT count(*) FROM metrics WHERE name = 'rope_unseen_angle_share'"), 0);
    /* Provenance and measurements are present. */
    cr_assert_eq(scalar(h, "SELECT count(*) FROM runs WHERE git_rev <> '' AND cpu <> '' AND blas <> '' "
                           "AND threads = 2 AND suite_sha256 <> ''"), 1);
    cr_assert_eq(scalar(h, "SELECT count(*) FROM cases WHERE status = 'ok' AND peak_rss > 0 AND wall_seconds > 0 "
                           "AND param_bytes > 0 AND act_bytes > 0"), 7);
    cr_assert_eq(scalar(h, "SELECT count(DISTINCT corpus_sha256) FROM models"), 1);
    sqlite3_close(h);
}

Test(harness, two_runs_of_the_same_suite_give_identical_metrics) {
    char db[300];
    snprintf(db, sizeof db, "%s/twice.db", tmpdir);
    RunSummary a, b;
    run_suite(db, &a);
    run_suite(db, &b);
    sqlite3 *h = open_db(db);
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM metrics m1 JOIN cases c1 ON c1.id = m1.case_id "
             "JOIN cases c2 ON c2.scheme = c1.scheme AND c2.context = c1.context AND c2.run_id = %lld "
             "JOIN metrics m2 ON m2.case_id = c2.id AND m2.name = m1.name "
             "WHERE c1.run_id = %lld AND m1.value = m2.value",
             (long long)b.run_id, (long long)a.run_id);
    long long same = scalar(h, sql);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM metrics m JOIN cases c ON c.id = m.case_id WHERE c.run_id = %lld",
             (long long)a.run_id);
    long long total = scalar(h, sql);
    cr_assert(total > 0 && same == total, "%lld of %lld metrics are identical", same, total);
    sqlite3_close(h);
}

static int crash_work(void *arg, ChildMsg *msg) {
    (void)msg;
    raise(*(int *)arg);
    return 0;
}

Test(harness, a_crashing_child_is_recorded_as_failed_with_its_signal) {
    int sig = SIGABRT; /* not SIGSEGV: AddressSanitizer would catch that one itself */
    ChildResult r;
    char err[CB_ERR_LEN];
    cr_assert_eq(child_run(crash_work, &sig, 1, &r, err), CB_OK, "%s", err);
    cr_assert_str_eq(r.status, "failed");
    cr_assert(strstr(r.error, "signal 6"), "error: %s", r.error);
    child_result_free(&r);
}

/* Runs the CLI; returns its exit code and the first line of stderr. */
static int run_cli(const char *args, char *line, size_t n) {
    const char *bin = getenv("CB_BINARY");
    cr_assert_not_null(bin, "CB_BINARY is not set (run through ctest)");
    char cmd[2048], errfile[300];
    snprintf(errfile, sizeof errfile, "%s/stderr.txt", tmpdir);
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' %s 2>'%s' >/dev/null", source_dir(), bin, args, errfile);
    int st = system(cmd);
    FILE *f = fopen(errfile, "r");
    line[0] = '\0';
    int lines = 0;
    char buf[1024];
    while (f && fgets(buf, sizeof buf, f))
        if (lines++ == 0) snprintf(line, n, "%s", buf);
    if (f) fclose(f);
    cr_assert_leq(lines, 1, "stderr had %d lines, first: %s", lines, line);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

Test(harness, malformed_suites_get_one_line_exit_code_two_and_no_run_row) {
    static const struct {
        const char *file;
        const char *expect; /* file:line and key in the message */
    } bad[] = {
        {"bad_unknown_key.ini", "bad_unknown_key.ini:"},
        {"bad_number.ini", "bad_number.ini:"},
        {"bad_unknown_scheme.ini", "schemes"},
        {"bad_huge_context.ini", "contexts"},
    };
    char db[300];
    snprintf(db, sizeof db, "%s/bad.db", tmpdir);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char args[700], line[1024];
        snprintf(args, sizeof args, "run tests/suites/%s --db '%s'", bad[i].file, db);
        int code = run_cli(args, line, sizeof line);
        cr_assert_eq(code, 2, "%s: exit code %d", bad[i].file, code);
        cr_assert(strstr(line, bad[i].expect), "%s: message '%s' lacks '%s'", bad[i].file, line, bad[i].expect);
        cr_assert(access(db, F_OK) != 0, "%s: a database was created", bad[i].file);
    }
    char line[1024];
    cr_assert_eq(run_cli("run no/such/suite.ini --db /tmp/x.db", line, sizeof line), 2, "missing suite");
    cr_assert(strstr(line, "no/such/suite.ini"), "message: %s", line);
    cr_assert_eq(run_cli("frobnicate", line, sizeof line), 2, "unknown command");
}

Test(harness, every_subcommand_answers_help) {
    const char *cmds[] = {"run", "list", "runs", "query", "inspect"};
    for (size_t i = 0; i < 5; i++) {
        char args[64], line[1024];
        snprintf(args, sizeof args, "%s --help", cmds[i]);
        cr_assert_eq(run_cli(args, line, sizeof line), 0, "%s --help failed", cmds[i]);
    }
}

Test(harness, passkey_and_sliding_window_rows_are_stored_with_their_mode_stride_and_interval) {
    char path[512], db[300], err[CB_ERR_LEN] = "";
    snprintf(path, sizeof path, "%s/tests/suites/e2e_passkey.ini", source_dir());
    snprintf(db, sizeof db, "%s/pk.db", tmpdir);
    Suite s;
    cr_assert_eq(suite_load(&s, path, err), CB_OK, "%s", err);
    RunOptions o = {.db_path = db, .threads = 2};
    RunSummary sum;
    cr_assert_eq(runner_run(&s, &o, &sum, err), CB_OK, "%s", err);
    suite_free(&s);
    cr_assert_eq(sum.n_cases, 4, "cases: %d", sum.n_cases);
    cr_assert_eq(sum.n_ok, 4, "ok: %d (failed %d)", sum.n_ok, sum.n_failed);
    sqlite3 *h = open_db(db);
    /* Passkey: one curve point per depth and length, accuracies in [0, 1], a mean per length. */
    cr_assert_eq(scalar(h, "SELECT count(*) FROM curves WHERE name LIKE 'passkey:depth=%' AND y BETWEEN 0 AND 1"), 6);
    cr_assert_eq(scalar(h, "SELECT count(DISTINCT x) FROM curves WHERE name LIKE 'passkey:depth=%'"), 2);
    cr_assert_eq(scalar(h, "SELECT count(*) FROM metrics m JOIN cases c ON c.id = m.case_id "
                           "WHERE c.task = 'passkey' AND m.name = 'passkey_acc' AND m.value BETWEEN 0 AND 1 AND m.count = 9"), 2);
    /* Perplexity: non-overlapping and stride n/2, each naming its mode and stride, with a bootstrap
       interval around the value. */
    cr_assert_eq(scalar(h, "SELECT count(*) FROM metrics m JOIN cases c ON c.id = m.case_id WHERE m.name = 'bpb' "
                           "AND m.mode = 'nonoverlap' AND m.stride = c.context AND m.lo < m.value AND m.value < m.hi"), 2);
    cr_assert_eq(scalar(h, "SELECT count(*) FROM metrics m JOIN cases c ON c.id = m.case_id WHERE m.name = 'bpb' "
                           "AND m.mode = 'sliding' AND m.stride = c.context / 2 AND m.lo < m.value AND m.value < m.hi"), 2);
    /* The ratio to the training length belongs to the non-overlapping value only. */
    cr_assert_eq(scalar(h, "SELECT count(*) FROM metrics WHERE name = 'bpb_ratio' AND mode <> 'nonoverlap'"), 0);
    cr_assert_eq(scalar(h, "SELECT count(*) FROM v_bpb WHERE mode = 'nonoverlap'"), 2);
    /* Training saw passkey episodes: the model's key says so. */
    cr_assert_eq(scalar(h, "SELECT count(*) FROM models WHERE train_json LIKE '%\"passkey_share\":0.5%'"), 1);
    sqlite3_close(h);
}

Test(harness, query_takes_sql_that_opens_with_a_comment_as_the_example_queries_do) {
    char db[300], args[700], line[1024];
    snprintf(db, sizeof db, "%s/q.db", tmpdir);
    RunSummary sum;
    run_suite(db, &sum);
    snprintf(args, sizeof args, "query --db '%s' '-- question: how many runs?\nSELECT count(*) FROM runs'", db);
    cr_assert_eq(run_cli(args, line, sizeof line), 0, "exit code; stderr: %s", line);
    snprintf(args, sizeof args, "query --db '%s' --no-such-flag", db);
    cr_assert_eq(run_cli(args, line, sizeof line), 2, "an unknown flag was taken as SQL");
}
