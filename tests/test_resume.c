/*
 * test_resume.c — interruption, resume and limits through the command line: a run killed with
 * SIGKILL keeps every committed case and, resumed, ends with the numbers of an uninterrupted run;
 * SIGINT and SIGTERM stop a run with exit code 130 or 143 and status "interrupted"; a model or
 * case past the time or memory limit is recorded as "timeout" or "oom" and the run goes on; a
 * training step that produces NaN reports divergence.
 *
 * The CLI (CB_BINARY, set by ctest) runs in a child process; the test watches the database with
 * its own read-only SQLite connection. Waits are event-driven (a committed row, an exit) with
 * generous ceilings, so a loaded machine makes the tests slower, not flaky.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/core.h"
#include "model/model.h"
#include "support/tmpdir_fixture.h"

TestSuite(resume, .init = make_tmpdir, .fini = remove_tmpdir, .timeout = 900);

/* Four models of a few hundred steps: long enough that a run can be stopped after its first case
   and well before its last, short enough for the sanitizer build. */
static const char SUITE[] =
    "; written by test_resume.c\n"
    "[suite]\nname = resume-test\nseeds = 1\nthreads = 1\n"
    "[corpus]\nsource = builtin:prose:bytes=65536\neval_bytes = 4096\n"
    "[model]\nlayers = 1\nd_model = 16\nheads = 2\n"
    "[train]\ncontext = 16\nsteps = 200\nbatch = 4\nwarmup = 2\n"
    "[eval]\ncontexts = 16, 32, 64\nschemes = nope, alibi, rope, t5\n";
#define SUITE_CASES 12

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "cannot write %s", path);
    fputs(text, f);
    fclose(f);
}

static void path_in_tmp(char *out, size_t n, const char *name) { snprintf(out, n, "%s/%s", tmpdir, name); }

/* Starts `ctxbench ARGS...` (NULL-terminated) with stdout and stderr to files in tmpdir. */
static pid_t start_cli(const char *const *args) {
    const char *bin = getenv("CB_BINARY");
    cr_assert_not_null(bin, "CB_BINARY is not set (run through ctest)");
    char *argv[32];
    int n = 0;
    argv[n++] = (char *)bin;
    for (; *args && n < 31; args++) argv[n++] = (char *)*args;
    argv[n] = NULL;
    char out[300], errp[300];
    path_in_tmp(out, sizeof out, "stdout.txt");
    path_in_tmp(errp, sizeof errp, "stderr.txt");
    fflush(NULL);
    pid_t pid = fork();
    cr_assert(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        int o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644), e = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (o < 0 || e < 0) _exit(127);
        dup2(o, 1);
        dup2(e, 2);
        execv(bin, argv);
        _exit(127);
    }
    return pid;
}

/* Waits for pid; returns its exit code, or 128 + signal. */
static int wait_cli(pid_t pid) {
    int st;
    while (waitpid(pid, &st, 0) < 0) cr_assert_eq(errno, EINTR, "waitpid: %s", strerror(errno));
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int run_cli(const char *const *args) { return wait_cli(start_cli(args)); }

static void stderr_text(char *buf, size_t n) {
    char p[300];
    path_in_tmp(p, sizeof p, "stderr.txt");
    FILE *f = fopen(p, "r");
    size_t got = f ? fread(buf, 1, n - 1, f) : 0;
    buf[got] = '\0';
    if (f) fclose(f);
}

/* One integer from the database, read-only, waiting out a writer's lock. -1 if the file or the
   table is not there yet. */
static long long db_scalar(const char *db, const char *sql) {
    sqlite3 *h;
    long long v = -1;
    if (sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        sqlite3_close(h);
        return -1;
    }
    sqlite3_busy_timeout(h, 10000);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(h);
    return v;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Polls until run 1 has at least one committed case; fails if the CLI exits first. */
static void wait_for_first_case(pid_t pid, const char *db) {
    double t0 = now_s();
    for (;;) {
        if (db_scalar(db, "SELECT count(*) FROM cases WHERE run_id = 1") >= 1) return;
        int st;
        cr_assert_eq(waitpid(pid, &st, WNOHANG), 0, "the run ended before its first case was seen");
        cr_assert_lt(now_s() - t0, 600.0, "no case committed within 600 s");
        usleep(5000);
    }
}

/* Every metric of run a equals the same metric of run b (same scheme, variant, task, context), and
   both have the same number of metrics and loss-by-position points. */
static void assert_same_numbers(const char *db, int a, int b) {
    char sql[1024];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM metrics m1 JOIN cases c1 ON c1.id = m1.case_id "
             "JOIN cases c2 ON c2.run_id = %d AND c2.scheme = c1.scheme AND c2.variant = c1.variant "
             " AND c2.task = c1.task AND c2.context = c1.context AND c2.seed = c1.seed "
             "JOIN metrics m2 ON m2.case_id = c2.id AND m2.name = m1.name AND m2.value = m1.value "
             "WHERE c1.run_id = %d", b, a);
    long long same = db_scalar(db, sql);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM metrics m JOIN cases c ON c.id = m.case_id WHERE c.run_id = %d", a);
    long long na = db_scalar(db, sql);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM metrics m JOIN cases c ON c.id = m.case_id WHERE c.run_id = %d", b);
    long long nb = db_scalar(db, sql);
    cr_assert(na > 0 && na == nb && same == na, "run %d: %lld metrics, run %d: %lld, identical: %lld", a, na, b, nb,
              same);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM metrics m JOIN cases c ON c.id = m.case_id WHERE c.run_id = %d AND m.name = "
             "'bpb_ratio'", a);
    cr_assert_eq(db_scalar(db, sql), SUITE_CASES, "every case of run %d has its bpb_ratio", a);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM curves k1 JOIN cases c1 ON c1.id = k1.case_id "
             "JOIN cases c2 ON c2.run_id = %d AND c2.scheme = c1.scheme AND c2.context = c1.context "
             "JOIN curves k2 ON k2.case_id = c2.id AND k2.x = k1.x AND k2.y = k1.y WHERE c1.run_id = %d", b, a);
    long long same_curves = db_scalar(db, sql);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM curves k JOIN cases c ON c.id = k.case_id WHERE c.run_id = %d", a);
    long long curves = db_scalar(db, sql);
    cr_assert(curves > 0 && same_curves == curves, "%lld of %lld curve points identical", same_curves, curves);
}

static void assert_run_complete_without_duplicates(const char *db, int run) {
    char sql[512];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM runs WHERE id = %d AND status = 'complete' "
             "AND finished_at IS NOT NULL", run);
    cr_assert_eq(db_scalar(db, sql), 1, "run %d is not complete", run);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM cases WHERE run_id = %d AND status = 'ok'", run);
    cr_assert_eq(db_scalar(db, sql), SUITE_CASES, "run %d: ok cases", run);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM (SELECT DISTINCT scheme, variant, task, context FROM cases WHERE run_id = %d)", run);
    cr_assert_eq(db_scalar(db, sql), SUITE_CASES, "run %d: distinct cases", run);
}

Test(resume, a_run_killed_with_sigkill_keeps_its_cases_and_resumes_to_the_numbers_of_an_uninterrupted_run) {
    char suite[300], db[300];
    path_in_tmp(suite, sizeof suite, "resume.ini");
    path_in_tmp(db, sizeof db, "r.db");
    write_file(suite, SUITE);
    const char *run[] = {"run", suite, "--db", db, NULL};
    pid_t pid = start_cli(run);
    wait_for_first_case(pid, db);
    cr_assert_eq(kill(pid, SIGKILL), 0);
    cr_assert_eq(wait_cli(pid), 128 + SIGKILL);

    /* What was committed is whole: each case with its metrics; the run still says running. */
    long long kept = db_scalar(db, "SELECT count(*) FROM cases WHERE run_id = 1");
    cr_assert(kept >= 1 && kept < SUITE_CASES, "cases kept after SIGKILL: %lld", kept);
    cr_assert_eq(db_scalar(db, "SELECT count(*) FROM cases c WHERE run_id = 1 AND NOT EXISTS "
                               "(SELECT 1 FROM metrics m WHERE m.case_id = c.id AND m.name = 'bpb')"), 0,
                 "a committed case lacks its bpb");
    cr_assert_eq(db_scalar(db, "SELECT count(*) FROM runs WHERE id = 1 AND status = 'running'"), 1);
    cr_assert_eq(db_scalar(db, "SELECT count(*) FROM pragma_integrity_check() WHERE integrity_check = 'ok'"), 1);

    long long models_before = db_scalar(db, "SELECT count(*) FROM models WHERE run_id = 1 AND status = 'ok'");
    const char *resume[] = {"run", suite, "--db", db, "--resume", "1", "--quiet", NULL};
    cr_assert_eq(run_cli(resume), 0, "the resumed run failed");
    assert_run_complete_without_duplicates(db, 1);
    /* Models trained before the kill were reused, not trained again. */
    cr_assert_eq(db_scalar(db, "SELECT count(*) FROM models WHERE run_id = 1"), 4, "models of run 1");
    cr_assert_geq(models_before, 1);

    const char *again[] = {"run", suite, "--db", db, "--quiet", NULL};
    cr_assert_eq(run_cli(again), 0, "the uninterrupted run failed");
    assert_run_complete_without_duplicates(db, 2);
    assert_same_numbers(db, 1, 2);
}

static void interrupt_and_resume(int sig, int compare) {
    char suite[300], db[300];
    path_in_tmp(suite, sizeof suite, "resume.ini");
    path_in_tmp(db, sizeof db, "r.db");
    write_file(suite, SUITE);
    const char *run[] = {"run", suite, "--db", db, NULL};
    pid_t pid = start_cli(run);
    wait_for_first_case(pid, db);
    cr_assert_eq(kill(pid, sig), 0);
    int code = wait_cli(pid);
    cr_assert_eq(code, 128 + sig, "exit code %d after signal %d", code, sig);
    char text[4096];
    stderr_text(text, sizeof text);
    cr_assert(strstr(text, "interrupted by") && strstr(text, "--resume 1"), "stderr: %s", text);
    cr_assert_eq(db_scalar(db, "SELECT count(*) FROM runs WHERE id = 1 AND status = 'interrupted'"), 1);
    long long kept = db_scalar(db, "SELECT count(*) FROM cases WHERE run_id = 1");
    cr_assert(kept >= 1 && kept < SUITE_CASES, "cases kept: %lld", kept);
    /* The case that was running is not recorded as a failure: it is simply missing. */
    cr_assert_eq(db_scalar(db, "SELECT count(*) FROM cases WHERE status <> 'ok'"), 0);
    cr_assert_eq(db_scalar(db, "SELECT count(*) FROM models WHERE status <> 'ok'"), 0);

    const char *resume[] = {"run", suite, "--db", db, "--resume", "1", "--quiet", NULL};
    cr_assert_eq(run_cli(resume), 0, "the resumed run failed");
    assert_run_complete_without_duplicates(db, 1);
    if (compare) {
        const char *again[] = {"run", suite, "--db", db, "--quiet", NULL};
        cr_assert_eq(run_cli(again), 0, "the uninterrupted run failed");
        assert_same_numbers(db, 1, 2);
    }
}

Test(resume, sigint_stops_the_run_with_exit_code_130_and_the_resumed_run_matches_an_uninterrupted_one) {
    interrupt_and_resume(SIGINT, 1);
}

Test(resume, sigterm_stops_the_run_with_exit_code_143_and_it_resumes) { interrupt_and_resume(SIGTERM, 0); }

Test(resume, a_complete_run_is_not_resumed_again) {
    char suite[300], db[300], text[4096];
    path_in_tmp(suite, sizeof suite, "tiny.ini");
    path_in_tmp(db, sizeof db, "r.db");
    write_file(suite, "[suite]\nname = t\nthreads = 1\n[corpus]\nsource = builtin:prose:bytes=65536\n"
                      "eval_bytes = 4096\n[model]\nlayers = 1\nd_model = 16\nheads = 2\n"
                      "[train]\ncontext = 16\nsteps = 2\nbatch = 2\nwarmup = 1\n[eval]\ncontexts = 16\n");
    const char *run[] = {"run", suite, "--db", db, "--quiet", NULL};
    cr_assert_eq(run_cli(run), 0);
    const char *resume[] = {"run", suite, "--db", db, "--resume", "1", NULL};
    cr_assert_eq(run_cli(resume), 2);
    stderr_text(text, sizeof text);
    cr_assert(strstr(text, "it is complete"), "stderr: %s", text);
    cr_assert_eq(db_scalar(db, "SELECT count(*) FROM cases"), 1);
}

/* ---- limits ---- */

Test(resume, models_past_the_time_limit_are_recorded_as_timeout_with_the_limit_and_the_run_goes_on) {
    char suite[300], db[300];
    path_in_tmp(suite, sizeof suite, "slow.ini");
    path_in_tmp(db, sizeof db, "t.db");
    /* 10^6 steps would take hours: every training must be stopped at the 1 s limit. */
    write_file(suite, "[suite]\nname = slow\nthreads = 1\n[corpus]\nsource = builtin:prose:bytes=65536\n"
                      "eval_bytes = 4096\n[model]\nlayers = 1\nd_model = 16\nheads = 2\n"
                      "[train]\ncontext = 16\nsteps = 1000000\nbatch = 4\n"
                      "[eval]\ncontexts = 16, 32\nschemes = nope, alibi\n[limits]\ntime = 1\n");
    const char *run[] = {"run", suite, "--db", db, "--quiet", NULL};
    double t0 = now_s();
    cr_assert_eq(run_cli(run), 1, "a run with timeouts exits 1");
    cr_assert_lt(now_s() - t0, 300.0, "the limit did not stop the training");
    cr_assert_eq(db_scalar(db, "SELECT count(*) FROM runs WHERE status = 'complete'"), 1);
    cr_assert_eq(db_scalar(db, "SELECT count(*) FROM models WHERE status = 'timeout' AND weights IS NULL "
                               "AND error LIKE '%time limit of 1 s%'"), 2);
    cr_assert_eq(db_scalar(db, "SELECT count(*) FROM cases WHERE status = 'timeout' "
                               "AND error LIKE 'model not trained (timeout)%time limit of 1 s%'"), 4);
    /* --time-limit sets a limit the suite does not have. */
    path_in_tmp(db, sizeof db, "t2.db");
    write_file(suite, "[suite]\nname = slow\nthreads = 1\n[corpus]\nsource = builtin:prose:bytes=65536\n"
                      "eval_bytes = 4096\n[model]\nlayers = 1\nd_model = 16\nheads = 2\n"
                      "[train]\ncontext = 16\nsteps = 1000000\nbatch = 4\n[eval]\ncontexts = 16\n");
    const char *flag[] = {"run", suite, "--db", db, "--quiet", "--time-limit", "0.5", NULL};
    cr_assert_eq(run_cli(flag), 1);
    cr_assert_eq(db_scalar(db, "SELECT count(*) FROM models WHERE status = 'timeout' "
                               "AND error LIKE '%time limit of 0.5 s%'"), 1);
}

Test(resume, a_case_past_the_memory_limit_is_recorded_as_oom_and_the_other_cases_run) {
    char suite[300], db[300];
    path_in_tmp(suite, sizeof suite, "mem.ini");
    path_in_tmp(db, sizeof db, "m.db");
    /* Evaluating 131072 bytes at once needs about 90 MiB of buffers; 16 bytes needs almost none.
       The suite's generous limit is overridden by --memory-limit 48. */
    write_file(suite, "[suite]\nname = mem\nthreads = 1\n[corpus]\nsource = builtin:prose:bytes=300000\n"
                      "eval_bytes = 131073\n[model]\nlayers = 1\nd_model = 16\nheads = 2\n"
                      "[train]\ncontext = 16\nsteps = 3\nbatch = 2\nwarmup = 1\n"
                      "[eval]\ncontexts = 16, 131072\n[limits]\nmemory = 100000\ntime = 120\n");
    /* Under AddressSanitizer (the debug preset) a failed allocation must come back as NULL, as it
       does without it: ASan's own out-of-memory report would need memory the limit refuses. */
    const char *asan = getenv("ASAN_OPTIONS");
    char opts[1024];
    snprintf(opts, sizeof opts, "%s%sallocator_may_return_null=1", asan ? asan : "", asan && *asan ? ":" : "");
    setenv("ASAN_OPTIONS", opts, 1);
    const char *run[] = {"run", suite, "--db", db, "--quiet", "--memory-limit", "48", NULL};
    cr_assert_eq(run_cli(run), 1, "a run with an oom case exits 1");
    cr_assert_eq(db_scalar(db, "SELECT count(*) FROM runs WHERE status = 'complete'"), 1);
    cr_assert_eq(db_scalar(db, "SELECT count(*) FROM models WHERE status = 'ok'"), 1);
#ifndef __SANITIZE_ADDRESS__
    /* Under AddressSanitizer even the small case needs more address space than 48 MiB (its
       allocator maps large regions), so only the release build checks that the small case runs. */
    cr_assert_eq(db_scalar(db, "SELECT count(*) FROM cases WHERE context = 16 AND status = 'ok'"), 1);
#endif
    cr_assert_eq(db_scalar(db, "SELECT count(*) FROM cases WHERE context = 131072 AND status = 'oom' "
                               "AND error LIKE '%memory limit of 48 MiB%'"), 1);
}

/* No suite can make this tiny model overflow (lr is at most 1), so divergence is provoked the way
   it happens: a non-finite weight. The runner turns CB_EDIVERGED into status "diverged" with the
   step, and gives the model's cases that status. */
Test(resume, a_training_step_that_produces_nan_reports_divergence) {
    ModelConfig cfg = {.n_layer = 1, .d_model = 16, .n_head = 2, .mlp_ratio = 4, .train_ctx = 8};
    TrainConfig tc = {.steps = 10, .batch = 2, .warmup = 1, .lr = 1e-3, .min_lr_ratio = 0.1, .weight_decay = 0.1,
                      .grad_clip = 1.0, .beta1 = 0.9, .beta2 = 0.95, .eps = 1e-8};
    Model m;
    char err[CB_ERR_LEN] = "";
    cr_assert_eq(model_build(&m, &cfg, "nope", 1, err), CB_OK, "%s", err);
    for (size_t i = 0; i < m.n_params; i++) m.params[i] = NAN;
    uint8_t in[16], tg[16];
    for (int i = 0; i < 16; i++) in[i] = (uint8_t)('a' + i), tg[i] = (uint8_t)('b' + i);
    float loss, gnorm;
    int rc = model_train_step(&m, in, tg, 2, 8, &tc, 1e-3, &loss, &gnorm, err);
    cr_assert_eq(rc, CB_EDIVERGED, "status %d: %s", rc, err);
    cr_assert(strstr(err, "diverged"), "message: %s", err);
    model_free(&m);
}
