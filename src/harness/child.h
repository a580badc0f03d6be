/*
 * child.h — running one unit of work in a child process and bringing its results back.
 *
 * The parent never computes: it forks, the child sets its thread count, does the work and writes
 * a result message to a pipe; the parent reads the message, reaps the child with wait4 (which
 * gives its CPU time and peak RSS) and turns a crash into a recorded failure with its signal.
 *
 * Limits: a child may get a wall-clock limit (the parent waits on the pipe with a deadline and
 * kills the child when it passes: status "timeout") and a memory limit (RLIMIT_AS in the child,
 * set to the address space it has right after fork plus the limit, so that an allocation past it
 * fails: status "oom", reported by the work function for CB_ENOMEM, or inferred when the child
 * dies without a result under a memory limit). The child also dies with its parent
 * (PR_SET_PDEATHSIG), so a killed runner leaves no orphan computing.
 *
 * Interruption: between child_catch_signals() and child_release_signals(), SIGINT and SIGTERM are
 * recorded (child_stop_signal()) and the running child, if any, is killed at once; the caller
 * decides what to keep.
 *
 * Message: text lines, numbers printed with %.17g so they round-trip exactly:
 *   S status        E error text     K key value (scalar)
 *   M name value count unit mode stride lo hi     C name x y     B nbytes\n<raw bytes>
 */
#ifndef CB_CHILD_H
#define CB_CHILD_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"
#include "store/store.h"

#define CHILD_MAX_METRICS 64
#define CHILD_MAX_CURVE 4096

typedef struct {
    char *buf;
    size_t len, cap;
} ChildMsg;

void msg_printf(ChildMsg *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void msg_status(ChildMsg *m, const char *status, const char *error);
void msg_scalar(ChildMsg *m, const char *key, double value);
/* A metric with its interval [lo, hi] (NaN bounds for none). */
void msg_metric_interval(ChildMsg *m, const char *name, double value, double lo, double hi, int64_t count,
                         const char *unit, const char *mode, int stride);
void msg_metric(ChildMsg *m, const char *name, double value, int64_t count, const char *unit,
                const char *mode, int stride);
void msg_curve(ChildMsg *m, const char *name, double x, double y);
void msg_blob(ChildMsg *m, const void *data, size_t n);

/* What the parent got back. */
typedef struct {
    char status[32];   /* "ok", "unsupported", "failed", "diverged", "timeout", "oom", and
                          "interrupted" (killed because of child_stop_signal(): never stored) */
    char error[CB_ERR_LEN];
    MetricRecord metrics[CHILD_MAX_METRICS];
    char metric_names[CHILD_MAX_METRICS][48];
    char metric_units[CHILD_MAX_METRICS][24];
    char metric_modes[CHILD_MAX_METRICS][24];
    size_t n_metrics;
    CurveRecord *curve; /* owned */
    char (*curve_names)[32];
    size_t n_curve;
    char scalar_keys[32][32];
    double scalars[32];
    int n_scalars;
    uint8_t *blob;      /* owned */
    size_t blob_size;
    /* Measured by the parent. */
    double wall_seconds, cpu_seconds;
    int64_t peak_rss;
} ChildResult;

/* The work function runs in the child; it fills msg. Its return value is the exit code. */
typedef int (*ChildWork)(void *arg, ChildMsg *msg);

/* Limits on one child; zero fields mean none. */
typedef struct {
    double seconds;       /* wall-clock time from fork to exit */
    size_t memory_bytes;  /* address space the child may add to what it has after fork */
} ChildLimits;

/* Forks, runs work(arg) in the child with `threads` OpenMP/BLAS threads, collects the result.
   A child that crashes or exits without a message gives status "failed" with the reason.
   Returns CB_OK, or CB_EIO/CB_ENOMEM if the child could not be started or read. */
int child_run(ChildWork work, void *arg, int threads, ChildResult *res, char *err);
/* The same under limits (NULL = none): "timeout" and "oom" results name the limit. */
int child_run_limited(ChildWork work, void *arg, int threads, const ChildLimits *lim, ChildResult *res,
                      char *err);

/* SIGINT/SIGTERM handling for a process that runs children: catch records the signal and kills
   the running child; release restores the previous handlers. Not nested. */
void child_catch_signals(void);
void child_release_signals(void);
/* The signal caught since child_catch_signals(), 0 if none. */
int child_stop_signal(void);
void child_result_free(ChildResult *res);
double child_scalar(const ChildResult *res, const char *key, double def);

#endif
