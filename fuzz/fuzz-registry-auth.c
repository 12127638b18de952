/* SPDX-License-Identifier: MIT */
/* Registry credentials: registry_auth_lookup() (agent/oci/registry-auth.c) on the input as a
 * docker config.json (images.registry-auth-file), for a registry given as host:port, which
 * the file may also name with an https:// or http:// prefix.
 *
 * What must hold: found credentials have a user and a password; a user decoded from "auth"
 * has no ':' (the first ':' separates them). */

#include "fuzz-common.h"
#include "basic/macro.h"
#include "oci/registry-auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_free_ char *user = NULL, *password = NULL;
        Error e = {};
        int r;

        if (size > AUTH_FILE_MAX)
                return 0;
        if (fuzz_write_file(fuzz_tmp_path("auth.json"), data, size) < 0)
                abort();
        r = registry_auth_lookup(fuzz_tmp_path("auth.json"), "registry.example:5000", &user, &password, &e);
        fuzz_report("registry_auth_lookup", r, &e);
        if (r == 0) {
                if (!user || !password)
                        fuzz_fail("credentials without a user or a password");
        } else if (r != -ENOENT && r != -EINVAL && r != -ENOMEM)
                fuzz_fail("registry_auth_lookup() failed with %d: %s", r, e.message);
        else if (r != -ENOENT && !e.message[0])
                fuzz_fail("registry_auth_lookup() failed with %d and no message", r);
        return 0;
}
