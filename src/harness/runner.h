/*
 * runner.h — runs a suite: trains each experiment's model in a child process, evaluates every case
 * in its own child, and commits each finished model and case to the store at once.
 * The parent process never starts OpenMP or BLAS threads; the children do all the computing.
 *
 * Interruption: during runner_run, SIGINT and SIGTERM kill the running child, keep every case
 * already committed, mark the run "interrupted" and return RUNNER_EINTERRUPTED. A run stopped in
 * any way (even SIGKILL of this process) is finished later with RunOptions.resume_run: only its
 * missing cases run, with the run's own thread count and the checkpoints it already trained, so
 * the finished run holds the numbers an uninterrupted run would have.
 *
 * Limits: every child (a model's training, each case) may get a wall-clock limit and a memory
 * limit (the address space it may add to what it has at fork, enforced with RLIMIT_AS); a child
 * past one is recorded with status "timeout" or "oom" and the limit in its error, and the run
 * goes on. The cases of a model whose training timed out, ran out of memory or diverged get the
 * model's status.
 */
#ifndef CB_RUNNER_H
#define CB_RUNNER_H

#include <stdint.h>
#include <stdio.h>

#include "harness/suite.h"

/* runner_run's status when SIGINT or SIGTERM stopped the run (RunSummary.interrupted says which). */
#define RUNNER_EINTERRUPTED (-64)

typedef struct {
    const char *db_path;
    int threads;   /* threads per child; 0 = the suite's value, else the number of cores */
    FILE *log;     /* one line per finished model or case; NULL = silent */
    FILE *summary; /* the summary table at the end; NULL = none */
    int64_t resume_run;     /* > 0: add the missing cases to this run instead of starting one; the
                               suite text must be the run's (CB_EINPUT otherwise), and threads, if
                               set, must equal the run's (0 takes the run's) */
    double time_limit;      /* wall seconds per child; > 0 overrides the suite's [limits] time */
    size_t memory_limit_mb; /* MiB per child; > 0 overrides the suite's [limits] memory */
} RunOptions;

typedef struct {
    int64_t run_id;
    int n_cases, n_ok, n_unsupported, n_failed; /* every case of the run, resumed ones included */
    int n_timeout, n_oom, n_diverged;           /* parts of n_failed */
    int n_earlier;                              /* cases a resumed run had already */
    int interrupted;                            /* SIGINT or SIGTERM if it stopped the run, else 0 */
    double seconds;
} RunSummary;

/* Runs the suite (or resumes o->resume_run). Bad input (corpus, sizes, a resume that does not
   match) is reported before the database is written (CB_EINPUT / CB_EIO / CB_EDB); store errors
   end the run with status "failed" (CB_EDB). Failing cases do not stop the run: they are counted
   in sum->n_failed. SIGINT/SIGTERM: RUNNER_EINTERRUPTED, err says how to resume. */
int runner_run(const Suite *s, const RunOptions *o, RunSummary *sum, char *err);

#endif
