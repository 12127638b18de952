/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <syslog.h>
#include <systemd/sd-journal.h>
#include <unistd.h>

#include "system/event.h"
#include "basic/log.h"

#define FIELDS_MAX 16

static const struct {
        const char *name;
        const char *id;
} events[_EVENT_MAX] = {
        [EVENT_UPDATE_FOUND] = { "update-found", "01b6e71864a6440cb7b97694908fcc73" },
        [EVENT_REPOSITORY_VERIFIED] = { "repository-verified", "3ea5144283684572b5c560741d009cd9" },
        [EVENT_IMAGES_VERIFIED] = { "images-verified", "e14532f5197e48e78dc1e95e6eb3c01b" },
        [EVENT_REFUSED] = { "refused", "bedd6bd26fb849a79d1ee1a2319c9ecd" },
        [EVENT_BUILD_FAILED] = { "build-failed", "668534c89b41447894d253ce8706eee4" },
        [EVENT_ACTIVATED] = { "activated", "2593b81ea3cb41a4af3dda2acb2c7f77" },
        [EVENT_HEALTHY] = { "healthy", "84c4f7aabb7648f69107b4f0c83cd168" },
        [EVENT_UNHEALTHY] = { "unhealthy", "b070608204234c189382d8bfc69f9b49" },
        [EVENT_ROLLED_BACK] = { "rolled-back", "c4a7aad402d048928ca2f3e9e43e21ee" },
        [EVENT_ROLLBACK_FAILED] = { "rollback-failed", "911eec896f8540d6b685b31792b20274" },
        [EVENT_BUNDLE_APPLIED] = { "bundle-applied", "6e7018129d6944d5936096bd9b5dabd6" },
        [EVENT_DRIFT] = { "drift", "33939d8554354f19b8ac2a07be5ddcde" },
        [EVENT_WAITING] = { "waiting", "e4bd81563a084a74b3a12a2a36af449b" },
        [EVENT_PLAN] = { "plan", "7905687414a84724b1de508123db5291" },
        [EVENT_CONTAINER_DRIFT] = { "container-drift", "0624270588d14101ae1e8cd207229acd" },
};

const char *event_to_string(Event e) {
        return e >= 0 && e < _EVENT_MAX ? events[e].name : NULL;
}

const char *event_message_id(Event e) {
        return e >= 0 && e < _EVENT_MAX ? events[e].id : NULL;
}

/* systemd sets JOURNAL_STREAM=<dev>:<inode> when it connects stdout/stderr to the journal. */
static bool stderr_is_journal(void) {
        static int cached = -1;
        const char *s;
        unsigned long long dev, ino;
        struct stat st;

        if (cached >= 0)
                return cached;
        s = getenv("JOURNAL_STREAM");
        cached = s && sscanf(s, "%llu:%llu", &dev, &ino) == 2 && fstat(STDERR_FILENO, &st) == 0 &&
                 (unsigned long long) st.st_dev == dev && (unsigned long long) st.st_ino == ino;
        return cached;
}

/* KEY=value, or KEY="va lue" with " and \ escaped (as a shell would read it). */
static size_t append_field(char *buf, size_t size, size_t n, const char *key, const char *value) {
        if (n + 1 >= size)
                return n;
        bool quote = !*value || strpbrk(value, " \t\"'\\[]=") != NULL;

        n += (size_t) snprintf(buf + n, n < size ? size - n : 0, " %s=%s", key, quote ? "\"" : "");
        for (const char *p = value; *p && n + 3 < size; p++) {
                if (quote && (*p == '"' || *p == '\\'))
                        buf[n++] = '\\';
                buf[n++] = *p;
        }
        if (quote && n + 1 < size)
                buf[n++] = '"';
        if (n < size)
                buf[n] = 0;
        return n;
}

void log_event(Event e, int level, const EventField *fields, const char *fmt, ...) {
        char raw[2048], message[2048], line[4096], value[1024];
        va_list ap;
        size_t n;

        if (level > log_get_max_level())
                return;
        va_start(ap, fmt);
        (void) vsnprintf(raw, sizeof(raw), fmt, ap);
        va_end(ap);
        /* The journal gets no control characters either (the fields below too). */
        (void) log_escape(message, sizeof(message), raw);

        if (stderr_is_journal()) {
                char *strings[FIELDS_MAX + 4] = {};
                struct iovec iov[FIELDS_MAX + 4];
                size_t k = 0;

                if (asprintf(&strings[k++], "MESSAGE=%s", message) < 0 ||
                    asprintf(&strings[k++], "PRIORITY=%d", level) < 0 ||
                    asprintf(&strings[k++], "MESSAGE_ID=%s", events[e].id) < 0 ||
                    asprintf(&strings[k++], "SYSLOG_IDENTIFIER=atticd-agent") < 0)
                        goto fallback;
                for (const EventField *f = fields; f->key && k < ELEMENTSOF(strings); f++)
                        if (f->value &&
                            asprintf(&strings[k++], "%s=%s", f->key, log_escape(value, sizeof(value), f->value)) < 0)
                                goto fallback;
                for (size_t i = 0; i < k; i++)
                        iov[i] = (struct iovec) { .iov_base = strings[i], .iov_len = strlen(strings[i]) };
                if (sd_journal_sendv(iov, (int) k) >= 0) {
                        for (size_t i = 0; i < k; i++)
                                free(strings[i]);
                        return;
                }
        fallback:
                for (size_t i = 0; i < ELEMENTSOF(strings); i++)
                        free(strings[i]);
        }

        n = (size_t) snprintf(line, sizeof(line), "%s [MESSAGE_ID=%s", message, events[e].id);
        for (const EventField *f = fields; f->key && n < sizeof(line); f++)
                if (f->value)
                        n = append_field(line, sizeof(line), n, f->key, f->value);
        if (n < sizeof(line))
                (void) snprintf(line + n, sizeof(line) - n, "]");
        log_internal(level, 0, "%s", line);
}
