/* prune.c — `ctxbench prune --keep N`: remove all but the newest N runs, in one transaction. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "store/store.h"

static const char HELP[] =
    "usage: ctxbench prune --keep N [--db FILE]\n"
    "\n"
    "Removes every run but the newest N, with their cases, metrics and curves, and the models no\n"
    "kept case uses, in one transaction: all of it or nothing. A model trained by a removed run\n"
    "that a kept run reused stays (attributed to the oldest kept run that uses it). Prints what\n"
    "was removed. The file shrinks only after: sqlite3 FILE VACUUM\n"
    "\n"
    "  --keep N    runs to keep (0 removes every run)\n"
    "  --db FILE   results database (default " CB_DEFAULT_DB ")\n";

int cmd_prune(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        fputs(HELP, stdout);
        return CB_EXIT_OK;
    }
    const char *db = CB_DEFAULT_DB;
    long long keep = -1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--db") && i + 1 < argc) db = argv[++i];
        else if (!strcmp(argv[i], "--keep") && i + 1 < argc) {
            if (parse_long(argv[++i], &keep) || keep < 0) {
                fprintf(stderr, "ctxbench prune: --keep: '%s' is not a number of runs (0 or more)\n",
                        argv[i]);
                return CB_EXIT_USAGE;
            }
        } else {
            fprintf(stderr, "ctxbench prune: unexpected argument '%s' (see ctxbench prune --help)\n",
                    argv[i]);
            return CB_EXIT_USAGE;
        }
    }
    if (keep < 0) {
        fprintf(stderr, "ctxbench prune: --keep N is required (see ctxbench prune --help)\n");
        return CB_EXIT_USAGE;
    }
    char err[CB_ERR_LEN] = "";
    Store *st = NULL;
    PruneCounts pc;
    int rc = store_open(&st, db, 0, err);
    if (!rc) rc = store_prune(st, keep, &pc, err);
    store_close(st);
    if (rc) {
        fprintf(stderr, "ctxbench: %s\n", err);
        return cli_exit_code(rc);
    }
    printf("removed %lld runs, %lld cases, %lld metrics, %lld curve points, %lld models",
           (long long)pc.runs, (long long)pc.cases, (long long)pc.metrics, (long long)pc.curves,
           (long long)pc.models);
    if (pc.models_moved)
        printf("; kept %lld models of removed runs that kept runs use", (long long)pc.models_moved);
    printf(" (kept the newest %lld runs of %s)\n", keep, db);
    return CB_EXIT_OK;
}
