/* SPDX-License-Identifier: MIT */
#pragma once

/* Certificate transparency: the signed certificate timestamps (SCTs, RFC 6962) a Fulcio
 * certificate embeds, checked against the certificate transparency logs of the trusted root. */

#include <openssl/x509.h>
#include <stddef.h>

#include "basic/error.h"
#include "sign/sigstore-trust.h"

#define SCT_LIST_MAX 64u /* SCTs in one certificate */

/* At least one SCT embedded in leaf (issued by issuer: the precertificate's issuer key hash is
 * computed from it) verifies with one of the n logs, matched by log id (TrustedLog.key_id, all
 * 32 bytes), and its timestamp (in ms; compared in whole seconds, the end inclusive) lies in
 * that log's window. Version 1 SCTs over a precertificate only, signed ECDSA or RSA with
 * SHA-256 by a key of that type (RFC 6962); SCTs of logs that are not trusted, or that the
 * root lists with a key type not supported (TrustedLog.unsupported: reterr names it), are
 * skipped (an SCT's time is not compared with the clock). Returns 0; -EBADMSG when leaf embeds no SCT
 * list, more than one, more than SCT_LIST_MAX SCTs, or a list that does not parse; -EPERM
 * when none verifies (reterr says why, for each SCT); -EINVAL when leaf or issuer is NULL;
 * -ENOMEM. */
int sct_verify_embedded(X509 *leaf, X509 *issuer, const TrustedLog *logs, size_t n, Error *reterr);
