/* SPDX-License-Identifier: MIT */
/* Prometheus metrics for the node exporter's textfile collector.
 *
 * What survives between runs (counters, the last run of each command, phase durations) is
 * kept in <state-dir>/metrics.json, apart from state.json, since a refused run must leave
 * state.json as it was but still counts. The .prom file is rendered from it and from the
 * state at the end of every run, and written atomically (the collector never sees half). */

#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <sys/file.h>
#include <unistd.h>

#include "basic/fileio.h"
#include "basic/log.h"
#include "engine/metrics.h"
#include "system/nix.h"

#define METRICS_FILE "metrics.json"
#define METRICS_FILE_MAX (1024 * 1024)
#define REASONS_MAX 64

#if JSON_INTEGER_IS_LONG_LONG
#  define JSON_INT_MAX LLONG_MAX
#else
#  define JSON_INT_MAX LONG_MAX
#endif

static json_t *load(const char *state_dir) {
        _cleanup_free_ char *path = path_join(state_dir, METRICS_FILE), *data = NULL;
        json_t *j = NULL;

        if (path && read_full_file(path, METRICS_FILE_MAX, &data, NULL) >= 0)
                j = json_loads(data, JSON_REJECT_DUPLICATES, NULL);
        if (!json_is_object(j)) {
                /* Missing or damaged: counting starts again, nothing else depends on it. */
                json_decref(j);
                j = json_object();
        }
        return j;
}

static json_t *object_child(json_t *o, const char *key) {
        json_t *c = json_object_get(o, key);

        if (!json_is_object(c)) {
                c = json_object();
                json_object_set_new(o, key, c);
        }
        return c;
}

/* n >= 0. A counter that is not a non-negative integer (a damaged file) starts again at 0, and
 * so does one that would overflow: Prometheus reads a counter that went down as a reset. */
static void counter_add(json_t *o, const char *key, json_int_t n) {
        json_t *v = json_object_get(o, key);
        json_int_t old = json_is_integer(v) ? json_integer_value(v) : 0;

        if (old < 0 || old > JSON_INT_MAX - n)
                old = 0;
        json_object_set_new(o, key, json_integer(old + n));
}

/* A label value with \, " and newline escaped, as the exposition format wants. */
static void put_label(FILE *f, const char *v) {
        for (const char *p = v ?: ""; *p; p++) {
                if (*p == '\\' || *p == '"')
                        fputc('\\', f);
                if (*p == '\n') {
                        fputs("\\n", f);
                        continue;
                }
                fputc(*p, f);
        }
}

/* The start of one sample, `metric{label="value"} `: the caller writes the number. */
static void sample(FILE *f, const char *metric, const char *label, const char *value) {
        fprintf(f, "%s{%s=\"", metric, label);
        put_label(f, value);
        fputs("\"} ", f);
}

static void header(FILE *f, const char *name, const char *type, const char *help) {
        fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* The number N of the profile's current system-N-link. */
static long profile_number(const Config *c) {
        _cleanup_free_ char *link = NULL;
        const char *p;
        long n;

        if (readlink_malloc(c->system.profile, &link) < 0)
                return -1;
        p = strrchr(link, '/');
        p = p ? p + 1 : link;
        p = strrchr(p, '-') ? strchr(p, '-') : NULL;
        if (!p || sscanf(p, "-%ld-link", &n) != 1)
                return -1;
        return n;
}

/* The last run of each command (when, whether it succeeded, its result, how long it took) and
 * how long each phase took when it last ran. */
static void render_last_runs(FILE *f, json_t *m) {
        json_t *runs = json_object_get(m, "runs"), *phases = json_object_get(m, "phases"), *v;
        const char *k;

        header(f, "atticd_agent_last_run_timestamp_seconds", "gauge", "When the last run of a command ended.");
        json_object_foreach(runs, k, v) {
                sample(f, "atticd_agent_last_run_timestamp_seconds", "command", k);
                fprintf(f, "%lld\n", (long long) json_integer_value(json_object_get(v, "time")));
        }
        header(f, "atticd_agent_last_run_success", "gauge", "1 when the last run of a command succeeded (or had nothing to do).");
        json_object_foreach(runs, k, v) {
                sample(f, "atticd_agent_last_run_success", "command", k);
                fprintf(f, "%d\n", json_is_true(json_object_get(v, "success")));
        }
        header(f, "atticd_agent_last_run_result", "gauge", "The result of the last run of a command (always 1).");
        json_object_foreach(runs, k, v) {
                fprintf(f, "atticd_agent_last_run_result{command=\"");
                put_label(f, k);
                fprintf(f, "\",result=\"");
                put_label(f, json_string_value(json_object_get(v, "result")));
                fprintf(f, "\"} 1\n");
        }
        header(f, "atticd_agent_last_run_duration_seconds", "gauge", "How long the last run of a command took.");
        json_object_foreach(runs, k, v) {
                sample(f, "atticd_agent_last_run_duration_seconds", "command", k);
                fprintf(f, "%.3f\n", json_number_value(json_object_get(v, "duration")));
        }
        header(f, "atticd_agent_phase_duration_seconds", "gauge",
               "How long each phase (fetch, verify, images, build, activate, check, rollback) took when it last ran.");
        json_object_foreach(phases, k, v) {
                sample(f, "atticd_agent_phase_duration_seconds", "phase", k);
                fprintf(f, "%.3f\n", json_number_value(v));
        }
}

/* The counters: runs of each command, refusals by reason, rollbacks and failed rollbacks. */
static void render_counters(FILE *f, json_t *m) {
        json_t *runs = json_object_get(m, "runs"), *refusals = json_object_get(m, "refusals"), *v;
        const char *k;

        header(f, "atticd_agent_runs_total", "counter", "Runs of each command.");
        json_object_foreach(runs, k, v) {
                sample(f, "atticd_agent_runs_total", "command", k);
                fprintf(f, "%lld\n", (long long) json_integer_value(json_object_get(v, "count")));
        }
        header(f, "atticd_agent_refusals_total", "counter", "Refused updates, by reason.");
        json_object_foreach(refusals, k, v) {
                sample(f, "atticd_agent_refusals_total", "reason", k);
                fprintf(f, "%lld\n", (long long) json_integer_value(v));
        }
        header(f, "atticd_agent_rollbacks_total", "counter", "Deployments rolled back (or whose rollback failed).");
        fprintf(f, "atticd_agent_rollbacks_total %lld\n", (long long) json_integer_value(json_object_get(m, "rollbacks")));
        header(f, "atticd_agent_rollback_failures_total", "counter", "Rollbacks that failed: a person was needed.");
        fprintf(f, "atticd_agent_rollback_failures_total %lld\n",
                (long long) json_integer_value(json_object_get(m, "rollback-failures")));
}

/* What is deployed: its revision, generation and source, when something is. */
static void render_deployed(FILE *f, const Config *c, const State *s) {
        header(f, "atticd_agent_deployed_info", "gauge", "What is deployed (always 1; the labels say what).");
        if (s && s->deployed_revision) {
                const Deployment *d = NULL;

                for (size_t i = s->n_history; i > 0 && !d; i--)
                        if (s->history[i - 1].result == RESULT_SUCCESS &&
                            streq_ptr(s->history[i - 1].revision, s->deployed_revision))
                                d = &s->history[i - 1];
                fprintf(f, "atticd_agent_deployed_info{revision=\"");
                put_label(f, s->deployed_revision);
                fprintf(f, "\",generation=\"");
                put_label(f, s->deployed_generation);
                fprintf(f, "\",source=\"");
                put_label(f, d ? d->source : "");
                fprintf(f, "\",host=\"");
                put_label(f, c->host);
                fprintf(f, "\"} 1\n");
        }
}

/* Whether a new revision waits, and which one and why. */
static void render_waiting(FILE *f, const State *s) {
        header(f, "atticd_agent_waiting", "gauge",
               "1 while a new revision waits (rollout, change window, switch inhibitors), else 0.");
        fprintf(f, "atticd_agent_waiting %d\n", s && s->waiting);
        header(f, "atticd_agent_waiting_info", "gauge", "The revision that waits and why (always 1, while one waits).");
        if (s && s->waiting) {
                fprintf(f, "atticd_agent_waiting_info{revision=\"");
                put_label(f, json_string_value(json_object_get(s->waiting, "revision")));
                fprintf(f, "\",reason=\"");
                put_label(f, json_string_value(json_object_get(s->waiting, "reason")));
                fprintf(f, "\"} 1\n");
        }
}

/* The .prom file: every metric with its HELP and TYPE lines, in a fixed order. */
static int render(const Config *c, const State *s, json_t *m, const MetricsDrift *drift, char **ret, size_t *ret_size) {
        size_t size = 0;
        char *buf = NULL;
        FILE *f = open_memstream(&buf, &size);

        if (!f)
                return -ENOMEM;

        render_last_runs(f, m);
        render_counters(f, m);
        header(f, "atticd_agent_images_verified", "gauge", "Images whose signatures the last verification accepted.");
        fprintf(f, "atticd_agent_images_verified %lld\n", (long long) json_integer_value(json_object_get(m, "images-verified")));

        render_deployed(f, c, s);
        header(f, "atticd_agent_profile_generation", "gauge", "The number of the system profile's current generation.");
        fprintf(f, "atticd_agent_profile_generation %ld\n", profile_number(c));
        header(f, "atticd_agent_bundle_sequence", "gauge", "The sequence of the last bundle applied (0: none).");
        fprintf(f, "atticd_agent_bundle_sequence %llu\n", s ? (unsigned long long) s->bundle_sequence : 0ULL);
        header(f, "atticd_agent_containers_drifted", "gauge",
               "Containers of the deployed revision that run another image than the verified one (at the last check).");
        fprintf(f, "atticd_agent_containers_drifted %lld\n",
                (long long) json_integer_value(json_object_get(m, "containers-drifted")));
        header(f, "atticd_agent_containers_not_running", "gauge",
               "Containers of the deployed revision that were not running at the last check.");
        fprintf(f, "atticd_agent_containers_not_running %lld\n",
                (long long) json_integer_value(json_object_get(m, "containers-not-running")));
        render_waiting(f, s);
        header(f, "atticd_agent_drift", "gauge",
               "1 when the running system or the profile is not the generation the agent deployed (a change by hand).");
        fprintf(f, "atticd_agent_drift %d\n", drift && drift->drift);

        if (fclose(f) != 0) {
                free(buf);
                return -ENOMEM;
        }
        *ret = buf;
        *ret_size = size;
        return 0;
}

int metrics_drift(const Config *c, const State *s, MetricsDrift *ret) {
        *ret = (MetricsDrift) {};
        if (!s || !s->deployed_generation || s->phase != PHASE_IDLE)
                return 0; /* nothing deployed yet, or a deployment in flight */
        (void) readlink_malloc(c->system.current_system, &ret->current_system);
        (void) profile_generation(c, &ret->profile, NULL);
        ret->drift = !streq_ptr(ret->current_system, s->deployed_generation) ||
                     !streq_ptr(ret->profile, s->deployed_generation);
        return ret->drift;
}

void metrics_drift_done(MetricsDrift *d) {
        free(d->current_system);
        free(d->profile);
        *d = (MetricsDrift) {};
}

/* metrics.json is read, counted into and written again by every run, and also by a run that
 * found the state's lock taken (busy): its own lock, held for as long as that takes. */
static int lock_metrics(const char *state_dir) {
        _cleanup_free_ char *path = path_join(state_dir, "metrics.lock");
        int fd;

        if (!path)
                return -ENOMEM;
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return -errno;
        if (flock(fd, LOCK_EX) < 0) {
                int r = -errno;
                (void) close(fd);
                return r;
        }
        return fd;
}

static int save(const Config *c, json_t *m) {
        _cleanup_free_ char *path = path_join(c->state_dir, METRICS_FILE), *data = NULL;
        int r;

        data = json_dumps(m, JSON_INDENT(2) | JSON_SORT_KEYS);
        if (!path || !data)
                return -ENOMEM;
        r = write_file_atomic(path, data, strlen(data), 0644);
        if (r < 0)
                log_warning_errno(r, "Failed to write '%s': %m", path);
        return r;
}

int metrics_record_containers(const Config *c, const State *s, long drifted, long not_running) {
        _cleanup_close_ int lock = lock_metrics(c->state_dir);
        json_t *m = load(c->state_dir);

        if (!m)
                return -ENOMEM;
        json_object_set_new(m, "containers-drifted", json_integer(drifted));
        json_object_set_new(m, "containers-not-running", json_integer(not_running));
        (void) save(c, m);
        json_decref(m);
        closep(&lock);
        return metrics_record(c, s, NULL);
}

int metrics_record(const Config *c, const State *s, const MetricsRun *run) {
        _cleanup_free_ char *prom = NULL;
        _cleanup_(metrics_drift_done) MetricsDrift drift = {};
        _cleanup_close_ int lock = lock_metrics(c->state_dir); /* best effort: counting goes on without */
        json_t *m = load(c->state_dir), *runs, *entry, *phases;
        size_t size;
        int r;

        if (!m)
                return -ENOMEM;
        if (run) {
                runs = object_child(m, "runs");
                entry = object_child(runs, run->command);
                counter_add(entry, "count", 1);
                json_object_set_new(entry, "time", json_integer((json_int_t) run->end));
                json_object_set_new(entry, "result", json_string(run_result_to_string(run->result)));
                json_object_set_new(entry, "success", json_boolean(run->result == RESULT_SUCCESS ||
                                                                   run->result == RESULT_NO_CHANGE ||
                                                                   run->result == RESULT_PENDING_REBOOT ||
                                                                   run->result == RESULT_WAITING ||
                                                                   (run->result == RESULT_ROLLED_BACK &&
                                                                    streq_ptr(run->command, "rollback"))));
                json_object_set_new(entry, "duration", json_real((double) run->duration / USEC_PER_SEC));
                phases = object_child(m, "phases");
                for (size_t i = 0; i < run->n_phases; i++)
                        json_object_set_new(phases, run->phases[i].name,
                                            json_real((double) run->phases[i].duration / USEC_PER_SEC));
                if (run->result == RESULT_REFUSED && json_object_size(object_child(m, "refusals")) < REASONS_MAX)
                        counter_add(object_child(m, "refusals"), run->refusal ?: "other", 1);
                if (run->result == RESULT_ROLLED_BACK || run->result == RESULT_ROLLBACK_FAILED)
                        counter_add(m, "rollbacks", 1);
                if (run->result == RESULT_ROLLBACK_FAILED)
                        counter_add(m, "rollback-failures", 1);
                if (run->images_verified >= 0)
                        json_object_set_new(m, "images-verified", json_integer(run->images_verified));

                r = save(c, m);
                if (r == -ENOMEM) {
                        json_decref(m);
                        return r;
                }
        }

        if (!c->metrics.textfile) {
                json_decref(m);
                return 0;
        }
        (void) metrics_drift(c, s, &drift);
        r = render(c, s, m, &drift, &prom, &size);
        json_decref(m);
        if (r < 0)
                return r;
        /* The collector's directory may not exist yet (a first run before the exporter's). */
        {
                _cleanup_free_ char *dir = strdup(c->metrics.textfile);

                if (dir && strrchr(dir, '/') && strrchr(dir, '/') != dir) {
                        *strrchr(dir, '/') = 0;
                        (void) mkdir_parents(dir, 0755);
                }
        }
        r = write_file_atomic(c->metrics.textfile, prom, size, 0644);
        if (r < 0)
                return log_warning_errno(r, "Failed to write the metrics to '%s': %m", c->metrics.textfile);
        return 0;
}
