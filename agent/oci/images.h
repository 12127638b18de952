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

#include "config/config.h"
#include "basic/error.h"

typedef struct ImageCheck {
        char *name;      /* the container's name */
        char *reference; /* as configured */
        char *digest;    /* what it resolved to, once resolved; when set before images_verify()
                          * (a bundle's record), the image must resolve to it */
        char *layout;    /* NULL: verified at the registry; else the OCI image layout directory that
                          * holds it and its signatures (an offline bundle, oci-layout.h) */
        bool pinned;     /* verify digest itself (a deployment's record), not what the reference's
                          * tag points to now */
        char **signers;  /* the trusted signers: each key's fingerprint, each keyless identity as
                          * "IDENTITY (ISSUER)" (NULL-terminated) */
        bool sbom;       /* a signed SBOM attestation was found */
        int result;      /* 0, or the -errno of its failure */
        Error error;
} ImageCheck;

typedef struct ImageSet {
        ImageCheck *images;
        size_t n;
} ImageSet;

void image_set_done(ImageSet *s);

/* A command's argument for one image: arg with every {layout}, {reference}, {digest} and {name}
 * replaced (an unknown one by nothing); other braces stay. NULL when out of memory. */
char *image_command_arg(const char *arg, const ImageCheck *ic, const char *digest);

/* The set of {name: reference} (what an evaluation gives, or a bundle's manifest names). */
struct json_t;
int image_set_from_containers(const struct json_t *containers, ImageSet *ret, Error *reterr);

/* The set of a deployment's record ([{name, reference, digest, ...}]): each image pinned to its
 * recorded digest. -EBADMSG when an entry lacks one. */
int image_set_from_record(const struct json_t *images, ImageSet *ret, Error *reterr);

/* `nix eval --json FLAKE#nixosConfigurations."HOST".config.virtualisation.oci-containers.containers
 * --apply (map to .image)`: one evaluation, for a revision that is not deployed (verify-images
 * --rev). */
int images_of_revision(const Config *c, const char *flake, ImageSet *ret, Error *reterr);

/* Verifies every image, each from its layout when it has one, else at its registry, with the
 * same verifier. 0 when all are acceptable. Otherwise the worst outcome:
 * -EPERM (some image is refused: unsigned, wrongly signed, below threshold, no SBOM, digest
 * mismatch, a layout that is missing, incomplete or tampered with...) before
 * -EHOSTUNREACH/-ETIMEDOUT/-EACCES (the registry could not be asked) or the -errno of reading
 * a layout; reterr names the image, its digest and why. */
int images_verify(const Config *c, ImageSet *set, Error *reterr);

/* Whether images are verified at all: images.keys or images.keyless is set (else
 * images_verify() accepts everything, with a warning). */
bool images_verification_configured(const Config *c);
/* The configuration keys images are verified with, for messages: "images.keys", or
 * "images.keys, images.keyless" when images.keyless is set. */
const char *images_trust_keys(const Config *c);

/* Writes an OCI image layout per distinct reference of set below dir (dir/0, dir/1, ... in
 * the order of first appearance) with its signatures, attestations and referrers from the
 * registry (oci_layout_write()); sets each ImageCheck's layout ("<dir>/<i>", the same for
 * the same reference) and digest. Nothing is verified here. Errors: a missing image
 * (-ENOENT), the registry (-EHOSTUNREACH, -ETIMEDOUT, -EACCES, ...), the disk; reterr names
 * the image. Missing signatures are no error: images_verify() decides. */
int images_export(const Config *c, ImageSet *set, const char *dir, Error *reterr);

/* Runs argv_template (bundle.image-import-command; the default is
 * `skopeo copy oci:{layout}:image containers-storage:{reference}`) once per distinct layout
 * of set, images without one skipped, with every {layout}, {reference} (as configured),
 * {digest} and {name} (the container's) in each argument replaced; other braces stay. The
 * digest is ImageCheck.digest, or the layout's own when unset. Stops at the first failure:
 * process_run()'s errors, reterr names the image and the layout. */
int images_import(char *const *argv_template, const ImageSet *set, Error *reterr);

/* The set as a JSON array for the state history: [{name, reference, digest, signers, sbom}]. */
struct json_t *image_set_to_json(const ImageSet *s);
