/* SPDX-License-Identifier: MIT */
#pragma once

/* The git source: a bare repository below the state directory that mirrors the client
 * repository's branches and tags, fetched with libgit2. Nothing above this module sees a
 * libgit2 type or error: failures come back as -errno with the detail in an Error.
 *
 *   -EHOSTUNREACH  the remote could not be reached (network, DNS, missing path): transient
 *   -EACCES        the remote refused the credentials: transient, but say so
 *   -ENOENT        the ref does not exist in the remote
 *   -EIO           anything else */

#include "error.h"

#define GIT_REV_HEX 40
#define GIT_DEPLOY_REF "refs/heads/atticd-deploy"

typedef struct GitSource GitSource;

/* Opens the mirror at dir, creating it when missing and creating it again when damaged. */
int git_source_open(const char *dir, GitSource **ret, Error *reterr);
GitSource *git_source_free(GitSource *s);
static inline void git_source_freep(GitSource **s) {
        git_source_free(*s);
}
#define _cleanup_git_source_ _cleanup_(git_source_freep)

/* Fetches every branch and tag of url (a path, file://, git://, https:// or ssh URL). */
int git_source_fetch(GitSource *s, const char *url, Error *reterr);

/* Resolves ref (a branch, a tag, a full ref name, or a full commit id) to a commit id, as
 * fetched. ret gets 40 hex digits and a NUL. */
int git_source_resolve(GitSource *s, const char *ref, char ret[GIT_REV_HEX + 1], Error *reterr);

/* Points GIT_DEPLOY_REF at rev, so that nix can fetch exactly that commit from the mirror. */
int git_source_pin(GitSource *s, const char *rev, Error *reterr);

const char *git_source_path(GitSource *s);
