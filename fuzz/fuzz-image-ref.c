/* SPDX-License-Identifier: MIT */
/* Container image references, as the revision's configuration names them
 * (virtualisation.oci-containers.containers.<name>.image, read with nix eval from the
 * client's repository): image_ref_parse() (agent/oci/image-ref.c), against the grammar of
 * distribution/reference (reference.go) as a POSIX regular expression. The input is the
 * reference (up to its first NUL byte).
 *
 * What must hold for a reference that parses: it matches the grammar; its parts put together
 * again give the input (with docker.io's defaults: the registry-1.docker.io registry, the
 * library/ prefix, the latest tag); the digest, when there is one, is sha256. */

#include <regex.h>

#include "fuzz-common.h"
#include "oci/image-ref.h"
#include "basic/macro.h"

/* reference.go, with the agent's restriction of digests to sha256 (and no IPv6 hosts). */
#define DOMAIN_COMPONENT "([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
#define DOMAIN DOMAIN_COMPONENT "(\\." DOMAIN_COMPONENT ")*(:[0-9]+)?"
#define PATH_COMPONENT "[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*"
#define TAG "[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
#define REFERENCE(domain, path) "^((" domain ")/)?" path "(/" path ")*(:" TAG ")?(@sha256:[0-9a-f]{64})?$"

/* What the agent accepts beyond the grammar, known bugs (fuzz/known-bugs): registries of any
 * [A-Za-z0-9.-] with a port of up to 5 digits (image-ref-registry), and dashes before a '.' or
 * '_' separator in repository components, "a-.b" (image-ref-path-component). */
#define DOMAIN_LOOSE "[a-zA-Z0-9.-]+(:[0-9]{1,5})?"
#define PATH_COMPONENT_LOOSE "[a-z0-9]+((\\.|_|__|-+|-+\\.|-+_|-+__)[a-z0-9]+)*"

static regex_t grammar[4]; /* strict, loose registry, loose path, both loose */

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        if (regcomp(&grammar[0], REFERENCE(DOMAIN, PATH_COMPONENT), REG_EXTENDED | REG_NOSUB) != 0 ||
            regcomp(&grammar[1], REFERENCE(DOMAIN_LOOSE, PATH_COMPONENT), REG_EXTENDED | REG_NOSUB) != 0 ||
            regcomp(&grammar[2], REFERENCE(DOMAIN, PATH_COMPONENT_LOOSE), REG_EXTENDED | REG_NOSUB) != 0 ||
            regcomp(&grammar[3], REFERENCE(DOMAIN_LOOSE, PATH_COMPONENT_LOOSE), REG_EXTENDED | REG_NOSUB) != 0)
                abort();
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_free_ char *s = fuzz_strndup(data, size), *again = NULL;
        ImageRef r = {};
        Error e = {};
        int k;

        if (size > 1024)
                return 0;
        k = image_ref_parse(s, &r, &e);
        fuzz_report("image_ref_parse", k, &e);
        if (k < 0) {
                if (k != -EINVAL && k != -ENOMEM)
                        fuzz_fail("image_ref_parse() failed with %d", k);
                return 0;
        }
        if (!r.registry || !r.repository || (!r.tag && !r.digest))
                fuzz_fail("'%s' parsed without registry, repository, or tag and digest", s);
        if (r.digest && !image_digest_is_valid(r.digest))
                fuzz_fail("'%s' parsed with digest '%s'", s, r.digest);
        if (regexec(&grammar[(fuzz_known("image-ref-registry") ? 1 : 0) + (fuzz_known("image-ref-path-component") ? 2 : 0)],
                    s, 0, NULL, 0) != 0)
                fuzz_fail("'%s' parsed, but it is not a reference in distribution/reference's grammar", s);

        /* Put together again. */
        {
                const char *registry = streq(r.registry, "registry-1.docker.io") ? NULL : r.registry;
                const char *repository = r.repository;
                bool implicit_tag = r.tag && streq(r.tag, "latest") && !strstr(s, ":latest");

                if (!registry && strncmp(repository, "library/", 8) == 0 && !strstr(s, "library/"))
                        repository += 8;
                if (asprintf(&again, "%s%s%s%s%s%s%s", registry ?: "", registry ? "/" : "", repository,
                             r.tag && !implicit_tag ? ":" : "", r.tag && !implicit_tag ? r.tag : "",
                             r.digest ? "@" : "", r.digest ?: "") < 0)
                        abort();
                if (!streq(again, s) && !(strncmp(s, "docker.io/", 10) == 0 && streq(again, s + 10)) &&
                    !(strncmp(s, "registry-1.docker.io/", 21) == 0 && streq(again, s + 21)))
                        fuzz_fail("'%s' parsed as '%s'", s, again);
        }
        image_ref_done(&r);
        return 0;
}
