/*
 * fuzz_spec.c — libFuzzer target for scheme spec strings ("rope:base=500000+yarn:factor=auto"):
 * pe_spec_parse, then pe_create at model dimensions taken from the first input byte, the canonical
 * form, and pe_prepare at a small context. Any input must give a scheme or one error line.
 * Build and run with scripts/fuzz.sh (see README, "Fuzzing").
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pe/pe.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    /* Byte 0 picks the dimensions (a few shapes, odd and even head counts), the rest is the spec. */
    static const PeDims shapes[] = {
        {1, 1, 8, 8, 16}, {2, 4, 16, 64, 128}, {3, 3, 2, 6, 7}, {1, 8, 4, 32, 2048},
    };
    PeDims dims = shapes[data[0] % (sizeof shapes / sizeof shapes[0])];
    int ctx = 1 + (data[0] >> 2) % 300;
    char *text = malloc(size);
    if (!text) return 0;
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    char err[CB_ERR_LEN] = "";
    PeSpec spec;
    if (pe_spec_parse(text, &spec, err) != CB_OK) {
        if (!err[0]) abort();
        free(text);
        return 0;
    }
    PeModel pe;
    memset(&pe, 0, sizeof pe);
    if (pe_create(&pe, text, &dims, err) == CB_OK) {
        char canon[512];
        pe_canonical(&pe, canon, sizeof canon);
        /* The canonical form names the same scheme: it must parse and build again. */
        PeModel again;
        memset(&again, 0, sizeof again);
        if (pe_create(&again, canon, &dims, err) != CB_OK) abort();
        pe_destroy(&again);
        size_t n_params = pe_param_count(&pe);
        if (n_params > 0 && n_params < ((size_t)1 << 24)) {
            /* Parameters live in the model's block; give them one so prepare can read them. */
            pe.params = calloc(n_params, sizeof(float));
        }
        if (n_params == 0 || pe.params) {
            if (pe_prepare(&pe, ctx, err) == CB_OK) (void)pe_state_bytes(&pe, ctx);
        }
        free(pe.params);
        pe.params = NULL;
        pe_destroy(&pe);
    } else if (!err[0]) {
        abort();
    }
    free(text);
    return 0;
}
