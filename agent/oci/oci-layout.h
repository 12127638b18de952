/* SPDX-License-Identifier: MIT */
#pragma once

/* The OCI image layout (image-spec image-layout.md) of one image with its Cosign signatures,
 * as an offline bundle carries it (docs/bundle-format.md 5.3): `oci-layout`, `index.json` and
 * `blobs/sha256/<hex>`, with the manifests named in index.json by the annotation
 * org.opencontainers.image.ref.name:
 *
 *   image              the image: its manifest or index, with every manifest, config and layer
 *   sha256-<hex>.sig   the classic Cosign signature manifest
 *   sha256-<hex>.att   the classic Cosign attestation manifest
 *   sha256-<hex>       the referrers index (Sigstore bundles)
 *
 * (<hex>: the image digest's). A layout is read as an ImageSource (registry.h), so that the
 * verifier reads it exactly as it reads a registry, and with no more trust: every file is
 * capped and hashed against the digest it is read by, whatever wrote it. */

#include "oci/image-source.h"

#define OCI_REF_NAME_ANNOTATION "org.opencontainers.image.ref.name"
#define OCI_LAYOUT_IMAGE_REF_NAME "image"

/* The layout directory at path as the source of the image ref (NULL: whatever image it
 * holds). get_manifest(NULL) is index.json's "image" entry, whose digest must be ref's when
 * ref is pinned by digest; another tag is a ref name of index.json; a digest is a blob;
 * get_referrers(digest) is the "sha256-<hex>" entry. Errors: -ENOENT (no directory, no
 * index.json), -EBADMSG (an oci-layout or index.json that is not one, a symlink or a special
 * file where a file should be), -EFBIG, -EIO and the like. */
int oci_layout_open(const char *path, const ImageRef *ref, ImageSource **ret, Error *reterr);

/* Writes to dir (created when missing) the layout of the image that src reads as
 * get_manifest(NULL): its manifest or index with every manifest, config and layer below it
 * (every platform), and, when src has them, the .sig and .att manifests and the referrers
 * index with every manifest it lists (at most REFERRERS_MAX), each with its config and
 * layers. Layers go from src to their files in constant memory. *ret_digest (may be NULL)
 * is the image's digest.
 *
 * Anything missing or broken in the image is an error. A signature artifact that is missing
 * or broken (-ENOENT, -EBADMSG, -EFBIG: the verifier would not count it either) is left out
 * (a referrer: the index stays as the source has it); the source failing (-EHOSTUNREACH,
 * -ETIMEDOUT, -EACCES, ...) or the disk is an error. One writer per directory. */
int oci_layout_write(ImageSource *src, const char *dir, char **ret_digest, Error *reterr);
