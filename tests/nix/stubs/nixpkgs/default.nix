# SPDX-License-Identifier: MIT
# A stand-in for `import nixpkgs { system; overlays; }`, for evaluating flake.nix without
# nixpkgs (tests/nix/flake.nix): the real nixpkgs library ($ATTICD_TEST_NIXPKGS_LIB), the
# overlays applied as nixpkgs applies them, and packages that are plain attribute sets.
# Nothing here is ever built.
{
  system,
  overlays ? [ ],
}:

let
  lib = import (builtins.getEnv "ATTICD_TEST_NIXPKGS_LIB");

  fake = name: {
    type = "derivation";
    inherit name;
    outPath = "/stub/${name}";
  };

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
      mkDerivation =
        attrs:
        attrs
        // {
          type = "derivation";
          name = "${attrs.pname}-${attrs.version}";
          outPath = "/stub/${attrs.pname}";
        };
    };

    mkShell = attrs: attrs // fake "shell";
    writeText = name: text: fake name // { inherit text; };
    testers.runNixOSTest = test: test // fake "vm-test-run-${test.name}";
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
