/*
 * passkey.h — passkey retrieval (Mohtashami & Jaggi 2023, landmark attention; PE_SPEC §20.1).
 *
 * An episode is text of an exact byte length: filler, the key sentence at a chosen depth of the
 * filler, more filler, the question, and the answer (the key's digits and a full stop):
 *
 *   <filler prefix>\n The pass key is K. Remember it. K is the pass key.\n<filler suffix>\n
 *   What is the pass key? The pass key is K.
 *
 * The filler is the first characters of the garbage sentence repeated, as in §20.1, so prefix and
 * suffix both start at its beginning. §20.1's 150-byte instruction line is left out: it carries no
 * information and would not fit a byte-level model trained on short windows.
 *
 * Scoring is exact match of the greedy continuation after "The pass key is ": the model must emit
 * K's digits and then a byte that is not a digit. Greedy decoding yields that continuation exactly
 * when, along it, every next-byte argmax is the right byte, so one teacher-forced forward pass
 * decides it — no sampling, no generation loop.
 */
#ifndef CB_PASSKEY_H
#define CB_PASSKEY_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"
#include "model/model.h"

#define PASSKEY_KEY_MAX 50000 /* keys are drawn from [1, 50000] (§20.1) */

typedef struct {
    int length;      /* total bytes */
    int key_at;      /* offset of the first digit of the hidden key */
    int answer_at;   /* offset of the first digit of the answer */
    int answer_len;  /* digits of the key + the closing '.' */
    uint32_t key;
} PasskeyEpisode;

/* Shortest episode that can hold key `key` (no filler at all). */
int passkey_min_length(uint32_t key);

/* Writes an episode of exactly `length` bytes into buf with the key sentence at `depth` in [0, 1]
   of the filler (0 = right after the start, 1 = right before the question).
   CB_EINPUT if length is below passkey_min_length(key). */
int passkey_build(uint8_t *buf, int length, double depth, uint32_t key, PasskeyEpisode *ep, char *err);

/* A random episode for training: random key and depth, exactly `length` bytes (length must be at
   least passkey_min_length(PASSKEY_KEY_MAX)). */
int passkey_random(uint8_t *buf, int length, Rng *rng, PasskeyEpisode *ep, char *err);

/* 1 if the greedy continuation from the answer position is exactly the key's digits followed by a
   non-digit byte. logits (n, 256) come from a forward over inputs buf[0..n) with n = ep->length - 1,
   i.e. logits[t] predicts buf[t + 1]. */
int passkey_correct(const float *logits, const uint8_t *buf, const PasskeyEpisode *ep);

/* Mixes passkey episodes into a training batch: each of the B rows is, with probability `share`,
   replaced by a random episode of T + 1 bytes (inputs (B, T), targets shifted by one). Returns
   the number of rows replaced. */
int passkey_mix_batch(Rng *rng, double share, int B, int T, uint8_t *inputs, uint8_t *targets);

/* Passkey accuracy of a model at context n: for each depth, `trials` episodes of n + 1 bytes
   (inputs n, the last byte only a target) with keys and depths drawn from `seed`; acc[d] is the
   share answered exactly. Prepares the encoding for n (CB_EUNSUPPORTED passes through). */
int eval_passkey(Model *m, int n, const double *depths, int n_depths, int trials, uint64_t seed,
                 double *acc, char *err);

#endif
