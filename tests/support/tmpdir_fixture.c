/* tmpdir_fixture.c — test support: a scratch directory per test (see tmpdir_fixture.h). */
#include "tmpdir_fixture.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>

char tmpdir[256];

void make_tmpdir(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/cb-test-XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir), "mkdtemp failed");
}

void remove_tmpdir(void) {
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd)) {}
}
