/*
 * store.c — the SQLite results database (see store.h and results/README.md).
 *
 * One connection per Store, WAL journal, 10 s busy timeout, foreign keys on. The schema lives in
 * schema.c as forward migrations; store_open() brings an older file up to STORE_SCHEMA_VERSION
 * and refuses a newer one. Every value reaches SQLite through a bound parameter; the statements
 * used per case (case, metric, curve) are prepared once per connection and reset after each use.
 * A model or a case and everything hanging off it is one BEGIN IMMEDIATE ... COMMIT, so a crash
 * or an interrupted run never leaves half a case behind.
 */
#include "store/store.h"

#include <errno.h>
#include <math.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "core/blas.h"
#include "store/schema.h"

#ifndef CB_GIT_REV
#define CB_GIT_REV "unknown"
#endif
#ifndef CB_COMPILER
#if defined(__GNUC__) && !defined(__clang__)
#define CB_COMPILER "GNU " __VERSION__
#elif defined(__VERSION__)
#define CB_COMPILER __VERSION__
#else
#define CB_COMPILER "unknown"
#endif
#endif
#ifndef CB_CFLAGS
#define CB_CFLAGS "unknown"
#endif
#ifndef CB_VERSION
#define CB_VERSION "unknown"
#endif

#define CB_BUSY_TIMEOUT_MS 10000
#define CB_NOW_SQL "strftime('%Y-%m-%dT%H:%M:%SZ', 'now')"

struct Store {
    sqlite3 *db;
    char *path;
    int readonly;
    /* Prepared once (read-write connections only), reset after every use. */
    sqlite3_stmt *ins_model;
    sqlite3_stmt *ins_case;
    sqlite3_stmt *ins_metric;
    sqlite3_stmt *ins_curve;
};

/* ---- small helpers ---------------------------------------------------------------------------- */

/* CB_EDB with "PATH: what: sqlite's message". */
static int db_error(const Store *st, char *err, const char *what) {
    return cb_error(err, CB_EDB, "%s: %s: %s", st->path, what, sqlite3_errmsg(st->db));
}

/* Prepares, steps to the end and finalizes one statement that takes no parameters. */
static int exec1(Store *st, const char *sql, const char *what, char *err) {
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v2(st->db, sql, -1, &s, NULL);
    if (rc == SQLITE_OK) {
        do rc = sqlite3_step(s);
        while (rc == SQLITE_ROW);
    }
    int status = (rc == SQLITE_OK || rc == SQLITE_DONE) ? CB_OK : db_error(st, err, what);
    sqlite3_finalize(s);
    return status;
}

/* Runs every statement of a script (a migration step), one prepared statement at a time. */
static int exec_script(Store *st, const char *sql, const char *what, char *err) {
    const char *next = sql;
    while (*next) {
        sqlite3_stmt *s = NULL;
        const char *tail = NULL;
        int rc = sqlite3_prepare_v2(st->db, next, -1, &s, &tail);
        if (rc != SQLITE_OK) return db_error(st, err, what);
        if (!s) break; /* only whitespace or comments left */
        do rc = sqlite3_step(s);
        while (rc == SQLITE_ROW);
        if (rc != SQLITE_DONE) {
            int status = db_error(st, err, what);
            sqlite3_finalize(s);
            return status;
        }
        sqlite3_finalize(s);
        next = tail;
    }
    return CB_OK;
}

/* Reads one integer from a statement that returns a single row (a pragma, a count). */
static int query_int(Store *st, const char *sql, int64_t *out, int *rc_out) {
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v2(st->db, sql, -1, &s, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(s);
        if (rc == SQLITE_ROW) {
            *out = sqlite3_column_int64(s, 0);
            rc = SQLITE_OK;
        }
    }
    sqlite3_finalize(s);
    *rc_out = rc;
    return rc == SQLITE_OK ? CB_OK : CB_EDB;
}

static int begin(Store *st, char *err) {
    return exec1(st, "BEGIN IMMEDIATE", "beginning a transaction", err);
}

static int commit(Store *st, char *err) {
    return exec1(st, "COMMIT", "committing", err);
}

/* Rolls back if a transaction is still open (SQLite may already have rolled it back itself). */
static void rollback(Store *st) {
    if (!sqlite3_get_autocommit(st->db)) exec1(st, "ROLLBACK", "rolling back", NULL);
}

/* Binders: each skips once *rc is an error, so a run of binds is checked once at the end. */
static void bind_text(sqlite3_stmt *s, int i, const char *v, int *rc) {
    if (*rc != SQLITE_OK) return;
    *rc = v ? sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC) : sqlite3_bind_null(s, i);
}

static void bind_i64(sqlite3_stmt *s, int i, int64_t v, int *rc) {
    if (*rc == SQLITE_OK) *rc = sqlite3_bind_int64(s, i, v);
}

/* A size that was not measured (negative) is stored as NULL. */
static void bind_size(sqlite3_stmt *s, int i, int64_t v, int *rc) {
    if (*rc != SQLITE_OK) return;
    *rc = v < 0 ? sqlite3_bind_null(s, i) : sqlite3_bind_int64(s, i, v);
}

/* A NaN (no value, no interval) is stored as NULL. */
static void bind_real(sqlite3_stmt *s, int i, double v, int *rc) {
    if (*rc != SQLITE_OK) return;
    *rc = isnan(v) ? sqlite3_bind_null(s, i) : sqlite3_bind_double(s, i, v);
}

/* Steps a cached insert to completion and always leaves it reset with its bindings cleared. */
static int step_done(Store *st, sqlite3_stmt *s, int bind_rc, const char *what, char *err) {
    int status = CB_OK;
    if (bind_rc != SQLITE_OK) {
        status = cb_error(err, CB_EDB, "%s: %s: binding: %s", st->path, what,
                          sqlite3_errstr(bind_rc));
    } else if (sqlite3_step(s) != SQLITE_DONE) {
        status = db_error(st, err, what);
    }
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return status;
}

/* ---- opening, schema and migrations ----------------------------------------------------------- */

static int prepare_cached(Store *st, sqlite3_stmt **s, const char *sql, char *err) {
    if (sqlite3_prepare_v3(st->db, sql, -1, SQLITE_PREPARE_PERSISTENT, s, NULL) != SQLITE_OK)
        return db_error(st, err, "preparing statements");
    return CB_OK;
}

/* Brings the file from its user_version to STORE_SCHEMA_VERSION, one step per transaction. The
   version is read again inside each transaction, so two processes opening the same new file at
   once do not both run a step. */
static int migrate(Store *st, char *err) {
    int status;
    for (;;) {
        status = begin(st, err);
        if (status) return status;
        int64_t version = 0, objects = 0;
        int rc;
        if (query_int(st, "PRAGMA user_version", &version, &rc)) {
            status = db_error(st, err, "reading the schema version");
            goto fail;
        }
        if (version >= STORE_SCHEMA_VERSION) {
            if (version > STORE_SCHEMA_VERSION) {
                status = cb_error(err, CB_EDB, "%s: schema version %lld is newer than this ctxbench (%d)",
                                  st->path, (long long)version, STORE_SCHEMA_VERSION);
                goto fail;
            }
            return commit(st, err);
        }
        if (version == 0) {
            /* A database someone else made: do not add our tables to it. */
            if (query_int(st, "SELECT count(*) FROM sqlite_schema", &objects, &rc)) {
                status = db_error(st, err, "reading the schema");
                goto fail;
            }
            if (objects > 0) {
                status = cb_error(err, CB_EDB,
                                  "%s: not a ctxbench database (user_version 0 but it has %lld "
                                  "tables, views or indexes)", st->path, (long long)objects);
                goto fail;
            }
        }
        char what[64], set_version[64];
        snprintf(what, sizeof what, "migrating to schema version %lld", (long long)version + 1);
        snprintf(set_version, sizeof set_version, "PRAGMA user_version = %lld", (long long)version + 1);
        status = exec_script(st, store_migrations[version], what, err);
        if (!status) status = exec1(st, set_version, what, err);
        if (!status) status = commit(st, err);
        if (status) goto fail;
    }
fail:
    rollback(st);
    return status;
}

/* Explains a failed sqlite3_open_v2: a missing file or directory is the usual cause. */
static int open_error(Store *st, int readonly, char *err) {
    const char *msg = st->db ? sqlite3_errmsg(st->db) : "out of memory";
    if (!readonly) {
        char *dir = cb_strdup(st->path);
        char *slash = dir ? strrchr(dir, '/') : NULL;
        struct stat sb;
        if (slash && slash != dir) {
            *slash = '\0';
            if (stat(dir, &sb) != 0) {
                int status = cb_error(err, CB_EDB, "%s: cannot create the database: directory %s: %s",
                                      st->path, dir, strerror(errno));
                free(dir);
                return status;
            }
        }
        free(dir);
    }
    return cb_error(err, CB_EDB, "%s: cannot open the database: %s", st->path, msg);
}

int store_open(Store **out, const char *path, int readonly, char *err) {
    *out = NULL;
    Store *st = calloc(1, sizeof *st);
    if (!st || !(st->path = cb_strdup(path))) {
        free(st);
        return cb_error(err, CB_ENOMEM, "%s: out of memory opening the database", path);
    }
    st->readonly = readonly;
    int status = CB_OK, rc;
    struct stat sb;
    if (readonly && stat(path, &sb) != 0) {
        status = cb_error(err, CB_EDB, "%s: cannot open the database read-only: %s", path,
                          strerror(errno));
        goto fail;
    }
    int flags = readonly ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    if (sqlite3_open_v2(path, &st->db, flags, NULL) != SQLITE_OK) {
        status = open_error(st, readonly, err);
        goto fail;
    }
    sqlite3_extended_result_codes(st->db, 1);
    if (sqlite3_busy_timeout(st->db, CB_BUSY_TIMEOUT_MS) != SQLITE_OK) {
        status = db_error(st, err, "setting the busy timeout");
        goto fail;
    }

    /* The first read tells a non-SQLite file apart (SQLITE_NOTADB). */
    int64_t version = 0;
    if (query_int(st, "PRAGMA user_version", &version, &rc)) {
        if ((rc & 0xff) == SQLITE_NOTADB)
            status = cb_error(err, CB_EDB, "%s: not an SQLite database (%s)", path,
                              sqlite3_errmsg(st->db));
        else
            status = db_error(st, err, "reading the schema version");
        goto fail;
    }
    if (version > STORE_SCHEMA_VERSION) {
        status = cb_error(err, CB_EDB, "%s: schema version %lld is newer than this ctxbench (%d)",
                          path, (long long)version, STORE_SCHEMA_VERSION);
        goto fail;
    }
    if (version == 0 && !readonly) {
        /* Someone else's database: refuse it before switching it to WAL, which would write to it. */
        int64_t objects = 0;
        if (query_int(st, "SELECT count(*) FROM sqlite_schema", &objects, &rc)) {
            status = db_error(st, err, "reading the schema");
            goto fail;
        }
        /* The two reads are separate snapshots: another ctxbench may have created the schema (and
           set user_version in the same transaction) in between. Read the version again. */
        if (objects > 0 && query_int(st, "PRAGMA user_version", &version, &rc)) {
            status = db_error(st, err, "reading the schema version");
            goto fail;
        }
        if (objects > 0 && version == 0) {
            status = cb_error(err, CB_EDB, "%s: not a ctxbench database (user_version 0 but it has %lld tables, "
                              "views or indexes)", path, (long long)objects);
            goto fail;
        }
    }
    if ((status = exec1(st, "PRAGMA foreign_keys = ON", "enabling foreign keys", err))) goto fail;

    if (readonly) {
        if (version == 0) {
            status = cb_error(err, CB_EDB, "%s: not a ctxbench database (no schema)", path);
            goto fail;
        }
        /* An older schema reads as it was written: migrations only add tables and views, which
           appear with the next read-write open (any `ctxbench run`). */
        *out = st;
        return CB_OK;
    }

    /* journal_mode answers with the mode in force: "memory" for an in-memory database. */
    /* Switching needs an exclusive lock, and SQLite does not always wait on the busy handler for
       it: another ctxbench creating the same new file at this moment makes it answer SQLITE_BUSY
       at once. Retry for as long as the busy timeout. */
    sqlite3_stmt *s = NULL;
    for (int waited_ms = 0;; waited_ms += 20) {
        rc = sqlite3_prepare_v2(st->db, "PRAGMA journal_mode = WAL", -1, &s, NULL);
        if (rc == SQLITE_OK) rc = sqlite3_step(s);
        if (((rc & 0xff) != SQLITE_BUSY && (rc & 0xff) != SQLITE_LOCKED) || waited_ms >= CB_BUSY_TIMEOUT_MS) break;
        sqlite3_finalize(s);
        s = NULL;
        sqlite3_sleep(20);
    }
    if (rc != SQLITE_ROW) {
        status = db_error(st, err, "switching to WAL mode");
        sqlite3_finalize(s);
        goto fail;
    }
    const char *mode = (const char *)sqlite3_column_text(s, 0);
    if (!mode || (strcmp(mode, "wal") != 0 && strcmp(mode, "memory") != 0)) {
        status = cb_error(err, CB_EDB, "%s: cannot switch to WAL mode (journal mode is %s)", path,
                          mode ? mode : "unknown");
        sqlite3_finalize(s);
        goto fail;
    }
    sqlite3_finalize(s);

    if ((status = migrate(st, err))) goto fail;

    if ((status = prepare_cached(st, &st->ins_model,
            "INSERT INTO models (run_id, scheme, scheme_canon, model_key, model_json, train_json,"
            " corpus_source, corpus_sha256, seed, train_ctx, n_params, final_loss, train_seconds,"
            " cpu_seconds, bytes_per_second, peak_rss, status, error, weights, corpus_path, corpus_bytes)"
            " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,"
            " ?18, ?19, ?20, ?21)", err)))
        goto fail;
    if ((status = prepare_cached(st, &st->ins_case,
            "INSERT INTO cases (run_id, model_id, scheme, variant, task, context, train_ctx, seed,"
            " status, error, wall_seconds, cpu_seconds, peak_rss, param_bytes, act_bytes,"
            " pe_state_bytes)"
            " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)", err)))
        goto fail;
    if ((status = prepare_cached(st, &st->ins_metric,
            "INSERT INTO metrics (case_id, name, value, lo, hi, count, unit, mode, stride)"
            " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)", err)))
        goto fail;
    if ((status = prepare_cached(st, &st->ins_curve,
            "INSERT INTO curves (case_id, model_id, name, x, y) VALUES (?1, ?2, ?3, ?4, ?5)", err)))
        goto fail;
    *out = st;
    return CB_OK;
fail:
    store_close(st);
    return status;
}

void store_close(Store *st) {
    if (!st) return;
    sqlite3_finalize(st->ins_model);
    sqlite3_finalize(st->ins_case);
    sqlite3_finalize(st->ins_metric);
    sqlite3_finalize(st->ins_curve);
    sqlite3_close(st->db); /* NULL is a no-op; every statement is finalized above */
    free(st->path);
    free(st);
}

struct sqlite3 *store_sqlite(Store *st) { return st->db; }

/* ---- provenance ------------------------------------------------------------------------------- */

/* The "model name" line of /proc/cpuinfo (x86; other architectures may not have one). */
static void cpu_model(char *out, size_t n) {
    snprintf(out, n, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) != 0) continue;
        const char *v = strchr(line, ':');
        if (!v) continue;
        v++;
        while (*v == ' ' || *v == '\t') v++;
        size_t len = strcspn(v, "\r\n");
        while (len > 0 && v[len - 1] == ' ') len--;
        snprintf(out, n, "%.*s", (int)len, v);
        break;
    }
    fclose(f);
}

void store_provenance(RunInfo *ri) {
    /* Precisions keep every field inside its buffer whatever the system reports. */
    snprintf(ri->git_rev, sizeof ri->git_rev, "%.63s", CB_GIT_REV);
    struct utsname u;
    if (uname(&u) == 0)
        snprintf(ri->host, sizeof ri->host, "%.64s (%.32s %.64s %.32s)", u.nodename, u.sysname,
                 u.release, u.machine);
    else
        snprintf(ri->host, sizeof ri->host, "unknown");
    char model[200];
    cpu_model(model, sizeof model);
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    if (ncpu > 0)
        snprintf(ri->cpu, sizeof ri->cpu, "%.199s, %ld logical CPUs", model, ncpu);
    else
        snprintf(ri->cpu, sizeof ri->cpu, "%.199s", model);
    snprintf(ri->compiler, sizeof ri->compiler, "%.127s", CB_COMPILER);
    snprintf(ri->cflags, sizeof ri->cflags, "%.511s", CB_CFLAGS);
    snprintf(ri->version, sizeof ri->version, "%.31s", CB_VERSION);
    /* Only reads static strings: no BLAS thread is started here. */
    blas_describe(ri->blas, sizeof ri->blas);
}

/* ---- runs ------------------------------------------------------------------------------------- */

int store_begin_run(Store *st, const RunInfo *ri, int64_t *run_id, char *err) {
    *run_id = 0;
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(st->db,
            "INSERT INTO runs (suite_name, suite_path, suite_text, suite_sha256, git_rev, host,"
            " cpu, threads, compiler, cflags, blas, version)"
            " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)", -1, &s, NULL) != SQLITE_OK)
        return db_error(st, err, "recording the run");
    int rc = SQLITE_OK;
    bind_text(s, 1, ri->suite_name, &rc);
    bind_text(s, 2, ri->suite_path, &rc);
    bind_text(s, 3, ri->suite_text, &rc);
    bind_text(s, 4, ri->suite_sha256, &rc);
    bind_text(s, 5, ri->git_rev, &rc);
    bind_text(s, 6, ri->host, &rc);
    bind_text(s, 7, ri->cpu, &rc);
    bind_i64(s, 8, ri->threads, &rc);
    bind_text(s, 9, ri->compiler, &rc);
    bind_text(s, 10, ri->cflags, &rc);
    bind_text(s, 11, ri->blas, &rc);
    bind_text(s, 12, ri->version, &rc);
    int status = step_done(st, s, rc, "recording the run", err);
    if (!status) *run_id = sqlite3_last_insert_rowid(st->db);
    sqlite3_finalize(s);
    return status;
}

/* Sets a run's status (and its end time, or clears it when the run goes back to running). */
static int set_run_status(Store *st, int64_t run_id, const char *status_text, char *err) {
    sqlite3_stmt *s = NULL;
    const char *sql = strcmp(status_text, "running") == 0
        ? "UPDATE runs SET status = ?1, finished_at = NULL WHERE id = ?2"
        : "UPDATE runs SET status = ?1, finished_at = " CB_NOW_SQL " WHERE id = ?2";
    if (sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) != SQLITE_OK)
        return db_error(st, err, "updating the run");
    int rc = SQLITE_OK;
    bind_text(s, 1, status_text, &rc);
    bind_i64(s, 2, run_id, &rc);
    int status = step_done(st, s, rc, "updating the run", err);
    sqlite3_finalize(s);
    if (!status && sqlite3_changes(st->db) == 0)
        status = cb_error(err, CB_EINPUT, "%s: run %lld does not exist", st->path,
                          (long long)run_id);
    return status;
}

int store_finish_run(Store *st, int64_t run_id, const char *status, char *err) {
    if (!status || (strcmp(status, "complete") != 0 && strcmp(status, "failed") != 0 &&
                    strcmp(status, "interrupted") != 0))
        return cb_error(err, CB_EINPUT, "run status '%s' is not one of complete, failed, interrupted",
                        status ? status : "(null)");
    return set_run_status(st, run_id, status, err);
}

int store_reopen_run(Store *st, int64_t run_id, char *err) {
    return set_run_status(st, run_id, "running", err);
}

/* ---- models and cases ------------------------------------------------------------------------- */

/* Inserts curve points owned by a case (case_id > 0) or by a model. Inside the caller's
   transaction. */
static int insert_curves(Store *st, int64_t case_id, int64_t model_id, const CurveRecord *curves,
                         size_t n, char *err) {
    for (size_t i = 0; i < n; i++) {
        int rc = SQLITE_OK;
        sqlite3_stmt *s = st->ins_curve;
        if (case_id > 0) bind_i64(s, 1, case_id, &rc);
        else bind_i64(s, 2, model_id, &rc);
        bind_text(s, 3, curves[i].name, &rc);
        bind_real(s, 4, curves[i].x, &rc);
        bind_real(s, 5, curves[i].y, &rc);
        int status = step_done(st, s, rc, "inserting a curve point", err);
        if (status) return status;
    }
    return CB_OK;
}

int store_insert_model(Store *st, const ModelRecord *m, const CurveRecord *curve, size_t n_curve,
                       int64_t *model_id, char *err) {
    *model_id = 0;
    if (st->readonly) return cb_error(err, CB_EDB, "%s: opened read-only", st->path);
    if (m->weights && m->weights_size > (size_t)INT64_MAX)
        return cb_error(err, CB_EINPUT, "%s: weights of %zu bytes are too large", st->path,
                        m->weights_size);
    int status = begin(st, err);
    if (status) return status;
    sqlite3_stmt *s = st->ins_model;
    int rc = SQLITE_OK;
    bind_i64(s, 1, m->run_id, &rc);
    bind_text(s, 2, m->scheme, &rc);
    bind_text(s, 3, m->scheme_canon, &rc);
    bind_text(s, 4, m->key, &rc);
    bind_text(s, 5, m->model_json, &rc);
    bind_text(s, 6, m->train_json, &rc);
    bind_text(s, 7, m->corpus_source, &rc);
    bind_text(s, 8, m->corpus_sha256, &rc);
    bind_i64(s, 9, (int64_t)m->seed, &rc); /* the 64 bits as stored; >= 2^63 reads negative */
    bind_i64(s, 10, m->train_ctx, &rc);
    bind_i64(s, 11, m->n_params, &rc);
    bind_real(s, 12, m->final_loss, &rc);
    bind_real(s, 13, m->train_seconds, &rc);
    bind_real(s, 14, m->cpu_seconds, &rc);
    bind_real(s, 15, m->bytes_per_second, &rc);
    bind_i64(s, 16, m->peak_rss, &rc);
    bind_text(s, 17, m->status ? m->status : "ok", &rc);
    bind_text(s, 18, m->error, &rc);
    if (rc == SQLITE_OK)
        rc = m->weights ? sqlite3_bind_blob64(s, 19, m->weights, m->weights_size, SQLITE_STATIC)
                        : sqlite3_bind_null(s, 19);
    bind_text(s, 20, m->corpus_path, &rc);
    if (rc == SQLITE_OK)
        rc = m->corpus_bytes > 0 ? sqlite3_bind_int64(s, 21, m->corpus_bytes) : sqlite3_bind_null(s, 21);
    char what[192];
    snprintf(what, sizeof what, "inserting model %s", m->scheme ? m->scheme : "(null)");
    if ((status = step_done(st, s, rc, what, err))) goto fail;
    int64_t id = sqlite3_last_insert_rowid(st->db);
    if ((status = insert_curves(st, 0, id, curve, n_curve, err))) goto fail;
    if ((status = commit(st, err))) goto fail;
    *model_id = id;
    return CB_OK;
fail:
    rollback(st);
    return status;
}

int store_insert_case(Store *st, const CaseRecord *c, const MetricRecord *metrics, size_t n_metrics,
                      const CurveRecord *curves, size_t n_curves, int64_t *case_id, char *err) {
    *case_id = 0;
    if (st->readonly) return cb_error(err, CB_EDB, "%s: opened read-only", st->path);
    int status = begin(st, err);
    if (status) return status;
    sqlite3_stmt *s = st->ins_case;
    int rc = SQLITE_OK;
    bind_i64(s, 1, c->run_id, &rc);
    if (c->model_id > 0) bind_i64(s, 2, c->model_id, &rc); /* else stays NULL */
    bind_text(s, 3, c->scheme, &rc);
    bind_text(s, 4, c->variant ? c->variant : "", &rc);
    bind_text(s, 5, c->task, &rc);
    bind_i64(s, 6, c->context, &rc);
    bind_i64(s, 7, c->train_ctx, &rc);
    bind_i64(s, 8, (int64_t)c->seed, &rc);
    bind_text(s, 9, c->status, &rc);
    bind_text(s, 10, c->error, &rc);
    bind_real(s, 11, c->wall_seconds, &rc);
    bind_real(s, 12, c->cpu_seconds, &rc);
    bind_size(s, 13, c->peak_rss, &rc);
    bind_size(s, 14, c->param_bytes, &rc);
    bind_size(s, 15, c->act_bytes, &rc);
    bind_size(s, 16, c->pe_state_bytes, &rc);
    char what[256];
    snprintf(what, sizeof what, "inserting case %s%s%s %s n=%d",
             c->scheme ? c->scheme : "(null)", c->variant && *c->variant ? "/" : "",
             c->variant ? c->variant : "", c->task ? c->task : "(null)", c->context);
    if ((status = step_done(st, s, rc, what, err))) goto fail;
    int64_t id = sqlite3_last_insert_rowid(st->db);
    for (size_t i = 0; i < n_metrics; i++) {
        const MetricRecord *m = &metrics[i];
        s = st->ins_metric;
        rc = SQLITE_OK;
        bind_i64(s, 1, id, &rc);
        bind_text(s, 2, m->name, &rc);
        bind_real(s, 3, m->value, &rc);
        bind_real(s, 4, m->lo, &rc);
        bind_real(s, 5, m->hi, &rc);
        bind_i64(s, 6, m->count, &rc);
        bind_text(s, 7, m->unit, &rc);
        bind_text(s, 8, m->mode, &rc);
        if (m->stride > 0) bind_i64(s, 9, m->stride, &rc);
        if ((status = step_done(st, s, rc, "inserting a metric", err))) goto fail;
    }
    if ((status = insert_curves(st, id, 0, curves, n_curves, err))) goto fail;
    if ((status = commit(st, err))) goto fail;
    *case_id = id;
    return CB_OK;
fail:
    rollback(st);
    return status;
}

int store_find_model(Store *st, const char *key, int64_t *model_id, void **weights,
                     size_t *weights_size, char *err) {
    *model_id = 0;
    if (weights) *weights = NULL;
    if (weights_size) *weights_size = 0;
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(st->db,
            "SELECT id, weights FROM models WHERE model_key = ?1 AND status = 'ok'"
            " ORDER BY id DESC LIMIT 1", -1, &s, NULL) != SQLITE_OK)
        return db_error(st, err, "looking up a model");
    int status = CB_OK;
    int rc = SQLITE_OK;
    bind_text(s, 1, key, &rc);
    if (rc != SQLITE_OK) {
        status = cb_error(err, CB_EDB, "%s: looking up a model: %s", st->path, sqlite3_errstr(rc));
        goto done;
    }
    rc = sqlite3_step(s);
    if (rc == SQLITE_DONE) goto done;
    if (rc != SQLITE_ROW) {
        status = db_error(st, err, "looking up a model");
        goto done;
    }
    if (weights && sqlite3_column_type(s, 1) == SQLITE_BLOB) {
        const void *blob = sqlite3_column_blob(s, 1);
        size_t n = (size_t)sqlite3_column_bytes(s, 1);
        void *copy = malloc(n ? n : 1);
        if (!copy) {
            status = cb_error(err, CB_ENOMEM, "%s: out of memory reading %zu bytes of weights",
                              st->path, n);
            goto done;
        }
        if (n) memcpy(copy, blob, n);
        *weights = copy;
        if (weights_size) *weights_size = n;
    }
    *model_id = sqlite3_column_int64(s, 0);
done:
    sqlite3_finalize(s);
    return status;
}

/* ---- queries and tables ----------------------------------------------------------------------- */

/* Authorizer for user queries: sqlite3_stmt_readonly() still says yes to ATTACH (which creates
   files), to transaction control and to pragmas that set something, so those are denied here. */
static int query_authorizer(void *denied, int action, const char *a1, const char *a2,
                            const char *dbname, const char *trigger) {
    (void)dbname;
    (void)trigger;
    static const char *const readable_with_argument[] = {
        "table_info", "table_xinfo", "table_list", "index_list", "index_info", "index_xinfo",
        "foreign_key_list", "foreign_key_check", "integrity_check", "quick_check",
    };
    static const char *const readable_plain[] = {
        "user_version", "schema_version", "application_id", "page_count", "page_size",
        "freelist_count", "journal_mode", "compile_options", "database_list", "function_list",
        "pragma_list", "collation_list", "module_list", "encoding", "data_version",
        "foreign_keys",
    };
    switch (action) {
    case SQLITE_ATTACH:
    case SQLITE_DETACH:
    case SQLITE_TRANSACTION:
    case SQLITE_SAVEPOINT:
        *(int *)denied = 1;
        return SQLITE_DENY;
    case SQLITE_PRAGMA:
        for (size_t i = 0; i < sizeof readable_with_argument / sizeof *readable_with_argument; i++)
            if (a1 && strcmp(a1, readable_with_argument[i]) == 0) return SQLITE_OK;
        for (size_t i = 0; i < sizeof readable_plain / sizeof *readable_plain; i++)
            if (a1 && !a2 && strcmp(a1, readable_plain[i]) == 0) return SQLITE_OK;
        *(int *)denied = 1;
        return SQLITE_DENY;
    default:
        return SQLITE_OK;
    }
}

/* A cell as text, malloc'd; NULL for an SQL NULL. CSV keeps every digit a double needs to round
   trip; the table keeps six significant digits. */
static char *cell_text(sqlite3_stmt *s, int i, int csv) {
    char buf[64];
    switch (sqlite3_column_type(s, i)) {
    case SQLITE_NULL:
        return NULL;
    case SQLITE_INTEGER:
        snprintf(buf, sizeof buf, "%lld", (long long)sqlite3_column_int64(s, i));
        return cb_strdup(buf);
    case SQLITE_FLOAT: {
        double v = sqlite3_column_double(s, i);
        if (!csv) {
            snprintf(buf, sizeof buf, "%.6g", v);
        } else {
            for (int digits = 15; digits <= 17; digits++) {
                snprintf(buf, sizeof buf, "%.*g", digits, v);
                if (strtod(buf, NULL) == v) break;
            }
        }
        /* Keep a REAL recognisable as one, as SQLite itself prints it: 2.0, not 2. */
        if (!strpbrk(buf, ".eEni")) strncat(buf, ".0", sizeof buf - strlen(buf) - 1);
        return cb_strdup(buf);
    }
    case SQLITE_BLOB:
        snprintf(buf, sizeof buf, "<blob %d bytes>", sqlite3_column_bytes(s, i));
        return cb_strdup(buf);
    default: {
        const char *t = (const char *)sqlite3_column_text(s, i);
        return cb_strdup(t ? t : "");
    }
    }
}

/* RFC 4180: a field with a comma, quote, line break or edge space is quoted, quotes doubled. */
static void csv_field(FILE *out, const char *v) {
    if (!v) return;
    size_t n = strlen(v);
    int quote = strpbrk(v, ",\"\r\n") != NULL || (n > 0 && (v[0] == ' ' || v[n - 1] == ' '));
    if (!quote) {
        fputs(v, out);
        return;
    }
    fputc('"', out);
    for (const char *p = v; *p; p++) {
        if (*p == '"') fputc('"', out);
        fputc(*p, out);
    }
    fputc('"', out);
}

/* Display width in characters (UTF-8 continuation bytes take no column). */
static size_t text_width(const char *s) {
    size_t w = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xc0) != 0x80) w++;
    return w;
}

/* One line per cell in a table: control characters (newlines in suite text) become spaces. */
static void flatten(char *s) {
    for (; s && *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f) *s = ' ';
}

static void pad(FILE *out, size_t n) {
    while (n--) fputc(' ', out);
}

static int print_csv(Store *st, sqlite3_stmt *s, FILE *out, char *err) {
    int ncol = sqlite3_column_count(s);
    for (int j = 0; j < ncol; j++) {
        if (j) fputc(',', out);
        csv_field(out, sqlite3_column_name(s, j));
    }
    fputc('\n', out);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        for (int j = 0; j < ncol; j++) {
            if (j) fputc(',', out);
            char *v = cell_text(s, j, 1);
            if (!v && sqlite3_column_type(s, j) != SQLITE_NULL)
                return cb_error(err, CB_ENOMEM, "query: out of memory");
            csv_field(out, v);
            free(v);
        }
        fputc('\n', out);
    }
    if (rc != SQLITE_DONE) return cb_error(err, CB_EDB, "query: %s", sqlite3_errmsg(st->db));
    return CB_OK;
}

/* Reads every row first so that each column is as wide as its widest cell. A column whose cells
   are all numbers (or NULL) is aligned right, header included; NULL shows as "NULL". */
static int print_table(Store *st, sqlite3_stmt *s, FILE *out, char *err) {
    int ncol = sqlite3_column_count(s);
    if (ncol == 0) return CB_OK;
    size_t *width = calloc((size_t)ncol, sizeof *width);
    unsigned char *text = calloc((size_t)ncol, 1); /* 1 = the column holds some text */
    char **cells = NULL;                            /* (rows, ncol) */
    size_t rows = 0, cap = 0;
    int status = CB_OK, rc;
    if (!width || !text) {
        status = cb_error(err, CB_ENOMEM, "query: out of memory");
        goto done;
    }
    for (int j = 0; j < ncol; j++) width[j] = text_width(sqlite3_column_name(s, j));
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (rows == cap) {
            size_t ncap = cap ? 2 * cap : 64, bytes;
            if (size_mul(ncap * sizeof *cells, (size_t)ncol, &bytes)) {
                status = cb_error(err, CB_ENOMEM, "query: too many rows");
                goto done;
            }
            char **nc = realloc(cells, bytes);
            if (!nc) {
                status = cb_error(err, CB_ENOMEM, "query: out of memory at row %zu", rows);
                goto done;
            }
            cells = nc;
            cap = ncap;
        }
        char **row = cells + rows * (size_t)ncol;
        for (int j = 0; j < ncol; j++) row[j] = NULL;
        rows++;
        for (int j = 0; j < ncol; j++) {
            int type = sqlite3_column_type(s, j);
            char *v = type == SQLITE_NULL ? cb_strdup("NULL") : cell_text(s, j, 0);
            if (!v) {
                status = cb_error(err, CB_ENOMEM, "query: out of memory");
                goto done;
            }
            row[j] = v;
            if (type == SQLITE_TEXT || type == SQLITE_BLOB) text[j] = 1;
            flatten(v);
            size_t w = text_width(v);
            if (w > width[j]) width[j] = w;
        }
    }
    if (rc != SQLITE_DONE) {
        status = cb_error(err, CB_EDB, "query: %s", sqlite3_errmsg(st->db));
        goto done;
    }
    for (size_t i = 0; i <= rows + 1; i++) {
        for (int j = 0; j < ncol; j++) {
            if (j) fputs("  ", out);
            if (i == 1) {
                for (size_t k = 0; k < width[j]; k++) fputc('-', out);
                continue;
            }
            const char *v = i == 0 ? sqlite3_column_name(s, j) : cells[(i - 2) * ncol + j];
            size_t gap = width[j] - text_width(v);
            if (!text[j]) pad(out, gap);
            fputs(v, out);
            if (text[j] && j + 1 < ncol) pad(out, gap);
        }
        fputc('\n', out);
    }
done:
    for (size_t i = 0; i < rows * (size_t)ncol; i++) free(cells[i]);
    free(cells);
    free(text);
    free(width);
    return status;
}

static int print_rows(Store *st, sqlite3_stmt *s, int csv, FILE *out, char *err) {
    int status = csv ? print_csv(st, s, out, err) : print_table(st, s, out, err);
    if (!status && (fflush(out) != 0 || ferror(out)))
        status = cb_error(err, CB_EIO, "query: writing the output: %s", strerror(errno));
    return status;
}

int store_query(Store *st, const char *sql, int csv, FILE *out, char *err) {
    sqlite3_stmt *s = NULL, *extra = NULL;
    const char *tail = NULL;
    int denied = 0, status = CB_OK;
    sqlite3_set_authorizer(st->db, query_authorizer, &denied);
    int rc = sqlite3_prepare_v2(st->db, sql, -1, &s, &tail);
    sqlite3_set_authorizer(st->db, NULL, NULL);
    if (denied) {
        status = cb_error(err, CB_EINPUT, "query: only read-only statements are allowed");
        goto done;
    }
    if (rc != SQLITE_OK) {
        status = cb_error(err, CB_EINPUT, "query: %s", sqlite3_errmsg(st->db));
        goto done;
    }
    if (!s) {
        status = cb_error(err, CB_EINPUT, "query: no statement");
        goto done;
    }
    if (!sqlite3_stmt_readonly(s)) {
        status = cb_error(err, CB_EINPUT, "query: only read-only statements are allowed");
        goto done;
    }
    /* Whatever follows must be nothing but whitespace and comments. */
    rc = sqlite3_prepare_v2(st->db, tail, -1, &extra, NULL);
    if (rc != SQLITE_OK || extra) {
        status = cb_error(err, CB_EINPUT, "query: only one statement is allowed");
        goto done;
    }
    status = print_rows(st, s, csv, out, err);
done:
    sqlite3_finalize(extra);
    sqlite3_finalize(s);
    return status;
}

int store_list_runs(Store *st, FILE *out, char *err) {
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(st->db,
            "SELECT r.id, r.suite_name AS suite, r.status, r.started_at AS started,"
            " (SELECT count(*) FROM cases c WHERE c.run_id = r.id AND c.status = 'ok') || '/' ||"
            " (SELECT count(*) FROM cases c WHERE c.run_id = r.id) AS \"cases ok/total\","
            " r.git_rev"
            " FROM runs r ORDER BY r.id", -1, &s, NULL) != SQLITE_OK)
        return db_error(st, err, "listing runs");
    int status = print_rows(st, s, 0, out, err);
    sqlite3_finalize(s);
    return status;
}

/* ---- pruning ---------------------------------------------------------------------------------- */

/* Runs one statement with ?1 bound to cutoff inside the caller's transaction; *changed = rows it
   changed (deletes are counted directly, not through cascades). */
static int prune_step(Store *st, const char *sql, int64_t cutoff, int64_t *changed, char *err) {
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) != SQLITE_OK)
        return db_error(st, err, "pruning");
    int rc = SQLITE_OK;
    bind_i64(s, 1, cutoff, &rc);
    int status = step_done(st, s, rc, "pruning", err);
    if (!status && changed) *changed = sqlite3_changes(st->db);
    sqlite3_finalize(s);
    return status;
}

int store_prune(Store *st, int64_t keep, PruneCounts *counts, char *err) {
    memset(counts, 0, sizeof *counts);
    if (keep < 0) return cb_error(err, CB_EINPUT, "prune: --keep must be 0 or more, not %lld",
                                  (long long)keep);
    int status = begin(st, err);
    if (status) return status;
    /* Run ids only grow, so "all but the newest keep" is every id below the keep-th newest. */
    int64_t cutoff = 0;
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(st->db, keep > 0
            ? "SELECT coalesce((SELECT id FROM runs ORDER BY id DESC LIMIT 1 OFFSET ?1 - 1), 0)"
            : "SELECT coalesce(max(id), 0) + 1 + 0 * ?1 FROM runs", -1, &s, NULL) != SQLITE_OK) {
        status = db_error(st, err, "pruning");
        goto done;
    }
    sqlite3_bind_int64(s, 1, keep);
    if (sqlite3_step(s) == SQLITE_ROW) cutoff = sqlite3_column_int64(s, 0);
    else status = db_error(st, err, "pruning");
    sqlite3_finalize(s);
    if (status || cutoff <= 0) goto done; /* fewer runs than keep: nothing to remove */

#define KEPT_USE "SELECT model_id FROM cases WHERE run_id >= ?1 AND model_id IS NOT NULL"
    const struct {
        const char *sql;
        int64_t *count;
    } steps[] = {
        /* a model a kept case uses stays, attributed to the oldest kept run that uses it */
        {"UPDATE models SET run_id = (SELECT min(run_id) FROM cases"
         " WHERE model_id = models.id AND run_id >= ?1)"
         " WHERE run_id < ?1 AND id IN (" KEPT_USE ")", &counts->models_moved},
        {"DELETE FROM metrics WHERE case_id IN (SELECT id FROM cases WHERE run_id < ?1)",
         &counts->metrics},
        {"DELETE FROM curves WHERE case_id IN (SELECT id FROM cases WHERE run_id < ?1)",
         &counts->curves},
        {"DELETE FROM cases WHERE run_id < ?1", &counts->cases},
        {"DELETE FROM curves WHERE model_id IN (SELECT id FROM models WHERE run_id < ?1)",
         &counts->curves},
        {"DELETE FROM models WHERE run_id < ?1", &counts->models},
        {"DELETE FROM runs WHERE id < ?1", &counts->runs},
    };
#undef KEPT_USE
    for (size_t i = 0; i < sizeof steps / sizeof steps[0] && !status; i++) {
        int64_t n = 0;
        status = prune_step(st, steps[i].sql, cutoff, &n, err);
        *steps[i].count += n;
    }
done:
    if (!status) status = commit(st, err);
    if (status) {
        rollback(st);
        memset(counts, 0, sizeof *counts);
    }
    return status;
}

/* ---- resuming a run ---------------------------------------------------------------------------- */

/* Copies a text column into a fixed buffer ("" for NULL), truncating. */
static void column_text(sqlite3_stmt *s, int i, char *out, size_t n) {
    const char *t = (const char *)sqlite3_column_text(s, i);
    snprintf(out, n, "%s", t ? t : "");
}

int store_get_run(Store *st, int64_t run_id, StoredRun *out, char *err) {
    memset(out, 0, sizeof *out);
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(st->db, "SELECT suite_name, suite_sha256, status, threads FROM runs WHERE id = ?1", -1,
                           &s, NULL) != SQLITE_OK)
        return db_error(st, err, "reading a run");
    int status = CB_OK;
    sqlite3_bind_int64(s, 1, run_id);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        column_text(s, 0, out->suite_name, sizeof out->suite_name);
        column_text(s, 1, out->suite_sha256, sizeof out->suite_sha256);
        column_text(s, 2, out->status, sizeof out->status);
        out->threads = sqlite3_column_int(s, 3);
    } else if (rc == SQLITE_DONE) {
        status = cb_error(err, CB_EINPUT, "%s: run %lld does not exist", st->path, (long long)run_id);
    } else {
        status = db_error(st, err, "reading a run");
    }
    sqlite3_finalize(s);
    return status;
}

int store_run_cases(Store *st, int64_t run_id, StoredCase **cases, size_t *n, char *err) {
    *cases = NULL;
    *n = 0;
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(st->db,
            "SELECT m.model_key, m.corpus_sha256, c.variant, c.task, c.context, c.status,"
            " (SELECT value FROM metrics WHERE case_id = c.id AND name = 'bpb' ORDER BY id LIMIT 1)"
            " FROM cases c JOIN models m ON m.id = c.model_id WHERE c.run_id = ?1 ORDER BY c.id",
            -1, &s, NULL) != SQLITE_OK)
        return db_error(st, err, "reading the cases of a run");
    sqlite3_bind_int64(s, 1, run_id);
    int status = CB_OK, rc;
    size_t cap = 0;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (*n == cap) {
            size_t ncap = cap ? 2 * cap : 64;
            StoredCase *nc = realloc(*cases, ncap * sizeof *nc);
            if (!nc) {
                status = cb_error(err, CB_ENOMEM, "%s: out of memory reading the cases of run %lld", st->path,
                                  (long long)run_id);
                break;
            }
            *cases = nc;
            cap = ncap;
        }
        StoredCase *c = &(*cases)[(*n)++];
        column_text(s, 0, c->model_key, sizeof c->model_key);
        column_text(s, 1, c->corpus_sha256, sizeof c->corpus_sha256);
        column_text(s, 2, c->variant, sizeof c->variant);
        column_text(s, 3, c->task, sizeof c->task);
        c->context = sqlite3_column_int(s, 4);
        column_text(s, 5, c->status, sizeof c->status);
        c->bpb = sqlite3_column_type(s, 6) == SQLITE_NULL ? NAN : sqlite3_column_double(s, 6);
    }
    if (!status && rc != SQLITE_DONE) status = db_error(st, err, "reading the cases of a run");
    sqlite3_finalize(s);
    if (status) {
        free(*cases);
        *cases = NULL;
        *n = 0;
    }
    return status;
}

int store_metric_by_context(Store *st, int64_t run_id, int64_t model_id, const char *variant, const char *task,
                            const char *name, double *x, double *y, int max, int *n, char *err) {
    *n = 0;
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(st->db,
            "SELECT c.context, (SELECT value FROM metrics WHERE case_id = c.id AND name = ?5 ORDER BY id LIMIT 1) AS v"
            " FROM cases c WHERE c.run_id = ?1 AND c.model_id = ?2 AND c.variant = ?3 AND c.task = ?4"
            " AND c.status = 'ok' AND v IS NOT NULL ORDER BY c.context, c.id", -1, &s, NULL) != SQLITE_OK)
        return db_error(st, err, "reading a metric by context");
    int rc = SQLITE_OK;
    bind_i64(s, 1, run_id, &rc);
    bind_i64(s, 2, model_id, &rc);
    bind_text(s, 3, variant, &rc);
    bind_text(s, 4, task, &rc);
    bind_text(s, 5, name, &rc);
    if (rc != SQLITE_OK) {
        sqlite3_finalize(s);
        return db_error(st, err, "reading a metric by context");
    }
    while ((rc = sqlite3_step(s)) == SQLITE_ROW && *n < max) {
        x[*n] = sqlite3_column_double(s, 0);
        y[*n] = sqlite3_column_double(s, 1);
        (*n)++;
    }
    int status = rc == SQLITE_ROW || rc == SQLITE_DONE ? CB_OK : db_error(st, err, "reading a metric by context");
    sqlite3_finalize(s);
    return status;
}

int store_find_run_model(Store *st, int64_t run_id, const char *key, StoredModel *out, char *err) {
    memset(out, 0, sizeof *out);
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(st->db,
            "SELECT id, status, error, weights FROM models WHERE run_id = ?1 AND model_key = ?2"
            " ORDER BY status = 'ok' DESC, id DESC LIMIT 1", -1, &s, NULL) != SQLITE_OK)
        return db_error(st, err, "looking up a model");
    int rc = SQLITE_OK, status = CB_OK;
    bind_i64(s, 1, run_id, &rc);
    bind_text(s, 2, key, &rc);
    if (rc != SQLITE_OK) {
        status = cb_error(err, CB_EDB, "%s: looking up a model: %s", st->path, sqlite3_errstr(rc));
        goto done;
    }
    rc = sqlite3_step(s);
    if (rc == SQLITE_DONE) goto done;
    if (rc != SQLITE_ROW) {
        status = db_error(st, err, "looking up a model");
        goto done;
    }
    column_text(s, 1, out->status, sizeof out->status);
    column_text(s, 2, out->error, sizeof out->error);
    if (sqlite3_column_type(s, 3) == SQLITE_BLOB) {
        size_t n = (size_t)sqlite3_column_bytes(s, 3);
        out->weights = malloc(n ? n : 1);
        if (!out->weights) {
            status = cb_error(err, CB_ENOMEM, "%s: out of memory reading %zu bytes of weights", st->path, n);
            goto done;
        }
        if (n) memcpy(out->weights, sqlite3_column_blob(s, 3), n);
        out->weights_size = n;
    }
    out->id = sqlite3_column_int64(s, 0);
done:
    sqlite3_finalize(s);
    return status;
}
