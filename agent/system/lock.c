/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "basic/fileio.h"
#include "system/lock.h"
#include "basic/log.h"
#include "basic/macro.h"

/* The state directory: created 0700 (its parents 0755); one that others may write to, or a
 * symlink that someone else owns, is refused: whoever can change it can change what the agent
 * believes it deployed. */
static int state_dir_check(const char *state_dir, Error *e) {
        _cleanup_free_ char *parent = strdup(state_dir);
        struct stat st;
        char *slash;
        int r;

        if (!parent)
                return -ENOMEM;
        slash = strrchr(parent, '/');
        if (slash && slash != parent) {
                *slash = 0;
                r = mkdir_parents(parent, 0755);
                if (r < 0)
                        return error_set(e, r, "cannot create '%s': %s", parent, strerror(-r));
        }
        if (mkdir(state_dir, 0700) < 0 && errno != EEXIST)
                return error_set(e, -errno, "cannot create the state directory '%s': %m", state_dir);

        if (lstat(state_dir, &st) < 0)
                return error_set(e, -errno, "cannot stat '%s': %m", state_dir);
        if (S_ISLNK(st.st_mode) && st.st_uid != geteuid())
                return error_set(e, -EPERM, "the state directory '%s' is a symlink owned by uid %u, not by this user",
                                 state_dir, (unsigned) st.st_uid);
        if (stat(state_dir, &st) < 0)
                return error_set(e, -errno, "cannot stat '%s': %m", state_dir);
        if (!S_ISDIR(st.st_mode))
                return error_set(e, -ENOTDIR, "the state directory '%s' is not a directory", state_dir);
        if (st.st_uid != geteuid() || (st.st_mode & 0022))
                return error_set(e, -EPERM,
                                 "the state directory '%s' (owner uid %u, mode %04o) can be changed by others: it must "
                                 "be owned by this user and writable by nobody else (0700)",
                                 state_dir, (unsigned) st.st_uid, (unsigned) (st.st_mode & 07777));
        if (st.st_mode & 0077)
                log_warning("The state directory '%s' is readable by others (mode %04o): the mirror may hold a private "
                            "repository; chmod 0700 '%s'.",
                            state_dir, (unsigned) (st.st_mode & 07777), state_dir);
        return 0;
}

int lock_acquire(const char *state_dir, Error *e) {
        _cleanup_free_ char *path = NULL;
        _cleanup_close_ int fd = -EBADF;
        int r;

        r = state_dir_check(state_dir, e);
        if (r < 0)
                return r;

        path = path_join(state_dir, LOCK_FILE);
        if (!path)
                return -ENOMEM;

        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return error_set(e, -errno, "cannot open the lock '%s': %m", path);
        if (flock(fd, LOCK_EX | LOCK_NB) < 0)
                return errno == EWOULDBLOCK ? -EBUSY : error_set(e, -errno, "cannot lock '%s': %m", path);
        return TAKE_FD(fd);
}
