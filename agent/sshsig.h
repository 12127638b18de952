/* SPDX-License-Identifier: MIT */
#pragma once

/* Verifier of SSH signatures (OpenSSH's SSHSIG format, PROTOCOL.sshsig) as git writes them
 * for `gpg.format=ssh`, against an OpenSSH allowed_signers file. OpenSSL only: no
 * ssh-keygen. Keys: ssh-ed25519, ecdsa-sha2-nistp256/384/521, ssh-rsa (with rsa-sha2-256 or
 * rsa-sha2-512 signatures; SHA-1 "ssh-rsa" signatures are refused). */

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "error.h"

#define SSHSIG_ARMOR_MAX (64 * 1024)
#define ALLOWED_SIGNERS_MAX (1024 * 1024)

typedef struct SshsigSigner {
        char *principal;      /* the principals field of the matching allowed_signers line */
        char *key_type;       /* "ssh-ed25519", "ecdsa-sha2-nistp256", ... */
        char fingerprint[64]; /* "SHA256:..." as ssh-keygen -l prints it */
} SshsigSigner;

/* The decoded wire format; pointers point into the blob given to sshsig_parse(). */
typedef struct Sshsig {
        uint32_t version;
        const uint8_t *public_key;
        size_t public_key_size;
        const uint8_t *namespace_;
        size_t namespace_size;
        const uint8_t *reserved;
        size_t reserved_size;
        const uint8_t *hash_algorithm;
        size_t hash_algorithm_size;
        const uint8_t *signature_type;
        size_t signature_type_size;
        const uint8_t *signature;
        size_t signature_size;
} Sshsig;

/* Verifies that `armored` is a valid signature in `namespace_` over data[0..size) by a key
 * listed in the allowed_signers file. Returns 0 (ret_signer filled when not NULL) or:
 *   -EBADMSG          malformed signature
 *   -EKEYREJECTED     the key is not listed, or not for this namespace or time
 *   -EPERM            the signature does not verify
 *   -EPROTONOSUPPORT  unsupported key, signature or hash algorithm
 *   -EINVAL           malformed allowed_signers file (the message names the line)
 *   -errno            reading the file
 * `now` is the time that valid-after and valid-before are compared with. */
int sshsig_verify(const char *allowed_signers_path, const char *armored, const void *data, size_t size,
                  const char *namespace_, time_t now, SshsigSigner *ret_signer, Error *reterr);
void sshsig_signer_done(SshsigSigner *s);

/* The lower layers, for tests and fuzzing. */
int sshsig_dearmor(const char *armored, uint8_t **ret, size_t *ret_size, Error *reterr);
int sshsig_parse(const uint8_t *blob, size_t size, Sshsig *ret, Error *reterr);

typedef struct AllowedSigner {
        char *principals;
        char *namespaces;     /* NULL: any */
        time_t valid_after;   /* 0: none */
        time_t valid_before;  /* 0: none */
        int cert_authority;
        char *key_type;
        uint8_t *key;         /* the decoded public key blob */
        size_t key_size;
} AllowedSigner;

/* Parses one line of an allowed_signers file. Returns 1 with *ret filled, 0 for a blank or
 * comment line, -EINVAL with a message for anything else. */
int allowed_signer_parse_line(const char *line, AllowedSigner *ret, Error *reterr);
void allowed_signer_done(AllowedSigner *a);
