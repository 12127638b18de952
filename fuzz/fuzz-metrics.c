/* SPDX-License-Identifier: MIT */
/* The metrics file: metrics_record() (agent/engine/metrics.c) reads <state-dir>/metrics.json, counts
 * a run into it and renders the Prometheus textfile (metrics.textfile) from it. The input is
 * metrics.json as a damaged or edited file may leave it: the agent promises to start counting
 * again from anything it cannot use ("nothing else depends on it").
 *
 * What must hold: metrics_record() succeeds, and what it renders is the text exposition
 * format: comments, or `name{label="value",...} number` lines whose label values escape \, "
 * and newlines. */

#include <jansson.h>
#include <limits.h>
#include <stdlib.h>

#include "config/config.h"
#include "basic/fileio.h"
#include "fuzz-common.h"
#include "basic/macro.h"
#include "engine/metrics.h"
#include "system/state.h"

static Config *config;
static State *state;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        if (config_new(&config) < 0 || state_new(&state) < 0)
                abort();
        free(config->state_dir);
        free(config->system.profile);
        free(config->system.current_system);
        config->state_dir = strdup(fuzz_tmpdir());
        config->system.profile = strdup(fuzz_tmp_path("profile"));
        config->system.current_system = strdup(fuzz_tmp_path("current-system"));
        config->metrics.textfile = strdup(fuzz_tmp_path("atticd-agent.prom"));
        state->deployed_revision = strdup("0123456789abcdef0123456789abcdef01234567");
        state->deployed_generation = strdup("/nix/store/00000000000000000000000000000000-nixos-system-x");
        if (!config->state_dir || !config->system.profile || !config->system.current_system ||
            !config->metrics.textfile || !state->deployed_revision || !state->deployed_generation)
                abort();
        return 0;
}

static bool is_name(char c, bool first) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' || (!first && c >= '0' && c <= '9');
}

/* One sample line: name, {labels}, a space, a number. */
static bool sample_ok(const char *p) {
        char *end;

        if (!is_name(*p, true))
                return false;
        while (is_name(*p, false))
                p++;
        if (*p == '{') {
                p++;
                while (*p != '}') {
                        if (!is_name(*p, true) || *p == ':')
                                return false;
                        while (is_name(*p, false) && *p != ':')
                                p++;
                        if (p[0] != '=' || p[1] != '"')
                                return false;
                        for (p += 2; *p != '"'; p++) {
                                if (*p == 0 || *p == '\n')
                                        return false;
                                if (*p == '\\' && p[1] != '\\' && p[1] != '"' && p[1] != 'n')
                                        return false;
                                if (*p == '\\')
                                        p++;
                        }
                        p++;
                        if (*p == ',')
                                p++;
                        else if (*p != '}')
                                return false;
                }
                p++;
        }
        if (*p != ' ')
                return false;
        p++;
        if (streq(p, "NaN") || streq(p, "+Inf") || streq(p, "-Inf"))
                return true;
        (void) strtod(p, &end);
        return end != p && *end == 0;
}

static void check_prom(void) {
        _cleanup_free_ char *text = NULL;
        size_t size;

        if (read_full_file(config->metrics.textfile, 64u << 20, &text, &size) < 0)
                fuzz_fail("no textfile was written");
        for (char *line = text, *next; line && *line; line = next) {
                next = strchr(line, '\n');
                if (!next)
                        fuzz_fail("the textfile does not end with a newline");
                *next++ = 0;
                if (line[0] == '#')
                        continue;
                if (!sample_ok(line))
                        fuzz_fail("not a sample line: '%.200s'", line);
        }
}

/* Known (fuzz/known-bugs metrics-counter-overflow): a counter at the largest integer overflows
 * (signed, undefined) when the run is counted. Whether the file holds such an integer. */
static bool has_huge_integer(json_t *j) {
        const char *k;
        json_t *v;
        size_t i;

        if (json_is_integer(j))
                return json_integer_value(j) > LLONG_MAX - 2;
        if (json_is_object(j))
                json_object_foreach(j, k, v)
                        if (has_huge_integer(v))
                                return true;
        if (json_is_array(j))
                json_array_foreach(j, i, v)
                        if (has_huge_integer(v))
                                return true;
        return false;
}

static bool shows_known_overflow(const uint8_t *data, size_t size) {
        _cleanup_free_ char *text = fuzz_strndup(data, size);
        json_t *j;
        bool huge;

        if (!fuzz_known("metrics-counter-overflow"))
                return false;
        j = json_loads(text, 0, NULL);
        huge = has_huge_integer(j);
        json_decref(j);
        return huge;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        MetricsRun run = {
                .command = "apply",
                .result = RESULT_REFUSED,
                .end = 1750000000,
                .duration = 1234567,
                .phases = { { "fetch", 1000 }, { "verify", 2000 } },
                .n_phases = 2,
                .refusal = "bundle-signature",
                .images_verified = 3,
        };
        int r;

        if (size > 1024 * 1024 || shows_known_overflow(data, size))
                return 0;
        if (fuzz_write_file(fuzz_tmp_path("metrics.json"), data, size) < 0)
                abort();
        r = metrics_record(config, state, &run);
        fuzz_report("metrics_record", r, NULL);
        if (r < 0)
                fuzz_fail("metrics_record() failed with %d", r);
        check_prom();

        /* `check` renders without counting, from what the first call wrote. */
        r = metrics_record(config, state, NULL);
        if (r < 0)
                fuzz_fail("metrics_record(NULL) failed with %d", r);
        check_prom();
        return 0;
}
