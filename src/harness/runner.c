/*
 * runner.c — the suite runner: experiments and cases in child processes, one transaction per
 * finished case, and a summary table at the end.
 */
#include "harness/runner.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/data.h"
#include "eval/eval.h"
#include "harness/child.h"
#include "store/store.h"

/* ---- work done in the children ---- */

typedef struct {
    const Experiment *e;
    const Corpus *corpus;
} TrainArg;

static int train_work(void *argp, ChildMsg *msg) {
    const TrainArg *arg = argp;
    const Experiment *e = arg->e;
    char err[CB_ERR_LEN] = "";
    Model m;
    int rc = model_build(&m, &e->model, e->scheme, e->seed, err);
    if (rc) {
        msg_status(msg, "failed", err);
        return 0;
    }
    int B = e->train.batch, T = e->model.train_ctx;
    uint8_t *inputs = malloc((size_t)B * T), *targets = malloc((size_t)B * T);
    if (!inputs || !targets) {
        msg_status(msg, "failed", "out of memory for training batches");
        return 0;
    }
    Rng rng;
    rng_seed(&rng, e->seed ^ 0x5eed0ba7c4e5ULL); /* batches: a stream apart from the init's */
    int every = e->train.steps >= 100 ? e->train.steps / 100 : 1;
    double t0 = clock_now(), tail = 0.0;
    int tail_n = 0, tail_from = e->train.steps - (e->train.steps < 20 ? e->train.steps : 20);
    for (int step = 0; step < e->train.steps; step++) {
        corpus_sample_batch(arg->corpus, &rng, B, T, inputs, targets);
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
            msg_status(msg, "failed", err);
            return 0;
        }
        if (step % every == 0 || step == e->train.steps - 1) msg_curve(msg, "train_loss", step, loss);
        if (step >= tail_from) tail += loss, tail_n++;
    }
    double secs = clock_now() - t0;
    uint8_t *blob;
    size_t size;
    rc = model_save(&m, e->scheme, &blob, &size, err);
    if (rc) {
        msg_status(msg, "failed", err);
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
} EvalArg;

static int eval_work(void *argp, ChildMsg *msg) {
    const EvalArg *arg = argp;
    char err[CB_ERR_LEN] = "";
    Model m;
    const char *variant = arg->c->variant[0] ? arg->c->variant : NULL;
    int rc = model_load(&m, arg->weights, arg->weights_size, variant, err);
    if (rc) {
        msg_status(msg, "failed", err);
        return 0;
    }
    int n = arg->c->context;
    msg_scalar(msg, "param_bytes", (double)model_param_bytes(&m));
    msg_scalar(msg, "act_bytes", (double)model_eval_act_bytes(&m, n));
    rc = pe_prepare(&m.pe, n, err);
    if (rc) {
        msg_status(msg, rc == CB_EUNSUPPORTED ? "unsupported" : "failed", err);
        model_free(&m);
        return 0;
    }
    msg_scalar(msg, "pe_state_bytes", (double)pe_state_bytes(&m.pe, n));
    const Corpus *c = arg->corpus;
    PplResult r;
    rc = eval_perplexity(&m, c->bytes + c->train_n, c->n - c->train_n, n, &r, err);
    if (rc) {
        msg_status(msg, rc == CB_EUNSUPPORTED ? "unsupported" : "failed", err);
        model_free(&m);
        return 0;
    }
    msg_status(msg, "ok", NULL);
    msg_metric(msg, "bpb", r.bpb, (int64_t)r.count, "bits/byte", "nonoverlap", n);
    msg_metric(msg, "ppl", r.ppl, (int64_t)r.count, "", "nonoverlap", n);
    msg_metric(msg, "nats", r.nats, (int64_t)r.count, "nats/byte", "nonoverlap", n);
    msg_metric(msg, "windows", r.windows, r.windows, "", "nonoverlap", n);
    for (int b = 0; b < r.n_buckets; b++) msg_curve(msg, "loss_by_bucket", r.bucket_lo[b], r.bucket_bpb[b]);
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
}

/* One cell of the summary table: a row is one model evaluated with one spec. */
typedef struct {
    char label[80];
    int train_ctx;
    int context;
    char status[32];
    double bpb;
} Cell;

static void print_summary(FILE *out, const Cell *cells, size_t n_cells, const int *ctxs, int n_ctxs) {
    fprintf(out, "\nbits per byte on held-out text (lower is better); ratio = largest context / training context\n");
    int width = 10;
    for (size_t i = 0; i < n_cells; i++)
        if ((int)strlen(cells[i].label) > width) width = (int)strlen(cells[i].label);
    fprintf(out, "%-*s", width, "scheme");
    for (int k = 0; k < n_ctxs; k++) fprintf(out, " %9d", ctxs[k]);
    fprintf(out, " %9s\n", "ratio");
    for (size_t r = 0; r < n_cells; r++) {
        int first = 1;
        for (size_t i = 0; i < r && first; i++) first = strcmp(cells[i].label, cells[r].label) != 0;
        if (!first) continue;
        fprintf(out, "%-*s", width, cells[r].label);
        double at_train = NAN, at_last = NAN;
        for (int k = 0; k < n_ctxs; k++) {
            const Cell *hit = NULL;
            for (size_t i = r; i < n_cells; i++)
                if (!strcmp(cells[i].label, cells[r].label) && cells[i].context == ctxs[k]) hit = &cells[i];
            if (!hit) fprintf(out, " %9s", "");
            else if (!strcmp(hit->status, "ok")) {
                fprintf(out, " %9.3f", hit->bpb);
                if (ctxs[k] == hit->train_ctx) at_train = hit->bpb;
                if (k == n_ctxs - 1) at_last = hit->bpb;
            } else fprintf(out, " %9s", !strcmp(hit->status, "unsupported") ? "unsup" : hit->status);
        }
        if (isfinite(at_train) && isfinite(at_last)) fprintf(out, " %9.2f\n", at_last / at_train);
        else fprintf(out, " %9s\n", "-");
    }
}

static int record_case(Store *st, const RunSummary *sum, int64_t model_id, const Experiment *e,
                       const Case *c, const ChildResult *r, double bpb_at_train, char *err) {
    const char *plus = strchr(c->variant, '+');
    CaseRecord cr = {
        .run_id = sum->run_id, .model_id = model_id, .scheme = e->scheme, .variant = plus ? plus + 1 : "",
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
        if (!strcmp(metrics[i].name, "bpb") && isfinite(bpb_at_train) && nm < CHILD_MAX_METRICS + 1)
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

int runner_run(const Suite *s, const RunOptions *o, RunSummary *sum, char *err) {
    memset(sum, 0, sizeof *sum);
    double t_start = clock_now();
    Experiment *exps = NULL;
    Case *cases = NULL;
    size_t n_exps = 0, n_cases = 0;
    int rc = suite_expand(s, &exps, &n_exps, &cases, &n_cases, err);
    if (rc) return rc;
    Corpus corpus = {0};
    rc = corpus_load(&corpus, s->corpus_source, s->eval_bytes, err);
    if (rc) goto out;
    for (size_t i = 0; i < n_cases; i++)
        if ((size_t)cases[i].context + 1 > corpus.n - corpus.train_n) {
            rc = cb_error(err, CB_EINPUT, "%s: context %d needs more than the %zu held-out bytes", s->path,
                          cases[i].context, corpus.n - corpus.train_n);
            goto out;
        }
    int threads = o->threads ? o->threads : s->threads ? s->threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (threads < 1) threads = 1;

    rc = make_parent_dir(o->db_path, err);
    if (rc) goto out;
    Store *st = NULL;
    rc = store_open(&st, o->db_path, 0, err);
    if (rc) goto out;
    RunInfo ri = {.suite_name = s->name, .suite_path = s->path, .suite_text = s->text,
                  .suite_sha256 = s->sha256, .threads = threads};
    store_provenance(&ri);
    rc = store_begin_run(st, &ri, &sum->run_id, err);
    if (rc) {
        store_close(st);
        goto out;
    }
    if (o->log)
        fprintf(o->log, "run %lld: suite %s, %zu models, %zu cases, %d threads, corpus %s (%zu bytes, sha256 %.12s)\n",
                (long long)sum->run_id, s->name, n_exps, n_cases, threads, corpus.source, corpus.n,
                corpus.sha256);

    Cell *cells = calloc(n_cases ? n_cases : 1, sizeof *cells);
    int ctxs[SUITE_MAX_LIST * 2], n_ctxs = 0;
    if (!cells) {
        rc = cb_error(err, CB_ENOMEM, "out of memory");
        goto finish;
    }
    size_t done = 0;
    for (size_t e = 0; e < n_exps && rc == CB_OK; e++) {
        const Experiment *ex = &exps[e];
        char canon[256] = "", model_json[256], train_json[512], keysrc[1400], key[65];
        PeModel pe = {0};
        PeDims dims = {ex->model.n_layer, ex->model.n_head, ex->model.d_model / ex->model.n_head,
                       ex->model.d_model, ex->model.train_ctx};
        if (pe_create(&pe, ex->scheme, &dims, err) == CB_OK) pe_canonical(&pe, canon, sizeof canon);
        pe_destroy(&pe);
        config_json(ex, model_json, sizeof model_json, train_json, sizeof train_json);
        snprintf(keysrc, sizeof keysrc, "%s|%s|%s|%s|%llu", canon, model_json, train_json, corpus.sha256,
                 (unsigned long long)ex->seed);
        sha256_hex(keysrc, strlen(keysrc), key);

        TrainArg ta = {ex, &corpus};
        ChildResult tr;
        rc = child_run(train_work, &ta, threads, &tr, err);
        if (rc) break;
        ModelRecord mr = {
            .run_id = sum->run_id, .scheme = ex->scheme, .scheme_canon = canon, .key = key,
            .model_json = model_json, .train_json = train_json, .corpus_source = corpus.source,
            .corpus_sha256 = corpus.sha256, .seed = ex->seed, .train_ctx = ex->model.train_ctx,
            .n_params = (int64_t)child_scalar(&tr, "n_params", 0),
            .final_loss = child_scalar(&tr, "final_loss", NAN),
            .train_seconds = child_scalar(&tr, "train_seconds", tr.wall_seconds),
            .cpu_seconds = tr.cpu_seconds,
            .bytes_per_second = child_scalar(&tr, "bytes_per_second", 0), .peak_rss = tr.peak_rss,
            .status = tr.status, .error = tr.error[0] ? tr.error : NULL,
            .weights = tr.blob, .weights_size = tr.blob_size};
        int64_t model_id = 0;
        rc = store_insert_model(st, &mr, tr.curve, tr.n_curve, &model_id, err);
        if (rc) {
            child_result_free(&tr);
            break;
        }
        int trained = !strcmp(tr.status, "ok") && tr.blob;
        if (o->log) {
            if (trained)
                fprintf(o->log, "[model %zu/%zu] %-24s seed %llu: trained in %.1fs, final loss %.3f bits/byte\n",
                        e + 1, n_exps, ex->scheme, (unsigned long long)ex->seed, tr.wall_seconds,
                        mr.final_loss / M_LN2);
            else
                fprintf(o->log, "[model %zu/%zu] %-24s seed %llu: %s: %s\n", e + 1, n_exps, ex->scheme,
                        (unsigned long long)ex->seed, tr.status, tr.error);
        }

        double bpb_at_train = NAN;
        for (size_t i = 0; i < n_cases && rc == CB_OK; i++) {
            const Case *c = &cases[i];
            if (c->experiment != (int)e) continue;
            if (c->context == ex->model.train_ctx) bpb_at_train = NAN; /* a new variant or task starts */
            ChildResult cr;
            if (trained) {
                EvalArg ea = {tr.blob, tr.blob_size, &corpus, c};
                rc = child_run(eval_work, &ea, threads, &cr, err);
                if (rc) break;
            } else {
                memset(&cr, 0, sizeof cr);
                snprintf(cr.status, sizeof cr.status, "%s", "failed");
                snprintf(cr.error, sizeof cr.error, "model not trained (%.32s): %.400s", tr.status, tr.error);
            }
            double bpb = metric_value(&cr, "bpb");
            if (c->context == ex->model.train_ctx && !strcmp(cr.status, "ok")) bpb_at_train = bpb;
            rc = record_case(st, sum, model_id, ex, c, &cr, bpb_at_train, err);
            done++;
            sum->n_cases++;
            if (!strcmp(cr.status, "ok")) sum->n_ok++;
            else if (!strcmp(cr.status, "unsupported")) sum->n_unsupported++;
            else sum->n_failed++;
            Cell *cell = &cells[done - 1];
            const char *spec = c->variant[0] ? c->variant : ex->scheme;
            if (s->n_seeds > 1)
                snprintf(cell->label, sizeof cell->label, "%.60s s%llu", spec, (unsigned long long)ex->seed);
            else
                snprintf(cell->label, sizeof cell->label, "%.79s", spec);
            cell->train_ctx = ex->model.train_ctx;
            cell->context = c->context;
            cell->bpb = bpb;
            snprintf(cell->status, sizeof cell->status, "%s", cr.status);
            int seen = 0;
            for (int k = 0; k < n_ctxs; k++) seen |= ctxs[k] == c->context;
            if (!seen && n_ctxs < SUITE_MAX_LIST * 2) ctxs[n_ctxs++] = c->context;
            if (o->log) {
                if (!strcmp(cr.status, "ok"))
                    fprintf(o->log, "[case %zu/%zu] %-24s %-10s n=%-7d ok  %.4f bits/byte  %.2fs  %.1f MiB\n",
                            done, n_cases, spec, c->task, c->context, bpb, cr.wall_seconds,
                            (double)cr.peak_rss / 1048576.0);
                else
                    fprintf(o->log, "[case %zu/%zu] %-24s %-10s n=%-7d %s: %s\n", done, n_cases, spec,
                            c->task, c->context, cr.status, cr.error);
            }
            child_result_free(&cr);
        }
        child_result_free(&tr);
    }
    /* contexts ascending for the table */
    for (int a = 1; a < n_ctxs; a++)
        for (int b = a; b > 0 && ctxs[b - 1] > ctxs[b]; b--) {
            int t = ctxs[b];
            ctxs[b] = ctxs[b - 1];
            ctxs[b - 1] = t;
        }
    if (rc == CB_OK && o->summary)
        print_summary(o->summary, cells, done, ctxs, n_ctxs);
finish:
    free(cells);
    {
        char err2[CB_ERR_LEN];
        int frc = store_finish_run(st, sum->run_id, rc == CB_OK ? "complete" : "failed", err2);
        if (rc == CB_OK && frc) {
            rc = frc;
            memcpy(err, err2, CB_ERR_LEN);
        }
    }
    store_close(st);
    sum->seconds = clock_now() - t_start;
out:
    corpus_free(&corpus);
    free(exps);
    free(cases);
    return rc;
}
