/* passkey.c — passkey episodes and their exact-match scoring (see passkey.h). */
#include "eval/passkey.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"

static const char GARBAGE[] =
    "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again. ";

/* n bytes of the repeated garbage, starting at its beginning. */
static void filler(uint8_t *dst, int n) {
    int g = (int)sizeof GARBAGE - 1;
    for (int i = 0; i < n; i++) dst[i] = (uint8_t)GARBAGE[i % g];
}

static int fixed_parts(uint32_t key, char *needle, size_t nn, char *question, size_t qn, char *answer, size_t an) {
    snprintf(needle, nn, "\nThe pass key is %u. Remember it. %u is the pass key.\n", key, key);
    snprintf(question, qn, "\nWhat is the pass key? The pass key is ");
    return snprintf(answer, an, "%u.", key);
}

int passkey_min_length(uint32_t key) {
    char needle[128], question[64], answer[16];
    fixed_parts(key, needle, sizeof needle, question, sizeof question, answer, sizeof answer);
    return (int)(strlen(needle) + strlen(question) + strlen(answer));
}

int passkey_build(uint8_t *buf, int length, double depth, uint32_t key, PasskeyEpisode *ep, char *err) {
    if (key < 1 || key > PASSKEY_KEY_MAX)
        return cb_error(err, CB_EINPUT, "passkey: key %u outside 1..%d", key, PASSKEY_KEY_MAX);
    if (!(depth >= 0.0 && depth <= 1.0))
        return cb_error(err, CB_EINPUT, "passkey: depth %g outside [0, 1]", depth);
    char needle[128], question[64], answer[16];
    fixed_parts(key, needle, sizeof needle, question, sizeof question, answer, sizeof answer);
    int nl = (int)strlen(needle), ql = (int)strlen(question), al = (int)strlen(answer);
    int garbage = length - nl - ql - al;
    if (garbage < 0)
        return cb_error(err, CB_EINPUT, "passkey: %d bytes cannot hold an episode (needs %d)", length, nl + ql + al);
    int prefix = (int)(depth * garbage + 0.5), suffix = garbage - prefix;
    uint8_t *p = buf;
    filler(p, prefix), p += prefix;
    memcpy(p, needle, (size_t)nl), p += nl;
    filler(p, suffix), p += suffix;
    memcpy(p, question, (size_t)ql), p += ql;
    memcpy(p, answer, (size_t)al);
    ep->length = length;
    ep->key_at = prefix + (int)strlen("\nThe pass key is ");
    ep->answer_at = length - al;
    ep->answer_len = al;
    ep->key = key;
    return CB_OK;
}

int passkey_random(uint8_t *buf, int length, Rng *rng, PasskeyEpisode *ep, char *err) {
    uint32_t key = 1 + rng_below(rng, PASSKEY_KEY_MAX);
    double depth = rng_uniform(rng);
    return passkey_build(buf, length, depth, key, ep, err);
}

static int argmax(const float *row) {
    int best = 0;
    for (int v = 1; v < 256; v++)
        if (row[v] > row[best]) best = v;
    return best;
}

int passkey_correct(const float *logits, const uint8_t *buf, const PasskeyEpisode *ep) {
    /* The digits must each be the argmax given the correct prefix... */
    for (int t = ep->answer_at; t < ep->answer_at + ep->answer_len - 1; t++)
        if (argmax(logits + (size_t)(t - 1) * 256) != buf[t]) return 0;
    /* ...and after the last digit the model must stop the number. */
    int after = argmax(logits + (size_t)(ep->answer_at + ep->answer_len - 2) * 256);
    return !(after >= '0' && after <= '9');
}

int passkey_mix_batch(Rng *rng, double share, int B, int T, uint8_t *inputs, uint8_t *targets) {
    if (share <= 0.0 || T + 1 < passkey_min_length(PASSKEY_KEY_MAX)) return 0;
    uint8_t *buf = malloc((size_t)T + 1);
    if (!buf) return 0;
    int replaced = 0;
    for (int b = 0; b < B; b++) {
        if (rng_uniform(rng) >= share) continue;
        PasskeyEpisode ep;
        if (passkey_random(buf, T + 1, rng, &ep, NULL)) continue;
        memcpy(inputs + (size_t)b * T, buf, (size_t)T);
        memcpy(targets + (size_t)b * T, buf + 1, (size_t)T);
        replaced++;
    }
    free(buf);
    return replaced;
}

int eval_passkey(Model *m, int n, const double *depths, int n_depths, int trials, uint64_t seed,
                 double *acc, char *err) {
    int rc = pe_prepare(&m->pe, n, err);
    if (rc) return rc;
    if (n + 1 < passkey_min_length(PASSKEY_KEY_MAX))
        return cb_error(err, CB_EINPUT, "passkey: context %d is shorter than an episode (%d bytes)", n,
                        passkey_min_length(PASSKEY_KEY_MAX) - 1);
    uint8_t *buf = malloc((size_t)n + 1);
    float *logits = malloc(sizeof(float) * (size_t)n * CB_VOCAB);
    if (!buf || !logits) {
        free(buf);
        free(logits);
        return cb_error(err, CB_ENOMEM, "passkey: out of memory for context %d", n);
    }
    Rng rng;
    rng_seed(&rng, seed);
    for (int d = 0; d < n_depths && rc == CB_OK; d++) {
        int right = 0;
        for (int t = 0; t < trials && rc == CB_OK; t++) {
            PasskeyEpisode ep;
            uint32_t key = 1 + rng_below(&rng, PASSKEY_KEY_MAX);
            rc = passkey_build(buf, n + 1, depths[d], key, &ep, err);
            if (!rc) rc = model_eval_window(m, buf, buf + 1, n, NULL, logits, err);
            if (!rc) right += passkey_correct(logits, buf, &ep);
        }
        acc[d] = trials ? (double)right / trials : 0.0;
    }
    free(buf);
    free(logits);
    return rc;
}
