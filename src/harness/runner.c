/*
 * runner.c — the suite runner: experiments and cases in child processes, one transaction per
 * finished case, and a summary table at the end.
 */
#include "harness/runner.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/data.h"
#include "eval/eval.h"
#include "eval/passkey.h"
#include "core/progress.h"
#include "harness/child.h"
#include "harness/cost.h"
#include "model/kernels.h"
#include "store/store.h"

/* ---- work done in the children ---- */

/* The status of a case or model that stopped with library status rc. */
static const char *failure_status(int rc) {
    return rc == CB_EUNSUPPORTED ? "unsupported" : rc == CB_ENOMEM ? "oom" : rc == CB_EDIVERGED ? "diverged" : "failed";
}

typedef struct {
    const Experiment *e;
    const Corpus *corpus;
    Progress *progress; /* the parent's, copied into the child by fork */
} TrainArg;

static int train_work(void *argp, ChildMsg *msg) {
    const TrainArg *arg = argp;
    const Experiment *e = arg->e;
    char err[CB_ERR_LEN] = "";
    Model m;
    int rc = model_build(&m, &e->model, e->scheme, e->seed, err);
    if (rc) {
        msg_status(msg, failure_status(rc), err);
        return 0;
    }
    int B = e->train.batch, T = e->model.train_ctx;
    uint8_t *inputs = malloc((size_t)B * T), *targets = malloc((size_t)B * T);
    if (!inputs || !targets) {
        msg_status(msg, "oom", "out of memory for training batches");
        return 0;
    }
    Rng rng;
    rng_seed(&rng, e->seed ^ 0x5eed0ba7c4e5ULL); /* batches: a stream apart from the init's */
    int every = e->train.steps >= 100 ? e->train.steps / 100 : 1;
    double t0 = clock_now(), tail = 0.0;
    int tail_n = 0, tail_from = e->train.steps - (e->train.steps < 20 ? e->train.steps : 20);
    for (int step = 0; step < e->train.steps; step++) {
        corpus_sample_batch(arg->corpus, &rng, B, T, inputs, targets);
        passkey_mix_batch(&rng, e->train.passkey_share, B, T, inputs, targets);
        float loss, gnorm;
        rc = model_train_step(&m, inputs, targets, B, T, &e->train, train_lr_at(&e->train, step), &loss,
                              &gnorm, err);
        if (rc == CB_EDIVERGED) {
            char why[CB_ERR_LEN + 32];
            snprintf(why, sizeof why, "step %d: %s", step, err);
            msg_status(msg, "diverged", why);
            msg_scalar(msg, "diverged_step", step);
            return 0;
        }
        if (rc) {
            msg_status(msg, failure_status(rc), err);
            return 0;
        }
        if (step % every == 0 || step == e->train.steps - 1) msg_curve(msg, "train_loss", step, loss);
        progress_show(arg->progress, 0, "%.24s: training step %d/%d, loss %.3f bits/byte", e->scheme, step + 1,
                      e->train.steps, loss / M_LN2);
        if (step >= tail_from) tail += loss, tail_n++;
    }
    double secs = clock_now() - t0;
    uint8_t *blob;
    size_t size;
    rc = model_save(&m, e->scheme, &blob, &size, err);
    if (rc) {
        msg_status(msg, failure_status(rc), err);
        return 0;
    }
    msg_status(msg, "ok", NULL);
    msg_scalar(msg, "final_loss", tail / (tail_n ? tail_n : 1));
    msg_scalar(msg, "train_seconds", secs);
    msg_scalar(msg, "bytes_per_second", (double)e->train.steps * B * T / secs);
    msg_scalar(msg, "n_params", (double)m.n_params);
    msg_blob(msg, blob, size);
    free(blob);
    free(inputs);
    free(targets);
    model_free(&m);
    return 0;
}

typedef struct {
    const uint8_t *weights;
    size_t weights_size;
    const Corpus *corpus;
    const Case *c;
    const Suite *s;
    uint64_t seed;
    const TrainConfig *train; /* the model's: the cost task times a training step with it */
    int precision;            /* the model's training GEMMs, for that step (checkpoints do not keep it) */
} EvalArg;

/* Windows of the non-overlapping evaluation the attention entropy is measured on (evenly spaced):
   enough for a stable mean per bucket, and a bounded cost at every context. */
#define RUNNER_ENTROPY_WINDOWS 8

/* Perplexity at context n: one set of metrics per stride n / k of the suite, the non-overlapping
   one (k = 1) first with its loss by position bucket and diagnostics: the attention entropy by
   position bucket per layer (curves "attention_entropy:layer=l") and, for rotary schemes, the
   metric rope_unseen_angle_share. */
static int eval_perplexity_task(Model *m, const EvalArg *arg, int n, ChildMsg *msg, char *err) {
    const Corpus *c = arg->corpus;
    int divs[SUITE_MAX_LIST + 1], nd = 0;
    divs[nd++] = 1;
    for (int i = 0; i < arg->s->n_stride_divisors; i++)
        if (arg->s->stride_divisors[i] != 1 && n / arg->s->stride_divisors[i] >= 1) divs[nd++] = arg->s->stride_divisors[i];
    for (int i = 0; i < nd; i++) {
        int S = n / divs[i];
        PplResult r;
        EntropyResult ent = {0};
        int rc = eval_perplexity_entropy(m, c->bytes + c->train_n, c->n - c->train_n, n, S, RUNNER_ENTROPY_WINDOWS,
                                         &r, i == 0 ? &ent : NULL, err);
        if (rc) {
            eval_entropy_free(&ent);
            return rc;
        }
        const char *mode = S == n ? "nonoverlap" : "sliding";
        if (i == 0) msg_status(msg, "ok", NULL);
        msg_metric_interval(msg, "bpb", r.bpb, r.bpb_lo, r.bpb_hi, (int64_t)r.count, "bits/byte", mode, S);
        msg_metric_interval(msg, "ppl", r.ppl, exp(r.bpb_lo * M_LN2), exp(r.bpb_hi * M_LN2), (int64_t)r.count, "",
                            mode, S);
        msg_metric(msg, "nats", r.nats, (int64_t)r.count, "nats/byte", mode, S);
        msg_metric(msg, "windows", r.windows, r.windows, "", mode, S);
        if (i == 0) {
            for (int b = 0; b < r.n_buckets; b++)
                if (r.bucket_count[b]) msg_curve(msg, "loss_by_bucket", r.bucket_lo[b], r.bucket_bpb[b]);
            for (int l = 0; l < ent.n_layer; l++) {
                char name[48]; /* fits the 31 characters a curve name keeps: at most 64 layers */
                snprintf(name, sizeof name, "attention_entropy:layer=%d", l);
                for (int b = 0; b < ent.n_buckets; b++)
                    msg_curve(msg, name, r.bucket_lo[b], ent.nats[(size_t)l * ent.n_buckets + b]);
            }
            int pairs;
            double unseen = pe_unseen_angle_share(&m->pe, n, &pairs);
            if (isfinite(unseen)) msg_metric(msg, "rope_unseen_angle_share", unseen, pairs, "", NULL, 0);
        }
        eval_entropy_free(&ent);
    }
    return CB_OK;
}

/* Passkey retrieval at context n: accuracy per depth as curves "passkey:depth=D" (x = n) and the
   mean over depths as the metric passkey_acc. The trials' keys come from the model's seed. */
static int eval_passkey_task(Model *m, const EvalArg *arg, int n, uint64_t seed, ChildMsg *msg, char *err) {
    const Suite *s = arg->s;
    double acc[SUITE_MAX_LIST];
    int rc = eval_passkey(m, n, s->passkey_depths, s->n_passkey_depths, s->passkey_trials,
                          seed ^ 0x9a55ce7ULL ^ (uint64_t)n, acc, err);
    if (rc) return rc;
    msg_status(msg, "ok", NULL);
    double mean = 0.0;
    for (int d = 0; d < s->n_passkey_depths; d++) {
        char name[32];
        snprintf(name, sizeof name, "passkey:depth=%g", s->passkey_depths[d]);
        msg_curve(msg, name, n, acc[d]);
        mean += acc[d] / s->n_passkey_depths;
    }
    msg_metric(msg, "passkey_acc", mean, (int64_t)s->n_passkey_depths * s->passkey_trials, "", NULL, 0);
    return CB_OK;
}

/* Cost at context n: the forward timed over the first n + 1 held-out bytes and, up to the suite's
   train_limit, a training step too (not for an eval-time variant: it is never trained). */
static int eval_cost_task(Model *m, const EvalArg *arg, int n, ChildMsg *msg, char *err) {
    const Suite *s = arg->s;
    CostOptions o = {.repeats = s->cost_repeats, .warmup = s->cost_warmup, .budget = s->cost_budget};
    int train = !arg->c->variant[0] && n <= s->cost_train_limit;
    char why[CB_ERR_LEN - 64];
    if (train && arg->precision == CB_PRECISION_BF16 && !bf16_gemm_supported(why, sizeof why))
        return cb_error(err, CB_EUNSUPPORTED, "cost: a training step in precision bf16: %s", why);
    m->cfg.precision = arg->precision; /* checkpoints do not keep it */
    ChildMsg out = {0};
    int rc = cost_measure(m, &o, arg->train, arg->corpus->bytes + arg->corpus->train_n, n, train, &out, err);
    if (rc == CB_OK) {
        msg_status(msg, "ok", NULL);
        msg_printf(msg, "%.*s", (int)out.len, out.buf);
    }
    free(out.buf);
    return rc;
}

static int eval_work(void *argp, ChildMsg *msg) {
    const EvalArg *arg = argp;
    char err[CB_ERR_LEN] = "";
    Model m;
    const char *variant = arg->c->variant[0] ? arg->c->variant : NULL;
    int rc = model_load(&m, arg->weights, arg->weights_size, variant, err);
    if (rc) {
        msg_status(msg, rc == CB_ENOMEM ? "oom" : "failed", err);
        return 0;
    }
    int n = arg->c->context;
    msg_scalar(msg, "param_bytes", (double)model_param_bytes(&m));
    msg_scalar(msg, "act_bytes", (double)model_eval_act_bytes(&m, n));
    rc = pe_prepare(&m.pe, n, err);
    if (rc) {
        msg_status(msg, failure_status(rc), err);
        model_free(&m);
        return 0;
    }
    msg_scalar(msg, "pe_state_bytes", (double)pe_state_bytes(&m.pe, n));
    ChildMsg out = {0}; /* the results, sent only if the whole task succeeds */
    if (!strcmp(arg->c->task, "passkey")) {
        rc = eval_passkey_task(&m, arg, n, arg->seed, &out, err);
        if (rc == CB_EINPUT) rc = CB_EUNSUPPORTED; /* a context too short for an episode */
    } else if (!strcmp(arg->c->task, "cost")) {
        rc = eval_cost_task(&m, arg, n, &out, err);
    } else {
        rc = eval_perplexity_task(&m, arg, n, &out, err);
    }
    if (rc) msg_status(msg, failure_status(rc), err);
    else msg_printf(msg, "%.*s", (int)out.len, out.buf);
    free(out.buf);
    model_free(&m);
    return 0;
}

/* ---- the parent ---- */

static int make_parent_dir(const char *path, char *err) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir) return CB_OK;
    *slash = '\0';
    for (char *p = dir + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(dir, 0777) && errno != EEXIST)
            return cb_error(err, CB_EIO, "%s: cannot create directory: %s", dir, strerror(errno));
        *p = '/';
    }
    if (mkdir(dir, 0777) && errno != EEXIST)
        return cb_error(err, CB_EIO, "%s: cannot create directory: %s", dir, strerror(errno));
    return CB_OK;
}

static void config_json(const Experiment *e, char *model, size_t mn, char *train, size_t tn) {
    snprintf(model, mn,
             "{\"layers\":%d,\"d_model\":%d,\"heads\":%d,\"mlp_ratio\":%d,\"train_ctx\":%d,\"vocab\":%d}",
             e->model.n_layer, e->model.d_model, e->model.n_head, e->model.mlp_ratio,
             e->model.train_ctx, CB_VOCAB);
    const TrainConfig *t = &e->train;
    snprintf(train, tn,
             "{\"steps\":%d,\"batch\":%d,\"warmup\":%d,\"lr\":%.9g,\"min_lr_ratio\":%.9g,"
             "\"weight_decay\":%.9g,\"beta1\":%.9g,\"beta2\":%.9g,\"eps\":%.9g,\"grad_clip\":%.9g}",
             t->steps, t->batch, t->warmup, t->lr, t->min_lr_ratio, t->weight_decay, t->beta1,
             t->beta2, t->eps, t->grad_clip);
    /* Only when set, so that the keys of models trained without passkey episodes or in fp32 do not
       change. */
    size_t len = strlen(train);
    if (t->passkey_share > 0 && len > 0 && len + 32 < tn)
        snprintf(train + len - 1, tn - len + 1, ",\"passkey_share\":%.9g}", t->passkey_share);
    len = strlen(train);
    if (e->model.precision != CB_PRECISION_FP32 && len > 0 && len + 32 < tn)
        snprintf(train + len - 1, tn - len + 1, ",\"precision\":\"%s\"}", precision_name(e->model.precision));
}

/* One cell of the summary table: a row is one model evaluated with one spec. */
typedef enum { CELL_PERPLEXITY, CELL_PASSKEY, CELL_COST, CELL_COST_FIT } CellKind;

typedef struct {
    char label[80];
    int train_ctx;
    int context;
    char status[32];
    double bpb;    /* the cell's value: bpb, passkey accuracy, median seconds, or the time exponent */
    CellKind kind; /* each table shows one kind; a cost row ends with its CELL_COST_FIT exponent */
} Cell;

static CellKind cell_kind(const char *task) {
    return !strcmp(task, "passkey") ? CELL_PASSKEY : !strcmp(task, "cost") ? CELL_COST
           : !strcmp(task, "cost_fit") ? CELL_COST_FIT : CELL_PERPLEXITY;
}

/* The time exponent fitted for a row of the cost table, NaN if none. */
static double row_exponent(const Cell *cells, size_t n_cells, const char *label) {
    for (size_t i = 0; i < n_cells; i++)
        if (cells[i].kind == CELL_COST_FIT && !strcmp(cells[i].label, label) && !strcmp(cells[i].status, "ok"))
            return cells[i].bpb;
    return NAN;
}

/* The table of one task: bits per byte, passkey accuracy or forward time. */
static void print_summary(FILE *out, const Cell *cells, size_t n_cells, const int *ctxs, int n_ctxs, CellKind kind) {
    int any = 0;
    for (size_t i = 0; i < n_cells; i++) any |= cells[i].kind == kind;
    if (!any) return;
    if (kind == CELL_PERPLEXITY)
        fprintf(out, "\nbits per byte on held-out text (lower is better); ratio = largest context / training context\n");
    else if (kind == CELL_PASSKEY)
        fprintf(out, "\npasskey accuracy, mean over depths (higher is better); ratio = largest context / training context\n");
    else
        fprintf(out, "\nevaluation forward time in seconds, median of the repetitions; exponent = b of the fit time ~ n^b\n");
    int width = 10;
    for (size_t i = 0; i < n_cells; i++)
        if ((int)strlen(cells[i].label) > width) width = (int)strlen(cells[i].label);
    fprintf(out, "%-*s", width, "scheme");
    for (int k = 0; k < n_ctxs; k++) fprintf(out, " %9d", ctxs[k]);
    fprintf(out, " %9s\n", kind == CELL_COST ? "exponent" : "ratio");
    for (size_t r = 0; r < n_cells; r++) {
        if (cells[r].kind != kind) continue;
        int first = 1;
        for (size_t i = 0; i < r && first; i++)
            first = cells[i].kind != kind || strcmp(cells[i].label, cells[r].label) != 0;
        if (!first) continue;
        fprintf(out, "%-*s", width, cells[r].label);
        double at_train = NAN, at_last = NAN;
        for (int k = 0; k < n_ctxs; k++) {
            const Cell *hit = NULL;
            for (size_t i = r; i < n_cells; i++)
                if (cells[i].kind == kind && !strcmp(cells[i].label, cells[r].label) && cells[i].context == ctxs[k])
                    hit = &cells[i];
            if (!hit) fprintf(out, " %9s", "");
            else if (!strcmp(hit->status, "ok")) {
                if (isfinite(hit->bpb)) fprintf(out, kind == CELL_COST ? " %9.4g" : " %9.3f", hit->bpb);
                else fprintf(out, " %9s", "-"); /* e.g. a resumed passkey case: its value is in the database */
                if (ctxs[k] == hit->train_ctx) at_train = hit->bpb;
                if (k == n_ctxs - 1) at_last = hit->bpb;
            } else fprintf(out, " %9s", !strcmp(hit->status, "unsupported") ? "unsup" : hit->status);
        }
        double last = kind == CELL_COST ? row_exponent(cells, n_cells, cells[r].label)
                      : isfinite(at_train) && isfinite(at_last) && at_train != 0 ? at_last / at_train : NAN;
        if (isfinite(last)) fprintf(out, " %9.2f\n", last);
        else fprintf(out, " %9s\n", "-");
    }
}

/* The variant as the cases table stores it: the part after '+', "" for none. */
static const char *stored_variant(const Case *c) {
    const char *plus = strchr(c->variant, '+');
    return plus ? plus + 1 : "";
}

static int record_case(Store *st, const RunSummary *sum, int64_t model_id, const Experiment *e,
                       const Case *c, const ChildResult *r, double bpb_at_train, char *err) {
    CaseRecord cr = {
        .run_id = sum->run_id, .model_id = model_id, .scheme = e->scheme, .variant = stored_variant(c),
        .task = c->task, .context = c->context, .train_ctx = e->model.train_ctx, .seed = e->seed,
        .status = r->status, .error = r->error[0] ? r->error : NULL,
        .wall_seconds = r->wall_seconds, .cpu_seconds = r->cpu_seconds, .peak_rss = r->peak_rss,
        .param_bytes = (int64_t)child_scalar(r, "param_bytes", 0),
        .act_bytes = (int64_t)child_scalar(r, "act_bytes", 0),
        .pe_state_bytes = (int64_t)child_scalar(r, "pe_state_bytes", 0),
    };
    MetricRecord metrics[CHILD_MAX_METRICS + 1];
    size_t nm = r->n_metrics;
    memcpy(metrics, r->metrics, nm * sizeof *metrics);
    for (size_t i = 0; i < r->n_metrics; i++)
        if (!strcmp(metrics[i].name, "bpb") && metrics[i].mode && !strcmp(metrics[i].mode, "nonoverlap") &&
            isfinite(bpb_at_train) && nm < CHILD_MAX_METRICS + 1)
            metrics[nm++] = (MetricRecord){.name = "bpb_ratio", .value = metrics[i].value / bpb_at_train,
                                           .lo = NAN, .hi = NAN, .count = metrics[i].count, .unit = "",
                                           .mode = metrics[i].mode, .stride = metrics[i].stride};
    int64_t case_id;
    return store_insert_case(st, &cr, metrics, nm, r->curve, r->n_curve, &case_id, err);
}

static double metric_value(const ChildResult *r, const char *name) {
    for (size_t i = 0; i < r->n_metrics; i++)
        if (!strcmp(r->metrics[i].name, name)) return r->metrics[i].value;
    return NAN;
}

/* The value of a case in the summary table, NaN if it has none. */
static double cell_value(const Case *c, const ChildResult *r) {
    static const char *const shown[] = {"bpb", "passkey_acc", "eval_seconds", "time_exponent"};
    return metric_value(r, shown[cell_kind(c->task)]);
}

/* Everything one run carries from experiment to experiment. */
typedef struct {
    const Suite *s;
    const RunOptions *o;
    RunSummary *sum;
    Store *st;
    const Corpus *corpus;
    const Case *cases;
    size_t n_cases, n_exps;
    int threads;
    ChildLimits lim;
    StoredCase *earlier; /* cases of the resumed run, NULL when not resuming */
    size_t n_earlier;
    Cell *cells;         /* one per finished case, in grid order */
    Progress progress;   /* the terminal's progress line */
    size_t n_cells;
    int ctxs[SUITE_MAX_LIST * 2], n_ctxs;
    char *err;           /* the caller's message buffer */
} RunState;

/* The reuse key: a hash of everything that determines the weights. canon gets the canonical spec. */
static void model_key(const Experiment *ex, const Corpus *corpus, char *canon, size_t canon_n, char *model_json,
                      size_t mj_n, char *train_json, size_t tj_n, char key[65]) {
    char keysrc[1400], err[CB_ERR_LEN];
    PeModel pe = {0};
    PeDims dims = {ex->model.n_layer, ex->model.n_head, ex->model.d_model / ex->model.n_head, ex->model.d_model,
                   ex->model.train_ctx};
    canon[0] = '\0';
    if (pe_create(&pe, ex->scheme, &dims, err) == CB_OK) pe_canonical(&pe, canon, canon_n);
    pe_destroy(&pe);
    config_json(ex, model_json, mj_n, train_json, tj_n);
    snprintf(keysrc, sizeof keysrc, "%s|%s|%s|%s|%llu", canon, model_json, train_json, corpus->sha256,
             (unsigned long long)ex->seed);
    sha256_hex(keysrc, strlen(keysrc), key);
}

/* The case of the resumed run that matches c of the model with this key, NULL if none. */
static const StoredCase *find_earlier(const RunState *R, const char *key, const Case *c) {
    for (size_t i = 0; i < R->n_earlier; i++) {
        const StoredCase *d = &R->earlier[i];
        if (d->context == c->context && !strcmp(d->model_key, key) && !strcmp(d->task, c->task) &&
            !strcmp(d->variant, stored_variant(c)))
            return d;
    }
    return NULL;
}

/* Counts a finished case and adds its cell to the summary table. */
static void add_case(RunState *R, const Experiment *ex, const Case *c, const char *status, double bpb) {
    RunSummary *sum = R->sum;
    sum->n_cases++;
    if (!strcmp(status, "ok")) sum->n_ok++;
    else if (!strcmp(status, "unsupported")) sum->n_unsupported++;
    else {
        sum->n_failed++;
        sum->n_timeout += !strcmp(status, "timeout");
        sum->n_oom += !strcmp(status, "oom");
        sum->n_diverged += !strcmp(status, "diverged");
    }
    Cell *cell = &R->cells[R->n_cells++];
    R->progress.done = R->n_cells;
    const char *spec = c->variant[0] ? c->variant : ex->scheme;
    if (R->s->n_seeds > 1)
        snprintf(cell->label, sizeof cell->label, "%.60s s%llu", spec, (unsigned long long)ex->seed);
    else
        snprintf(cell->label, sizeof cell->label, "%.79s", spec);
    cell->train_ctx = ex->model.train_ctx;
    cell->kind = cell_kind(c->task);
    cell->context = c->context;
    cell->bpb = bpb;
    snprintf(cell->status, sizeof cell->status, "%s", status);
    int seen = cell->kind == CELL_COST_FIT; /* its context 0 is no column */
    for (int k = 0; k < R->n_ctxs; k++) seen |= R->ctxs[k] == c->context;
    if (!seen && R->n_ctxs < SUITE_MAX_LIST * 2) R->ctxs[R->n_ctxs++] = c->context;
}

/* One line on the log for a finished case: its value, time and memory, or its status and reason. */
static void log_case(RunState *R, const Experiment *ex, const Case *c, const ChildResult *cr) {
    FILE *log = R->o->log;
    double bpb = metric_value(cr, "bpb");
    const char *spec = c->variant[0] ? c->variant : ex->scheme;
    char word[48];
    const char *status = progress_status(&R->progress, cr->status, word, sizeof word);
    if (!strcmp(cr->status, "ok") && !strcmp(c->task, "passkey"))
        fprintf(log, "[case %zu/%zu] %-24s %-10s n=%-7d %s  accuracy %.2f  %.2fs  %.1f MiB\n",
                R->n_cells, R->n_cases, spec, c->task, c->context, status, metric_value(cr, "passkey_acc"),
                cr->wall_seconds, (double)cr->peak_rss / 1048576.0);
    else if (!strcmp(cr->status, "ok") && !strcmp(c->task, "cost")) {
        char train[48] = "";
        if (isfinite(metric_value(cr, "train_step_seconds")))
            snprintf(train, sizeof train, "  train step %.4gs", metric_value(cr, "train_step_seconds"));
        fprintf(log, "[case %zu/%zu] %-24s %-10s n=%-7d %s  forward %.4gs%s  %.2fs  %.1f MiB\n", R->n_cells,
                R->n_cases, spec, c->task, c->context, status, metric_value(cr, "eval_seconds"), train,
                cr->wall_seconds, (double)cr->peak_rss / 1048576.0);
    } else if (!strcmp(cr->status, "ok") && !strcmp(c->task, "cost_fit")) {
        static const char *const fits[3][2] = {
            {"time_exponent", "time"}, {"memory_exponent", "memory"}, {"train_time_exponent", "train step"}};
        char text[160] = "";
        for (int f = 0, used = 0; f < 3; f++)
            if (isfinite(metric_value(cr, fits[f][0])))
                used += snprintf(text + used, sizeof text - (size_t)used, "  %s ~ n^%.2f", fits[f][1],
                                 metric_value(cr, fits[f][0]));
        fprintf(log, "[case %zu/%zu] %-24s %-10s %-9s %s%s\n", R->n_cells, R->n_cases, spec, c->task, "",
                status, text);
    } else if (!strcmp(cr->status, "ok"))
        fprintf(log, "[case %zu/%zu] %-24s %-10s n=%-7d %s  %.4f bits/byte  %.2fs  %.1f MiB\n",
                R->n_cells, R->n_cases, spec, c->task, c->context, status, bpb, cr->wall_seconds,
                (double)cr->peak_rss / 1048576.0);
    else if (!strcmp(c->task, "cost_fit"))
        fprintf(log, "[case %zu/%zu] %-24s %-10s %-9s %s: %s\n", R->n_cells, R->n_cases, spec, c->task,
                "", status, cr->error);
    else
        fprintf(log, "[case %zu/%zu] %-24s %-10s n=%-7d %s: %s\n", R->n_cells, R->n_cases, spec,
                c->task, c->context, status, cr->error);
}

/* Trains experiment e (or takes its model from the resumed run) and evaluates its missing cases.
   Returns a store or child-start error; an interruption sets sum->interrupted and returns CB_OK. */
static int run_experiment(RunState *R, size_t e, const Experiment *ex) {
    const RunOptions *o = R->o;
    RunSummary *sum = R->sum;
    char canon[256], model_json[256], train_json[512], key[65], *err = R->err;
    model_key(ex, R->corpus, canon, sizeof canon, model_json, sizeof model_json, train_json, sizeof train_json,
              key);

    size_t missing = 0;
    for (size_t i = 0; i < R->n_cases; i++)
        if (R->cases[i].experiment == (int)e && !find_earlier(R, key, &R->cases[i])) missing++;

    /* The model: none needed, the resumed run's own, or a new one. */
    StoredModel sm = {0};
    ChildResult tr;
    memset(&tr, 0, sizeof tr);
    int64_t model_id = 0;
    int rc = CB_OK;
    if (missing && R->earlier) {
        rc = store_find_run_model(R->st, sum->run_id, key, &sm, err);
        if (rc) return rc;
    }
    if (missing && sm.id) {
        model_id = sm.id;
        snprintf(tr.status, sizeof tr.status, "%s", sm.status);
        snprintf(tr.error, sizeof tr.error, "%s", sm.error);
        tr.blob = sm.weights; /* owned by tr from here */
        tr.blob_size = sm.weights_size;
        progress_clear(&R->progress);
        if (o->log)
            fprintf(o->log, "[model %zu/%zu] %-24s seed %llu: %s, trained earlier in run %lld\n", e + 1, R->n_exps,
                    ex->scheme, (unsigned long long)ex->seed, tr.status, (long long)sum->run_id);
    } else if (missing) {
        TrainArg ta = {ex, R->corpus, &R->progress};
        progress_show(&R->progress, 1, "%.24s: training", ex->scheme);
        rc = child_run_limited(train_work, &ta, R->threads, &R->lim, &tr, err);
        if (rc) return rc;
        if (!strcmp(tr.status, "interrupted")) {
            sum->interrupted = child_stop_signal();
            child_result_free(&tr);
            return CB_OK;
        }
        /* The models table has no status "unsupported" (a model the CPU cannot train: precision
           bf16 without AVX512-BF16): the row says "failed" and its error says why; its cases are
           "unsupported" with the same reason. */
        int unsup = !strcmp(tr.status, "unsupported");
        char model_error[sizeof tr.error + 16];
        snprintf(model_error, sizeof model_error, "%s%s", unsup ? "unsupported: " : "", tr.error);
        ModelRecord mr = {
            .run_id = sum->run_id, .scheme = ex->scheme, .scheme_canon = canon, .key = key,
            .model_json = model_json, .train_json = train_json, .corpus_source = R->corpus->source,
            .corpus_sha256 = R->corpus->sha256, .corpus_path = R->corpus->path,
            .corpus_bytes = (int64_t)R->corpus->n, .seed = ex->seed, .train_ctx = ex->model.train_ctx,
            .n_params = (int64_t)child_scalar(&tr, "n_params", 0),
            .final_loss = child_scalar(&tr, "final_loss", NAN),
            .train_seconds = child_scalar(&tr, "train_seconds", tr.wall_seconds),
            .cpu_seconds = tr.cpu_seconds,
            .bytes_per_second = child_scalar(&tr, "bytes_per_second", 0), .peak_rss = tr.peak_rss,
            .status = unsup ? "failed" : tr.status, .error = tr.error[0] ? model_error : NULL,
            .weights = tr.blob, .weights_size = tr.blob_size};
        rc = store_insert_model(R->st, &mr, tr.curve, tr.n_curve, &model_id, err);
        if (rc) {
            child_result_free(&tr);
            return rc;
        }
        progress_clear(&R->progress);
        if (o->log) {
            if (!strcmp(tr.status, "ok"))
                fprintf(o->log, "[model %zu/%zu] %-24s seed %llu: trained in %.1fs, final loss %.3f bits/byte\n",
                        e + 1, R->n_exps, ex->scheme, (unsigned long long)ex->seed, tr.wall_seconds,
                        mr.final_loss / M_LN2);
            else
                fprintf(o->log, "[model %zu/%zu] %-24s seed %llu: %s: %s\n", e + 1, R->n_exps, ex->scheme,
                        (unsigned long long)ex->seed, tr.status, tr.error);
        }
    }
    int trained = !strcmp(tr.status, "ok") && tr.blob;
    /* A model that never was gives its cases its own status when that says why (diverged, timeout,
       oom, unsupported: precision bf16 on a CPU without it), "failed" otherwise. */
    const char *untrained = !strcmp(tr.status, "diverged") || !strcmp(tr.status, "timeout") ||
                                    !strcmp(tr.status, "oom") || !strcmp(tr.status, "unsupported") ? tr.status : "failed";

    double bpb_at_train = NAN;
    for (size_t i = 0; i < R->n_cases && rc == CB_OK && !sum->interrupted; i++) {
        const Case *c = &R->cases[i];
        if (c->experiment != (int)e) continue;
        if (c->context == ex->model.train_ctx) bpb_at_train = NAN; /* a new variant or task starts */
        const StoredCase *d = find_earlier(R, key, c);
        if (d) {
            /* Finished before the interruption: its bpb still anchors the ratios of the others. */
            if (c->context == ex->model.train_ctx && !strcmp(d->status, "ok")) bpb_at_train = d->bpb;
            add_case(R, ex, c, d->status, d->bpb);
            sum->n_earlier++;
            continue;
        }
        ChildResult cr;
        if (trained && !strcmp(c->task, "cost_fit")) {
            /* From the stored cost cases (some may come from before a resume), not in a child. */
            rc = cost_fit(R->st, sum->run_id, model_id, stored_variant(c), &cr, err);
            if (rc) break;
        } else if (trained) {
            EvalArg ea = {tr.blob, tr.blob_size, R->corpus, c, R->s, ex->seed, &ex->train, ex->model.precision};
            progress_show(&R->progress, 1, "%.24s n=%d: evaluating %s", c->variant[0] ? c->variant : ex->scheme,
                          c->context, c->task);
            rc = child_run_limited(eval_work, &ea, R->threads, &R->lim, &cr, err);
            if (rc) {
                break;
            }
            if (!strcmp(cr.status, "interrupted")) {
                sum->interrupted = child_stop_signal();
                child_result_free(&cr);
                break;
            }
        } else {
            memset(&cr, 0, sizeof cr);
            snprintf(cr.status, sizeof cr.status, "%s", untrained);
            snprintf(cr.error, sizeof cr.error, "model not trained (%.32s): %.400s", tr.status, tr.error);
        }
        double bpb = metric_value(&cr, "bpb");
        if (c->context == ex->model.train_ctx && !strcmp(cr.status, "ok")) bpb_at_train = bpb;
        rc = record_case(R->st, sum, model_id, ex, c, &cr, bpb_at_train, err);
        if (rc) {
            child_result_free(&cr);
            break;
        }
        add_case(R, ex, c, cr.status, cell_value(c, &cr));
        progress_clear(&R->progress);
        if (o->log) log_case(R, ex, c, &cr);
        child_result_free(&cr);
        if (child_stop_signal()) sum->interrupted = child_stop_signal();
    }
    child_result_free(&tr);
    return rc;
}

static const char *signal_name(int sig) { return sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "a signal"; }

/* For --resume: the run must exist, hold this suite's text, and have used `threads` threads
   (*threads = the run's when 0). Its finished cases go to R->earlier. Nothing is written. */
static int load_resumed_run(RunState *R, int64_t run_id, int *threads, char *err) {
    StoredRun run;
    int rc = store_get_run(R->st, run_id, &run, err);
    if (rc) return rc;
    if (strcmp(run.suite_sha256, R->s->sha256))
        return cb_error(err, CB_EINPUT,
                        "%s: cannot resume run %lld: the suite text differs from the one it ran (sha256 %.12s, "
                        "run %lld has %.12s)", R->s->path, (long long)run_id, R->s->sha256, (long long)run_id,
                        run.suite_sha256);
    if (!strcmp(run.status, "complete"))
        return cb_error(err, CB_EINPUT, "cannot resume run %lld: it is complete", (long long)run_id);
    if (*threads && run.threads > 0 && *threads != run.threads)
        return cb_error(err, CB_EINPUT,
                        "cannot resume run %lld with %d threads: it ran with %d, and the numbers are only "
                        "reproducible with the same thread count", (long long)run_id, *threads, run.threads);
    if (run.threads > 0) *threads = run.threads;
    rc = store_run_cases(R->st, run_id, &R->earlier, &R->n_earlier, err);
    if (rc) return rc;
    for (size_t i = 0; i < R->n_earlier; i++)
        if (strcmp(R->earlier[i].corpus_sha256, R->corpus->sha256))
            return cb_error(err, CB_EINPUT,
                            "cannot resume run %lld: its corpus (sha256 %.12s) is not %s (sha256 %.12s)",
                            (long long)run_id, R->earlier[i].corpus_sha256, R->corpus->source, R->corpus->sha256);
    if (!R->earlier) R->earlier = malloc(1); /* non-NULL marks a resume even with no case done */
    if (!R->earlier) return cb_error(err, CB_ENOMEM, "out of memory");
    return CB_OK;
}

int runner_run(const Suite *s, const RunOptions *o, RunSummary *sum, char *err) {
    memset(sum, 0, sizeof *sum);
    double t_start = clock_now();
    Experiment *exps = NULL;
    Case *cases = NULL;
    size_t n_exps = 0, n_cases = 0;
    RunState R = {.s = s, .o = o, .sum = sum, .err = err};
    Corpus corpus = {0};
    int rc = suite_expand(s, &exps, &n_exps, &cases, &n_cases, err);
    if (rc) return rc;
    rc = corpus_load(&corpus, s->corpus_source, s->eval_bytes, err);
    if (rc) {
        char why[CB_ERR_LEN];
        snprintf(why, sizeof why, "%s", err);
        cb_error(err, rc, "%s: [corpus] source: %s", s->path, why);
        goto out;
    }
    for (size_t i = 0; i < n_cases; i++)
        if ((size_t)cases[i].context + 1 > corpus.n - corpus.train_n) {
            rc = cb_error(err, CB_EINPUT, "%s: context %d needs more than the %zu held-out bytes", s->path,
                          cases[i].context, corpus.n - corpus.train_n);
            goto out;
        }
    R.corpus = &corpus;
    R.cases = cases;
    R.n_cases = n_cases;
    R.n_exps = n_exps;
    R.lim.seconds = o->time_limit > 0 ? o->time_limit : s->time_limit;
    size_t mib = o->memory_limit_mb ? o->memory_limit_mb : s->memory_limit_mb;
    R.lim.memory_bytes = mib << 20;
    R.cells = calloc(n_cases ? n_cases : 1, sizeof *R.cells);
    progress_init(&R.progress, o->log, n_cases);
    if (!R.cells) {
        rc = cb_error(err, CB_ENOMEM, "out of memory");
        goto out;
    }
    int threads = o->threads ? o->threads : s->threads;

    if (o->resume_run > 0) {
        rc = store_open(&R.st, o->db_path, 0, err);
        if (rc) goto out;
        rc = load_resumed_run(&R, o->resume_run, &threads, err);
        if (rc) goto out;
    }
    if (!threads) threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (threads < 1) threads = 1;
    R.threads = threads;

    child_catch_signals();
    if (o->resume_run > 0) {
        sum->run_id = o->resume_run;
        rc = store_reopen_run(R.st, sum->run_id, err);
        if (rc) goto out;
    } else {
        rc = make_parent_dir(o->db_path, err);
        if (rc) goto out;
        rc = store_open(&R.st, o->db_path, 0, err);
        if (rc) goto out;
        RunInfo ri = {.suite_name = s->name, .suite_path = s->path, .suite_text = s->text,
                      .suite_sha256 = s->sha256, .threads = threads};
        store_provenance(&ri);
        rc = store_begin_run(R.st, &ri, &sum->run_id, err);
        if (rc) goto out;
    }
    if (o->log) {
        fprintf(o->log, "run %lld: suite %s, %zu models, %zu cases, %d threads, corpus %s (%zu bytes, sha256 %.12s)",
                (long long)sum->run_id, s->name, n_exps, n_cases, threads, corpus.source, corpus.n, corpus.sha256);
        if (R.lim.seconds > 0) fprintf(o->log, ", time limit %g s", R.lim.seconds);
        if (mib) fprintf(o->log, ", memory limit %zu MiB", mib);
        fprintf(o->log, "\n");
        if (R.earlier)
            fprintf(o->log, "resuming run %lld: %zu of %zu cases done earlier\n", (long long)sum->run_id,
                    R.n_earlier, n_cases);
    }

    for (size_t e = 0; e < n_exps && rc == CB_OK && !sum->interrupted; e++) {
        if (child_stop_signal()) {
            sum->interrupted = child_stop_signal();
            break;
        }
        rc = run_experiment(&R, e, &exps[e]);
    }
    if (!sum->interrupted && child_stop_signal()) sum->interrupted = child_stop_signal();

    /* contexts ascending for the table */
    for (int a = 1; a < R.n_ctxs; a++)
        for (int b = a; b > 0 && R.ctxs[b - 1] > R.ctxs[b]; b--) {
            int t = R.ctxs[b];
            R.ctxs[b] = R.ctxs[b - 1];
            R.ctxs[b - 1] = t;
        }
    progress_clear(&R.progress);
    if (rc == CB_OK && !sum->interrupted && o->summary) {
        print_summary(o->summary, R.cells, R.n_cells, R.ctxs, R.n_ctxs, CELL_PERPLEXITY);
        print_summary(o->summary, R.cells, R.n_cells, R.ctxs, R.n_ctxs, CELL_PASSKEY);
        print_summary(o->summary, R.cells, R.n_cells, R.ctxs, R.n_ctxs, CELL_COST);
    }
    {
        char err2[CB_ERR_LEN];
        const char *status = rc != CB_OK ? "failed" : sum->interrupted ? "interrupted" : "complete";
        int frc = store_finish_run(R.st, sum->run_id, status, err2);
        if (rc == CB_OK && frc) {
            rc = frc;
            memcpy(err, err2, CB_ERR_LEN);
        }
    }
    if (rc == CB_OK && sum->interrupted)
        rc = cb_error(err, RUNNER_EINTERRUPTED,
                      "interrupted by %s: run %lld keeps its %d finished cases of %zu and is marked interrupted; "
                      "finish it with: ctxbench run %s --db %s --resume %lld", signal_name(sum->interrupted),
                      (long long)sum->run_id, sum->n_cases, n_cases, s->path, o->db_path, (long long)sum->run_id);
out:
    child_release_signals();
    store_close(R.st);
    sum->seconds = clock_now() - t_start;
    free(R.earlier);
    free(R.cells);
    corpus_free(&corpus);
    free(exps);
    free(cases);
    return rc;
}
