/* SPDX-License-Identifier: MIT */
#pragma once

/* The steps that `pull` (engine.c) and `apply` (engine-bundle.c) share. Each returns
 * EXIT_OK, or the exit code of a run it has already recorded (refused, failed). */

#include "git.h"
#include "run.h"

#define REPO_DIR "repo.git"

/* The local mirror of the client repository below state-dir. */
ExitCode open_mirror(Run *run, char **ret_path, GitSource **ret);

/* Fast-forward from the deployed revision, and the commit signature when required. */
ExitCode verify_revision(Run *run, GitSource *git, const char *rev);

/* The images of the revision at flake into run->images; then their signatures, each from
 * the registry or from its OCI layout (ImageCheck.layout). */
ExitCode list_images(Run *run, const char *flake, const char *rev);
ExitCode check_images(Run *run, const char *rev);
