/* SPDX-License-Identifier: MIT */
/* The bundle manifest (docs/bundle-format.md, section 3), read strictly. */

#include <jansson.h>

#include "bundle/bundle.h"
#include "oci/image-ref.h"
#include "basic/strutil.h"

void bundle_manifest_done(BundleManifest *m) {
        if (!m)
                return;
        free(m->host);
        free(m->system);
        json_decref(m->containers);
        free(m->repository);
        free(m->store_dir);
        free(m->cache);
        strv_free(m->paths);
        for (size_t i = 0; i < m->n_images; i++) {
                free(m->images[i].reference);
                free(m->images[i].digest);
                free(m->images[i].layout);
        }
        free(m->images);
        for (size_t i = 0; i < m->n_members; i++)
                free(m->members[i].path);
        free(m->members);
        for (size_t i = 0; i < m->n_base_blobs; i++)
                free(m->base_blobs[i].path);
        free(m->base_blobs);
        *m = (BundleManifest) {};
}

static bool is_name_char(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
               c == '+' || c == '=' || c == '@' || c == '-';
}

const char *bundle_member_name_problem(const char *name) {
        size_t len = 0, component = 0, components = 1;

        if (!name || !*name)
                return "empty";
        if (name[0] == '/')
                return "it starts with '/'";
        for (const char *p = name; *p; p++, len++) {
                if (len >= BUNDLE_NAME_MAX)
                        return "more than 1024 bytes";
                if (*p == '/') {
                        if (component == 0)
                                return "an empty component";
                        if (++components > BUNDLE_COMPONENTS_MAX)
                                return "more than 32 components";
                        component = 0;
                        continue;
                }
                if (!is_name_char(*p))
                        return "a character other than A-Z a-z 0-9 . _ + = @ -";
                if (component == 0 && *p == '.')
                        return "a component starts with '.'";
                if (++component > BUNDLE_COMPONENT_MAX)
                        return "a component of more than 255 bytes";
        }
        return component > 0 ? NULL : "it ends with '/'";
}

bool bundle_member_name_valid(const char *name) {
        return !bundle_member_name_problem(name);
}

static int unhex(const char *s, uint8_t *out, size_t n) {
        for (size_t i = 0; i < n; i++) {
                unsigned hi = (unsigned) (s[2 * i] <= '9' ? s[2 * i] - '0' : s[2 * i] - 'a' + 10);
                unsigned lo = (unsigned) (s[2 * i + 1] <= '9' ? s[2 * i + 1] - '0' : s[2 * i + 1] - 'a' + 10);
                out[i] = (uint8_t) (hi << 4 | lo);
        }
        return 0;
}

static int member_cmp(const void *a, const void *b) {
        return strcmp(((const BundleMember *) a)->path, ((const BundleMember *) b)->path);
}

BundleMember *bundle_manifest_find(const BundleManifest *m, const char *path) {
        BundleMember key = { .path = (char *) path };

        if (m->n_members == 0)
                return NULL;
        return bsearch(&key, m->members, m->n_members, sizeof(BundleMember), member_cmp);
}

/* A non-negative integer of at most 2^53-1, as JSON can carry it exactly. */
static int get_uint(json_t *v, const char *key, uint64_t min, uint64_t *ret, Error *e) {
        json_int_t i;

        if (!json_is_integer(v))
                return error_set(e, -EPERM, "manifest: '%s' must be an integer", key);
        i = json_integer_value(v);
        if (i < 0 || (uint64_t) i < min || (uint64_t) i > BUNDLE_SIZE_MAX)
                return error_set(e, -EPERM, "manifest: '%s' is out of range (%lld)", key, (long long) i);
        *ret = (uint64_t) i;
        return 0;
}

static int dup_string(json_t *v, const char *key, char **ret, Error *e) {
        if (!json_is_string(v))
                return error_set(e, -EPERM, "manifest: '%s' must be a string", key);
        *ret = strdup(json_string_value(v));
        return *ret ? 0 : -ENOMEM;
}

/* The first member, in the sorted list, whose path is not below key (of len bytes). */
static size_t lower_bound(const BundleManifest *m, const char *key, size_t len) {
        size_t lo = 0, hi = m->n_members;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;

                if (strncmp(m->members[mid].path, key, len) < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo;
}

/* A member below the directory dir (len bytes, no trailing '/'), or NULL. The members below
 * dir sort together, after every path that is less than dir + "/" in its first len + 1 bytes. */
static const BundleMember *member_below(const BundleManifest *m, const char *dir, size_t len) {
        char key[BUNDLE_NAME_MAX + 2];
        size_t i;

        if (len > BUNDLE_NAME_MAX)
                return NULL;
        memcpy(key, dir, len);
        key[len] = '/';
        i = lower_bound(m, key, len + 1);
        if (i < m->n_members && strncmp(m->members[i].path, key, len + 1) == 0)
                return &m->members[i];
        return NULL;
}

/* Section 2: the directories of the members are implied by their names, so no member may
 * also be the directory of another ("a" and "a/b"): no tree holds both, and verify must not
 * accept what apply cannot extract. */
static int check_no_file_is_a_directory(const BundleManifest *m, Error *e) {
        for (size_t i = 0; i < m->n_members; i++) {
                const BundleMember *below = member_below(m, m->members[i].path, strlen(m->members[i].path));

                if (below)
                        return error_set(e, -EPERM, "manifest: a member is also the directory of another: '%s' and "
                                         "'%s'", m->members[i].path, below->path);
        }
        return 0;
}

static int parse_members(json_t *a, BundleManifest *m, Error *e) {
        json_t *v;
        size_t i;
        int r;

        if (!json_is_array(a))
                return error_set(e, -EPERM, "manifest: 'members' must be an array");
        if (json_array_size(a) > BUNDLE_MEMBERS_MAX)
                return error_set(e, -EPERM, "manifest: more than %u members", BUNDLE_MEMBERS_MAX);
        m->members = calloc(MAX(json_array_size(a), 1u), sizeof(BundleMember));
        if (!m->members)
                return -ENOMEM;
        json_array_foreach(a, i, v) {
                BundleMember *mb = &m->members[m->n_members];
                const char *path, *hex, *problem;
                json_int_t size;
                json_error_t jerr;

                if (json_unpack_ex(v, &jerr, JSON_STRICT, "{s:s, s:I, s:s}", "path", &path, "size", &size, "sha256",
                                   &hex) < 0)
                        return error_set(e, -EPERM, "manifest: members[%zu]: %s", i, jerr.text);
                problem = bundle_member_name_problem(path);
                if (problem) /* the reason first: a long name is cut */
                        return error_set(e, -EPERM, "manifest: members[%zu]: invalid member name (%s): '%s'", i,
                                         problem, path);
                if (streq(path, BUNDLE_MANIFEST_NAME) || streq(path, BUNDLE_SIGNATURE_NAME))
                        return error_set(e, -EPERM, "manifest: members[%zu]: '%s' is reserved", i, path);
                if (size < 0 || (uint64_t) size > BUNDLE_SIZE_MAX)
                        return error_set(e, -EPERM, "manifest: members[%zu] '%s': size out of range", i, path);
                if (!is_hex(hex, 64))
                        return error_set(e, -EPERM, "manifest: members[%zu] '%s': sha256 is not 64 lowercase hex digits",
                                         i, path);
                mb->path = strdup(path);
                if (!mb->path)
                        return -ENOMEM;
                mb->size = (uint64_t) size;
                r = unhex(hex, mb->sha256, 32);
                if (r < 0)
                        return r;
                m->n_members++;
        }
        qsort(m->members, m->n_members, sizeof(BundleMember), member_cmp);
        for (i = 1; i < m->n_members; i++)
                if (streq(m->members[i - 1].path, m->members[i].path))
                        return error_set(e, -EPERM, "manifest: member '%s' is listed twice", m->members[i].path);
        return check_no_file_is_a_directory(m, e);
}

/* A prefix ("nix", "images/0") under which at least one listed member lies. */
static int check_prefix(const BundleManifest *m, const char *key, const char *prefix, Error *e) {
        if (!bundle_member_name_valid(prefix))
                return error_set(e, -EPERM, "manifest: %s: invalid directory name '%s'", key, prefix);
        if (!member_below(m, prefix, strlen(prefix)))
                return error_set(e, -EPERM, "manifest: %s: no member lies below '%s'", key, prefix);
        return 0;
}

/* <store-dir>/<32 characters of hash>-<name>, nothing else. */
static bool is_store_path_of(const char *s, const char *store_dir) {
        size_t dl = strlen(store_dir);

        if (strncmp(s, store_dir, dl) != 0 || s[dl] != '/' || strlen(s + dl + 1) < 34 || s[dl + 33] != '-' ||
            strlen(s + dl + 1) > 255)
                return false;
        for (const char *c = s + dl + 1; *c; c++)
                if (!is_name_char(*c) && *c != '?')
                        return false;
        return true;
}

static int parse_closure(json_t *v, BundleManifest *m, Error *e) {
        const char *store_dir, *cache;
        json_t *paths, *p;
        json_error_t jerr;
        size_t i;

        if (json_is_null(v))
                return 0;
        if (json_unpack_ex(v, &jerr, JSON_STRICT, "{s:s, s:s, s:o}", "store-dir", &store_dir, "cache", &cache, "paths",
                           &paths) < 0)
                return error_set(e, -EPERM, "manifest: closure: %s", jerr.text);
        if (store_dir[0] != '/' || strlen(store_dir) > 256)
                return error_set(e, -EPERM, "manifest: closure: store-dir '%s' is not an absolute path", store_dir);
        if (!json_is_array(paths) || json_array_size(paths) == 0 || json_array_size(paths) > BUNDLE_CLOSURE_PATHS_MAX)
                return error_set(e, -EPERM, "manifest: closure: paths must be an array of 1 to %u store paths",
                                 BUNDLE_CLOSURE_PATHS_MAX);
        m->has_closure = true;
        m->store_dir = strdup(store_dir);
        m->cache = strdup(cache);
        if (!m->store_dir || !m->cache)
                return -ENOMEM;
        json_array_foreach(paths, i, p) {
                const char *s = json_string_value(p);

                if (!s || !is_store_path_of(s, store_dir))
                        return error_set(e, -EPERM, "manifest: closure: paths[%zu] is not a store path of '%s'", i,
                                         store_dir);
                if (strv_extend(&m->paths, s) < 0)
                        return -ENOMEM;
        }
        return check_prefix(m, "closure.cache", cache, e);
}

static int parse_images(json_t *v, BundleManifest *m, Error *e) {
        json_t *img;
        size_t i;
        int r;

        if (json_is_null(v))
                return 0;
        if (!json_is_array(v) || json_array_size(v) > BUNDLE_IMAGES_MAX)
                return error_set(e, -EPERM, "manifest: images must be null or an array of at most %u images",
                                 BUNDLE_IMAGES_MAX);
        m->has_images = true;
        m->images = calloc(MAX(json_array_size(v), 1u), sizeof(BundleImage));
        if (!m->images)
                return -ENOMEM;
        json_array_foreach(v, i, img) {
                BundleImage *bi = &m->images[m->n_images];
                const char *reference, *digest, *layout;
                json_error_t jerr;
                char key[48];

                if (json_unpack_ex(img, &jerr, JSON_STRICT, "{s:s, s:s, s:s}", "reference", &reference, "digest",
                                   &digest, "layout", &layout) < 0)
                        return error_set(e, -EPERM, "manifest: images[%zu]: %s", i, jerr.text);
                if (!image_digest_is_valid(digest))
                        return error_set(e, -EPERM, "manifest: images[%zu]: '%s' is not a sha256 digest", i, digest);
                for (size_t k = 0; k < m->n_images; k++)
                        if (streq(m->images[k].reference, reference))
                                return error_set(e, -EPERM, "manifest: images[%zu]: '%s' is listed twice", i, reference);
                (void) snprintf(key, sizeof(key), "images[%zu].layout", i);
                r = check_prefix(m, key, layout, e);
                if (r < 0)
                        return r;
                bi->reference = strdup(reference);
                bi->digest = strdup(digest);
                bi->layout = strdup(layout);
                m->n_images++;
                if (!bi->reference || !bi->digest || !bi->layout)
                        return -ENOMEM;
        }
        return 0;
}

/* system: a store path; one of the closure's paths when the bundle has a closure. */
static int parse_system(json_t *v, BundleManifest *m, Error *e) {
        _cleanup_free_ char *dir = NULL;
        const char *s = json_string_value(v), *slash = s ? strrchr(s, '/') : NULL;

        /* No "." or ".." component, no hidden name: nothing but a plain absolute path. */
        if (!s || s[0] != '/' || !slash || slash == s || strlen(s) > 1024 || strstr(s, "/.") || strstr(s, "//"))
                return error_set(e, -EPERM, "manifest: 'system' must be a store path");
        dir = strndup(s, (size_t) (slash - s));
        if (!dir)
                return -ENOMEM;
        if (!is_store_path_of(s, dir))
                return error_set(e, -EPERM, "manifest: 'system' must be a store path");
        if (m->has_closure) {
                bool listed = false;

                for (char **p = m->paths; p && *p && !listed; p++)
                        listed = streq(*p, s);
                if (!streq(dir, m->store_dir) || !listed)
                        return error_set(e, -EPERM, "manifest: 'system' is not one of closure.paths");
        }
        m->system = strdup(s);
        return m->system ? 0 : -ENOMEM;
}

/* containers: {name: reference}; with images, each reference's image is in the bundle. */
static int parse_containers(json_t *v, BundleManifest *m, Error *e) {
        const char *name;
        json_t *ref;

        if (!json_is_object(v) || json_object_size(v) > BUNDLE_IMAGES_MAX)
                return error_set(e, -EPERM, "manifest: 'containers' must be an object of at most %u containers",
                                 BUNDLE_IMAGES_MAX);
        json_object_foreach(v, name, ref) {
                const char *r = json_string_value(ref);
                bool found = !m->has_images;

                if (strlen(name) == 0 || strlen(name) > 255)
                        return error_set(e, -EPERM, "manifest: containers: a name is empty or longer than 255 bytes");
                for (const char *c = name; *c; c++)
                        if (*c <= ' ' || *c > '~')
                                return error_set(e, -EPERM, "manifest: containers: a name has a character outside "
                                                 "printable ASCII");
                if (!r || strlen(r) == 0 || strlen(r) > 1024)
                        return error_set(e, -EPERM, "manifest: containers.%s: the image must be a reference of 1 to "
                                         "1024 bytes", name);
                for (size_t i = 0; i < m->n_images && !found; i++)
                        found = streq(m->images[i].reference, r);
                if (!found)
                        return error_set(e, -EPERM, "manifest: containers.%s: its image '%s' is not in 'images'", name,
                                         r);
        }
        m->containers = json_incref(v);
        return 0;
}

/* "base" (a delta): {"id": the base bundle's id, "sequence": its sequence, "revision": the
 * commit whose history the pack leaves out (optional), "blobs": the image blobs left out
 * (optional, checked by parse_base_blobs once the layouts are known)}; absent in a full
 * bundle. */
static int parse_base(json_t *v, BundleManifest *m, json_t **ret_blobs, Error *e) {
        json_error_t jerr;
        json_t *id, *sequence, *revision = NULL;
        int r;

        *ret_blobs = NULL;
        if (!v)
                return 0;
        if (json_unpack_ex(v, &jerr, JSON_STRICT, "{s:o, s:o, s?o, s?o}", "id", &id, "sequence", &sequence, "revision",
                           &revision, "blobs", ret_blobs) < 0)
                return error_set(e, -EPERM, "manifest: 'base': %s", jerr.text);
        if (!json_is_string(id) || !is_hex(json_string_value(id), BUNDLE_ID_LEN))
                return error_set(e, -EPERM, "manifest: 'base.id' must be a bundle id (64 lowercase hex digits)");
        if ((r = get_uint(sequence, "base.sequence", 1, &m->base_sequence, e)) < 0)
                return r;
        if (m->base_sequence >= m->sequence)
                return error_set(e, -EPERM, "manifest: 'base.sequence' is not below 'sequence'");
        if (revision) {
                if (!json_is_string(revision) || !is_hex(json_string_value(revision), 40))
                        return error_set(e, -EPERM, "manifest: 'base.revision' must be a commit id (40 lowercase hex digits)");
                memcpy(m->base_revision, json_string_value(revision), 41);
        }
        memcpy(m->base_id, json_string_value(id), BUNDLE_ID_LEN + 1);
        m->has_base = true;
        return 0;
}

/* base.blobs: [{"path": "<layout>/blobs/sha256/<hex>", "size": n}], each below the layout of
 * one of the images, named by its digest, listed once and not a member. */
static int parse_base_blobs(json_t *v, BundleManifest *m, Error *e) {
        json_t *b;
        size_t i;
        int r;

        if (!v)
                return 0;
        if (!json_is_array(v) || json_array_size(v) > BUNDLE_MEMBERS_MAX)
                return error_set(e, -EPERM, "manifest: 'base.blobs' must be an array of at most %u entries",
                                 BUNDLE_MEMBERS_MAX);
        m->base_blobs = calloc(MAX(json_array_size(v), 1u), sizeof(BundleBlob));
        if (!m->base_blobs)
                return -ENOMEM;
        json_array_foreach(v, i, b) {
                BundleBlob *bb = &m->base_blobs[m->n_base_blobs];
                const char *path, *hex = NULL;
                json_t *size;
                json_error_t jerr;
                char key[48];

                if (json_unpack_ex(b, &jerr, JSON_STRICT, "{s:s, s:o}", "path", &path, "size", &size) < 0)
                        return error_set(e, -EPERM, "manifest: base.blobs[%zu]: %s", i, jerr.text);
                for (size_t k = 0; k < m->n_images && !hex; k++) {
                        size_t n = strlen(m->images[k].layout);

                        if (strncmp(path, m->images[k].layout, n) == 0 && strncmp(path + n, "/blobs/sha256/", 14) == 0)
                                hex = path + n + strlen("/blobs/sha256/");
                }
                if (!hex || !is_hex(hex, 64) || !bundle_member_name_valid(path))
                        return error_set(e, -EPERM, "manifest: base.blobs[%zu]: '%s' is not a blob of an image layout "
                                         "of the bundle", i, path);
                if (bundle_manifest_find(m, path))
                        return error_set(e, -EPERM, "manifest: base.blobs[%zu]: '%s' is a member as well", i, path);
                for (size_t k = 0; k < m->n_base_blobs; k++)
                        if (streq(m->base_blobs[k].path, path))
                                return error_set(e, -EPERM, "manifest: base.blobs[%zu]: '%s' is listed twice", i, path);
                (void) snprintf(key, sizeof(key), "base.blobs[%zu].size", i);
                if ((r = get_uint(size, key, 0, &bb->size, e)) < 0)
                        return r;
                bb->path = strdup(path);
                if (!bb->path)
                        return -ENOMEM;
                memcpy(bb->sha256, hex, 65);
                m->n_base_blobs++;
        }
        return 0;
}

static int parse(json_t *j, BundleManifest *m, Error *e) {
        json_t *format, *version, *host, *revision, *sequence, *created, *expires, *repository, *closure, *images,
                *members, *system, *containers, *base = NULL, *base_blobs;
        uint64_t u;
        json_error_t jerr;
        int r;

        if (!json_is_object(j))
                return error_set(e, -EPERM, "manifest: not a JSON object");
        /* The format and version alone first: a newer format gets a clear message. */
        format = json_object_get(j, "format");
        version = json_object_get(j, "version");
        if (!json_is_string(format) || !streq(json_string_value(format), BUNDLE_FORMAT))
                return error_set(e, -EPERM, "manifest: not an %s manifest (format '%s')", BUNDLE_FORMAT,
                                 json_is_string(format) ? json_string_value(format) : "?");
        if (!json_is_integer(version) || json_integer_value(version) != BUNDLE_VERSION)
                return error_set(e, -EPERM, "manifest: unsupported format version %lld (this agent reads version %d)",
                                 json_is_integer(version) ? (long long) json_integer_value(version) : -1LL,
                                 BUNDLE_VERSION);

        if (json_unpack_ex(j, &jerr, JSON_STRICT,
                           "{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s?o}", "format", &format,
                           "version", &version, "host", &host, "revision", &revision, "system", &system, "containers",
                           &containers, "sequence", &sequence, "created", &created, "expires", &expires, "repository",
                           &repository, "closure", &closure, "images", &images, "members", &members, "base",
                           &base) < 0)
                return error_set(e, -EPERM, "manifest: %s", jerr.text);

        if ((r = dup_string(host, "host", &m->host, e)) < 0)
                return r;
        if (!json_is_string(revision) || !is_hex(json_string_value(revision), 40))
                return error_set(e, -EPERM, "manifest: 'revision' must be a commit id (40 lowercase hex digits)");
        memcpy(m->revision, json_string_value(revision), 41);
        if ((r = get_uint(sequence, "sequence", 1, &m->sequence, e)) < 0)
                return r;
        if ((r = get_uint(created, "created", 0, &u, e)) < 0)
                return r;
        m->created = (int64_t) u;
        if ((r = get_uint(expires, "expires", 0, &u, e)) < 0)
                return r;
        m->expires = (int64_t) u;
        if (m->expires <= m->created)
                return error_set(e, -EPERM, "manifest: 'expires' is not after 'created'");
        if ((r = parse_base(base, m, &base_blobs, e)) < 0)
                return r;

        if ((r = parse_members(members, m, e)) < 0)
                return r;
        if ((r = dup_string(repository, "repository", &m->repository, e)) < 0)
                return r;
        if (!bundle_manifest_find(m, m->repository))
                return error_set(e, -EPERM, "manifest: repository '%s' is not a listed member", m->repository);
        if ((r = parse_closure(closure, m, e)) < 0)
                return r;
        if ((r = parse_images(images, m, e)) < 0)
                return r;
        if ((r = parse_base_blobs(base_blobs, m, e)) < 0)
                return r;
        if ((r = parse_system(system, m, e)) < 0)
                return r;
        return parse_containers(containers, m, e);
}

int bundle_manifest_parse(const void *data, size_t size, BundleManifest *ret, Error *e) {
        BundleManifest m = {};
        json_error_t jerr;
        json_t *j;
        int r;

        if (size > BUNDLE_MANIFEST_MAX)
                return error_set(e, -EPERM, "manifest: larger than %u bytes", BUNDLE_MANIFEST_MAX);
        j = json_loadb(data, size, JSON_REJECT_DUPLICATES, &jerr);
        if (!j)
                return error_set(e, -EPERM, "manifest: not valid JSON: %s (line %d)", jerr.text, jerr.line);
        r = parse(j, &m, e);
        json_decref(j);
        if (r < 0) {
                bundle_manifest_done(&m);
                if (r == -ENOMEM)
                        error_set(e, r, "out of memory");
                return r;
        }
        *ret = m;
        return 0;
}
