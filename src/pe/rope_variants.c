/*
 * rope_variants.c — eval-time context-extension variants of a RoPE-trained model (PE_SPEC §15–§19).
 * None changes the parameter layout (RoPE has no parameters); each only changes how q and k are
 * rotated at evaluation. Where papers and reference code differ, the code is followed (§18.2).
 * L below is the training context (dims.train_ctx), d the rotated dims per head, s the scale.
 *
 *   pi            Chen et al. 2023, arXiv:2306.15595            inv_freq / s                      §15
 *   ntk           bloc97 2023 (NTK-aware)                       base' = base s^(d/(d-2))          §16
 *   dynamic-ntk   HF rope_type "dynamic"                         base' = base (s n/L - (s-1))^(d/(d-2)), n > L   §17
 *   yarn          Peng et al. 2023, arXiv:2309.00071             ramp in pair index, mscale 0.1 ln s + 1          §18.2
 *   llama3        Llama 3.1 (HF rope_type "llama3")              wavelength bands low/high_freq_factor            §18.6
 *   self-extend   Jin et al. 2024, arXiv:2401.01325              far keys: q at i//G + W - W//G, k at j//G        §19.2
 *   rerope        Su 2023 (bojone/rerope)                        far keys: q at w, k unrotated                    §19.3
 *   leaky-rerope  Su 2023                                        far keys: q at i + w(k-1), k at j, angles / k    §19.3
 *   logn          Su 2023 (NTK-RoPE-logn)                        q at p times max(1, ln(p+1)/ln L)                §19.6
 *   lambda        Han et al. 2023 LM-Infinite, arXiv:2308.16137  local window + global keys at distance limit, rest masked  §19.5
 *
 * factor=auto (the default of pi, ntk, yarn, llama3) makes s = n / L at prepare(n), and 1 for n <= L,
 * so those variants equal plain RoPE up to the training context. With s = 1 every scaling variant
 * returns the plain frequencies and magnitude 1 exactly (bit-identical q and k).
 *
 * Defaults chosen here (the papers tune them for 4k-token LLMs): Self-Extend group 4 and window L/4
 * (reaches about (L - W) G + W = 3.25 L); ReRoPE and Leaky ReRoPE window L/2 (the references use
 * 512 of 4096, the rerope README suggests windows up to half the training length), Leaky k = 16;
 * LM-Infinite local L, global 10, limit = local (its README drop-in defaults). ReRoPE and Leaky
 * ReRoPE take logn=1 to add the log-n query scale as the reference patches do (off by default, so
 * that each variant isolates one mechanism).
 */
#include <math.h>
#include <string.h>

#include "pe/rope_internal.h"

typedef struct {
    const char *name;
    RopeVariantKind kind;
    const char *keys[6];
} VariantDef;

static const VariantDef defs[] = {
    {"pi", RV_PI, {"factor", NULL}},
    {"ntk", RV_NTK, {"factor", NULL}},
    {"dynamic-ntk", RV_DYNAMIC_NTK, {"factor", NULL}},
    {"yarn", RV_YARN, {"factor", "beta_fast", "beta_slow", NULL}},
    {"llama3", RV_LLAMA3, {"factor", "low_freq_factor", "high_freq_factor", NULL}},
    {"self-extend", RV_SELF_EXTEND, {"group", "window", NULL}},
    {"rerope", RV_REROPE, {"window", "logn", NULL}},
    {"leaky-rerope", RV_LEAKY_REROPE, {"window", "k", "logn", NULL}},
    {"logn", RV_LOGN, {NULL}},
    {"lambda", RV_LAMBDA, {"local", "global", "limit", NULL}},
};
#define N_DEFS (sizeof defs / sizeof defs[0])

const char *rope_variant_name(RopeVariantKind kind) {
    for (size_t k = 0; k < N_DEFS; k++)
        if (defs[k].kind == kind) return defs[k].name;
    return "";
}

/* factor: "auto" or a number in [1, 1e6]; def_auto selects the default when absent. */
static int parse_factor(const PeSpec *vs, int def_auto, double def, int allow_auto, RopeVariant *v, char *err) {
    const char *text = pe_opt(vs, "factor");
    if (!text) {
        v->auto_factor = def_auto;
        v->factor = def;
        return CB_OK;
    }
    if (strcmp(text, "auto") == 0) {
        if (!allow_auto)
            return cb_error(err, CB_EINPUT, "%s: option 'factor' must be a number in [1, 1e6] (auto is not "
                            "available: the factor is the dynamic scaling's own), got 'auto'", vs->name);
        v->auto_factor = 1;
        v->factor = 1.0;
        return CB_OK;
    }
    v->auto_factor = 0;
    int rc = pe_opt_double(vs, "factor", def, 1.0, 1e6, &v->factor, err);
    if (rc && allow_auto)
        return cb_error(err, CB_EINPUT, "%s: option 'factor' must be auto or a number in [1, 1e6], got '%s'",
                        vs->name, text);
    return rc;
}

int rope_variant_parse(const PeModel *pe, RopeState *st, char *err) {
    RopeVariant *v = &st->var;
    memset(v, 0, sizeof *v);
    const PeSpec *spec = &pe->spec;
    if (!spec->variant[0]) {
        v->kind = RV_NONE;
        return CB_OK;
    }
    const VariantDef *def = NULL;
    for (size_t k = 0; k < N_DEFS && !def; k++)
        if (strcmp(defs[k].name, spec->variant) == 0) def = &defs[k];
    if (!def) return cb_error(err, CB_EINPUT, "unknown eval-time variant '%s' for scheme 'rope'", spec->variant);
    v->kind = def->kind;

    /* The variant's options read through the ordinary helpers, with "rope+NAME" in messages. */
    PeSpec vs;
    memset(&vs, 0, sizeof vs);
    snprintf(vs.name, sizeof vs.name, "rope+%s", def->name);
    memcpy(vs.opts, spec->vopts, sizeof vs.opts);
    vs.n_opts = spec->n_vopts;
    int rc = pe_check_keys(&vs, def->keys, err);
    if (rc) return rc;

    int L = st->train_ctx;
    int half = L / 2 > 1 ? L / 2 : 1, quarter = L / 4 > 1 ? L / 4 : 1;
    switch (v->kind) {
    case RV_PI:
    case RV_NTK:
        return parse_factor(&vs, 1, 1.0, 1, v, err);
    case RV_DYNAMIC_NTK:
        return parse_factor(&vs, 0, 2.0, 0, v, err);
    case RV_YARN:
        rc = parse_factor(&vs, 1, 1.0, 1, v, err);
        if (!rc) rc = pe_opt_double(&vs, "beta_fast", 32.0, 1e-6, 1e6, &v->beta_fast, err);
        if (!rc) rc = pe_opt_double(&vs, "beta_slow", 1.0, 1e-6, 1e6, &v->beta_slow, err);
        if (!rc && !(st->base > 1.0))
            rc = cb_error(err, CB_EINPUT, "%s: needs a base above 1, got %g", vs.name, st->base);
        return rc;
    case RV_LLAMA3:
        rc = parse_factor(&vs, 1, 1.0, 1, v, err);
        if (!rc) rc = pe_opt_double(&vs, "low_freq_factor", 1.0, 1e-6, 1e6, &v->low_freq_factor, err);
        if (!rc) rc = pe_opt_double(&vs, "high_freq_factor", 4.0, 1e-6, 1e6, &v->high_freq_factor, err);
        if (!rc && !(v->high_freq_factor > v->low_freq_factor))
            rc = cb_error(err, CB_EINPUT, "%s: high_freq_factor %g must exceed low_freq_factor %g", vs.name,
                          v->high_freq_factor, v->low_freq_factor);
        return rc;
    case RV_SELF_EXTEND:
        rc = pe_opt_int(&vs, "group", 4, 1, (long long)CB_MAX_CONTEXT, &v->group, err);
        if (!rc) rc = pe_opt_int(&vs, "window", quarter, 1, (long long)CB_MAX_CONTEXT, &v->window, err);
        return rc;
    case RV_REROPE:
    case RV_LEAKY_REROPE:
        rc = pe_opt_int(&vs, "window", half, 1, (long long)CB_MAX_CONTEXT, &v->window, err);
        if (!rc && v->kind == RV_LEAKY_REROPE) rc = pe_opt_double(&vs, "k", 16.0, 1.0, 1e6, &v->leak, err);
        if (!rc) rc = pe_opt_int(&vs, "logn", 0, 0, 1, &v->logn, err);
        break;
    case RV_LOGN:
        v->logn = 1;
        break;
    case RV_LAMBDA:
        rc = pe_opt_int(&vs, "local", L, 1, (long long)CB_MAX_CONTEXT, &v->local, err);
        if (!rc) rc = pe_opt_int(&vs, "global", 10, 0, (long long)CB_MAX_CONTEXT, &v->global, err);
        if (!rc) rc = pe_opt_int(&vs, "limit", v->local, 0, (long long)CB_MAX_CONTEXT, &v->limit, err);
        return rc;
    case RV_NONE:
        break;
    }
    if (!rc && v->logn && L < 2)
        return cb_error(err, CB_EINPUT, "%s: log-n scaling needs a training context of at least 2, got %d", vs.name,
                        L);
    return rc;
}

/* d / (d - 2), the NTK exponent; a single pair (d = 2) has theta = 1 whatever the base. */
static double ntk_exponent(int d) { return d > 2 ? (double)d / (double)(d - 2) : 1.0; }

static void freqs_from_base(double base, int d, double *inv) {
    for (int t = 0; t < d / 2; t++) inv[t] = pow(base, -2.0 * t / d);
}

/* Pair index where the wavelength fits n_rot times into L (§18.2 corr_dim). */
static double yarn_corr_dim(double n_rot, int d, double base, int L) {
    return d * log((double)L / (n_rot * 2.0 * M_PI)) / (2.0 * log(base));
}

void rope_variant_freqs(const RopeState *st, int n, double *inv, RopeFreqInfo *info) {
    const RopeVariant *v = &st->var;
    int d = st->d_rot, np = d / 2, L = st->train_ctx;
    double s = v->auto_factor ? (n > L ? (double)n / L : 1.0) : v->factor;
    memcpy(inv, st->inv_freq, sizeof(double) * (size_t)np);
    *info = (RopeFreqInfo){.s = 1.0, .base = st->base, .mscale = 1.0};
    switch (v->kind) {
    case RV_PI:
        if (s <= 1.0) return;
        for (int t = 0; t < np; t++) inv[t] = st->inv_freq[t] / s;
        info->s = s;
        return;
    case RV_NTK:
        if (s <= 1.0) return;
        info->s = s;
        info->base = st->base * pow(s, ntk_exponent(d));
        freqs_from_base(info->base, d, inv);
        return;
    case RV_DYNAMIC_NTK:
        /* HF: seq_len = n; unchanged up to L. info->s is the effective factor s n/L - (s - 1). */
        if (n <= L || v->factor <= 1.0) return;
        info->s = v->factor * n / L - (v->factor - 1.0);
        info->base = st->base * pow(info->s, ntk_exponent(d));
        freqs_from_base(info->base, d, inv);
        return;
    case RV_YARN: {
        if (s <= 1.0) return;
        double low = floor(yarn_corr_dim(v->beta_fast, d, st->base, L));
        double high = ceil(yarn_corr_dim(v->beta_slow, d, st->base, L));
        if (low < 0) low = 0;
        if (high > d - 1) high = d - 1; /* d - 1, not d/2 - 1: the references' quirk (§18.2) */
        if (low == high) high += 0.001;
        for (int t = 0; t < np; t++) {
            double ramp = (t - low) / (high - low);
            ramp = ramp < 0 ? 0 : ramp > 1 ? 1 : ramp;
            double w_ext = 1.0 - ramp; /* extrapolation weight, ext_factor 1 */
            inv[t] = st->inv_freq[t] / s * (1.0 - w_ext) + st->inv_freq[t] * w_ext;
        }
        info->s = s;
        info->mscale = 0.1 * log(s) + 1.0;
        info->low = low;
        info->high = high;
        return;
    }
    case RV_LLAMA3: {
        if (s <= 1.0) return;
        double low_wl = L / v->low_freq_factor, high_wl = L / v->high_freq_factor;
        for (int t = 0; t < np; t++) {
            double th = st->inv_freq[t], wl = 2.0 * M_PI / th;
            if (wl < high_wl) inv[t] = th;
            else if (wl > low_wl) inv[t] = th / s;
            else {
                double sigma = (L / wl - v->low_freq_factor) / (v->high_freq_factor - v->low_freq_factor);
                inv[t] = (1.0 - sigma) * th / s + sigma * th;
            }
        }
        info->s = s;
        return;
    }
    default:
        return;
    }
}

int rope_variant_has_alt(const RopeVariant *v) {
    return v->kind == RV_SELF_EXTEND || v->kind == RV_REROPE || v->kind == RV_LEAKY_REROPE ||
           v->kind == RV_LAMBDA;
}

int rope_variant_has_q_scale(const RopeVariant *v) { return v->logn; }

double rope_variant_q_scale(const RopeState *st, int p) {
    if (!st->var.logn) return 1.0;
    double k = log((double)p + 1.0) / log((double)st->train_ctx);
    return k > 1.0 ? k : 1.0;
}

void rope_variant_alt_pos(const RopeState *st, int p, double *aq, double *ak) {
    const RopeVariant *v = &st->var;
    *aq = *ak = p;
    switch (v->kind) {
    case RV_SELF_EXTEND:
        *aq = p / v->group + v->window - v->window / v->group;
        *ak = p / v->group;
        return;
    case RV_REROPE:
        *aq = v->window;
        *ak = 0;
        return;
    case RV_LEAKY_REROPE:
        *aq = p + (double)v->window * (v->leak - 1.0);
        *ak = p;
        return;
    case RV_LAMBDA:
        *aq = v->limit;
        *ak = 0;
        return;
    default:
        return;
    }
}

double rope_variant_alt_angle(const RopeState *st) {
    return st->var.kind == RV_LEAKY_REROPE ? 1.0 / st->var.leak : 1.0;
}

void rope_variant_alt_row(const RopeState *st, int i, int *alt_end, int *mask_lo, int *mask_hi) {
    const RopeVariant *v = &st->var;
    *alt_end = *mask_lo = *mask_hi = 0;
    int far_end; /* keys j < far_end are at distance >= the window */
    switch (v->kind) {
    case RV_SELF_EXTEND:
    case RV_REROPE:
    case RV_LEAKY_REROPE:
        far_end = i - v->window + 1;
        *alt_end = far_end > 0 ? far_end : 0;
        return;
    case RV_LAMBDA:
        far_end = i - v->local + 1;
        if (far_end <= 0) return;
        *alt_end = far_end < v->global ? far_end : v->global;
        if (far_end > v->global) {
            *mask_lo = v->global;
            *mask_hi = far_end;
        }
        return;
    default:
        return;
    }
}

void rope_variant_max_rel(const RopeState *st, int n, double *d_ord, double *d_alt) {
    *d_ord = n > 1 ? n - 1 : 0;
    *d_alt = 0.0;
    if (!rope_variant_has_alt(&st->var)) return;
    /* ak_pos is non-decreasing in j for every variant (j / G, 0, j), so key 0 is the farthest of a
       query's alternative keys; the nearest ordinary key is alt_end, or the mask's end. */
    double angle = rope_variant_alt_angle(st), aq, ak0;
    rope_variant_alt_pos(st, 0, &aq, &ak0);
    *d_ord = 0.0;
    for (int i = 0; i < n; i++) {
        int alt_end, mask_lo, mask_hi;
        rope_variant_alt_row(st, i, &alt_end, &mask_lo, &mask_hi);
        if (alt_end > 0) {
            double ak;
            rope_variant_alt_pos(st, i, &aq, &ak);
            double r = (aq - ak0) * angle;
            if (r > *d_alt) *d_alt = r;
        }
        int j0 = alt_end >= mask_lo && alt_end < mask_hi ? mask_hi : alt_end;
        if (j0 <= i && i - j0 > *d_ord) *d_ord = i - j0;
    }
}
