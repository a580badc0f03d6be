/* compare.c — `ctxbench compare BASE NEW`: what changed between two runs; exit 1 on a regression. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "report/report.h"

static const char HELP[] =
    "usage: ctxbench compare BASE NEW [--db FILE] [--format md|text] [--threshold REL]\n"
    "       ctxbench compare --last SUITE_NAME [--db FILE] [--format md|text] [--threshold REL]\n"
    "\n"
    "Matches the metrics of two runs by scheme, variant, task, context, metric name, mode and\n"
    "stride (seeds pooled), prints every change and flags those worse than the threshold: a rise of\n"
    "bpb, ppl, nats, loss or seconds, a fall of an accuracy. With two or more seeds on both sides a\n"
    "change must also exceed two standard errors of the difference of the means (Welch).\n"
    "A metric that BASE had and NEW lost because its case failed is a regression too.\n"
    "\n"
    "  --db FILE         results database (default " CB_DEFAULT_DB ")\n"
    "  --last SUITE      compare the two newest complete runs of that suite name\n"
    "  --format F        text (default) or md\n"
    "  --threshold REL   relative change that counts (default: the NEW run's suite\n"
    "                    '[compare] threshold', else 0.02 = 2 %)\n"
    "\n"
    "Exit status: 0 no regression, 1 a regression, 2 bad input (e.g. an unknown run).\n";

int cmd_compare(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        fputs(HELP, stdout);
        return CB_EXIT_OK;
    }
    const char *db = CB_DEFAULT_DB, *last = NULL, *runs[2] = {NULL, NULL};
    CompareOptions o = {.threshold = -1, .markdown = 0};
    int n_runs = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--db") && i + 1 < argc) db = argv[++i];
        else if (!strcmp(argv[i], "--last") && i + 1 < argc) last = argv[++i];
        else if (!strcmp(argv[i], "--format") && i + 1 < argc) {
            const char *f = argv[++i];
            if (strcmp(f, "md") && strcmp(f, "text")) {
                fprintf(stderr, "ctxbench compare: --format: '%s' is not md or text\n", f);
                return CB_EXIT_USAGE;
            }
            o.markdown = !strcmp(f, "md");
        } else if (!strcmp(argv[i], "--threshold") && i + 1 < argc) {
            if (parse_double(argv[++i], &o.threshold) || !(o.threshold >= 0 && o.threshold <= 10)) {
                fprintf(stderr, "ctxbench compare: --threshold: '%s' is not a number in 0..10\n", argv[i]);
                return CB_EXIT_USAGE;
            }
        } else if (argv[i][0] != '-' && n_runs < 2) runs[n_runs++] = argv[i];
        else {
            fprintf(stderr, "ctxbench compare: unexpected argument '%s' (see ctxbench compare --help)\n",
                    argv[i]);
            return CB_EXIT_USAGE;
        }
    }
    if (last ? n_runs != 0 : n_runs != 2) {
        fprintf(stderr, "ctxbench compare: give two runs, BASE and NEW, or --last SUITE_NAME\n");
        return CB_EXIT_USAGE;
    }
    long long ids[2] = {0, 0};
    for (int k = 0; k < n_runs; k++)
        if (parse_long(runs[k], &ids[k]) || ids[k] < 1) {
            fprintf(stderr, "ctxbench compare: '%s' is not a run id\n", runs[k]);
            return CB_EXIT_USAGE;
        }
    char err[CB_ERR_LEN] = "";
    Store *st = NULL;
    int64_t base = ids[0], new_run = ids[1];
    int rc = store_open(&st, db, 1, err);
    if (!rc && last) rc = compare_last_two(st, last, &base, &new_run, err);
    CompareResult res;
    if (!rc) rc = compare_runs(st, base, new_run, &o, stdout, &res, err);
    store_close(st);
    if (rc) {
        fprintf(stderr, "ctxbench: %s\n", err);
        return cli_exit_code(rc);
    }
    return res.n_regressions ? CB_EXIT_FAIL : CB_EXIT_OK;
}
