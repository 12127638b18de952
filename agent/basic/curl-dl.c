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

CURLcode curl_perform_ticking(CURL *h, unsigned tick_ms, void (*on_tick)(void)) {
        CURLM *m = sym_curl_multi_init();
        CURLcode result = CURLE_OUT_OF_MEMORY;
        CURLMsg *msg;
        int running = 1, left;

        if (!m)
                return CURLE_OUT_OF_MEMORY;
        if (sym_curl_multi_add_handle(m, h) != CURLM_OK) {
                sym_curl_multi_cleanup(m);
                return CURLE_OUT_OF_MEMORY;
        }
        while (running > 0) {
                if (sym_curl_multi_perform(m, &running) != CURLM_OK) {
                        result = CURLE_RECV_ERROR;
                        break;
                }
                if (on_tick)
                        on_tick();
                if (running > 0 && sym_curl_multi_poll(m, NULL, 0, (int) MAX(tick_ms, 1u), NULL) != CURLM_OK) {
                        result = CURLE_RECV_ERROR;
                        break;
                }
        }
        /* The transfer's own result (its timeouts included) once it is done. */
        while ((msg = sym_curl_multi_info_read(m, &left)))
                if (msg->msg == CURLMSG_DONE && msg->easy_handle == h)
                        result = msg->data.result;
        (void) sym_curl_multi_remove_handle(m, h);
        sym_curl_multi_cleanup(m);
        return result;
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
