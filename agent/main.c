/* SPDX-License-Identifier: MIT */
/* atticd-agent: parses the command line and dispatches. Nothing else lives here. */

#include <getopt.h>

#include "config.h"
#include "engine.h"
#include "exitcode.h"
#include "log.h"
#include "status.h"
#include "version.h"

typedef struct Args {
        const char *config_path;
        bool json;
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
               "  apply BUNDLE            verify an offline bundle completely, then deploy it\n"
               "  verify BUNDLE           verify a bundle completely; change nothing\n"
               "  bundle create -o OUT --rev REV [--repo DIR] --key KEY [--sequence N] [--expires DURATION]\n"
               "                          [--no-closure] [--no-images]\n"
               "                          write a signed bundle for an air-gapped machine\n"
               "  verify-images [--rev REV]\n"
               "                          verify the Cosign signatures of every image of the deployed\n"
               "                          revision (or of REV); change nothing\n"
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
               "5 the rollback failed, 6 the source was unreachable.\n"
               "See atticd-agent(8).\n",
               CONFIG_ENV, CONFIG_DEFAULT_PATH);
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
        return EXIT_OK;
}

static int cmd_verify_images(const Args *a, int argc, char **argv) {
        _cleanup_config_ Config *c = NULL;
        const char *rev = NULL;
        int code;

        for (int i = 1; i < argc; i++) {
                if (streq(argv[i], "--rev") && i + 1 < argc)
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

/* Commands that later work brings. They answer clearly instead of pretending. */
static int cmd_later(const Args *a, int argc, char **argv) {
        log_error("'%s' is not available in this version of atticd-agent yet; nothing was done.", argv[0]);
        return EXIT_USAGE;
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
        { "apply", cmd_later },
        { "verify", cmd_later },
        { "bundle", cmd_later },
        { "verify-images", cmd_verify_images },
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

        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                if (streq(commands[i].name, argv[optind])) {
                        int n = argc - optind, r;

                        r = take_global_options(&a, &n, argv + optind);
                        if (r != EXIT_OK)
                                return r;
                        return commands[i].run(&a, n, argv + optind);
                }

        return usage_error("atticd-agent", "unknown command", argv[optind]);
}
