/* SPDX-License-Identifier: MIT */
/* `verify-blob`: a Sigstore bundle over a file, checked offline against a trusted root
 * (sign/sigstore.h), with a one-line verdict. A file that the agent cannot read (not there, not
 * readable, not a regular file) is a usage error (2); what the files say that does not verify
 * is a refusal (3): the bundle, and the trusted root and the key as inputs of the verification
 * (one that does not parse, or holds no key of a supported type). */

#include <fcntl.h>
#include <jansson.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "basic/log.h"
#include "basic/timeutil.h"
#include "basic/whole-match.h"
#include "engine/engine.h"
#include "engine/run.h"
#include "sign/cosign-key.h"
#include "sign/sigstore.h"

#define ARTIFACT_MAX (UINT64_C(64) << 30) /* mapped, not read: a bound, not a buffer */

/* The artifact, mapped read-only (an empty file maps to nothing). */
typedef struct Artifact {
        void *data;
        size_t size;
} Artifact;

static void artifact_done(Artifact *a) {
        if (a->data && a->size > 0)
                (void) munmap(a->data, a->size);
}

static int artifact_map(const char *path, Artifact *ret) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        struct stat st;
        void *p;

        if (fd < 0 || fstat(fd, &st) < 0)
                return negative_errno();
        if (S_ISDIR(st.st_mode))
                return -EISDIR;
        if (!S_ISREG(st.st_mode))
                return -EINVAL; /* a FIFO or a device: not a file to verify */
        if ((uint64_t) st.st_size > ARTIFACT_MAX)
                return -EFBIG;
        if (st.st_size == 0) {
                *ret = (Artifact) {};
                return 0;
        }
        p = mmap(NULL, (size_t) st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED)
                return negative_errno();
        *ret = (Artifact) { .data = p, .size = (size_t) st.st_size };
        return 0;
}

/* What a file holds, against whether it could be read. */
static bool is_content_error(int r) {
        return r == -EBADMSG || r == -EMEDIUMTYPE || r == -EPROTONOSUPPORT || r == -EFBIG;
}

/* signer: what signed, verified (the key's file, or "SAN (ISSUER)" as the certificate names
 * them); NULL when refused. */
static void print_verdict(const VerifyBlobOptions *o, const SigstoreVerified *v, const char *signer, const char *reason,
                          bool json) {
        char when[TIMESTAMP_MAX];

        if (json) {
                json_t *j = json_pack("{s:s, s:b, s:s?, s:s?, s:s?, s:s?, s:s?, s:s?, s:s?, s:s?}", "artifact",
                                      o->artifact, "verified", !reason, "reason", reason, "identity", o->identity,
                                      "identity_regexp", o->identity_regexp, "issuer", o->issuer, "issuer_regexp",
                                      o->issuer_regexp, "key", o->key, "signer", signer,
                                      "signed_at", v ? format_timestamp(when, v->signed_at) : NULL);
                char *out = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;

                if (out)
                        puts(out);
                free(out);
                json_decref(j);
        }
        if (reason) {
                log_error("Refused '%s': %s", o->artifact, reason);
                return;
        }
        if (!json)
                printf("Verified '%s': signed by %s at %s (%u timestamp%s, %u integrated time%s; %u log entr%s); "
                       "%s%s\n",
                       o->artifact, signer, format_timestamp(when, v->signed_at), v->n_timestamps, v->n_timestamps == 1 ? "" : "s",
                       v->n_log_times, v->n_log_times == 1 ? "" : "s", v->n_entries, v->n_entries == 1 ? "y" : "ies",
                       v->predicate_type ? "an in-toto statement of type " : "a message signature",
                       v->predicate_type ?: "");
}

/* --certificate-identity-regexp and --certificate-oidc-issuer-regexp, compiled. */
typedef struct Expressions {
        regex_t identity, issuer;
        bool have_identity, have_issuer;
} Expressions;

static void expressions_done(Expressions *x) {
        if (x->have_identity)
                regfree(&x->identity);
        if (x->have_issuer)
                regfree(&x->issuer);
}

static ExitCode compile_one(const char *option, const char *expr, regex_t *re, bool *have, const regex_t **ret) {
        Error e = {};
        int r;

        if (!expr)
                return EXIT_OK;
        r = whole_match_compile(expr, re, &e);
        if (r < 0) {
                log_error("verify-blob: %s: %s", option, error_message(&e));
                return r == -ENOMEM ? EXIT_TRANSIENT : EXIT_USAGE;
        }
        *have = true;
        *ret = re;
        return EXIT_OK;
}

static ExitCode compile_expressions(const VerifyBlobOptions *o, Expressions *x, SigstorePolicy *p) {
        ExitCode code = compile_one("--certificate-identity-regexp", o->identity_regexp, &x->identity,
                                    &x->have_identity, &p->identity_re);

        if (code == EXIT_OK)
                code = compile_one("--certificate-oidc-issuer-regexp", o->issuer_regexp, &x->issuer, &x->have_issuer,
                                   &p->issuer_re);
        return code;
}

static ExitCode load_inputs(const VerifyBlobOptions *o, SigstoreTrustedRoot **ret_root, SigstoreBundle **ret_bundle,
                            CosignKeyring **ret_key, bool json) {
        const char *root_path = o->trusted_root ?: SIGSTORE_TRUSTED_ROOT_DEFAULT;
        char *key_paths[] = { (char *) o->key, NULL };
        Error e = {};
        int r;

        if (o->key) {
                r = cosign_keyring_load(key_paths, ret_key, &e);
                /* A file that holds no usable key verifies nothing: refused, as a bundle would be. */
                if (r == -EINVAL || r == -EPROTONOSUPPORT || r == -EFBIG) {
                        print_verdict(o, NULL, NULL, error_message(&e) ?: strerror(-r), json);
                        return EXIT_REFUSED;
                }
                if (r < 0) {
                        log_error("verify-blob: --key: %s", error_message(&e) ?: strerror(-r));
                        return EXIT_USAGE;
                }
        }
        if (!o->trusted_root && access(root_path, F_OK) < 0) {
                log_error("verify-blob: no trusted root: give --trusted-root FILE (the default, '%s', is not there)",
                          root_path);
                return EXIT_USAGE;
        }
        r = sigstore_root_load(root_path, ret_root, &e);
        if (r >= 0)
                r = sigstore_bundle_load(o->bundle, ret_bundle, &e);
        if (r < 0 && is_content_error(r)) {
                print_verdict(o, NULL, NULL, error_message(&e) ?: strerror(-r), json);
                return EXIT_REFUSED;
        }
        if (r < 0) {
                log_error("verify-blob: %s", error_message(&e) ?: strerror(-r));
                return EXIT_USAGE;
        }
        return EXIT_OK;
}

ExitCode engine_verify_blob(const VerifyBlobOptions *o, bool json) {
        _cleanup_(sigstore_root_freep) SigstoreTrustedRoot *root = NULL;
        _cleanup_(sigstore_bundle_freep) SigstoreBundle *bundle = NULL;
        _cleanup_(cosign_keyring_freep) CosignKeyring *key = NULL;
        _cleanup_(artifact_done) Artifact artifact = {};
        _cleanup_(expressions_done) Expressions x = {};
        _cleanup_free_ char *signer = NULL;
        SigstoreVerified v = {};
        SigstorePolicy policy = { .identity = o->identity ?: o->identity_regexp, .issuer = o->issuer ?: o->issuer_regexp };
        ExitCode code;
        Error e = {};
        int r;

        code = compile_expressions(o, &x, &policy);
        if (code == EXIT_OK)
                code = load_inputs(o, &root, &bundle, &key, json);
        if (code != EXIT_OK)
                return code;
        r = artifact_map(o->artifact, &artifact);
        if (r == -EINVAL) {
                log_error("verify-blob: the artifact '%s' is not a regular file", o->artifact);
                return EXIT_USAGE;
        }
        if (r < 0) {
                log_error_errno(r, "verify-blob: cannot read the artifact '%s': %m", o->artifact);
                return EXIT_USAGE;
        }
        policy.key = cosign_keyring_get0_pkey(key, 0);
        r = sigstore_verify(root, bundle, &policy, artifact.data, artifact.size, &v, &e);
        if (r < 0) {
                print_verdict(o, NULL, NULL, error_message(&e) ?: strerror(-r), json);
                return EXIT_REFUSED;
        }
        if (bundle->leaf && sigstore_certificate_signer(bundle->leaf, &policy, &signer) < 0) {
                sigstore_verified_done(&v);
                log_error("verify-blob: out of memory");
                return EXIT_TRANSIENT;
        }
        print_verdict(o, &v, o->key ?: signer, NULL, json);
        sigstore_verified_done(&v);
        return EXIT_OK;
}
