/*
 * child.h — running one unit of work in a child process and bringing its results back.
 *
 * The parent never computes: it forks, the child sets its thread count, does the work and writes
 * a result message to a pipe; the parent reads the message, reaps the child with wait4 (which
 * gives its CPU time and peak RSS) and turns a crash into a recorded failure with its signal.
 *
 * Message: text lines, numbers printed with %.17g so they round-trip exactly:
 *   S status        E error text     K key value (scalar)
 *   M name value count unit mode stride     C name x y     B nbytes\n<raw bytes>
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
void msg_metric(ChildMsg *m, const char *name, double value, int64_t count, const char *unit,
                const char *mode, int stride);
void msg_curve(ChildMsg *m, const char *name, double x, double y);
void msg_blob(ChildMsg *m, const void *data, size_t n);

/* What the parent got back. */
typedef struct {
    char status[32];   /* "ok", "unsupported", "failed", "diverged" */
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

/* Forks, runs work(arg) in the child with `threads` OpenMP/BLAS threads, collects the result.
   A child that crashes or exits without a message gives status "failed" with the reason.
   Returns CB_OK, or CB_EIO/CB_ENOMEM if the child could not be started or read. */
int child_run(ChildWork work, void *arg, int threads, ChildResult *res, char *err);
void child_result_free(ChildResult *res);
double child_scalar(const ChildResult *res, const char *key, double def);

#endif
