/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <strings.h>

#include "basic/curl-dl.h"
#include "basic/macro.h"

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

void curl_url_origin_done(UrlOrigin *o) {
        if (!sym_curl_free)
                return;
        sym_curl_free(o->scheme);
        sym_curl_free(o->host);
        sym_curl_free(o->port);
        *o = (UrlOrigin) {};
}

int curl_url_origin(const char *url, UrlOrigin *ret) {
        CURLU *u;
        int r = -EINVAL;

        if (!sym_curl_url || !url)
                return -ENOPKG;
        u = sym_curl_url();
        if (!u)
                return -ENOMEM;
        if (sym_curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
            sym_curl_url_get(u, CURLUPART_SCHEME, &ret->scheme, 0) == CURLUE_OK &&
            sym_curl_url_get(u, CURLUPART_HOST, &ret->host, 0) == CURLUE_OK &&
            sym_curl_url_get(u, CURLUPART_PORT, &ret->port, CURLU_DEFAULT_PORT) == CURLUE_OK)
                r = 0;
        sym_curl_url_cleanup(u);
        if (r < 0)
                curl_url_origin_done(ret);
        return r;
}

bool curl_same_origin(const char *a, const char *b) {
        _cleanup_(curl_url_origin_done) UrlOrigin x = {}, y = {};

        if (curl_url_origin(a, &x) < 0 || curl_url_origin(b, &y) < 0)
                return false;
        return strcasecmp(x.scheme, y.scheme) == 0 && strcasecmp(x.host, y.host) == 0 && streq(x.port, y.port);
}
