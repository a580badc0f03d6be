/*
 * report_data.c — reads one run for the reports: its provenance, its perplexity cases folded into
 * a series × context grid (means over seeds, 95 % intervals), and its passkey accuracy by depth
 * and length. Also the entry points of report.h that pick a run and a format.
 */
#include "report/report_data.h"

#include <math.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

/* One perplexity case as read, before pooling over seeds. */
typedef struct {
    size_t series;
    int context;
    int status;        /* 0 ok, 1 unsupported, 2 failed (anything else that is not ok) */
    double bpb, lo, hi, ratio, seconds, rss;
    char error[200];
} RawCase;

static int db_fail(sqlite3 *db, char *err, const char *what) {
    return cb_error(err, CB_EDB, "report: %s: %s", what, sqlite3_errmsg(db));
}

static void copy_col(char *dst, size_t n, sqlite3_stmt *s, int col) {
    const unsigned char *t = sqlite3_column_text(s, col);
    snprintf(dst, n, "%s", t ? (const char *)t : "");
}

static double col_real(sqlite3_stmt *s, int col) {
    return sqlite3_column_type(s, col) == SQLITE_NULL ? NAN : sqlite3_column_double(s, col);
}

/* Two-sided 95 % Student t quantile for df degrees of freedom. */
static double t975(int df) {
    static const double t[] = {0, 12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262,
                               2.228, 2.201, 2.179, 2.160, 2.145, 2.131};
    if (df < 1) return NAN;
    if (df < (int)(sizeof t / sizeof t[0])) return t[df];
    return df < 30 ? 2.09 : 1.96;
}

int report_context_index(const ReportData *d, int n) {
    for (size_t i = 0; i < d->n_contexts; i++)
        if (d->contexts[i] == n) return (int)i;
    return -1;
}

/* Finds or appends the series (scheme, variant, training context, configuration). */
static int series_index(ReportData *d, size_t *cap, const char *scheme, const char *variant,
                        int train_ctx, const char *config, size_t *idx) {
    for (size_t i = 0; i < d->n_series; i++) {
        const ReportSeries *s = &d->series[i];
        if (!strcmp(s->scheme, scheme) && !strcmp(s->variant, variant) && s->train_ctx == train_ctx &&
            !strcmp(s->config, config)) {
            *idx = i;
            return CB_OK;
        }
    }
    if (d->n_series == *cap) {
        size_t ncap = *cap ? *cap * 2 : 8;
        ReportSeries *p = realloc(d->series, ncap * sizeof *p);
        if (!p) return CB_ENOMEM;
        d->series = p;
        *cap = ncap;
    }
    ReportSeries *s = &d->series[d->n_series];
    memset(s, 0, sizeof *s);
    snprintf(s->scheme, sizeof s->scheme, "%s", scheme);
    snprintf(s->variant, sizeof s->variant, "%s", variant);
    snprintf(s->config, sizeof s->config, "%s", config);
    s->train_ctx = train_ctx;
    *idx = d->n_series++;
    return CB_OK;
}

/* Labels: the scheme (and +variant); the training context and a configuration number are added
   only when the run needs them to tell series apart. */
static void label_series(ReportData *d) {
    int many_ctx = 0;
    for (size_t i = 1; i < d->n_series; i++)
        if (d->series[i].train_ctx != d->series[0].train_ctx) many_ctx = 1;
    d->train_ctx = d->n_series && !many_ctx ? d->series[0].train_ctx : 0;
    for (size_t i = 0; i < d->n_series; i++) {
        ReportSeries *s = &d->series[i];
        int cfg_no = 0, cfg_count = 0;
        for (size_t j = 0; j < d->n_series; j++) {
            const ReportSeries *o = &d->series[j];
            if (strcmp(o->scheme, s->scheme) || strcmp(o->variant, s->variant) || o->train_ctx != s->train_ctx)
                continue;
            cfg_count++;
            if (j <= i) cfg_no++;
        }
        char ctx[32] = "", cfg[32] = "";
        if (many_ctx) snprintf(ctx, sizeof ctx, " L=%d", s->train_ctx);
        if (cfg_count > 1) snprintf(cfg, sizeof cfg, " #%d", cfg_no);
        snprintf(s->label, sizeof s->label, "%s%s%s%s%s", s->scheme, s->variant[0] ? "+" : "",
                 s->variant, ctx, cfg);
    }
}

static int load_run_info(sqlite3 *db, ReportData *d, char *err) {
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(db,
            "SELECT suite_name, status, started_at, finished_at, git_rev, version, host, cpu,"
            " compiler, blas, suite_path, threads FROM runs WHERE id = ?1", -1, &s, NULL) != SQLITE_OK)
        return db_fail(db, err, "reading the run");
    sqlite3_bind_int64(s, 1, d->run_id);
    int rc = sqlite3_step(s);
    int status = CB_OK;
    if (rc == SQLITE_ROW) {
        copy_col(d->suite, sizeof d->suite, s, 0);
        copy_col(d->status, sizeof d->status, s, 1);
        copy_col(d->started, sizeof d->started, s, 2);
        copy_col(d->finished, sizeof d->finished, s, 3);
        copy_col(d->git_rev, sizeof d->git_rev, s, 4);
        copy_col(d->version, sizeof d->version, s, 5);
        copy_col(d->host, sizeof d->host, s, 6);
        copy_col(d->cpu, sizeof d->cpu, s, 7);
        copy_col(d->compiler, sizeof d->compiler, s, 8);
        copy_col(d->blas, sizeof d->blas, s, 9);
        copy_col(d->suite_path, sizeof d->suite_path, s, 10);
        d->threads = sqlite3_column_int(s, 11);
    } else if (rc == SQLITE_DONE) {
        status = cb_error(err, CB_EINPUT, "run %lld does not exist", (long long)d->run_id);
    } else {
        status = db_fail(db, err, "reading the run");
    }
    sqlite3_finalize(s);
    return status;
}

/* The first value of a metric of the case (a case scored in several modes shows its first). */
#define METRIC_COL(name, col) \
    "(SELECT " col " FROM metrics WHERE case_id = c.id AND name = '" name "' ORDER BY id LIMIT 1)"

static int load_cases(sqlite3 *db, ReportData *d, RawCase **raw, size_t *n_raw, size_t *series_cap,
                      char *err) {
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(db,
            "SELECT c.scheme, c.variant, coalesce(c.train_ctx, 0), c.context, c.status,"
            " coalesce(c.error, ''), c.wall_seconds, c.peak_rss,"
            " coalesce(m.model_json, '') || coalesce(m.train_json, ''), "
            METRIC_COL("bpb", "value") ", " METRIC_COL("bpb", "lo") ", " METRIC_COL("bpb", "hi") ", "
            METRIC_COL("bpb_ratio", "value") " FROM cases c LEFT JOIN models m ON m.id = c.model_id"
            " WHERE c.run_id = ?1 AND c.task = 'perplexity' ORDER BY c.id", -1, &s, NULL) != SQLITE_OK)
        return db_fail(db, err, "reading the cases");
    sqlite3_bind_int64(s, 1, d->run_id);
    size_t cap = 0;
    int rc, status = CB_OK;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (*n_raw == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            RawCase *p = realloc(*raw, ncap * sizeof *p);
            if (!p) {
                status = cb_error(err, CB_ENOMEM, "report: out of memory reading cases");
                break;
            }
            *raw = p;
            cap = ncap;
        }
        RawCase *r = &(*raw)[*n_raw];
        memset(r, 0, sizeof *r);
        const char *scheme = (const char *)sqlite3_column_text(s, 0);
        const char *variant = (const char *)sqlite3_column_text(s, 1);
        const char *config = (const char *)sqlite3_column_text(s, 8);
        if (series_index(d, series_cap, scheme ? scheme : "", variant ? variant : "",
                         sqlite3_column_int(s, 2), config ? config : "", &r->series)) {
            status = cb_error(err, CB_ENOMEM, "report: out of memory reading cases");
            break;
        }
        r->context = sqlite3_column_int(s, 3);
        const char *st = (const char *)sqlite3_column_text(s, 4);
        r->status = st && !strcmp(st, "ok") ? 0 : st && !strcmp(st, "unsupported") ? 1 : 2;
        copy_col(r->error, sizeof r->error, s, 5);
        if (r->status == 2 && st && strcmp(st, "failed")) {
            char tmp[sizeof r->error];
            snprintf(tmp, sizeof tmp, "%s", r->error);
            snprintf(r->error, sizeof r->error, "%.16s: %.180s", st, tmp);
        }
        r->seconds = col_real(s, 6);
        r->rss = col_real(s, 7);
        r->bpb = col_real(s, 9);
        r->lo = col_real(s, 10);
        r->hi = col_real(s, 11);
        r->ratio = col_real(s, 12);
        (*n_raw)++;
    }
    if (!status && rc != SQLITE_DONE) status = db_fail(db, err, "reading the cases");
    sqlite3_finalize(s);
    return status;
}

static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* Sorted distinct contexts of the raw cases. */
static int collect_contexts(ReportData *d, const RawCase *raw, size_t n_raw) {
    if (!n_raw) return CB_OK;
    d->contexts = malloc(n_raw * sizeof *d->contexts);
    if (!d->contexts) return CB_ENOMEM;
    for (size_t i = 0; i < n_raw; i++) d->contexts[i] = raw[i].context;
    qsort(d->contexts, n_raw, sizeof *d->contexts, cmp_int);
    size_t n = 0;
    for (size_t i = 0; i < n_raw; i++)
        if (!n || d->contexts[n - 1] != d->contexts[i]) d->contexts[n++] = d->contexts[i];
    d->n_contexts = n;
    return CB_OK;
}

/* Pools the seeds of every (series, context): means, and a t interval when there are >= 2. */
static void pool_cells(ReportData *d, const RawCase *raw, size_t n_raw) {
    for (size_t i = 0; i < d->n_series * d->n_contexts; i++) {
        ReportCell *c = &d->cells[i];
        c->bpb = c->bpb_lo = c->bpb_hi = c->bpb_ratio = c->seconds = c->peak_rss = NAN;
    }
    for (size_t si = 0; si < d->n_series; si++) {
        for (size_t ci = 0; ci < d->n_contexts; ci++) {
            ReportCell *c = report_cell(d, si, ci);
            double sum = 0, sumsq = 0, rsum = 0, tsum = 0, msum = 0;
            int n = 0, nr = 0, nt = 0, nm = 0;
            double lo1 = NAN, hi1 = NAN;
            for (size_t k = 0; k < n_raw; k++) {
                const RawCase *r = &raw[k];
                if (r->series != si || r->context != d->contexts[ci]) continue;
                if (r->status) {
                    if (r->status == 1) c->n_unsupported++;
                    else c->n_failed++;
                    if (!c->error[0]) snprintf(c->error, sizeof c->error, "%s", r->error);
                    continue;
                }
                c->n_ok++;
                if (!isnan(r->bpb)) {
                    sum += r->bpb;
                    sumsq += r->bpb * r->bpb;
                    n++;
                    lo1 = r->lo;
                    hi1 = r->hi;
                }
                if (!isnan(r->ratio)) rsum += r->ratio, nr++;
                if (!isnan(r->seconds)) tsum += r->seconds, nt++;
                if (!isnan(r->rss)) msum += r->rss, nm++;
            }
            if (n) c->bpb = sum / n;
            if (n == 1) {
                c->bpb_lo = lo1;
                c->bpb_hi = hi1;
            } else if (n >= 2) {
                double var = (sumsq - sum * sum / n) / (n - 1);
                double half = t975(n - 1) * sqrt(var > 0 ? var : 0) / sqrt((double)n);
                c->bpb_lo = c->bpb - half;
                c->bpb_hi = c->bpb + half;
            }
            if (nr) c->bpb_ratio = rsum / nr;
            if (nt) c->seconds = tsum / nt;
            if (nm) c->peak_rss = msum / nm;
        }
    }
    for (size_t k = 0; k < n_raw; k++) {
        d->n_cases++;
        if (raw[k].status == 0) d->n_ok++;
        else if (raw[k].status == 1) d->n_unsupported++;
        else d->n_failed++;
    }
}

/* The depth in a passkey name: the number after "depth" ("passkey:depth=0.25", "passkey_depth_50").
   Returns 0 and sets *depth, or -1 when the name carries none. */
static int parse_depth(const char *name, double *depth) {
    const char *p = strstr(name, "depth");
    if (!p) return -1;
    p += 5;
    while (*p && !((*p >= '0' && *p <= '9') || *p == '.')) p++;
    char *end = NULL;
    double v = strtod(p, &end);
    if (end == p || !isfinite(v)) return -1;
    *depth = v;
    return 0;
}

/* Passkey points: curves named passkey... (x = length, y = accuracy) and metrics named
   passkey...depth... (length = the case's context). Accuracies above 1 are read as percent. */
static int load_passkey(sqlite3 *db, ReportData *d, size_t *series_cap, char *err) {
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(db,
            "SELECT c.scheme, c.variant, coalesce(c.train_ctx, 0),"
            " coalesce(m.model_json, '') || coalesce(m.train_json, ''), p.name, p.x, p.y FROM ("
            "  SELECT case_id, name, x, y, id AS ord, 0 AS src FROM curves"
            "   WHERE name LIKE 'passkey%' AND case_id IN (SELECT id FROM cases WHERE run_id = ?1)"
            "  UNION ALL"
            "  SELECT mt.case_id, mt.name, cs.context, mt.value, mt.id, 1 FROM metrics mt"
            "   JOIN cases cs ON cs.id = mt.case_id"
            "   WHERE cs.run_id = ?1 AND mt.name LIKE 'passkey%depth%' AND mt.name LIKE '%acc%'"
            " ) p JOIN cases c ON c.id = p.case_id LEFT JOIN models m ON m.id = c.model_id"
            " ORDER BY p.src, p.ord", -1, &s, NULL) != SQLITE_OK)
        return db_fail(db, err, "reading passkey curves");
    sqlite3_bind_int64(s, 1, d->run_id);
    size_t cap = 0;
    int rc, status = CB_OK;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(s, 4);
        double depth, x = col_real(s, 5), y = col_real(s, 6);
        if (!name || parse_depth(name, &depth) || isnan(x) || isnan(y) || x < 1 || x > 1e9) continue;
        const char *scheme = (const char *)sqlite3_column_text(s, 0);
        const char *variant = (const char *)sqlite3_column_text(s, 1);
        const char *config = (const char *)sqlite3_column_text(s, 3);
        size_t si;
        if (series_index(d, series_cap, scheme ? scheme : "", variant ? variant : "",
                         sqlite3_column_int(s, 2), config ? config : "", &si)) {
            status = CB_ENOMEM;
            break;
        }
        int len = (int)llround(x);
        PasskeyCell *pc = NULL;
        for (size_t i = 0; i < d->n_passkey; i++) {
            PasskeyCell *q = &d->passkey[i];
            if (q->series == si && q->length == len && q->depth == depth) pc = q;
        }
        if (!pc) {
            if (d->n_passkey == cap) {
                size_t ncap = cap ? cap * 2 : 32;
                PasskeyCell *p = realloc(d->passkey, ncap * sizeof *p);
                if (!p) {
                    status = CB_ENOMEM;
                    break;
                }
                d->passkey = p;
                cap = ncap;
            }
            pc = &d->passkey[d->n_passkey++];
            *pc = (PasskeyCell){.series = si, .depth = depth, .length = len};
        }
        pc->acc += y;
        pc->n++;
    }
    if (status == CB_ENOMEM) status = cb_error(err, CB_ENOMEM, "report: out of memory reading passkey");
    else if (rc != SQLITE_DONE) status = db_fail(db, err, "reading passkey curves");
    sqlite3_finalize(s);
    int percent = 0;
    for (size_t i = 0; i < d->n_passkey; i++) {
        d->passkey[i].acc /= d->passkey[i].n;
        if (d->passkey[i].acc > 1.0 + 1e-9) percent = 1;
    }
    if (percent)
        for (size_t i = 0; i < d->n_passkey; i++) d->passkey[i].acc /= 100.0;
    return status;
}

int report_load(Store *st, int64_t run_id, ReportData *d, char *err) {
    memset(d, 0, sizeof *d);
    d->run_id = run_id;
    sqlite3 *db = store_sqlite(st);
    RawCase *raw = NULL;
    size_t n_raw = 0, series_cap = 0;
    int status = load_run_info(db, d, err);
    if (!status) status = load_cases(db, d, &raw, &n_raw, &series_cap, err);
    if (!status && collect_contexts(d, raw, n_raw))
        status = cb_error(err, CB_ENOMEM, "report: out of memory");
    if (!status) status = load_passkey(db, d, &series_cap, err);
    if (!status && d->n_series && d->n_contexts) {
        d->cells = calloc(d->n_series * d->n_contexts, sizeof *d->cells);
        if (!d->cells) status = cb_error(err, CB_ENOMEM, "report: out of memory");
        else pool_cells(d, raw, n_raw);
    }
    if (!status) label_series(d);
    free(raw);
    return status;
}

void report_data_free(ReportData *d) {
    if (!d) return;
    free(d->series);
    free(d->contexts);
    free(d->cells);
    free(d->passkey);
    memset(d, 0, sizeof *d);
}

/* ---- entry points ----------------------------------------------------------------------------- */

int report_parse_format(const char *name, ReportFormat *fmt, char *err) {
    static const struct {
        const char *name;
        ReportFormat fmt;
    } formats[] = {{"text", REPORT_TEXT}, {"md", REPORT_MD}, {"csv", REPORT_CSV},
                   {"json", REPORT_JSON}, {"html", REPORT_HTML}};
    for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++)
        if (name && !strcmp(name, formats[i].name)) {
            *fmt = formats[i].fmt;
            return CB_OK;
        }
    return cb_error(err, CB_EINPUT, "unknown format '%s' (expected text, md, csv, json or html)",
                    name ? name : "");
}

int report_newest_run(Store *st, int64_t *run_id, char *err) {
    sqlite3 *db = store_sqlite(st);
    sqlite3_stmt *s = NULL;
    *run_id = 0;
    if (sqlite3_prepare_v2(db, "SELECT max(id) FROM runs", -1, &s, NULL) != SQLITE_OK)
        return db_fail(db, err, "finding the newest run");
    int status = CB_OK;
    if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_type(s, 0) != SQLITE_NULL)
        *run_id = sqlite3_column_int64(s, 0);
    else
        status = cb_error(err, CB_EINPUT, "the database holds no run yet");
    sqlite3_finalize(s);
    return status;
}

int report_write(Store *st, int64_t run_id, ReportFormat fmt, int context, FILE *out, char *err) {
    ReportData d;
    int status = report_load(st, run_id, &d, err);
    int ci = -1;
    if (!status && context > 0) {
        ci = report_context_index(&d, context);
        if (ci < 0) status = cb_error(err, CB_EINPUT, "run %lld has no case at context %d",
                                      (long long)run_id, context);
    }
    if (!status) {
        status = fmt == REPORT_HTML ? report_write_html(&d, ci, out, err)
                                    : report_write_table(&d, fmt, ci, out, err);
    }
    if (!status && (fflush(out) || ferror(out)))
        status = cb_error(err, CB_EIO, "report: writing the output failed");
    report_data_free(&d);
    return status;
}
