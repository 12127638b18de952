/* SPDX-License-Identifier: MIT */
/* The tar stream of a bundle (tar-reader.h): its bytes after decompression and its headers.
 *
 * libarchive only undoes the compression (its "raw" format behind the gzip, xz and zstd
 * filters). The tar headers are read here, by sections 1 and 2 alone: libarchive's tar reader
 * understands much more than the format allows (GNU long names, global pax headers, vendor
 * keywords that rename a member, sparse files, Solaris headers) and folds it into the next
 * entry, where it can no longer be told from a plain ustar header. */

#include <inttypes.h>
#include <unistd.h>

#include "bundle/archive-dl.h"
#include "bundle/tar-reader.h"

#define TAR_BLOCK 512u
#define PAX_HEADER_MAX (64u * 1024u) /* section 7 */

/* ---- The tar stream: the bundle's bytes after decompression ---- */

void tar_input_done(TarInput *in) {
        if (in->hasher)
                hasher_stop(in->hasher);
        if (in->a)
                sym_archive_read_free(in->a);
        free(in->slots);
        *in = (TarInput) { .fd = -EBADF };
}

/* libarchive recognises the compression (section 1: by its magic number). A bundle that is
 * not compressed is then read directly, a block at a time into buffers small enough to stay
 * in the CPU's cache while the block is hashed (and written): no copy through libarchive's
 * buffer of the file, and hashing out of a buffer of a megabyte took twice as long. */
int tar_input_open(TarInput *in, int fd, Error *e) {
        struct archive_entry *entry;
        int r;

        r = archive_dl_open(e);
        if (r < 0)
                return r;
        in->fd = fd;
        in->a = sym_archive_read_new();
        if (!in->a)
                return -ENOMEM;
        if (sym_archive_read_support_format_raw(in->a) != ARCHIVE_OK ||
            sym_archive_read_support_filter_gzip(in->a) != ARCHIVE_OK ||
            sym_archive_read_support_filter_xz(in->a) != ARCHIVE_OK || sym_archive_read_support_filter_zstd(in->a) != ARCHIVE_OK)
                return error_set(e, -EIO, "libarchive lacks gzip, xz or zstd support: %s",
                                 sym_archive_error_string(in->a) ?: "?");
        if (sym_archive_read_open_fd(in->a, fd, INPUT_BLOCK) != ARCHIVE_OK ||
            sym_archive_read_next_header(in->a, &entry) != ARCHIVE_OK)
                return error_set(e, -EPERM, "not a readable bundle (not a tar archive, or damaged compressed data): %s",
                                 sym_archive_error_string(in->a) ?: "no data");
        /* The filters, nearest to the tar stream first, and "none" for the file itself. */
        if (sym_archive_filter_count(in->a) > 2)
                return error_set(e, -EPERM, "not a tar archive: compressed more than once (%s inside %s); a bundle is "
                                 "compressed once as a whole, or not at all", sym_archive_filter_name(in->a, 0),
                                 sym_archive_filter_name(in->a, 1));
        if (sym_archive_filter_count(in->a) == 1) {
                sym_archive_read_free(in->a);
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
static int input_fill(TarInput *in, Error *e) {
        while (in->n == 0 && !in->eof) {
                unsigned next = (in->slot + 1) % in->n_slots;
                uint8_t *buf = in->slots + (size_t) next * INPUT_BLOCK;
                ssize_t k;

                if (in->hasher && !hasher_wait(in->hasher, next))
                        return -EIO;
                if (in->a) {
                        k = sym_archive_read_data(in->a, buf, INPUT_BLOCK);
                        if (k < 0)
                                return error_set(e, -EPERM, "not a readable bundle: the compressed data is truncated or "
                                                 "damaged (%s)", sym_archive_error_string(in->a) ?: "?");
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

uint64_t tar_input_position(const TarInput *in) {
        return in->a ? (uint64_t) MAX(sym_archive_filter_bytes(in->a, -1), 0) : in->offset;
}

void tar_input_consume(TarInput *in, size_t n) {
        in->p += n;
        in->n -= n;
        in->offset += n;
}

int tar_input_peek(TarInput *in, uint64_t max, const uint8_t **ret, size_t *ret_size, Error *e) {
        int r = input_fill(in, e);

        if (r < 0)
                return r;
        *ret = in->p;
        *ret_size = (size_t) MIN((uint64_t) in->n, max);
        return 0;
}

int tar_input_read(TarInput *in, void *buf, uint64_t size, uint64_t *ret_got, Error *e) {
        uint64_t got = 0;

        while (got < size) {
                const uint8_t *p;
                size_t n;
                int r = tar_input_peek(in, size - got, &p, &n, e);

                if (r < 0)
                        return r;
                if (n == 0)
                        break;
                if (buf)
                        memcpy((uint8_t *) buf + got, p, n);
                tar_input_consume(in, n);
                got += n;
        }
        *ret_got = got;
        return 0;
}

/* ---- Tar headers (sections 1 and 2) ---- */

void tar_header_done(TarHeader *h) {
        free(h->name);
        *h = (TarHeader) {};
}

const char *tar_shown(char buf[static SHOWN_MAX + 4], const char *s, size_t len) {
        size_t i;

        for (i = 0; i < len && i < SHOWN_MAX; i++)
                buf[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
        memcpy(buf + i, i < len ? "..." : "", i < len ? 4 : 1);
        return buf;
}

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
static int parse_pax(const uint8_t *p, size_t n, uint64_t at, TarHeader *ret, bool *ret_has_size, Error *e) {
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
                        if (i == 0 || i != vlen || size > TAR_SIZE_MAX)
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
                                                 tar_shown((char[SHOWN_MAX + 4]) {}, (const char *) k, (size_t) (eq - k)),
                                                 at);
                }
                p += len;
                n -= len;
        }
        return 0;
}

int tar_skip_padding(TarInput *in, uint64_t size, Error *e) {
        uint64_t pad = (TAR_BLOCK - size % TAR_BLOCK) % TAR_BLOCK, got;
        int r = tar_input_read(in, NULL, pad, &got, e);

        if (r < 0)
                return r;
        if (got < pad)
                return error_set(e, -EPERM, "the archive is truncated (at byte %" PRIu64 ")", in->offset);
        return 0;
}

int tar_next_header(TarInput *in, TarHeader *ret, Error *e) {
        _cleanup_(tar_header_done) TarHeader pax = {};
        bool has_pax = false, has_size = false;
        uint8_t h[TAR_BLOCK];

        for (;;) {
                uint64_t at = in->offset, size, got;
                _cleanup_free_ uint8_t *records = NULL;
                int r;

                r = tar_input_read(in, h, TAR_BLOCK, &got, e);
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
                        r = tar_input_read(in, records, size, &got, e);
                        if (r < 0)
                                return r;
                        if (got < size)
                                return error_set(e, -EPERM, "the archive is truncated in the pax header at byte %" PRIu64,
                                                 at);
                        r = parse_pax(records, (size_t) size, at, &pax, &has_size, e);
                        if (r < 0)
                                return r;
                        r = tar_skip_padding(in, size, e);
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
                pax = (TarHeader) {};
                return 1;
        }
}
