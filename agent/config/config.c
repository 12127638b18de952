/* SPDX-License-Identifier: MIT */
/* The configuration file. The format is the tables below: one row per key, giving its type,
 * where it is stored, its default and what makes a value acceptable. yaml-schema.c walks
 * them; the verify hooks add the rules that span several keys. */

#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <strings.h>
#include <sys/stat.h>

#include "config/config.h"
#include "basic/fileio.h"
#include "basic/whole-match.h"
#include "config/schedule.h"
#include "config/yaml-schema.h"

#define HEALTH_CHECKS_MAX 256
#define KEYLESS_IDENTITIES_MAX 64 /* CosignTally counts keys and identities in 64 bits */

#define KEY(n, t, o, ...) { .name = (n), .type = (t), .offset = (o), __VA_ARGS__ }
#define C(field) offsetof(Config, field)
#define H(field) offsetof(HealthCheck, field)
#define I(field) offsetof(KeylessIdentity, field)
#define ABSOLUTE_PATH .check = schema_check_absolute_path
#define DURATION .min = 0, .max = UINT_MAX /* seconds */

_Static_assert(sizeof(SystemAction) == sizeof(int), "SCHEMA_ENUM stores an int");
_Static_assert(sizeof(ActivationMethod) == sizeof(int), "SCHEMA_ENUM stores an int");
_Static_assert(sizeof(BootDefault) == sizeof(int), "SCHEMA_ENUM stores an int");
_Static_assert(sizeof(BootLoader) == sizeof(int), "SCHEMA_ENUM stores an int");

static const char *const boot_loader_table[] = {
        [BOOT_LOADER_AUTO] = "auto",
        [BOOT_LOADER_SYSTEMD_BOOT] = "systemd-boot",
        [BOOT_LOADER_GRUB] = "grub",
        [BOOT_LOADER_EXTLINUX] = "extlinux",
        [BOOT_LOADER_OTHER] = "other",
        NULL,
};

const char *boot_loader_to_string(BootLoader l) {
        return (size_t) l < _BOOT_LOADER_MAX ? boot_loader_table[l] : NULL;
}

static const char *const boot_default_table[] = {
        [BOOT_DEFAULT_AFTER_HEALTH] = "after-health",
        [BOOT_DEFAULT_AT_ACTIVATION] = "at-activation",
        NULL,
};

static const char *const activation_method_table[] = {
        [ACTIVATION_DIRECT] = "direct",
        [ACTIVATION_NIXOS_REBUILD] = "nixos-rebuild",
        NULL,
};

static const char *const switch_inhibited_table[] = {
        [SWITCH_INHIBITED_BOOT] = "boot",
        [SWITCH_INHIBITED_WAIT] = "wait",
        NULL,
};

static const char *const system_action_table[] = {
        [SYSTEM_ACTION_SWITCH] = "switch",
        [SYSTEM_ACTION_BOOT] = "boot",
        NULL,
};

const char *system_action_to_string(SystemAction a) {
        return (size_t) a < ELEMENTSOF(system_action_table) - 1 ? system_action_table[a] : NULL;
}

static const char *check_http_url(const char *v) {
        if ((strncasecmp(v, "http://", 7) == 0 && v[7]) || (strncasecmp(v, "https://", 8) == 0 && v[8]))
                return NULL;
        return "must be an http:// or https:// URL";
}

/* "host:port" or "[v6-address]:port", the port 1..65535. */
static const char *check_tcp_address(const char *v) {
        static const char reason[] = "must be HOST:PORT (an IPv6 address as [ADDRESS]:PORT) with a port from 1 to 65535";
        const char *colon = strrchr(v, ':'), *port;
        unsigned long p;

        if (!colon || colon == v)
                return reason;
        if (v[0] == '[') {
                if (colon[-1] != ']' || colon - v < 3 || strpbrk(v + 1, "[") ||
                    memchr(v + 1, ']', (size_t) (colon - v - 2)))
                        return reason;
        } else if (memchr(v, ':', (size_t) (colon - v)) || memchr(v, '[', (size_t) (colon - v)) ||
                   memchr(v, ']', (size_t) (colon - v)))
                return reason;

        port = colon + 1;
        if (port[0] == 0 || strlen(port) > 5 || port[strspn(port, "0123456789")] != 0)
                return reason;
        p = strtoul(port, NULL, 10);
        if (p < 1 || p > 65535)
                return reason;
        return NULL;
}

/* "HH:MM-HH:MM", local time; may wrap past midnight. */
static const char *check_reboot_window(const char *v) {
        unsigned h1, m1, h2, m2;
        int n = 0;

        if (sscanf(v, "%2u:%2u-%2u:%2u%n", &h1, &m1, &h2, &m2, &n) != 4 || v[n] != 0 || h1 > 23 || h2 > 23 ||
            m1 > 59 || m2 > 59 || strlen(v) != 11)
                return "must be HH:MM-HH:MM (local time, e.g. 02:00-04:30)";
        return NULL;
}

/* A path inside the repository: relative, without "." or ".." components. */
static const char *check_repository_path(const char *v) {
        static const char *const bad = "must be a path inside the repository (relative, no '.' or '..' components)";
        const char *p = v;

        if (v[0] == '/' || strlen(v) > 1024)
                return bad;
        for (;;) {
                size_t n = strcspn(p, "/");

                if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
                        return bad;
                if (!p[n])
                        return NULL;
                p += n + 1;
        }
}

static const char *check_bucket(const char *v) {
        size_t n = strlen(v);

        if (n == 0 || n > 2 || v[strspn(v, "0123456789")] != 0 || (n == 2 && v[0] == '0'))
                return "must be a number from 0 to 99";
        return NULL;
}

static const char *check_window(const char *v) {
        return window_parse(v, NULL);
}

/* A nix public key as nix.conf's trusted-public-keys writes it: NAME:BASE64. */
static const char *check_nix_key(const char *v) {
        const char *colon = strchr(v, ':');

        if (!colon || colon == v || !colon[1] || strpbrk(v, " \t\n"))
                return "must be a nix public key, NAME:BASE64 (as in nix.conf's trusted-public-keys)";
        return NULL;
}

/* system: */
static const SchemaKey system_keys[] = {
        KEY("rebuild-command", SCHEMA_STRING, C(system.rebuild_command), .def = "nixos-rebuild"),
        KEY("nix-command", SCHEMA_STRING, C(system.nix_command), .def = "nix"),
        KEY("profile", SCHEMA_STRING, C(system.profile), .def = "/nix/var/nix/profiles/system", ABSOLUTE_PATH),
        KEY("current-system", SCHEMA_STRING, C(system.current_system), .def = "/run/current-system", ABSOLUTE_PATH),
        KEY("action", SCHEMA_ENUM, C(system.action), .def = "switch", .values = system_action_table),
        KEY("reboot-command", SCHEMA_STRV, C(system.reboot_command), .def = "[systemctl, reboot]",
            .flags = SCHEMA_NON_EMPTY),
        KEY("reboot-window", SCHEMA_STRING, C(system.reboot_window), .check = check_reboot_window),
        KEY("activation", SCHEMA_ENUM, C(system.activation), .def = "direct", .values = activation_method_table),
        KEY("boot-default", SCHEMA_ENUM, C(system.boot_default), .def = "after-health", .values = boot_default_table),
        KEY("trial-boot", SCHEMA_BOOL, C(system.trial_boot), .def = "true"),
        KEY("boot-loader", SCHEMA_ENUM, C(system.boot_loader), .def = "auto", .values = boot_loader_table),
        KEY("bootctl-command", SCHEMA_STRV, C(system.bootctl_command), .def = "[bootctl]", .flags = SCHEMA_NON_EMPTY),
        KEY("grub-reboot-command", SCHEMA_STRV, C(system.grub_reboot_command), .def = "[grub-reboot]",
            .flags = SCHEMA_NON_EMPTY),
        KEY("boot-directory", SCHEMA_STRING, C(system.boot_directory), .def = "/boot", ABSOLUTE_PATH),
        KEY("boot-id-file", SCHEMA_STRING, C(system.boot_id_file), .def = "/proc/sys/kernel/random/boot_id",
            ABSOLUTE_PATH),
        KEY("activation-lock", SCHEMA_STRING, C(system.activation_lock),
            .def = "/run/nixos/switch-to-configuration.lock", ABSOLUTE_PATH),
        KEY("activation-timeout", SCHEMA_UINT, C(system.activation_timeout), .def = "1800", .min = 1,
            .max = 86400),
        KEY("keep-generations", SCHEMA_UINT, C(system.keep_generations), .def = "0", .min = 0, .max = 100000),
        KEY("on-switch-inhibited", SCHEMA_ENUM, C(system.on_switch_inhibited), .def = "boot",
            .values = switch_inhibited_table),
        {},
};
static const SchemaMapping system_mapping = { .keys = system_keys };

/* repository: (optional; a bundle-only machine has none) */
static const SchemaKey repository_keys[] = {
        KEY("url", SCHEMA_STRING, C(repository.url)), /* required by pull, not by apply */
        KEY("ref", SCHEMA_STRING, C(repository.ref), .def = "main"),
        KEY("allow-non-fast-forward", SCHEMA_BOOL, C(repository.allow_non_fast_forward), .def = "false"),
        KEY("allowed-signers", SCHEMA_STRING, C(repository.allowed_signers), ABSOLUTE_PATH),
        KEY("http-username", SCHEMA_STRING, C(repository.http_username)),
        KEY("http-password-file", SCHEMA_STRING, C(repository.http_password_file), ABSOLUTE_PATH),
        KEY("ca-file", SCHEMA_STRING, C(repository.ca_file), ABSOLUTE_PATH),
        KEY("ssh-key", SCHEMA_STRING, C(repository.ssh_key), ABSOLUTE_PATH),
        KEY("ssh-known-hosts", SCHEMA_STRING, C(repository.ssh_known_hosts), ABSOLUTE_PATH),
        KEY("connect-timeout", SCHEMA_UINT, C(repository.connect_timeout), .def = "30", .min = 1, .max = 3600),
        KEY("stall-timeout", SCHEMA_UINT, C(repository.stall_timeout), .def = "120", .min = 1, .max = 86400),
        KEY("fetch-timeout", SCHEMA_UINT, C(repository.fetch_timeout), .def = "3600", .min = 1, .max = 604800),
        KEY("max-fetch-mib", SCHEMA_UINT, C(repository.max_fetch_mib), .def = "4096", .min = 1, .max = 1048576),
        KEY("rollout-file", SCHEMA_STRING, C(repository.rollout_file), .def = "rollout.json",
            .check = check_repository_path),
        {},
};

/* ssh:// and scp-like user@host:path URLs. */
static bool url_is_ssh(const char *url) {
        const char *colon, *slash;

        if (strncasecmp(url, "ssh://", 6) == 0 || strncasecmp(url, "ssh+git://", 10) == 0 ||
            strncasecmp(url, "git+ssh://", 10) == 0)
                return true;
        if (strstr(url, "://") || url[0] == '/')
                return false;
        colon = strchr(url, ':');
        slash = strchr(url, '/');
        return colon && (!slash || colon < slash);
}

static int repository_verify(SchemaWalker *w, void *base, const unsigned *lines, unsigned line) {
        const Config *c = base;

        if (c->repository.http_password_file && !c->repository.http_username)
                return schema_error(w, schema_key_line(repository_keys, lines, "http-password-file"),
                                    "http-password-file", "needs http-username too");
        if (c->repository.url && url_is_ssh(c->repository.url) && !c->repository.ssh_known_hosts)
                return schema_error(w, schema_key_line(repository_keys, lines, "url"), "url",
                                    "is an ssh URL: ssh-known-hosts is required (the host key is always checked)");
        return 0;
}
static const SchemaMapping repository_mapping = { .keys = repository_keys, .verify = repository_verify };

/* images: keyless: identities: - */
static const SchemaKey identity_keys[] = {
        KEY("subject", SCHEMA_STRING, I(subject)),
        KEY("subject-regexp", SCHEMA_STRING, I(subject_regexp)),
        KEY("issuer", SCHEMA_STRING, I(issuer)),
        KEY("issuer-regexp", SCHEMA_STRING, I(issuer_regexp)),
        {},
};

/* Exactly one of name and name-regexp, and the expression compiles. */
static int identity_verify_pair(SchemaWalker *w, const unsigned *lines, unsigned line, const char *name,
                                const char *exact, const char *expr) {
        _cleanup_free_ char *name_regexp = NULL;
        Error e = {};
        regex_t re;
        int r;

        if (asprintf(&name_regexp, "%s-regexp", name) < 0)
                return -ENOMEM;
        if (!exact == !expr)
                return schema_error(w, exact ? schema_key_line(identity_keys, lines, name_regexp) : line,
                                    exact ? name_regexp : NULL, "an identity has exactly one of %s and %s", name,
                                    name_regexp);
        if (!expr)
                return 0;
        r = whole_match_compile(expr, &re, &e);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return schema_error(w, schema_key_line(identity_keys, lines, name_regexp), name_regexp, "%s",
                                    error_message(&e));
        regfree(&re);
        return 0;
}

static int identity_verify(SchemaWalker *w, void *base, const unsigned *lines, unsigned line) {
        KeylessIdentity *i = base;
        int r;

        r = identity_verify_pair(w, lines, line, "subject", i->subject, i->subject_regexp);
        if (r < 0)
                return r;
        return identity_verify_pair(w, lines, line, "issuer", i->issuer, i->issuer_regexp);
}
static const SchemaMapping identity_mapping = { .keys = identity_keys, .verify = identity_verify };

/* images: keyless: */
static const SchemaKey keyless_keys[] = {
        KEY("trusted-root", SCHEMA_STRING, C(images.keyless.trusted_root), .flags = SCHEMA_REQUIRED, ABSOLUTE_PATH),
        KEY("identities", SCHEMA_ARRAY, C(images.keyless.identities), .flags = SCHEMA_REQUIRED,
            .count_offset = C(images.keyless.n_identities), .elem_size = sizeof(KeylessIdentity),
            .max = KEYLESS_IDENTITIES_MAX, .mapping = &identity_mapping),
        {},
};

static int keyless_verify(SchemaWalker *w, void *base, const unsigned *lines, unsigned line) {
        const Config *c = base;
        unsigned l = schema_key_line(keyless_keys, lines, "identities");

        if (c->images.keyless.n_identities == 0)
                return schema_error(w, l > 0 ? l : line, "identities",
                                    "must list at least one identity (subject and issuer)");
        return 0;
}
static const SchemaMapping keyless_mapping = { .keys = keyless_keys, .verify = keyless_verify };

/* images: */
static const SchemaKey images_keys[] = {
        KEY("keys", SCHEMA_STRV, C(images.keys), ABSOLUTE_PATH),
        KEY("keyless", SCHEMA_SECTION, C(images.keyless.present), .mapping = &keyless_mapping),
        KEY("threshold", SCHEMA_UINT, C(images.threshold), .def = "1", .min = 1, .max = UINT_MAX),
        KEY("registry-auth-file", SCHEMA_STRING, C(images.registry_auth_file), ABSOLUTE_PATH),
        KEY("insecure-registries", SCHEMA_STRV, C(images.insecure_registries)),
        KEY("token-hosts", SCHEMA_STRV, C(images.token_hosts)),
        KEY("require-sbom", SCHEMA_BOOL, C(images.require_sbom), .def = "false"),
        KEY("require-digest", SCHEMA_BOOL, C(images.require_digest), .def = "false"),
        KEY("ca-file", SCHEMA_STRING, C(images.ca_file), ABSOLUTE_PATH),
        KEY("connect-timeout", SCHEMA_UINT, C(images.connect_timeout), .def = "30", .min = 1, .max = 3600),
        KEY("stall-timeout", SCHEMA_UINT, C(images.stall_timeout), .def = "60", .min = 1, .max = 86400),
        /* A registry that drips a body just fast enough never stalls: this ends every request
         * (a layer: per started REGISTRY_TIMEOUT_BLOCK of its size, see registry.h). */
        KEY("request-timeout", SCHEMA_UINT, C(images.request_timeout), .def = "300", .min = 1, .max = 604800),
        /* What a container runs (check): {name}, {reference} and {digest} are replaced. */
        KEY("inspect-command", SCHEMA_STRV, C(images.inspect_command),
            .def = "[podman, container, inspect, --format, \"{{.State.Running}} {{.ImageDigest}}\", \"{name}\"]"),
        {},
};

static int images_verify(SchemaWalker *w, void *base, const unsigned *lines, unsigned line) {
        const Config *c = base;
        size_t n = strv_length(c->images.keys), m = c->images.keyless.n_identities;
        unsigned l = schema_key_line(images_keys, lines, "threshold");

        if (n + m > 0 && c->images.threshold > n + m)
                return schema_error(w, l > 0 ? l : line, "threshold",
                                    m > 0 ? "is %u, but only %zu keys and keyless identities are configured"
                                          : "is %u, but only %zu keys are configured",
                                    c->images.threshold, n + m);
        return 0;
}
static const SchemaMapping images_mapping = { .keys = images_keys, .verify = images_verify };

/* bundle: */
static const SchemaKey bundle_keys[] = {
        KEY("keys", SCHEMA_STRV, C(bundle.keys), ABSOLUTE_PATH),
        /* argv run per image of an applied bundle; {layout}, {reference}, {digest} and {name}
         * are replaced. */
        KEY("future-tolerance", SCHEMA_UINT, C(bundle.future_tolerance), .def = "86400", DURATION),
        KEY("nix-keys", SCHEMA_STRV, C(bundle.nix_keys), .check = check_nix_key),
        KEY("image-import-command", SCHEMA_STRV, C(bundle.image_import_command),
            .def = "[skopeo, copy, \"oci:{layout}:image\", \"containers-storage:{reference}\"]",
            .flags = SCHEMA_NON_EMPTY),
        {},
};
static const SchemaMapping bundle_mapping = { .keys = bundle_keys };

/* health: checks: - http: */
static const SchemaKey http_keys[] = {
        KEY("url", SCHEMA_STRING, H(http_url), .flags = SCHEMA_REQUIRED, .check = check_http_url),
        KEY("status", SCHEMA_UINT, H(http_status), .def = "200", .min = 100, .max = 599),
        KEY("body", SCHEMA_STRING, H(http_body)),
        KEY("ca-file", SCHEMA_STRING, H(http_ca_file), ABSOLUTE_PATH),
        {},
};
static const SchemaMapping http_mapping = { .keys = http_keys };

/* health: checks: - */
static const SchemaKey check_keys[] = {
        KEY("name", SCHEMA_STRING, H(name), .flags = SCHEMA_REQUIRED),
        KEY("http", SCHEMA_SECTION, SCHEMA_NO_FIELD, .mapping = &http_mapping),
        KEY("tcp", SCHEMA_STRING, H(tcp_address), .check = check_tcp_address),
        KEY("systemd-units", SCHEMA_STRV, H(units), .flags = SCHEMA_NON_EMPTY),
        KEY("command", SCHEMA_STRV, H(command), .flags = SCHEMA_NON_EMPTY),
        {},
};

/* The keys of check_keys of which a check has exactly one. */
static const struct {
        const char *key;
        HealthCheckType type;
} check_types[] = {
        { "http", HEALTH_CHECK_HTTP },
        { "tcp", HEALTH_CHECK_TCP },
        { "systemd-units", HEALTH_CHECK_SYSTEMD_UNITS },
        { "command", HEALTH_CHECK_COMMAND },
};
#define CHECK_TYPES "http, tcp, systemd-units, command"

static int check_verify(SchemaWalker *w, void *base, const unsigned *lines, unsigned line) {
        HealthCheck *c = base;
        const char *first = NULL;
        unsigned first_line = 0;

        c->line = line;
        for (size_t i = 0; i < ELEMENTSOF(check_types); i++) {
                unsigned l = schema_key_line(check_keys, lines, check_types[i].key);

                if (l == 0)
                        continue;
                if (first)
                        return schema_error(w, l, NULL, "a check has only one of " CHECK_TYPES ", got %s (line %u) and %s",
                                            first, first_line, check_types[i].key);
                first = check_types[i].key;
                first_line = l;
                c->type = check_types[i].type;
        }
        if (!first)
                return schema_error(w, line, NULL, "one of " CHECK_TYPES " is required");
        return 0;
}
static const SchemaMapping check_mapping = { .keys = check_keys, .verify = check_verify };

/* health: */
static const SchemaKey health_keys[] = {
        KEY("no-failed-units", SCHEMA_BOOL, C(health.no_failed_units), .def = "false"),
        KEY("settle", SCHEMA_UINT, C(health.settle), .def = "5", DURATION),
        KEY("timeout", SCHEMA_UINT, C(health.timeout), .def = "120", DURATION),
        KEY("interval", SCHEMA_UINT, C(health.interval), .def = "2", .min = 1, .max = 3600),
        KEY("checks", SCHEMA_ARRAY, C(health.checks), .count_offset = C(health.n_checks),
            .elem_size = sizeof(HealthCheck), .max = HEALTH_CHECKS_MAX, .mapping = &check_mapping),
        {},
};

static int health_verify(SchemaWalker *w, void *base, _unused_ const unsigned *lines, _unused_ unsigned line) {
        const Config *c = base;

        for (size_t i = 1; i < c->health.n_checks; i++)
                for (size_t j = 0; j < i; j++)
                        if (streq(c->health.checks[i].name, c->health.checks[j].name)) {
                                char key[64];

                                (void) snprintf(key, sizeof(key), "checks[%zu].name", i);
                                return schema_error(w, c->health.checks[i].line, key,
                                                    "duplicate check name (checks[%zu] at line %u has it too)", j,
                                                    c->health.checks[j].line);
                        }
        return 0;
}
static const SchemaMapping health_mapping = { .keys = health_keys, .verify = health_verify };

/* hooks: */
static const SchemaKey hooks_keys[] = {
        KEY("on-success", SCHEMA_STRV, C(hooks.on_success)),
        KEY("on-failure", SCHEMA_STRV, C(hooks.on_failure)),
        {},
};
static const SchemaMapping hooks_mapping = { .keys = hooks_keys };

/* metrics: */
static const char *check_prom_path(const char *v) {
        size_t n = strlen(v);
        return schema_check_absolute_path(v) ?:
               (n > 5 && streq(v + n - 5, ".prom") ? NULL : "must end in .prom (the textfile collector reads only those)");
}
static const SchemaKey metrics_keys[] = {
        KEY("textfile", SCHEMA_STRING, C(metrics.textfile), .check = check_prom_path),
        {},
};
static const SchemaMapping metrics_mapping = { .keys = metrics_keys };

/* rollout: */
static const SchemaKey rollout_keys[] = {
        KEY("bucket", SCHEMA_STRING, C(rollout.bucket), .check = check_bucket),
        {},
};
static const SchemaMapping rollout_mapping = { .keys = rollout_keys };

/* schedule: */
static const SchemaKey schedule_keys[] = {
        KEY("windows", SCHEMA_STRV, C(schedule.windows), .check = check_window),
        {},
};
static const SchemaMapping schedule_mapping = { .keys = schedule_keys };

/* The top level. */
static const SchemaKey config_keys[] = {
        KEY("host", SCHEMA_STRING, C(host), .flags = SCHEMA_REQUIRED),
        KEY("state-dir", SCHEMA_STRING, C(state_dir), .def = "/var/lib/atticd-agent", ABSOLUTE_PATH),
        KEY("system", SCHEMA_SECTION, SCHEMA_NO_FIELD, .mapping = &system_mapping),
        KEY("repository", SCHEMA_SECTION, C(repository.present), .mapping = &repository_mapping),
        KEY("images", SCHEMA_SECTION, SCHEMA_NO_FIELD, .mapping = &images_mapping),
        KEY("bundle", SCHEMA_SECTION, SCHEMA_NO_FIELD, .mapping = &bundle_mapping),
        KEY("health", SCHEMA_SECTION, SCHEMA_NO_FIELD, .mapping = &health_mapping),
        KEY("hooks", SCHEMA_SECTION, SCHEMA_NO_FIELD, .mapping = &hooks_mapping),
        KEY("metrics", SCHEMA_SECTION, SCHEMA_NO_FIELD, .mapping = &metrics_mapping),
        KEY("rollout", SCHEMA_SECTION, SCHEMA_NO_FIELD, .mapping = &rollout_mapping),
        KEY("schedule", SCHEMA_SECTION, SCHEMA_NO_FIELD, .mapping = &schedule_mapping),
        {},
};
static const SchemaMapping config_mapping = { .keys = config_keys };

int config_new(Config **ret) {
        _cleanup_config_ Config *c = NULL;
        int r;

        c = calloc(1, sizeof(Config));
        if (!c)
                return -ENOMEM;
        r = schema_apply_defaults(&config_mapping, c);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(c);
        return 0;
}

Config *config_free(Config *c) {
        if (!c)
                return NULL;
        schema_free_fields(&config_mapping, c);
        free(c->path);
        free(c);
        return NULL;
}

int config_load_buffer(const char *path, const char *data, size_t size, Config **ret, Error *reterr) {
        _cleanup_config_ Config *c = NULL;
        int r;

        path = path ? path : "<configuration>";
        if (size > CONFIG_FILE_MAX)
                return error_set(reterr, -EFBIG, "%s: file is too large (%zu bytes, at most %d)", path, size,
                                 CONFIG_FILE_MAX);

        r = config_new(&c);
        if (r < 0)
                return error_set(reterr, r, "%s: cannot set up the defaults", path);
        c->path = strdup(path);
        if (!c->path)
                return error_set(reterr, -ENOMEM, "%s: out of memory", path);

        r = schema_parse(path, data, size, &config_mapping, c, reterr);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(c);
        return 0;
}

int config_load(const char *path, Config **ret, Error *reterr) {
        _cleanup_free_ char *buf = NULL;
        struct stat st;
        size_t size;
        int r;

        r = read_full_file(path, CONFIG_FILE_MAX, &buf, &size);
        if (r == -EFBIG) {
                if (stat(path, &st) < 0 || st.st_size <= CONFIG_FILE_MAX)
                        return error_set(reterr, r, "%s: file is too large (more than %d bytes)", path,
                                         CONFIG_FILE_MAX);
                return error_set(reterr, r, "%s: file is too large (%jd bytes, at most %d)", path,
                                 (intmax_t) st.st_size, CONFIG_FILE_MAX);
        }
        if (r == -EISDIR || r == -EBADFD)
                return error_set(reterr, r, "%s: not a regular file", path);
        if (r == -ENOENT || r == -EACCES)
                return error_set(reterr, r, "%s: cannot open: %s", path, strerror(-r));
        if (r < 0)
                return error_set(reterr, r, "%s: cannot read: %s", path, strerror(-r));

        return config_load_buffer(path, buf, size, ret, reterr);
}

const char *config_path_resolve(const char *explicit_path) {
        const char *e;

        if (explicit_path)
                return explicit_path;
        e = getenv(CONFIG_ENV);
        if (e && e[0])
                return e;
        return CONFIG_DEFAULT_PATH;
}
