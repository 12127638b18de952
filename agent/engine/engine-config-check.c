/* SPDX-License-Identifier: MIT */
/* `config check`, beyond the configuration file itself: the programs that deployments and
 * rollbacks run are there, the files the configuration names (repository.allowed-signers,
 * images.keys, images.keyless.trusted-root, bundle.keys) hold what their keys allow, read as the
 * commands will read them, and images.threshold has keys or identities to count. */

#include <unistd.h>

#include "engine/engine.h"
#include "bundle/bundle.h"
#include "sign/cosign-key.h"
#include "sign/allowed-signers.h"
#include "sign/sigstore-root.h"
#include "basic/fileio.h"
#include "basic/log.h"
#include "basic/strutil.h"
#include "system/activation.h"

int engine_check_tools(const Config *c, Error *e) {
        return activation_check_tools(c, e);
}

/* Whether a file the configuration names is on this machine: 1; 0 (after saying so) when it
 * is not, which is no error where it is only on the target machine (the NixOS module checks
 * the file at build time). */
static int file_here(const char *key, const char *path) {
        if (access(path, F_OK) == 0)
                return 1;
        log_warning("%s: '%s' is not on this machine: not read here (the agent reads it when it runs).", key, path);
        return 0;
}

static int check_allowed_signers(const Config *c, Error *e) {
        const char *path = c->repository.allowed_signers;
        _cleanup_free_ char *data = NULL;
        unsigned line = 0;
        size_t size;
        int r;

        if (!path || file_here("repository.allowed-signers", path) == 0)
                return 0;
        r = read_full_file(path, ALLOWED_SIGNERS_MAX, &data, &size);
        if (r < 0)
                return error_set(e, -EINVAL, "%s: repository.allowed-signers: cannot read '%s': %s", c->path, path,
                                 strerror(-r));
        for (char *l = data, *next; l && *l; l = next) {
                AllowedSigner a = {};
                Error le = {};

                next = strchr(l, '\n');
                if (next)
                        *next++ = 0;
                line++;
                r = allowed_signer_parse_line(l, &a, &le);
                allowed_signer_done(&a);
                if (r < 0)
                        return error_set(e, -EINVAL, "%s: repository.allowed-signers: %s:%u: %s", c->path, path, line,
                                         error_message(&le) ?: strerror(-r));
        }
        return 0;
}

static int check_keys(const Config *c, const char *key, char **paths, bool bundle, Error *e) {
        for (char **p = paths; p && *p; p++) {
                _cleanup_(cosign_keyring_freep) CosignKeyring *k = NULL;
                char *one[] = { *p, NULL };
                Error ke = {};
                int r;

                if (file_here(key, *p) == 0)
                        continue;
                r = bundle ? bundle_keyring_load(one, &k, &ke) : cosign_keyring_load(one, &k, &ke);
                if (r < 0)
                        return error_set(e, -EINVAL, "%s: %s: %s", c->path, key, error_message(&ke) ?: strerror(-r));
        }
        return 0;
}

/* A log of a key type the verifier does not support is kept out of the trust, and what it
 * signed is refused: said here, where an operator checks a new root, not at every run. */
static void warn_unsupported_logs(const char *path, const char *kind, const TrustedLog *logs, size_t n) {
        char hex[2 * sizeof(logs->key_id) + 1];

        for (size_t i = 0; i < n; i++)
                if (logs[i].unsupported)
                        log_warning("images.keyless.trusted-root: '%s': the %s '%s' (logId %s) has a key of a type "
                                    "this agent does not support (%s): what it logged is refused.",
                                    path, kind, strempty(logs[i].base_url),
                                    hex_encode(logs[i].key_id, sizeof(logs[i].key_id), hex), logs[i].unsupported);
}

static int check_trusted_root(const Config *c, Error *e) {
        _cleanup_(sigstore_root_freep) SigstoreTrustedRoot *root = NULL;
        const char *path = c->images.keyless.trusted_root;
        Error re = {};
        int r;

        if (!path || file_here("images.keyless.trusted-root", path) == 0)
                return 0;
        r = sigstore_root_load(path, &root, &re);
        if (r < 0)
                return error_set(e, -EINVAL, "%s: images.keyless.trusted-root: %s", c->path,
                                 error_message(&re) ?: strerror(-r));
        warn_unsupported_logs(path, "transparency log", root->tlogs, root->n_tlogs);
        warn_unsupported_logs(path, "certificate transparency log", root->ctlogs, root->n_ctlogs);
        return 0;
}

int engine_check_files(const Config *c, Error *e) {
        int r;

        r = check_allowed_signers(c, e);
        if (r >= 0)
                r = check_keys(c, "images.keys", c->images.keys, false, e);
        if (r >= 0)
                r = check_trusted_root(c, e);
        if (r >= 0)
                r = check_keys(c, "bundle.keys", c->bundle.keys, true, e);
        if (r >= 0 && strv_length(c->images.keys) == 0 && c->images.keyless.n_identities == 0 &&
            c->images.threshold > 1)
                r = error_set(e, -EINVAL, "%s: images.threshold: is %u, but images.keys is empty (no image is verified)",
                              c->path, c->images.threshold);
        return r;
}
