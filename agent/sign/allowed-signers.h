/* SPDX-License-Identifier: MIT */
#pragma once

/* OpenSSH allowed_signers files (ssh-keygen(1), ALLOWED SIGNERS): allowed-signers.c. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "basic/error.h"

#define ALLOWED_SIGNERS_MAX (1024u * 1024u)

/* One line of an allowed_signers file: principals [options] keytype base64-key [comment]. */
typedef struct AllowedSigner {
        char *principals;    /* as written, without the quotes */
        char *namespaces;    /* the namespaces="..." patterns; NULL: any namespace */
        time_t valid_after;  /* 0: none */
        time_t valid_before; /* 0: none */
        bool cert_authority; /* such a line vouches only for certificates: never matches here */
        char *key_type;
        uint8_t *key;        /* the decoded public key blob */
        size_t key_size;
} AllowedSigner;

/* Returns 1 with *ret filled, 0 for a blank or comment line (*ret untouched), -EINVAL with a
 * message for anything else. */
int allowed_signer_parse_line(const char *line, AllowedSigner *ret, Error *reterr);
void allowed_signer_done(AllowedSigner *a);

/* Whether the line's options let its key sign in namespace_ at now: 0 or -EKEYREJECTED. */
int allowed_signer_check(const AllowedSigner *a, const char *namespace_, time_t now, Error *reterr);

/* Reads the allowed_signers file (at most ALLOWED_SIGNERS_MAX bytes) and finds the first line
 * that lists the key blob (byte for byte) and lets it sign in namespace_ at now; *ret is then
 * owned by the caller. Every line is parsed: a malformed one anywhere is -EINVAL, with
 * "path:line: " in the message. -EKEYREJECTED when no line matches; -errno when unreadable. */
int allowed_signers_find(const char *path, const void *key, size_t key_size, const char *namespace_, time_t now,
                         AllowedSigner *ret, Error *reterr);
