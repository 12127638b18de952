/* SPDX-License-Identifier: MIT */
/* Packfiles: the history an offline bundle carries, written on the connected machine and
 * indexed into the mirror on the air-gapped one. */

#include <fcntl.h>
#include <git2/sys/odb_backend.h>
#include <sys/stat.h>
#include <unistd.h>

#include "basic/fileio.h"
#include "git/git-internal.h"

#define PACK_READ_BLOCK (128 * 1024)

/* Checking a pack for completeness (docs/bundle-format.md 5.1): every object that an object of
 * the pack names (a commit's tree and parents, a tree's entries but submodule commits, a tag's
 * target) is in the pack itself. So the pack holds everything reachable from each commit in
 * it, without trusting what the mirror holds (objects of a pack refused before this check
 * existed, say).
 *
 * A delta's pack leaves out what its base revision holds: a named object may then also be the
 * base commit or one of its ancestors, or an object of the base commit's tree, all in the
 * mirror. The base's pack was checked the same way when the machine applied it, so the
 * induction holds: what the delta builds on was verified then, and git names every object by
 * its (collision-detecting) hash. Nothing else of the mirror counts. */
typedef struct OidSet {
        git_oid *ids;
        size_t n, allocated;
} OidSet;

typedef struct PackCheck {
        git_repository *repo;   /* over the pack's objects alone */
        git_odb *odb;           /* its odb */
        git_repository *mirror; /* a delta: the mirror, which holds the base */
        git_odb *mirror_odb;    /* its odb */
        const git_oid *base;    /* a delta: the base revision */
        OidSet base_tree;       /* a delta: every object of the base commit's tree, sorted */
        Error *e;
        int r;
} PackCheck;

static int oid_cmp(const void *a, const void *b) {
        return git_oid_cmp(a, b);
}

static int oid_set_add(OidSet *set, const git_oid *id) {
        if (set->n == set->allocated) {
                size_t k = MAX(set->allocated * 2, 256u);
                git_oid *l = realloc(set->ids, k * sizeof(git_oid));
                if (!l)
                        return -1;
                set->ids = l;
                set->allocated = k;
        }
        git_oid_cpy(&set->ids[set->n++], id);
        return 0;
}

static int collect_tree_entry(const char *root, const git_tree_entry *entry, void *payload) {
        (void) root;
        if (git_tree_entry_filemode(entry) == GIT_FILEMODE_COMMIT)
                return 0;
        return oid_set_add(payload, git_tree_entry_id(entry));
}

/* The base's tree, which must be in the mirror: the machine applied the base. -ENXIO when it
 * is not (a base applied elsewhere, a mirror rebuilt since). */
static int load_base_tree(PackCheck *c) {
        char hex[GIT_OID_HEXSZ + 1];
        git_commit *commit = NULL;
        git_tree *tree = NULL;
        int r;

        r = git_commit_lookup(&commit, c->mirror, c->base);
        if (r >= 0)
                r = git_commit_tree(&tree, commit);
        if (r >= 0)
                r = oid_set_add(&c->base_tree, git_commit_tree_id(commit));
        if (r >= 0)
                r = git_tree_walk(tree, GIT_TREEWALK_PRE, collect_tree_entry, &c->base_tree);
        git_tree_free(tree);
        git_commit_free(commit);
        if (r < 0)
                return error_set(c->e, -ENXIO, "the pack is a delta of revision %s, which this machine's mirror does not "
                                 "hold whole: %s", git_oid_tostr(hex, sizeof(hex), c->base),
                                 git_error_last() ? git_error_last()->message : "cannot read it");
        qsort(c->base_tree.ids, c->base_tree.n, sizeof(git_oid), oid_cmp);
        return 0;
}

static bool in_base(PackCheck *c, const char *what, const git_oid *id) {
        if (!c->base)
                return false;
        if (streq(what, "parent"))
                return git_oid_equal(id, c->base) || git_graph_descendant_of(c->mirror, c->base, id) == 1;
        return bsearch(id, c->base_tree.ids, c->base_tree.n, sizeof(git_oid), oid_cmp) &&
               git_odb_exists(c->mirror_odb, id);
}

static int require(PackCheck *c, const char *kind, const git_oid *from, const char *what, const git_oid *id) {
        char a[GIT_OID_HEXSZ + 1], b[GIT_OID_HEXSZ + 1];

        if (git_odb_exists(c->odb, id) || in_base(c, what, id))
                return 0;
        c->r = error_set(c->e, -EBADMSG, "the repository pack is incomplete: %s %s names %s %s, which is not in the "
                         "pack%s", kind, git_oid_tostr(a, sizeof(a), from), what, git_oid_tostr(b, sizeof(b), id),
                         c->base ? " nor in its base revision" : "");
        return -1;
}

static int check_object(const git_oid *id, void *payload) {
        PackCheck *c = payload;
        _cleanup_(git_object_freep) git_object *obj = NULL;
        int r = git_object_lookup(&obj, c->repo, id, GIT_OBJECT_ANY);

        if (r < 0) {
                git_map_error(r, c->e, "the repository pack is not valid");
                c->r = -EBADMSG;
                return -1;
        }
        switch (git_object_type(obj)) {
        case GIT_OBJECT_COMMIT: {
                const git_commit *commit = (const git_commit *) obj;

                r = require(c, "commit", id, "tree", git_commit_tree_id(commit));
                for (unsigned i = 0; r == 0 && i < git_commit_parentcount(commit); i++)
                        r = require(c, "commit", id, "parent", git_commit_parent_id(commit, i));
                return r;
        }
        case GIT_OBJECT_TREE: {
                const git_tree *tree = (const git_tree *) obj;

                for (size_t i = 0; r == 0 && i < git_tree_entrycount(tree); i++) {
                        const git_tree_entry *entry = git_tree_entry_byindex(tree, i);

                        if (git_tree_entry_filemode(entry) != GIT_FILEMODE_COMMIT)
                                r = require(c, "tree", id, git_tree_entry_type(entry) == GIT_OBJECT_TREE ? "tree" : "blob",
                                            git_tree_entry_id(entry));
                }
                return r;
        }
        case GIT_OBJECT_TAG:
                return require(c, "tag", id, "object", git_tag_target_id((const git_tag *) obj));
        default:
                return 0;
        }
}

static int check_pack(const char *idx_path, git_repository *mirror, const git_oid *base, Error *e) {
        _cleanup_(git_odb_freep) git_odb *odb = NULL;
        _cleanup_(git_repository_freep) git_repository *repo = NULL;
        git_odb_backend *be = NULL;
        PackCheck c = { .e = e, .mirror = mirror, .base = base };
        int r;

        r = git_odb_new(&odb);
        if (r >= 0)
                r = git_odb_backend_one_pack(&be, idx_path);
        if (r >= 0) {
                r = git_odb_add_backend(odb, be, 1);
                if (r < 0)
                        be->free(be);
        }
        if (r >= 0)
                r = git_repository_wrap_odb(&repo, odb);
        if (r < 0)
                return git_map_error(r, e, "cannot read the indexed pack");
        c.repo = repo;
        c.odb = odb;
        if (base) {
                r = git_repository_odb(&c.mirror_odb, mirror);
                if (r < 0)
                        return git_map_error(r, e, "cannot read the mirror");
                r = load_base_tree(&c);
        }
        if (r >= 0)
                r = git_odb_foreach(odb, check_object, &c);
        else
                c.r = r;
        free(c.base_tree.ids);
        git_odb_free(c.mirror_odb);
        if (r < 0)
                return c.r < 0 ? c.r : git_map_error(r, e, "cannot read the indexed pack");
        return 0;
}

/* Moves quarantine/NAME.ext into objects/pack, on disk before it is visible. */
static int publish(const char *quarantine, const char *pack_dir, const char *name, const char *ext, Error *e) {
        _cleanup_free_ char *from = NULL, *to = NULL;
        _cleanup_close_ int fd = -EBADF;

        if (asprintf(&from, "%s/%s%s", quarantine, name, ext) < 0 || asprintf(&to, "%s/%s%s", pack_dir, name, ext) < 0)
                return -ENOMEM;
        fd = open(from, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || fsync(fd) < 0)
                return error_set(e, -errno, "cannot sync '%s': %m", from);
        if (rename(from, to) < 0)
                return error_set(e, -errno, "cannot move the pack to '%s': %m", to);
        return 0;
}

/* Whether the mirror holds this pack already (the same bundle applied again): its name is
 * the checksum of its content, so there is nothing to move, unless an earlier copy did not
 * make it to the disk whole. */
static bool pack_is_there(const char *quarantine, const char *pack_dir, const char *name) {
        static const char *const exts[] = { ".pack", ".idx" };

        for (size_t i = 0; i < ELEMENTSOF(exts); i++) {
                _cleanup_free_ char *a = NULL, *b = NULL;
                struct stat sa, sb;

                if (asprintf(&a, "%s/%s%s", quarantine, name, exts[i]) < 0 ||
                    asprintf(&b, "%s/%s%s", pack_dir, name, exts[i]) < 0 || stat(a, &sa) < 0 || stat(b, &sb) < 0 ||
                    sa.st_size != sb.st_size)
                        return false;
        }
        return true;
}

/* The header ("PACK", version 2 or 3, the number of objects) against the file's size: libgit2
 * sizes its tables by the number the header claims, so a header that claims billions of objects
 * in a few bytes would have it allocate gigabytes before it finds out. Every object takes at
 * least PACK_OBJECT_MIN bytes (a type and size byte and a zlib stream), and the pack ends with
 * its 20-byte checksum. */
#define PACK_OBJECT_MIN 4
static int check_pack_header(int fd, const char *pack_path, Error *e) {
        uint8_t h[12];
        struct stat st;
        uint32_t version, count;
        ssize_t n;

        if (fstat(fd, &st) < 0)
                return error_set(e, -errno, "cannot stat '%s': %m", pack_path);
        n = pread(fd, h, sizeof(h), 0);
        if (n < 0)
                return error_set(e, -errno, "cannot read '%s': %m", pack_path);
        if (n < (ssize_t) sizeof(h) || memcmp(h, "PACK", 4) != 0)
                return error_set(e, -EBADMSG, "the repository pack is not valid: no pack header");
        version = (uint32_t) h[4] << 24 | (uint32_t) h[5] << 16 | (uint32_t) h[6] << 8 | h[7];
        count = (uint32_t) h[8] << 24 | (uint32_t) h[9] << 16 | (uint32_t) h[10] << 8 | h[11];
        if (version != 2 && version != 3)
                return error_set(e, -EBADMSG, "the repository pack is not valid: version %" PRIu32, version);
        if ((uint64_t) count * PACK_OBJECT_MIN > (uint64_t) st.st_size)
                return error_set(e, -EBADMSG,
                                 "the repository pack is not valid: it claims %" PRIu32 " objects in %jd bytes", count,
                                 (intmax_t) st.st_size);
        return 0;
}

static int index_pack(git_odb *odb, const char *quarantine, const char *pack_path, char **ret_name, Error *e) {
        _cleanup_(git_indexer_freep) git_indexer *idx = NULL;
        _cleanup_free_ uint8_t *buf = malloc(PACK_READ_BLOCK);
        _cleanup_close_ int fd = -EBADF;
        git_indexer_options opts = GIT_INDEXER_OPTIONS_INIT;
        git_indexer_progress stats = {};
        int r;

        if (!buf)
                return -ENOMEM;
        fd = open(pack_path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return error_set(e, -errno, "cannot open '%s': %m", pack_path);
        r = check_pack_header(fd, pack_path, e);
        if (r < 0)
                return r;
        /* The mirror's objects complete a thin pack (the format's packs are not thin, but git
         * index-pack --fix-thin does the same). */
        r = git_indexer_new(&idx, quarantine, 0, odb, &opts);
        if (r < 0)
                return git_map_error(r, e, "cannot index the pack");
        for (;;) {
                ssize_t n = read(fd, buf, PACK_READ_BLOCK);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return error_set(e, -errno, "cannot read '%s': %m", pack_path);
                if (n == 0)
                        break;
                r = git_indexer_append(idx, buf, (size_t) n, &stats);
                if (r < 0)
                        break;
        }
        if (r >= 0)
                r = git_indexer_commit(idx, &stats);
        if (r < 0) {
                const git_error *ge = git_error_last();
                int err = errno;

                /* A write that failed (a full disk, a quota) is the machine's, not the pack's. */
                if (ge && ge->klass == GIT_ERROR_OS)
                        return error_set(e, err == ENOSPC || err == EDQUOT ? -err : -EIO,
                                         "cannot index the pack into '%s': %s", quarantine, ge->message);
                git_map_error(r, e, "the repository pack is not valid");
                return -EBADMSG;
        }
        if (asprintf(ret_name, "pack-%s", git_indexer_name(idx)) < 0)
                return -ENOMEM;
        return 0;
}

/* The pack is indexed into a quarantine directory below objects/ (as git receive-pack does),
 * checked for completeness, and only then moved into objects/pack: a pack that is refused
 * leaves nothing behind. */
int git_source_import_pack(GitSource *s, const char *pack_path, const char *base, Error *e) {
        _cleanup_(git_odb_freep) git_odb *odb = NULL;
        _cleanup_free_ char *objects = NULL, *quarantine = NULL, *pack_dir = NULL, *name = NULL, *idx_path = NULL;
        git_oid base_id;
        int r;

        if (base && git_oid_fromstr(&base_id, base) < 0)
                return error_set(e, -EINVAL, "'%s' is not a commit id", base);

        objects = path_join(git_repository_path(s->repo), "objects");
        quarantine = path_join(objects, "incoming-XXXXXX");
        pack_dir = path_join(objects, "pack");
        if (!objects || !quarantine || !pack_dir)
                return -ENOMEM;
        r = git_repository_odb(&odb, s->repo);
        if (r < 0)
                return git_map_error(r, e, s->path);
        if (!mkdtemp(quarantine))
                return error_set(e, -errno, "cannot create a directory in '%s': %m", objects);

        r = index_pack(odb, quarantine, pack_path, &name, e);
        if (r >= 0 && asprintf(&idx_path, "%s/%s.idx", quarantine, name) < 0)
                r = -ENOMEM;
        if (r >= 0)
                r = check_pack(idx_path, s->repo, base ? &base_id : NULL, e);
        if (r >= 0 && !pack_is_there(quarantine, pack_dir, name)) {
                /* The data first: a reader finds a pack by its index. */
                r = publish(quarantine, pack_dir, name, ".pack", e);
                if (r >= 0)
                        r = publish(quarantine, pack_dir, name, ".idx", e);
                if (r >= 0)
                        (void) git_odb_refresh(odb);
        }
        (void) rm_rf(quarantine);
        return r;
}

static int write_cb(void *buf, size_t size, void *userdata) {
        return loop_write(*(int *) userdata, buf, size) < 0 ? -1 : 0;
}

int git_write_pack(const char *repo_dir, const char *rev, const char *base, int fd, char ret_rev[COMMIT_ID_HEX + 1],
                   Error *e) {
        _cleanup_(git_repository_freep) git_repository *repo = NULL;
        _cleanup_(git_object_freep) git_object *obj = NULL, *commit = NULL;
        _cleanup_(git_packbuilder_freep) git_packbuilder *pb = NULL;
        _cleanup_(git_revwalk_freep) git_revwalk *walk = NULL;
        int r;

        if (git_global_init() < 0)
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
        git_oid_tostr(ret_rev, COMMIT_ID_HEX + 1, git_object_id(commit));

        if ((r = git_packbuilder_new(&pb, repo)) < 0 || (r = git_revwalk_new(&walk, repo)) < 0 ||
            (r = git_revwalk_push(walk, git_object_id(commit))) < 0) {
                r = git_map_error(r, e, "cannot pack the history");
                goto out;
        }
        /* A delta: the base commit, its ancestors and its tree's objects stay out (libgit2
         * marks the hidden commit's tree uninteresting); the pack is not thin, no object of
         * it is a delta against one left out. */
        if (base) {
                git_oid base_id;

                if (git_oid_fromstr(&base_id, base) < 0 || git_revwalk_hide(walk, &base_id) < 0) {
                        r = error_set(e, -ENOENT, "the base's revision %s is not in '%s'", base, repo_dir);
                        goto out;
                }
        }
        if ((r = git_packbuilder_insert_walk(pb, walk)) < 0) {
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
