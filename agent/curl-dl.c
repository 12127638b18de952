/* SPDX-License-Identifier: MIT */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>

#include "curl-dl.h"

#define CURL_DL_DEFINE(name) __typeof__(name) *sym_##name

CURL_DL_DEFINE(curl_easy_init);
CURL_DL_DEFINE(curl_easy_setopt);
CURL_DL_DEFINE(curl_easy_perform);
CURL_DL_DEFINE(curl_easy_getinfo);
CURL_DL_DEFINE(curl_easy_reset);
CURL_DL_DEFINE(curl_easy_cleanup);
CURL_DL_DEFINE(curl_easy_strerror);
CURL_DL_DEFINE(curl_easy_escape);
CURL_DL_DEFINE(curl_free);
CURL_DL_DEFINE(curl_slist_append);
CURL_DL_DEFINE(curl_slist_free_all);

/* The outcome, set once (pthread_once) and read by every call after. */
static pthread_once_t once = PTHREAD_ONCE_INIT;
static int loaded;                      /* 1: loaded; -errno: failed */
static char failure[ERROR_MESSAGE_MAX]; /* why, when it failed */

#define SYMBOL(name) { #name, (void **) &sym_##name }

static void load(void) {
        static const struct {
                const char *name;
                void **where;
        } symbols[] = {
                SYMBOL(curl_easy_init),
                SYMBOL(curl_easy_setopt),
                SYMBOL(curl_easy_perform),
                SYMBOL(curl_easy_getinfo),
                SYMBOL(curl_easy_reset),
                SYMBOL(curl_easy_cleanup),
                SYMBOL(curl_easy_strerror),
                SYMBOL(curl_easy_escape),
                SYMBOL(curl_free),
                SYMBOL(curl_slist_append),
                SYMBOL(curl_slist_free_all),
        };
        __typeof__(curl_global_init) *global_init;
        const char *err;
        void *dl;

        /* RTLD_NODELETE: never unloaded (libcurl keeps global state, and its handles outlive
         * any one client); RTLD_LOCAL: its symbols do not leak into later lookups. */
        dl = dlopen(LIBCURL_SONAME, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
        if (!dl) {
                err = dlerror();
                loaded = -ENOPKG;
                (void) snprintf(failure, sizeof(failure), "cannot load libcurl: %s", err ?: LIBCURL_SONAME);
                return;
        }
        for (size_t i = 0; i < ELEMENTSOF(symbols); i++) {
                *symbols[i].where = dlsym(dl, symbols[i].name);
                if (!*symbols[i].where) {
                        loaded = -ENOPKG;
                        (void) snprintf(failure, sizeof(failure), "cannot load libcurl: %s has no %s",
                                        LIBCURL_SONAME, symbols[i].name);
                        return;
                }
        }
        /* Once for the whole process, and never cleaned up: the process ends instead. */
        global_init = (__typeof__(curl_global_init) *) dlsym(dl, "curl_global_init");
        if (!global_init || global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
                loaded = -EIO;
                (void) snprintf(failure, sizeof(failure), "cannot initialize libcurl (%s)", LIBCURL_SONAME);
                return;
        }
        loaded = 1;
}

int curl_dl_open(Error *e) {
        if (pthread_once(&once, load) != 0)
                return error_set(e, -EIO, "cannot load libcurl");
        return loaded > 0 ? 0 : error_set(e, loaded, "%s", failure);
}
