/*
 * nope.c — no positional encoding (NoPE; Kazemnejad et al. 2023, "The Impact of Positional
 * Encoding on Length Generalization in Transformers", arXiv:2305.19466).
 *
 * Formula: none. Logits are q_i . k_j / sqrt(HS) under the causal mask alone; the mask is the only
 * source of positional information. The scheme has no options, parameters, caches or hooks; only
 * inspect, which prints the CSV header so `ctxbench inspect nope` has a uniform format.
 */
#include "pe/pe.h"

static int nope_inspect(const PeModel *pe, const PeInspectArgs *args, FILE *out, char *err) {
    (void)pe;
    (void)args;
    fputs("quantity,head,i,j,value\n", out);
    return ferror(out) ? cb_error(err, CB_EIO, "nope: writing the inspect output failed") : CB_OK;
}

const PeScheme pe_nope = {
    .name = "nope",
    .summary = "no positional encoding: the causal mask is the only position signal",
    .paper = "Kazemnejad et al. 2023, arXiv:2305.19466",
    .inspect = nope_inspect,
};
