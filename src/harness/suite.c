/*
 * suite.c — reading a suite file (INI, through inih) into a Suite, validating every value, and
 * expanding the grid into experiments and cases.
 *
 * inih's handler does not get line numbers, so the text is fed through our own reader, which
 * counts lines and classifies each one the way inih will (blank or comment, section header,
 * key line, or an indented continuation of the previous key). That lets every message name the
 * file, line, section and key, and lets parsing stop at the first error: the reader then returns
 * NULL, which ends inih's loop.
 *
 * A key's value is validated when the next section or key line starts (or at the end of the
 * file), so that indented continuation lines can extend a long list first. Checks that involve
 * several keys (d_model against heads, contexts against eval_bytes, schemes against the model
 * dimensions) run once the whole file has been read, and name the line of the key they concern.
 */
#include "harness/suite.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/data.h"
#include "pe/pe.h"

#define SUITE_MAX_FILE ((size_t)1 << 20)

/* ---- the keys ------------------------------------------------------------------------------ */

typedef enum {
    V_INTS,    /* int list, ranges allowed */
    V_SEEDS,   /* uint64_t list, ranges allowed */
    V_DOUBLES, /* double list */
    V_INT,     /* one int */
    V_SIZE,    /* one size_t */
    V_NAME,    /* suite name */
    V_SOURCE,  /* corpus source */
    V_SCHEMES, /* list of scheme specs */
    V_TASKS,   /* list of task names */
    V_REAL,    /* one double in [dlo, dhi] with open ends where set */
    V_PRECISION, /* one of precision_names */
} ValueKind;

typedef struct {
    const char *section, *key;
    ValueKind kind;
    unsigned long long lo, hi; /* integer kinds: allowed range */
    double dlo, dhi;           /* V_DOUBLES: allowed range ... */
    int lo_open, hi_open;      /* ... with open ends where set */
    const char *range_text;    /* V_DOUBLES: the range as shown in messages */
    size_t off, n_off;         /* where the values and their count live in Suite */
} KeyDef;

#define F(field) offsetof(Suite, field)
#define INTS(sec, key, lo, hi, field) {sec, key, V_INTS, lo, hi, 0, 0, 0, 0, NULL, F(field), F(n_##field)}
#define DBLS(sec, key, lo, hi, lo_open, hi_open, text, field) \
    {sec, key, V_DOUBLES, 0, 0, lo, hi, lo_open, hi_open, text, F(field), F(n_##field)}

static const KeyDef keys[] = {
    {"suite", "name", V_NAME, 0, 0, 0, 0, 0, 0, NULL, F(name), 0},
    {"suite", "seeds", V_SEEDS, 0, (1ULL << 63), 0, 0, 0, 0, NULL, F(seeds), F(n_seeds)},
    {"suite", "threads", V_INT, 0, 1024, 0, 0, 0, 0, NULL, F(threads), 0},
    {"corpus", "source", V_SOURCE, 0, 0, 0, 0, 0, 0, NULL, F(corpus_source), 0},
    {"corpus", "eval_bytes", V_SIZE, 16, (1ULL << 30), 0, 0, 0, 0, NULL, F(eval_bytes), 0},
    INTS("model", "layers", 1, 64, layers),
    INTS("model", "d_model", 8, 4096, d_model),
    INTS("model", "heads", 1, 64, heads),
    INTS("model", "mlp_ratio", 1, 16, mlp_ratio),
    {"train", "context", V_INTS, 8, 65536, 0, 0, 0, 0, NULL, F(train_ctx), F(n_train_ctx)},
    INTS("train", "steps", 1, 10000000, steps),
    INTS("train", "batch", 1, 4096, batch),
    INTS("train", "warmup", 0, 10000000, warmup),
    DBLS("train", "lr", 0.0, 1.0, 1, 0, "(0, 1]", lr),
    DBLS("train", "min_lr_ratio", 0.0, 1.0, 0, 0, "[0, 1]", min_lr_ratio),
    DBLS("train", "weight_decay", 0.0, 1.0, 0, 0, "[0, 1]", weight_decay),
    DBLS("train", "grad_clip", 0.0, 1e30, 0, 0, ">= 0", grad_clip),
    DBLS("train", "beta1", 0.0, 1.0, 0, 1, "[0, 1)", beta1),
    DBLS("train", "beta2", 0.0, 1.0, 0, 1, "[0, 1)", beta2),
    INTS("eval", "contexts", 2, CB_MAX_CONTEXT, contexts),
    {"eval", "schemes", V_SCHEMES, 0, 0, 0, 0, 0, 0, NULL, F(schemes), F(n_schemes)},
    {"eval", "tasks", V_TASKS, 0, 0, 0, 0, 0, 0, NULL, F(tasks), F(n_tasks)},
    /* Perplexity: stride S = n / k for every k listed (1 = non-overlapping windows). */
    INTS("eval", "stride_divisors", 1, 4096, stride_divisors),
    /* Passkey retrieval: depths of the key in the filler (0 = start, 1 = end) and trials per cell. */
    DBLS("eval", "passkey_depths", 0.0, 1.0, 0, 0, "[0, 1]", passkey_depths),
    {"eval", "passkey_trials", V_INT, 1, 100000, 0, 0, 0, 0, NULL, F(passkey_trials), 0},
    /* Share of training windows replaced by passkey episodes. */
    {"train", "passkey_share", V_REAL, 0, 0, 0.0, 1.0, 0, 0, "[0, 1]", F(passkey_share), 0},
    /* Operands of the linear layers' training GEMMs: fp32, or bf16 with fp32 accumulation. */
    {"train", "precision", V_PRECISION, 0, 0, 0, 0, 0, 0, NULL, F(precision), 0},
    /* Limits on every child process (a model's training, each case's evaluation); 0 = none. */
    {"limits", "time", V_REAL, 0, 0, 0.0, 31536000.0, 1, 0, "(0, 31536000] seconds", F(time_limit), 0},
    {"limits", "memory", V_SIZE, 1, (1ULL << 24), 0, 0, 0, 0, NULL, F(memory_limit_mb), 0},
    /* `ctxbench compare` / `nightly`: relative change past which a metric is flagged. */
    {"compare", "threshold", V_REAL, 0, 0, 0.0, 10.0, 1, 0, "(0, 10]", F(compare_threshold), 0},
    /* The task "cost": timed repetitions, warm-up runs before them, and the largest context at
       which a training step is timed (0 = never; a training step keeps (NH, n, n) scores). */
    {"cost", "repeats", V_INT, 1, 100, 0, 0, 0, 0, NULL, F(cost_repeats), 0},
    {"cost", "warmup", V_INT, 0, 10, 0, 0, 0, 0, NULL, F(cost_warmup), 0},
    {"cost", "train_limit", V_INT, 0, CB_MAX_CONTEXT, 0, 0, 0, 0, NULL, F(cost_train_limit), 0},
    /* Seconds a case's timed runs may use before it stops repeating (after at least one run);
       0 = always `repeats`. Keeps the largest contexts to one run each. */
    {"cost", "budget", V_REAL, 0, 0, 0.0, 86400.0, 0, 0, "[0, 86400]", F(cost_budget), 0},
};
#undef INTS
#undef DBLS
#undef F

#define N_KEYS ((int)(sizeof keys / sizeof keys[0]))

static const char *const sections[] = {"suite", "corpus", "model", "train", "eval", "limits", "compare", "cost",
                                       NULL};
/* "cost_fit" is not among them: suite_expand adds it after "cost". */
static const char *const task_names[] = {"perplexity", "passkey", "cost", NULL};
/* Indexed by Precision. */
static const char *const precision_names[] = {"fp32", "bf16", NULL};

static int key_index(const char *section, const char *key) {
    for (int i = 0; i < N_KEYS; i++)
        if (strcmp(keys[i].section, section) == 0 && strcmp(keys[i].key, key) == 0) return i;
    return -1;
}

static int is_section(const char *name) {
    for (const char *const *s = sections; *s; s++)
        if (strcmp(*s, name) == 0) return 1;
    return 0;
}

/* ---- parser state and errors ----------------------------------------------------------------- */

typedef struct {
    Suite *s;
    const char *path;
    const char *p, *end; /* text not yet handed to inih */
    int line;            /* number of the line inih is working on */
    int in_key;          /* a key line was seen since the last section: indented lines continue it */
    int cont;            /* the current line is such a continuation */
    int rc;              /* first error, CB_OK until then */
    char *err;
    int key_line[N_KEYS]; /* line where each key was set, 0 = not set */
    int pend;            /* key whose value awaits validation, -1 if none */
    char *pend_val;
    size_t pend_len, pend_cap;
} Parser;

/* Records the first error as "PATH:LINE: [section] key: message" (no LINE when line is 0). */
static int fail_key(Parser *P, int line, int k, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int fail_key(Parser *P, int line, int k, const char *fmt, ...) {
    if (P->rc) return P->rc;
    char msg[CB_ERR_LEN], where[32] = "";
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (line > 0) snprintf(where, sizeof where, ":%d", line);
    P->rc = cb_error(P->err, CB_EINPUT, "%s%s: [%s] %s: %s", P->path, where, keys[k].section, keys[k].key, msg);
    return P->rc;
}

/* Same for errors that belong to a line but not to a known key. */
static int fail_line(Parser *P, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail_line(Parser *P, const char *fmt, ...) {
    if (P->rc) return P->rc;
    char msg[CB_ERR_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    P->rc = cb_error(P->err, CB_EINPUT, "%s:%d: %s", P->path, P->line, msg);
    return P->rc;
}

/* ---- list items ---------------------------------------------------------------------------- */

/* Splits a comma-separated list into trimmed, non-empty items (in place). For scheme lists an
   item "k=v" right after a spec with options continues it: "rope:base=1,scale=2" stays one. */
static int split_list(char *v, char **items, int max, int join_opts, int *n_out) {
    int n = 0;
    char *s = v;
    for (;;) {
        char *comma = strchr(s, ',');
        if (comma) *comma = '\0';
        while (isspace((unsigned char)*s)) s++;
        char *e = s + strlen(s);
        while (e > s && isspace((unsigned char)e[-1])) *--e = '\0';
        if (*s) {
            if (join_opts && n > 0 && strchr(s, '=') && !strpbrk(s, ":+") && strchr(items[n - 1], ':')) {
                /* Re-join with the previous item: move this one right after it, behind a ','. */
                char *prev_end = items[n - 1] + strlen(items[n - 1]);
                *prev_end = ',';
                memmove(prev_end + 1, s, strlen(s) + 1);
            } else {
                if (n == max) return -1;
                items[n++] = s;
            }
        }
        if (!comma) break;
        s = comma + 1;
    }
    *n_out = n;
    return 0;
}

/* Parses a whole string as a non-negative integer: 0 ok, -1 not an integer, -2 out of range
   (too large, or negative). */
static int parse_count(const char *s, unsigned long long *out) {
    const char *d = s[0] == '-' ? s + 1 : s;
    if (!*d) return -1;
    for (const char *c = d; *c; c++)
        if (!isdigit((unsigned char)*c)) return -1;
    if (d != s) return -2;
    errno = 0;
    unsigned long long v = strtoull(s, NULL, 10);
    if (errno) return -2;
    *out = v;
    return 0;
}

/* Parses one bound of an integer item and checks it against the key's range. */
static int parse_bound(Parser *P, int k, int line, const char *text, unsigned long long *v) {
    const KeyDef *d = &keys[k];
    int r = parse_count(text, v);
    if (r == -1) return fail_key(P, line, k, "'%s' is not an integer", text);
    if (r == -2 || *v < d->lo || *v > d->hi)
        return fail_key(P, line, k, "'%s' is out of range (%llu..%llu)", text, d->lo, d->hi);
    return CB_OK;
}

/* Parses "N", "A-B" (step +1), "A-B+K" or "A-B*K" and appends the values to vals[*n]. */
static int parse_int_item(Parser *P, int k, int line, char *item, unsigned long long *vals, int *n) {
    char *dash = strchr(item + 1, '-'); /* a leading '-' is a sign, refused as out of range */
    unsigned long long a, b, step = 1;
    char op = '+';
    if (!dash) {
        if (parse_bound(P, k, line, item, &a)) return P->rc;
        b = a;
    } else {
        char full[128];
        snprintf(full, sizeof full, "%s", item);
        *dash = '\0';
        char *bt = dash + 1, *opp = strpbrk(bt, "*+");
        if (opp) {
            op = *opp;
            *opp = '\0';
            int r = parse_count(opp + 1, &step);
            if (r == -1) return fail_key(P, line, k, "range '%s': step '%s' is not an integer", full, opp + 1);
            if (r == -2 || step > (1ULL << 62) || (op == '*' && step < 2) || (op == '+' && step < 1))
                return fail_key(P, line, k, "range '%s': step '%s' must be %s", full, opp + 1,
                                op == '*' ? "at least 2" : "at least 1");
        }
        if (parse_bound(P, k, line, item, &a) || parse_bound(P, k, line, bt, &b)) return P->rc;
        if (a > b) return fail_key(P, line, k, "range '%s': start is larger than end", full);
        if (op == '*' && a == 0) return fail_key(P, line, k, "range '%s': a geometric range cannot start at 0", full);
    }
    for (unsigned long long v = a;;) {
        for (int i = 0; i < *n; i++)
            if (vals[i] == v) return fail_key(P, line, k, "%llu is listed twice", v);
        if (*n == SUITE_MAX_LIST) return fail_key(P, line, k, "more than %d values", SUITE_MAX_LIST);
        vals[(*n)++] = v;
        if (op == '*') {
            if (v > b / step) break;
            v *= step;
        } else {
            if (step > b - v) break;
            v += step;
        }
    }
    return CB_OK;
}

/* ---- validating one key's value ------------------------------------------------------------ */

static void *field(Suite *s, size_t off) { return (char *)s + off; }

static int check_scheme_name(Parser *P, int k, int line, const char *spec_text) {
    char err[CB_ERR_LEN];
    PeSpec spec;
    if (strlen(spec_text) >= sizeof P->s->schemes[0])
        return fail_key(P, line, k, "'%s' is longer than %zu characters", spec_text, sizeof P->s->schemes[0] - 1);
    if (pe_spec_parse(spec_text, &spec, err)) return fail_key(P, line, k, "%s", err);
    if (!pe_find(spec.name)) {
        char known[256] = "";
        size_t used = 0;
        for (const PeScheme *const *s = pe_all(); *s && used < sizeof known; s++) {
            int w = snprintf(known + used, sizeof known - used, "%s%s", used ? ", " : "", (*s)->name);
            if (w < 0) break;
            used += (size_t)w;
        }
        return fail_key(P, line, k, "unknown scheme '%s' (known: %s)", spec.name, known);
    }
    return CB_OK;
}

static int check_value(Parser *P, int k, int line, char *v) {
    const KeyDef *d = &keys[k];
    Suite *s = P->s;
    char *items[SUITE_MAX_LIST];
    int n = 0;
    int is_list = d->kind == V_INTS || d->kind == V_SEEDS || d->kind == V_DOUBLES || d->kind == V_SCHEMES ||
                  d->kind == V_TASKS;
    if (!*v) return fail_key(P, line, k, "empty value");
    if (d->kind == V_INT || d->kind == V_SIZE || d->kind == V_REAL || d->kind == V_PRECISION) {
        if (strchr(v, ',')) return fail_key(P, line, k, "'%s': expects one value, not a list", v);
    } else if (is_list) {
        int max = d->kind == V_TASKS ? (int)(sizeof s->tasks / sizeof s->tasks[0]) : SUITE_MAX_LIST;
        if (split_list(v, items, max, d->kind == V_SCHEMES, &n))
            return fail_key(P, line, k, "more than %d values", max);
        if (n == 0) return fail_key(P, line, k, "empty list");
    }

    switch (d->kind) {
    case V_INTS:
    case V_SEEDS: {
        unsigned long long vals[SUITE_MAX_LIST];
        int nv = 0;
        for (int i = 0; i < n; i++)
            if (parse_int_item(P, k, line, items[i], vals, &nv)) return P->rc;
        for (int i = 0; i < nv; i++) {
            if (d->kind == V_SEEDS) ((uint64_t *)field(s, d->off))[i] = vals[i];
            else ((int *)field(s, d->off))[i] = (int)vals[i];
        }
        *(int *)field(s, d->n_off) = nv;
        return CB_OK;
    }
    case V_DOUBLES: {
        double *out = field(s, d->off);
        for (int i = 0; i < n; i++) {
            double x;
            if (parse_double(items[i], &x)) return fail_key(P, line, k, "'%s' is not a number", items[i]);
            if (x < d->dlo || x > d->dhi || (d->lo_open && x == d->dlo) || (d->hi_open && x == d->dhi))
                return fail_key(P, line, k, "'%s' is out of range %s", items[i], d->range_text);
            for (int j = 0; j < i; j++)
                if (out[j] == x) return fail_key(P, line, k, "'%s' is listed twice", items[i]);
            out[i] = x;
        }
        *(int *)field(s, d->n_off) = n;
        return CB_OK;
    }
    case V_INT:
    case V_SIZE: {
        unsigned long long x;
        if (parse_bound(P, k, line, v, &x)) return P->rc;
        if (d->kind == V_INT) *(int *)field(s, d->off) = (int)x;
        else *(size_t *)field(s, d->off) = (size_t)x;
        return CB_OK;
    }
    case V_REAL: {
        double x;
        if (parse_double(v, &x)) return fail_key(P, line, k, "'%s' is not a number", v);
        if (!(x >= d->dlo && x <= d->dhi) || (d->lo_open && x == d->dlo) || (d->hi_open && x == d->dhi))
            return fail_key(P, line, k, "'%s' is out of range %s", v, d->range_text);
        *(double *)field(s, d->off) = x;
        return CB_OK;
    }
    case V_NAME: {
        if (strlen(v) >= sizeof s->name)
            return fail_key(P, line, k, "'%s' is longer than %zu characters", v, sizeof s->name - 1);
        for (const char *c = v; *c; c++)
            if (!isalnum((unsigned char)*c) && *c != '_' && *c != '-' && *c != '.')
                return fail_key(P, line, k, "'%s' has an invalid character '%c' (letters, digits, '_', '-', '.')",
                                v, *c);
        snprintf(s->name, sizeof s->name, "%s", v);
        return CB_OK;
    }
    case V_SOURCE: {
        char err[CB_ERR_LEN];
        if (corpus_check_source(v, err)) return fail_key(P, line, k, "%s", err);
        snprintf(s->corpus_source, sizeof s->corpus_source, "%s", v);
        return CB_OK;
    }
    case V_SCHEMES:
        for (int i = 0; i < n; i++) {
            if (check_scheme_name(P, k, line, items[i])) return P->rc;
            for (int j = 0; j < i; j++)
                if (strcmp(s->schemes[j], items[i]) == 0)
                    return fail_key(P, line, k, "'%s' is listed twice", items[i]);
            snprintf(s->schemes[i], sizeof s->schemes[i], "%s", items[i]);
        }
        s->n_schemes = n;
        return CB_OK;
    case V_TASKS:
        for (int i = 0; i < n; i++) {
            int known = 0;
            for (const char *const *t = task_names; *t; t++)
                if (strcmp(*t, items[i]) == 0) known = 1;
            if (!known) return fail_key(P, line, k, "unknown task '%s' (known: perplexity, passkey, cost)", items[i]);
            for (int j = 0; j < i; j++)
                if (strcmp(s->tasks[j], items[i]) == 0)
                    return fail_key(P, line, k, "'%s' is listed twice", items[i]);
            snprintf(s->tasks[i], sizeof s->tasks[i], "%s", items[i]);
        }
        s->n_tasks = n;
        return CB_OK;
    case V_PRECISION:
        for (int i = 0; precision_names[i]; i++)
            if (!strcmp(v, precision_names[i])) {
                *(int *)field(s, d->off) = i;
                return CB_OK;
            }
        return fail_key(P, line, k, "unknown precision '%s' (known: fp32, bf16)", v);
    }
    return CB_OK;
}

/* Validates the pending key, if any. */
static int flush(Parser *P) {
    if (P->pend < 0 || P->rc) return P->rc;
    int k = P->pend;
    P->pend = -1;
    return check_value(P, k, P->key_line[k], P->pend_val);
}

static int pend_append(Parser *P, const char *sep, const char *v) {
    size_t need = P->pend_len + strlen(sep) + strlen(v) + 1;
    if (need > P->pend_cap) {
        size_t cap = need * 2;
        char *nv = realloc(P->pend_val, cap);
        if (!nv) return P->rc = cb_error(P->err, CB_ENOMEM, "%s:%d: out of memory", P->path, P->line);
        P->pend_val = nv;
        P->pend_cap = cap;
    }
    P->pend_len += (size_t)sprintf(P->pend_val + P->pend_len, "%s%s", sep, v);
    return CB_OK;
}

/* ---- inih callbacks ------------------------------------------------------------------------ */

/* inih's rule for where a key or a section name ends: at `chars`, or at an inline comment
   (';' after whitespace). */
static const char *find_chars_or_comment(const char *s, const char *chars) {
    int was_space = 0;
    while (*s && !strchr(chars, *s) && !(was_space && *s == ';')) {
        was_space = isspace((unsigned char)*s);
        s++;
    }
    return s;
}

static void trim_copy(char *dst, size_t cap, const char *s, size_t len) {
    while (len && isspace((unsigned char)*s)) s++, len--;
    while (len && isspace((unsigned char)s[len - 1])) len--;
    if (len >= cap) len = cap - 1;
    memcpy(dst, s, len);
    dst[len] = '\0';
}

/* Hands inih one line at a time, counting lines and checking section headers and syntax before
   inih sees them. Returns NULL at the end or after the first error. */
static char *read_line(char *str, int num, void *stream) {
    Parser *P = stream;
    if (P->rc) return NULL;
    if (P->p >= P->end) {
        flush(P);
        return NULL;
    }
    const char *nl = memchr(P->p, '\n', (size_t)(P->end - P->p));
    size_t len = nl ? (size_t)(nl - P->p) : (size_t)(P->end - P->p);
    P->line++;
    if (num < 3 || len > (size_t)num - 2) {
        fail_line(P, "line is longer than %d characters (continue a long list on indented lines)", num - 2);
        return NULL;
    }
    memcpy(str, P->p, len);
    if (nl) str[len++] = '\n';
    str[len] = '\0';
    P->p = nl ? nl + 1 : P->end;

    const char *s = str;
    if (P->line == 1 && (unsigned char)s[0] == 0xEF && (unsigned char)s[1] == 0xBB && (unsigned char)s[2] == 0xBF)
        s += 3;
    const char *start = s;
    while (isspace((unsigned char)*s)) s++;
    P->cont = 0;
    if (!*s || *s == ';' || *s == '#') return str; /* blank or comment */
    if (P->in_key && s > start) {
        P->cont = 1;
        return str;
    }
    if (flush(P)) return NULL;
    if (*s == '[') {
        const char *e = find_chars_or_comment(s + 1, "]");
        if (*e != ']') {
            fail_line(P, "section header without a closing ']'");
            return NULL;
        }
        char name[64];
        trim_copy(name, sizeof name, s + 1, (size_t)(e - s - 1));
        if (!is_section(name)) {
            fail_line(P, "[%s]: unknown section (expected suite, corpus, model, train, eval, limits, compare or cost)",
                      name);
            return NULL;
        }
        P->in_key = 0;
        return str;
    }
    const char *e = find_chars_or_comment(s, "=:");
    if (*e != '=' && *e != ':') {
        char shown[64];
        trim_copy(shown, sizeof shown, s, strcspn(s, "\r\n"));
        fail_line(P, "expected 'key = value', '[section]' or a comment, not '%s'", shown);
        return NULL;
    }
    P->in_key = e > s; /* inih continues only a non-empty key */
    return str;
}

static int on_value(void *user, const char *section, const char *name, const char *value) {
    Parser *P = user;
    if (P->rc) return 0;
    if (P->cont) {
        if (P->pend < 0) return 1;
        return pend_append(P, ",", value) == CB_OK;
    }
    char sec[64];
    trim_copy(sec, sizeof sec, section, strlen(section));
    if (!*sec) {
        fail_line(P, "%s: key outside any section (put it under [suite], [corpus], [model], [train], [eval], "
                  "[limits], [compare] or [cost])", name);
        return 0;
    }
    int k = key_index(sec, name);
    if (k < 0) {
        char known[256] = "";
        size_t used = 0;
        for (int i = 0; i < N_KEYS; i++)
            if (strcmp(keys[i].section, sec) == 0 && used < sizeof known) {
                int w = snprintf(known + used, sizeof known - used, "%s%s", used ? ", " : "", keys[i].key);
                if (w > 0) used += (size_t)w;
            }
        fail_line(P, "[%s] %s: unknown key (expected %s)", sec, name, known);
        return 0;
    }
    if (P->key_line[k]) {
        fail_key(P, P->line, k, "duplicate key (first set on line %d)", P->key_line[k]);
        return 0;
    }
    P->key_line[k] = P->line;
    P->pend = k;
    P->pend_len = 0;
    if (pend_append(P, "", value)) return 0;
    return 1;
}

/* ---- defaults and checks across keys ------------------------------------------------------- */

static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

static void set_defaults(Suite *s) {
    if (!s->n_seeds) s->seeds[0] = 1, s->n_seeds = 1;
    if (!s->corpus_source[0]) snprintf(s->corpus_source, sizeof s->corpus_source, "builtin:prose");
    if (!s->eval_bytes) s->eval_bytes = 65536;
#define DEF(field, value) \
    if (!s->n_##field) s->field[0] = value, s->n_##field = 1;
    DEF(layers, 2) DEF(d_model, 64) DEF(heads, 4) DEF(mlp_ratio, 4)
    DEF(train_ctx, 128) DEF(steps, 300) DEF(batch, 16) DEF(warmup, 30)
    DEF(lr, 3e-3) DEF(min_lr_ratio, 0.1) DEF(weight_decay, 0.1) DEF(grad_clip, 1.0)
    DEF(beta1, 0.9) DEF(beta2, 0.95)
#undef DEF
    if (!s->n_schemes) snprintf(s->schemes[0], sizeof s->schemes[0], "nope"), s->n_schemes = 1;
    if (!s->n_tasks) snprintf(s->tasks[0], sizeof s->tasks[0], "perplexity"), s->n_tasks = 1;
    if (!s->n_stride_divisors) s->stride_divisors[0] = 1, s->n_stride_divisors = 1;
    if (!s->n_passkey_depths) {
        static const double depths[] = {0.0, 0.25, 0.5, 0.75, 1.0};
        for (int i = 0; i < 5; i++) s->passkey_depths[i] = depths[i];
        s->n_passkey_depths = 5;
    }
    if (!s->passkey_trials) s->passkey_trials = 20;
}

/* Default eval contexts: L, 2L, 4L, 8L, 16L for every training context L, ascending. */
static int default_contexts(Parser *P) {
    Suite *s = P->s;
    if (s->n_contexts) return CB_OK;
    for (int i = 0; i < s->n_train_ctx; i++)
        for (int m = 1; m <= 16; m *= 2) {
            int c = s->train_ctx[i] * m, dup = 0;
            for (int j = 0; j < s->n_contexts; j++) dup |= s->contexts[j] == c;
            if (dup) continue;
            if (s->n_contexts == SUITE_MAX_LIST)
                return fail_key(P, 0, key_index("eval", "contexts"),
                                "the default (16 multiples of every training context) has more than %d values",
                                SUITE_MAX_LIST);
            s->contexts[s->n_contexts++] = c;
        }
    qsort(s->contexts, (size_t)s->n_contexts, sizeof s->contexts[0], cmp_int);
    return CB_OK;
}

/* The line of key a if it was set, else of key b (0 if neither): where a cross-key error goes. */
static int line_of(const Parser *P, int a, int b, int *k) {
    *k = P->key_line[a] || !P->key_line[b] ? a : b;
    return P->key_line[*k];
}

static int check_across(Parser *P) {
    Suite *s = P->s;
    int k_dm = key_index("model", "d_model"), k_h = key_index("model", "heads");
    int k_ctx = key_index("eval", "contexts"), k_eb = key_index("corpus", "eval_bytes");
    int k_tc = key_index("train", "context"), k_sch = key_index("eval", "schemes");
    int k;

    if (!s->name[0]) {
        P->rc = cb_error(P->err, CB_EINPUT, "%s: [suite] name: missing (every suite needs a name)", P->path);
        return P->rc;
    }
    for (int i = 0; i < s->n_d_model; i++)
        for (int j = 0; j < s->n_heads; j++) {
            int dm = s->d_model[i], h = s->heads[j];
            int line = line_of(P, k_dm, k_h, &k);
            if (dm % h)
                return fail_key(P, line, k, "d_model %d is not divisible by heads %d", dm, h);
            if ((dm / h) % 2)
                return fail_key(P, line, k, "head size d_model/heads = %d/%d = %d is odd (must be even)", dm, h,
                                dm / h);
        }

    if (default_contexts(P)) return P->rc;
    for (int i = 0; i < s->n_contexts; i++)
        if ((size_t)s->contexts[i] > s->eval_bytes - 1) {
            int line = line_of(P, k_ctx, k_eb, &k);
            return fail_key(P, line, k, "eval context %d needs eval_bytes >= %d (eval_bytes is %zu)",
                            s->contexts[i], s->contexts[i] + 1, s->eval_bytes);
        }
    for (int i = 0; i < s->n_train_ctx; i++)
        if ((size_t)s->train_ctx[i] > s->eval_bytes - 1) {
            int line = line_of(P, k_tc, k_eb, &k);
            return fail_key(P, line, k, "training context %d is also evaluated and needs eval_bytes >= %d "
                            "(eval_bytes is %zu)", s->train_ctx[i], s->train_ctx[i] + 1, s->eval_bytes);
        }

    /* A trial build of every scheme at the first grid point catches bad options and variants. */
    PeDims dims = {
        .n_layer = s->layers[0],
        .n_head = s->heads[0],
        .head_size = s->d_model[0] / s->heads[0],
        .d_model = s->d_model[0],
        .train_ctx = s->train_ctx[0],
    };
    for (int i = 0; i < s->n_schemes; i++) {
        char err[CB_ERR_LEN];
        PeModel pe;
        int rc = pe_create(&pe, s->schemes[i], &dims, err);
        if (rc) return fail_key(P, P->key_line[k_sch], k_sch, "'%s': %s", s->schemes[i], err);
        pe_destroy(&pe);
    }
    return CB_OK;
}

/* ---- loading ------------------------------------------------------------------------------- */

int suite_load_string(Suite *s, const char *path, const char *text, char *err) {
    memset(s, 0, sizeof *s);
    if (!path) path = "(suite)";
    if (!text) return cb_error(err, CB_EINPUT, "%s: no text", path);
    if (strlen(path) >= sizeof s->path)
        return cb_error(err, CB_EINPUT, "suite path is longer than %zu characters", sizeof s->path - 1);
    snprintf(s->path, sizeof s->path, "%s", path);

    /* Defaults set before parsing where 0 is a valid value to write. */
    s->cost_repeats = 5;
    s->cost_warmup = 1;
    s->cost_train_limit = 8192;
    Parser P = {.s = s, .path = s->path, .p = text, .end = text + strlen(text), .err = err, .pend = -1};
    int r = ini_parse_stream(read_line, &P, on_value, &P);
    if (!P.rc && r == -2) P.rc = cb_error(err, CB_ENOMEM, "%s: out of memory", P.path);
    if (!P.rc && r > 0) P.rc = cb_error(err, CB_EINPUT, "%s:%d: syntax error", P.path, r);
    if (!P.rc) flush(&P);
    free(P.pend_val);
    if (!P.rc) {
        set_defaults(s);
        check_across(&P);
    }
    if (!P.rc) {
        s->text = cb_strdup(text);
        if (!s->text) P.rc = cb_error(err, CB_ENOMEM, "%s: out of memory", P.path);
        else sha256_hex(text, strlen(text), s->sha256);
    }
    if (P.rc) suite_free(s);
    return P.rc;
}

int suite_load(Suite *s, const char *path, char *err) {
    memset(s, 0, sizeof *s);
    FILE *f = fopen(path, "rb");
    if (!f) return cb_error(err, CB_EIO, "%s: %s", path, strerror(errno));
    char *text = malloc(SUITE_MAX_FILE + 1);
    if (!text) {
        fclose(f);
        return cb_error(err, CB_ENOMEM, "%s: out of memory", path);
    }
    size_t n = fread(text, 1, SUITE_MAX_FILE + 1, f);
    int bad = ferror(f);
    fclose(f);
    int rc = CB_OK;
    if (bad) rc = cb_error(err, CB_EIO, "%s: read error", path);
    else if (n > SUITE_MAX_FILE) rc = cb_error(err, CB_EINPUT, "%s: larger than %zu bytes", path, SUITE_MAX_FILE);
    else if (memchr(text, '\0', n)) rc = cb_error(err, CB_EINPUT, "%s: contains a NUL byte", path);
    if (rc == CB_OK) {
        text[n] = '\0';
        rc = suite_load_string(s, path, text, err);
    }
    free(text);
    return rc;
}

void suite_free(Suite *s) {
    if (!s) return;
    free(s->text);
    memset(s, 0, sizeof *s);
}

/* ---- expansion ----------------------------------------------------------------------------- */

/* The grid's axes, outermost (changes least often) first: model shape, then training settings,
   then scheme, then seed, so that the runs sharing the most setup sit next to each other. */
enum {
    A_LAYERS, A_DMODEL, A_HEADS, A_MLP, A_CTX, A_STEPS, A_BATCH, A_WARMUP, A_LR, A_MINLR, A_WD, A_CLIP,
    A_BETA1, A_BETA2, A_SCHEME, A_SEED, N_AXES
};

/* The trained specs of the suite: each distinct base spec (the text before '+') once, in order of
   first appearance, with the evaluation specs that share it. */
typedef struct {
    char base[128];
    int evals[SUITE_MAX_LIST]; /* indices into s->schemes */
    int n_evals;
} SchemeGroup;

static int group_schemes(const Suite *s, SchemeGroup *g) {
    int n = 0;
    for (int i = 0; i < s->n_schemes; i++) {
        char base[128];
        snprintf(base, sizeof base, "%s", s->schemes[i]);
        char *plus = strchr(base, '+');
        if (plus) *plus = '\0';
        int k = 0;
        while (k < n && strcmp(g[k].base, base)) k++;
        if (k == n) {
            memset(&g[n], 0, sizeof g[n]);
            snprintf(g[n].base, sizeof g[n].base, "%s", base);
            n++;
        }
        g[k].evals[g[k].n_evals++] = i;
    }
    return n;
}

int suite_expand(const Suite *s, Experiment **exps, size_t *n_exps, Case **cases, size_t *n_cases, char *err) {
    *exps = NULL;
    *cases = NULL;
    *n_exps = *n_cases = 0;
    static SchemeGroup groups[SUITE_MAX_LIST];
    int n_groups = group_schemes(s, groups);
    const int counts[N_AXES] = {
        s->n_layers, s->n_d_model, s->n_heads, s->n_mlp_ratio, s->n_train_ctx, s->n_steps, s->n_batch,
        s->n_warmup, s->n_lr, s->n_min_lr_ratio, s->n_weight_decay, s->n_grad_clip, s->n_beta1, s->n_beta2,
        n_groups, s->n_seeds,
    };
    size_t ne = 1;
    for (int a = 0; a < N_AXES; a++) {
        if (counts[a] <= 0) return cb_error(err, CB_EINPUT, "%s: the grid has an empty axis", s->path);
        if (size_mul(ne, (size_t)counts[a], &ne) || ne > SUITE_MAX_EXPERIMENTS)
            return cb_error(err, CB_EINPUT, "%s: the grid has more than %zu experiments", s->path,
                            (size_t)SUITE_MAX_EXPERIMENTS);
    }
    if (s->n_tasks <= 0 || s->n_contexts <= 0)
        return cb_error(err, CB_EINPUT, "%s: no tasks or no eval contexts", s->path);

    /* Eval contexts ascending; the training context is added per experiment. */
    int ctx[SUITE_MAX_LIST];
    memcpy(ctx, s->contexts, (size_t)s->n_contexts * sizeof ctx[0]);
    qsort(ctx, (size_t)s->n_contexts, sizeof ctx[0], cmp_int);

    /* Cases per experiment depend on its training context (is it among the eval contexts?) and
       on how many evaluation specs share its scheme; every (training context, scheme group) pair
       heads ne / (n_train_ctx * n_groups) experiments. */
    size_t nc = 0, per_pair = ne / ((size_t)s->n_train_ctx * (size_t)n_groups);
    int has_cost = 0; /* the task "cost" adds one "cost_fit" case per evaluation spec */
    for (int t = 0; t < s->n_tasks; t++) has_cost |= !strcmp(s->tasks[t], "cost");
    for (int i = 0; i < s->n_train_ctx; i++) {
        int has_l = 0;
        for (int j = 0; j < s->n_contexts; j++) has_l |= ctx[j] == s->train_ctx[i];
        for (int gi = 0; gi < n_groups; gi++) {
            size_t per = ((size_t)s->n_tasks * (size_t)(s->n_contexts + !has_l) + (size_t)has_cost) *
                         (size_t)groups[gi].n_evals, group;
            if (size_mul(per, per_pair, &group) || group > SUITE_MAX_CASES - nc)
                return cb_error(err, CB_EINPUT, "%s: the grid has more than %zu cases", s->path, (size_t)SUITE_MAX_CASES);
            nc += group;
        }
    }

    size_t bytes;
    if (size_mul(ne, sizeof **exps, &bytes) || !(*exps = malloc(bytes)))
        return cb_error(err, CB_ENOMEM, "%s: cannot allocate %zu experiments", s->path, ne);
    if (size_mul(nc, sizeof **cases, &bytes) || !(*cases = malloc(bytes))) {
        free(*exps);
        *exps = NULL;
        return cb_error(err, CB_ENOMEM, "%s: cannot allocate %zu cases", s->path, nc);
    }
    for (size_t e = 0; e < ne; e++) {
        int idx[N_AXES];
        size_t rest = e;
        for (int a = N_AXES - 1; a >= 0; a--) {
            idx[a] = (int)(rest % (size_t)counts[a]);
            rest /= (size_t)counts[a];
        }
        Experiment *x = &(*exps)[e];
        memset(x, 0, sizeof *x);
        x->model = (ModelConfig){
            .n_layer = s->layers[idx[A_LAYERS]],
            .d_model = s->d_model[idx[A_DMODEL]],
            .n_head = s->heads[idx[A_HEADS]],
            .mlp_ratio = s->mlp_ratio[idx[A_MLP]],
            .train_ctx = s->train_ctx[idx[A_CTX]],
            .precision = s->precision,
        };
        x->train = (TrainConfig){
            .steps = s->steps[idx[A_STEPS]],
            .batch = s->batch[idx[A_BATCH]],
            .warmup = s->warmup[idx[A_WARMUP]],
            .lr = s->lr[idx[A_LR]],
            .min_lr_ratio = s->min_lr_ratio[idx[A_MINLR]],
            .weight_decay = s->weight_decay[idx[A_WD]],
            .grad_clip = s->grad_clip[idx[A_CLIP]],
            .beta1 = s->beta1[idx[A_BETA1]],
            .beta2 = s->beta2[idx[A_BETA2]],
            .eps = 1e-8,
            .passkey_share = s->passkey_share,
        };
        snprintf(x->scheme, sizeof x->scheme, "%s", groups[idx[A_SCHEME]].base);
        x->seed = s->seeds[idx[A_SEED]];
        x->group = idx[A_SCHEME];
    }

    size_t c = 0;
    for (size_t e = 0; e < ne; e++) {
        int L = (*exps)[e].model.train_ctx;
        const SchemeGroup *g = &groups[(*exps)[e].group];
        for (int v = 0; v < g->n_evals; v++) {
            const char *spec = s->schemes[g->evals[v]];
            const char *variant = strchr(spec, '+') ? spec : "";
            for (int t = 0; t < s->n_tasks; t++) {
                /* The training context first (every ratio refers to it), then the others ascending. */
                for (int i = -1; i < s->n_contexts; i++) {
                    if (i >= 0 && ctx[i] == L) continue;
                    Case *k = &(*cases)[c++];
                    memset(k, 0, sizeof *k);
                    k->experiment = (int)e;
                    snprintf(k->variant, sizeof k->variant, "%s", variant);
                    snprintf(k->task, sizeof k->task, "%s", s->tasks[t]);
                    k->context = i < 0 ? L : ctx[i];
                }
                if (strcmp(s->tasks[t], "cost")) continue;
                /* The growth exponents of the cost cases just listed: no context of its own. */
                Case *k = &(*cases)[c++];
                memset(k, 0, sizeof *k);
                k->experiment = (int)e;
                snprintf(k->variant, sizeof k->variant, "%s", variant);
                snprintf(k->task, sizeof k->task, "cost_fit");
            }
        }
    }
    assert(c == nc);
    *n_exps = ne;
    *n_cases = nc;
    return CB_OK;
}
