/* run.c — `ctxbench run SUITE`: run a suite into the database (or finish an interrupted run) and
   print its summary. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "core/core.h"
#include "harness/runner.h"
#include "harness/suite.h"

static const char HELP[] =
    "usage: ctxbench run SUITE [--db FILE] [--threads N] [--resume RUN] [--time-limit S]\n"
    "                          [--memory-limit MIB] [--quiet]\n"
    "\n"
    "Trains one model per scheme (and seed, and model/training grid point) of the suite, evaluates\n"
    "each at every context, and commits every finished case to the database at once.\n"
    "\n"
    "  --db FILE            results database (default " CB_DEFAULT_DB ")\n"
    "  --threads N          threads per case (default: the suite's 'threads', else all cores;\n"
    "                       with --resume, the run's own)\n"
    "  --resume RUN         run only the cases run RUN lacks (same suite file), reusing its models\n"
    "  --time-limit S       wall seconds per model training and per case (overrides [limits] time)\n"
    "  --memory-limit MIB   memory each of them may allocate (overrides [limits] memory)\n"
    "  --quiet              no per-case lines on stderr\n"
    "\n"
    "SIGINT or SIGTERM stops the running case, keeps every finished one, marks the run\n"
    "'interrupted' and exits 130 or 143; --resume finishes it.\n"
    "\n"
    "Exit status: 0 every case ok or unsupported, 1 a case failed (or timed out, ran out of memory\n"
    "or diverged), 2 bad input, 130/143 interrupted.\n";

int cmd_run(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        fputs(HELP, stdout);
        return CB_EXIT_OK;
    }
    const char *suite_path = NULL, *db = CB_DEFAULT_DB;
    int threads = 0, quiet = 0;
    long long resume = 0, memory = 0;
    double seconds = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--db") && i + 1 < argc) db = argv[++i];
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            long long t;
            if (parse_long(argv[++i], &t) || t < 1 || t > 1024) {
                fprintf(stderr, "ctxbench run: --threads: '%s' is not a number in 1..1024\n", argv[i]);
                return CB_EXIT_USAGE;
            }
            threads = (int)t;
        } else if (!strcmp(argv[i], "--resume") && i + 1 < argc) {
            if (parse_long(argv[++i], &resume) || resume < 1) {
                fprintf(stderr, "ctxbench run: --resume: '%s' is not a run id (see ctxbench runs)\n", argv[i]);
                return CB_EXIT_USAGE;
            }
        } else if (!strcmp(argv[i], "--time-limit") && i + 1 < argc) {
            if (parse_double(argv[++i], &seconds) || !(seconds > 0 && seconds <= 31536000)) {
                fprintf(stderr, "ctxbench run: --time-limit: '%s' is not a number of seconds in (0, 31536000]\n",
                        argv[i]);
                return CB_EXIT_USAGE;
            }
        } else if (!strcmp(argv[i], "--memory-limit") && i + 1 < argc) {
            if (parse_long(argv[++i], &memory) || memory < 1 || memory > (1LL << 24)) {
                fprintf(stderr, "ctxbench run: --memory-limit: '%s' is not a number of MiB in 1..16777216\n",
                        argv[i]);
                return CB_EXIT_USAGE;
            }
        } else if (!strcmp(argv[i], "--quiet")) quiet = 1;
        else if (argv[i][0] == '-' || suite_path) {
            fprintf(stderr, "ctxbench run: unexpected argument '%s' (see ctxbench run --help)\n", argv[i]);
            return CB_EXIT_USAGE;
        } else suite_path = argv[i];
    }
    if (!suite_path) {
        fprintf(stderr, "ctxbench run: no suite file given (see ctxbench run --help)\n");
        return CB_EXIT_USAGE;
    }
    /* A file-size limit (ulimit -f) then fails a write with an error line instead of killing us. */
    signal(SIGXFSZ, SIG_IGN);
    char err[CB_ERR_LEN] = "";
    Suite suite;
    int rc = suite_load(&suite, suite_path, err);
    if (rc) {
        fprintf(stderr, "ctxbench: %s\n", err);
        return CB_EXIT_USAGE;
    }
    RunOptions o = {.db_path = db, .threads = threads, .log = quiet ? NULL : stderr, .summary = stdout,
                    .resume_run = resume, .time_limit = seconds, .memory_limit_mb = (size_t)memory};
    RunSummary sum;
    rc = runner_run(&suite, &o, &sum, err);
    suite_free(&suite);
    if (rc == RUNNER_EINTERRUPTED) {
        fflush(stdout);
        fprintf(stderr, "ctxbench: %s\n", err);
        return 128 + sum.interrupted;
    }
    if (rc) {
        fprintf(stderr, "ctxbench: %s\n", err);
        return cli_exit_code(rc);
    }
    char extra[128] = "";
    if (sum.n_timeout || sum.n_oom || sum.n_diverged)
        snprintf(extra, sizeof extra, " (%d timeout, %d oom, %d diverged)", sum.n_timeout, sum.n_oom, sum.n_diverged);
    char earlier[64] = "";
    if (resume) snprintf(earlier, sizeof earlier, " (%d from before the resume)", sum.n_earlier);
    printf("\nrun %lld: %d cases%s: %d ok, %d unsupported, %d failed%s, in %.1f s; results in %s\n",
           (long long)sum.run_id, sum.n_cases, earlier, sum.n_ok, sum.n_unsupported, sum.n_failed, extra, sum.seconds,
           db);
    printf("query: sqlite3 %s \"SELECT scheme, context, bpb FROM v_bpb WHERE run_id = %lld\"\n", db,
           (long long)sum.run_id);
    return sum.n_failed ? CB_EXIT_FAIL : CB_EXIT_OK;
}
