/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <sys/file.h>

#include "fileio.h"
#include "lock.h"
#include "macro.h"

int lock_acquire(const char *state_dir) {
        _cleanup_free_ char *path = NULL;
        _cleanup_close_ int fd = -EBADF;
        int r;

        r = mkdir_parents(state_dir, 0755);
        if (r < 0)
                return r;

        path = path_join(state_dir, LOCK_FILE);
        if (!path)
                return -ENOMEM;

        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return -errno;
        if (flock(fd, LOCK_EX | LOCK_NB) < 0)
                return errno == EWOULDBLOCK ? -EBUSY : -errno;
        return TAKE_FD(fd);
}
