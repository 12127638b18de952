/* SPDX-License-Identifier: MIT */
#pragma once

/* What the fuzz targets share: scratch files, the test keys of fuzz/keys/, and "chunked"
 * inputs with placeholders, so that the fuzzer can make inputs that are consistent (a digest
 * that matches a blob, a signature that verifies) without computing hashes or signatures
 * itself. See fuzz/README.md for the input formats. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sign/cosign-key.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* Aborts with a message: a property the target checks does not hold. */
_Noreturn void fuzz_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Whether the bug `id` of fuzz/known-bugs is listed in $FUZZ_KNOWN (comma-separated): then a
 * target lets an input that shows it pass, so that fuzzing goes on past it. fuzz/run sets it
 * when fuzzing, never when replaying: fuzz/regressions/ keeps failing until the bug is fixed. */
bool fuzz_known(const char *id);

/* With FUZZ_VERBOSE set in the environment: prints what a call returned and why, to check
 * what seeds reach (FUZZ_VERBOSE=1 fuzz-TARGET -runs=0 fuzz/corpus/TARGET). */
void fuzz_report(const char *what, int r, const Error *e);

/* A NUL-terminated copy of the input (which may hold NUL bytes itself). */
char *fuzz_strndup(const uint8_t *data, size_t size);

/* A scratch directory of this process, made on first use and removed at exit, and a path in
 * it (a static buffer per name: the same path on every run). */
const char *fuzz_tmpdir(void);
const char *fuzz_tmp_path(const char *name);
int fuzz_write_file(const char *path, const void *data, size_t size);

/* A file below fuzz/ (the source directory, fixed at build time). */
const char *fuzz_data_path(const char *rel);

/* The keyring of every public key under fuzz/keys/ that the Cosign targets trust: the two
 * fuzz keys first, then the keys of tests/data/cosign and ../shared/vectors/cosign. Loaded
 * once; NULL-terminated paths for targets that load it themselves. */
const CosignKeyring *fuzz_cosign_keyring(void);
char **fuzz_cosign_key_paths(void);

/* Signatures by the fuzz keys: ECDSA P-256 over SHA-256 (DER), Ed25519 (64 bytes). */
int fuzz_sign_p256(const void *data, size_t size, uint8_t **ret, size_t *ret_size);
int fuzz_sign_ed25519(const void *data, size_t size, uint8_t **ret, size_t *ret_size);

/* ---- Chunked inputs ----
 *
 * The input is split at each "\n--8<--\n" into at most FUZZ_CHUNKS_MAX chunks: chunk 0, the
 * head, and chunks 1..9. Placeholders in a chunk are replaced by what they name of another
 * chunk, after that chunk's own placeholders were replaced: chunk i may name chunks 1..i-1,
 * the head may name all (so the head is expanded last). With n a digit 1-9:
 *
 *   @Dn@     "sha256:" and the hex SHA-256 of chunk n     @Hn@     the hex SHA-256 alone
 *   @Sn@     the size of chunk n in decimal               @Bn@     chunk n in base64
 *   @SIGn@   base64 of the P-256 signature of chunk n     @EDSIGn@ the same with Ed25519
 *   @DSSEn@  base64 of the P-256 signature of the DSSE PAE of chunk n as an in-toto payload
 *   @HINT@   base64 of the SHA-256 of the P-256 fuzz key's SubjectPublicKeyInfo
 *   @CERT@   base64 of a self-signed DER certificate for the P-256 fuzz key
 *
 * A placeholder naming a chunk that is not there (or not allowed) stays as it is. */

#define FUZZ_CHUNK_SEPARATOR "\n--8<--\n"
#define FUZZ_CHUNKS_MAX 10

typedef struct FuzzChunks {
        size_t n;
        uint8_t *data[FUZZ_CHUNKS_MAX]; /* NUL-terminated (not counted) */
        size_t size[FUZZ_CHUNKS_MAX];
} FuzzChunks;

int fuzz_chunks_parse(const uint8_t *data, size_t size, FuzzChunks *ret);
void fuzz_chunks_done(FuzzChunks *c);

/* Expands the placeholders of one buffer against chunks 1..max_ref of c (a helper of
 * fuzz_chunks_parse(), also used for single documents). *ret is NUL-terminated. */
int fuzz_expand(const uint8_t *data, size_t size, const FuzzChunks *c, size_t max_ref, uint8_t **ret,
                size_t *ret_size);
