/* pe_fixture.c — test support: encodings with their own parameter blocks (see pe_fixture.h). */
#include "pe_fixture.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

void make_pe(TestPe *tp, const char *spec, int NH, int HS, int ctx) {
    char err[CB_ERR_LEN] = "";
    PeDims dims = {.n_layer = 2, .n_head = NH, .head_size = HS, .d_model = NH * HS, .train_ctx = ctx};
    memset(tp, 0, sizeof *tp);
    int rc = pe_create(&tp->pe, spec, &dims, err);
    cr_assert_eq(rc, CB_OK, "pe_create('%s') returned %d: %s", spec, rc, err);
    size_t np = pe_param_count(&tp->pe);
    if (np > 0) {
        tp->params = calloc(np, sizeof(float));
        tp->grads = calloc(np, sizeof(float));
        cr_assert(tp->params && tp->grads, "calloc of %zu params failed", np);
        tp->pe.params = tp->params;
        tp->pe.grads = tp->grads;
        Rng rng;
        rng_seed(&rng, 1234);
        if (tp->pe.scheme->param_init) tp->pe.scheme->param_init(&tp->pe, &rng);
    }
    rc = pe_prepare(&tp->pe, ctx, err);
    cr_assert_eq(rc, CB_OK, "pe_prepare('%s', %d) returned %d: %s", spec, ctx, rc, err);
}

void free_pe(TestPe *tp) {
    pe_destroy(&tp->pe);
    free(tp->params);
    free(tp->grads);
}

int create_status(const char *spec, char *err) {
    PeDims dims = {.n_layer = 2, .n_head = 4, .head_size = 16, .d_model = 64, .train_ctx = 128};
    PeModel pe;
    int rc = pe_create(&pe, spec, &dims, err);
    pe_destroy(&pe);
    return rc;
}

