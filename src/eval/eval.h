/*
 * eval.h — quality measurements of a trained model on held-out bytes.
 *
 * Perplexity (non-overlapping mode): the held-out bytes H[0..E) are cut into windows; window w
 * reads inputs H[w*n .. w*n+n) and predicts targets H[w*n+1 .. w*n+n], so the scored bytes of
 * consecutive windows are disjoint and the same bytes are used for every context n (as many
 * whole windows as fit: floor((E - 1) / n)).
 *
 * Sliding windows with stride S (1 <= S <= n): windows of n bytes start every S bytes and score only
 * their last S predictions, so every scored byte sees at least n - S bytes of context; S = n is the
 * non-overlapping mode and S = 1 the exact one.
 *
 * Every result carries a 95% bootstrap interval of bits per byte over its windows (percentiles of
 * EVAL_BOOTSTRAP resamples drawn with a fixed seed; NaN with fewer than two windows).
 */
#ifndef CB_EVAL_H
#define CB_EVAL_H

#include <stddef.h>
#include <stdint.h>

#include "model/model.h"

#define EVAL_MAX_BUCKETS 32
#define EVAL_BOOTSTRAP 1000

typedef struct {
    double nats;        /* mean loss, nats per byte */
    double bpb;         /* bits per byte = nats / ln 2 */
    double ppl;         /* per-byte perplexity = exp(nats) */
    double bpb_lo, bpb_hi; /* 95% bootstrap interval over windows */
    size_t count;       /* scored bytes */
    int windows;
    int stride;         /* S; n for the non-overlapping mode */
    /* Loss by position inside the window: [0, L), [L, 2L), [2L, 4L), ... */
    int n_buckets;
    int bucket_lo[EVAL_MAX_BUCKETS], bucket_hi[EVAL_MAX_BUCKETS];
    double bucket_bpb[EVAL_MAX_BUCKETS];
    size_t bucket_count[EVAL_MAX_BUCKETS];
} PplResult;

/* Position buckets for context n and training context L: fills lo/hi, returns the count. */
int eval_position_buckets(int n, int L, int *lo, int *hi);

/* Non-overlapping perplexity at context n over held-out bytes (E of them). Prepares the encoding
   for n: CB_EUNSUPPORTED (with the scheme's reason) if it cannot serve n; CB_EINPUT if E < n + 1. */
int eval_perplexity(Model *m, const uint8_t *heldout, size_t E, int n, PplResult *r, char *err);
/* Sliding-window perplexity with stride S (S = n gives eval_perplexity's numbers). */
int eval_perplexity_sliding(Model *m, const uint8_t *heldout, size_t E, int n, int S, PplResult *r,
                            char *err);

/* Attention entropy by position bucket, a diagnostic measured during a perplexity evaluation:
   nats[l * n_buckets + b] is the mean entropy in nats of the attention distribution of the
   queries at positions [bucket_lo[b], bucket_hi[b]) of each window (the buckets of PplResult, all
   n positions of a window, scored or not), averaged over the heads of layer l, those queries and
   the `windows` windows it was measured on. */
typedef struct {
    int n_layer, n_buckets;
    int windows;  /* windows measured: evenly spaced over the evaluated ones */
    double *nats; /* (n_layer, n_buckets), owned; NULL until measured */
} EntropyResult;

void eval_entropy_free(EntropyResult *e); /* no-op on a zeroed or freed result */

/* eval_perplexity_sliding that also measures the attention entropy on max_windows of the windows
   (fewer if there are fewer; <= 0: every window), evenly spaced over them, into *ent (which the
   caller frees with eval_entropy_free, also on error). ent == NULL: eval_perplexity_sliding.
   The losses are the same as without the measurement. */
int eval_perplexity_entropy(Model *m, const uint8_t *heldout, size_t E, int n, int S, int max_windows,
                            PplResult *r, EntropyResult *ent, char *err);

/* Percentile bootstrap of the mean of x[0..k): 95% interval from `resamples` draws of `seed`. */
void eval_bootstrap_mean(const double *x, int k, int resamples, uint64_t seed, double *lo, double *hi);

/* Mean of x[0..k) (one value per seed) and its 95% Student-t interval (NaN bounds for k < 2). */
void eval_seed_interval(const double *x, int k, double *mean, double *lo, double *hi);
double eval_t975(int df); /* two-sided 95% quantile of Student's t */

/* Median of x[0..k) (the mean of the two middle values for even k), k >= 1. Sorts x in place, so
   x[0] and x[k-1] are the minimum and maximum afterwards. */
double eval_median(double *x, int k);

/* A power law y = exp(log_coef) * x^exponent fitted by least squares on log y = a + b log x. */
typedef struct {
    double exponent;                 /* b */
    double log_coef;                 /* a */
    double exponent_lo, exponent_hi; /* 95% Student-t interval of b (k - 2 df); NaN for k = 2 */
    double r2;                       /* coefficient of determination of the log-log fit */
    int count;                       /* points fitted */
} PowerFit;

/* Fits k points (x[i], y[i]). CB_EINPUT with a one-line reason if k < 2, a value is not finite
   and positive, or every x is the same (no slope to fit). */
int eval_fit_power(const double *x, const double *y, int k, PowerFit *f, char *err);

#endif
