/* query.c — `ctxbench query SQL`: one read-only statement against the results database. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "store/store.h"

int cmd_query(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        fputs("usage: ctxbench query SQL [--db FILE] [--csv]\n\n"
              "Runs one read-only SQL statement (the database is opened read-only) and prints the rows\n"
              "as an aligned table, or as CSV with --csv. Views: v_cases, v_metrics, v_bpb,\n"
              "v_latest_bpb (see results/README.md).\n",
              stdout);
        return CB_EXIT_OK;
    }
    const char *db = CB_DEFAULT_DB, *sql = NULL;
    int csv = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--db") && i + 1 < argc) db = argv[++i];
        else if (!strcmp(argv[i], "--csv")) csv = 1;
        /* SQL may open with a comment ("-- question: ..."): anything with a space is SQL. */
        else if (!sql && (argv[i][0] != '-' || strpbrk(argv[i], " \t\n"))) sql = argv[i];
        else {
            fprintf(stderr, "ctxbench query: unexpected argument '%s'\n", argv[i]);
            return CB_EXIT_USAGE;
        }
    }
    if (!sql) {
        fprintf(stderr, "ctxbench query: no SQL given (see ctxbench query --help)\n");
        return CB_EXIT_USAGE;
    }
    char err[CB_ERR_LEN];
    Store *st;
    int rc = store_open(&st, db, 1, err);
    if (!rc) rc = store_query(st, sql, csv, stdout, err);
    store_close(st);
    if (rc) {
        fprintf(stderr, "ctxbench: %s\n", err);
        return CB_EXIT_USAGE;
    }
    return CB_EXIT_OK;
}
