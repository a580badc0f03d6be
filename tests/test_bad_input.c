/*
 * test_bad_input.c — every bad input listed in tests/README.md, one test each: `ctxbench run`
 * prints exactly the expected line on stderr (one line), exits 2, and leaves the database (and
 * the file it was pointed at) byte for byte as it was, with no new file next to it.
 *
 * Each test runs in a fresh directory holding a database made through the store API (run 1
 * interrupted, run 2 complete, both of tiny.ini), the bad suites written below, a link to the
 * source's tests/ and a few bad database files; the CLI runs there, so messages carry short
 * relative paths. The full disk is simulated with RLIMIT_FSIZE: writes past the limit fail with
 * EFBIG the way a full disk fails them with ENOSPC (SQLite reports EFBIG as "disk I/O error"
 * and ENOSPC as "database or disk is full"); mounting a small tmpfs needs privileges CI lacks.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/core.h"
#include "store/store.h"

typedef struct {
    const char *args;    /* after "ctxbench", split at spaces; paths relative to the test directory */
    const char *expect;  /* the whole stderr: one line, without its newline */
    const char *watched; /* a file besides r.db that must not change, NULL = none */
    long fsize_limit;    /* RLIMIT_FSIZE in bytes for the CLI, 0 = none */
} BadInput;

/* Keep in step with the table in tests/README.md. */
static BadInput rows[] = {
    /* suite files */
    {"run tests/suites/bad_unknown_key.ini --db r.db",
     "ctxbench: tests/suites/bad_unknown_key.ini:7: [model] dmodel: unknown key (expected layers, d_model, heads, "
     "mlp_ratio)", NULL, 0},
    {"run tests/suites/bad_unknown_section.ini --db r.db",
     "ctxbench: tests/suites/bad_unknown_section.ini:5: [modle]: unknown section (expected suite, corpus, model, "
     "train, eval, limits, compare or cost)", NULL, 0},
    {"run tests/suites/bad_duplicate_key.ini --db r.db",
     "ctxbench: tests/suites/bad_duplicate_key.ini:9: [train] steps: duplicate key (first set on line 7)", NULL, 0},
    {"run tests/suites/bad_number.ini --db r.db",
     "ctxbench: tests/suites/bad_number.ini:8: [train] steps: '3OO' is not an integer", NULL, 0},
    {"run tests/suites/bad_huge_context.ini --db r.db",
     "ctxbench: tests/suites/bad_huge_context.ini:9: [eval] contexts: '1000000000000' is out of range (2..1048576)",
     NULL, 0},
    {"run bad_train_context.ini --db r.db",
     "ctxbench: bad_train_context.ini:4: [train] context: '100000' is out of range (8..65536)", NULL, 0},
    {"run bad_d_model.ini --db r.db", "ctxbench: bad_d_model.ini:4: [model] d_model: '1000000' is out of range (8..4096)",
     NULL, 0},
    {"run tests/suites/bad_heads.ini --db r.db",
     "ctxbench: tests/suites/bad_heads.ini:7: [model] d_model: d_model 60 is not divisible by heads 8", NULL, 0},
    {"run tests/suites/bad_unknown_scheme.ini --db r.db",
     "ctxbench: tests/suites/bad_unknown_scheme.ini:7: [eval] schemes: unknown scheme 'rotary' (known: nope, "
     "sinusoidal, learned, rope, alibi, t5, xpos, kerple, fire, sandwich, shaw, cope)", NULL, 0},
    {"run tests/suites/bad_scheme_option.ini --db r.db",
     "ctxbench: tests/suites/bad_scheme_option.ini:6: [eval] schemes: 'rope:bse=10000': rope: unknown option 'bse' "
     "(known: base, fraction, pairing, randomized)", NULL, 0},
    {"run bad_variant.ini --db r.db",
     "ctxbench: bad_variant.ini:4: [eval] schemes: 'rope+frobnicate': unknown eval-time variant 'frobnicate' for "
     "scheme 'rope'", NULL, 0},
    {"run bad_variant_base.ini --db r.db",
     "ctxbench: bad_variant_base.ini:4: [eval] schemes: 'alibi+yarn': unknown eval-time variant 'yarn' for scheme "
     "'alibi'", NULL, 0},
    {"run bad_passkey_share.ini --db r.db",
     "ctxbench: bad_passkey_share.ini:4: [train] passkey_share: '2' is out of range [0, 1]", NULL, 0},
    {"run bad_stride.ini --db r.db",
     "ctxbench: bad_stride.ini:4: [eval] stride_divisors: '0' is out of range (1..4096)", NULL, 0},
    {"run bad_depth.ini --db r.db",
     "ctxbench: bad_depth.ini:4: [eval] passkey_depths: '1.5' is out of range [0, 1]", NULL, 0},
    {"run bad_precision.ini --db r.db",
     "ctxbench: bad_precision.ini:4: [train] precision: unknown precision 'fp16' (known: fp32, bf16)", NULL, 0},
    {"run bad_precision_list.ini --db r.db",
     "ctxbench: bad_precision_list.ini:4: [train] precision: 'fp32, bf16': expects one value, not a list", NULL, 0},
    {"run tests/suites/bad_task.ini --db r.db",
     "ctxbench: tests/suites/bad_task.ini:7: [eval] tasks: unknown task 'summarization' (known: perplexity, passkey, "
     "cost)", NULL, 0},
    {"run tests/suites/bad_corpus.ini --db r.db",
     "ctxbench: tests/suites/bad_corpus.ini:7: [corpus] source: corpus source 'http://example.com/corpus.txt': "
     "unknown kind (expected file:PATH or builtin:NAME)", NULL, 0},
    {"run bad_missing_corpus.ini --db r.db",
     "ctxbench: bad_missing_corpus.ini: [corpus] source: corpus file 'does/not/exist': No such file or directory",
     NULL, 0},
    {"run bad_short_corpus.ini --db r.db",
     "ctxbench: bad_short_corpus.ini: [corpus] source: corpus 'builtin:prose:bytes=5000' has 5000 bytes; needs at "
     "least 2×eval_bytes = 8192", NULL, 0},
    {"run bad_no_name.ini --db r.db", "ctxbench: bad_no_name.ini: [suite] name: missing (every suite needs a name)",
     NULL, 0},
    {"run bad_nul.ini --db r.db", "ctxbench: bad_nul.ini: contains a NUL byte", NULL, 0},
    {"run bad_limits_time.ini --db r.db",
     "ctxbench: bad_limits_time.ini:4: [limits] time: '0' is out of range (0, 31536000] seconds", NULL, 0},
    {"run bad_limits_memory.ini --db r.db",
     "ctxbench: bad_limits_memory.ini:4: [limits] memory: 'lots' is not an integer", NULL, 0},
    {"run bad_limits_key.ini --db r.db",
     "ctxbench: bad_limits_key.ini:4: [limits] speed: unknown key (expected time, memory)", NULL, 0},
    {"run bad_cost_repeats.ini --db r.db",
     "ctxbench: bad_cost_repeats.ini:4: [cost] repeats: '0' is out of range (1..100)", NULL, 0},
    {"run bad_cost_warmup.ini --db r.db",
     "ctxbench: bad_cost_warmup.ini:4: [cost] warmup: '11' is out of range (0..10)", NULL, 0},
    {"run bad_cost_train_limit.ini --db r.db",
     "ctxbench: bad_cost_train_limit.ini:4: [cost] train_limit: 'lots' is not an integer", NULL, 0},
    {"run no_such_suite.ini --db r.db", "ctxbench: no_such_suite.ini: No such file or directory", NULL, 0},
    /* command line */
    {"run tiny.ini --db r.db --threads 0", "ctxbench run: --threads: '0' is not a number in 1..1024", NULL, 0},
    {"run tiny.ini --db r.db --time-limit abc",
     "ctxbench run: --time-limit: 'abc' is not a number of seconds in (0, 31536000]", NULL, 0},
    {"run tiny.ini --db r.db --memory-limit 0",
     "ctxbench run: --memory-limit: '0' is not a number of MiB in 1..16777216", NULL, 0},
    {"run tiny.ini --db r.db --resume x", "ctxbench run: --resume: 'x' is not a run id (see ctxbench runs)", NULL, 0},
    {"run tiny.ini --db r.db --frobnicate", "ctxbench run: unexpected argument '--frobnicate' (see ctxbench run --help)",
     NULL, 0},
    {"run", "ctxbench run: no suite file given (see ctxbench run --help)", NULL, 0},
    /* databases and where they go */
    {"run tiny.ini --db notdb.txt", "ctxbench: notdb.txt: not an SQLite database (file is not a database)",
     "notdb.txt", 0},
    {"run tiny.ini --db newer.db", "ctxbench: newer.db: schema version 7 is newer than this ctxbench (3)", "newer.db",
     0},
    {"run tiny.ini --db other.db",
     "ctxbench: other.db: not a ctxbench database (user_version 0 but it has 1 tables, views or indexes)", "other.db",
     0},
    {"run tiny.ini --db afile/sub/r.db", "ctxbench: afile/sub: cannot create directory: Not a directory", "afile", 0},
    {"run tiny.ini --db adir", "ctxbench: adir: cannot open the database: unable to open database file", NULL, 0},
    {"run tiny.ini --db r.db", "ctxbench: r.db: reading the schema version: disk I/O error", NULL, 1024},
    /* resuming */
    {"run tiny.ini --db r.db --resume 99", "ctxbench: r.db: run 99 does not exist", NULL, 0},
    {"run tiny_changed.ini --db r.db --resume 1",
     "ctxbench: tiny_changed.ini: cannot resume run 1: the suite text differs from the one it ran (sha256 "
     "TINY_CHANGED, run 1 has TINY)", NULL, 0},
    {"run tiny.ini --db r.db --resume 1 --threads 2",
     "ctxbench: cannot resume run 1 with 2 threads: it ran with 1, and the numbers are only reproducible with the "
     "same thread count", NULL, 0},
    {"run tiny.ini --db r.db --resume 2", "ctxbench: cannot resume run 2: it is complete", NULL, 0},
};

static const char TINY[] =
    "[suite]\nname = tiny\nthreads = 1\n[corpus]\nsource = builtin:prose:bytes=65536\neval_bytes = 4096\n"
    "[model]\nlayers = 1\nd_model = 16\nheads = 2\n[train]\ncontext = 16\nsteps = 2\nbatch = 2\nwarmup = 1\n"
    "[eval]\ncontexts = 16, 32\n";

static const struct {
    const char *name, *text;
} files[] = {
    {"bad_train_context.ini", "[suite]\nname = bad\n[train]\ncontext = 100000\n"},
    {"bad_d_model.ini", "[suite]\nname = bad\n[model]\nd_model = 1000000\n"},
    {"bad_variant.ini", "[suite]\nname = bad\n[eval]\nschemes = rope+frobnicate\n"},
    {"bad_variant_base.ini", "[suite]\nname = bad\n[eval]\nschemes = alibi+yarn\n"},
    {"bad_passkey_share.ini", "[suite]\nname = bad\n[train]\npasskey_share = 2\n"},
    {"bad_precision.ini", "[suite]\nname = bad\n[train]\nprecision = fp16\n"},
    {"bad_precision_list.ini", "[suite]\nname = bad\n[train]\nprecision = fp32, bf16\n"},
    {"bad_stride.ini", "[suite]\nname = bad\n[eval]\nstride_divisors = 1, 0\n"},
    {"bad_depth.ini", "[suite]\nname = bad\n[eval]\npasskey_depths = 0.5, 1.5\n"},
    {"bad_missing_corpus.ini", "[suite]\nname = bad\n[corpus]\nsource = file:does/not/exist\n"},
    {"bad_short_corpus.ini", "[suite]\nname = bad\n[corpus]\nsource = builtin:prose:bytes=5000\neval_bytes = 4096\n"},
    {"bad_no_name.ini", "[suite]\nseeds = 1\n"},
    {"bad_limits_time.ini", "[suite]\nname = bad\n[limits]\ntime = 0\n"},
    {"bad_limits_memory.ini", "[suite]\nname = bad\n[limits]\nmemory = lots\n"},
    {"bad_limits_key.ini", "[suite]\nname = bad\n[limits]\nspeed = 3\n"},
    {"bad_cost_repeats.ini", "[suite]\nname = bad\n[cost]\nrepeats = 0\n"},
    {"bad_cost_warmup.ini", "[suite]\nname = bad\n[cost]\nwarmup = 11\n"},
    {"bad_cost_train_limit.ini", "[suite]\nname = bad\n[cost]\ntrain_limit = lots\n"},
    {"tiny.ini", TINY},
    {"tiny_changed.ini", "; changed\n[suite]\nname = tiny\nthreads = 1\n[corpus]\nsource = builtin:prose:bytes=65536\n"
                         "eval_bytes = 4096\n[model]\nlayers = 1\nd_model = 16\nheads = 2\n[train]\ncontext = 16\n"
                         "steps = 2\nbatch = 2\nwarmup = 1\n[eval]\ncontexts = 16, 32\n"},
    {"notdb.txt", "hello, I am not a database\n"},
    {"afile", "a file where a directory should be\n"},
};

static char dir[256];

static void make_dir(void) {
    snprintf(dir, sizeof dir, "/tmp/cb-bad-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void remove_dir(void) {
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) {}
}

static void in_dir(char *out, size_t n, const char *name) { snprintf(out, n, "%s/%s", dir, name); }

static void write_file(const char *name, const char *text, size_t len) {
    char p[512];
    in_dir(p, sizeof p, name);
    FILE *f = fopen(p, "wb");
    cr_assert_not_null(f, "cannot write %s", p);
    fwrite(text, 1, len, f);
    fclose(f);
}

static void exec_sql(const char *name, const char *sql) {
    char p[512];
    in_dir(p, sizeof p, name);
    sqlite3 *h;
    cr_assert_eq(sqlite3_open(p, &h), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(h, sql, NULL, NULL, NULL), SQLITE_OK, "%s: %s", sql, sqlite3_errmsg(h));
    sqlite3_close(h);
}

/* r.db: run 1 of tiny.ini interrupted after one case (1 thread), run 2 complete. */
static void make_db(void) {
    char p[512], err[CB_ERR_LEN] = "", sha[65];
    in_dir(p, sizeof p, "r.db");
    sha256_hex(TINY, strlen(TINY), sha);
    Store *st;
    cr_assert_eq(store_open(&st, p, 0, err), CB_OK, "%s", err);
    for (int r = 1; r <= 2; r++) {
        RunInfo ri = {.suite_name = "tiny", .suite_path = "tiny.ini", .suite_text = TINY, .suite_sha256 = sha,
                      .threads = 1};
        store_provenance(&ri);
        int64_t run, model, kase;
        cr_assert_eq(store_begin_run(st, &ri, &run, err), CB_OK, "%s", err);
        ModelRecord m = {.run_id = run, .scheme = "nope", .scheme_canon = "nope", .key = "k", .status = "ok",
                         .corpus_sha256 = "c", .seed = 1, .train_ctx = 16};
        cr_assert_eq(store_insert_model(st, &m, NULL, 0, &model, err), CB_OK, "%s", err);
        CaseRecord c = {.run_id = run, .model_id = model, .scheme = "nope", .variant = "", .task = "perplexity",
                        .context = 16, .train_ctx = 16, .seed = 1, .status = "ok"};
        MetricRecord bpb = {.name = "bpb", .value = 3.5, .count = 4080, .unit = "bits/byte"};
        cr_assert_eq(store_insert_case(st, &c, &bpb, 1, NULL, 0, &kase, err), CB_OK, "%s", err);
        cr_assert_eq(store_finish_run(st, run, r == 1 ? "interrupted" : "complete", err), CB_OK, "%s", err);
    }
    store_close(st);
}

static void setup(void) {
    make_dir();
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) write_file(files[i].name, files[i].text, strlen(files[i].text));
    write_file("bad_nul.ini", "[suite]\nname = x\0\n", 17);
    make_db();
    char p[512], link[512];
    in_dir(p, sizeof p, "adir");
    cr_assert_eq(mkdir(p, 0755), 0);
    const char *src = getenv("CB_SOURCE_DIR");
    snprintf(p, sizeof p, "%s/tests", src ? src : ".");
    in_dir(link, sizeof link, "tests");
    cr_assert_eq(symlink(p, link), 0);
    char cmd[1100];
    snprintf(cmd, sizeof cmd, "cp '%s/r.db' '%s/newer.db'", dir, dir);
    cr_assert_eq(system(cmd), 0);
    exec_sql("newer.db", "PRAGMA journal_mode = DELETE; PRAGMA user_version = 7");
    exec_sql("other.db", "PRAGMA journal_mode = DELETE; CREATE TABLE t (x)");
}

/* SHA-256 of a file, "" if it does not exist. */
static void file_hash(const char *name, char out[65]) {
    char p[512];
    in_dir(p, sizeof p, name);
    FILE *f = fopen(p, "rb");
    out[0] = '\0';
    if (!f) return;
    size_t cap = 1 << 20, n = 0;
    char *buf = malloc(cap);
    cr_assert_not_null(buf);
    for (size_t r; (r = fread(buf + n, 1, cap - n, f)) > 0;) {
        n += r;
        if (n == cap) {
            cap *= 2;
            buf = realloc(buf, cap);
            cr_assert_not_null(buf);
        }
    }
    fclose(f);
    sha256_hex(buf, n, out);
    free(buf);
}

static int count_entries(void) {
    DIR *d = opendir(dir);
    cr_assert_not_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) n++;
    closedir(d);
    return n;
}

/* Runs the CLI in dir; returns the exit code and stderr. */
static int run_cli(const BadInput *row, char *out, size_t n) {
    const char *bin = getenv("CB_BINARY");
    cr_assert_not_null(bin, "CB_BINARY is not set (run through ctest)");
    char args[512], errp[512];
    snprintf(args, sizeof args, "%s", row->args);
    char *argv[32];
    int argc = 0;
    argv[argc++] = (char *)bin;
    for (char *tok = strtok(args, " "); tok && argc < 31; tok = strtok(NULL, " ")) argv[argc++] = tok;
    argv[argc] = NULL;
    snprintf(errp, sizeof errp, "%s.stderr", dir); /* outside dir: the directory listing must not change */
    fflush(NULL);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        int e = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0644), o = open("/dev/null", O_WRONLY);
        if (e < 0 || o < 0 || chdir(dir)) _exit(127);
        dup2(o, 1);
        dup2(e, 2);
        if (row->fsize_limit) {
            signal(SIGXFSZ, SIG_IGN);
            struct rlimit rl = {(rlim_t)row->fsize_limit, (rlim_t)row->fsize_limit};
            if (setrlimit(RLIMIT_FSIZE, &rl)) _exit(126);
        }
        execv(bin, argv);
        _exit(127);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0) cr_assert_eq(errno, EINTR);
    FILE *f = fopen(errp, "r");
    size_t got = f ? fread(out, 1, n - 1, f) : 0;
    out[got] = '\0';
    if (f) fclose(f);
    unlink(errp);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* The expected line with TINY / TINY_CHANGED standing for the first 12 hex digits of those suites'
   hashes. */
static void expected_line(const char *pattern, char *out, size_t n) {
    char a[65], b[65];
    sha256_hex(TINY, strlen(TINY), a);
    file_hash("tiny_changed.ini", b);
    snprintf(out, n, "%s", pattern);
    const char *keys[] = {"TINY_CHANGED", "TINY"};
    const char *vals[] = {b, a};
    for (int k = 0; k < 2; k++) {
        char *at = strstr(out, keys[k]);
        if (!at) continue;
        char rest[1024];
        snprintf(rest, sizeof rest, "%s", at + strlen(keys[k]));
        snprintf(at, n - (size_t)(at - out), "%.12s%s", vals[k], rest);
    }
}

/* The parameter is an index into rows: Criterion may run the test in a freshly started process,
   where pointers from the generator would not hold. */
ParameterizedTestParameters(bad_input, each_row_gets_its_line_exit_code_two_and_an_untouched_database) {
    static int index[sizeof rows / sizeof rows[0]];
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) index[i] = (int)i;
    return cr_make_param_array(int, index, sizeof index / sizeof index[0]);
}

ParameterizedTest(int *which, bad_input, each_row_gets_its_line_exit_code_two_and_an_untouched_database,
                  .init = setup, .fini = remove_dir, .timeout = 300) {
    const BadInput *row = &rows[*which];
    char db_before[65], db_after[65], w_before[65] = "", w_after[65] = "";
    file_hash("r.db", db_before);
    if (row->watched) file_hash(row->watched, w_before);
    int entries = count_entries();

    char out[4096], want[1024];
    int code = run_cli(row, out, sizeof out);
    expected_line(row->expect, want, sizeof want);
    size_t len = strlen(out);
    cr_assert(len > 0 && out[len - 1] == '\n' && strchr(out, '\n') == out + len - 1,
              "%s: stderr is not one line: '%s'", row->args, out);
    out[len - 1] = '\0';
    cr_assert_str_eq(out, want, "%s: line differs", row->args);
    cr_assert_eq(code, 2, "%s: exit code %d", row->args, code);

    file_hash("r.db", db_after);
    cr_assert_str_eq(db_after, db_before, "%s: r.db changed", row->args);
    if (row->watched) {
        file_hash(row->watched, w_after);
        cr_assert_str_eq(w_after, w_before, "%s: %s changed", row->args, row->watched);
    }
    if (!row->fsize_limit) {
        cr_assert_eq(count_entries(), entries, "%s: a file appeared or vanished next to the database", row->args);
    } else {
        /* SQLite may leave its (empty) write-ahead log and index behind when it cannot write them. */
        char wal[512];
        struct stat sb;
        in_dir(wal, sizeof wal, "r.db-wal");
        cr_assert(stat(wal, &sb) != 0 || sb.st_size == 0, "%s: r.db-wal holds %lld bytes", row->args,
                  (long long)sb.st_size);
    }
    char p[512];
    in_dir(p, sizeof p, "r.db");
    sqlite3 *h;
    cr_assert_eq(sqlite3_open_v2(p, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *s;
    cr_assert_eq(sqlite3_prepare_v2(h, "SELECT (SELECT count(*) FROM runs) * 100 + (SELECT count(*) FROM cases)", -1,
                                    &s, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_step(s), SQLITE_ROW);
    cr_assert_eq(sqlite3_column_int(s, 0), 202, "%s: rows changed", row->args);
    sqlite3_finalize(s);
    sqlite3_close(h);
}
