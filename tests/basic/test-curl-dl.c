/* SPDX-License-Identifier: MIT */
/* curl_dl_open(): libcurl loaded once, from several threads at a time (the image workers), and
 * the calls through its pointers work. Built twice: against the build's libcurl, and with
 * CURL_DL_MISSING against a path that does not exist, where every call fails the same way. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "basic/curl-dl.h"
#include "basic/macro.h"

#define THREADS 8

typedef struct Call {
        int r;
        Error e;
} Call;

static void *open_in_thread(void *userdata) {
        Call *c = userdata;

        c->r = curl_dl_open(&c->e);
        return NULL;
}

static void test_open_from_threads(void **state) {
        pthread_t t[THREADS];
        Call calls[THREADS] = {};
        Error e = {};

        (void) state;
        for (size_t i = 0; i < THREADS; i++)
                assert_int_equal(pthread_create(&t[i], NULL, open_in_thread, &calls[i]), 0);
        for (size_t i = 0; i < THREADS; i++)
                assert_int_equal(pthread_join(t[i], NULL), 0);

#ifdef CURL_DL_MISSING
        for (size_t i = 0; i < THREADS; i++) {
                assert_int_equal(calls[i].r, -ENOPKG);
                assert_non_null(strstr(calls[i].e.message, "cannot load libcurl: " LIBCURL_SONAME ": "));
        }
        /* And again, after the threads: the same answer, not another attempt. */
        assert_int_equal(curl_dl_open(&e), -ENOPKG);
        assert_string_equal(e.message, calls[0].e.message);
        assert_null(sym_curl_easy_init);
#else
        for (size_t i = 0; i < THREADS; i++)
                assert_int_equal(calls[i].r, 0);
        assert_int_equal(curl_dl_open(&e), 0);

        /* The pointers are libcurl's: a handle, an escaped string, an error text. */
        CURL *h = sym_curl_easy_init();
        assert_non_null(h);
        char *s = sym_curl_easy_escape(h, "a b/c", 0);
        assert_string_equal(s, "a%20b%2Fc");
        sym_curl_free(s);
        assert_int_equal(sym_curl_easy_setopt(h, CURLOPT_URL, "http://127.0.0.1:9/"), CURLE_OK);
        assert_string_equal(sym_curl_easy_strerror(CURLE_COULDNT_CONNECT), "Couldn't connect to server");
        struct curl_slist *l = sym_curl_slist_append(NULL, "Accept: */*");
        assert_non_null(l);
        sym_curl_slist_free_all(l);
        sym_curl_easy_cleanup(h);
#endif
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_open_from_threads),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
