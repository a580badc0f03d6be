/*
 * runner.h — runs a suite: trains each experiment's model in a child process, evaluates every case
 * in its own child, and commits each finished model and case to the store at once.
 * The parent process never starts OpenMP or BLAS threads; the children do all the computing.
 */
#ifndef CB_RUNNER_H
#define CB_RUNNER_H

#include <stdint.h>
#include <stdio.h>

#include "harness/suite.h"

typedef struct {
    const char *db_path;
    int threads;   /* threads per child; 0 = the suite's value, else the number of cores */
    FILE *log;     /* one line per finished model or case; NULL = silent */
    FILE *summary; /* the summary table at the end; NULL = none */
} RunOptions;

typedef struct {
    int64_t run_id;
    int n_cases, n_ok, n_unsupported, n_failed;
    double seconds;
} RunSummary;

/* Runs the suite. Bad input (corpus, sizes) is reported before the database is touched
   (CB_EINPUT / CB_EIO); store errors end the run with status "failed" (CB_EDB). Failing cases do
   not stop the run: they are counted in sum->n_failed. */
int runner_run(const Suite *s, const RunOptions *o, RunSummary *sum, char *err);

#endif
