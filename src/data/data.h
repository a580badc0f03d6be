/*
 * data.h — byte corpora for training and evaluation.
 *
 * A corpus is a byte buffer split once into a training part and a held-out part: the held-out
 * part is the last `eval_bytes` bytes, and it is the same for every evaluation context.
 *
 * Sources:
 *   file:PATH             a file, or a directory whose regular text files are read in sorted
 *                         order (symlinks and files holding a NUL byte are skipped)
 *   builtin:NAME[:k=v]    a deterministic generated corpus (see data_builtin_names()); options
 *                         bytes=N (default 2 MiB) and seed=S (default 1), e.g. builtin:prose:bytes=1000000
 */
#ifndef CB_DATA_H
#define CB_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

typedef struct {
    char source[512];  /* the source string as given */
    char *path;        /* file: sources: the file or directory as an absolute path (owned); NULL for
                          built-in corpora */
    uint8_t *bytes;    /* (n) owned */
    size_t n;
    size_t train_n;    /* [0, train_n) trains; [train_n, n) is held out */
    char sha256[65];   /* hash of all n bytes */
} Corpus;

/* Loads or generates the corpus and splits off the last eval_bytes as held out.
   Errors (CB_EINPUT, CB_EIO): unknown source kind, missing file, empty directory, a corpus too
   small for eval_bytes plus a training part at least as large. c->n is the corpus size in bytes
   (of a directory: its text files, binary and linked ones skipped). */
int corpus_load(Corpus *c, const char *source, size_t eval_bytes, char *err);
void corpus_free(Corpus *c); /* no-op on zeroed */

/* Checks a source string's syntax (kind, builtin name and options) without loading it. */
int corpus_check_source(const char *source, char *err);

/* Generates the built-in corpus `name` with n bytes from seed into out (n bytes). */
int data_builtin_generate(const char *name, uint64_t seed, uint8_t *out, size_t n, char *err);
const char *const *data_builtin_names(void); /* NULL-terminated */

/* Draws B training windows of T+1 bytes from the training part: inputs (B, T), targets (B, T).
   Starts are uniform in [0, train_n - T - 1], so targets never reach the held-out part.
   Requires train_n >= T + 1 (a programmer error otherwise: the caller checks the sizes). */
void corpus_sample_batch(const Corpus *c, Rng *rng, int B, int T, uint8_t *inputs, uint8_t *targets);

#endif
