/*
 * compare.c — compares two runs metric by metric and says which numbers got worse.
 *
 * Metrics of ok cases are matched on (scheme, variant, task, context, training context, metric
 * name, mode, stride); the seeds of one key are pooled into a mean and a variance. A change
 * counts when the relative change of the means passes the threshold and, when both runs have at
 * least two seeds, the difference of the means also exceeds two standard errors (Welch:
 * se = sqrt(s_a^2/n_a + s_b^2/n_b)), so seed noise alone does not raise an alarm. Whether a
 * change is a regression follows from the metric's name (lower is better for bpb, ppl, nats,
 * loss, seconds, bytes; higher for acc). A metric BASE had and NEW lost because the case did not
 * succeed any more is a regression too.
 */
#include <ini.h>
#include <math.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "report/report.h"

typedef struct {
    char scheme[128], variant[64], task[32], name[64], mode[32];
    int context, train_ctx, stride;
    int n;             /* seeds */
    double mean, m2;   /* Welford: running mean and sum of squared deviations */
} Entry;

typedef struct {
    Entry *v;
    size_t n, cap;
} Entries;

static int db_fail(sqlite3 *db, char *err, const char *what) {
    return cb_error(err, CB_EDB, "compare: %s: %s", what, sqlite3_errmsg(db));
}

static void col_copy(char *dst, size_t n, sqlite3_stmt *s, int col) {
    const unsigned char *t = sqlite3_column_text(s, col);
    snprintf(dst, n, "%s", t ? (const char *)t : "");
}

static int cmp_key(const Entry *a, const Entry *b) {
    int c;
    if ((c = strcmp(a->scheme, b->scheme))) return c;
    if ((c = strcmp(a->variant, b->variant))) return c;
    if ((c = strcmp(a->task, b->task))) return c;
    if (a->context != b->context) return a->context < b->context ? -1 : 1;
    if (a->train_ctx != b->train_ctx) return a->train_ctx < b->train_ctx ? -1 : 1;
    if ((c = strcmp(a->name, b->name))) return c;
    if ((c = strcmp(a->mode, b->mode))) return c;
    if (a->stride != b->stride) return a->stride < b->stride ? -1 : 1;
    return 0;
}

static int cmp_entry(const void *a, const void *b) { return cmp_key(a, b); }

/* Reads the metrics of the ok cases of a run, one Entry per key with its seeds pooled. */
static int load_entries(sqlite3 *db, int64_t run, Entries *e, char *err) {
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(db,
            "SELECT c.scheme, c.variant, c.task, c.context, coalesce(c.train_ctx, 0), m.name,"
            " coalesce(m.mode, ''), coalesce(m.stride, 0), m.value"
            " FROM metrics m JOIN cases c ON c.id = m.case_id"
            " WHERE c.run_id = ?1 AND c.status = 'ok' AND m.value IS NOT NULL ORDER BY m.id",
            -1, &s, NULL) != SQLITE_OK)
        return db_fail(db, err, "reading metrics");
    sqlite3_bind_int64(s, 1, run);
    Entry *raw = NULL;
    size_t n = 0, cap = 0;
    int rc, status = CB_OK;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 256;
            Entry *p = realloc(raw, ncap * sizeof *p);
            if (!p) {
                status = cb_error(err, CB_ENOMEM, "compare: out of memory");
                break;
            }
            raw = p;
            cap = ncap;
        }
        Entry *x = &raw[n++];
        memset(x, 0, sizeof *x);
        col_copy(x->scheme, sizeof x->scheme, s, 0);
        col_copy(x->variant, sizeof x->variant, s, 1);
        col_copy(x->task, sizeof x->task, s, 2);
        x->context = sqlite3_column_int(s, 3);
        x->train_ctx = sqlite3_column_int(s, 4);
        col_copy(x->name, sizeof x->name, s, 5);
        col_copy(x->mode, sizeof x->mode, s, 6);
        x->stride = sqlite3_column_int(s, 7);
        x->n = 1;
        x->mean = sqlite3_column_double(s, 8);
    }
    if (!status && rc != SQLITE_DONE) status = db_fail(db, err, "reading metrics");
    sqlite3_finalize(s);
    if (status) {
        free(raw);
        return status;
    }
    /* sort, then fold equal keys (the seeds) into one entry */
    if (n) qsort(raw, n, sizeof *raw, cmp_entry);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (k && !cmp_key(&raw[k - 1], &raw[i])) {
            Entry *a = &raw[k - 1];
            double x = raw[i].mean, delta = x - a->mean;
            a->n++;
            a->mean += delta / a->n;
            a->m2 += delta * (x - a->mean);
        } else {
            raw[k++] = raw[i];
        }
    }
    e->v = raw;
    e->n = k;
    e->cap = cap;
    return CB_OK;
}

/* +1 higher is better, -1 lower is better, 0 unknown (listed, never flagged). */
static int direction(const char *name) {
    if (strstr(name, "acc")) return 1;
    static const char *const lower[] = {"bpb", "ppl", "nats", "loss", "seconds", "bytes", "rss"};
    for (size_t i = 0; i < sizeof lower / sizeof lower[0]; i++)
        if (strstr(name, lower[i])) return -1;
    return 0;
}

/* 1 if NEW has a case of this key that did not succeed (so BASE's metric was lost). */
static int lost_in_new(sqlite3 *db, int64_t run, const Entry *e, int *lost) {
    sqlite3_stmt *s = NULL;
    *lost = 0;
    if (sqlite3_prepare_v2(db,
            "SELECT count(*) FROM cases WHERE run_id = ?1 AND scheme = ?2 AND variant = ?3"
            " AND task = ?4 AND context = ?5 AND coalesce(train_ctx, 0) = ?6 AND status <> 'ok'",
            -1, &s, NULL) != SQLITE_OK)
        return CB_EDB;
    sqlite3_bind_int64(s, 1, run);
    sqlite3_bind_text(s, 2, e->scheme, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, e->variant, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, e->task, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 5, e->context);
    sqlite3_bind_int(s, 6, e->train_ctx);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) *lost = sqlite3_column_int(s, 0) > 0;
    sqlite3_finalize(s);
    return rc == SQLITE_ROW ? CB_OK : CB_EDB;
}

/* The suite text of a run, malloc'd (NULL when the run has none); CB_EINPUT if no such run. */
static int run_suite_text(sqlite3 *db, int64_t run, char **text, char *err) {
    sqlite3_stmt *s = NULL;
    *text = NULL;
    if (sqlite3_prepare_v2(db, "SELECT suite_text FROM runs WHERE id = ?1", -1, &s, NULL) != SQLITE_OK)
        return db_fail(db, err, "reading the run");
    sqlite3_bind_int64(s, 1, run);
    int rc = sqlite3_step(s), status = CB_OK;
    if (rc == SQLITE_ROW) {
        const char *t = (const char *)sqlite3_column_text(s, 0);
        if (t && !(*text = cb_strdup(t))) status = cb_error(err, CB_ENOMEM, "compare: out of memory");
    } else if (rc == SQLITE_DONE) {
        status = cb_error(err, CB_EINPUT, "run %lld does not exist", (long long)run);
    } else {
        status = db_fail(db, err, "reading the run");
    }
    sqlite3_finalize(s);
    return status;
}

/* ---- the [compare] section of a suite --------------------------------------------------------- */

typedef struct {
    char value[64];
    int found;
} IniLookup;

static int on_ini_value(void *user, const char *section, const char *name, const char *value) {
    IniLookup *l = user;
    if (!strcmp(section, "compare") && !strcmp(name, "threshold")) {
        snprintf(l->value, sizeof l->value, "%s", value);
        l->found = 1;
    }
    return 1;
}

int compare_suite_threshold(const char *suite_text, double *threshold, int *found, char *err) {
    *found = 0;
    if (!suite_text) return CB_OK;
    IniLookup l = {.found = 0};
    ini_parse_string(suite_text, on_ini_value, &l); /* the rest of the suite was checked when it ran */
    if (!l.found) return CB_OK;
    double v;
    if (parse_double(l.value, &v) || !(v >= 0 && v <= 10))
        return cb_error(err, CB_EINPUT, "suite [compare] threshold: '%s' is not a number in 0..10",
                        l.value);
    *threshold = v;
    *found = 1;
    return CB_OK;
}

/* ---- printing --------------------------------------------------------------------------------- */

typedef struct {
    const Entry *base, *new_; /* either may be NULL */
    double rel;               /* relative change of the means */
    double se;                /* standard error of the difference; NAN without seeds on both */
    const char *verdict;
    int regression;
} Row;

static void fmt_value(char *buf, size_t n, const Entry *e) {
    if (!e) snprintf(buf, n, "-");
    else snprintf(buf, n, "%.6g", e->mean);
}

static void print_rows(FILE *out, const Row *rows, size_t n, int md) {
    static const char *const head[] = {"scheme", "variant", "task", "context", "metric", "base",
                                       "new", "change", "seeds", "verdict"};
    enum { NC = 10 };
    size_t w[NC];
    char cell[NC][160];
    for (int c = 0; c < NC; c++) w[c] = strlen(head[c]);
    /* two passes: widths, then the lines */
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) {
            for (int c = 0; c < NC; c++)
                fprintf(out, md ? (c ? " %-*s |" : "| %-*s |") : (c ? "  %-*s" : "%-*s"),
                        !md && c == NC - 1 ? 0 : (int)w[c], head[c]);
            fputc('\n', out);
            if (md) {
                fputc('|', out);
                for (int c = 0; c < NC; c++) {
                    for (size_t i = 0; i < w[c] + 2; i++) fputc('-', out);
                    fputc('|', out);
                }
                fputc('\n', out);
            }
        }
        for (size_t i = 0; i < n; i++) {
            const Row *r = &rows[i];
            const Entry *k = r->base ? r->base : r->new_;
            snprintf(cell[0], sizeof cell[0], "%s", k->scheme);
            snprintf(cell[1], sizeof cell[1], "%s", k->variant[0] ? k->variant : "-");
            snprintf(cell[2], sizeof cell[2], "%s", k->task);
            snprintf(cell[3], sizeof cell[3], "%d", k->context);
            snprintf(cell[4], sizeof cell[4], "%s%s%s", k->name, k->mode[0] ? "/" : "", k->mode);
            fmt_value(cell[5], sizeof cell[5], r->base);
            fmt_value(cell[6], sizeof cell[6], r->new_);
            if (r->base && r->new_) {
                if (isnan(r->se)) snprintf(cell[7], sizeof cell[7], "%+.2f%%", 100 * r->rel);
                else snprintf(cell[7], sizeof cell[7], "%+.2f%% (se %.3g)", 100 * r->rel, r->se);
            } else {
                snprintf(cell[7], sizeof cell[7], "-");
            }
            snprintf(cell[8], sizeof cell[8], "%d/%d", r->base ? r->base->n : 0, r->new_ ? r->new_->n : 0);
            snprintf(cell[9], sizeof cell[9], "%s", r->verdict);
            for (int c = 0; c < NC; c++) {
                if (pass == 0) {
                    if (strlen(cell[c]) > w[c]) w[c] = strlen(cell[c]);
                } else {
                    fprintf(out, md ? (c ? " %-*s |" : "| %-*s |") : (c ? "  %-*s" : "%-*s"),
                            !md && c == NC - 1 ? 0 : (int)w[c], cell[c]);
                }
            }
            if (pass == 1) fputc('\n', out);
        }
    }
}

/* Judges one matched key. */
static void judge(Row *r, double threshold) {
    const Entry *a = r->base, *b = r->new_;
    double diff = b->mean - a->mean;
    r->rel = diff == 0 ? 0 : a->mean != 0 ? diff / fabs(a->mean) : copysign(INFINITY, diff);
    r->se = NAN;
    int significant = 1;
    if (a->n >= 2 && b->n >= 2) {
        r->se = sqrt(a->m2 / (a->n - 1) / a->n + b->m2 / (b->n - 1) / b->n);
        significant = fabs(diff) > 2 * r->se;
    }
    int dir = direction(a->name), past = fabs(r->rel) > threshold;
    r->regression = 0;
    if (diff == 0) r->verdict = "same";
    else if (!past) r->verdict = "below threshold";
    else if (!significant) r->verdict = "within 2 se";
    else if (!dir) r->verdict = "changed";
    else if ((dir < 0) == (diff > 0)) {
        r->verdict = "REGRESSION";
        r->regression = 1;
    } else r->verdict = "improved";
}

int compare_runs(Store *st, int64_t base, int64_t new_run, const CompareOptions *o, FILE *out,
                 CompareResult *res, char *err) {
    sqlite3 *db = store_sqlite(st);
    memset(res, 0, sizeof *res);
    char *base_text = NULL, *new_text = NULL;
    Entries a = {0}, b = {0};
    Row *rows = NULL;
    int status = run_suite_text(db, base, &base_text, err);
    if (!status) status = run_suite_text(db, new_run, &new_text, err);
    const char *source = "flag";
    res->threshold = o->threshold;
    if (!status && o->threshold < 0) {
        int found = 0;
        res->threshold = COMPARE_DEFAULT_THRESHOLD;
        source = "default";
        status = compare_suite_threshold(new_text, &res->threshold, &found, err);
        if (found) source = "the suite's [compare] section";
    }
    if (!status) status = load_entries(db, base, &a, err);
    if (!status) status = load_entries(db, new_run, &b, err);
    if (status) goto done;

    rows = calloc(a.n + b.n + 1, sizeof *rows);
    if (!rows) {
        status = cb_error(err, CB_ENOMEM, "compare: out of memory");
        goto done;
    }
    size_t n_rows = 0, i = 0, j = 0;
    while (i < a.n || j < b.n) {
        int c = i == a.n ? 1 : j == b.n ? -1 : cmp_key(&a.v[i], &b.v[j]);
        Row *r = &rows[n_rows];
        *r = (Row){.se = NAN};
        if (c == 0) {
            r->base = &a.v[i++];
            r->new_ = &b.v[j++];
            res->n_matched++;
            judge(r, res->threshold);
            if (r->base->mean == r->new_->mean) continue;
            res->n_changed++;
            res->n_regressions += r->regression;
            res->n_improvements += !strcmp(r->verdict, "improved");
        } else if (c < 0) {
            r->base = &a.v[i++];
            int lost = 0;
            if (lost_in_new(db, new_run, r->base, &lost)) {
                status = db_fail(db, err, "reading cases");
                goto done;
            }
            res->n_only_base++;
            r->verdict = lost ? "REGRESSION (case not ok in NEW)" : "only in BASE";
            r->regression = lost;
            res->n_lost += lost;
            res->n_regressions += lost;
        } else {
            r->new_ = &b.v[j++];
            res->n_only_new++;
            r->verdict = "only in NEW";
        }
        n_rows++;
    }
    if (out) {
        if (o->markdown) fprintf(out, "## ctxbench compare: run %lld → run %lld\n\n", (long long)base,
                                 (long long)new_run);
        else fprintf(out, "compare run %lld (base) with run %lld (new)\n", (long long)base,
                     (long long)new_run);
        fprintf(out, "%sthreshold %.3g%% relative (%s); with >= 2 seeds on both sides a change must "
                     "also exceed 2 standard errors\n%s",
                o->markdown ? "" : "", 100 * res->threshold, source, o->markdown ? "\n" : "");
        if (n_rows) print_rows(out, rows, n_rows, o->markdown);
        fprintf(out, "%s%d metrics matched, %d changed, %d regressions, %d improvements",
                o->markdown && n_rows ? "\n" : "", res->n_matched, res->n_changed, res->n_regressions,
                res->n_improvements);
        if (res->n_only_base || res->n_only_new)
            fprintf(out, ", %d only in base (%d lost to cases not ok), %d only in new", res->n_only_base,
                    res->n_lost, res->n_only_new);
        fputs(!n_rows ? ": no change\n" : "\n", out);
    }
done:
    free(rows);
    free(a.v);
    free(b.v);
    free(base_text);
    free(new_text);
    return status;
}

/* ---- picking runs ----------------------------------------------------------------------------- */

int compare_last_two(Store *st, const char *suite_name, int64_t *base, int64_t *new_run, char *err) {
    sqlite3 *db = store_sqlite(st);
    sqlite3_stmt *s = NULL;
    *base = *new_run = 0;
    if (sqlite3_prepare_v2(db, "SELECT id FROM runs WHERE suite_name = ?1 AND status = 'complete'"
                               " ORDER BY id DESC LIMIT 2", -1, &s, NULL) != SQLITE_OK)
        return db_fail(db, err, "finding runs");
    sqlite3_bind_text(s, 1, suite_name, -1, SQLITE_STATIC);
    int rc, k = 0;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (k++ == 0) *new_run = sqlite3_column_int64(s, 0);
        else *base = sqlite3_column_int64(s, 0);
    }
    int status = rc == SQLITE_DONE ? CB_OK : db_fail(db, err, "finding runs");
    sqlite3_finalize(s);
    if (!status && k < 2)
        status = cb_error(err, CB_EINPUT, "suite '%s' has %d complete run%s; compare needs two",
                          suite_name, k, k == 1 ? "" : "s");
    return status;
}

int compare_previous_run(Store *st, const char *suite_name, int64_t run_id, int64_t *prev,
                         char *err) {
    sqlite3 *db = store_sqlite(st);
    sqlite3_stmt *s = NULL;
    *prev = 0;
    if (sqlite3_prepare_v2(db, "SELECT max(id) FROM runs WHERE suite_name = ?1 AND status = 'complete'"
                               " AND id < ?2", -1, &s, NULL) != SQLITE_OK)
        return db_fail(db, err, "finding the previous run");
    sqlite3_bind_text(s, 1, suite_name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, run_id);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW && sqlite3_column_type(s, 0) != SQLITE_NULL) *prev = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return rc == SQLITE_ROW ? CB_OK : db_fail(db, err, "finding the previous run");
}
