/* SPDX-License-Identifier: MIT */
/* A main() for the fuzz targets without libFuzzer (any compiler, e.g. gcc with
 * -Db_sanitize=address,undefined): runs the target once on every file named on the command
 * line and on every file in every directory named there (not recursively), as
 * `fuzz-TARGET -runs=0 DIR...` does with libFuzzer. Arguments starting with '-' are ignored,
 * so that both take the same command line. */

#include <dirent.h>
#include <sys/stat.h>

#include "basic/fileio.h"
#include "fuzz-common.h"
#include "basic/macro.h"

__attribute__((weak)) int LLVMFuzzerInitialize(int *argc, char ***argv) {
        return 0;
}

static size_t runs;

static int run_file(const char *path) {
        _cleanup_free_ char *data = NULL;
        size_t size;
        int r;

        r = read_full_file(path, 64u * 1024u * 1024u, &data, &size);
        if (r < 0) {
                fprintf(stderr, "%s: %s\n", path, strerror(-r));
                return r;
        }
        /* An exact copy, so that reads past the end are caught. */
        uint8_t *copy = malloc(MAX(size, (size_t) 1));
        if (!copy)
                abort();
        memcpy(copy, data, size);
        LLVMFuzzerTestOneInput(copy, size);
        free(copy);
        runs++;
        return 0;
}

int main(int argc, char **argv) {
        int failed = 0;

        LLVMFuzzerInitialize(&argc, &argv);
        for (int i = 1; i < argc; i++) {
                struct stat st;
                DIR *d;
                struct dirent *de;

                if (argv[i][0] == '-')
                        continue;
                if (stat(argv[i], &st) < 0) {
                        fprintf(stderr, "%s: %m\n", argv[i]);
                        failed = 1;
                        continue;
                }
                if (!S_ISDIR(st.st_mode)) {
                        failed |= run_file(argv[i]) < 0;
                        continue;
                }
                d = opendir(argv[i]);
                if (!d) {
                        fprintf(stderr, "%s: %m\n", argv[i]);
                        failed = 1;
                        continue;
                }
                while ((de = readdir(d))) {
                        _cleanup_free_ char *p = NULL;

                        if (de->d_name[0] == '.')
                                continue;
                        p = path_join(argv[i], de->d_name);
                        if (!p)
                                abort();
                        if (stat(p, &st) == 0 && S_ISREG(st.st_mode))
                                failed |= run_file(p) < 0;
                }
                closedir(d);
        }
        fprintf(stderr, "%s: %zu inputs run\n", argv[0], runs);
        return failed;
}
