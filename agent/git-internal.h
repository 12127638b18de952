/* SPDX-License-Identifier: MIT */
#pragma once

/* Shared between git.c (the mirror) and git-remote.c (fetching into it); nothing outside
 * these two files includes this. */

#include <git2.h>

#include "error.h"
#include "git.h"

struct GitSource {
        char *path;
        git_repository *repo;
};

/* git_libgit2_init(), and the same settings for every user: no ~/.gitconfig or /etc/gitconfig,
 * and libssh2 without its crypto initialisation. Reference-counted: pair each successful call
 * with git_libgit2_shutdown(). 0, or -EIO. */
int git_global_init(void);

/* The one place where a libgit2 error becomes an errno and a message. */
int git_map_error(int code, Error *e, const char *what);

/* Opens (again) the mirror at s->path, replacing s->repo. */
int git_source_reopen(GitSource *s, Error *e);
