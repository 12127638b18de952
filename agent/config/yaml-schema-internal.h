/* SPDX-License-Identifier: MIT */
#pragma once

/* What the files of the schema reader share: yaml-schema.c (the walk of the YAML events
 * against the tables) and yaml-schema-fields.c (the fields in the caller's struct: scalars
 * from text, defaults, freeing). Nothing outside these files includes this. */

#include <stdint.h>

#include "config/yaml-schema.h"

/* The field at offset into base, as a type *. */
#define FIELD(base, offset, type) ((type *) (void *) ((uint8_t *) (base) + (offset)))

/* Converts text to the type of k (a bool, an integer or an enum) and stores it; -ERANGE when
 * an integer is outside k's bounds, -EINVAL when the text is not of the type. */
int schema_store_scalar(const SchemaKey *k, void *base, const char *text);

/* Stores the default of the list k (k->def, a YAML flow sequence) into base; 0, -ENOMEM or
 * -EINVAL when it does not parse. */
int schema_strv_from_default(const SchemaKey *k, void *base);
