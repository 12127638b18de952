/* SPDX-License-Identifier: MIT */
#pragma once

/* Small helpers in the style of systemd's macro.h: cleanup attributes, ownership transfer,
 * and a few annotations. Everything here is header-only. */

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((__cleanup__(f)))
#define _unused_ __attribute__((__unused__))
#define _printf_(a, b) __attribute__((__format__(printf, a, b)))
#define _noreturn_ __attribute__((__noreturn__))
#define _warn_unused_result_ __attribute__((__warn_unused_result__))

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))

/* Take ownership of a pointer: returns its value and sets the variable to NULL, so that the
 * cleanup handler of the variable does nothing. */
#define TAKE_PTR(p)                            \
        ({                                     \
                __typeof__(p) _ptr_ = (p);     \
                (p) = NULL;                    \
                _ptr_;                         \
        })

#define TAKE_FD(fd)                            \
        ({                                     \
                int _fd_ = (fd);               \
                (fd) = -EBADF;                 \
                _fd_;                          \
        })

#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

static inline void freep(void *p) {
        free(*(void **) p);
}
#define _cleanup_free_ _cleanup_(freep)

/* Closes *fd (when open) and forgets it: *fd is -EBADF afterwards, so a second call is harmless. */
static inline void closep(int *fd) {
        if (*fd >= 0) {
                int saved = errno;
                close(*fd);
                errno = saved;
        }
        *fd = -EBADF;
}
#define _cleanup_close_ _cleanup_(closep)

static inline void fclosep(FILE **f) {
        if (*f)
                fclose(*f);
}
#define _cleanup_fclose_ _cleanup_(fclosep)

#include <dirent.h>
static inline void closedirp(DIR **d) {
        if (*d)
                closedir(*d);
}

/* A NULL-terminated array of strings. */
static inline void strv_free(char **l) {
        if (!l)
                return;
        for (char **i = l; *i; i++)
                free(*i);
        free(l);
}
static inline void strv_freep(char ***l) {
        strv_free(*l);
}
#define _cleanup_strv_free_ _cleanup_(strv_freep)

static inline size_t strv_length(char *const *l) {
        size_t n = 0;
        if (l)
                while (l[n])
                        n++;
        return n;
}

/* The first n strings of l (all when n exceeds its length) joined with sep, newly allocated;
 * NULL when out of memory. */
static inline char *strv_join_n(char *const *l, size_t n, const char *sep) {
        size_t len = 1, k = 0, sl = strlen(sep);
        char *out;

        for (size_t i = 0; l && l[i] && i < n; i++)
                len += strlen(l[i]) + sl;
        out = malloc(len);
        if (!out)
                return NULL;
        for (size_t i = 0; l && l[i] && i < n; i++) {
                size_t m = strlen(l[i]);

                if (i > 0) {
                        memcpy(out + k, sep, sl);
                        k += sl;
                }
                memcpy(out + k, l[i], m);
                k += m;
        }
        out[k] = 0;
        return out;
}

/* Appends a copy of s to a NULL-terminated array. */
static inline int strv_extend(char ***l, const char *s) {
        size_t n = strv_length(*l);
        char **p, *c = strdup(s);

        if (!c)
                return -ENOMEM;
        p = realloc(*l, (n + 2) * sizeof(char *));
        if (!p) {
                free(c);
                return -ENOMEM;
        }
        p[n] = c;
        p[n + 1] = NULL;
        *l = p;
        return 0;
}

static inline bool streq(const char *a, const char *b) {
        return strcmp(a, b) == 0;
}

static inline bool streq_ptr(const char *a, const char *b) {
        if (!a || !b)
                return a == b;
        return strcmp(a, b) == 0;
}

static inline const char *strna(const char *s) {
        return s ? s : "n/a";
}

static inline const char *strempty(const char *s) {
        return s ? s : "";
}

/* Negative errno from a positive one, or from errno itself when 0 is given. */
static inline int negative_errno(void) {
        return errno > 0 ? -errno : -EIO;
}
