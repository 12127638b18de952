/* SPDX-License-Identifier: MIT */
#pragma once

/* Shared between git.c (the mirror) and git-remote.c (fetching into it); nothing outside
 * these two files includes this. */

#include <git2.h>

#include "basic/error.h"
#include "git/git.h"

struct GitSource {
        char *path;
        git_repository *repo;
};

/* Cleanup helpers for libgit2's objects, for _cleanup_(). */
static inline void git_repository_freep(git_repository **r) {
        git_repository_free(*r);
}
static inline void git_reference_freep(git_reference **r) {
        git_reference_free(*r);
}
static inline void git_object_freep(git_object **o) {
        git_object_free(*o);
}
static inline void git_odb_freep(git_odb **o) {
        git_odb_free(*o);
}
static inline void git_packbuilder_freep(git_packbuilder **p) {
        git_packbuilder_free(*p);
}
static inline void git_revwalk_freep(git_revwalk **w) {
        git_revwalk_free(*w);
}
static inline void git_indexer_freep(git_indexer **i) {
        git_indexer_free(*i);
}

/* git_libgit2_init(), and the same settings for every user: no ~/.gitconfig or /etc/gitconfig,
 * and libssh2 without its crypto initialisation. Reference-counted: pair each successful call
 * with git_libgit2_shutdown(). 0, or -EIO. */
int git_global_init(void);

/* The one place where a libgit2 error becomes an errno and a message. */
int git_map_error(int code, Error *e, const char *what);

/* Opens (again) the mirror at s->path, replacing s->repo. */
int git_source_reopen(GitSource *s, Error *e);
