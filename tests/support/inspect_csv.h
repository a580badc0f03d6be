/*
 * inspect_csv.h — test support: run a scheme's inspect into memory and read back its uniform CSV
 * (quantity,head,i,j,value), so reference vectors are checked through the code path
 * `ctxbench inspect` uses. Failures are Criterion assertions.
 */
#ifndef CB_TEST_INSPECT_CSV_H
#define CB_TEST_INSPECT_CSV_H

#include "pe/pe.h"

/* One line of the inspect CSV; -1 for an empty field. */
typedef struct {
    char quantity[32];
    int head, i, j;
    double value;
} CsvRow;

typedef struct {
    CsvRow *rows; /* malloc'd; free(csv.rows) */
    int n;
} Csv;

/* Parses inspect output (header line first). */
Csv parse_csv(const char *text);
/* Runs pe's inspect with these arguments (pos may be NULL) and parses what it printed. */
Csv inspect_csv(const PeModel *pe, int context, int query, const int *pos, int npos);
/* The value of the unique row (quantity, head, i, j); -1 matches an empty field. */
double csv_get(const Csv *csv, const char *q, int head, int i, int j);
/* Rows of quantity q. */
int csv_count(const Csv *csv, const char *q);
/* |got - want| <= tol, with both values in the message. */
void assert_close(double got, double want, double tol, const char *what);

#endif
