/* SPDX-License-Identifier: MIT */
#include <jansson.h>
#include <pthread.h>

#include "cosign.h"
#include "image-ref.h"
#include "images.h"
#include "log.h"
#include "process.h"
#include "registry.h"

#define IMAGES_MAX 1024
#define NIX_EVAL_OUTPUT_MAX (1024 * 1024)
#define WORKERS_MAX 4
#define SIGNATURE_MANIFESTS_MAX 64
#define PREDICATE_COSIGN_SIGN "https://sigstore.dev/cosign/sign/v1"

void image_set_done(ImageSet *s) {
        if (!s)
                return;
        for (size_t i = 0; i < s->n; i++) {
                free(s->images[i].name);
                free(s->images[i].reference);
                free(s->images[i].digest);
                free(s->images[i].layout);
                strv_free(s->images[i].signers);
        }
        free(s->images);
        *s = (ImageSet) {};
}

int images_of_revision(const Config *c, const char *flake, ImageSet *ret, Error *e) {
        _cleanup_free_ char *installable = NULL, *out = NULL;
        ImageSet set = {};
        json_error_t jerr;
        const char *name;
        json_t *j, *v;
        int r;

        if (asprintf(&installable, "%s#nixosConfigurations.\"%s\".config.virtualisation.oci-containers.containers",
                     flake, c->host) < 0)
                return -ENOMEM;
        char *argv[] = { c->system.nix_command, (char *) "eval", (char *) "--json", installable, (char *) "--apply",
                         (char *) "cs: builtins.mapAttrs (name: c: c.image) cs", NULL };
        ProcessOptions opts = { .name = "nix eval", .capture = &out, .capture_max = NIX_EVAL_OUTPUT_MAX };

        r = process_run(argv, &opts, NULL, e);
        if (r < 0)
                return error_prefix(e, r, "cannot list the images of the revision");

        j = json_loads(out, JSON_REJECT_DUPLICATES, &jerr);
        if (!json_is_object(j)) {
                json_decref(j);
                return error_set(e, -EBADMSG, "nix eval did not print an object of containers: %s", jerr.text);
        }
        if (json_object_size(j) > IMAGES_MAX) {
                json_decref(j);
                return error_set(e, -EFBIG, "more than %d containers", IMAGES_MAX);
        }
        set.images = calloc(MAX(json_object_size(j), 1u), sizeof(ImageCheck));
        if (!set.images) {
                json_decref(j);
                return -ENOMEM;
        }
        json_object_foreach(j, name, v) {
                ImageCheck *ic = &set.images[set.n];

                if (!json_is_string(v)) {
                        json_decref(j);
                        image_set_done(&set);
                        return error_set(e, -EBADMSG, "container '%s': image is not a string", name);
                }
                ic->name = strdup(name);
                ic->reference = strdup(json_string_value(v));
                set.n++;
                if (!ic->name || !ic->reference) {
                        json_decref(j);
                        image_set_done(&set);
                        return -ENOMEM;
                }
        }
        json_decref(j);
        *ret = set;
        return 0;
}

/* ---- one image ---- */

typedef struct Verifier {
        const Config *config;
        const CosignKeyring *keys;
        RegistryClient *registry;
} Verifier;

typedef struct Found {
        CosignTally tally;
        bool sbom;
        Error last_refusal; /* why the last signature that did not count did not count */
        int last_refusal_r;
} Found;

static void note_refusal(Found *f, int r, const Error *e) {
        f->last_refusal_r = r;
        f->last_refusal = *e;
}

static const char *json_str(json_t *o, const char *key) {
        json_t *v = json_object_get(o, key);
        return json_is_string(v) ? json_string_value(v) : NULL;
}

/* The layers of a signature manifest: calls fn with each layer's media type, blob, and the
 * signature annotation (classic signatures only). */
typedef int (*LayerFn)(Verifier *v, const ImageRef *ref, const char *digest, const char *media_type,
                       const Buffer *blob, const char *annotation, Found *f);

static int for_each_layer(Verifier *v, const ImageRef *ref, const char *digest, const char *manifest_ref,
                          LayerFn fn, Found *f, Error *e) {
        _cleanup_free_ char *mt = NULL, *mdigest = NULL;
        Buffer body = {};
        json_t *j, *layers, *layer;
        size_t i;
        int r;

        r = registry_get_manifest(v->registry, ref->registry, ref->repository, manifest_ref, &body, &mt, &mdigest, e);
        if (r < 0)
                return r;
        j = json_loadb((const char *) body.data, body.size, JSON_REJECT_DUPLICATES, NULL);
        buffer_done(&body);
        layers = j ? json_object_get(j, "layers") : NULL;
        if (!json_is_array(layers)) {
                json_decref(j);
                return error_set(e, -EBADMSG, "%s/%s:%s is not an image manifest with layers", ref->registry,
                                 ref->repository, manifest_ref);
        }
        json_array_foreach(layers, i, layer) {
                const char *lmt = json_str(layer, "mediaType"), *ldigest = json_str(layer, "digest");
                json_t *ann = json_object_get(layer, "annotations");
                const char *sig = json_is_object(ann) ? json_str(ann, "dev.cosignproject.cosign/signature") : NULL;
                Buffer blob = {};
                Error le = {};

                if (i >= 1000)
                        break; /* cosign writes at most 1000 */
                if (!lmt || !ldigest) {
                        note_refusal(f, -EBADMSG, &(Error) { .message = "a signature layer without mediaType or digest" });
                        continue;
                }
                r = registry_get_blob(v->registry, ref->registry, ref->repository, ldigest, SIGNATURE_BLOB_MAX, &blob, &le);
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
                r = fn(v, ref, digest, lmt, &blob, sig, f);
                buffer_done(&blob);
                if (r < 0) {
                        json_decref(j);
                        return r;
                }
        }
        json_decref(j);
        return 0;
}

static int on_simplesigning(Verifier *v, const ImageRef *ref, const char *digest, const char *media_type,
                            const Buffer *blob, const char *annotation, Found *f) {
        size_t key;
        Error e = {};
        int r;

        if (!annotation) {
                note_refusal(f, -EBADMSG, &(Error) { .message = "a .sig layer without a signature annotation" });
                return 0;
        }
        r = cosign_verify_simplesigning(v->keys, digest, media_type, blob->data, blob->size, annotation, &key, &e);
        if (r < 0)
                note_refusal(f, r, &e);
        else
                cosign_tally_add(&f->tally, key);
        return 0;
}

static int on_attestation(Verifier *v, const ImageRef *ref, const char *digest, const char *media_type,
                          const Buffer *blob, const char *annotation, Found *f) {
        _cleanup_free_ char *predicate = NULL;
        size_t key;
        Error e = {};
        int r;

        if (!streq(media_type, "application/vnd.dsse.envelope.v1+json"))
                return 0;
        r = cosign_verify_dsse_envelope(v->keys, digest, blob->data, blob->size, &key, &predicate, &e);
        if (r < 0)
                note_refusal(f, r, &e);
        else if (cosign_predicate_is_sbom(predicate))
                f->sbom = true;
        return 0;
}

static int on_bundle(Verifier *v, const ImageRef *ref, const char *digest, const char *media_type,
                     const Buffer *blob, const char *annotation, Found *f) {
        _cleanup_free_ char *predicate = NULL;
        size_t key;
        Error e = {};
        int r;

        if (strncmp(media_type, "application/vnd.dev.sigstore.bundle", 35) != 0)
                return 0;
        r = cosign_verify_bundle(v->keys, digest, blob->data, blob->size, &key, &predicate, &e);
        if (r < 0)
                note_refusal(f, r, &e);
        else if (streq_ptr(predicate, PREDICATE_COSIGN_SIGN))
                cosign_tally_add(&f->tally, key);
        else if (cosign_predicate_is_sbom(predicate))
                f->sbom = true;
        return 0;
}

/* Sigstore bundles are attached as referrers: the Referrers API, else the fallback index at
 * tag sha256-<hex>. Every manifest listed is looked at (cosign's fallback index does not
 * say artifactType reliably). */
static int verify_referrers(Verifier *v, const ImageRef *ref, const char *digest, Found *f, Error *e) {
        char fallback[IMAGE_DIGEST_LEN + 1];
        Buffer body = {};
        json_t *j, *manifests, *m;
        size_t i;
        int r;

        r = registry_get_referrers(v->registry, ref->registry, ref->repository, digest, &body, e);
        if (r == -ENOENT) {
                (void) snprintf(fallback, sizeof(fallback), "sha256-%s", digest + 7);
                r = registry_get_manifest(v->registry, ref->registry, ref->repository, fallback, &body, NULL, NULL, e);
        }
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

                if (i >= SIGNATURE_MANIFESTS_MAX)
                        break;
                if (!d || !image_digest_is_valid(d))
                        continue;
                r = for_each_layer(v, ref, digest, d, on_bundle, f, e);
                if (r < 0 && r != -ENOENT && r != -EBADMSG) {
                        json_decref(j);
                        return r;
                }
        }
        json_decref(j);
        return 0;
}

static int verify_one(Verifier *v, ImageCheck *ic) {
        const Config *c = v->config;
        _cleanup_free_ char *sig_tag = NULL, *att_tag = NULL;
        ImageRef ref = {};
        Buffer body = {};
        Found f = {};
        Error *e = &ic->error;
        int r;

        r = image_ref_parse(ic->reference, &ref, e);
        if (r < 0)
                return r == -ENOMEM ? r : -EPERM;
        if (c->images.require_digest && !ref.digest) {
                image_ref_done(&ref);
                error_set(e, 0, "not pinned by digest, and images.require-digest is set");
                return -EPERM;
        }

        /* The digest the reference resolves to (the index for a multi-arch image). */
        r = registry_get_manifest(v->registry, ref.registry, ref.repository, ref.digest ?: ref.tag, &body, NULL,
                                  &ic->digest, e);
        buffer_done(&body);
        if (r < 0) {
                image_ref_done(&ref);
                return r == -ENOENT || r == -EBADMSG || r == -EFBIG ? -EPERM : r;
        }

        cosign_tally_init(&f.tally, v->keys);
        if (asprintf(&sig_tag, "sha256-%s.sig", ic->digest + 7) < 0 || asprintf(&att_tag, "sha256-%s.att", ic->digest + 7) < 0) {
                image_ref_done(&ref);
                return -ENOMEM;
        }

        r = for_each_layer(v, &ref, ic->digest, sig_tag, on_simplesigning, &f, e);
        /* Bundles only when the classic signatures are not enough already. */
        if ((r >= 0 || r == -ENOENT || r == -EBADMSG) &&
            (cosign_tally_count(&f.tally) < c->images.threshold || (c->images.require_sbom && !f.sbom)))
                r = verify_referrers(v, &ref, ic->digest, &f, e);
        if ((r >= 0 || r == -ENOENT) && c->images.require_sbom && !f.sbom) {
                r = for_each_layer(v, &ref, ic->digest, att_tag, on_attestation, &f, e);
                if (r == -ENOENT || r == -EBADMSG)
                        r = 0;
        }
        image_ref_done(&ref);
        if (r < 0 && r != -ENOENT && r != -EBADMSG)
                return r; /* the registry could not be asked */

        for (size_t i = 0; i < cosign_keyring_size(v->keys); i++)
                if (cosign_tally_has(&f.tally, i) && strv_extend(&ic->signers, cosign_keyring_fingerprint(v->keys, i)) < 0)
                        return -ENOMEM;
        ic->sbom = f.sbom;

        if (cosign_tally_count(&f.tally) < c->images.threshold) {
                if (cosign_tally_count(&f.tally) == 0 && f.last_refusal_r == 0)
                        error_set(e, 0, "no Cosign signature found");
                else if (cosign_tally_count(&f.tally) == 0)
                        error_set(e, 0, "no valid signature by a trusted key (%s)", f.last_refusal.message);
                else
                        error_set(e, 0, "signed by %zu trusted key(s), %u required", cosign_tally_count(&f.tally),
                                  c->images.threshold);
                return -EPERM;
        }
        if (c->images.require_sbom && !f.sbom) {
                error_set(e, 0, "no SBOM attestation (SPDX or CycloneDX) signed by a trusted key");
                return -EPERM;
        }
        return 0;
}

/* ---- the pool ---- */

typedef struct Pool {
        const Config *config;
        const CosignKeyring *keys;
        ImageSet *set;
        pthread_mutex_t lock;
        size_t next;
} Pool;

static void *worker(void *userdata) {
        Pool *p = userdata;
        RegistryClient *registry = NULL;
        RegistryOptions o = {
                .insecure_registries = p->config->images.insecure_registries,
                .auth_file = p->config->images.registry_auth_file,
                .ca_file = p->config->images.ca_file,
                .connect_timeout = p->config->images.connect_timeout,
                .stall_timeout = p->config->images.stall_timeout,
        };
        Error e = {};
        int r = registry_client_new(&o, &registry, &e);

        for (;;) {
                ImageCheck *ic;
                size_t i;

                pthread_mutex_lock(&p->lock);
                i = p->next++;
                pthread_mutex_unlock(&p->lock);
                if (i >= p->set->n)
                        break;
                ic = &p->set->images[i];
                if (r < 0) {
                        ic->result = r;
                        ic->error = e;
                        continue;
                }
                Verifier v = { .config = p->config, .keys = p->keys, .registry = registry };
                ic->result = verify_one(&v, ic);
        }
        registry_client_free(registry);
        return NULL;
}

int images_verify(const Config *c, ImageSet *set, Error *e) {
        CosignKeyring *keys = NULL;
        pthread_t threads[WORKERS_MAX];
        size_t n_threads = MIN(set->n, (size_t) WORKERS_MAX), started = 0;
        Pool pool = { .config = c, .set = set, .lock = PTHREAD_MUTEX_INITIALIZER };
        int r, worst = 0;
        ImageCheck *worst_ic = NULL;

        if (set->n == 0)
                return 0;
        if (strv_length(c->images.keys) == 0) {
                log_warning("images.keys is empty: the %zu image(s) of this revision are not verified.", set->n);
                return 0;
        }
        r = cosign_keyring_load(c->images.keys, &keys, e);
        if (r < 0)
                return r;
        pool.keys = keys;

        for (size_t i = 0; i < n_threads; i++) {
                if (pthread_create(&threads[i], NULL, worker, &pool) != 0)
                        break;
                started++;
        }
        if (started == 0)
                worker(&pool);
        for (size_t i = 0; i < started; i++)
                pthread_join(threads[i], NULL);
        cosign_keyring_free(keys);

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

json_t *image_set_to_json(const ImageSet *s) {
        json_t *a = json_array();

        for (size_t i = 0; a && i < s->n; i++) {
                const ImageCheck *ic = &s->images[i];
                json_t *signers = json_array();

                for (char **k = ic->signers; signers && k && *k; k++)
                        json_array_append_new(signers, json_string(*k));
                if (json_array_append_new(a, json_pack("{s:s, s:s, s:o, s:o, s:b}", "name", ic->name, "reference",
                                                       ic->reference, "digest",
                                                       ic->digest ? json_string(ic->digest) : json_null(), "signers",
                                                       signers ?: json_null(), "sbom", ic->sbom)) < 0) {
                        json_decref(a);
                        return NULL;
                }
        }
        return a;
}
