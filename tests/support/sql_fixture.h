/*
 * sql_fixture.h — test support: read a results database with assertions.
 */
#ifndef CB_TEST_SQL_FIXTURE_H
#define CB_TEST_SQL_FIXTURE_H

#include <sqlite3.h>

/* Opens path read-only; a failure is a Criterion assertion. */
sqlite3 *open_db(const char *path);
/* The first column of the first row of sql as an integer; no row is an assertion failure. */
long long scalar(sqlite3 *db, const char *sql);

#endif
