/* SPDX-License-Identifier: MIT */
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "basic/fileio.h"
#include "basic/log.h"
#include "basic/macro.h"
#include "engine/plan.h"
#include "system/process.h"

#define PLAN_OUTPUT_MAX (1024 * 1024)
#define PLAN_LIST_MAX 1000
#define PLAN_TIMEOUT_USEC (300ULL * 1000 * 1000)

static const char *const unit_verbs[] = { "stop", "restart", "start", "reload" };

static void add_error(json_t *plan, const char *what, const char *detail) {
        char buf[1024];

        (void) snprintf(buf, sizeof(buf), "%s: %.900s", what, detail);
        (void) json_array_append_new(json_object_get(plan, "errors"), json_string(buf));
}

/* nix store diff-closures FROM TO: one line per package that changes. */
static void diff_closures(const Config *c, const char *from, const char *to, json_t *plan) {
        _cleanup_free_ char *out = NULL;
        json_t *packages = json_object_get(plan, "packages");
        char *argv[] = { c->system.nix_command, (char *) "store", (char *) "diff-closures", (char *) from, (char *) to,
                         NULL };
        Error e = {};
        int r;

        r = process_run(argv,
                        &(ProcessOptions) { .name = "nix store diff-closures", .capture = &out,
                                            .capture_max = PLAN_OUTPUT_MAX, .timeout = PLAN_TIMEOUT_USEC,
                                            .log_level = LOG_DEBUG },
                        NULL, &e);
        if (r < 0) {
                add_error(plan, "nix store diff-closures", error_message(&e) ?: strerror(-r));
                return;
        }
        for (char *line = out, *next; line && *line; line = next) {
                char clean[1024];
                size_t k = 0;

                next = strchr(line, '\n');
                if (next)
                        *next++ = 0;
                /* Without the terminal's colours (ESC [ ... m). */
                for (const char *p = line; *p && k + 1 < sizeof(clean); p++) {
                        if (p[0] == '\033' && p[1] == '[') {
                                p += 2;
                                while (*p && !(*p >= '@' && *p <= '~'))
                                        p++;
                                if (!*p)
                                        break;
                                continue;
                        }
                        clean[k++] = *p;
                }
                clean[k] = 0;
                if (k > 0 && json_array_size(packages) < PLAN_LIST_MAX)
                        (void) json_array_append_new(packages, json_string(clean));
        }
}

/* switch-to-configuration dry-activate writes "would stop the following units: a.service, b.service". */
static bool dry_activate_line(const char *line, size_t len, void *userdata) {
        json_t *units = userdata;
        static const char prefix[] = "would ", middle[] = " the following units: ";

        if (len < sizeof(prefix) - 1 || memcmp(line, prefix, sizeof(prefix) - 1) != 0)
                return false;
        for (size_t i = 0; i < ELEMENTSOF(unit_verbs); i++) {
                size_t v = strlen(unit_verbs[i]), off = sizeof(prefix) - 1;
                const char *p, *end = line + len;

                if (len < off + v + sizeof(middle) - 1 || memcmp(line + off, unit_verbs[i], v) != 0 ||
                    memcmp(line + off + v, middle, sizeof(middle) - 1) != 0)
                        continue;
                p = line + off + v + sizeof(middle) - 1;
                while (p < end) {
                        const char *comma = memchr(p, ',', (size_t) (end - p));
                        const char *stop = comma ?: end;
                        json_t *list = json_object_get(units, unit_verbs[i]);

                        while (p < stop && *p == ' ')
                                p++;
                        if (stop > p && json_array_size(list) < PLAN_LIST_MAX)
                                (void) json_array_append_new(list, json_stringn(p, (size_t) (stop - p)));
                        p = comma ? comma + 1 : end;
                }
                return false; /* logged as well (debug) */
        }
        return false;
}

static void dry_activate(const char *toplevel, json_t *plan) {
        _cleanup_free_ char *stc = path_join(toplevel, "bin/switch-to-configuration");
        json_t *units = json_object_get(plan, "units");
        Error e = {};
        int r;

        if (!stc)
                return;
        r = process_run((char *[]) { stc, (char *) "dry-activate", NULL },
                        &(ProcessOptions) { .name = "switch-to-configuration dry-activate", .timeout = PLAN_TIMEOUT_USEC,
                                            .log_level = LOG_DEBUG, .on_line = dry_activate_line, .userdata = units },
                        NULL, &e);
        if (r < 0)
                add_error(plan, "switch-to-configuration dry-activate", error_message(&e) ?: strerror(-r));
}

/* Whether <from>/name and <to>/name lead to different store paths (both must exist). */
static bool link_differs(const char *from, const char *to, const char *name) {
        _cleanup_free_ char *a = path_join(from, name), *b = path_join(to, name), *ra = NULL, *rb = NULL;

        if (!a || !b || canonicalize_path(a, &ra) < 0 || canonicalize_path(b, &rb) < 0)
                return false;
        return !streq(ra, rb);
}

/* system.switch.inhibitors: <system>/switch-inhibitors is {"name": "/nix/store/..."} (or, in
 * its first form, one store path per line: then *ret_list). NixOS compares the running
 * system's with the new one's and refuses to switch when they differ. */
static json_t *read_inhibitors(const char *system, bool *ret_list) {
        _cleanup_free_ char *path = path_join(system, "switch-inhibitors"), *data = NULL;
        json_t *j, *lines;
        size_t size;

        *ret_list = false;
        if (!path || read_full_file(path, PLAN_OUTPUT_MAX, &data, &size) < 0)
                return NULL;
        j = json_loadb(data, size, 0, NULL);
        if (json_is_object(j))
                return j;
        json_decref(j);
        *ret_list = true;
        lines = json_object();
        for (char *line = data, *next; lines && line && *line; line = next) {
                next = strchr(line, '\n');
                if (next)
                        *next++ = 0;
                if (*line)
                        (void) json_object_set_new(lines, line, json_true());
        }
        return lines;
}

static void inhibitor_changed(json_t *plan, const char *key, const char *from, const char *to) {
        char buf[2048];

        (void) snprintf(buf, sizeof(buf), "%.600s: %.600s -> %.600s", key, from, to);
        (void) json_array_append_new(json_object_get(plan, "inhibitors"), json_string(buf));
}

static void compare_inhibitors(const char *from, const char *to, json_t *plan) {
        bool list_a, list_b;
        json_t *a = read_inhibitors(from, &list_a), *b = read_inhibitors(to, &list_b), *v;
        const char *key;

        /* Nothing to compare unless both systems have inhibitors. Named ones: those both name
         * (as NixOS compares them); a list of paths: any path added or gone. */
        if (a && b) {
                json_object_foreach(b, key, v) {
                        json_t *old = json_object_get(a, key);

                        if (list_a && list_b && !old)
                                inhibitor_changed(plan, key, "(none)", "added");
                        else if (!list_a && !list_b && old && !json_equal(old, v))
                                inhibitor_changed(plan, key, json_string_value(old) ?: "?", json_string_value(v) ?: "?");
                }
                json_object_foreach(a, key, v)
                        if (list_a && list_b && !json_object_get(b, key))
                                inhibitor_changed(plan, key, "present", "gone");
                if (list_a != list_b)
                        inhibitor_changed(plan, "switch-inhibitors", "one form", "the other (cannot compare)");
        }
        json_decref(a);
        json_decref(b);
}

int plan_make(const Config *c, const char *toplevel, json_t **ret) {
        _cleanup_free_ char *from = NULL;
        json_t *plan, *reasons;

        plan = json_pack("{s:o, s:s, s:[], s:{s:[], s:[], s:[], s:[]}, s:b, s:[], s:[], s:[]}", "from", json_null(),
                         "to", toplevel, "packages", "units", "stop", "restart", "start", "reload", "reboot-required",
                         0, "reboot-reasons", "inhibitors", "errors");
        if (!plan)
                return -ENOMEM;
        if (canonicalize_path(c->system.current_system, &from) < 0) {
                add_error(plan, c->system.current_system, "no running system to compare with");
                *ret = plan;
                return 0;
        }
        (void) json_object_set_new(plan, "from", json_string(from));
        diff_closures(c, from, toplevel, plan);
        dry_activate(toplevel, plan);
        compare_inhibitors(from, toplevel, plan);

        reasons = json_object_get(plan, "reboot-reasons");
        if (link_differs(from, toplevel, "kernel"))
                (void) json_array_append_new(reasons, json_string("kernel"));
        if (link_differs(from, toplevel, "initrd"))
                (void) json_array_append_new(reasons, json_string("initrd"));
        if (json_array_size(json_object_get(plan, "inhibitors")) > 0)
                (void) json_array_append_new(reasons, json_string("switch-inhibitors"));
        (void) json_object_set_new(plan, "reboot-required", json_boolean(json_array_size(reasons) > 0));
        *ret = plan;
        return 0;
}

bool plan_switch_inhibited(json_t *plan) {
        return json_array_size(json_object_get(plan, "inhibitors")) > 0;
}

static void append(char *buf, size_t size, size_t *n, const char *s) {
        size_t len = strlen(s);

        if (*n + len + 1 > size)
                len = size - *n - 1;
        memcpy(buf + *n, s, len);
        *n += len;
        buf[*n] = 0;
}

char *plan_summary(json_t *plan) {
        char buf[2048] = "", part[512];
        size_t n = 0, i;
        json_t *v;

        (void) snprintf(part, sizeof(part), "%zu package change(s)", json_array_size(json_object_get(plan, "packages")));
        append(buf, sizeof(buf), &n, part);
        for (size_t k = 0; k < ELEMENTSOF(unit_verbs); k++) {
                json_t *list = json_object_get(json_object_get(plan, "units"), unit_verbs[k]);

                if (json_array_size(list) == 0)
                        continue;
                append(buf, sizeof(buf), &n, "; ");
                append(buf, sizeof(buf), &n, unit_verbs[k]);
                json_array_foreach(list, i, v) {
                        append(buf, sizeof(buf), &n, i == 0 ? " " : ", ");
                        append(buf, sizeof(buf), &n, json_string_value(v) ?: "?");
                }
        }
        if (json_is_true(json_object_get(plan, "reboot-required"))) {
                append(buf, sizeof(buf), &n, "; reboot required:");
                json_array_foreach(json_object_get(plan, "reboot-reasons"), i, v) {
                        append(buf, sizeof(buf), &n, i == 0 ? " " : ", ");
                        append(buf, sizeof(buf), &n, json_string_value(v) ?: "?");
                }
        }
        if (json_array_size(json_object_get(plan, "errors")) > 0)
                append(buf, sizeof(buf), &n, "; not everything could be found out (see errors)");
        return strdup(buf);
}

static void print_list(const char *title, json_t *list) {
        char shown[1024];
        size_t i;
        json_t *v;

        if (json_array_size(list) == 0)
                return;
        printf("%s:\n", title);
        json_array_foreach(list, i, v)
                printf("  %s\n", log_escape(shown, sizeof(shown), json_string_value(v) ?: "?"));
}

void plan_print(json_t *plan) {
        char a[1024], b[1024];
        json_t *units = json_object_get(plan, "units");

        printf("from:      %s\n", log_escape(a, sizeof(a), json_string_value(json_object_get(plan, "from")) ?: "-"));
        printf("to:        %s\n", log_escape(b, sizeof(b), json_string_value(json_object_get(plan, "to")) ?: "-"));
        if (json_array_size(json_object_get(plan, "packages")) == 0)
                printf("packages:  no change\n");
        print_list("packages", json_object_get(plan, "packages"));
        print_list("units to stop", json_object_get(units, "stop"));
        print_list("units to restart", json_object_get(units, "restart"));
        print_list("units to start", json_object_get(units, "start"));
        print_list("units to reload", json_object_get(units, "reload"));
        printf("reboot:    %s\n", json_is_true(json_object_get(plan, "reboot-required")) ? "required" : "not required");
        print_list("reboot because of", json_object_get(plan, "reboot-reasons"));
        print_list("switch inhibitors that changed", json_object_get(plan, "inhibitors"));
        print_list("could not find out", json_object_get(plan, "errors"));
}
