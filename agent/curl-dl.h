/* SPDX-License-Identifier: MIT */
#pragma once

/* libcurl, loaded when the first HTTP request is about to be made rather than at start. The
 * commands that make none — verify, the extraction of apply, status, config check — then do not
 * map libcurl and the two dozen libraries it brings (TLS, LDAP, Kerberos, HTTP/2, IDN, RTMP):
 * 3.4 MiB of resident memory less for every one of them. The calls go through the sym_
 * pointers below, whose types are those of curl.h (as systemd does for its optional
 * libraries). */

#include <curl/curl.h>

#include "error.h"

#define CURL_DL_SYMBOL(name) extern __typeof__(name) *sym_##name

CURL_DL_SYMBOL(curl_easy_init);
CURL_DL_SYMBOL(curl_easy_setopt);
CURL_DL_SYMBOL(curl_easy_perform);
CURL_DL_SYMBOL(curl_easy_getinfo);
CURL_DL_SYMBOL(curl_easy_reset);
CURL_DL_SYMBOL(curl_easy_cleanup);
CURL_DL_SYMBOL(curl_easy_strerror);
CURL_DL_SYMBOL(curl_easy_escape);
CURL_DL_SYMBOL(curl_free);
CURL_DL_SYMBOL(curl_slist_append);
CURL_DL_SYMBOL(curl_slist_free_all);

/* Loads libcurl (the build's `libcurl` option: its soname, or a full path in the nix package)
 * and runs curl_global_init, once per process (pthread_once: the image workers call it
 * together); every call returns what the first one found. Returns 0, or -ENOPKG (cannot be
 * loaded) or -EIO (cannot be initialized) with the loader's message in e. */
int curl_dl_open(Error *e);
