/* SPDX-License-Identifier: MIT */
#pragma once

/* Cleanup helpers for OpenSSL's objects, for _cleanup_(): one copy for every file that signs,
 * hashes or parses keys. Each takes a pointer to the variable and frees what it holds (NULL is
 * fine). */

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>

static inline void bio_freep(BIO **p) {
        BIO_free(*p);
}
static inline void bn_freep(BIGNUM **p) {
        BN_free(*p);
}
static inline void ecdsa_sig_freep(ECDSA_SIG **p) {
        ECDSA_SIG_free(*p);
}
static inline void evp_md_ctx_freep(EVP_MD_CTX **p) {
        EVP_MD_CTX_free(*p);
}
static inline void evp_pkey_ctx_freep(EVP_PKEY_CTX **p) {
        EVP_PKEY_CTX_free(*p);
}
static inline void evp_pkey_freep(EVP_PKEY **p) {
        EVP_PKEY_free(*p);
}
static inline void openssl_freep(void *p) {
        OPENSSL_free(*(void **) p);
}
static inline void ossl_param_bld_freep(OSSL_PARAM_BLD **p) {
        OSSL_PARAM_BLD_free(*p);
}
static inline void ossl_param_freep(OSSL_PARAM **p) {
        OSSL_PARAM_free(*p);
}
static inline void x509_freep(X509 **p) {
        X509_free(*p);
}
/* A stack of certificates and the certificates on it (OpenSSL 3.0 has no
 * OSSL_STACK_OF_X509_free()). */
static inline void x509_stack_free(STACK_OF(X509) *s) {
        sk_X509_pop_free(s, X509_free);
}
static inline void x509_stack_freep(STACK_OF(X509) **p) {
        x509_stack_free(*p);
}
/* A stack whose certificates it does not own (PKCS7_get0_signers(), an untrusted list). */
static inline void x509_stack_shallow_freep(STACK_OF(X509) **p) {
        sk_X509_free(*p);
}
static inline void x509_store_freep(X509_STORE **p) {
        X509_STORE_free(*p);
}
static inline void x509_store_ctx_freep(X509_STORE_CTX **p) {
        X509_STORE_CTX_free(*p);
}
