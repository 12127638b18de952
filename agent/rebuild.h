/* SPDX-License-Identifier: MIT */
#pragma once

/* The system: nixos-rebuild and the system profile. Everything here runs commands through
 * process.c and reads links; it knows nothing about where a revision came from. */

#include "config.h"
#include "error.h"

/* The flake reference of a host at an exact commit of a local bare repository:
 * git+file:///abs/repo.git?ref=<ref>&rev=<rev> (without "#host"). */
int flake_ref_for_revision(const char *repo_path, const char *ref, const char *rev, char **ret);

/* `nixos-rebuild build --flake FLAKE#HOST` in workdir; *ret gets the toplevel store path
 * (from workdir/result). -EPROTO when the build failed. offline adds `--option substituters ''`
 * (a bundle's deployment: what is not in the store is built here, never substituted). */
int rebuild_build(const Config *c, const char *flake, const char *workdir, bool offline, char **ret_toplevel,
                  Error *reterr);

/* `nixos-rebuild switch|boot --flake FLAKE#HOST` in workdir. */
int rebuild_activate(const Config *c, const char *flake, const char *workdir, SystemAction action, bool offline,
                     Error *reterr);

/* The store path the system profile points to now. */
int profile_generation(const Config *c, char **ret, Error *reterr);

/* Points the system profile at generation (a store path): back to the profile generation
 * that holds it when there is one (`nix-env --switch-generation N`, no new number), else a
 * new generation (`nix-env --set`). */
int profile_switch_to(const Config *c, const char *generation, Error *reterr);

/* Runs <generation>/bin/switch-to-configuration switch|boot. */
int generation_activate(const Config *c, const char *generation, SystemAction action, Error *reterr);
