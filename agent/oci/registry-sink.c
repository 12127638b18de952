/* SPDX-License-Identifier: MIT */
/* Buffers and blob sinks: the one path by which content from a registry or an OCI layout
 * comes in, capped and hashed on the way (see BlobSink in registry.h). */
#include <openssl/evp.h>

#include "basic/fileio.h"
#include "oci/registry-sink.h"
#include "basic/strutil.h"

void buffer_done(Buffer *b) {
        if (!b)
                return;
        free(b->data);
        *b = (Buffer) {};
}

int blob_sink_init(BlobSink *s, int fd, uint64_t max) {
        *s = (BlobSink) { .fd = fd, .max = max };
        s->md = EVP_MD_CTX_new();
        if (!s->md || EVP_DigestInit_ex(s->md, EVP_sha256(), NULL) != 1) {
                EVP_MD_CTX_free(s->md);
                s->md = NULL;
                return -ENOMEM;
        }
        return 0;
}

void blob_sink_done(BlobSink *s) {
        if (!s)
                return;
        EVP_MD_CTX_free(s->md);
        buffer_done(&s->buf);
        *s = (BlobSink) { .fd = -1 };
}

int blob_sink_write(BlobSink *s, const void *data, size_t size) {
        if (s->error < 0)
                return s->error;
        if (!s->md)
                return s->error = -EINVAL;
        if (size > s->max - s->size)
                return s->error = -EFBIG;
        if (s->fd >= 0) {
                int r = loop_write(s->fd, data, size);
                if (r < 0)
                        return s->error = r;
        } else {
                if (s->buf.size + size + 1 > s->allocated) {
                        size_t want = MAX(s->buf.size + size + 1, MIN(2 * s->allocated, (size_t) s->max + 1));
                        uint8_t *p = realloc(s->buf.data, MAX(want, (size_t) 4096));

                        if (!p)
                                return s->error = -ENOMEM;
                        s->buf.data = p;
                        s->allocated = MAX(want, (size_t) 4096);
                }
                memcpy(s->buf.data + s->buf.size, data, size);
                s->buf.size += size;
                s->buf.data[s->buf.size] = 0;
        }
        if (EVP_DigestUpdate(s->md, data, size) != 1)
                return s->error = -ENOMEM;
        s->size += size;
        return 0;
}

int blob_sink_finish(BlobSink *s, char ret[static IMAGE_DIGEST_LEN + 1]) {
        unsigned char md[32];
        unsigned n = 0;

        if (s->error < 0)
                return s->error;
        if (!s->md || EVP_DigestFinal_ex(s->md, md, &n) != 1 || n != sizeof(md))
                return s->error = -EINVAL; /* once only */
        EVP_MD_CTX_free(s->md);
        s->md = NULL;
        memcpy(ret, "sha256:", 7);
        hex_encode(md, sizeof(md), ret + 7);
        return 0;
}
