/* SPDX-License-Identifier: MIT */
#pragma once

/* Libraries loaded when first needed rather than at start (curl-dl.h, archive-dl.h): the
 * commands that do not need one do not map it and the libraries it brings. Their functions
 * are called through sym_ pointers typed from the library's own header (as systemd does for
 * its optional libraries). */

#include <pthread.h>
#include <stddef.h>

#include "basic/error.h"
#include "basic/macro.h"

/* Each library lists its functions once, as LIB_FUNCTIONS(X) calling X(name) for each; these
 * make of that list the declarations of the sym_ pointers, their definitions, and the table
 * of symbols that dl_open() fills in. */
#define DL_DECLARE(name) extern __typeof__(name) *sym_##name;
#define DL_DEFINE(name) __typeof__(name) *sym_##name;
#define DL_SYMBOL(name) { #name, (void **) &sym_##name },

typedef struct DlSymbol {
        const char *name;
        void **where;
} DlSymbol;

typedef struct DlLibrary {
        const char *what;          /* "libcurl", for messages */
        const char *soname;        /* for the dynamic loader, or a full path */
        const DlSymbol *symbols;
        size_t n_symbols;
        int (*init)(void);         /* after loading, or NULL: 0, or -errno */
        /* the outcome of the first dl_open(), for every later one */
        pthread_mutex_t lock;
        int loaded;                /* 0: not tried; 1: loaded; -errno: failed */
        char failure[ERROR_MESSAGE_MAX];
} DlLibrary;

#define DL_LIBRARY(what_, soname_, symbols_, init_)                                                          \
        {                                                                                                    \
                .what = (what_), .soname = (soname_), .symbols = (symbols_), .n_symbols = ELEMENTSOF(symbols_), \
                .init = (init_), .lock = PTHREAD_MUTEX_INITIALIZER,                                          \
        }

/* Loads the library (never to be unloaded), fills in every symbol and runs init, once per
 * process, from any thread; every call returns what the first one found. Returns 0, or
 * -ENOPKG (the library or a symbol is missing) or init's error, with the reason in e. */
int dl_open(DlLibrary *lib, Error *e);
