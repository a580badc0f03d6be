/*
 * test_progress.c — the progress line: shown on a terminal (a pseudo-terminal made by script(1))
 * with cases done and total, phase and ETA; coloured unless NO_COLOR is set; and absent when
 * stderr is a file, where a run writes nothing but its result lines.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "support/tmpdir_fixture.h"

TestSuite(progress, .init = make_tmpdir, .fini = remove_tmpdir);

/* Runs the tiny suite; `tty` wraps it in script(1) so stderr is a terminal. Returns what it wrote
   to stderr (malloc'd). */
static char *run(int tty, const char *env, const char *db) {
    const char *bin = getenv("CB_BINARY"), *src = getenv("CB_SOURCE_DIR");
    cr_assert_not_null(bin, "CB_BINARY is not set (run through ctest)");
    char cmd[2048], out[300];
    snprintf(out, sizeof out, "%s/stderr.txt", tmpdir);
    if (tty)
        snprintf(cmd, sizeof cmd,
                 "cd '%s' && %s script -qec \"'%s' run tests/suites/e2e_tiny.ini --db '%s/%s' >/dev/null\" "
                 "/dev/null > '%s' 2>&1",
                 src ? src : ".", env, bin, tmpdir, db, out);
    else
        snprintf(cmd, sizeof cmd, "cd '%s' && %s '%s' run tests/suites/e2e_tiny.ini --db '%s/%s' >/dev/null 2>'%s'",
                 src ? src : ".", env, bin, tmpdir, db, out);
    cr_assert_eq(system(cmd), 0, "command failed: %s", cmd);
    FILE *f = fopen(out, "rb");
    cr_assert_not_null(f);
    char *buf = calloc(1, 1 << 20);
    size_t n = fread(buf, 1, (1 << 20) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

Test(progress, a_file_gets_nothing_but_result_lines) {
    char *err = run(0, "", "a.db");
    cr_assert_null(strchr(err, '\r'), "a carriage return in: %s", err);
    cr_assert_null(strchr(err, '\033'), "an escape sequence in: %s", err);
    int lines = 0;
    for (char *line = strtok(err, "\n"); line; line = strtok(NULL, "\n"), lines++)
        cr_assert(!strncmp(line, "run ", 4) || !strncmp(line, "[model ", 7) || !strncmp(line, "[case ", 6),
                  "not a result line: '%s'", line);
    cr_assert_eq(lines, 1 + 3 + 9, "%d lines (a run line, 3 models, 9 cases expected)", lines);
    free(err);
}

Test(progress, a_terminal_shows_cases_done_phase_and_eta_in_colour) {
    char *out = run(1, "", "b.db");
    cr_assert_not_null(strstr(out, "/9]"), "no cases-done counter in: %s", out);
    cr_assert_not_null(strstr(out, "ETA"), "no ETA in: %s", out);
    cr_assert_not_null(strstr(out, "training"), "no training phase in: %s", out);
    cr_assert_not_null(strstr(out, "evaluating perplexity"), "no evaluation phase in: %s", out);
    cr_assert_not_null(strstr(out, "\r\033[K"), "the line is not redrawn in place");
    cr_assert_not_null(strstr(out, "\033[32mok"), "no coloured status in: %s", out);
    free(out);
}

Test(progress, no_color_turns_the_colours_off_but_keeps_the_line) {
    char *out = run(1, "NO_COLOR=1", "c.db");
    cr_assert_not_null(strstr(out, "ETA"), "no progress line with NO_COLOR");
    cr_assert_null(strstr(out, "\033[3"), "a colour code despite NO_COLOR");
    cr_assert_null(strstr(out, "\033[1m"), "bold despite NO_COLOR");
    free(out);
}
