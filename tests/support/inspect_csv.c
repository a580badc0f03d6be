/* inspect_csv.c — test support: a scheme's inspect output read back as rows (see inspect_csv.h). */
#include "inspect_csv.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

static int parse_field(const char *s, size_t len) {
    if (len == 0) return -1;
    char tmp[32];
    cr_assert_lt(len, sizeof tmp, "CSV field too long: '%.*s'", (int)len, s);
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    long long v;
    cr_assert_eq(parse_long(tmp, &v), 0, "CSV field '%s' is not an integer", tmp);
    return (int)v;
}

Csv parse_csv(const char *text) {
    const char *header = "quantity,head,i,j,value\n";
    cr_assert_eq(strncmp(text, header, strlen(header)), 0, "inspect output does not start with the header: '%.60s'",
                 text);
    Csv csv = {0};
    int cap = 0;
    for (const char *line = text + strlen(header); *line;) {
        const char *nl = strchr(line, '\n');
        cr_assert(nl, "inspect output line without newline: '%s'", line);
        const char *f[5];
        size_t fl[5];
        const char *s = line;
        for (int k = 0; k < 5; k++) {
            const char *e = k < 4 ? memchr(s, ',', (size_t)(nl - s)) : nl;
            cr_assert(e, "inspect line has fewer than 5 fields: '%.*s'", (int)(nl - line), line);
            f[k] = s;
            fl[k] = (size_t)(e - s);
            s = e + 1;
        }
        if (csv.n == cap) {
            cap = cap ? 2 * cap : 256;
            csv.rows = realloc(csv.rows, (size_t)cap * sizeof *csv.rows);
            cr_assert(csv.rows, "realloc failed");
        }
        CsvRow *r = &csv.rows[csv.n++];
        cr_assert(fl[0] > 0 && fl[0] < sizeof r->quantity, "bad quantity in '%.*s'", (int)(nl - line), line);
        memcpy(r->quantity, f[0], fl[0]);
        r->quantity[fl[0]] = '\0';
        r->head = parse_field(f[1], fl[1]);
        r->i = parse_field(f[2], fl[2]);
        r->j = parse_field(f[3], fl[3]);
        char val[64];
        cr_assert(fl[4] > 0 && fl[4] < sizeof val, "bad value in '%.*s'", (int)(nl - line), line);
        memcpy(val, f[4], fl[4]);
        val[fl[4]] = '\0';
        /* "nan" marks masked keys in the variants' rel_pos tables. */
        if (!strcmp(val, "nan") || !strcmp(val, "-nan")) r->value = NAN;
        else cr_assert_eq(parse_double(val, &r->value), 0, "value '%s' is not a number", val);
        line = nl + 1;
    }
    return csv;
}

/* Runs scheme->inspect into memory and parses what it printed. */
Csv inspect_csv(const PeModel *pe, int context, int query, const int *pos, int npos) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    cr_assert(f, "open_memstream failed");
    PeInspectArgs args = {.context = context, .query = query, .positions = pos, .n_positions = npos};
    char err[CB_ERR_LEN] = "";
    int rc = pe->scheme->inspect(pe, &args, f, err);
    fclose(f);
    cr_assert_eq(rc, CB_OK, "%s inspect returned %d: %s", pe->scheme->name, rc, err);
    Csv csv = parse_csv(buf);
    free(buf);
    return csv;
}

/* The value of the unique row (quantity, head, i, j); -1 matches an empty field. */
double csv_get(const Csv *csv, const char *q, int head, int i, int j) {
    int found = -1, count = 0;
    for (int k = 0; k < csv->n; k++) {
        const CsvRow *r = &csv->rows[k];
        if (strcmp(r->quantity, q) == 0 && r->head == head && r->i == i && r->j == j) {
            found = k;
            count++;
        }
    }
    cr_assert_eq(count, 1, "expected one row %s,head=%d,i=%d,j=%d in the inspect CSV, found %d", q, head, i, j,
                 count);
    return csv->rows[found].value;
}

int csv_count(const Csv *csv, const char *q) {
    int count = 0;
    for (int k = 0; k < csv->n; k++) count += strcmp(csv->rows[k].quantity, q) == 0;
    return count;
}

void assert_close(double got, double want, double tol, const char *what) {
    cr_assert(fabs(got - want) <= tol, "%s: got %.12g, want %.12g (|diff| %.3g > %.3g)", what, got, want,
              fabs(got - want), tol);
}

