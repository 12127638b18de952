/* SPDX-License-Identifier: MIT */
#include "bundle/archive-dl.h"
#include "basic/macro.h"

ARCHIVE_DL_FUNCTIONS(DL_DEFINE)

static const DlSymbol symbols[] = {
        ARCHIVE_DL_FUNCTIONS(DL_SYMBOL)
};

static DlLibrary libarchive = DL_LIBRARY("libarchive", LIBARCHIVE_SONAME, symbols, NULL);

int archive_dl_open(Error *e) {
        return dl_open(&libarchive, e);
}
