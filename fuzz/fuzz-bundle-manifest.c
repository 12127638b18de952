/* SPDX-License-Identifier: MIT */
/* The bundle manifest (docs/bundle-format.md section 3): bundle_manifest_parse()
 * (agent/bundle/bundle-manifest.c), on bytes that in a bundle would have passed the signature check.
 * Chunked input (fuzz-common.h): the head is manifest.json, so that `"sha256": "@H1@", "size":
 * @S1@` can describe a member whose content is chunk 1.
 *
 * What must hold for a manifest that parses: the rules of section 3, checked here apart from
 * the parser: every member name valid and not reserved, members sorted without duplicates and
 * found by bundle_manifest_find(), the repository listed, sizes and the sequence in range,
 * expires after created, a member below the closure's cache and below each image layout, a
 * system without "." components that the closure (when there is one) lists, containers an
 * object. */

#include <jansson.h>

#include "bundle/bundle.h"
#include "sign/cosign.h"
#include "fuzz-common.h"
#include "basic/macro.h"

static bool has_member_below(const BundleManifest *m, const char *prefix) {
        size_t l = strlen(prefix);

        for (size_t i = 0; i < m->n_members; i++)
                if (strncmp(m->members[i].path, prefix, l) == 0 && m->members[i].path[l] == '/')
                        return true;
        return false;
}

static void check(const BundleManifest *m) {
        if (!m->host || !m->repository || strlen(m->revision) != 40)
                fuzz_fail("a manifest without host, repository or revision parsed");
        if (m->sequence < 1 || m->sequence > BUNDLE_SIZE_MAX || m->expires <= m->created || m->created < 0)
                fuzz_fail("a manifest with sequence %llu, created %lld, expires %lld parsed",
                          (unsigned long long) m->sequence, (long long) m->created, (long long) m->expires);
        if (m->n_members > BUNDLE_MEMBERS_MAX)
                fuzz_fail("%zu members", m->n_members);
        for (size_t i = 0; i < m->n_members; i++) {
                const BundleMember *mb = &m->members[i];

                if (!bundle_member_name_valid(mb->path) || streq(mb->path, BUNDLE_MANIFEST_NAME) ||
                    streq(mb->path, BUNDLE_SIGNATURE_NAME))
                        fuzz_fail("member '%s' parsed", mb->path);
                if (mb->size > BUNDLE_SIZE_MAX)
                        fuzz_fail("member '%s' of %llu bytes parsed", mb->path, (unsigned long long) mb->size);
                if (i > 0 && strcmp(m->members[i - 1].path, mb->path) >= 0)
                        fuzz_fail("members not sorted or listed twice: '%s', '%s'", m->members[i - 1].path, mb->path);
                if (bundle_manifest_find(m, mb->path) != mb)
                        fuzz_fail("bundle_manifest_find() does not find '%s'", mb->path);
        }
        if (!bundle_manifest_find(m, m->repository))
                fuzz_fail("repository '%s' is not a member", m->repository);
        if (!m->system || m->system[0] != '/' || strstr(m->system, "/.") || strstr(m->system, "//"))
                fuzz_fail("system '%s' parsed", strna(m->system));
        if (!json_is_object(m->containers) || json_object_size(m->containers) > BUNDLE_IMAGES_MAX)
                fuzz_fail("containers that are not an object of at most %u parsed", BUNDLE_IMAGES_MAX);
        if (m->has_closure) {
                bool listed = false;

                for (char **p = m->paths; p && *p; p++)
                        listed = listed || streq(*p, m->system);
                if (!listed)
                        fuzz_fail("system '%s' is not one of the closure's paths", m->system);
        }
        if (m->has_closure) {
                if (!m->store_dir || m->store_dir[0] != '/' || !m->cache || !m->paths || !m->paths[0])
                        fuzz_fail("a closure without store-dir, cache or paths parsed");
                if (!has_member_below(m, m->cache))
                        fuzz_fail("no member below the cache '%s'", m->cache);
                for (char **p = m->paths; *p; p++)
                        if (strncmp(*p, m->store_dir, strlen(m->store_dir)) != 0)
                                fuzz_fail("closure path '%s' is not in '%s'", *p, m->store_dir);
        }
        if (m->n_images > BUNDLE_IMAGES_MAX)
                fuzz_fail("%zu images", m->n_images);
        for (size_t i = 0; i < m->n_images; i++) {
                if (!cosign_image_digest_is_valid(m->images[i].digest))
                        fuzz_fail("image digest '%s' parsed", m->images[i].digest);
                if (!has_member_below(m, m->images[i].layout))
                        fuzz_fail("no member below the layout '%s'", m->images[i].layout);
                for (size_t k = 0; k < i; k++)
                        if (streq(m->images[k].reference, m->images[i].reference))
                                fuzz_fail("image '%s' listed twice", m->images[i].reference);
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        BundleManifest m = {};
        FuzzChunks c;
        Error e = {};
        int r;

        fuzz_chunks_parse(data, size, &c);
        r = bundle_manifest_parse(c.data[0], c.size[0], &m, &e);
        fuzz_report("bundle_manifest_parse", r, &e);
        if (r == 0) {
                check(&m);
                (void) bundle_manifest_find(&m, "repository.pack");
                (void) bundle_manifest_find(&m, "");
        } else if ((r != -EPERM && r != -ENOMEM) || !e.message[0])
                fuzz_fail("bundle_manifest_parse() failed with %d, '%s'", r, e.message);
        bundle_manifest_done(&m);
        fuzz_chunks_done(&c);
        return 0;
}
