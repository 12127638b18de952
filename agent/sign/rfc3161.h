/* SPDX-License-Identifier: MIT */
#pragma once

/* RFC 3161 timestamps, as Sigstore bundles carry them (verificationMaterial.
 * timestampVerificationData.rfc3161Timestamps[].signedTimestamp: a DER TimeStampResp, or a
 * bare TimeStampToken): proof from a trusted timestamp authority that data existed at a time. */

#include <stddef.h>
#include <time.h>

#include "basic/error.h"
#include "sign/sigstore-trust.h"

/* Verifies the token over data (for Sigstore: the signature bytes; the token's message imprint
 * must be the hash of data with the token's own algorithm, SHA-256/384/512), signed by one of
 * the n timestamp authorities: its signing certificate (embedded in the token, or the first of
 * the authority's chain when the token carries none) must chain to that authority's root at
 * the token's genTime, and genTime must lie in the authority's window. On success *ret_time is
 * genTime (seconds). Returns 0; -EBADMSG when the token does not parse; -EPERM when it does
 * not verify with any authority (reterr says why); -ENOMEM. */
int rfc3161_verify(const void *token, size_t size, const void *data, size_t data_size, const TrustedAuthority *tsas,
                   size_t n, time_t *ret_time, Error *reterr);
