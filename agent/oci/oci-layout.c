/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <sys/stat.h>

#include "sign/cosign.h"
#include "basic/fileio.h"
#include "oci/oci-layout.h"
#include "oci/registry.h"

#define OCI_LAYOUT_FILE_MAX 4096
#define INDEX_ENTRIES_MAX 4096 /* entries of index.json */
#define CHILDREN_MAX 1024      /* manifests of an image index */
#define LAYERS_MAX 4096        /* layers of a manifest (cosign writes up to 1000 signatures) */
#define INDEX_DEPTH_MAX 2      /* an index of indexes, no deeper */
#define READ_CHUNK (64 * 1024)
#define BLOBS_DIR "blobs/sha256"
#define PARTIAL BLOBS_DIR "/.partial" /* a blob being written; one writer per layout */
#define OCI_INDEX_TYPE "application/vnd.oci.image.index.v1+json"
#define OCI_MANIFEST_TYPE "application/vnd.oci.image.manifest.v1+json"

/* "blobs/sha256/<hex>" of a valid digest. */
static void blob_name(const char *digest, char ret[static sizeof(BLOBS_DIR "/") + 64]) {
        (void) snprintf(ret, sizeof(BLOBS_DIR "/") + 64, BLOBS_DIR "/%s", digest + 7);
}

/* ---- reading ---- */

typedef struct Layout {
        ImageSource source;
        int dirfd;
        char *path;
        char *pinned;      /* the digest the image must have, or NULL */
        json_t *index;     /* index.json */
        json_t *manifests; /* its manifests (borrowed) */
} Layout;

/* A regular file of the layout (no symlink, no device) into sink, at most sink->max bytes. */
static int read_into(int dirfd, const char *name, BlobSink *sink) {
        _cleanup_close_ int fd = -EBADF;
        uint8_t buf[READ_CHUNK];
        struct stat st;

        fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW | O_NONBLOCK);
        if (fd < 0)
                return errno == ELOOP ? -EBADMSG : -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EBADMSG;
        if ((uint64_t) st.st_size > sink->max)
                return -EFBIG;
        for (;;) {
                ssize_t n = read(fd, buf, sizeof(buf));
                int r;

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        return 0;
                r = blob_sink_write(sink, buf, (size_t) n);
                if (r < 0)
                        return r;
        }
}

static int read_blob(Layout *l, const char *digest, BlobSink *sink, Error *e) {
        char name[sizeof(BLOBS_DIR "/") + 64], actual[IMAGE_DIGEST_LEN + 1];
        int r;

        if (!image_digest_is_valid(digest))
                return error_set(e, -EBADMSG, "OCI layout '%s': '%s' is not a sha256 digest", l->path, digest);
        blob_name(digest, name);
        r = read_into(l->dirfd, name, sink);
        if (r == -ENOENT)
                return error_set(e, r, "OCI layout '%s': no blob %s", l->path, digest);
        if (r == -EFBIG)
                return error_set(e, r, "OCI layout '%s': blob %s is larger than %" PRIu64 " bytes", l->path, digest,
                                 sink->max);
        if (r == -EBADMSG)
                return error_set(e, r, "OCI layout '%s': blob %s is not a regular file", l->path, digest);
        if (r < 0)
                return error_set(e, r, "OCI layout '%s': cannot read blob %s: %s", l->path, digest, strerror(-r));
        r = blob_sink_finish(sink, actual);
        if (r < 0)
                return r;
        if (!streq(actual, digest))
                return error_set(e, -EBADMSG, "OCI layout '%s': blob %s hashes to %s", l->path, digest, actual);
        return 0;
}

/* The entry of index.json with ref name `name`: its digest (borrowed) and size. */
static int lookup(Layout *l, const char *name, const char **ret_digest, uint64_t *ret_size, Error *e) {
        json_t *m, *found = NULL, *size;
        const char *digest;
        size_t i;

        json_array_foreach(l->manifests, i, m) {
                json_t *ann = json_object_get(m, "annotations");

                if (!json_is_object(ann) || !streq_ptr(json_string_value(json_object_get(ann, OCI_REF_NAME_ANNOTATION)), name))
                        continue;
                if (found)
                        return error_set(e, -EBADMSG, "OCI layout '%s': index.json names '%s' twice", l->path, name);
                found = m;
        }
        if (!found)
                return error_set(e, -ENOENT, "OCI layout '%s': index.json has no '%s'", l->path, name);
        digest = json_string_value(json_object_get(found, "digest"));
        size = json_object_get(found, "size");
        if (!image_digest_is_valid(digest) || !json_is_integer(size) || json_integer_value(size) < 0)
                return error_set(e, -EBADMSG, "OCI layout '%s': index.json's '%s' has no valid digest and size", l->path,
                                 name);
        *ret_digest = digest;
        *ret_size = (uint64_t) json_integer_value(size);
        return 0;
}

static int layout_get_manifest(ImageSource *s, const char *reference, Buffer *ret_body, char **ret_media_type,
                               char **ret_digest, Error *e) {
        Layout *l = (Layout *) s;
        _cleanup_(blob_sink_done) BlobSink sink = { .fd = -1 };
        _cleanup_free_ char *mt = NULL;
        const char *digest = reference;
        uint64_t size = UINT64_MAX;
        int r;

        if (!reference || !image_digest_is_valid(reference)) {
                r = lookup(l, reference ?: OCI_LAYOUT_IMAGE_REF_NAME, &digest, &size, e);
                if (r < 0)
                        return r;
                if (!reference && l->pinned && !streq(digest, l->pinned))
                        return error_set(e, -EBADMSG, "OCI layout '%s': the image is %s, the reference names %s", l->path,
                                         digest, l->pinned);
        }
        if (blob_sink_init(&sink, -1, MANIFEST_MAX) < 0)
                return -ENOMEM;
        r = read_blob(l, digest, &sink, e);
        if (r < 0)
                return r;
        if (size != UINT64_MAX && sink.size != size)
                return error_set(e, -EBADMSG, "OCI layout '%s': manifest %s has %" PRIu64 " bytes, index.json says %" PRIu64,
                                 l->path, digest, sink.size, size);
        r = manifest_media_type(&sink.buf, &mt);
        if (r == -EBADMSG)
                return error_set(e, r, "OCI layout '%s': manifest %s is not a JSON object", l->path, digest);
        if (r < 0)
                return r;
        if (ret_digest && !(*ret_digest = strdup(digest)))
                return -ENOMEM;
        if (ret_media_type)
                *ret_media_type = TAKE_PTR(mt);
        *ret_body = sink.buf;
        sink.buf = (Buffer) {};
        return 0;
}

static int layout_get_blob(ImageSource *s, const char *digest, size_t max, Buffer *ret, Error *e) {
        _cleanup_(blob_sink_done) BlobSink sink = { .fd = -1 };
        int r;

        if (blob_sink_init(&sink, -1, max) < 0)
                return -ENOMEM;
        r = read_blob((Layout *) s, digest, &sink, e);
        if (r < 0)
                return r;
        *ret = sink.buf;
        sink.buf = (Buffer) {};
        return 0;
}

static int layout_get_blob_to_fd(ImageSource *s, const char *digest, uint64_t max, int fd, uint64_t *ret_size,
                                 Error *e) {
        _cleanup_(blob_sink_done) BlobSink sink = { .fd = -1 };
        int r;

        if (fd < 0)
                return -EBADF;
        if (blob_sink_init(&sink, fd, max) < 0)
                return -ENOMEM;
        r = read_blob((Layout *) s, digest, &sink, e);
        if (r < 0)
                return r;
        if (ret_size)
                *ret_size = sink.size;
        return 0;
}

static int layout_get_referrers(ImageSource *s, const char *digest, Buffer *ret, Error *e) {
        char name[IMAGE_DIGEST_LEN + 1];

        if (!image_digest_is_valid(digest))
                return error_set(e, -EBADMSG, "'%s' is not a sha256 digest", digest);
        (void) snprintf(name, sizeof(name), "sha256-%s", digest + 7);
        return layout_get_manifest(s, name, ret, NULL, NULL, e);
}

static void layout_free(ImageSource *s) {
        Layout *l = (Layout *) s;

        if (l->dirfd >= 0)
                close(l->dirfd);
        free(l->path);
        free(l->pinned);
        json_decref(l->index);
        free(l);
}

static const ImageSourceOps layout_ops = {
        .get_manifest = layout_get_manifest,
        .get_blob = layout_get_blob,
        .get_blob_to_fd = layout_get_blob_to_fd,
        .get_referrers = layout_get_referrers,
        .free = layout_free,
};

/* A small JSON file of the layout (oci-layout, index.json). */
static int read_json(Layout *l, const char *name, size_t max, json_t **ret, Error *e) {
        _cleanup_(blob_sink_done) BlobSink sink = { .fd = -1 };
        int r;

        if (blob_sink_init(&sink, -1, max) < 0)
                return -ENOMEM;
        r = read_into(l->dirfd, name, &sink);
        if (r == -EBADMSG)
                return error_set(e, r, "OCI layout '%s': %s is not a regular file", l->path, name);
        if (r < 0)
                return error_set(e, r, "OCI layout '%s': cannot read %s: %s", l->path, name, strerror(-r));
        *ret = json_loadb((const char *) sink.buf.data, sink.buf.size, JSON_REJECT_DUPLICATES, NULL);
        if (!json_is_object(*ret)) {
                json_decref(*ret);
                *ret = NULL;
                return error_set(e, -EBADMSG, "OCI layout '%s': %s is not a JSON object", l->path, name);
        }
        return 0;
}

int oci_layout_open(const char *path, const ImageRef *ref, ImageSource **ret, Error *e) {
        _cleanup_(image_source_freep) ImageSource *s = NULL;
        json_t *version = NULL;
        Layout *l;
        int r;

        l = calloc(1, sizeof(*l));
        if (!l)
                return -ENOMEM;
        l->source.ops = &layout_ops;
        l->dirfd = -EBADF;
        s = &l->source;
        l->path = strdup(path);
        l->pinned = ref && ref->digest ? strdup(ref->digest) : NULL;
        if (!l->path || (ref && ref->digest && !l->pinned))
                return -ENOMEM;

        l->dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (l->dirfd < 0)
                return error_set(e, -errno, "cannot open the OCI layout '%s': %s", path, strerror(errno));

        r = read_json(l, "oci-layout", OCI_LAYOUT_FILE_MAX, &version, e);
        if (r < 0)
                return r;
        r = streq_ptr(json_string_value(json_object_get(version, "imageLayoutVersion")), "1.0.0");
        json_decref(version);
        if (!r)
                return error_set(e, -EBADMSG, "OCI layout '%s': oci-layout does not say imageLayoutVersion 1.0.0", path);

        r = read_json(l, "index.json", MANIFEST_MAX, &l->index, e);
        if (r < 0)
                return r;
        l->manifests = json_object_get(l->index, "manifests");
        if (!json_is_array(l->manifests))
                return error_set(e, -EBADMSG, "OCI layout '%s': index.json has no manifests", path);
        if (json_array_size(l->manifests) > INDEX_ENTRIES_MAX)
                return error_set(e, -EFBIG, "OCI layout '%s': index.json has more than %d manifests", path,
                                 INDEX_ENTRIES_MAX);
        *ret = TAKE_PTR(s);
        return 0;
}

/* ---- writing ---- */

typedef struct Writer {
        ImageSource *src;
        const char *dir;
        int dirfd;
        json_t *refs; /* index.json's manifests */
} Writer;

static bool is_transient(int r) {
        return r != -ENOENT && r != -EBADMSG && r != -EFBIG;
}

/* Moves the partial file into place as the blob digest. Not fsync()ed: the layout is a work
 * directory that bundle create packs right away, and a layer of gigabytes would have to be
 * written out before the next one; what goes on is the atomic rename. */
static int commit_partial(Writer *w, int *fd, const char *digest, Error *e) {
        char name[sizeof(BLOBS_DIR "/") + 64];
        int r = 0;

        if (close(TAKE_FD(*fd)) < 0)
                r = -errno;
        blob_name(digest, name);
        if (r == 0 && renameat(w->dirfd, PARTIAL, w->dirfd, name) < 0)
                r = -errno;
        if (r < 0)
                return error_set(e, r, "cannot write '%s/%s': %s", w->dir, name, strerror(-r));
        return 0;
}

static int open_partial(Writer *w, int *ret, Error *e) {
        int fd = openat(w->dirfd, PARTIAL, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);

        if (fd < 0)
                return error_set(e, -errno, "cannot write '%s/" PARTIAL "': %s", w->dir, strerror(errno));
        *ret = fd;
        return 0;
}

/* A manifest or index already read (and checked) as blob digest; *ret_digest when digest is
 * NULL (a Referrers API answer has none of its own). */
static int store_buffer(Writer *w, const Buffer *b, const char *digest, char ret_digest[static IMAGE_DIGEST_LEN + 1],
                        Error *e) {
        _cleanup_(blob_sink_done) BlobSink sink = { .fd = -1 };
        _cleanup_close_ int fd = -EBADF;
        int r;

        r = open_partial(w, &fd, e);
        if (r < 0)
                return r;
        if (blob_sink_init(&sink, fd, UINT64_MAX) < 0)
                return -ENOMEM;
        r = blob_sink_write(&sink, b->data, b->size);
        if (r >= 0)
                r = blob_sink_finish(&sink, ret_digest);
        if (r < 0)
                return error_set(e, r, "cannot write '%s/" PARTIAL "': %s", w->dir, strerror(-r));
        if (digest && !streq(digest, ret_digest))
                return error_set(e, -EBADMSG, "manifest %s hashes to %s", digest, ret_digest);
        return commit_partial(w, &fd, ret_digest, e);
}

/* A blob named by a descriptor, from the source into its file, at most max bytes. */
static int copy_blob(Writer *w, json_t *desc, uint64_t max, Error *e) {
        _cleanup_close_ int fd = -EBADF;
        char name[sizeof(BLOBS_DIR "/") + 64];
        const char *digest = json_string_value(json_object_get(desc, "digest"));
        json_t *size = json_object_get(desc, "size");
        uint64_t got = 0;
        struct stat st;
        int r;

        if (!image_digest_is_valid(digest) || !json_is_integer(size) || json_integer_value(size) < 0)
                return error_set(e, -EBADMSG, "a descriptor without a sha256 digest and a size");
        if ((uint64_t) json_integer_value(size) > max)
                return error_set(e, -EFBIG, "blob %s is larger than %" PRIu64 " bytes", digest, max);
        blob_name(digest, name);
        if (fstatat(w->dirfd, name, &st, AT_SYMLINK_NOFOLLOW) >= 0)
                return 0; /* written and checked already (a layer two platforms share) */
        r = open_partial(w, &fd, e);
        if (r < 0)
                return r;
        r = image_source_get_blob_to_fd(w->src, digest, (uint64_t) json_integer_value(size), fd, &got, e);
        if (r < 0)
                return r;
        if (got != (uint64_t) json_integer_value(size))
                return error_set(e, -EBADMSG, "blob %s has %" PRIu64 " bytes, its descriptor says %" PRIu64, digest,
                                 got, (uint64_t) json_integer_value(size));
        return commit_partial(w, &fd, digest, e);
}

static int add_ref(Writer *w, const char *name, const char *media_type, const char *digest, size_t size) {
        json_t *d = json_pack("{s:s, s:s, s:I, s:{s:s}}", "mediaType", media_type, "digest", digest, "size",
                              (json_int_t) size, "annotations", OCI_REF_NAME_ANNOTATION, name);

        return d && json_array_append_new(w->refs, d) == 0 ? 0 : -ENOMEM;
}

/* The manifest or index at reference (a tag, a digest, NULL: the image) and everything below
 * it; blob_max caps config and layers. When ref_name is set and all is there, index.json
 * names it so. */
static int copy_manifest(Writer *w, const char *reference, const char *ref_name, unsigned depth, uint64_t blob_max,
                         char ret_digest[static IMAGE_DIGEST_LEN + 1], Error *e) {
        _cleanup_free_ char *mt = NULL;
        Buffer body = {};
        json_t *j, *children, *layers, *config, *item;
        size_t i, size;
        int r;

        r = image_source_get_manifest(w->src, reference, &body, &mt, NULL, e);
        if (r < 0)
                return r;
        r = store_buffer(w, &body, image_digest_is_valid(reference) ? reference : NULL, ret_digest, e);
        j = r < 0 ? NULL : json_loadb((const char *) body.data, body.size, JSON_REJECT_DUPLICATES, NULL);
        size = body.size;
        buffer_done(&body);
        if (r < 0)
                return r;

        children = json_object_get(j, "manifests");
        config = json_object_get(j, "config");
        layers = json_object_get(j, "layers");
        if (json_is_array(children)) {
                if (depth >= INDEX_DEPTH_MAX || json_array_size(children) > CHILDREN_MAX)
                        r = error_set(e, -EFBIG, "index %s nests too deep or lists too many manifests", ret_digest);
                json_array_foreach(children, i, item) {
                        const char *d = json_string_value(json_object_get(item, "digest"));
                        char child[IMAGE_DIGEST_LEN + 1];

                        if (r < 0)
                                break;
                        if (!image_digest_is_valid(d))
                                r = error_set(e, -EBADMSG, "index %s lists a manifest without a sha256 digest", ret_digest);
                        else
                                r = copy_manifest(w, d, NULL, depth + 1, blob_max, child, e);
                }
        } else {
                if (json_is_object(config))
                        r = copy_blob(w, config, blob_max, e);
                if (json_array_size(layers) > LAYERS_MAX)
                        r = error_set(e, -EFBIG, "manifest %s has more than %d layers", ret_digest, LAYERS_MAX);
                json_array_foreach(layers, i, item) {
                        if (r < 0)
                                break;
                        r = copy_blob(w, item, blob_max, e);
                }
        }
        if (r >= 0 && ref_name) {
                const char *type = mt;

                if (type[0] == 0) /* OCI allows a manifest that does not name its type */
                        type = json_is_array(children) ? OCI_INDEX_TYPE : OCI_MANIFEST_TYPE;
                r = add_ref(w, ref_name, type, ret_digest, size);
        }
        json_decref(j);
        return r;
}

/* A signature artifact: left out when missing or broken, as the verifier would not count it. */
static int copy_signature(Writer *w, const char *tag, Error *e) {
        char digest[IMAGE_DIGEST_LEN + 1];
        Error le = {};
        int r;

        r = copy_manifest(w, tag, tag, 0, COSIGN_DOCUMENT_MAX, digest, &le);
        if (r < 0 && is_transient(r)) {
                if (e)
                        *e = le;
                return r;
        }
        return 0;
}

/* The referrers index as the source has it, and every manifest it lists with its blobs. */
static int copy_referrers(Writer *w, const char *image_digest, Error *e) {
        char name[IMAGE_DIGEST_LEN + 1], digest[IMAGE_DIGEST_LEN + 1];
        _cleanup_free_ char *mt = NULL;
        Buffer body = {};
        json_t *j, *m;
        Error le = {};
        size_t i;
        int r;

        r = image_source_get_referrers(w->src, image_digest, &body, &le);
        if (r < 0 && is_transient(r)) {
                if (e)
                        *e = le;
                return r;
        }
        if (r < 0)
                return 0;
        j = json_loadb((const char *) body.data, body.size, JSON_REJECT_DUPLICATES, NULL);
        if (!json_is_array(json_object_get(j, "manifests"))) {
                json_decref(j);
                buffer_done(&body);
                return 0; /* not an index: no referrers */
        }
        (void) snprintf(name, sizeof(name), "sha256-%s", image_digest + 7);
        r = store_buffer(w, &body, NULL, digest, e);
        if (r >= 0)
                r = add_ref(w, name, OCI_INDEX_TYPE, digest, body.size);
        buffer_done(&body);
        json_array_foreach(json_object_get(j, "manifests"), i, m) {
                const char *d = json_string_value(json_object_get(m, "digest"));
                char child[IMAGE_DIGEST_LEN + 1];

                if (r < 0 || i >= REFERRERS_MAX)
                        break;
                if (!image_digest_is_valid(d))
                        continue;
                r = copy_manifest(w, d, NULL, 0, COSIGN_DOCUMENT_MAX, child, &le);
                if (r < 0 && !is_transient(r))
                        r = 0;
                else if (r < 0 && e)
                        *e = le;
        }
        json_decref(j);
        return r;
}

int oci_layout_write(ImageSource *src, const char *dir, char **ret_digest, Error *e) {
        _cleanup_free_ char *blobs = path_join(dir, BLOBS_DIR), *index_path = path_join(dir, "index.json"),
                            *layout_path = path_join(dir, "oci-layout"), *index = NULL;
        _cleanup_close_ int dirfd = -EBADF;
        char digest[IMAGE_DIGEST_LEN + 1], tag[IMAGE_DIGEST_LEN + 5];
        static const char version[] = "{\"imageLayoutVersion\":\"1.0.0\"}";
        Writer w = { .src = src, .dir = dir };
        int r;

        if (!blobs || !index_path || !layout_path)
                return -ENOMEM;
        r = mkdir_parents(blobs, 0755);
        if (r < 0)
                return error_set(e, r, "cannot create '%s': %s", blobs, strerror(-r));
        dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dirfd < 0)
                return error_set(e, -errno, "cannot open '%s': %s", dir, strerror(errno));
        w.dirfd = dirfd;
        w.refs = json_array();
        if (!w.refs)
                return -ENOMEM;

        r = copy_manifest(&w, NULL, OCI_LAYOUT_IMAGE_REF_NAME, 0, UINT64_MAX, digest, e);
        if (r >= 0) {
                (void) snprintf(tag, sizeof(tag), "sha256-%s.sig", digest + 7);
                r = copy_signature(&w, tag, e);
        }
        if (r >= 0) {
                (void) snprintf(tag, sizeof(tag), "sha256-%s.att", digest + 7);
                r = copy_signature(&w, tag, e);
        }
        if (r >= 0)
                r = copy_referrers(&w, digest, e);
        if (r >= 0) {
                json_t *j = json_pack("{s:i, s:s, s:O}", "schemaVersion", 2, "mediaType", OCI_INDEX_TYPE, "manifests",
                                      w.refs);

                index = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
                json_decref(j);
                r = index ? 0 : -ENOMEM;
        }
        json_decref(w.refs);
        (void) unlinkat(dirfd, PARTIAL, 0);
        if (r < 0)
                return r;

        /* index.json last: a layout with one is complete. */
        r = write_file_atomic(layout_path, version, strlen(version), 0644);
        if (r >= 0)
                r = write_file_atomic(index_path, index, strlen(index), 0644);
        if (r < 0)
                return error_set(e, r, "cannot write '%s': %s", index_path, strerror(-r));
        if (ret_digest && !(*ret_digest = strdup(digest)))
                return -ENOMEM;
        return 0;
}
