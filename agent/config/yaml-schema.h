/* SPDX-License-Identifier: MIT */
#pragma once

/* A strict, table-driven reader of YAML configuration files, on libyaml's event API (as RAUC
 * reads its key files): a mapping is described by a table of keys, each key is consumed as it
 * is read, and an unknown key, a duplicate key, a value of the wrong type or a missing
 * required key is an error "FILE:LINE: KEY: what is wrong", KEY being the dotted path
 * (health.checks[1].http.status). Anchors, aliases, tags and multiple documents are refused.
 *
 * Values are stored at offsets into a caller's struct ("base"). Adding a key to a file format
 * is adding one row to its table: the row gives the parser, the default and the destructor. */

#include <stdbool.h>
#include <stddef.h>

#include "basic/error.h"

#define SCHEMA_DEPTH_MAX 16  /* nested mappings and lists */
#define SCHEMA_KEYS_MAX 32   /* keys in one table */
#define SCHEMA_NO_FIELD ((size_t) -1)

typedef struct SchemaWalker SchemaWalker;
typedef struct SchemaMapping SchemaMapping;

typedef enum SchemaType {
        SCHEMA_STRING,  /* char *: a non-empty scalar without NUL bytes */
        SCHEMA_STRV,    /* char **: a list of such strings, NULL-terminated, never NULL */
        SCHEMA_BOOL,    /* bool: true or false, unquoted */
        SCHEMA_UINT,    /* unsigned: a decimal integer between .min and .max, unquoted */
        SCHEMA_ENUM,    /* int: the index of the string in .values */
        SCHEMA_SECTION, /* a mapping described by .mapping, stored into the same base;
                         * .offset: a bool set when the section is present, or SCHEMA_NO_FIELD */
        SCHEMA_ARRAY,   /* a list of mappings described by .mapping: an array of .elem_size
                         * elements at .offset, its length (size_t) at .count_offset, at most
                         * .max elements */
} SchemaType;

typedef enum SchemaFlags {
        SCHEMA_REQUIRED = 1 << 0,  /* the key must be present */
        SCHEMA_NON_EMPTY = 1 << 1, /* SCHEMA_STRV: the list must have an element */
} SchemaFlags;

typedef struct SchemaKey {
        const char *name;
        SchemaType type;
        size_t offset;
        SchemaFlags flags;
        const char *def; /* the default, as YAML text ("5", "true", "switch"); NULL: none */
        unsigned min, max;
        const char *const *values; /* SCHEMA_ENUM: NULL-terminated */
        /* SCHEMA_STRING, SCHEMA_STRV (each element): NULL when value is acceptable, else what
         * is wrong with it ("must be an absolute path"). */
        const char *(*check)(const char *value);
        const SchemaMapping *mapping; /* SCHEMA_SECTION, SCHEMA_ARRAY */
        size_t count_offset, elem_size; /* SCHEMA_ARRAY */
} SchemaKey;

struct SchemaMapping {
        const SchemaKey *keys; /* terminated by an entry without name */
        /* Optional, called when the mapping is complete, for rules between keys. lines[i] is the
         * line of keys[i] in the file, 0 when absent; line is where the mapping starts. Errors
         * go through schema_error(); the current key path is the mapping's. */
        int (*verify)(SchemaWalker *w, void *base, const unsigned *lines, unsigned line);
};

/* Parses one YAML document whose top level is described by m into base, which must already
 * hold the defaults (schema_apply_defaults()). The whole of data is first checked to be YAML
 * nested at most SCHEMA_DEPTH_MAX deep, so that a broken file is reported as such; then the
 * events are matched against the tables. On error, returns -EINVAL (content) or -ENOMEM and
 * fills reterr; base may then be partly filled and must be released with
 * schema_free_fields(). */
int schema_parse(const char *file, const char *data, size_t size, const SchemaMapping *m, void *base,
                 Error *reterr);

/* Stores every default of m (recursively into sections) into base: strings are copied,
 * lists are empty. Returns 0 or -ENOMEM (-EINVAL when a table's default does not parse). */
int schema_apply_defaults(const SchemaMapping *m, void *base);

/* Frees every string, list and array that m describes in base and zeroes them. */
void schema_free_fields(const SchemaMapping *m, void *base);

/* For verify hooks: sets the error "FILE:LINE: PATH.KEY: message", where PATH is the current
 * key path and key (NULL: none) is relative to it. Returns -EINVAL. */
int schema_error(SchemaWalker *w, unsigned line, const char *key, const char *fmt, ...) _printf_(4, 5);

/* For verify hooks: the line of the key called name in the table keys (0 when absent). */
unsigned schema_key_line(const SchemaKey *keys, const unsigned *lines, const char *name);

/* Ready-made checks for SchemaKey.check. */
const char *schema_check_absolute_path(const char *value);
