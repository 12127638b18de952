/* SPDX-License-Identifier: MIT */
/* Classic Cosign signatures: cosign_verify_simplesigning() (agent/sign/cosign.c). Chunked input:
 *
 *   head     <image digest>\n<the signature annotation: base64, "@SIG2@" to sign chunk 2>
 *   1..      anything the head or the payload names (e.g. the image manifest, for "@D1@")
 *   last     the simple-signing payload (the layer blob); none when the input has no chunks
 *
 * The keyring holds the fuzz keys and every key of the Cosign test vectors, so that both the
 * vectors (seeds) and payloads signed on the fly reach the JSON of the payload, which is read
 * only after the signature verified.
 *
 * What must hold: an accepted payload is a JSON object whose critical.type is cosign's and
 * whose critical.image.docker-manifest-digest is the image digest (checked here with jansson
 * alone), and the key index is in the keyring. */

#include <jansson.h>

#include "sign/cosign.h"
#include "fuzz-cosign-common.h"
#include "basic/macro.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const CosignKeyring *keys = fuzz_cosign_keyring();
        _cleanup_free_ char *digest = NULL, *sig = NULL;
        const uint8_t *doc, *payload;
        size_t doc_size, payload_size, index = SIZE_MAX;
        FuzzChunks c;
        Error e = {};
        int r;

        fuzz_chunks_parse(data, size, &c);
        cosign_head(&c, &digest, &doc, &doc_size);
        sig = fuzz_strndup(doc, doc_size);

        payload = c.n > 1 ? c.data[c.n - 1] : NULL;
        payload_size = c.n > 1 ? c.size[c.n - 1] : 0;
        r = cosign_verify_simplesigning(keys, digest, COSIGN_MEDIA_TYPE_SIMPLESIGNING, payload, payload_size, sig, &index,
                                        &e);
        fuzz_report("cosign_verify_simplesigning", r, &e);
        if (r == 0) {
                json_t *j = json_loadb((const char *) payload, payload_size, 0, NULL);
                json_t *critical = json_object_get(j, "critical");

                if (index >= cosign_keyring_size(keys))
                        fuzz_fail("accepted with key index %zu of %zu", index, cosign_keyring_size(keys));
                if (!streq_ptr(json_string_value(json_object_get(critical, "type")), COSIGN_SIMPLESIGNING_TYPE) ||
                    !streq_ptr(json_string_value(json_object_get(json_object_get(critical, "image"),
                                                                 "docker-manifest-digest")),
                               digest))
                        fuzz_fail("accepted a payload that does not name the image %s", digest);
                json_decref(j);
        } else if (!e.message[0])
                fuzz_fail("cosign_verify_simplesigning() failed with %d and no message", r);

        /* The media type is checked before anything else. */
        if (cosign_verify_simplesigning(keys, digest, COSIGN_MEDIA_TYPE_DSSE, payload, payload_size, sig, NULL, NULL) == 0)
                fuzz_fail("accepted a layer of media type " COSIGN_MEDIA_TYPE_DSSE);
        fuzz_chunks_done(&c);
        return 0;
}
