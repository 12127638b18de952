/* SPDX-License-Identifier: MIT */
/* Sigstore trusted roots (trusted_root.json): sigstore_root_parse() (agent/sign/sigstore-root.c).
 * The input is the file.
 *
 * What must hold for a root that parses (sigstore-root.h): every log has either a key or the
 * name of its key type that is not supported, and a start (logs may not be trusted from the
 * beginning of time), every window ends after it starts, every authority has a chain of 1 to
 * SIGSTORE_ROOT_CHAIN_MAX certificates, no list is over its cap, and each log is found by its
 * own logId. A root that does not parse says why. */

#include "basic/macro.h"
#include "fuzz-common.h"
#include "sign/sigstore-root.h"

static void check_logs(const TrustedLog *logs, size_t n, const char *what) {
        if (n > SIGSTORE_ROOT_ENTRIES_MAX)
                fuzz_fail("%zu %s, more than %u", n, what, SIGSTORE_ROOT_ENTRIES_MAX);
        for (size_t i = 0; i < n; i++) {
                if (!logs[i].key == !logs[i].unsupported)
                        fuzz_fail("%s[%zu] has %s", what, i, logs[i].key ? "a key and an unsupported type" : "no key");
                if (logs[i].valid_from <= 0)
                        fuzz_fail("%s[%zu] has no start", what, i);
                if (logs[i].valid_until != 0 && logs[i].valid_until < logs[i].valid_from)
                        fuzz_fail("%s[%zu] ends before it starts", what, i);
                if (!sigstore_root_find_log(logs, n, logs[i].key_id, sizeof(logs[i].key_id)))
                        fuzz_fail("%s[%zu] is not found by its logId", what, i);
        }
}

static void check_authorities(const TrustedAuthority *a, size_t n, const char *what) {
        if (n > SIGSTORE_ROOT_ENTRIES_MAX)
                fuzz_fail("%zu %s, more than %u", n, what, SIGSTORE_ROOT_ENTRIES_MAX);
        for (size_t i = 0; i < n; i++) {
                int certs = sk_X509_num(a[i].chain);

                if (certs < 1 || certs > (int) SIGSTORE_ROOT_CHAIN_MAX)
                        fuzz_fail("%s[%zu] has a chain of %d certificates", what, i, certs);
                if (a[i].valid_until != 0 && a[i].valid_until < a[i].valid_from)
                        fuzz_fail("%s[%zu] ends before it starts", what, i);
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        SigstoreTrustedRoot *t = NULL;
        Error e = {};
        int r;

        r = sigstore_root_parse(data, size, &t, &e);
        fuzz_report("sigstore_root_parse", r, &e);
        if (r < 0) {
                if (!e.message[0])
                        fuzz_fail("sigstore_root_parse() failed with %d and no message", r);
                if (t)
                        fuzz_fail("sigstore_root_parse() failed but returned a root");
                return 0;
        }
        check_logs(t->tlogs, t->n_tlogs, "tlogs");
        check_logs(t->ctlogs, t->n_ctlogs, "ctlogs");
        check_authorities(t->cas, t->n_cas, "certificateAuthorities");
        check_authorities(t->tsas, t->n_tsas, "timestampAuthorities");
        sigstore_root_free(t);
        return 0;
}
