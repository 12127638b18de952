/* SPDX-License-Identifier: MIT */
/* The fields that a schema table describes in a caller's struct, apart from reading YAML:
 * converting a scalar's text into a field (bool, integer, enum), storing a table's defaults,
 * freeing what the fields hold, and the ready-made checks of a key's value. */
#include <stdint.h>

#include "config/yaml-schema-internal.h"

static int parse_uint(const char *s, unsigned min, unsigned max, unsigned *ret) {
        unsigned long long v;
        const char *digits = s[0] == '-' ? s + 1 : s;

        if (digits[0] == 0 || digits[strspn(digits, "0123456789")] != 0)
                return -EINVAL;
        if (digits != s)
                return -ERANGE;

        errno = 0;
        v = strtoull(digits, NULL, 10);
        if (errno == ERANGE || v < min || v > max)
                return -ERANGE;
        *ret = (unsigned) v;
        return 0;
}

static int parse_bool(const char *s, bool *ret) {
        if (streq(s, "true"))
                *ret = true;
        else if (streq(s, "false"))
                *ret = false;
        else
                return -EINVAL;
        return 0;
}

static int parse_enum(const char *s, const char *const *values, int *ret) {
        for (int i = 0; values[i]; i++)
                if (streq(s, values[i])) {
                        *ret = i;
                        return 0;
                }
        return -EINVAL;
}

/* Converts text to the type of k (a bool, an integer or an enum) and stores it. */
int schema_store_scalar(const SchemaKey *k, void *base, const char *text) {
        switch (k->type) {
        case SCHEMA_BOOL:
                return parse_bool(text, FIELD(base, k->offset, bool));
        case SCHEMA_UINT:
                return parse_uint(text, k->min, k->max, FIELD(base, k->offset, unsigned));
        case SCHEMA_ENUM:
                return parse_enum(text, k->values, FIELD(base, k->offset, int));
        default:
                return -EINVAL;
        }
}

int schema_apply_defaults(const SchemaMapping *m, void *base) {
        int r;

        for (const SchemaKey *k = m->keys; k->name; k++)
                switch (k->type) {
                case SCHEMA_STRING:
                        if (k->def) {
                                char *s = strdup(k->def), **field = FIELD(base, k->offset, char *);
                                if (!s)
                                        return -ENOMEM;
                                free(*field);
                                *field = s;
                        }
                        break;
                case SCHEMA_STRV: {
                        char ***field = FIELD(base, k->offset, char **);
                        if (k->def) {
                                r = schema_strv_from_default(k, base);
                                if (r < 0)
                                        return r;
                        } else if (!*field) {
                                *field = calloc(1, sizeof(char *));
                                if (!*field)
                                        return -ENOMEM;
                        }
                        break;
                }
                case SCHEMA_BOOL:
                case SCHEMA_UINT:
                case SCHEMA_ENUM:
                        if (k->def) {
                                r = schema_store_scalar(k, base, k->def);
                                if (r < 0)
                                        return -EINVAL;
                        }
                        break;
                case SCHEMA_SECTION:
                        r = schema_apply_defaults(k->mapping, base);
                        if (r < 0)
                                return r;
                        break;
                case SCHEMA_ARRAY:
                        break;
                }
        return 0;
}

void schema_free_fields(const SchemaMapping *m, void *base) {
        for (const SchemaKey *k = m->keys; k->name; k++)
                switch (k->type) {
                case SCHEMA_STRING:
                        free(*FIELD(base, k->offset, char *));
                        *FIELD(base, k->offset, char *) = NULL;
                        break;
                case SCHEMA_STRV:
                        strv_free(*FIELD(base, k->offset, char **));
                        *FIELD(base, k->offset, char **) = NULL;
                        break;
                case SCHEMA_SECTION:
                        schema_free_fields(k->mapping, base);
                        break;
                case SCHEMA_ARRAY: {
                        uint8_t *array = *FIELD(base, k->offset, uint8_t *);
                        size_t *count = FIELD(base, k->count_offset, size_t);

                        for (size_t i = 0; i < *count; i++)
                                schema_free_fields(k->mapping, array + i * k->elem_size);
                        free(array);
                        *FIELD(base, k->offset, uint8_t *) = NULL;
                        *count = 0;
                        break;
                }
                default:
                        break;
                }
}

const char *schema_check_absolute_path(const char *value) {
        return value[0] == '/' ? NULL : "must be an absolute path";
}
