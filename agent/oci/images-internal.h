/* SPDX-License-Identifier: MIT */
#pragma once

/* Shared between images.c (the sets of images, export and import) and images-verify.c (the
 * verdict on each image); nothing outside these two files includes this. */

#include "config/config.h"
#include "oci/registry.h"

/* The registry client's options: images.* of the configuration. */
RegistryOptions images_registry_options(const Config *c);
