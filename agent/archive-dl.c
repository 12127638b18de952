/* SPDX-License-Identifier: MIT */
#include "archive-dl.h"
#include "macro.h"

DL_DEFINE(archive_entry_free);
DL_DEFINE(archive_entry_new);
DL_DEFINE(archive_entry_set_filetype);
DL_DEFINE(archive_entry_set_mtime);
DL_DEFINE(archive_entry_set_pathname);
DL_DEFINE(archive_entry_set_perm);
DL_DEFINE(archive_entry_set_size);
DL_DEFINE(archive_error_string);
DL_DEFINE(archive_filter_bytes);
DL_DEFINE(archive_filter_count);
DL_DEFINE(archive_filter_name);
DL_DEFINE(archive_read_data);
DL_DEFINE(archive_read_free);
DL_DEFINE(archive_read_new);
DL_DEFINE(archive_read_next_header);
DL_DEFINE(archive_read_open_fd);
DL_DEFINE(archive_read_support_filter_gzip);
DL_DEFINE(archive_read_support_filter_xz);
DL_DEFINE(archive_read_support_filter_zstd);
DL_DEFINE(archive_read_support_format_raw);
DL_DEFINE(archive_write_add_filter_gzip);
DL_DEFINE(archive_write_add_filter_none);
DL_DEFINE(archive_write_add_filter_xz);
DL_DEFINE(archive_write_add_filter_zstd);
DL_DEFINE(archive_write_close);
DL_DEFINE(archive_write_data);
DL_DEFINE(archive_write_free);
DL_DEFINE(archive_write_header);
DL_DEFINE(archive_write_new);
DL_DEFINE(archive_write_open_filename);
DL_DEFINE(archive_write_set_bytes_in_last_block);
DL_DEFINE(archive_write_set_format_pax_restricted);

static const DlSymbol symbols[] = {
        DL_SYMBOL(archive_entry_free),
        DL_SYMBOL(archive_entry_new),
        DL_SYMBOL(archive_entry_set_filetype),
        DL_SYMBOL(archive_entry_set_mtime),
        DL_SYMBOL(archive_entry_set_pathname),
        DL_SYMBOL(archive_entry_set_perm),
        DL_SYMBOL(archive_entry_set_size),
        DL_SYMBOL(archive_error_string),
        DL_SYMBOL(archive_filter_bytes),
        DL_SYMBOL(archive_filter_count),
        DL_SYMBOL(archive_filter_name),
        DL_SYMBOL(archive_read_data),
        DL_SYMBOL(archive_read_free),
        DL_SYMBOL(archive_read_new),
        DL_SYMBOL(archive_read_next_header),
        DL_SYMBOL(archive_read_open_fd),
        DL_SYMBOL(archive_read_support_filter_gzip),
        DL_SYMBOL(archive_read_support_filter_xz),
        DL_SYMBOL(archive_read_support_filter_zstd),
        DL_SYMBOL(archive_read_support_format_raw),
        DL_SYMBOL(archive_write_add_filter_gzip),
        DL_SYMBOL(archive_write_add_filter_none),
        DL_SYMBOL(archive_write_add_filter_xz),
        DL_SYMBOL(archive_write_add_filter_zstd),
        DL_SYMBOL(archive_write_close),
        DL_SYMBOL(archive_write_data),
        DL_SYMBOL(archive_write_free),
        DL_SYMBOL(archive_write_header),
        DL_SYMBOL(archive_write_new),
        DL_SYMBOL(archive_write_open_filename),
        DL_SYMBOL(archive_write_set_bytes_in_last_block),
        DL_SYMBOL(archive_write_set_format_pax_restricted),
};

static DlLibrary libarchive = DL_LIBRARY("libarchive", LIBARCHIVE_SONAME, symbols, NULL);

int archive_dl_open(Error *e) {
        return dl_open(&libarchive, e);
}
