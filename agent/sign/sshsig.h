/* SPDX-License-Identifier: MIT */
#pragma once

/* Verifier of SSH signatures (OpenSSH's SSHSIG format, PROTOCOL.sshsig) as git writes them
 * with `gpg.format=ssh`, against an OpenSSH allowed_signers file (ssh-keygen(1), ALLOWED
 * SIGNERS). OpenSSL only: no ssh-keygen. Keys: ssh-ed25519, ecdsa-sha2-nistp256/384/521 and
 * ssh-rsa of 2048 to 16384 bits with rsa-sha2-256 or rsa-sha2-512 signatures (SHA-1 "ssh-rsa"
 * signatures are refused). Certificates and security keys (sk-*) are not supported. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "basic/error.h"
#include "sign/ssh-key.h"

#define SSHSIG_ARMOR_MAX (64u * 1024u)

typedef struct SshsigSigner {
        char *principal;      /* the principals field of the matching allowed_signers line */
        char *key_type;       /* "ssh-ed25519", "ecdsa-sha2-nistp256", ... */
        char fingerprint[64]; /* "SHA256:<unpadded base64>", as ssh-keygen -l prints it */
} SshsigSigner;

/* Verifies that `armored` is a valid SSHSIG signature in namespace `namespace_` over
 * data[0..size), made by a key listed in the allowed_signers file. `now` is the time that
 * valid-after and valid-before are compared with. Returns 0 (ret_signer filled when not NULL,
 * and then owned by the caller) or, with a message in reterr:
 *   -EBADMSG          malformed signature: armor, base64, wire format, magic, version, trailing
 *                     bytes, a signature type that does not fit the key
 *   -EKEYREJECTED     the key is not in the file, or not for this namespace or at this time
 *   -EPERM            the signature does not verify (data or signature changed), or it was
 *                     made for another namespace
 *   -EPROTONOSUPPORT  unsupported key type, RSA key size, signature (ssh-rsa: SHA-1) or hash
 *   -EINVAL           malformed allowed_signers file (the message names the file and line)
 *   -EFBIG            allowed_signers larger than ALLOWED_SIGNERS_MAX
 *   -errno            reading the allowed_signers file */
int sshsig_verify(const char *allowed_signers_path, const char *armored, const void *data, size_t size,
                  const char *namespace_, time_t now, SshsigSigner *ret_signer, Error *reterr);
void sshsig_signer_done(SshsigSigner *s);

/* ---- The lower layers, for tests and fuzzing ---- */


/* The decoded wire format. Every field points into the blob given to sshsig_parse(). */
typedef struct Sshsig {
        uint32_t version;
        SshBytes public_key;     /* an SSH public key blob: string type, then per type */
        SshBytes sig_namespace;
        SshBytes reserved;       /* ignored, as OpenSSH does */
        SshBytes hash_algorithm;
        SshBytes signature_type; /* from the signature field: string type, string blob */
        SshBytes signature;
} Sshsig;

/* The base64 blob between the BEGIN and END lines (at most SSHSIG_ARMOR_MAX bytes of input);
 * -EBADMSG when malformed. *ret is malloc()ed. */
int sshsig_dearmor(const char *armored, uint8_t **ret, size_t *ret_size, Error *reterr);

/* Splits a decoded signature into its fields, checking every length; -EBADMSG when malformed,
 * of another version than 1, or followed by anything. */
int sshsig_parse(const void *blob, size_t size, Sshsig *ret, Error *reterr);
