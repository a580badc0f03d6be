/*
 * progress.h — the progress line of a run: cases done and total, what runs now (scheme, context,
 * phase, training step and loss), elapsed time and an ETA, redrawn in place on stderr.
 *
 * It shows only when stderr is a terminal: redirected to a file or a pipe, a run writes nothing
 * but its result lines. Colour follows NO_COLOR (https://no-color.org) and TERM=dumb.
 * A forked child may redraw the line with its copy of the Progress (training steps).
 */
#ifndef CB_PROGRESS_H
#define CB_PROGRESS_H

#include <stddef.h>
#include <stdio.h>

typedef struct {
    FILE *out;      /* stderr, or NULL when disabled */
    int color;      /* ANSI colours allowed */
    double t0;      /* start, CLOCK_MONOTONIC seconds */
    size_t done, total;
    double last;    /* time of the last redraw (rate limit) */
} Progress;

/* Enables the line if `out` is a terminal. total = cases of the run. */
void progress_init(Progress *p, FILE *out, size_t total);
/* Redraws the line: "[done/total] TEXT  elapsed M:SS  ETA M:SS". force = 0 limits redraws to
   a few per second. */
void progress_show(Progress *p, int force, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Erases the line so that a result line can be printed. */
void progress_clear(Progress *p);
/* A status word ("ok", "failed", ...) in its colour when colours are on, else as is. */
const char *progress_status(const Progress *p, const char *status, char *buf, size_t n);

#endif
