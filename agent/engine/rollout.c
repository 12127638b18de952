/* SPDX-License-Identifier: MIT */
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-id128.h>

#include "basic/macro.h"
#include "engine/rollout.h"

int rollout_parse(const char *data, size_t size, Rollout *ret, Error *e) {
        json_error_t jerr;
        json_t *j, *percent = NULL, *paused = NULL, *delay = NULL;
        Rollout r = { .present = true, .percent = 100 };

        j = json_loadb(data, size, JSON_REJECT_DUPLICATES, &jerr);
        if (!j)
                return error_set(e, -EINVAL, "not valid JSON: %s (line %d)", jerr.text, jerr.line);
        if (!json_is_object(j)) {
                json_decref(j);
                return error_set(e, -EINVAL, "not a JSON object");
        }
        if (json_unpack_ex(j, &jerr, JSON_STRICT, "{s?o, s?o, s?o}", "percent", &percent, "paused", &paused, "delay",
                           &delay) < 0) {
                json_decref(j);
                return error_set(e, -EINVAL, "%s (the keys are percent, paused and delay)", jerr.text);
        }
        if (percent && (!json_is_integer(percent) || json_integer_value(percent) < 0 ||
                        json_integer_value(percent) > 100)) {
                json_decref(j);
                return error_set(e, -EINVAL, "'percent' must be an integer from 0 to 100");
        }
        if (paused && !json_is_boolean(paused)) {
                json_decref(j);
                return error_set(e, -EINVAL, "'paused' must be true or false");
        }
        if (delay && (!json_is_integer(delay) || json_integer_value(delay) < 0 ||
                      (uint64_t) json_integer_value(delay) > ROLLOUT_DELAY_MAX)) {
                json_decref(j);
                return error_set(e, -EINVAL, "'delay' must be a number of seconds from 0 to %llu (a year)",
                                 ROLLOUT_DELAY_MAX);
        }
        if (percent)
                r.percent = (unsigned) json_integer_value(percent);
        r.paused = paused && json_is_true(paused);
        r.delay = delay ? (uint64_t) json_integer_value(delay) : 0;
        json_decref(j);
        *ret = r;
        return 0;
}

void rollout_app_specific_id(const uint8_t machine_id[16], uint8_t ret[16]) {
        sd_id128_t app = ROLLOUT_APP_ID;
        uint8_t hmac[EVP_MAX_MD_SIZE];
        unsigned hmac_len = 0;

        /* What sd_id128_get_machine_app_specific() gives: HMAC-SHA256 keyed with the machine
         * id over the application id, its first 16 bytes made a v4 UUID. */
        (void) HMAC(EVP_sha256(), machine_id, 16, app.bytes, sizeof(app.bytes), hmac, &hmac_len);
        hmac[6] = (hmac[6] & 0x0F) | 0x40;
        hmac[8] = (hmac[8] & 0x3F) | 0x80;
        memcpy(ret, hmac, 16);
}

unsigned rollout_bucket_of(const uint8_t machine_id[16], const char *revision) {
        uint8_t hmac[16], digest[32];
        uint64_t v = 0;
        EVP_MD_CTX *ctx;

        rollout_app_specific_id(machine_id, hmac);
        ctx = EVP_MD_CTX_new();
        if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 || EVP_DigestUpdate(ctx, hmac, 16) != 1 ||
            EVP_DigestUpdate(ctx, revision, strlen(revision)) != 1 || EVP_DigestFinal_ex(ctx, digest, NULL) != 1) {
                EVP_MD_CTX_free(ctx);
                return 99; /* cannot hash: the last bucket, the most careful one */
        }
        EVP_MD_CTX_free(ctx);
        for (size_t i = 0; i < 8; i++)
                v = v << 8 | digest[i];
        return (unsigned) (v % 100);
}

int rollout_bucket(const Config *c, const char *revision, unsigned *ret, Error *e) {
        sd_id128_t m;
        int r;

        if (c->rollout.bucket) {
                *ret = (unsigned) strtoul(c->rollout.bucket, NULL, 10);
                return 0;
        }
        r = sd_id128_get_machine(&m);
        if (r < 0)
                return error_set(e, r, "cannot read the machine id (/etc/machine-id): %s; set rollout.bucket",
                                 strerror(-r));
        *ret = rollout_bucket_of(m.bytes, revision);
        return 0;
}
