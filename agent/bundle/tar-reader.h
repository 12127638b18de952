/* SPDX-License-Identifier: MIT */
#pragma once

/* The tar stream of a bundle (docs/bundle-format.md, sections 1 and 2): its bytes after
 * decompression, read once, a block at a time, into a ring of INPUT_SLOTS buffers shared with
 * the hasher (hasher.h); and its headers, read by the format's rules alone: a regular file
 * with a ustar header, maybe after one pax extended header, and nothing else.
 *
 * Errors: -EPERM for every refusal and for a truncated or damaged archive (the message says
 * where, by byte offset or member name), -EIO when a digest update of the hasher failed,
 * -ENOMEM, the -errno of the file otherwise. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "basic/error.h"
#include "basic/hasher.h"

#define INPUT_BLOCK (128 * 1024)    /* a read, hashed while it is in the CPU's cache */
#define INPUT_SLOTS HASHER_SLOTS    /* blocks: read one while the hasher has the others */
#define TAR_SIZE_MAX ((UINT64_C(1) << 53) - 1) /* the largest size a pax header may give: what a JSON
                                                * number (a bundle manifest) holds exactly */
#define SHOWN_MAX 200               /* bytes of a name from the archive in a message */

struct archive;

typedef struct TarInput {
        int fd;
        struct archive *a; /* compressed: the raw format behind the one filter; NULL: read fd directly */
        uint8_t *slots;    /* n_slots blocks of INPUT_BLOCK bytes, page aligned, read in turn */
        unsigned n_slots, slot;
        Hasher *hasher;    /* NULL: the reader hashes every member itself */
        const uint8_t *p;  /* bytes not consumed yet, in slot */
        size_t n;
        uint64_t offset;   /* of p in the tar stream */
        bool eof;
} TarInput;

/* Reads the bundle open at fd (not taken over): through libarchive when it is compressed with
 * gzip, xz or zstd (recognised by its magic number), else directly. -EPERM when it is not a
 * readable archive or compressed more than once, -EIO when libarchive lacks a filter. */
int tar_input_open(TarInput *in, int fd, Error *reterr);
/* Stops in->hasher first (it may still use the slots), then frees everything but the fd. */
void tar_input_done(TarInput *in);

/* How far the reading of the file is: bytes of the file, compressed or not. */
uint64_t tar_input_position(const TarInput *in);
/* Up to max bytes in place, in in->slot: *ret_size is 0 at the end of the data. The bytes stay
 * as they are until the ring comes round to their slot again, which waits for the hasher. */
int tar_input_peek(TarInput *in, uint64_t max, const uint8_t **ret, size_t *ret_size, Error *reterr);
/* Takes n of the bytes tar_input_peek() returned. */
void tar_input_consume(TarInput *in, size_t n);
/* size bytes into buf (NULL: skipped); *ret_got is less when the data ends first. */
int tar_input_read(TarInput *in, void *buf, uint64_t size, uint64_t *ret_got, Error *reterr);

typedef struct TarHeader {
        char *name;     /* the pax path, else the ustar prefix and name */
        bool name_nul;  /* the pax path holds a NUL byte (name stops there) */
        uint64_t size;  /* the pax size, else the ustar size */
        uint64_t at;    /* offset of the header in the tar stream */
} TarHeader;

void tar_header_done(TarHeader *h);

/* The next member: 1 with its header, 0 at the end of the archive (a zero block or the end
 * of the data at a header), -EPERM for anything but a regular file with a ustar header, maybe
 * after one pax extended header. The member's content follows in the stream. */
int tar_next_header(TarInput *in, TarHeader *ret, Error *reterr);
/* Skips the padding after size bytes of content: 0, or -EPERM when the archive ends in it. */
int tar_skip_padding(TarInput *in, uint64_t size, Error *reterr);

/* A name from the archive as a message shows it: printable ASCII, cut after SHOWN_MAX bytes
 * (then "..."). Returns buf. */
const char *tar_shown(char buf[static SHOWN_MAX + 4], const char *s, size_t len);
#define SHOWN(s) tar_shown((char[SHOWN_MAX + 4]) {}, (s), strlen(s))
