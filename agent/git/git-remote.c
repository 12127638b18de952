/* SPDX-License-Identifier: MIT */
/* Fetching from the client repository's remote: transports, credentials, host keys,
 * timeouts. The fetch itself runs in a forked child: libgit2 1.5 has no timeouts of its own,
 * so the parent watches the child's progress and kills it when the remote does not answer or
 * the transfer stalls. The child dies with the agent (PR_SET_PDEATHSIG). */

#include <fcntl.h>
#include <inttypes.h>
#include <ftw.h>
#include <libssh2.h>
#include <poll.h>
#include <signal.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "basic/fileio.h"
#include "git/git-internal.h"
#include "basic/curl-dl.h"
#include "basic/log.h"
#include "basic/timeutil.h"

#define PASSWORD_FILE_MAX 4096
#define HEARTBEAT_INTERVAL (100 * USEC_PER_MSEC)

typedef struct FetchResult {
        int r;
        Error error;
} FetchResult;

typedef struct FetchContext {
        const GitRemote *remote;
        char *password;
        int heartbeat_fd;
        usec_t last_heartbeat;
        unsigned credential_attempts;
        int refusal;          /* set by a callback that refused the server: -EKEYREJECTED */
        Error refusal_error;
} FetchContext;

static void heartbeat(FetchContext *ctx) {
        usec_t now = now_usec(CLOCK_MONOTONIC);

        if (now - ctx->last_heartbeat < HEARTBEAT_INTERVAL)
                return;
        ctx->last_heartbeat = now;
        (void) !write(ctx->heartbeat_fd, "h", 1); /* non-blocking: a full pipe says enough */
}

static int on_transfer_progress(const git_indexer_progress *stats, void *payload) {
        FetchContext *ctx = payload;

        heartbeat(ctx);
        /* Endless data: a remote that keeps sending is cut off at the cap. */
        if (ctx->remote->max_fetch_size > 0 && stats->received_bytes > ctx->remote->max_fetch_size) {
                ctx->refusal = error_set(&ctx->refusal_error, -EFBIG,
                                         "%s: the remote sent more than %" PRIu64 " bytes (repository.max-fetch-size)",
                                         ctx->remote->url, ctx->remote->max_fetch_size);
                return -1;
        }
        return 0;
}

static int on_sideband(const char *str, int len, void *payload) {
        heartbeat(payload);
        return 0;
}

static int on_update_tips(const char *refname, const git_oid *a, const git_oid *b, void *payload) {
        heartbeat(payload);
        return 0;
}

static int on_credentials(git_credential **out, const char *url, const char *username_from_url,
                          unsigned int allowed_types, void *payload) {
        FetchContext *ctx = payload;
        const GitRemote *r = ctx->remote;

        heartbeat(ctx);

        /* libgit2 asks again after a refusal: the second time, the answer is no (and the
         * reason is ours: libgit2's last error may be an unrelated one by then). */
        if (++ctx->credential_attempts > 1) {
                ctx->refusal = error_set(&ctx->refusal_error, -EACCES, "%s: the remote refused the credentials (%s)",
                                         url, (allowed_types & GIT_CREDENTIAL_SSH_KEY) ? "the ssh key" :
                                         "http-username and http-password-file");
                return GIT_EAUTH;
        }

        if ((allowed_types & GIT_CREDENTIAL_USERPASS_PLAINTEXT) && r->http_username && ctx->password) {
                /* Only to the scheme, host and port of repository.url: never to where a
                 * redirect led, nor over http when the URL says https. */
                if (!curl_same_origin(url, r->url)) {
                        log_warning("Not sending repository.http-username's credentials to %s: they are for %s only.",
                                    url, r->url);
                        ctx->refusal = error_set(&ctx->refusal_error, -EACCES,
                                                 "%s: the remote sent the fetch to %s, which does not get the "
                                                 "credentials of repository.url",
                                                 r->url, url);
                        return GIT_PASSTHROUGH;
                }
                return git_credential_userpass_plaintext_new(out, r->http_username, ctx->password);
        }
        if ((allowed_types & GIT_CREDENTIAL_SSH_KEY) && r->ssh_key)
                return git_credential_ssh_key_new(out, username_from_url ?: "git", NULL, r->ssh_key, NULL);
        if ((allowed_types & GIT_CREDENTIAL_USERNAME))
                return git_credential_username_new(out, username_from_url ?: "git");

        if (allowed_types & GIT_CREDENTIAL_USERPASS_PLAINTEXT)
                ctx->refusal = error_set(&ctx->refusal_error, -EACCES,
                                         "%s: the remote asks for credentials, and none are configured "
                                         "(repository.http-username, repository.http-password-file)", url);
        return GIT_PASSTHROUGH; /* no credentials configured for this kind of remote */
}

/* The proxy answered 407. The agent has no proxy credentials of its own: they come from the
 * proxy's URL (http_proxy, https_proxy), which libgit2 has tried already if it had any. */
static int on_proxy_credentials(git_credential **out, const char *url, const char *username_from_url,
                                unsigned int allowed_types, void *payload) {
        FetchContext *ctx = payload;

        (void) out, (void) url, (void) allowed_types;
        ctx->refusal = error_set(&ctx->refusal_error, -EACCES,
                                 "%s: the proxy refused %s (HTTP 407): give the proxy's user and password in its URL, "
                                 "https_proxy=http://USER:PASSWORD@HOST:PORT", ctx->remote->url,
                                 username_from_url ? "the credentials in its URL" : "to go on without credentials");
        return GIT_EAUTH;
}

/* The port of an ssh URL, for the known_hosts lookup: ssh://[user@]host[:port]/path, git's
 * bracketed scp-like form [user@host:port]:path, or 22 for plain user@host:path. */
static int ssh_url_port(const char *url) {
        const char *p, *host_end;

        if (url[0] == '[') {
                const char *close = strstr(url, "]:"), *colon;

                if (!close)
                        return 22;
                colon = memrchr(url, ':', (size_t) (close - url));
                return colon ? (int) strtol(colon + 1, NULL, 10) ?: 22 : 22;
        }
        p = strstr(url, "://");
        if (!p)
                return 22;
        p += 3;
        host_end = p + strcspn(p, "/");
        if (memchr(p, '@', (size_t) (host_end - p)))
                p = (const char *) memchr(p, '@', (size_t) (host_end - p)) + 1;
        if (*p == '[')
                p = memchr(p, ']', (size_t) (host_end - p)) ?: p;
        p = memchr(p, ':', (size_t) (host_end - p));
        if (!p)
                return 22;
        return (int) strtol(p + 1, NULL, 10) ?: 22;
}

static int knownhost_type(git_cert_ssh_raw_type_t t) {
        switch (t) {
        case GIT_CERT_SSH_RAW_TYPE_RSA:
                return LIBSSH2_KNOWNHOST_KEY_SSHRSA;
        case GIT_CERT_SSH_RAW_TYPE_DSS:
                return LIBSSH2_KNOWNHOST_KEY_SSHDSS;
        case GIT_CERT_SSH_RAW_TYPE_KEY_ECDSA_256:
                return LIBSSH2_KNOWNHOST_KEY_ECDSA_256;
        case GIT_CERT_SSH_RAW_TYPE_KEY_ECDSA_384:
                return LIBSSH2_KNOWNHOST_KEY_ECDSA_384;
        case GIT_CERT_SSH_RAW_TYPE_KEY_ECDSA_521:
                return LIBSSH2_KNOWNHOST_KEY_ECDSA_521;
        case GIT_CERT_SSH_RAW_TYPE_KEY_ED25519:
                return LIBSSH2_KNOWNHOST_KEY_ED25519;
        default:
                return -1;
        }
}

/* The ssh host key must be in the configured known_hosts file (libssh2 reads and matches
 * it, hashed host names included). libgit2 1.5 would accept any key without this. */
static int check_ssh_host_key(FetchContext *ctx, const git_cert_hostkey *cert, const char *host) {
        const GitRemote *r = ctx->remote;
        LIBSSH2_SESSION *session = NULL;
        LIBSSH2_KNOWNHOSTS *hosts = NULL;
        struct libssh2_knownhost *found = NULL;
        int type, port, check, n;

        if (!(cert->type & GIT_CERT_SSH_RAW) || (type = knownhost_type(cert->raw_type)) < 0) {
                ctx->refusal = error_set(&ctx->refusal_error, -EKEYREJECTED,
                                         "the ssh server %s offered a host key of a type that cannot be checked", host);
                return GIT_ECERTIFICATE;
        }
        if (!r->ssh_known_hosts) {
                ctx->refusal = error_set(&ctx->refusal_error, -EKEYREJECTED,
                                         "no ssh-known-hosts file is configured to check the host key of %s", host);
                return GIT_ECERTIFICATE;
        }

        session = libssh2_session_init();
        hosts = session ? libssh2_knownhost_init(session) : NULL;
        if (!hosts) {
                if (session)
                        libssh2_session_free(session);
                ctx->refusal = error_set(&ctx->refusal_error, -EKEYREJECTED, "cannot set up the known_hosts check");
                return GIT_ECERTIFICATE;
        }

        n = libssh2_knownhost_readfile(hosts, r->ssh_known_hosts, LIBSSH2_KNOWNHOST_FILE_OPENSSH);
        port = ssh_url_port(r->url);
        check = n < 0 ? LIBSSH2_KNOWNHOST_CHECK_FAILURE
                      : libssh2_knownhost_checkp(hosts, host, port, cert->hostkey, cert->hostkey_len,
                                                 LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW | type,
                                                 &found);
        libssh2_knownhost_free(hosts);
        libssh2_session_free(session);

        switch (check) {
        case LIBSSH2_KNOWNHOST_CHECK_MATCH:
                return 0;
        case LIBSSH2_KNOWNHOST_CHECK_MISMATCH:
                ctx->refusal = error_set(&ctx->refusal_error, -EKEYREJECTED,
                                         "the host key of %s (port %d) does NOT match the one in '%s': someone may be "
                                         "impersonating the server, or its key changed",
                                         host, port, r->ssh_known_hosts);
                break;
        case LIBSSH2_KNOWNHOST_CHECK_NOTFOUND:
                ctx->refusal = error_set(&ctx->refusal_error, -EKEYREJECTED,
                                         "the host key of %s (port %d) is not in '%s'", host, port, r->ssh_known_hosts);
                break;
        default:
                ctx->refusal = error_set(&ctx->refusal_error, -EKEYREJECTED, "cannot read known_hosts file '%s'",
                                         r->ssh_known_hosts);
        }
        return GIT_ECERTIFICATE;
}

static int on_certificate_check(git_cert *cert, int valid, const char *host, void *payload) {
        FetchContext *ctx = payload;

        heartbeat(ctx);
        if (cert->cert_type == GIT_CERT_HOSTKEY_LIBSSH2)
                return check_ssh_host_key(ctx, (const git_cert_hostkey *) cert, host);
        if (valid)
                return 0;
        ctx->refusal = error_set(&ctx->refusal_error, -EKEYREJECTED,
                                 "the TLS certificate of %s is not trusted%s", host,
                                 ctx->remote->ca_file ? " by the configured ca-file" : " (set repository.ca-file?)");
        return GIT_ECERTIFICATE;
}

/* In the child: the fetch itself. */
static FetchResult fetch_child(GitSource *s, FetchContext *ctx) {
        git_remote *remote = NULL;
        char *refspecs[] = {
                (char *) "+refs/heads/*:refs/remotes/origin/*",
                (char *) "+refs/tags/*:refs/tags/*",
        };
        git_strarray specs = { .strings = refspecs, .count = ELEMENTSOF(refspecs) };
        git_fetch_options opts = GIT_FETCH_OPTIONS_INIT;
        const GitRemote *r = ctx->remote;
        FetchResult res = {};
        int k;

        if (r->ca_file && git_libgit2_opts(GIT_OPT_SET_SSL_CERT_LOCATIONS, r->ca_file, NULL) < 0) {
                res.r = git_map_error(-1, &res.error, r->ca_file);
                return res;
        }

        /* Anonymous: the URL always comes from the configuration, never from the mirror. */
        k = git_remote_create_anonymous(&remote, s->repo, r->url);
        if (k < 0) {
                res.r = git_map_error(k, &res.error, r->url);
                return res;
        }

        opts.prune = GIT_FETCH_PRUNE;
        opts.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;
        opts.update_fetchhead = 0;
        opts.proxy_opts.type = GIT_PROXY_AUTO; /* http_proxy, https_proxy, no_proxy */
        opts.proxy_opts.credentials = on_proxy_credentials;
        opts.proxy_opts.payload = ctx;
        opts.callbacks.credentials = on_credentials;
        opts.callbacks.certificate_check = on_certificate_check;
        opts.callbacks.transfer_progress = on_transfer_progress;
        opts.callbacks.sideband_progress = on_sideband;
        opts.callbacks.update_tips = on_update_tips;
        opts.callbacks.payload = ctx;
        /* With credentials, no redirect to another host at all: libgit2 would carry the
         * credentials it has along (on_credentials refuses them to any other origin too). */
        if (r->http_username)
                opts.follow_redirects = GIT_REMOTE_REDIRECT_NONE;

        k = git_remote_fetch(remote, &specs, &opts, NULL);
        if (k < 0) {
                const git_error *ge = git_error_last();
                int klass = ge ? ge->klass : GIT_ERROR_NONE;

                if (ctx->refusal < 0) {
                        res.r = ctx->refusal;
                        res.error = ctx->refusal_error;
                } else {
                        res.r = git_map_error(k, &res.error, r->url);
                        /* Damage on our side is ours; anything else the remote did, or a
                         * remote that is not there (an unmounted path too), is worth another
                         * try later. */
                        if (res.r != -EACCES && res.r != -EKEYREJECTED && klass != GIT_ERROR_ODB &&
                            klass != GIT_ERROR_ZLIB && klass != GIT_ERROR_OBJECT && klass != GIT_ERROR_INDEX &&
                            klass != GIT_ERROR_NOMEMORY)
                                res.r = -EHOSTUNREACH;
                }
        }
        git_remote_free(remote);
        return res;
}

static int remove_lock_file(const char *path, const struct stat *st, int type, struct FTW *ftw) {
        size_t l = strlen(path);

        if (type == FTW_D && streq(path + ftw->base, "objects"))
                return FTW_SKIP_SUBTREE;
        if (type == FTW_F && l > 5 && streq(path + l - 5, ".lock")) {
                log_debug("Removing stale lock file '%s'.", path);
                (void) unlink(path);
        }
        return FTW_CONTINUE;
}

/* A fetch that was killed leaves libgit2's *.lock files behind, which would make every later
 * fetch fail. The agent's own lock guarantees nobody else works in the mirror. */
static void remove_stale_locks(const char *path) {
        (void) nftw(path, remove_lock_file, 16, FTW_PHYS | FTW_MOUNT | FTW_ACTIONRETVAL);
}

static int read_password(const char *path, char **ret, Error *e) {
        _cleanup_free_ char *buf = NULL;
        size_t size;
        int r;

        r = read_full_file(path, PASSWORD_FILE_MAX, &buf, &size);
        if (r < 0)
                return error_set(e, r, "cannot read http-password-file '%s': %s", path, strerror(-r));
        /* One line: the password or token; a trailing newline is not part of it. */
        buf[strcspn(buf, "\r\n")] = 0;
        if (!buf[0])
                return error_set(e, -EINVAL, "http-password-file '%s' is empty", path);
        *ret = TAKE_PTR(buf);
        return 0;
}

_noreturn_ static void run_child(GitSource *s, FetchContext *ctx, pid_t parent, int result_fd) {
        FetchResult res;

        (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
                _exit(1);

        res = fetch_child(s, ctx);
        (void) !write(result_fd, &res, sizeof(res));
        _exit(0);
}

/* libgit2 (1.5 at least; its issue #5650) writes the requests for a plain http:// remote in
 * the form meant for a proxy, but sends them to the remote itself: http_proxy is never used for
 * it. Where the network allows only the proxy, such a fetch fails as "unreachable"; this says
 * why beforehand. https:// remotes go through the proxy (a CONNECT tunnel). */
static void warn_http_proxy_unused(const char *url) {
        const char *proxy = getenv("http_proxy") ?: getenv("HTTP_PROXY");

        if (strncasecmp(url, "http://", strlen("http://")) != 0 || !proxy || !*proxy)
                return;
        log_warning("http_proxy is set, but libgit2 fetches plain http:// remotes without a proxy: %s is asked "
                    "directly. An https:// URL goes through the proxy.", url);
}

/* A fetch in flight: the child that runs it, and what the parent watches of it. */
typedef struct FetchWatch {
        const GitRemote *remote;
        pid_t child;
        int pidfd;
        int heartbeat;  /* read end: a byte per progress callback of the child */
        int result;     /* read end: the child's FetchResult */
        int status;     /* the child's wait status */
} FetchWatch;

static void fetch_watch_done(FetchWatch *w) {
        closep(&w->pidfd);
        closep(&w->heartbeat);
        closep(&w->result);
}

/* The child (run_child) with its heartbeat and result pipes. */
static int fetch_spawn(GitSource *s, FetchContext *ctx, FetchWatch *w, Error *e) {
        int hb[2] = { -EBADF, -EBADF }, res[2] = { -EBADF, -EBADF };
        pid_t parent = getpid();
        int r = 0;

        if (pipe2(hb, O_CLOEXEC | O_NONBLOCK) < 0 || pipe2(res, O_CLOEXEC) < 0) {
                r = error_set(e, -errno, "cannot create pipes: %m");
                goto finish;
        }
        ctx->heartbeat_fd = hb[1];
        w->child = fork();
        if (w->child < 0) {
                r = error_set(e, -errno, "cannot fork: %m");
                goto finish;
        }
        if (w->child == 0) {
                close(hb[0]);
                close(res[0]);
                run_child(s, ctx, parent, res[1]);
        }
        w->heartbeat = TAKE_FD(hb[0]);
        w->result = TAKE_FD(res[0]);
        w->pidfd = (int) syscall(SYS_pidfd_open, w->child, 0);
finish:
        for (int i = 0; i < 2; i++) {
                closep(&hb[i]);
                closep(&res[i]);
        }
        return r;
}

/* Until the child is gone: killed when it does not answer in connect-timeout, stalls for
 * stall-timeout, or runs past fetch-timeout. */
static int fetch_watch(FetchWatch *w, Error *e) {
        const GitRemote *remote = w->remote;
        usec_t start = now_usec(CLOCK_MONOTONIC), last = 0;

        for (;;) {
                usec_t now = now_usec(CLOCK_MONOTONIC);
                usec_t limit = last ? last + remote->stall_timeout * USEC_PER_SEC
                                    : start + remote->connect_timeout * USEC_PER_SEC;
                usec_t deadline = remote->fetch_timeout > 0 ? start + remote->fetch_timeout * USEC_PER_SEC
                                                            : USEC_INFINITY;
                struct pollfd p[2];
                nfds_t n = 0;
                int timeout_ms;

                if (now >= deadline) {
                        /* Slow retrieval: a remote that drips just fast enough never stalls. */
                        (void) kill(w->child, SIGKILL);
                        (void) waitpid(w->child, &w->status, 0);
                        return error_set(e, -ETIMEDOUT, "%s: the fetch did not finish within %u s (repository.fetch-timeout)",
                                         remote->url, remote->fetch_timeout);
                }
                limit = MIN(limit, deadline);
                if (now >= limit) {
                        (void) kill(w->child, SIGKILL);
                        (void) waitpid(w->child, &w->status, 0);
                        if (last)
                                return error_set(e, -ETIMEDOUT, "%s: the transfer stalled (no progress for %u s)",
                                                 remote->url, remote->stall_timeout);
                        return error_set(e, -ETIMEDOUT, "%s: no answer within %u s", remote->url,
                                         remote->connect_timeout);
                }
                timeout_ms = (int) MIN((limit - now) / USEC_PER_MSEC + 1, (usec_t) 1000);
                if (w->pidfd < 0)
                        timeout_ms = MIN(timeout_ms, 50);

                if (w->heartbeat >= 0)
                        p[n++] = (struct pollfd) { .fd = w->heartbeat, .events = POLLIN };
                if (w->pidfd >= 0)
                        p[n++] = (struct pollfd) { .fd = w->pidfd, .events = POLLIN };
                (void) poll(p, n, timeout_ms);

                if (w->heartbeat >= 0) {
                        char buf[256];
                        ssize_t k = read(w->heartbeat, buf, sizeof(buf));

                        if (k > 0)
                                last = now_usec(CLOCK_MONOTONIC);
                        else if (k == 0)
                                closep(&w->heartbeat);
                }
                if (waitpid(w->child, &w->status, WNOHANG) == w->child)
                        return 0;
        }
}

/* What the child reported. */
static int fetch_result(FetchWatch *w, Error *e) {
        FetchResult res = { .r = -EIO };

        if (read(w->result, &res, sizeof(res)) != (ssize_t) sizeof(res))
                return error_set(e, -EIO, "%s: the fetch ended without a result (%s %d)", w->remote->url,
                                 WIFSIGNALED(w->status) ? "signal" : "status",
                                 WIFSIGNALED(w->status) ? WTERMSIG(w->status) : WEXITSTATUS(w->status));
        if (res.r < 0 && e)
                *e = res.error;
        return res.r;
}

int git_source_fetch(GitSource *s, const GitRemote *remote, Error *e) {
        _cleanup_free_ char *password = NULL;
        _cleanup_(fetch_watch_done) FetchWatch w = {
                .remote = remote, .pidfd = -EBADF, .heartbeat = -EBADF, .result = -EBADF,
        };
        FetchContext ctx = { .remote = remote };
        int r;

        if (remote->http_password_file) {
                r = read_password(remote->http_password_file, &password, e);
                if (r < 0)
                        return r;
                ctx.password = password;
                /* Its URL parser decides where the password may go; loaded here, before the
                 * fork, so that the fetch child does not load a library. */
                r = curl_dl_open(e);
                if (r < 0)
                        return r;
        }
        remove_stale_locks(s->path);
        warn_http_proxy_unused(remote->url);

        r = fetch_spawn(s, &ctx, &w, e);
        if (r >= 0)
                r = fetch_watch(&w, e);
        if (r >= 0)
                r = fetch_result(&w, e);
        if (r < 0)
                return r;
        /* The child changed the mirror behind this process's libgit2 caches. */
        return git_source_reopen(s, e);
}
