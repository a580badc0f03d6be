/*
 * schema.c — the results database schema as a list of forward migrations.
 *
 * store_migrations[k - 1] brings a database from user_version k - 1 to k; store_open() runs the
 * missing steps in order, each in its own transaction, and sets PRAGMA user_version after each.
 * A released step is never edited: a change to the schema is a new step appended here (and
 * STORE_SCHEMA_VERSION raised in store.h), so every older database can still be brought forward.
 *
 * Conventions: times are ISO-8601 UTC text ("2025-01-31T12:00:00Z"); sizes are bytes; losses are
 * nats per byte and bpb is bits per byte; a NaN interval bound is stored as NULL.
 */
#include "store/schema.h"

#include "store/store.h"

#define CB_NOW "(strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))"

/* Version 1: runs, models, cases, metrics, curves and the views users query. */
static const char schema_v1[] =
    "CREATE TABLE runs (\n"
    "  id           INTEGER PRIMARY KEY,\n"
    "  suite_name   TEXT NOT NULL,\n"
    "  suite_path   TEXT,\n"
    "  suite_text   TEXT,\n"
    "  suite_sha256 TEXT,\n"
    "  git_rev      TEXT,\n"
    "  host         TEXT,\n"
    "  cpu          TEXT,\n"
    "  threads      INTEGER,\n"
    "  compiler     TEXT,\n"
    "  cflags       TEXT,\n"
    "  blas         TEXT,\n"
    "  version      TEXT,\n"
    "  started_at   TEXT NOT NULL DEFAULT " CB_NOW ",\n"
    "  finished_at  TEXT,\n"
    "  status       TEXT NOT NULL DEFAULT 'running'\n"
    "               CHECK (status IN ('running', 'complete', 'failed', 'interrupted'))\n"
    ");\n"
    "CREATE TABLE models (\n"
    "  id               INTEGER PRIMARY KEY,\n"
    "  run_id           INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,\n"
    "  scheme           TEXT NOT NULL,\n"
    "  scheme_canon     TEXT,\n"
    "  model_key        TEXT,\n"
    "  model_json       TEXT,\n"
    "  train_json       TEXT,\n"
    "  corpus_source    TEXT,\n"
    "  corpus_sha256    TEXT,\n"
    "  seed             INTEGER,\n"
    "  train_ctx        INTEGER,\n"
    "  n_params         INTEGER,\n"
    "  final_loss       REAL,\n"
    "  train_seconds    REAL,\n"
    "  cpu_seconds      REAL,\n"
    "  bytes_per_second REAL,\n"
    "  peak_rss         INTEGER,\n"
    "  status           TEXT NOT NULL DEFAULT 'ok'\n"
    "                   CHECK (status IN ('ok', 'failed', 'diverged', 'timeout', 'oom')),\n"
    "  error            TEXT,\n"
    "  weights          BLOB,\n"
    "  created_at       TEXT NOT NULL DEFAULT " CB_NOW "\n"
    ");\n"
    "CREATE TABLE cases (\n"
    "  id             INTEGER PRIMARY KEY,\n"
    "  run_id         INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,\n"
    "  model_id       INTEGER REFERENCES models(id),\n"
    "  scheme         TEXT NOT NULL,\n"
    "  variant        TEXT NOT NULL DEFAULT '',\n"
    "  task           TEXT NOT NULL,\n"
    "  context        INTEGER NOT NULL,\n"
    "  train_ctx      INTEGER,\n"
    "  seed           INTEGER,\n"
    "  status         TEXT NOT NULL\n"
    "                 CHECK (status IN ('ok', 'unsupported', 'failed', 'timeout', 'oom',\n"
    "                                   'diverged')),\n"
    "  error          TEXT,\n"
    "  wall_seconds   REAL,\n"
    "  cpu_seconds    REAL,\n"
    "  peak_rss       INTEGER,\n"
    "  param_bytes    INTEGER,\n"
    "  act_bytes      INTEGER,\n"
    "  pe_state_bytes INTEGER,\n"
    "  created_at     TEXT NOT NULL DEFAULT " CB_NOW "\n"
    ");\n"
    "CREATE TABLE metrics (\n"
    "  id      INTEGER PRIMARY KEY,\n"
    "  case_id INTEGER NOT NULL REFERENCES cases(id) ON DELETE CASCADE,\n"
    "  name    TEXT NOT NULL,\n"
    "  value   REAL,\n"
    "  lo      REAL,\n"
    "  hi      REAL,\n"
    "  count   INTEGER,\n"
    "  unit    TEXT,\n"
    "  mode    TEXT,\n"
    "  stride  INTEGER\n"
    ");\n"
    "CREATE TABLE curves (\n"
    "  id       INTEGER PRIMARY KEY,\n"
    "  case_id  INTEGER REFERENCES cases(id) ON DELETE CASCADE,\n"
    "  model_id INTEGER REFERENCES models(id) ON DELETE CASCADE,\n"
    "  name     TEXT NOT NULL,\n"
    "  x        REAL,\n"
    "  y        REAL,\n"
    "  CHECK ((case_id IS NULL) <> (model_id IS NULL))\n"
    ");\n"
    "CREATE INDEX models_run ON models(run_id);\n"
    "CREATE INDEX models_key ON models(model_key);\n"
    "CREATE INDEX cases_run_scheme_context ON cases(run_id, scheme, context);\n"
    "CREATE INDEX cases_model ON cases(model_id);\n"
    "CREATE INDEX metrics_case ON metrics(case_id, name);\n"
    "CREATE INDEX curves_case ON curves(case_id);\n"
    "CREATE INDEX curves_model ON curves(model_id);\n"
    "\n"
    "CREATE VIEW v_cases AS\n"
    "SELECT c.id AS case_id, c.run_id, r.suite_name AS suite, c.model_id, c.scheme, c.variant,\n"
    "       c.task, c.context, c.train_ctx, c.context * 1.0 / NULLIF(c.train_ctx, 0) AS ctx_ratio,\n"
    "       c.seed, c.status, c.error, c.wall_seconds, c.cpu_seconds, c.peak_rss, c.param_bytes,\n"
    "       c.act_bytes, c.pe_state_bytes, c.created_at\n"
    "FROM cases c JOIN runs r ON r.id = c.run_id;\n"
    "\n"
    "CREATE VIEW v_metrics AS\n"
    "SELECT c.run_id, r.suite_name AS suite, c.scheme, c.variant, c.task, c.context, c.train_ctx,\n"
    "       c.context * 1.0 / NULLIF(c.train_ctx, 0) AS ctx_ratio, c.seed, c.status,\n"
    "       m.name, m.value, m.lo, m.hi, m.unit, m.mode, m.stride, m.count, c.id AS case_id\n"
    "FROM metrics m JOIN cases c ON c.id = m.case_id JOIN runs r ON r.id = c.run_id;\n"
    "\n"
    /* One row per perplexity case: the LEFT JOINs keep cases without numbers (unsupported,
       failed), and each join takes the first metric of its name so that a case scored in several
       modes still gives one row (all modes are in v_metrics). */
    "CREATE VIEW v_bpb AS\n"
    "SELECT c.run_id, r.suite_name AS suite, c.scheme, c.variant, c.context, c.train_ctx,\n"
    "       c.context * 1.0 / NULLIF(c.train_ctx, 0) AS ctx_ratio, c.seed, c.status,\n"
    "       b.value AS bpb, p.value AS ppl, q.value AS bpb_ratio,\n"
    "       b.lo AS bpb_lo, b.hi AS bpb_hi, b.mode AS mode, b.stride AS stride,\n"
    "       c.error, c.id AS case_id\n"
    "FROM cases c\n"
    "JOIN runs r ON r.id = c.run_id\n"
    "LEFT JOIN metrics b ON b.id = (SELECT min(id) FROM metrics\n"
    "                                WHERE case_id = c.id AND name = 'bpb')\n"
    "LEFT JOIN metrics p ON p.id = (SELECT min(id) FROM metrics\n"
    "                                WHERE case_id = c.id AND name = 'ppl')\n"
    "LEFT JOIN metrics q ON q.id = (SELECT min(id) FROM metrics\n"
    "                                WHERE case_id = c.id AND name = 'bpb_ratio')\n"
    "WHERE c.task = 'perplexity';\n"
    "\n"
    "CREATE VIEW v_latest_bpb AS\n"
    "SELECT * FROM v_bpb\n"
    "WHERE run_id = coalesce((SELECT max(id) FROM runs WHERE status = 'complete'),\n"
    "                        (SELECT max(id) FROM runs))\n"
    "ORDER BY scheme, variant, context, seed;\n";

/* Version 2: metrics of a case group (the same run, encoding, task, context, metric, mode and
   stride over several seeds) with their mean and 95% Student-t interval. */
static const char schema_v2[] =
    "CREATE VIEW v_seed_groups AS\n"
    "WITH g AS (\n"
    "  SELECT c.run_id, c.scheme, c.variant, c.task, c.context, c.train_ctx, m.name, m.mode, m.stride,\n"
    "         count(*) AS seeds, avg(m.value) AS mean,\n"
    "         (sum(m.value * m.value) - count(*) * avg(m.value) * avg(m.value)) AS ss\n"
    "  FROM metrics m JOIN cases c ON c.id = m.case_id\n"
    "  WHERE c.status = 'ok'\n"
    "  GROUP BY c.run_id, c.scheme, c.variant, c.task, c.context, m.name, m.mode, m.stride\n"
    ")\n"
    "SELECT run_id, scheme, variant, task, context, train_ctx, context * 1.0 / NULLIF(train_ctx, 0) AS ctx_ratio,\n"
    "       name, mode, stride, seeds, mean,\n"
    "       mean - half AS lo, mean + half AS hi\n"
    "FROM (SELECT *, CASE WHEN seeds > 1 THEN\n"
    "        (CASE seeds - 1 WHEN 1 THEN 12.706 WHEN 2 THEN 4.303 WHEN 3 THEN 3.182 WHEN 4 THEN 2.776\n"
    "           WHEN 5 THEN 2.571 WHEN 6 THEN 2.447 WHEN 7 THEN 2.365 WHEN 8 THEN 2.306 WHEN 9 THEN 2.262\n"
    "           WHEN 10 THEN 2.228 WHEN 11 THEN 2.201 WHEN 12 THEN 2.179 WHEN 13 THEN 2.160\n"
    "           WHEN 14 THEN 2.145 WHEN 15 THEN 2.131 WHEN 16 THEN 2.120 WHEN 17 THEN 2.110\n"
    "           WHEN 18 THEN 2.101 WHEN 19 THEN 2.093 WHEN 20 THEN 2.086 ELSE 1.960 + 2.5 / (seeds - 1) END)\n"
    "        * sqrt(max(ss, 0) / (seeds - 1) / seeds) END AS half FROM g);\n";

/* Version 3: where the training corpus was read from (the absolute path of a file: source, NULL
   for a built-in corpus) and its size in bytes, next to its source string and hash. */
static const char schema_v3[] =
    "ALTER TABLE models ADD COLUMN corpus_path TEXT;\n"
    "ALTER TABLE models ADD COLUMN corpus_bytes INTEGER;\n";

const char *const store_migrations[] = {
    schema_v1,
    schema_v2,
    schema_v3,
};

const int store_n_migrations = (int)(sizeof store_migrations / sizeof store_migrations[0]);

_Static_assert(sizeof store_migrations / sizeof store_migrations[0] == STORE_SCHEMA_VERSION,
               "one migration step per schema version");
