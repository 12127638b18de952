# SPDX-License-Identifier: MIT
# Configurations for tests/nix/eval.nix: each is a list of NixOS modules added to module.nix
# and the stubs. check-nix.py says what it expects of each.
let
  # A machine pulled from a repository, with every typed key set and a few freeform ones.
  full = {
    networking.hostName = "web1";
    services.atticd-agent = {
      enable = true;
      settings = {
        repository = {
          url = "https://git.example.org/client.git";
          ref = "production";
          allowed-signers = "/etc/atticd-agent/allowed_signers";
          http-username = "oauth2";
          http-password-file = "/run/secrets/git-token";
          connect-timeout = 10; # freeform: not typed by the module, checked by the agent
        };
        images = {
          keys = [ "/etc/atticd-agent/cosign.pub" ];
          threshold = 1;
          registry-auth-file = "/run/secrets/registry-auth.json";
          require-sbom = true;
          insecure-registries = [ "127.0.0.1:5000" ];
        };
        bundle.keys = [ "/etc/atticd-agent/bundle.pub" ];
        system.keep-generations = 10;
        rollout.bucket = 0;
        schedule.windows = [ "Mon-Fri 02:00-05:00" ];
        health = {
          settle = 2;
          timeout = 60;
          checks = [
            {
              name = "web";
              http = {
                url = "http://127.0.0.1:8080/health";
                status = 200;
              };
            }
            {
              name = "db";
              tcp = "127.0.0.1:5432";
            }
            {
              name = "units";
              systemd-units = [ "nginx.service" ];
            }
            {
              name = "smoke";
              command = [ "/run/current-system/sw/bin/true" ];
            }
          ];
        };
        hooks.on-failure = [
          "/run/current-system/sw/bin/logger"
          "deployment failed"
        ];
        metrics.textfile = "/var/lib/prometheus-node-exporter/atticd-agent.prom";
      };
    };
  };

  enabled = {
    networking.hostName = "web1";
    services.atticd-agent.enable = true;
    services.atticd-agent.settings.repository.url = "/srv/git/client.git";
  };

  # images.keyless with these identities (and a pinned trusted root).
  keyless = identities: {
    services.atticd-agent.settings.images.keyless = {
      trusted-root = "/etc/atticd-agent/trusted_root.json";
      inherit identities;
    };
  };
  gitlab = {
    issuer = "https://gitlab.example.org";
    subject = "https://gitlab.example.org/platform/ci//.gitlab-ci.yml@refs/heads/main";
  };
  github = {
    issuer = "https://token.actions.githubusercontent.com";
    subject-regexp = "https://github\\.com/example/[^/]+/\\.github/workflows/release\\.yml@refs/tags/v.*";
  };
in
{
  full = [ full ];

  minimal = [ enabled ];

  # Every schedule option, and the transient exit codes as failures.
  schedules = [
    enabled
    {
      services.atticd-agent = {
        schedule = "*:0/15";
        randomizedDelaySec = "0";
        fixedRandomDelay = true;
        persistent = false;
        recheck.schedule = "daily";
        recheck.randomizedDelaySec = "30min";
        failOnTransient = true;
      };
    }
  ];

  # The units' environment from NixOS (the proxy, nix.envVars), another ssh, and nix settings
  # given in two definitions (types.lines joins them).
  environment = [
    enabled
    (
      { pkgs, ... }:
      {
        networking.proxy.envVars = {
          http_proxy = "http://proxy.example.org:3128";
          https_proxy = "http://proxy.example.org:3128";
          no_proxy = "127.0.0.1,localhost";
        };
        nix.envVars.NIX_SSHOPTS = "-o ConnectTimeout=10";
        programs.ssh.package = pkgs.openssh_hpn;
        services.atticd-agent.extraNixConfig = ''
          extra-substituters = https://cache.example.org
          extra-trusted-public-keys = cache.example.org-1:0dwEKwa0FRUyUfqs7vOe65eiuwjD4jfqQwK2Ka4bAOU=
        '';
      }
    )
    { services.atticd-agent.extraNixConfig = "!include /run/secrets/nix-access-tokens.conf"; }
  ];

  # Boot activation without the confirm unit: a warning, no confirm service.
  boot-no-confirm = [
    enabled
    {
      services.atticd-agent.settings.system = {
        action = "boot";
        reboot-window = "02:00-04:30";
      };
      services.atticd-agent.confirm.enable = false;
    }
  ];

  # systemd-boot with boot counting: confirm gates boot-complete.target.
  boot-counting = [
    enabled
    {
      boot.loader.systemd-boot = {
        enable = true;
        bootCounting.enable = true;
      };
      services.atticd-agent.settings.system.action = "boot";
    }
  ];

  # GRUB: the loader and its grub-reboot are written into the file.
  grub = [
    enabled
    {
      boot.loader.grub = {
        enable = true;
        package = "/nix/store/00000000000000000000000000000000-grub-2.12";
      };
      services.atticd-agent.settings.system.action = "boot";
    }
  ];

  # extlinux has no one-shot entry: a warning by default, an assertion when asked for.
  extlinux = [
    enabled
    {
      boot.loader.generic-extlinux-compatible.enable = true;
      services.atticd-agent.settings.system.action = "boot";
    }
  ];
  extlinux-trial = [
    enabled
    {
      boot.loader.generic-extlinux-compatible.enable = true;
      services.atticd-agent.settings.system = {
        action = "boot";
        trial-boot = true;
      };
    }
  ];
  counting-without-systemd-boot = [
    enabled
    {
      boot.loader.grub.enable = true;
      services.atticd-agent.bootCounting.enable = true;
    }
  ];

  # A machine updated only from bundles: no pull unit.
  bundle-only = [
    {
      networking.hostName = "vault";
      services.atticd-agent.enable = true;
      services.atticd-agent.settings.bundle.keys = [ "/etc/atticd-agent/bundle.pub" ];
    }
  ];

  disabled = [
    {
      services.atticd-agent.settings.repository.url = "/srv/git/client.git";
    }
  ];

  # Keyless image verification: an exact identity and one by regular expression, counted
  # with the threshold.
  keyless = [
    enabled
    (keyless [
      gitlab
      github
    ])
    { services.atticd-agent.settings.images.threshold = 2; }
  ];
  # A trusted root given as a path literal: public data, copied into the store, not refused;
  # the build-time `config check` reads it (Sigstore's public-good root, as in
  # shared/vectors/sigstore-conformance).
  keyless-store-root = [
    enabled
    {
      services.atticd-agent.settings.images.keyless = {
        trusted-root = ./trusted_root.json;
        identities = [ gitlab ];
      };
    }
  ];

  # Refused by the module's types: evaluation fails.
  wrong-type = [
    enabled
    { services.atticd-agent.settings.health.timeout = "x"; }
  ];
  wrong-enum = [
    enabled
    { services.atticd-agent.settings.system.action = "reboot"; }
  ];
  http-check-without-url = [
    enabled
    {
      services.atticd-agent.settings.health.checks = [
        {
          name = "web";
          http.status = 200;
        }
      ];
    }
  ];
  # A path literal would be copied into the world-readable store.
  secret-path-literal = [
    enabled
    { services.atticd-agent.settings.images.registry-auth-file = ./cases.nix; }
  ];

  keyless-without-identities = [
    enabled
    (keyless [ ])
  ];
  keyless-without-trusted-root = [
    enabled
    { services.atticd-agent.settings.images.keyless.identities = [ gitlab ]; }
  ];

  # Refused by assertions.
  secrets-in-store = [
    enabled
    {
      services.atticd-agent.settings.images.registry-auth-file = "/nix/store/00000000000000000000000000000000-auth.json";
      services.atticd-agent.settings.repository.ssh-key = "/nix/store/00000000000000000000000000000000-id_ed25519";
    }
  ];
  no-host = [
    enabled
    ({ lib, ... }: { networking.hostName = lib.mkForce ""; })
  ];
  nix-access-tokens = [
    enabled
    { services.atticd-agent.extraNixConfig = "extra-access-tokens = github.com=ghp_0123456789"; }
  ];
  # Exactly one of subject and subject-regexp, and of issuer and issuer-regexp, per identity.
  keyless-subject-twice = [
    enabled
    (keyless [
      gitlab
      (github // { subject = "https://github.com/example/app/.github/workflows/release.yml@refs/tags/v1"; })
    ])
  ];
  keyless-no-subject = [
    enabled
    (keyless [ { inherit (gitlab) issuer; } ])
  ];
  keyless-issuer-twice-and-none = [
    enabled
    (keyless [
      (gitlab // { issuer-regexp = "https://gitlab\\.example\\.org"; })
      { inherit (gitlab) subject; }
    ])
  ];
  pull-without-url = [
    {
      networking.hostName = "web1";
      services.atticd-agent.enable = true;
      services.atticd-agent.pull.enable = true;
    }
  ];

  # The agent's configuration in the NixOS VM test (nix/tests/vm.nix).
  vm-client = [ ../../nix/tests/client/agent.nix ];

  # Accepted by the module, refused by the agent's build-time check.
  unknown-key = [
    enabled
    { services.atticd-agent.settings.repository.urll = "https://typo.example.org/"; }
  ];
  check-without-kind = [
    enabled
    { services.atticd-agent.settings.health.checks = [ { name = "web"; } ]; }
  ];
}
