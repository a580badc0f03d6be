/* perplexity.c — perplexity with loss by position bucket, and the attention entropy by position
   bucket measured on some of its windows (see eval.h). */
#include "eval/eval.h"

#include <math.h>
#include <stdio.h>
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

/* Windows up to this many bytes are evaluated one per thread. */
#define EVAL_WINDOW_PARALLEL_MAX 4096

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void eval_bootstrap_mean(const double *x, int k, int resamples, uint64_t seed, double *lo, double *hi) {
    *lo = *hi = NAN;
    if (k < 2 || resamples < 2) return;
    double *means = malloc(sizeof(double) * (size_t)resamples);
    if (!means) return;
    Rng rng;
    rng_seed(&rng, seed);
    for (int b = 0; b < resamples; b++) {
        double s = 0.0;
        for (int i = 0; i < k; i++) s += x[rng_below(&rng, (uint32_t)k)];
        means[b] = s / k;
    }
    qsort(means, (size_t)resamples, sizeof *means, cmp_double);
    *lo = means[(int)(0.025 * (resamples - 1) + 0.5)];
    *hi = means[(int)(0.975 * (resamples - 1) + 0.5)];
    free(means);
}

void eval_entropy_free(EntropyResult *e) {
    if (!e) return;
    free(e->nats);
    e->nats = NULL;
}

/* Adds window `buf` (L, NH, n) of per-query entropies to sums (L, n_buckets). */
static void entropy_accumulate(const float *buf, int L, int NH, int n, const PplResult *r, double *sums) {
    for (int l = 0; l < L; l++)
        for (int h = 0; h < NH; h++) {
            const float *e = buf + ((size_t)l * NH + h) * (size_t)n;
            for (int b = 0; b < r->n_buckets; b++) {
                double s = 0.0;
                for (int t = r->bucket_lo[b]; t < r->bucket_hi[b]; t++) s += e[t];
                sums[(size_t)l * r->n_buckets + b] += s;
            }
        }
}

int eval_perplexity_entropy(Model *m, const uint8_t *heldout, size_t E, int n, int S, int max_windows,
                            PplResult *r, EntropyResult *ent, char *err) {
    memset(r, 0, sizeof *r);
    if (ent) memset(ent, 0, sizeof *ent);
    if (S < 1 || S > n)
        return cb_error(err, CB_EINPUT, "perplexity: stride %d outside 1..%d", S, n);
    if (n < 1 || E < (size_t)n + 1)
        return cb_error(err, CB_EINPUT, "perplexity: %zu held-out bytes cannot fill one window of %d", E, n);
    int rc = pe_prepare(&m->pe, n, err);
    if (rc) return rc;
    int windows = (int)((E - 1 - (size_t)n) / (size_t)S) + 1;
    float *losses = malloc(sizeof(float) * (size_t)n);
    double *per_window = malloc(sizeof(double) * (size_t)windows);
    if (!losses || !per_window) {
        free(losses);
        free(per_window);
        return cb_error(err, CB_ENOMEM, "perplexity: out of memory");
    }
    r->n_buckets = eval_position_buckets(n, m->cfg.train_ctx, r->bucket_lo, r->bucket_hi);
    /* Entropy on K windows spaced evenly: window floor(k * windows / K) for k = 0..K-1. */
    int K = ent ? (max_windows > 0 && max_windows < windows ? max_windows : windows) : 0;
    int NL = m->cfg.n_layer, NH = m->cfg.n_head;
    float *ebuf = NULL;
    float *saved_entropy = m->eval_entropy;
    if (K) {
        ebuf = malloc(sizeof(float) * (size_t)NL * NH * (size_t)n);
        ent->nats = calloc((size_t)NL * r->n_buckets, sizeof *ent->nats);
        if (!ebuf || !ent->nats) {
            free(ebuf);
            free(losses);
            free(per_window);
            eval_entropy_free(ent);
            return cb_error(err, CB_ENOMEM, "perplexity: out of memory for the attention entropy");
        }
        ent->n_layer = NL;
        ent->n_buckets = r->n_buckets;
    }
    int first = n - S; /* the scored positions of every window: [n - S, n) */
    /* Each window's scored losses, (windows, S). Short windows run one per thread (the kernels
       inside then run serially), since a short window alone cannot keep the threads busy; the
       windows that measure the entropy run afterwards one at a time with the model's threads.
       Sums then go in window order, so the numbers do not depend on the schedule. */
    float *scored = malloc(sizeof(float) * (size_t)windows * (size_t)S);
    if (!scored) rc = cb_error(err, CB_ENOMEM, "perplexity: out of memory for %d windows", windows);
    int *measured = calloc((size_t)windows, sizeof *measured);
    if (!measured && !rc) rc = cb_error(err, CB_ENOMEM, "perplexity: out of memory");
    for (int k = 0; !rc && k < K; k++) measured[(int)((long long)k * windows / K)] = 1;
    if (!rc) {
        int parallel = n <= EVAL_WINDOW_PARALLEL_MAX && windows > 1;
        int failed = 0;
        char werr[CB_ERR_LEN] = "";
#pragma omp parallel if (parallel)
        {
            float *wl = parallel ? malloc(sizeof(float) * (size_t)n) : losses;
#pragma omp for schedule(dynamic, 1)
            for (int w = 0; w < windows; w++) {
                if (measured[w] || failed) continue;
                char e[CB_ERR_LEN];
                const uint8_t *in = heldout + (size_t)w * S;
                int wrc = wl ? model_eval_window(m, in, in + 1, n, wl, NULL, e)
                             : cb_error(e, CB_ENOMEM, "perplexity: out of memory");
                if (wrc) {
#pragma omp critical(perplexity_error)
                    if (!failed) failed = wrc, snprintf(werr, sizeof werr, "%s", e);
                } else {
                    memcpy(scored + (size_t)w * S, wl + first, sizeof(float) * (size_t)S);
                }
            }
            if (parallel) free(wl);
        }
        if (failed) rc = failed, snprintf(err, CB_ERR_LEN, "%s", werr);
        for (int w = 0; !rc && w < windows; w++) {
            if (!measured[w]) continue;
            const uint8_t *in = heldout + (size_t)w * S;
            m->eval_entropy = ebuf;
            rc = model_eval_window(m, in, in + 1, n, losses, NULL, err);
            m->eval_entropy = saved_entropy;
            if (rc) break;
            entropy_accumulate(ebuf, NL, NH, n, r, ent->nats);
            memcpy(scored + (size_t)w * S, losses + first, sizeof(float) * (size_t)S);
        }
    }
    double bucket_nats[EVAL_MAX_BUCKETS] = {0};
    double total = 0.0;
    for (int w = 0; !rc && w < windows; w++) {
        const float *sl = scored + (size_t)w * S; /* positions [first, n) */
        double wsum = 0.0;
        for (int b = 0; b < r->n_buckets; b++) {
            int lo = r->bucket_lo[b] > first ? r->bucket_lo[b] : first;
            double s = 0.0;
            for (int t = lo; t < r->bucket_hi[b]; t++) s += sl[t - first];
            if (r->bucket_hi[b] > lo) r->bucket_count[b] += (size_t)(r->bucket_hi[b] - lo);
            bucket_nats[b] += s;
            wsum += s;
        }
        per_window[w] = wsum / S / M_LN2;
        total += wsum;
    }
    free(scored);
    free(measured);
    free(losses);
    free(ebuf);
    if (rc) {
        free(per_window);
        return rc;
    }
    if (K) {
        ent->windows = K;
        for (int l = 0; l < NL; l++)
            for (int b = 0; b < r->n_buckets; b++) {
                double queries = (double)K * NH * (r->bucket_hi[b] - r->bucket_lo[b]);
                double *x = &ent->nats[(size_t)l * r->n_buckets + b];
                *x = queries > 0 ? *x / queries : NAN;
            }
    }
    r->windows = windows;
    r->stride = S;
    r->count = (size_t)windows * (size_t)S;
    r->nats = total / (double)r->count;
    r->bpb = r->nats / M_LN2;
    r->ppl = exp(r->nats);
    eval_bootstrap_mean(per_window, windows, EVAL_BOOTSTRAP, 0xB007 + (uint64_t)n * 31 + (uint64_t)S,
                        &r->bpb_lo, &r->bpb_hi);
    free(per_window);
    for (int b = 0; b < r->n_buckets; b++)
        r->bucket_bpb[b] = r->bucket_count[b] ? bucket_nats[b] / (double)r->bucket_count[b] / M_LN2 : NAN;
    return CB_OK;
}

int eval_perplexity_sliding(Model *m, const uint8_t *heldout, size_t E, int n, int S, PplResult *r,
                            char *err) {
    return eval_perplexity_entropy(m, heldout, E, n, S, 0, r, NULL, err);
}

int eval_perplexity(Model *m, const uint8_t *heldout, size_t E, int n, PplResult *r, char *err) {
    return eval_perplexity_sliding(m, heldout, E, n, n, r, err);
}
