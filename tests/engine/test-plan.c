/* SPDX-License-Identifier: MIT */
/* agent/engine/plan.c: the plan of a switch, made from two systems laid out as NixOS lays them
 * out (kernel and initrd links, switch-inhibitors, bin/switch-to-configuration) in a directory of
 * the test's own, with a nix that prints what `nix store diff-closures` prints. The decisions
 * (reboot required, switch inhibited) come from the files; the texts are only recorded. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include <jansson.h>

#include "basic/fileio.h"
#include "config/config.h"
#include "engine/plan.h"

typedef struct Fixture {
        char dir[64];
        char *from, *to, *current;
        Config *config;
} Fixture;

static char *in(const char *dir, const char *name) {
        char *p = path_join(dir, name);

        assert_non_null(p);
        return p;
}

static void put(const char *dir, const char *name, const char *text, mode_t mode) {
        _cleanup_free_ char *p = in(dir, name);

        assert_int_equal(write_file_atomic(p, text, strlen(text), mode), 0);
}

static void link_to(const char *dir, const char *name, const char *target) {
        _cleanup_free_ char *p = in(dir, name);

        (void) unlink(p);
        assert_int_equal(symlink(target, p), 0);
}

/* A system: bin/switch-to-configuration that answers dry-activate with the given lines, and a
 * kernel and an initrd (links to files of the test directory). */
static char *make_system(const Fixture *f, const char *name, const char *dry_activate, const char *kernel,
                         const char *initrd) {
        char *sys = in(f->dir, name);
        _cleanup_free_ char *bin = in(sys, "bin"), *script = NULL, *k = in(f->dir, kernel), *i = in(f->dir, initrd);

        assert_int_equal(mkdir_parents(bin, 0755), 0);
        assert_non_null(script = malloc(strlen(dry_activate) + 128));
        (void) snprintf(script, strlen(dry_activate) + 128,
                        "#!/bin/sh\n[ \"$1\" = dry-activate ] || exit 2\nprintf '%%s' '%s'\n", dry_activate);
        put(bin, "switch-to-configuration", script, 0755);
        put(f->dir, kernel, "kernel", 0644);
        put(f->dir, initrd, "initrd", 0644);
        link_to(sys, "kernel", k);
        link_to(sys, "initrd", i);
        return sys;
}

static int setup(void **state) {
        Fixture *f = calloc(1, sizeof(*f));
        char yaml[1024];
        Error e = {};

        assert_non_null(f);
        (void) snprintf(f->dir, sizeof(f->dir), "/tmp/test-plan-XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        f->from = make_system(f, "from", "", "kernel-a", "initrd-a");
        f->to = make_system(f, "to",
                            "would stop the following units: old.service\n"
                            "would restart the following units: web.service, db.service\n"
                            "would start the following units: new.service\n"
                            "something else entirely\n",
                            "kernel-a", "initrd-a");
        f->current = in(f->dir, "current-system");
        link_to(f->dir, "current-system", f->from);
        /* diff-closures, with the colours nix puts on a terminal. */
        put(f->dir, "nix",
            "#!/bin/sh\n[ \"$1 $2\" = 'store diff-closures' ] || exit 2\n"
            "printf 'hello: \\033[31;1m1.0\\033[0m → \\033[32;1m1.1\\033[0m, +12.3 KiB\\n'\n"
            "printf 'web: ∅ → 2.0\\n'\n",
            0755);
        (void) snprintf(yaml, sizeof(yaml), "host: testhost\nstate-dir: %s\nsystem:\n  nix-command: %s/nix\n  current-system: %s\n",
                        f->dir, f->dir, f->current);
        if (config_load_buffer("test.yaml", yaml, strlen(yaml), &f->config, &e) < 0)
                fail_msg("config: %s", error_message(&e));
        *state = f;
        return 0;
}

static int teardown(void **state) {
        Fixture *f = *state;

        assert_int_equal(rm_rf(f->dir), 0);
        free(f->from);
        free(f->to);
        free(f->current);
        config_free(f->config);
        free(f);
        return 0;
}

static json_t *make(const Fixture *f) {
        json_t *plan = NULL;

        assert_int_equal(plan_make(f->config, f->to, &plan), 0);
        assert_non_null(plan);
        return plan;
}

static void assert_list(json_t *list, const char *const *want) {
        size_t n = 0;

        for (; want[n]; n++) {
                if (n >= json_array_size(list))
                        fail_msg("missing '%s'", want[n]);
                assert_string_equal(json_string_value(json_array_get(list, n)), want[n]);
        }
        assert_int_equal(json_array_size(list), n);
}

static void test_packages_and_units(void **state) {
        Fixture *f = *state;
        json_t *plan = make(f), *units = json_object_get(plan, "units");
        _cleanup_free_ char *summary = plan_summary(plan);

        assert_string_equal(json_string_value(json_object_get(plan, "to")), f->to);
        assert_list(json_object_get(plan, "packages"),
                    (const char *[]) { "hello: 1.0 → 1.1, +12.3 KiB", "web: ∅ → 2.0", NULL });
        assert_list(json_object_get(units, "stop"), (const char *[]) { "old.service", NULL });
        assert_list(json_object_get(units, "restart"), (const char *[]) { "web.service", "db.service", NULL });
        assert_list(json_object_get(units, "start"), (const char *[]) { "new.service", NULL });
        assert_list(json_object_get(units, "reload"), (const char *[]) { NULL });
        assert_false(json_is_true(json_object_get(plan, "reboot-required")));
        assert_false(plan_switch_inhibited(plan));
        assert_list(json_object_get(plan, "errors"), (const char *[]) { NULL });
        assert_string_equal(summary, "2 package change(s); stop old.service; restart web.service, db.service; start "
                                     "new.service");
        json_decref(plan);
}

static void test_kernel_and_initrd(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *k = in(f->dir, "kernel-b"), *i = in(f->dir, "initrd-b"), *summary = NULL;
        json_t *plan;

        put(f->dir, "kernel-b", "kernel 2", 0644);
        link_to(f->to, "kernel", k);
        plan = make(f);
        assert_true(json_is_true(json_object_get(plan, "reboot-required")));
        assert_list(json_object_get(plan, "reboot-reasons"), (const char *[]) { "kernel", NULL });
        json_decref(plan);

        put(f->dir, "initrd-b", "initrd 2", 0644);
        link_to(f->to, "initrd", i);
        plan = make(f);
        assert_list(json_object_get(plan, "reboot-reasons"), (const char *[]) { "kernel", "initrd", NULL });
        assert_non_null(summary = plan_summary(plan));
        assert_non_null(strstr(summary, "; reboot required: kernel, initrd"));
        /* A reboot for the kernel is not a switch inhibitor: the switch goes on. */
        assert_false(plan_switch_inhibited(plan));
        json_decref(plan);
}

/* The named form: only the keys both systems name are compared (as NixOS does). */
static void test_inhibitors_named(void **state) {
        Fixture *f = *state;
        json_t *plan;

        put(f->from, "switch-inhibitors", "{\"systemd\": \"/nix/store/a-systemd\", \"dbus\": \"/nix/store/d\"}", 0644);
        put(f->to, "switch-inhibitors", "{\"systemd\": \"/nix/store/a-systemd\", \"other\": \"/nix/store/o\"}", 0644);
        plan = make(f);
        assert_false(plan_switch_inhibited(plan));
        json_decref(plan);

        put(f->to, "switch-inhibitors", "{\"systemd\": \"/nix/store/b-systemd\"}", 0644);
        plan = make(f);
        assert_true(plan_switch_inhibited(plan));
        assert_list(json_object_get(plan, "inhibitors"),
                    (const char *[]) { "systemd: /nix/store/a-systemd -> /nix/store/b-systemd", NULL });
        assert_list(json_object_get(plan, "reboot-reasons"), (const char *[]) { "switch-inhibitors", NULL });
        json_decref(plan);
}

/* The first form: one store path per line; any added or gone counts. */
static void test_inhibitors_list(void **state) {
        Fixture *f = *state;
        json_t *plan;

        put(f->from, "switch-inhibitors", "/nix/store/a\n/nix/store/b\n", 0644);
        put(f->to, "switch-inhibitors", "/nix/store/b\n/nix/store/a\n", 0644);
        plan = make(f);
        assert_false(plan_switch_inhibited(plan));
        json_decref(plan);

        put(f->to, "switch-inhibitors", "/nix/store/a\n/nix/store/c\n", 0644);
        plan = make(f);
        assert_true(plan_switch_inhibited(plan));
        assert_list(json_object_get(plan, "inhibitors"),
                    (const char *[]) { "/nix/store/c: (none) -> added", "/nix/store/b: present -> gone", NULL });
        json_decref(plan);

        /* One system in each form: they cannot be compared, which inhibits the switch. */
        put(f->to, "switch-inhibitors", "{\"systemd\": \"/nix/store/a\"}", 0644);
        plan = make(f);
        assert_true(plan_switch_inhibited(plan));
        json_decref(plan);
}

/* What cannot be found out is listed, never fatal, and decides nothing. */
static void test_errors(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *stc = in(f->to, "bin/switch-to-configuration"), *summary = NULL;
        json_t *plan;

        put(f->dir, "nix", "#!/bin/sh\necho 'error: cannot diff' >&2\nexit 1\n", 0755);
        assert_int_equal(unlink(stc), 0);
        plan = make(f);
        assert_int_equal(json_array_size(json_object_get(plan, "packages")), 0);
        assert_int_equal(json_array_size(json_object_get(plan, "errors")), 2);
        assert_non_null(strstr(json_string_value(json_array_get(json_object_get(plan, "errors"), 0)),
                               "nix store diff-closures"));
        assert_non_null(strstr(json_string_value(json_array_get(json_object_get(plan, "errors"), 1)),
                               "switch-to-configuration dry-activate"));
        assert_false(json_is_true(json_object_get(plan, "reboot-required")));
        assert_non_null(summary = plan_summary(plan));
        assert_non_null(strstr(summary, "not everything could be found out"));
        json_decref(plan);

        /* No running system: nothing to compare with. */
        assert_int_equal(unlink(f->current), 0);
        plan = make(f);
        assert_true(json_is_null(json_object_get(plan, "from")));
        assert_non_null(strstr(json_string_value(json_array_get(json_object_get(plan, "errors"), 0)),
                               "no running system"));
        json_decref(plan);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_packages_and_units, setup, teardown),
                cmocka_unit_test_setup_teardown(test_kernel_and_initrd, setup, teardown),
                cmocka_unit_test_setup_teardown(test_inhibitors_named, setup, teardown),
                cmocka_unit_test_setup_teardown(test_inhibitors_list, setup, teardown),
                cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
