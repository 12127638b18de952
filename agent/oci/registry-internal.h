/* SPDX-License-Identifier: MIT */
#pragma once

/* Shared between registry.c (the client, one GET, authentication), registry-manifest.c
 * (manifests, referrers) and registry-blob.c (blobs); nothing outside these files includes
 * this. */

#include <stdbool.h>
#include <stdint.h>

#include "basic/curl-dl.h"
#include "basic/error.h"
#include "oci/registry-sink.h"
#include "oci/registry.h"

struct RegistryClient {
        RegistryOptions options;
        CURL *curl;
        /* The last Bearer token and what it was for: a run verifies one repository after
         * another, so one entry is enough. */
        char *token_key;
        char *token;
        /* A registry that answered that it has no Referrers API is not asked again. */
        char *no_referrers_api;
};

/* One answer. Only a 200 body is kept, in the sink the request was made with; the bodies of
 * other answers (a 401, a 404) are dropped, up to ERROR_BODY_MAX. */
typedef struct Response {
        long status;
        CURL *curl;
        BlobSink *sink;
        uint64_t dropped;
        bool over_cap;
        char *docker_digest;
        char *www_authenticate;
} Response;

void registry_response_done(Response *r);

/* A GET below /v2/ of a registry, authenticating when the registry asks to. */
int registry_request(RegistryClient *c, const char *registry, const char *repository, const char *path,
                     const char *accept, BlobSink *sink, Response *ret, Error *reterr);

/* The error for an answer other than 200 to the request for what: -ENOENT (404), -EACCES (401,
 * 403), -EHOSTUNREACH (5xx), else -EBADMSG. */
int registry_status_error(const Response *r, const char *what, Error *reterr);

/* 0 for a 200; else r is done and the error is registry_status_error()'s. */
int registry_expect_ok(Response *r, const char *what, Error *reterr);
