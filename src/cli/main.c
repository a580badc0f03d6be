/* main.c — ctxbench's entry point: dispatches to one subcommand. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "core/blas.h"
#include "core/core.h"

static const char USAGE[] =
    "usage: ctxbench COMMAND [ARGS]\n"
    "\n"
    "Trains small byte-level transformers with each positional-encoding scheme, evaluates them past\n"
    "their training context, and stores every number in SQLite.\n"
    "\n"
    "commands:\n"
    "  run SUITE [--db FILE] [--threads N]   run a suite file into the database\n"
    "  list                                  schemes, eval-time variants and tasks\n"
    "  runs [--db FILE]                      past runs\n"
    "  query SQL [--db FILE] [--csv]         a read-only SQL query\n"
    "  inspect SCHEME [options]              an encoding's positional quantities, as CSV\n"
    "  report [RUN] [--format F] [--out FILE]\n"
    "                                        a run as text, md, csv, json or an HTML page\n"
    "  compare BASE NEW | --last SUITE       changes between two runs; exit 1 on a regression\n"
    "  nightly SUITE [--db FILE]             run, compare with the previous run, write the report\n"
    "  prune --keep N [--db FILE]            remove all but the newest N runs\n"
    "\n"
    "Run 'ctxbench COMMAND --help' for a command's options.\n";

int cli_wants_help(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) return 1;
    return 0;
}

int cli_exit_code(int status) {
    return status == CB_EINPUT || status == CB_EIO || status == CB_EDB ? CB_EXIT_USAGE : CB_EXIT_FAIL;
}

int main(int argc, char **argv) {
    /* Before anything else: it may re-execute the program to load OpenBLAS with better kernels. */
    blas_select_core(argv);
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        fputs(USAGE, argc < 2 ? stderr : stdout);
        return argc < 2 ? CB_EXIT_USAGE : CB_EXIT_OK;
    }
    if (!strcmp(argv[1], "--version")) {
        char blas[512];
        blas_describe(blas, sizeof blas);
        printf("ctxbench %s\nBLAS: %s\n", CB_VERSION_STRING, blas);
        return CB_EXIT_OK;
    }
    static const struct {
        const char *name;
        int (*fn)(int, char **);
    } commands[] = {
        {"run", cmd_run}, {"list", cmd_list}, {"runs", cmd_runs},
        {"query", cmd_query}, {"inspect", cmd_inspect},
        {"report", cmd_report}, {"compare", cmd_compare}, {"nightly", cmd_nightly},
        {"prune", cmd_prune},
    };
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "ctxbench: unknown command '%s' (see ctxbench --help)\n", argv[1]);
    return CB_EXIT_USAGE;
}
