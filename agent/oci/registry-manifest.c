/* SPDX-License-Identifier: MIT */
/* Manifests and indexes from a registry: a manifest by tag or digest, with its digest checked
 * against what was asked for and what the registry says, and the index of an image's
 * referrers (the Referrers API; a registry without it is remembered and not asked again). */
#include <jansson.h>

#include "oci/image-ref.h"
#include "oci/registry-internal.h"
#include "oci/registry.h"

static const char MANIFEST_ACCEPT[] =
        "Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, "
        "application/vnd.docker.distribution.manifest.v2+json, "
        "application/vnd.docker.distribution.manifest.list.v2+json";

int manifest_media_type(const Buffer *body, char **ret) {
        json_t *j, *mt;

        j = json_loadb((const char *) body->data, body->size, JSON_REJECT_DUPLICATES, NULL);
        if (!json_is_object(j)) {
                json_decref(j);
                return -EBADMSG;
        }
        mt = json_object_get(j, "mediaType");
        *ret = strdup(json_is_string(mt) ? json_string_value(mt) : "");
        json_decref(j);
        return *ret ? 0 : -ENOMEM;
}

int registry_get_manifest(RegistryClient *c, const char *registry, const char *repository, const char *reference,
                          Buffer *ret_body, char **ret_media_type, char **ret_digest, Error *e) {
        _cleanup_free_ char *path = NULL, *what = NULL, *mt = NULL;
        _cleanup_(blob_sink_done) BlobSink body = { .fd = -1 };
        char digest[IMAGE_DIGEST_LEN + 1];
        Response r = {};
        int k;

        if (asprintf(&path, "manifests/%s", reference) < 0 ||
            asprintf(&what, "%s/%s%s%s", registry, repository, strchr(reference, ':') ? "@" : ":", reference) < 0 ||
            blob_sink_init(&body, -1, MANIFEST_MAX) < 0)
                return -ENOMEM;

        k = registry_request(c, registry, repository, path, MANIFEST_ACCEPT, &body, &r, e);
        if (k < 0)
                return k;
        k = registry_expect_ok(&r, what, e);
        if (k < 0)
                return k;
        k = blob_sink_finish(&body, digest);
        if (k < 0) {
                registry_response_done(&r);
                return k;
        }
        if (image_digest_is_valid(reference) && !streq(digest, reference)) {
                registry_response_done(&r);
                return error_set(e, -EBADMSG, "%s: the manifest's content hashes to %s", what, digest);
        }
        if (r.docker_digest && !streq(r.docker_digest, digest)) {
                k = error_set(e, -EBADMSG, "%s: the registry says the digest is %s, the content hashes to %s", what,
                              r.docker_digest, digest);
                registry_response_done(&r);
                return k;
        }
        registry_response_done(&r);

        /* The media type is the manifest's own, not the Content-Type header's. */
        k = manifest_media_type(&body.buf, &mt);
        if (k == -EBADMSG)
                return error_set(e, k, "%s: the manifest is not a JSON object", what);
        if (k < 0)
                return k;
        if (ret_digest && !(*ret_digest = strdup(digest)))
                return -ENOMEM;
        if (ret_media_type)
                *ret_media_type = TAKE_PTR(mt);
        *ret_body = body.buf;
        body.buf = (Buffer) {};
        return 0;
}

int registry_get_referrers(RegistryClient *c, const char *registry, const char *repository, const char *digest,
                           Buffer *ret, Error *e) {
        _cleanup_free_ char *path = NULL, *what = NULL;
        _cleanup_(blob_sink_done) BlobSink body = { .fd = -1 };
        Response r = {};
        int k;

        if (!image_digest_is_valid(digest))
                return error_set(e, -EBADMSG, "'%s' is not a sha256 digest", digest);
        if (streq_ptr(c->no_referrers_api, registry))
                return -ENOENT;
        if (asprintf(&path, "referrers/%s", digest) < 0 ||
            asprintf(&what, "referrers of %s/%s@%s", registry, repository, digest) < 0 ||
            blob_sink_init(&body, -1, MANIFEST_MAX) < 0)
                return -ENOMEM;
        k = registry_request(c, registry, repository, path, "Accept: application/vnd.oci.image.index.v1+json",
                             &body, &r, e);
        if (k < 0)
                return k;
        /* Registries without the API answer 404 (or 400/405 on some): the fallback tag then. */
        if (r.status == 404 || r.status == 400 || r.status == 405) {
                registry_response_done(&r);
                free(c->no_referrers_api);
                c->no_referrers_api = strdup(registry);
                return -ENOENT;
        }
        k = registry_expect_ok(&r, what, e);
        if (k < 0)
                return k;
        registry_response_done(&r);
        *ret = body.buf;
        body.buf = (Buffer) {};
        return 0;
}
