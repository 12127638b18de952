/* SPDX-License-Identifier: MIT */
#pragma once

/* Registry credentials: the docker config.json format ({"auths": {"host:port": {"auth":
 * base64("user:password")} or {"username": ..., "password": ...}}}), read from a file. */

#include "basic/error.h"

#define AUTH_FILE_MAX (1024 * 1024)

/* Looks up registry (host[:port]) in the file. -ENOENT when the file has no entry for it. */
int registry_auth_lookup(const char *auth_file, const char *registry, char **ret_user, char **ret_password,
                         Error *reterr);

/* The parsed WWW-Authenticate challenge (exposed for tests and fuzzing). */
typedef struct AuthChallenge {
        char scheme[16]; /* "Bearer" or "Basic" */
        char *realm;
        char *service;
        char *scope;
} AuthChallenge;

int auth_challenge_parse(const char *header, AuthChallenge *ret);
void auth_challenge_done(AuthChallenge *c);
