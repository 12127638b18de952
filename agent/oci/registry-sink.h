/* SPDX-License-Identifier: MIT */
#pragma once

/* Bodies in memory (Buffer) and blobs on their way in (BlobSink): registry-sink.c. */

#include <stddef.h>
#include <stdint.h>

#include "oci/image-ref.h"

typedef struct Buffer {
        uint8_t *data;
        size_t size;
} Buffer;

void buffer_done(Buffer *b);

/* Where the bytes of a blob go as they arrive: memory (fd < 0) or a file descriptor, at most
 * max bytes, hashed on the way; the digest is checked at the end. The one path by which the
 * registry client and the OCI layout reader take in content, so that both cap and check it
 * alike, and a layer of gigabytes goes to a file in constant memory. */
typedef struct BlobSink {
        int fd;          /* -1: into buf */
        uint64_t max;
        uint64_t size;   /* bytes taken so far */
        Buffer buf;      /* fd < 0: the bytes, NUL-terminated (not counted) */
        size_t allocated;
        struct evp_md_ctx_st *md;
        int error;       /* the first failure of blob_sink_write() */
} BlobSink;

int blob_sink_init(BlobSink *s, int fd, uint64_t max);
/* 0, -EFBIG past max, -ENOMEM, or the -errno of write(); the first failure sticks. */
int blob_sink_write(BlobSink *s, const void *data, size_t size);
/* The sha256 of what was taken, "sha256:<hex>". 0, or a sticky failure. */
int blob_sink_finish(BlobSink *s, char ret_digest[static IMAGE_DIGEST_LEN + 1]);
void blob_sink_done(BlobSink *s);
