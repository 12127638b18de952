# SPDX-License-Identifier: MIT
# A stand-in for `import nixpkgs { system; overlays; }`, for evaluating flake.nix without
# nixpkgs: the real nixpkgs library, the overlays applied as nixpkgs applies them, and
# packages that are real derivations (a .drv can be written, as `nix flake check --no-build`
# does for every package, check, shell and formatter) whose builder only fails. Nothing here
# is ever built.
#
# Two uses (tests/nix/check-nix.py):
#   - tests/nix/flake.nix imports it as it is, with the library at $ATTICD_TEST_NIXPKGS_LIB;
#   - as a flake (flake.nix beside this file), for `nix flake check --override-input nixpkgs`:
#     check-nix.py copies this directory and the library, as ./lib, to a temporary directory,
#     since a flake's pure evaluation reads no environment.
{
  system,
  overlays ? [ ],
}:

let
  lib = import (if builtins.pathExists ./lib then ./lib else builtins.getEnv "ATTICD_TEST_NIXPKGS_LIB");

  # A derivation of this system whose attributes are `attrs` (as far as a derivation can hold
  # them: meta and passthru stay outside it, as in nixpkgs), and that fails when built.
  mkDrv =
    name: attrs:
    attrs
    // derivation (
      removeAttrs attrs [
        "meta"
        "passthru"
      ]
      // {
        inherit name system;
        builder = "/bin/sh";
        args = [
          "-c"
          "echo 'the stand-in nixpkgs of tests/nix builds nothing' >&2; exit 1"
        ];
      }
    );

  fake = name: mkDrv name { };

  base = final: {
    inherit lib;
    path = ./.;

    callPackage =
      f: args:
      let
        fn = if builtins.isFunction f then f else import f;
      in
      fn (builtins.intersectAttrs (builtins.functionArgs fn) final // args);

    stdenv = {
      hostPlatform.system = system;
      mkDerivation = attrs: mkDrv "${attrs.pname}-${attrs.version}" attrs;
    };

    mkShell = attrs: mkDrv "nix-shell" attrs;
    writeText = name: text: mkDrv name { inherit text; };
    # What a test is made of: its name and script, in the derivation. Its nodes are NixOS
    # configurations, which this stand-in cannot evaluate; they stay beside it.
    testers.runNixOSTest =
      test:
      test
      // mkDrv "vm-test-run-${test.name}" {
        inherit (test) testScript;
      };
  }
  // lib.genAttrs [
    "meson"
    "ninja"
    "pkg-config"
    "scdoc"
    "python3"
    "libgit2"
    "curl"
    "systemd"
    "libyaml"
    "openssl"
    "jansson"
    "libarchive"
    "libssh2"
    "cmocka"
    "gdb"
    "git"
    "nix"
    "nixfmt-rfc-style"
  ] fake;
in
lib.fix (lib.extends (lib.composeManyExtensions overlays) base)
