/* SPDX-License-Identifier: MIT */
/* Reading a bundle (docs/bundle-format.md, section 6): one pass over the archive, the
 * signature and the manifest before anything else, every member hashed as it streams past.
 *
 * libarchive only undoes the compression (its "raw" format behind the gzip, xz and zstd
 * filters). The tar headers are read here, by sections 1 and 2 alone: libarchive's tar reader
 * understands much more than the format allows (GNU long names, global pax headers, vendor
 * keywords that rename a member, sparse files, Solaris headers) and folds it into the next
 * entry, where it can no longer be told from a plain ustar header. */

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bundle.h"
#include "log.h"
#include "timeutil.h"

#define INPUT_BLOCK (128 * 1024) /* a read, hashed while it is in the CPU's cache */
#define INPUT_SLOTS 4             /* blocks: read one while the hasher has the others */
#define PROGRESS_INTERVAL_USEC (250 * 1000)
#define TAR_BLOCK 512u
#define PAX_HEADER_MAX (64u * 1024u) /* section 7 */
#define SHOWN_MAX 200                /* bytes of a name from the archive in a message */

static void evp_md_ctx_freep(EVP_MD_CTX **p) {
        EVP_MD_CTX_free(*p);
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

/* ---- Hashing in the background ---- */

/* SHA-256 is the slowest part of reading a bundle: a thread hashes a member's blocks while
 * the reader reads the next ones (and writes them out, apply). A job is a block of the
 * reader's slots, which the reader fills again only once the hasher is done with it. The
 * hasher owns the digest context while it has jobs; the reader takes it back (hasher_drain)
 * at the end of each member. Each side wakes the other only when that one waits. */
#define HASHER_JOBS 16

typedef struct Job {
        const uint8_t *p;
        size_t n;
        unsigned slot;
} Job;

typedef struct Hasher {
        pthread_t thread;
        pthread_mutex_t lock;
        pthread_cond_t wake;
        EVP_MD_CTX *ctx;
        Job jobs[HASHER_JOBS];
        size_t head, count;
        unsigned pending[INPUT_SLOTS]; /* jobs per slot */
        size_t reader_waits_for;       /* jobs left at which to wake the reader */
        bool reader_waits, hasher_waits, stop;
        bool failed;
} Hasher;

static void *hasher_main(void *userdata) {
        Hasher *h = userdata;

        pthread_mutex_lock(&h->lock);
        for (;;) {
                Job j;
                bool ok;

                while (h->count == 0 && !h->stop) {
                        h->hasher_waits = true;
                        pthread_cond_wait(&h->wake, &h->lock);
                        h->hasher_waits = false;
                }
                if (h->count == 0)
                        break;
                j = h->jobs[h->head];
                pthread_mutex_unlock(&h->lock);
                ok = EVP_DigestUpdate(h->ctx, j.p, j.n) == 1;
                pthread_mutex_lock(&h->lock);
                h->head = (h->head + 1) % HASHER_JOBS;
                h->count--;
                h->pending[j.slot]--;
                h->failed = h->failed || !ok;
                if (h->reader_waits && h->count <= h->reader_waits_for)
                        pthread_cond_signal(&h->wake);
        }
        pthread_mutex_unlock(&h->lock);
        return NULL;
}

/* NULL when no thread can be started: then the reader hashes everything itself. */
static Hasher *hasher_start(void) {
        Hasher *h = calloc(1, sizeof(Hasher));

        if (!h)
                return NULL;
        h->ctx = EVP_MD_CTX_new();
        pthread_mutex_init(&h->lock, NULL);
        pthread_cond_init(&h->wake, NULL);
        if (!h->ctx || pthread_create(&h->thread, NULL, hasher_main, h) != 0) {
                EVP_MD_CTX_free(h->ctx);
                pthread_cond_destroy(&h->wake);
                pthread_mutex_destroy(&h->lock);
                free(h);
                return NULL;
        }
        return h;
}

static void hasher_stop(Hasher *h) {
        pthread_mutex_lock(&h->lock);
        h->stop = true;
        pthread_cond_signal(&h->wake);
        pthread_mutex_unlock(&h->lock);
        pthread_join(h->thread, NULL);
        EVP_MD_CTX_free(h->ctx);
        pthread_cond_destroy(&h->wake);
        pthread_mutex_destroy(&h->lock);
        free(h);
}

static void hasher_submit(Hasher *h, const uint8_t *p, size_t n, unsigned slot) {
        pthread_mutex_lock(&h->lock);
        h->reader_waits_for = HASHER_JOBS - 1;
        while (h->count == HASHER_JOBS) {
                h->reader_waits = true;
                pthread_cond_wait(&h->wake, &h->lock);
                h->reader_waits = false;
        }
        h->jobs[(h->head + h->count) % HASHER_JOBS] = (Job) { .p = p, .n = n, .slot = slot };
        h->count++;
        h->pending[slot]++;
        if (h->hasher_waits)
                pthread_cond_signal(&h->wake);
        pthread_mutex_unlock(&h->lock);
}

/* Waits until the hasher is done with a slot (UINT_MAX: with every job); false when a
 * digest update failed. A reader that has to wait for a slot waits until the hasher has at
 * most one job left, which is then in the newest slot: one wakeup for a few slots, not one
 * per slot. */
static bool hasher_wait(Hasher *h, unsigned slot) {
        bool ok;

        pthread_mutex_lock(&h->lock);
        if (slot == UINT_MAX || h->pending[slot] > 0) {
                h->reader_waits_for = slot == UINT_MAX ? 0 : 1;
                while (h->count > h->reader_waits_for) {
                        h->reader_waits = true;
                        pthread_cond_wait(&h->wake, &h->lock);
                        h->reader_waits = false;
                }
        }
        ok = !h->failed;
        pthread_mutex_unlock(&h->lock);
        return ok;
}

/* ---- The tar stream: the bundle's bytes after decompression ---- */

typedef struct Input {
        int fd;
        struct archive *a; /* compressed: the raw format behind the one filter; NULL: read fd directly */
        uint8_t *slots;    /* n_slots blocks of INPUT_BLOCK bytes, page aligned, read in turn */
        unsigned n_slots, slot;
        Hasher *hasher;    /* NULL: the reader hashes every member itself */
        const uint8_t *p;  /* bytes not consumed yet, in slot */
        size_t n;
        uint64_t offset;   /* of p in the tar stream */
        bool eof;
} Input;

/* Stops the hasher first: it may still use the slots. */
static void input_done(Input *in) {
        if (in->hasher)
                hasher_stop(in->hasher);
        if (in->a)
                archive_read_free(in->a);
        free(in->slots);
        *in = (Input) { .fd = -EBADF };
}

/* libarchive recognises the compression (section 1: by its magic number). A bundle that is
 * not compressed is then read directly, a block at a time into buffers small enough to stay
 * in the CPU's cache while the block is hashed (and written): no copy through libarchive's
 * buffer of the file, and hashing out of a buffer of a megabyte took twice as long. */
static int input_open(Input *in, int fd, Error *e) {
        struct archive_entry *entry;

        in->fd = fd;
        in->a = archive_read_new();
        if (!in->a)
                return -ENOMEM;
        if (archive_read_support_format_raw(in->a) != ARCHIVE_OK ||
            archive_read_support_filter_gzip(in->a) != ARCHIVE_OK ||
            archive_read_support_filter_xz(in->a) != ARCHIVE_OK || archive_read_support_filter_zstd(in->a) != ARCHIVE_OK)
                return error_set(e, -EIO, "libarchive lacks gzip, xz or zstd support: %s",
                                 archive_error_string(in->a) ?: "?");
        if (archive_read_open_fd(in->a, fd, INPUT_BLOCK) != ARCHIVE_OK ||
            archive_read_next_header(in->a, &entry) != ARCHIVE_OK)
                return error_set(e, -EPERM, "not a readable bundle (not a tar archive, or damaged compressed data): %s",
                                 archive_error_string(in->a) ?: "no data");
        /* The filters, nearest to the tar stream first, and "none" for the file itself. */
        if (archive_filter_count(in->a) > 2)
                return error_set(e, -EPERM, "not a tar archive: compressed more than once (%s inside %s); a bundle is "
                                 "compressed once as a whole, or not at all", archive_filter_name(in->a, 0),
                                 archive_filter_name(in->a, 1));
        if (archive_filter_count(in->a) == 1) {
                archive_read_free(in->a);
                in->a = NULL;
                if (lseek(fd, 0, SEEK_SET) < 0)
                        return error_set(e, -errno, "cannot read the bundle: %m");
        }

        in->n_slots = INPUT_SLOTS;
        if (posix_memalign((void **) &in->slots, (size_t) sysconf(_SC_PAGESIZE), (size_t) in->n_slots * INPUT_BLOCK) != 0)
                return -ENOMEM;
        in->slot = in->n_slots - 1;
        return 0;
}

/* Bytes in in->p, unless the data ends (in->n stays 0). The next slot is filled once the
 * hasher is done with it. */
static int input_fill(Input *in, Error *e) {
        while (in->n == 0 && !in->eof) {
                unsigned next = (in->slot + 1) % in->n_slots;
                uint8_t *buf = in->slots + (size_t) next * INPUT_BLOCK;
                ssize_t k;

                if (in->hasher && !hasher_wait(in->hasher, next))
                        return -EIO;
                if (in->a) {
                        k = archive_read_data(in->a, buf, INPUT_BLOCK);
                        if (k < 0)
                                return error_set(e, -EPERM, "not a readable bundle: the compressed data is truncated or "
                                                 "damaged (%s)", archive_error_string(in->a) ?: "?");
                } else {
                        k = read(in->fd, buf, INPUT_BLOCK);
                        if (k < 0 && errno == EINTR)
                                continue;
                        if (k < 0)
                                return error_set(e, -errno, "cannot read the bundle: %m");
                }
                in->slot = next;
                in->eof = k == 0;
                in->p = buf;
                in->n = (size_t) k;
        }
        return 0;
}

/* How far the reading of the file is. */
static uint64_t input_position(const Input *in) {
        return in->a ? (uint64_t) MAX(archive_filter_bytes(in->a, -1), 0) : in->offset;
}

static void input_consume(Input *in, size_t n) {
        in->p += n;
        in->n -= n;
        in->offset += n;
}

/* Up to max bytes in place: *ret_size is 0 at the end of the data. */
static int input_peek(Input *in, uint64_t max, const uint8_t **ret, size_t *ret_size, Error *e) {
        int r = input_fill(in, e);

        if (r < 0)
                return r;
        *ret = in->p;
        *ret_size = (size_t) MIN((uint64_t) in->n, max);
        return 0;
}

/* size bytes into buf (NULL: skipped); *ret_got is less when the data ends first. */
static int input_read(Input *in, void *buf, uint64_t size, uint64_t *ret_got, Error *e) {
        uint64_t got = 0;

        while (got < size) {
                const uint8_t *p;
                size_t n;
                int r = input_peek(in, size - got, &p, &n, e);

                if (r < 0)
                        return r;
                if (n == 0)
                        break;
                if (buf)
                        memcpy((uint8_t *) buf + got, p, n);
                input_consume(in, n);
                got += n;
        }
        *ret_got = got;
        return 0;
}

/* ---- Tar headers (sections 1 and 2) ---- */

typedef struct Header {
        char *name;     /* the pax path, else the ustar prefix and name */
        bool name_nul;  /* the pax path holds a NUL byte (name stops there) */
        uint64_t size;  /* the pax size, else the ustar size */
        uint64_t at;    /* offset of the header in the tar stream */
} Header;

static void header_done(Header *h) {
        free(h->name);
        *h = (Header) {};
}

/* A name from the archive as a message shows it: printable ASCII, cut after SHOWN_MAX bytes. */
static const char *shown(char buf[static SHOWN_MAX + 4], const char *s, size_t len) {
        size_t i;

        for (i = 0; i < len && i < SHOWN_MAX; i++)
                buf[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
        memcpy(buf + i, i < len ? "..." : "", i < len ? 4 : 1);
        return buf;
}
#define SHOWN(s) shown((char[SHOWN_MAX + 4]) {}, (s), strlen(s))

/* A ustar number: octal digits, maybe after spaces, then NULs or spaces to the field's end. */
static bool parse_octal(const uint8_t *f, size_t len, uint64_t *ret) {
        uint64_t v = 0;
        size_t i = 0, digits = 0;

        while (i < len && f[i] == ' ')
                i++;
        for (; i < len && f[i] >= '0' && f[i] <= '7'; i++, digits++) {
                if (v > UINT64_MAX >> 3)
                        return false;
                v = v << 3 | (uint64_t) (f[i] - '0');
        }
        for (; i < len; i++)
                if (f[i] != 0 && f[i] != ' ')
                        return false;
        *ret = v;
        return digits > 0;
}

static bool checksum_ok(const uint8_t *h) {
        uint64_t want, sum = 0;

        if (!parse_octal(h + 148, 8, &want))
                return false;
        for (size_t i = 0; i < TAR_BLOCK; i++)
                sum += i >= 148 && i < 156 ? ' ' : h[i];
        return sum == want;
}

static bool all_zero(const uint8_t *h) {
        for (size_t i = 0; i < TAR_BLOCK; i++)
                if (h[i])
                        return false;
        return true;
}

/* What a header of another type than '0' or NUL is (section 2 refuses them all). */
static const char *type_name(uint8_t type, char buf[static 24]) {
        switch (type) {
        case '1': return "a hard link";
        case '2': return "a symbolic link";
        case '3': case '4': return "a device";
        case '5': return "a directory";
        case '6': return "a FIFO";
        case '7': return "a contiguous file, typeflag '7'";
        case 'L': return "a GNU long name header, typeflag 'L'";
        case 'K': return "a GNU long link name header, typeflag 'K'";
        case 'S': return "a GNU sparse file, typeflag 'S'";
        case 'X': return "a Solaris extended header, typeflag 'X'";
        case 'A': return "a Solaris ACL, typeflag 'A'";
        }
        (void) snprintf(buf, 24, type >= 0x21 && type < 0x7f ? "typeflag '%c'" : "typeflag 0x%02x", type);
        return buf;
}

static bool keyword_is(const uint8_t *k, size_t len, const char *name) {
        return len == strlen(name) && memcmp(k, name, len) == 0;
}

/* Section 1: VENDOR.keyword, VENDOR in capitals ("GNU.sparse.name", "SCHILY.xattr.user.x"). */
static bool keyword_is_vendor(const uint8_t *k, size_t len) {
        size_t i = 0;

        while (i < len && ((k[i] >= 'A' && k[i] <= 'Z') || (i > 0 && k[i] >= '0' && k[i] <= '9')))
                i++;
        return i > 0 && i + 1 < len && k[i] == '.';
}

/* The records of a pax extended header (typeflag 'x'): "LEN KEYWORD=VALUE\n", each. Only path
 * and size count; mtime, atime, ctime, uid, gid, uname, gname, comment and vendor keywords are
 * ignored; any other keyword (linkpath, hdrcharset, ...) is refused. */
static int parse_pax(const uint8_t *p, size_t n, uint64_t at, Header *ret, bool *ret_has_size, Error *e) {
        static const char *const ignored[] = { "mtime", "atime", "ctime", "uid", "gid", "uname", "gname", "comment" };
        bool has_path = false;

        while (n > 0) {
                const uint8_t *k, *eq, *v;
                size_t len = 0, i, vlen;

                for (i = 0; i < n && i < 8 && p[i] >= '0' && p[i] <= '9'; i++)
                        len = len * 10 + (size_t) (p[i] - '0');
                if (i == 0 || i == n || p[i] != ' ' || len < i + 3 || len > n || p[len - 1] != '\n')
                        return error_set(e, -EPERM, "not a readable tar archive: the pax header at byte %" PRIu64
                                         " has a malformed record", at);
                k = p + i + 1;
                eq = memchr(k, '=', (size_t) (p + len - 1 - k));
                if (!eq || eq == k)
                        return error_set(e, -EPERM, "not a readable tar archive: the pax header at byte %" PRIu64
                                         " has a record without a keyword", at);
                v = eq + 1;
                vlen = (size_t) (p + len - 1 - v);
                if (keyword_is(k, (size_t) (eq - k), "path")) {
                        if (has_path)
                                return error_set(e, -EPERM, "the pax header at byte %" PRIu64 " names its member twice", at);
                        has_path = true;
                        ret->name = malloc(vlen + 1); /* not strndup: the value is not a C string */
                        if (!ret->name)
                                return -ENOMEM;
                        memcpy(ret->name, v, vlen);
                        ret->name[vlen] = 0;
                        ret->name_nul = memchr(v, 0, vlen) != NULL;
                } else if (keyword_is(k, (size_t) (eq - k), "size")) {
                        uint64_t size = 0;

                        if (*ret_has_size)
                                return error_set(e, -EPERM, "the pax header at byte %" PRIu64 " has two sizes", at);
                        for (i = 0; i < vlen && i < 17 && v[i] >= '0' && v[i] <= '9'; i++)
                                size = size * 10 + (uint64_t) (v[i] - '0');
                        if (i == 0 || i != vlen || size > BUNDLE_SIZE_MAX)
                                return error_set(e, -EPERM, "the pax header at byte %" PRIu64 " has a size that is not "
                                                 "a number of at most 2^53-1", at);
                        ret->size = size;
                        *ret_has_size = true;
                } else {
                        bool ok = keyword_is_vendor(k, (size_t) (eq - k));

                        for (i = 0; i < ELEMENTSOF(ignored) && !ok; i++)
                                ok = keyword_is(k, (size_t) (eq - k), ignored[i]);
                        if (!ok)
                                return error_set(e, -EPERM, "the pax keyword '%s' (header at byte %" PRIu64 ") is not "
                                                 "allowed in a bundle: only path, size, the ignored times, ids and "
                                                 "names, comment and vendor keywords are",
                                                 shown((char[SHOWN_MAX + 4]) {}, (const char *) k, (size_t) (eq - k)),
                                                 at);
                }
                p += len;
                n -= len;
        }
        return 0;
}

/* Skips the padding after size bytes of content: 0, or -EPERM when the archive ends in it. */
static int skip_padding(Input *in, uint64_t size, Error *e) {
        uint64_t pad = (TAR_BLOCK - size % TAR_BLOCK) % TAR_BLOCK, got;
        int r = input_read(in, NULL, pad, &got, e);

        if (r < 0)
                return r;
        if (got < pad)
                return error_set(e, -EPERM, "the archive is truncated (at byte %" PRIu64 ")", in->offset);
        return 0;
}

/* The next member: 1 with its header, 0 at the end of the archive (a zero block or the end
 * of the data at a header), -EPERM for anything but a regular file with a ustar header, maybe
 * after one pax extended header. */
static int next_header(Input *in, Header *ret, Error *e) {
        _cleanup_(header_done) Header pax = {};
        bool has_pax = false, has_size = false;
        uint8_t h[TAR_BLOCK];

        for (;;) {
                uint64_t at = in->offset, size, got;
                _cleanup_free_ uint8_t *records = NULL;
                int r;

                r = input_read(in, h, TAR_BLOCK, &got, e);
                if (r < 0)
                        return r;
                if (got == 0 || (got == TAR_BLOCK && all_zero(h))) {
                        if (has_pax)
                                return error_set(e, -EPERM, "the pax header at byte %" PRIu64 " describes no member: "
                                                 "the archive ends after it", pax.at);
                        return 0;
                }
                if (got < TAR_BLOCK)
                        return error_set(e, -EPERM, at == 0 ? "not a tar archive: shorter than one header" :
                                         "the archive is truncated in the header at byte %" PRIu64, at);
                if (!checksum_ok(h) || memcmp(h + 257, "ustar\0" "00", 8) != 0) {
                        const char *what = memcmp(h + 257, "ustar  \0", 8) == 0 && checksum_ok(h) ?
                                "a GNU tar header, not ustar or pax (GNU tar: use --format=posix)" :
                                "not a ustar header";
                        if (at == 0)
                                return error_set(e, -EPERM, "not a tar archive in the ustar or pax format: the first "
                                                 "block is %s", what);
                        return error_set(e, -EPERM, "not a readable tar archive: the block at byte %" PRIu64 " is %s "
                                         "(damaged, or data beyond a member's size)", at, what);
                }
                if (!parse_octal(h + 124, 12, &size))
                        return error_set(e, -EPERM, "not a readable tar archive: the header at byte %" PRIu64 " has an "
                                         "invalid size field (%s)", at, h[124] & 0x80 ?
                                         "base-256, a GNU extension" : "not octal");

                if (h[156] == 'x') {
                        if (has_pax)
                                return error_set(e, -EPERM, "two pax headers in a row at byte %" PRIu64, at);
                        if (size > PAX_HEADER_MAX)
                                return error_set(e, -EPERM, "the pax header at byte %" PRIu64 " is larger than %u "
                                                 "bytes", at, PAX_HEADER_MAX);
                        records = malloc(MAX(size, 1u));
                        if (!records)
                                return -ENOMEM;
                        r = input_read(in, records, size, &got, e);
                        if (r < 0)
                                return r;
                        if (got < size)
                                return error_set(e, -EPERM, "the archive is truncated in the pax header at byte %" PRIu64,
                                                 at);
                        r = parse_pax(records, (size_t) size, at, &pax, &has_size, e);
                        if (r < 0)
                                return r;
                        r = skip_padding(in, size, e);
                        if (r < 0)
                                return r;
                        pax.at = at;
                        has_pax = true;
                        continue;
                }

                if (!pax.name) {
                        size_t name_len = strnlen((const char *) h, 100), prefix_len = strnlen((const char *) h + 345, 155);

                        pax.name = malloc(prefix_len + 1 + name_len + 1);
                        if (!pax.name)
                                return -ENOMEM;
                        memcpy(pax.name, h + 345, prefix_len);
                        if (prefix_len > 0)
                                pax.name[prefix_len++] = '/';
                        memcpy(pax.name + prefix_len, h, name_len);
                        pax.name[prefix_len + name_len] = 0;
                }
                if (h[156] != '0' && h[156] != 0) {
                        char buf[24];

                        if (h[156] == 'g')
                                return error_set(e, -EPERM, "a global pax header (typeflag 'g') at byte %" PRIu64 ": a "
                                                 "bundle has none (section 1)", at);
                        if (h[156] == '1')
                                return error_set(e, -EPERM, "member '%s' is a hard link", SHOWN(pax.name));
                        return error_set(e, -EPERM, "member '%s' is not a regular file (%s)", SHOWN(pax.name),
                                         type_name(h[156], buf));
                }
                if (!has_size)
                        pax.size = size;
                pax.at = at;
                *ret = pax;
                pax = (Header) {};
                return 1;
        }
}

/* ---- The bundle ---- */

typedef struct Reader {
        const BundleReadOptions *o;
        Input in;
        uint64_t file_size;
        usec_t last_progress;
        bool progress_shown;
        const char *reason;
} Reader;

static void progress(Reader *rd, bool done) {
        usec_t now;
        uint64_t pos;

        if (!rd->o->progress || rd->file_size == 0)
                return;
        now = now_usec(CLOCK_MONOTONIC);
        if (!done && now - rd->last_progress < PROGRESS_INTERVAL_USEC)
                return;
        rd->last_progress = now;
        pos = MIN(input_position(&rd->in), rd->file_size);
        fprintf(stderr, "\r%s bundle: %3u%% (%" PRIu64 " of %" PRIu64 " MiB)%s", rd->o->what ?: "Reading",
                (unsigned) (done ? 100 : pos * 100 / rd->file_size), (done ? rd->file_size : pos) >> 20,
                rd->file_size >> 20, done ? "\n" : "");
        rd->progress_shown = true;
}

/* Section 2: a valid name (the reason before the name: a long name is cut in the message). */
static int check_name(const Header *h, Error *e) {
        const char *problem = h->name_nul ? "a NUL byte in its pax path" : bundle_member_name_problem(h->name);

        if (problem)
                return error_set(e, -EPERM, "a member has an invalid name (%s): '%s'", problem, SHOWN(h->name));
        return 0;
}

/* Reads a small member whole: the manifest or the signature. */
static int read_small(Reader *rd, const char *expected, size_t max, uint8_t **ret, size_t *ret_size, Error *e) {
        _cleanup_(header_done) Header h = {};
        _cleanup_free_ uint8_t *buf = NULL;
        uint64_t got;
        int r;

        r = next_header(&rd->in, &h, e);
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
        r = input_read(&rd->in, buf, h.size, &got, e);
        if (r < 0)
                return r;
        if (got < h.size)
                return error_set(e, -EPERM, "'%s' is truncated", expected);
        r = skip_padding(&rd->in, h.size, e);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(buf);
        *ret_size = (size_t) h.size;
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
                (void) snprintf(info->id + 2 * i, 3, "%02x", digest[i]);

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
                ctx = hasher->ctx; /* the hasher has no jobs: the reader holds it */
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

                r = input_peek(&rd->in, left, &p, &n, e);
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
                        r = write_all(fd, p, n);
                        if (r < 0)
                                return error_set(e, r, "cannot write '%s' in the staging directory: %s", m->path,
                                                 strerror(-r));
                }
                input_consume(&rd->in, n);
                left -= n;
                progress(rd, false);
        }
        if (hasher && !hasher_wait(hasher, UINT_MAX))
                return -EIO;
        if (EVP_DigestFinal_ex(ctx, digest, NULL) != 1)
                return -EIO;
        if (memcmp(digest, m->sha256, 32) != 0)
                return error_set(e, -EPERM, "member '%s' does not match its sha256 in the manifest", SHOWN(m->path));
        info->bytes += m->size;
        return skip_padding(&rd->in, m->size, e);
}

static int read_members(Reader *rd, BundleInfo *info, Error *e) {
        BundleManifest *m = &info->manifest;
        size_t seen = 0;
        int r;

        for (;;) {
                _cleanup_(header_done) Header h = {};
                BundleMember *mb;

                r = next_header(&rd->in, &h, e);
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

        r = input_open(&rd->in, fd, e);
        if (r < 0)
                return r;
        r = verify_head(rd, info, e);
        if (r < 0)
                return r;
        return read_members(rd, info, e);
}

int bundle_read(const char *path, const BundleReadOptions *o, BundleInfo *ret, Error *e) {
        _cleanup_close_ int fd = -EBADF;
        BundleInfo info = {};
        struct stat st;
        Reader rd = { .o = o, .in.fd = -EBADF };
        int r;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return error_set(e, -errno, "cannot open the bundle '%s': %m", path);
        if (fstat(fd, &st) < 0)
                return error_set(e, -errno, "cannot stat the bundle '%s': %m", path);
        if (!S_ISREG(st.st_mode))
                return error_set(e, -EINVAL, "'%s' is not a regular file", path);
        (void) posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
        rd.file_size = (uint64_t) st.st_size;

        if (st.st_size == 0)
                r = error_set(e, -EPERM, "not a tar archive: the file is empty");
        else
                r = read_bundle(&rd, fd, &info, e);
        if (rd.progress_shown)
                progress(&rd, r >= 0);
        input_done(&rd.in);
        if (r < 0) {
                if (o->ret_reason)
                        *o->ret_reason = rd.reason ?: "bundle-integrity";
                bundle_info_done(&info);
                return r == -ENOMEM ? error_set(e, r, "out of memory") : r;
        }
        *ret = info;
        return 0;
}
