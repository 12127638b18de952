/* SPDX-License-Identifier: MIT */
/* Tests of agent/config/config.c (and the table walker in agent/config/yaml-schema.c under it). */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "config/config.h"

#define DATA TEST_DATA_DIR "/config/"

/* The message must be exactly "FILE:PREFIX..." and contain what. */
static void assert_message(const Error *e, const char *file, const char *prefix, const char *what) {
        char start[1024];

        (void) snprintf(start, sizeof(start), "%s:%s", file, prefix);
        if (!error_message(e))
                fail_msg("no error message, expected '%s...%s'", start, what);
        if (strncmp(e->message, start, strlen(start)) != 0)
                fail_msg("message '%s' does not start with '%s'", e->message, start);
        if (!strstr(e->message, what))
                fail_msg("message '%s' does not contain '%s'", e->message, what);
}

static void assert_strv(char **l, ...) {
        va_list ap;
        size_t i = 0;
        const char *s;

        assert_non_null(l);
        va_start(ap, l);
        while ((s = va_arg(ap, const char *))) {
                assert_non_null(l[i]);
                assert_string_equal(l[i], s);
                i++;
        }
        va_end(ap);
        assert_null(l[i]);
}

/* Writes data to a new temporary file; returns its path (to unlink and free). */
static char *write_temp(const void *data, size_t size) {
        char *path = strdup("/tmp/test-config-XXXXXX");
        int fd;

        assert_non_null(path);
        fd = mkstemp(path);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, data, size), (ssize_t) size);
        assert_int_equal(close(fd), 0);
        return path;
}

static void assert_defaults(const Config *c) {
        assert_string_equal(c->state_dir, "/var/lib/atticd-agent");
        assert_string_equal(c->system.rebuild_command, "nixos-rebuild");
        assert_string_equal(c->system.nix_command, "nix");
        assert_string_equal(c->system.profile, "/nix/var/nix/profiles/system");
        assert_string_equal(c->system.current_system, "/run/current-system");
        assert_int_equal(c->system.action, SYSTEM_ACTION_SWITCH);
        assert_true(c->system.trial_boot);
        assert_int_equal(c->system.boot_loader, BOOT_LOADER_AUTO);
        assert_strv(c->system.bootctl_command, "bootctl", NULL);
        assert_strv(c->system.grub_reboot_command, "grub-reboot", NULL);
        assert_string_equal(c->system.boot_directory, "/boot");
        assert_string_equal(c->system.boot_id_file, "/proc/sys/kernel/random/boot_id");
        /* List defaults apply too (a missing reboot-command once left argv[0] NULL). */
        assert_strv(c->system.reboot_command, "systemctl", "reboot", NULL);
        assert_strv(c->bundle.image_import_command, "skopeo", "copy", "oci:{layout}:image",
                    "containers-storage:{reference}", NULL);
        assert_false(c->repository.present);
        assert_null(c->repository.url);
        assert_string_equal(c->repository.ref, "main");
        assert_false(c->repository.allow_non_fast_forward);
        assert_null(c->repository.allowed_signers);
        assert_strv(c->images.keys, NULL);
        assert_int_equal(c->images.threshold, 1);
        assert_null(c->images.registry_auth_file);
        assert_strv(c->images.insecure_registries, NULL);
        assert_false(c->images.require_sbom);
        assert_int_equal(c->images.request_timeout, 300);
        assert_strv(c->bundle.keys, NULL);
        assert_int_equal(c->health.settle, 5);
        assert_int_equal(c->health.timeout, 120);
        assert_null(c->health.checks);
        assert_int_equal(c->health.n_checks, 0);
}

static void test_new_defaults(_unused_ void **state) {
        _cleanup_config_ Config *c = NULL;

        assert_int_equal(config_new(&c), 0);
        assert_null(c->host);
        assert_null(c->path);
        assert_defaults(c);
}

static void test_minimal(_unused_ void **state) {
        _cleanup_config_ Config *c = NULL;
        Error e = {};

        assert_int_equal(config_load(DATA "minimal.yaml", &c, &e), 0);
        assert_null(error_message(&e));
        assert_string_equal(c->path, DATA "minimal.yaml");
        assert_string_equal(c->host, "testhost");
        assert_defaults(c);
}

static void test_full(_unused_ void **state) {
        _cleanup_config_ Config *c = NULL;
        const HealthCheck *k;
        Error e = {};

        assert_int_equal(config_load(DATA "full.yaml", &c, &e), 0);
        assert_null(error_message(&e));

        assert_string_equal(c->host, "testhost");
        assert_string_equal(c->state_dir, "/srv/atticd-agent");
        assert_string_equal(c->system.rebuild_command, "/opt/stub/nixos-rebuild");
        assert_string_equal(c->system.nix_command, "/opt/stub/nix");
        assert_string_equal(c->system.profile, "/nix/var/nix/profiles/test");
        assert_string_equal(c->system.current_system, "/run/test-system");
        assert_int_equal(c->system.action, SYSTEM_ACTION_BOOT);
        assert_false(c->system.trial_boot);
        assert_int_equal(c->system.boot_loader, BOOT_LOADER_GRUB);
        assert_strv(c->system.bootctl_command, "/opt/stub/bootctl", "--quiet", NULL);
        assert_strv(c->system.grub_reboot_command, "/opt/stub/grub-reboot", NULL);
        assert_string_equal(c->system.boot_directory, "/boot/efi");
        assert_string_equal(c->system.boot_id_file, "/run/test-boot-id");

        assert_true(c->repository.present);
        assert_string_equal(c->repository.url, "https://git.example.org/client.git");
        assert_string_equal(c->repository.ref, "v1.2.3");
        assert_true(c->repository.allow_non_fast_forward);
        assert_string_equal(c->repository.allowed_signers, "/etc/atticd-agent/allowed_signers");

        assert_strv(c->images.keys, "/etc/atticd-agent/cosign.pub", "/etc/atticd-agent/cosign2.pub", NULL);
        assert_int_equal(c->images.threshold, 2);
        assert_string_equal(c->images.registry_auth_file, "/etc/atticd-agent/auth.json");
        assert_strv(c->images.insecure_registries, "127.0.0.1:5000", "localhost:5001", NULL);
        assert_true(c->images.require_sbom);

        assert_strv(c->bundle.keys, "/etc/atticd-agent/bundle.pub", NULL);

        assert_int_equal(c->health.settle, 0);
        assert_int_equal(c->health.timeout, 300);
        assert_int_equal(c->health.n_checks, 6);

        k = &c->health.checks[0];
        assert_string_equal(k->name, "web");
        assert_int_equal(k->line, 39);
        assert_int_equal(k->type, HEALTH_CHECK_HTTP);
        assert_string_equal(k->http_url, "http://127.0.0.1:8080/health");
        assert_int_equal(k->http_status, 204);

        k = &c->health.checks[1];
        assert_string_equal(k->name, "web-default-status");
        assert_int_equal(k->line, 41);
        assert_int_equal(k->type, HEALTH_CHECK_HTTP);
        assert_string_equal(k->http_url, "https://[::1]:8443/");
        assert_int_equal(k->http_status, 200);

        k = &c->health.checks[2];
        assert_string_equal(k->name, "db");
        assert_int_equal(k->line, 44);
        assert_int_equal(k->type, HEALTH_CHECK_TCP);
        assert_string_equal(k->tcp_address, "127.0.0.1:5432");
        assert_null(k->http_url);

        k = &c->health.checks[3];
        assert_string_equal(k->name, "db6");
        assert_int_equal(k->type, HEALTH_CHECK_TCP);
        assert_string_equal(k->tcp_address, "[::1]:80");

        k = &c->health.checks[4];
        assert_string_equal(k->name, "units");
        assert_int_equal(k->type, HEALTH_CHECK_SYSTEMD_UNITS);
        assert_strv(k->units, "nginx.service", "postgresql.service", NULL);

        k = &c->health.checks[5];
        assert_string_equal(k->name, "smoke");
        assert_int_equal(k->line, 50);
        assert_int_equal(k->type, HEALTH_CHECK_COMMAND);
        assert_strv(k->command, "/run/current-system/sw/bin/true", "--with space", NULL);
}

/* The example of CONTRACT.md, verbatim. */
static void test_contract_example(_unused_ void **state) {
        _cleanup_config_ Config *c = NULL;
        Error e = {};

        assert_int_equal(config_load(DATA "contract.yaml", &c, &e), 0);
        assert_string_equal(c->host, "testhost");
        assert_true(c->repository.present);
        assert_strv(c->images.keys, "/etc/atticd-agent/cosign.pub", NULL);
        assert_strv(c->images.insecure_registries, NULL);
        assert_int_equal(c->health.n_checks, 4);
        assert_int_equal(c->health.checks[0].type, HEALTH_CHECK_HTTP);
        assert_int_equal(c->health.checks[1].type, HEALTH_CHECK_TCP);
        assert_int_equal(c->health.checks[2].type, HEALTH_CHECK_SYSTEMD_UNITS);
        assert_int_equal(c->health.checks[3].type, HEALTH_CHECK_COMMAND);
}

/* A fixture that must be refused with exactly this message (after the directory). */
typedef struct FileCase {
        const char *file;
        int r;
        const char *message;
} FileCase;

static const FileCase file_cases[] = {
        { "unknown-top.yaml", -EINVAL, "unknown-top.yaml:3: hots: unknown key" },
        { "unknown-system.yaml", -EINVAL, "unknown-system.yaml:4: system.rebuild-comand: unknown key" },
        { "unknown-repository.yaml", -EINVAL, "unknown-repository.yaml:4: repository.branch: unknown key" },
        { "unknown-images.yaml", -EINVAL, "unknown-images.yaml:4: images.key: unknown key" },
        { "unknown-bundle.yaml", -EINVAL, "unknown-bundle.yaml:3: bundle.key: unknown key" },
        { "unknown-health.yaml", -EINVAL, "unknown-health.yaml:4: health.round-interval: unknown key" },
        { "unknown-check.yaml", -EINVAL, "unknown-check.yaml:7: health.checks[1].htp: unknown key" },
        { "unknown-http.yaml", -EINVAL, "unknown-http.yaml:7: health.checks[0].http.code: unknown key" },
        { "empty.yaml", -EINVAL, "empty.yaml:1: the file is empty" },
        { "comment-only.yaml", -EINVAL, "comment-only.yaml:3: the file is empty" },
        { "garbage.yaml", -EINVAL,
          "garbage.yaml:2: invalid YAML: did not find expected ',' or ']' (while parsing a flow sequence at line 1)" },
        { "garbage-late.yaml", -EINVAL, "garbage-late.yaml:4: invalid YAML: did not find expected ',' or '}' "
                                        "(while parsing a flow mapping at line 3)" },
        { "alias.yaml", -EINVAL, "alias.yaml:1: host: anchors and aliases are not supported" },
        { "two-documents.yaml", -EINVAL, "two-documents.yaml:2: only one document is supported" },
        { "duplicate-check-name.yaml", -EINVAL,
          "duplicate-check-name.yaml:8: health.checks[2].name: duplicate check name (checks[0] at line 4 has it too)" },
        { "relative-path.yaml", -EINVAL,
          "relative-path.yaml:5: images.keys[1]: must be an absolute path, got 'keys/cosign.pub'" },
        { "does-not-exist.yaml", -ENOENT, "does-not-exist.yaml: cannot open: No such file or directory" },
};

static void test_file_case(_unused_ void **state) {
        const FileCase *t = *state;
        _cleanup_config_ Config *c = NULL;
        char path[1024], expected[1024];
        Error e = {};

        (void) snprintf(path, sizeof(path), DATA "%s", t->file);
        (void) snprintf(expected, sizeof(expected), DATA "%s", t->message);
        assert_int_equal(config_load(path, &c, &e), t->r);
        assert_null(c);
        assert_non_null(error_message(&e));
        assert_string_equal(e.message, expected);
}

/* A document given as a buffer (reported as "case.yaml") that must be refused. */
typedef struct Case {
        const char *name;
        const char *yaml;
        size_t size;        /* 0: strlen(yaml) */
        const char *prefix; /* "LINE: KEY: " after "case.yaml:" */
        const char *what;   /* contained in the message */
} Case;

#define H "host: testhost\n"
#define CHECK(x) H "health:\n  checks:\n    - name: c\n      " x "\n"  /* x is on line 5 */
#define OVERFLOW "99999999999999999999"

static const Case cases[] = {
        /* The top level */
        { "missing-host", "state-dir: /srv\n", 0, "1: host: ", "required key is missing" },
        { "top-list", "- host: testhost\n", 0, "1: ", "the top level must be a mapping, got a list" },
        { "top-scalar", "testhost\n", 0, "1: ", "the top level must be a mapping, got 'testhost'" },
        { "top-null", "--- null\n", 0, "1: ", "the top level must be a mapping, got null" },
        { "duplicate-host", H "state-dir: /srv\nhost: other\n", 0, "3: host: ", "duplicate key (first at line 1)" },
        { "key-not-scalar", H "? [a]\n: b\n", 0, "2: ", "expected a key, got a list" },
        { "alias-only", H "state-dir: *x\n", 0, "2: state-dir: ", "anchors and aliases are not supported" },
        { "anchor-section", H "system: &s\n  action: boot\n", 0, "2: system: ", "anchors and aliases are not supported" },
        { "merge-key", H "system:\n  <<: {action: boot}\n", 0, "3: system.<<: ", "unknown key" },
        { "tag", H "state-dir: !!str /srv\n", 0, "2: state-dir: ", "tags are not supported" },
        { "reader-error", H "state-dir: /srv\n\x7f" "ELF\n", 0, "3: ", "invalid YAML: control characters are not allowed" },
        { "nul-byte-in-file", H "state-dir: /s\0rv\n", sizeof(H "state-dir: /s\0rv\n") - 1, "2: ",
          "invalid YAML: control characters are not allowed" },
        { "invalid-utf8", H "state-dir: /s\xff\n", 0, "2: ", "invalid YAML: invalid leading UTF-8 octet" },
        { "nesting-16", H "system: [[[[[[[[[[[[[[[]]]]]]]]]]]]]]]\n", 0, "2: system: ", "expected a mapping, got a list" },
        { "nesting-17", H "system: [[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]\n", 0, "2: ", "nested deeper than 16 levels" },

        /* Strings */
        { "host-list", "host: [a]\n", 0, "1: host: ", "expected a string, got a list" },
        { "host-mapping", "host: {a: b}\n", 0, "1: host: ", "expected a string, got a mapping" },
        { "host-null", "host:\n", 0, "1: host: ", "expected a string, got null" },
        { "host-tilde", "host: ~\n", 0, "1: host: ", "expected a string, got null" },
        { "host-null-word", "host: null\n", 0, "1: host: ", "expected a string, got null" },
        { "host-empty", "host: \"\"\n", 0, "1: host: ", "must not be empty" },
        { "host-nul", "host: \"test\\0host\"\n", 0, "1: host: ", "must not contain NUL bytes" },
        { "state-dir-relative", H "state-dir: var/lib\n", 0, "2: state-dir: ", "must be an absolute path, got 'var/lib'" },
        { "state-dir-list", H "state-dir: [/srv]\n", 0, "2: state-dir: ", "expected a string, got a list" },

        /* system */
        { "system-scalar", H "system: switch\n", 0, "2: system: ", "expected a mapping, got 'switch'" },
        { "system-list", H "system: [a]\n", 0, "2: system: ", "expected a mapping, got a list" },
        { "system-null", H "system:\n", 0, "2: system: ", "expected a mapping, got null" },
        { "rebuild-command-list", H "system:\n  rebuild-command: [a, b]\n", 0, "3: system.rebuild-command: ",
          "expected a string, got a list" },
        { "nix-command-mapping", H "system:\n  nix-command: {a: 1}\n", 0, "3: system.nix-command: ",
          "expected a string, got a mapping" },
        { "profile-relative", H "system:\n  profile: nix/var\n", 0, "3: system.profile: ", "must be an absolute path" },
        { "profile-list", H "system:\n  profile: [/p]\n", 0, "3: system.profile: ", "expected a string, got a list" },
        { "current-system-mapping", H "system:\n  current-system: {a: b}\n", 0, "3: system.current-system: ",
          "expected a string, got a mapping" },
        { "current-system-relative", H "system:\n  current-system: run/current-system\n", 0,
          "3: system.current-system: ", "must be an absolute path" },
        { "action-enum", H "system:\n  action: reboot\n", 0, "3: system.action: ",
          "expected one of: switch, boot, got 'reboot'" },
        { "action-list", H "system:\n  action: [switch]\n", 0, "3: system.action: ", "got a list" },
        { "boot-loader-enum", H "system:\n  boot-loader: lilo\n", 0, "3: system.boot-loader: ",
          "expected one of: auto, systemd-boot, grub, extlinux, other, got 'lilo'" },
        { "trial-boot-string", H "system:\n  trial-boot: sometimes\n", 0, "3: system.trial-boot: ", "" },
        { "bootctl-command-empty", H "system:\n  bootctl-command: []\n", 0, "3: system.bootctl-command: ",
          "must not be an empty list" },
        { "grub-reboot-command-string", H "system:\n  grub-reboot-command: grub-reboot\n", 0,
          "3: system.grub-reboot-command: ", "expected a list of strings" },
        { "boot-directory-relative", H "system:\n  boot-directory: boot\n", 0, "3: system.boot-directory: ",
          "must be an absolute path" },
        { "boot-id-file-relative", H "system:\n  boot-id-file: boot_id\n", 0, "3: system.boot-id-file: ",
          "must be an absolute path" },
        { "nix-keys-no-name", H "bundle:\n  nix-keys: [AbCdEf==]\n", 0, "3: bundle.nix-keys[0]: ",
          "must be a nix public key, NAME:BASE64" },
        { "nix-keys-space", H "bundle:\n  nix-keys: [\"ci:Ab Cd\"]\n", 0, "3: bundle.nix-keys[0]: ",
          "must be a nix public key" },
        { "future-tolerance-negative", H "bundle:\n  future-tolerance: -1\n", 0, "3: bundle.future-tolerance: ", "" },

        /* rollout, schedule (issue 19) */
        { "rollout-file-absolute", H "repository:\n  rollout-file: /etc/rollout.json\n", 0, "3: repository.rollout-file: ",
          "must be a path inside the repository" },
        { "rollout-file-dotdot", H "repository:\n  rollout-file: ci/../../x.json\n", 0, "3: repository.rollout-file: ",
          "must be a path inside the repository" },
        { "rollout-file-trailing-slash", H "repository:\n  rollout-file: ci/\n", 0, "3: repository.rollout-file: ",
          "must be a path inside the repository" },
        { "rollout-bucket-100", H "rollout:\n  bucket: 100\n", 0, "3: rollout.bucket: ", "must be a number from 0 to 99" },
        { "rollout-bucket-negative", H "rollout:\n  bucket: -1\n", 0, "3: rollout.bucket: ", "must be a number from 0 to 99" },
        { "rollout-bucket-leading-zero", H "rollout:\n  bucket: 07\n", 0, "3: rollout.bucket: ", "must be a number from 0 to 99" },
        { "rollout-bucket-word", H "rollout:\n  bucket: canary\n", 0, "3: rollout.bucket: ", "must be a number from 0 to 99" },
        { "rollout-unknown", H "rollout:\n  percent: 5\n", 0, "3: rollout.percent: ", "unknown key" },
        { "schedule-window-bad", H "schedule:\n  windows: [\"Mon-Fri 2:00-5:00\"]\n", 0, "3: schedule.windows[0]: ",
          "must be [DAYS ]HH:MM-HH:MM" },
        { "schedule-window-day", H "schedule:\n  windows: [\"Moon 02:00-05:00\"]\n", 0, "3: schedule.windows[0]: ",
          "days must be" },
        { "schedule-window-empty", H "schedule:\n  windows: [\"02:00-02:00\"]\n", 0, "3: schedule.windows[0]: ", "is empty" },
        { "schedule-windows-scalar", H "schedule:\n  windows: \"02:00-05:00\"\n", 0, "3: schedule.windows: ",
          "expected a list of strings" },
        { "on-switch-inhibited-bad", H "system:\n  on-switch-inhibited: switch\n", 0, "3: system.on-switch-inhibited: ", "" },
        { "boot-default-enum", H "system:\n  boot-default: never\n", 0, "3: system.boot-default: ",
          "expected one of: after-health, at-activation, got 'never'" },
        { "action-null", H "system:\n  action:\n", 0, "3: system.action: ", "got null" },
        { "duplicate-action", H "system:\n  action: boot\n  profile: /p\n  action: switch\n", 0, "5: system.action: ",
          "duplicate key (first at line 3)" },

        /* repository */
        { "repository-scalar", H "repository: https://x/y.git\n", 0, "2: repository: ", "expected a mapping" },
        { "repository-null", H "repository:\n", 0, "2: repository: ", "expected a mapping, got null" },
        { "url-list", H "repository:\n  url: [a]\n", 0, "3: repository.url: ", "expected a string, got a list" },
        { "ref-mapping", H "repository:\n  url: /r\n  ref: {}\n", 0, "4: repository.ref: ", "got a mapping" },
        { "nff-yes", H "repository:\n  url: /r\n  allow-non-fast-forward: yes\n", 0,
          "4: repository.allow-non-fast-forward: ", "expected true or false, got 'yes'" },
        { "nff-quoted", H "repository:\n  url: /r\n  allow-non-fast-forward: \"true\"\n", 0,
          "4: repository.allow-non-fast-forward: ", "expected true or false, got a quoted string" },
        { "nff-one", H "repository:\n  url: /r\n  allow-non-fast-forward: 1\n", 0,
          "4: repository.allow-non-fast-forward: ", "expected true or false, got '1'" },
        { "nff-True", H "repository:\n  url: /r\n  allow-non-fast-forward: True\n", 0,
          "4: repository.allow-non-fast-forward: ", "expected true or false, got 'True'" },
        { "nff-list", H "repository:\n  url: /r\n  allow-non-fast-forward: [true]\n", 0,
          "4: repository.allow-non-fast-forward: ", "expected true or false, got a list" },
        { "allowed-signers-list", H "repository:\n  url: /r\n  allowed-signers: [/a]\n", 0,
          "4: repository.allowed-signers: ", "expected a string, got a list" },
        { "allowed-signers-relative", H "repository:\n  url: /r\n  allowed-signers: allowed_signers\n", 0,
          "4: repository.allowed-signers: ", "must be an absolute path" },

        /* images */
        { "images-scalar", H "images: /etc/k.pub\n", 0, "2: images: ", "expected a mapping, got '/etc/k.pub'" },
        { "images-keys-scalar", H "images:\n  keys: /etc/k.pub\n", 0, "3: images.keys: ",
          "expected a list of strings, got '/etc/k.pub'" },
        { "images-keys-mapping", H "images:\n  keys: {a: b}\n", 0, "3: images.keys: ",
          "expected a list of strings, got a mapping" },
        { "images-keys-nested", H "images:\n  keys: [[/k]]\n", 0, "3: images.keys[0]: ", "expected a string, got a list" },
        { "images-keys-null-element", H "images:\n  keys:\n    - /a\n    -\n", 0, "5: images.keys[1]: ",
          "expected a string, got null" },
        { "images-keys-relative", H "images:\n  keys: [k.pub]\n", 0, "3: images.keys[0]: ", "must be an absolute path" },
        { "threshold-abc", H "images:\n  threshold: abc\n", 0, "3: images.threshold: ",
          "expected a non-negative integer, got 'abc'" },
        { "threshold-negative", H "images:\n  threshold: -1\n", 0, "3: images.threshold: ",
          "must be an integer between 1 and 4294967295, got '-1'" },
        { "threshold-overflow", H "images:\n  threshold: " OVERFLOW "\n", 0, "3: images.threshold: ",
          "must be an integer between 1 and 4294967295, got '" OVERFLOW "'" },
        { "threshold-above-uint", H "images:\n  threshold: 4294967296\n", 0, "3: images.threshold: ",
          "must be an integer between 1 and 4294967295" },
        { "threshold-zero", H "images:\n  threshold: 0\n", 0, "3: images.threshold: ", "must be an integer between 1 and" },
        { "threshold-quoted", H "images:\n  threshold: \"1\"\n", 0, "3: images.threshold: ", "got a quoted string" },
        { "threshold-float", H "images:\n  threshold: 1.5\n", 0, "3: images.threshold: ", "expected a non-negative integer" },
        { "threshold-hex", H "images:\n  threshold: 0x1\n", 0, "3: images.threshold: ", "expected a non-negative integer" },
        { "threshold-plus", H "images:\n  threshold: +1\n", 0, "3: images.threshold: ", "expected a non-negative integer" },
        { "threshold-list", H "images:\n  threshold: [1]\n", 0, "3: images.threshold: ", "got a list" },
        { "threshold-above-keys", H "images:\n  keys: [/a, /b]\n  threshold: 3\n", 0, "4: images.threshold: ",
          "is 3, but only 2 keys are configured" },
        { "registry-auth-mapping", H "images:\n  registry-auth-file: {a: b}\n", 0, "3: images.registry-auth-file: ",
          "expected a string, got a mapping" },
        { "insecure-mapping", H "images:\n  insecure-registries: {a: b}\n", 0, "3: images.insecure-registries: ",
          "expected a list of strings, got a mapping" },
        { "registry-auth-relative", H "images:\n  registry-auth-file: auth.json\n", 0, "3: images.registry-auth-file: ",
          "must be an absolute path" },
        { "insecure-scalar", H "images:\n  insecure-registries: 127.0.0.1:5000\n", 0, "3: images.insecure-registries: ",
          "expected a list of strings" },
        { "insecure-empty-string", H "images:\n  insecure-registries: [\"\"]\n", 0, "3: images.insecure-registries[0]: ",
          "must not be empty" },
        { "sbom-yes", H "images:\n  require-sbom: yes\n", 0, "3: images.require-sbom: ", "expected true or false, got 'yes'" },
        { "sbom-mapping", H "images:\n  require-sbom: {}\n", 0, "3: images.require-sbom: ", "got a mapping" },
        { "request-timeout-negative", H "images:\n  request-timeout: -1\n", 0, "3: images.request-timeout: ",
          "must be an integer between 1 and 604800, got '-1'" },
        { "request-timeout-zero", H "images:\n  request-timeout: 0\n", 0, "3: images.request-timeout: ",
          "must be an integer between 1 and 604800, got '0'" },
        { "request-timeout-too-large", H "images:\n  request-timeout: 604801\n", 0, "3: images.request-timeout: ",
          "must be an integer between 1 and 604800, got '604801'" },
        { "request-timeout-overflow", H "images:\n  request-timeout: " OVERFLOW "\n", 0, "3: images.request-timeout: ",
          "must be an integer between 1 and 604800" },
        { "request-timeout-abc", H "images:\n  request-timeout: abc\n", 0, "3: images.request-timeout: ",
          "expected a non-negative integer, got 'abc'" },
        { "request-timeout-float", H "images:\n  request-timeout: 2.5\n", 0, "3: images.request-timeout: ",
          "expected a non-negative integer, got '2.5'" },
        { "request-timeout-unit", H "images:\n  request-timeout: 300s\n", 0, "3: images.request-timeout: ",
          "expected a non-negative integer, got '300s'" },
        { "request-timeout-quoted", H "images:\n  request-timeout: \"300\"\n", 0, "3: images.request-timeout: ",
          "got a quoted string" },
        { "request-timeout-list", H "images:\n  request-timeout: [300]\n", 0, "3: images.request-timeout: ", "got a list" },
        { "request-timeout-null", H "images:\n  request-timeout:\n", 0, "3: images.request-timeout: ", "got null" },
        { "request-timeout-misspelt", H "images:\n  request-timout: 30\n", 0, "3: images.request-timout: ",
          "unknown key" },
        { "request-timeout-in-repository", H "repository:\n  url: /r\n  request-timeout: 30\n", 0,
          "4: repository.request-timeout: ", "unknown key" },

        /* images.keyless */
        { "keyless-no-trusted-root", H "images:\n  keyless:\n    identities: [{subject: a@b.c, issuer: https://i}]\n", 0,
          "4: images.keyless.trusted-root: ", "required key is missing" },
        { "keyless-relative-root", H "images:\n  keyless:\n    trusted-root: root.json\n"
          "    identities: [{subject: a@b.c, issuer: https://i}]\n", 0, "4: images.keyless.trusted-root: ",
          "must be an absolute path" },
        { "keyless-no-identities", H "images:\n  keyless:\n    trusted-root: /r.json\n", 0,
          "4: images.keyless.identities: ", "required key is missing" },
        { "keyless-empty-identities", H "images:\n  keyless:\n    trusted-root: /r.json\n    identities: []\n", 0,
          "5: images.keyless.identities: ", "must list at least one identity" },
        { "keyless-no-issuer", H "images:\n  keyless:\n    trusted-root: /r.json\n    identities:\n      - subject: a@b.c\n",
          0, "6: images.keyless.identities[0]: ", "an identity has exactly one of issuer and issuer-regexp" },
        { "keyless-no-subject", H "images:\n  keyless:\n    trusted-root: /r.json\n    identities:\n"
          "      - issuer-regexp: https://.*\n", 0, "6: images.keyless.identities[0]: ",
          "an identity has exactly one of subject and subject-regexp" },
        { "keyless-subject-twice", H "images:\n  keyless:\n    trusted-root: /r.json\n    identities:\n"
          "      - subject: a@b.c\n        issuer: https://i\n        subject-regexp: .*@b[.]c\n", 0,
          "8: images.keyless.identities[0].subject-regexp: ", "an identity has exactly one of subject and subject-regexp" },
        { "keyless-issuer-twice", H "images:\n  keyless:\n    trusted-root: /r.json\n    identities:\n"
          "      - {subject: a@b.c, issuer: https://i, issuer-regexp: https://i}\n", 0,
          "6: images.keyless.identities[0].issuer-regexp: ", "an identity has exactly one of issuer and issuer-regexp" },
        { "keyless-bad-regexp", H "images:\n  keyless:\n    trusted-root: /r.json\n    identities:\n"
          "      - {subject-regexp: \"a(b\", issuer: https://i}\n", 0,
          "6: images.keyless.identities[0].subject-regexp: ", "not a POSIX extended regular expression" },
        { "keyless-bad-issuer-regexp", H "images:\n  keyless:\n    trusted-root: /r.json\n    identities:\n"
          "      - {subject: a@b.c, issuer-regexp: \"[z-a]\"}\n", 0,
          "6: images.keyless.identities[0].issuer-regexp: ", "not a POSIX extended regular expression" },
        { "keyless-identity-key", H "images:\n  keyless:\n    trusted-root: /r.json\n    identities:\n"
          "      - {identity: a@b.c, issuer: https://i}\n", 0, "6: images.keyless.identities[0].identity: ",
          "unknown key" },
        { "keyless-unknown-key", H "images:\n  keyless:\n    trusted-root: /r.json\n    identity: a@b.c\n", 0,
          "5: images.keyless.identity: ", "unknown key" },
        { "keyless-identity-unknown-key", H "images:\n  keyless:\n    trusted-root: /r.json\n    identities:\n"
          "      - {subject: a@b.c, issuer: https://i, email: x}\n", 0, "6: images.keyless.identities[0].email: ",
          "unknown key" },
        { "keyless-scalar", H "images:\n  keyless: /r.json\n", 0, "3: images.keyless: ", "expected a mapping" },
        { "keyless-threshold", H "images:\n  keys: [/a]\n  keyless:\n    trusted-root: /r.json\n"
          "    identities: [{subject: a@b.c, issuer: https://i}]\n  threshold: 3\n", 0, "7: images.threshold: ",
          "is 3, but only 2 keys and keyless identities are configured" },

        /* bundle */
        { "bundle-list", H "bundle: [/k]\n", 0, "2: bundle: ", "expected a mapping, got a list" },
        { "bundle-keys-scalar", H "bundle:\n  keys: /k.pub\n", 0, "3: bundle.keys: ", "expected a list of strings" },
        { "bundle-keys-mapping", H "bundle:\n  keys: {a: b}\n", 0, "3: bundle.keys: ", "got a mapping" },
        { "bundle-keys-element-mapping", H "bundle:\n  keys:\n    - {a: b}\n", 0, "4: bundle.keys[0]: ",
          "expected a string, got a mapping" },
        { "bundle-keys-relative", H "bundle:\n  keys: [/a.pub, b.pub]\n", 0, "3: bundle.keys[1]: ", "must be an absolute path" },

        /* health */
        { "health-scalar", H "health: 5\n", 0, "2: health: ", "expected a mapping, got '5'" },
        { "settle-abc", H "health:\n  settle: abc\n", 0, "3: health.settle: ", "expected a non-negative integer, got 'abc'" },
        { "settle-negative", H "health:\n  settle: -1\n", 0, "3: health.settle: ", "must be an integer between 0 and" },
        { "settle-overflow", H "health:\n  settle: " OVERFLOW "\n", 0, "3: health.settle: ", "must be an integer between 0 and" },
        { "settle-mapping", H "health:\n  settle: {}\n", 0, "3: health.settle: ", "got a mapping" },
        { "settle-unit", H "health:\n  settle: 5s\n", 0, "3: health.settle: ", "expected a non-negative integer, got '5s'" },
        { "timeout-negative", H "health:\n  timeout: -1\n", 0, "3: health.timeout: ", "must be an integer between 0 and" },
        { "timeout-abc", H "health:\n  timeout: abc\n", 0, "3: health.timeout: ", "expected a non-negative integer" },
        { "timeout-overflow", H "health:\n  timeout: " OVERFLOW "\n", 0, "3: health.timeout: ",
          "must be an integer between 0 and 4294967295, got '" OVERFLOW "'" },
        { "timeout-list", H "health:\n  timeout: [1]\n", 0, "3: health.timeout: ", "got a list" },
        { "timeout-null", H "health:\n  timeout:\n", 0, "3: health.timeout: ", "got null" },
        { "checks-scalar", H "health:\n  checks: web\n", 0, "3: health.checks: ", "expected a list of mappings, got 'web'" },
        { "checks-mapping", H "health:\n  checks:\n    name: web\n", 0, "4: health.checks: ",
          "expected a list of mappings, got a mapping" },
        { "checks-element-scalar", H "health:\n  checks: [web]\n", 0, "3: health.checks[0]: ", "expected a mapping, got 'web'" },

        /* A check */
        { "check-no-name", H "health:\n  checks:\n    - tcp: \"h:1\"\n", 0, "4: health.checks[0].name: ",
          "required key is missing" },
        { "check-name-list", H "health:\n  checks:\n    - name: [a]\n", 0, "4: health.checks[0].name: ",
          "expected a string, got a list" },
        { "check-name-null", H "health:\n  checks:\n    - name:\n      tcp: \"h:1\"\n", 0, "4: health.checks[0].name: ",
          "got null" },
        { "check-no-type", CHECK("# nothing"), 0, "4: health.checks[0]: ",
          "one of http, tcp, systemd-units, command is required" },
        { "check-two-types", CHECK("tcp: \"h:1\"\n      command: [/bin/true]"), 0, "6: health.checks[0]: ",
          "only one of http, tcp, systemd-units, command, got tcp (line 5) and command" },
        { "check-duplicate-key", CHECK("tcp: \"h:1\"\n      tcp: \"h:2\""), 0, "6: health.checks[0].tcp: ",
          "duplicate key (first at line 5)" },
        { "check-second-bad", H "health:\n  checks:\n    - name: a\n      tcp: \"h:1\"\n    - name: b\n", 0,
          "6: health.checks[1]: ", "one of http, tcp, systemd-units, command is required" },

        /* http */
        { "http-scalar", CHECK("http: http://127.0.0.1/"), 0, "5: health.checks[0].http: ",
          "expected a mapping, got 'http://127.0.0.1/'" },
        { "http-no-url", CHECK("http: { status: 200 }"), 0, "5: health.checks[0].http.url: ", "required key is missing" },
        { "http-url-ftp", CHECK("http: { url: \"ftp://h/\" }"), 0, "5: health.checks[0].http.url: ",
          "must be an http:// or https:// URL, got 'ftp://h/'" },
        { "http-url-no-host", CHECK("http: { url: \"http://\" }"), 0, "5: health.checks[0].http.url: ", "must be an http://" },
        { "http-url-list", CHECK("http: { url: [a] }"), 0, "5: health.checks[0].http.url: ", "expected a string, got a list" },
        { "http-status-42", CHECK("http: { url: \"http://h/\", status: 42 }"), 0, "5: health.checks[0].http.status: ",
          "must be an integer between 100 and 599, got '42'" },
        { "http-status-600", CHECK("http: { url: \"http://h/\", status: 600 }"), 0, "5: health.checks[0].http.status: ",
          "between 100 and 599" },
        { "http-status-abc", CHECK("http: { url: \"http://h/\", status: abc }"), 0, "5: health.checks[0].http.status: ",
          "expected a non-negative integer, got 'abc'" },
        { "http-status-negative", CHECK("http: { url: \"http://h/\", status: -1 }"), 0, "5: health.checks[0].http.status: ",
          "between 100 and 599, got '-1'" },
        { "http-status-overflow", CHECK("http: { url: \"http://h/\", status: " OVERFLOW " }"), 0,
          "5: health.checks[0].http.status: ", "between 100 and 599" },
        { "http-status-quoted", CHECK("http: { url: \"http://h/\", status: \"200\" }"), 0,
          "5: health.checks[0].http.status: ", "got a quoted string" },

        /* tcp */
        { "tcp-no-port", CHECK("tcp: \"127.0.0.1\""), 0, "5: health.checks[0].tcp: ", "must be HOST:PORT" },
        { "tcp-empty-port", CHECK("tcp: \"127.0.0.1:\""), 0, "5: health.checks[0].tcp: ", "must be HOST:PORT" },
        { "tcp-port-0", CHECK("tcp: \"127.0.0.1:0\""), 0, "5: health.checks[0].tcp: ", "must be HOST:PORT" },
        { "tcp-port-65536", CHECK("tcp: \"127.0.0.1:65536\""), 0, "5: health.checks[0].tcp: ", "must be HOST:PORT" },
        { "tcp-port-abc", CHECK("tcp: \"db:abc\""), 0, "5: health.checks[0].tcp: ", "must be HOST:PORT" },
        { "tcp-no-host", CHECK("tcp: \":80\""), 0, "5: health.checks[0].tcp: ", "must be HOST:PORT" },
        { "tcp-v6-bare", CHECK("tcp: \"::1:80\""), 0, "5: health.checks[0].tcp: ", "must be HOST:PORT" },
        { "tcp-v6-no-port", CHECK("tcp: \"[::1]\""), 0, "5: health.checks[0].tcp: ", "must be HOST:PORT" },
        { "tcp-v6-empty", CHECK("tcp: \"[]:80\""), 0, "5: health.checks[0].tcp: ", "must be HOST:PORT" },
        { "tcp-v6-double-bracket", CHECK("tcp: \"[[::1]:80\""), 0, "5: health.checks[0].tcp: ", "must be HOST:PORT" },
        { "tcp-list", CHECK("tcp: [\"h:1\"]"), 0, "5: health.checks[0].tcp: ", "expected a string, got a list" },
        { "tcp-mapping", CHECK("tcp: {host: h, port: 1}"), 0, "5: health.checks[0].tcp: ", "expected a string, got a mapping" },

        /* systemd-units, command */
        { "units-empty", CHECK("systemd-units: []"), 0, "5: health.checks[0].systemd-units: ", "must not be an empty list" },
        { "units-scalar", CHECK("systemd-units: nginx.service"), 0, "5: health.checks[0].systemd-units: ",
          "expected a list of strings, got 'nginx.service'" },
        { "units-nested", CHECK("systemd-units: [[a]]"), 0, "5: health.checks[0].systemd-units[0]: ",
          "expected a string, got a list" },
        { "units-mapping", CHECK("systemd-units: {a: b}"), 0, "5: health.checks[0].systemd-units: ", "got a mapping" },
        { "command-empty", CHECK("command: []"), 0, "5: health.checks[0].command: ", "must not be an empty list" },
        { "command-scalar", CHECK("command: /bin/true"), 0, "5: health.checks[0].command: ",
          "expected a list of strings, got '/bin/true'" },
        { "command-mapping", CHECK("command: {a: b}"), 0, "5: health.checks[0].command: ", "got a mapping" },
        { "command-empty-arg", CHECK("command: [/bin/echo, \"\"]"), 0, "5: health.checks[0].command[1]: ",
          "must not be empty" },
};

static void test_case(_unused_ void **state) {
        const Case *t = *state;
        _cleanup_config_ Config *c = NULL;
        Error e = {};

        assert_int_equal(config_load_buffer("case.yaml", t->yaml, t->size > 0 ? t->size : strlen(t->yaml), &c, &e),
                         -EINVAL);
        assert_null(c);
        assert_message(&e, "case.yaml", t->prefix, t->what);
}

/* Control for the cases above: the same kind of documents, valid, are accepted. */
static void test_valid_variants(_unused_ void **state) {
        static const char *const valid[] = {
                H,
                H "system: {}\nimages: {}\nbundle: {}\nhealth: {}\n",
                H "health:\n  checks: []\n",
                H "images:\n  keys: [/a, /b]\n  threshold: 2\n",
                H "images:\n  keys: []\n  threshold: 5\n",
                H "health:\n  settle: 0\n  timeout: 4294967295\n",
                H "images:\n  request-timeout: 1\n",
                H "images:\n  request-timeout: 604800\n",
                H "repository:\n  url: /srv/git/client\n",
                H "system:\n  action: \"boot\"\n",
                CHECK("tcp: \"localhost:65535\""),
                CHECK("tcp: \"db.example.org:1\""),
                CHECK("http: { url: \"HTTPS://h/\", status: 599 }"),
                CHECK("http: { url: \"http://h/\", status: 100 }"),
                "host: \"quoted\" # comment\n...\n",
                "%YAML 1.1\n---\nhost: x\n",
                "{host: x, system: {action: boot}}\n",
                H "repository:\n  rollout-file: ci/rollout.json\nrollout:\n  bucket: 0\n",
                H "rollout:\n  bucket: 99\nschedule:\n  windows: [\"Mon-Fri 02:00-05:00\", \"Sat,Sun 00:00-24:00\"]\n",
                H "schedule:\n  windows: []\nsystem:\n  on-switch-inhibited: wait\n",
        };

        for (size_t i = 0; i < ELEMENTSOF(valid); i++) {
                _cleanup_config_ Config *c = NULL;
                Error e = {};
                int r;

                r = config_load_buffer("valid.yaml", valid[i], strlen(valid[i]), &c, &e);
                if (r < 0)
                        fail_msg("valid[%zu] refused: %s", i, strna(error_message(&e)));
                assert_non_null(c);
        }
}

/* images.keyless: the trusted root and the identities, in order; the threshold counts both. */
static void test_keyless(_unused_ void **state) {
        static const char yaml[] = H "images:\n"
                                     "  keys: [/etc/k.pub]\n"
                                     "  keyless:\n"
                                     "    trusted-root: /etc/atticd-agent/trusted_root.json\n"
                                     "    identities:\n"
                                     "      - subject: https://github.com/o/r/.github/workflows/w.yml@refs/heads/main\n"
                                     "        issuer: https://token.actions.githubusercontent.com\n"
                                     "      - {subject: mitr@redhat.com, issuer: https://github.com/login/oauth}\n"
                                     "      - {subject-regexp: \"https://github[.]com/o/.*\", issuer-regexp: \"https://.*\"}\n"
                                     "  threshold: 3\n";
        _cleanup_config_ Config *c = NULL;
        Error e = {};

        assert_int_equal(config_load_buffer("k.yaml", yaml, strlen(yaml), &c, &e), 0);
        assert_true(c->images.keyless.present);
        assert_string_equal(c->images.keyless.trusted_root, "/etc/atticd-agent/trusted_root.json");
        assert_int_equal(c->images.keyless.n_identities, 3);
        assert_string_equal(c->images.keyless.identities[0].subject,
                            "https://github.com/o/r/.github/workflows/w.yml@refs/heads/main");
        assert_string_equal(c->images.keyless.identities[0].issuer, "https://token.actions.githubusercontent.com");
        assert_null(c->images.keyless.identities[0].subject_regexp);
        assert_string_equal(c->images.keyless.identities[1].subject, "mitr@redhat.com");
        assert_string_equal(c->images.keyless.identities[1].issuer, "https://github.com/login/oauth");
        assert_null(c->images.keyless.identities[2].subject);
        assert_null(c->images.keyless.identities[2].issuer);
        assert_string_equal(c->images.keyless.identities[2].subject_regexp, "https://github[.]com/o/.*");
        assert_string_equal(c->images.keyless.identities[2].issuer_regexp, "https://.*");
        assert_int_equal(c->images.threshold, 3);
        config_free(TAKE_PTR(c));

        /* Absent: nothing set. */
        assert_int_equal(config_load_buffer("k.yaml", H, strlen(H), &c, &e), 0);
        assert_false(c->images.keyless.present);
        assert_null(c->images.keyless.trusted_root);
        assert_int_equal(c->images.keyless.n_identities, 0);
}

/* images.request-timeout: stored as given, from 1 to 604800 (as repository.fetch-timeout). */
static void test_request_timeout(_unused_ void **state) {
        static const struct {
                const char *yaml;
                unsigned value;
        } valid[] = {
                { H "images:\n  request-timeout: 1\n", 1 },
                { H "images:\n  request-timeout: 45\n", 45 },
                { H "images:\n  connect-timeout: 5\n  request-timeout: 604800\n  stall-timeout: 7\n", 604800 },
                { H "images: {request-timeout: 300}\n", 300 },
        };

        for (size_t i = 0; i < ELEMENTSOF(valid); i++) {
                _cleanup_config_ Config *c = NULL;
                Error e = {};

                if (config_load_buffer("valid.yaml", valid[i].yaml, strlen(valid[i].yaml), &c, &e) < 0)
                        fail_msg("valid[%zu] refused: %s", i, strna(error_message(&e)));
                assert_int_equal(c->images.request_timeout, valid[i].value);
        }
}

static void test_binary_garbage(_unused_ void **state) {
        static const unsigned char elf[] = { 0x7f, 'E', 'L', 'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                             3, 0, 0x3e, 0, 1, 0, 0, 0, 0x10, 0x6b, 0, 0, 0, 0, 0, 0 };
        _cleanup_config_ Config *c = NULL;
        _cleanup_free_ char *path = NULL;
        Error e = {};
        int r;

        path = write_temp(elf, sizeof(elf));
        r = config_load(path, &c, &e);
        (void) unlink(path);
        assert_int_equal(r, -EINVAL);
        assert_null(c);
        assert_message(&e, path, "1: ", "invalid YAML: control characters are not allowed");
}

static void test_too_large(_unused_ void **state) {
        const size_t size = 10 * 1024 * 1024;
        _cleanup_config_ Config *c = NULL;
        _cleanup_free_ char *path = NULL, *data = NULL;
        char expected[1024];
        Error e = {};
        int r;

        /* Valid YAML all the way, so that only the size can be the reason. */
        data = malloc(size);
        assert_non_null(data);
        memset(data, '#', size);
        memcpy(data, H, strlen(H));
        data[size - 1] = '\n';
        path = write_temp(data, size);

        r = config_load(path, &c, &e);
        (void) unlink(path);
        assert_int_equal(r, -EFBIG);
        assert_null(c);
        (void) snprintf(expected, sizeof(expected), "%s: file is too large (10485760 bytes, at most 1048576)", path);
        assert_string_equal(e.message, expected);

        memset(&e, 0, sizeof(e));
        assert_int_equal(config_load_buffer("big.yaml", data, size, &c, &e), -EFBIG);
        assert_null(c);
        assert_string_equal(e.message, "big.yaml: file is too large (10485760 bytes, at most 1048576)");
}

/* The size is refused from fstat(), before anything is allocated or read: a sparse file of 1 TiB. */
static void test_too_large_sparse(_unused_ void **state) {
        _cleanup_config_ Config *c = NULL;
        _cleanup_free_ char *path = NULL;
        char expected[1024];
        Error e = {};
        int r;

        path = write_temp(H, strlen(H));
        r = truncate(path, (off_t) 1 << 40);
        if (r == 0)
                r = config_load(path, &c, &e);
        (void) unlink(path);
        assert_int_equal(r, -EFBIG);
        assert_null(c);
        (void) snprintf(expected, sizeof(expected), "%s: file is too large (1099511627776 bytes, at most 1048576)", path);
        assert_string_equal(e.message, expected);
}

/* At most 256 checks: a file of many small checks cannot make the array grow without bound. */
static void test_checks_cap(_unused_ void **state) {
        for (size_t n = 256; n <= 257; n++) {
                _cleanup_config_ Config *c = NULL;
                _cleanup_free_ char *data = NULL;
                size_t size = 0, allocated = 64 + n * 64;
                Error e = {};
                int r;

                data = malloc(allocated);
                assert_non_null(data);
                size += (size_t) snprintf(data, allocated, H "health:\n  checks:\n");
                for (size_t i = 0; i < n; i++)
                        size += (size_t) snprintf(data + size, allocated - size, "    - {name: c%zu, tcp: \"h:1\"}\n", i);
                assert_true(size < allocated);

                r = config_load_buffer("many.yaml", data, size, &c, &e);
                if (n == 256) {
                        assert_int_equal(r, 0);
                        assert_int_equal(c->health.n_checks, 256);
                        assert_string_equal(c->health.checks[255].name, "c255");
                        assert_int_equal(c->health.checks[255].line, 259);
                } else {
                        assert_int_equal(r, -EINVAL);
                        assert_message(&e, "many.yaml", "260: health.checks[256]: ", "too many entries (at most 256)");
                }
        }
}

/* Nesting is capped before libyaml's stacks grow with it. */
static void test_deep_nesting(_unused_ void **state) {
        const size_t depth = 500000;
        _cleanup_config_ Config *c = NULL;
        _cleanup_free_ char *data = NULL;
        size_t size = strlen(H "system: ");
        Error e = {};

        data = malloc(size + depth + 1);
        assert_non_null(data);
        memcpy(data, H "system: ", size);
        memset(data + size, '[', depth);
        data[size + depth] = '\n';

        assert_int_equal(config_load_buffer("deep.yaml", data, size + depth + 1, &c, &e), -EINVAL);
        assert_null(c);
        assert_string_equal(e.message, "deep.yaml:2: nested deeper than 16 levels");
}

/* The limit itself is allowed, one byte more is not. */
static void test_size_limit(_unused_ void **state) {
        const size_t size = CONFIG_FILE_MAX;
        _cleanup_free_ char *data = NULL;

        data = malloc(size + 1);
        assert_non_null(data);
        memset(data, '#', size + 1);
        memcpy(data, H, strlen(H));
        data[size - 1] = '\n';

        for (int extra = 0; extra <= 1; extra++) {
                _cleanup_config_ Config *c = NULL;
                _cleanup_free_ char *path = NULL;
                Error e = {};
                int r;

                data[size - 1 + extra] = '\n';
                path = write_temp(data, size + extra);
                r = config_load(path, &c, &e);
                (void) unlink(path);
                assert_int_equal(r, extra ? -EFBIG : 0);
                if (extra)
                        assert_non_null(strstr(e.message, "file is too large (1048577 bytes, at most 1048576)"));
                else
                        assert_string_equal(c->host, "testhost");
        }
}

static void test_not_regular(_unused_ void **state) {
        _cleanup_config_ Config *c = NULL;
        Error e = {};

        assert_int_equal(config_load(TEST_DATA_DIR "/config", &c, &e), -EISDIR);
        assert_null(c);
        assert_string_equal(e.message, TEST_DATA_DIR "/config: not a regular file");

        memset(&e, 0, sizeof(e));
        assert_int_equal(config_load("/dev/null", &c, &e), -EBADFD);
        assert_string_equal(e.message, "/dev/null: not a regular file");
}

static void test_no_error_struct(_unused_ void **state) {
        _cleanup_config_ Config *c = NULL;

        assert_int_equal(config_load_buffer("x.yaml", "host: [a]\n", 10, &c, NULL), -EINVAL);
        assert_null(c);
        assert_int_equal(config_load(DATA "does-not-exist.yaml", &c, NULL), -ENOENT);
        assert_int_equal(config_load_buffer(NULL, "hots: a\n", 8, &c, NULL), -EINVAL);
}

static void test_path_resolve(_unused_ void **state) {
        assert_int_equal(setenv(CONFIG_ENV, "/from/env.yaml", 1), 0);
        assert_string_equal(config_path_resolve("/explicit.yaml"), "/explicit.yaml");
        assert_string_equal(config_path_resolve(NULL), "/from/env.yaml");
        assert_int_equal(setenv(CONFIG_ENV, "", 1), 0);
        assert_string_equal(config_path_resolve(NULL), CONFIG_DEFAULT_PATH);
        assert_int_equal(unsetenv(CONFIG_ENV), 0);
        assert_string_equal(config_path_resolve(NULL), CONFIG_DEFAULT_PATH);
        assert_string_equal(CONFIG_DEFAULT_PATH, "/etc/atticd-agent/config.yaml");
}

static void test_action_to_string(_unused_ void **state) {
        assert_string_equal(system_action_to_string(SYSTEM_ACTION_SWITCH), "switch");
        assert_string_equal(system_action_to_string(SYSTEM_ACTION_BOOT), "boot");
        assert_null(system_action_to_string((SystemAction) 7));
        assert_null(system_action_to_string((SystemAction) -1));
}

static void test_free_null(_unused_ void **state) {
        assert_null(config_free(NULL));
}

int main(void) {
        static const struct CMUnitTest fixed[] = {
                cmocka_unit_test(test_new_defaults),
                cmocka_unit_test(test_minimal),
                cmocka_unit_test(test_full),
                cmocka_unit_test(test_contract_example),
                cmocka_unit_test(test_valid_variants),
                cmocka_unit_test(test_request_timeout),
                cmocka_unit_test(test_keyless),
                cmocka_unit_test(test_binary_garbage),
                cmocka_unit_test(test_too_large),
                cmocka_unit_test(test_too_large_sparse),
                cmocka_unit_test(test_size_limit),
                cmocka_unit_test(test_deep_nesting),
                cmocka_unit_test(test_checks_cap),
                cmocka_unit_test(test_not_regular),
                cmocka_unit_test(test_no_error_struct),
                cmocka_unit_test(test_path_resolve),
                cmocka_unit_test(test_action_to_string),
                cmocka_unit_test(test_free_null),
        };
        struct CMUnitTest tests[ELEMENTSOF(fixed) + ELEMENTSOF(file_cases) + ELEMENTSOF(cases)];
        size_t n = 0;

        for (size_t i = 0; i < ELEMENTSOF(fixed); i++)
                tests[n++] = fixed[i];
        for (size_t i = 0; i < ELEMENTSOF(file_cases); i++)
                tests[n++] = (struct CMUnitTest) {
                        .name = file_cases[i].file,
                        .test_func = test_file_case,
                        .initial_state = (void *) &file_cases[i],
                };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                tests[n++] = (struct CMUnitTest) {
                        .name = cases[i].name,
                        .test_func = test_case,
                        .initial_state = (void *) &cases[i],
                };

        return _cmocka_run_group_tests("config", tests, n, NULL, NULL);
}
