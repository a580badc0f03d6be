/* inspect.c — `ctxbench inspect SCHEME`: a scheme's positional quantities as CSV, through the
   same code path the tests check against the reference vectors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/core.h"
#include "pe/pe.h"

static const char HELP[] =
    "usage: ctxbench inspect SCHEME [--d-model C] [--heads NH] [--layers L] [--train-ctx L]\n"
    "                        [--context N] [--query I] [--positions P,P,...]\n"
    "\n"
    "Prints the scheme's positional quantities as CSV (quantity,head,i,j,value): sinusoid rows,\n"
    "RoPE inverse frequencies, wavelengths and magnitude, ALiBi slopes, T5 buckets over distances\n"
    "0..N-1, and the bias row of query position I. SCHEME is a spec such as rope:base=500000.\n"
    "Defaults: --d-model 64 --heads 4 --layers 1 --train-ctx 128 --context 16 --query 7.\n";

static int int_arg(const char *flag, const char *text, long long lo, long long hi, int *out) {
    long long v;
    if (parse_long(text, &v) || v < lo || v > hi) {
        fprintf(stderr, "ctxbench inspect: %s: '%s' is not a number in %lld..%lld\n", flag, text, lo, hi);
        return -1;
    }
    *out = (int)v;
    return 0;
}

int cmd_inspect(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        fputs(HELP, stdout);
        return CB_EXIT_OK;
    }
    const char *spec = NULL;
    int d_model = 64, heads = 4, layers = 1, train_ctx = 128, context = 16, query = 7;
    int positions[64], n_positions = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int bad = 0;
        if (i + 1 < argc && !strcmp(a, "--d-model")) bad = int_arg(a, argv[++i], 2, 65536, &d_model);
        else if (i + 1 < argc && !strcmp(a, "--heads")) bad = int_arg(a, argv[++i], 1, 1024, &heads);
        else if (i + 1 < argc && !strcmp(a, "--layers")) bad = int_arg(a, argv[++i], 1, 1024, &layers);
        else if (i + 1 < argc && !strcmp(a, "--train-ctx")) bad = int_arg(a, argv[++i], 1, (long long)CB_MAX_CONTEXT, &train_ctx);
        else if (i + 1 < argc && !strcmp(a, "--context")) bad = int_arg(a, argv[++i], 1, (long long)CB_MAX_CONTEXT, &context);
        else if (i + 1 < argc && !strcmp(a, "--query")) bad = int_arg(a, argv[++i], 0, (long long)CB_MAX_CONTEXT - 1, &query);
        else if (i + 1 < argc && !strcmp(a, "--positions")) {
            char buf[1024];
            snprintf(buf, sizeof buf, "%s", argv[++i]);
            for (char *tok = strtok(buf, ","); tok && !bad; tok = strtok(NULL, ",")) {
                if (n_positions == 64) {
                    fprintf(stderr, "ctxbench inspect: --positions: at most 64 positions\n");
                    return CB_EXIT_USAGE;
                }
                bad = int_arg("--positions", tok, 0, (long long)CB_MAX_CONTEXT - 1, &positions[n_positions++]);
            }
        } else if (a[0] != '-' && !spec) spec = a;
        else {
            fprintf(stderr, "ctxbench inspect: unexpected argument '%s' (see ctxbench inspect --help)\n", a);
            return CB_EXIT_USAGE;
        }
        if (bad) return CB_EXIT_USAGE;
    }
    if (!spec) {
        fprintf(stderr, "ctxbench inspect: no scheme given (see ctxbench list)\n");
        return CB_EXIT_USAGE;
    }
    if (d_model % heads || (d_model / heads) % 2) {
        fprintf(stderr, "ctxbench inspect: --d-model %d must split into %d heads of even size\n", d_model, heads);
        return CB_EXIT_USAGE;
    }
    int need = context;
    if (query + 1 > need) need = query + 1;
    for (int k = 0; k < n_positions; k++)
        if (positions[k] + 1 > need) need = positions[k] + 1;

    char err[CB_ERR_LEN] = "";
    PeModel pe;
    PeDims dims = {layers, heads, d_model / heads, d_model, train_ctx};
    int rc = pe_create(&pe, spec, &dims, err);
    if (rc) {
        fprintf(stderr, "ctxbench inspect: %s\n", err);
        return CB_EXIT_USAGE;
    }
    float *params = NULL;
    size_t np = pe_param_count(&pe);
    if (np) {
        /* Parameters at their seeded initial values (seed 1): inspect shows the untrained scheme. */
        params = calloc(np, sizeof(float));
        if (!params) {
            pe_destroy(&pe);
            fprintf(stderr, "ctxbench inspect: out of memory\n");
            return CB_EXIT_FAIL;
        }
        pe.params = params;
        Rng rng;
        rng_seed(&rng, 1);
        if (pe.scheme->param_init) pe.scheme->param_init(&pe, &rng);
    }
    rc = pe_prepare(&pe, need, err);
    PeInspectArgs args = {.context = context, .query = query,
                          .positions = n_positions ? positions : NULL, .n_positions = n_positions};
    if (!rc) rc = pe.scheme->inspect ? pe.scheme->inspect(&pe, &args, stdout, err) : CB_OK;
    pe_destroy(&pe);
    free(params);
    if (rc) {
        fprintf(stderr, "ctxbench inspect: %s\n", err);
        return rc == CB_EUNSUPPORTED ? CB_EXIT_FAIL : CB_EXIT_USAGE;
    }
    return CB_EXIT_OK;
}
