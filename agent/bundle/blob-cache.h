/* SPDX-License-Identifier: MIT */
#pragma once

#include "bundle/bundle.h"
#include "basic/error.h"

#define BLOB_CACHE_DIR "image-blobs" /* below state-dir */

/* Puts every image blob that the delta m leaves out (base.blobs) into its place below staging,
 * from the cache. ret_missing: what the cache does not hold (whole); empty when nothing is
 * missing. -errno only for a failure of the machine (a read, a link). */
int blob_cache_fill(const char *cache, const char *staging, const BundleManifest *m, char ***ret_missing,
                    Error *reterr);

/* After the images of m were imported: the cache holds the blobs of m's layouts below staging,
 * and nothing else. Failures are logged (a later delta is then refused, not wrongly applied). */
int blob_cache_keep(const char *cache, const char *staging, const BundleManifest *m);
