/* SPDX-License-Identifier: MIT */
/* Packfiles: the history an offline bundle carries, written on the connected machine and
 * indexed into the mirror on the air-gapped one. */

#include <fcntl.h>
#include <unistd.h>

#include "git-internal.h"

#define PACK_READ_BLOCK (1024 * 1024)

static void git_repository_freep(git_repository **r) {
        git_repository_free(*r);
}
static void git_object_freep(git_object **o) {
        git_object_free(*o);
}
static void git_odb_freep(git_odb **o) {
        git_odb_free(*o);
}
static void git_packbuilder_freep(git_packbuilder **p) {
        git_packbuilder_free(*p);
}
static void git_revwalk_freep(git_revwalk **w) {
        git_revwalk_free(*w);
}

int git_source_import_pack(GitSource *s, const char *pack_path, Error *e) {
        _cleanup_(git_odb_freep) git_odb *odb = NULL;
        _cleanup_free_ uint8_t *buf = NULL;
        _cleanup_close_ int fd = -EBADF;
        git_indexer_progress stats = {};
        git_odb_writepack *wp = NULL;
        int r;

        fd = open(pack_path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return error_set(e, -errno, "cannot open '%s': %m", pack_path);
        buf = malloc(PACK_READ_BLOCK);
        if (!buf)
                return -ENOMEM;
        r = git_repository_odb(&odb, s->repo);
        if (r < 0)
                return git_map_error(r, e, s->path);
        r = git_odb_write_pack(&wp, odb, NULL, NULL);
        if (r < 0)
                return git_map_error(r, e, "cannot index the pack");
        for (;;) {
                ssize_t n = read(fd, buf, PACK_READ_BLOCK);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        r = error_set(e, -errno, "cannot read '%s': %m", pack_path);
                        goto finish;
                }
                if (n == 0)
                        break;
                r = wp->append(wp, buf, (size_t) n, &stats);
                if (r < 0) {
                        git_map_error(r, e, "the repository pack is not valid");
                        r = -EBADMSG;
                        goto finish;
                }
        }
        r = wp->commit(wp, &stats);
        if (r < 0) {
                git_map_error(r, e, "the repository pack is not valid");
                r = -EBADMSG;
        }
finish:
        wp->free(wp);
        return r;
}

static int write_cb(void *buf, size_t size, void *userdata) {
        int fd = *(int *) userdata;

        while (size > 0) {
                ssize_t n = write(fd, buf, size);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -1;
                buf = (uint8_t *) buf + n;
                size -= (size_t) n;
        }
        return 0;
}

int git_write_pack(const char *repo_dir, const char *rev, int fd, char ret_rev[GIT_REV_HEX + 1], Error *e) {
        _cleanup_(git_repository_freep) git_repository *repo = NULL;
        _cleanup_(git_object_freep) git_object *obj = NULL, *commit = NULL;
        _cleanup_(git_packbuilder_freep) git_packbuilder *pb = NULL;
        _cleanup_(git_revwalk_freep) git_revwalk *walk = NULL;
        int r;

        if (git_libgit2_init() < 0)
                return error_set(e, -EIO, "failed to initialize libgit2");
        r = git_repository_open_ext(&repo, repo_dir, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL);
        if (r < 0) {
                r = git_map_error(r, e, repo_dir);
                goto out;
        }
        r = git_revparse_single(&obj, repo, rev);
        if (r == 0)
                r = git_object_peel(&commit, obj, GIT_OBJECT_COMMIT);
        if (r < 0) {
                r = error_set(e, -ENOENT, "'%s' names no commit in '%s'", rev, repo_dir);
                goto out;
        }
        git_oid_tostr(ret_rev, GIT_REV_HEX + 1, git_object_id(commit));

        if ((r = git_packbuilder_new(&pb, repo)) < 0 || (r = git_revwalk_new(&walk, repo)) < 0 ||
            (r = git_revwalk_push(walk, git_object_id(commit))) < 0 ||
            (r = git_packbuilder_insert_walk(pb, walk)) < 0) {
                r = git_map_error(r, e, "cannot pack the history");
                goto out;
        }
        r = git_packbuilder_foreach(pb, write_cb, &fd);
        if (r < 0)
                r = error_set(e, -EIO, "cannot write the pack: %s",
                              git_error_last() ? git_error_last()->message : "write error");
out:
        /* Frees the objects above before the shutdown. */
        commit = (git_object_free(commit), NULL);
        obj = (git_object_free(obj), NULL);
        walk = (git_revwalk_free(walk), NULL);
        pb = (git_packbuilder_free(pb), NULL);
        repo = (git_repository_free(repo), NULL);
        git_libgit2_shutdown();
        return r;
}
