/*
 * store.h — the SQLite results database.
 *
 * One file, WAL mode, busy timeout, schema version in PRAGMA user_version with forward
 * migrations, prepared statements only. Tables: runs, models, cases, metrics, curves; views for
 * the common questions (see results/README.md). Every finished case is one transaction.
 * Every function returns a CbStatus and fills err with one line including sqlite3_errmsg.
 */
#ifndef CB_STORE_H
#define CB_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/core.h"

#define STORE_SCHEMA_VERSION 3

typedef struct Store Store;

/* Where and how a run was made. */
typedef struct {
    const char *suite_name;
    const char *suite_path;
    const char *suite_text;
    const char *suite_sha256;
    int threads;
    /* Filled by store_provenance(): */
    char git_rev[64];
    char host[256];
    char cpu[256];
    char compiler[128];
    char cflags[512];
    char blas[512];  /* OpenBLAS's configuration and blas_core_choice() */
    char version[32];
} RunInfo;

typedef struct {
    int64_t run_id;
    const char *scheme;       /* spec as written */
    const char *scheme_canon; /* canonical spec */
    const char *key;          /* reuse key: hash of everything that determines the weights */
    const char *model_json;   /* model config */
    const char *train_json;   /* training config */
    const char *corpus_source;
    const char *corpus_sha256;
    const char *corpus_path;  /* absolute path of a file: corpus, NULL for a built-in one */
    int64_t corpus_bytes;     /* corpus size in bytes; <= 0 = unknown (NULL) */
    uint64_t seed;
    int train_ctx;
    int64_t n_params;
    double final_loss;        /* nats per byte, mean of the last steps */
    double train_seconds;
    double cpu_seconds;
    double bytes_per_second;  /* training throughput */
    int64_t peak_rss;         /* bytes */
    const char *status;       /* "ok" or "failed" / "diverged" */
    const char *error;        /* NULL if ok */
    const void *weights;      /* checkpoint blob, may be NULL */
    size_t weights_size;
} ModelRecord;

typedef struct {
    int64_t run_id;
    int64_t model_id;         /* 0 = none (training failed before a model existed) */
    const char *scheme;
    const char *variant;      /* "" for none */
    const char *task;         /* "perplexity" */
    int context;
    int train_ctx;
    uint64_t seed;
    const char *status;       /* "ok", "unsupported", "failed" */
    const char *error;        /* reason, NULL if ok */
    double wall_seconds;
    double cpu_seconds;
    int64_t peak_rss;         /* bytes; this and the three below: negative = not measured (NULL) */
    int64_t param_bytes;
    int64_t act_bytes;
    int64_t pe_state_bytes;
} CaseRecord;

typedef struct {
    const char *name;   /* "bpb", "ppl", "bpb_ratio", ... */
    double value;
    double lo, hi;      /* interval; NAN when none */
    int64_t count;      /* number of scored bytes, seeds, ... */
    const char *unit;   /* "bits/byte", "", ... */
    const char *mode;   /* evaluation mode, e.g. "nonoverlap"; NULL if not applicable */
    int stride;         /* 0 if not applicable */
} MetricRecord;

typedef struct {
    const char *name;   /* "loss_by_bucket", "train_loss" */
    double x;
    double y;
} CurveRecord;

/* Opens (creating the file, the schema and running migrations as needed). A database whose
   user_version is newer than STORE_SCHEMA_VERSION, or a file that is not SQLite: CB_EDB.
   readonly opens with SQLITE_OPEN_READONLY and never writes. */
int store_open(Store **st, const char *path, int readonly, char *err);
void store_close(Store *st); /* no-op on NULL */

/* Fills the provenance fields of ri (git revision, host, CPU model, compiler, flags, BLAS). */
void store_provenance(RunInfo *ri);

int store_begin_run(Store *st, const RunInfo *ri, int64_t *run_id, char *err);
/* status: "complete", "failed", "interrupted". */
int store_finish_run(Store *st, int64_t run_id, const char *status, char *err);

/* Inserts a model and its training curve in one transaction. */
int store_insert_model(Store *st, const ModelRecord *m, const CurveRecord *curve, size_t n_curve,
                       int64_t *model_id, char *err);
/* Inserts a case with its metrics and curves in one transaction. */
int store_insert_case(Store *st, const CaseRecord *c, const MetricRecord *metrics, size_t n_metrics,
                      const CurveRecord *curves, size_t n_curves, int64_t *case_id, char *err);

/* Runs one read-only statement and prints the rows: CSV with a header (csv = 1) or an aligned
   text table. A statement that would write is refused (CB_EINPUT). */
int store_query(Store *st, const char *sql, int csv, FILE *out, char *err);

/* Prints the past runs as a text table: id, suite, status, started, cases ok/total, git_rev. */
int store_list_runs(Store *st, FILE *out, char *err);

/* Sets a run back to "running" (for --resume); CB_EINPUT if the run does not exist. */
int store_reopen_run(Store *st, int64_t run_id, char *err);

/* Looks up the newest model with status "ok" and this reuse key, in any run. Found: *model_id > 0
   and, if weights is not NULL, *weights is a malloc'd copy of the blob (NULL when none stored;
   the caller frees it) and *weights_size its size. Not found: *model_id = 0, CB_OK. */
int store_find_model(Store *st, const char *key, int64_t *model_id, void **weights,
                     size_t *weights_size, char *err);

/* The underlying connection, for modules that read with their own prepared statements (report,
   compare). Borrowed: valid until store_close(). */
struct sqlite3 *store_sqlite(Store *st);

/* ---- pruning ---------------------------------------------------------------------------------- */

/* What store_prune removed. */
typedef struct {
    int64_t runs, cases, metrics, curves, models;
    int64_t models_moved; /* trained by a removed run but used by a kept one: kept, and attributed
                             to the oldest kept run that uses them */
} PruneCounts;

/* Removes every run but the newest `keep` (by id), with their cases, metrics, curves and the
   models no kept case uses, in one transaction (all or nothing). keep >= 0; CB_EINPUT otherwise.
   The file keeps its size until VACUUM. */
int store_prune(Store *st, int64_t keep, PruneCounts *counts, char *err);

/* ---- resuming a run ---------------------------------------------------------------------------- */

/* What --resume needs to know about a run. */
typedef struct {
    char suite_name[64];
    char suite_sha256[65];
    char status[16];
    int threads;
} StoredRun;

/* Reads run run_id; CB_EINPUT if there is no such run. */
int store_get_run(Store *st, int64_t run_id, StoredRun *out, char *err);

/* A finished case of a run, identified by its model's reuse key, variant, task and context. */
typedef struct {
    char model_key[65];
    char corpus_sha256[65];
    char variant[128];     /* as stored: the part after '+', "" for none */
    char task[32];
    int context;
    char status[16];
    double bpb;            /* its first "bpb" metric, NAN if none */
} StoredCase;

/* Every case of run run_id that has a model, in insertion order. *cases is malloc'd (NULL when
   there are none); the caller frees it. */
int store_run_cases(Store *st, int64_t run_id, StoredCase **cases, size_t *n, char *err);

/* The first metric `name` of each ok case of run run_id, model model_id, variant (as stored, "" for
   none) and task that has it, as points (context, value) ascending by context: up to max of them
   into x and y, their number in *n. */
int store_metric_by_context(Store *st, int64_t run_id, int64_t model_id, const char *variant, const char *task,
                            const char *name, double *x, double *y, int max, int *n, char *err);

/* A model of one run, found by its reuse key. */
typedef struct {
    int64_t id;            /* 0 = none */
    char status[16];
    char error[CB_ERR_LEN];
    void *weights;         /* malloc'd copy of the checkpoint, NULL if none; the caller frees it */
    size_t weights_size;
} StoredModel;

/* The model of run run_id with this key: the newest with status "ok", else the newest of any
   status. Not found: out->id = 0, CB_OK. */
int store_find_run_model(Store *st, int64_t run_id, const char *key, StoredModel *out, char *err);

#endif
