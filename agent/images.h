/* SPDX-License-Identifier: MIT */
#pragma once

/* The images of a revision and their Cosign signatures. Which images: the `image` values of
 * nixosConfigurations.<host>.config.virtualisation.oci-containers.containers, found with
 * `nix eval --json` at the exact revision. Each reference is resolved to its digest at the
 * registry; the digest is what is verified (classic `.sig` signatures and Sigstore bundle
 * referrers), against images.keys with images.threshold distinct keys, and, with
 * images.require-sbom, a signed SPDX or CycloneDX attestation. Images are verified
 * concurrently by a small pool of workers, each with its own registry connection. */

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "error.h"

typedef struct ImageCheck {
        char *name;      /* the container's name */
        char *reference; /* as configured */
        char *digest;    /* what it resolved to, once resolved */
        char *layout;    /* NULL: verified at the registry; else the OCI image layout directory that
                          * holds it and its signatures (an offline bundle) */
        char **signers;  /* fingerprints of the trusted keys that signed it (NULL-terminated) */
        bool sbom;       /* a signed SBOM attestation was found */
        int result;      /* 0, or the -errno of its failure */
        Error error;
} ImageCheck;

typedef struct ImageSet {
        ImageCheck *images;
        size_t n;
} ImageSet;

void image_set_done(ImageSet *s);

/* `nix eval --json FLAKE#nixosConfigurations."HOST".config.virtualisation.oci-containers.containers
 * --apply (map to .image)`. */
int images_of_revision(const Config *c, const char *flake, ImageSet *ret, Error *reterr);

/* Verifies every image. 0 when all are acceptable. Otherwise the worst outcome:
 * -EPERM (some image is refused: unsigned, wrongly signed, below threshold, no SBOM, digest
 * mismatch...) before -EHOSTUNREACH/-ETIMEDOUT/-EACCES (the registry could not be asked);
 * reterr names the image, its digest and why. */
int images_verify(const Config *c, ImageSet *set, Error *reterr);

/* Writes an OCI image layout per distinct image of set below dir (dir/0, dir/1, ...) with
 * its signatures and attestations from the registry; sets each ImageCheck's layout and
 * digest. */
int images_export(const Config *c, ImageSet *set, const char *dir, Error *reterr);

/* Runs argv_template once per distinct image that has a layout, with {layout},
 * {reference}, {digest} and {name} replaced (bundle.image-import-command). */
int images_import(char *const *argv_template, const ImageSet *set, Error *reterr);

/* The set as a JSON array for the state history: [{name, reference, digest, signers, sbom}]. */
struct json_t;
struct json_t *image_set_to_json(const ImageSet *s);
