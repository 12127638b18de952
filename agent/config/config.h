/* SPDX-License-Identifier: MIT */
#pragma once

/* The configuration file: YAML, strict, typed. Every key is parsed here (docs/configuration.md
 * lists them, with their types and defaults), so that the rest of the agent only reads fields.
 * An unknown key, a wrong type, a duplicate key or a missing required key is an error that
 * names the file, the line and the key (see config_load()). */

#include <stdbool.h>
#include <stddef.h>

#include "basic/error.h"

#define CONFIG_DEFAULT_PATH "/etc/atticd-agent/config.yaml"
#define CONFIG_ENV "ATTICD_AGENT_CONFIG"
#define CONFIG_FILE_MAX (1024 * 1024) /* a configuration file larger than this is refused */

typedef enum SystemAction {
        SYSTEM_ACTION_SWITCH,
        SYSTEM_ACTION_BOOT,
} SystemAction;

/* How a built generation is activated (activation.h). */
typedef enum ActivationMethod {
        ACTIVATION_DIRECT,        /* the profile, then switch-to-configuration, as nixos-rebuild does */
        ACTIVATION_NIXOS_REBUILD, /* nixos-rebuild ACTION --store-path PATH --no-reexec (nixos-rebuild-ng) */
} ActivationMethod;

/* The machine's boot loader, for a trial boot (system.action boot): what names a generation's
 * entry and sets the one-shot entry. */
typedef enum BootLoader {
        BOOT_LOADER_AUTO,         /* systemd-boot when it booted the machine, GRUB when its grub.cfg exists */
        BOOT_LOADER_SYSTEMD_BOOT, /* bootctl set-oneshot nixos-generation-N.conf */
        BOOT_LOADER_GRUB,         /* grub-reboot "NixOS - All configurations>NixOS - Configuration N (...)" */
        BOOT_LOADER_EXTLINUX,     /* no one-shot entry */
        BOOT_LOADER_OTHER,        /* no one-shot entry */
        _BOOT_LOADER_MAX,
} BootLoader;

/* When a switched generation becomes the boot default. */
typedef enum BootDefault {
        BOOT_DEFAULT_AFTER_HEALTH,  /* switch-to-configuration test, health checks, then the profile and boot */
        BOOT_DEFAULT_AT_ACTIVATION, /* switch-to-configuration switch (what nixos-rebuild switch does) */
} BootDefault;

/* What a switch does when the new system's switch inhibitors (system.switch.inhibitors) differ
 * from the running one's: NixOS refuses to switch into it. */
typedef enum SwitchInhibited {
        SWITCH_INHIBITED_BOOT, /* install it for the next boot and reboot (in system.reboot-window) */
        SWITCH_INHIBITED_WAIT, /* do not deploy it; wait (status says why) */
} SwitchInhibited;

typedef enum HealthCheckType {
        HEALTH_CHECK_HTTP,
        HEALTH_CHECK_TCP,
        HEALTH_CHECK_SYSTEMD_UNITS,
        HEALTH_CHECK_COMMAND,
} HealthCheckType;

typedef struct HealthCheck {
        char *name;
        unsigned line; /* where the check starts in the file, for messages */
        HealthCheckType type;

        /* http: { url: ..., status: 200, body: "substring", ca-file: /path } */
        char *http_url;
        unsigned http_status;
        char *http_body;
        char *http_ca_file;

        /* tcp: "host:port" */
        char *tcp_address;

        /* systemd-units: [a.service, ...] (NULL-terminated) */
        char **units;

        /* command: [argv0, ...] (NULL-terminated, at least one element) */
        char **command;
} HealthCheck;

/* images.keyless.identities[]: a signer whose keyless signatures are trusted (sign/sigstore.h):
 * the certificate's SAN (subject) and its OIDC issuer, each either exactly or matched whole by a
 * POSIX extended regular expression (basic/whole-match.h). Exactly one of each pair is set; a
 * regexp is known to compile. */
typedef struct KeylessIdentity {
        char *subject;
        char *subject_regexp;
        char *issuer;
        char *issuer_regexp;
} KeylessIdentity;

typedef struct Config {
        char *path; /* the file this was read from */

        char *host;      /* required */
        char *state_dir; /* default /var/lib/atticd-agent */

        struct {
                char *rebuild_command; /* default "nixos-rebuild" */
                char *nix_command;     /* default "nix" */
                char *profile;         /* default /nix/var/nix/profiles/system */
                char *current_system;  /* default /run/current-system */
                SystemAction action;   /* default switch */
                char **reboot_command; /* action boot: argv that reboots, default systemctl reboot */
                char *reboot_window;   /* "HH:MM-HH:MM" local time; NULL: any time */
                ActivationMethod activation; /* default direct */
                BootDefault boot_default;    /* default after-health */
                bool trial_boot;             /* action boot: boot it once (one-shot entry), default true */
                BootLoader boot_loader;      /* default auto */
                char **bootctl_command;      /* default [bootctl] */
                char **grub_reboot_command;  /* default [grub-reboot] */
                char *boot_directory;        /* default /boot */
                char *boot_id_file;          /* default /proc/sys/kernel/random/boot_id */
                char *activation_lock;       /* switch-to-configuration's lock, default /run/nixos/... */
                unsigned activation_timeout; /* seconds an activation may take, ours or another's */
                SwitchInhibited on_switch_inhibited; /* default boot */
                unsigned keep_generations;  /* after a successful deployment, delete older profile
                                             * generations but the newest N; 0: keep all */
        } system;

        struct {
                bool present;     /* the section exists (a bundle-only machine has none) */
                char *url;        /* required by pull; a bundle-only machine may set only allowed-signers */
                char *ref;        /* default "main" */
                bool allow_non_fast_forward;
                char *allowed_signers; /* NULL: commit signatures are not required */
                /* Credentials are never in this file, only paths to them. */
                char *http_username;      /* for https; the password or token is in: */
                char *http_password_file;
                char *ca_file;            /* trust this CA for https instead of the system's */
                char *ssh_key;            /* private key for ssh:// and scp-like URLs */
                char *ssh_known_hosts;    /* required for ssh: the host key is always checked */
                unsigned connect_timeout; /* seconds until the remote must have answered */
                unsigned stall_timeout;   /* seconds a transfer may go without progress */
                unsigned fetch_timeout;   /* seconds a whole fetch may take */
                unsigned max_fetch_mib;   /* MiB a fetch may receive */
                char *rollout_file;       /* in the repository, read at the new revision; default rollout.json */
        } repository;

        struct {
                char *bucket; /* "0".."99": this host's fixed bucket; NULL: from the machine id and revision */
        } rollout;

        struct {
                char **windows; /* activation only inside one (schedule.h); empty: any time */
        } schedule;

        struct {
                char **keys; /* NULL-terminated; empty: no check */
                struct {
                        bool present;        /* images.keyless is given */
                        char *trusted_root;  /* Sigstore trusted_root.json (sign/sigstore-root.h) */
                        KeylessIdentity *identities; /* at least one when present */
                        size_t n_identities;
                } keyless;
                unsigned threshold; /* default 1, >= 1: distinct keys plus distinct identities */
                char *registry_auth_file;
                char **insecure_registries; /* NULL-terminated */
                char **token_hosts;        /* hosts of token services that may get the credentials of
                                            * any registry, besides each registry's own host */
                bool require_sbom;
                bool require_digest;      /* every reference must carry @sha256:... */
                char *ca_file;            /* extra CA for registries over https */
                unsigned connect_timeout; /* seconds */
                unsigned stall_timeout;   /* seconds without a byte */
                unsigned request_timeout; /* seconds one request may take in all (a layer: per 64 MiB) */
                char **inspect_command;   /* argv template: prints the digest a container runs ({name});
                                           * empty: the running containers are not compared */
        } images;

        struct {
                char **keys; /* NULL-terminated */
                char **image_import_command; /* argv template, see images_import() */
                unsigned future_tolerance;   /* seconds a bundle may be signed ahead of the machine's time */
                char **nix_keys;             /* nix public keys ("name:base64"): every path of a bundle's
                                              * closure must be signed by one of them too */
        } bundle;

        struct {
                bool no_failed_units; /* also: no systemd unit may be in the failed state */
                unsigned settle;  /* seconds, default 5 */
                unsigned timeout; /* seconds, default 120 */
                unsigned interval; /* seconds between rounds once the first ones (0.1 s, doubling) failed */
                HealthCheck *checks;
                size_t n_checks;
        } health;
        struct {
                char *textfile; /* the .prom file for the node exporter's textfile collector; NULL: none */
        } metrics;
        struct {
                char **on_success; /* argv run after a successful deployment (empty: none) */
                char **on_failure; /* argv run after a failed one (rolled back or not) */
        } hooks;
} Config;

/* Returns a Config with every default set (host and repository unset). */
int config_new(Config **ret);

/* Reads and validates path. On error returns -EINVAL (bad content), -EFBIG (over
 * CONFIG_FILE_MAX) or the -errno of open/read, and fills reterr with a message of the form
 * "FILE:LINE: KEY: what is wrong" (e.g. "/etc/a.yaml:12: health.checks[1].htp: unknown key"). */
int config_load(const char *path, Config **ret, Error *reterr);

/* Same, from a buffer; `path` is only used in messages. */
int config_load_buffer(const char *path, const char *data, size_t size, Config **ret, Error *reterr);

/* Which file to read: explicit (from -c), else $ATTICD_AGENT_CONFIG, else the default. */
const char *config_path_resolve(const char *explicit_path);

Config *config_free(Config *c);
static inline void config_freep(Config **c) {
        config_free(*c);
}
#define _cleanup_config_ _cleanup_(config_freep)

const char *system_action_to_string(SystemAction a);
const char *boot_loader_to_string(BootLoader l);
