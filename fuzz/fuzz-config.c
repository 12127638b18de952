/* SPDX-License-Identifier: MIT */
/* The configuration parser (agent/config/config.c on agent/config/yaml-schema.c): any bytes as a
 * configuration file. A file that loads must load with every field the schema promises: a
 * host, and defaults for what the file leaves out. */

#include "config/config.h"
#include "fuzz-common.h"
#include "basic/macro.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_config_ Config *c = NULL;
        Error e = {};
        int r;

        r = config_load_buffer("fuzz.yaml", (const char *) data, size, &c, &e);
        fuzz_report("config_load_buffer", r, &e);
        if (r < 0) {
                if (!e.message[0])
                        fuzz_fail("config_load_buffer() failed with %d and no message", r);
                return 0;
        }
        if (!c)
                fuzz_fail("config_load_buffer() succeeded without a configuration");
        if (!c->host || !c->host[0])
                fuzz_fail("a configuration without a host loaded");
        if (!c->state_dir || !c->system.rebuild_command || !c->system.profile)
                fuzz_fail("a configuration loaded without its defaults");
        if (c->images.threshold < 1)
                fuzz_fail("images.threshold %u loaded", c->images.threshold);
        for (size_t i = 0; i < c->health.n_checks; i++)
                if (!c->health.checks[i].name)
                        fuzz_fail("health check %zu has no name", i);
        return 0;
}
