/* list.c — `ctxbench list`: every scheme with its one-line description and paper. */
#include <stdio.h>

#include "cli/cli.h"
#include "pe/pe.h"

int cmd_list(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        fputs("usage: ctxbench list\n\nLists the positional-encoding schemes, eval-time variants and tasks.\n",
              stdout);
        return CB_EXIT_OK;
    }
    if (argc > 1) {
        fprintf(stderr, "ctxbench list: unexpected argument '%s'\n", argv[1]);
        return CB_EXIT_USAGE;
    }
    printf("schemes (trained):\n");
    for (const PeScheme *const *s = pe_all(); *s; s++)
        printf("  %-12s %s\n  %-12s   %s\n", (*s)->name, (*s)->summary, "", (*s)->paper);
    printf("\neval-time variants (evaluate a trained model as SCHEME+VARIANT[:k=v,...]):\n");
    for (const PeVariantInfo *v = pe_variants(); v->name; v++) {
        char name[64];
        snprintf(name, sizeof name, "%s+%s", v->scheme, v->name);
        printf("  %-17s %s\n  %-17s   %s\n", name, v->summary, "", v->paper);
    }
    printf("\ntasks:\n  %-12s non-overlapping windows: bits per byte, perplexity, ratio to the training\n"
           "  %-12s context, and loss by position bucket [0,L), [L,2L), [2L,4L), ...\n",
           "perplexity", "");
    printf("  %-12s exact-match retrieval of a key hidden at given depths of filler text\n", "passkey");
    printf("  %-12s time of one forward pass (and, up to [cost] train_limit, one training step): median,\n"
           "  %-12s min, max of [cost] repeats runs, GFLOP/s, peak memory; then the fitted growth\n"
           "  %-12s exponents of time and memory in n (the cost_fit case of each scheme)\n",
           "cost", "", "");
    return CB_EXIT_OK;
}
