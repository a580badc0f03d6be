/* runs.c — `ctxbench runs`: the runs stored in the database. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "store/store.h"

int cmd_runs(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        fputs("usage: ctxbench runs [--db FILE]\n\nLists past runs: id, suite, status, start, cases, revision.\n",
              stdout);
        return CB_EXIT_OK;
    }
    const char *db = CB_DEFAULT_DB;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--db") && i + 1 < argc) db = argv[++i];
        else {
            fprintf(stderr, "ctxbench runs: unexpected argument '%s'\n", argv[i]);
            return CB_EXIT_USAGE;
        }
    }
    char err[CB_ERR_LEN];
    Store *st;
    int rc = store_open(&st, db, 1, err);
    if (!rc) rc = store_list_runs(st, stdout, err);
    store_close(st);
    if (rc) {
        fprintf(stderr, "ctxbench: %s\n", err);
        return cli_exit_code(rc);
    }
    return CB_EXIT_OK;
}
