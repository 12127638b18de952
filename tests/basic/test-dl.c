/* SPDX-License-Identifier: MIT */
/* dl_open(): a library that cannot be loaded, one without a listed symbol, and an init that
 * fails each give -errno with the reason, and later calls the same answer without another
 * attempt; a library that loads fills in its pointers. libm stands in for a real library. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "basic/dl.h"

#define TEST_FUNCTIONS(X) X(floor)

TEST_FUNCTIONS(DL_DEFINE)

static const DlSymbol good_symbols[] = { TEST_FUNCTIONS(DL_SYMBOL) };

static void *missing_pointer;
static const DlSymbol missing_symbols[] = {
        TEST_FUNCTIONS(DL_SYMBOL)
        { "no_such_function_in_libm", &missing_pointer },
};

static int init_calls;

static int init_fails(void) {
        init_calls++;
        return -EIO;
}

static int init_succeeds(void) {
        init_calls++;
        return 0;
}

static void test_missing_library(void **state) {
        DlLibrary lib = DL_LIBRARY("libnothing", "/nonexistent/libnothing.so.1", good_symbols, NULL);
        Error e = {};

        (void) state;
        assert_int_equal(dl_open(&lib, &e), -ENOPKG);
        assert_non_null(strstr(e.message, "cannot load libnothing: /nonexistent/libnothing.so.1: "));
        e = (Error) {};
        assert_int_equal(dl_open(&lib, &e), -ENOPKG);
        assert_non_null(strstr(e.message, "cannot load libnothing: "));
}

static void test_missing_symbol(void **state) {
        DlLibrary lib = DL_LIBRARY("libm", "libm.so.6", missing_symbols, init_succeeds);
        Error e = {};

        (void) state;
        init_calls = 0;
        assert_int_equal(dl_open(&lib, &e), -ENOPKG);
        assert_string_equal(e.message, "cannot load libm: libm.so.6 has no no_such_function_in_libm");
        assert_int_equal(init_calls, 0); /* not initialized when a symbol is missing */
}

static void test_init_fails_once(void **state) {
        DlLibrary lib = DL_LIBRARY("libm", "libm.so.6", good_symbols, init_fails);
        Error e = {};

        (void) state;
        init_calls = 0;
        assert_int_equal(dl_open(&lib, &e), -EIO);
        assert_string_equal(e.message, "cannot initialize libm (libm.so.6)");
        assert_int_equal(dl_open(&lib, &e), -EIO);
        assert_int_equal(init_calls, 1); /* the answer is remembered, not tried again */
}

static void test_loads(void **state) {
        DlLibrary lib = DL_LIBRARY("libm", "libm.so.6", good_symbols, init_succeeds);
        Error e = {};

        (void) state;
        init_calls = 0;
        assert_int_equal(dl_open(&lib, &e), 0);
        assert_int_equal(dl_open(&lib, &e), 0);
        assert_int_equal(init_calls, 1);
        assert_non_null(sym_floor);
        assert_true(sym_floor(2.5) == 2.0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_missing_library),
                cmocka_unit_test(test_missing_symbol),
                cmocka_unit_test(test_init_fails_once),
                cmocka_unit_test(test_loads),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
