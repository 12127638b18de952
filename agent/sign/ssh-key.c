/* SPDX-License-Identifier: MIT */
/* SSH public keys (RFC 4253, 5656, 8709) and the SSH wire format they are written in: what
 * SSHSIG signatures (sshsig.c) and allowed_signers files (allowed-signers.c) both read. */

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include "basic/base64.h"
#include "basic/macro.h"
#include "basic/openssl-util.h"
#include "sign/ssh-key.h"

#define MPINT_MAX (16384 / 8 + 1) /* OpenSSH's SSHBUF_MAX_BIGNUM, and a sign byte */
#define RSA_BITS_MIN 2048         /* OpenSSH takes 1024: too weak to trust a deployment to */
#define RSA_BITS_MAX 16384

static int oom(Error *e) {
        return error_set(e, -ENOMEM, "out of memory");
}

/* ---- The SSH wire format (RFC 4251): every length is checked against what is left ---- */

bool ssh_read_u32(SshReader *r, uint32_t *ret) {
        if (r->n < 4)
                return false;
        *ret = (uint32_t) r->p[0] << 24 | (uint32_t) r->p[1] << 16 | (uint32_t) r->p[2] << 8 | r->p[3];
        r->p += 4;
        r->n -= 4;
        return true;
}

bool ssh_read_string(SshReader *r, SshBytes *ret) {
        uint32_t l;

        if (!ssh_read_u32(r, &l) || l > r->n)
                return false;
        *ret = (SshBytes) { r->p, l };
        r->p += l;
        r->n -= l;
        return true;
}

/* A non-negative mpint, without its leading zeros. */
bool ssh_read_mpint(SshReader *r, SshBytes *ret) {
        if (!ssh_read_string(r, ret) || ret->size > MPINT_MAX || (ret->size > 0 && (ret->data[0] & 0x80)))
                return false;
        while (ret->size > 0 && ret->data[0] == 0) {
                ret->data++;
                ret->size--;
        }
        return true;
}

bool ssh_bytes_eq(SshBytes b, const char *s) {
        return b.size == strlen(s) && memcmp(b.data, s, b.size) == 0;
}

/* A field from the signature, fit for a message. */
const char *ssh_printable(SshBytes b, char buf[static 48]) {
        size_t n = MIN(b.size, (size_t) 40);

        for (size_t i = 0; i < n; i++)
                buf[i] = b.data[i] >= 0x20 && b.data[i] < 0x7f ? (char) b.data[i] : '?';
        buf[n] = 0;
        return buf;
}

/* ---- Base64 ---- */

/* As OpenSSH's b64_pton: whitespace is skipped, '=' only at the end, and the bits that padding
 * drops must be zero. */
int ssh_base64_decode(const char *s, size_t n, uint8_t **ret, size_t *ret_size) {
        return base64_decode(s, n, BASE64_SKIP_SPACE, ret, ret_size);
}

/* ---- Public keys ---- */

static const KeyType key_types[] = {
        { "ssh-ed25519", KEY_ED25519 },
        { "ecdsa-sha2-nistp256", KEY_ECDSA, "nistp256", "P-256", 65, "SHA256" },
        { "ecdsa-sha2-nistp384", KEY_ECDSA, "nistp384", "P-384", 97, "SHA384" },
        { "ecdsa-sha2-nistp521", KEY_ECDSA, "nistp521", "P-521", 133, "SHA512" },
        { "ssh-rsa", KEY_RSA },
};

const KeyType *ssh_key_type_find(SshBytes name) {
        for (size_t i = 0; i < ELEMENTSOF(key_types); i++)
                if (ssh_bytes_eq(name, key_types[i].name))
                        return &key_types[i];
        return NULL;
}

int ssh_key_parse(SshBytes blob, SshKey *ret, Error *e) {
        SshReader r = { blob.data, blob.size };
        SshBytes name;
        char buf[48];
        bool ok = false;
        SshKey k = {};

        if (!ssh_read_string(&r, &name))
                return error_set(e, -EBADMSG, "malformed public key");
        k.type = ssh_key_type_find(name);
        if (!k.type)
                return error_set(e, -EPROTONOSUPPORT, "key type '%s' is not supported", ssh_printable(name, buf));
        switch (k.type->kind) {
        case KEY_ED25519:
                ok = ssh_read_string(&r, &k.a) && k.a.size == 32;
                break;
        case KEY_ECDSA:
                ok = ssh_read_string(&r, &k.a) && ssh_bytes_eq(k.a, k.type->curve) && ssh_read_string(&r, &k.b) &&
                     k.b.size == k.type->point_size && k.b.data[0] == 0x04;
                break;
        case KEY_RSA:
                ok = ssh_read_mpint(&r, &k.a) && ssh_read_mpint(&r, &k.b);
                break;
        }
        if (!ok || r.n > 0)
                return error_set(e, -EBADMSG, "malformed %s public key", k.type->name);
        *ret = k;
        return 0;
}

int ssh_key_check(const void *blob, size_t size, Error *e) {
        SshKey k;

        return ssh_key_parse((SshBytes) { blob, size }, &k, e);
}

int ssh_key_to_pkey(const SshKey *k, EVP_PKEY **ret, Error *e) {
        _cleanup_(evp_pkey_ctx_freep) EVP_PKEY_CTX *ctx = NULL;
        _cleanup_(ossl_param_bld_freep) OSSL_PARAM_BLD *bld = NULL;
        _cleanup_(ossl_param_freep) OSSL_PARAM *params = NULL;
        _cleanup_(bn_freep) BIGNUM *n = NULL, *ex = NULL;
        bool ok;

        if (k->type->kind == KEY_ED25519) {
                *ret = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, k->a.data, k->a.size);
                return *ret ? 0 : error_set(e, -EBADMSG, "invalid ssh-ed25519 key");
        }
        bld = OSSL_PARAM_BLD_new();
        if (!bld)
                return oom(e);
        if (k->type->kind == KEY_ECDSA)
                ok = OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, k->type->group, 0) &&
                     OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, k->b.data, k->b.size);
        else {
                ex = BN_bin2bn(k->a.data, (int) k->a.size, NULL);
                n = BN_bin2bn(k->b.data, (int) k->b.size, NULL);
                if (!ex || !n)
                        return oom(e);
                if (BN_num_bits(n) < RSA_BITS_MIN || BN_num_bits(n) > RSA_BITS_MAX)
                        return error_set(e, -EPROTONOSUPPORT, "%d-bit RSA keys are not accepted (%d to %d bits)",
                                         BN_num_bits(n), RSA_BITS_MIN, RSA_BITS_MAX);
                if (!BN_is_odd(ex) || BN_is_one(ex))
                        return error_set(e, -EBADMSG, "invalid ssh-rsa key (public exponent)");
                ok = OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) &&
                     OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, ex);
        }
        if (!ok || !(params = OSSL_PARAM_BLD_to_param(bld)))
                return oom(e);
        ctx = EVP_PKEY_CTX_new_from_name(NULL, k->type->kind == KEY_ECDSA ? "EC" : "RSA", NULL);
        if (!ctx || EVP_PKEY_fromdata_init(ctx) <= 0 || EVP_PKEY_fromdata(ctx, ret, EVP_PKEY_PUBLIC_KEY, params) <= 0) {
                ERR_clear_error();
                return error_set(e, -EBADMSG, "invalid %s key", k->type->name);
        }
        return 0;
}

/* "SHA256:" and the unpadded base64 of the blob's SHA-256, as ssh-keygen -l prints it. */
void ssh_key_fingerprint(SshBytes blob, char ret[static 64]) {
        unsigned char md[32], b64[48];
        int n;

        if (!EVP_Digest(blob.data, blob.size, md, NULL, EVP_sha256(), NULL)) {
                (void) snprintf(ret, 64, "SHA256:?");
                return;
        }
        n = EVP_EncodeBlock(b64, md, sizeof(md));
        while (n > 0 && b64[n - 1] == '=')
                n--;
        (void) snprintf(ret, 64, "SHA256:%.*s", n, b64);
}

