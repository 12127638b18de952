/* SPDX-License-Identifier: MIT */
/* What images are verified against (images-internal.h): the keys of images.keys, and the
 * trusted root and identities of images.keyless, their regular expressions compiled. */

#include "basic/macro.h"
#include "basic/whole-match.h"
#include "oci/images-internal.h"
#include "oci/images.h"

bool images_verification_configured(const Config *c) {
        return strv_length(c->images.keys) > 0 || c->images.keyless.n_identities > 0;
}

const char *images_trust_keys(const Config *c) {
        return c->images.keyless.n_identities > 0 ? "images.keys, images.keyless" : "images.keys";
}

void images_trust_done(ImagesTrust *t) {
        cosign_keyring_free(t->keys);
        sigstore_root_free(t->root);
        free(t->identities);
        for (size_t i = 0; i < t->n_expressions; i++)
                regfree(&t->expressions[i]);
        free(t->expressions);
}

/* exact, or expr compiled into the next of t->expressions: the policy's text and regex. */
static int trust_name(ImagesTrust *t, const char *exact, const char *expr, const char **ret_text, const regex_t **ret_re,
                      Error *e) {
        int r;

        *ret_text = exact ?: expr;
        if (!expr)
                return 0;
        r = whole_match_compile(expr, &t->expressions[t->n_expressions], e);
        if (r < 0)
                return r;
        *ret_re = &t->expressions[t->n_expressions++];
        return 0;
}

int images_trust_load(const Config *c, ImagesTrust *t, Error *e) {
        size_t n = c->images.keyless.n_identities;
        int r;

        if (strv_length(c->images.keys) > 0) {
                r = cosign_keyring_load(c->images.keys, &t->keys, e);
                if (r < 0)
                        return r;
        }
        if (n == 0)
                return 0;
        r = sigstore_root_load(c->images.keyless.trusted_root, &t->root, e);
        if (r < 0)
                /* Like a key that does not load: the configuration's problem. */
                return error_prefix(e, r == -ENOMEM || r == -ENOENT ? r : -EINVAL, "images.keyless.trusted-root");
        t->identities = calloc(n, sizeof(SigstorePolicy));
        t->expressions = calloc(2 * n, sizeof(regex_t));
        if (!t->identities || !t->expressions)
                return error_set(e, -ENOMEM, "out of memory");
        for (size_t i = 0; i < n; i++) {
                const KeylessIdentity *id = &c->images.keyless.identities[i];
                SigstorePolicy *p = &t->identities[i];

                r = trust_name(t, id->subject, id->subject_regexp, &p->identity, &p->identity_re, e);
                if (r >= 0)
                        r = trust_name(t, id->issuer, id->issuer_regexp, &p->issuer, &p->issuer_re, e);
                if (r < 0) /* the configuration was checked: only memory */
                        return error_prefix(e, r == -ENOMEM ? r : -EINVAL, "images.keyless.identities[%zu]", i);
        }
        t->keyless = (CosignKeyless) { .root = t->root, .identities = t->identities, .n_identities = n };
        return 0;
}
