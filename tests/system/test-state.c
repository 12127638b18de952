/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <fcntl.h>
#include <jansson.h>
#include <sys/stat.h>

#include "basic/fileio.h"
#include "system/state.h"

#define REV1 "1111111111111111111111111111111111111111"
#define REV2 "2222222222222222222222222222222222222222"

static char *make_tmpdir(void) {
        char *d = strdup("/tmp/test-state-XXXXXX");
        assert_non_null(d);
        assert_non_null(mkdtemp(d));
        return d;
}

static void write_state(const char *dir, const char *content) {
        _cleanup_free_ char *p = path_join(dir, STATE_FILE);
        assert_int_equal(write_file_atomic(p, content, strlen(content), 0644), 0);
}

/* 1024 images with long references: about 720 KiB of history per deployment. */
static json_t *many_images(void) {
        json_t *a = json_array();
        char ref[600];

        assert_non_null(a);
        memset(ref, 'r', sizeof(ref) - 1);
        ref[sizeof(ref) - 1] = 0;
        for (int i = 0; i < 1024; i++)
                assert_int_equal(json_array_append_new(a, json_pack("{s:s, s:s, s:s, s:[s], s:b}", "name", "web",
                                                                     "reference", ref, "digest",
                                                                     "sha256:0000000000000000000000000000000000000000000000000000000000000000",
                                                                     "signers", "SHA256:key", "sbom", 0)),
                                 0);
        return a;
}

/* Deployments with large records: the file stays below what the reader takes, the oldest
 * history goes first, and the anchors (deployed, known good, bundle sequence) stay. Before the
 * bound, 23 such deployments made a file every command refused; 16 are more than the file
 * holds (each save near the bound writes about 8 MiB: 40 took a minute under ASan). */
static void test_history_bounded_by_bytes(void **state) {
        _cleanup_free_ char *dir = make_tmpdir(), *path = path_join(dir, STATE_FILE);
        _cleanup_state_ State *s = NULL, *t = NULL;
        struct stat st;
        Error e = {};

        assert_int_equal(state_new(&s), 0);
        s->bundle_sequence = 42;
        for (int i = 0; i < 16; i++) {
                assert_int_equal(state_begin(s, PHASE_BUILDING, i % 2 ? REV2 : REV1, "main", "pull", "switch"), 0);
                s->pending->generation = strdup(i % 2 ? "/nix/store/bbb-system" : "/nix/store/aaa-system");
                s->pending->images = many_images();
                assert_int_equal(state_finish(s, RESULT_SUCCESS, NULL, NULL), 0);
                assert_int_equal(state_save(s, dir), 0);
                assert_int_equal(stat(path, &st), 0);
                assert_true(st.st_size <= STATE_WRITE_MAX);
                assert_int_equal(st.st_mode & 0777, 0600);
        }
        assert_int_equal(state_load(dir, &t, &e), 0);
        assert_true(t->n_history > 0 && t->n_history < 16);
        assert_int_equal(t->history[t->n_history - 1].id, s->history[s->n_history - 1].id);
        assert_string_equal(t->deployed_revision, REV2);
        assert_string_equal(t->good_generation, "/nix/store/bbb-system");
        assert_int_equal(t->bundle_sequence, 42);
        assert_int_equal(rm_rf(dir), 0);
}

static void test_missing_is_empty(void **state) {
        _cleanup_free_ char *dir = make_tmpdir();
        _cleanup_state_ State *s = NULL;

        assert_int_equal(state_load(dir, &s, NULL), 0);
        assert_null(s->deployed_revision);
        assert_int_equal(s->phase, PHASE_IDLE);
        assert_int_equal(s->n_history, 0);
        assert_int_equal(rm_rf(dir), 0);
}

static void test_round_trip(void **state) {
        _cleanup_free_ char *dir = make_tmpdir();
        _cleanup_state_ State *s = NULL, *t = NULL;
        Error e = {};

        assert_int_equal(state_new(&s), 0);
        assert_int_equal(state_begin(s, PHASE_BUILDING, REV1, "main", "pull", "switch"), 0);
        assert_int_equal(state_begin(s, PHASE_BUILDING, REV2, "main", "pull", "switch"), -EBUSY);
        s->pending->generation = strdup("/nix/store/aaa-system");
        s->phase = PHASE_ACTIVATING;
        assert_int_equal(state_save(s, dir), 0);

        /* An interrupted deployment survives a reload with its phase. */
        assert_int_equal(state_load(dir, &t, &e), 0);
        assert_int_equal(t->phase, PHASE_ACTIVATING);
        assert_non_null(t->pending);
        assert_string_equal(t->pending->revision, REV1);
        assert_string_equal(t->pending->generation, "/nix/store/aaa-system");
        t = state_free(t);

        assert_int_equal(state_finish(s, RESULT_SUCCESS, NULL, NULL), 0);
        assert_int_equal(state_begin(s, PHASE_BUILDING, REV2, "v2", "pull", "boot"), 0);
        assert_int_equal(state_finish(s, RESULT_BUILD_FAILED, "nixos-rebuild exited with status 1", NULL), 0);
        assert_int_equal(state_save(s, dir), 0);

        assert_int_equal(state_load(dir, &t, &e), 0);
        assert_int_equal(t->phase, PHASE_IDLE);
        assert_null(t->pending);
        assert_string_equal(t->deployed_revision, REV1);
        assert_string_equal(t->deployed_generation, "/nix/store/aaa-system");
        assert_string_equal(t->good_revision, REV1);
        assert_int_equal(t->n_history, 2);
        assert_int_equal(t->history[0].id, 1);
        assert_int_equal(t->history[0].result, RESULT_SUCCESS);
        assert_true(t->history[0].finished >= t->history[0].started);
        assert_int_equal(t->history[1].id, 2);
        assert_int_equal(t->history[1].result, RESULT_BUILD_FAILED);
        assert_string_equal(t->history[1].error, "nixos-rebuild exited with status 1");
        assert_string_equal(t->history[1].ref, "v2");
        assert_string_equal(t->history[1].action, "boot");
        assert_null(t->history[1].generation);
        assert_int_equal(t->next_id, 3);
        assert_int_equal(rm_rf(dir), 0);
}

/* A failed rollback marks the machine unhealthy (naming what runs); the count of activations
 * survives a reload; a success or a successful rollback clears the mark. */
static void test_unhealthy_and_activations(void **state) {
        _cleanup_free_ char *dir = make_tmpdir();
        _cleanup_state_ State *s = NULL, *t = NULL;
        Error e = {};

        assert_int_equal(state_new(&s), 0);
        assert_int_equal(state_begin(s, PHASE_ACTIVATING, REV1, "main", "pull", "switch"), 0);
        s->pending->activations = 2;
        assert_int_equal(state_save(s, dir), 0);
        assert_int_equal(state_load(dir, &t, &e), 0);
        assert_int_equal(t->pending->activations, 2);
        t = state_free(t);

        assert_int_equal(state_finish(s, RESULT_ROLLBACK_FAILED, "not healthy either", "/nix/store/bbb-system"), 0);
        assert_non_null(s->unhealthy);
        assert_int_equal(state_save(s, dir), 0);
        assert_int_equal(state_load(dir, &t, &e), 0);
        assert_non_null(t->unhealthy);
        assert_string_equal(t->unhealthy->revision, REV1);
        assert_string_equal(t->unhealthy->generation, "/nix/store/bbb-system");
        assert_string_equal(t->unhealthy->error, "not healthy either");
        assert_true(t->unhealthy->since > 0);
        assert_int_equal(t->history[0].activations, 2);
        t = state_free(t);

        /* a build failure changes nothing about it */
        assert_int_equal(state_begin(s, PHASE_BUILDING, REV2, "main", "pull", "switch"), 0);
        assert_int_equal(state_finish(s, RESULT_BUILD_FAILED, "x", NULL), 0);
        assert_non_null(s->unhealthy);
        /* a successful rollback ends it */
        assert_int_equal(state_begin(s, PHASE_ROLLING_BACK, REV1, NULL, "rollback", "switch"), 0);
        assert_int_equal(state_finish(s, RESULT_ROLLED_BACK, "rolled back", NULL), 0);
        assert_null(s->unhealthy);
        assert_int_equal(state_save(s, dir), 0);
        assert_int_equal(state_load(dir, &t, &e), 0);
        assert_null(t->unhealthy);
        assert_int_equal(rm_rf(dir), 0);
}

static void test_history_cap(void **state) {
        _cleanup_state_ State *s = NULL;

        assert_int_equal(state_new(&s), 0);
        for (int i = 0; i < STATE_HISTORY_MAX + 5; i++) {
                assert_int_equal(state_begin(s, PHASE_BUILDING, REV1, NULL, "pull", "switch"), 0);
                assert_int_equal(state_finish(s, RESULT_BUILD_FAILED, "x", NULL), 0);
        }
        assert_int_equal(s->n_history, STATE_HISTORY_MAX);
        assert_int_equal(s->history[0].id, 6);
        assert_int_equal(s->history[STATE_HISTORY_MAX - 1].id, STATE_HISTORY_MAX + 5);
}

#define VALID_HEAD "{\"version\": 1, \"next-id\": 2, \"failed-revision\": null, "
#define VALID_ENTRY                                                                                               \
        "{\"id\": 1, \"revision\": \"" REV1 "\", \"generation\": \"/nix/store/x\", \"source\": \"pull\", "   \
        "\"ref\": \"main\", \"action\": \"switch\", \"started\": \"2026-01-01T00:00:00Z\", "                  \
        "\"finished\": \"2026-01-01T00:01:00Z\", \"result\": \"success\", \"error\": null, "                   \
        "\"signer\": null, \"images\": [{\"name\": \"web\", \"reference\": \"r/w:1\", \"digest\": null, "    \
        "\"signers\": [], \"sbom\": false}], \"previous-generation\": null, \"health\": null, \"boot-id\": null}"

static void expect_corrupt(const char *content, const char *needle) {
        _cleanup_free_ char *dir = make_tmpdir();
        _cleanup_state_ State *s = NULL;
        Error e = {};

        write_state(dir, content);
        if (state_load(dir, &s, &e) >= 0)
                fail_msg("accepted: %s", content);
        assert_null(s);
        if (!strstr(e.message, needle))
                fail_msg("message '%s' lacks '%s'", e.message, needle);
        assert_non_null(strstr(e.message, STATE_FILE));
        assert_int_equal(rm_rf(dir), 0);
}

static void test_valid_literal(void **state) {
        _cleanup_free_ char *dir = make_tmpdir();
        _cleanup_state_ State *s = NULL;
        Error e = {};

        write_state(dir, VALID_HEAD "\"deployed\": {\"revision\": \"" REV1 "\", \"generation\": \"/nix/store/x\"}, "
                         "\"known-good\": null, \"phase\": \"idle\", \"pending\": null, \"history\": [" VALID_ENTRY "]}");
        assert_int_equal(state_load(dir, &s, &e), 0);
        assert_string_equal(s->deployed_revision, REV1);
        assert_int_equal(s->history[0].finished - s->history[0].started, 60);
        assert_int_equal(rm_rf(dir), 0);
}

static void test_corrupt(void **state) {
        expect_corrupt("", "not valid JSON");
        expect_corrupt("{\"version\": 1, \"next-id\"", "not valid JSON");           /* truncated */
        expect_corrupt("\x01\x02garbage", "not valid JSON");
        expect_corrupt("[]", "");                                                   /* not an object */
        expect_corrupt("{\"version\": 2}", "unsupported state version 2");
        expect_corrupt("{\"version\": \"1\"}", "");
        expect_corrupt(VALID_HEAD "\"deployed\": null, \"known-good\": null, \"phase\": \"idle\", \"pending\": null, "
                       "\"history\": [], \"extra\": 1}", "extra");                   /* unknown key */
        expect_corrupt(VALID_HEAD "\"deployed\": null, \"known-good\": null, \"phase\": \"idle\", \"pending\": null}",
                       "history");                                                  /* missing key */
        expect_corrupt(VALID_HEAD "\"deployed\": null, \"known-good\": null, \"phase\": \"flying\", \"pending\": null, "
                       "\"history\": []}", "unknown phase");
        expect_corrupt(VALID_HEAD "\"deployed\": null, \"known-good\": null, \"phase\": \"building\", \"pending\": null, "
                       "\"history\": []}", "does not match");
        expect_corrupt(VALID_HEAD "\"deployed\": {\"revision\": \"abc\", \"generation\": null}, \"known-good\": null, "
                       "\"phase\": \"idle\", \"pending\": null, \"history\": []}", "not a commit id");
        expect_corrupt(VALID_HEAD "\"deployed\": null, \"known-good\": null, \"phase\": \"idle\", \"pending\": null, "
                       "\"history\": {}}", "expected an array");
        expect_corrupt(VALID_HEAD "\"deployed\": null, \"known-good\": null, \"phase\": \"idle\", \"pending\": null, "
                       "\"history\": [" VALID_ENTRY ", " VALID_ENTRY "]}", "not increasing");
        expect_corrupt("{\"version\": 1, \"next-id\": 1, \"failed-revision\": null, \"deployed\": null, \"known-good\": null, \"phase\": \"idle\", "
                       "\"pending\": null, \"history\": [" VALID_ENTRY "]}", "not below next-id");
        /* A pending deployment whose id the next one would reuse, or below the history's. */
        expect_corrupt("{\"version\": 1, \"next-id\": 1, \"failed-revision\": null, \"deployed\": null, \"known-good\": null, "
                       "\"phase\": \"building\", \"pending\": " VALID_ENTRY ", \"history\": []}", "pending: id 1 is not below next-id");
        expect_corrupt(VALID_HEAD "\"deployed\": null, \"known-good\": null, \"phase\": \"building\", \"pending\": " VALID_ENTRY ", "
                       "\"history\": [" VALID_ENTRY "]}", "pending: id 1 is not above the history's");
        expect_corrupt("{\"version\": 1, \"version\": 1}", "duplicate");
        expect_corrupt(VALID_HEAD "\"deployed\": null, \"known-good\": null, \"phase\": \"idle\", \"pending\": null, "
                       "\"history\": [{\"id\": 1}]}", "history[0]");
        /* unhealthy: an object of exactly its keys, or null */
        expect_corrupt(VALID_HEAD "\"deployed\": null, \"known-good\": null, \"phase\": \"idle\", \"pending\": null, "
                       "\"unhealthy\": true, \"history\": []}", "unhealthy");
        expect_corrupt(VALID_HEAD "\"deployed\": null, \"known-good\": null, \"phase\": \"idle\", \"pending\": null, "
                       "\"unhealthy\": {\"revision\": \"" REV1 "\", \"generation\": null, \"error\": null, \"since\": null, "
                       "\"x\": 1}, \"history\": []}", "unhealthy");
        expect_corrupt(VALID_HEAD "\"deployed\": null, \"known-good\": null, \"phase\": \"idle\", \"pending\": null, "
                       "\"unhealthy\": {\"revision\": \"abc\", \"generation\": null, \"error\": null, \"since\": null}, "
                       "\"history\": []}", "not a commit id");
        expect_corrupt(VALID_HEAD "\"deployed\": null, \"known-good\": null, \"phase\": \"idle\", \"pending\": null, "
                       "\"unhealthy\": {\"revision\": \"" REV1 "\", \"generation\": 5, \"error\": null, \"since\": null}, "
                       "\"history\": []}", "expected a string");
        /* activations: a small count */
        expect_corrupt(VALID_HEAD "\"deployed\": null, \"known-good\": null, \"phase\": \"idle\", \"pending\": null, "
                       "\"history\": [{\"id\": 1, \"revision\": \"" REV1 "\", \"generation\": null, \"source\": \"pull\", "
                       "\"ref\": null, \"action\": \"switch\", \"started\": null, \"finished\": null, \"result\": \"success\", "
                       "\"error\": null, \"signer\": null, \"images\": null, \"previous-generation\": null, \"health\": null, "
                       "\"boot-id\": null, \"activations\": -1}]}", "activations");
}

static void test_oversize(void **state) {
        _cleanup_free_ char *dir = make_tmpdir(), *p = path_join(dir, STATE_FILE);
        _cleanup_state_ State *s = NULL;
        _cleanup_close_ int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        Error e = {};

        assert_true(fd >= 0);
        assert_int_equal(ftruncate(fd, STATE_FILE_MAX + 1), 0);
        assert_int_equal(state_load(dir, &s, &e), -EFBIG);
        assert_non_null(strstr(e.message, "larger than"));
        assert_int_equal(rm_rf(dir), 0);
}

static void test_last_run(void **state) {
        _cleanup_free_ char *dir = make_tmpdir();
        LastRun l = {};

        assert_int_equal(last_run_load(dir, &l, NULL), 0);
        assert_int_equal(l.result, RESULT_NONE);
        assert_int_equal(last_run_save(dir, "pull", RESULT_REFUSED, REV1, "bad signature"), 0);
        assert_int_equal(last_run_load(dir, &l, NULL), 0);
        assert_string_equal(l.command, "pull");
        assert_int_equal(l.result, RESULT_REFUSED);
        assert_string_equal(l.revision, REV1);
        assert_string_equal(l.error, "bad signature");
        assert_true(l.time > 0);
        last_run_done(&l);
        assert_int_equal(rm_rf(dir), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_missing_is_empty),
                cmocka_unit_test(test_round_trip),
                cmocka_unit_test(test_unhealthy_and_activations),
                cmocka_unit_test(test_history_cap),
                cmocka_unit_test(test_valid_literal),
                cmocka_unit_test(test_corrupt),
                cmocka_unit_test(test_oversize),
                cmocka_unit_test(test_history_bounded_by_bytes),
                cmocka_unit_test(test_last_run),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
