/* stats.c — intervals across seeds (mean and a 95% Student-t interval), the median of repeated
   timings, and power-law fits of how a cost grows with the context. */
#include <math.h>
#include <stdlib.h>

#include "eval/eval.h"

/* Two-sided 95% quantiles of Student's t for 1..30 degrees of freedom. */
static const double T975[31] = {
    NAN,    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201,  2.179,  2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080,
    2.074,  2.069,  2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
};

double eval_t975(int df) {
    if (df < 1) return NAN;
    if (df <= 30) return T975[df];
    /* Cornish-Fisher expansion around the normal quantile: within 1e-3 past 30. */
    double z = 1.959964, g1 = (z * z * z + z) / 4.0, g2 = (5 * pow(z, 5) + 16 * z * z * z + 3 * z) / 96.0;
    return z + g1 / df + g2 / ((double)df * df);
}

void eval_seed_interval(const double *x, int k, double *mean, double *lo, double *hi) {
    double s = 0.0;
    for (int i = 0; i < k; i++) s += x[i];
    *mean = k ? s / k : NAN;
    *lo = *hi = NAN;
    if (k < 2) return;
    double v = 0.0;
    for (int i = 0; i < k; i++) v += (x[i] - *mean) * (x[i] - *mean);
    double half = eval_t975(k - 1) * sqrt(v / (k - 1) / k);
    *lo = *mean - half;
    *hi = *mean + half;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double eval_median(double *x, int k) {
    qsort(x, (size_t)k, sizeof *x, cmp_double);
    return k % 2 ? x[k / 2] : 0.5 * (x[k / 2 - 1] + x[k / 2]);
}

/* Ordinary least squares in log-log space, centred on the means so that large n stay exact. */
int eval_fit_power(const double *x, const double *y, int k, PowerFit *f, char *err) {
    f->exponent = f->log_coef = f->exponent_lo = f->exponent_hi = f->r2 = NAN;
    f->count = k;
    if (k < 2) return cb_error(err, CB_EINPUT, "a power-law fit needs at least 2 points, got %d", k);
    double mx = 0.0, my = 0.0;
    for (int i = 0; i < k; i++) {
        if (!(isfinite(x[i]) && x[i] > 0 && isfinite(y[i]) && y[i] > 0))
            return cb_error(err, CB_EINPUT, "point %d (%g, %g) is not positive and finite", i, x[i], y[i]);
        mx += log(x[i]) / k;
        my += log(y[i]) / k;
    }
    double sxx = 0.0, sxy = 0.0, syy = 0.0;
    for (int i = 0; i < k; i++) {
        double dx = log(x[i]) - mx, dy = log(y[i]) - my;
        sxx += dx * dx;
        sxy += dx * dy;
        syy += dy * dy;
    }
    if (sxx <= 0) return cb_error(err, CB_EINPUT, "every point has x = %g: no slope to fit", x[0]);
    double b = sxy / sxx, ssr = 0.0;
    for (int i = 0; i < k; i++) {
        double r = log(y[i]) - my - b * (log(x[i]) - mx);
        ssr += r * r;
    }
    f->exponent = b;
    f->log_coef = my - b * mx;
    f->r2 = syy > 0 ? 1.0 - ssr / syy : 1.0;
    if (k > 2) {
        double half = eval_t975(k - 2) * sqrt(ssr / (k - 2) / sxx);
        f->exponent_lo = b - half;
        f->exponent_hi = b + half;
    }
    return CB_OK;
}
