/* SPDX-License-Identifier: MIT */
#pragma once

/* libcurl, loaded when the first HTTP request is about to be made rather than at start (dl.h).
 * The commands that make none — verify, the extraction of apply, status, config check — then do
 * not map libcurl and the two dozen libraries it brings (TLS, LDAP, Kerberos, HTTP/2, IDN,
 * RTMP): 3.4 MiB of resident memory less for every one of them. */

#include <curl/curl.h>
#include <stdbool.h>

#include "basic/dl.h"
#include "basic/error.h"

#define CURL_DL_FUNCTIONS(X) \
        X(curl_easy_init) \
        X(curl_easy_setopt) \
        X(curl_easy_perform) \
        X(curl_easy_getinfo) \
        X(curl_easy_reset) \
        X(curl_easy_cleanup) \
        X(curl_easy_strerror) \
        X(curl_easy_escape) \
        X(curl_free) \
        X(curl_slist_append) \
        X(curl_slist_free_all) \
        X(curl_url) \
        X(curl_url_set) \
        X(curl_url_get) \
        X(curl_url_cleanup) \
        X(curl_multi_init) \
        X(curl_multi_add_handle) \
        X(curl_multi_remove_handle) \
        X(curl_multi_perform) \
        X(curl_multi_poll) \
        X(curl_multi_info_read) \
        X(curl_multi_cleanup)

CURL_DL_FUNCTIONS(DL_DECLARE)

/* Loads libcurl (the build's `libcurl` option: its soname, or a full path in the nix package)
 * and runs curl_global_init, once per process (dl_open: the image workers call it
 * together); every call returns what the first one found. Returns 0, or -ENOPKG (cannot be
 * loaded) or -EIO (cannot be initialized) with the loader's message in e. */
int curl_dl_open(Error *e);

/* As curl_easy_perform(h), but on_tick runs at least every tick (and the transfer waits in
 * curl_multi_poll, never longer): a service manager's watchdog stays fed however long a server
 * takes to answer. libcurl's own progress callback may be an idle second apart. */
CURLcode curl_perform_ticking(CURL *h, unsigned tick_ms, void (*on_tick)(void));

/* The origin of a URL by libcurl's URL parser (curl_dl_open first): scheme, host and port
 * (the scheme's default when none is given). -EINVAL when it does not parse, -ENOPKG when
 * libcurl is not loaded. */
typedef struct UrlOrigin {
        char *scheme, *host, *port;
} UrlOrigin;
int curl_url_origin(const char *url, UrlOrigin *ret);
void curl_url_origin_done(UrlOrigin *o);

/* Whether two URLs have the same origin: scheme, host (case-insensitively) and port; false when
 * either does not parse. What decides where a credential may go. */
bool curl_same_origin(const char *a, const char *b);
