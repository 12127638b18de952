# SPDX-License-Identifier: MIT
# The few NixOS options module.nix sets or reads, declared as NixOS declares them (same names,
# close enough types), so that the module can be evaluated with lib.evalModules and the nixpkgs
# library alone — no nixpkgs package set, no NixOS. Only for tests/nix/check-nix.py.
{ lib, pkgs, ... }:

let
  inherit (lib) mkOption types;

  # systemd.services.<name> and systemd.timers.<name>: the attributes module.nix uses, typed
  # as NixOS types them (lists merge by concatenation, unitConfig/serviceConfig by key).
  unitOptions = {
    description = mkOption {
      type = types.str;
      default = "";
    };
    documentation = mkOption {
      type = types.listOf types.str;
      default = [ ];
    };
    wantedBy = mkOption {
      type = types.listOf types.str;
      default = [ ];
    };
    after = mkOption {
      type = types.listOf types.str;
      default = [ ];
    };
    wants = mkOption {
      type = types.listOf types.str;
      default = [ ];
    };
    before = mkOption {
      type = types.listOf types.str;
      default = [ ];
    };
    requires = mkOption {
      type = types.listOf types.str;
      default = [ ];
    };
    requiredBy = mkOption {
      type = types.listOf types.str;
      default = [ ];
    };
    unitConfig = mkOption {
      type = types.attrsOf types.anything;
      default = { };
    };
  };

  service = types.submodule {
    options = unitOptions // {
      path = mkOption {
        type = types.listOf (types.either types.package types.str);
        default = [ ];
      };
      environment = mkOption {
        type = types.attrsOf types.str;
        default = { };
      };
      restartIfChanged = mkOption {
        type = types.bool;
        default = true;
      };
      serviceConfig = mkOption {
        type = types.attrsOf types.anything;
        default = { };
      };
    };
  };

  timer = types.submodule {
    options = unitOptions // {
      timerConfig = mkOption { type = types.attrsOf types.anything; };
    };
  };

  etcFile = types.submodule {
    options = {
      source = mkOption { type = types.path; };
      mode = mkOption {
        type = types.str;
        default = "symlink";
      };
    };
  };
in
{
  options = {
    assertions = mkOption {
      type = types.listOf types.unspecified;
      default = [ ];
    };
    warnings = mkOption {
      type = types.listOf types.str;
      default = [ ];
    };
    # Set by the VM test's client configuration (nix/tests/client/agent.nix), not read here.
    nix.settings = mkOption {
      type = types.attrsOf types.anything;
      default = { };
    };
    services.gitDaemon = mkOption {
      type = types.attrsOf types.anything;
      default = { };
    };
    programs.git = mkOption {
      type = types.attrsOf types.anything;
      default = { };
    };
    networking.hostName = mkOption {
      type = types.str;
      default = "nixos";
    };
    nix.package = mkOption {
      type = types.package;
      default = pkgs.nix;
    };
    # Internal in NixOS: the environment NixOS gives nix-daemon (nix.envVars) and every unit
    # that talks to the network (networking.proxy.envVars, made from networking.proxy.*).
    nix.envVars = mkOption {
      type = types.attrs;
      default = { };
    };
    networking.proxy.envVars = mkOption {
      type = types.attrs;
      default = { };
    };
    programs.ssh.package = mkOption {
      type = types.package;
      default = pkgs.openssh;
    };
    system.build = mkOption {
      type = types.lazyAttrsOf types.unspecified;
      default = { };
    };
    environment.etc = mkOption {
      type = types.attrsOf etcFile;
      default = { };
    };
    environment.systemPackages = mkOption {
      type = types.listOf types.package;
      default = [ ];
    };
    systemd.services = mkOption {
      type = types.attrsOf service;
      default = { };
    };
    systemd.timers = mkOption {
      type = types.attrsOf timer;
      default = { };
    };
    systemd.targets = mkOption {
      type = types.attrsOf (types.submodule { options = unitOptions; });
      default = { };
    };
    # boot.loader.{systemd-boot,grub,generic-extlinux-compatible}: what module.nix reads
    # (enable, systemd-boot.bootCounting.enable, grub.package), untyped.
    boot.loader = mkOption {
      type = types.attrsOf types.anything;
      default = { };
    };
    systemd.tmpfiles.rules = mkOption {
      type = types.listOf types.str;
      default = [ ];
    };
  };

  config.system.build.nixos-rebuild = pkgs.nixos-rebuild;
}
