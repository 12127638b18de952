/* SPDX-License-Identifier: MIT */
/* Reading a bundle (docs/bundle-format.md, section 6): one pass through libarchive, the
 * signature and the manifest before anything else, every member hashed as it streams past. */

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bundle.h"
#include "log.h"
#include "timeutil.h"

#define READ_BLOCK (1024 * 1024)
#define PROGRESS_INTERVAL_USEC (250 * 1000)

static void evp_md_ctx_freep(EVP_MD_CTX **p) {
        EVP_MD_CTX_free(*p);
}

static void archive_readp(struct archive **a) {
        if (*a)
                archive_read_free(*a);
}

void bundle_info_done(BundleInfo *i) {
        if (!i)
                return;
        bundle_manifest_done(&i->manifest);
        free(i->signer_path);
        *i = (BundleInfo) {};
}

int bundle_keyring_load(char *const *paths, CosignKeyring **ret, Error *e) {
        CosignKeyring *k = NULL;
        int r;

        if (strv_length(paths) == 0)
                return error_set(e, -EINVAL, "bundle.keys is empty: no bundle can be verified");
        r = cosign_keyring_load(paths, &k, e);
        if (r < 0)
                return error_prefix(e, r == -ENOMEM ? r : -EINVAL, "bundle.keys");
        for (size_t i = 0; i < cosign_keyring_size(k); i++) {
                const char *type = cosign_keyring_key_type(k, i);

                if (!streq(type, "ecdsa-p256") && !streq(type, "ed25519")) {
                        r = error_set(e, -EINVAL, "bundle.keys: '%s' is an %s key; bundles are signed with ECDSA P-256 "
                                      "or Ed25519", cosign_keyring_path(k, i), type);
                        cosign_keyring_free(k);
                        return r;
                }
        }
        *ret = k;
        return 0;
}

typedef struct Reader {
        const BundleReadOptions *o;
        struct archive *a;
        uint64_t file_size;
        usec_t last_progress;
        bool progress_shown;
        const char *reason;
} Reader;

static void progress(Reader *rd, bool done) {
        usec_t now;
        int64_t pos;

        if (!rd->o->progress || rd->file_size == 0)
                return;
        now = now_usec(CLOCK_MONOTONIC);
        if (!done && now - rd->last_progress < PROGRESS_INTERVAL_USEC)
                return;
        rd->last_progress = now;
        pos = archive_filter_bytes(rd->a, -1);
        fprintf(stderr, "\r%s bundle: %3u%% (%" PRIu64 " of %" PRIu64 " MiB)%s", rd->o->what ?: "Reading",
                (unsigned) (done ? 100 : (uint64_t) MAX(pos, 0) * 100 / rd->file_size),
                (done ? rd->file_size : (uint64_t) MAX(pos, 0)) >> 20, rd->file_size >> 20, done ? "\n" : "");
        rd->progress_shown = true;
}

/* The next header: 1 with *ret, 0 at the end of the archive, -EPERM on a broken archive. */
static int next_header(Reader *rd, struct archive_entry **ret, Error *e) {
        int r = archive_read_next_header(rd->a, ret);

        if (r == ARCHIVE_EOF)
                return 0;
        if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
                return error_set(e, -EPERM, "not a readable tar archive: %s", archive_error_string(rd->a) ?: "?");
        return 1;
}

/* Section 2: a regular file with a valid name and a size in its header. */
static int check_entry(struct archive_entry *entry, const char **ret_name, Error *e) {
        const char *name = archive_entry_pathname(entry);

        if (!name)
                return error_set(e, -EPERM, "a member whose name cannot be read");
        if (archive_entry_hardlink(entry))
                return error_set(e, -EPERM, "member '%s' is a hard link", name);
        if (archive_entry_filetype(entry) != AE_IFREG) {
                mode_t t = archive_entry_filetype(entry);
                return error_set(e, -EPERM, "member '%s' is not a regular file (%s)", name,
                                 t == AE_IFDIR ? "a directory" : t == AE_IFLNK ? "a symbolic link" :
                                 t == AE_IFCHR || t == AE_IFBLK ? "a device" : t == AE_IFIFO ? "a FIFO" : "another type");
        }
        if (archive_entry_sparse_count(entry) > 0)
                return error_set(e, -EPERM, "member '%s' is a sparse file", name);
        if (!archive_entry_size_is_set(entry) || archive_entry_size(entry) < 0)
                return error_set(e, -EPERM, "member '%s' has no size", name);
        if (!bundle_member_name_valid(name))
                return error_set(e, -EPERM, "member '%s' has an invalid name (absolute, '..', hidden or bad characters)",
                                 name);
        *ret_name = name;
        return 0;
}

/* Reads a small member whole: the manifest or the signature. */
static int read_small(Reader *rd, const char *expected, size_t max, uint8_t **ret, size_t *ret_size, Error *e) {
        struct archive_entry *entry;
        _cleanup_free_ uint8_t *buf = NULL;
        const char *name;
        int64_t size;
        la_ssize_t n;
        int r;

        r = next_header(rd, &entry, e);
        if (r == 0)
                return error_set(e, -EPERM, "the archive ends before '%s'", expected);
        if (r < 0)
                return r;
        r = check_entry(entry, &name, e);
        if (r < 0)
                return r;
        if (!streq(name, expected))
                return error_set(e, -EPERM, "the %s member is '%s', not '%s'",
                                 streq(expected, BUNDLE_MANIFEST_NAME) ? "first" : "second", name, expected);
        size = archive_entry_size(entry);
        if ((uint64_t) size > max)
                return error_set(e, -EPERM, "'%s' is larger than %zu bytes", expected, max);
        buf = malloc((size_t) size + 1);
        if (!buf)
                return -ENOMEM;
        n = archive_read_data(rd->a, buf, (size_t) size);
        if (n != (la_ssize_t) size)
                return error_set(e, -EPERM, "'%s' is truncated: %s", expected,
                                 n < 0 ? archive_error_string(rd->a) ?: "?" : "short read");
        *ret = TAKE_PTR(buf);
        *ret_size = (size_t) size;
        return 0;
}

static int check_expectations(Reader *rd, const BundleManifest *m, const BundleExpect *x, Error *e) {
        char a[TIMESTAMP_MAX];

        rd->reason = "host";
        if (!streq(m->host, x->host))
                return error_set(e, -EPERM, "the bundle is for host '%s', this machine is '%s'", m->host, x->host);
        if (m->has_closure && x->store_dir && !streq(m->store_dir, x->store_dir))
                return error_set(e, -EPERM, "the bundle's closure is for the store '%s', this machine's is '%s'",
                                 m->store_dir, x->store_dir);
        rd->reason = "expired";
        if ((int64_t) x->now >= m->expires)
                return error_set(e, -EPERM, "the bundle expired at %s", format_timestamp(a, (time_t) m->expires));
        rd->reason = "sequence";
        if (m->sequence <= x->last_sequence && !x->allow_downgrade)
                return error_set(e, -EPERM,
                                 "sequence %" PRIu64 " is not above %" PRIu64 ", the last applied: a replay or a "
                                 "downgrade (--allow-downgrade to apply it anyway)", m->sequence, x->last_sequence);
        rd->reason = NULL;
        return 0;
}

static int verify_head(Reader *rd, BundleInfo *info, Error *e) {
        _cleanup_free_ uint8_t *manifest = NULL, *sig = NULL;
        size_t manifest_size, sig_size, key;
        uint8_t digest[32];
        int r;

        r = read_small(rd, BUNDLE_MANIFEST_NAME, BUNDLE_MANIFEST_MAX, &manifest, &manifest_size, e);
        if (r < 0)
                return r;
        r = read_small(rd, BUNDLE_SIGNATURE_NAME, BUNDLE_SIGNATURE_MAX, &sig, &sig_size, e);
        if (r < 0)
                return r;

        if (cosign_keyring_verify(rd->o->keys, manifest, manifest_size, sig, sig_size, &key) < 0) {
                rd->reason = "bundle-signature";
                return error_set(e, -EPERM, "the signature of the manifest does not verify with any key of bundle.keys");
        }
        (void) snprintf(info->signer, sizeof(info->signer), "%s", cosign_keyring_fingerprint(rd->o->keys, key));
        info->signer_path = strdup(cosign_keyring_path(rd->o->keys, key));
        if (!info->signer_path)
                return -ENOMEM;
        if (!EVP_Digest(manifest, manifest_size, digest, NULL, EVP_sha256(), NULL))
                return -EIO;
        for (size_t i = 0; i < 32; i++)
                (void) sprintf(info->id + 2 * i, "%02x", digest[i]);

        r = bundle_manifest_parse(manifest, manifest_size, &info->manifest, e);
        if (r < 0)
                return r;
        return check_expectations(rd, &info->manifest, rd->o->expect, e);
}

static int write_all(int fd, const void *p, size_t n) {
        while (n > 0) {
                ssize_t k = write(fd, p, n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p = (const uint8_t *) p + k;
                n -= (size_t) k;
        }
        return 0;
}

/* Creates the directories of name below dirfd and opens name for writing. It never follows a
 * symbolic link: there are none below a staging directory that only this reader writes to. */
static int open_for_writing(int dirfd, const char *name, Error *e) {
        _cleanup_free_ char *copy = strdup(name);
        char *slash;
        int fd;

        if (!copy)
                return -ENOMEM;
        for (slash = strchr(copy, '/'); slash; slash = strchr(slash + 1, '/')) {
                *slash = 0;
                if (mkdirat(dirfd, copy, 0755) < 0 && errno != EEXIST)
                        return error_set(e, -errno, "cannot create the directory '%s': %m", copy);
                *slash = '/';
        }
        fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd < 0)
                return error_set(e, -errno, "cannot create '%s' in the staging directory: %m", name);
        return fd;
}

static int read_member(Reader *rd, BundleMember *m, BundleInfo *info, Error *e) {
        _cleanup_(evp_md_ctx_freep) EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        _cleanup_close_ int fd = -EBADF;
        uint8_t digest[32];
        uint64_t done = 0;
        const void *buf;
        size_t size;
        la_int64_t offset;
        int r;

        if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
                return -ENOMEM;
        if (rd->o->staging_fd >= 0) {
                fd = open_for_writing(rd->o->staging_fd, m->path, e);
                if (fd < 0)
                        return fd;
        }
        for (;;) {
                r = archive_read_data_block(rd->a, &buf, &size, &offset);
                if (r == ARCHIVE_EOF)
                        break;
                if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
                        return error_set(e, -EPERM, "member '%s' is truncated or unreadable: %s", m->path,
                                         archive_error_string(rd->a) ?: "?");
                if ((uint64_t) offset != done)
                        return error_set(e, -EPERM, "member '%s' has holes", m->path);
                if (size > m->size - done)
                        return error_set(e, -EPERM, "member '%s' is larger than the %" PRIu64 " bytes listed", m->path,
                                         m->size);
                EVP_DigestUpdate(ctx, buf, size);
                if (fd >= 0) {
                        r = write_all(fd, buf, size);
                        if (r < 0)
                                return error_set(e, r, "cannot write '%s' in the staging directory: %s", m->path,
                                                 strerror(-r));
                }
                done += size;
                progress(rd, false);
        }
        if (done != m->size)
                return error_set(e, -EPERM, "member '%s' has %" PRIu64 " bytes, %" PRIu64 " listed", m->path, done,
                                 m->size);
        if (EVP_DigestFinal_ex(ctx, digest, NULL) != 1)
                return -EIO;
        if (memcmp(digest, m->sha256, 32) != 0)
                return error_set(e, -EPERM, "member '%s' does not match its sha256 in the manifest", m->path);
        info->bytes += done;
        return 0;
}

static int read_members(Reader *rd, BundleInfo *info, Error *e) {
        BundleManifest *m = &info->manifest;
        struct archive_entry *entry;
        size_t seen = 0;
        int r;

        for (;;) {
                const char *name;
                BundleMember *mb;

                r = next_header(rd, &entry, e);
                if (r < 0)
                        return r;
                if (r == 0)
                        break;
                r = check_entry(entry, &name, e);
                if (r < 0)
                        return r;
                mb = bundle_manifest_find(m, name);
                if (!mb)
                        return error_set(e, -EPERM, "member '%s' is not in the manifest", name);
                if (mb->seen)
                        return error_set(e, -EPERM, "member '%s' appears twice", name);
                mb->seen = true;
                seen++;
                if ((uint64_t) archive_entry_size(entry) != mb->size)
                        return error_set(e, -EPERM, "member '%s' has %lld bytes, %" PRIu64 " listed", name,
                                         (long long) archive_entry_size(entry), mb->size);
                r = read_member(rd, mb, info, e);
                if (r < 0)
                        return r;
        }
        if (seen != m->n_members)
                for (size_t i = 0; i < m->n_members; i++)
                        if (!m->members[i].seen)
                                return error_set(e, -EPERM, "member '%s' is listed in the manifest but missing (%zu of "
                                                 "%zu missing)", m->members[i].path, m->n_members - seen, m->n_members);
        return 0;
}

int bundle_read(const char *path, const BundleReadOptions *o, BundleInfo *ret, Error *e) {
        _cleanup_(archive_readp) struct archive *a = NULL;
        _cleanup_close_ int fd = -EBADF;
        BundleInfo info = {};
        struct stat st;
        Reader rd = { .o = o };
        int r;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return error_set(e, -errno, "cannot open the bundle '%s': %m", path);
        if (fstat(fd, &st) < 0)
                return error_set(e, -errno, "cannot stat the bundle '%s': %m", path);
        if (!S_ISREG(st.st_mode))
                return error_set(e, -EINVAL, "'%s' is not a regular file", path);
        (void) posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);

        a = archive_read_new();
        if (!a)
                return -ENOMEM;
        /* tar only (ustar, pax, GNU), plain or compressed with gzip, xz or zstd. */
        if (archive_read_support_format_tar(a) != ARCHIVE_OK || archive_read_support_filter_gzip(a) != ARCHIVE_OK ||
            archive_read_support_filter_xz(a) != ARCHIVE_OK || archive_read_support_filter_zstd(a) != ARCHIVE_OK)
                return error_set(e, -EIO, "libarchive lacks tar, gzip, xz or zstd support: %s",
                                 archive_error_string(a) ?: "?");
        if (archive_read_open_fd(a, fd, READ_BLOCK) != ARCHIVE_OK)
                return error_set(e, -EPERM, "'%s' is not a tar archive: %s", path, archive_error_string(a) ?: "?");
        rd.a = a;
        rd.file_size = (uint64_t) st.st_size;

        r = verify_head(&rd, &info, e);
        if (r >= 0)
                r = read_members(&rd, &info, e);
        if (rd.progress_shown)
                progress(&rd, r >= 0);
        if (r < 0) {
                if (o->ret_reason)
                        *o->ret_reason = rd.reason ?: "bundle-integrity";
                bundle_info_done(&info);
                return r == -ENOMEM ? error_set(e, r, "out of memory") : r;
        }
        *ret = info;
        return 0;
}
