/* SPDX-License-Identifier: MIT */
#pragma once

/* The system as nix sees it: one evaluation of a revision, the build of exactly what it gave,
 * the store, and the system profile. Every call goes through system.nix-command (`nix`); no
 * other nix program is run, so a wrapper given there serves every operation. Nothing here
 * knows where a revision came from. */

#include <stdbool.h>

#include "config/config.h"
#include "basic/error.h"

/* The flake reference of a host at an exact commit of a local bare repository:
 * git+file:///abs/repo.git?ref=<ref>&rev=<rev> (without "#host"). */
int flake_ref_for_revision(const char *repo_path, const char *ref, const char *rev, char **ret);

/* What one evaluation of nixosConfigurations.<host>.config gives. */
typedef struct SystemEval {
        char *drv_path;            /* the store derivation of system.build.toplevel */
        char *toplevel;            /* its output: the generation, once built */
        struct json_t *containers; /* {name: image reference} of virtualisation.oci-containers */
} SystemEval;

void system_eval_done(SystemEval *s);

/* `nix eval --json FLAKE#nixosConfigurations."HOST".config --apply ...`: the toplevel's
 * derivation and output path and the containers' images, in one evaluation (the derivation
 * is written to the store as a side effect, as every evaluation of a drvPath does). -EBADMSG
 * when the output is not what the expression gives; process_run()'s errors otherwise. */
int nix_evaluate_system(const Config *c, const char *flake, SystemEval *ret, Error *reterr);

/* Realises drv_path (no evaluation) with a GC root at out_link; its output must be
 * expected_toplevel (-EPROTO otherwise). offline: no substituter (what a signed bundle left
 * out is built here, never fetched). */
int nix_build_system(const Config *c, const char *drv_path, const char *expected_toplevel, const char *out_link,
                     bool offline, Error *reterr);

/* Makes link a garbage-collector root of path (a store path nix holds already): `nix build
 * --out-link LINK PATH`, which builds nothing and registers link as an indirect root. */
int nix_add_root(const Config *c, const char *link, const char *path, Error *reterr);

/* `nix flake archive --to TO FLAKE`: the sources of the flake and of every input, copied to the
 * store TO; their store paths are added to *paths. */
int nix_flake_archive(const Config *c, const char *flake, const char *to, char ***paths, Error *reterr);

/* 1 when the store holds path (valid, with its closure), 0 when it does not, <0 when nix could
 * not be asked. */
int nix_store_has(const Config *c, const char *path, Error *reterr);

/* The store path the system profile points to now. */
int profile_generation(const Config *c, char **ret, Error *reterr);

/* Points the system profile at generation as nixos-rebuild does: a new profile generation
 * (`nix build --profile`), unless the newest one holds it already. */
int profile_set(const Config *c, const char *generation, Error *reterr);

/* A delta bundle's binary cache at cache_dir leaves out the NARs of paths that the machine has:
 * *ret gets the paths of the closure of paths whose NAR the cache does not hold and that this
 * store does not have either (NULL: none), from `nix path-info --recursive` on the cache and
 * one `nix-store --check-validity --print-invalid`. */
int nix_cache_missing(const Config *c, const char *cache_dir, char *const *paths, char ***ret, Error *reterr);

/* The activity type of a path being copied, in nix's --log-format internal-json (actCopyPath). */
#define NIX_ACT_COPY_PATH 100

/* `nix path-info --json --recursive` of paths in the binary cache at cache_dir: an array of
 * {path, url, narSize, ...}. */
int nix_cache_path_info(const Config *c, const char *cache_dir, char *const *paths, struct json_t **ret,
                        Error *reterr);

/* {store path: NAR size} for paths and their closures in the binary cache at cache_dir. */
int nix_cache_nar_sizes(const Config *c, const char *cache_dir, char *const *paths, struct json_t **ret,
                        Error *reterr);

/* Deletes the system profile's old generations (nix-env --delete-generations): the newest keep
 * generations stay (the one the profile points to counts as one), and so does every generation
 * whose link points at a path of protect (the known-good generation, one in flight), whatever
 * its age. *ret_deleted: how many were deleted. */
int profile_prune(const Config *c, unsigned keep, char *const *protect, unsigned *ret_deleted, Error *reterr);

/* The number of the newest profile generation whose link points at generation, or 0.
 * Generation links are <profile>-<N>-link beside the profile. */
unsigned profile_generation_number(const Config *c, const char *generation);

/* Points the system profile back at the generation number that holds generation, when one
 * does (`nix profile rollback --to N`: no new number); else as profile_set(). */
int profile_switch_to(const Config *c, const char *generation, Error *reterr);
