# SPDX-License-Identifier: MIT
#
# NixOS module: services.atticd-agent.
#
#   imports = [ atticd-agent.nixosModules.default ];
#   services.atticd-agent = {
#     enable = true;
#     settings.repository.url = "https://git.example.org/client.git";
#   };
#
# docs/nixos.md describes the options and gives a complete client flake; docs/configuration.md
# (and atticd-agent(8)) every key of `settings`.
#
# Units:
#   atticd-agent-pull.service/.timer        `pull` on a schedule
#   atticd-agent-confirm.service            `confirm` once after every boot
#   atticd-agent-recheck.service/.timer     `check` and `verify-images` on a schedule
{
  config,
  lib,
  pkgs,
  ...
}:

let
  inherit (lib)
    literalExpression
    mkEnableOption
    mkIf
    mkOption
    types
    ;

  cfg = config.services.atticd-agent;

  # What config.boot.loader says; `or`: an evaluation without NixOS's boot options (the tests').
  loader = config.boot.loader or { };
  bootLoader =
    if loader.systemd-boot.enable or false then
      "systemd-boot"
    else if loader.grub.enable or false then
      "grub"
    else if loader.generic-extlinux-compatible.enable or false then
      "extlinux"
    else
      null;
  grubPackage = loader.grub.package or pkgs.grub2 or null;
  loaderBootCounting = loader.systemd-boot.bootCounting.enable or false;
  format = pkgs.formats.yaml { };

  # The file every unit and every hand-run command reads (the agent's default path).
  configPath = "/etc/atticd-agent/config.yaml";

  agent = "${cfg.package}/bin/atticd-agent";

  # nixos-rebuild as this NixOS release builds it, when the release has it there.
  nixos-rebuild = config.system.build.nixos-rebuild or pkgs.nixos-rebuild;

  absolutePath = types.addCheck types.str (lib.hasPrefix "/") // {
    description = "absolute path";
  };

  # A file the agent reads at run time and that must stay out of the world-readable nix
  # store (credentials, private keys). A string, not a path: a path literal such as
  # ./auth.json would be copied into the store, so this type refuses it. A store path given
  # as a string is refused by an assertion below.
  secretPath = types.addCheck types.str (lib.hasPrefix "/") // {
    description = "absolute path as a string (read at run time; never copied into the nix store)";
  };

  isInStore = p: lib.hasPrefix "/nix/store/" p || lib.hasPrefix "${builtins.storeDir}/" p;

  # Every option below that is null means "not written: the agent's default applies".
  # The agent refuses null values, so they never reach the file; nor do sections left empty.
  withoutNulls =
    v:
    if builtins.isAttrs v then
      lib.filterAttrs (n: x: x != null && x != { } && n != "_module") (lib.mapAttrs (_: withoutNulls) v)
    else if builtins.isList v then
      map withoutNulls v
    else
      v;

  nullable =
    type: description: extra:
    mkOption (
      {
        type = types.nullOr type;
        default = null;
        inherit description;
      }
      // extra
    );

  # A section of the file: the keys declared here are typed and documented; every other key
  # is passed through as written (RFC 42), and the agent's own check below rejects what it
  # does not know.
  section =
    description: options:
    mkOption {
      type = types.submodule {
        freeformType = format.type;
        inherit options;
      };
      default = { };
      inherit description;
    };

  healthCheck = types.submodule {
    freeformType = format.type;
    options = {
      name = mkOption {
        type = types.str;
        description = "Unique name of the check (in the journal, `status` and `check`).";
        example = "web";
      };
      http = nullable (types.submodule {
        freeformType = format.type;
        options = {
          url = mkOption {
            type = types.str;
            description = "`http://` or `https://` URL to GET (no proxy, no redirects).";
            example = "http://127.0.0.1:8080/health";
          };
          status = nullable (types.ints.between 100 599) "Expected status (the agent's default: 200)." { };
          body = nullable types.str "Text the body must contain." { };
          ca-file = nullable types.path "CA (PEM) to trust for https." { };
        };
      }) "Passes when a GET of `url` answers `status`." { };
      tcp = nullable types.str "Passes when `HOST:PORT` (`[V6]:PORT`) accepts a connection." {
        example = "127.0.0.1:5432";
      };
      systemd-units = nullable (types.nonEmptyListOf types.str) "Passes when every unit is active." {
        example = [ "nginx.service" ];
      };
      command = nullable (types.nonEmptyListOf types.str) ''
        Passes when this argv (no shell) exits 0. It runs as root, alike in pull, confirm and
        recheck: the same environment and no sandboxing, so setuid and capability wrappers
        work (`/run/wrappers/bin/ping`, `sudo`) and it may write anywhere. Its PATH is the
        units' (nix, git, ssh, nixos-rebuild, coreutils, findutils, grep, sed, systemd), not the
        system's: name any other program by its absolute path
        (`/run/current-system/sw/bin/curl`, `''${pkgs.curl}/bin/curl`). HOME is /root, and
        networking.proxy's variables are set.
      '' {
        example = [
          "/run/wrappers/bin/ping"
          "-c1"
          "-W2"
          "10.0.0.1"
        ];
      };
    };
  };

  # images.keyless.identities: who may sign images keyless. The agent compares each with the
  # signing certificate: the subject alternative name (an email or a URI) and the OIDC issuer
  # (extension 1.3.6.1.4.1.57264.1.8), each exactly or by a regular expression. Exactly one
  # of each pair is required; the assertions below say which identity lacks it.
  keylessIdentity = types.submodule {
    freeformType = format.type;
    options = {
      subject = nullable types.str "The certificate's subject alternative name (an email or a URI), compared exactly. Exactly one of `subject` and `subject-regexp`." {
        example = "https://gitlab.example.org/platform/ci//.gitlab-ci.yml@refs/heads/main";
      };
      subject-regexp = nullable types.str ''
        POSIX extended regular expression that the whole subject alternative name must match
        (anchored at both ends). Exactly one of `subject` and `subject-regexp`.
      '' { example = "https://github\\.com/example/[^/]+/\\.github/workflows/release\\.yml@refs/tags/v.*"; };
      issuer = nullable types.str "The OIDC issuer (certificate extension 1.3.6.1.4.1.57264.1.8), compared exactly. Exactly one of `issuer` and `issuer-regexp`." {
        example = "https://token.actions.githubusercontent.com";
      };
      issuer-regexp = nullable types.str ''
        POSIX extended regular expression that the whole OIDC issuer must match (anchored at
        both ends). Exactly one of `issuer` and `issuer-regexp`.
      '' { example = "https://gitlab\\.example\\.(org|com)"; };
    };
  };

  # "exactly one of NAME and NAME-regexp" for each keyless identity: assertions that name the
  # identity by its index (from 0, as the agent's messages do).
  keylessAssertions =
    let
      keyless = cfg.settings.images.keyless;
      pair =
        i: id: name:
        let
          exact = id.${name} != null;
          regexp = id."${name}-regexp" != null;
          at = "services.atticd-agent.settings.images.keyless.identities[${toString i}] (identity ${toString (i + 1)} of ${toString (builtins.length keyless.identities)})";
        in
        {
          assertion = exact != regexp;
          message =
            if exact then
              "${at} sets both ${name} and ${name}-regexp: give exactly one of them (${name}: compared exactly; ${name}-regexp: a POSIX extended regular expression over the whole value)."
            else
              "${at} sets neither ${name} nor ${name}-regexp: give exactly one of them (${name}: compared exactly; ${name}-regexp: a POSIX extended regular expression over the whole value).";
        };
    in
    lib.optionals (keyless != null) (
      lib.concatLists (
        lib.imap0 (i: id: [
          (pair i id "subject")
          (pair i id "issuer")
        ]) keyless.identities
      )
    );

  settingsOptions = {
    host = mkOption {
      type = types.str;
      default = config.networking.hostName;
      defaultText = literalExpression "config.networking.hostName";
      description = "The `nixosConfigurations.<host>` of the client flake that this machine runs.";
    };

    state-dir = mkOption {
      type = absolutePath;
      default = "/var/lib/atticd-agent";
      description = "Where the agent keeps everything it owns: its mirror of the repository, the state file, the lock.";
    };

    system = section "How the system is built and activated." {
      action = mkOption {
        type = types.enum [
          "switch"
          "boot"
        ];
        default = "switch";
        description = ''
          `switch`: activate a new generation at once. `boot`: make it the boot entry, reboot
          (inside `reboot-window`), and confirm it after the boot (atticd-agent-confirm.service);
          a generation that does not come up healthy is rolled back.
        '';
      };
      reboot-window = nullable types.str "`action = \"boot\"`: reboot only between these local times, `HH:MM-HH:MM`." {
        example = "02:00-04:30";
      };
      boot-default = nullable (types.enum [
        "after-health"
        "at-activation"
      ]) ''
        `action = "switch"`: when a new generation becomes the boot default. `after-health` (the
        agent's default): it is activated with `switch-to-configuration test`, and only once its
        health checks passed does it become the profile generation and the boot default; a power
        cut before that boots the known-good generation. `at-activation`: at once, as
        `nixos-rebuild switch` does.
      '' { };
      trial-boot = nullable types.bool ''
        `action = "boot"`: boot a new generation once (systemd-boot's one-shot entry, GRUB's
        `grub-reboot`) while the default entry stays the known-good generation, and make it the
        default only after `confirm` found it healthy (the agent's default: true). A loader
        without a one-shot entry (extlinux) cannot: setting this to true with one fails an
        assertion.
      '' { };
      boot-loader = mkOption {
        type = types.nullOr (types.enum [
          "auto"
          "systemd-boot"
          "grub"
          "extlinux"
          "other"
        ]);
        default = bootLoader;
        defaultText = literalExpression ''
          "systemd-boot", "grub" or "extlinux", as config.boot.loader says; else null (the agent's
          default, auto)'';
        description = "The boot loader the trial boot uses; set from `boot.loader`.";
      };
      keep-generations = nullable types.ints.unsigned ''
        After each successful deployment, keep only the newest N generations of the system
        profile (the current one among them; never the known-good one), so that /boot does not
        fill up; their boot entries go at the next deployment. The agent's default: 0, keep all.
      '' { example = 10; };
      on-switch-inhibited = nullable (types.enum [
        "boot"
        "wait"
      ]) ''
        When a new system's switch inhibitors (`system.switch.inhibitors`) changed, NixOS
        refuses to switch into it: `boot` (the agent's default) installs it for the next boot and
        reboots inside `reboot-window`; `wait` leaves it waiting.
      '' { };
      grub-reboot-command = mkOption {
        type = types.nullOr (types.listOf types.str);
        default =
          if bootLoader != "grub" then
            null
          else if grubPackage == null then
            [ "grub-reboot" ]
          else
            [ "${grubPackage}/bin/grub-reboot" ];
        defaultText = literalExpression ''[ "''${config.boot.loader.grub.package}/bin/grub-reboot" ] with GRUB'';
        description = "How the agent runs `grub-reboot` (GRUB's tools are not on the units' PATH).";
      };
    };

    repository = section "The client repository `pull` fetches. Leave `url` unset on a machine updated only from bundles." {
      url = nullable types.str "Git URL: a local path, `file://`, `git://`, `http(s)://`, `ssh://` or `user@host:path`." {
        example = "https://git.example.org/client.git";
      };
      ref = nullable types.str "Branch, tag, full ref or a 40-digit commit id (the agent's default: `main`)." {
        example = "production";
      };
      allow-non-fast-forward = nullable types.bool "Accept revisions that do not descend from the deployed one (force-push, downgrade). The agent's default: false." { };
      allowed-signers = nullable types.path ''
        OpenSSH allowed_signers file: when set, the commit must carry an SSH signature by a key
        listed there. Public keys: a path literal (copied into the store) is fine.
      '' { };
      http-username = nullable types.str "User name for http(s) basic authentication." { };
      http-password-file = nullable secretPath "File holding the http(s) password or token. Kept out of the nix store." {
        example = "/run/secrets/atticd-agent-git-token";
      };
      ssh-key = nullable secretPath "Private key for ssh URLs. Kept out of the nix store." {
        example = "/etc/atticd-agent/id_ed25519";
      };
      ssh-known-hosts = nullable types.path "known_hosts file with the server's host key (required for ssh URLs)." { };
      rollout-file = nullable types.str ''
        The staged rollout file inside the client repository, read at each new revision:
        `{"percent": 0-100, "paused": false, "delay": SECONDS}` (the agent's default:
        `rollout.json`; no such file: every host takes the revision at once).
      '' { };
    };

    rollout = section "Staged rollout: which hosts take a revision first (the platform team sets the share in the repository's rollout file)." {
      bucket = nullable (types.ints.between 0 99) ''
        This host's fixed bucket: it takes a revision once the rollout's `percent` is above it
        (0: a canary). Unset: derived from the machine id and the revision.
      '' { example = 0; };
    };

    schedule = section "When new revisions may be activated." {
      windows = nullable (types.listOf types.str) ''
        Change windows, local time, `[DAYS ]HH:MM-HH:MM`: outside every one, a new revision is
        fetched, verified and built, but activated only in the next window. Unset or empty: any
        time.
      '' { example = [ "Mon-Fri 02:00-05:00" ]; };
    };

    images = section "Cosign verification of the container images a revision uses." {
      keys = nullable (types.listOf types.path) ''
        Cosign public keys (PEM). Images are verified when `keys` or `keyless` is set; with
        `keys` unset or empty and no `keyless`, images are not verified.
      '' { example = literalExpression "[ ./keys/cosign.pub ]"; };
      keyless = nullable (types.submodule {
        freeformType = format.type;
        options = {
          trusted-root = mkOption {
            type = types.path;
            description = ''
              The Sigstore trusted root (`trusted_root.json`: the Fulcio CAs, Rekor logs, CT
              logs and timestamp authorities that are trusted), pinned: the agent never fetches
              it. Public data: a path literal, copied into the nix store, is fine.
            '';
            example = literalExpression "./keys/trusted_root.json";
          };
          identities = mkOption {
            type = types.nonEmptyListOf keylessIdentity;
            description = ''
              The signers whose keyless signatures count, each with exactly one of `subject`
              and `subject-regexp` and exactly one of `issuer` and `issuer-regexp`.
            '';
            example = literalExpression ''
              [
                {
                  issuer = "https://gitlab.example.org";
                  subject = "https://gitlab.example.org/platform/ci//.gitlab-ci.yml@refs/heads/main";
                }
                {
                  issuer = "https://token.actions.githubusercontent.com";
                  subject-regexp = "https://github\\.com/example/[^/]+/\\.github/workflows/release\\.yml@refs/tags/v.*";
                }
              ]
            '';
          };
        };
      }) "Sigstore keyless verification: images signed in CI with a short-lived Fulcio certificate, checked offline against a pinned trusted root." { };
      threshold = nullable types.ints.positive ''
        Distinct signers that must have signed each image: each trusted key of `keys` and each
        identity of `keyless.identities` counts once (the agent's default: 1).
      '' { };
      registry-auth-file = nullable secretPath "Docker `config.json` with registry credentials. Kept out of the nix store." {
        example = "/run/secrets/registry-auth.json";
      };
      require-sbom = nullable types.bool "Require a signed SPDX or CycloneDX attestation per image (the agent's default: false)." { };
    };

    bundle = section "Offline bundles (`atticd-agent apply`)." {
      keys = nullable (types.listOf types.path) "PEM public keys (ECDSA P-256, Ed25519) that may sign bundles." {
        example = literalExpression "[ ./keys/bundle.pub ]";
      };
    };

    health = section "Health checks after every activation; failing them rolls back." {
      settle = nullable types.ints.unsigned "Seconds to wait before the first round (the agent's default: 5)." { };
      timeout = nullable types.ints.unsigned "Seconds after which an unhealthy generation is rolled back (the agent's default: 120)." { };
      checks = nullable (types.listOf healthCheck) "The checks, each with a `name` and one of `http`, `tcp`, `systemd-units`, `command`." {
        example = literalExpression ''
          [
            { name = "web"; http = { url = "http://127.0.0.1:8080/health"; status = 200; }; }
            { name = "units"; systemd-units = [ "nginx.service" ]; }
          ]
        '';
      };
    };

    metrics = section "Prometheus metrics." {
      textfile = nullable absolutePath "`.prom` file for the node exporter's textfile collector." {
        example = "/var/lib/prometheus-node-exporter/atticd-agent.prom";
      };
    };
  };

  # Files with credentials: they must not be in the nix store, which every user can read.
  secrets = {
    "repository.http-password-file" = cfg.settings.repository.http-password-file;
    "repository.ssh-key" = cfg.settings.repository.ssh-key;
    "images.registry-auth-file" = cfg.settings.images.registry-auth-file;
  };

  configFile = format.generate "atticd-agent.yaml" (withoutNulls cfg.settings);

  # The agent's own parser checks the file when the system is built: an unknown key, a wrong
  # type or a bad value fails `nixos-rebuild build` with "FILE:LINE: KEY: what is wrong",
  # not the next timer tick on the machine.
  checkedConfigFile =
    pkgs.runCommand "atticd-agent-config.yaml"
      {
        preferLocalBuild = true;
        passthru.unchecked = configFile;
      }
      ''
        # With the units' PATH: `config check` also finds the programs a deployment and its
        # rollback run (system.nix-command, and the rebuild and reboot commands when used).
        export PATH=${lib.makeBinPath (agentPath ++ [ pkgs.systemd ])}:$PATH
        if ! ${agent} config check ${configFile}; then
          echo "atticd-agent: services.atticd-agent.settings, as written to ${configFile}:" >&2
          cat -n ${configFile} >&2
          exit 1
        fi
        cp ${configFile} "$out"
      '';

  # Exit codes that do not fail a unit: 143, a run that `systemctl stop` (SIGTERM) ended at a
  # safe point, which the next run finishes; and, unless failOnTransient, the codes that mean
  # "nothing was changed, try again later": 4 (another run holds the lock, or another
  # activation ran too long) and 6 (the git remote or a registry was unreachable).
  transientExitStatus = {
    SuccessExitStatus = if cfg.failOnTransient then "143" else "4 6 143";
  };

  # What nix, nixos-rebuild and the git transports of nix need, for every unit that runs the
  # agent (pull, confirm, recheck): ssh for `git+ssh` flake inputs, which nix fetches with git,
  # which runs ssh (as nixos-upgrade.service has it).
  agentPath = [
    config.nix.package
    pkgs.git
    config.programs.ssh.package
    nixos-rebuild
  ];

  # The environment of every unit that runs the agent, as nixos-upgrade.service has it. The
  # agent runs nix as root, and root's nix uses the store directly, not nix-daemon: what
  # NixOS gives the daemon must be here too, or the units fetch and substitute differently
  # from the daemon. Every health check (`command`) runs with this environment as well, the
  # same in each unit.
  agentEnvironment =
    config.nix.envVars
    # http_proxy, https_proxy, ftp_proxy, rsync_proxy, all_proxy, no_proxy (and their upper
    # case forms) from networking.proxy: for the git remote (https), the registries, and nix's
    # substituters and flake inputs.
    // config.networking.proxy.envVars
    // {
      # systemd gives a unit without User= no HOME; nix and git read root's configuration,
      # caches and ssh keys from it (~/.config/nix, ~/.cache/nix, ~/.gitconfig, ~/.ssh).
      HOME = "/root";
      # The agent builds flakes (`nixos-rebuild --flake`, `nix eval`), and extraNixConfig
      # adds to it; the machine's nix.conf is not changed.
      NIX_CONFIG = lib.concatStringsSep "\n" (
        [ "extra-experimental-features = nix-command flakes" ]
        ++ lib.optional (cfg.extraNixConfig != "") (lib.removeSuffix "\n" cfg.extraNixConfig)
      );
    };

  # A line of extraNixConfig that sets access tokens in the clear: the units' environment is
  # in the world-readable store.
  setsAccessTokens =
    lib.any (l: builtins.match "[[:space:]]*(extra-)?access-tokens[[:space:]]*=.*" l != null) (
      lib.splitString "\n" cfg.extraNixConfig
    );

  # Units that can activate a generation (pull: switch or boot; confirm: a rollback) share
  # these settings.
  deployUnit = {
    path = agentPath;
    environment = agentEnvironment;

    # A switch must never restart or stop the unit that runs it: the agent would be killed
    # in the middle of its own deployment, before its health checks decide. Neither when the
    # new generation changes this unit (restartIfChanged) nor when it removes it
    # (X-StopOnRemoval: the run that removes the agent still finishes and records itself).
    restartIfChanged = false;
    unitConfig.X-StopOnRemoval = false;

    serviceConfig = {
      Type = "oneshot";

      # As nixos-upgrade.service: when the unit stops, systemd signals only the agent, not
      # every process of the unit at once. The agent needs no help from systemd to clean up:
      # every command it starts (nix, nixos-rebuild, switch-to-configuration, checks) runs
      # in a process group under a guard that kills the group when the agent dies, even by
      # SIGKILL (agent/process.h), and each phase is recorded before it starts, so the next
      # run finishes an interrupted one. What KillMode=process adds is that systemd never
      # kills anything in this unit behind the agent's back — not in the middle of a
      # switch, and not what the activation left running when the run ends.
      KillMode = "process";

      # STATUS= per phase ("Building revision ...", "Checking the health of ...") for
      # `systemctl status`. The agent is the main process.
      NotifyAccess = "main";

      # No TimeoutStartSec: a oneshot unit has none by default, and a build may take long.
      # The agent bounds what can hang (fetch and health timeouts).

      # Hardening. This unit runs nixos-rebuild switch as root: nix writes /nix, the boot
      # loader writes /boot, activation writes /etc, /var and /run, creates users and home
      # directories, sets the hostname and sysctls, installs setuid wrappers, and (with
      # nixos-rebuild before nixos-rebuild-ng) runs in this unit's mount namespace, so a mount
      # it makes must reach the rest of the system. What is therefore NOT set, and why:
      # - ProtectSystem, ProtectHome, ReadOnlyPaths: activation writes /etc, /boot, /nix, homes.
      # - PrivateTmp, PrivateDevices, PrivateMounts, ProtectKernel*, ProtectControlGroups,
      #   ProtectProc: each gives the unit its own mount namespace, whose mounts do not
      #   propagate back to the host; activation's mounts (/run/keys, /run/wrappers, ...)
      #   and the boot loader's view of /dev would be wrong or lost.
      # - ProtectHostname: activation sets the hostname. ProtectClock: it also closes the
      #   device list, and the boot loader writes block devices.
      # - RestrictSUIDSGID, SystemCallFilter, LockPersonality, MemoryDenyWriteExecute,
      #   RestrictNamespaces: seccomp filters are inherited by every child; the setuid
      #   wrappers, nix's build sandbox (namespaces, 32-bit personality) and arbitrary
      #   activation scripts would fail.
      # - NoNewPrivileges, CapabilityBoundingSet, User=: activation needs all of root.
      # - UMask: activation scripts inherit it; a stricter one leaves files unreadable.
      # The state directory, the one place the agent itself owns, is made 0700 (tmpfiles).
    };
  };
in
{
  options.services.atticd-agent = {
    enable = mkEnableOption "atticd-agent, the update agent that deploys this machine from its client repository or from offline bundles";

    package = mkOption {
      type = types.package;
      default = pkgs.atticd-agent or (pkgs.callPackage ./nix/package.nix { });
      defaultText = literalExpression "pkgs.atticd-agent (the flake's overlay), else built from this source tree";
      description = "The atticd-agent package.";
    };

    settings = mkOption {
      type = types.submodule {
        freeformType = format.type;
        options = settingsOptions;
      };
      default = { };
      example = literalExpression ''
        {
          repository = {
            url = "https://git.example.org/client.git";
            ref = "production";
            allowed-signers = ./keys/allowed_signers;
          };
          images = {
            keys = [ ./keys/cosign.pub ];
            keyless = {
              trusted-root = ./keys/trusted_root.json;
              identities = [
                {
                  issuer = "https://gitlab.example.org";
                  subject = "https://gitlab.example.org/platform/ci//.gitlab-ci.yml@refs/heads/main";
                }
              ];
            };
          };
          health.checks = [ { name = "web"; http.url = "http://127.0.0.1:8080/health"; } ];
        }
      '';
      description = ''
        The agent's configuration, written to /etc/atticd-agent/config.yaml. Every key of
        docs/configuration.md may be set (RFC 42 freeform); the main ones are typed here.
        Options left at null are not written and the agent's default applies. The file is
        checked with `atticd-agent config check` when the system is built.
      '';
    };

    checkConfig = mkOption {
      type = types.bool;
      default = true;
      description = ''
        Check the configuration file with `atticd-agent config check` when the system is
        built. Turn off only when the build machine cannot run the package (cross builds).
      '';
    };

    schedule = mkOption {
      type = types.str;
      default = "hourly";
      example = "*:0/15";
      description = "When `pull` runs (systemd.time(7) calendar event, the timer's OnCalendar).";
    };

    randomizedDelaySec = mkOption {
      type = types.str;
      default = "5min";
      description = "Random delay added to each `pull` (RandomizedDelaySec), so that a fleet does not fetch at once.";
    };

    fixedRandomDelay = mkOption {
      type = types.bool;
      default = false;
      example = true;
      description = ''
        Make the random delays of both timers (pull and re-check) the same on every run
        (FixedRandomDelay): systemd derives each from the machine id and the timer's name, so
        every machine keeps its own stable offset within `randomizedDelaySec` and
        `recheck.randomizedDelaySec`, and the fleet stays spread, instead of a new draw each
        time.
      '';
    };

    persistent = mkOption {
      type = types.bool;
      default = true;
      example = false;
      description = ''
        Whether a `pull` that was due while the machine was off runs once soon after it starts
        (the pull timer's Persistent; the random delay still applies). Off: only at the next
        `schedule` time.
      '';
    };

    pull.enable = mkOption {
      type = types.bool;
      default = cfg.settings.repository.url != null;
      defaultText = literalExpression "config.services.atticd-agent.settings.repository.url != null";
      description = "Run `pull` on `schedule`. Off on a machine updated only from bundles.";
    };

    confirm.enable = mkOption {
      type = types.bool;
      default = true;
      description = ''
        Run `confirm` once after every boot: it confirms (or rolls back) a deployment made with
        `system.action = "boot"`, and finishes a run that a crash or power loss interrupted.
        With nothing pending it does nothing.
      '';
    };

    recheck = {
      enable = mkOption {
        type = types.bool;
        default = true;
        description = ''
          Re-check the running system on a schedule: `check` (health checks and drift) and
          `verify-images` (the Cosign signatures of the deployed revision's images, which may
          have been revoked or re-tagged since). Changes nothing; fails the unit when
          something is wrong. It runs its checks as pull does (same environment, no
          sandboxing), so that a check gives the same answer in both.
        '';
      };
      schedule = mkOption {
        type = types.str;
        default = "hourly";
        description = "When the re-check runs (OnCalendar).";
      };
      randomizedDelaySec = mkOption {
        type = types.str;
        default = "5min";
        example = "30min";
        description = "Random delay added to each re-check (RandomizedDelaySec), so that a fleet does not ask its registries at once.";
      };
    };

    bootCounting.enable = mkOption {
      type = types.bool;
      default = loaderBootCounting;
      defaultText = literalExpression "config.boot.loader.systemd-boot.bootCounting.enable";
      description = ''
        Tie systemd-boot's boot counting to the health checks: atticd-agent-confirm.service is
        ordered before `boot-complete.target`, which requires it, so that systemd-bless-boot
        marks a boot entry good only after `confirm` passed; a generation that fails its checks
        (or hangs before them) uses up its tries and systemd-boot falls back by itself. Needs
        systemd-boot with `boot.loader.systemd-boot.bootCounting.enable` and `confirm.enable`.
      '';
    };

    extraNixConfig = mkOption {
      type = types.lines;
      default = "";
      example = literalExpression ''
        '''
          extra-substituters = https://cache.example.org
          extra-trusted-public-keys = cache.example.org-1:AAAA…=
          !include ''${config.sops.secrets.nix-access-tokens.path}
        '''
      '';
      description = ''
        nix.conf lines for the nix that the agent runs (evaluation, build, `nix flake` fetches,
        the profile), added to the units' NIX_CONFIG after
        `extra-experimental-features = nix-command flakes`. The agent takes no nix flags on
        its command line; this is what `system.autoUpgrade.flags = [ "--option" NAME VALUE ]`
        is to nixos-rebuild: `NAME = VALUE`, one per line (prefer `extra-NAME` for lists, to
        add to nix.conf's values rather than replace them). The machine's nix.conf is not
        changed. The units' environment is in the world-readable store: give credentials
        (`access-tokens`) with `!include FILE`, FILE outside the store (a missing FILE is
        skipped); `access-tokens` set here in the clear fails an assertion.
      '';
    };

    failOnTransient = mkOption {
      type = types.bool;
      default = false;
      description = ''
        Whether exit codes 6 (the git remote or a registry was unreachable) and 4 (another
        run held the lock) mark the units failed. By default they do not: nothing was
        changed and the next tick tries again, and a flaky uplink would otherwise put the
        machine into `systemctl --failed` every hour. They remain visible in the journal (at
        priority err), in `atticd-agent status` and in the metrics
        (atticd_agent_last_run_success).
      '';
    };
  };

  config = mkIf cfg.enable {
    assertions =
      [
        {
          assertion = cfg.settings.host != "";
          message = "services.atticd-agent.settings.host is empty: set it, or networking.hostName, to the nixosConfigurations name of this machine.";
        }
        {
          assertion = cfg.pull.enable -> cfg.settings.repository.url != null;
          message = "services.atticd-agent.pull.enable needs services.atticd-agent.settings.repository.url.";
        }
      ]
      ++ [
        {
          assertion = cfg.bootCounting.enable -> (bootLoader == "systemd-boot" && loaderBootCounting);
          message = "services.atticd-agent.bootCounting.enable needs systemd-boot with boot.loader.systemd-boot.bootCounting.enable: only systemd-boot counts boots.";
        }
        {
          assertion = cfg.bootCounting.enable -> cfg.confirm.enable;
          message = "services.atticd-agent.bootCounting.enable needs confirm.enable: confirm is what boot-complete.target waits for.";
        }
        {
          assertion =
            (cfg.settings.system.trial-boot == true)
            -> !(builtins.elem cfg.settings.system.boot-loader [
              "extlinux"
              "other"
            ]);
          message = "services.atticd-agent.settings.system.trial-boot is true, but the boot loader (${toString cfg.settings.system.boot-loader}) has no one-shot entry: a generation cannot be booted once.";
        }
      ]
      ++ [
        {
          assertion = !setsAccessTokens;
          message = "services.atticd-agent.extraNixConfig sets access-tokens: the units' environment is in the nix store, which every user of the machine can read. Put the line in a file outside the store (e.g. config.sops.secrets.<name>.path) and write `!include FILE` instead.";
        }
      ]
      ++ keylessAssertions
      ++ lib.mapAttrsToList (key: path: {
        assertion = path == null || !isInStore path;
        message = "services.atticd-agent.settings.${key} is '${toString path}', in the nix store, which every user of the machine can read. Give the path of a file outside the store (e.g. below /run/secrets or /etc/atticd-agent), deployed by a secrets manager.";
      }) secrets;

    warnings =
      lib.optional (cfg.settings.system.action == "boot" && !cfg.confirm.enable) (
        "services.atticd-agent: system.action is \"boot\" but confirm.enable is false: a deployment "
        + "is only confirmed (or rolled back) by the next `pull` after the reboot."
      )
      ++ lib.optional
        (
          cfg.settings.system.action == "boot"
          && cfg.settings.system.trial-boot == null
          && cfg.settings.system.boot-loader == "extlinux"
        )
        (
          "services.atticd-agent: system.action is \"boot\" and the boot loader is extlinux, which has no "
          + "one-shot entry: a new generation becomes the boot default before it has booted once."
        );

    environment.systemPackages = [ cfg.package ];

    environment.etc."atticd-agent/config.yaml".source = if cfg.checkConfig then checkedConfigFile else configFile;

    # Only root reads the agent's state: the mirror may hold a private repository.
    systemd.tmpfiles.rules = [ "d ${cfg.settings.state-dir} 0700 root root -" ];

    systemd.services.atticd-agent-pull = mkIf cfg.pull.enable (
      lib.recursiveUpdate deployUnit {
        description = "atticd-agent: deploy the newest revision of the client repository";
        documentation = [ "man:atticd-agent(8)" ];
        # The network is needed to fetch. A Persistent timer may elapse during boot: the
        # deployment's health checks must judge a fully started system, and a
        # boot-activated deployment is confirmed first (ordering only: no extra runs).
        after = [
          "network-online.target"
          "multi-user.target"
          "atticd-agent-confirm.service"
        ];
        wants = [ "network-online.target" ];
        serviceConfig = {
          ExecStart = "${agent} --config ${configPath} pull";
        } // transientExitStatus;
      }
    );

    systemd.timers.atticd-agent-pull = mkIf cfg.pull.enable {
      description = "atticd-agent: pull on a schedule";
      wantedBy = [ "timers.target" ];
      timerConfig = {
        OnCalendar = cfg.schedule;
        RandomizedDelaySec = cfg.randomizedDelaySec;
        FixedRandomDelay = cfg.fixedRandomDelay;
        Persistent = cfg.persistent;
      };
    };

    systemd.services.atticd-agent-confirm = mkIf cfg.confirm.enable (
      lib.recursiveUpdate deployUnit {
        description = "atticd-agent: confirm or roll back a boot-activated deployment";
        documentation = [ "man:atticd-agent(8)" ];
        # After the boot is complete: the health checks test the services that
        # multi-user.target started. Started by it, ordered after it (no cycle).
        wantedBy = [ "multi-user.target" ];
        after = [
          "multi-user.target"
          "network-online.target"
        ];
        wants = [ "network-online.target" ];
        serviceConfig = {
          ExecStart = "${agent} --config ${configPath} confirm";
          # Once per boot. A switch starts multi-user.target again, and with it every unit the
          # target wants that is not active: without this, every switch the agent makes would
          # start confirm in its middle (to find the lock taken, exit 4).
          RemainAfterExit = true;
        } // transientExitStatus;
      }
      // lib.optionalAttrs cfg.bootCounting.enable {
        # systemd-bless-boot marks the boot entry good once boot-complete.target is reached:
        # only after the health checks of confirm passed. A confirm that fails (an unhealthy
        # generation, rolled back) fails the target, and the entry counts down its tries.
        before = [ "boot-complete.target" ];
        requiredBy = [ "boot-complete.target" ];
      }
    );

    systemd.targets.boot-complete = mkIf (cfg.confirm.enable && cfg.bootCounting.enable) {
      requires = [ "atticd-agent-confirm.service" ];
      after = [ "atticd-agent-confirm.service" ];
    };

    systemd.services.atticd-agent-recheck = mkIf cfg.recheck.enable {
      description = "atticd-agent: re-check health and image signatures of the running system";
      documentation = [ "man:atticd-agent(8)" ];
      # Never at the same time as a deployment: it would see a system mid-switch.
      after = [
        "network-online.target"
        "multi-user.target"
        "atticd-agent-pull.service"
        "atticd-agent-confirm.service"
      ];
      wants = [ "network-online.target" ];
      path = agentPath;
      environment = agentEnvironment;
      restartIfChanged = false;
      serviceConfig = {
        Type = "oneshot";
        # Both run; the unit fails with the first failure. verify-images needs a deployed
        # revision (before the first deployment there is nothing to verify).
        ExecStart = pkgs.writeShellScript "atticd-agent-recheck" ''
          agent() { ${agent} --config ${configPath} "$@"; }
          rc=0
          agent check || rc=$?
          if [ -n "$(agent --json status | ${pkgs.jq}/bin/jq -r '.revision // empty')" ]; then
            agent verify-images || { r=$?; [ "$rc" -ne 0 ] || rc=$r; }
          else
            echo "Nothing is deployed yet: no images to verify."
          fi
          exit "$rc"
        '';

        # No hardening, as in pull and confirm (deployUnit says why they can have none). This
        # unit activates nothing, but its health checks must give the answer they give after a
        # deployment, where they decide about a rollback: a check that passes here and fails
        # there (or the reverse) is worse than no re-check. Every sandboxing option changes
        # what a `command` check can do: NoNewPrivileges and RestrictSUIDSGID break the setuid
        # and capability wrappers (/run/wrappers/bin/ping, sudo); PrivateTmp hides a socket a
        # service keeps in /tmp; ProtectSystem makes /etc, /usr and /boot read-only;
        # ProtectKernelTunables /proc/sys and /sys; ProtectKernelModules, RestrictRealtime and
        # LockPersonality install seccomp filters that every check inherits. And it would
        # protect little: the same agent, with the same configuration, parses the same
        # registry answers unhardened in pull.
      } // transientExitStatus;
    };

    systemd.timers.atticd-agent-recheck = mkIf cfg.recheck.enable {
      description = "atticd-agent: re-check on a schedule";
      wantedBy = [ "timers.target" ];
      timerConfig = {
        OnCalendar = cfg.recheck.schedule;
        RandomizedDelaySec = cfg.recheck.randomizedDelaySec;
        FixedRandomDelay = cfg.fixedRandomDelay;
        # A re-check missed while the machine was off runs soon after it starts.
        Persistent = true;
      };
    };
  };
}
