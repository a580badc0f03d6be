/*
 * randomized.c — the position sampler of randomized positional encodings (Ruoss et al. 2023,
 * "Randomized Positional Encodings Boost Length Generalization of Transformers",
 * arXiv:2305.16843; PE_SPEC.md §13), shared by the schemes that offer `randomized=N`.
 *
 * A training window of T tokens gets T distinct positions drawn uniformly without replacement from
 * [0, N), sorted ascending, so the model sees positions up to N - 1 while training at T <= N.
 * Evaluation keeps the plain positions 0..n-1.
 *
 * Floyd's algorithm draws exactly T numbers: for j = N - T .. N - 1 take t uniform in [0, j] and
 * add t, or j if t is already taken; every T-subset is equally likely. The set is kept sorted in
 * pos itself (binary search, then a shift), so no memory is allocated.
 */
#include <assert.h>
#include <string.h>

#include "pe/pe.h"

/* Index of the first element of sorted a[0..n) that is >= x. */
static int lower_bound(const int *a, int n, int x) {
    int lo = 0, hi = n;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (a[mid] < x) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

void pe_sample_positions(Rng *rng, int N, int T, int *pos) {
    assert(T >= 1 && T <= N && (size_t)N <= CB_MAX_CONTEXT);
    int n = 0;
    for (int j = N - T; j < N; j++) {
        int t = (int)rng_below(rng, (uint32_t)j + 1u);
        int at = lower_bound(pos, n, t);
        if (at < n && pos[at] == t) {
            pos[n++] = j; /* every element so far is < j: j goes last */
            continue;
        }
        memmove(pos + at + 1, pos + at, (size_t)(n - at) * sizeof *pos);
        pos[at] = t;
        n++;
    }
}
