/* SPDX-License-Identifier: MIT */
/* Reading a bundle (docs/bundle-format.md, section 6): one pass over the archive, the
 * signature and the manifest before anything else, every member hashed as it streams past
 * (the larger ones by the hasher thread, hasher.c) and, with a staging directory, written
 * below it. The tar stream and its headers are read by tar-reader.c. */

#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include "basic/openssl-util.h"
#include "bundle/bundle.h"
#include "basic/fileio.h"
#include "basic/hasher.h"
#include "basic/log.h"
#include "basic/strutil.h"
#include "bundle/tar-reader.h"
#include "basic/timeutil.h"



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

/* ---- The bundle ---- */

typedef struct Reader {
        const BundleReadOptions *o;
        TarInput in;
        uint64_t file_size;
        const char *reason;
} Reader;

static void progress(Reader *rd) {
        if (!rd->o->progress)
                return;
        rd->o->progress->read_done = MIN(tar_input_position(&rd->in), rd->file_size);
        progress_update(rd->o->progress, false);
}

/* What the import of the closure will add to the progress: the NAR files the bundle carries. */
static void progress_count_closure(Reader *rd, const BundleManifest *m) {
        _cleanup_free_ char *nar = NULL;

        if (!rd->o->progress || rd->o->staging_fd < 0 || !m->has_closure || asprintf(&nar, "%s/nar/", m->cache) < 0)
                return;
        for (size_t i = 0; i < m->n_members; i++)
                if (strncmp(m->members[i].path, nar, strlen(nar)) == 0)
                        rd->o->progress->import_total += m->members[i].size;
}

/* Section 2: a valid name (the reason before the name: a long name is cut in the message). */
static int check_name(const TarHeader *h, Error *e) {
        const char *problem = h->name_nul ? "a NUL byte in its pax path" : bundle_member_name_problem(h->name);

        if (problem)
                return error_set(e, -EPERM, "a member has an invalid name (%s): '%s'", problem, SHOWN(h->name));
        return 0;
}

/* Reads a small member whole: the manifest or the signature. */
static int read_small(Reader *rd, const char *expected, size_t max, uint8_t **ret, size_t *ret_size, Error *e) {
        _cleanup_(tar_header_done) TarHeader h = {};
        _cleanup_free_ uint8_t *buf = NULL;
        uint64_t got;
        int r;

        r = tar_next_header(&rd->in, &h, e);
        if (r == 0)
                return error_set(e, -EPERM, "the archive ends before '%s'", expected);
        if (r < 0)
                return r;
        r = check_name(&h, e);
        if (r < 0)
                return r;
        if (!streq(h.name, expected))
                return error_set(e, -EPERM, "the %s member is '%s', not '%s'",
                                 streq(expected, BUNDLE_MANIFEST_NAME) ? "first" : "second", SHOWN(h.name), expected);
        if (h.size > max)
                return error_set(e, -EPERM, "'%s' is larger than %zu bytes", expected, max);
        buf = malloc((size_t) h.size + 1);
        if (!buf)
                return -ENOMEM;
        r = tar_input_read(&rd->in, buf, h.size, &got, e);
        if (r < 0)
                return r;
        if (got < h.size)
                return error_set(e, -EPERM, "'%s' is truncated", expected);
        r = tar_skip_padding(&rd->in, h.size, e);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(buf);
        *ret_size = (size_t) h.size;
        return 0;
}

static int check_expectations(Reader *rd, const BundleManifest *m, const BundleExpect *x, Error *e) {
        char a[TIMESTAMP_MAX], b[TIMESTAMP_MAX];
        int64_t now;

        rd->reason = "host";
        if (!streq(m->host, x->host))
                return error_set(e, -EPERM, "the bundle is for host '%s', this machine is '%s'", m->host, x->host);
        if (m->has_closure && x->store_dir && !streq(m->store_dir, x->store_dir))
                return error_set(e, -EPERM, "the bundle's closure is for the store '%s', this machine's is '%s'",
                                 m->store_dir, x->store_dir);
        /* The machine's time is never earlier than a time it has seen signed: a clock set back
         * cannot revive an expired bundle. */
        now = MAX((int64_t) x->now, x->time_floor);
        rd->reason = "future";
        if (m->created > now && (uint64_t) (m->created - now) > x->future_tolerance)
                return error_set(e, -EPERM,
                                 "the bundle was signed at %s, more than %" PRIu64 " s after this machine's time %s "
                                 "(the clock, or the time floor when the clock is behind it; bundle.future-tolerance)",
                                 format_timestamp(a, (time_t) m->created), x->future_tolerance,
                                 format_timestamp(b, (time_t) now));
        rd->reason = "expired";
        if (now >= m->expires)
                return error_set(e, -EPERM, "the bundle expired at %s (this machine's time: %s%s)",
                                 format_timestamp(a, (time_t) m->expires), format_timestamp(b, (time_t) now),
                                 now > (int64_t) x->now ? ", the time floor, as the clock is behind it" : "");
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
        hex_encode(digest, sizeof(digest), info->id);

        r = bundle_manifest_parse(manifest, manifest_size, &info->manifest, e);
        if (r < 0)
                return r;
        progress_count_closure(rd, &info->manifest);
        return check_expectations(rd, &info->manifest, rd->o->expect, e);
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

/* Members from 1 MiB on are hashed by the hasher thread; smaller ones are not worth the
 * handing over. */
#define HASHER_MIN_MEMBER (1024 * 1024)

static int read_member(Reader *rd, BundleMember *m, BundleInfo *info, Error *e) {
        _cleanup_(evp_md_ctx_freep) EVP_MD_CTX *own = NULL;
        _cleanup_close_ int fd = -EBADF;
        EVP_MD_CTX *ctx;
        Hasher *hasher;
        uint8_t digest[32];
        int r;

        if (!rd->in.hasher && m->size >= HASHER_MIN_MEMBER)
                rd->in.hasher = hasher_start();
        hasher = m->size >= HASHER_MIN_MEMBER ? rd->in.hasher : NULL;
        if (hasher)
                ctx = hasher_ctx(hasher); /* the hasher has no jobs: the reader holds it */
        else
                ctx = own = EVP_MD_CTX_new();
        if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
                return -ENOMEM;
        if (rd->o->staging_fd >= 0) {
                fd = open_for_writing(rd->o->staging_fd, m->path, e);
                if (fd < 0)
                        return fd;
        }
        for (uint64_t left = m->size; left > 0;) {
                const uint8_t *p;
                size_t n;

                r = tar_input_peek(&rd->in, left, &p, &n, e);
                if (r < 0)
                        return r;
                if (n == 0)
                        return error_set(e, -EPERM, "member '%s' is truncated: the archive ends %" PRIu64 " bytes before "
                                         "its end", SHOWN(m->path), left);
                /* Hashed and written are the same bytes of the same buffer, which nothing changes
                 * until both are done with it. */
                if (hasher)
                        hasher_submit(hasher, p, n, rd->in.slot);
                else if (EVP_DigestUpdate(ctx, p, n) != 1)
                        return -EIO;
                if (fd >= 0) {
                        r = loop_write(fd, p, n);
                        if (r < 0)
                                return error_set(e, r, "cannot write '%s' in the staging directory: %s", m->path,
                                                 strerror(-r));
                }
                tar_input_consume(&rd->in, n);
                left -= n;
                progress(rd);
        }
        if (hasher && !hasher_wait(hasher, UINT_MAX))
                return -EIO;
        if (EVP_DigestFinal_ex(ctx, digest, NULL) != 1)
                return -EIO;
        if (memcmp(digest, m->sha256, 32) != 0)
                return error_set(e, -EPERM, "member '%s' does not match its sha256 in the manifest", SHOWN(m->path));
        info->bytes += m->size;
        return tar_skip_padding(&rd->in, m->size, e);
}

static int read_members(Reader *rd, BundleInfo *info, Error *e) {
        BundleManifest *m = &info->manifest;
        size_t seen = 0;
        int r;

        for (;;) {
                _cleanup_(tar_header_done) TarHeader h = {};
                BundleMember *mb;

                r = tar_next_header(&rd->in, &h, e);
                if (r < 0)
                        return r;
                if (r == 0)
                        break;
                r = check_name(&h, e);
                if (r < 0)
                        return r;
                mb = bundle_manifest_find(m, h.name);
                if (!mb)
                        return error_set(e, -EPERM, "member '%s' is not in the manifest", SHOWN(h.name));
                if (mb->seen)
                        return error_set(e, -EPERM, "member '%s' appears twice", SHOWN(h.name));
                mb->seen = true;
                seen++;
                if (h.size != mb->size)
                        return error_set(e, -EPERM, "member '%s' has %" PRIu64 " bytes, %" PRIu64 " listed",
                                         SHOWN(h.name), h.size, mb->size);
                r = read_member(rd, mb, info, e);
                if (r < 0)
                        return r;
        }
        if (seen != m->n_members)
                for (size_t i = 0; i < m->n_members; i++)
                        if (!m->members[i].seen)
                                return error_set(e, -EPERM, "member '%s' is listed in the manifest but missing (%zu of "
                                                 "%zu missing)", SHOWN(m->members[i].path), m->n_members - seen,
                                                 m->n_members);
        return 0;
}

static int read_bundle(Reader *rd, int fd, BundleInfo *info, Error *e) {
        int r;

        r = tar_input_open(&rd->in, fd, e);
        if (r < 0)
                return r;
        r = verify_head(rd, info, e);
        if (r < 0)
                return r;
        return read_members(rd, info, e);
}

/* The bundle file, opened for reading: a regular file only. O_NONBLOCK while it is opened: a
 * FIFO must not keep the agent (and the lock) waiting for a writer. */
static int open_bundle_file(const char *path, struct stat *st, Error *e) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);

        if (fd < 0)
                return error_set(e, -errno, "cannot open the bundle '%s': %m", path);
        if (fstat(fd, st) < 0)
                return error_set(e, -errno, "cannot stat the bundle '%s': %m", path);
        if (!S_ISREG(st->st_mode))
                return error_set(e, -EINVAL, "'%s' is not a regular file", path);
        if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) < 0)
                return error_set(e, -errno, "cannot read the bundle '%s': %m", path);
        return TAKE_FD(fd);
}

int bundle_read(const char *path, const BundleReadOptions *o, BundleInfo *ret, Error *e) {
        _cleanup_close_ int fd = -EBADF;
        BundleInfo info = {};
        struct stat st;
        Reader rd = { .o = o, .in.fd = -EBADF };
        int r;

        fd = open_bundle_file(path, &st, e);
        if (fd < 0)
                return fd;
        (void) posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
        rd.file_size = (uint64_t) st.st_size;
        if (o->progress)
                o->progress->read_total = rd.file_size;

        if (st.st_size == 0)
                r = error_set(e, -EPERM, "not a tar archive: the file is empty");
        else
                r = read_bundle(&rd, fd, &info, e);
        if (o->progress && r >= 0) {
                o->progress->read_done = rd.file_size;
                progress_update(o->progress, true);
        }
        tar_input_done(&rd.in);
        if (r < 0) {
                if (e)
                        e->reason = rd.reason ?: "bundle-integrity";
                bundle_info_done(&info);
                return r == -ENOMEM ? error_set(e, r, "out of memory") : r;
        }
        *ret = info;
        return 0;
}

int bundle_read_manifest(const char *path, BundleManifest *ret, char ret_id[static BUNDLE_ID_LEN + 1], Error *e) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ uint8_t *manifest = NULL;
        BundleReadOptions o = {};
        Reader rd = { .o = &o, .in.fd = -EBADF };
        BundleManifest m = {};
        uint8_t digest[32];
        size_t size;
        struct stat st;
        int r;

        fd = open_bundle_file(path, &st, e);
        if (fd < 0)
                return fd;
        rd.file_size = (uint64_t) st.st_size;
        r = tar_input_open(&rd.in, fd, e);
        if (r >= 0)
                r = read_small(&rd, BUNDLE_MANIFEST_NAME, BUNDLE_MANIFEST_MAX, &manifest, &size, e);
        tar_input_done(&rd.in);
        if (r < 0)
                return error_prefix(e, r, "'%s'", path);
        if (!EVP_Digest(manifest, size, digest, NULL, EVP_sha256(), NULL))
                return -EIO;
        r = bundle_manifest_parse(manifest, size, &m, e);
        if (r < 0)
                return error_prefix(e, r, "'%s'", path);
        hex_encode(digest, sizeof(digest), ret_id);
        *ret = m;
        return 0;
}
