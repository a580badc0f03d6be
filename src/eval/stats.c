/* stats.c — intervals across seeds: mean and a 95% Student-t interval. */
#include <math.h>

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
