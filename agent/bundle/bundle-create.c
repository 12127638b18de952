/* SPDX-License-Identifier: MIT */
/* `bundle create`: everything an air-gapped machine needs for one revision, in one signed tar
 * file (docs/bundle-format.md). The members are prepared in a work directory next to the
 * output, hashed, listed in the manifest, and then streamed into the archive after the
 * manifest and its signature. */

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <libgen.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sys/stat.h>
#include <unistd.h>

#include "basic/openssl-util.h"
#include "bundle/archive-dl.h"
#include "bundle/bundle-internal.h"
#include "bundle/bundle.h"
#include "config/config.h"
#include "basic/fileio.h"
#include "git/git.h"
#include "oci/images.h"
#include "basic/log.h"
#include "system/process.h"
#include "system/nix.h"
#include "basic/strutil.h"

#define MIRROR_NAME "repo.git"           /* in the work directory, not a member */
#define FULL_PACK_NAME "repository.full" /* a delta's whole history, for the evaluation; not a member */
#define COPY_BLOCK (1024 * 1024)


static void members_done(Members *m) {
        for (size_t i = 0; i < m->n; i++)
                free(m->list[i].path);
        free(m->list);
        *m = (Members) {};
}

static int add_member(int rootfd, const char *path, Members *m, Error *e) {
        if (m->n == m->allocated) {
                size_t k = MAX(m->allocated * 2, 64u);
                Member *l = realloc(m->list, k * sizeof(Member));
                if (!l)
                        return -ENOMEM;
                m->list = l;
                m->allocated = k;
        }
        int r = file_sha256(rootfd, path, m->list[m->n].sha256, &m->list[m->n].size);
        if (r < 0)
                return error_set(e, r, "cannot read '%s': %s", path, strerror(-r));
        m->list[m->n].path = strdup(path);
        if (!m->list[m->n].path)
                return -ENOMEM;
        m->n++;
        return 0;
}

static int name_cmp(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

/* Every regular file below dir/prefix, in a stable order, hashed. Anything else there (a
 * link, a device) is an error: a bundle holds regular files only. */
static int collect(int rootfd, const char *prefix, Members *m, Error *e) {
        _cleanup_(closedirp) DIR *d = NULL;
        _cleanup_strv_free_ char **names = NULL;
        struct dirent *de;
        int fd, r;

        fd = openat(rootfd, prefix, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return error_set(e, -errno, "cannot open '%s': %m", prefix);
        d = fdopendir(fd);
        if (!d) {
                close(fd);
                return error_set(e, -errno, "cannot read '%s': %m", prefix);
        }
        while ((de = readdir(d)))
                if (!streq(de->d_name, ".") && !streq(de->d_name, "..") && strv_extend(&names, de->d_name) < 0)
                        return -ENOMEM;
        if (names)
                qsort(names, strv_length(names), sizeof(char *), name_cmp);

        for (char **n = names; n && *n; n++) {
                _cleanup_free_ char *path = NULL;
                struct stat st;

                if (asprintf(&path, "%s/%s", prefix, *n) < 0)
                        return -ENOMEM;
                if (fstatat(rootfd, path, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        return error_set(e, -errno, "cannot stat '%s': %m", path);
                if (S_ISDIR(st.st_mode)) {
                        r = collect(rootfd, path, m, e);
                        if (r < 0)
                                return r;
                        continue;
                }
                if (!S_ISREG(st.st_mode))
                        return error_set(e, -EINVAL, "'%s' is not a regular file", path);
                if (!bundle_member_name_valid(path))
                        return error_set(e, -EINVAL, "'%s' cannot be a member name", path);
                r = add_member(rootfd, path, m, e);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* The members after the manifest and its signature: the pack, then the binary cache (with a
 * closure) and the image layouts (with images). */
static int collect_members(int rootfd, const json_t *closure, const json_t *images, Members *m, Error *e) {
        int r;

        r = add_member(rootfd, PACK_NAME, m, e);
        if (r >= 0 && closure)
                r = collect(rootfd, CACHE_NAME, m, e);
        if (r >= 0 && images && json_array_size(images) > 0)
                r = collect(rootfd, IMAGES_NAME, m, e);
        return r;
}

/* ---- the parts ---- */

static int write_pack(const char *repo, const char *rev, const char *base, const char *path, char ret_rev[COMMIT_ID_HEX + 1],
                      Error *e) {
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        int r;

        if (fd < 0)
                return error_set(e, -errno, "cannot create '%s': %m", path);
        r = git_write_pack(repo, rev, base, fd, ret_rev, e);
        if (r >= 0 && close(TAKE_FD(fd)) < 0)
                r = error_set(e, -errno, "cannot write '%s': %m", path);
        return r;
}

/* The history up to the revision; in a delta, without what the base's revision holds. */
static int write_repository(const BundleCreateOptions *o, const BundleManifest *base, const char *work,
                            char rev[COMMIT_ID_HEX + 1], char **ret_flake, Error *e) {
        _cleanup_free_ char *pack = path_join(work, PACK_NAME), *full = path_join(work, FULL_PACK_NAME),
                            *mirror = path_join(work, MIRROR_NAME);
        _cleanup_git_source_ GitSource *git = NULL;
        char delta_rev[COMMIT_ID_HEX + 1];
        int r;

        if (!pack || !full || !mirror)
                return -ENOMEM;
        r = write_pack(o->repo, o->rev, NULL, base ? full : pack, rev, e);
        if (r < 0)
                return r;

        /* The flake is evaluated from a mirror made of exactly the (whole) history, under the
         * same reference the machine will use: what is built here is what will be built there. */
        r = git_source_open(mirror, &git, e);
        if (r < 0)
                return r;
        r = git_source_import_pack(git, base ? full : pack, NULL, e);
        if (r < 0)
                return r;
        r = git_source_pin(git, rev, e);
        if (r < 0)
                return r;
        if (base) {
                r = write_pack(o->repo, rev, base->revision, pack, delta_rev, e);
                if (r < 0)
                        return error_prefix(e, r, "--base");
                (void) unlink(full);
        }
        return flake_ref_for_revision(mirror, GIT_DEPLOY_REF, rev, ret_flake);
}

/* Built here, closure or not: a bundle names the system it was signed for, and signing
 * one that does not build helps nobody. */
static int build_system(const Config *c, const BundleCreateOptions *o, const SystemEval *sys, const char *work,
                        Error *e) {
        _cleanup_free_ char *out_link = path_join(work, "system");
        int r;

        log_info("Building the system of '%s'.", o->host);
        r = out_link ? nix_build_system(c, sys->drv_path, sys->toplevel, out_link, false, e) : -ENOMEM;
        if (r < 0)
                return error_prefix(e, r, "the system does not build");
        return 0;
}

/* The closure of the toplevel (built here from the evaluation's derivation) and, with
 * --with-sources, the sources of the flake and its inputs (for apply --reevaluate). */
static int write_closure(const Config *c, const BundleCreateOptions *o, const char *flake, const SystemEval *sys,
                         const char *work, json_t **ret, Error *e) {
        _cleanup_free_ char *cache_dir = path_join(work, CACHE_NAME), *to = NULL, *store_dir = NULL;
        _cleanup_strv_free_ char **paths = NULL, **argv = NULL;
        json_t *a;
        int r;

        if (!cache_dir || asprintf(&to, "file://%s?compression=none", cache_dir) < 0)
                return -ENOMEM;

        if (strv_extend(&paths, sys->toplevel) < 0)
                return -ENOMEM;
        store_dir = strdup(sys->toplevel);
        if (!store_dir)
                return -ENOMEM;
        *strrchr(store_dir, '/') = 0;

        if (o->with_sources) {
                r = nix_flake_archive(c, flake, to, &paths, e);
                if (r < 0)
                        return r;
        }

        if (strv_extend(&argv, c->system.nix_command) < 0 || strv_extend(&argv, "copy") < 0 ||
            strv_extend(&argv, "--to") < 0 || strv_extend(&argv, to) < 0)
                return -ENOMEM;
        for (char **p = paths; *p; p++)
                if (strv_extend(&argv, *p) < 0)
                        return -ENOMEM;
        log_info("Copying the closure of %s%s into the bundle.", paths[0],
                 o->with_sources ? " and the flake's sources" : "");
        r = process_run(argv, &(ProcessOptions) { .name = "nix copy" }, NULL, e);
        if (r < 0)
                return error_prefix(e, r, "nix copy failed");

        a = json_array();
        for (char **p = paths; a && *p; p++)
                if (json_array_append_new(a, json_string(*p)) < 0) {
                        json_decref(a);
                        a = NULL;
                }
        *ret = a ? json_pack("{s:s, s:s, s:o}", "store-dir", store_dir, "cache", CACHE_NAME, "paths", a) : NULL;
        return *ret ? 0 : -ENOMEM;
}

static int write_images(const Config *c, const SystemEval *sys, const char *work, json_t **ret, Error *e) {
        _cleanup_(image_set_done) ImageSet set = {};
        _cleanup_free_ char *dir = path_join(work, IMAGES_NAME);
        json_t *a;
        int r;

        if (!dir)
                return -ENOMEM;
        r = image_set_from_containers(sys->containers, &set, e);
        if (r < 0)
                return r;
        a = json_array();
        if (!a)
                return -ENOMEM;
        if (set.n == 0) {
                *ret = a;
                return 0;
        }
        r = mkdir(dir, 0755) < 0 ? -errno : 0;
        if (r < 0) {
                json_decref(a);
                return error_set(e, r, "cannot create '%s': %s", dir, strerror(-r));
        }
        log_info("Copying %zu image(s) and their signatures into the bundle.", set.n);
        r = images_export(c, &set, dir, e);
        if (r < 0) {
                json_decref(a);
                return r;
        }
        /* Signing a bundle whose images the machine would refuse helps nobody. */
        if (images_verification_configured(c)) {
                r = images_verify(c, &set, e);
                if (r < 0) {
                        json_decref(a);
                        return error_prefix(e, r, "the images do not verify");
                }
        }
        for (size_t i = 0; i < set.n; i++) {
                const ImageCheck *ic = &set.images[i];
                bool dup = false;

                for (size_t k = 0; k < i; k++)
                        dup = dup || streq(set.images[k].reference, ic->reference);
                if (dup)
                        continue;
                /* The layout's name relative to the work directory. */
                if (json_array_append_new(a, json_pack("{s:s, s:s, s:s}", "reference", ic->reference, "digest",
                                                       ic->digest, "layout", ic->layout + strlen(work) + 1)) < 0) {
                        json_decref(a);
                        return -ENOMEM;
                }
        }
        *ret = a;
        return 0;
}

/* ---- signing and writing ---- */

static int sign(const char *key_path, const char *data, size_t size, uint8_t **ret, size_t *ret_size, Error *e) {
        _cleanup_(evp_pkey_freep) EVP_PKEY *pkey = NULL;
        _cleanup_(evp_md_ctx_freep) EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        _cleanup_fclose_ FILE *f = fopen(key_path, "re");
        const EVP_MD *md;
        uint8_t *sig;
        size_t n = 0;
        char group[64] = "";

        if (!f)
                return error_set(e, -errno, "cannot open the key '%s': %m", key_path);
        pkey = PEM_read_PrivateKey(f, NULL, NULL, NULL);
        if (!pkey || !ctx)
                return error_set(e, -EINVAL, "'%s' is not a PEM private key (unencrypted)", key_path);
        if (EVP_PKEY_get_base_id(pkey) == EVP_PKEY_ED25519)
                md = NULL;
        else if (EVP_PKEY_get_base_id(pkey) == EVP_PKEY_EC &&
                 EVP_PKEY_get_group_name(pkey, group, sizeof(group), NULL) == 1 &&
                 (streq(group, "prime256v1") || streq(group, "P-256")))
                md = EVP_sha256();
        else
                return error_set(e, -EINVAL, "'%s' is neither an ECDSA P-256 nor an Ed25519 key", key_path);

        if (EVP_DigestSignInit_ex(ctx, NULL, md ? EVP_MD_get0_name(md) : NULL, NULL, NULL, pkey, NULL) != 1 ||
            EVP_DigestSign(ctx, NULL, &n, (const uint8_t *) data, size) != 1)
                return error_set(e, -EIO, "cannot sign with '%s'", key_path);
        sig = malloc(n);
        if (!sig)
                return -ENOMEM;
        if (EVP_DigestSign(ctx, sig, &n, (const uint8_t *) data, size) != 1) {
                free(sig);
                return error_set(e, -EIO, "cannot sign with '%s'", key_path);
        }
        *ret = sig;
        *ret_size = n;
        return 0;
}

static int add_filter(struct archive *a, const char *output) {
        size_t len = strlen(output);

        if (len > 4 && streq(output + len - 4, ".zst"))
                return sym_archive_write_add_filter_zstd(a);
        if (len > 3 && streq(output + len - 3, ".xz"))
                return sym_archive_write_add_filter_xz(a);
        if (len > 3 && streq(output + len - 3, ".gz"))
                return sym_archive_write_add_filter_gzip(a);
        return sym_archive_write_add_filter_none(a);
}

static int write_entry(struct archive *a, const char *name, const void *data, size_t size, int64_t mtime) {
        struct archive_entry *entry = sym_archive_entry_new();
        int r;

        if (!entry)
                return -ENOMEM;
        sym_archive_entry_set_pathname(entry, name);
        sym_archive_entry_set_filetype(entry, AE_IFREG);
        sym_archive_entry_set_perm(entry, 0644);
        sym_archive_entry_set_size(entry, (la_int64_t) size);
        sym_archive_entry_set_mtime(entry, mtime, 0);
        r = sym_archive_write_header(a, entry);
        sym_archive_entry_free(entry);
        if (r != ARCHIVE_OK)
                return -EIO;
        if (data && size > 0 && sym_archive_write_data(a, data, size) != (la_ssize_t) size)
                return -EIO;
        return 0;
}

static int write_file_entry(struct archive *a, int rootfd, const Member *m, int64_t mtime, uint8_t *buf, Error *e) {
        _cleanup_close_ int fd = openat(rootfd, m->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        uint64_t done = 0;

        if (fd < 0)
                return error_set(e, -errno, "cannot open '%s': %m", m->path);
        if (write_entry(a, m->path, NULL, m->size, mtime) < 0)
                return error_set(e, -EIO, "cannot write '%s' into the bundle: %s", m->path, sym_archive_error_string(a));
        while (done < m->size) {
                ssize_t n = read(fd, buf, COPY_BLOCK);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return error_set(e, -errno, "cannot read '%s': %m", m->path);
                if (n == 0 || done + (uint64_t) n > m->size)
                        return error_set(e, -EIO, "'%s' changed while the bundle was written", m->path);
                if (sym_archive_write_data(a, buf, (size_t) n) != n)
                        return error_set(e, -EIO, "cannot write '%s' into the bundle: %s", m->path,
                                         sym_archive_error_string(a));
                done += (uint64_t) n;
        }
        return 0;
}

static int write_archive(const char *output, const char *tmp, int fd, int rootfd, const char *manifest,
                         const uint8_t *sig, size_t sig_size, const Members *m, int64_t mtime, Error *e) {
        _cleanup_free_ uint8_t *buf = NULL;
        struct archive *a;
        int r;

        r = archive_dl_open(e);
        if (r < 0)
                return r;
        a = sym_archive_write_new();
        buf = malloc(COPY_BLOCK);
        if (!a || !buf) {
                if (a)
                        sym_archive_write_free(a);
                return -ENOMEM;
        }
        if (sym_archive_write_set_format_pax_restricted(a) != ARCHIVE_OK || add_filter(a, output) != ARCHIVE_OK ||
            sym_archive_write_set_bytes_in_last_block(a, 1) != ARCHIVE_OK ||
            sym_archive_write_open_fd(a, fd) != ARCHIVE_OK) {
                r = error_set(e, -EIO, "cannot write '%s': %s", tmp, sym_archive_error_string(a) ?: "?");
                sym_archive_write_free(a);
                return r;
        }
        if (write_entry(a, BUNDLE_MANIFEST_NAME, manifest, strlen(manifest), mtime) < 0 ||
            write_entry(a, BUNDLE_SIGNATURE_NAME, sig, sig_size, mtime) < 0)
                r = error_set(e, -EIO, "cannot write '%s': %s", tmp, sym_archive_error_string(a) ?: "?");
        for (size_t i = 0; r >= 0 && i < m->n; i++)
                r = write_file_entry(a, rootfd, &m->list[i], mtime, buf, e);
        if (sym_archive_write_close(a) != ARCHIVE_OK && r >= 0)
                r = error_set(e, -EIO, "cannot write '%s': %s", tmp, sym_archive_error_string(a) ?: "?");
        sym_archive_write_free(a);
        return r;
}

/* The archive into tmp (a new file of a random name, made from its template here), renamed
 * over output once complete; tmp is removed when that fails. */
static int write_output(const char *output, char *tmp, int rootfd, const char *manifest, const uint8_t *sig,
                        size_t sig_size, const Members *m, time_t now, Error *e) {
        _cleanup_close_ int out_fd = -EBADF;
        int r;

        out_fd = mkostemp(tmp, O_CLOEXEC);
        if (out_fd < 0)
                return error_set(e, -errno, "cannot create a temporary file next to '%s': %m", output);
        r = write_archive(output, tmp, out_fd, rootfd, manifest, sig, sig_size, m, (int64_t) now, e);
        if (r >= 0 && (fchmod(out_fd, 0644) < 0 || fsync(out_fd) < 0))
                r = error_set(e, -errno, "cannot write '%s': %m", tmp);
        if (close(TAKE_FD(out_fd)) < 0 && r >= 0)
                r = error_set(e, -errno, "cannot write '%s': %m", tmp);
        if (r < 0) {
                (void) unlink(tmp);
                return r;
        }
        if (rename(tmp, output) < 0) {
                r = error_set(e, -errno, "cannot rename '%s' to '%s': %m", tmp, output);
                (void) unlink(tmp);
                return r;
        }
        return 0;
}

static int make_manifest(const BundleCreateOptions *o, const char *rev, const SystemEval *sys, time_t now,
                         json_t *closure, json_t *images, const Members *m, const BundleManifest *base,
                         const char *base_id, json_t *base_blobs, char **ret) {
        json_t *members = json_array(), *j;

        for (size_t i = 0; members && i < m->n; i++)
                if (json_array_append_new(members, json_pack("{s:s, s:I, s:s}", "path", m->list[i].path, "size",
                                                             (json_int_t) m->list[i].size, "sha256",
                                                             m->list[i].sha256)) < 0) {
                        json_decref(members);
                        members = NULL;
                }
        if (!members) {
                json_decref(closure);
                json_decref(images);
                json_decref(base_blobs);
                return -ENOMEM;
        }
        j = json_pack("{s:s, s:i, s:s, s:s, s:s, s:O, s:I, s:I, s:I, s:s, s:o, s:o, s:o}", "format", BUNDLE_FORMAT,
                      "version", BUNDLE_VERSION, "host", o->host, "revision", rev, "system", sys->toplevel,
                      "containers", sys->containers, "sequence",
                      (json_int_t) (o->sequence ?: (uint64_t) now), "created", (json_int_t) now, "expires",
                      (json_int_t) now + (json_int_t) o->expires_in, "repository", PACK_NAME, "closure",
                      closure ?: json_null(), "images", images ?: json_null(), "members", members);
        if (!j) {
                json_decref(base_blobs);
                return -ENOMEM;
        }
        if (base && json_object_set_new(j, "base", json_pack("{s:s, s:I, s:s, s:o}", "id", base_id, "sequence",
                                                             (json_int_t) base->sequence, "revision", base->revision,
                                                             "blobs", base_blobs ?: json_array())) < 0) {
                json_decref(j);
                return -ENOMEM;
        }
        if (!base)
                json_decref(base_blobs);
        *ret = json_dumps(j, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
        json_decref(j);
        return *ret ? 0 : -ENOMEM;
}

int bundle_create(const Config *c, const BundleCreateOptions *o, Error *e) {
        _cleanup_free_ char *out_copy = strdup(o->output), *work = NULL, *tmp = NULL, *flake = NULL, *manifest = NULL;
        _cleanup_free_ uint8_t *sig = NULL;
        _cleanup_(members_done) Members members = {};
        _cleanup_(system_eval_done) SystemEval sys = {};
        _cleanup_close_ int rootfd = -EBADF;
        _cleanup_(bundle_manifest_done) BundleManifest base = {};
        char base_id[BUNDLE_ID_LEN + 1] = "";
        json_t *closure = NULL, *images = NULL, *base_blobs = NULL;
        char rev[COMMIT_ID_HEX + 1];
        size_t sig_size = 0;
        time_t now = time(NULL);
        int r;

        /* The temporary output: a new file of a random name beside OUT (O_EXCL: never a file or
         * a symlink someone planted there), renamed over OUT once complete. */
        if (!out_copy || asprintf(&work, "%s/.atticd-bundle-XXXXXX", dirname(out_copy)) < 0 ||
            asprintf(&tmp, "%s.XXXXXX", o->output) < 0)
                return -ENOMEM;
        if (o->base) {
                r = bundle_delta_read_base(o, &base, base_id, e);
                if (r < 0)
                        return r;
        }
        if (!mkdtemp(work))
                return error_set(e, -errno, "cannot create a work directory next to '%s': %m", o->output);

        r = write_repository(o, o->base ? &base : NULL, work, rev, &flake, e);
        if (r < 0)
                goto finish;
        log_info("Bundling revision %s of '%s' for host '%s'.", rev, o->repo, o->host);

        /* One evaluation: the system store path and the images that the manifest names, so that
         * the machine activates exactly that path and evaluates nothing. */
        r = nix_evaluate_system(c, flake, &sys, e);
        if (r < 0)
                goto finish;
        r = build_system(c, o, &sys, work, e);
        if (r < 0)
                goto finish;
        if (o->closure) {
                r = write_closure(c, o, flake, &sys, work, &closure, e);
                if (r < 0)
                        goto finish;
        }
        if (o->images) {
                r = write_images(c, &sys, work, &images, e);
                if (r < 0)
                        goto finish;
        }

        rootfd = open(work, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (rootfd < 0) {
                r = error_set(e, -errno, "cannot open '%s': %m", work);
                goto finish;
        }
        r = collect_members(rootfd, closure, images, &members, e);
        if (r < 0)
                goto finish;

        if (o->base) {
                r = bundle_delta_leave_out(c, work, closure, &members, &base, base_id, &base_blobs, e);
                if (r < 0)
                        goto finish;
        }
        r = make_manifest(o, rev, &sys, now, TAKE_PTR(closure), TAKE_PTR(images), &members, o->base ? &base : NULL,
                          base_id, TAKE_PTR(base_blobs), &manifest);
        if (r < 0)
                goto finish;
        r = sign(o->key, manifest, strlen(manifest), &sig, &sig_size, e);
        if (r < 0)
                goto finish;
        r = write_output(o->output, tmp, rootfd, manifest, sig, sig_size, &members, now, e);
        if (r < 0)
                goto finish;
        log_info("Wrote '%s': revision %s, %zu members after the manifest, sequence %" PRIu64 ", expires in %" PRIu64 " s.", o->output,
                 rev, members.n, o->sequence ?: (uint64_t) now, o->expires_in);
finish:
        json_decref(closure);
        json_decref(images);
        (void) rm_rf(work);
        if (r == -ENOMEM)
                error_set(e, r, "out of memory");
        return r;
}

