/* SPDX-License-Identifier: MIT */
#pragma once

/* libarchive, loaded when a bundle is read or written rather than at start (dl.h). The commands
 * that touch no bundle — pull, check, status, confirm, rollback — then do not map it and what
 * it brings on Debian (libxml2, ICU, libstdc++, nettle, ACL, bzip2): about 2 MiB of resident
 * memory less, and nine libraries fewer to load, on every timer tick. */

#include <archive.h>
#include <archive_entry.h>

#include "basic/dl.h"
#include "basic/error.h"

#define ARCHIVE_DL_FUNCTIONS(X) \
        X(archive_entry_free) \
        X(archive_entry_new) \
        X(archive_entry_set_filetype) \
        X(archive_entry_set_mtime) \
        X(archive_entry_set_pathname) \
        X(archive_entry_set_perm) \
        X(archive_entry_set_size) \
        X(archive_error_string) \
        X(archive_filter_bytes) \
        X(archive_filter_count) \
        X(archive_filter_name) \
        X(archive_read_data) \
        X(archive_read_free) \
        X(archive_read_new) \
        X(archive_read_next_header) \
        X(archive_read_open_fd) \
        X(archive_read_support_filter_gzip) \
        X(archive_read_support_filter_xz) \
        X(archive_read_support_filter_zstd) \
        X(archive_read_support_format_raw) \
        X(archive_write_add_filter_gzip) \
        X(archive_write_add_filter_none) \
        X(archive_write_add_filter_xz) \
        X(archive_write_add_filter_zstd) \
        X(archive_write_close) \
        X(archive_write_data) \
        X(archive_write_free) \
        X(archive_write_header) \
        X(archive_write_new) \
        X(archive_write_open_fd) \
        X(archive_write_set_bytes_in_last_block) \
        X(archive_write_set_format_pax_restricted)

ARCHIVE_DL_FUNCTIONS(DL_DECLARE)

/* Loads libarchive (the build's `libarchive` option: its soname, or a full path in the nix
 * package), once per process. Returns 0, or -ENOPKG with the loader's message in e. */
int archive_dl_open(Error *e);
