/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "basic/log.h"
#include "system/notify.h"
#include "system/process.h"
#include "basic/stop.h"

#define LINE_MAX_LEN 4096
#define DEFAULT_KILL_GRACE (5 * USEC_PER_SEC)

/* What the guard process reports on its report pipe when it ends. */
enum {
        REPORT_EXEC_FAILED = 1, /* followed by an int errno */
        REPORT_WAIT_STATUS = 2, /* followed by an int wait status */
};

typedef struct Report {
        int kind;
        int value;
} Report;

static void write_report(int fd, int kind, int value) {
        Report r = { .kind = kind, .value = value };
        ssize_t n;

        do
                n = write(fd, &r, sizeof(r));
        while (n < 0 && errno == EINTR);
}

static void guard_kill_group(int sig) {
        /* The agent died: take the whole group (the command and everything it started) with
         * us. The guard is in the group too, so this is the guard's end as well. */
        (void) kill(0, SIGKILL);
        _exit(128 + SIGKILL);
}

static void guard_ignore(int sig) {
}

/* Runs in the forked guard process: only async-signal-safe calls from here on. */
_noreturn_ static void run_guard(char *const argv[], const ProcessOptions *o, pid_t agent, int out_w,
                                 int err_w, int report_w) {
        struct sigaction sa_kill = { .sa_handler = guard_kill_group };
        struct sigaction sa_ignore = { .sa_handler = guard_ignore };
        sigset_t all;
        pid_t child;
        int status;

        (void) setpgid(0, 0);

        /* SIGTERM is how the agent asks the command to stop on a timeout; the guard lives on
         * until the command is gone, so that it can report how it ended. A handler, not
         * SIG_IGN, so that the command does not inherit an ignored SIGTERM. */
        (void) sigaction(SIGTERM, &sa_ignore, NULL);
        (void) sigaction(SIGUSR2, &sa_kill, NULL);
        (void) prctl(PR_SET_PDEATHSIG, SIGUSR2);
        if (getppid() != agent)
                guard_kill_group(0);

        sigemptyset(&all);
        (void) sigprocmask(SIG_SETMASK, &all, NULL);

        child = fork();
        if (child < 0) {
                write_report(report_w, REPORT_EXEC_FAILED, errno);
                _exit(127);
        }
        if (child == 0) {
                int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

                if (null_fd < 0 || dup2(null_fd, STDIN_FILENO) < 0 || dup2(out_w, STDOUT_FILENO) < 0 ||
                    dup2(err_w, STDERR_FILENO) < 0) {
                        write_report(report_w, REPORT_EXEC_FAILED, errno);
                        _exit(127);
                }
                if (o->cwd && chdir(o->cwd) < 0) {
                        write_report(report_w, REPORT_EXEC_FAILED, errno);
                        _exit(127);
                }
                if (o->env)
                        execvpe(argv[0], argv, o->env);
                else
                        execvp(argv[0], argv);
                write_report(report_w, REPORT_EXEC_FAILED, errno);
                _exit(127);
        }

        close(out_w);
        close(err_w);

        while (waitpid(child, &status, 0) < 0)
                if (errno != EINTR) {
                        status = W_EXITCODE(127, 0);
                        break;
                }
        write_report(report_w, REPORT_WAIT_STATUS, status);
        _exit(0);
}

typedef struct Stream {
        int fd;
        const char *what; /* "stdout" or "stderr" */
        char buf[LINE_MAX_LEN];
        size_t len;
        /* capture */
        char *cap;
        size_t cap_len, cap_alloc, cap_max;
        bool capturing, overflow;
        const ProcessOptions *o;
} Stream;

static void emit_line(Stream *s, const char *name, int level, const char *line, size_t len) {
        if (s->o->on_line && s->o->on_line(line, len, s->o->userdata))
                return;
        log_full_errno(level, 0, "%s: %.*s", name, (int) len, line);
}

static void stream_emit_lines(Stream *s, const char *name, int level, bool flush) {
        size_t start = 0;

        for (size_t i = 0; i < s->len; i++)
                if (s->buf[i] == '\n') {
                        emit_line(s, name, level, s->buf + start, i - start);
                        start = i + 1;
                }
        /* A line longer than the buffer, or what is left at the end, goes out as it is. */
        if (start == 0 && s->len == sizeof(s->buf))
                flush = true;
        if (flush && start < s->len) {
                emit_line(s, name, level, s->buf + start, s->len - start);
                start = s->len;
        }
        memmove(s->buf, s->buf + start, s->len - start);
        s->len -= start;
}

static int stream_capture(Stream *s, const char *data, size_t n) {
        if (s->overflow)
                return 0;
        if (s->cap_len + n > s->cap_max) {
                s->overflow = true;
                return -EFBIG;
        }
        if (s->cap_len + n + 1 > s->cap_alloc) {
                size_t a = MAX(s->cap_alloc * 2, s->cap_len + n + 1);
                char *p = realloc(s->cap, a);
                if (!p)
                        return -ENOMEM;
                s->cap = p;
                s->cap_alloc = a;
        }
        memcpy(s->cap + s->cap_len, data, n);
        s->cap_len += n;
        s->cap[s->cap_len] = 0;
        return 0;
}

/* Reads what is available. Returns 1 at EOF, 0 otherwise, <0 on error. */
static int stream_read(Stream *s, const char *name, int level) {
        for (;;) {
                ssize_t n;

                if (s->capturing) {
                        char tmp[8192];

                        n = read(s->fd, tmp, sizeof(tmp));
                        if (n > 0) {
                                int r = stream_capture(s, tmp, (size_t) n);
                                if (r < 0)
                                        return r;
                                continue;
                        }
                } else {
                        n = read(s->fd, s->buf + s->len, sizeof(s->buf) - s->len);
                        if (n > 0) {
                                s->len += (size_t) n;
                                stream_emit_lines(s, name, level, false);
                                continue;
                        }
                }
                if (n == 0)
                        return 1;
                if (errno == EINTR)
                        continue;
                if (errno == EAGAIN)
                        return 0;
                return -errno;
        }
}

static int pidfd_open_wrapper(pid_t pid) {
        return (int) syscall(SYS_pidfd_open, pid, 0);
}

static const char *basename_of(const char *p) {
        const char *s = strrchr(p, '/');
        return s ? s + 1 : p;
}

/* One run of a command: its guard, the streams read from it, and what happened to it. */
typedef struct Child {
        const ProcessOptions *o;
        const char *name;
        int level;
        Stream streams[2];  /* stdout, stderr */
        int report_fd;      /* the guard's report (exec failure or the command's wait status) */
        int pidfd;          /* of the guard, when the kernel has pidfds */
        pid_t guard;
        usec_t start, deadline, grace;
        bool timed_out, stopped, killed;
        int status;         /* the guard's own wait status */
        int r;              /* a failure of the pump itself (poll, output over capture_max) */
} Child;

static void child_done(Child *c) {
        for (int i = 0; i < 2; i++)
                closep(&c->streams[i].fd);
        closep(&c->report_fd);
        closep(&c->pidfd);
        free(c->streams[0].cap);
        c->streams[0].cap = NULL;
}

/* Pipes for stdout, stderr and the report, and the guard (run_guard) in a process group of its
 * own, which starts the command. */
static int child_spawn(Child *c, char *const argv[], Error *e) {
        int out[2] = { -EBADF, -EBADF }, err[2] = { -EBADF, -EBADF }, report[2] = { -EBADF, -EBADF };
        pid_t agent = getpid();
        int r = 0;

        if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0 || pipe2(report, O_CLOEXEC) < 0) {
                r = error_set(e, -errno, "%s: %m", c->name);
                goto fail;
        }
        fflush(stdout);
        fflush(stderr);

        c->guard = fork();
        if (c->guard < 0) {
                r = error_set(e, -errno, "%s: %m", c->name);
                goto fail;
        }
        if (c->guard == 0) {
                close(out[0]);
                close(err[0]);
                close(report[0]);
                run_guard(argv, c->o, agent, out[1], err[1], report[1]);
        }
        /* Also set the group from this side, so that a kill(-guard) right away cannot miss. */
        (void) setpgid(c->guard, c->guard);

        c->streams[0].fd = TAKE_FD(out[0]);
        c->streams[1].fd = TAKE_FD(err[0]);
        c->report_fd = TAKE_FD(report[0]);
        (void) fcntl(c->streams[0].fd, F_SETFL, O_NONBLOCK);
        (void) fcntl(c->streams[1].fd, F_SETFL, O_NONBLOCK);
        c->pidfd = pidfd_open_wrapper(c->guard);
        c->deadline = c->o->timeout > 0 ? c->start + c->o->timeout : USEC_INFINITY;
        c->grace = c->o->kill_grace ?: DEFAULT_KILL_GRACE;
fail:
        for (int i = 0; i < 2; i++) {
                closep(&out[i]);
                closep(&err[i]);
                closep(&report[i]);
        }
        return r;
}

/* A stop request or the deadline: SIGTERM to the group, then SIGKILL after the grace period.
 * Returns the milliseconds poll() may wait (-1: no limit). */
static int child_enforce_deadline(Child *c) {
        usec_t now = now_usec(CLOCK_MONOTONIC);
        int timeout_ms = -1;

        if (!c->o->keep_on_stop && stop_requested() && !c->stopped && !c->timed_out) {
                /* Asked to stop: the command goes the way of a timeout. */
                c->stopped = true;
                (void) kill(-c->guard, SIGTERM);
                c->deadline = now + c->grace;
        } else if (now >= c->deadline) {
                if (!c->timed_out && !c->stopped) {
                        c->timed_out = true;
                        (void) kill(-c->guard, SIGTERM);
                        c->deadline = now + c->grace;
                } else if (!c->killed) {
                        c->killed = true;
                        (void) kill(-c->guard, SIGKILL);
                        c->deadline = USEC_INFINITY;
                }
        }
        if (c->deadline != USEC_INFINITY)
                timeout_ms = (int) MIN((c->deadline - MIN(now, c->deadline)) / USEC_PER_MSEC + 1, (usec_t) 60000);
        /* A long build must not look like a hung agent to the service manager. */
        notify_watchdog();
        if (notify_watchdog_interval() != USEC_INFINITY) {
                int w = (int) MIN(notify_watchdog_interval() / USEC_PER_MSEC + 1, (usec_t) 60000);
                if (timeout_ms < 0 || timeout_ms > w)
                        timeout_ms = w;
        }
        return timeout_ms;
}

/* Reads both pipes until the guard is gone. Once it is gone, the command has ended: what is
 * left is drained, but EOF is not waited for, since something the command started in the
 * background may still hold the pipes open. */
static void child_pump(Child *c) {
        bool guard_gone = false;

        while (!guard_gone) {
                struct pollfd p[4];
                nfds_t n = 0;
                int idx[2] = { -1, -1 };
                int timeout_ms = child_enforce_deadline(c);

                for (int i = 0; i < 2; i++)
                        if (c->streams[i].fd >= 0) {
                                idx[i] = (int) n;
                                p[n++] = (struct pollfd) { .fd = c->streams[i].fd, .events = POLLIN };
                        }
                if (c->pidfd >= 0)
                        p[n++] = (struct pollfd) { .fd = c->pidfd, .events = POLLIN };
                if (!c->o->keep_on_stop && !c->stopped && stop_fd() >= 0)
                        p[n++] = (struct pollfd) { .fd = stop_fd(), .events = POLLIN };
                else if (timeout_ms < 0 || timeout_ms > 100)
                        timeout_ms = 100; /* no pidfd: look at the guard every 100 ms */

                if (poll(p, n, timeout_ms) < 0 && errno != EINTR) {
                        c->r = -errno;
                        (void) kill(-c->guard, SIGKILL);
                        c->killed = true;
                }

                for (int i = 0; i < 2; i++) {
                        int k;

                        if (idx[i] < 0 || !(p[idx[i]].revents & (POLLIN | POLLHUP | POLLERR)))
                                continue;
                        k = stream_read(&c->streams[i], c->name, c->level);
                        if (k == -EFBIG && !c->killed) {
                                c->r = -EFBIG;
                                (void) kill(-c->guard, SIGKILL);
                                c->killed = true;
                        }
                        if (k != 0 && k != -EFBIG)
                                closep(&c->streams[i].fd);
                }

                if (waitpid(c->guard, &c->status, WNOHANG) == c->guard)
                        guard_gone = true;
        }

        for (int i = 0; i < 2; i++)
                if (c->streams[i].fd >= 0) {
                        (void) stream_read(&c->streams[i], c->name, c->level);
                        closep(&c->streams[i].fd);
                }
        for (int i = 0; i < 2; i++)
                if (!c->streams[i].capturing)
                        stream_emit_lines(&c->streams[i], c->name, c->level, true);
}

/* What happened to the command: the guard's report, into the result and an error. */
static int child_reap(Child *c, char *const argv[], ProcessResult *result, Error *e) {
        Report rep = {};

        if (read(c->report_fd, &rep, sizeof(rep)) != (ssize_t) sizeof(rep))
                rep = (Report) { .kind = REPORT_WAIT_STATUS, .value = c->status }; /* the guard itself was killed */

        result->timed_out = c->timed_out;
        result->duration = now_usec(CLOCK_MONOTONIC) - c->start;

        if (c->r == -EFBIG)
                return error_set(e, c->r, "%s wrote more than %zu bytes of output", c->name, c->o->capture_max);
        if (c->r < 0)
                return error_set(e, c->r, "%s: %s", c->name, strerror(-c->r));
        if (rep.kind == REPORT_EXEC_FAILED)
                return error_set(e, -rep.value, "failed to start %s: %s", argv[0], strerror(rep.value));
        if (WIFEXITED(rep.value)) {
                result->exited = true;
                result->exit_status = WEXITSTATUS(rep.value);
        } else if (WIFSIGNALED(rep.value))
                result->signal = WTERMSIG(rep.value);

        if (c->stopped)
                return error_set(e, -ECANCELED, "%s was stopped: the agent was asked to stop", c->name);
        if (c->timed_out)
                return error_set(e, -ETIMEDOUT, "%s did not finish within %llu s and was killed", c->name,
                                 (unsigned long long) (c->o->timeout / USEC_PER_SEC));
        if (result->exited && result->exit_status != 0)
                return error_set(e, -EPROTO, "%s exited with status %d", c->name, result->exit_status);
        if (!result->exited)
                return error_set(e, -EPROTO, "%s was killed by signal %s", c->name, strsignal(result->signal));
        return 0;
}

int process_run(char *const argv[], const ProcessOptions *opts, ProcessResult *ret, Error *reterr) {
        static const ProcessOptions defaults = {};
        const ProcessOptions *o = opts ?: &defaults;
        Child c = {
                .o = o,
                .name = argv && argv[0] ? (o->name ?: basename_of(argv[0])) : NULL,
                .level = o->log_level ?: LOG_INFO,
                .streams = {
                        { .fd = -EBADF, .what = "stdout", .capturing = !!o->capture, .cap_max = o->capture_max, .o = o },
                        { .fd = -EBADF, .what = "stderr", .o = o },
                },
                .report_fd = -EBADF,
                .pidfd = -EBADF,
                .start = now_usec(CLOCK_MONOTONIC),
        };
        ProcessResult result = {};
        int r;

        if (!argv || !argv[0])
                return -EINVAL;
        if (stop_requested() && !o->keep_on_stop)
                return error_set(reterr, -ECANCELED, "%s was not started: the agent was asked to stop", c.name);

        r = child_spawn(&c, argv, reterr);
        if (r >= 0) {
                child_pump(&c);
                r = child_reap(&c, argv, &result, reterr);
        }
        if (r >= 0 && o->capture) {
                *o->capture = c.streams[0].cap ?: strdup("");
                c.streams[0].cap = NULL;
                if (!*o->capture)
                        r = -ENOMEM;
        }
        child_done(&c);
        if (ret)
                *ret = result;
        return r;
}
