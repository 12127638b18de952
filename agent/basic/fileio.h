/* SPDX-License-Identifier: MIT */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Reads a whole regular file of at most max bytes. The buffer is NUL-terminated (not counted
 * in *ret_size). Returns -EFBIG when the file is larger than max. */
int read_full_file(const char *path, size_t max, char **ret, size_t *ret_size);

/* Writes data to path atomically and durably: a temporary file in the same directory,
 * fsync, rename over path, fsync of the directory. After a crash path holds either the old
 * or the new content, never a mix. */
int write_file_atomic(const char *path, const void *data, size_t size, mode_t mode);

int fsync_directory_of(const char *path);

/* Writes all of data to fd, again after EINTR and short writes: 0 or -errno. */
int loop_write(int fd, const void *data, size_t size);

/* Creates a directory and its parents (like mkdir -p). */
int mkdir_parents(const char *path, mode_t mode);

/* readlink() into a new string. */
int readlink_malloc(const char *path, char **ret);

/* Resolves symlinks completely (realpath) into a new string. */
int canonicalize_path(const char *path, char **ret);

/* rm -rf, not following symlinks, staying on one file system. */
int rm_rf(const char *path);

/* The SHA-256 (lowercase hex) and size of the regular file name below dirfd, not following a
 * symlink. -errno on failure. */
int file_sha256(int dirfd, const char *name, char ret_hex[65], uint64_t *ret_size);

/* Joins two path components with exactly one '/'. Returns NULL on OOM. */
char *path_join(const char *a, const char *b);
