/* nightly.c — `ctxbench nightly SUITE`: run a suite, compare it with the previous complete run of
   the same suite name, write the HTML report, and say by the exit code whether anything broke. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "harness/runner.h"
#include "harness/suite.h"
#include "report/report.h"

static const char HELP[] =
    "usage: ctxbench nightly SUITE [--db FILE] [--threads N] [--reports DIR] [--threshold REL]\n"
    "                              [--quiet]\n"
    "\n"
    "Runs the suite exactly as 'ctxbench run' does, compares the run with the previous complete\n"
    "run of the same suite name (see 'ctxbench compare'), writes the HTML report to\n"
    "DIR/<suite>-<run>.html and prints the comparison. Meant for a timer or cron job.\n"
    "\n"
    "  --db FILE         results database (default " CB_DEFAULT_DB ")\n"
    "  --threads N       threads per case (default: the suite's 'threads', else all cores)\n"
    "  --reports DIR     where the HTML report goes (default results/reports, created if missing)\n"
    "  --threshold REL   regression threshold (default: the suite's [compare] threshold, else 0.02)\n"
    "  --quiet           no per-case lines on stderr\n"
    "\n"
    "Exit status: 0 all well, 1 a case failed or a regression was found, 2 bad input.\n";

/* mkdir -p */
static int make_dirs(const char *path, char *err) {
    char buf[1024];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return cb_error(err, CB_EINPUT, "%s: path too long", path);
    for (char *p = buf + 1;; p++) {
        if (*p != '/' && *p) continue;
        char c = *p;
        *p = 0;
        if (mkdir(buf, 0777) && errno != EEXIST) return cb_error(err, CB_EIO, "%s: %s", buf, strerror(errno));
        if (!c) break;
        *p = c;
    }
    return CB_OK;
}

static int write_report(Store *st, int64_t run, const char *dir, const char *suite, char *path,
                        size_t n, char *err) {
    int rc = make_dirs(dir, err);
    if (rc) return rc;
    snprintf(path, n, "%s/%s-%lld.html", dir, suite, (long long)run);
    FILE *f = fopen(path, "w");
    if (!f) return cb_error(err, CB_EIO, "%s: %s", path, strerror(errno));
    rc = report_write(st, run, REPORT_HTML, 0, f, err);
    if (fclose(f) && !rc) rc = cb_error(err, CB_EIO, "%s: %s", path, strerror(errno));
    return rc;
}

int cmd_nightly(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        fputs(HELP, stdout);
        return CB_EXIT_OK;
    }
    const char *suite_path = NULL, *db = CB_DEFAULT_DB, *reports = "results/reports";
    int threads = 0, quiet = 0;
    CompareOptions co = {.threshold = -1, .markdown = 0};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--db") && i + 1 < argc) db = argv[++i];
        else if (!strcmp(argv[i], "--reports") && i + 1 < argc) reports = argv[++i];
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            long long t;
            if (parse_long(argv[++i], &t) || t < 1 || t > 1024) {
                fprintf(stderr, "ctxbench nightly: --threads: '%s' is not a number in 1..1024\n", argv[i]);
                return CB_EXIT_USAGE;
            }
            threads = (int)t;
        } else if (!strcmp(argv[i], "--threshold") && i + 1 < argc) {
            if (parse_double(argv[++i], &co.threshold) || !(co.threshold >= 0 && co.threshold <= 10)) {
                fprintf(stderr, "ctxbench nightly: --threshold: '%s' is not a number in 0..10\n", argv[i]);
                return CB_EXIT_USAGE;
            }
        } else if (!strcmp(argv[i], "--quiet")) quiet = 1;
        else if (argv[i][0] == '-' || suite_path) {
            fprintf(stderr, "ctxbench nightly: unexpected argument '%s' (see ctxbench nightly --help)\n",
                    argv[i]);
            return CB_EXIT_USAGE;
        } else suite_path = argv[i];
    }
    if (!suite_path) {
        fprintf(stderr, "ctxbench nightly: no suite file given (see ctxbench nightly --help)\n");
        return CB_EXIT_USAGE;
    }
    char err[CB_ERR_LEN] = "";
    Suite suite;
    int rc = suite_load(&suite, suite_path, err);
    if (rc) {
        fprintf(stderr, "ctxbench: %s\n", err);
        return CB_EXIT_USAGE;
    }
    char suite_name[sizeof suite.name];
    snprintf(suite_name, sizeof suite_name, "%s", suite.name);
    RunOptions o = {.db_path = db, .threads = threads, .log = quiet ? NULL : stderr, .summary = stdout};
    RunSummary sum;
    rc = runner_run(&suite, &o, &sum, err);
    suite_free(&suite);
    if (rc) {
        fprintf(stderr, "ctxbench: %s\n", err);
        return cli_exit_code(rc);
    }
    printf("\nrun %lld: %d cases: %d ok, %d unsupported, %d failed, in %.1f s; results in %s\n",
           (long long)sum.run_id, sum.n_cases, sum.n_ok, sum.n_unsupported, sum.n_failed, sum.seconds, db);

    Store *st = NULL;
    int64_t prev = 0;
    CompareResult res = {0};
    char report_path[1200] = "";
    rc = store_open(&st, db, 1, err);
    if (!rc) rc = write_report(st, sum.run_id, reports, suite_name, report_path, sizeof report_path, err);
    if (!rc) printf("report: %s\n", report_path);
    if (!rc) rc = compare_previous_run(st, suite_name, sum.run_id, &prev, err);
    if (!rc && !prev) printf("no earlier complete run of suite '%s' to compare with\n", suite_name);
    if (!rc && prev) {
        putchar('\n');
        rc = compare_runs(st, prev, sum.run_id, &co, stdout, &res, err);
    }
    store_close(st);
    if (rc) {
        fprintf(stderr, "ctxbench: %s\n", err);
        return CB_EXIT_FAIL;
    }
    if (sum.n_failed) fprintf(stderr, "ctxbench nightly: %d cases failed\n", sum.n_failed);
    if (res.n_regressions)
        fprintf(stderr, "ctxbench nightly: %d regressions against run %lld\n", res.n_regressions,
                (long long)prev);
    return sum.n_failed || res.n_regressions ? CB_EXIT_FAIL : CB_EXIT_OK;
}
