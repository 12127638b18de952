/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "basic/fileio.h"
#include "basic/macro.h"

static char *make_tmpdir(void) {
        char *d = strdup("/tmp/test-fileio-XXXXXX");
        assert_non_null(d);
        assert_non_null(mkdtemp(d));
        return d;
}

static void test_atomic_write_and_read(void **state) {
        _cleanup_free_ char *dir = make_tmpdir(), *p = path_join(dir, "f"), *buf = NULL;
        size_t size;
        struct stat st;

        assert_int_equal(write_file_atomic(p, "hello", 5, 0640), 0);
        assert_int_equal(read_full_file(p, 100, &buf, &size), 0);
        assert_int_equal(size, 5);
        assert_string_equal(buf, "hello");
        assert_int_equal(stat(p, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0640);

        /* Replaced, and no temporary file left behind. */
        assert_int_equal(write_file_atomic(p, "bye", 3, 0644), 0);
        free(buf);
        buf = NULL;
        assert_int_equal(read_full_file(p, 100, &buf, &size), 0);
        assert_string_equal(buf, "bye");
        assert_int_equal(rm_rf(p), 0);
        assert_int_equal(rmdir(dir), 0); /* empty: the temporary file was renamed, not left */
}

static void test_read_cap(void **state) {
        _cleanup_free_ char *dir = make_tmpdir(), *p = path_join(dir, "f"), *buf = NULL;

        assert_int_equal(write_file_atomic(p, "0123456789", 10, 0644), 0);
        assert_int_equal(read_full_file(p, 9, &buf, NULL), -EFBIG);
        assert_null(buf);
        assert_int_equal(read_full_file(p, 10, &buf, NULL), 0);
        assert_int_equal(read_full_file(dir, 10, &buf, NULL), -EISDIR);
        assert_int_equal(read_full_file("/nonexistent/x", 10, &buf, NULL), -ENOENT);
        assert_int_equal(rm_rf(dir), 0);
}

static void test_mkdir_parents_and_rm_rf(void **state) {
        _cleanup_free_ char *dir = make_tmpdir(), *deep = path_join(dir, "a/b/c"), *f = path_join(dir, "a/b/file");
        struct stat st;

        assert_int_equal(mkdir_parents(deep, 0755), 0);
        assert_int_equal(mkdir_parents(deep, 0755), 0);
        assert_int_equal(stat(deep, &st), 0);
        assert_true(S_ISDIR(st.st_mode));
        assert_int_equal(write_file_atomic(f, "x", 1, 0644), 0);
        assert_int_equal(mkdir_parents(f, 0755), -ENOTDIR);
        assert_int_equal(rm_rf(dir), 0);
        assert_int_equal(stat(dir, &st), -1);
        assert_int_equal(rm_rf(dir), 0);
}

static void test_path_join(void **state) {
        _cleanup_free_ char *a = path_join("/var/lib/", "/x"), *b = path_join("/", "y"), *c = path_join("d", "e/f");

        assert_string_equal(a, "/var/lib/x");
        assert_string_equal(b, "/y");
        assert_string_equal(c, "d/e/f");
}

static void test_readlink(void **state) {
        _cleanup_free_ char *dir = make_tmpdir(), *l = path_join(dir, "l"), *t = NULL, *c = NULL;

        assert_int_equal(symlink("/some/where", l), 0);
        assert_int_equal(readlink_malloc(l, &t), 0);
        assert_string_equal(t, "/some/where");
        assert_int_equal(canonicalize_path(l, &c), -ENOENT);
        assert_int_equal(rm_rf(dir), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_atomic_write_and_read),
                cmocka_unit_test(test_read_cap),
                cmocka_unit_test(test_mkdir_parents_and_rm_rf),
                cmocka_unit_test(test_path_join),
                cmocka_unit_test(test_readlink),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
