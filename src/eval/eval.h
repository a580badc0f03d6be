/*
 * eval.h — quality measurements of a trained model on held-out bytes.
 *
 * Perplexity (non-overlapping mode): the held-out bytes H[0..E) are cut into windows; window w
 * reads inputs H[w*n .. w*n+n) and predicts targets H[w*n+1 .. w*n+n], so the scored bytes of
 * consecutive windows are disjoint and the same bytes are used for every context n (as many
 * whole windows as fit: floor((E - 1) / n)).
 */
#ifndef CB_EVAL_H
#define CB_EVAL_H

#include <stddef.h>
#include <stdint.h>

#include "model/model.h"

#define EVAL_MAX_BUCKETS 32

typedef struct {
    double nats;        /* mean loss, nats per byte */
    double bpb;         /* bits per byte = nats / ln 2 */
    double ppl;         /* per-byte perplexity = exp(nats) */
    size_t count;       /* scored bytes */
    int windows;
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

#endif
