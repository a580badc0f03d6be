/*
 * report_data.h — one run read from the database and folded into the grid every report format
 * draws from: series (a scheme, its eval variant, training context and configuration) × evaluation
 * context, each cell the mean over seeds. Internal to src/report.
 */
#ifndef CB_REPORT_DATA_H
#define CB_REPORT_DATA_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "report/report.h"

typedef struct {
    char label[320];     /* what charts and tables call it: "rope", "rope+yarn", "rope L=256" */
    char scheme[128];
    char variant[64];
    int train_ctx;
    char config[512];    /* model_json + train_json, to tell grid points of one scheme apart */
} ReportSeries;

/* One series at one context: perplexity cases pooled over seeds. NAN where nothing was measured. */
typedef struct {
    int n_ok, n_unsupported, n_failed; /* cases (one per seed) by status */
    double bpb;                        /* mean bits per byte of the ok cases */
    double bpb_lo, bpb_hi;             /* 95 % interval: over seeds (t), else the metric's own */
    double bpb_ratio;                  /* mean bpb / bpb at the training context */
    double seconds;                    /* mean wall seconds of the ok cases */
    double peak_rss;                   /* mean peak RSS (bytes) of the ok cases */
    char error[200];                   /* the first reason of a case that was not ok */
} ReportCell;

/* Passkey accuracy of one series at one depth and length (mean over the points that fall there). */
typedef struct {
    size_t series;
    double depth;   /* as named: 0.25, or 25 (percent); shown as written */
    int length;     /* bytes */
    double acc;     /* 0..1 */
    int n;
} PasskeyCell;

typedef struct {
    int64_t run_id;
    char suite[64], status[16], started[32], finished[32], git_rev[64], version[32];
    char host[256], cpu[256], compiler[128], blas[256], suite_path[256];
    int threads;

    ReportSeries *series;
    size_t n_series;
    int *contexts;       /* ascending, every context of a perplexity case */
    size_t n_contexts;
    ReportCell *cells;   /* (n_series, n_contexts), row-major */
    int train_ctx;       /* the training context when all series share one, else 0 */
    int n_cases, n_ok, n_unsupported, n_failed; /* perplexity cases of the run */

    PasskeyCell *passkey;
    size_t n_passkey;
} ReportData;

/* Reads run_id. CB_EINPUT if it does not exist; CB_EDB / CB_ENOMEM otherwise. Free with
   report_data_free (also after an error; no-op on a zeroed struct). */
int report_load(Store *st, int64_t run_id, ReportData *d, char *err);
void report_data_free(ReportData *d);

static inline ReportCell *report_cell(const ReportData *d, size_t series, size_t ctx) {
    return &d->cells[series * d->n_contexts + ctx];
}

/* Index of context n in d->contexts, or -1. */
int report_context_index(const ReportData *d, int n);

/* The text, md, csv and json formats (report_table.c) and the HTML page (report_html.c).
   ctx_index >= 0 restricts tables to that context and places the quality-versus-cost chart. */
int report_write_table(const ReportData *d, ReportFormat fmt, int ctx_index, FILE *out, char *err);
int report_write_html(const ReportData *d, int ctx_index, FILE *out, char *err);

#endif
