/* SPDX-License-Identifier: MIT */
/* atticd-agent: parses the command line and dispatches. Nothing else lives here. */

#include <getopt.h>
#include <inttypes.h>
#include <stddef.h>
#include <unistd.h>

#include "bundle/bundle.h"

#include "config/config.h"
#include "engine/engine.h"
#include "basic/exitcode.h"
#include "basic/log.h"
#include "engine/status.h"
#include "sign/sigstore-root.h"
#include "basic/stop.h"
#include "version.h"

typedef struct Args {
        const char *config_path;
        bool json;
        bool help, version; /* given after the command */
} Args;

static void help(void) {
        printf("Usage: atticd-agent [-c FILE | --config FILE] [--json] [-v] [-q] COMMAND [ARGS]\n"
               "\n"
               "Update agent for NixOS machines: fetches a client flake from git or an offline\n"
               "bundle, verifies it, builds and activates it, checks its health and rolls back.\n"
               "\n"
               "Commands:\n"
               "  pull [--retry]          fetch the configured repository; deploy when there is a new revision\n"
               "                          (--retry: even one that failed before)\n"
               "  plan                    fetch, verify and build the new revision; print what activating it\n"
               "                          would change and whether this host would take it now; activate nothing\n"
               "  apply BUNDLE [--allow-downgrade] [--reevaluate]\n"
               "                          verify an offline bundle completely, then deploy it (--reevaluate:\n"
               "                          evaluate the bundled flake offline; it must give the signed system)\n"
               "  verify BUNDLE [--allow-downgrade]\n"
               "                          verify a bundle completely; change nothing\n"
               "  bundle create -o|--output OUT --rev REV [--repo DIR] --key KEY [--sequence N] [--expires DURATION]\n"
               "                          [--no-closure] [--no-images] [--with-sources] [--host NAME]\n"
               "                          [--base BUNDLE]\n"
               "                          write a signed bundle for an air-gapped machine\n"
               "  verify-images [--rev REV | --rev=REV]\n"
               "                          verify the Cosign signatures of every image of the deployed\n"
               "                          revision (or of REV); change nothing\n"
               "  verify-blob --bundle FILE [--trusted-root FILE]\n"
               "              (--certificate-identity ID --certificate-oidc-issuer ISSUER | --key KEY) ARTIFACT\n"
               "              (or --certificate-identity-regexp RE, --certificate-oidc-issuer-regexp RE)\n"
               "                          verify a Sigstore bundle (v0.1-v0.3, keyless or with a key) over a file,\n"
               "                          offline against the trusted root (default %s)\n"
               "  check                   run the health checks now against the running system\n"
               "  status                  deployment state and history (--json: one JSON object)\n"
               "  rollback                switch back to the last known-good generation\n"
               "  confirm                 after a boot: confirm a pending boot-activated deployment, or roll back\n"
               "  config check [FILE]     validate a configuration file; print nothing but errors\n"
               "\n"
               "Options:\n"
               "  -c, --config FILE       configuration file (default: $%s, else %s)\n"
               "      --json              machine-readable output\n"
               "  -v, --verbose           more output (debug)\n"
               "  -q, --quiet             only warnings and errors\n"
               "      --version           print the version\n"
               "  -h, --help              this help\n"
               "\n"
               "Exit codes: 0 success, 1 deployment failed and rolled back (check: unhealthy),\n"
               "2 usage or configuration error, 3 refused by a verification, 4 busy,\n"
               "5 the rollback failed, 6 the source was unreachable, 143 stopped by SIGTERM (the next\n"
               "run finishes the job).\n"
               "See atticd-agent(8).\n",
               SIGSTORE_TRUSTED_ROOT_DEFAULT, CONFIG_ENV, CONFIG_DEFAULT_PATH);
}

static int load_config(const Args *a, Config **ret) {
        const char *path = config_path_resolve(a->config_path);
        Error e = {};
        int r;

        r = config_load(path, ret, &e);
        if (r < 0) {
                log_error("%s", error_message(&e) ?: strerror(-r));
                return EXIT_USAGE;
        }
        return EXIT_OK;
}

static int usage_error(const char *command, const char *problem, const char *arg) {
        log_error("%s: %s '%s'. See 'atticd-agent --help'.", command, problem, arg);
        return EXIT_USAGE;
}

static int cmd_pull(const Args *a, int argc, char **argv) {
        _cleanup_config_ Config *c = NULL;
        PullOptions o = {};
        int code;

        for (int i = 1; i < argc; i++) {
                if (streq(argv[i], "--retry"))
                        o.retry = true;
                else
                        return usage_error("pull", "unexpected argument", argv[i]);
        }
        code = load_config(a, &c);
        if (code != EXIT_OK)
                return code;
        return engine_pull(c, &o);
}

static int cmd_plan(const Args *a, int argc, char **argv) {
        _cleanup_config_ Config *c = NULL;
        int code;

        if (argc > 1)
                return usage_error("plan", "unexpected argument", argv[1]);
        code = load_config(a, &c);
        if (code != EXIT_OK)
                return code;
        return engine_plan(c, a->json);
}

static int cmd_rollback(const Args *a, int argc, char **argv) {
        _cleanup_config_ Config *c = NULL;
        int code;

        if (argc > 1)
                return usage_error("rollback", "unexpected argument", argv[1]);
        code = load_config(a, &c);
        if (code != EXIT_OK)
                return code;
        return engine_rollback(c);
}

static int cmd_confirm(const Args *a, int argc, char **argv) {
        _cleanup_config_ Config *c = NULL;
        int code;

        if (argc > 1)
                return usage_error("confirm", "unexpected argument", argv[1]);
        code = load_config(a, &c);
        if (code != EXIT_OK)
                return code;
        return engine_confirm(c);
}

static int cmd_check(const Args *a, int argc, char **argv) {
        _cleanup_config_ Config *c = NULL;
        int code;

        if (argc > 1)
                return usage_error("check", "unexpected argument", argv[1]);
        code = load_config(a, &c);
        if (code != EXIT_OK)
                return code;
        return engine_check(c, a->json);
}

static int cmd_status(const Args *a, int argc, char **argv) {
        _cleanup_config_ Config *c = NULL;
        int code;

        if (argc > 1)
                return usage_error("status", "unexpected argument", argv[1]);
        code = load_config(a, &c);
        if (code != EXIT_OK)
                return code;
        return status_show(c, a->json);
}

static int cmd_config(const Args *a, int argc, char **argv) {
        _cleanup_config_ Config *c = NULL;
        const char *path;
        Error e = {};
        int r;

        if (argc < 2 || !streq(argv[1], "check"))
                return usage_error("config", "expected 'check', got", argc < 2 ? "" : argv[1]);
        if (argc > 3)
                return usage_error("config check", "unexpected argument", argv[3]);

        path = argc == 3 ? argv[2] : config_path_resolve(a->config_path);
        r = config_load(path, &c, &e);
        if (r < 0) {
                log_error("%s", error_message(&e) ?: strerror(-r));
                return EXIT_USAGE;
        }
        /* A configuration whose rollback cannot run is not a good one, nor one whose files do
         * not hold what their keys allow. */
        r = engine_check_tools(c, &e);
        if (r >= 0)
                r = engine_check_files(c, &e);
        if (r < 0) {
                log_error("%s", error_message(&e) ?: strerror(-r));
                return EXIT_USAGE;
        }
        return EXIT_OK;
}

static int cmd_verify_images(const Args *a, int argc, char **argv) {
        _cleanup_config_ Config *c = NULL;
        const char *rev = NULL;
        int code;

        for (int i = 1; i < argc; i++) {
                if (streq(argv[i], "--rev") && i + 1 >= argc)
                        return usage_error("verify-images", "a commit or ref is missing after", "--rev");
                else if (streq(argv[i], "--rev"))
                        rev = argv[++i];
                else if (strncmp(argv[i], "--rev=", 6) == 0)
                        rev = argv[i] + 6;
                else
                        return usage_error("verify-images", "unexpected argument", argv[i]);
        }
        code = load_config(a, &c);
        if (code != EXIT_OK)
                return code;
        return engine_verify_images(c, rev, a->json);
}

/* verify BUNDLE / apply BUNDLE [--allow-downgrade] */
static int cmd_verify_or_apply(const Args *a, int argc, char **argv) {
        _cleanup_config_ Config *c = NULL;
        BundleOptions o = { .quiet = log_get_max_level() < LOG_INFO };
        const char *path = NULL;
        int code;

        for (int i = 1; i < argc; i++) {
                if (streq(argv[i], "--allow-downgrade"))
                        o.allow_downgrade = true;
                else if (streq(argv[i], "--reevaluate") && streq(argv[0], "apply"))
                        o.reevaluate = true;
                else if (argv[i][0] == '-' && argv[i][1] != 0)
                        return usage_error(argv[0], "unknown option", argv[i]);
                else if (!path)
                        path = argv[i];
                else
                        return usage_error(argv[0], "unexpected argument", argv[i]);
        }
        if (!path)
                return usage_error(argv[0], "expected a bundle file, got", "");
        code = load_config(a, &c);
        if (code != EXIT_OK)
                return code;
        if (streq(argv[0], "verify"))
                return engine_verify_bundle(c, path, &o, a->json);
        return engine_apply_bundle(c, path, &o);
}

/* verify-blob --bundle FILE [--trusted-root FILE]
 *             (--certificate-identity[-regexp] ID --certificate-oidc-issuer[-regexp] ISSUER | --key KEY) ARTIFACT */
static int cmd_verify_blob(const Args *a, int argc, char **argv) {
        static const struct {
                const char *name;
                size_t offset;
        } options[] = {
                { "--bundle", offsetof(VerifyBlobOptions, bundle) },
                { "--trusted-root", offsetof(VerifyBlobOptions, trusted_root) },
                { "--certificate-identity", offsetof(VerifyBlobOptions, identity) },
                { "--certificate-identity-regexp", offsetof(VerifyBlobOptions, identity_regexp) },
                { "--certificate-oidc-issuer", offsetof(VerifyBlobOptions, issuer) },
                { "--certificate-oidc-issuer-regexp", offsetof(VerifyBlobOptions, issuer_regexp) },
                { "--key", offsetof(VerifyBlobOptions, key) },
        };
        VerifyBlobOptions o = {};
        const char *identity, *issuer;

        for (int i = 1; i < argc; i++) {
                const char *s = argv[i], **value = NULL;
                size_t k;

                for (k = 0; k < ELEMENTSOF(options); k++) {
                        size_t n = strlen(options[k].name);

                        if (strncmp(s, options[k].name, n) == 0 && (s[n] == 0 || s[n] == '=')) {
                                value = (const char **) ((char *) &o + options[k].offset);
                                break;
                        }
                }
                if (value && *value)
                        return usage_error("verify-blob", "given twice:", options[k].name);
                if (value && s[strlen(options[k].name)] == '=')
                        *value = s + strlen(options[k].name) + 1;
                else if (value && i + 1 < argc)
                        *value = argv[++i];
                else if (value)
                        return usage_error("verify-blob", "a value is missing after", s);
                else if (s[0] == '-' && s[1] != 0)
                        return usage_error("verify-blob", "unknown option", s);
                else if (!o.artifact)
                        o.artifact = s;
                else
                        return usage_error("verify-blob", "unexpected argument", s);
                if (value && !**value)
                        return usage_error("verify-blob", "an empty value for", options[k].name);
        }
        if (!o.bundle)
                return usage_error("verify-blob", "--bundle FILE is required; missing", "--bundle");
        if (!o.artifact)
                return usage_error("verify-blob", "the file to verify is missing after the options, got", "");
        if (o.identity && o.identity_regexp)
                return usage_error("verify-blob", "--certificate-identity excludes", "--certificate-identity-regexp");
        if (o.issuer && o.issuer_regexp)
                return usage_error("verify-blob", "--certificate-oidc-issuer excludes", "--certificate-oidc-issuer-regexp");
        identity = o.identity ?: o.identity_regexp;
        issuer = o.issuer ?: o.issuer_regexp;
        if (o.key && (identity || issuer))
                return usage_error("verify-blob", "--key excludes --certificate-identity and --certificate-oidc-issuer; got",
                                   identity ? "--certificate-identity" : "--certificate-oidc-issuer");
        if (!o.key && (!identity || !issuer))
                return usage_error("verify-blob",
                                   "--certificate-identity and --certificate-oidc-issuer (or --key) are required; missing",
                                   !identity ? "--certificate-identity" : "--certificate-oidc-issuer");
        return engine_verify_blob(&o, a->json);
}

/* "3600", "90s", "30m", "12h", "30d", "2w" -> seconds. */
static int parse_duration(const char *s, uint64_t *ret) {
        char *end;
        unsigned long long v;
        uint64_t unit = 1;

        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno != 0 || end == s || s[0] == '-')
                return -EINVAL;
        if (streq(end, "") || streq(end, "s"))
                unit = 1;
        else if (streq(end, "m"))
                unit = 60;
        else if (streq(end, "h"))
                unit = 3600;
        else if (streq(end, "d"))
                unit = 86400;
        else if (streq(end, "w"))
                unit = 7 * 86400;
        else
                return -EINVAL;
        if (v == 0 || v > UINT32_MAX)
                return -ERANGE;
        *ret = v * unit;
        return 0;
}

/* bundle create -o OUT --rev REV [--repo DIR] --key KEY [--sequence N] [--expires DURATION]
 *               [--no-closure] [--no-images] [--with-sources] [--host NAME] */
static int cmd_bundle(const Args *a, int argc, char **argv) {
        _cleanup_config_ Config *c = NULL;
        BundleCreateOptions o = { .repo = ".", .expires_in = 30 * 86400, .closure = true, .images = true };
        const char *path;
        Error e = {};
        int r;

        if (argc < 2 || !streq(argv[1], "create"))
                return usage_error("bundle", "expected 'create', got", argc < 2 ? "" : argv[1]);
        for (int i = 2; i < argc; i++) {
                const char *s = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

                if (streq(s, "--no-closure"))
                        o.closure = false;
                else if (streq(s, "--no-images"))
                        o.images = false;
                else if (streq(s, "--with-sources"))
                        o.with_sources = true;
                else if (!v)
                        return usage_error("bundle create", "unknown option or missing value after", s);
                else if (streq(s, "-o") || streq(s, "--output"))
                        o.output = argv[++i];
                else if (streq(s, "--rev"))
                        o.rev = argv[++i];
                else if (streq(s, "--repo"))
                        o.repo = argv[++i];
                else if (streq(s, "--key"))
                        o.key = argv[++i];
                else if (streq(s, "--host"))
                        o.host = argv[++i];
                else if (streq(s, "--base"))
                        o.base = argv[++i];
                else if (streq(s, "--sequence")) {
                        char *end;
                        errno = 0;
                        o.sequence = strtoull(v, &end, 10);
                        if (errno != 0 || *end || v[0] == '-' || o.sequence == 0 || o.sequence > BUNDLE_SIZE_MAX)
                                return usage_error("bundle create", "--sequence must be an integer from 1 to 2^53-1, not", v);
                        i++;
                } else if (streq(s, "--expires")) {
                        if (parse_duration(v, &o.expires_in) < 0)
                                return usage_error("bundle create",
                                                   "--expires must be a duration (seconds, or 30m, 12h, 30d, 2w), not", v);
                        i++;
                } else
                        return usage_error("bundle create", "unknown option", s);
        }
        if (!o.output || !o.rev || !o.key)
                return usage_error("bundle create", "-o OUT, --rev REV and --key KEY are required; missing",
                                   !o.output ? "-o" : !o.rev ? "--rev" : "--key");

        /* The configuration names the host, nix and the registries; a build machine without
         * one gives --host. */
        path = config_path_resolve(a->config_path);
        if (a->config_path || access(path, F_OK) == 0 || !o.host) {
                int code = load_config(a, &c);
                if (code != EXIT_OK)
                        return code;
        } else if (config_new(&c) < 0)
                return EXIT_USAGE;
        if (!o.host)
                o.host = c->host;
        else if (!streq_ptr(c->host, o.host)) {
                /* What is evaluated and built is --host's, whatever the configuration names. */
                free(c->host);
                c->host = strdup(o.host);
                if (!c->host) {
                        log_error("Out of memory.");
                        return EXIT_USAGE;
                }
        }

        r = bundle_create(c, &o, &e);
        if (r < 0) {
                log_error("Cannot create the bundle: %s", error_message(&e) ?: strerror(-r));
                switch (r) {
                case -EINVAL:
                case -ENOENT:
                        return EXIT_USAGE;
                case -EPERM: /* images.keys is set and an image does not verify */
                case -EKEYREJECTED:
                        return EXIT_REFUSED;
                case -EHOSTUNREACH: /* a registry could not be asked: as pull says it */
                case -ETIMEDOUT:
                case -EACCES:
                        return EXIT_TRANSIENT;
                default:
                        return EXIT_DEPLOY_FAILED;
                }
        }
        return EXIT_OK;
}

/* The global options may also follow the command ("status --json"): take them out of the
 * command's arguments, leaving its own options and operands in order. */
static int take_global_options(Args *a, int *argc, char **argv) {
        int out = 1;

        for (int i = 1; i < *argc; i++) {
                const char *s = argv[i];

                if (streq(s, "--")) {
                        while (i < *argc)
                                argv[out++] = argv[i++];
                        break;
                }
                if (streq(s, "--json"))
                        a->json = true;
                else if (streq(s, "-v") || streq(s, "--verbose"))
                        log_set_max_level(LOG_DEBUG);
                else if (streq(s, "-q") || streq(s, "--quiet"))
                        log_set_max_level(LOG_WARNING);
                else if (streq(s, "-c") || streq(s, "--config")) {
                        if (i + 1 >= *argc)
                                return usage_error(argv[0], "missing file after", s);
                        a->config_path = argv[++i];
                } else if (strncmp(s, "--config=", 9) == 0)
                        a->config_path = s + 9;
                else if (streq(s, "-h") || streq(s, "--help"))
                        a->help = true;
                else if (streq(s, "--version"))
                        a->version = true;
                else
                        argv[out++] = argv[i];
        }
        argv[out] = NULL;
        *argc = out;
        return EXIT_OK;
}

typedef struct Command {
        const char *name;
        int (*run)(const Args *a, int argc, char **argv);
} Command;

static const Command commands[] = {
        { "pull", cmd_pull },
        { "plan", cmd_plan },
        { "apply", cmd_verify_or_apply },
        { "verify", cmd_verify_or_apply },
        { "bundle", cmd_bundle },
        { "verify-images", cmd_verify_images },
        { "verify-blob", cmd_verify_blob },
        { "check", cmd_check },
        { "status", cmd_status },
        { "rollback", cmd_rollback },
        { "confirm", cmd_confirm },
        { "config", cmd_config },
};

int main(int argc, char **argv) {
        enum { ARG_JSON = 0x100, ARG_VERSION };
        static const struct option options[] = {
                { "config", required_argument, NULL, 'c' },
                { "json", no_argument, NULL, ARG_JSON },
                { "verbose", no_argument, NULL, 'v' },
                { "quiet", no_argument, NULL, 'q' },
                { "version", no_argument, NULL, ARG_VERSION },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        Args a = {};
        int c;

        /* "+": stop at the command; its own arguments are its business. */
        while ((c = getopt_long(argc, argv, "+c:vqh", options, NULL)) >= 0)
                switch (c) {
                case 'c':
                        a.config_path = optarg;
                        break;
                case ARG_JSON:
                        a.json = true;
                        break;
                case 'v':
                        log_set_max_level(LOG_DEBUG);
                        break;
                case 'q':
                        log_set_max_level(LOG_WARNING);
                        break;
                case ARG_VERSION:
                        printf("atticd-agent %s\n", PACKAGE_VERSION);
                        return EXIT_OK;
                case 'h':
                        help();
                        return EXIT_OK;
                default:
                        log_error("See 'atticd-agent --help'.");
                        return EXIT_USAGE;
                }

        if (optind >= argc) {
                log_error("No command given. See 'atticd-agent --help'.");
                return EXIT_USAGE;
        }
        /* SIGTERM and SIGINT end a run at its next safe point, never in the middle of a step. */
        if (stop_install() < 0) {
                log_error_errno(errno, "Cannot install the signal handlers: %m");
                return EXIT_USAGE;
        }

        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                if (streq(commands[i].name, argv[optind])) {
                        int n = argc - optind, r;

                        r = take_global_options(&a, &n, argv + optind);
                        if (r != EXIT_OK)
                                return r;
                        /* "status --help" as "--help status": the help, not an unknown argument. */
                        if (a.help) {
                                help();
                                return EXIT_OK;
                        }
                        if (a.version) {
                                printf("atticd-agent %s\n", PACKAGE_VERSION);
                                return EXIT_OK;
                        }
                        return commands[i].run(&a, n, argv + optind);
                }

        return usage_error("atticd-agent", "unknown command", argv[optind]);
}
