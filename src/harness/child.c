/* child.c — fork a unit of work, read its result message, reap it with its resource usage. */
#include "harness/child.h"

#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
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

void msg_metric_interval(ChildMsg *m, const char *name, double value, double lo, double hi, int64_t count,
                         const char *unit, const char *mode, int stride) {
    msg_printf(m, "M %s %.17g %lld %s %s %d %.17g %.17g\n", name, value, (long long)count,
               unit && *unit ? unit : "-", mode && *mode ? mode : "-", stride, lo, hi);
}

void msg_metric(ChildMsg *m, const char *name, double value, int64_t count, const char *unit,
                const char *mode, int stride) {
    msg_metric_interval(m, name, value, NAN, NAN, count, unit, mode, stride);
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
            if (sscanf(tmp + 2, "%47s %lf %lld %23s %23s %d %lf %lf", res->metric_names[k], &mr->value, &count,
                       res->metric_units[k], res->metric_modes[k], &mr->stride, &mr->lo, &mr->hi) != 8)
                return -1;
            mr->name = res->metric_names[k];
            mr->count = count;
            mr->unit = strcmp(res->metric_units[k], "-") ? res->metric_units[k] : "";
            mr->mode = strcmp(res->metric_modes[k], "-") ? res->metric_modes[k] : NULL;
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

/* ---- signals ---- */

static volatile sig_atomic_t stop_signal;   /* SIGINT or SIGTERM received, 0 if none */
static volatile sig_atomic_t running_child; /* pid of the child being waited for, 0 if none */
static struct sigaction saved_int, saved_term;
static int catching;

static void on_stop_signal(int sig) {
    int saved = errno;
    stop_signal = sig;
    if (running_child > 0) kill((pid_t)running_child, SIGKILL);
    errno = saved;
}

void child_catch_signals(void) {
    if (catching) return;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: a blocking poll or read returns EINTR and the loop looks again */
    stop_signal = 0;
    sigaction(SIGINT, &sa, &saved_int);
    sigaction(SIGTERM, &sa, &saved_term);
    catching = 1;
}

void child_release_signals(void) {
    if (!catching) return;
    sigaction(SIGINT, &saved_int, NULL);
    sigaction(SIGTERM, &saved_term, NULL);
    catching = 0;
}

int child_stop_signal(void) { return (int)stop_signal; }

/* ---- the child ---- */

/* Address space of this process in bytes (first field of /proc/self/statm), 0 if unknown. */
static size_t address_space_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long pages = 0;
    if (!f) return 0;
    if (fscanf(f, "%lu", &pages) != 1) pages = 0;
    fclose(f);
    return (size_t)pages * (size_t)sysconf(_SC_PAGESIZE);
}

static void child_main(ChildWork work, void *arg, int threads, const ChildLimits *lim, pid_t parent, int fd,
                       const sigset_t *mask) {
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    sigprocmask(SIG_SETMASK, mask, NULL);
    /* Die with the runner: a SIGKILLed parent must not leave this child computing. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(4);
    if (lim && lim->memory_bytes) {
        size_t base = address_space_bytes();
        struct rlimit rl;
        rl.rlim_cur = rl.rlim_max = (rlim_t)(base + lim->memory_bytes);
        if (!base || setrlimit(RLIMIT_AS, &rl)) _exit(5);
    }
    cb_flush_denormals();
    omp_set_num_threads(threads);
    openblas_set_num_threads(threads);
    ChildMsg msg = {0};
    int code = work(arg, &msg);
    int wrc = msg.len ? write_all(fd, msg.buf, msg.len) : 0;
    close(fd);
    _exit(wrc ? 3 : code);
}

/* ---- the parent ---- */

/* Reads the child's message until EOF, killing the child when the deadline (0 = none) passes or
   a stop signal arrives. Sets *timed_out. Returns 0, or -1 if the buffer could not grow. */
static int read_result(int fd, pid_t pid, double deadline, char **bufp, size_t *lenp, int *timed_out) {
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int killed = 0;
    for (;;) {
        if (stop_signal && !killed) {
            kill(pid, SIGKILL);
            killed = 1;
        }
        int wait_ms = -1;
        if (deadline > 0 && !killed) {
            double left = deadline - clock_now();
            if (left <= 0) {
                kill(pid, SIGKILL);
                killed = *timed_out = 1;
                continue;
            }
            wait_ms = left > 3600.0 ? 3600000 : (int)(left * 1000.0) + 1;
        }
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int pr = poll(&p, 1, wait_ms);
        if (pr < 0 && errno == EINTR) continue;
        if (pr == 0) continue; /* the deadline check above kills */
        if (len + 65536 > cap) {
            size_t ncap = cap ? 2 * cap : 1 << 20;
            char *b = realloc(buf, ncap);
            if (!b) {
                kill(pid, SIGKILL);
                free(buf);
                *bufp = NULL;
                *lenp = 0;
                return -1;
            }
            buf = b;
            cap = ncap;
        }
        ssize_t r = read(fd, buf + len, cap - len);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        len += (size_t)r;
    }
    *bufp = buf;
    *lenp = len;
    return 0;
}

static void describe_limits(const ChildLimits *lim, char *out, size_t n) {
    snprintf(out, n, "the memory limit of %zu MiB", lim->memory_bytes >> 20);
}

int child_run_limited(ChildWork work, void *arg, int threads, const ChildLimits *lim, ChildResult *res,
                      char *err) {
    memset(res, 0, sizeof *res);
    int fds[2];
    if (pipe(fds)) return cb_error(err, CB_EIO, "cannot create a pipe: %s", strerror(errno));
    fflush(NULL);
    /* SIGINT/SIGTERM wait until the child's pid is known to the handler. */
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigprocmask(SIG_BLOCK, &block, &old);
    pid_t parent = getpid();
    double t0 = clock_now();
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        sigprocmask(SIG_SETMASK, &old, NULL);
        close(fds[0]);
        close(fds[1]);
        return cb_error(err, CB_EIO, "cannot fork: %s", strerror(e));
    }
    if (pid == 0) {
        close(fds[0]);
        child_main(work, arg, threads, lim, parent, fds[1], &old);
    }
    running_child = (sig_atomic_t)pid;
    sigprocmask(SIG_SETMASK, &old, NULL);
    close(fds[1]);
    double deadline = lim && lim->seconds > 0 ? t0 + lim->seconds : 0;
    char *buf = NULL;
    size_t len = 0;
    int timed_out = 0;
    int read_failed = read_result(fds[0], pid, deadline, &buf, &len, &timed_out);
    close(fds[0]);
    int wstatus = 0;
    struct rusage ru;
    while (wait4(pid, &wstatus, 0, &ru) < 0)
        if (errno != EINTR) {
            running_child = 0;
            free(buf);
            return cb_error(err, CB_EIO, "cannot wait for child %d: %s", (int)pid, strerror(errno));
        }
    running_child = 0;
    res->wall_seconds = clock_now() - t0;
    res->cpu_seconds = (double)ru.ru_utime.tv_sec + 1e-6 * (double)ru.ru_utime.tv_usec +
                       (double)ru.ru_stime.tv_sec + 1e-6 * (double)ru.ru_stime.tv_usec;
    res->peak_rss = (int64_t)ru.ru_maxrss * 1024;

    int parsed = !read_failed && parse_message(buf ? buf : "", len, res) == 0;
    free(buf);
    int mem_limited = lim && lim->memory_bytes;
    char limit_text[96] = "";
    if (mem_limited) describe_limits(lim, limit_text, sizeof limit_text);
    int code = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1;
    if (stop_signal && (WIFSIGNALED(wstatus) || !parsed || !res->status[0])) {
        snprintf(res->status, sizeof res->status, "interrupted");
        snprintf(res->error, sizeof res->error, "killed on signal %d (%s) to the runner", (int)stop_signal,
                 strsignal((int)stop_signal));
    } else if (timed_out) {
        snprintf(res->status, sizeof res->status, "timeout");
        snprintf(res->error, sizeof res->error, "exceeded the time limit of %g s (killed after %.1f s)",
                 lim->seconds, res->wall_seconds);
    } else if (!strcmp(res->status, "oom") && parsed) {
        if (mem_limited) {
            size_t n = strlen(res->error);
            snprintf(res->error + n, sizeof res->error - n, "%s(%s)", n ? " " : "", limit_text);
        }
    } else if (code == 4 || code == 5) {
        snprintf(res->status, sizeof res->status, "failed");
        snprintf(res->error, sizeof res->error, "%s",
                 code == 4 ? "the runner died before the child started" : "cannot set the memory limit");
    } else if (WIFSIGNALED(wstatus) || !parsed || !res->status[0]) {
        char why[160];
        if (WIFSIGNALED(wstatus))
            snprintf(why, sizeof why, "child killed by signal %d (%s)", WTERMSIG(wstatus), strsignal(WTERMSIG(wstatus)));
        else
            snprintf(why, sizeof why, "child exited with status %d without a valid result", code);
        /* Libraries that cannot report a failed allocation (BLAS buffers, thread stacks) abort or
           exit instead: under a memory limit that is the likely cause. */
        if (mem_limited) {
            snprintf(res->status, sizeof res->status, "oom");
            snprintf(res->error, sizeof res->error, "%s under %s (most likely out of memory)", why, limit_text);
        } else {
            snprintf(res->status, sizeof res->status, "failed");
            snprintf(res->error, sizeof res->error, "%s", why);
        }
    }
    return CB_OK;
}

int child_run(ChildWork work, void *arg, int threads, ChildResult *res, char *err) {
    return child_run_limited(work, arg, threads, NULL, res, err);
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
