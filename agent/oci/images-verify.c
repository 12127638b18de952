/* SPDX-License-Identifier: MIT */
/* The verdict on each image of a set (images_verify()): the digest its reference resolves to,
 * its classic `.sig` signatures, its Sigstore bundle referrers and its signed SBOM attestation
 * (looked for always, required with images.require-sbom), each read from its registry or its OCI
 * layout (image-source.h) and checked against images.keys, images.keyless and images.threshold. A small pool of
 * workers verifies the images concurrently, each with its own registry client. */

#include <jansson.h>
#include <pthread.h>

#include "sign/cosign.h"
#include "sign/cosign-keyless.h"
#include "oci/image-ref.h"
#include "oci/images-internal.h"
#include "oci/images.h"
#include "basic/log.h"
#include "oci/oci-layout.h"
#include "oci/registry.h"

#define WORKERS_MAX 4
#define PREDICATE_COSIGN_SIGN "https://sigstore.dev/cosign/sign/v1"

/* ---- one image ---- */

typedef struct Verifier {
        const Config *config;
        const CosignKeyring *keys;     /* NULL: images.keys is empty */
        const CosignKeyless *keyless;  /* NULL: no images.keyless */
        RegistryClient *registry; /* the worker's, made for the first image from a registry */
        ImageSource *src;         /* the image being verified: its registry or its OCI layout */
} Verifier;

typedef struct Found {
        CosignTally tally;
        char *signers[COSIGN_IDENTITIES_MAX]; /* identity i: what its first certificate names */
        bool sbom;
        Error last_refusal; /* why the last signature that did not count did not count */
        int last_refusal_r;
} Found;

static void found_done(Found *f) {
        for (size_t i = 0; i < ELEMENTSOF(f->signers); i++)
                free(f->signers[i]);
}

/* A keyless signature that verified for identity index: counted, and its signer kept. */
static void add_identity(Found *f, size_t index, char **signer) {
        cosign_tally_add_identity(&f->tally, index);
        if (index < ELEMENTSOF(f->signers) && !f->signers[index])
                f->signers[index] = TAKE_PTR(*signer);
}

static void note_refusal(Found *f, int r, const Error *e) {
        f->last_refusal_r = r;
        f->last_refusal = *e;
}

static const char *json_str(json_t *o, const char *key) {
        json_t *v = json_object_get(o, key);
        return json_is_string(v) ? json_string_value(v) : NULL;
}

/* The keyless annotations of a layer. */
static CosignKeylessLayer keyless_layer(json_t *annotations) {
        return (CosignKeylessLayer) { .certificate = json_str(annotations, COSIGN_ANNOTATION_CERTIFICATE),
                                      .rekor_bundle = json_str(annotations, COSIGN_ANNOTATION_REKOR_BUNDLE),
                                      .rfc3161_timestamp = json_str(annotations, COSIGN_ANNOTATION_RFC3161_TIMESTAMP) };
}

/* The layers of a signature manifest: calls fn with each layer's media type, blob (at most
 * blob_max bytes: what the verifier takes for that kind, COSIGN_PAYLOAD_MAX for a
 * simple-signing payload, COSIGN_DOCUMENT_MAX for a bundle or an envelope, which may carry
 * an SBOM), and its annotations (an object, or NULL). */
typedef int (*LayerFn)(Verifier *v, const char *digest, const char *media_type, const Buffer *blob,
                       json_t *annotations, Found *f);

static int for_each_layer(Verifier *v, const char *digest, const char *manifest_ref, LayerFn fn, size_t blob_max,
                          Found *f, Error *e) {
        _cleanup_free_ char *mt = NULL, *mdigest = NULL;
        Buffer body = {};
        json_t *j, *layers, *layer;
        size_t i;
        int r;

        r = image_source_get_manifest(v->src, manifest_ref, &body, &mt, &mdigest, e);
        if (r < 0)
                return r;
        j = json_loadb((const char *) body.data, body.size, JSON_REJECT_DUPLICATES, NULL);
        buffer_done(&body);
        layers = j ? json_object_get(j, "layers") : NULL;
        if (!json_is_array(layers)) {
                json_decref(j);
                return error_set(e, -EBADMSG, "%s is not an image manifest with layers", manifest_ref);
        }
        json_array_foreach(layers, i, layer) {
                const char *lmt = json_str(layer, "mediaType"), *ldigest = json_str(layer, "digest");
                json_t *ann = json_object_get(layer, "annotations");
                Buffer blob = {};
                Error le = {};

                if (i >= 1000)
                        break; /* cosign writes at most 1000 */
                if (!lmt || !ldigest) {
                        note_refusal(f, -EBADMSG, &(Error) { .message = "a signature layer without mediaType or digest" });
                        continue;
                }
                r = image_source_get_blob(v->src, ldigest, blob_max, &blob, &le);
                if (r < 0) {
                        if (r == -EHOSTUNREACH || r == -ETIMEDOUT || r == -EACCES) {
                                json_decref(j);
                                if (e)
                                        *e = le;
                                return r;
                        }
                        note_refusal(f, r, &le);
                        continue;
                }
                r = fn(v, digest, lmt, &blob, json_is_object(ann) ? ann : NULL, f);
                buffer_done(&blob);
                if (r < 0) {
                        json_decref(j);
                        return r;
                }
        }
        json_decref(j);
        return 0;
}

/* A classic signature: by a trusted key, else (with a certificate annotation) by a trusted
 * identity. One signature counts for one signer. */
static int on_simplesigning(Verifier *v, const char *digest, const char *media_type,
                            const Buffer *blob, json_t *annotations, Found *f) {
        const char *sig = json_str(annotations, COSIGN_ANNOTATION_SIGNATURE);
        CosignKeylessLayer layer = keyless_layer(annotations);
        _cleanup_free_ char *signer = NULL;
        size_t index;
        Error e = {};
        int r = -ENOKEY;

        if (!sig) {
                note_refusal(f, -EBADMSG, &(Error) { .message = "a .sig layer without a signature annotation" });
                return 0;
        }
        if (v->keys) {
                r = cosign_verify_simplesigning(v->keys, digest, media_type, blob->data, blob->size, sig, &index, &e);
                if (r >= 0) {
                        cosign_tally_add(&f->tally, index);
                        return 0;
                }
        }
        if (v->keyless && layer.certificate) {
                e = (Error) {};
                r = cosign_keyless_verify_simplesigning(v->keyless, digest, media_type, blob->data, blob->size, sig,
                                                        &layer, &index, &signer, &e);
                if (r >= 0) {
                        add_identity(f, index, &signer);
                        return 0;
                }
        }
        if (r == -ENOKEY)
                (void) error_set(&e, r, layer.certificate ? "a keyless signature (with a certificate), and images.keyless is not set"
                                             : "a signature by a key, and images.keys is empty");
        note_refusal(f, r, &e);
        return 0;
}

/* A classic attestation (an SBOM counts for the image): by a trusted key, else (with a
 * certificate annotation) by a trusted identity. */
static int on_attestation(Verifier *v, const char *digest, const char *media_type,
                          const Buffer *blob, json_t *annotations, Found *f) {
        CosignKeylessLayer layer = keyless_layer(annotations);
        _cleanup_free_ char *predicate = NULL;
        size_t index;
        Error e = {};
        int r = -ENOKEY;

        if (!streq(media_type, "application/vnd.dsse.envelope.v1+json"))
                return 0;
        if (v->keys)
                r = cosign_verify_dsse_envelope(v->keys, digest, blob->data, blob->size, &index, &predicate, &e);
        if (r < 0 && v->keyless && layer.certificate) {
                e = (Error) {};
                r = cosign_keyless_verify_attestation(v->keyless, digest, blob->data, blob->size, &layer, &index,
                                                      NULL, &predicate, &e);
        }
        if (r == -ENOKEY && !error_message(&e))
                return 0; /* nothing here could verify it: not a refusal of anything configured */
        if (r < 0)
                note_refusal(f, r, &e);
        else if (cosign_predicate_is_sbom(predicate))
                f->sbom = true;
        return 0;
}

/* A Sigstore bundle: by a trusted key (or a certificate whose key is one), else by a trusted
 * identity. A signature counts for its signer, an SBOM for the image. */
static int on_bundle(Verifier *v, const char *digest, const char *media_type,
                     const Buffer *blob, json_t *annotations, Found *f) {
        _cleanup_free_ char *predicate = NULL, *signer = NULL;
        bool keyless = false;
        size_t index;
        Error e = {}, ke = {};
        int r = -ENOKEY, k;

        if (strncmp(media_type, "application/vnd.dev.sigstore.bundle", 35) != 0)
                return 0;
        if (v->keys)
                r = cosign_verify_bundle(v->keys, digest, blob->data, blob->size, &index, &predicate, &e);
        if (r < 0 && v->keyless) {
                k = cosign_keyless_verify_bundle(v->keyless, digest, blob->data, blob->size, &index, &signer, &predicate,
                                                 &ke);
                if (k != -ENOKEY || !v->keys) { /* else a key-based bundle: the keys' refusal says why */
                        r = k;
                        e = ke;
                        keyless = true;
                }
        }
        if (r < 0)
                note_refusal(f, r, error_message(&e) ? &e : &(Error) { .message = "a Sigstore bundle, and neither "
                             "images.keys nor images.keyless can verify it" });
        else if (streq_ptr(predicate, PREDICATE_COSIGN_SIGN) && keyless)
                add_identity(f, index, &signer);
        else if (streq_ptr(predicate, PREDICATE_COSIGN_SIGN))
                cosign_tally_add(&f->tally, index);
        else if (cosign_predicate_is_sbom(predicate))
                f->sbom = true;
        return 0;
}

/* Sigstore bundles are attached as referrers: the Referrers API, else the fallback index at
 * tag sha256-<hex> (the source finds it). Every manifest listed is looked at (cosign's
 * fallback index does not say artifactType reliably). */
static int verify_referrers(Verifier *v, const char *digest, Found *f, Error *e) {
        Buffer body = {};
        json_t *j, *manifests, *m;
        size_t i;
        int r;

        r = image_source_get_referrers(v->src, digest, &body, e);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;

        j = json_loadb((const char *) body.data, body.size, JSON_REJECT_DUPLICATES, NULL);
        buffer_done(&body);
        manifests = j ? json_object_get(j, "manifests") : NULL;
        if (!json_is_array(manifests)) {
                json_decref(j);
                return 0; /* not an index: no referrers */
        }
        json_array_foreach(manifests, i, m) {
                const char *d = json_str(m, "digest");

                if (i >= REFERRERS_MAX)
                        break;
                if (!d || !image_digest_is_valid(d))
                        continue;
                r = for_each_layer(v, digest, d, on_bundle, COSIGN_DOCUMENT_MAX, f, e);
                if (r < 0 && r != -ENOENT && r != -EBADMSG) {
                        json_decref(j);
                        return r;
                }
        }
        json_decref(j);
        return 0;
}

/* The image's source: its OCI layout, else its registry (through the worker's client). */
static int open_source(Verifier *v, const ImageCheck *ic, const ImageRef *ref, Error *e) {
        int r;

        if (ic->layout) {
                r = oci_layout_open(ic->layout, ref, &v->src, e);
                /* A layout that is not there or not one is a bundle to refuse. */
                return r == -ENOENT || r == -EBADMSG || r == -EFBIG || r == -ENOTDIR ? -EPERM : r;
        }
        if (!v->registry) {
                RegistryOptions o = images_registry_options(v->config);

                r = registry_client_new(&o, &v->registry, e);
                if (r < 0)
                        return r;
        }
        return registry_source_new(v->registry, ref, &v->src);
}

/* A deployment's image referenced by tag alone: a container start that has to pull it gets
 * where the tag points now. What runs is what was verified (the recorded digest, checked
 * below), so a moved tag (a pipeline promoting :latest does that) refuses nothing, but it is
 * said: pinned by digest, the reference would not depend on it. */
static void warn_if_tag_moved(Verifier *v, ImageCheck *ic, const ImageRef *ref) {
        _cleanup_free_ char *now = NULL;
        Buffer body = {};
        Error e = {};
        char name[COSIGN_PRINTABLE_SIZE];

        if (open_source(v, ic, ref, &e) < 0)
                return;
        if (image_source_get_manifest(v->src, NULL, &body, NULL, &now, &e) >= 0 && !streq(now, ic->digest))
                log_warning("Image '%s': its tag now points to %s, not to %s as deployed; a container that pulls it "
                            "would run an image that was not verified (pin it by digest).",
                            cosign_printable(ic->name, name), now, ic->digest);
        buffer_done(&body);
        image_source_free(v->src);
        v->src = NULL;
}

/* What a lookup made only for the record (an SBOM nobody requires) refused is not the image's
 * reason: the refusal said is the one noted before it. */
static void forget_refusals(Found *f, const Found *before) {
        f->last_refusal = before->last_refusal;
        f->last_refusal_r = before->last_refusal_r;
}

/* The signers into ic->signers: each key's fingerprint, each identity as its certificate names
 * it, "SAN (ISSUER)" (for an exact identity, the configured one). */
static int record_signers(Verifier *v, const Found *f, ImageCheck *ic) {
        const CosignTally *t = &f->tally;

        for (size_t i = 0; i < cosign_keyring_size(v->keys); i++)
                if (cosign_tally_has(t, i) && strv_extend(&ic->signers, cosign_keyring_fingerprint(v->keys, i)) < 0)
                        return -ENOMEM;
        for (size_t i = 0; v->keyless && i < v->keyless->n_identities; i++) {
                _cleanup_free_ char *s = NULL;

                if (!cosign_tally_has_identity(t, i))
                        continue;
                if (f->signers[i] ? !(s = strdup(f->signers[i]))
                                  : asprintf(&s, "%s (%s)", v->keyless->identities[i].identity,
                                             v->keyless->identities[i].issuer) < 0)
                        return -ENOMEM;
                if (strv_extend(&ic->signers, s) < 0)
                        return -ENOMEM;
        }
        return 0;
}

/* Enough signers, and the SBOM when one is required: 0, else -EPERM saying what is missing. */
static int judge(const Verifier *v, const Found *f, Error *e) {
        const Config *c = v->config;

        if (cosign_tally_count(&f->tally) < c->images.threshold) {
                if (cosign_tally_count(&f->tally) == 0 && f->last_refusal_r == 0)
                        error_set(e, 0, "no Cosign signature found");
                else if (cosign_tally_count(&f->tally) == 0)
                        error_set(e, 0, "no valid signature by a trusted %s (%s)", v->keyless ? "key or identity" : "key",
                                  f->last_refusal.message);
                else
                        error_set(e, 0, "signed by %zu trusted %s, %u required", cosign_tally_count(&f->tally),
                                  v->keyless ? "signer(s) (keys and identities)" : "key(s)", c->images.threshold);
                return -EPERM;
        }
        if (c->images.require_sbom && !f->sbom) {
                error_set(e, 0, "no SBOM attestation (SPDX or CycloneDX) signed by a trusted %s",
                          v->keyless ? "key or identity" : "key");
                return -EPERM;
        }
        return 0;
}

static int verify_one(Verifier *v, ImageCheck *ic) {
        const Config *c = v->config;
        _cleanup_free_ char *sig_tag = NULL, *att_tag = NULL, *digest = NULL;
        ImageRef ref = {};
        Buffer body = {};
        _cleanup_(found_done) Found f = {};
        Error *e = &ic->error;
        int r;

        r = image_ref_parse(ic->reference, &ref, e);
        if (r < 0)
                return r == -ENOMEM ? r : -EPERM;
        if (ic->pinned && !ref.digest && !ic->layout)
                warn_if_tag_moved(v, ic, &ref);
        if (ic->pinned) {
                /* The recorded digest: what was verified and deployed. */
                free(ref.digest);
                ref.digest = strdup(ic->digest);
                if (!ref.digest) {
                        image_ref_done(&ref);
                        return -ENOMEM;
                }
        } else if (c->images.require_digest && !ref.digest) {
                image_ref_done(&ref);
                error_set(e, 0, "not pinned by digest, and images.require-digest is set");
                return -EPERM;
        }
        r = open_source(v, ic, &ref, e);
        image_ref_done(&ref);
        if (r < 0)
                return r;

        /* The digest the reference resolves to (the index for a multi-arch image). */
        r = image_source_get_manifest(v->src, NULL, &body, NULL, &digest, e);
        buffer_done(&body);
        if (r < 0)
                return r == -ENOENT || r == -EBADMSG || r == -EFBIG ? -EPERM : r;
        if (ic->digest && !streq(ic->digest, digest)) {
                error_set(e, 0, "resolves to %s, not to %s as recorded", digest, ic->digest);
                return -EPERM;
        }
        free(ic->digest);
        ic->digest = TAKE_PTR(digest);

        cosign_tally_init(&f.tally, v->keys, v->keyless ? v->keyless->n_identities : 0);
        if (asprintf(&sig_tag, "sha256-%s.sig", ic->digest + 7) < 0 || asprintf(&att_tag, "sha256-%s.att", ic->digest + 7) < 0)
                return -ENOMEM;

        r = for_each_layer(v, ic->digest, sig_tag, on_simplesigning, COSIGN_PAYLOAD_MAX, &f, e);
        if (r == -EBADMSG) /* a signature manifest that is not one: said if nothing else counts */
                note_refusal(&f, r, e);
        /* Bundles when the classic signatures are not enough already, and the SBOM (bundles, then
         * the .att tag) always: the record says whether a signed one exists (status sbom), even
         * where none is required. Looked for only for the record, a registry that cannot answer
         * changes nothing. */
        if ((r >= 0 || r == -ENOENT || r == -EBADMSG) &&
            (cosign_tally_count(&f.tally) < c->images.threshold || !f.sbom)) {
                bool needed = cosign_tally_count(&f.tally) < c->images.threshold || c->images.require_sbom;
                Found before = f;
                int k = verify_referrers(v, ic->digest, &f, needed ? e : &(Error) {});

                if (needed)
                        r = k;
                else
                        forget_refusals(&f, &before);
        }
        if ((r >= 0 || r == -ENOENT) && !f.sbom) {
                Found before = f;
                int k = for_each_layer(v, ic->digest, att_tag, on_attestation, COSIGN_DOCUMENT_MAX, &f,
                                       c->images.require_sbom ? e : &(Error) {});

                if (c->images.require_sbom)
                        r = k == -ENOENT || k == -EBADMSG ? 0 : k;
                else
                        forget_refusals(&f, &before);
        }
        if (r < 0 && r != -ENOENT && r != -EBADMSG)
                return r; /* the registry could not be asked */

        r = record_signers(v, &f, ic);
        if (r < 0)
                return r;
        ic->sbom = f.sbom;

        return judge(v, &f, e);
}

/* ---- the pool ---- */

typedef struct Pool {
        const Config *config;
        const CosignKeyring *keys;
        const CosignKeyless *keyless;
        ImageSet *set;
        pthread_mutex_t lock;
        size_t next;
} Pool;

static void *worker(void *userdata) {
        Pool *p = userdata;
        Verifier v = { .config = p->config, .keys = p->keys, .keyless = p->keyless };

        for (;;) {
                size_t i;

                pthread_mutex_lock(&p->lock);
                i = p->next++;
                pthread_mutex_unlock(&p->lock);
                if (i >= p->set->n)
                        break;
                p->set->images[i].result = verify_one(&v, &p->set->images[i]);
                image_source_free(v.src);
                v.src = NULL;
        }
        registry_client_free(v.registry);
        return NULL;
}

int images_verify(const Config *c, ImageSet *set, Error *e) {
        ImagesTrust trust = {};
        pthread_t threads[WORKERS_MAX];
        size_t n_threads = MIN(set->n, (size_t) WORKERS_MAX), started = 0;
        Pool pool = { .config = c, .set = set, .lock = PTHREAD_MUTEX_INITIALIZER };
        int r, worst = 0;
        ImageCheck *worst_ic = NULL;

        if (set->n == 0)
                return 0;
        if (!images_verification_configured(c)) {
                log_warning("images.keys is empty: the %zu image(s) of this revision are not verified.", set->n);
                return 0;
        }
        r = images_trust_load(c, &trust, e);
        if (r < 0) {
                images_trust_done(&trust);
                return r;
        }
        pool.keys = trust.keys;
        pool.keyless = trust.root ? &trust.keyless : NULL;

        for (size_t i = 0; i < n_threads; i++) {
                if (pthread_create(&threads[i], NULL, worker, &pool) != 0)
                        break;
                started++;
        }
        if (started == 0)
                worker(&pool);
        for (size_t i = 0; i < started; i++)
                pthread_join(threads[i], NULL);
        images_trust_done(&trust);

        /* A refusal outweighs a registry that could not be asked. */
        for (size_t i = 0; i < set->n; i++) {
                ImageCheck *ic = &set->images[i];

                if (ic->result == 0)
                        continue;
                if (!worst_ic || (ic->result == -EPERM && worst != -EPERM)) {
                        worst = ic->result;
                        worst_ic = ic;
                }
        }
        if (!worst_ic)
                return 0;
        return error_set(e, worst, "image '%s' (%s%s%s): %s", worst_ic->name, worst_ic->reference,
                         worst_ic->digest ? ", " : "", strempty(worst_ic->digest), worst_ic->error.message);
}
