/* SPDX-License-Identifier: MIT */
/* The registry client: its curl handle, one GET (timeouts, redirects, a cap on every body),
 * the authentication a registry asks for (a Bearer token from its token service, or basic
 * auth), and the registry as an ImageSource. What is fetched is registry-manifest.c's
 * (manifests, referrers) and registry-blob.c's (blobs). */
#include <inttypes.h>
#include <jansson.h>
#include <strings.h>

#include "basic/curl-dl.h"
#include "oci/image-ref.h"
#include "basic/log.h"
#include "oci/registry-auth.h"
#include "oci/registry-internal.h"
#include "oci/registry.h"
#include "basic/timeutil.h"

#define TOKEN_MAX (64 * 1024)
#define ERROR_BODY_MAX (1024 * 1024) /* the body of an answer other than 200, which is not read */
#define MAX_REDIRECTS 5

void registry_response_done(Response *r) {
        free(r->docker_digest);
        free(r->www_authenticate);
        *r = (Response) {};
}

static size_t on_body(char *ptr, size_t size, size_t n, void *userdata) {
        Response *r = userdata;
        size_t len = size * n;
        long status = 0;

        (void) sym_curl_easy_getinfo(r->curl, CURLINFO_RESPONSE_CODE, &status);
        if (status != 200) {
                r->dropped += len;
                if (r->dropped > ERROR_BODY_MAX) {
                        r->over_cap = true;
                        return 0; /* makes curl stop with CURLE_WRITE_ERROR */
                }
                return len;
        }
        if (blob_sink_write(r->sink, ptr, len) < 0) {
                r->over_cap = r->sink->error == -EFBIG;
                return 0;
        }
        return len;
}

static char *header_value(const char *line, size_t len, const char *name) {
        size_t n = strlen(name);

        if (len <= n + 1 || strncasecmp(line, name, n) != 0 || line[n] != ':')
                return NULL;
        line += n + 1;
        len -= n + 1;
        while (len > 0 && (*line == ' ' || *line == '\t'))
                line++, len--;
        while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == '\n' || line[len - 1] == ' '))
                len--;
        return strndup(line, len);
}

static size_t on_header(char *line, size_t size, size_t n, void *userdata) {
        Response *r = userdata;
        size_t len = size * n;
        char *v;

        /* Headers of a redirect or a 100 Continue come first: keep only the last answer's. */
        if (len >= 5 && strncmp(line, "HTTP/", 5) == 0) {
                free(r->docker_digest);
                free(r->www_authenticate);
                r->docker_digest = r->www_authenticate = NULL;
        } else if ((v = header_value(line, len, "Docker-Content-Digest"))) {
                free(r->docker_digest);
                r->docker_digest = v;
        } else if ((v = header_value(line, len, "WWW-Authenticate"))) {
                free(r->www_authenticate);
                r->www_authenticate = v;
        }
        return len;
}

int registry_client_new(const RegistryOptions *o, RegistryClient **ret, Error *e) {
        RegistryClient *c;
        int r;

        r = curl_dl_open(e);
        if (r < 0)
                return r;
        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->options = *o;
        c->curl = sym_curl_easy_init();
        if (!c->curl) {
                free(c);
                return error_set(e, -ENOMEM, "cannot create a curl handle");
        }
        *ret = c;
        return 0;
}

RegistryClient *registry_client_free(RegistryClient *c) {
        if (!c)
                return NULL;
        sym_curl_easy_cleanup(c->curl);
        free(c->token_key);
        free(c->token);
        free(c->no_referrers_api);
        free(c);
        return NULL;
}

static bool is_insecure(const RegistryClient *c, const char *registry) {
        for (char **i = c->options.insecure_registries; i && *i; i++)
                if (streq(*i, registry))
                        return true;
        return false;
}

unsigned registry_request_timeout(unsigned request_timeout, uint64_t max) {
        uint64_t blocks = max / REGISTRY_TIMEOUT_BLOCK + (max % REGISTRY_TIMEOUT_BLOCK != 0);

        if (request_timeout == 0)
                return 0;
        blocks = MAX(blocks, (uint64_t) 1);
        if (blocks > REGISTRY_TIMEOUT_MAX / request_timeout)
                return REGISTRY_TIMEOUT_MAX;
        return (unsigned) (blocks * request_timeout);
}

/* curl says CURLE_OPERATION_TIMEDOUT for each of its three limits: which one it was. curl
 * may end a request a millisecond before its deadline by our clock: hence the slack. */
static int timeout_error(const RegistryClient *c, CURL *h, const char *url, unsigned timeout, usec_t elapsed,
                         Error *e) {
        curl_off_t connected = 0;

        if (timeout > 0 && elapsed + 100 * USEC_PER_MSEC >= timeout * USEC_PER_SEC) {
                if (timeout == c->options.request_timeout)
                        return error_set(e, -ETIMEDOUT,
                                         "%s: timed out: the answer did not end within %u s (images.request-timeout)",
                                         url, timeout);
                return error_set(e, -ETIMEDOUT,
                                 "%s: timed out: the answer did not end within %u s (images.request-timeout, "
                                 "%u s for each 64 MiB of the blob)",
                                 url, timeout, c->options.request_timeout);
        }
        (void) sym_curl_easy_getinfo(h, CURLINFO_CONNECT_TIME_T, &connected);
        if (connected == 0)
                return error_set(e, -ETIMEDOUT, "%s: timed out: no connection within %u s (images.connect-timeout)", url,
                                 c->options.connect_timeout);
        return error_set(e, -ETIMEDOUT, "%s: timed out: nothing received for %u s (images.stall-timeout)", url,
                         c->options.stall_timeout);
}

/* One GET. Authentication comes either as a header line ("Authorization: ...") or as user
 * and password for basic auth. */
static int http_get(RegistryClient *c, const char *url, const char *accept, const char *authorization,
                    const char *user, const char *password, BlobSink *sink, Response *ret, Error *e) {
        unsigned timeout = registry_request_timeout(c->options.request_timeout, sink->max);
        char errbuf[CURL_ERROR_SIZE] = "";
        struct curl_slist *headers = NULL;
        Response r = { .curl = c->curl, .sink = sink };
        usec_t start, elapsed;
        CURLcode cc;
        CURL *h = c->curl;

        sym_curl_easy_reset(h);
        if (accept)
                headers = sym_curl_slist_append(headers, accept);
        if (authorization)
                headers = sym_curl_slist_append(headers, authorization);

        (void) sym_curl_easy_setopt(h, CURLOPT_URL, url);
        (void) sym_curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
        (void) sym_curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
        /* Never from https down to plain http. */
        (void) sym_curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR,
                                    strncasecmp(url, "https://", 8) == 0 ? "https" : "http,https");
        /* Blobs are often served by a redirect to storage. curl does not carry our
         * Authorization header to another host. */
        (void) sym_curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
        (void) sym_curl_easy_setopt(h, CURLOPT_MAXREDIRS, (long) MAX_REDIRECTS);
        (void) sym_curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, (long) c->options.connect_timeout);
        (void) sym_curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
        (void) sym_curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, (long) c->options.stall_timeout);
        /* Redirects, a dropped error body and all: one deadline for the whole GET. */
        (void) sym_curl_easy_setopt(h, CURLOPT_TIMEOUT, (long) timeout);
        (void) sym_curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
        (void) sym_curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t) MIN(sink->max, (uint64_t) INT64_MAX));
        (void) sym_curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        (void) sym_curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
        (void) sym_curl_easy_setopt(h, CURLOPT_WRITEDATA, &r);
        (void) sym_curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
        (void) sym_curl_easy_setopt(h, CURLOPT_HEADERDATA, &r);
        (void) sym_curl_easy_setopt(h, CURLOPT_USERAGENT, "atticd-agent");
        if (c->options.ca_file)
                (void) sym_curl_easy_setopt(h, CURLOPT_CAINFO, c->options.ca_file);
        if (user) {
                (void) sym_curl_easy_setopt(h, CURLOPT_USERNAME, user);
                (void) sym_curl_easy_setopt(h, CURLOPT_PASSWORD, password);
                (void) sym_curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long) CURLAUTH_BASIC);
        }

        start = now_usec(CLOCK_MONOTONIC);
        cc = sym_curl_easy_perform(h);
        elapsed = now_usec(CLOCK_MONOTONIC) - start;
        sym_curl_slist_free_all(headers);
        (void) sym_curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL); /* errbuf is about to go */
        (void) sym_curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r.status);

        if (r.over_cap || cc == CURLE_FILESIZE_EXCEEDED) {
                registry_response_done(&r);
                return error_set(e, -EFBIG, "%s: the answer is larger than %" PRIu64 " bytes", url,
                                 r.dropped > ERROR_BODY_MAX ? (uint64_t) ERROR_BODY_MAX : sink->max);
        }
        if (cc == CURLE_WRITE_ERROR && sink->error < 0) {
                registry_response_done(&r);
                return error_set(e, sink->error, "%s: cannot keep the answer: %s", url, strerror(-sink->error));
        }
        switch (cc) {
        case CURLE_OK:
                break;
        case CURLE_OPERATION_TIMEDOUT:
                registry_response_done(&r);
                return timeout_error(c, h, url, timeout, elapsed, e);
        case CURLE_PARTIAL_FILE:
                registry_response_done(&r);
                return error_set(e, -EHOSTUNREACH, "%s: the registry closed the connection before the end of the answer (%s)",
                                 url, errbuf[0] ? errbuf : sym_curl_easy_strerror(cc));
        case CURLE_UNSUPPORTED_PROTOCOL:
                registry_response_done(&r);
                return error_set(e, -EBADMSG, "%s: redirected to a protocol other than https (%s)", url,
                                 errbuf[0] ? errbuf : sym_curl_easy_strerror(cc));
        case CURLE_TOO_MANY_REDIRECTS:
                registry_response_done(&r);
                return error_set(e, -EBADMSG, "%s: more than %d redirects", url, MAX_REDIRECTS);
        case CURLE_PEER_FAILED_VERIFICATION:
        case CURLE_SSL_CACERT_BADFILE:
                registry_response_done(&r);
                return error_set(e, -EKEYREJECTED, "%s: the TLS certificate is not trusted (%s)", url,
                                 sym_curl_easy_strerror(cc));
        default:
                registry_response_done(&r);
                return error_set(e, -EHOSTUNREACH, "%s: %s", url, errbuf[0] ? errbuf : sym_curl_easy_strerror(cc));
        }
        *ret = r;
        return 0;
}

/* Why the token service at realm must not get the registry's credentials, or NULL when it may:
 * only over https (plain http only for a registry in insecure-registries), and only on the
 * registry's own host or a host of images.token-hosts. */
static const char *realm_refuses_credentials(const RegistryClient *c, const char *realm, const char *registry) {
        _cleanup_(curl_url_origin_done) UrlOrigin ro = {}, go = {};
        _cleanup_free_ char *registry_url = NULL;

        if (asprintf(&registry_url, "https://%s/", registry) < 0)
                return "out of memory";
        if (curl_url_origin(realm, &ro) < 0 || curl_url_origin(registry_url, &go) < 0)
                return "its URL does not parse";
        if (strcasecmp(ro.scheme, "https") != 0 && !is_insecure(c, registry))
                return "it is plain http, and the registry is not in images.insecure-registries";
        if (strcasecmp(ro.host, go.host) == 0)
                return NULL;
        for (char **h = c->options.token_hosts; h && *h; h++)
                if (strcasecmp(*h, ro.host) == 0)
                        return NULL;
        return "it is neither on the registry's host nor in images.token-hosts";
}

static int get_token(RegistryClient *c, const AuthChallenge *ch, const char *registry, const char *repository,
                     const char *user, const char *password, char **ret, Error *e) {
        _cleanup_free_ char *url = NULL, *scope = NULL;
        _cleanup_(blob_sink_done) BlobSink body = { .fd = -1 };
        char *service = NULL, *scope_esc = NULL;
        Response r = {};
        json_t *j, *t;
        long status;
        int k;

        if (!ch->realm || (strncmp(ch->realm, "https://", 8) != 0 && strncmp(ch->realm, "http://", 7) != 0))
                return error_set(e, -EBADMSG, "the registry's Bearer challenge has no usable realm");
        if (user) {
                const char *why = realm_refuses_credentials(c, ch->realm, registry);

                if (why) {
                        log_warning("Not sending the credentials for %s to its token service %s: %s. Asking for a token "
                                    "without them.",
                                    registry, ch->realm, why);
                        user = password = NULL;
                }
        }
        if (!ch->scope && asprintf(&scope, "repository:%s:pull", repository) < 0)
                return -ENOMEM;
        service = ch->service ? sym_curl_easy_escape(c->curl, ch->service, 0) : NULL;
        scope_esc = sym_curl_easy_escape(c->curl, ch->scope ?: scope, 0);
        k = asprintf(&url, "%s%sscope=%s%s%s", ch->realm, strchr(ch->realm, '?') ? "&" : "?", strempty(scope_esc),
                     service ? "&service=" : "", strempty(service));
        sym_curl_free(service);
        sym_curl_free(scope_esc);
        if (k < 0 || blob_sink_init(&body, -1, TOKEN_MAX) < 0)
                return -ENOMEM;

        k = http_get(c, url, NULL, NULL, user, password, &body, &r, e);
        if (k < 0)
                return k;
        status = r.status; /* registry_response_done() clears it */
        registry_response_done(&r);
        if (status == 401 || status == 403)
                return error_set(e, -EACCES, "the token service %s refused %s (HTTP %ld)", ch->realm,
                                 user ? "the credentials" : "access without credentials", status);
        /* An outage of the token service (5xx, 429) is the environment's, not a refusal. */
        if (status != 200)
                return error_set(e, status >= 500 || status == 429 ? -EHOSTUNREACH : -EBADMSG,
                                 "the token service %s answered HTTP %ld", ch->realm, status);
        j = json_loadb((const char *) body.buf.data, body.buf.size, 0, NULL);
        t = j ? json_object_get(j, "token") : NULL;
        if (!json_is_string(t))
                t = j ? json_object_get(j, "access_token") : NULL;
        if (!json_is_string(t) || json_string_length(t) == 0 || json_string_length(t) > 16384) {
                json_decref(j);
                return error_set(e, -EBADMSG, "the token service %s answered without a token", ch->realm);
        }
        k = asprintf(ret, "Authorization: Bearer %s", json_string_value(t));
        json_decref(j);
        return k < 0 ? -ENOMEM : 0;
}

/* A GET below /v2/ of a registry, authenticating when the registry asks to. */
int registry_request(RegistryClient *c, const char *registry, const char *repository, const char *path,
                     const char *accept, BlobSink *sink, Response *ret, Error *e) {
        _cleanup_free_ char *url = NULL, *key = NULL, *user = NULL, *password = NULL;
        AuthChallenge ch = {};
        Response r = {};
        int k;

        if (asprintf(&url, "%s://%s/v2/%s/%s", is_insecure(c, registry) ? "http" : "https", registry, repository,
                     path) < 0 ||
            asprintf(&key, "%s/%s", registry, repository) < 0)
                return -ENOMEM;

        k = http_get(c, url, accept, streq_ptr(c->token_key, key) ? c->token : NULL, NULL, NULL, sink, &r, e);
        if (k < 0)
                return k;
        if (r.status != 401) {
                *ret = r;
                return 0;
        }

        /* The registry wants credentials: Bearer (a token from its token service) or Basic. */
        if (!r.www_authenticate || auth_challenge_parse(r.www_authenticate, &ch) < 0) {
                registry_response_done(&r);
                return error_set(e, -EACCES, "%s: HTTP 401 without a usable WWW-Authenticate challenge", url);
        }
        registry_response_done(&r);

        if (c->options.auth_file) {
                Error ae = {};

                k = registry_auth_lookup(c->options.auth_file, registry, &user, &password, &ae);
                if (k < 0 && k != -ENOENT) {
                        auth_challenge_done(&ch);
                        if (e)
                                *e = ae;
                        return k;
                }
        }

        if (strcasecmp(ch.scheme, "Bearer") == 0) {
                free(c->token);
                free(c->token_key);
                c->token = c->token_key = NULL;
                k = get_token(c, &ch, registry, repository, user, password, &c->token, e);
                auth_challenge_done(&ch);
                if (k < 0)
                        return k;
                c->token_key = TAKE_PTR(key);
                k = http_get(c, url, accept, c->token, NULL, NULL, sink, &r, e);
        } else if (strcasecmp(ch.scheme, "Basic") == 0) {
                auth_challenge_done(&ch);
                if (!user)
                        return error_set(e, -EACCES, "%s requires credentials, and registry-auth-file has none for %s",
                                         url, registry);
                k = http_get(c, url, accept, NULL, user, password, sink, &r, e);
        } else {
                k = error_set(e, -EACCES, "%s: unsupported authentication scheme '%s'", url, ch.scheme);
                auth_challenge_done(&ch);
        }
        if (k < 0)
                return k;
        if (r.status == 401 || r.status == 403) {
                registry_response_done(&r);
                return error_set(e, -EACCES, "%s: the registry refused the credentials (HTTP %ld)", url, r.status);
        }
        *ret = r;
        return 0;
}

int registry_status_error(const Response *r, const char *what, Error *e) {
        if (r->status == 404)
                return error_set(e, -ENOENT, "%s: not found", what);
        if (r->status == 401 || r->status == 403)
                return error_set(e, -EACCES, "%s: access denied (HTTP %ld)", what, r->status);
        if (r->status >= 500)
                return error_set(e, -EHOSTUNREACH, "%s: the registry answered HTTP %ld", what, r->status);
        return error_set(e, -EBADMSG, "%s: unexpected HTTP %ld", what, r->status);
}

int registry_expect_ok(Response *r, const char *what, Error *e) {
        int k;

        if (r->status == 200)
                return 0;
        k = registry_status_error(r, what, e);
        registry_response_done(r);
        return k;
}

/* ---- the registry as an ImageSource ---- */

typedef struct RegistrySource {
        ImageSource source;
        RegistryClient *client;
        ImageRef ref;
} RegistrySource;

static int rs_get_manifest(ImageSource *s, const char *reference, Buffer *ret_body, char **ret_media_type,
                           char **ret_digest, Error *e) {
        RegistrySource *rs = (RegistrySource *) s;

        return registry_get_manifest(rs->client, rs->ref.registry, rs->ref.repository,
                                     reference ?: rs->ref.digest ?: rs->ref.tag, ret_body, ret_media_type, ret_digest, e);
}

static int rs_get_blob(ImageSource *s, const char *digest, size_t max, Buffer *ret, Error *e) {
        RegistrySource *rs = (RegistrySource *) s;

        return registry_get_blob(rs->client, rs->ref.registry, rs->ref.repository, digest, max, ret, e);
}

static int rs_get_blob_to_fd(ImageSource *s, const char *digest, uint64_t max, int fd, uint64_t *ret_size, Error *e) {
        RegistrySource *rs = (RegistrySource *) s;

        return registry_get_blob_to_fd(rs->client, rs->ref.registry, rs->ref.repository, digest, max, fd, ret_size, e);
}

static int rs_get_referrers(ImageSource *s, const char *digest, Buffer *ret, Error *e) {
        RegistrySource *rs = (RegistrySource *) s;
        char fallback[IMAGE_DIGEST_LEN + 1];
        int r;

        r = registry_get_referrers(rs->client, rs->ref.registry, rs->ref.repository, digest, ret, e);
        if (r != -ENOENT)
                return r;
        (void) snprintf(fallback, sizeof(fallback), "sha256-%s", digest + 7);
        return registry_get_manifest(rs->client, rs->ref.registry, rs->ref.repository, fallback, ret, NULL, NULL, e);
}

static void rs_free(ImageSource *s) {
        RegistrySource *rs = (RegistrySource *) s;

        image_ref_done(&rs->ref);
        free(rs);
}

static const ImageSourceOps registry_source_ops = {
        .get_manifest = rs_get_manifest,
        .get_blob = rs_get_blob,
        .get_blob_to_fd = rs_get_blob_to_fd,
        .get_referrers = rs_get_referrers,
        .free = rs_free,
};

int registry_source_new(RegistryClient *c, const ImageRef *ref, ImageSource **ret) {
        RegistrySource *rs;

        if (!ref->tag && !ref->digest)
                return -EINVAL;
        rs = calloc(1, sizeof(*rs));
        if (!rs)
                return -ENOMEM;
        rs->source.ops = &registry_source_ops;
        rs->client = c;
        rs->ref.registry = strdup(ref->registry);
        rs->ref.repository = strdup(ref->repository);
        rs->ref.tag = ref->tag ? strdup(ref->tag) : NULL;
        rs->ref.digest = ref->digest ? strdup(ref->digest) : NULL;
        if (!rs->ref.registry || !rs->ref.repository || (ref->tag && !rs->ref.tag) || (ref->digest && !rs->ref.digest)) {
                rs_free(&rs->source);
                return -ENOMEM;
        }
        *ret = &rs->source;
        return 0;
}
