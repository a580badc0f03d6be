/* perplexity.c — non-overlapping perplexity with loss by position bucket (see eval.h). */
#include "eval/eval.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int eval_position_buckets(int n, int L, int *lo, int *hi) {
    int k = 0;
    lo[k] = 0;
    hi[k] = L < n ? L : n;
    k++;
    for (long long start = L; start < n && k < EVAL_MAX_BUCKETS; start *= 2, k++) {
        lo[k] = (int)start;
        hi[k] = (int)(2 * start < n ? 2 * start : n);
    }
    return k;
}

int eval_perplexity(Model *m, const uint8_t *heldout, size_t E, int n, PplResult *r, char *err) {
    memset(r, 0, sizeof *r);
    if (n < 1 || E < (size_t)n + 1)
        return cb_error(err, CB_EINPUT, "perplexity: %zu held-out bytes cannot fill one window of %d", E, n);
    int rc = pe_prepare(&m->pe, n, err);
    if (rc) return rc;
    float *losses = malloc(sizeof(float) * (size_t)n);
    if (!losses) return cb_error(err, CB_ENOMEM, "perplexity: out of memory");

    r->n_buckets = eval_position_buckets(n, m->cfg.train_ctx, r->bucket_lo, r->bucket_hi);
    double bucket_nats[EVAL_MAX_BUCKETS] = {0};
    double total = 0.0;
    int windows = (int)((E - 1) / (size_t)n);
    for (int w = 0; w < windows; w++) {
        const uint8_t *in = heldout + (size_t)w * n;
        rc = model_eval_window(m, in, in + 1, n, losses, NULL, err);
        if (rc) break;
        for (int b = 0; b < r->n_buckets; b++) {
            double s = 0.0;
            for (int t = r->bucket_lo[b]; t < r->bucket_hi[b]; t++) s += losses[t];
            bucket_nats[b] += s;
            r->bucket_count[b] += (size_t)(r->bucket_hi[b] - r->bucket_lo[b]);
            total += s;
        }
    }
    free(losses);
    if (rc) return rc;
    r->windows = windows;
    r->count = (size_t)windows * (size_t)n;
    r->nats = total / (double)r->count;
    r->bpb = r->nats / M_LN2;
    r->ppl = exp(r->nats);
    for (int b = 0; b < r->n_buckets; b++)
        r->bucket_bpb[b] = bucket_nats[b] / (double)r->bucket_count[b] / M_LN2;
    return CB_OK;
}
