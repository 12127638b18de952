/* SPDX-License-Identifier: MIT */
#pragma once

/* One strict base64 decoder for every place the agent reads base64 (Cosign signatures and
 * DSSE payloads, SSH signatures and keys, registry credentials). Strict: '=' only at the end,
 * and the bits that padding drops must be zero (as OpenSSH's b64_pton); CR and LF are always
 * skipped (some producers fold lines). */

#include <stddef.h>
#include <stdint.h>

typedef enum Base64Flags {
        BASE64_SKIP_SPACE = 1 << 0,       /* also skip ' ' and '\t' */
        BASE64_PADDING_OPTIONAL = 1 << 1, /* accept input without its '=' padding */
        BASE64_URL_ALPHABET = 1 << 2,     /* also accept the URL-safe alphabet (-, _), but one alphabet per input */
} Base64Flags;

/* 0 with a new buffer (NUL-terminated, not counted), -EBADMSG or -ENOMEM. */
int base64_decode(const char *s, size_t n, unsigned flags, uint8_t **ret, size_t *ret_size);
