/*
 * test_data.c — corpora: the built-in prose generator (deterministic, printable, with long-range
 * repeats), file and directory sources, the held-out split, source syntax, and batch sampling.
 */
#include <criterion/criterion.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/data.h"

/* ---- helpers ------------------------------------------------------------------------------- */

static uint8_t *generate(uint64_t seed, size_t n) {
    char err[CB_ERR_LEN] = "";
    uint8_t *b = malloc(n);
    cr_assert_not_null(b);
    int rc = data_builtin_generate("prose", seed, b, n, err);
    cr_assert_eq(rc, CB_OK, "generate returned %d: %s", rc, err);
    return b;
}

static void write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "cannot create %s", path);
    cr_assert_eq(fwrite(data, 1, n, f), n);
    fclose(f);
}

static char tmpdir[256];

static void make_tmpdir(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/cb_test_data.XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

/* Removes a temporary directory and everything in it, deepest first. */
static void remove_tree(const char *dir) { nftw(dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS); }

/* Counts positions i whose 64-byte window [i, i+64) also occurred, ending before i, more than
   256 bytes earlier (checked against the latest earlier occurrence with the same hash). */
static size_t count_far_repeats(const uint8_t *b, size_t n) {
    enum { W = 64, MIN_DIST = 257 };
    const size_t cap = (size_t)1 << 20;
    size_t *last = malloc(cap * sizeof *last); /* position + 1 of the latest window per bucket */
    cr_assert_not_null(last);
    memset(last, 0, cap * sizeof *last);
    size_t count = 0;
    for (size_t i = 0; i + W <= n; i++) {
        uint64_t h = 1469598103934665603ULL; /* FNV-1a over the window */
        for (size_t k = 0; k < W; k++) h = (h ^ b[i + k]) * 1099511628211ULL;
        size_t slot = (size_t)(h & (cap - 1));
        size_t j = last[slot];
        if (j && i - (j - 1) >= MIN_DIST && memcmp(b + i, b + j - 1, W) == 0) count++;
        last[slot] = i + 1;
    }
    free(last);
    return count;
}

/* ---- the built-in generator ---------------------------------------------------------------- */

Test(data, builtin_prose_is_the_same_for_the_same_seed_and_differs_for_another) {
    size_t n = 256 * 1024;
    uint8_t *a = generate(1, n), *b = generate(1, n), *c = generate(2, n);
    cr_expect_eq(memcmp(a, b, n), 0, "two generations with seed 1 differ");
    size_t diff = 0;
    for (size_t i = 0; i < n; i++) diff += a[i] != c[i];
    cr_expect_gt(diff, n / 2, "seeds 1 and 2 differ in only %zu of %zu bytes", diff, n);
    free(a);
    free(b);
    free(c);
}

Test(data, builtin_prose_of_n_bytes_is_a_prefix_of_a_longer_one) {
    uint8_t *a = generate(5, 10000), *b = generate(5, 50000);
    cr_expect_eq(memcmp(a, b, 10000), 0, "the first 10000 bytes depend on the requested length");
    free(a);
    free(b);
}

Test(data, builtin_prose_is_printable_ascii_with_newlines) {
    size_t n = 512 * 1024;
    uint8_t *a = generate(3, n);
    size_t newlines = 0, spaces = 0, upper = 0;
    for (size_t i = 0; i < n; i++) {
        int ok = a[i] == '\n' || (a[i] >= 32 && a[i] <= 126);
        cr_assert(ok, "byte %zu is 0x%02x", i, a[i]);
        newlines += a[i] == '\n';
        spaces += a[i] == ' ';
        upper += a[i] >= 'A' && a[i] <= 'Z';
    }
    cr_expect_gt(newlines, n / 2000, "only %zu newlines: no paragraphs?", newlines);
    cr_expect_gt(spaces, n / 10, "only %zu spaces: no words?", spaces);
    cr_expect_gt(upper, n / 200, "only %zu capitals: no sentences?", upper);
    cr_expect_not_null(memmem(a, n, "\n\n", 2), "no blank line between paragraphs");
    free(a);
}

Test(data, builtin_prose_repeats_64_byte_spans_from_more_than_256_bytes_back) {
    size_t n = 256 * 1024;
    uint8_t *a = generate(1, n);
    size_t far = count_far_repeats(a, n);
    /* Copies of sentences and paragraphs cover a few percent of the text. */
    cr_expect_gt(far, n / 100, "only %zu of %zu positions start a 64-byte span seen > 256 bytes earlier", far, n);
    free(a);
}

Test(data, the_repeat_check_finds_nothing_in_iid_text) {
    /* The control for the test above: i.i.d. printable bytes have no such repeats. */
    size_t n = 256 * 1024;
    uint8_t *a = malloc(n);
    cr_assert_not_null(a);
    Rng rng;
    rng_seed(&rng, 42);
    for (size_t i = 0; i < n; i++) a[i] = (uint8_t)(32 + rng_below(&rng, 95));
    size_t far = count_far_repeats(a, n);
    cr_expect_eq(far, 0, "%zu repeats found in i.i.d. text", far);
    free(a);
}

Test(data, builtin_prose_generates_megabytes_quickly) {
    size_t n = 4 << 20;
    double t0 = clock_now();
    uint8_t *a = generate(9, n);
    double dt = clock_now() - t0;
    cr_expect_lt(dt, 1.0, "4 MiB took %.3f s", dt);
    free(a);
}

Test(data, unknown_builtin_name_is_refused) {
    char err[CB_ERR_LEN] = "";
    uint8_t b[16];
    int rc = data_builtin_generate("poetry", 1, b, sizeof b, err);
    cr_expect_eq(rc, CB_EINPUT, "rc %d", rc);
    cr_expect_not_null(strstr(err, "poetry"), "message: %s", err);
    const char *const *names = data_builtin_names();
    cr_assert_not_null(names[0]);
    cr_expect_str_eq(names[0], "prose");
    cr_expect_null(names[1]);
}

/* ---- sources and loading ------------------------------------------------------------------- */

Test(data, builtin_corpus_loads_with_options_and_hashes_all_bytes) {
    char err[CB_ERR_LEN] = "";
    Corpus c, d;
    int rc = corpus_load(&c, "builtin:prose:bytes=100000,seed=7", 20000, err);
    cr_assert_eq(rc, CB_OK, "rc %d: %s", rc, err);
    cr_expect_eq(c.n, 100000, "n = %zu", c.n);
    cr_expect_eq(c.train_n, 80000, "train_n = %zu", c.train_n);
    uint8_t *ref = generate(7, 100000);
    cr_expect_eq(memcmp(c.bytes, ref, c.n), 0, "corpus bytes differ from the generator's");
    char hex[65];
    sha256_hex(ref, 100000, hex);
    cr_expect_str_eq(c.sha256, hex);
    cr_expect_str_eq(c.source, "builtin:prose:bytes=100000,seed=7");
    cr_expect_null(c.path, "a built-in corpus has a path: %s", c.path);

    rc = corpus_load(&d, "builtin:prose:seed=7,bytes=100000", 20000, err);
    cr_assert_eq(rc, CB_OK, "rc %d: %s", rc, err);
    cr_expect_str_eq(d.sha256, c.sha256, "option order changed the corpus");
    corpus_free(&c);
    corpus_free(&d);
    corpus_free(&d); /* freeing twice is a no-op */
    free(ref);
}

Test(data, builtin_corpus_defaults_to_two_mebibytes_and_seed_one) {
    char err[CB_ERR_LEN] = "";
    Corpus c;
    int rc = corpus_load(&c, "builtin:prose", 65536, err);
    cr_assert_eq(rc, CB_OK, "rc %d: %s", rc, err);
    cr_expect_eq(c.n, (size_t)2 << 20, "n = %zu", c.n);
    uint8_t *ref = generate(1, 4096);
    cr_expect_eq(memcmp(c.bytes, ref, 4096), 0, "default seed is not 1");
    free(ref);
    corpus_free(&c);
}

Test(data, file_corpus_holds_out_exactly_its_last_eval_bytes) {
    make_tmpdir();
    char path[300], src[320], err[CB_ERR_LEN] = "";
    snprintf(path, sizeof path, "%s/text.txt", tmpdir);
    uint8_t buf[3000];
    for (size_t i = 0; i < sizeof buf; i++) buf[i] = (uint8_t)(i * 7 + i / 13);
    write_file(path, buf, sizeof buf);
    snprintf(src, sizeof src, "file:%s", path);
    Corpus c;
    int rc = corpus_load(&c, src, 1000, err);
    cr_assert_eq(rc, CB_OK, "rc %d: %s", rc, err);
    cr_expect_eq(c.n, 3000, "n = %zu", c.n);
    cr_expect_eq(c.train_n, 2000, "train_n = %zu", c.train_n);
    cr_expect_eq(memcmp(c.bytes, buf, 3000), 0, "bytes differ from the file");
    cr_expect_eq(memcmp(c.bytes + c.train_n, buf + 2000, 1000), 0, "held-out part is not the file's tail");
    char hex[65];
    sha256_hex(buf, sizeof buf, hex);
    cr_expect_str_eq(c.sha256, hex);
    char *abs = realpath(path, NULL);
    cr_assert_not_null(abs);
    cr_expect(c.path && !strcmp(c.path, abs), "path %s, want %s", c.path, abs);
    corpus_free(&c);
    /* A relative path is stored as the absolute one. */
    cr_assert_eq(chdir(tmpdir), 0);
    rc = corpus_load(&c, "file:./text.txt", 1000, err);
    cr_assert_eq(rc, CB_OK, "rc %d: %s", rc, err);
    cr_expect(c.path && !strcmp(c.path, abs), "relative source: path %s, want %s", c.path, abs);
    cr_expect_str_eq(c.source, "file:./text.txt");
    free(abs);
    corpus_free(&c);

    /* Exactly 2 x eval_bytes is enough; one byte less is not. */
    rc = corpus_load(&c, src, 1500, err);
    cr_expect_eq(rc, CB_OK, "rc %d at 2 x eval_bytes: %s", rc, err);
    corpus_free(&c);
    rc = corpus_load(&c, src, 1501, err);
    cr_expect_eq(rc, CB_EINPUT, "rc %d just under 2 x eval_bytes", rc);
    remove_tree(tmpdir);
}

Test(data, directory_corpus_concatenates_regular_files_in_sorted_order) {
    make_tmpdir();
    char path[300], src[320], err[CB_ERR_LEN] = "";
    const char *names[] = {"b.txt", "a.txt", "c.txt", "B.txt"}; /* strcmp order: B a b c */
    const char *texts[] = {"bbbbbbbbbb", "aaaaaaaaaa", "cccccccccc", "BBBBBBBBBB"};
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s/%s", tmpdir, names[i]);
        write_file(path, texts[i], 10);
    }
    snprintf(path, sizeof path, "%s/sub", tmpdir); /* not a regular file: skipped */
    cr_assert_eq(mkdir(path, 0700), 0);
    snprintf(src, sizeof src, "file:%s", tmpdir);
    Corpus c;
    int rc = corpus_load(&c, src, 20, err);
    cr_assert_eq(rc, CB_OK, "rc %d: %s", rc, err);
    cr_assert_eq(c.n, 40, "n = %zu", c.n);
    cr_expect_eq(memcmp(c.bytes, "BBBBBBBBBBaaaaaaaaaabbbbbbbbbbcccccccccc", 40), 0, "got '%.40s'", (char *)c.bytes);
    corpus_free(&c);
    remove_tree(tmpdir);
}

Test(data, directory_corpus_skips_symlinks_and_binary_files_like_fortunes_indexes) {
    make_tmpdir();
    char path[300], target[300], src[320], err[CB_ERR_LEN] = "";
    snprintf(path, sizeof path, "%s/cookie", tmpdir);
    write_file(path, "aaaaaaaaaaaaaaaaaaaa", 20);
    snprintf(path, sizeof path, "%s/cookie.dat", tmpdir); /* binary index with NUL bytes */
    write_file(path, "\0\0\0\2xx\0\0yy", 10);
    snprintf(target, sizeof target, "%s/cookie", tmpdir);
    snprintf(path, sizeof path, "%s/cookie.u8", tmpdir); /* a symlink to the text */
    cr_assert_eq(symlink(target, path), 0);
    snprintf(path, sizeof path, "%s/zen", tmpdir);
    write_file(path, "bbbbbbbbbbbbbbbbbbbb", 20);
    snprintf(src, sizeof src, "file:%s", tmpdir);
    Corpus c;
    int rc = corpus_load(&c, src, 20, err);
    cr_assert_eq(rc, CB_OK, "rc %d: %s", rc, err);
    cr_assert_eq(c.n, 40, "n = %zu: the symlink or the binary file was read", c.n);
    cr_expect_eq(memcmp(c.bytes, "aaaaaaaaaaaaaaaaaaaabbbbbbbbbbbbbbbbbbbb", 40), 0, "got '%.40s'", (char *)c.bytes);
    corpus_free(&c);
    remove_tree(tmpdir);
}

Test(data, empty_directory_is_refused) {
    make_tmpdir();
    char src[320], err[CB_ERR_LEN] = "";
    snprintf(src, sizeof src, "file:%s", tmpdir);
    Corpus c;
    int rc = corpus_load(&c, src, 10, err);
    cr_expect_eq(rc, CB_EINPUT, "rc %d: %s", rc, err);
    cr_expect_not_null(strstr(err, "no regular files"), "message: %s", err);
    remove_tree(tmpdir);
}

Test(data, missing_file_is_an_io_error_naming_it) {
    char err[CB_ERR_LEN] = "";
    Corpus c;
    int rc = corpus_load(&c, "file:/nonexistent/cb/x.txt", 1000, err);
    cr_expect_eq(rc, CB_EIO, "rc %d", rc);
    cr_expect_str_eq(err, "corpus file '/nonexistent/cb/x.txt': No such file or directory");
    cr_expect_null(c.bytes);
}

Test(data, too_small_corpus_names_its_size_and_the_need) {
    make_tmpdir();
    char path[300], src[320], expect[600], err[CB_ERR_LEN] = "";
    snprintf(path, sizeof path, "%s/x", tmpdir);
    uint8_t buf[1000] = {0};
    write_file(path, buf, sizeof buf);
    snprintf(src, sizeof src, "file:%s", path);
    Corpus c;
    int rc = corpus_load(&c, src, 65536, err);
    cr_expect_eq(rc, CB_EINPUT, "rc %d", rc);
    snprintf(expect, sizeof expect, "corpus '%s' has 1000 bytes; needs at least 2×eval_bytes = 131072", src);
    cr_expect_str_eq(err, expect);
    rc = corpus_load(&c, "builtin:prose:bytes=1000", 65536, err);
    cr_expect_eq(rc, CB_EINPUT, "rc %d", rc);
    cr_expect_str_eq(err, "corpus 'builtin:prose:bytes=1000' has 1000 bytes; needs at least 2×eval_bytes = 131072");
    remove_tree(tmpdir);
}

Test(data, source_syntax_is_checked_without_loading) {
    char err[CB_ERR_LEN] = "";
    cr_expect_eq(corpus_check_source("file:/does/not/exist", err), CB_OK, "%s", err);
    cr_expect_eq(corpus_check_source("builtin:prose", err), CB_OK, "%s", err);
    cr_expect_eq(corpus_check_source("builtin:prose:bytes=1000000,seed=3", err), CB_OK, "%s", err);
    const char *bad[] = {
        "http://x", "prose", "file:", "builtin:", "builtin:poetry", "builtin:prose:",
        "builtin:prose:bytes=abc", "builtin:prose:bytes=0", "builtin:prose:size=10", "builtin:prose:seed",
        "builtin:prose:seed=-1", "builtin:prose:bytes=99999999999999",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        int rc = corpus_check_source(bad[i], err);
        cr_expect_eq(rc, CB_EINPUT, "'%s' gave %d", bad[i], rc);
        cr_expect_neq(err[0], '\0', "'%s' gave no message", bad[i]);
        cr_expect_null(strchr(err, '\n'), "'%s' gave a multi-line message: %s", bad[i], err);
    }
}

/* ---- batches ------------------------------------------------------------------------------- */

Test(data, sampled_targets_are_inputs_shifted_by_one_inside_the_training_part) {
    /* Training bytes are their own positions 0..66; held out is 0xFF. With T = 64 the only
       starts are 0, 1 and 2, and each must be drawn. */
    make_tmpdir();
    char path[300], src[320], err[CB_ERR_LEN] = "";
    snprintf(path, sizeof path, "%s/pos", tmpdir);
    uint8_t buf[134];
    for (int i = 0; i < 134; i++) buf[i] = i < 67 ? (uint8_t)i : 0xFF;
    write_file(path, buf, sizeof buf);
    snprintf(src, sizeof src, "file:%s", path);
    Corpus c;
    int rc = corpus_load(&c, src, 67, err);
    cr_assert_eq(rc, CB_OK, "rc %d: %s", rc, err);
    cr_assert_eq(c.train_n, 67);

    enum { B = 8, T = 64 };
    uint8_t in[B * T], tg[B * T];
    int seen[3] = {0};
    Rng rng;
    rng_seed(&rng, 11);
    for (int rep = 0; rep < 50; rep++) {
        corpus_sample_batch(&c, &rng, B, T, in, tg);
        for (int b = 0; b < B; b++) {
            int s = in[b * T];
            cr_assert(s <= 2, "start %d is outside [0, train_n - T - 1] = [0, 2]", s);
            seen[s]++;
            for (int t = 0; t < T; t++) {
                cr_assert_eq(in[b * T + t], s + t, "row %d input %d is %d, expected %d", b, t, in[b * T + t], s + t);
                cr_assert_eq(tg[b * T + t], s + t + 1, "row %d target %d is %d, expected %d", b, t,
                             tg[b * T + t], s + t + 1);
            }
        }
    }
    cr_expect(seen[0] && seen[1] && seen[2], "starts seen: %d %d %d", seen[0], seen[1], seen[2]);
    corpus_free(&c);
    remove_tree(tmpdir);
}

Test(data, sampling_is_repeatable_for_a_seed) {
    char err[CB_ERR_LEN] = "";
    Corpus c;
    int rc = corpus_load(&c, "builtin:prose:bytes=200000", 50000, err);
    cr_assert_eq(rc, CB_OK, "rc %d: %s", rc, err);
    enum { B = 4, T = 128 };
    uint8_t in1[B * T], tg1[B * T], in2[B * T], tg2[B * T];
    Rng r1, r2;
    rng_seed(&r1, 5);
    rng_seed(&r2, 5);
    corpus_sample_batch(&c, &r1, B, T, in1, tg1);
    corpus_sample_batch(&c, &r2, B, T, in2, tg2);
    cr_expect_eq(memcmp(in1, in2, sizeof in1), 0, "inputs differ for the same seed");
    cr_expect_eq(memcmp(tg1, tg2, sizeof tg1), 0, "targets differ for the same seed");
    for (int b = 0; b < B; b++)
        cr_expect_eq(memcmp(in1 + b * T + 1, tg1 + b * T, T - 1), 0, "row %d: targets are not inputs shifted", b);
    corpus_free(&c);
}
