/*
 * pe_fixture.h — test support: an encoding created and prepared with its own parameter and
 * gradient blocks (parameters at their seeded initial values), and the status of creating a spec.
 */
#ifndef CB_TEST_PE_FIXTURE_H
#define CB_TEST_PE_FIXTURE_H

#include "pe/pe.h"

typedef struct {
    PeModel pe;
    float *params, *grads;
} TestPe;

/* Creates spec with 2 layers, NH heads of HS dims and training context ctx, then prepares it for
   ctx. Failures are Criterion assertions. */
void make_pe(TestPe *tp, const char *spec, int NH, int HS, int ctx);
void free_pe(TestPe *tp);
/* pe_create's status for spec (2 layers, 4 heads of 16, L = 128); the encoding is destroyed. */
int create_status(const char *spec, char *err);

#endif
