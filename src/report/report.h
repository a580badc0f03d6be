/*
 * report.h — what one run measured, as a table (text, markdown, CSV, JSON) or as one
 * self-contained HTML page with inline SVG charts; and the comparison of two runs.
 *
 * Everything is read from the results database through the Store's connection with prepared
 * statements; nothing here writes to it. Perplexity cases give the bits-per-byte, ratio, time and
 * memory grid; curves (or metrics) named "passkey...depth=D" give the passkey heatmaps.
 */
#ifndef CB_REPORT_H
#define CB_REPORT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "store/store.h"

typedef enum { REPORT_TEXT, REPORT_MD, REPORT_CSV, REPORT_JSON, REPORT_HTML } ReportFormat;

/* "text", "md", "csv", "json", "html" -> *fmt; CB_EINPUT for anything else. */
int report_parse_format(const char *name, ReportFormat *fmt, char *err);

/* The newest run (highest id, any status). CB_EINPUT when the database holds no run. */
int report_newest_run(Store *st, int64_t *run_id, char *err);

/* Writes the report of run_id to out. context > 0 picks one evaluation context: the HTML report's
   quality-versus-cost chart is drawn there (default: the largest context of the run), and the
   other formats show only that context. CB_EINPUT if the run, or the context in it, does not
   exist. */
int report_write(Store *st, int64_t run_id, ReportFormat fmt, int context, FILE *out, char *err);

/* ---- comparison ------------------------------------------------------------------------------- */

#define COMPARE_DEFAULT_THRESHOLD 0.02

typedef struct {
    double threshold;  /* relative change that counts (0.02 = 2 %); < 0 = the suite's or default */
    int markdown;      /* 1: a markdown table, 0: an aligned text table */
} CompareOptions;

typedef struct {
    double threshold;  /* the threshold used */
    int n_matched;     /* metrics found in both runs */
    int n_changed;     /* of those, the ones whose value moved at all */
    int n_regressions; /* worse past the threshold (and past 2 standard errors with seeds) */
    int n_improvements;
    int n_only_base, n_only_new; /* metrics found in one run only */
    int n_lost;        /* only in BASE, and NEW ran that case without success: also regressions */
} CompareResult;

/* Compares NEW with BASE metric by metric, matched on scheme, variant, task, context, training
   context, metric name, mode and stride (seeds pooled), prints the changes to out (NULL = silent)
   and fills res. Lower is better for names containing bpb, ppl, nats, loss, seconds or bytes;
   higher for names containing acc; other names are listed but never flagged. CB_EINPUT if either
   run does not exist. A regression is not an error: it is counted in res->n_regressions. */
int compare_runs(Store *st, int64_t base, int64_t new_run, const CompareOptions *o, FILE *out,
                 CompareResult *res, char *err);

/* Reads `threshold` from the [compare] section of a suite's text. *found = 0 when the text has no
   such key; CB_EINPUT when the value is not a number in [0, 10]. */
int compare_suite_threshold(const char *suite_text, double *threshold, int *found, char *err);

/* The two newest complete runs of a suite name: *base older, *new_run newer. CB_EINPUT when
   fewer than two exist. */
int compare_last_two(Store *st, const char *suite_name, int64_t *base, int64_t *new_run, char *err);

/* The newest complete run of suite_name older than run_id; *prev = 0 when there is none. */
int compare_previous_run(Store *st, const char *suite_name, int64_t run_id, int64_t *prev,
                         char *err);

#endif
