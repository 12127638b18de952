/* SPDX-License-Identifier: MIT */
#pragma once

/* The update engine: the state machine of a deployment. Commands call it; it calls the
 * sources (git), the verifiers and the system (nixos-rebuild, profile), and records each
 * phase in the state file before the side effect it stands for.
 *
 *   fetch -> resolve -> [no change: done] -> pin -> building -> activating -> recorded
 *
 * Every entry point returns an ExitCode. */

#include <stdbool.h>

#include "config/config.h"
#include "basic/error.h"
#include "basic/exitcode.h"

typedef struct PullOptions {
        bool retry; /* deploy a revision even though it failed before */
} PullOptions;

/* The programs that deployments and rollbacks run are there (activation_check_tools()): for
 * `config check`; every command that may deploy checks it first, too. */
int engine_check_tools(const Config *c, Error *reterr);

/* `pull`: fetch the configured repository and deploy its revision when it is new. */
ExitCode engine_pull(const Config *c, const PullOptions *o);

/* The files the configuration names (repository.allowed-signers, images.keys, bundle.keys),
 * read and checked as the commands will: -EINVAL with "CONFIG: KEY: what is wrong". A file
 * that is not on this machine is said to be unread, not an error (`config check` at build
 * time); a command that needs it fails then. */
int engine_check_files(const Config *c, Error *reterr);

/* `plan`: fetch, verify and build the new revision; print what activating it would change and
 * whether this host would take it now (--json: one object); activate nothing, write no state. */
ExitCode engine_plan(const Config *c, bool json);

/* `confirm`: after a boot, confirm a pending boot-activated deployment or roll it back. */
ExitCode engine_confirm(const Config *c);

/* `rollback`: back to the last known-good generation. */
ExitCode engine_rollback(const Config *c);

/* `check`: one round of the health checks against the running system; EXIT_OK or
 * EXIT_DEPLOY_FAILED (unhealthy). */
ExitCode engine_check(const Config *c, bool json);

/* `verify-images [--rev REV]`: the Cosign check of every image of the deployed revision (or
 * of REV, a commit or ref in the local mirror); changes nothing. */
ExitCode engine_verify_images(const Config *c, const char *rev, bool json);

typedef struct BundleOptions {
        bool allow_downgrade; /* accept a sequence not above the last one applied */
        bool quiet;           /* no progress on the terminal */
        bool reevaluate;      /* apply: evaluate the bundled flake offline; it must give the signed system */
} BundleOptions;

/* `verify BUNDLE`: reads and verifies the whole bundle; writes nothing, not even
 * last-run.json. EXIT_OK or EXIT_REFUSED. */
ExitCode engine_verify_bundle(const Config *c, const char *path, const BundleOptions *o, bool json);

/* `apply BUNDLE`: verifies the bundle while extracting it below state-dir, then imports its
 * history, closure and images and deploys its revision as `pull` would. */
ExitCode engine_apply_bundle(const Config *c, const char *path, const BundleOptions *o);

typedef struct VerifyBlobOptions {
        const char *bundle;       /* --bundle: the Sigstore bundle */
        const char *trusted_root; /* --trusted-root; NULL: SIGSTORE_TRUSTED_ROOT_DEFAULT */
        const char *identity;     /* --certificate-identity (keyless) */
        const char *identity_regexp; /* --certificate-identity-regexp, instead (basic/whole-match.h) */
        const char *issuer;       /* --certificate-oidc-issuer (keyless) */
        const char *issuer_regexp; /* --certificate-oidc-issuer-regexp, instead */
        const char *key;          /* --key: a PEM public key (a managed key), instead */
        const char *artifact;     /* the file the bundle signs */
} VerifyBlobOptions;

/* `verify-blob`: the bundle proves that the artifact was signed by the identity (or the key),
 * offline, against the trusted root; a one-line verdict. EXIT_OK, EXIT_REFUSED (also for a
 * bundle, trusted root or key file whose content is unusable), or EXIT_USAGE for a file that
 * cannot be read. Needs no configuration. */
ExitCode engine_verify_blob(const VerifyBlobOptions *o, bool json);
