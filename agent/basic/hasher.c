/* SPDX-License-Identifier: MIT */
/* Hashing in the background (hasher.h). SHA-256 is the slowest part of reading a bundle: a
 * thread hashes a member's blocks while the reader reads the next ones (and writes them out,
 * apply). A job is a block of the reader's slots, which the reader fills again only once the
 * hasher is done with it. The hasher owns the digest context while it has jobs; the reader
 * takes it back (hasher_wait(h, UINT_MAX)) at the end of each member. Each side wakes the
 * other only when that one waits. */

#include <limits.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>

#include "basic/hasher.h"

#define HASHER_JOBS 16

typedef struct Job {
        const uint8_t *p;
        size_t n;
        unsigned slot;
} Job;

struct Hasher {
        pthread_t thread;
        pthread_mutex_t lock;
        pthread_cond_t wake;
        EVP_MD_CTX *ctx;
        Job jobs[HASHER_JOBS];
        size_t head, count;
        unsigned pending[HASHER_SLOTS]; /* jobs per slot */
        size_t reader_waits_for;        /* jobs left at which to wake the reader */
        bool reader_waits, hasher_waits, stop;
        bool failed;
};

static void *hasher_main(void *userdata) {
        Hasher *h = userdata;

        pthread_mutex_lock(&h->lock);
        for (;;) {
                Job j;
                bool ok;

                while (h->count == 0 && !h->stop) {
                        h->hasher_waits = true;
                        pthread_cond_wait(&h->wake, &h->lock);
                        h->hasher_waits = false;
                }
                if (h->count == 0)
                        break;
                j = h->jobs[h->head];
                pthread_mutex_unlock(&h->lock);
                ok = EVP_DigestUpdate(h->ctx, j.p, j.n) == 1;
                pthread_mutex_lock(&h->lock);
                h->head = (h->head + 1) % HASHER_JOBS;
                h->count--;
                h->pending[j.slot]--;
                h->failed = h->failed || !ok;
                if (h->reader_waits && h->count <= h->reader_waits_for)
                        pthread_cond_signal(&h->wake);
        }
        pthread_mutex_unlock(&h->lock);
        return NULL;
}

Hasher *hasher_start(void) {
        Hasher *h = calloc(1, sizeof(Hasher));

        if (!h)
                return NULL;
        h->ctx = EVP_MD_CTX_new();
        pthread_mutex_init(&h->lock, NULL);
        pthread_cond_init(&h->wake, NULL);
        if (!h->ctx || pthread_create(&h->thread, NULL, hasher_main, h) != 0) {
                EVP_MD_CTX_free(h->ctx);
                pthread_cond_destroy(&h->wake);
                pthread_mutex_destroy(&h->lock);
                free(h);
                return NULL;
        }
        return h;
}

void hasher_stop(Hasher *h) {
        pthread_mutex_lock(&h->lock);
        h->stop = true;
        pthread_cond_signal(&h->wake);
        pthread_mutex_unlock(&h->lock);
        pthread_join(h->thread, NULL);
        EVP_MD_CTX_free(h->ctx);
        pthread_cond_destroy(&h->wake);
        pthread_mutex_destroy(&h->lock);
        free(h);
}

EVP_MD_CTX *hasher_ctx(Hasher *h) {
        return h->ctx;
}

void hasher_submit(Hasher *h, const uint8_t *p, size_t n, unsigned slot) {
        pthread_mutex_lock(&h->lock);
        h->reader_waits_for = HASHER_JOBS - 1;
        while (h->count == HASHER_JOBS) {
                h->reader_waits = true;
                pthread_cond_wait(&h->wake, &h->lock);
                h->reader_waits = false;
        }
        h->jobs[(h->head + h->count) % HASHER_JOBS] = (Job) { .p = p, .n = n, .slot = slot };
        h->count++;
        h->pending[slot]++;
        if (h->hasher_waits)
                pthread_cond_signal(&h->wake);
        pthread_mutex_unlock(&h->lock);
}

/* A reader that has to wait for a slot waits until the hasher has at most one job left, which
 * is then in the newest slot: one wakeup for a few slots, not one per slot. */
bool hasher_wait(Hasher *h, unsigned slot) {
        bool ok;

        pthread_mutex_lock(&h->lock);
        if (slot == UINT_MAX || h->pending[slot] > 0) {
                h->reader_waits_for = slot == UINT_MAX ? 0 : 1;
                while (h->count > h->reader_waits_for) {
                        h->reader_waits = true;
                        pthread_cond_wait(&h->wake, &h->lock);
                        h->reader_waits = false;
                }
        }
        ok = !h->failed;
        pthread_mutex_unlock(&h->lock);
        return ok;
}
