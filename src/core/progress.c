/* progress.c — the in-place progress line (see progress.h). */
#include "core/progress.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"

void progress_init(Progress *p, FILE *out, size_t total) {
    memset(p, 0, sizeof *p);
    p->t0 = clock_now();
    p->total = total;
    if (!out || !isatty(fileno(out))) return;
    const char *term = getenv("TERM");
    p->out = out;
    p->color = !getenv("NO_COLOR") && !(term && !strcmp(term, "dumb"));
}

static void clock_text(double s, char *buf, size_t n) {
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, n, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else snprintf(buf, n, "%ld:%02ld", t / 60, t % 60);
}

void progress_show(Progress *p, int force, const char *fmt, ...) {
    if (!p->out) return;
    double now = clock_now();
    if (!force && now - p->last < 0.2) return;
    p->last = now;
    char text[256], elapsed[32], eta[32] = "?";
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    double spent = now - p->t0;
    clock_text(spent, elapsed, sizeof elapsed);
    if (p->done > 0 && p->done <= p->total) clock_text(spent / (double)p->done * (double)(p->total - p->done), eta, sizeof eta);
    /* \r and "erase to the end of the line" redraw in place; the line is kept short of 80 columns
       by the callers' texts. */
    fprintf(p->out, "\r\033[K%s[%zu/%zu]%s %s  elapsed %s  ETA %s", p->color ? "\033[1m" : "", p->done, p->total,
            p->color ? "\033[0m" : "", text, elapsed, eta);
    fflush(p->out);
}

void progress_clear(Progress *p) {
    if (!p->out) return;
    fputs("\r\033[K", p->out);
    fflush(p->out);
}

const char *progress_status(const Progress *p, const char *status, char *buf, size_t n) {
    if (!p->out || !p->color) return status;
    const char *c = !strcmp(status, "ok") ? "32" : !strcmp(status, "unsupported") ? "33" : "31";
    snprintf(buf, n, "\033[%sm%s\033[0m", c, status);
    return buf;
}
