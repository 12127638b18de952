/* SPDX-License-Identifier: MIT */
#include <errno.h>

#include "curl-dl.h"
#include "macro.h"

DL_DEFINE(curl_easy_init);
DL_DEFINE(curl_easy_setopt);
DL_DEFINE(curl_easy_perform);
DL_DEFINE(curl_easy_getinfo);
DL_DEFINE(curl_easy_reset);
DL_DEFINE(curl_easy_cleanup);
DL_DEFINE(curl_easy_strerror);
DL_DEFINE(curl_easy_escape);
DL_DEFINE(curl_free);
DL_DEFINE(curl_slist_append);
DL_DEFINE(curl_slist_free_all);

static __typeof__(curl_global_init) *global_init;

static const DlSymbol symbols[] = {
        { "curl_global_init", (void **) &global_init },
        DL_SYMBOL(curl_easy_init),
        DL_SYMBOL(curl_easy_setopt),
        DL_SYMBOL(curl_easy_perform),
        DL_SYMBOL(curl_easy_getinfo),
        DL_SYMBOL(curl_easy_reset),
        DL_SYMBOL(curl_easy_cleanup),
        DL_SYMBOL(curl_easy_strerror),
        DL_SYMBOL(curl_easy_escape),
        DL_SYMBOL(curl_free),
        DL_SYMBOL(curl_slist_append),
        DL_SYMBOL(curl_slist_free_all),
};

/* Once for the whole process (the image workers load it together), and never cleaned up: the
 * process ends instead. */
static int init(void) {
        return global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -EIO;
}

static DlLibrary libcurl = DL_LIBRARY("libcurl", LIBCURL_SONAME, symbols, init);

int curl_dl_open(Error *e) {
        return dl_open(&libcurl, e);
}
