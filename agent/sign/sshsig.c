/* SPDX-License-Identifier: MIT */
/* SSHSIG verification (OpenSSH PROTOCOL.sshsig) with OpenSSL. The signature is
 *
 *   "SSHSIG" uint32 version string publickey string namespace string reserved
 *   string hash_algorithm string signature(string type, string blob)
 *
 * and what the key signed is "SSHSIG" string namespace string "" string hash_algorithm
 * string H(data). The order of the checks: the signature's form, its namespace and hash, then
 * the allowed_signers file (allowed-signers.c; only a listed key ever reaches OpenSSL), then
 * the signature itself. Where OpenSSH is lenient, this is stricter, and says so. */

#include <inttypes.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include "basic/openssl-util.h"
#include "basic/base64.h"
#include "sign/allowed-signers.h"
#include "sign/ssh-key.h"
#include "sign/sshsig.h"

#define MAGIC "SSHSIG"
#define MAGIC_SIZE 6
#define BEGIN_LINE "-----BEGIN SSH SIGNATURE-----"
#define END_LINE "-----END SSH SIGNATURE-----"


static int oom(Error *e) {
        return error_set(e, -ENOMEM, "out of memory");
}

static bool is_space(char c) {
        return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

static void put_string(uint8_t **p, const void *data, size_t n) {
        (*p)[0] = (uint8_t) (n >> 24);
        (*p)[1] = (uint8_t) (n >> 16);
        (*p)[2] = (uint8_t) (n >> 8);
        (*p)[3] = (uint8_t) n;
        memcpy(*p + 4, data, n);
        *p += 4 + n;
}

/* ---- Armor and base64 ---- */

/* The BEGIN line must come first, ended by "\n" (OpenSSH 9.2 refuses "\r\n" too); after the
 * END line only whitespace may follow (OpenSSH ignores anything there). */
int sshsig_dearmor(const char *armored, uint8_t **ret, size_t *ret_size, Error *e) {
        const char *body, *end, *p;
        int r;

        if (strnlen(armored, SSHSIG_ARMOR_MAX + 1) > SSHSIG_ARMOR_MAX)
                return error_set(e, -EBADMSG, "the signature is larger than %u bytes", SSHSIG_ARMOR_MAX);
        if (strncmp(armored, BEGIN_LINE, strlen(BEGIN_LINE)) != 0)
                return error_set(e, -EBADMSG, "not an SSH signature: it does not start with '" BEGIN_LINE "'");
        body = armored + strlen(BEGIN_LINE);
        if (*body != '\n')
                return error_set(e, -EBADMSG, "text after '" BEGIN_LINE "' on its line");
        end = strstr(body, "\n" END_LINE);
        if (!end)
                return error_set(e, -EBADMSG, "the SSH signature is truncated: no '" END_LINE "' line");
        for (p = end + 1 + strlen(END_LINE); *p; p++)
                if (!is_space(*p))
                        return error_set(e, -EBADMSG, "text after the line '" END_LINE "'");
        r = ssh_base64_decode(body, (size_t) (end - body), ret, ret_size);
        if (r == -ENOMEM)
                return oom(e);
        if (r < 0)
                return error_set(e, r, "the SSH signature is not valid base64");
        return 0;
}

/* OpenSSH takes versions 0 and 1; only 1 exists. */
int sshsig_parse(const void *blob, size_t size, Sshsig *ret, Error *e) {
        SshReader r = { blob, size }, sig;
        SshBytes field;
        Sshsig s = {};

        if (size < MAGIC_SIZE || memcmp(blob, MAGIC, MAGIC_SIZE) != 0)
                return error_set(e, -EBADMSG, "not an SSHSIG signature (wrong magic)");
        r.p += MAGIC_SIZE;
        r.n -= MAGIC_SIZE;
        if (!ssh_read_u32(&r, &s.version))
                return error_set(e, -EBADMSG, "the SSHSIG signature is truncated");
        if (s.version != 1)
                return error_set(e, -EBADMSG, "SSHSIG version %" PRIu32 " is not supported (only 1)", s.version);
        if (!ssh_read_string(&r, &s.public_key) || !ssh_read_string(&r, &s.sig_namespace) || !ssh_read_string(&r, &s.reserved) ||
            !ssh_read_string(&r, &s.hash_algorithm) || !ssh_read_string(&r, &field))
                return error_set(e, -EBADMSG, "the SSHSIG signature is truncated, or a length points past its end");
        if (r.n > 0)
                return error_set(e, -EBADMSG, "%zu bytes of trailing data after the SSHSIG signature", r.n);
        sig = (SshReader) { field.data, field.size };
        if (!ssh_read_string(&sig, &s.signature_type) || !ssh_read_string(&sig, &s.signature) || sig.n > 0)
                return error_set(e, -EBADMSG, "malformed signature field in the SSHSIG signature");
        *ret = s;
        return 0;
}

/* ---- The signature ---- */

/* SSH's mpint r || mpint s, as the DER ECDSA-Sig-Value OpenSSL verifies. */
static int ecdsa_sig_to_der(SshBytes sig, uint8_t **ret, size_t *ret_size) {
        _cleanup_(ecdsa_sig_freep) ECDSA_SIG *s = NULL;
        _cleanup_(bn_freep) BIGNUM *br = NULL, *bs = NULL;
        _cleanup_free_ uint8_t *der = NULL;
        SshReader r = { sig.data, sig.size };
        SshBytes rb, sb;
        unsigned char *p;
        int len;

        if (!ssh_read_mpint(&r, &rb) || !ssh_read_mpint(&r, &sb) || r.n > 0)
                return -EBADMSG;
        s = ECDSA_SIG_new();
        br = BN_bin2bn(rb.data, (int) rb.size, NULL);
        bs = BN_bin2bn(sb.data, (int) sb.size, NULL);
        if (!s || !br || !bs || ECDSA_SIG_set0(s, br, bs) != 1)
                return -ENOMEM;
        br = bs = NULL; /* owned by s */
        len = i2d_ECDSA_SIG(s, NULL);
        if (len <= 0 || !(der = malloc((size_t) len)))
                return -ENOMEM;
        p = der;
        if (i2d_ECDSA_SIG(s, &p) != len)
                return -ENOMEM;
        *ret = TAKE_PTR(der);
        *ret_size = (size_t) len;
        return 0;
}

static int sig_type_mismatch(const SshKey *k, const Sshsig *s, Error *e) {
        char buf[48];

        return error_set(e, -EBADMSG, "an %s key with a signature of type '%s'", k->type->name,
                         ssh_printable(s->signature_type, buf));
}

static int verify_signature(const SshKey *k, EVP_PKEY *pkey, const Sshsig *s, const uint8_t *msg, size_t msg_size,
                            Error *e) {
        _cleanup_(evp_md_ctx_freep) EVP_MD_CTX *ctx = NULL;
        _cleanup_free_ uint8_t *buf = NULL;
        SshBytes sig = s->signature;
        const char *md = NULL;
        size_t modulus;
        int r;

        switch (k->type->kind) {
        case KEY_ED25519:
                if (!ssh_bytes_eq(s->signature_type, "ssh-ed25519"))
                        return sig_type_mismatch(k, s, e);
                if (sig.size != 64)
                        return error_set(e, -EBADMSG, "an ssh-ed25519 signature of %zu bytes, not 64", sig.size);
                break;
        case KEY_ECDSA:
                if (!ssh_bytes_eq(s->signature_type, k->type->name))
                        return sig_type_mismatch(k, s, e);
                md = k->type->digest;
                r = ecdsa_sig_to_der(sig, &buf, &sig.size);
                if (r == -ENOMEM)
                        return oom(e);
                if (r < 0)
                        return error_set(e, r, "malformed %s signature", k->type->name);
                sig.data = buf;
                break;
        case KEY_RSA:
                if (ssh_bytes_eq(s->signature_type, "rsa-sha2-512"))
                        md = "SHA512";
                else if (ssh_bytes_eq(s->signature_type, "rsa-sha2-256"))
                        md = "SHA256";
                else if (ssh_bytes_eq(s->signature_type, "ssh-rsa"))
                        return error_set(e, -EPROTONOSUPPORT,
                                         "RSA signatures over SHA-1 (ssh-rsa) are refused; sign with rsa-sha2-512");
                else
                        return sig_type_mismatch(k, s, e);
                /* Shorter signatures are left-padded, as OpenSSH does; OpenSSL wants the full size. */
                modulus = (size_t) EVP_PKEY_get_size(pkey);
                if (sig.size > modulus)
                        return error_set(e, -EBADMSG, "an RSA signature longer than the key's modulus");
                buf = calloc(1, modulus);
                if (!buf)
                        return oom(e);
                memcpy(buf + modulus - sig.size, sig.data, sig.size);
                sig = (SshBytes) { buf, modulus };
                break;
        }

        ctx = EVP_MD_CTX_new();
        if (!ctx)
                return oom(e);
        if (EVP_DigestVerifyInit_ex(ctx, NULL, md, NULL, NULL, pkey, NULL) != 1) {
                ERR_clear_error();
                return error_set(e, -EIO, "OpenSSL cannot verify %s signatures", k->type->name);
        }
        if (EVP_DigestVerify(ctx, sig.data, sig.size, msg, msg_size) != 1) {
                ERR_clear_error();
                return error_set(e, -EPERM, "the %s signature does not verify: the signed data or the signature was changed",
                                 k->type->name);
        }
        return 0;
}

/* "SSHSIG" string namespace string reserved string hash_algorithm string H(data). The reserved
 * field is signed empty whatever the blob holds, as OpenSSH signs and verifies it. */
static int signed_message(const Sshsig *s, const void *data, size_t size, uint8_t **ret, size_t *ret_size, Error *e) {
        unsigned char digest[EVP_MAX_MD_SIZE];
        size_t digest_size, n;
        const char *md;
        uint8_t *p;
        char buf[48];

        md = ssh_bytes_eq(s->hash_algorithm, "sha512") ? "SHA512" : ssh_bytes_eq(s->hash_algorithm, "sha256") ? "SHA256" : NULL;
        if (!md)
                return error_set(e, -EPROTONOSUPPORT, "hash algorithm '%s' is not supported (sha256, sha512)",
                                 ssh_printable(s->hash_algorithm, buf));
        if (!EVP_Q_digest(NULL, md, NULL, data, size, digest, &digest_size)) {
                ERR_clear_error();
                return error_set(e, -EIO, "cannot compute the %s of the signed data", md);
        }
        n = MAGIC_SIZE + 4 + s->sig_namespace.size + 4 + 4 + s->hash_algorithm.size + 4 + digest_size;
        *ret = p = malloc(n);
        if (!p)
                return oom(e);
        memcpy(p, MAGIC, MAGIC_SIZE);
        p += MAGIC_SIZE;
        put_string(&p, s->sig_namespace.data, s->sig_namespace.size);
        put_string(&p, "", 0);
        put_string(&p, s->hash_algorithm.data, s->hash_algorithm.size);
        put_string(&p, digest, digest_size);
        *ret_size = n;
        return 0;
}

void sshsig_signer_done(SshsigSigner *s) {
        if (!s)
                return;
        free(s->principal);
        free(s->key_type);
        *s = (SshsigSigner) {};
}

int sshsig_verify(const char *allowed_signers_path, const char *armored, const void *data, size_t size,
                  const char *namespace_, time_t now, SshsigSigner *ret_signer, Error *e) {
        _cleanup_(allowed_signer_done) AllowedSigner signer = {};
        _cleanup_(evp_pkey_freep) EVP_PKEY *pkey = NULL;
        _cleanup_free_ uint8_t *blob = NULL, *msg = NULL;
        size_t blob_size = 0, msg_size = 0;
        char fp[64], buf[48];
        SshBytes type;
        SshReader rd;
        Sshsig s;
        SshKey k;
        int r;

        r = sshsig_dearmor(armored, &blob, &blob_size, e);
        if (r < 0)
                return r;
        r = sshsig_parse(blob, blob_size, &s, e);
        if (r < 0)
                return r;
        if (!ssh_bytes_eq(s.sig_namespace, namespace_))
                return error_set(e, -EPERM, "the signature is for namespace '%s', not '%s'",
                                 ssh_printable(s.sig_namespace, buf), namespace_);
        r = signed_message(&s, data, size, &msg, &msg_size, e);
        if (r < 0)
                return r;
        rd = (SshReader) { s.public_key.data, s.public_key.size };
        if (!ssh_read_string(&rd, &type))
                return error_set(e, -EBADMSG, "malformed public key in the signature");
        if (!ssh_key_type_find(type))
                return error_set(e, -EPROTONOSUPPORT, "signed with a key of type '%s', which is not supported",
                                 ssh_printable(type, buf));

        /* Only a listed key goes further. */
        ssh_key_fingerprint(s.public_key, fp);
        r = allowed_signers_find(allowed_signers_path, s.public_key.data, s.public_key.size, namespace_, now, &signer, e);
        if (r == -EKEYREJECTED)
                return error_prefix(e, r, "signing key %s", fp);
        if (r < 0)
                return r;

        r = ssh_key_parse(s.public_key, &k, e);
        if (r < 0)
                return r;
        r = ssh_key_to_pkey(&k, &pkey, e);
        if (r < 0)
                return r;
        r = verify_signature(&k, pkey, &s, msg, msg_size, e);
        if (r < 0)
                return r;

        if (ret_signer) {
                char *key_type = strdup(k.type->name);

                if (!key_type)
                        return oom(e);
                *ret_signer = (SshsigSigner) { .principal = TAKE_PTR(signer.principals), .key_type = key_type };
                memcpy(ret_signer->fingerprint, fp, sizeof(fp));
        }
        return 0;
}
