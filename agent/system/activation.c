/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <systemd/sd-daemon.h>

#include "system/activation.h"
#include "system/bus.h"
#include "basic/fileio.h"
#include "basic/log.h"
#include "system/nix.h"
#include "system/process.h"
#include "basic/stop.h"

#define TRANSIENT_UNIT "atticd-agent-switch-to-configuration"
#define WAIT_STEP (200 * USEC_PER_MSEC)
#define BUS_TIME_MAX (5 * USEC_PER_SEC)
#define LOCKS_MAX (4 * 1024 * 1024)

const char *activation_verb_to_string(ActivationVerb v) {
        switch (v) {
        case ACTIVATE_SWITCH:
                return "switch";
        case ACTIVATE_BOOT:
                return "boot";
        case ACTIVATE_TEST:
                return "test";
        }
        return NULL;
}

/* The units that run an activation: nixos-rebuild-ng's (with or without a suffix) and ours. */
static const char *const activation_units[] = {
        "nixos-rebuild-switch-to-configuration*.service",
        TRANSIENT_UNIT "*.service",
        NULL,
};

/* The process that holds the lock: from /proc/locks, which lists every lock with the device and
 * inode of its file. Reading it takes no lock, so a switch-to-configuration that starts at this
 * very moment cannot find the lock busy because of us (it would give up, not wait). 0 when
 * nobody holds it (or the file does not exist), else the holder's PID (or -1 when unknown). */
static int lock_holder(const char *path) {
        _cleanup_free_ char *locks = NULL;
        struct stat st;
        int r;

        if (stat(path, &st) < 0)
                return 0;
        r = read_full_file("/proc/locks", LOCKS_MAX, &locks, NULL);
        if (r >= 0) {
                for (char *line = locks; line && *line;) {
                        char *next = strchr(line, '\n');
                        char type[16], mode[16], access[16];
                        unsigned maj, min;
                        unsigned long ino;
                        int pid;

                        if (next)
                                *next++ = 0;
                        /* "1: FLOCK  ADVISORY  WRITE 1234 00:1a:5678 0 EOF"; waiters ("1: -> FLOCK ...")
                         * do not parse, and need not: someone holds the lock they wait for. */
                        if (sscanf(line, "%*u: %15s %15s %15s %d %x:%x:%lu", type, mode, access, &pid, &maj, &min,
                                   &ino) == 7 &&
                            makedev(maj, min) == st.st_dev && (ino_t) ino == st.st_ino)
                                return pid > 0 ? pid : -1;
                        line = next;
                }
                return 0;
        }

        /* No /proc/locks: ask the lock itself, as briefly as possible. */
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return 0;
        if (flock(fd, LOCK_SH | LOCK_NB) < 0)
                return errno == EWOULDBLOCK ? -1 : 0;
        (void) flock(fd, LOCK_UN);
        return 0;
}

/* With systemd: the first active activation unit, or NULL (also when the bus cannot be asked:
 * the lock is the rule, the units only close the gap before switch-to-configuration takes it). */
static char *active_unit(void) {
        usec_t deadline = now_usec(CLOCK_MONOTONIC) + BUS_TIME_MAX;
        _cleanup_(sd_bus_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL, *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        const char *name = NULL;
        int r;

        if (sd_booted() <= 0 || system_bus_open(deadline, &bus, NULL) < 0)
                return NULL;
        r = sd_bus_message_new_method_call(bus, &call, SYSTEMD_SERVICE, SYSTEMD_PATH, SYSTEMD_MANAGER,
                                           "ListUnitsByPatterns");
        if (r >= 0)
                r = sd_bus_message_append(call, "as", 4, "active", "activating", "deactivating", "reloading");
        if (r >= 0)
                r = sd_bus_message_append_strv(call, (char **) activation_units);
        if (r >= 0)
                r = bus_call_timeout(bus, deadline);
        if (r >= 0)
                r = sd_bus_call(bus, call, 0, &error, &reply);
        if (r >= 0)
                r = sd_bus_message_enter_container(reply, 'a', "(ssssssouso)");
        if (r >= 0)
                r = sd_bus_message_read(reply, "(ssssssouso)", &name, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
                                        NULL);
        if (r <= 0 || !name) {
                if (r < 0)
                        log_debug("Cannot list the activation units: %s", error.message ?: strerror(-r));
                return NULL;
        }
        return strdup(name);
}

int activation_wait_idle(const Config *c, Error *e) {
        usec_t start = now_usec(CLOCK_MONOTONIC), deadline = start + c->system.activation_timeout * USEC_PER_SEC;
        bool waited = false;

        for (;;) {
                _cleanup_free_ char *unit = NULL;
                int holder = lock_holder(c->system.activation_lock);
                struct timespec ts;

                if (holder == 0)
                        unit = active_unit();
                if (holder == 0 && !unit) {
                        if (waited)
                                log_info("The other activation ended after %.1f s.",
                                         (double) (now_usec(CLOCK_MONOTONIC) - start) / USEC_PER_SEC);
                        return 0;
                }
                if (!waited) {
                        if (unit)
                                log_notice("An activation runs in unit %s: waiting for it to end.", unit);
                        else if (holder > 0)
                                log_notice("An activation runs (process %d holds '%s'): waiting for it to end.", holder,
                                           c->system.activation_lock);
                        else
                                log_notice("An activation holds '%s': waiting for it to end.", c->system.activation_lock);
                        waited = true;
                }
                if (stop_requested())
                        return error_set(e, -ECANCELED, "asked to stop while waiting for another activation");
                if (now_usec(CLOCK_MONOTONIC) >= deadline)
                        return error_set(e, -ETIMEDOUT, "another activation still runs after %u s (system.activation-timeout)",
                                         c->system.activation_timeout);
                ts = (struct timespec) { .tv_nsec = (long) (WAIT_STEP * 1000) };
                (void) nanosleep(&ts, NULL);
        }
}

/* -E NAME for each variable of switch-to-configuration's that is set here (nixos-rebuild-ng
 * passes the same). */
static int extend_env_flags(char ***argv) {
        static const char *const names[] = { "LOCALE_ARCHIVE", "NIXOS_INSTALL_BOOTLOADER", "NIXOS_NO_CHECK", NULL };

        for (const char *const *n = names; *n; n++)
                if (getenv(*n) && (strv_extend(argv, "-E") < 0 || strv_extend(argv, *n) < 0))
                        return -ENOMEM;
        return 0;
}

static int switch_to_configuration(const Config *c, const char *generation, ActivationVerb v, Error *e) {
        _cleanup_free_ char *script = path_join(generation, "bin/switch-to-configuration"), *description = NULL;
        _cleanup_strv_free_ char **argv = NULL;
        const char *verb = activation_verb_to_string(v);
        bool unit = sd_booted() > 0;

        if (!script || asprintf(&description, "atticd-agent: %s %s", verb, generation) < 0)
                return -ENOMEM;
        if (unit) {
                if (strv_extend(&argv, "systemd-run") < 0 || strv_extend(&argv, "--unit=" TRANSIENT_UNIT) < 0 ||
                    strv_extend(&argv, "--description") < 0 || strv_extend(&argv, description) < 0 ||
                    strv_extend(&argv, "--collect") < 0 || strv_extend(&argv, "--wait") < 0 ||
                    strv_extend(&argv, "--quiet") < 0 || strv_extend(&argv, "--no-ask-password") < 0 ||
                    strv_extend(&argv, "--service-type=exec") < 0 || extend_env_flags(&argv) < 0 ||
                    strv_extend(&argv, "--") < 0)
                        return -ENOMEM;
                /* No --pipe: were the agent killed, the activation would write into a broken
                 * pipe. Its output goes to the journal of the unit. */
                log_info("Running %s %s in unit %s.service (journalctl -u %s).", script, verb, TRANSIENT_UNIT,
                         TRANSIENT_UNIT);
        } else
                log_info("Running %s %s.", script, verb);
        if (strv_extend(&argv, script) < 0 || strv_extend(&argv, verb) < 0)
                return -ENOMEM;
        return process_run(argv,
                           &(ProcessOptions) {
                                   .name = "switch-to-configuration",
                                   .timeout = c->system.activation_timeout * USEC_PER_SEC,
                                   .keep_on_stop = true,
                           },
                           NULL, e);
}

static int nixos_rebuild_store_path(const Config *c, const char *generation, ActivationVerb v, Error *e) {
        const char *verb = activation_verb_to_string(v);
        char *argv[] = { c->system.rebuild_command, (char *) verb, (char *) "--store-path", (char *) generation,
                         (char *) "--no-reexec", NULL };

        log_info("Running %s %s --store-path %s --no-reexec.", c->system.rebuild_command, verb, generation);
        return process_run(argv,
                           &(ProcessOptions) {
                                   .name = "nixos-rebuild",
                                   .timeout = c->system.activation_timeout * USEC_PER_SEC,
                                   .keep_on_stop = true,
                           },
                           NULL, e);
}

int activation_run(const Config *c, const char *generation, ActivationVerb verb, ProfileUpdate p, Error *e) {
        _cleanup_free_ char *current = NULL;
        int r;

        r = activation_wait_idle(c, e);
        if (r < 0)
                return r;

        if (c->system.activation == ACTIVATION_NIXOS_REBUILD)
                r = nixos_rebuild_store_path(c, generation, verb, e);
        else {
                if (verb != ACTIVATE_TEST)
                        r = p == PROFILE_BACK ? profile_switch_to(c, generation, e) : profile_set(c, generation, e);
                if (r >= 0)
                        r = switch_to_configuration(c, generation, verb, e);
        }
        if (r < 0)
                return r;

        if (verb == ACTIVATE_BOOT)
                return 0;
        /* The record must name what runs: switch-to-configuration that exits 0 without making the
         * generation current did not activate it. */
        r = canonicalize_path(c->system.current_system, &current);
        if (r < 0 || !streq(current, generation))
                return error_set(e, -EPROTO, "the activation ended, but '%s' points to '%s', not to %s",
                                 c->system.current_system, r < 0 ? strerror(-r) : current, generation);
        return 0;
}

/* 0 when name is an executable file: by its path when it has a '/', else on $PATH. */
static int find_executable(const char *name) {
        _cleanup_free_ char *path = NULL;
        const char *p;

        if (strchr(name, '/'))
                return access(name, X_OK) < 0 ? -errno : 0;
        p = getenv("PATH");
        if (!p || !*p)
                return -ENOENT;
        path = strdup(p);
        if (!path)
                return -ENOMEM;
        for (char *dir = path, *next; dir; dir = next) {
                _cleanup_free_ char *full = NULL;
                struct stat st;

                next = strchr(dir, ':');
                if (next)
                        *next++ = 0;
                full = path_join(*dir ? dir : ".", name);
                if (!full)
                        return -ENOMEM;
                if (stat(full, &st) == 0 && S_ISREG(st.st_mode) && access(full, X_OK) == 0)
                        return 0;
        }
        return -ENOENT;
}

int activation_check_tools(const Config *c, Error *e) {
        struct {
                const char *key, *program, *why;
        } tools[] = {
                { "system.nix-command", c->system.nix_command, "evaluates, builds, sets the profile and rolls back" },
                { "system.rebuild-command", c->system.activation == ACTIVATION_NIXOS_REBUILD ? c->system.rebuild_command : NULL,
                  "activates (system.activation: nixos-rebuild)" },
                { "system.reboot-command",
                  c->system.action == SYSTEM_ACTION_BOOT && c->system.reboot_command ? c->system.reboot_command[0] : NULL,
                  "reboots (system.action: boot)" },
        };

        for (size_t i = 0; i < ELEMENTSOF(tools); i++) {
                int r;

                if (!tools[i].program)
                        continue;
                r = find_executable(tools[i].program);
                if (r == -ENOMEM)
                        return r;
                if (r < 0)
                        return error_set(e, r, "%s: %s: '%s' %s; it %s", c->path, tools[i].key, tools[i].program,
                                         strchr(tools[i].program, '/') ? "is not an executable file"
                                                                       : "is not an executable file on $PATH",
                                         tools[i].why);
        }
        return 0;
}
