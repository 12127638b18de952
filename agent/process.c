/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "log.h"
#include "notify.h"
#include "process.h"
#include "stop.h"

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

int process_run(char *const argv[], const ProcessOptions *opts, ProcessResult *ret, Error *reterr) {
        static const ProcessOptions defaults = {};
        const ProcessOptions *o = opts ?: &defaults;
        const char *name = o->name ?: basename_of(argv[0]);
        int level = o->log_level ?: LOG_INFO;
        int out[2] = { -EBADF, -EBADF }, err[2] = { -EBADF, -EBADF }, report[2] = { -EBADF, -EBADF };
        _cleanup_close_ int pidfd = -EBADF;
        Stream streams[2] = {
                { .fd = -EBADF, .what = "stdout", .capturing = !!o->capture, .cap_max = o->capture_max, .o = o },
                { .fd = -EBADF, .what = "stderr", .o = o },
        };
        usec_t start = now_usec(CLOCK_MONOTONIC), deadline, grace;
        bool timed_out = false, stopped = false, killed = false, guard_gone = false;
        ProcessResult result = {};
        Report rep = {};
        pid_t guard, agent = getpid();
        int r = 0, status = 0;

        if (!argv || !argv[0])
                return -EINVAL;
        if (stop_requested() && !o->keep_on_stop)
                return error_set(reterr, -ECANCELED, "%s was not started: the agent was asked to stop", name);

        if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0 || pipe2(report, O_CLOEXEC) < 0) {
                r = -errno;
                goto finish;
        }
        streams[0].fd = TAKE_FD(out[0]);
        streams[1].fd = TAKE_FD(err[0]);

        fflush(stdout);
        fflush(stderr);

        guard = fork();
        if (guard < 0) {
                r = -errno;
                goto finish;
        }
        if (guard == 0) {
                close(streams[0].fd);
                close(streams[1].fd);
                close(report[0]);
                run_guard(argv, o, agent, out[1], err[1], report[1]);
        }

        /* Also set the group from this side, so that a kill(-guard) right away cannot miss. */
        (void) setpgid(guard, guard);

        close(TAKE_FD(out[1]));
        close(TAKE_FD(err[1]));
        close(TAKE_FD(report[1]));
        (void) fcntl(streams[0].fd, F_SETFL, O_NONBLOCK);
        (void) fcntl(streams[1].fd, F_SETFL, O_NONBLOCK);

        pidfd = pidfd_open_wrapper(guard);
        deadline = o->timeout > 0 ? start + o->timeout : USEC_INFINITY;
        grace = o->kill_grace ?: DEFAULT_KILL_GRACE;

        /* Read both pipes until the guard is gone. Once it is gone, the command has ended:
         * drain what is left, but do not wait for EOF, since something the command started
         * in the background may still hold the pipes open. */
        while (!guard_gone) {
                struct pollfd p[4];
                nfds_t n = 0;
                int idx[2] = { -1, -1 };
                int timeout_ms = -1;
                usec_t now = now_usec(CLOCK_MONOTONIC);

                if (!o->keep_on_stop && stop_requested() && !stopped && !timed_out) {
                        /* Asked to stop: the command goes the way of a timeout. */
                        stopped = true;
                        (void) kill(-guard, SIGTERM);
                        deadline = now + grace;
                } else if (now >= deadline) {
                        if (!timed_out && !stopped) {
                                timed_out = true;
                                (void) kill(-guard, SIGTERM);
                                deadline = now + grace;
                        } else if (!killed) {
                                killed = true;
                                (void) kill(-guard, SIGKILL);
                                deadline = USEC_INFINITY;
                        }
                }
                if (deadline != USEC_INFINITY)
                        timeout_ms = (int) MIN((deadline - MIN(now, deadline)) / USEC_PER_MSEC + 1, (usec_t) 60000);
                /* A long build must not look like a hung agent to the service manager. */
                notify_watchdog();
                if (notify_watchdog_interval() != USEC_INFINITY) {
                        int w = (int) MIN(notify_watchdog_interval() / USEC_PER_MSEC + 1, (usec_t) 60000);
                        if (timeout_ms < 0 || timeout_ms > w)
                                timeout_ms = w;
                }

                for (int i = 0; i < 2; i++)
                        if (streams[i].fd >= 0) {
                                idx[i] = (int) n;
                                p[n++] = (struct pollfd) { .fd = streams[i].fd, .events = POLLIN };
                        }
                if (pidfd >= 0)
                        p[n++] = (struct pollfd) { .fd = pidfd, .events = POLLIN };
                if (!o->keep_on_stop && !stopped && stop_fd() >= 0)
                        p[n++] = (struct pollfd) { .fd = stop_fd(), .events = POLLIN };
                else if (timeout_ms < 0 || timeout_ms > 100)
                        timeout_ms = 100; /* no pidfd: look at the guard every 100 ms */

                if (poll(p, n, timeout_ms) < 0 && errno != EINTR) {
                        r = -errno;
                        (void) kill(-guard, SIGKILL);
                        killed = true;
                }

                for (int i = 0; i < 2; i++) {
                        int k;

                        if (idx[i] < 0 || !(p[idx[i]].revents & (POLLIN | POLLHUP | POLLERR)))
                                continue;
                        k = stream_read(&streams[i], name, level);
                        if (k == -EFBIG && !killed) {
                                r = -EFBIG;
                                (void) kill(-guard, SIGKILL);
                                killed = true;
                        }
                        if (k != 0 && k != -EFBIG) {
                                close(streams[i].fd);
                                streams[i].fd = -EBADF;
                        }
                }

                if (waitpid(guard, &status, WNOHANG) == guard)
                        guard_gone = true;
        }

        for (int i = 0; i < 2; i++)
                if (streams[i].fd >= 0) {
                        (void) stream_read(&streams[i], name, level);
                        close(streams[i].fd);
                        streams[i].fd = -EBADF;
                }
        for (int i = 0; i < 2; i++)
                if (!streams[i].capturing)
                        stream_emit_lines(&streams[i], name, level, true);

        if (read(report[0], &rep, sizeof(rep)) != (ssize_t) sizeof(rep))
                rep = (Report) { .kind = REPORT_WAIT_STATUS, .value = status }; /* the guard itself was killed */

        result.timed_out = timed_out;
        result.duration = now_usec(CLOCK_MONOTONIC) - start;

        if (r < 0) {
                if (r == -EFBIG)
                        error_set(reterr, r, "%s wrote more than %zu bytes of output", name, o->capture_max);
                else
                        error_set(reterr, r, "%s: %s", name, strerror(-r));
                goto finish;
        }
        if (rep.kind == REPORT_EXEC_FAILED) {
                r = error_set(reterr, -rep.value, "failed to start %s: %s", argv[0], strerror(rep.value));
                goto finish;
        }
        if (WIFEXITED(rep.value)) {
                result.exited = true;
                result.exit_status = WEXITSTATUS(rep.value);
        } else if (WIFSIGNALED(rep.value))
                result.signal = WTERMSIG(rep.value);

        if (stopped)
                r = error_set(reterr, -ECANCELED, "%s was stopped: the agent was asked to stop", name);
        else if (timed_out)
                r = error_set(reterr, -ETIMEDOUT, "%s did not finish within %llu s and was killed", name,
                              (unsigned long long) (o->timeout / USEC_PER_SEC));
        else if (result.exited && result.exit_status != 0)
                r = error_set(reterr, -EPROTO, "%s exited with status %d", name, result.exit_status);
        else if (!result.exited)
                r = error_set(reterr, -EPROTO, "%s was killed by signal %s", name, strsignal(result.signal));

finish:
        for (int i = 0; i < 2; i++) {
                if (streams[i].fd >= 0)
                        close(streams[i].fd);
        }
        closep(&out[0]);
        closep(&out[1]);
        closep(&err[0]);
        closep(&err[1]);
        closep(&report[0]);
        closep(&report[1]);

        if (r >= 0 && o->capture) {
                *o->capture = streams[0].cap ?: strdup("");
                streams[0].cap = NULL;
                if (!*o->capture)
                        r = -ENOMEM;
        }
        free(streams[0].cap);
        if (ret)
                *ret = result;
        return r;
}
