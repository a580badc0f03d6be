/*
 * test_concurrency.c — two `ctxbench run` processes write one fresh database while a third
 * process queries it in a loop: both runs complete with every row, and no process sees
 * "database is locked" (WAL, a busy timeout, and one short transaction per model or case).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "support/sql_fixture.h"
#include "support/tmpdir_fixture.h"

TestSuite(concurrency, .init = make_tmpdir, .fini = remove_tmpdir, .timeout = 900);

/* 3 schemes x 4 contexts, a few training steps: many small transactions close together. */
static const char SUITE[] =
    "[suite]\nname = concurrent\nseeds = 1, 2\nthreads = 1\n"
    "[corpus]\nsource = builtin:prose:bytes=65536\neval_bytes = 4096\n"
    "[model]\nlayers = 1\nd_model = 16\nheads = 2\n"
    "[train]\ncontext = 16\nsteps = 20\nbatch = 2\nwarmup = 2\n"
    "[eval]\ncontexts = 16, 32, 64, 128\nschemes = nope, alibi, rope\n";
#define CASES 24  /* 3 schemes x 2 seeds x 4 contexts */
#define METRICS_PER_CASE 5 /* bpb, ppl, nats, windows, bpb_ratio */
#define METRICS (CASES * METRICS_PER_CASE + 8) /* and rope_unseen_angle_share of the 8 rope cases */

/* Starts ctxbench with args; stderr goes to tmpdir/<tag>.err. */
static pid_t start(const char *tag, const char *const *args) {
    const char *bin = getenv("CB_BINARY");
    cr_assert_not_null(bin, "CB_BINARY is not set (run through ctest)");
    char *argv[16];
    int n = 0;
    argv[n++] = (char *)bin;
    for (; *args && n < 15; args++) argv[n++] = (char *)*args;
    argv[n] = NULL;
    char errp[300];
    snprintf(errp, sizeof errp, "%s/%s.err", tmpdir, tag);
    fflush(NULL);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        int e = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0644), o = open("/dev/null", O_WRONLY);
        if (e < 0 || o < 0) _exit(127);
        dup2(o, 1);
        dup2(e, 2);
        execv(bin, argv);
        _exit(127);
    }
    return pid;
}

static int finish(pid_t pid) {
    int st;
    while (waitpid(pid, &st, 0) < 0) cr_assert_eq(errno, EINTR);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int exited(pid_t pid, int *code) {
    int st;
    pid_t r = waitpid(pid, &st, WNOHANG);
    if (r == 0) return 0;
    *code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return 1;
}

static void read_text(const char *tag, char *buf, size_t n) {
    char p[300];
    snprintf(p, sizeof p, "%s/%s.err", tmpdir, tag);
    FILE *f = fopen(p, "r");
    size_t got = f ? fread(buf, 1, n - 1, f) : 0;
    buf[got] = '\0';
    if (f) fclose(f);
}

Test(concurrency, two_runs_write_one_database_while_a_third_process_queries_it_and_no_row_is_lost) {
    char suite[300], db[300];
    snprintf(suite, sizeof suite, "%s/c.ini", tmpdir);
    snprintf(db, sizeof db, "%s/shared.db", tmpdir);
    FILE *f = fopen(suite, "w");
    cr_assert_not_null(f);
    fputs(SUITE, f);
    fclose(f);

    /* Both writers start on a database that does not exist yet: they race to create the schema. */
    const char *run[] = {"run", suite, "--db", db, "--quiet", NULL};
    pid_t w1 = start("w1", run), w2 = start("w2", run);

    /* The reader: `ctxbench query` in a loop, from the moment the schema exists until both writers
       are done, plus direct reads through a connection kept open. */
    sqlite3 *h = NULL;
    int code1 = -1, code2 = -1, done1 = 0, done2 = 0, queries = 0, reads = 0;
    const char *q[] = {"query", "SELECT count(*) FROM cases c JOIN metrics m ON m.case_id = c.id", "--db", db,
                       "--csv", NULL};
    while (!(done1 && done2)) {
        if (!done1) done1 = exited(w1, &code1);
        if (!done2) done2 = exited(w2, &code2);
        if (!h) {
            if (access(db, F_OK) == 0 && sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
                sqlite3_busy_timeout(h, 10000);
            } else {
                sqlite3_close(h);
                h = NULL;
                usleep(10000);
                continue;
            }
        }
        sqlite3_stmt *st;
        long long version = -1;
        if (sqlite3_prepare_v2(h, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
            version = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        if (version < 1) {
            usleep(10000);
            continue;
        }
        (void)scalar(h, "SELECT count(*) FROM cases c JOIN metrics m ON m.case_id = c.id");
        reads++;
        int qc = finish(start("reader", q));
        char text[4096];
        read_text("reader", text, sizeof text);
        cr_assert_eq(qc, 0, "ctxbench query exited %d: %s", qc, text);
        queries++;
    }
    sqlite3_close(h);

    char e1[4096], e2[4096];
    read_text("w1", e1, sizeof e1);
    read_text("w2", e2, sizeof e2);
    cr_assert_eq(code1, 0, "writer 1 exited %d: %s", code1, e1);
    cr_assert_eq(code2, 0, "writer 2 exited %d: %s", code2, e2);
    cr_assert_null(strstr(e1, "locked"), "writer 1: %s", e1);
    cr_assert_null(strstr(e2, "locked"), "writer 2: %s", e2);
    cr_assert_gt(queries, 0, "the reader never ran");

    cr_assert_eq(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    cr_assert_eq(scalar(h, "SELECT count(*) FROM runs WHERE status = 'complete'"), 2);
    cr_assert_eq(scalar(h, "SELECT count(*) FROM models WHERE status = 'ok'"), 12);
    for (int run_id = 1; run_id <= 2; run_id++) {
        char sql[256];
        snprintf(sql, sizeof sql, "SELECT count(*) FROM cases WHERE run_id = %d AND status = 'ok'", run_id);
        cr_assert_eq(scalar(h, sql), CASES, "run %d", run_id);
        snprintf(sql, sizeof sql,
                 "SELECT count(*) FROM (SELECT DISTINCT scheme, seed, context FROM cases WHERE run_id = %d)", run_id);
        cr_assert_eq(scalar(h, sql), CASES, "run %d: distinct cases", run_id);
        snprintf(sql, sizeof sql, "SELECT count(*) FROM metrics m JOIN cases c ON c.id = m.case_id WHERE c.run_id = %d",
                 run_id);
        cr_assert_eq(scalar(h, sql), METRICS, "run %d: metrics", run_id);
    }
    /* Same suite, same seeds, same threads: the two runs agree to the bit. */
    cr_assert_eq(scalar(h, "SELECT count(*) FROM metrics m1 JOIN cases c1 ON c1.id = m1.case_id "
                           "JOIN cases c2 ON c2.run_id = 2 AND c2.scheme = c1.scheme AND c2.seed = c1.seed "
                           " AND c2.context = c1.context "
                           "JOIN metrics m2 ON m2.case_id = c2.id AND m2.name = m1.name AND m2.value = m1.value "
                           "WHERE c1.run_id = 1"),
                 METRICS);
    cr_assert_eq(scalar(h, "SELECT count(*) FROM pragma_integrity_check() WHERE integrity_check = 'ok'"), 1);
    sqlite3_close(h);
    cr_log_info("reader: %d queries through the CLI, %d direct reads", queries, reads);
}
