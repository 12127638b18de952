/* SPDX-License-Identifier: MIT */
/* OpenSSH allowed_signers files (agent/sign/allowed-signers.c): each line through
 * allowed_signer_parse_line() and allowed_signer_check(), and the whole input as a file
 * through allowed_signers_find(), looking for the key of its first valid line.
 *
 * What must hold: a parsed line has principals, a key type and a key blob that names that
 * type, and a validity window that is not empty; a file with a malformed line is refused
 * whatever key is looked for; what allowed_signers_find() returns passes allowed_signer_check()
 * and is the key looked for. */

#include "fuzz-common.h"
#include "basic/macro.h"
#include "sign/allowed-signers.h"
#include "sign/ssh-key.h"
#include "sign/sshsig.h"

#define NOW ((time_t) 1748736000)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_free_ char *text = fuzz_strndup(data, size);
        _cleanup_free_ uint8_t *key = NULL;
        size_t key_size = 0;
        bool malformed = false;
        AllowedSigner found = {};
        Error e = {};
        int r;

        if (size > ALLOWED_SIGNERS_MAX)
                return 0;
        for (char *line = text, *next; line; line = next) {
                AllowedSigner a = {};

                next = strchr(line, '\n');
                if (next)
                        *next++ = 0;
                r = allowed_signer_parse_line(line, &a, &e);
                if (r < 0) {
                        if (r != -EINVAL && r != -ENOMEM)
                                fuzz_fail("allowed_signer_parse_line() failed with %d", r);
                        malformed = true;
                        continue;
                }
                if (r == 0)
                        continue;
                if (!a.principals || !a.principals[0] || !a.key_type || !a.key || a.key_size < 4 + strlen(a.key_type) ||
                    memcmp(a.key + 4, a.key_type, strlen(a.key_type)) != 0)
                        fuzz_fail("a parsed line without principals, key type or a key of that type");
                if (a.valid_after != 0 && a.valid_before != 0 && a.valid_before <= a.valid_after)
                        fuzz_fail("a parsed line valid before %lld and after %lld", (long long) a.valid_before,
                                  (long long) a.valid_after);
                (void) allowed_signer_check(&a, "git", NOW, NULL);
                (void) allowed_signer_check(&a, "file", 1, NULL);
                if (!key) {
                        key = TAKE_PTR(a.key);
                        key_size = a.key_size;
                }
                allowed_signer_done(&a);
        }

        /* The input again, as a file; with NUL bytes it is refused as a whole. */
        if (fuzz_write_file(fuzz_tmp_path("allowed_signers"), data, size) < 0)
                abort();
        r = allowed_signers_find(fuzz_tmp_path("allowed_signers"), key ?: (const uint8_t *) "", key_size, "git", NOW,
                                 &found, &e);
        fuzz_report("allowed_signers_find", r, &e);
        if (r == 0) {
                if (malformed || memchr(data, 0, size))
                        fuzz_fail("a file with a malformed line was accepted");
                if (found.key_size != key_size || memcmp(found.key, key, key_size) != 0)
                        fuzz_fail("allowed_signers_find() returned another key");
                if (allowed_signer_check(&found, "git", NOW, NULL) < 0 || found.cert_authority)
                        fuzz_fail("allowed_signers_find() returned a line that may not sign");
        } else if (r != -EINVAL && r != -EKEYREJECTED && r != -ENOMEM)
                fuzz_fail("allowed_signers_find() failed with %d: %s", r, e.message);
        else if (r == -EKEYREJECTED && malformed)
                fuzz_fail("a file with a malformed line was read to the end: %s", e.message);
        allowed_signer_done(&found);
        return 0;
}
