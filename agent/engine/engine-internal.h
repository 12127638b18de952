/* SPDX-License-Identifier: MIT */
#pragma once

/* The steps that `pull` (engine.c) and `apply` (engine-bundle.c) share, and the steps of
 * `apply` in files of their own (engine-bundle-*.c). Each returns EXIT_OK, or the exit code of
 * a run it has already recorded (refused, failed). */

#include "bundle/bundle.h"
#include "git/git.h"
#include "system/nix.h"
#include "engine/run.h"

#define REPO_DIR "repo.git"

/* The local mirror of the client repository below state-dir. */
ExitCode engine_open_mirror(Run *run, char **ret_path, GitSource **ret);

/* Fetches repository.url into the mirror and resolves repository.ref: the mirror, its path and
 * the commit id. */
ExitCode engine_fetch_revision(Run *run, char **ret_repo_path, GitSource **ret_git, char rev[static COMMIT_ID_HEX + 1]);

/* Fast-forward from the deployed revision, and the commit signature when required. */
ExitCode engine_verify_revision(Run *run, GitSource *git, const char *rev);

/* The one evaluation of the revision at flake: its toplevel (derivation and output) into ret,
 * its images into run->images. A failure is recorded as the revision's (deploy_failed()). */
ExitCode engine_evaluate_revision(Run *run, const char *flake, const char *rev, SystemEval *ret);

/* The signatures of run->images, each from the registry or from its OCI layout
 * (ImageCheck.layout). */
ExitCode engine_check_images(Run *run, const char *rev);

/* ---- apply (engine-bundle.c) ---- */

/* No space or no quota left in dir while a bundle is applied: a transient failure that names
 * the file system and the space needed (about needed bytes), recorded. */
ExitCode engine_no_space(Run *run, const char *rev, const char *dir, uint64_t needed, int r, const Error *e);

/* A delta bundle (m->has_base): this machine applied its base, and holds every path and image
 * blob the delta leaves out (engine-bundle-delta.c); refused with REASON=base otherwise. */
ExitCode engine_check_delta(Run *run, const BundleManifest *m, const char *staging);

/* With bundle.nix-keys, every path of the staged closure is signed by one of them
 * (engine-bundle-closure.c). */
ExitCode engine_verify_nix_signatures(Run *run, const BundleManifest *m, const char *staging);

/* The staged closure into the store (nix copy); progress, when not NULL, counts it. */
ExitCode engine_import_closure(Run *run, const BundleManifest *m, const char *staging, Progress *progress);
