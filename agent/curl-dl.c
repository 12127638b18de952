/* SPDX-License-Identifier: MIT */
#include <errno.h>

#include "curl-dl.h"
#include "macro.h"

CURL_DL_FUNCTIONS(DL_DEFINE)

static __typeof__(curl_global_init) *global_init;

static const DlSymbol symbols[] = {
        { "curl_global_init", (void **) &global_init },
        CURL_DL_FUNCTIONS(DL_SYMBOL)
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
