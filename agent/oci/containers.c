/* SPDX-License-Identifier: MIT */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "oci/containers.h"
#include "oci/images.h"
#include "basic/log.h"
#include "basic/macro.h"
#include "system/process.h"
#include "basic/strutil.h"

#define INSPECT_OUTPUT_MAX (64 * 1024)
#define INSPECT_TIMEOUT_USEC (30ULL * 1000 * 1000)

static const char *const state_table[_CONTAINER_STATE_MAX] = {
        [CONTAINER_OK] = "ok",
        [CONTAINER_OTHER_IMAGE] = "other-image",
        [CONTAINER_NOT_RUNNING] = "not-running",
        [CONTAINER_UNKNOWN] = "unknown",
};

const char *container_state_to_string(ContainerState s) {
        return s >= 0 && s < _CONTAINER_STATE_MAX ? state_table[s] : NULL;
}

void container_report_done(ContainerReport *r) {
        for (size_t i = 0; r && i < r->n; i++) {
                free(r->checks[i].name);
                free(r->checks[i].reference);
                free(r->checks[i].expected);
                free(r->checks[i].running);
                free(r->checks[i].detail);
        }
        if (r) {
                free(r->checks);
                *r = (ContainerReport) {};
        }
}

/* The last "sha256:<64 hex>" of the output (docker prints repo@sha256:..., podman the digest). */
static char *find_digest(const char *out) {
        const char *found = NULL;

        for (const char *p = out; (p = strstr(p, "sha256:")); p += 7) {
                char hex[65];

                memcpy(hex, p + 7, 64);
                hex[64] = 0;
                if (strnlen(p + 7, 64) == 64 && is_hex(hex, 64))
                        found = p;
        }
        return found ? strndup(found, 7 + 64) : NULL;
}

static int check_one(const Config *c, ContainerCheck *cc) {
        ImageCheck ic = { .name = cc->name, .reference = cc->reference, .digest = cc->expected };
        _cleanup_strv_free_ char **argv = NULL;
        _cleanup_free_ char *out = NULL;
        ProcessResult res = {};
        Error e = {};
        int r;

        for (char **a = c->images.inspect_command; *a; a++) {
                _cleanup_free_ char *arg = image_command_arg(*a, &ic, cc->expected);

                if (!arg || strv_extend(&argv, arg) < 0)
                        return -ENOMEM;
        }
        r = process_run(argv,
                        &(ProcessOptions) { .name = "inspect", .capture = &out, .capture_max = INSPECT_OUTPUT_MAX,
                                            .timeout = INSPECT_TIMEOUT_USEC, .log_level = LOG_DEBUG },
                        &res, &e);
        if (r == -EPROTO && res.exited) {
                /* The engine answered: it has no such container (running). */
                cc->state = CONTAINER_NOT_RUNNING;
                cc->detail = strdup("the container engine has no such container running");
        } else if (r < 0) {
                cc->state = CONTAINER_UNKNOWN;
                if (asprintf(&cc->detail, "cannot ask the container engine: %s", error_message(&e) ?: strerror(-r)) < 0)
                        cc->detail = NULL;
        } else if (strncmp(out + strspn(out, " \t\n"), "false", 5) == 0) {
                /* "RUNNING DIGEST" (the default format): a container that exists but is stopped. */
                cc->running = find_digest(out);
                cc->state = CONTAINER_NOT_RUNNING;
                cc->detail = strdup("the container is not running");
        } else if (!(cc->running = find_digest(out))) {
                cc->state = CONTAINER_UNKNOWN;
                cc->detail = strdup("the inspect command printed no sha256 digest");
        } else if (streq(cc->running, cc->expected)) {
                cc->state = CONTAINER_OK;
                cc->detail = strdup("runs the verified image");
        } else {
                cc->state = CONTAINER_OTHER_IMAGE;
                if (asprintf(&cc->detail, "runs %s, not the verified %s", cc->running, cc->expected) < 0)
                        cc->detail = NULL;
        }
        return cc->detail ? 0 : -ENOMEM;
}

int containers_check(const Config *c, json_t *images, ContainerReport *ret) {
        ContainerReport rep = {};
        size_t i;
        json_t *v;
        int r;

        *ret = rep;
        if (strv_length(c->images.inspect_command) == 0 || !json_is_array(images) || json_array_size(images) == 0)
                return 0;
        rep.checks = calloc(json_array_size(images), sizeof(ContainerCheck));
        if (!rep.checks)
                return -ENOMEM;
        json_array_foreach(images, i, v) {
                const char *name = json_string_value(json_object_get(v, "name")),
                           *reference = json_string_value(json_object_get(v, "reference")),
                           *digest = json_string_value(json_object_get(v, "digest"));
                ContainerCheck *cc = &rep.checks[rep.n];

                if (!name || !digest)
                        continue; /* not verified at deployment (no images.keys): nothing to compare */
                cc->name = strdup(name);
                cc->reference = strdup(reference ?: "");
                cc->expected = strdup(digest);
                rep.n++;
                if (!cc->name || !cc->reference || !cc->expected) {
                        container_report_done(&rep);
                        return -ENOMEM;
                }
                r = check_one(c, cc);
                if (r < 0) {
                        container_report_done(&rep);
                        return r;
                }
                rep.drifted += cc->state == CONTAINER_OTHER_IMAGE;
        }
        *ret = rep;
        return 0;
}

json_t *container_report_to_json(const ContainerReport *r) {
        json_t *a = json_array();

        for (size_t i = 0; a && i < r->n; i++) {
                const ContainerCheck *cc = &r->checks[i];

                if (json_array_append_new(a, json_pack("{s:s, s:s, s:s, s:o, s:s, s:s}", "name", cc->name, "reference",
                                                       cc->reference, "expected", cc->expected, "running",
                                                       cc->running ? json_string(cc->running) : json_null(), "state",
                                                       container_state_to_string(cc->state), "detail", cc->detail)) < 0) {
                        json_decref(a);
                        return NULL;
                }
        }
        return a;
}
