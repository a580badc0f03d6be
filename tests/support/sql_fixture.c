/* sql_fixture.c — test support: read a results database with assertions (see sql_fixture.h). */
#include "sql_fixture.h"

#include <criterion/criterion.h>

sqlite3 *open_db(const char *path) {
    sqlite3 *db;
    cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK, "cannot open %s", path);
    return db;
}

long long scalar(sqlite3 *db, const char *sql) {
    sqlite3_stmt *st;
    cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK, "%s: %s", sql, sqlite3_errmsg(db));
    int rc = sqlite3_step(st);
    cr_assert_eq(rc, SQLITE_ROW, "%s returned no row: %s", sql, sqlite3_errmsg(db));
    long long v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}
