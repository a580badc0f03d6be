/*
 * fuzz_suite.c — libFuzzer target for the suite parser: any bytes, read as a suite file, must give
 * either a Suite or one error line; never a crash, a leak or undefined behaviour. A suite that
 * parses is also expanded into its grid when the grid is small enough to allocate here.
 * Build and run with scripts/fuzz.sh (see README, "Fuzzing").
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "harness/suite.h"

/* Grids above this many cases are valid but would only measure malloc; they are not expanded. */
#define FUZZ_MAX_CASES 100000.0

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = '\0'; /* an embedded NUL ends the text, as it would for suite_load_string's callers */
    char err[CB_ERR_LEN];
    Suite s;
    if (suite_load_string(&s, "fuzz.ini", text, err) == CB_OK) {
        double cases = (double)s.n_seeds * s.n_layers * s.n_d_model * s.n_heads * s.n_mlp_ratio * s.n_train_ctx *
                       s.n_steps * s.n_batch * s.n_warmup * s.n_lr * s.n_min_lr_ratio * s.n_weight_decay *
                       s.n_grad_clip * s.n_beta1 * s.n_beta2 * s.n_schemes * s.n_tasks * (s.n_contexts + 1);
        if (cases <= FUZZ_MAX_CASES) {
            Experiment *exps;
            Case *c;
            size_t ne, nc;
            if (suite_expand(&s, &exps, &ne, &c, &nc, err) == CB_OK) {
                for (size_t i = 0; i < nc; i++)
                    if (c[i].experiment < 0 || (size_t)c[i].experiment >= ne) abort();
                free(exps);
                free(c);
            }
        }
        suite_free(&s);
    } else if (!err[0] || strchr(err, '\n')) {
        abort(); /* every refusal is exactly one non-empty line */
    }
    free(text);
    return 0;
}
