/* cli.h — the subcommands of the ctxbench command line. Each returns the process exit code:
   0 success, 1 a case failed (or a regression was found), 2 bad usage or bad input. */
#ifndef CB_CLI_H
#define CB_CLI_H

#define CB_EXIT_OK 0
#define CB_EXIT_FAIL 1
#define CB_EXIT_USAGE 2

#define CB_DEFAULT_DB "results/ctxbench.db"

int cmd_run(int argc, char **argv);
int cmd_list(int argc, char **argv);
int cmd_runs(int argc, char **argv);
int cmd_query(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_compare(int argc, char **argv);
int cmd_nightly(int argc, char **argv);
int cmd_prune(int argc, char **argv);

/* 1 if argv holds -h or --help. */
int cli_wants_help(int argc, char **argv);
/* Exit code for a library status: input errors are 2, everything else 1. */
int cli_exit_code(int status);

#endif
