/* SPDX-License-Identifier: MIT */
/* Delta bundles (`bundle create --base FILE`): the base a delta is made against (its manifest,
 * the same host, a lower sequence), and what the delta leaves out because the machine has it
 * since it applied the base: the closure's NARs and the image blobs the base carried (or left
 * out itself). The history the base's revision holds is left out of the pack by
 * bundle-create.c (git_write_pack() with the base's revision). */

#include <inttypes.h>
#include <jansson.h>

#include "bundle/bundle-internal.h"
#include "bundle/bundle.h"
#include "basic/fileio.h"
#include "basic/log.h"
#include "system/nix.h"
#include "basic/strutil.h"

int bundle_delta_read_base(const BundleCreateOptions *o, BundleManifest *base, char base_id[static BUNDLE_ID_LEN + 1],
                           Error *e) {
        int r;

        r = bundle_read_manifest(o->base, base, base_id, e);
        if (r < 0)
                return error_prefix(e, r, "--base");
        if (!streq(base->host, o->host))
                return error_set(e, -EINVAL, "--base: '%s' is a bundle for host '%s', not '%s'", o->base, base->host,
                                 o->host);
        if (o->sequence && o->sequence <= base->sequence)
                return error_set(e, -EINVAL, "--base: the sequence %" PRIu64 " is not above the base's %" PRIu64,
                                 o->sequence, base->sequence);
        return 0;
}

/* The digest (hex) of an image blob member "images/N/blobs/sha256/<hex>", else NULL. */
static const char *image_blob_hex(const char *path) {
        const char *slash = strrchr(path, '/');

        if (strncmp(path, IMAGES_NAME "/", strlen(IMAGES_NAME "/")) != 0 || !slash || slash - path < 14 ||
            strncmp(slash - 13, "/blobs/sha256", 13) != 0 || !is_hex(slash + 1, 64))
                return NULL;
        return slash + 1;
}

/* Whether the machine that applied base holds the image blob hex: base carried it, or left
 * it out itself (so the machine had it then). */
static bool base_has_blob(const BundleManifest *base, const char *hex) {
        for (size_t i = 0; i < base->n_members; i++) {
                const char *h = image_blob_hex(base->members[i].path);
                char sha[65];

                if (h && streq(h, hex) && streq(hex_encode(base->members[i].sha256, 32, sha), hex))
                        return true;
        }
        for (size_t i = 0; i < base->n_base_blobs; i++)
                if (streq(base->base_blobs[i].sha256, hex))
                        return true;
        return false;
}

/* A delta (--base) leaves out what the machine has since it applied base:
 * - the closure's NARs that base carried byte for byte (apply checks that their paths are in
 *   the store); the narinfos stay, nix copy reads them to skip the paths that are valid;
 * - the image blobs that base carried or left out (apply takes them from its blob cache),
 *   listed in ret_blobs for the manifest. */
static const Member *members_find(const Members *m, const char *path) {
        for (size_t i = 0; i < m->n; i++)
                if (streq(m->list[i].path, path))
                        return &m->list[i];
        return NULL;
}

/* The NAR members of paths whose narinfo the base carried byte for byte: the same path with the
 * same NAR, which the machine holds since it applied the base, whether the base carried that NAR
 * or left it out itself (a delta of a delta). */
static int nars_of_base_paths(const Config *c, const char *work, json_t *closure, const Members *m,
                              const BundleManifest *base, char ***ret, Error *e) {
        _cleanup_free_ char *cache = path_join(work, CACHE_NAME);
        _cleanup_strv_free_ char **paths = NULL, **nars = NULL;
        json_t *infos = NULL, *v;
        size_t i;
        int r;

        json_array_foreach(json_object_get(closure, "paths"), i, v)
                if (strv_extend(&paths, json_string_value(v)) < 0)
                        return -ENOMEM;
        if (!cache)
                return -ENOMEM;
        r = nix_cache_path_info(c, cache, paths, &infos, e);
        if (r < 0)
                return r;
        json_array_foreach(infos, i, v) {
                const char *path = json_string_value(json_object_get(v, "path")),
                           *url = json_string_value(json_object_get(v, "url")), *name = path ? strrchr(path, '/') : NULL;
                _cleanup_free_ char *narinfo = NULL, *nar = NULL;
                const BundleMember *b;
                const Member *ours;
                char hex[65];

                if (!name || !url || strlen(name) < 33 ||
                    asprintf(&narinfo, CACHE_NAME "/%.32s.narinfo", name + 1) < 0 ||
                    asprintf(&nar, CACHE_NAME "/%s", url) < 0) {
                        json_decref(infos);
                        return -ENOMEM;
                }
                b = bundle_manifest_find(base, narinfo);
                ours = members_find(m, narinfo);
                if (b && ours && b->size == ours->size && streq(hex_encode(b->sha256, 32, hex), ours->sha256) &&
                    strv_extend(&nars, nar) < 0) {
                        json_decref(infos);
                        return -ENOMEM;
                }
        }
        json_decref(infos);
        *ret = TAKE_PTR(nars);
        return 0;
}

static int drop_base_members(Members *m, const BundleManifest *base, char *const *base_nars, uint64_t *ret_nars,
                             uint64_t *ret_blobs_size, json_t **ret_blobs) {
        json_t *blobs = json_array();
        size_t k = 0;

        *ret_nars = *ret_blobs_size = 0;
        if (!blobs)
                return -ENOMEM;
        for (size_t i = 0; i < m->n; i++) {
                const BundleMember *b = strncmp(m->list[i].path, CACHE_NAME "/nar/", strlen(CACHE_NAME "/nar/")) == 0 ?
                                                bundle_manifest_find(base, m->list[i].path) : NULL;
                const char *hex = image_blob_hex(m->list[i].path);
                char sha[65];

                bool known = false;

                for (char *const *n = base_nars; n && *n && !known; n++)
                        known = streq(*n, m->list[i].path);
                if (known || (b && b->size == m->list[i].size &&
                              streq(hex_encode(b->sha256, sizeof(b->sha256), sha), m->list[i].sha256))) {
                        *ret_nars += m->list[i].size;
                        free(m->list[i].path);
                        continue;
                }
                if (hex && streq(hex, m->list[i].sha256) && base_has_blob(base, hex)) {
                        if (json_array_append_new(blobs, json_pack("{s:s, s:I}", "path", m->list[i].path, "size",
                                                                   (json_int_t) m->list[i].size)) < 0) {
                                json_decref(blobs);
                                return -ENOMEM;
                        }
                        *ret_blobs_size += m->list[i].size;
                        free(m->list[i].path);
                        continue;
                }
                m->list[k++] = m->list[i];
        }
        m->n = k;
        *ret_blobs = blobs;
        return 0;
}

int bundle_delta_leave_out(const Config *c, const char *work, json_t *closure, Members *m, const BundleManifest *base,
                           const char *base_id, json_t **ret_blobs, Error *e) {
        _cleanup_strv_free_ char **base_nars = NULL;
        uint64_t nars, blobs;
        int r;

        if (closure) {
                r = nars_of_base_paths(c, work, closure, m, base, &base_nars, e);
                if (r < 0)
                        return r;
        }
        r = drop_base_members(m, base, base_nars, &nars, &blobs, ret_blobs);
        if (r < 0)
                return r;
        log_info("A delta of bundle %s (sequence %" PRIu64 "): the history up to %s, %.1f MiB of the closure "
                 "and %.1f MiB of image blobs left out.",
                 base_id, base->sequence, base->revision, (double) nars / (1024 * 1024),
                 (double) blobs / (1024 * 1024));
        return 0;
}
