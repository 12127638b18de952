/* SPDX-License-Identifier: MIT */
#pragma once

/* libarchive, loaded when a bundle is read or written rather than at start (dl.h). The commands
 * that touch no bundle — pull, check, status, confirm, rollback — then do not map it and what
 * it brings on Debian (libxml2, ICU, libstdc++, nettle, ACL, bzip2): about 2 MiB of resident
 * memory less, and nine libraries fewer to load, on every timer tick. */

#include <archive.h>
#include <archive_entry.h>

#include "dl.h"
#include "error.h"

DL_DECLARE(archive_entry_free);
DL_DECLARE(archive_entry_new);
DL_DECLARE(archive_entry_set_filetype);
DL_DECLARE(archive_entry_set_mtime);
DL_DECLARE(archive_entry_set_pathname);
DL_DECLARE(archive_entry_set_perm);
DL_DECLARE(archive_entry_set_size);
DL_DECLARE(archive_error_string);
DL_DECLARE(archive_filter_bytes);
DL_DECLARE(archive_filter_count);
DL_DECLARE(archive_filter_name);
DL_DECLARE(archive_read_data);
DL_DECLARE(archive_read_free);
DL_DECLARE(archive_read_new);
DL_DECLARE(archive_read_next_header);
DL_DECLARE(archive_read_open_fd);
DL_DECLARE(archive_read_support_filter_gzip);
DL_DECLARE(archive_read_support_filter_xz);
DL_DECLARE(archive_read_support_filter_zstd);
DL_DECLARE(archive_read_support_format_raw);
DL_DECLARE(archive_write_add_filter_gzip);
DL_DECLARE(archive_write_add_filter_none);
DL_DECLARE(archive_write_add_filter_xz);
DL_DECLARE(archive_write_add_filter_zstd);
DL_DECLARE(archive_write_close);
DL_DECLARE(archive_write_data);
DL_DECLARE(archive_write_free);
DL_DECLARE(archive_write_header);
DL_DECLARE(archive_write_new);
DL_DECLARE(archive_write_open_filename);
DL_DECLARE(archive_write_set_bytes_in_last_block);
DL_DECLARE(archive_write_set_format_pax_restricted);

/* Loads libarchive (the build's `libarchive` option: its soname, or a full path in the nix
 * package), once per process. Returns 0, or -ENOPKG with the loader's message in e. */
int archive_dl_open(Error *e);
