/* SPDX-License-Identifier: MIT */
/* The garbage-collector roots below state-dir, kept in step with the state file. */
#include <errno.h>
#include <jansson.h>
#include <unistd.h>

#include "engine/roots.h"
#include "basic/fileio.h"
#include "basic/log.h"
#include "system/nix.h"

/* One root: link -> want (NULL: no root). Unchanged links cost a readlink. */
static void sync_root(const Config *c, const char *name, const char *want) {
        _cleanup_free_ char *link = path_join(c->state_dir, name), *now = NULL;
        Error e = {};
        int r;

        if (!link)
                return;
        if (readlink_malloc(link, &now) >= 0 && streq_ptr(now, want))
                return;
        if (!want) {
                if (unlink(link) < 0 && errno != ENOENT)
                        log_warning_errno(errno, "Cannot remove the garbage-collector root '%s': %m", link);
                return;
        }
        r = nix_add_root(c, link, want, &e);
        if (r < 0)
                log_warning("Cannot make '%s' a garbage-collector root of %s: %s", link, want,
                            error_message(&e) ?: strerror(-r));
}

void roots_sync(Run *run) {
        const State *s = run->state;
        _cleanup_free_ char *legacy = path_join(run->config->state_dir, "build/result");

        sync_root(run->config, ROOT_KNOWN_GOOD, s->good_generation);
        /* Before the pending root goes: a system built ahead of its window moves from one
         * to the other. */
        sync_root(run->config, ROOT_WAITING,
                  s->waiting ? json_string_value(json_object_get(s->waiting, "system")) : NULL);
        sync_root(run->config, ROOT_PENDING, s->pending ? s->pending->generation : NULL);
        /* Where builds were rooted before: nothing needs it. */
        if (legacy)
                (void) unlink(legacy);
}
