/* SPDX-License-Identifier: MIT */
#include <git2.h>
#include <libssh2.h>
#include <pthread.h>

#include "basic/fileio.h"
#include "git/git-internal.h"
#include "basic/log.h"
#include "basic/strutil.h"


/* The one place where a libgit2 error becomes an errno and a message. */
int git_map_error(int code, Error *e, const char *what) {
        const git_error *ge = git_error_last();
        const char *msg = ge && ge->message ? ge->message : "unknown error";
        int r;

        if (code == GIT_EAUTH)
                r = -EACCES;
        else if (code == GIT_ECERTIFICATE)
                r = -EKEYREJECTED;
        else if (code == GIT_ENOTFOUND)
                r = -ENOENT;
        else if (ge && (ge->klass == GIT_ERROR_NET || ge->klass == GIT_ERROR_SSH || ge->klass == GIT_ERROR_HTTP ||
                        ge->klass == GIT_ERROR_SSL || ge->klass == GIT_ERROR_OS))
                r = -EHOSTUNREACH;
        else
                r = -EIO;

        /* libgit2 words an HTTP 401 as a plain error: make it the credentials it is. */
        if (r != -EACCES && (strstr(msg, "authentication") || strstr(msg, "401")))
                r = -EACCES;

        return error_set(e, r, "%s: %s", what, msg);
}

/* libgit2 calls libssh2_init(0), whose OpenSSL initialisation loads every built-in engine:
 * 3 MiB of libcrypto's pages touched on every run, ssh remote or not. OpenSSL 1.1 and later
 * initialise themselves when first used, which is all libssh2 needs; a libssh2_init() that
 * asks for no crypto, before libgit2's, makes libgit2's a mere count (libssh2 initialises
 * once). Never undone: libssh2 then stays initialised for the life of the process. */
static void libssh2_init_without_crypto(void) {
        (void) libssh2_init(LIBSSH2_INIT_NO_CRYPTO);
}

/* Reference-counted by libgit2: each git_source_open() inits, each git_source_free() shuts
 * down, so that nothing of libgit2 outlives the last source. */
int git_global_init(void) {
        static pthread_once_t once = PTHREAD_ONCE_INIT;
        int r;

        (void) pthread_once(&once, libssh2_init_without_crypto);
        r = git_libgit2_init();
        if (r < 0)
                return -EIO;
        if (r > 1)
                return 0;
        /* The agent's behaviour must not depend on whoever's ~/.gitconfig or /etc/gitconfig. */
        (void) git_libgit2_opts(GIT_OPT_SET_SEARCH_PATH, GIT_CONFIG_LEVEL_SYSTEM, "");
        (void) git_libgit2_opts(GIT_OPT_SET_SEARCH_PATH, GIT_CONFIG_LEVEL_XDG, "");
        (void) git_libgit2_opts(GIT_OPT_SET_SEARCH_PATH, GIT_CONFIG_LEVEL_GLOBAL, "");
        return 0;
}

/* libgit2 reads a repository's parts lazily: look at each one now, so that damage shows
 * here and not in the middle of a fetch. */
static int check_repository(git_repository *repo) {
        _cleanup_(git_reference_freep) git_reference *head = NULL;
        git_config *config = NULL;
        git_odb *odb = NULL;
        int r;

        r = git_repository_config_snapshot(&config, repo);
        if (r < 0)
                return r;
        git_config_free(config);
        r = git_repository_odb(&odb, repo);
        if (r < 0)
                return r;
        git_odb_free(odb);
        r = git_reference_lookup(&head, repo, "HEAD");
        if (r < 0)
                return r;
        return git_reference_type(head) == GIT_REFERENCE_SYMBOLIC ? 0 : GIT_EINVALID;
}

static int open_or_create(const char *path, git_repository **ret, Error *e) {
        int r;

        r = git_repository_open_bare(ret, path);
        if (r == 0) {
                r = check_repository(*ret);
                if (r == 0)
                        return 0;
                git_repository_free(*ret);
                *ret = NULL;
        }
        if (r != GIT_ENOTFOUND || access(path, F_OK) == 0) {
                /* Damaged: a mirror holds nothing that cannot be fetched again. */
                log_warning("Local mirror '%s' cannot be opened (%s), creating it again.", path,
                            git_error_last() ? git_error_last()->message : "unknown error");
                r = rm_rf(path);
                if (r < 0)
                        return error_set(e, r, "failed to remove damaged mirror '%s': %s", path, strerror(-r));
        }
        r = git_repository_init(ret, path, /* is_bare= */ 1);
        if (r < 0)
                return git_map_error(r, e, path);
        return 0;
}

int git_source_open(const char *dir, GitSource **ret, Error *e) {
        _cleanup_(git_repository_freep) git_repository *repo = NULL;
        GitSource *s;
        int r;

        r = git_global_init();
        if (r < 0)
                return error_set(e, r, "failed to initialize libgit2");

        r = open_or_create(dir, &repo, e);
        if (r < 0) {
                git_libgit2_shutdown();
                return r;
        }

        s = calloc(1, sizeof(*s));
        if (!s || !(s->path = strdup(dir))) {
                free(s);
                git_repository_free(TAKE_PTR(repo));
                git_libgit2_shutdown();
                return -ENOMEM;
        }
        s->repo = TAKE_PTR(repo);
        *ret = s;
        return 0;
}

GitSource *git_source_free(GitSource *s) {
        if (!s)
                return NULL;
        git_repository_free(s->repo);
        free(s->path);
        free(s);
        git_libgit2_shutdown();
        return NULL;
}

const char *git_source_path(GitSource *s) {
        return s->path;
}

int git_source_reopen(GitSource *s, Error *e) {
        git_repository *repo = NULL;
        int r;

        r = git_repository_open_bare(&repo, s->path);
        if (r < 0)
                return git_map_error(r, e, s->path);
        git_repository_free(s->repo);
        s->repo = repo;
        return 0;
}

static int peel_to_commit(GitSource *s, const char *refname, char ret[COMMIT_ID_HEX + 1]) {
        _cleanup_(git_reference_freep) git_reference *ref = NULL;
        _cleanup_(git_object_freep) git_object *obj = NULL;
        int r;

        r = git_reference_lookup(&ref, s->repo, refname);
        if (r < 0)
                return r;
        r = git_reference_peel(&obj, ref, GIT_OBJECT_COMMIT);
        if (r < 0)
                return r;
        git_oid_tostr(ret, COMMIT_ID_HEX + 1, git_object_id(obj));
        return 0;
}

int git_source_resolve(GitSource *s, const char *ref, char ret[COMMIT_ID_HEX + 1], Error *e) {
        _cleanup_free_ char *candidate = NULL;
        int r;

        if (is_commit_id(ref)) {
                _cleanup_(git_object_freep) git_object *obj = NULL;
                git_oid oid;

                if (git_oid_fromstr(&oid, ref) < 0)
                        return error_set(e, -EINVAL, "'%s' is not a commit id", ref);
                r = git_object_lookup(&obj, s->repo, &oid, GIT_OBJECT_COMMIT);
                if (r < 0)
                        return error_set(e, -ENOENT, "commit %s is not in the repository", ref);
                memcpy(ret, ref, COMMIT_ID_HEX + 1);
                return 0;
        }

        if (strncmp(ref, "refs/heads/", 11) == 0) {
                if (asprintf(&candidate, "refs/remotes/origin/%s", ref + 11) < 0)
                        return -ENOMEM;
                r = peel_to_commit(s, candidate, ret);
        } else if (strncmp(ref, "refs/tags/", 10) == 0)
                r = peel_to_commit(s, ref, ret);
        else {
                /* A short name: a branch first, as git does, then a tag. */
                if (asprintf(&candidate, "refs/remotes/origin/%s", ref) < 0)
                        return -ENOMEM;
                r = peel_to_commit(s, candidate, ret);
                if (r == GIT_ENOTFOUND) {
                        free(candidate);
                        if (asprintf(&candidate, "refs/tags/%s", ref) < 0)
                                return -ENOMEM;
                        r = peel_to_commit(s, candidate, ret);
                }
        }
        if (r == GIT_ENOTFOUND || r == GIT_EINVALIDSPEC)
                return error_set(e, -ENOENT, "'%s' is neither a branch nor a tag of the repository", ref);
        if (r < 0)
                return git_map_error(r, e, ref);
        return 0;
}

int git_source_pin(GitSource *s, const char *rev, Error *e) {
        return git_source_pin_ref(s, GIT_DEPLOY_REF, rev, e);
}

int git_source_pin_ref(GitSource *s, const char *refname, const char *rev, Error *e) {
        _cleanup_(git_reference_freep) git_reference *ref = NULL;
        git_oid oid;
        int r;

        if (git_oid_fromstr(&oid, rev) < 0)
                return error_set(e, -EINVAL, "'%s' is not a commit id", rev);
        r = git_reference_create(&ref, s->repo, refname, &oid, /* force= */ 1, "atticd-agent");
        if (r < 0)
                return git_map_error(r, e, refname);
        return 0;
}

static int parse_oid(const char *rev, git_oid *oid, Error *e) {
        if (!is_commit_id(rev) || git_oid_fromstr(oid, rev) < 0)
                return error_set(e, -EINVAL, "'%s' is not a commit id", rev);
        return 0;
}

static int commit_exists(GitSource *s, const git_oid *oid) {
        _cleanup_(git_object_freep) git_object *obj = NULL;

        return git_object_lookup(&obj, s->repo, oid, GIT_OBJECT_COMMIT) == 0;
}

int git_source_descends_from(GitSource *s, const char *commit, const char *ancestor, Error *e) {
        git_oid c, a;
        int r;

        if ((r = parse_oid(commit, &c, e)) < 0 || (r = parse_oid(ancestor, &a, e)) < 0)
                return r;
        if (!commit_exists(s, &c))
                return error_set(e, -ENOENT, "commit %s is not in the repository", commit);
        if (!commit_exists(s, &a))
                return error_set(e, -ENOENT, "commit %s is not in the repository", ancestor);

        r = git_graph_descendant_of(s->repo, &c, &a);
        if (r < 0)
                return git_map_error(r, e, commit);
        return r;
}

int git_source_commit_signature(GitSource *s, const char *rev, char **ret_signature, char **ret_signed_data,
                                size_t *ret_size, Error *e) {
        git_buf sig = GIT_BUF_INIT, data = GIT_BUF_INIT;
        git_oid oid;
        int r;

        r = parse_oid(rev, &oid, e);
        if (r < 0)
                return r;

        r = git_commit_extract_signature(&sig, &data, s->repo, &oid, NULL);
        if (r == GIT_ENOTFOUND) {
                git_buf_dispose(&sig);
                git_buf_dispose(&data);
                return error_set(e, -ENOENT, "commit %s is not signed", rev);
        }
        if (r < 0)
                return git_map_error(r, e, rev);

        *ret_signature = strndup(sig.ptr, sig.size);
        *ret_signed_data = malloc(data.size + 1);
        if (*ret_signed_data) {
                memcpy(*ret_signed_data, data.ptr, data.size);
                (*ret_signed_data)[data.size] = 0;
        }
        *ret_size = data.size;
        git_buf_dispose(&sig);
        git_buf_dispose(&data);
        if (!*ret_signature || !*ret_signed_data) {
                free(*ret_signature);
                free(*ret_signed_data);
                return -ENOMEM;
        }
        return 0;
}

int git_source_read_file(GitSource *s, const char *rev, const char *path, size_t max, char **ret, size_t *ret_size,
                         Error *e) {
        _cleanup_(git_object_freep) git_object *commit = NULL, *blob = NULL;
        git_tree *tree = NULL;
        git_tree_entry *entry = NULL;
        git_oid oid;
        size_t size;
        char *buf;
        int r;

        r = parse_oid(rev, &oid, e);
        if (r < 0)
                return r;
        r = git_object_lookup(&commit, s->repo, &oid, GIT_OBJECT_COMMIT);
        if (r < 0)
                return git_map_error(r, e, rev);
        r = git_commit_tree(&tree, (git_commit *) commit);
        if (r < 0)
                return git_map_error(r, e, rev);
        r = git_tree_entry_bypath(&entry, tree, path);
        git_tree_free(tree);
        if (r == GIT_ENOTFOUND)
                return -ENOENT;
        if (r < 0)
                return git_map_error(r, e, path);
        if (git_tree_entry_type(entry) != GIT_OBJECT_BLOB || git_tree_entry_filemode(entry) == GIT_FILEMODE_LINK) {
                git_tree_entry_free(entry);
                return error_set(e, -EBADMSG, "'%s' at %s is not a regular file", path, rev);
        }
        r = git_tree_entry_to_object(&blob, s->repo, entry);
        git_tree_entry_free(entry);
        if (r < 0)
                return git_map_error(r, e, path);
        size = (size_t) git_blob_rawsize((git_blob *) blob);
        if (size > max)
                return error_set(e, -EFBIG, "'%s' at %s is larger than %zu bytes", path, rev, max);
        buf = malloc(size + 1);
        if (!buf)
                return -ENOMEM;
        memcpy(buf, git_blob_rawcontent((git_blob *) blob), size);
        buf[size] = 0;
        *ret = buf;
        *ret_size = size;
        return 0;
}
