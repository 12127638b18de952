/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "system/bootloader.h"
#include "basic/fileio.h"
#include "basic/log.h"
#include "basic/macro.h"
#include "system/process.h"
#include "basic/strutil.h"

/* systemd-boot's LoaderInfo, in the vendor GUID of the Boot Loader Interface. */
#define LOADER_INFO_EFIVAR "/sys/firmware/efi/efivars/LoaderInfo-4a67b082-0a4c-41cf-b6c7-440b29bb8c4f"
#define GRUB_CFG_MAX (16 * 1024 * 1024)
#define BOOT_TOOL_TIMEOUT (60 * USEC_PER_SEC)

static char *grub_cfg_path(const Config *c) {
        return path_join(c->system.boot_directory, "grub/grub.cfg");
}

BootLoader bootloader_kind(const Config *c) {
        _cleanup_free_ char *cfg = NULL;

        if (c->system.boot_loader != BOOT_LOADER_AUTO)
                return c->system.boot_loader;
        if (access(LOADER_INFO_EFIVAR, F_OK) == 0)
                return BOOT_LOADER_SYSTEMD_BOOT;
        cfg = grub_cfg_path(c);
        if (cfg && access(cfg, F_OK) == 0)
                return BOOT_LOADER_GRUB;
        return BOOT_LOADER_OTHER;
}

bool bootloader_can_boot_once(BootLoader l) {
        return l == BOOT_LOADER_SYSTEMD_BOOT || l == BOOT_LOADER_GRUB;
}

/* The quoted title after a grub.cfg keyword (`menuentry "TITLE" ...`), or NULL. */
static char *grub_title(const char *line, const char *keyword) {
        size_t k = strlen(keyword);
        const char *start, *end;

        line += strspn(line, " \t");
        if (strncmp(line, keyword, k) != 0 || (line[k] != ' ' && line[k] != '\t'))
                return NULL;
        line += k + strspn(line + k, " \t");
        if (*line != '"' && *line != '\'')
                return NULL;
        start = line + 1;
        end = strchr(start, *line);
        if (!end)
                return NULL;
        /* What status and the journal show: no control characters. */
        for (const char *p = start; p < end; p++)
                if ((unsigned char) *p < 0x20 || *p == 0x7f)
                        return NULL;
        return strndup(start, (size_t) (end - start));
}

/* GRUB names an entry inside a submenu by its path, "SUBMENU>TITLE". NixOS's install-grub.pl
 * puts generation N into the submenu "<distro> - All configurations" as "<distro> -
 * Configuration N (DATE - VERSION)" (a specialisation: "... N (...) - NAME"); grub.cfg is
 * read, not recomputed, so that the distribution name and the date are GRUB's own. */
static int grub_entry_id(const Config *c, unsigned generation, char **ret, Error *e) {
        _cleanup_free_ char *path = grub_cfg_path(c), *data = NULL, *submenu = NULL;
        char needle[64];
        int r;

        if (!path)
                return -ENOMEM;
        r = read_full_file(path, GRUB_CFG_MAX, &data, NULL);
        if (r < 0)
                return error_set(e, r, "cannot read %s: %s", path, strerror(-r));
        (void) snprintf(needle, sizeof(needle), " - Configuration %u (", generation);

        for (char *line = data, *next; line && *line; line = next) {
                _cleanup_free_ char *title = NULL;

                next = strchr(line, '\n');
                if (next)
                        *next++ = 0;
                title = grub_title(line, "submenu");
                if (title) {
                        free(submenu);
                        submenu = TAKE_PTR(title);
                        continue;
                }
                title = grub_title(line, "menuentry");
                if (!title || !submenu || !strstr(title, needle) || strstr(title, ") - "))
                        continue;
                if (asprintf(ret, "%s>%s", submenu, title) < 0)
                        return -ENOMEM;
                return 0;
        }
        return error_set(e, -ENOENT, "%s has no entry for generation %u", path, generation);
}

static int run_tool(char **cmd, const char *name, const char *arg1, const char *arg2, Error *e) {
        _cleanup_strv_free_ char **argv = NULL;

        for (char **a = cmd; *a; a++)
                if (strv_extend(&argv, *a) < 0)
                        return -ENOMEM;
        if ((arg1 && strv_extend(&argv, arg1) < 0) || (arg2 && strv_extend(&argv, arg2) < 0))
                return -ENOMEM;
        return process_run(argv, &(ProcessOptions) { .name = name, .timeout = BOOT_TOOL_TIMEOUT }, NULL, e);
}

static int grub_reboot(const Config *c, const char *entry, Error *e) {
        _cleanup_free_ char *dir = NULL;

        if (asprintf(&dir, "--boot-directory=%s", c->system.boot_directory) < 0)
                return -ENOMEM;
        return run_tool(c->system.grub_reboot_command, "grub-reboot", dir, entry, e);
}

int bootloader_boot_once(const Config *c, BootLoader l, unsigned generation, char **ret_entry, Error *e) {
        _cleanup_free_ char *entry = NULL;
        int r;

        switch (l) {
        case BOOT_LOADER_SYSTEMD_BOOT:
                if (asprintf(&entry, "nixos-generation-%u.conf", generation) < 0)
                        return -ENOMEM;
                log_info("Booting %s once at the next boot (bootctl set-oneshot).", entry);
                r = run_tool(c->system.bootctl_command, "bootctl", "set-oneshot", entry, e);
                break;
        case BOOT_LOADER_GRUB:
                r = grub_entry_id(c, generation, &entry, e);
                if (r < 0)
                        return r;
                log_info("Booting \"%s\" once at the next boot (grub-reboot).", entry);
                r = grub_reboot(c, entry, e);
                break;
        default:
                return error_set(e, -EOPNOTSUPP, "the boot loader (%s) has no one-shot entry", boot_loader_to_string(l));
        }
        if (r < 0)
                return r;
        *ret_entry = TAKE_PTR(entry);
        return 0;
}

int bootloader_cancel_once(const Config *c, BootLoader l, unsigned default_generation, Error *e) {
        _cleanup_free_ char *entry = NULL;
        int r;

        switch (l) {
        case BOOT_LOADER_SYSTEMD_BOOT:
                log_info("Removing the one-shot boot entry (bootctl set-oneshot \"\").");
                return run_tool(c->system.bootctl_command, "bootctl", "set-oneshot", "", e);
        case BOOT_LOADER_GRUB:
                r = grub_entry_id(c, default_generation, &entry, e);
                if (r < 0)
                        return r;
                log_info("Pointing the one-shot boot entry at the default, \"%s\" (grub-reboot).", entry);
                return grub_reboot(c, entry, e);
        default:
                return 0;
        }
}
