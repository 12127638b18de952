/* SPDX-License-Identifier: MIT */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "basic/error.h"
#include "oci/registry-sink.h"

/* Where an image and its signatures are read from.
 *
 * The verifier (images-verify.c) and the layout writer (oci-layout.c) read an image through this
 * seam: a registry (registry_source_new() in registry.h), or an OCI image layout on disk
 * (oci_layout_open() in oci-layout.h). Both cap every body and check every digest; both
 * return the errors listed at the top of registry.h (a layout: -ENOENT for what it does not
 * hold, -EBADMSG for content that does not match its digest, -EIO and friends for the disk). */

typedef struct ImageSource ImageSource;

typedef struct ImageSourceOps {
        /* reference: a tag or a digest in the image's repository; NULL: the image itself (the
         * tag or digest it is configured with). As registry_get_manifest(). */
        int (*get_manifest)(ImageSource *s, const char *reference, Buffer *ret_body, char **ret_media_type,
                            char **ret_digest, Error *reterr);
        /* As registry_get_blob() and registry_get_blob_to_fd(). */
        int (*get_blob)(ImageSource *s, const char *digest, size_t max, Buffer *ret, Error *reterr);
        int (*get_blob_to_fd)(ImageSource *s, const char *digest, uint64_t max, int fd, uint64_t *ret_size,
                              Error *reterr);
        /* The index of the referrers of digest: the Referrers API, else the `sha256-<hex>`
         * fallback tag. -ENOENT when there is neither. */
        int (*get_referrers)(ImageSource *s, const char *digest, Buffer *ret, Error *reterr);
        void (*free)(ImageSource *s);
} ImageSourceOps;

struct ImageSource {
        const ImageSourceOps *ops;
};

static inline int image_source_get_manifest(ImageSource *s, const char *reference, Buffer *ret_body,
                                            char **ret_media_type, char **ret_digest, Error *reterr) {
        return s->ops->get_manifest(s, reference, ret_body, ret_media_type, ret_digest, reterr);
}
static inline int image_source_get_blob(ImageSource *s, const char *digest, size_t max, Buffer *ret, Error *reterr) {
        return s->ops->get_blob(s, digest, max, ret, reterr);
}
static inline int image_source_get_blob_to_fd(ImageSource *s, const char *digest, uint64_t max, int fd,
                                              uint64_t *ret_size, Error *reterr) {
        return s->ops->get_blob_to_fd(s, digest, max, fd, ret_size, reterr);
}
static inline int image_source_get_referrers(ImageSource *s, const char *digest, Buffer *ret, Error *reterr) {
        return s->ops->get_referrers(s, digest, ret, reterr);
}
static inline void image_source_free(ImageSource *s) {
        if (s)
                s->ops->free(s);
}
static inline void image_source_freep(ImageSource **s) {
        image_source_free(*s);
}
