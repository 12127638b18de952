/* SPDX-License-Identifier: MIT */
/* The lower layers the Cosign verifier reads unsigned input with (agent/sign/cosign.c):
 * cosign_json_parse(), which bounds nesting and the number of values on the text before
 * jansson allocates anything, and the DSSE PAE. The first byte picks the limits.
 *
 * What must hold: JSON that passes is nested at most max_depth deep and has at most
 * max_tokens values and keys, counted on the tree jansson built. */

#include <jansson.h>

#include "sign/cosign.h"
#include "fuzz-common.h"
#include "basic/macro.h"

static void count(json_t *j, size_t depth, size_t *max_depth, size_t *tokens) {
        const char *key;
        json_t *v;
        size_t i;

        (*tokens)++;
        if (json_is_object(j) || json_is_array(j))
                *max_depth = MAX(*max_depth, depth + 1);
        if (json_is_object(j))
                json_object_foreach(j, key, v) {
                        (*tokens)++;
                        count(v, depth + 1, max_depth, tokens);
                }
        else if (json_is_array(j))
                json_array_foreach(j, i, v)
                        count(v, depth + 1, max_depth, tokens);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        unsigned max_depth;
        size_t max_tokens, depth = 0, tokens = 0, pae_size;
        _cleanup_free_ uint8_t *pae = NULL;
        json_t *j = NULL;
        Error e = {};
        int r;

        if (size < 1)
                return 0;
        max_depth = 1u + (data[0] & 0x0f);
        max_tokens = 1u + (size_t) (data[0] >> 4) * 8u;
        data++;
        size--;

        r = cosign_json_parse(data, size, max_depth, max_tokens, "fuzz", &j, &e);
        if (r == 0) {
                count(j, 0, &depth, &tokens);
                if (depth > max_depth)
                        fuzz_fail("JSON nested %zu deep passed a limit of %u", depth, max_depth);
                if (tokens > max_tokens)
                        fuzz_fail("JSON with %zu values and keys passed a limit of %zu", tokens, max_tokens);
                json_decref(j);
        } else if (r != -EBADMSG || !e.message[0])
                fuzz_fail("cosign_json_parse() failed with %d, '%s'", r, e.message);

        if (cosign_dsse_pae(COSIGN_PAYLOAD_TYPE_INTOTO, data, size, &pae, &pae_size) < 0)
                fuzz_fail("cosign_dsse_pae() failed");
        if (pae_size < size || memcmp(pae + pae_size - size, data, size) != 0)
                fuzz_fail("the PAE does not end with the payload");
        return 0;
}
