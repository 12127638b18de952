/* SPDX-License-Identifier: MIT */
/* The image blobs of the last bundle whose images this machine imported, kept in
 * state-dir/image-blobs/sha256/<hex> as hard links to the staged files (no copy), so that a
 * delta bundle can leave them out (docs/bundle-format.md, section 5.3). A blob is taken from
 * the cache only when it hashes to its name: a torn or altered file counts as missing. */

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bundle/blob-cache.h"
#include "basic/fileio.h"
#include "basic/log.h"
#include "basic/strutil.h"

#define BLOBS_SUBDIR "sha256"

int blob_cache_fill(const char *cache, const char *staging, const BundleManifest *m, char ***ret_missing, Error *e) {
        _cleanup_strv_free_ char **missing = NULL;

        for (size_t i = 0; i < m->n_base_blobs; i++) {
                const BundleBlob *b = &m->base_blobs[i];
                _cleanup_free_ char *src = NULL, *dst = path_join(staging, b->path), *dir = NULL;
                char hex[65];
                uint64_t size;
                int r;

                if (!dst || asprintf(&src, "%s/" BLOBS_SUBDIR "/%s", cache, b->sha256) < 0)
                        return -ENOMEM;
                r = file_sha256(AT_FDCWD, src, hex, &size);
                if (r == -EIO)
                        return error_set(e, r, "cannot read '%s': %s", src, strerror(-r));
                if (r < 0 || size != b->size || !streq(hex, b->sha256)) {
                        char what[sizeof("image blob sha256:") + 64];

                        (void) snprintf(what, sizeof(what), "image blob sha256:%s", b->sha256);
                        if (strv_extend(&missing, what) < 0)
                                return -ENOMEM;
                        continue;
                }
                dir = strdup(dst);
                if (!dir)
                        return -ENOMEM;
                *strrchr(dir, '/') = 0;
                r = mkdir_parents(dir, 0755);
                if (r < 0)
                        return error_set(e, r, "cannot create '%s': %s", dir, strerror(-r));
                if (link(src, dst) < 0)
                        return error_set(e, -errno, "cannot link '%s' to '%s': %m", src, dst);
        }
        *ret_missing = TAKE_PTR(missing);
        return 0;
}

static bool in_layouts(const char *staging, const BundleManifest *m, const char *hex) {
        for (size_t k = 0; k < m->n_images; k++) {
                _cleanup_free_ char *p = NULL;

                if (asprintf(&p, "%s/%s/blobs/" BLOBS_SUBDIR "/%s", staging, m->images[k].layout, hex) >= 0 &&
                    access(p, F_OK) == 0)
                        return true;
        }
        return false;
}

/* Links the blobs of every layout of staging into dir; false when one could not be. */
static bool keep_layout_blobs(const char *dir, const char *staging, const char *layout) {
        _cleanup_free_ char *from = NULL;
        _cleanup_(closedirp) DIR *d = NULL;
        struct dirent *de;
        bool ok = true;

        if (asprintf(&from, "%s/%s/blobs/" BLOBS_SUBDIR, staging, layout) < 0)
                return false;
        d = opendir(from);
        if (!d)
                return errno == ENOENT;
        while ((de = readdir(d))) {
                _cleanup_free_ char *src = NULL, *dst = NULL;

                if (!is_hex(de->d_name, 64))
                        continue;
                src = path_join(from, de->d_name);
                dst = path_join(dir, de->d_name);
                if (!src || !dst || (link(src, dst) < 0 && errno != EEXIST)) {
                        log_warning("Cannot keep image blob sha256:%s in '%s': %m", de->d_name, dir);
                        ok = false;
                }
        }
        return ok;
}

int blob_cache_keep(const char *cache, const char *staging, const BundleManifest *m) {
        _cleanup_free_ char *dir = path_join(cache, BLOBS_SUBDIR);
        _cleanup_(closedirp) DIR *d = NULL;
        struct dirent *de;
        bool ok = true;
        int r;

        if (!dir)
                return -ENOMEM;
        r = mkdir_parents(dir, 0700);
        if (r < 0) {
                log_warning("Cannot create '%s' (a later delta bundle will have to carry its images whole): %s", dir,
                            strerror(-r));
                return r;
        }
        for (size_t k = 0; k < m->n_images; k++)
                ok = keep_layout_blobs(dir, staging, m->images[k].layout) && ok;

        /* Only this bundle's blobs stay: the cache holds one set of images, not every one seen. */
        d = opendir(dir);
        while (d && (de = readdir(d)))
                if (!streq(de->d_name, ".") && !streq(de->d_name, "..") && !in_layouts(staging, m, de->d_name) &&
                    unlinkat(dirfd(d), de->d_name, 0) < 0)
                        log_warning("Cannot remove '%s/%s' from the image blob cache: %m", dir, de->d_name);
        if (!ok)
                log_warning("Not every image blob of this bundle is kept in '%s': a delta bundle that leaves them out "
                            "will be refused here.", dir);
        return ok ? 0 : -EIO;
}
