/*
 * pe.c — the registry of positional-encoding schemes, spec-string parsing, and the helpers every
 * scheme uses to read its options. A new scheme is one file in src/pe/ plus one line below.
 */
#include "pe/pe.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

extern const PeScheme pe_nope;
extern const PeScheme pe_sinusoidal;
extern const PeScheme pe_learned;
extern const PeScheme pe_rope;
extern const PeScheme pe_alibi;
extern const PeScheme pe_t5;
extern const PeScheme pe_xpos;
extern const PeScheme pe_kerple;
extern const PeScheme pe_fire;
extern const PeScheme pe_sandwich;
extern const PeScheme pe_shaw;
extern const PeScheme pe_cope;

static const PeScheme *const registry[] = {
    &pe_nope,
    &pe_sinusoidal,
    &pe_learned,
    &pe_rope,
    &pe_alibi,
    &pe_t5,
    &pe_xpos,
    &pe_kerple,
    &pe_fire,
    &pe_sandwich,
    &pe_shaw,
    &pe_cope,
    NULL,
};

const PeScheme *const *pe_all(void) { return registry; }

const PeScheme *pe_find(const char *name) {
    if (!name) return NULL;
    for (const PeScheme *const *s = registry; *s; s++)
        if (strcmp((*s)->name, name) == 0) return *s;
    return NULL;
}

/* Names and keys: letters, digits, '_' and '-' (variants such as "dynamic-ntk"). */
static int is_name_char(char c) { return isalnum((unsigned char)c) || c == '_' || c == '-'; }

/* Copies [s, s+len) into dst (cap bytes) as a checked identifier; what names it in messages. */
static int copy_name(const char *text, const char *what, const char *s, size_t len, char *dst,
                     size_t cap, char *err) {
    if (len == 0) return cb_error(err, CB_EINPUT, "scheme spec '%s': empty %s", text, what);
    if (len >= cap)
        return cb_error(err, CB_EINPUT, "scheme spec '%s': %s '%.*s' is longer than %zu characters",
                        text, what, (int)len, s, cap - 1);
    for (size_t i = 0; i < len; i++)
        if (!is_name_char(s[i]))
            return cb_error(err, CB_EINPUT, "scheme spec '%s': %s '%.*s' has an invalid character '%c'",
                            text, what, (int)len, s, s[i]);
    memcpy(dst, s, len);
    dst[len] = '\0';
    return CB_OK;
}

/* Parses "k=v,k=v" in [s, end) into opts. */
static int parse_opts(const char *text, const char *s, const char *end, PeOption *opts, int *n_opts,
                      char *err) {
    *n_opts = 0;
    if (s == end) return cb_error(err, CB_EINPUT, "scheme spec '%s': ':' must be followed by options", text);
    while (s < end) {
        const char *comma = memchr(s, ',', (size_t)(end - s));
        const char *item_end = comma ? comma : end;
        const char *eq = memchr(s, '=', (size_t)(item_end - s));
        const char *key_end = eq ? eq : item_end;
        if (*n_opts >= PE_MAX_OPTS)
            return cb_error(err, CB_EINPUT, "scheme spec '%s': more than %d options", text, PE_MAX_OPTS);
        PeOption *o = &opts[*n_opts];
        int rc = copy_name(text, "option", s, (size_t)(key_end - s), o->key, sizeof o->key, err);
        if (rc) return rc;
        if (!eq || eq + 1 == item_end)
            return cb_error(err, CB_EINPUT, "scheme spec '%s': option '%s' has no value", text, o->key);
        size_t vlen = (size_t)(item_end - eq - 1);
        if (vlen >= sizeof o->value)
            return cb_error(err, CB_EINPUT, "scheme spec '%s': value of option '%s' is longer than %zu characters",
                            text, o->key, sizeof o->value - 1);
        memcpy(o->value, eq + 1, vlen);
        o->value[vlen] = '\0';
        if (strpbrk(o->value, "=:+"))
            return cb_error(err, CB_EINPUT, "scheme spec '%s': value '%s' of option '%s' contains '=', ':' or '+'",
                            text, o->value, o->key);
        for (int k = 0; k < *n_opts; k++)
            if (strcmp(opts[k].key, o->key) == 0)
                return cb_error(err, CB_EINPUT, "scheme spec '%s': option '%s' given twice", text, o->key);
        (*n_opts)++;
        if (comma && comma + 1 == end)
            return cb_error(err, CB_EINPUT, "scheme spec '%s': trailing ','", text);
        s = comma ? comma + 1 : end;
    }
    return CB_OK;
}

int pe_spec_parse(const char *text, PeSpec *spec, char *err) {
    memset(spec, 0, sizeof *spec);
    if (!text || !*text) return cb_error(err, CB_EINPUT, "empty scheme spec");
    for (const char *c = text; *c; c++)
        if (isspace((unsigned char)*c) || !isprint((unsigned char)*c))
            return cb_error(err, CB_EINPUT, "scheme spec '%s': whitespace or control character", text);
    const char *end = text + strlen(text);
    const char *plus = strchr(text, '+');
    const char *main_end = plus ? plus : end;

    const char *colon = memchr(text, ':', (size_t)(main_end - text));
    const char *name_end = colon ? colon : main_end;
    int rc = copy_name(text, "scheme name", text, (size_t)(name_end - text), spec->name, sizeof spec->name, err);
    if (rc) return rc;
    if (colon) {
        rc = parse_opts(text, colon + 1, main_end, spec->opts, &spec->n_opts, err);
        if (rc) return rc;
    }
    if (plus) {
        const char *v = plus + 1;
        if (strchr(v, '+'))
            return cb_error(err, CB_EINPUT, "scheme spec '%s': more than one '+variant'", text);
        const char *vcolon = strchr(v, ':');
        const char *vname_end = vcolon ? vcolon : end;
        rc = copy_name(text, "variant name", v, (size_t)(vname_end - v), spec->variant, sizeof spec->variant, err);
        if (rc) return rc;
        if (vcolon) {
            rc = parse_opts(text, vcolon + 1, end, spec->vopts, &spec->n_vopts, err);
            if (rc) return rc;
        }
    }
    return CB_OK;
}

static void known_names(char *buf, size_t n) {
    size_t used = 0;
    buf[0] = '\0';
    for (const PeScheme *const *s = registry; *s && used < n; s++) {
        int w = snprintf(buf + used, n - used, "%s%s", used ? ", " : "", (*s)->name);
        if (w < 0) break;
        used += (size_t)w;
    }
}

int pe_create(PeModel *pe, const char *spec_text, const PeDims *dims, char *err) {
    memset(pe, 0, sizeof *pe);
    int rc = pe_spec_parse(spec_text, &pe->spec, err);
    if (rc) return rc;
    const PeScheme *s = pe_find(pe->spec.name);
    if (!s) {
        char names[256];
        known_names(names, sizeof names);
        rc = cb_error(err, CB_EINPUT, "unknown positional encoding '%s' (known: %s)", pe->spec.name, names);
        memset(pe, 0, sizeof *pe);
        return rc;
    }
    if (!dims || dims->n_head <= 0 || dims->head_size <= 0 || dims->n_layer <= 0 ||
        dims->d_model != dims->n_head * dims->head_size || dims->train_ctx <= 0) {
        memset(pe, 0, sizeof *pe);
        return cb_error(err, CB_EINPUT, "%s: invalid model dimensions", s->name);
    }
    pe->scheme = s;
    pe->dims = *dims;
    if (s->init) {
        rc = s->init(pe, err);
        if (rc) {
            pe_destroy(pe);
            return rc;
        }
    } else if (pe->spec.n_opts > 0 || pe->spec.variant[0]) {
        /* A scheme without init takes no options and no variants. */
        rc = pe->spec.variant[0]
                 ? cb_error(err, CB_EINPUT, "unknown eval-time variant '%s' for scheme '%s'", pe->spec.variant, s->name)
                 : cb_error(err, CB_EINPUT, "%s: unknown option '%s' (the scheme takes no options)", s->name,
                            pe->spec.opts[0].key);
        pe_destroy(pe);
        return rc;
    }
    return CB_OK;
}

void pe_destroy(PeModel *pe) {
    if (!pe) return;
    if (pe->scheme && pe->scheme->destroy) pe->scheme->destroy(pe);
    memset(pe, 0, sizeof *pe);
}

void pe_canonical(const PeModel *pe, char *buf, size_t n) {
    if (n == 0) return;
    buf[0] = '\0';
    if (!pe->scheme) return;
    char opts[512] = "";
    if (pe->scheme->canonical) pe->scheme->canonical(pe, opts, sizeof opts);
    /* '+' starts a variant, so an exponent printed by %g ("5.000055e+07") loses its sign: the
       canonical form must parse again (found by fuzz/fuzz_spec.c). */
    for (char *r = opts, *o = opts;; r++) {
        if (*r == '+' && r > opts && (r[-1] == 'e' || r[-1] == 'E')) continue;
        if (!(*o++ = *r)) break;
    }
    size_t used = 0;
    int w = snprintf(buf, n, "%s%s%s", pe->scheme->name, opts[0] ? ":" : "", opts);
    if (w < 0 || (size_t)w >= n) return;
    used = (size_t)w;
    /* Variants own their options' canonical form once they exist; until then they print as given. */
    if (pe->spec.variant[0]) {
        w = snprintf(buf + used, n - used, "+%s", pe->spec.variant);
        if (w < 0 || (size_t)w >= n - used) return;
        used += (size_t)w;
        for (int k = 0; k < pe->spec.n_vopts; k++) {
            w = snprintf(buf + used, n - used, "%c%s=%s", k ? ',' : ':', pe->spec.vopts[k].key,
                         pe->spec.vopts[k].value);
            if (w < 0 || (size_t)w >= n - used) return;
            used += (size_t)w;
        }
    }
}

int pe_prepare(PeModel *pe, int n, char *err) {
    if (!pe->scheme) return cb_error(err, CB_EINPUT, "positional encoding not created");
    if (n <= 0 || (size_t)n > CB_MAX_CONTEXT)
        return cb_error(err, CB_EINPUT, "%s: context %d out of range [1, %zu]", pe->scheme->name, n, CB_MAX_CONTEXT);
    if (pe->scheme->prepare) {
        int rc = pe->scheme->prepare(pe, n, err);
        if (rc) return rc;
    }
    pe->ctx = n;
    return CB_OK;
}

size_t pe_param_count(const PeModel *pe) {
    return pe->scheme && pe->scheme->param_count ? pe->scheme->param_count(pe) : 0;
}

size_t pe_state_bytes(const PeModel *pe, int n) {
    return pe->scheme && pe->scheme->state_bytes ? pe->scheme->state_bytes(pe, n) : 0;
}

double pe_rotary_unseen_share(const double *theta, const double *reach, int np, double P) {
    if (np < 1) return NAN;
    int out = 0;
    for (int t = 0; t < np; t++)
        if (P * theta[t] < 2.0 * M_PI && reach[t] >= (P + 1.0) * theta[t]) out++;
    return (double)out / np;
}

double pe_unseen_angle_share(const PeModel *pe, int n, int *pairs) {
    if (pairs) *pairs = 0;
    return pe->scheme && pe->scheme->unseen_angle_share ? pe->scheme->unseen_angle_share(pe, n, pairs) : NAN;
}

const char *pe_opt(const PeSpec *spec, const char *key) {
    for (int k = 0; k < spec->n_opts; k++)
        if (strcmp(spec->opts[k].key, key) == 0) return spec->opts[k].value;
    return NULL;
}

int pe_check_keys(const PeSpec *spec, const char *const *known, char *err) {
    for (int k = 0; k < spec->n_opts; k++) {
        int found = 0;
        for (const char *const *q = known; *q && !found; q++) found = strcmp(*q, spec->opts[k].key) == 0;
        if (found) continue;
        char list[256] = "";
        size_t used = 0;
        for (const char *const *q = known; *q && used < sizeof list; q++) {
            int w = snprintf(list + used, sizeof list - used, "%s%s", used ? ", " : "", *q);
            if (w < 0) break;
            used += (size_t)w;
        }
        if (!known[0])
            return cb_error(err, CB_EINPUT, "%s: unknown option '%s' (the scheme takes no options)", spec->name,
                            spec->opts[k].key);
        return cb_error(err, CB_EINPUT, "%s: unknown option '%s' (known: %s)", spec->name, spec->opts[k].key, list);
    }
    return CB_OK;
}

/* %g without the exponent's '+' and leading zeros: 1e+12 -> 1e12, 1e-05 -> 1e-5. */
static void fmt_num(double x, char *buf, size_t n) {
    char tmp[48];
    snprintf(tmp, sizeof tmp, "%g", x);
    size_t o = 0;
    for (const char *c = tmp; *c && o + 1 < n; c++) {
        buf[o++] = *c;
        if (*c != 'e') continue;
        if (c[1] == '+') c++;
        else if (c[1] == '-' && o + 1 < n) buf[o++] = *++c;
        while (c[1] == '0' && c[2]) c++;
    }
    buf[o] = '\0';
}

int pe_opt_double(const PeSpec *spec, const char *key, double def, double lo, double hi, double *out, char *err) {
    const char *v = pe_opt(spec, key);
    if (!v) {
        *out = def;
        return CB_OK;
    }
    double x;
    if (parse_double(v, &x) || !(x >= lo && x <= hi)) {
        char a[48], b[48];
        fmt_num(lo, a, sizeof a);
        fmt_num(hi, b, sizeof b);
        return cb_error(err, CB_EINPUT, "%s: option '%s' must be a number in [%s, %s], got '%s'", spec->name, key,
                        a, b, v);
    }
    *out = x;
    return CB_OK;
}

int pe_opt_int(const PeSpec *spec, const char *key, long long def, long long lo, long long hi, int *out, char *err) {
    const char *v = pe_opt(spec, key);
    long long x = def;
    if (v && (parse_long(v, &x) || x < lo || x > hi))
        return cb_error(err, CB_EINPUT, "%s: option '%s' must be an integer in [%lld, %lld], got '%s'", spec->name,
                        key, lo, hi, v);
    if (x < -2147483647LL - 1 || x > 2147483647LL)
        return cb_error(err, CB_EINPUT, "%s: option '%s' does not fit an int", spec->name, key);
    *out = (int)x;
    return CB_OK;
}
