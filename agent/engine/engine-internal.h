/* SPDX-License-Identifier: MIT */
#pragma once

/* The steps that `pull` (engine.c) and `apply` (engine-bundle.c) share. Each returns
 * EXIT_OK, or the exit code of a run it has already recorded (refused, failed). */

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
