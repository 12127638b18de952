/* SPDX-License-Identifier: MIT */
#pragma once

/* SSH public keys and the SSH wire format (RFC 4251): ssh-key.c. Every length is checked
 * against what is left. */

#include <openssl/types.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "basic/error.h"

typedef struct SshBytes {
        const uint8_t *data;
        size_t size;
} SshBytes;

typedef struct SshReader {
        const uint8_t *p;
        size_t n;
} SshReader;

bool ssh_read_u32(SshReader *r, uint32_t *ret);
bool ssh_read_string(SshReader *r, SshBytes *ret);
/* A non-negative mpint, without its leading zeros. */
bool ssh_read_mpint(SshReader *r, SshBytes *ret);
bool ssh_bytes_eq(SshBytes b, const char *s);
/* A field from the input, fit for a message (at most 40 bytes, anything unprintable as '?'). */
const char *ssh_printable(SshBytes b, char buf[static 48]);

/* Strict base64 (whitespace skipped, '=' only at the end, no stray bits): 0 or -EBADMSG,
 * -ENOMEM. *ret is malloc()ed. */
int ssh_base64_decode(const char *s, size_t n, uint8_t **ret, size_t *ret_size);

typedef enum KeyKind {
        KEY_ED25519,
        KEY_ECDSA,
        KEY_RSA,
} KeyKind;

typedef struct KeyType {
        const char *name;
        KeyKind kind;
        const char *curve;  /* ecdsa: the curve as the key blob names it */
        const char *group;  /* ecdsa: as OpenSSL names it */
        size_t point_size;  /* ecdsa: an uncompressed point, 04 || x || y */
        const char *digest; /* ecdsa: the curve's hash (RFC 5656 6.2.1) */
} KeyType;

/* A public key blob in its parts. ed25519: a = the key; ecdsa: a = curve, b = point;
 * rsa: a = e, b = n. */
typedef struct SshKey {
        const KeyType *type;
        SshBytes a, b;
} SshKey;

/* The supported type of that name (ssh-ed25519, ecdsa-sha2-nistp256/384/521, ssh-rsa), or NULL. */
const KeyType *ssh_key_type_find(SshBytes name);

int ssh_key_parse(SshBytes blob, SshKey *ret, Error *reterr);

/* Whether an SSH public key blob is of a supported type and well formed: 0, -EBADMSG or
 * -EPROTONOSUPPORT. The key's size and its values are checked only when it is used. */
int ssh_key_check(const void *blob, size_t size, Error *reterr);

/* The key as an OpenSSL public key; RSA keys of 2048 to 16384 bits only. */
int ssh_key_to_pkey(const SshKey *k, EVP_PKEY **ret, Error *reterr);

/* "SHA256:" and the unpadded base64 of the blob's SHA-256, as ssh-keygen -l prints it. */
void ssh_key_fingerprint(SshBytes blob, char ret[static 64]);
