/*
 * report_table.c — the report of one run as text for a terminal, markdown, CSV or JSON.
 *
 * Text and markdown show one series × context grid per quantity (bits per byte, its ratio to the
 * training context, and where measured wall seconds and peak RSS), then the reasons of the cases
 * that were not ok. CSV and JSON give the same cells as one row per series and context, for
 * programs. One list of quantities (QUANTITIES) drives the grids.
 */
#include <math.h>
#include <string.h>

#include "report/report_data.h"

typedef enum { Q_BPB, Q_RATIO, Q_SECONDS, Q_RSS } Quantity;

static const struct {
    Quantity q;
    const char *title;
    int always; /* shown even when no cell has a value */
} QUANTITIES[] = {
    {Q_BPB, "bits per byte on held-out text (lower is better)", 1},
    {Q_RATIO, "bpb ratio to the training context (1.00 = as good as at the training length)", 1},
    {Q_SECONDS, "wall seconds per case (evaluation child process)", 0},
    {Q_RSS, "peak RSS per case (MiB)", 0},
};

static double cell_value(const ReportCell *c, Quantity q) {
    switch (q) {
    case Q_BPB: return c->bpb;
    case Q_RATIO: return c->bpb_ratio;
    case Q_SECONDS: return c->seconds;
    case Q_RSS: return c->peak_rss / 1048576.0;
    }
    return NAN;
}

/* What a grid cell shows: the value, or why there is none. */
static void cell_text(const ReportCell *c, Quantity q, char *buf, size_t n) {
    double v = cell_value(c, q);
    if (!isnan(v)) {
        switch (q) {
        case Q_BPB:
            if (c->n_ok > 1 && !isnan(c->bpb_lo) && !isnan(c->bpb_hi))
                snprintf(buf, n, "%.3f±%.3f", v, (c->bpb_hi - c->bpb_lo) / 2);
            else
                snprintf(buf, n, "%.3f", v);
            break;
        case Q_RATIO: snprintf(buf, n, "%.2f", v); break;
        case Q_SECONDS: snprintf(buf, n, v < 10 ? "%.3f" : "%.1f", v); break;
        case Q_RSS: snprintf(buf, n, "%.1f", v); break;
        }
    } else if (c->n_unsupported && !c->n_ok) {
        snprintf(buf, n, "unsup");
    } else if (c->n_failed && !c->n_ok) {
        snprintf(buf, n, "failed");
    } else {
        snprintf(buf, n, "-");
    }
}

/* Display width of UTF-8 text (the ± sign is one column). */
static size_t width(const char *s) {
    size_t w = 0;
    for (; *s; s++) w += ((unsigned char)*s & 0xC0) != 0x80;
    return w;
}

static void pad(FILE *out, size_t n) {
    while (n--) fputc(' ', out);
}

static int any_value(const ReportData *d, Quantity q, int ctx_index) {
    for (size_t s = 0; s < d->n_series; s++)
        for (size_t c = 0; c < d->n_contexts; c++)
            if ((ctx_index < 0 || (int)c == ctx_index) && !isnan(cell_value(report_cell(d, s, c), q)))
                return 1;
    return 0;
}

static int max_seeds(const ReportData *d) {
    int m = 0;
    for (size_t i = 0; i < d->n_series * d->n_contexts; i++)
        if (d->cells[i].n_ok > m) m = d->cells[i].n_ok;
    return m;
}

static void write_grid(const ReportData *d, Quantity q, int md, int ctx_index, FILE *out) {
    size_t w0 = strlen("scheme");
    for (size_t s = 0; s < d->n_series; s++)
        if (width(d->series[s].label) > w0) w0 = width(d->series[s].label);
    size_t wc = 7;
    char buf[64];
    for (size_t s = 0; s < d->n_series; s++)
        for (size_t c = 0; c < d->n_contexts; c++) {
            cell_text(report_cell(d, s, c), q, buf, sizeof buf);
            if (width(buf) > wc) wc = width(buf);
        }
    /* header */
    fputs(md ? "| scheme" : "scheme", out);
    pad(out, w0 - strlen("scheme"));
    for (size_t c = 0; c < d->n_contexts; c++) {
        if (ctx_index >= 0 && (int)c != ctx_index) continue;
        snprintf(buf, sizeof buf, "%d", d->contexts[c]);
        fputs(md ? " | " : "  ", out);
        pad(out, wc - width(buf));
        fputs(buf, out);
    }
    fputs(md ? " |\n" : "\n", out);
    if (md) {
        fputs("| ", out);
        for (size_t i = 0; i < w0; i++) fputc('-', out);
        for (size_t c = 0; c < d->n_contexts; c++) {
            if (ctx_index >= 0 && (int)c != ctx_index) continue;
            fputs(" | ", out);
            for (size_t i = 1; i < wc; i++) fputc('-', out);
            fputc(':', out);
        }
        fputs(" |\n", out);
    }
    for (size_t s = 0; s < d->n_series; s++) {
        if (md) fputs("| ", out);
        fputs(d->series[s].label, out);
        pad(out, w0 - width(d->series[s].label));
        for (size_t c = 0; c < d->n_contexts; c++) {
            if (ctx_index >= 0 && (int)c != ctx_index) continue;
            cell_text(report_cell(d, s, c), q, buf, sizeof buf);
            fputs(md ? " | " : "  ", out);
            pad(out, wc - width(buf));
            fputs(buf, out);
        }
        fputs(md ? " |\n" : "\n", out);
    }
}

static void write_header(const ReportData *d, int md, FILE *out) {
    fprintf(out, "%srun %lld (%s): %s, started %s%s%s, git %s\n", md ? "# ctxbench report: " : "",
            (long long)d->run_id, d->suite, d->status, d->started, d->finished[0] ? ", finished " : "",
            d->finished, d->git_rev[0] ? d->git_rev : "unknown");
    if (md) fputc('\n', out);
    fprintf(out, "%d perplexity cases: %d ok, %d unsupported, %d failed", d->n_cases, d->n_ok,
            d->n_unsupported, d->n_failed);
    if (d->train_ctx) fprintf(out, "; training context %d bytes", d->train_ctx);
    int seeds = max_seeds(d);
    if (seeds > 1) fprintf(out, "; means over up to %d seeds (± = half of the 95%% interval)", seeds);
    fputs(md ? "\n\n" : "\n", out);
}

static void write_reasons(const ReportData *d, int md, int ctx_index, FILE *out) {
    int first = 1;
    for (size_t s = 0; s < d->n_series; s++)
        for (size_t c = 0; c < d->n_contexts; c++) {
            if (ctx_index >= 0 && (int)c != ctx_index) continue;
            const ReportCell *cell = report_cell(d, s, c);
            if (!cell->n_unsupported && !cell->n_failed) continue;
            if (first) fputs(md ? "\n## Cases that were not ok\n\n" : "\ncases that were not ok\n", out);
            first = 0;
            fprintf(out, "%s%s at %d: %s%s%s\n", md ? "- " : "  ", d->series[s].label, d->contexts[c],
                    cell->n_failed ? "failed" : "unsupported", cell->error[0] ? ": " : "",
                    cell->error);
        }
}

static void write_grids(const ReportData *d, int md, int ctx_index, FILE *out) {
    write_header(d, md, out);
    if (!d->n_series || !d->n_contexts) {
        fputs("this run has no perplexity case\n", out);
        return;
    }
    for (size_t i = 0; i < sizeof QUANTITIES / sizeof QUANTITIES[0]; i++) {
        if (!QUANTITIES[i].always && !any_value(d, QUANTITIES[i].q, ctx_index)) continue;
        if (md) fprintf(out, "%s## %s\n\n", i ? "\n" : "", QUANTITIES[i].title);
        else fprintf(out, "\n%s\n", QUANTITIES[i].title);
        write_grid(d, QUANTITIES[i].q, md, ctx_index, out);
    }
    write_reasons(d, md, ctx_index, out);
}

/* ---- CSV and JSON ----------------------------------------------------------------------------- */

static void csv_field(FILE *out, const char *v) {
    if (!strpbrk(v, ",\"\n\r")) {
        fputs(v, out);
        return;
    }
    fputc('"', out);
    for (; *v; v++) {
        if (*v == '"') fputc('"', out);
        fputc(*v, out);
    }
    fputc('"', out);
}

static void csv_num(FILE *out, double v) {
    fputc(',', out);
    if (!isnan(v)) fprintf(out, "%.10g", v);
}

static const char *cell_status(const ReportCell *c) {
    return c->n_ok ? "ok" : c->n_failed ? "failed" : c->n_unsupported ? "unsupported" : NULL;
}

static void write_csv(const ReportData *d, int ctx_index, FILE *out) {
    fputs("run_id,suite,series,scheme,variant,train_ctx,context,status,seeds,bpb,bpb_lo,bpb_hi,"
          "bpb_ratio,wall_seconds,peak_rss_bytes,error\n", out);
    for (size_t s = 0; s < d->n_series; s++)
        for (size_t c = 0; c < d->n_contexts; c++) {
            if (ctx_index >= 0 && (int)c != ctx_index) continue;
            const ReportCell *cell = report_cell(d, s, c);
            const ReportSeries *se = &d->series[s];
            if (!cell_status(cell)) continue;
            fprintf(out, "%lld,", (long long)d->run_id);
            csv_field(out, d->suite);
            fputc(',', out);
            csv_field(out, se->label);
            fputc(',', out);
            csv_field(out, se->scheme);
            fputc(',', out);
            csv_field(out, se->variant);
            fprintf(out, ",%d,%d,%s,%d", se->train_ctx, d->contexts[c], cell_status(cell), cell->n_ok);
            csv_num(out, cell->bpb);
            csv_num(out, cell->bpb_lo);
            csv_num(out, cell->bpb_hi);
            csv_num(out, cell->bpb_ratio);
            csv_num(out, cell->seconds);
            csv_num(out, cell->peak_rss);
            fputc(',', out);
            csv_field(out, cell->error);
            fputc('\n', out);
        }
}

static void json_str(FILE *out, const char *v) {
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
        if (*p == '"' || *p == '\\') fprintf(out, "\\%c", *p);
        else if (*p == '\n') fputs("\\n", out);
        else if (*p < 0x20) fprintf(out, "\\u%04x", *p);
        else fputc(*p, out);
    }
    fputc('"', out);
}

static void json_num(FILE *out, const char *key, double v) {
    fprintf(out, ", \"%s\": ", key);
    if (isnan(v) || isinf(v)) fputs("null", out);
    else fprintf(out, "%.10g", v);
}

static void json_key_str(FILE *out, const char *key, const char *v, int first) {
    fprintf(out, "%s\"%s\": ", first ? "" : ", ", key);
    json_str(out, v);
}

static void write_json(const ReportData *d, int ctx_index, FILE *out) {
    fprintf(out, "{\n  \"run\": {\"id\": %lld, ", (long long)d->run_id);
    json_key_str(out, "suite", d->suite, 1);
    json_key_str(out, "status", d->status, 0);
    json_key_str(out, "started_at", d->started, 0);
    json_key_str(out, "finished_at", d->finished, 0);
    json_key_str(out, "git_rev", d->git_rev, 0);
    json_key_str(out, "host", d->host, 0);
    json_key_str(out, "cpu", d->cpu, 0);
    json_key_str(out, "compiler", d->compiler, 0);
    json_key_str(out, "blas", d->blas, 0);
    fprintf(out, ", \"threads\": %d, \"train_ctx\": %d, \"cases\": %d, \"ok\": %d, "
                 "\"unsupported\": %d, \"failed\": %d},\n",
            d->threads, d->train_ctx, d->n_cases, d->n_ok, d->n_unsupported, d->n_failed);
    fputs("  \"contexts\": [", out);
    for (size_t c = 0; c < d->n_contexts; c++)
        if (ctx_index < 0 || (int)c == ctx_index)
            fprintf(out, "%s%d", c && ctx_index < 0 ? ", " : "", d->contexts[c]);
    fputs("],\n  \"rows\": [", out);
    int first = 1;
    for (size_t s = 0; s < d->n_series; s++)
        for (size_t c = 0; c < d->n_contexts; c++) {
            if (ctx_index >= 0 && (int)c != ctx_index) continue;
            const ReportCell *cell = report_cell(d, s, c);
            const ReportSeries *se = &d->series[s];
            if (!cell_status(cell)) continue;
            fputs(first ? "\n    {" : ",\n    {", out);
            first = 0;
            json_key_str(out, "series", se->label, 1);
            json_key_str(out, "scheme", se->scheme, 0);
            json_key_str(out, "variant", se->variant, 0);
            fprintf(out, ", \"train_ctx\": %d, \"context\": %d", se->train_ctx, d->contexts[c]);
            json_key_str(out, "status", cell_status(cell), 0);
            fprintf(out, ", \"seeds\": %d", cell->n_ok);
            json_num(out, "bpb", cell->bpb);
            json_num(out, "bpb_lo", cell->bpb_lo);
            json_num(out, "bpb_hi", cell->bpb_hi);
            json_num(out, "bpb_ratio", cell->bpb_ratio);
            json_num(out, "wall_seconds", cell->seconds);
            json_num(out, "peak_rss", cell->peak_rss);
            if (cell->error[0]) json_key_str(out, "error", cell->error, 0);
            fputc('}', out);
        }
    fputs(first ? "],\n  \"passkey\": [" : "\n  ],\n  \"passkey\": [", out);
    for (size_t i = 0; i < d->n_passkey; i++) {
        const PasskeyCell *p = &d->passkey[i];
        fputs(i ? ",\n    {" : "\n    {", out);
        json_key_str(out, "series", d->series[p->series].label, 1);
        json_num(out, "depth", p->depth);
        fprintf(out, ", \"length\": %d", p->length);
        json_num(out, "accuracy", p->acc);
        fputc('}', out);
    }
    fputs(d->n_passkey ? "\n  ]\n}\n" : "]\n}\n", out);
}

int report_write_table(const ReportData *d, ReportFormat fmt, int ctx_index, FILE *out, char *err) {
    switch (fmt) {
    case REPORT_TEXT: write_grids(d, 0, ctx_index, out); break;
    case REPORT_MD: write_grids(d, 1, ctx_index, out); break;
    case REPORT_CSV: write_csv(d, ctx_index, out); break;
    case REPORT_JSON: write_json(d, ctx_index, out); break;
    default: return cb_error(err, CB_EINPUT, "report: format %d is not a table format", (int)fmt);
    }
    return CB_OK;
}
