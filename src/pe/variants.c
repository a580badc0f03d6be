/*
 * variants.c — the list of eval-time variants shown by `ctxbench list`. A variant is implemented
 * by its base scheme's init (it parses spec.variant); this table only names and cites it.
 */
#include "pe/pe.h"

static const PeVariantInfo variants[] = {
    {NULL, NULL, NULL, NULL},
};

const PeVariantInfo *pe_variants(void) { return variants; }
