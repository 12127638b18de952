# SPDX-License-Identifier: MIT
# The stand-in nixpkgs (default.nix) as a flake, for
#   nix flake check --no-build --override-input nixpkgs path:COPY
# where COPY is this directory with the nixpkgs library as ./lib (tests/nix/check-nix.py makes
# it). flake.nix uses nixpkgs.lib and `import nixpkgs { system; overlays; }`, which reads
# default.nix.
{
  description = "A stand-in for nixpkgs (tests/nix): the real library, packages that are never built";

  outputs =
    { self }:
    {
      lib = import ./lib;
    };
}
