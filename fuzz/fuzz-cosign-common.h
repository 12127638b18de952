/* SPDX-License-Identifier: MIT */
#pragma once

/* The Cosign targets take a chunked input (fuzz-common.h) whose head is
 *
 *   <image digest>\n<document>
 *
 * the digest the caller would pass (usually "@Dn@": the digest of a manifest in chunk n, or a
 * literal one), then the document given to the verifier. */

#include <string.h>

#include "fuzz-common.h"

static inline void cosign_head(const FuzzChunks *c, char **ret_digest, const uint8_t **ret_doc, size_t *ret_doc_size) {
        const uint8_t *head = c->data[0], *nl = memchr(head, '\n', c->size[0]);
        size_t l = nl ? (size_t) (nl - head) : c->size[0];

        *ret_digest = fuzz_strndup(head, l);
        *ret_doc = nl ? nl + 1 : head + c->size[0];
        *ret_doc_size = c->size[0] - (nl ? l + 1 : l);
}
