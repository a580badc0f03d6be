/*
 * corpus.c — loading a corpus from its source string, splitting off the held-out part, and
 * drawing training batches.
 *
 *   file:PATH                         a file, or a directory's regular files in strcmp order,
 *                                     concatenated
 *   builtin:NAME[:bytes=N,seed=S]     a generated corpus (builtin.c); bytes defaults to 2 MiB,
 *                                     seed to 1
 *
 * The held-out part is always the last eval_bytes bytes, and the training part before it must be
 * at least as large, so every evaluation context sees the same held-out text.
 */
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/data.h"

#define BUILTIN_DEFAULT_BYTES ((size_t)2 << 20)
#define BUILTIN_MAX_BYTES ((size_t)1 << 30)

typedef struct {
    enum { SRC_FILE, SRC_BUILTIN } kind;
    const char *path;   /* SRC_FILE: points into the source string */
    char name[32];      /* SRC_BUILTIN */
    size_t bytes;
    uint64_t seed;
} Source;

/* Parses an unsigned decimal integer filling the whole of [s, s+len). */
static int parse_u64(const char *s, size_t len, uint64_t *out) {
    if (len == 0 || len > 20) return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        uint64_t d = (uint64_t)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10) return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

static int parse_builtin(const char *source, const char *spec, Source *src, char *err) {
    const char *colon = strchr(spec, ':');
    size_t nlen = colon ? (size_t)(colon - spec) : strlen(spec);
    src->kind = SRC_BUILTIN;
    src->bytes = BUILTIN_DEFAULT_BYTES;
    src->seed = 1;
    int known = 0;
    for (const char *const *n = data_builtin_names(); *n; n++)
        if (strlen(*n) == nlen && strncmp(*n, spec, nlen) == 0) known = 1;
    if (!known || nlen >= sizeof src->name)
        return cb_error(err, CB_EINPUT, "corpus source '%s': unknown built-in corpus '%.*s' (known: prose)",
                        source, (int)(nlen < 64 ? nlen : 64), spec);
    memcpy(src->name, spec, nlen);
    src->name[nlen] = '\0';
    if (!colon) return CB_OK;

    const char *s = colon + 1;
    if (!*s) return cb_error(err, CB_EINPUT, "corpus source '%s': ':' must be followed by options", source);
    while (*s) {
        const char *end = strchr(s, ',');
        if (!end) end = s + strlen(s);
        const char *eq = memchr(s, '=', (size_t)(end - s));
        if (!eq)
            return cb_error(err, CB_EINPUT, "corpus source '%s': option '%.*s' has no value (expected key=value)",
                            source, (int)(end - s), s);
        size_t klen = (size_t)(eq - s), vlen = (size_t)(end - eq - 1);
        uint64_t v;
        if (klen == 5 && strncmp(s, "bytes", 5) == 0) {
            if (parse_u64(eq + 1, vlen, &v) || v < 1 || v > BUILTIN_MAX_BYTES)
                return cb_error(err, CB_EINPUT, "corpus source '%s': bytes '%.*s' is not an integer in 1..%zu",
                                source, (int)vlen, eq + 1, BUILTIN_MAX_BYTES);
            src->bytes = (size_t)v;
        } else if (klen == 4 && strncmp(s, "seed", 4) == 0) {
            if (parse_u64(eq + 1, vlen, &v))
                return cb_error(err, CB_EINPUT, "corpus source '%s': seed '%.*s' is not an unsigned 64-bit integer",
                                source, (int)vlen, eq + 1);
            src->seed = v;
        } else {
            return cb_error(err, CB_EINPUT, "corpus source '%s': unknown option '%.*s' (expected bytes, seed)",
                            source, (int)klen, s);
        }
        s = *end ? end + 1 : end;
    }
    return CB_OK;
}

static int parse_source(const char *source, Source *src, char *err) {
    memset(src, 0, sizeof *src);
    if (!source) return cb_error(err, CB_EINPUT, "corpus source is missing");
    if (strlen(source) >= sizeof ((Corpus *)0)->source)
        return cb_error(err, CB_EINPUT, "corpus source is longer than %zu characters",
                        sizeof ((Corpus *)0)->source - 1);
    if (strncmp(source, "file:", 5) == 0) {
        src->kind = SRC_FILE;
        src->path = source + 5;
        if (!*src->path) return cb_error(err, CB_EINPUT, "corpus source '%s': empty path", source);
        return CB_OK;
    }
    if (strncmp(source, "builtin:", 8) == 0) return parse_builtin(source, source + 8, src, err);
    return cb_error(err, CB_EINPUT, "corpus source '%s': unknown kind (expected file:PATH or builtin:NAME)", source);
}

int corpus_check_source(const char *source, char *err) {
    Source src;
    return parse_source(source, &src, err);
}

/* Appends the whole of file `path` to *buf (size *n, capacity *cap), growing it. */
static int read_append(const char *path, uint8_t **buf, size_t *n, size_t *cap, char *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return cb_error(err, CB_EIO, "corpus file '%s': %s", path, strerror(errno));
    int rc = CB_OK;
    for (;;) {
        if (*n == *cap) {
            size_t ncap = *cap ? *cap * 2 : (size_t)1 << 16;
            if (ncap < *cap) {
                rc = cb_error(err, CB_ENOMEM, "corpus file '%s': too large", path);
                break;
            }
            uint8_t *nb = realloc(*buf, ncap);
            if (!nb) {
                rc = cb_error(err, CB_ENOMEM, "corpus file '%s': out of memory at %zu bytes", path, *n);
                break;
            }
            *buf = nb;
            *cap = ncap;
        }
        size_t got = fread(*buf + *n, 1, *cap - *n, f);
        *n += got;
        if (got == 0) {
            if (ferror(f)) rc = cb_error(err, CB_EIO, "corpus file '%s': read error", path);
            break;
        }
    }
    fclose(f);
    return rc;
}

static int cmp_names(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Reads a directory's regular text files in strcmp order. Symlinks are skipped (in Debian's
   fortunes, name.u8 links to name and would repeat it) and so are files holding a NUL byte
   (binary indexes such as fortunes' name.dat). */
static int read_dir(const char *dir, uint8_t **buf, size_t *n, size_t *cap, char *err) {
    DIR *d = opendir(dir);
    if (!d) return cb_error(err, CB_EIO, "corpus directory '%s': %s", dir, strerror(errno));
    char **paths = NULL;
    size_t np = 0, pcap = 0;
    int rc = CB_OK;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        size_t len = strlen(dir) + strlen(e->d_name) + 2;
        char *p = malloc(len);
        if (!p) {
            rc = cb_error(err, CB_ENOMEM, "corpus directory '%s': out of memory", dir);
            goto done;
        }
        snprintf(p, len, "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(p, &st) != 0 || !S_ISREG(st.st_mode)) {
            free(p);
            continue;
        }
        if (np == pcap) {
            size_t ncap = pcap ? pcap * 2 : 16;
            char **nps = realloc(paths, ncap * sizeof *nps);
            if (!nps) {
                free(p);
                rc = cb_error(err, CB_ENOMEM, "corpus directory '%s': out of memory", dir);
                goto done;
            }
            paths = nps;
            pcap = ncap;
        }
        paths[np++] = p;
    }
    if (np == 0) {
        rc = cb_error(err, CB_EINPUT, "corpus directory '%s' has no regular files", dir);
        goto done;
    }
    /* Sorting full paths with one common prefix orders them as their names. */
    qsort(paths, np, sizeof *paths, cmp_names);
    size_t kept = 0;
    for (size_t i = 0; i < np && rc == CB_OK; i++) {
        size_t start = *n;
        rc = read_append(paths[i], buf, n, cap, err);
        if (rc == CB_OK && memchr(*buf + start, 0, *n - start)) *n = start; /* binary: skip */
        else kept++;
    }
    if (rc == CB_OK && kept == 0)
        rc = cb_error(err, CB_EINPUT, "corpus directory '%s' has no text files", dir);
done:
    for (size_t i = 0; i < np; i++) free(paths[i]);
    free(paths);
    closedir(d);
    return rc;
}

int corpus_load(Corpus *c, const char *source, size_t eval_bytes, char *err) {
    memset(c, 0, sizeof *c);
    Source src;
    int rc = parse_source(source, &src, err);
    if (rc) return rc;
    size_t need;
    if (eval_bytes == 0 || size_mul(eval_bytes, 2, &need))
        return cb_error(err, CB_EINPUT, "corpus '%s': eval_bytes %zu is out of range", source, eval_bytes);

    uint8_t *buf = NULL;
    size_t n = 0, cap = 0;
    if (src.kind == SRC_BUILTIN) {
        /* Refuse before generating when the size alone already says it is too small. */
        if (src.bytes < need)
            return cb_error(err, CB_EINPUT, "corpus '%s' has %zu bytes; needs at least 2×eval_bytes = %zu",
                            source, src.bytes, need);
        buf = malloc(src.bytes);
        if (!buf) return cb_error(err, CB_ENOMEM, "corpus '%s': cannot allocate %zu bytes", source, src.bytes);
        n = src.bytes;
        rc = data_builtin_generate(src.name, src.seed, buf, n, err);
    } else {
        struct stat st;
        if (stat(src.path, &st) != 0)
            return cb_error(err, CB_EIO, "corpus file '%s': %s", src.path, strerror(errno));
        if (S_ISDIR(st.st_mode)) rc = read_dir(src.path, &buf, &n, &cap, err);
        else rc = read_append(src.path, &buf, &n, &cap, err);
    }
    if (rc == CB_OK && n < need)
        rc = cb_error(err, CB_EINPUT, "corpus '%s' has %zu bytes; needs at least 2×eval_bytes = %zu", source, n,
                      need);
    if (rc) {
        free(buf);
        return rc;
    }
    if (src.kind == SRC_FILE && !(c->path = realpath(src.path, NULL))) {
        rc = errno == ENOMEM ? cb_error(err, CB_ENOMEM, "corpus '%s': out of memory", source)
                             : cb_error(err, CB_EIO, "corpus file '%s': %s", src.path, strerror(errno));
        free(buf);
        return rc;
    }
    snprintf(c->source, sizeof c->source, "%s", source);
    c->bytes = buf;
    c->n = n;
    c->train_n = n - eval_bytes;
    sha256_hex(buf, n, c->sha256);
    return CB_OK;
}

void corpus_free(Corpus *c) {
    if (!c) return;
    free(c->bytes);
    free(c->path);
    memset(c, 0, sizeof *c);
}

/* Uniform in [0, n), n > 0; rng_below covers every corpus under 4 GiB. */
static size_t draw_below(Rng *rng, size_t n) {
    if (n <= UINT32_MAX) return rng_below(rng, (uint32_t)n);
    uint64_t limit = UINT64_MAX - UINT64_MAX % n, r;
    do r = rng_next(rng);
    while (r >= limit);
    return (size_t)(r % n);
}

/* Precondition (a programmer error otherwise): train_n >= T + 1, so that at least one window of
   T + 1 bytes fits; starts are uniform in [0, train_n - T - 1]. */
void corpus_sample_batch(const Corpus *c, Rng *rng, int B, int T, uint8_t *inputs, uint8_t *targets) {
    assert(T > 0 && c->train_n > (size_t)T);
    size_t starts = c->train_n - (size_t)T; /* number of valid starts */
    for (int b = 0; b < B; b++) {
        size_t s = draw_below(rng, starts);
        memcpy(inputs + (size_t)b * (size_t)T, c->bytes + s, (size_t)T);
        memcpy(targets + (size_t)b * (size_t)T, c->bytes + s + 1, (size_t)T);
    }
}
