/*
 * tmpdir_fixture.h — test support: a scratch directory per test, for a TestSuite's .init/.fini.
 */
#ifndef CB_TEST_TMPDIR_FIXTURE_H
#define CB_TEST_TMPDIR_FIXTURE_H

extern char tmpdir[256]; /* the current test's directory, set by make_tmpdir */

void make_tmpdir(void);   /* a new /tmp/cb-test-XXXXXX; failure is a Criterion assertion */
void remove_tmpdir(void); /* removes it and everything in it */

#endif
