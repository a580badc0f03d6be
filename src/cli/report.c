/* report.c — `ctxbench report [RUN]`: one run as a table, markdown, CSV, JSON or an HTML page. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "report/report.h"

static const char HELP[] =
    "usage: ctxbench report [RUN] [--db FILE] [--format text|md|csv|json|html] [--out FILE]\n"
    "                       [--context N]\n"
    "\n"
    "Prints what a run measured: bits per byte, its ratio to the training context, wall time and\n"
    "peak memory, per scheme and evaluation context (means over seeds). RUN defaults to the newest.\n"
    "\n"
    "  --db FILE       results database (default " CB_DEFAULT_DB ")\n"
    "  --format F      text (default), md, csv, json, or html: one self-contained page with SVG\n"
    "                  charts (bpb against context, passkey heatmaps, time and memory, quality\n"
    "                  against cost), no script and nothing loaded from elsewhere\n"
    "  --out FILE      write there instead of stdout\n"
    "  --context N     html: the context of the quality-against-cost chart (default the largest);\n"
    "                  other formats: show only that context\n";

int cmd_report(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        fputs(HELP, stdout);
        return CB_EXIT_OK;
    }
    const char *db = CB_DEFAULT_DB, *out_path = NULL, *format = "text", *run_arg = NULL;
    long long context = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--db") && i + 1 < argc) db = argv[++i];
        else if (!strcmp(argv[i], "--format") && i + 1 < argc) format = argv[++i];
        else if (!strcmp(argv[i], "--out") && i + 1 < argc) out_path = argv[++i];
        else if (!strcmp(argv[i], "--context") && i + 1 < argc) {
            if (parse_long(argv[++i], &context) || context < 1 || context > (long long)CB_MAX_CONTEXT) {
                fprintf(stderr, "ctxbench report: --context: '%s' is not a context length\n", argv[i]);
                return CB_EXIT_USAGE;
            }
        } else if (argv[i][0] != '-' && !run_arg) run_arg = argv[i];
        else {
            fprintf(stderr, "ctxbench report: unexpected argument '%s' (see ctxbench report --help)\n",
                    argv[i]);
            return CB_EXIT_USAGE;
        }
    }
    char err[CB_ERR_LEN] = "";
    ReportFormat fmt;
    if (report_parse_format(format, &fmt, err)) {
        fprintf(stderr, "ctxbench report: --format: %s\n", err);
        return CB_EXIT_USAGE;
    }
    long long run = 0;
    if (run_arg && (parse_long(run_arg, &run) || run < 1)) {
        fprintf(stderr, "ctxbench report: RUN: '%s' is not a run id\n", run_arg);
        return CB_EXIT_USAGE;
    }
    Store *st = NULL;
    int rc = store_open(&st, db, 1, err);
    int64_t run_id = run;
    if (!rc && !run_id) rc = report_newest_run(st, &run_id, err);
    FILE *out = stdout;
    if (!rc && out_path && !(out = fopen(out_path, "w")))
        rc = cb_error(err, CB_EIO, "%s: %s", out_path, strerror(errno));
    if (!rc) rc = report_write(st, run_id, fmt, (int)context, out, err);
    if (out && out != stdout && fclose(out) && !rc)
        rc = cb_error(err, CB_EIO, "%s: %s", out_path, strerror(errno));
    store_close(st);
    if (rc) {
        fprintf(stderr, "ctxbench: %s\n", err);
        return cli_exit_code(rc);
    }
    if (out_path) fprintf(stderr, "report of run %lld written to %s\n", (long long)run_id, out_path);
    return CB_EXIT_OK;
}
