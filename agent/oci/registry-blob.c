/* SPDX-License-Identifier: MIT */
/* Blobs from a registry, into memory or, for layers, into a file in constant memory: capped,
 * and checked against the digest they were asked for. */
#include "oci/image-ref.h"
#include "oci/registry-internal.h"
#include "oci/registry.h"

/* A blob into sink: the one path for blobs into memory and into a file. */
static int get_blob(RegistryClient *c, const char *registry, const char *repository, const char *digest,
                    BlobSink *sink, Error *e) {
        _cleanup_free_ char *path = NULL, *what = NULL;
        char actual[IMAGE_DIGEST_LEN + 1];
        Response r = {};
        int k;

        if (!image_digest_is_valid(digest))
                return error_set(e, -EBADMSG, "'%s' is not a sha256 digest", digest);
        if (asprintf(&path, "blobs/%s", digest) < 0 || asprintf(&what, "blob %s in %s/%s", digest, registry, repository) < 0)
                return -ENOMEM;

        k = registry_request(c, registry, repository, path, NULL, sink, &r, e);
        if (k < 0)
                return k;
        k = registry_expect_ok(&r, what, e);
        if (k < 0)
                return k;
        registry_response_done(&r);
        k = blob_sink_finish(sink, actual);
        if (k < 0)
                return k;
        if (!streq(actual, digest))
                return error_set(e, -EBADMSG, "%s: the content hashes to %s", what, actual);
        return 0;
}

int registry_get_blob(RegistryClient *c, const char *registry, const char *repository, const char *digest,
                      size_t max, Buffer *ret, Error *e) {
        _cleanup_(blob_sink_done) BlobSink sink = { .fd = -1 };
        int k;

        if (blob_sink_init(&sink, -1, max) < 0)
                return -ENOMEM;
        k = get_blob(c, registry, repository, digest, &sink, e);
        if (k < 0)
                return k;
        *ret = sink.buf;
        sink.buf = (Buffer) {};
        return 0;
}

int registry_get_blob_to_fd(RegistryClient *c, const char *registry, const char *repository, const char *digest,
                            uint64_t max, int fd, uint64_t *ret_size, Error *e) {
        _cleanup_(blob_sink_done) BlobSink sink = { .fd = -1 };
        int k;

        if (fd < 0)
                return -EBADF;
        if (blob_sink_init(&sink, fd, max) < 0)
                return -ENOMEM;
        k = get_blob(c, registry, repository, digest, &sink, e);
        if (k < 0)
                return k;
        if (ret_size)
                *ret_size = sink.size;
        return 0;
}
