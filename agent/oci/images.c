/* SPDX-License-Identifier: MIT */
/* The sets of images (ImageSet): a configuration's containers, a deployment's record, the
 * containers of a revision (one nix eval), and a set as JSON for the history; for offline
 * bundles, a set's export into OCI image layouts and its import from them. The verdict on
 * each image is images-verify.c's. */
#include <jansson.h>

#include "oci/image-ref.h"
#include "oci/images-internal.h"
#include "oci/images.h"
#include "oci/oci-layout.h"
#include "system/process.h"
#include "oci/registry.h"

#define IMAGES_MAX 1024
#define NIX_EVAL_OUTPUT_MAX (1024 * 1024)

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

int image_set_from_containers(const json_t *containers, ImageSet *ret, Error *e) {
        ImageSet set = {};
        const char *name;
        json_t *v;

        if (!json_is_object(containers))
                return error_set(e, -EBADMSG, "the containers are not an object");
        if (json_object_size(containers) > IMAGES_MAX)
                return error_set(e, -EFBIG, "more than %d containers", IMAGES_MAX);
        set.images = calloc(MAX(json_object_size(containers), 1u), sizeof(ImageCheck));
        if (!set.images)
                return -ENOMEM;
        json_object_foreach((json_t *) containers, name, v) {
                ImageCheck *ic = &set.images[set.n];

                if (!json_is_string(v)) {
                        image_set_done(&set);
                        return error_set(e, -EBADMSG, "container '%s': image is not a string", name);
                }
                ic->name = strdup(name);
                ic->reference = strdup(json_string_value(v));
                set.n++;
                if (!ic->name || !ic->reference) {
                        image_set_done(&set);
                        return -ENOMEM;
                }
        }
        *ret = set;
        return 0;
}

int image_set_from_record(const json_t *images, ImageSet *ret, Error *e) {
        ImageSet set = {};
        size_t i;
        json_t *v;

        if (!json_is_array(images))
                return error_set(e, -EBADMSG, "the record holds no list of images");
        set.images = calloc(MAX(json_array_size(images), 1u), sizeof(ImageCheck));
        if (!set.images)
                return -ENOMEM;
        json_array_foreach((json_t *) images, i, v) {
                ImageCheck *ic = &set.images[set.n];
                const char *name = json_string_value(json_object_get(v, "name")),
                           *reference = json_string_value(json_object_get(v, "reference")),
                           *digest = json_string_value(json_object_get(v, "digest"));

                if (!name || !reference || !digest || !image_digest_is_valid(digest)) {
                        image_set_done(&set);
                        return error_set(e, -EBADMSG, "image %zu of the record has no name, reference or digest", i);
                }
                ic->name = strdup(name);
                ic->reference = strdup(reference);
                ic->digest = strdup(digest);
                ic->pinned = true;
                set.n++;
                if (!ic->name || !ic->reference || !ic->digest) {
                        image_set_done(&set);
                        return -ENOMEM;
                }
        }
        *ret = set;
        return 0;
}

int images_of_revision(const Config *c, const char *flake, ImageSet *ret, Error *e) {
        _cleanup_free_ char *installable = NULL, *out = NULL;
        json_error_t jerr;
        json_t *j;
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
        r = image_set_from_containers(j, ret, e);
        json_decref(j);
        return r;
}

/* The registry client's options: images.* of the configuration. */
RegistryOptions images_registry_options(const Config *c) {
        return (RegistryOptions) {
                .insecure_registries = c->images.insecure_registries,
                .token_hosts = c->images.token_hosts,
                .auth_file = c->images.registry_auth_file,
                .ca_file = c->images.ca_file,
                .connect_timeout = c->images.connect_timeout,
                .stall_timeout = c->images.stall_timeout,
                .request_timeout = c->images.request_timeout,
        };
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

/* ---- bundles: export and import ---- */

/* The earlier image of set with the same reference, or NULL. */
static const ImageCheck *same_reference(const ImageSet *set, size_t i) {
        for (size_t k = 0; k < i; k++)
                if (streq(set->images[k].reference, set->images[i].reference))
                        return &set->images[k];
        return NULL;
}

int images_export(const Config *c, ImageSet *set, const char *dir, Error *e) {
        _cleanup_(registry_client_freep) RegistryClient *registry = NULL;
        RegistryOptions o = images_registry_options(c);
        size_t n_layouts = 0;
        int r;

        r = registry_client_new(&o, &registry, e);
        if (r < 0)
                return r;
        for (size_t i = 0; i < set->n; i++) {
                ImageCheck *ic = &set->images[i];
                const ImageCheck *first = same_reference(set, i);
                _cleanup_(image_source_freep) ImageSource *src = NULL;
                _cleanup_free_ char *layout = NULL, *digest = NULL;
                ImageRef ref = {};
                Error le = {};

                if (first) {
                        layout = strdup(first->layout);
                        digest = strdup(first->digest);
                        if (!layout || !digest)
                                return -ENOMEM;
                } else {
                        if (asprintf(&layout, "%s/%zu", dir, n_layouts++) < 0)
                                return -ENOMEM;
                        r = image_ref_parse(ic->reference, &ref, &le);
                        if (r >= 0) {
                                r = registry_source_new(registry, &ref, &src);
                                image_ref_done(&ref);
                        }
                        if (r >= 0)
                                r = oci_layout_write(src, layout, &digest, &le);
                        if (r < 0)
                                return error_set(e, r, "image '%s' (%s): %s", ic->name, ic->reference,
                                                 error_message(&le) ?: strerror(-r));
                }
                free(ic->layout);
                free(ic->digest);
                ic->layout = TAKE_PTR(layout);
                ic->digest = TAKE_PTR(digest);
        }
        return 0;
}

char *image_command_arg(const char *arg, const ImageCheck *ic, const char *digest) {
        const char *keys[] = { "{layout}", "{reference}", "{digest}", "{name}" };
        const char *values[] = { ic->layout, ic->reference, digest, ic->name };
        char *out = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&out, &size);

        if (!f)
                return NULL;
        while (*arg) {
                size_t k;

                for (k = 0; k < ELEMENTSOF(keys); k++)
                        if (strncmp(arg, keys[k], strlen(keys[k])) == 0)
                                break;
                if (k < ELEMENTSOF(keys)) {
                        fputs(values[k] ?: "", f);
                        arg += strlen(keys[k]);
                } else
                        fputc(*arg++, f);
        }
        if (fclose(f) != 0) {
                free(out);
                return NULL;
        }
        return out;
}

/* The default template (bundle.image-import-command) is
 *   skopeo copy oci:{layout}:image containers-storage:{reference}
 * which copies the image of the layout's ref name "image" into the store podman and the
 * oci-containers units run from, under the reference the configuration names. */
int images_import(char *const *argv_template, const ImageSet *set, Error *e) {
        size_t n = strv_length(argv_template);

        if (n == 0)
                return error_set(e, -EINVAL, "the image import command is empty");
        for (size_t i = 0; i < set->n; i++) {
                const ImageCheck *ic = &set->images[i];
                _cleanup_strv_free_ char **argv = NULL;
                _cleanup_free_ char *digest = NULL;
                Error pe = {};
                bool dup = false;
                int r;

                if (!ic->layout)
                        continue;
                for (size_t k = 0; k < i; k++)
                        dup = dup || streq_ptr(set->images[k].layout, ic->layout);
                if (dup)
                        continue;
                /* Unverified (images.keys empty): the digest is the layout's own. */
                if (!ic->digest) {
                        _cleanup_(image_source_freep) ImageSource *src = NULL;
                        Buffer body = {};

                        r = oci_layout_open(ic->layout, NULL, &src, &pe);
                        if (r >= 0)
                                r = image_source_get_manifest(src, NULL, &body, NULL, &digest, &pe);
                        buffer_done(&body);
                        if (r < 0)
                                return error_set(e, r, "image '%s' (%s): %s", ic->name, ic->reference, pe.message);
                }
                argv = calloc(n + 1, sizeof(char *));
                if (!argv)
                        return -ENOMEM;
                for (size_t k = 0; k < n; k++)
                        if (!(argv[k] = image_command_arg(argv_template[k], ic, ic->digest ?: digest)))
                                return -ENOMEM;
                r = process_run(argv, &(ProcessOptions) { .name = "image import" }, NULL, &pe);
                if (r < 0)
                        return error_set(e, r, "cannot import image '%s' (%s) from '%s': %s", ic->name, ic->reference,
                                         ic->layout, pe.message);
        }
        return 0;
}
