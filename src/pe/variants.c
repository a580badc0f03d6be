/*
 * variants.c — the list of eval-time variants shown by `ctxbench list`. A variant is implemented
 * by its base scheme's init (it parses spec.variant); this table only names and cites it.
 * RoPE's variants live in rope_variants.c (formulas and defaults there, PE_SPEC §15–§19).
 */
#include "pe/pe.h"

static const PeVariantInfo variants[] = {
    {"rope", "pi", "position interpolation: every frequency / s (factor=auto: s = n/L)",
     "Chen et al. 2023, arXiv:2306.15595"},
    {"rope", "ntk", "NTK-aware scaling: base * s^(d/(d-2)) (factor=auto)", "bloc97 2023, NTK-aware scaled RoPE"},
    {"rope", "dynamic-ntk", "dynamic NTK (HF): base * (s n/L - (s-1))^(d/(d-2)) past L (factor 2)",
     "HF transformers rope_type \"dynamic\" (2023)"},
    {"rope", "yarn", "YaRN: NTK-by-parts ramp over pairs, magnitude 0.1 ln s + 1 (factor=auto)",
     "Peng et al. 2023, arXiv:2309.00071"},
    {"rope", "llama3", "Llama 3.1 scaling: wavelength bands between L/1 and L/4 (factor=auto)",
     "Grattafiori et al. 2024, arXiv:2407.21783"},
    {"rope", "self-extend", "grouped positions for keys beyond window W (group 4, window L/4)",
     "Jin et al. 2024, arXiv:2401.01325"},
    {"rope", "rerope", "relative position capped at window w (window L/2)", "Su 2023, ReRoPE (bojone/rerope)"},
    {"rope", "leaky-rerope", "past window w, positions grow at 1/k (window L/2, k 16)",
     "Su 2023, Leaky ReRoPE (bojone/rerope)"},
    {"rope", "logn", "query at p scaled by max(1, ln(p+1)/ln L)", "Su 2023, NTK-RoPE-logn (bojone/rerope)"},
    {"rope", "lambda", "LM-Infinite: local window + first keys at distance limit, rest masked",
     "Han et al. 2023, arXiv:2308.16137"},
    {NULL, NULL, NULL, NULL},
};

const PeVariantInfo *pe_variants(void) { return variants; }
