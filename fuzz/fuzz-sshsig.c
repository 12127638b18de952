/* SPDX-License-Identifier: MIT */
/* SSH signatures (OpenSSH's SSHSIG, as git writes them with gpg.format=ssh): sshsig_verify()
 * (agent/sign/sshsig.c) with its armor, base64, wire format, key and signature parsers, and the
 * allowed_signers file it reads (agent/sign/allowed-signers.c). Chunked input (fuzz-common.h):
 *
 *   head     the armored signature ("-----BEGIN SSH SIGNATURE-----" ...)
 *   1        the signed data (a commit); empty when absent
 *
 * Each input is verified twice, in namespace "git" at 2025-06-01:
 *   1. against keys/sshsig/allowed_signers (the keys of tests/data/sshsig), so that the seeds
 *      reach the signature check;
 *   2. when the signature parses, against a file that lists the key the signature names, so
 *      that any key blob the fuzzer makes reaches the key parser and OpenSSL.
 *
 * What must hold: an accepted signature names a signer with a principal from the file used and
 * a "SHA256:" fingerprint. */

#include <openssl/evp.h>

#include "fuzz-common.h"
#include "basic/macro.h"
#include "sign/allowed-signers.h"
#include "sign/ssh-key.h"
#include "sign/sshsig.h"

#define NOW ((time_t) 1748736000)

static void verify(const char *signers, const char *armored, const FuzzChunks *c, const char *principal) {
        SshsigSigner s = {};
        Error e = {};
        int r;

        r = sshsig_verify(signers, armored, c->n > 1 ? c->data[1] : (const uint8_t *) "", c->n > 1 ? c->size[1] : 0,
                          "git", NOW, &s, &e);
        fuzz_report(principal ? "sshsig_verify (its own key)" : "sshsig_verify", r, &e);
        if (r == 0) {
                if (!s.principal || !s.key_type || strncmp(s.fingerprint, "SHA256:", 7) != 0)
                        fuzz_fail("accepted without a principal, key type or fingerprint");
                if (principal && !streq(s.principal, principal))
                        fuzz_fail("accepted for principal '%s', the file lists '%s'", s.principal, principal);
        } else if (!e.message[0])
                fuzz_fail("sshsig_verify() failed with %d and no message", r);
        sshsig_signer_done(&s);
}

/* A file that lists the signature's own key, when the key's type is a word. */
static bool write_signers_for(const char *armored) {
        _cleanup_free_ uint8_t *blob = NULL;
        _cleanup_free_ char *line = NULL;
        _cleanup_free_ unsigned char *b64 = NULL;
        size_t blob_size = 0, type_size;
        const uint8_t *k;
        Sshsig s;
        int n;

        if (sshsig_dearmor(armored, &blob, &blob_size, NULL) < 0 || sshsig_parse(blob, blob_size, &s, NULL) < 0)
                return false;
        k = s.public_key.data;
        if (s.public_key.size < 4)
                return false;
        type_size = (size_t) k[0] << 24 | (size_t) k[1] << 16 | (size_t) k[2] << 8 | k[3];
        if (type_size == 0 || type_size > 64 || type_size > s.public_key.size - 4)
                return false;
        for (size_t i = 0; i < type_size; i++)
                if (k[4 + i] <= ' ' || k[4 + i] >= 0x7f || k[4 + i] == '"' || k[4 + i] == '=')
                        return false;
        b64 = malloc(4 * ((s.public_key.size + 2) / 3) + 1);
        if (!b64)
                abort();
        (void) EVP_EncodeBlock(b64, k, (int) s.public_key.size);
        n = asprintf(&line, "# made by fuzz-sshsig\nfuzz@example %.*s %s\n", (int) type_size, (const char *) k + 4,
                     (char *) b64);
        if (n < 0 || fuzz_write_file(fuzz_tmp_path("allowed_signers"), line, (size_t) n) < 0)
                abort();
        return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_free_ char *armored = NULL;
        FuzzChunks c;

        fuzz_chunks_parse(data, size, &c);
        armored = fuzz_strndup(c.data[0], c.size[0]);

        verify(fuzz_data_path("keys/sshsig/allowed_signers"), armored, &c, NULL);
        if (write_signers_for(armored))
                verify(fuzz_tmp_path("allowed_signers"), armored, &c, "fuzz@example");
        fuzz_chunks_done(&c);
        return 0;
}
