/* SPDX-License-Identifier: MIT */
#pragma once

/* The keyring of the Cosign verifier: the public keys an operator trusts to sign images, one
 * PEM file each, as `cosign generate-key-pair` writes cosign.pub (a SubjectPublicKeyInfo in a
 * "PUBLIC KEY" block). Supported: ECDSA P-256 (cosign's default), P-384 and P-521, Ed25519,
 * and RSA of 2048 to 16384 bits with PKCS#1 v1.5 signatures.
 *
 * Which hash a signature was made with is not written anywhere: cosign hashes with SHA-256
 * whatever the key (its --signature-digest-algorithm default), while sigstore-go's defaults
 * pair P-384 with SHA-384 and P-521 with SHA-512. A signature is therefore tried with each
 * hash the key's type allows (see cosign-key.c); all of them are collision resistant, so this
 * lets no forgery through. Ed25519 signs the message itself (pure Ed25519). */

#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "basic/error.h"

#define COSIGN_KEYRING_MAX 64u           /* keys in one keyring (CosignTally counts in 64 bits) */
#define COSIGN_KEY_FILE_MAX (64u * 1024u) /* bytes of one PEM file */
#define COSIGN_FINGERPRINT_SIZE (7 + 64 + 1)

typedef struct CosignKeyring CosignKeyring;

/* Loads one public key from each of the NULL-terminated pem_paths, in that order: key i is
 * pem_paths[i]. Returns 0, or with a message naming the file:
 *   -ENOENT, -EACCES, -errno  the file cannot be read
 *   -EFBIG            the file is larger than COSIGN_KEY_FILE_MAX
 *   -EINVAL           no paths; not PEM; a private key, a certificate or any other PEM block
 *                     than "PUBLIC KEY"; more than one block; DER that does not decode, or
 *                     with bytes after it; the same key in two files
 *   -EPROTONOSUPPORT  a key of another type (DSA, secp256k1, explicit EC parameters, RSA-PSS,
 *                     ...) or an RSA key of under 2048 or over 16384 bits
 *   -E2BIG            more than COSIGN_KEYRING_MAX paths */
int cosign_keyring_load(char *const *pem_paths, CosignKeyring **ret, Error *reterr);
CosignKeyring *cosign_keyring_free(CosignKeyring *k);
static inline void cosign_keyring_freep(CosignKeyring **k) {
        cosign_keyring_free(*k);
}

size_t cosign_keyring_size(const CosignKeyring *k);
/* "SHA256:" and the lowercase hex of sha256(DER SubjectPublicKeyInfo), i.e.
 * `openssl pkey -pubin -in KEY -outform DER | sha256sum`. */
const char *cosign_keyring_fingerprint(const CosignKeyring *k, size_t i);
/* The file key i was read from, as given. */
const char *cosign_keyring_path(const CosignKeyring *k, size_t i);
/* "ecdsa-p256", "ecdsa-p384", "ecdsa-p521", "ed25519" or "rsa-<bits>". */
const char *cosign_keyring_key_type(const CosignKeyring *k, size_t i);

/* ---- For the verifiers (cosign.c, cosign-dsse.c) and the tests ---- */

/* Whether sig is a valid signature over data[0..size) by key i: 0, or -EPERM. */
int cosign_key_verify(const CosignKeyring *k, size_t i, const void *data, size_t size, const void *sig,
                      size_t sig_size);

/* The same with a key from elsewhere (a certificate's): tried with each hash its type allows.
 * 0; -EPERM; -EPROTONOSUPPORT for a key of a type the keyring would not take. */
int cosign_pkey_verify(EVP_PKEY *pkey, const void *data, size_t size, const void *sig, size_t sig_size);

/* Key i itself, owned by the keyring (for comparing it with a key a document names). */
EVP_PKEY *cosign_keyring_get0_pkey(const CosignKeyring *k, size_t i);

/* The first key by which sig is a valid signature over data: 0 with *ret_index set, or -EPERM
 * when none is. */
int cosign_keyring_verify(const CosignKeyring *k, const void *data, size_t size, const void *sig, size_t sig_size,
                          size_t *ret_index);

/* The key that the DER SubjectPublicKeyInfo spki encodes (compared as keys, not as bytes: an
 * EC point may be compressed or not): 0 with *ret_index set, or -ENOKEY (also when spki does
 * not decode). */
int cosign_keyring_find_spki(const CosignKeyring *k, const void *spki, size_t size, size_t *ret_index);

/* The key whose sha256(DER SubjectPublicKeyInfo) is the given 32 bytes (a bundle's
 * publicKey.hint, once decoded): 0 with *ret_index set, or -ENOKEY. */
int cosign_keyring_find_hint(const CosignKeyring *k, const uint8_t hint[static 32], size_t *ret_index);
