/* SPDX-License-Identifier: MIT */
/* SSHSIG verification (OpenSSH PROTOCOL.sshsig) with OpenSSL. The signature is
 *
 *   "SSHSIG" uint32 version string publickey string namespace string reserved
 *   string hash_algorithm string signature
 *
 * and what is signed is "SSHSIG" string namespace string reserved string hash_algorithm
 * string H(message). Every length read from the input is checked against what is left. */

#include <fnmatch.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include "fileio.h"
#include "sshsig.h"

#define MAGIC "SSHSIG"
#define MAGIC_LEN 6

/* ---- reading the SSH wire format ---- */

typedef struct Reader {
        const uint8_t *p;
        size_t n;
} Reader;

static int read_u32(Reader *r, uint32_t *ret) {
        if (r->n < 4)
                return -EBADMSG;
        *ret = (uint32_t) r->p[0] << 24 | (uint32_t) r->p[1] << 16 | (uint32_t) r->p[2] << 8 | r->p[3];
        r->p += 4;
        r->n -= 4;
        return 0;
}

static int read_string(Reader *r, const uint8_t **ret, size_t *ret_size) {
        uint32_t l;

        if (read_u32(r, &l) < 0 || l > r->n)
                return -EBADMSG;
        *ret = r->p;
        *ret_size = l;
        r->p += l;
        r->n -= l;
        return 0;
}

static bool string_is(const uint8_t *s, size_t n, const char *lit) {
        return n == strlen(lit) && memcmp(s, lit, n) == 0;
}

/* ---- armor and base64 ---- */

static int base64_decode(const char *in, size_t n, uint8_t **ret, size_t *ret_size) {
        _cleanup_free_ char *clean = malloc(n + 1);
        _cleanup_free_ uint8_t *out = NULL;
        size_t m = 0, pad = 0;
        int k;

        if (!clean)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                char c = in[i];

                if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
                        continue;
                if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
                      c == '/' || c == '='))
                        return -EBADMSG;
                if (c != '=' && pad > 0)
                        return -EBADMSG; /* data after padding */
                if (c == '=')
                        pad++;
                clean[m++] = c;
        }
        if (m == 0 || m % 4 != 0 || pad > 2)
                return -EBADMSG;
        out = malloc(m / 4 * 3 + 1);
        if (!out)
                return -ENOMEM;
        k = EVP_DecodeBlock(out, (const unsigned char *) clean, (int) m);
        if (k < 0)
                return -EBADMSG;
        *ret_size = (size_t) k - pad;
        *ret = TAKE_PTR(out);
        return 0;
}

int sshsig_dearmor(const char *armored, uint8_t **ret, size_t *ret_size, Error *e) {
        static const char begin[] = "-----BEGIN SSH SIGNATURE-----", end[] = "-----END SSH SIGNATURE-----";
        const char *b, *en;
        size_t n = strnlen(armored, SSHSIG_ARMOR_MAX + 1);
        int r;

        if (n > SSHSIG_ARMOR_MAX)
                return error_set(e, -EBADMSG, "the signature is larger than %d bytes", SSHSIG_ARMOR_MAX);
        b = strstr(armored, begin);
        if (!b)
                return error_set(e, -EBADMSG, "not an SSH signature (no '%s' line)", begin);
        b += sizeof(begin) - 1;
        en = strstr(b, end);
        if (!en)
                return error_set(e, -EBADMSG, "the SSH signature is truncated (no '%s' line)", end);
        r = base64_decode(b, (size_t) (en - b), ret, ret_size);
        if (r == -EBADMSG)
                return error_set(e, r, "the SSH signature is not valid base64");
        return r;
}

int sshsig_parse(const uint8_t *blob, size_t size, Sshsig *ret, Error *e) {
        Reader r = { blob, size }, sig;
        const uint8_t *sigblob;
        size_t sigblob_size;
        Sshsig s = {};

        if (size < MAGIC_LEN || memcmp(blob, MAGIC, MAGIC_LEN) != 0)
                return error_set(e, -EBADMSG, "not an SSHSIG blob (wrong magic)");
        r.p += MAGIC_LEN;
        r.n -= MAGIC_LEN;
        if (read_u32(&r, &s.version) < 0)
                return error_set(e, -EBADMSG, "truncated SSHSIG blob");
        if (s.version != 1)
                return error_set(e, -EBADMSG, "unsupported SSHSIG version %u", s.version);
        if (read_string(&r, &s.public_key, &s.public_key_size) < 0 ||
            read_string(&r, &s.namespace_, &s.namespace_size) < 0 ||
            read_string(&r, &s.reserved, &s.reserved_size) < 0 ||
            read_string(&r, &s.hash_algorithm, &s.hash_algorithm_size) < 0 ||
            read_string(&r, &sigblob, &sigblob_size) < 0)
                return error_set(e, -EBADMSG, "truncated SSHSIG blob");
        if (r.n != 0)
                return error_set(e, -EBADMSG, "%zu bytes of garbage after the SSHSIG blob", r.n);

        sig = (Reader) { sigblob, sigblob_size };
        if (read_string(&sig, &s.signature_type, &s.signature_type_size) < 0 ||
            read_string(&sig, &s.signature, &s.signature_size) < 0 || sig.n != 0)
                return error_set(e, -EBADMSG, "malformed signature field in the SSHSIG blob");

        *ret = s;
        return 0;
}

/* ---- public keys ---- */

static void evp_pkey_freep(EVP_PKEY **p) {
        EVP_PKEY_free(*p);
}

static int bn_from_mpint(const uint8_t *p, size_t n, BIGNUM **ret) {
        if (n > 0 && (p[0] & 0x80))
                return -EBADMSG; /* negative */
        *ret = BN_bin2bn(p, (int) n, NULL);
        return *ret ? 0 : -ENOMEM;
}

static int pkey_from_params(const char *type, OSSL_PARAM_BLD *bld, EVP_PKEY **ret) {
        OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
        EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
        int r = -EBADMSG;

        if (params && ctx && EVP_PKEY_fromdata_init(ctx) > 0 &&
            EVP_PKEY_fromdata(ctx, ret, EVP_PKEY_PUBLIC_KEY, params) > 0)
                r = 0;
        EVP_PKEY_CTX_free(ctx);
        OSSL_PARAM_free(params);
        return r;
}

/* The key of an SSH public key blob, and what signatures it makes. */
typedef struct Key {
        EVP_PKEY *pkey;
        char type[32];
        const EVP_MD *md; /* ecdsa: fixed by the curve */
} Key;

static int key_from_blob(const uint8_t *blob, size_t size, Key *ret, Error *e) {
        Reader r = { blob, size };
        const uint8_t *type, *a, *b;
        size_t type_n, a_n, b_n;
        Key k = {};

        if (read_string(&r, &type, &type_n) < 0 || type_n >= sizeof(k.type))
                return error_set(e, -EBADMSG, "malformed public key");
        memcpy(k.type, type, type_n);

        if (streq(k.type, "ssh-ed25519")) {
                if (read_string(&r, &a, &a_n) < 0 || a_n != 32 || r.n != 0)
                        return error_set(e, -EBADMSG, "malformed ssh-ed25519 key");
                k.pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, a, a_n);
                if (!k.pkey)
                        return error_set(e, -EBADMSG, "invalid ssh-ed25519 key");
        } else if (strncmp(k.type, "ecdsa-sha2-", 11) == 0) {
                static const struct {
                        const char *curve, *group;
                        const EVP_MD *(*md)(void);
                } curves[] = {
                        { "nistp256", "P-256", EVP_sha256 },
                        { "nistp384", "P-384", EVP_sha384 },
                        { "nistp521", "P-521", EVP_sha512 },
                };
                OSSL_PARAM_BLD *bld;
                size_t i;
                int q;

                if (read_string(&r, &a, &a_n) < 0 || read_string(&r, &b, &b_n) < 0 || r.n != 0)
                        return error_set(e, -EBADMSG, "malformed %s key", k.type);
                for (i = 0; i < ELEMENTSOF(curves); i++)
                        if (string_is(a, a_n, curves[i].curve) && streq(k.type + 11, curves[i].curve))
                                break;
                if (i == ELEMENTSOF(curves))
                        return error_set(e, -EPROTONOSUPPORT, "unsupported key type %s", k.type);
                bld = OSSL_PARAM_BLD_new();
                if (!bld)
                        return -ENOMEM;
                q = OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, curves[i].group, 0) > 0 &&
                    OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, b, b_n) > 0;
                if (!q || pkey_from_params("EC", bld, &k.pkey) < 0) {
                        OSSL_PARAM_BLD_free(bld);
                        return error_set(e, -EBADMSG, "invalid %s key", k.type);
                }
                OSSL_PARAM_BLD_free(bld);
                k.md = curves[i].md();
        } else if (streq(k.type, "ssh-rsa")) {
                BIGNUM *n = NULL, *ex = NULL;
                OSSL_PARAM_BLD *bld = NULL;
                int q = -EBADMSG;

                if (read_string(&r, &a, &a_n) < 0 || read_string(&r, &b, &b_n) < 0 || r.n != 0)
                        return error_set(e, -EBADMSG, "malformed ssh-rsa key");
                if (bn_from_mpint(a, a_n, &ex) == 0 && bn_from_mpint(b, b_n, &n) == 0 && BN_num_bits(n) >= 2048 &&
                    (bld = OSSL_PARAM_BLD_new()) && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) > 0 &&
                    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, ex) > 0)
                        q = pkey_from_params("RSA", bld, &k.pkey);
                OSSL_PARAM_BLD_free(bld);
                BN_free(n);
                BN_free(ex);
                if (q < 0)
                        return error_set(e, -EBADMSG, "invalid ssh-rsa key (or shorter than 2048 bits)");
        } else
                return error_set(e, -EPROTONOSUPPORT, "unsupported key type '%s'", k.type);

        *ret = k;
        return 0;
}

static int fingerprint(const uint8_t *blob, size_t size, char out[64]) {
        unsigned char md[32];
        unsigned char b64[64];
        int n;

        if (!EVP_Digest(blob, size, md, NULL, EVP_sha256(), NULL))
                return -EIO;
        n = EVP_EncodeBlock(b64, md, sizeof(md));
        while (n > 0 && b64[n - 1] == '=')
                n--;
        (void) snprintf(out, 64, "SHA256:%.*s", n, b64);
        return 0;
}

/* ---- the signature ---- */

static int ecdsa_sig_to_der(const uint8_t *blob, size_t size, uint8_t **ret, size_t *ret_size) {
        Reader r = { blob, size };
        const uint8_t *rp, *sp;
        size_t rn, sn;
        BIGNUM *br = NULL, *bs = NULL;
        ECDSA_SIG *sig = NULL;
        unsigned char *der = NULL;
        int len, k = -EBADMSG;

        if (read_string(&r, &rp, &rn) < 0 || read_string(&r, &sp, &sn) < 0 || r.n != 0)
                return -EBADMSG;
        if (bn_from_mpint(rp, rn, &br) < 0 || bn_from_mpint(sp, sn, &bs) < 0 || !(sig = ECDSA_SIG_new()) ||
            ECDSA_SIG_set0(sig, br, bs) != 1)
                goto out;
        br = bs = NULL; /* owned by sig */
        len = i2d_ECDSA_SIG(sig, &der);
        if (len <= 0)
                goto out;
        *ret = der;
        *ret_size = (size_t) len;
        k = 0;
out:
        BN_free(br);
        BN_free(bs);
        ECDSA_SIG_free(sig);
        return k;
}

static int verify_signature(const Key *key, const Sshsig *s, const uint8_t *msg, size_t msg_size, Error *e) {
        _cleanup_free_ uint8_t *der = NULL;
        const uint8_t *sig = s->signature;
        size_t sig_size = s->signature_size;
        const EVP_MD *md = NULL;
        EVP_MD_CTX *ctx;
        int ok;

        if (streq(key->type, "ssh-ed25519")) {
                if (!string_is(s->signature_type, s->signature_type_size, "ssh-ed25519"))
                        return error_set(e, -EBADMSG, "an %s key with a signature of another type", key->type);
        } else if (key->md) {
                if (!string_is(s->signature_type, s->signature_type_size, key->type))
                        return error_set(e, -EBADMSG, "an %s key with a signature of another type", key->type);
                md = key->md;
                if (ecdsa_sig_to_der(s->signature, s->signature_size, &der, &sig_size) < 0)
                        return error_set(e, -EBADMSG, "malformed ECDSA signature");
                sig = der;
        } else {
                if (string_is(s->signature_type, s->signature_type_size, "rsa-sha2-512"))
                        md = EVP_sha512();
                else if (string_is(s->signature_type, s->signature_type_size, "rsa-sha2-256"))
                        md = EVP_sha256();
                else if (string_is(s->signature_type, s->signature_type_size, "ssh-rsa"))
                        return error_set(e, -EPROTONOSUPPORT, "RSA signatures over SHA-1 (ssh-rsa) are refused");
                else
                        return error_set(e, -EBADMSG, "an ssh-rsa key with a signature of another type");
        }

        ctx = EVP_MD_CTX_new();
        if (!ctx)
                return -ENOMEM;
        ok = EVP_DigestVerifyInit(ctx, NULL, md, NULL, key->pkey) == 1 &&
             EVP_DigestVerify(ctx, sig, sig_size, msg, msg_size) == 1;
        EVP_MD_CTX_free(ctx);
        if (!ok)
                return error_set(e, -EPERM, "the signature does not match the signed data (tampered?)");
        return 0;
}

static void append_string(uint8_t **p, const void *data, size_t n) {
        (*p)[0] = (uint8_t) (n >> 24);
        (*p)[1] = (uint8_t) (n >> 16);
        (*p)[2] = (uint8_t) (n >> 8);
        (*p)[3] = (uint8_t) n;
        memcpy(*p + 4, data, n);
        *p += 4 + n;
}

/* "SSHSIG" string namespace string reserved string hash_algorithm string H(data) */
static int signed_message(const Sshsig *s, const void *data, size_t size, uint8_t **ret, size_t *ret_size, Error *e) {
        unsigned char digest[EVP_MAX_MD_SIZE];
        unsigned int dlen;
        const EVP_MD *md;
        uint8_t *msg, *p;
        size_t n;

        if (string_is(s->hash_algorithm, s->hash_algorithm_size, "sha512"))
                md = EVP_sha512();
        else if (string_is(s->hash_algorithm, s->hash_algorithm_size, "sha256"))
                md = EVP_sha256();
        else
                return error_set(e, -EPROTONOSUPPORT, "unsupported hash algorithm '%.*s'",
                                 (int) MIN(s->hash_algorithm_size, 32u), s->hash_algorithm);
        if (!EVP_Digest(data, size, digest, &dlen, md, NULL))
                return -EIO;

        n = MAGIC_LEN + 4 + s->namespace_size + 4 + s->reserved_size + 4 + s->hash_algorithm_size + 4 + dlen;
        msg = p = malloc(n);
        if (!msg)
                return -ENOMEM;
        memcpy(p, MAGIC, MAGIC_LEN);
        p += MAGIC_LEN;
        append_string(&p, s->namespace_, s->namespace_size);
        append_string(&p, s->reserved, s->reserved_size);
        append_string(&p, s->hash_algorithm, s->hash_algorithm_size);
        append_string(&p, digest, dlen);
        *ret = msg;
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

/* Finds the line of allowed_signers that lists the signature's key and may sign in this
 * namespace at this time. */
static int find_signer(const char *path, const Sshsig *s, const char *namespace_, time_t now, SshsigSigner *ret,
                       Error *e) {
        _cleanup_free_ char *text = NULL;
        bool listed_elsewhere = false;
        char *line, *next;
        unsigned lineno = 0;
        size_t size;
        int r;

        r = read_full_file(path, ALLOWED_SIGNERS_MAX, &text, &size);
        if (r == -EFBIG)
                return error_set(e, -EINVAL, "%s: larger than %d bytes", path, ALLOWED_SIGNERS_MAX);
        if (r < 0)
                return error_set(e, r, "cannot read allowed signers file '%s': %s", path, strerror(-r));
        if (strlen(text) != size)
                return error_set(e, -EINVAL, "%s: contains a NUL byte", path);

        for (line = text; line; line = next) {
                AllowedSigner a = {};

                next = strchr(line, '\n');
                if (next)
                        *next++ = 0;
                lineno++;

                r = allowed_signer_parse_line(line, &a, e);
                if (r < 0)
                        return error_prefix(e, r, "%s:%u", path, lineno);
                if (r == 0)
                        continue;

                if (!a.cert_authority && a.key_size == s->public_key_size &&
                    memcmp(a.key, s->public_key, a.key_size) == 0) {
                        bool ns_ok = !a.namespaces, time_ok;

                        if (a.namespaces) {
                                _cleanup_free_ char *list = strdup(a.namespaces);
                                char *save = NULL;

                                if (!list) {
                                        allowed_signer_done(&a);
                                        return -ENOMEM;
                                }
                                for (char *pat = strtok_r(list, ",", &save); pat && !ns_ok;
                                     pat = strtok_r(NULL, ",", &save))
                                        ns_ok = fnmatch(pat, namespace_, 0) == 0;
                        }
                        time_ok = (a.valid_after == 0 || now >= a.valid_after) &&
                                  (a.valid_before == 0 || now < a.valid_before);
                        if (ns_ok && time_ok) {
                                if (ret) {
                                        ret->principal = TAKE_PTR(a.principals);
                                        ret->key_type = TAKE_PTR(a.key_type);
                                        (void) fingerprint(s->public_key, s->public_key_size, ret->fingerprint);
                                }
                                allowed_signer_done(&a);
                                return 0;
                        }
                        listed_elsewhere = true;
                }
                allowed_signer_done(&a);
        }

        if (listed_elsewhere)
                return error_set(e, -EKEYREJECTED,
                                 "the signing key is in '%s', but not for namespace '%s' at this time", path, namespace_);
        return error_set(e, -EKEYREJECTED, "signed by a key that is not in '%s'", path);
}

int sshsig_verify(const char *allowed_signers_path, const char *armored, const void *data, size_t size,
                  const char *namespace_, time_t now, SshsigSigner *ret_signer, Error *e) {
        _cleanup_free_ uint8_t *blob = NULL, *msg = NULL;
        _cleanup_(evp_pkey_freep) EVP_PKEY *pkey = NULL;
        SshsigSigner signer = {};
        size_t blob_size = 0, msg_size = 0;
        Sshsig s;
        Key key;
        int r;

        r = sshsig_dearmor(armored, &blob, &blob_size, e);
        if (r < 0)
                return r;
        r = sshsig_parse(blob, blob_size, &s, e);
        if (r < 0)
                return r;
        if (!string_is(s.namespace_, s.namespace_size, namespace_))
                return error_set(e, -EKEYREJECTED, "signed for namespace '%.*s', not '%s'",
                                 (int) MIN(s.namespace_size, 64u), s.namespace_, namespace_);

        r = key_from_blob(s.public_key, s.public_key_size, &key, e);
        if (r < 0)
                return r;
        pkey = key.pkey;

        r = signed_message(&s, data, size, &msg, &msg_size, e);
        if (r < 0)
                return r;

        /* The key must be trusted before its signature means anything; check the signature
         * first anyway, so that a tampered commit is reported as such. */
        r = verify_signature(&key, &s, msg, msg_size, e);
        if (r < 0)
                return r;
        r = find_signer(allowed_signers_path, &s, namespace_, now, &signer, e);
        if (r < 0)
                return r;

        if (ret_signer)
                *ret_signer = signer;
        else
                sshsig_signer_done(&signer);
        return 0;
}
