# SPDX-License-Identifier: MIT
# A stand-in for the nixpkgs package set, with just what module.nix uses. Its derivations are
# plain `derivation`s with /bin/sh as the builder, so that tests/nix/check-nix.py can build
# them in a private store on a machine with nix but without nixpkgs:
#   - formats.yaml writes JSON, which is YAML (the agent reads it with libyaml); the JSON text
#     stays visible as the derivation's `value` attribute;
#   - runCommand and writeShellScript run their script with /bin/sh;
#   - atticd-agent runs the binary of the build tree (agentBin), so that the module's
#     build-time `config check` is the real one.
{ lib, agentBin ? "" }:

let
  mkDrv =
    name: script: env:
    derivation (
      {
        inherit name;
        system = builtins.currentSystem;
        builder = "/bin/sh";
        args = [
          "-c"
          script
        ];
        PATH = "/usr/bin:/bin";
      }
      // env
    );

  # A package that only has to exist: its store path appears in units, it is never built.
  stub = name: mkDrv "${name}-stub" "echo ${name} is a stub >&2; exit 1" { };

  # A package of programs that must exist (the build-time `config check` looks for them on the
  # units' PATH) but are never run: each fails.
  tool =
    name: programs:
    mkDrv "${name}-stub" ''
      mkdir -p "$out/bin"
      for p in ${lib.concatStringsSep " " programs}; do
        printf '#!/bin/sh\necho "%s is a stub" >&2\nexit 1\n' "$p" > "$out/bin/$p"
        chmod +x "$out/bin/$p"
      done
    '' { };
in
rec {
  formats.yaml =
    { }:
    {
      # The type of nixpkgs' formats.yaml_1_1.
      type =
        let
          valueType =
            with lib.types;
            nullOr (oneOf [
              bool
              int
              float
              str
              path
              (attrsOf valueType)
              (listOf valueType)
            ])
            // {
              description = "YAML 1.1 value";
            };
        in
        valueType;

      generate =
        name: value:
        mkDrv name ''printf '%s\n' "$value" > "$out"'' { value = builtins.toJSON value; };
    };

  runCommand =
    name: env: script:
    mkDrv name script (removeAttrs env [ "passthru" ]) // (env.passthru or { });

  writeShellScript =
    name: text:
    mkDrv name ''printf '%s' "$text" > "$out" && chmod +x "$out"'' { text = "#!/bin/sh\n" + text; };

  atticd-agent =
    if agentBin == "" then
      stub "atticd-agent"
    else
      mkDrv "atticd-agent-stub" ''
        mkdir -p "$out/bin"
        printf '#!/bin/sh\nexec %s "$@"\n' "$agentBin" > "$out/bin/atticd-agent"
        chmod +x "$out/bin/atticd-agent"
      '' { inherit agentBin; };

  nix = tool "nix" [ "nix" ];
  git = tool "git" [ "git" ];
  openssh = tool "openssh" [ "ssh" ];
  # Another ssh, for a case that sets programs.ssh.package.
  openssh_hpn = tool "openssh-hpn" [ "ssh" ];
  jq = stub "jq";
  nixos-rebuild = tool "nixos-rebuild" [ "nixos-rebuild" ];
  systemd = tool "systemd" [
    "systemctl"
    "systemd-run"
  ];
}
