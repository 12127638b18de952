/* SPDX-License-Identifier: MIT */
/* A driver for tests/integration/test_image_layout.py: images_export(), images_verify() and
 * images_import() on the real code, against the loopback registry and the layouts it writes,
 * until a command of the agent calls them.
 *
 *   test-oci-layout export CONFIG DIR NAME=REFERENCE...
 *   test-oci-layout verify CONFIG NAME=REFERENCE=LAYOUT[=DIGEST]...
 *   test-oci-layout import NAME=REFERENCE=LAYOUT[=DIGEST]... -- ARGV-TEMPLATE...
 *
 * Each prints one JSON object on stdout: {"r": <the return value>, "error": "...", "images":
 * [{name, reference, digest, layout, signers, sbom}], "maxrss_kib": <peak RSS>, "sanitized":
 * <bool>} and exits 0; anything else (usage, a configuration that does not load) exits 2. */

#include <jansson.h>
#include <stdio.h>
#include <sys/resource.h>

#include "config/config.h"
#include "oci/images.h"
#include "basic/log.h"

#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED true
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZED true
#endif
#endif
#ifndef SANITIZED
#define SANITIZED false
#endif

static int usage(void) {
        fputs("usage: test-oci-layout export CONFIG DIR NAME=REFERENCE...\n"
              "       test-oci-layout verify CONFIG NAME=REFERENCE=LAYOUT[=DIGEST]...\n"
              "       test-oci-layout import NAME=REFERENCE=LAYOUT[=DIGEST]... -- ARGV-TEMPLATE...\n",
              stderr);
        return 2;
}

/* NAME=REFERENCE[=LAYOUT[=DIGEST]]: references contain no '='. */
static int parse_images(char **args, size_t n, ImageSet *ret) {
        ret->images = calloc(n ? n : 1, sizeof(ImageCheck));
        if (!ret->images)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                ImageCheck *ic = &ret->images[ret->n++];
                char *fields[4] = {}, *s = args[i];

                for (size_t k = 0; k < 4 && s; k++) {
                        char *eq = k < 3 ? strchr(s, '=') : NULL;

                        fields[k] = eq ? strndup(s, (size_t) (eq - s)) : strdup(s);
                        s = eq ? eq + 1 : NULL;
                }
                if (!fields[1])
                        return -EINVAL;
                ic->name = fields[0];
                ic->reference = fields[1];
                ic->layout = fields[2];
                ic->digest = fields[3];
        }
        return 0;
}

static int report(int r, const Error *e, const ImageSet *set) {
        struct rusage ru = {};
        json_t *images = image_set_to_json(set), *j;
        char *out;

        (void) getrusage(RUSAGE_SELF, &ru);
        for (size_t i = 0; images && i < set->n; i++) {
                json_t *o = json_array_get(images, i);

                json_object_set_new(o, "layout", set->images[i].layout ? json_string(set->images[i].layout) : json_null());
                json_object_set_new(o, "result", json_integer(set->images[i].result));
                json_object_set_new(o, "error", json_string(set->images[i].error.message));
        }
        j = json_pack("{s:i, s:s, s:o, s:I, s:b}", "r", r, "error", strempty(error_message(e)), "images",
                      images ?: json_null(), "maxrss_kib", (json_int_t) ru.ru_maxrss, "sanitized", SANITIZED);
        out = j ? json_dumps(j, JSON_COMPACT) : NULL;
        json_decref(j);
        if (!out)
                return 2;
        puts(out);
        free(out);
        return 0;
}

int main(int argc, char *argv[]) {
        _cleanup_config_ Config *c = NULL;
        _cleanup_(image_set_done) ImageSet set = {};
        Error e = {};
        int r;

        if (argc < 3)
                return usage();

        if (streq(argv[1], "import")) {
                int sep = 2;

                while (sep < argc && !streq(argv[sep], "--"))
                        sep++;
                if (sep >= argc - 1 || parse_images(argv + 2, (size_t) (sep - 2), &set) < 0)
                        return usage();
                r = images_import(argv + sep + 1, &set, &e);
                return report(r, &e, &set);
        }

        if (argc < 4)
                return usage();
        r = config_load(argv[2], &c, &e);
        if (r < 0) {
                fprintf(stderr, "%s\n", e.message);
                return 2;
        }
        if (streq(argv[1], "export")) {
                if (argc < 5 || parse_images(argv + 4, (size_t) (argc - 4), &set) < 0)
                        return usage();
                r = images_export(c, &set, argv[3], &e);
        } else if (streq(argv[1], "verify")) {
                if (parse_images(argv + 3, (size_t) (argc - 3), &set) < 0)
                        return usage();
                r = images_verify(c, &set, &e);
        } else
                return usage();
        return report(r, &e, &set);
}
