/* SPDX-License-Identifier: MIT */
/* Sigstore bundles v0.3 (cosign 3's signatures and attestations): cosign_verify_bundle()
 * (agent/sign/cosign-dsse.c), with its DSSE envelope and, for keyless bundles, the X.509
 * certificate in verificationMaterial. Chunked input:
 *
 *   head     <image digest>\n<the bundle JSON>
 *   1..9     anything it names: a statement for "@B1@" and "@DSSE1@"; "@HINT@" and "@CERT@" are
 *            the fuzz key's hint and certificate, so that key-based and keyless bundles both
 *            verify on the fly
 *
 * What must hold: an accepted bundle yields a non-empty predicateType and a key index in the
 * keyring. */

#include "sign/cosign.h"
#include "fuzz-cosign-common.h"
#include "basic/macro.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const CosignKeyring *keys = fuzz_cosign_keyring();
        _cleanup_free_ char *digest = NULL, *predicate = NULL;
        const uint8_t *doc;
        size_t doc_size, index = SIZE_MAX;
        FuzzChunks c;
        Error e = {};
        int r;

        fuzz_chunks_parse(data, size, &c);
        cosign_head(&c, &digest, &doc, &doc_size);

        r = cosign_verify_bundle(keys, digest, doc, doc_size, &index, &predicate, &e);
        fuzz_report("cosign_verify_bundle", r, &e);
        if (r == 0) {
                if (index >= cosign_keyring_size(keys))
                        fuzz_fail("accepted with key index %zu of %zu", index, cosign_keyring_size(keys));
                if (!predicate || !predicate[0])
                        fuzz_fail("accepted without a predicateType");
        } else if (!e.message[0])
                fuzz_fail("cosign_verify_bundle() failed with %d and no message", r);
        fuzz_chunks_done(&c);
        return 0;
}
