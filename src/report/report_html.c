/*
 * report_html.c — the report of one run as ONE self-contained HTML page: inline CSS and inline SVG
 * charts, no script, no font, image or stylesheet from elsewhere, so it opens offline, mails as one
 * file and renders the same in any browser.
 *
 * Charts (each an <svg id="chart-...">, every one with a title, axis labels with units and a
 * legend or direct labels):
 *   chart-bpb        bits per byte against context per series; log2 context axis, the training
 *                    length as a dashed vertical line, 95 % interval bars where they exist
 *   chart-passkey-K  passkey accuracy heatmap (depth × length) of series K, when the run has any
 *   chart-time       wall seconds per case against context, log-log
 *   chart-memory     peak RSS per case against context, log-log
 *   chart-cost       bits per byte against seconds at one context, one labelled point per series
 * The tables under the charts repeat the numbers.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "report/report_data.h"

/* Distinct on white and in grey print order; shapes repeat every four series. */
static const char *const PALETTE[] = {"#1d4ed8", "#dc2626", "#059669", "#9333ea", "#ea7a00",
                                      "#0e7490", "#a16207", "#db2777", "#475569", "#65a30d"};
#define N_PALETTE (sizeof PALETTE / sizeof PALETTE[0])

static const char *color(size_t series) { return PALETTE[series % N_PALETTE]; }

static void esc(FILE *out, const char *s) {
    for (; *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", out); break;
        case '<': fputs("&lt;", out); break;
        case '>': fputs("&gt;", out); break;
        case '"': fputs("&quot;", out); break;
        default: fputc(*s, out);
        }
    }
}

/* ---- axes and scales -------------------------------------------------------------------------- */

#define MAX_TICKS 40

typedef struct {
    double v[MAX_TICKS];
    int n;
    double step; /* linear ticks: the spacing, which sets the decimals of the labels; 0 = log */
} Ticks;

typedef struct {
    FILE *out;
    double left, right, top, bottom; /* plot area in pixels */
    double x0, x1, y0, y1;           /* data range, in log10 units on a log axis */
    int logx, logy;
} Plot;

static double px(const Plot *p, double x) {
    double v = p->logx ? log10(x) : x;
    return p->left + (v - p->x0) / (p->x1 - p->x0) * (p->right - p->left);
}

static double py(const Plot *p, double y) {
    double v = p->logy ? log10(y) : y;
    return p->bottom - (v - p->y0) / (p->y1 - p->y0) * (p->bottom - p->top);
}

/* About `want` round ticks (1, 2, 2.5, 5 × 10^k apart) covering [lo, hi]; widens lo and hi to
   the outer ticks. */
static void ticks_linear(double *lo, double *hi, int want, Ticks *t) {
    if (!(*hi > *lo)) {
        double d = fabs(*lo) > 0 ? fabs(*lo) * 0.1 : 1;
        *lo -= d;
        *hi += d;
    }
    double raw = (*hi - *lo) / want, mag = pow(10, floor(log10(raw))), step = mag;
    static const double mult[] = {1, 2, 2.5, 5, 10};
    for (size_t i = 0; i < sizeof mult / sizeof mult[0]; i++)
        if (mult[i] * mag >= raw) {
            step = mult[i] * mag;
            break;
        }
    *lo = floor(*lo / step + 1e-9) * step;
    *hi = ceil(*hi / step - 1e-9) * step;
    t->n = 0;
    t->step = step;
    for (double v = *lo; v <= *hi + step * 1e-6 && t->n < MAX_TICKS; v += step)
        t->v[t->n++] = fabs(v) < step * 1e-9 ? 0 : v;
}

/* Ticks for a log axis over [lo, hi] (data units, > 0): powers of ten, or 1-2-5 steps when the
   range is under two decades, or round linear steps when even those give fewer than three. */
static void ticks_log(double lo, double hi, Ticks *t) {
    t->n = 0;
    t->step = 0;
    int k0 = (int)floor(log10(lo)), k1 = (int)ceil(log10(hi));
    int fine = log10(hi / lo) < 2.5;
    for (int k = k0; k <= k1 && t->n < MAX_TICKS; k++) {
        static const double m[] = {1, 2, 5};
        for (int i = 0; i < (fine ? 3 : 1); i++) {
            double v = m[i] * pow(10, k);
            if (v >= lo * 0.999 && v <= hi * 1.001 && t->n < MAX_TICKS) t->v[t->n++] = v;
        }
    }
    if (t->n < 3) {
        double a = lo, b = hi;
        Ticks lin;
        ticks_linear(&a, &b, 4, &lin);
        t->n = 0;
        t->step = lin.step;
        for (int i = 0; i < lin.n; i++)
            if (lin.v[i] > 0 && lin.v[i] >= lo * 0.999 && lin.v[i] <= hi * 1.001) t->v[t->n++] = lin.v[i];
    }
}

/* A tick label: integers as written (with K for whole kibibytes of context), else 3 digits. */
static void fmt_num(char *buf, size_t n, double v, int context) {
    if (context && v >= 8192 && fmod(v, 1024) == 0) snprintf(buf, n, "%gK", v / 1024);
    else if (v == floor(v) && fabs(v) < 1e7) snprintf(buf, n, "%.0f", v);
    else if (fabs(v) >= 1e4 || (fabs(v) < 1e-3 && v != 0)) snprintf(buf, n, "%.2g", v);
    else snprintf(buf, n, "%.3g", v);
}

/* A tick label with just the decimals its spacing needs (5.915, 5.920 for steps of 0.005). */
static void fmt_tick(char *buf, size_t n, double v, const Ticks *t, int context) {
    if (!(t->step > 0) || context) {
        fmt_num(buf, n, v, context);
        return;
    }
    int dec = 0;
    while (dec < 8 && fabs(t->step * pow(10, dec) - round(t->step * pow(10, dec))) > 1e-6) dec++;
    snprintf(buf, n, "%.*f", dec, v);
}

static void svg_begin(FILE *out, const char *id, int w, int h, const char *title) {
    fprintf(out, "<svg id=\"%s\" xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
                 "viewBox=\"0 0 %d %d\" role=\"img\" aria-labelledby=\"%s-title\">\n", id, w, h, w, h, id);
    fprintf(out, "<title id=\"%s-title\">", id);
    esc(out, title);
    fputs("</title>\n", out);
    fprintf(out, "<rect width=\"%d\" height=\"%d\" fill=\"#fff\"/>\n", w, h);
    fprintf(out, "<text x=\"%d\" y=\"22\" class=\"ct\">", 16);
    esc(out, title);
    fputs("</text>\n", out);
}

/* Grid, frame, tick labels and axis titles (with units). */
static void plot_axes(const Plot *p, const Ticks *xt, const Ticks *yt, const char *xlabel,
                      const char *ylabel, int x_context) {
    FILE *out = p->out;
    char buf[32];
    fputs("<g class=\"grid\">\n", out);
    for (int i = 0; i < xt->n; i++)
        fprintf(out, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", px(p, xt->v[i]),
                p->top, px(p, xt->v[i]), p->bottom);
    for (int i = 0; i < yt->n; i++)
        fprintf(out, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", p->left,
                py(p, yt->v[i]), p->right, py(p, yt->v[i]));
    fputs("</g>\n", out);
    fprintf(out, "<rect class=\"frame\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"/>\n",
            p->left, p->top, p->right - p->left, p->bottom - p->top);
    for (int i = 0; i < xt->n; i++) {
        fmt_tick(buf, sizeof buf, xt->v[i], xt, x_context);
        fprintf(out, "<text class=\"tick\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n",
                px(p, xt->v[i]), p->bottom + 17, buf);
    }
    for (int i = 0; i < yt->n; i++) {
        fmt_tick(buf, sizeof buf, yt->v[i], yt, 0);
        fprintf(out, "<text class=\"tick\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n",
                p->left - 7, py(p, yt->v[i]) + 4, buf);
    }
    fprintf(out, "<text class=\"axis\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">",
            (p->left + p->right) / 2, p->bottom + 40);
    esc(out, xlabel);
    fputs("</text>\n", out);
    double cy = (p->top + p->bottom) / 2;
    fprintf(out, "<text class=\"axis\" x=\"18\" y=\"%.1f\" text-anchor=\"middle\" "
                 "transform=\"rotate(-90 18 %.1f)\">", cy, cy);
    esc(out, ylabel);
    fputs("</text>\n", out);
}

/* A marker of the series' shape at (x, y) pixels. */
static void marker(FILE *out, size_t series, double x, double y, double r) {
    const char *c = color(series);
    switch (series % 4) { /* with ten colours, (colour, shape) repeats after 20 series */
    case 0:
        fprintf(out, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%.1f\" fill=\"%s\"/>\n", x, y, r, c);
        break;
    case 1:
        fprintf(out, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"/>\n",
                x - r * 0.9, y - r * 0.9, r * 1.8, r * 1.8, c);
        break;
    case 2:
        fprintf(out, "<path d=\"M%.1f %.1fL%.1f %.1fL%.1f %.1fZ\" fill=\"%s\"/>\n", x, y - r * 1.2,
                x + r * 1.1, y + r * 0.8, x - r * 1.1, y + r * 0.8, c);
        break;
    default:
        fprintf(out, "<path d=\"M%.1f %.1fL%.1f %.1fL%.1f %.1fL%.1f %.1fZ\" fill=\"%s\"/>\n", x,
                y - r * 1.25, x + r * 1.25, y, x, y + r * 1.25, x - r * 1.25, y, c);
    }
}

/* The legend, one line per series in `show`, from (x, y) downwards. */
static void legend(FILE *out, const ReportData *d, const int *show, double x, double y) {
    fprintf(out, "<g class=\"legend\">\n<text class=\"axis\" x=\"%.1f\" y=\"%.1f\">scheme</text>\n", x, y);
    y += 20;
    for (size_t s = 0; s < d->n_series; s++) {
        if (!show[s]) continue;
        fprintf(out, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
                     "stroke-width=\"2.5\"/>\n", x, y - 4, x + 26, y - 4, color(s));
        marker(out, s, x + 13, y - 4, 4);
        fprintf(out, "<text class=\"tick\" x=\"%.1f\" y=\"%.1f\">", x + 34, y);
        esc(out, d->series[s].label);
        fputs("</text>\n", out);
        y += 19;
    }
    fputs("</g>\n", out);
}

/* ---- quantity-against-context charts ---------------------------------------------------------- */

typedef enum { V_BPB, V_SECONDS, V_MIB } Value;

static double value_of(const ReportCell *c, Value v, double *lo, double *hi) {
    *lo = *hi = NAN;
    switch (v) {
    case V_BPB:
        *lo = c->bpb_lo;
        *hi = c->bpb_hi;
        return c->bpb;
    case V_SECONDS: return c->seconds > 0 ? c->seconds : NAN;
    case V_MIB: return c->peak_rss > 0 ? c->peak_rss / 1048576.0 : NAN;
    }
    return NAN;
}

/* Draws one of the against-context charts; returns 0 when there was nothing to draw. */
static int chart_vs_context(const ReportData *d, FILE *out, const char *id, int w, int h,
                            const char *title, Value v, const char *ylabel) {
    int logy = v != V_BPB;
    double ymin = INFINITY, ymax = -INFINITY, lo, hi;
    int *show = calloc(d->n_series ? d->n_series : 1, sizeof *show);
    if (!show) return 0;
    int any = 0;
    for (size_t s = 0; s < d->n_series; s++)
        for (size_t c = 0; c < d->n_contexts; c++) {
            double y = value_of(report_cell(d, s, c), v, &lo, &hi);
            if (isnan(y)) continue;
            show[s] = any = 1;
            ymin = fmin(ymin, isnan(lo) ? y : fmin(y, lo));
            ymax = fmax(ymax, isnan(hi) ? y : fmax(y, hi));
        }
    if (!any) {
        free(show);
        return 0;
    }
    double legend_w = 0;
    for (size_t s = 0; s < d->n_series; s++)
        if (show[s]) legend_w = fmax(legend_w, 7.2 * (double)strlen(d->series[s].label) + 50);
    legend_w = fmin(fmax(legend_w, 110), 300);
    Plot p = {.out = out, .left = 70, .right = w - legend_w - 20, .top = 40, .bottom = h - 55,
              .logx = 1, .logy = logy};
    Ticks xt = {.n = 0, .step = 0}, yt;
    for (size_t c = 0; c < d->n_contexts && xt.n < MAX_TICKS; c++) xt.v[xt.n++] = d->contexts[c];
    double cmin = d->contexts[0], cmax = d->contexts[d->n_contexts - 1];
    double span = cmax > cmin ? log10(cmax / cmin) : 1;
    p.x0 = log10(cmin) - 0.04 * span;
    p.x1 = log10(cmax) + 0.04 * span;
    if (logy) {
        if (ymax <= ymin * 1.0001) ymin *= 0.8, ymax *= 1.25;
        double ls = log10(ymax / ymin);
        p.y0 = log10(ymin) - 0.06 * ls;
        p.y1 = log10(ymax) + 0.06 * ls;
        ticks_log(pow(10, p.y0), pow(10, p.y1), &yt);
    } else {
        double pad = (ymax - ymin) * 0.05;
        double a = ymin - pad, b = ymax + pad;
        ticks_linear(&a, &b, 6, &yt);
        p.y0 = a;
        p.y1 = b;
    }
    svg_begin(out, id, w, h, title);
    plot_axes(&p, &xt, &yt, "evaluation context n (bytes, log scale)", ylabel, 1);
    /* training length(s): a dashed vertical line, labelled */
    for (size_t s = 0; s < d->n_series; s++) {
        int L = d->series[s].train_ctx, seen = 0;
        for (size_t k = 0; k < s; k++) seen |= d->series[k].train_ctx == L;
        if (seen || L <= 0 || L < cmin || L > cmax) continue;
        double x = px(&p, L);
        fprintf(out, "<line class=\"train\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", x,
                p.top, x, p.bottom);
        fprintf(out, "<text class=\"note\" x=\"%.1f\" y=\"%.1f\">training length L = %d</text>\n",
                x + 5, p.top + 14, L);
    }
    /* one polyline per series (broken where a context has no value), interval bars, markers */
    for (size_t s = 0; s < d->n_series; s++) {
        if (!show[s]) continue;
        fprintf(out, "<g class=\"series\" data-series=\"%zu\">\n", s);
        int pen = 0;
        fprintf(out, "<path fill=\"none\" stroke=\"%s\" stroke-width=\"2.2\" d=\"", color(s));
        for (size_t c = 0; c < d->n_contexts; c++) {
            double y = value_of(report_cell(d, s, c), v, &lo, &hi);
            if (isnan(y)) {
                pen = 0;
                continue;
            }
            fprintf(out, "%s%.1f %.1f", pen ? "L" : "M", px(&p, d->contexts[c]), py(&p, y));
            pen = 1;
        }
        fputs("\"/>\n", out);
        for (size_t c = 0; c < d->n_contexts; c++) {
            double y = value_of(report_cell(d, s, c), v, &lo, &hi);
            if (isnan(y)) continue;
            double x = px(&p, d->contexts[c]);
            if (!isnan(lo) && !isnan(hi))
                fprintf(out, "<path stroke=\"%s\" stroke-width=\"1.5\" d=\"M%.1f %.1fV%.1fM%.1f %.1fH%.1f"
                             "M%.1f %.1fH%.1f\"/>\n", color(s), x, py(&p, lo), py(&p, hi), x - 4,
                        py(&p, lo), x + 4, x - 4, py(&p, hi), x + 4);
            marker(out, s, x, py(&p, y), 4);
        }
        fputs("</g>\n", out);
    }
    legend(out, d, show, p.right + 20, p.top + 8);
    fputs("</svg>\n", out);
    free(show);
    return 1;
}

/* ---- passkey heatmaps ------------------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Red (0) through yellow (0.5) to green (1). */
static void acc_color(double a, char *buf, size_t n) {
    static const double stops[3][3] = {{215, 48, 39}, {254, 224, 139}, {26, 152, 80}};
    a = fmin(fmax(a, 0), 1);
    int i = a < 0.5 ? 0 : 1;
    double t = a < 0.5 ? a / 0.5 : (a - 0.5) / 0.5;
    snprintf(buf, n, "#%02x%02x%02x", (int)lround(stops[i][0] + t * (stops[i + 1][0] - stops[i][0])),
             (int)lround(stops[i][1] + t * (stops[i + 1][1] - stops[i][1])),
             (int)lround(stops[i][2] + t * (stops[i + 1][2] - stops[i][2])));
}

static int sorted_unique(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    int k = 0;
    for (int i = 0; i < n; i++)
        if (!k || v[k - 1] != v[i]) v[k++] = v[i];
    return k;
}

static void heatmap(const ReportData *d, size_t s, FILE *out) {
    int n = 0;
    double *depths = malloc(d->n_passkey * sizeof *depths);
    double *lengths = malloc(d->n_passkey * sizeof *lengths);
    if (!depths || !lengths) goto done;
    for (size_t i = 0; i < d->n_passkey; i++)
        if (d->passkey[i].series == s) {
            depths[n] = d->passkey[i].depth;
            lengths[n] = d->passkey[i].length;
            n++;
        }
    int nd = sorted_unique(depths, n), nl = sorted_unique(lengths, n);
    const double cw = 62, ch = 30, left = 92, top = 56;
    int w = (int)(left + cw * nl + 24), h = (int)(top + ch * nd + 62);
    if (w < 300) w = 300;
    char id[48], title[360], buf[32], fill[16];
    snprintf(id, sizeof id, "chart-passkey-%zu", s);
    snprintf(title, sizeof title, "passkey accuracy: %s", d->series[s].label);
    svg_begin(out, id, w, h, title);
    for (int i = 0; i < nd; i++) {
        double y = top + ch * i;
        snprintf(buf, sizeof buf, "%g", depths[i]);
        fprintf(out, "<text class=\"tick\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n",
                left - 8, y + ch / 2 + 4, buf);
        for (int j = 0; j < nl; j++) {
            const PasskeyCell *pc = NULL;
            for (size_t k = 0; k < d->n_passkey; k++)
                if (d->passkey[k].series == s && d->passkey[k].depth == depths[i] &&
                    d->passkey[k].length == (int)lengths[j]) pc = &d->passkey[k];
            double x = left + cw * j;
            if (!pc) {
                fprintf(out, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#eee\"/>\n",
                        x, y, cw - 2, ch - 2);
                continue;
            }
            acc_color(pc->acc, fill, sizeof fill);
            fprintf(out, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"/>\n"
                         "<text class=\"cell\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%.0f%%</text>\n",
                    x, y, cw - 2, ch - 2, fill, x + cw / 2 - 1, y + ch / 2 + 4, pc->acc * 100);
        }
    }
    for (int j = 0; j < nl; j++) {
        fmt_num(buf, sizeof buf, lengths[j], 1);
        fprintf(out, "<text class=\"tick\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n",
                left + cw * j + cw / 2 - 1, top + ch * nd + 16, buf);
    }
    fprintf(out, "<text class=\"axis\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">"
                 "length (bytes)</text>\n", left + cw * nl / 2, top + ch * nd + 40);
    fprintf(out, "<text class=\"axis\" x=\"16\" y=\"%.1f\" text-anchor=\"middle\" "
                 "transform=\"rotate(-90 16 %.1f)\">depth of the key</text>\n",
            top + ch * nd / 2, top + ch * nd / 2);
    fprintf(out, "<text class=\"note\" x=\"16\" y=\"42\">cell = exact-match accuracy (%%)</text>\n");
    fputs("</svg>\n", out);
done:
    free(depths);
    free(lengths);
}

static void passkey_section(const ReportData *d, FILE *out) {
    fputs("<section>\n<h2>Passkey retrieval</h2>\n", out);
    if (!d->n_passkey) {
        fputs("<p class=\"empty\">no passkey data in this run</p>\n</section>\n", out);
        return;
    }
    fputs("<p>Accuracy of retrieving a key hidden at a depth of the text (rows) in a text of a "
          "given length (columns). Colour: <span class=\"sw\" style=\"background:#d73027\"></span> 0 %"
          " <span class=\"sw\" style=\"background:#fee08b\"></span> 50 %"
          " <span class=\"sw\" style=\"background:#1a9850\"></span> 100 %.</p>\n<div class=\"row\">\n",
          out);
    for (size_t s = 0; s < d->n_series; s++) {
        int has = 0;
        for (size_t i = 0; i < d->n_passkey; i++) has |= d->passkey[i].series == s;
        if (has) heatmap(d, s, out);
    }
    fputs("</div>\n</section>\n", out);
}

/* ---- quality against cost --------------------------------------------------------------------- */

typedef struct {
    size_t series;
    double x, y, ly; /* pixel position of the point, and of its label */
} Label;

static int cmp_label(const void *a, const void *b) {
    double x = ((const Label *)a)->y, y = ((const Label *)b)->y;
    return (x > y) - (x < y);
}

static int chart_cost(const ReportData *d, int ci, FILE *out) {
    int w = 1160, h = 380;
    Label *pts = calloc(d->n_series ? d->n_series : 1, sizeof *pts);
    if (!pts) return 0;
    size_t n = 0;
    double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
    for (size_t s = 0; s < d->n_series; s++) {
        const ReportCell *c = report_cell(d, s, (size_t)ci);
        if (isnan(c->bpb) || !(c->seconds > 0)) continue;
        pts[n++] = (Label){.series = s, .x = c->seconds, .y = c->bpb};
        xmin = fmin(xmin, c->seconds);
        xmax = fmax(xmax, c->seconds);
        ymin = fmin(ymin, c->bpb);
        ymax = fmax(ymax, c->bpb);
    }
    if (!n) {
        free(pts);
        return 0;
    }
    Plot p = {.out = out, .left = 70, .right = w - 230, .top = 40, .bottom = h - 55};
    Ticks xt, yt;
    p.logx = xmax > 10 * xmin;
    if (p.logx) {
        double ls = log10(xmax / xmin);
        p.x0 = log10(xmin) - 0.08 * ls;
        p.x1 = log10(xmax) + 0.08 * ls;
        ticks_log(pow(10, p.x0), pow(10, p.x1), &xt);
    } else {
        double pad = xmax > xmin ? (xmax - xmin) * 0.1 : xmax * 0.1;
        double a = fmax(0, xmin - pad), b = xmax + pad;
        ticks_linear(&a, &b, 6, &xt);
        p.x0 = a;
        p.x1 = b;
    }
    double pad = ymax > ymin ? (ymax - ymin) * 0.08 : 0.05;
    double a = ymin - pad, b = ymax + pad;
    ticks_linear(&a, &b, 6, &yt);
    p.y0 = a;
    p.y1 = b;
    char title[200];
    snprintf(title, sizeof title, "quality against cost at context n = %d bytes "
             "(lower left is better)", d->contexts[ci]);
    svg_begin(out, "chart-cost", w, h, title);
    plot_axes(&p, &xt, &yt, p.logx ? "wall seconds per case (log scale)" : "wall seconds per case",
              "bits per byte", 0);
    for (size_t i = 0; i < n; i++) {
        pts[i].x = px(&p, pts[i].x);
        pts[i].y = py(&p, pts[i].y);
        pts[i].ly = pts[i].y;
    }
    /* labels right of their points, pushed apart vertically so none overlap */
    qsort(pts, n, sizeof *pts, cmp_label);
    for (size_t i = 1; i < n; i++)
        if (pts[i].ly < pts[i - 1].ly + 15) pts[i].ly = pts[i - 1].ly + 15;
    for (size_t i = 0; i < n; i++) {
        const Label *l = &pts[i];
        double lx = l->x + 12;
        int left_side = lx + 7.2 * (double)strlen(d->series[l->series].label) > p.right;
        if (left_side) lx = l->x - 12;
        if (fabs(l->ly - l->y) > 1)
            fprintf(out, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#999\"/>\n",
                    l->x, l->y, lx + (left_side ? 2 : -2), l->ly - 4);
        marker(out, l->series, l->x, l->y, 6);
        fprintf(out, "<text class=\"plabel\" x=\"%.1f\" y=\"%.1f\" fill=\"%s\" text-anchor=\"%s\">",
                lx, l->ly, color(l->series), left_side ? "end" : "start");
        esc(out, d->series[l->series].label);
        fputs("</text>\n", out);
    }
    int *show = calloc(d->n_series, sizeof *show);
    if (show) {
        for (size_t i = 0; i < n; i++) show[pts[i].series] = 1;
        legend(out, d, show, p.right + 20, p.top + 8);
        free(show);
    }
    fputs("</svg>\n", out);
    free(pts);
    return 1;
}

/* ---- the page --------------------------------------------------------------------------------- */

static const char CSS[] =
    "body{font-family:'DejaVu Sans','Liberation Sans',Arial,sans-serif;margin:24px auto;"
    "max-width:1200px;color:#1f2937;background:#f8fafc}\n"
    "h1{font-size:24px;margin:0 0 6px}h2{font-size:19px;margin:4px 0 6px}\n"
    "section{background:#fff;border:1px solid #e2e8f0;border-radius:6px;padding:10px 16px;"
    "margin:12px 0}\n"
    ".meta{color:#475569;font-size:13px;line-height:1.5}\n"
    ".row{display:flex;flex-wrap:wrap;gap:12px 28px;align-items:flex-start}\n"
    "svg{display:block;max-width:100%;height:auto}\n"
    "svg text{font-family:'DejaVu Sans','Liberation Sans',Arial,sans-serif}\n"
    ".ct{font-size:15px;font-weight:bold;fill:#111827}.tick{font-size:12px;fill:#374151}\n"
    ".axis{font-size:13px;fill:#111827}.note{font-size:12px;fill:#6b7280}\n"
    ".cell{font-size:12px;fill:#111827}.plabel{font-size:13px;font-weight:bold}\n"
    ".grid line{stroke:#e5e7eb;stroke-width:1}.frame{fill:none;stroke:#9ca3af}\n"
    ".train{stroke:#6b7280;stroke-width:1.5;stroke-dasharray:6 4}\n"
    "table{border-collapse:collapse;font-size:13px;margin:6px 0}caption{font-size:13px;"
    "text-align:left;padding:2px 0;color:#334155}\n"
    "th,td{border:1px solid #e2e8f0;padding:3px 8px;text-align:right}\n"
    "th:first-child,td:first-child{text-align:left}th{background:#f1f5f9}\n"
    "td.un{color:#9ca3af}td.fail{color:#b91c1c;font-weight:bold}\n"
    ".empty{color:#6b7280;font-style:italic}\n"
    ".sw{display:inline-block;width:12px;height:12px;vertical-align:middle;border:1px solid #999}\n";

static void table_html(const ReportData *d, FILE *out, const char *caption, int which) {
    fprintf(out, "<table>\n<caption>%s</caption>\n<tr><th>scheme</th>", caption);
    for (size_t c = 0; c < d->n_contexts; c++) fprintf(out, "<th>%d</th>", d->contexts[c]);
    fputs("</tr>\n", out);
    for (size_t s = 0; s < d->n_series; s++) {
        fputs("<tr><td>", out);
        esc(out, d->series[s].label);
        fputs("</td>", out);
        for (size_t c = 0; c < d->n_contexts; c++) {
            const ReportCell *cell = report_cell(d, s, c);
            double v = which == 0 ? cell->bpb : which == 1 ? cell->bpb_ratio
                     : which == 2 ? cell->seconds : cell->peak_rss / 1048576.0;
            if (!isnan(v)) {
                fprintf(out, which == 1 ? "<td>%.2f</td>" : which == 2 ? "<td>%.3g</td>"
                             : which == 3 ? "<td>%.1f</td>" : "<td>%.3f</td>", v);
            } else if (cell->n_failed && !cell->n_ok) {
                fputs("<td class=\"fail\" title=\"", out);
                esc(out, cell->error);
                fputs("\">failed</td>", out);
            } else if (cell->n_unsupported && !cell->n_ok) {
                fputs("<td class=\"un\" title=\"", out);
                esc(out, cell->error);
                fputs("\">unsup</td>", out);
            } else {
                fputs("<td class=\"un\">-</td>", out);
            }
        }
        fputs("</tr>\n", out);
    }
    fputs("</table>\n", out);
}

static void reasons_html(const ReportData *d, FILE *out) {
    int first = 1;
    for (size_t s = 0; s < d->n_series; s++)
        for (size_t c = 0; c < d->n_contexts; c++) {
            const ReportCell *cell = report_cell(d, s, c);
            if (!cell->n_unsupported && !cell->n_failed) continue;
            if (first) fputs("<h2>Cases that were not ok</h2>\n<ul class=\"meta\">\n", out);
            first = 0;
            fputs("<li>", out);
            esc(out, d->series[s].label);
            fprintf(out, " at %d: %s", d->contexts[c], cell->n_failed ? "failed" : "unsupported");
            if (cell->error[0]) {
                fputs(" — ", out);
                esc(out, cell->error);
            }
            fputs("</li>\n", out);
        }
    if (!first) fputs("</ul>\n", out);
}

static void header_html(const ReportData *d, FILE *out) {
    fprintf(out, "<h1>ctxbench report — run %lld, suite ", (long long)d->run_id);
    esc(out, d->suite);
    fputs("</h1>\n<div class=\"meta\">status <b>", out);
    esc(out, d->status);
    fputs("</b> · started ", out);
    esc(out, d->started);
    if (d->finished[0]) {
        fputs(" · finished ", out);
        esc(out, d->finished);
    }
    fputs(" · git ", out);
    esc(out, d->git_rev[0] ? d->git_rev : "unknown");
    fputs(" · ctxbench ", out);
    esc(out, d->version);
    fputs("<br>host ", out);
    esc(out, d->host);
    fputs(" · CPU ", out);
    esc(out, d->cpu);
    fprintf(out, " · %d threads · ", d->threads);
    esc(out, d->compiler);
    fputs(" · ", out);
    esc(out, d->blas);
    fprintf(out, "<br>%d perplexity cases: %d ok, %d unsupported, %d failed", d->n_cases, d->n_ok,
            d->n_unsupported, d->n_failed);
    if (d->train_ctx) fprintf(out, " · training length L = %d bytes", d->train_ctx);
    fputs("</div>\n", out);
}

int report_write_html(const ReportData *d, int ctx_index, FILE *out, char *err) {
    (void)err;
    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
          "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>ctxbench run ",
          out);
    fprintf(out, "%lld: ", (long long)d->run_id);
    esc(out, d->suite);
    fprintf(out, "</title>\n<style>\n%s</style>\n</head>\n<body>\n", CSS);
    header_html(d, out);
    if (!d->n_series || !d->n_contexts) {
        fputs("<section><p class=\"empty\">this run has no perplexity case</p></section>\n", out);
    } else {
        fputs("<section>\n<h2>Bits per byte against context</h2>\n<p class=\"meta\">Lower is better. "
              "Left of the dashed line the model reads no more than it was trained on; right of it "
              "it extrapolates. Bars: 95 % interval (over seeds, or of the measurement).</p>\n", out);
        chart_vs_context(d, out, "chart-bpb", 1160, 420, "bits per byte against evaluation context",
                         V_BPB, "bits per byte (held-out text)");
        fputs("<div class=\"row\">\n", out);
        table_html(d, out, "bits per byte (unsup = the scheme cannot serve that context)", 0);
        table_html(d, out, "bpb ratio to the training context (1.00 = no degradation)", 1);
        fputs("</div>\n", out);
        fputs("</section>\n", out);
    }
    passkey_section(d, out);
    if (d->n_series && d->n_contexts) {
        fputs("<section>\n<h2>Time and memory against context</h2>\n<p class=\"meta\">Measured on the "
              "child process that evaluated each case (log-log: a straight line of slope 1 is "
              "linear growth, slope 2 quadratic).</p>\n<div class=\"row\">\n", out);
        int t = chart_vs_context(d, out, "chart-time", 556, 340, "wall time per case", V_SECONDS,
                                 "wall seconds (log scale)");
        int m = chart_vs_context(d, out, "chart-memory", 556, 340, "peak memory per case", V_MIB,
                                 "peak RSS (MiB, log scale)");
        fputs("</div>\n", out);
        if (!t && !m) fputs("<p class=\"empty\">no time or memory measured in this run</p>\n", out);
        fputs("<div class=\"row\">\n", out);
        if (t) table_html(d, out, "wall seconds per case", 2);
        if (m) table_html(d, out, "peak RSS per case (MiB)", 3);
        fputs("</div>\n", out);
        fputs("</section>\n<section>\n<h2>Quality against cost</h2>\n", out);
        int ci = ctx_index >= 0 ? ctx_index : (int)d->n_contexts - 1;
        if (!chart_cost(d, ci, out))
            fprintf(out, "<p class=\"empty\">no scheme has both bits per byte and time at context "
                         "%d</p>\n", d->contexts[ci]);
        else
            fprintf(out, "<p class=\"meta\">One point per scheme at n = %d bytes (choose another with "
                         "<code>ctxbench report --context N</code>); schemes that cannot serve n are "
                         "absent.</p>\n", d->contexts[ci]);
        reasons_html(d, out);
        fputs("</section>\n", out);
    }
    fputs("</body>\n</html>\n", out);
    return CB_OK;
}
