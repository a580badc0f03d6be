/*
 * rope_internal.h — what rope.c (the scheme, its caches and hooks) and rope_variants.c (the
 * eval-time context-extension variants) share. Private to those two files.
 *
 * Every variant is represented as PE_SPEC §22.3 says: a per-pair inverse frequency and a magnitude
 * on cos and sin for the ordinary branch (PI, NTK, dynamic NTK, YaRN, Llama-3), an optional
 * per-position query scale (log-n), and for the methods that re-position far keys (Self-Extend,
 * ReRoPE, Leaky ReRoPE, LM-Infinite) an alternative branch: the raw query rotated at position
 * aq_pos[i] and the raw key at ak_pos[j], both with angles multiplied by alt_angle, used for the
 * keys j < alt_end(i), plus a masked key range.
 */
#ifndef CB_ROPE_INTERNAL_H
#define CB_ROPE_INTERNAL_H

#include <stdio.h>

#include "pe/pe.h"

enum { ROPE_PAIR_HALF, ROPE_PAIR_INTERLEAVED };

typedef enum {
    RV_NONE,
    RV_PI,
    RV_NTK,
    RV_DYNAMIC_NTK,
    RV_YARN,
    RV_LLAMA3,
    RV_SELF_EXTEND,
    RV_REROPE,
    RV_LEAKY_REROPE,
    RV_LOGN,
    RV_LAMBDA,
} RopeVariantKind;

/* A parsed variant with its options resolved against the training context L. */
typedef struct {
    RopeVariantKind kind;
    int auto_factor;          /* factor=auto: s = max(1, n / L) at prepare(n) */
    double factor;            /* s when not auto; the HF `factor` for dynamic NTK */
    double beta_fast, beta_slow;              /* YaRN */
    double low_freq_factor, high_freq_factor; /* Llama-3 */
    int group, window;        /* Self-Extend G and W; ReRoPE / Leaky window w */
    double leak;              /* Leaky ReRoPE k */
    int logn;                 /* log-n query scaling (the logn variant, or logn=1 on ReRoPE / Leaky) */
    int local, global, limit; /* LM-Infinite */
} RopeVariant;

/* The frequency set at one context n (what the scaling variants change). */
typedef struct {
    double s;         /* scale factor in use (1 = none) */
    double base;      /* effective base (NTK, dynamic NTK), else the scheme's base */
    double mscale;    /* magnitude on cos and sin */
    double low, high; /* YaRN ramp ends in pair index; 0 for the other variants */
} RopeFreqInfo;

typedef struct {
    double base, fraction;
    int pairing;
    int d_rot;            /* rotated dims per head, even */
    int randomized;       /* N of randomized training positions; 0 = plain 0..T-1 */
    int train_ctx;        /* L */
    RopeVariant var;
    double *inv_freq;     /* (d_rot/2) plain frequencies base^(-2t/d_rot) */
    double *inv_eff;      /* (d_rot/2) frequencies in use at the prepared context */
    RopeFreqInfo info;    /* of inv_eff */
    int n;                /* context requested by the last prepare; 0 before */
    int n_cache;          /* positions the caches cover: max(n, randomized) */
    float *cos_c, *sin_c; /* (n_cache, d_rot/2) ordinary branch, magnitude included */
    float *q_scale;       /* (n_cache) query scale per position, NULL if none */
    /* Alternative branch, NULL unless the variant has one. */
    double *aq_pos, *ak_pos;    /* (n_cache) positions the raw q / k are rotated at */
    double alt_angle;           /* angle multiplier of the alternative branch */
    float *aq_cos, *aq_sin;     /* (n_cache, d_rot/2) */
    float *ak_cos, *ak_sin;     /* (n_cache, d_rot/2) */
} RopeState;

/* Parses pe->spec.variant and vopts into st->var (st->train_ctx set). "" gives RV_NONE.
   Unknown variants, keys or bad values: CB_EINPUT with one line. */
int rope_variant_parse(const PeModel *pe, RopeState *st, char *err);

/* Frequencies the ordinary branch uses at context n: inv_out (d_rot/2) and info. */
void rope_variant_freqs(const RopeState *st, int n, double *inv_out, RopeFreqInfo *info);

int rope_variant_has_alt(const RopeVariant *v);
int rope_variant_has_q_scale(const RopeVariant *v);

/* Log-n query scale at position p: max(1, ln(p + 1) / ln L) (§19.6), 1 without log-n. */
double rope_variant_q_scale(const RopeState *st, int p);

/* Positions of the alternative branch for position p (query and key), in units of positions
   before st->alt_angle is applied. */
void rope_variant_alt_pos(const RopeState *st, int p, double *aq, double *ak);
double rope_variant_alt_angle(const RopeState *st);

/* For query i: keys j < *alt_end use the alternative branch, keys in [*mask_lo, *mask_hi) are
   masked (the alt_row hook). */
void rope_variant_alt_row(const RopeState *st, int i, int *alt_end, int *mask_lo, int *mask_hi);

/* The largest effective relative position at context n over every query i < n and unmasked key
   j <= i: *d_ord for the ordinary branch (n - 1 without an alternative branch), *d_alt for the
   alternative one in positions of the plain frequencies (alt_angle applied; 0 without one). */
void rope_variant_max_rel(const RopeState *st, int n, double *d_ord, double *d_alt);

/* Canonical name of the variant kind ("yarn"), "" for none. */
const char *rope_variant_name(RopeVariantKind kind);

#endif
