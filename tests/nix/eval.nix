# SPDX-License-Identifier: MIT
# Evaluates module.nix with lib.evalModules against the stub NixOS options of stubs/nixos.nix
# and the stub package set of stubs/pkgs.nix, for one of the configurations of cases.nix.
#
#   nix-instantiate --eval --strict --json tests/nix/eval.nix -A summary \
#     --arg nixpkgsLib /path/to/nixpkgs/lib --argstr case basic
#   nix-build tests/nix/eval.nix -A configFile --arg nixpkgsLib ... --argstr case basic \
#     --argstr agentBin /path/to/build/atticd-agent
{
  nixpkgsLib,
  case,
  agentBin ? "",
}:

let
  lib = import nixpkgsLib;
  pkgs = import ./stubs/pkgs.nix { inherit lib agentBin; };
  cases = import ./cases.nix;

  inherit (lib) mapAttrs;

  config =
    (lib.evalModules {
      modules = [
        ./stubs/nixos.nix
        ../../module.nix
        { _module.args.pkgs = pkgs; }
      ] ++ cases.${case};
    }).config;

  show = v: if lib.isDerivation v then toString v else v;

  etcConfig = config.environment.etc."atticd-agent/config.yaml".source or null;
in
{
  # What the module made of the configuration, as JSON for check-nix.py.
  summary = {
    agent = toString pkgs.atticd-agent;
    services = mapAttrs (_: s: {
      inherit (s)
        description
        documentation
        after
        before
        wants
        wantedBy
        requiredBy
        unitConfig
        restartIfChanged
        environment
        ;
      path = map (p: if lib.isDerivation p then p.name else p) s.path;
      serviceConfig = mapAttrs (_: show) s.serviceConfig;
      script = s.serviceConfig.ExecStart.text or null;
    }) config.systemd.services;
    timers = mapAttrs (_: t: { inherit (t) wantedBy timerConfig; }) config.systemd.timers;
    targets = mapAttrs (_: t: { inherit (t) requires after; }) config.systemd.targets;
    etc = mapAttrs (_: e: toString e.source) config.environment.etc;
    # The text of the generated file (JSON, which is YAML) before the build-time check.
    configText = if etcConfig == null then null else (etcConfig.unchecked or etcConfig).value;
    configChecked = etcConfig != null && etcConfig ? unchecked;
    tmpfiles = config.systemd.tmpfiles.rules;
    systemPackages = map (p: p.name) config.environment.systemPackages;
    failedAssertions = map (a: a.message) (lib.filter (a: !a.assertion) config.assertions);
    inherit (config) warnings;
  };

  # The checked configuration file: building it runs `atticd-agent config check`.
  configFile = etcConfig;
}
