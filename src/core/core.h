/*
 * core.h — status codes, error messages, the seeded RNG, clocks and small helpers shared by
 * every module. Library functions return a CbStatus and write one line of context into a
 * caller-owned buffer of CB_ERR_LEN bytes; nothing in the library exits the process.
 */
#ifndef CB_CORE_H
#define CB_CORE_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    CB_OK = 0,
    CB_EINPUT = -1,       /* bad input: suite file, spec string, option value, size */
    CB_ENOMEM = -2,       /* allocation failed */
    CB_EIO = -3,          /* file or pipe I/O */
    CB_EDB = -4,          /* SQLite */
    CB_EUNSUPPORTED = -5, /* valid request the scheme cannot serve (learned table too short) */
    CB_ECHILD = -6,       /* a case's child process failed */
    CB_EDIVERGED = -7,    /* training produced NaN or Inf */
} CbStatus;

#define CB_ERR_LEN 512

/* Writes printf-style text into err (CB_ERR_LEN bytes, may be NULL) and returns code. */
int cb_error(char *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Largest context (bytes) any suite may ask for; anything bigger is refused before allocation. */
#define CB_MAX_CONTEXT ((size_t)1 << 20)

/* xoshiro256** seeded through splitmix64: small, fast, and identical on every platform. */
typedef struct {
    uint64_t s[4];
} Rng;

void rng_seed(Rng *rng, uint64_t seed);
uint64_t rng_next(Rng *rng);
uint32_t rng_below(Rng *rng, uint32_t n); /* uniform in [0, n), n > 0, unbiased */
double rng_uniform(Rng *rng);             /* uniform in [0, 1) with 53 random bits */
float rng_normal(Rng *rng);               /* standard normal (Box-Muller) */

/* Seconds on CLOCK_MONOTONIC, and CPU seconds of this process. */
double clock_now(void);
double clock_cpu(void);

/* Checked size arithmetic: returns 0 and sets *out, or -1 on overflow. */
int size_mul(size_t a, size_t b, size_t *out);

/* Parses a whole string as a number; returns 0 or -1 (trailing junk, empty, out of range). */
int parse_long(const char *s, long long *out);
int parse_double(const char *s, double *out);

/* SHA-256 of a buffer as 64 lowercase hex characters plus NUL. */
void sha256_hex(const void *data, size_t n, char out[65]);

/* Flushes denormal floats to zero in this thread and in every thread it starts afterwards
   (threads inherit the floating-point environment). Softmax tails and strongly negative logit
   biases otherwise produce denormals that are a hundred times slower to compute with. Call it
   before the first OpenMP region of a computing process. */
void cb_flush_denormals(void);

/* strdup that returns NULL on NULL. */
char *cb_strdup(const char *s);

#endif
