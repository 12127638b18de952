/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <dirent.h>
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

/* The names in dir, sorted and separated by spaces. */
static char *dir_names(const char *dir) {
        struct dirent **de = NULL;
        char *names = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&names, &size);
        int n = scandir(dir, &de, NULL, alphasort);

        assert_non_null(f);
        assert_true(n >= 0);
        for (int i = 0, k = 0; i < n; i++) {
                if (strcmp(de[i]->d_name, ".") != 0 && strcmp(de[i]->d_name, "..") != 0)
                        fprintf(f, "%s%s", k++ > 0 ? " " : "", de[i]->d_name);
                free(de[i]);
        }
        free(de);
        assert_int_equal(fclose(f), 0);
        return names;
}

/* Fails at the caller's line when path does not hold exactly expected. */
#define assert_content(path, expected) assert_content_at(path, expected, __FILE__, __LINE__)
static void assert_content_at(const char *path, const char *expected, const char *file, int line) {
        _cleanup_free_ char *buf = NULL;

        _assert_int_equal(read_full_file(path, 100, &buf, NULL), 0, file, line);
        _assert_string_equal(buf, expected, file, line);
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

/* The rename is what makes the write atomic: it replaces the directory entry, and the old file
 * lives on under any other name it has. A write in place (into the file that path names) would
 * change a hard link too, and a reader could see it half written. */
static void test_atomic_write_replaces_the_entry(void **state) {
        _cleanup_free_ char *dir = make_tmpdir(), *p = path_join(dir, "f"), *l = path_join(dir, "g"), *names = NULL;
        struct stat st, lst;

        assert_int_equal(write_file_atomic(p, "old content", 11, 0600), 0);
        assert_int_equal(link(p, l), 0);

        assert_int_equal(write_file_atomic(p, "new", 3, 0640), 0);
        assert_content(p, "new");
        assert_content(l, "old content");
        assert_int_equal(stat(p, &st), 0);
        assert_int_equal(stat(l, &lst), 0);
        assert_true(st.st_ino != lst.st_ino);
        assert_int_equal(st.st_nlink, 1);
        assert_int_equal(lst.st_nlink, 1);
        assert_int_equal(st.st_mode & 07777, 0640); /* the mode asked for, not the old file's */
        assert_int_equal(lst.st_mode & 07777, 0600);

        names = dir_names(dir); /* no temporary file left */
        assert_string_equal(names, "f g");
        assert_int_equal(rm_rf(dir), 0);
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
                cmocka_unit_test(test_atomic_write_replaces_the_entry),
                cmocka_unit_test(test_read_cap),
                cmocka_unit_test(test_mkdir_parents_and_rm_rf),
                cmocka_unit_test(test_path_join),
                cmocka_unit_test(test_readlink),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
