/* SPDX-License-Identifier: MIT */
/* The bundle reader over arbitrary input: bundle_read() (agent/bundle/bundle-read.c) on a file that
 * holds the input: any bytes, read as the agent reads a bundle (libarchive only decompresses
 * gzip, xz or zstd; the reader parses the ustar and pax headers itself and refuses every other
 * header kind, GNU's included). Built twice: fuzz-bundle-read verifies only (staging_fd -1), fuzz-bundle-extract
 * (FUZZ_BUNDLE_EXTRACT) also writes the members below a staging directory, emptied each run.
 *
 * The keyring holds the fuzz bundle keys (keys/fuzz-p256.pub and keys/fuzz-ed25519.pub). A
 * seed signed with one of them keeps verifying while the fuzzer changes what follows
 * manifest.sig. To let it change the manifest too: when the input is a plain tar whose first
 * two members are ustar headers for manifest.json and manifest.sig, and manifest.sig holds
 * "@SIG@" (or "@EDSIG@"), manifest.sig is replaced by the fuzz key's P-256 (Ed25519) signature
 * of manifest.json before the file is written.
 *
 * The machine: host "fuzz-host", store /nix/store, last sequence 5, now 2025-06-15.
 *
 * What must hold: an accepted bundle had every listed member, of the listed sizes, and no global
 * pax header (section 1; checked on plain tar only); a staging
 * directory holds nothing but regular files named by the manifest (after a refusal too), each
 * of at most its listed size, and of exactly it after an acceptance; and extracting accepts
 * exactly what verifying alone accepts (`apply` and `verify` agree). */

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "bundle/bundle.h"
#include "basic/fileio.h"
#include "fuzz-common.h"
#include "basic/macro.h"

static CosignKeyring *keys;
static const BundleExpect expect = {
        .host = "fuzz-host",
        .store_dir = "/nix/store",
        .last_sequence = 5,
        .now = 1750000000,
};

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        char *paths[] = { (char *) fuzz_data_path("keys/fuzz-p256.pub"), (char *) fuzz_data_path("keys/fuzz-ed25519.pub"),
                          NULL };
        struct rlimit fsize = { 256u << 20, 256u << 20 };
        Error e = {};

        if (bundle_keyring_load(paths, &keys, &e) < 0) {
                fprintf(stderr, "%s\n", e.message);
                abort();
        }
        /* A member of gigabytes compresses to little: keep the disk. */
        (void) signal(SIGXFSZ, SIG_IGN);
        (void) setrlimit(RLIMIT_FSIZE, &fsize);
        return 0;
}

/* ---- Re-signing ---- */

#define BLOCK 512u

static bool ustar_size(const uint8_t *h, uint64_t *ret) {
        uint64_t v = 0;
        size_t i = 0;

        while (i < 12 && h[124 + i] == ' ')
                i++;
        if (i == 12 || h[124 + i] < '0' || h[124 + i] > '7')
                return false;
        for (; i < 12 && h[124 + i] >= '0' && h[124 + i] <= '7'; i++)
                v = v * 8 + (uint64_t) (h[124 + i] - '0');
        *ret = v;
        return true;
}

static bool ustar_is(const uint8_t *h, const char *name) {
        return memcmp(h, name, strlen(name) + 1) == 0 && (h[156] == '0' || h[156] == 0) && h[345] == 0;
}

static void ustar_set_size(uint8_t *h, uint64_t size) {
        unsigned sum = 0;
        char f[13];

        (void) snprintf(f, sizeof(f), "%011llo", (unsigned long long) size);
        memcpy(h + 124, f, 12);
        memset(h + 148, ' ', 8);
        for (size_t i = 0; i < BLOCK; i++)
                sum += h[i];
        (void) snprintf(f, sizeof(f), "%06o", sum);
        memcpy(h + 148, f, 7);
        h[155] = ' ';
}

static size_t round_up(uint64_t n) {
        return (size_t) ((n + BLOCK - 1) / BLOCK * BLOCK);
}

/* The input with manifest.sig signed afresh, or NULL when it does not ask for that. */
static uint8_t *resign(const uint8_t *data, size_t size, size_t *ret_size) {
        _cleanup_free_ uint8_t *sig = NULL;
        uint64_t manifest_size, sig_size;
        size_t off, rest, new_sig_size;
        const uint8_t *old;
        uint8_t *out, *h;
        bool ed25519;

        if (size < 2 * BLOCK || !ustar_is(data, "manifest.json") || !ustar_size(data, &manifest_size) ||
            manifest_size > size - BLOCK)
                return NULL;
        off = BLOCK + round_up(manifest_size);
        if (off > size - BLOCK || !ustar_is(data + off, "manifest.sig") || !ustar_size(data + off, &sig_size) ||
            sig_size > size - off - BLOCK)
                return NULL;
        old = data + off + BLOCK;
        if (sig_size == 5 && memcmp(old, "@SIG@", 5) == 0)
                ed25519 = false;
        else if (sig_size == 7 && memcmp(old, "@EDSIG@", 7) == 0)
                ed25519 = true;
        else
                return NULL;

        if (ed25519)
                fuzz_sign_ed25519(data + BLOCK, (size_t) manifest_size, &sig, &new_sig_size);
        else
                fuzz_sign_p256(data + BLOCK, (size_t) manifest_size, &sig, &new_sig_size);
        rest = MIN(size, off + BLOCK + round_up(sig_size));
        out = calloc(1, off + BLOCK + round_up(new_sig_size) + (size - rest));
        if (!out)
                abort();
        memcpy(out, data, off + BLOCK);
        h = out + off;
        ustar_set_size(h, new_sig_size);
        memcpy(h + BLOCK, sig, new_sig_size);
        memcpy(h + BLOCK + round_up(new_sig_size), data + rest, size - rest);
        *ret_size = off + BLOCK + round_up(new_sig_size) + (size - rest);
        return out;
}

/* Whether a plain tar holds a global pax header (typeflag 'g'), which section 1 does not allow:
 * the headers are walked by their sizes, as far as they can be read. */
static bool has_global_header(const uint8_t *data, size_t size) {
        for (size_t off = 0; off + BLOCK <= size;) {
                const uint8_t *h = data + off;
                uint64_t n;
                size_t i;

                for (i = 0; i < BLOCK && h[i] == 0; i++)
                        ;
                if (i == BLOCK || memcmp(h + 257, "ustar", 5) != 0 || !ustar_size(h, &n) || n > size)
                        return false;
                if (h[156] == 'g')
                        return true;
                off += BLOCK + round_up(n);
        }
        return false;
}

/* ---- The staging directory ---- */

#ifdef FUZZ_BUNDLE_EXTRACT
/* The manifest of the bundle at path as the reader would see it, read here apart from
 * bundle_read() (which keeps it to itself on a refusal): 0, or -1 when there is none. */
static int first_manifest(const char *path, BundleManifest *ret) {
        struct archive *a = archive_read_new();
        struct archive_entry *entry;
        _cleanup_free_ uint8_t *buf = NULL;
        la_ssize_t n = -1;
        int64_t size;

        if (!a)
                abort();
        {
                /* A plain tar: the first member's data straight from its ustar header, as the
                 * reader takes it (libarchive refuses some headers the reader reads, such as a
                 * uid field with bytes after its NUL, which the reader ignores). */
                _cleanup_free_ char *file = NULL;
                size_t file_size = 0;

                if (read_full_file(path, 16 * 1024 * 1024, &file, &file_size) >= 0 && file_size >= 512 &&
                    memcmp(file + 257, "ustar", 5) == 0 && file[156] != 'x') {
                        char field[13] = {};
                        unsigned long long sz;
                        char *end;

                        memcpy(field, file + 124, 12);
                        sz = strtoull(field, &end, 8);
                        if (end != field && sz <= BUNDLE_MANIFEST_MAX && 512 + sz <= file_size) {
                                archive_read_free(a);
                                return bundle_manifest_parse((const uint8_t *) file + 512, (size_t) sz, ret, NULL) < 0 ? -1 : 0;
                        }
                }
        }
        (void) archive_read_support_format_tar(a);
        (void) archive_read_support_filter_gzip(a);
        (void) archive_read_support_filter_xz(a);
        (void) archive_read_support_filter_zstd(a);
        if (archive_read_open_filename(a, path, 65536) == ARCHIVE_OK &&
            archive_read_next_header(a, &entry) >= ARCHIVE_WARN && archive_entry_size_is_set(entry) &&
            (size = archive_entry_size(entry)) >= 0 && size <= BUNDLE_MANIFEST_MAX &&
            (buf = malloc((size_t) size + 1)))
                n = archive_read_data(a, buf, (size_t) size);
        archive_read_free(a);
        if (n < 0 || bundle_manifest_parse(buf, (size_t) n, ret, NULL) < 0)
                return -1;
        return 0;
}

static const BundleManifest *staged_manifest;
static size_t staging_prefix;
static bool staged_accepted;

static int check_staged(const char *path, const struct stat *st, int type, struct FTW *ftw) {
        const char *name = path + staging_prefix;
        const BundleMember *m;

        if (ftw->level == 0)
                return 0;
        if (type == FTW_D || type == FTW_DP)
                return 0;
        if (type != FTW_F || !S_ISREG(st->st_mode))
                fuzz_fail("the staging directory holds '%s', which is not a regular file", name);
        if (!staged_manifest)
                fuzz_fail("'%s' was staged before the manifest was read", name);
        m = bundle_manifest_find(staged_manifest, name);
        if (!m)
                fuzz_fail("'%s' was staged, but the manifest does not list it", name);
        if ((uint64_t) st->st_size > m->size || (staged_accepted && (uint64_t) st->st_size != m->size))
                fuzz_fail("'%s' was staged with %lld bytes, %llu listed", name, (long long) st->st_size,
                          (unsigned long long) m->size);
        return 0;
}
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const char *path = fuzz_tmp_path("bundle.tar");
        _cleanup_free_ uint8_t *signed_input = NULL;
        BundleReadOptions o = { .keys = keys, .expect = &expect, .staging_fd = -1 };
        BundleInfo info = {};
        size_t signed_size = 0;
        Error e = {};
        int r;

        signed_input = resign(data, size, &signed_size);
        if (fuzz_write_file(path, signed_input ?: data, signed_input ? signed_size : size) < 0)
                abort();

#ifdef FUZZ_BUNDLE_EXTRACT
        const char *staging = fuzz_tmp_path("staging");
        _cleanup_close_ int staging_fd = -EBADF;

        (void) rm_rf(staging);
        if (mkdir(staging, 0700) < 0)
                abort();
        staging_fd = open(staging, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (staging_fd < 0)
                abort();
        o.staging_fd = staging_fd;
#endif

        r = bundle_read(path, &o, &info, &e);
        fuzz_report("bundle_read", r, &e);

#ifdef FUZZ_BUNDLE_EXTRACT
        /* The same bundle, verified only. */
        {
                BundleReadOptions v = o;
                BundleInfo vi = {};
                Error ve = {};
                int k;

                v.staging_fd = -1;
                k = bundle_read(path, &v, &vi, &ve);
                fuzz_report("bundle_read (verify only)", k, &ve);
                if (k == 0 && r != 0 &&
                    !(fuzz_known("bundle-extract-name-clash") && (r == -ENOTDIR || r == -EEXIST || r == -EISDIR)))
                        fuzz_fail("verify accepts the bundle, extracting it fails with %d: %s", r, e.message);
                if (k != 0 && r == 0)
                        fuzz_fail("verify refuses the bundle (%s), extracting accepts it", ve.message);
                bundle_info_done(&vi);
        }
#endif
        if (r == 0) {
                uint64_t total = 0;

                for (size_t i = 0; i < info.manifest.n_members; i++) {
                        if (!info.manifest.members[i].seen)
                                fuzz_fail("accepted without member '%s'", info.manifest.members[i].path);
                        total += info.manifest.members[i].size;
                }
                if (total != info.bytes)
                        fuzz_fail("accepted with %llu bytes of members, %llu listed", (unsigned long long) info.bytes,
                                  (unsigned long long) total);
                if (!info.signer[0] || !info.signer_path || strlen(info.id) != BUNDLE_ID_LEN)
                        fuzz_fail("accepted without a signer or an id");
                if (!streq(info.manifest.host, expect.host) || info.manifest.sequence <= expect.last_sequence ||
                    info.manifest.expires <= (int64_t) expect.now)
                        fuzz_fail("accepted a bundle for another host, an old sequence or an expired one");
                if (!fuzz_known("bundle-read-global-pax") &&
                    has_global_header(signed_input ?: data, signed_input ? signed_size : size))
                        fuzz_fail("accepted a bundle with a global pax header (section 1: not allowed)");
        } else if (!e.message[0] || (!e.reason && !fuzz_known("bundle-read-no-reason")))
                fuzz_fail("bundle_read() failed with %d, '%s', reason %s", r, e.message, strna(e.reason));

#ifdef FUZZ_BUNDLE_EXTRACT
        /* What was written below the staging directory: only what the manifest lists. */
        BundleManifest m = {};

        /* The manifest the reader verified (it stays in info after a later refusal); else the
         * first member as libarchive reads it, for refusals before the manifest was parsed (a
         * header libarchive reads differently never stages anything then). */
        staged_manifest = r == 0 || info.manifest.n_members > 0 ? &info.manifest
                          : first_manifest(path, &m) == 0 ? &m : NULL;
        staged_accepted = r == 0;
        staging_prefix = strlen(staging) + 1;
        if (nftw(staging, check_staged, 16, FTW_PHYS) < 0)
                abort();
        staged_manifest = NULL;
        bundle_manifest_done(&m);
#endif
        bundle_info_done(&info);
        return 0;
}
