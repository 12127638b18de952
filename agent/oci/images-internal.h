/* SPDX-License-Identifier: MIT */
#pragma once

/* Shared between images.c (the sets of images, export and import), images-verify.c (the
 * verdict on each image) and images-trust.c (what they are verified against); nothing
 * outside these files includes this. */

#include <regex.h>

#include "config/config.h"
#include "oci/registry.h"
#include "sign/cosign.h"
#include "sign/cosign-keyless.h"
#include "sign/sigstore-root.h"

/* The registry client's options: images.* of the configuration. */
RegistryOptions images_registry_options(const Config *c);

/* What images are verified against: the keyring of images.keys, and the trusted root and the
 * identities of images.keyless, each NULL when not configured. */
typedef struct ImagesTrust {
        CosignKeyring *keys;
        SigstoreTrustedRoot *root;
        SigstorePolicy *identities;
        regex_t *expressions; /* subject-regexp and issuer-regexp, compiled: n_expressions */
        size_t n_expressions;
        CosignKeyless keyless; /* valid when root is not NULL */
} ImagesTrust;

/* Loads t (zeroed) from the configuration: 0; -EINVAL for a key or trusted root that does
 * not load (the configuration's problem), -ENOENT, -ENOMEM; t is to be freed either way. */
int images_trust_load(const Config *c, ImagesTrust *t, Error *reterr);
void images_trust_done(ImagesTrust *t);
