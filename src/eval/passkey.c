/* passkey.c — passkey episodes and their exact-match scoring (see passkey.h). */
#include "eval/passkey.h"

#include <stdio.h>
#include <string.h>

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
