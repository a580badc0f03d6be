/* run.c — `ctxbench run SUITE`: run a suite into the database and print its summary. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "core/core.h"
#include "harness/runner.h"
#include "harness/suite.h"

static const char HELP[] =
    "usage: ctxbench run SUITE [--db FILE] [--threads N] [--quiet]\n"
    "\n"
    "Trains one model per scheme (and seed, and model/training grid point) of the suite, evaluates\n"
    "each at every context, and commits every finished case to the database at once.\n"
    "\n"
    "  --db FILE     results database (default " CB_DEFAULT_DB ")\n"
    "  --threads N   threads per case (default: the suite's 'threads', else all cores)\n"
    "  --quiet       no per-case lines on stderr\n"
    "\n"
    "Exit status: 0 every case ok or unsupported, 1 a case failed, 2 bad input.\n";

int cmd_run(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        fputs(HELP, stdout);
        return CB_EXIT_OK;
    }
    const char *suite_path = NULL, *db = CB_DEFAULT_DB;
    int threads = 0, quiet = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--db") && i + 1 < argc) db = argv[++i];
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            long long t;
            if (parse_long(argv[++i], &t) || t < 1 || t > 1024) {
                fprintf(stderr, "ctxbench run: --threads: '%s' is not a number in 1..1024\n", argv[i]);
                return CB_EXIT_USAGE;
            }
            threads = (int)t;
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
    char err[CB_ERR_LEN] = "";
    Suite suite;
    int rc = suite_load(&suite, suite_path, err);
    if (rc) {
        fprintf(stderr, "ctxbench: %s\n", err);
        return CB_EXIT_USAGE;
    }
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
    printf("query: sqlite3 %s \"SELECT scheme, context, bpb FROM v_bpb WHERE run_id = %lld\"\n", db,
           (long long)sum.run_id);
    return sum.n_failed ? CB_EXIT_FAIL : CB_EXIT_OK;
}
