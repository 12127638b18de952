/* SPDX-License-Identifier: MIT */
/* DSSE envelopes (a classic `.att` layer): cosign_verify_dsse_envelope() (agent/sign/cosign-dsse.c).
 * Chunked input:
 *
 *   head     <image digest>\n<the envelope JSON>
 *   1..9     anything it names: an in-toto statement to sign with "@DSSE1@" and embed with
 *            "@B1@", the image manifest for "@D2@", ...
 *
 * What must hold: an accepted envelope yields a non-empty predicateType and a key index in the
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

        r = cosign_verify_dsse_envelope(keys, digest, doc, doc_size, &index, &predicate, &e);
        fuzz_report("cosign_verify_dsse_envelope", r, &e);
        if (r == 0) {
                if (index >= cosign_keyring_size(keys))
                        fuzz_fail("accepted with key index %zu of %zu", index, cosign_keyring_size(keys));
                if (!predicate || !predicate[0])
                        fuzz_fail("accepted without a predicateType");
                (void) cosign_predicate_is_sbom(predicate);
        } else if (!e.message[0])
                fuzz_fail("cosign_verify_dsse_envelope() failed with %d and no message", r);
        fuzz_chunks_done(&c);
        return 0;
}
