/* SPDX-License-Identifier: MIT */
#pragma once

/* RFC 3161 timestamps, as Sigstore bundles carry them (verificationMaterial.
 * timestampVerificationData.rfc3161Timestamps[].signedTimestamp: a DER TimeStampResp, or a
 * bare TimeStampToken): proof from a trusted timestamp authority that data existed at a time. */

#include <stddef.h>
#include <time.h>

#include "basic/error.h"
#include "sign/sigstore-trust.h"

#define RFC3161_TOKEN_MAX (64u * 1024u)        /* a token, its certificates included */
#define RFC3161_DATA_MAX (16u * 1024u * 1024u) /* the data it is over */

/* Verifies the token over data (for Sigstore: the signature bytes; the token's message imprint
 * must be the hash of data with the token's own algorithm, SHA-256/384/512), signed by one of
 * the n timestamp authorities: its signing certificate (embedded in the token, or the first of
 * the authority's chain when the token carries none) must chain to that authority's root (the
 * last certificate of its chain, a trust anchor whether self-signed or not) at the token's
 * genTime, with the timeStamping purpose (RFC 3161 2.3: ExtendedKeyUsage timeStamping only,
 * critical), and genTime must lie in the authority's window. When the authority's chain starts
 * with a leaf (a certificate that is no CA), the token must be signed by that leaf, as
 * sigstore-go requires. The CMS signature and the ESS signing-certificate attribute are
 * checked by OpenSSL (TS_RESP_verify_token). genTime is taken in whole seconds (fractions
 * dropped). On success *ret_time (when ret_time is not NULL) is genTime.
 * Returns 0; -EBADMSG when the token does not parse (or is over RFC3161_TOKEN_MAX, or is a
 * response that grants no timestamp); -EPERM when it does not verify with any authority, or
 * is over other data (reterr says why, for each authority); -EINVAL for data over
 * RFC3161_DATA_MAX; -ENOMEM. */
int rfc3161_verify(const void *token, size_t size, const void *data, size_t data_size, const TrustedAuthority *tsas,
                   size_t n, time_t *ret_time, Error *reterr);
