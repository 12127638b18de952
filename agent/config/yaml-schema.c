/* SPDX-License-Identifier: MIT */
/* The walk of a YAML document against schema tables: libyaml's events read one by one (anchors,
 * aliases and tags refused), the key path and the messages "FILE:LINE: KEY: ...", and the
 * readers of a mapping, a value, a string, a list and an array of mappings. What a value
 * becomes in the caller's struct, its default and its release are yaml-schema-fields.c's. */
#include <limits.h>
#include <stdint.h>
#include <yaml.h>

#include "config/yaml-schema-internal.h"

#define SHOWN_MAX 64 /* bytes of a key or value repeated in a message */

struct SchemaWalker {
        yaml_parser_t parser;
        bool parser_initialized;
        const char *file;
        const char *data;
        size_t size;
        Error *error;
        size_t path_len;
        char path[512]; /* the dotted key path of the value being read */
};

static void event_done(yaml_event_t *e) {
        yaml_event_delete(e);
}
#define _cleanup_event_ _cleanup_(event_done)

static void walker_done(SchemaWalker *w) {
        if (w->parser_initialized)
                yaml_parser_delete(&w->parser);
        w->parser_initialized = false;
}

/* (Re)starts reading at the beginning of the data. */
static int walker_start(SchemaWalker *w) {
        walker_done(w);
        if (!yaml_parser_initialize(&w->parser))
                return -ENOMEM;
        w->parser_initialized = true;
        yaml_parser_set_input_string(&w->parser, (const unsigned char *) w->data, w->size);
        yaml_parser_set_encoding(&w->parser, YAML_UTF8_ENCODING);
        return 0;
}

static unsigned mark_line(const yaml_mark_t *m) {
        return (unsigned) MIN(m->line, (size_t) UINT_MAX - 1) + 1;
}

static unsigned event_line(const yaml_event_t *e) {
        return mark_line(&e->start_mark);
}

static const char *scalar(const yaml_event_t *e) {
        return (const char *) e->data.scalar.value;
}

static bool scalar_is_plain(const yaml_event_t *e) {
        return e->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
}

static bool scalar_has_nul(const yaml_event_t *e) {
        return strlen(scalar(e)) != e->data.scalar.length;
}

static bool scalar_is_null(const yaml_event_t *e) {
        const char *v = scalar(e);

        return e->type == YAML_SCALAR_EVENT && scalar_is_plain(e) &&
                (v[0] == 0 || streq(v, "~") || streq(v, "null") || streq(v, "Null") || streq(v, "NULL"));
}

/* Makes text from the file fit to be shown: at most SHOWN_MAX bytes, printable ASCII. */
static const char *shown(const char *s, size_t len, char buf[static SHOWN_MAX + 4]) {
        size_t i, j = 0;

        for (i = 0; i < len && j < SHOWN_MAX; i++)
                buf[j++] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
        if (i < len) {
                memcpy(buf + j, "...", 3);
                j += 3;
        }
        buf[j] = 0;
        return buf;
}

/* What an event is, for "expected X, got Y". */
static const char *event_describe(const yaml_event_t *e, char buf[static SHOWN_MAX + 8]) {
        char v[SHOWN_MAX + 4];

        switch (e->type) {
        case YAML_MAPPING_START_EVENT:
                return "a mapping";
        case YAML_SEQUENCE_START_EVENT:
                return "a list";
        case YAML_SCALAR_EVENT:
                if (scalar_is_null(e))
                        return "null";
                if (e->data.scalar.length == 0)
                        return "an empty string";
                (void) snprintf(buf, SHOWN_MAX + 8, "'%s'", shown(scalar(e), e->data.scalar.length, v));
                return buf;
        default:
                return "nothing";
        }
}

/* Appends to the key path; returns its length before, for path_pop(). */
_printf_(2, 3) static size_t path_push(SchemaWalker *w, const char *fmt, ...) {
        size_t old = w->path_len;
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(w->path + old, sizeof(w->path) - old, fmt, ap);
        va_end(ap);
        if (n > 0)
                w->path_len = MIN(old + (size_t) n, sizeof(w->path) - 1);
        return old;
}

static void path_pop(SchemaWalker *w, size_t old) {
        w->path_len = old;
        w->path[old] = 0;
}

int schema_error(SchemaWalker *w, unsigned line, const char *key, const char *fmt, ...) {
        char msg[ERROR_MESSAGE_MAX];
        va_list ap;

        va_start(ap, fmt);
        (void) vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);

        key = strempty(key);
        if (w->path_len == 0 && key[0] == 0)
                return error_set(w->error, -EINVAL, "%s:%u: %s", w->file, line, msg);
        return error_set(w->error, -EINVAL, "%s:%u: %s%s%s: %s", w->file, line, w->path,
                         w->path_len > 0 && key[0] ? "." : "", key, msg);
}

static int oom(SchemaWalker *w) {
        return error_set(w->error, -ENOMEM, "%s: out of memory", w->file);
}

static int parser_error(SchemaWalker *w) {
        const yaml_parser_t *p = &w->parser;
        unsigned line = 1;

        if (p->error == YAML_MEMORY_ERROR)
                return oom(w);

        if (p->error == YAML_READER_ERROR) {
                /* The reader reports a byte offset, not a mark. */
                for (size_t i = 0; i < MIN(p->problem_offset, w->size); i++)
                        if (w->data[i] == '\n' && line < UINT_MAX)
                                line++;
        } else
                line = mark_line(&p->problem_mark);

        if (p->context)
                return error_set(w->error, -EINVAL, "%s:%u: invalid YAML: %s (%s at line %u)", w->file, line,
                                 strna(p->problem), p->context, mark_line(&p->context_mark));
        return error_set(w->error, -EINVAL, "%s:%u: invalid YAML: %s", w->file, line, strna(p->problem));
}

/* Reads the next event, refusing what this format does not have: anchors, aliases, tags. */
static int next_event(SchemaWalker *w, yaml_event_t *ret) {
        const yaml_char_t *anchor = NULL, *tag = NULL;

        if (!yaml_parser_parse(&w->parser, ret))
                return parser_error(w);

        switch (ret->type) {
        case YAML_ALIAS_EVENT:
                return schema_error(w, event_line(ret), NULL, "anchors and aliases are not supported");
        case YAML_SCALAR_EVENT:
                anchor = ret->data.scalar.anchor;
                tag = ret->data.scalar.tag;
                break;
        case YAML_SEQUENCE_START_EVENT:
                anchor = ret->data.sequence_start.anchor;
                tag = ret->data.sequence_start.tag;
                break;
        case YAML_MAPPING_START_EVENT:
                anchor = ret->data.mapping_start.anchor;
                tag = ret->data.mapping_start.tag;
                break;
        default:
                break;
        }

        if (anchor)
                return schema_error(w, event_line(ret), NULL, "anchors and aliases are not supported");
        if (tag)
                return schema_error(w, event_line(ret), NULL, "tags are not supported");
        return 0;
}

/* The first pass: the whole file must be YAML, and not nested too deeply, before any of it is
 * interpreted (a broken file is reported as such, not as a wrong key in its middle). */
static int check_syntax(SchemaWalker *w) {
        unsigned depth = 0;

        for (;;) {
                _cleanup_event_ yaml_event_t e = {};

                if (!yaml_parser_parse(&w->parser, &e))
                        return parser_error(w);

                switch (e.type) {
                case YAML_SEQUENCE_START_EVENT:
                case YAML_MAPPING_START_EVENT:
                        if (++depth > SCHEMA_DEPTH_MAX)
                                return schema_error(w, event_line(&e), NULL, "nested deeper than %u levels",
                                                    SCHEMA_DEPTH_MAX);
                        break;
                case YAML_SEQUENCE_END_EVENT:
                case YAML_MAPPING_END_EVENT:
                        depth--;
                        break;
                case YAML_STREAM_END_EVENT:
                        return 0;
                default:
                        break;
                }
        }
}

/* A scalar that is a non-empty string without NUL bytes, accepted by k->check. */
static int string_from_event(SchemaWalker *w, const yaml_event_t *e, const SchemaKey *k, char **ret) {
        char d[SHOWN_MAX + 8];
        const char *reason;
        char *s;

        if (e->type != YAML_SCALAR_EVENT || scalar_is_null(e))
                return schema_error(w, event_line(e), NULL, "expected a string, got %s", event_describe(e, d));
        if (e->data.scalar.length == 0)
                return schema_error(w, event_line(e), NULL, "must not be empty");
        if (scalar_has_nul(e))
                return schema_error(w, event_line(e), NULL, "must not contain NUL bytes");
        if (k->check && (reason = k->check(scalar(e))))
                return schema_error(w, event_line(e), NULL, "%s, got %s", reason, event_describe(e, d));

        s = strdup(scalar(e));
        if (!s)
                return oom(w);
        *ret = s;
        return 0;
}

static int parse_strv(SchemaWalker *w, const yaml_event_t *e, const SchemaKey *k, void *base) {
        char **field_strv, ***field = FIELD(base, k->offset, char **);
        _cleanup_strv_free_ char **l = NULL;
        char d[SHOWN_MAX + 8];
        size_t n = 0;
        int r;

        if (e->type != YAML_SEQUENCE_START_EVENT)
                return schema_error(w, event_line(e), NULL, "expected a list of strings, got %s",
                                    event_describe(e, d));

        l = calloc(1, sizeof(char *));
        if (!l)
                return oom(w);

        for (;;) {
                _cleanup_event_ yaml_event_t item = {};
                char **p, *s;
                size_t old;

                r = next_event(w, &item);
                if (r < 0)
                        return r;
                if (item.type == YAML_SEQUENCE_END_EVENT)
                        break;

                old = path_push(w, "[%zu]", n);
                r = string_from_event(w, &item, k, &s);
                if (r < 0)
                        return r;
                path_pop(w, old);

                p = reallocarray(l, n + 2, sizeof(char *));
                if (!p) {
                        free(s);
                        return oom(w);
                }
                l = p;
                l[n++] = s;
                l[n] = NULL;
        }

        if (n == 0 && (k->flags & SCHEMA_NON_EMPTY))
                return schema_error(w, event_line(e), NULL, "must not be an empty list");

        field_strv = *field;
        *field = TAKE_PTR(l);
        strv_free(field_strv);
        return 0;
}

static int parse_scalar(SchemaWalker *w, const yaml_event_t *e, const SchemaKey *k, void *base) {
        char d[SHOWN_MAX + 8], what[256] = "one of:";
        int r;

        if (k->type == SCHEMA_ENUM)
                for (size_t i = 0, n = strlen(what); k->values[i] && n < sizeof(what); i++, n = strlen(what))
                        (void) snprintf(what + n, sizeof(what) - n, "%s %s", i > 0 ? "," : "", k->values[i]);
        else
                (void) snprintf(what, sizeof(what), "%s",
                                k->type == SCHEMA_BOOL ? "true or false" : "a non-negative integer");

        if (e->type != YAML_SCALAR_EVENT || scalar_is_null(e) || scalar_has_nul(e))
                return schema_error(w, event_line(e), NULL, "expected %s, got %s", what, event_describe(e, d));
        /* "5" and "true" in quotes are strings in YAML. */
        if (k->type != SCHEMA_ENUM && !scalar_is_plain(e))
                return schema_error(w, event_line(e), NULL, "expected %s, got a quoted string", what);

        r = schema_store_scalar(k, base, scalar(e));
        if (r == -ERANGE)
                return schema_error(w, event_line(e), NULL, "must be an integer between %u and %u, got %s", k->min,
                                    k->max, event_describe(e, d));
        if (r < 0)
                return schema_error(w, event_line(e), NULL, "expected %s, got %s", what, event_describe(e, d));
        return 0;
}

static int parse_mapping(SchemaWalker *w, const SchemaMapping *m, void *base, unsigned line);

static int parse_array(SchemaWalker *w, const yaml_event_t *e, const SchemaKey *k, void *base) {
        void **array = FIELD(base, k->offset, void *);
        size_t *count = FIELD(base, k->count_offset, size_t);
        char d[SHOWN_MAX + 8];
        int r;

        if (e->type != YAML_SEQUENCE_START_EVENT)
                return schema_error(w, event_line(e), NULL, "expected a list of mappings, got %s",
                                    event_describe(e, d));

        for (;;) {
                _cleanup_event_ yaml_event_t item = {};
                uint8_t *p;
                size_t old;

                r = next_event(w, &item);
                if (r < 0)
                        return r;
                if (item.type == YAML_SEQUENCE_END_EVENT)
                        return 0;

                old = path_push(w, "[%zu]", *count);
                if (item.type != YAML_MAPPING_START_EVENT)
                        return schema_error(w, event_line(&item), NULL, "expected a mapping, got %s",
                                            event_describe(&item, d));
                if (*count >= k->max)
                        return schema_error(w, event_line(&item), NULL, "too many entries (at most %u)", k->max);

                /* Grow and count the element first, so that whatever it holds is freed with base. */
                p = reallocarray(*array, *count + 1, k->elem_size);
                if (!p)
                        return oom(w);
                *array = p;
                p += *count * k->elem_size;
                memset(p, 0, k->elem_size);
                (*count)++;

                r = schema_apply_defaults(k->mapping, p);
                if (r < 0)
                        return r == -ENOMEM ? oom(w) : error_set(w->error, r, "%s: bad default", w->path);
                r = parse_mapping(w, k->mapping, p, event_line(&item));
                if (r < 0)
                        return r;
                path_pop(w, old);
        }
}

static int parse_value(SchemaWalker *w, const SchemaKey *k, void *base) {
        _cleanup_event_ yaml_event_t e = {};
        char d[SHOWN_MAX + 8];
        int r;

        r = next_event(w, &e);
        if (r < 0)
                return r;

        switch (k->type) {
        case SCHEMA_STRING: {
                char *s;

                r = string_from_event(w, &e, k, &s);
                if (r < 0)
                        return r;
                free(*FIELD(base, k->offset, char *));
                *FIELD(base, k->offset, char *) = s;
                return 0;
        }
        case SCHEMA_STRV:
                return parse_strv(w, &e, k, base);
        case SCHEMA_BOOL:
        case SCHEMA_UINT:
        case SCHEMA_ENUM:
                return parse_scalar(w, &e, k, base);
        case SCHEMA_SECTION:
                if (e.type != YAML_MAPPING_START_EVENT)
                        return schema_error(w, event_line(&e), NULL, "expected a mapping, got %s",
                                            event_describe(&e, d));
                if (k->offset != SCHEMA_NO_FIELD)
                        *FIELD(base, k->offset, bool) = true;
                return parse_mapping(w, k->mapping, base, event_line(&e));
        case SCHEMA_ARRAY:
                return parse_array(w, &e, k, base);
        }
        return -EINVAL;
}

static const SchemaKey *key_find(const SchemaKey *keys, const char *name, size_t len) {
        if (strlen(name) != len)
                return NULL;
        for (const SchemaKey *k = keys; k->name; k++)
                if (streq(k->name, name))
                        return k;
        return NULL;
}

unsigned schema_key_line(const SchemaKey *keys, const unsigned *lines, const char *name) {
        const SchemaKey *k = key_find(keys, name, strlen(name));

        return k ? lines[k - keys] : 0;
}

/* Reads the keys of a mapping whose start has been read, up to its end. */
static int parse_mapping(SchemaWalker *w, const SchemaMapping *m, void *base, unsigned line) {
        unsigned lines[SCHEMA_KEYS_MAX] = {};
        size_t n_keys = 0;
        char d[SHOWN_MAX + 8];
        int r;

        while (m->keys[n_keys].name)
                n_keys++;
        if (n_keys > SCHEMA_KEYS_MAX)
                return error_set(w->error, -E2BIG, "%s: %s: too many keys in the schema table", w->file, w->path);

        for (;;) {
                _cleanup_event_ yaml_event_t e = {};
                const SchemaKey *k;
                size_t old, i;

                r = next_event(w, &e);
                if (r < 0)
                        return r;
                if (e.type == YAML_MAPPING_END_EVENT)
                        break;
                if (e.type != YAML_SCALAR_EVENT)
                        return schema_error(w, event_line(&e), NULL, "expected a key, got %s",
                                            event_describe(&e, d));

                old = path_push(w, "%s%s", w->path_len > 0 ? "." : "",
                                e.data.scalar.length > 0 ? shown(scalar(&e), e.data.scalar.length, d) : "\"\"");
                k = key_find(m->keys, scalar(&e), e.data.scalar.length);
                if (!k)
                        return schema_error(w, event_line(&e), NULL, "unknown key");
                i = (size_t) (k - m->keys);
                if (lines[i] > 0)
                        return schema_error(w, event_line(&e), NULL, "duplicate key (first at line %u)", lines[i]);
                lines[i] = event_line(&e);

                r = parse_value(w, k, base);
                if (r < 0)
                        return r;
                path_pop(w, old);
        }

        for (size_t i = 0; i < n_keys; i++)
                if ((m->keys[i].flags & SCHEMA_REQUIRED) && lines[i] == 0)
                        return schema_error(w, line, m->keys[i].name, "required key is missing");

        return m->verify ? m->verify(w, base, lines, line) : 0;
}

int schema_parse(const char *file, const char *data, size_t size, const SchemaMapping *m, void *base,
                 Error *reterr) {
        _cleanup_(walker_done) SchemaWalker w = {
                .file = file,
                .data = data,
                .size = size,
                .error = reterr,
        };
        _cleanup_event_ yaml_event_t stream = {}, doc = {}, top = {}, doc_end = {}, stream_end = {};
        char d[SHOWN_MAX + 8];
        int r;

        if (walker_start(&w) < 0)
                return oom(&w);
        r = check_syntax(&w);
        if (r < 0)
                return r;

        if (walker_start(&w) < 0)
                return oom(&w);
        r = next_event(&w, &stream);
        if (r < 0)
                return r;

        r = next_event(&w, &doc);
        if (r < 0)
                return r;
        if (doc.type == YAML_STREAM_END_EVENT)
                return schema_error(&w, event_line(&doc), NULL, "the file is empty");

        r = next_event(&w, &top);
        if (r < 0)
                return r;
        if (top.type != YAML_MAPPING_START_EVENT)
                return schema_error(&w, event_line(&top), NULL, "the top level must be a mapping, got %s",
                                    event_describe(&top, d));
        r = parse_mapping(&w, m, base, event_line(&top));
        if (r < 0)
                return r;

        r = next_event(&w, &doc_end);
        if (r < 0)
                return r;
        r = next_event(&w, &stream_end);
        if (r < 0)
                return r;
        if (stream_end.type != YAML_STREAM_END_EVENT)
                return schema_error(&w, event_line(&stream_end), NULL, "only one document is supported");
        return 0;
}

/* A list's default is written as a YAML flow sequence ("[systemctl, reboot]"), as the
 * documentation shows it: read with the same parser as the file. */
int schema_strv_from_default(const SchemaKey *k, void *base) {
        _cleanup_(walker_done) SchemaWalker w = {
                .file = "(default)",
                .data = k->def,
                .size = strlen(k->def),
        };
        _cleanup_event_ yaml_event_t stream = {}, doc = {}, seq = {};
        int r;

        if (walker_start(&w) < 0)
                return -ENOMEM;
        r = next_event(&w, &stream);
        if (r >= 0)
                r = next_event(&w, &doc);
        if (r >= 0)
                r = next_event(&w, &seq);
        if (r >= 0)
                r = parse_strv(&w, &seq, k, base);
        return r < 0 ? -EINVAL : 0;
}
