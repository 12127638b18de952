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

/* fsync() and fdatasync(), wrapped: tests/meson.build links this test with -Wl,--wrap=fsync
 * and -Wl,--wrap=fdatasync, which redirects the calls made inside libagent (a static library)
 * here too. Between sync_start() and sync_stop() each call is recorded: what the descriptor is
 * (the inode and its type), and which inode sync_watch names at that moment (to see whether the
 * rename happened yet). The call numbered sync_fail_at (from 1) fails with EIO instead. */
typedef struct SyncCall {
        ino_t ino;
        mode_t type;
        ino_t watched_ino;
} SyncCall;

static SyncCall sync_calls[8];
static size_t n_sync_calls, sync_fail_at;
static const char *sync_watch;
static bool sync_recording;

int __real_fsync(int fd);
int __real_fdatasync(int fd);
int __wrap_fsync(int fd);
int __wrap_fdatasync(int fd);

static bool sync_record(int fd) {
        struct stat st, watched = {};

        if (!sync_recording)
                return true;
        assert_int_equal(fstat(fd, &st), 0);
        if (sync_watch)
                (void) stat(sync_watch, &watched);
        assert_true(n_sync_calls < ELEMENTSOF(sync_calls));
        sync_calls[n_sync_calls++] = (SyncCall) {
                .ino = st.st_ino,
                .type = st.st_mode & S_IFMT,
                .watched_ino = watched.st_ino,
        };
        if (n_sync_calls != sync_fail_at)
                return true;
        errno = EIO;
        return false;
}

int __wrap_fsync(int fd) {
        return sync_record(fd) ? __real_fsync(fd) : -1;
}

int __wrap_fdatasync(int fd) {
        return sync_record(fd) ? __real_fdatasync(fd) : -1;
}

static void sync_start(const char *watch, size_t fail_at) {
        n_sync_calls = 0;
        sync_fail_at = fail_at;
        sync_watch = watch;
        sync_recording = true;
}

static void sync_stop(void) {
        sync_recording = false;
}

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

/* Durable: the new file is synced before the rename (else a crash can leave path naming an
 * empty file), and its directory after it (else the rename itself can be lost). */
static void test_atomic_write_syncs_file_then_directory(void **state) {
        _cleanup_free_ char *dir = make_tmpdir(), *p = path_join(dir, "f");
        struct stat st, dst;
        int r;

        assert_int_equal(write_file_atomic(p, "old", 3, 0644), 0);
        sync_start(p, 0);
        r = write_file_atomic(p, "new", 3, 0644);
        sync_stop();
        assert_int_equal(r, 0);
        assert_int_equal(stat(p, &st), 0);
        assert_int_equal(stat(dir, &dst), 0);

        assert_int_equal(n_sync_calls, 2);
        /* First the file that is now at path, while path still named the old one. */
        assert_int_equal(sync_calls[0].type, S_IFREG);
        assert_int_equal(sync_calls[0].ino, st.st_ino);
        assert_true(sync_calls[0].watched_ino != st.st_ino);
        /* Then the directory, after the rename. */
        assert_int_equal(sync_calls[1].type, S_IFDIR);
        assert_int_equal(sync_calls[1].ino, dst.st_ino);
        assert_int_equal(sync_calls[1].watched_ino, st.st_ino);
        assert_int_equal(rm_rf(dir), 0);
}

/* A sync that fails is an error: of the file, and path keeps the old content (and mode); of
 * the directory, and the caller learns that the new content may not survive a crash. Neither
 * leaves a temporary file. */
static void test_atomic_write_sync_failure(void **state) {
        _cleanup_free_ char *dir = make_tmpdir(), *p = path_join(dir, "f"), *names = NULL;
        struct stat st;
        int r;

        assert_int_equal(write_file_atomic(p, "old", 3, 0600), 0);

        sync_start(p, 1);
        r = write_file_atomic(p, "new", 3, 0644);
        sync_stop();
        assert_int_equal(r, -EIO);
        assert_int_equal(n_sync_calls, 1);
        assert_content(p, "old");
        assert_int_equal(stat(p, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0600);
        names = dir_names(dir);
        assert_string_equal(names, "f");
        free(names);

        sync_start(p, 2);
        r = write_file_atomic(p, "new", 3, 0644);
        sync_stop();
        assert_int_equal(r, -EIO);
        assert_int_equal(n_sync_calls, 2);
        assert_content(p, "new"); /* renamed; only its durability is unknown */
        names = dir_names(dir);
        assert_string_equal(names, "f");
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
                cmocka_unit_test(test_atomic_write_syncs_file_then_directory),
                cmocka_unit_test(test_atomic_write_sync_failure),
                cmocka_unit_test(test_read_cap),
                cmocka_unit_test(test_mkdir_parents_and_rm_rf),
                cmocka_unit_test(test_path_join),
                cmocka_unit_test(test_readlink),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
