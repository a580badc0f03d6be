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

/* Percentile bootstrap of the mean of x[0..k): 95% interval from `resamples` draws of `seed`. */
void eval_bootstrap_mean(const double *x, int k, int resamples, uint64_t seed, double *lo, double *hi);

/* Mean of x[0..k) (one value per seed) and its 95% Student-t interval (NaN bounds for k < 2). */
void eval_seed_interval(const double *x, int k, double *mean, double *lo, double *hi);
double eval_t975(int df); /* two-sided 95% quantile of Student's t */

#endif
