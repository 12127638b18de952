/* SPDX-License-Identifier: MIT */
/* OCI manifests and indexes as the image verifier reads them (agent/oci/images.c: the image's
 * manifest, the `.sig` and `.att` manifests and their layers, the referrers index and the
 * manifests it lists, through agent/oci/oci-layout.c and agent/oci/registry.c's manifest_media_type).
 * The parsers there are static; images_verify() is the public entry that parses such bytes,
 * reading them from an OCI image layout as it does for an offline bundle. The layout is made
 * from a chunked input (fuzz-common.h):
 *
 *   head     index.json; an optional first line "#<letters>" sets options:
 *              s  images.require-sbom          2  images.threshold 2
 *              r  the recorded digest (ImageCheck.digest) is chunk 1's
 *              p  the reference is pinned by chunk 1's digest
 *   1..9     blobs, each stored as blobs/sha256/<its sha256>
 *
 * so that `"digest": "@D1@", "size": @S1@` names chunk 1, `sha256-@H1@.sig` is the tag of the
 * signatures of image chunk 1, and `@SIG2@` signs a simple-signing payload in chunk 2 with the
 * fuzz key, which images.keys trusts (with the key of cimage-dir-img-cosign-valid).
 *
 * What must hold: an image accepted has a digest and at least images.threshold signers, and an
 * SBOM when one is required; a refused one has a message. */

#include <sys/stat.h>

#include "config/config.h"
#include "sign/cosign.h"
#include "basic/fileio.h"
#include "fuzz-common.h"
#include "oci/images.h"
#include "basic/macro.h"

#define REFERENCE "registry.example/app:1"

static Config *config;

/* images_verify() loads images.keys on every call (about a millisecond a key with the
 * sanitizers): the fuzz keys, and the key of one real cosign signature. The Cosign targets
 * have every key of the vectors. */
static const char *const keys[] = {
        "keys/fuzz-p256.pub",
        "keys/fuzz-ed25519.pub",
        "keys/cosign/cimage-cosign.pub",
};

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        if (config_new(&config) < 0)
                abort();
        strv_free(config->images.keys);
        config->images.keys = NULL;
        for (size_t i = 0; i < ELEMENTSOF(keys); i++)
                if (strv_extend(&config->images.keys, fuzz_data_path(keys[i])) < 0)
                        abort();
        return 0;
}

static void write_layout(const char *dir, const FuzzChunks *c, const uint8_t *index, size_t index_size) {
        static const char version[] = "{\"imageLayoutVersion\":\"1.0.0\"}";
        _cleanup_free_ char *blobs = path_join(dir, "blobs/sha256");

        (void) rm_rf(dir);
        if (!blobs || mkdir_parents(blobs, 0755) < 0)
                abort();
        if (fuzz_write_file(fuzz_tmp_path("layout/oci-layout"), version, strlen(version)) < 0 ||
            fuzz_write_file(fuzz_tmp_path("layout/index.json"), index, index_size) < 0)
                abort();
        for (size_t i = 1; i < c->n; i++) {
                uint8_t *hex;
                size_t hex_size;
                _cleanup_free_ char *path = NULL;

                /* "@H<i>@" is chunk i's hex digest: ask the expander, it knows. */
                char ph[] = "@H0@";
                ph[2] = (char) ('0' + i);
                fuzz_expand((const uint8_t *) ph, 4, c, i, &hex, &hex_size);
                path = path_join(blobs, (char *) hex);
                free(hex);
                if (!path || fuzz_write_file(path, c->data[i], c->size[i]) < 0)
                        abort();
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const char *dir = fuzz_tmp_path("layout");
        _cleanup_free_ uint8_t *digest1 = NULL;
        size_t digest1_size = 0, skip = 0;
        const uint8_t *index;
        const char *opts = "";
        char opt_buf[32] = "";
        FuzzChunks c;
        ImageSet set = {};
        ImageCheck *ic;
        Error e = {};
        int r;

        fuzz_chunks_parse(data, size, &c);
        index = c.data[0];
        if (c.size[0] > 0 && index[0] == '#') {
                const uint8_t *nl = memchr(index, '\n', c.size[0]);

                skip = nl ? (size_t) (nl - index) + 1 : c.size[0];
                (void) snprintf(opt_buf, sizeof(opt_buf), "%.*s", (int) MIN(skip, sizeof(opt_buf) - 1), (const char *) index + 1);
                opts = opt_buf;
        }
        write_layout(dir, &c, index + skip, c.size[0] - skip);
        if (c.n > 1)
                fuzz_expand((const uint8_t *) "@D1@", 4, &c, 1, &digest1, &digest1_size);

        config->images.require_sbom = strchr(opts, 's');
        config->images.threshold = strchr(opts, '2') ? 2 : 1;

        set.images = calloc(1, sizeof(ImageCheck));
        if (!set.images)
                abort();
        set.n = 1;
        ic = &set.images[0];
        ic->name = strdup("app");
        if (strchr(opts, 'p') && digest1) {
                if (asprintf(&ic->reference, "registry.example/app@%s", (char *) digest1) < 0)
                        abort();
        } else
                ic->reference = strdup(REFERENCE);
        if (strchr(opts, 'r') && digest1)
                ic->digest = strdup((char *) digest1);
        ic->layout = strdup(dir);
        if (!ic->name || !ic->reference || !ic->layout)
                abort();

        r = images_verify(config, &set, &e);
        fuzz_report("images_verify", r, &e);
        if (r == 0) {
                if (!cosign_image_digest_is_valid(ic->digest))
                        fuzz_fail("an image was accepted without a valid digest");
                if (strv_length(ic->signers) < config->images.threshold)
                        fuzz_fail("an image was accepted with %zu signers, %u required", strv_length(ic->signers),
                                  config->images.threshold);
                if (config->images.require_sbom && !ic->sbom)
                        fuzz_fail("an image was accepted without the required SBOM");
        } else if (!e.message[0])
                fuzz_fail("images_verify() failed with %d and no message", r);

        image_set_done(&set);
        fuzz_chunks_done(&c);
        return 0;
}
