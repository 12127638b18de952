# SPDX-License-Identifier: MIT
# Evaluates the outputs of the repository's flake.nix with a stand-in nixpkgs
# (stubs/nixpkgs), for check-nix.py:
#   ATTICD_TEST_NIXPKGS_LIB=/path/to/nixpkgs/lib \
#     nix-instantiate --eval --strict --json --read-write-mode tests/nix/flake.nix -A summary
let
  root = ../..;
  flake = import (root + "/flake.nix");
  nixpkgs = {
    outPath = ./stubs/nixpkgs;
    lib = import (builtins.getEnv "ATTICD_TEST_NIXPKGS_LIB");
  };
  self = outputs // {
    outPath = toString root;
  };
  outputs = flake.outputs { inherit self nixpkgs; };
  inherit (nixpkgs) lib;

  systems = [
    "x86_64-linux"
    "aarch64-linux"
  ];
  package = outputs.packages.x86_64-linux.default;
  vm = outputs.checks.x86_64-linux.vm;
  standIn = import nixpkgs { system = "x86_64-linux"; };

  # The module as the flake gives it, evaluated as a client's configuration would import it,
  # against the stub NixOS options of stubs/nixos.nix.
  module = outputs.nixosModules.default;
  moduleConfig =
    (lib.evalModules {
      modules = [
        ./stubs/nixos.nix
        module
        {
          _module.args.pkgs = import ./stubs/pkgs.nix { inherit lib; };
          networking.hostName = "web1";
          services.atticd-agent = {
            enable = true;
            settings.repository.url = "/srv/git/client.git";
          };
        }
      ];
    }).config;
in
{
  summary = {
    inputs = lib.attrNames flake.inputs;
    outputs = lib.attrNames outputs;
    packages = lib.genAttrs systems (s: lib.attrNames outputs.packages.${s});
    checks = lib.genAttrs systems (s: lib.attrNames outputs.checks.${s});
    devShells = lib.genAttrs systems (s: lib.attrNames outputs.devShells.${s});
    formatter = lib.genAttrs systems (s: outputs.formatter.${s}.name);
    overlay = (outputs.overlays.default { } { }) ? atticd-agent;
    nixosModule = {
      isPath = builtins.isPath module;
      imports = map toString (module.imports or [ ]);
      services = lib.attrNames moduleConfig.systemd.services;
    };
    package = {
      inherit (package) pname version doCheck mesonFlags checkPhase;
      # The stand-in's libraries, whose paths the meson flags name.
      curl = toString (lib.getLib standIn.curl);
      libarchive = toString (lib.getLib standIn.libarchive);
      nativeBuildInputs = map (p: p.name) package.nativeBuildInputs;
      buildInputs = map (p: p.name) package.buildInputs;
      # The source the package is built from: top-level entries, those of tests/, and the files
      # below tests/ as "folder/name" (the unit tests and data).
      src = lib.attrNames (builtins.readDir package.src);
      srcTests = lib.attrNames (builtins.readDir (package.src + "/tests"));
      srcTestFiles = lib.concatMap (
        d: map (n: d + "/" + n) (lib.attrNames (builtins.readDir (package.src + "/tests/" + d)))
      ) (lib.attrNames (lib.filterAttrs (_: type: type == "directory") (builtins.readDir (package.src + "/tests"))));
      srcDocs = lib.attrNames (builtins.readDir (package.src + "/docs"));
    };
    vm = {
      inherit (vm) name testScript;
      nodes = lib.attrNames vm.nodes;
    };
  };
}
