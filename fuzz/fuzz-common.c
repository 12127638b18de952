/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdarg.h>
#include <sys/stat.h>

#include "sign/cosign.h"
#include "basic/fileio.h"
#include "fuzz-common.h"
#include "basic/macro.h"

#ifndef FUZZ_DIR
#error "FUZZ_DIR must be the fuzz/ source directory"
#endif

void fuzz_fail(const char *fmt, ...) {
        va_list ap;

        fputs("FUZZ PROPERTY VIOLATED: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        abort();
}

bool fuzz_known(const char *id) {
        const char *known = getenv("FUZZ_KNOWN");
        size_t l = strlen(id);

        for (const char *p = known; p && *p;) {
                size_t n = strcspn(p, ",");

                if (n == l && strncmp(p, id, l) == 0)
                        return true;
                p += n + (p[n] == ',');
        }
        return false;
}

void fuzz_report(const char *what, int r, const Error *e) {
        static int verbose = -1;

        if (verbose < 0)
                verbose = getenv("FUZZ_VERBOSE") != NULL;
        if (verbose)
                fprintf(stderr, "%s: %d %s\n", what, r, e && e->message[0] ? e->message : "");
}

char *fuzz_strndup(const uint8_t *data, size_t size) {
        char *s = malloc(size + 1);

        if (!s)
                abort();
        memcpy(s, data, size);
        s[size] = 0;
        return s;
}

/* ---- Scratch files ---- */

static char tmpdir[256];

static void tmpdir_remove(void) {
        if (tmpdir[0])
                (void) rm_rf(tmpdir);
}

const char *fuzz_tmpdir(void) {
        const char *base;

        if (tmpdir[0])
                return tmpdir;
        base = getenv("TMPDIR");
        (void) snprintf(tmpdir, sizeof(tmpdir), "%s/atticd-fuzz.XXXXXX", base && base[0] ? base : "/tmp");
        if (!mkdtemp(tmpdir)) {
                perror("mkdtemp");
                abort();
        }
        atexit(tmpdir_remove);
        return tmpdir;
}

const char *fuzz_tmp_path(const char *name) {
        static struct {
                const char *name;
                char *path;
        } paths[16];
        size_t i;

        for (i = 0; i < ELEMENTSOF(paths) && paths[i].name; i++)
                if (streq(paths[i].name, name))
                        return paths[i].path;
        if (i == ELEMENTSOF(paths))
                abort();
        paths[i].path = path_join(fuzz_tmpdir(), name);
        if (!paths[i].path)
                abort();
        paths[i].name = name;
        return paths[i].path;
}

int fuzz_write_file(const char *path, const void *data, size_t size) {
        const uint8_t *p = data;
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

        if (fd < 0)
                return -errno;
        while (size > 0) {
                ssize_t n = write(fd, p, size);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        int r = -errno;
                        close(fd);
                        return r;
                }
                p += n;
                size -= (size_t) n;
        }
        return close(fd) < 0 ? -errno : 0;
}

const char *fuzz_data_path(const char *rel) {
        static struct {
                const char *rel;
                char *path;
        } paths[64];
        size_t i;

        for (i = 0; i < ELEMENTSOF(paths) && paths[i].rel; i++)
                if (streq(paths[i].rel, rel))
                        return paths[i].path;
        if (i == ELEMENTSOF(paths))
                abort();
        paths[i].path = path_join(FUZZ_DIR, rel);
        if (!paths[i].path)
                abort();
        paths[i].rel = rel;
        return paths[i].path;
}

/* ---- Keys ---- */

static const char *const cosign_keys[] = {
        "keys/fuzz-p256.pub",
        "keys/fuzz-ed25519.pub",
        "keys/cosign/tests-p256.pub",
        "keys/cosign/tests-ed25519.pub",
        "keys/cosign/tests-rsa2048.pub",
        "keys/cosign/tests-p384.pub",
        "keys/cosign/tests-p521.pub",
        "keys/cosign/cimage-cosign.pub",
        "keys/cosign/cimage-cosign2.pub",
        "keys/cosign/cimage-fulcio-cert.pub",
        "keys/cosign/bundle-v03-cert.pub",
        "keys/cosign/sigstore-rs.pub",
};

char **fuzz_cosign_key_paths(void) {
        static char *paths[ELEMENTSOF(cosign_keys) + 1];

        if (!paths[0])
                for (size_t i = 0; i < ELEMENTSOF(cosign_keys); i++)
                        paths[i] = (char *) fuzz_data_path(cosign_keys[i]);
        return paths;
}

const CosignKeyring *fuzz_cosign_keyring(void) {
        static CosignKeyring *keys;
        Error e = {};

        if (!keys && cosign_keyring_load(fuzz_cosign_key_paths(), &keys, &e) < 0) {
                fprintf(stderr, "cannot load the fuzz keyring: %s\n", e.message);
                abort();
        }
        return keys;
}

static EVP_PKEY *private_key(const char *rel) {
        FILE *f = fopen(fuzz_data_path(rel), "re");
        EVP_PKEY *k;

        if (!f) {
                perror(fuzz_data_path(rel));
                abort();
        }
        k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
        fclose(f);
        if (!k)
                abort();
        return k;
}

static EVP_PKEY *p256_key(void) {
        static EVP_PKEY *k;

        if (!k)
                k = private_key("keys/fuzz-p256.pem");
        return k;
}

static EVP_PKEY *ed25519_key(void) {
        static EVP_PKEY *k;

        if (!k)
                k = private_key("keys/fuzz-ed25519.pem");
        return k;
}

static int sign_with(EVP_PKEY *key, const EVP_MD *md, const void *data, size_t size, uint8_t **ret,
                     size_t *ret_size) {
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        size_t n = 0;
        uint8_t *sig;

        if (!ctx || EVP_DigestSignInit(ctx, NULL, md, NULL, key) != 1 ||
            EVP_DigestSign(ctx, NULL, &n, data, size) != 1 || !(sig = malloc(n)) ||
            EVP_DigestSign(ctx, sig, &n, data, size) != 1)
                abort();
        EVP_MD_CTX_free(ctx);
        *ret = sig;
        *ret_size = n;
        return 0;
}

int fuzz_sign_p256(const void *data, size_t size, uint8_t **ret, size_t *ret_size) {
        return sign_with(p256_key(), EVP_sha256(), data, size, ret, ret_size);
}

int fuzz_sign_ed25519(const void *data, size_t size, uint8_t **ret, size_t *ret_size) {
        return sign_with(ed25519_key(), NULL, data, size, ret, ret_size);
}

/* ---- Chunks and placeholders ---- */

typedef struct Buf {
        uint8_t *p;
        size_t n, allocated;
} Buf;

static void buf_add(Buf *b, const void *data, size_t n) {
        if (b->n + n + 1 > b->allocated) {
                size_t a = MAX(b->allocated * 2, b->n + n + 1);
                uint8_t *p = realloc(b->p, MAX(a, (size_t) 64));

                if (!p)
                        abort();
                b->p = p;
                b->allocated = MAX(a, (size_t) 64);
        }
        if (n > 0)
                memcpy(b->p + b->n, data, n);
        b->n += n;
        b->p[b->n] = 0;
}

static void buf_add_base64(Buf *b, const void *data, size_t n) {
        _cleanup_free_ uint8_t *out = malloc(4 * ((n + 2) / 3) + 1);
        int k;

        if (!out)
                abort();
        k = EVP_EncodeBlock(out, data, (int) n);
        buf_add(b, out, (size_t) k);
}

static void buf_add_sha256_hex(Buf *b, const void *data, size_t n) {
        unsigned char md[32];
        char hex[65];

        if (!EVP_Digest(data, n, md, NULL, EVP_sha256(), NULL))
                abort();
        for (size_t i = 0; i < 32; i++)
                (void) snprintf(hex + 2 * i, 3, "%02x", md[i]);
        buf_add(b, hex, 64);
}

static void buf_add_signature(Buf *b, bool ed25519, const void *data, size_t n) {
        _cleanup_free_ uint8_t *sig = NULL;
        size_t sig_size;

        if (ed25519)
                fuzz_sign_ed25519(data, n, &sig, &sig_size);
        else
                fuzz_sign_p256(data, n, &sig, &sig_size);
        buf_add_base64(b, sig, sig_size);
}

static const uint8_t *fuzz_cert(size_t *ret_size) {
        static char *der;
        static size_t size;

        if (!der && read_full_file(fuzz_data_path("keys/fuzz-p256-cert.der"), 64 * 1024, &der, &size) < 0)
                abort();
        *ret_size = size;
        return (const uint8_t *) der;
}

static void buf_add_hint(Buf *b) {
        unsigned char *spki = NULL, md[32];
        int n = i2d_PUBKEY(p256_key(), &spki);

        if (n <= 0 || !EVP_Digest(spki, (size_t) n, md, NULL, EVP_sha256(), NULL))
                abort();
        OPENSSL_free(spki);
        buf_add_base64(b, md, sizeof(md));
}

/* One placeholder at p (which starts with '@'): its length, with what it stands for added to
 * b; 0 when there is none. */
static size_t placeholder(Buf *b, const uint8_t *p, size_t left, const FuzzChunks *c, size_t max_ref) {
        static const char *const names[] = { "D", "H", "S", "B", "SIG", "EDSIG", "DSSE" };
        size_t cert_size;

        if (left >= 6 && memcmp(p, "@HINT@", 6) == 0) {
                buf_add_hint(b);
                return 6;
        }
        if (left >= 6 && memcmp(p, "@CERT@", 6) == 0) {
                const uint8_t *cert = fuzz_cert(&cert_size);
                buf_add_base64(b, cert, cert_size);
                return 6;
        }
        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                size_t l = strlen(names[i]), k;
                const uint8_t *d;
                char num[32];

                if (left < l + 3 || memcmp(p + 1, names[i], l) != 0 || p[l + 1] < '1' || p[l + 1] > '9' ||
                    p[l + 2] != '@')
                        continue;
                k = (size_t) (p[l + 1] - '0');
                if (k > max_ref || k >= c->n)
                        return 0;
                d = c->data[k];
                switch (i) {
                case 0:
                        buf_add(b, "sha256:", 7);
                        buf_add_sha256_hex(b, d, c->size[k]);
                        break;
                case 1:
                        buf_add_sha256_hex(b, d, c->size[k]);
                        break;
                case 2:
                        (void) snprintf(num, sizeof(num), "%zu", c->size[k]);
                        buf_add(b, num, strlen(num));
                        break;
                case 3:
                        buf_add_base64(b, d, c->size[k]);
                        break;
                case 4:
                case 5:
                        buf_add_signature(b, i == 5, d, c->size[k]);
                        break;
                case 6: {
                        _cleanup_free_ uint8_t *pae = NULL;
                        size_t pae_size;

                        if (cosign_dsse_pae(COSIGN_PAYLOAD_TYPE_INTOTO, d, c->size[k], &pae, &pae_size) < 0)
                                abort();
                        buf_add_signature(b, false, pae, pae_size);
                        break;
                }
                }
                return l + 3;
        }
        return 0;
}

int fuzz_expand(const uint8_t *data, size_t size, const FuzzChunks *c, size_t max_ref, uint8_t **ret,
                size_t *ret_size) {
        Buf b = {};
        size_t i = 0;

        buf_add(&b, "", 0);
        while (i < size) {
                const uint8_t *at = memchr(data + i, '@', size - i);
                size_t k;

                if (!at) {
                        buf_add(&b, data + i, size - i);
                        break;
                }
                buf_add(&b, data + i, (size_t) (at - (data + i)));
                i = (size_t) (at - data);
                k = placeholder(&b, at, size - i, c, max_ref);
                if (k == 0) {
                        buf_add(&b, "@", 1);
                        k = 1;
                }
                i += k;
        }
        *ret = b.p;
        *ret_size = b.n;
        return 0;
}

int fuzz_chunks_parse(const uint8_t *data, size_t size, FuzzChunks *ret) {
        const size_t sep = strlen(FUZZ_CHUNK_SEPARATOR);
        const uint8_t *raw[FUZZ_CHUNKS_MAX];
        size_t raw_size[FUZZ_CHUNKS_MAX], n = 0;
        FuzzChunks c = {};

        /* Split; anything after the last allowed separator stays in the last chunk. */
        for (const uint8_t *p = data, *end = data + size;;) {
                const uint8_t *s = n + 1 < FUZZ_CHUNKS_MAX ? memmem(p, (size_t) (end - p), FUZZ_CHUNK_SEPARATOR, sep) : NULL;

                raw[n] = p;
                raw_size[n] = s ? (size_t) (s - p) : (size_t) (end - p);
                n++;
                if (!s)
                        break;
                p = s + sep;
        }

        c.n = n;
        for (size_t i = 1; i < n; i++)
                fuzz_expand(raw[i], raw_size[i], &c, i - 1, &c.data[i], &c.size[i]);
        fuzz_expand(raw[0], raw_size[0], &c, n - 1, &c.data[0], &c.size[0]);
        *ret = c;
        return 0;
}

void fuzz_chunks_done(FuzzChunks *c) {
        for (size_t i = 0; i < c->n; i++)
                free(c->data[i]);
        *c = (FuzzChunks) {};
}
