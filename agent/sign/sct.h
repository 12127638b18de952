/* SPDX-License-Identifier: MIT */
#pragma once

/* Certificate transparency: the signed certificate timestamps (SCTs, RFC 6962) a Fulcio
 * certificate embeds, checked against the certificate transparency logs of the trusted root. */

#include <openssl/x509.h>
#include <stddef.h>

#include "basic/error.h"
#include "sign/sigstore-trust.h"

/* At least one SCT embedded in leaf (issued by issuer: the precertificate's issuer key hash is
 * computed from it) verifies with one of the n logs, matched by log id, and its timestamp lies
 * in that log's window. Returns 0; -EBADMSG when leaf embeds no SCT list or it does not parse;
 * -EPERM when none verifies (reterr says why); -ENOMEM. */
int sct_verify_embedded(X509 *leaf, X509 *issuer, const TrustedLog *logs, size_t n, Error *reterr);
