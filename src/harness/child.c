/* child.c — fork a unit of work, read its result message, reap it with its resource usage. */
#include "harness/child.h"

#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

static void msg_reserve(ChildMsg *m, size_t extra) {
    if (m->len + extra + 1 <= m->cap) return;
    size_t cap = m->cap ? m->cap : 4096;
    while (cap < m->len + extra + 1) cap *= 2;
    char *b = realloc(m->buf, cap);
    if (!b) abort(); /* in the child only: the parent records the crash */
    m->buf = b;
    m->cap = cap;
}

void msg_printf(ChildMsg *m, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    msg_reserve(m, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(m->buf + m->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    m->len += (size_t)n;
}

/* Free text goes on one line: newlines become spaces. */
static void one_line(char *dst, size_t n, const char *src) {
    snprintf(dst, n, "%s", src ? src : "");
    for (char *p = dst; *p; p++)
        if (*p == '\n' || *p == '\r') *p = ' ';
}

void msg_status(ChildMsg *m, const char *status, const char *error) {
    char line[CB_ERR_LEN];
    one_line(line, sizeof line, error);
    msg_printf(m, "S %s\n", status);
    if (error && *error) msg_printf(m, "E %s\n", line);
}

void msg_scalar(ChildMsg *m, const char *key, double value) { msg_printf(m, "K %s %.17g\n", key, value); }

void msg_metric(ChildMsg *m, const char *name, double value, int64_t count, const char *unit,
                const char *mode, int stride) {
    msg_printf(m, "M %s %.17g %lld %s %s %d\n", name, value, (long long)count,
               unit && *unit ? unit : "-", mode && *mode ? mode : "-", stride);
}

void msg_curve(ChildMsg *m, const char *name, double x, double y) {
    msg_printf(m, "C %s %.17g %.17g\n", name, x, y);
}

void msg_blob(ChildMsg *m, const void *data, size_t n) {
    msg_printf(m, "B %zu\n", n);
    msg_reserve(m, n);
    memcpy(m->buf + m->len, data, n);
    m->len += n;
}

static int write_all(int fd, const char *p, size_t n) {
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int parse_message(const char *buf, size_t len, ChildResult *res) {
    size_t i = 0, curve_cap = 0;
    while (i < len) {
        const char *line = buf + i;
        const char *nl = memchr(line, '\n', len - i);
        if (!nl) return -1;
        size_t ll = (size_t)(nl - line);
        char tmp[CB_ERR_LEN + 64];
        if (ll >= sizeof tmp) return -1;
        memcpy(tmp, line, ll);
        tmp[ll] = '\0';
        i += ll + 1;
        switch (tmp[0]) {
        case 'S':
            snprintf(res->status, sizeof res->status, "%.31s", tmp + 2);
            break;
        case 'E':
            snprintf(res->error, sizeof res->error, "%.511s", tmp + 2);
            break;
        case 'K':
            if (res->n_scalars < 32 &&
                sscanf(tmp + 2, "%31s %lf", res->scalar_keys[res->n_scalars], &res->scalars[res->n_scalars]) == 2)
                res->n_scalars++;
            break;
        case 'M': {
            if (res->n_metrics >= CHILD_MAX_METRICS) break;
            size_t k = res->n_metrics;
            MetricRecord *mr = &res->metrics[k];
            long long count;
            if (sscanf(tmp + 2, "%47s %lf %lld %23s %23s %d", res->metric_names[k], &mr->value, &count,
                       res->metric_units[k], res->metric_modes[k], &mr->stride) != 6)
                return -1;
            mr->name = res->metric_names[k];
            mr->count = count;
            mr->unit = strcmp(res->metric_units[k], "-") ? res->metric_units[k] : "";
            mr->mode = strcmp(res->metric_modes[k], "-") ? res->metric_modes[k] : NULL;
            mr->lo = mr->hi = NAN;
            res->n_metrics++;
            break;
        }
        case 'C': {
            if (res->n_curve == curve_cap) {
                curve_cap = curve_cap ? 2 * curve_cap : 64;
                CurveRecord *c = realloc(res->curve, curve_cap * sizeof *c);
                char(*names)[32] = realloc(res->curve_names, curve_cap * sizeof *names);
                if (c) res->curve = c;
                if (names) res->curve_names = names;
                if (!c || !names) return -1;
            }
            size_t k = res->n_curve;
            if (sscanf(tmp + 2, "%31s %lf %lf", res->curve_names[k], &res->curve[k].x, &res->curve[k].y) != 3)
                return -1;
            res->n_curve++;
            break;
        }
        case 'B': {
            size_t n;
            if (sscanf(tmp + 2, "%zu", &n) != 1 || n > len - i) return -1;
            res->blob = malloc(n ? n : 1);
            if (!res->blob) return -1;
            memcpy(res->blob, buf + i, n);
            res->blob_size = n;
            i += n;
            break;
        }
        default:
            return -1;
        }
    }
    for (size_t k = 0; k < res->n_curve; k++) res->curve[k].name = res->curve_names[k];
    return 0;
}

static void child_main(ChildWork work, void *arg, int threads, int fd) {
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    omp_set_num_threads(threads);
    openblas_set_num_threads(threads);
    ChildMsg msg = {0};
    int code = work(arg, &msg);
    int wrc = msg.len ? write_all(fd, msg.buf, msg.len) : 0;
    close(fd);
    _exit(wrc ? 3 : code);
}

int child_run(ChildWork work, void *arg, int threads, ChildResult *res, char *err) {
    memset(res, 0, sizeof *res);
    int fds[2];
    if (pipe(fds)) return cb_error(err, CB_EIO, "cannot create a pipe: %s", strerror(errno));
    fflush(NULL);
    double t0 = clock_now();
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return cb_error(err, CB_EIO, "cannot fork: %s", strerror(errno));
    }
    if (pid == 0) {
        close(fds[0]);
        child_main(work, arg, threads, fds[1]);
    }
    close(fds[1]);
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int read_failed = 0;
    for (;;) {
        if (len + 65536 > cap) {
            cap = cap ? 2 * cap : 1 << 20;
            char *b = realloc(buf, cap);
            if (!b) {
                read_failed = 1;
                break;
            }
            buf = b;
        }
        ssize_t r = read(fds[0], buf + len, cap - len);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        len += (size_t)r;
    }
    close(fds[0]);
    int wstatus = 0;
    struct rusage ru;
    while (wait4(pid, &wstatus, 0, &ru) < 0)
        if (errno != EINTR) {
            free(buf);
            return cb_error(err, CB_EIO, "cannot wait for child %d: %s", (int)pid, strerror(errno));
        }
    res->wall_seconds = clock_now() - t0;
    res->cpu_seconds = (double)ru.ru_utime.tv_sec + 1e-6 * (double)ru.ru_utime.tv_usec +
                       (double)ru.ru_stime.tv_sec + 1e-6 * (double)ru.ru_stime.tv_usec;
    res->peak_rss = (int64_t)ru.ru_maxrss * 1024;

    int parsed = !read_failed && parse_message(buf ? buf : "", len, res) == 0;
    free(buf);
    if (WIFSIGNALED(wstatus)) {
        int sig = WTERMSIG(wstatus);
        snprintf(res->status, sizeof res->status, "failed");
        snprintf(res->error, sizeof res->error, "child killed by signal %d (%s)", sig, strsignal(sig));
    } else if (!parsed || !res->status[0]) {
        snprintf(res->status, sizeof res->status, "failed");
        snprintf(res->error, sizeof res->error, "child exited with status %d without a valid result",
                 WEXITSTATUS(wstatus));
    }
    return CB_OK;
}

void child_result_free(ChildResult *res) {
    if (!res) return;
    free(res->curve);
    free(res->curve_names);
    free(res->blob);
    res->curve = NULL;
    res->curve_names = NULL;
    res->blob = NULL;
}

double child_scalar(const ChildResult *res, const char *key, double def) {
    for (int i = 0; i < res->n_scalars; i++)
        if (!strcmp(res->scalar_keys[i], key)) return res->scalars[i];
    return def;
}
