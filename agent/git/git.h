/* SPDX-License-Identifier: MIT */
#pragma once

/* The git source: a bare repository below the state directory that mirrors the client
 * repository's branches and tags, fetched with libgit2. Nothing above this module sees a
 * libgit2 type or error: failures come back as -errno with the detail in an Error.
 *
 *   -EHOSTUNREACH  the remote could not be reached (network, DNS, missing path): transient
 *   -EACCES        the remote refused the credentials: transient, but say so
 *   -ENOENT        the ref does not exist in the remote
 *   -EIO           anything else (a damaged mirror is cloned again by git_source_open()) */

#include <stdint.h>

#include "basic/error.h"
#include "basic/strutil.h"

#define GIT_DEPLOY_REF "refs/heads/atticd-deploy"
#define GIT_VERIFY_REF "refs/heads/atticd-verify"

typedef struct GitSource GitSource;

/* Opens the mirror at dir, creating it when missing and creating it again when damaged. */
int git_source_open(const char *dir, GitSource **ret, Error *reterr);
GitSource *git_source_free(GitSource *s);
static inline void git_source_freep(GitSource **s) {
        git_source_free(*s);
}
#define _cleanup_git_source_ _cleanup_(git_source_freep)

/* Where to fetch from and how. Credentials are read from files, never passed as text. */
typedef struct GitRemote {
        const char *url;                /* a path, file://, git://, http(s)://, ssh:// or user@host:path */
        const char *http_username;
        const char *http_password_file; /* the password or token for http_username */
        const char *ca_file;            /* extra CA for https */
        const char *ssh_key;            /* private key file */
        const char *ssh_known_hosts;    /* required for ssh: the host key must be listed */
        unsigned connect_timeout;       /* seconds until the remote must have answered */
        unsigned stall_timeout;         /* seconds a transfer may go without progress */
        unsigned fetch_timeout;         /* seconds the whole fetch may take; 0: no limit */
        uint64_t max_fetch_size;        /* bytes the remote may send; 0: no limit */
} GitRemote;

/* Fetches every branch and tag of the remote into the mirror. The fetch runs in a child
 * process, so that a remote that never answers or stalls can be given up on at once, and
 * it dies with the agent. Errors besides the ones above:
 *   -ETIMEDOUT     the remote did not answer, or the transfer stalled (transient)
 *   -EKEYREJECTED  the server's host key or certificate is not trusted (refused)
 *   -EFBIG         the remote sent more than max_fetch_size (refused)
 * and -ETIMEDOUT also when the whole fetch took longer than fetch_timeout. */
int git_source_fetch(GitSource *s, const GitRemote *remote, Error *reterr);

/* Resolves ref (a branch, a tag, a full ref name, or a full commit id) to a commit id, as
 * fetched. ret gets 40 hex digits and a NUL. */
int git_source_resolve(GitSource *s, const char *ref, char ret[COMMIT_ID_HEX + 1], Error *reterr);

/* 1 when commit descends from ancestor (and is not it), 0 when not, -ENOENT when either is
 * not in the mirror. */
int git_source_descends_from(GitSource *s, const char *commit, const char *ancestor, Error *reterr);

/* The SSH/GPG signature of a commit (the gpgsig header) and the exact bytes it signs.
 * -ENOENT when the commit carries no signature. */
int git_source_commit_signature(GitSource *s, const char *rev, char **ret_signature, char **ret_signed_data,
                                size_t *ret_size, Error *reterr);

/* Points GIT_DEPLOY_REF at rev, so that nix can fetch exactly that commit from the mirror. */
int git_source_pin(GitSource *s, const char *rev, Error *reterr);
int git_source_pin_ref(GitSource *s, const char *refname, const char *rev, Error *reterr);

const char *git_source_path(GitSource *s);

/* The content of the regular file at path in the tree of commit rev (no checkout), at most max
 * bytes, NUL-terminated (not counted in *ret_size). -ENOENT when the tree has no such path,
 * -EBADMSG when it is not a regular file, -EFBIG when it is larger. */
int git_source_read_file(GitSource *s, const char *rev, const char *path, size_t max, char **ret, size_t *ret_size,
                         Error *reterr);

/* Indexes the git packfile at pack_path into the mirror (a bundle's history). Objects only:
 * no reference moves. -EBADMSG when the file is not a complete, valid pack. With base (a
 * delta's base revision, which the mirror holds), the pack may leave out the base commit, its
 * ancestors and the objects of its tree; -ENXIO when the mirror does not hold them. */
int git_source_import_pack(GitSource *s, const char *pack_path, const char *base, Error *reterr);

/* Writes a packfile of the commit that rev names in the repository at repo_dir (a work tree
 * or a bare repository) and of everything reachable from it, to fd; with base (a commit id),
 * without what base and its tree hold. ret_rev gets the commit id. -ENOENT when rev names no
 * commit. */
int git_write_pack(const char *repo_dir, const char *rev, const char *base, int fd, char ret_rev[COMMIT_ID_HEX + 1],
                   Error *reterr);
