/* SPDX-License-Identifier: MIT */
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>

#include "basic/dl.h"

static int load(DlLibrary *lib) {
        const char *err;
        void *dl;
        int r;

        /* RTLD_NODELETE: never unloaded (the libraries keep global state, and their handles
         * outlive any one user); RTLD_LOCAL: their symbols do not leak into later lookups. */
        dl = dlopen(lib->soname, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
        if (!dl) {
                err = dlerror();
                (void) snprintf(lib->failure, sizeof(lib->failure), "cannot load %s: %s", lib->what, err ?: lib->soname);
                return -ENOPKG;
        }
        for (size_t i = 0; i < lib->n_symbols; i++) {
                *lib->symbols[i].where = dlsym(dl, lib->symbols[i].name);
                if (!*lib->symbols[i].where) {
                        (void) snprintf(lib->failure, sizeof(lib->failure), "cannot load %s: %s has no %s", lib->what,
                                        lib->soname, lib->symbols[i].name);
                        return -ENOPKG;
                }
        }
        if (lib->init) {
                r = lib->init();
                if (r < 0) {
                        (void) snprintf(lib->failure, sizeof(lib->failure), "cannot initialize %s (%s)", lib->what,
                                        lib->soname);
                        return r;
                }
        }
        return 1;
}

int dl_open(DlLibrary *lib, Error *e) {
        int loaded;

        if (pthread_mutex_lock(&lib->lock) != 0)
                return error_set(e, -EIO, "cannot load %s", lib->what);
        if (lib->loaded == 0)
                lib->loaded = load(lib);
        loaded = lib->loaded;
        (void) pthread_mutex_unlock(&lib->lock);
        return loaded > 0 ? 0 : error_set(e, loaded, "%s", lib->failure);
}
