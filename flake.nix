# SPDX-License-Identifier: MIT
{
  description = "atticd-agent: deploys NixOS machines from a client's git repository or signed offline bundles, verifies, checks health, rolls back";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.11";

  outputs =
    { self, nixpkgs }:
    let
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      forAllSystems =
        f:
        nixpkgs.lib.genAttrs systems (
          system:
          f (
            import nixpkgs {
              inherit system;
              overlays = [ self.overlays.default ];
            }
          )
        );
    in
    {
      overlays.default = final: prev: {
        atticd-agent = final.callPackage ./nix/package.nix { };
      };

      packages = forAllSystems (pkgs: {
        inherit (pkgs) atticd-agent;
        default = pkgs.atticd-agent;
      });

      # The module builds the package from this tree unless pkgs has atticd-agent (the overlay).
      # A module that imports the file, not the path itself: `nix flake check` before nix 2.13
      # refuses a path there ("module must be a function or an attribute set", NixOS/nix#6866).
      nixosModules.default = {
        imports = [ ./module.nix ];
      };

      checks = forAllSystems (pkgs: {
        # The build runs the unit tests (doCheck).
        package = pkgs.atticd-agent;
        # A NixOS VM: a healthy revision is pulled and deployed, a broken one rolled back.
        vm = import ./nix/tests/vm.nix {
          inherit pkgs;
          agentModule = self.nixosModules.default;
          agentSource = self;
        };
      });

      devShells = forAllSystems (pkgs: {
        default = pkgs.mkShell {
          inputsFrom = [ pkgs.atticd-agent ];
          # Besides the build inputs: what the nix test (tests/nix) and debugging use. The
          # integration tests expect a Debian machine's layout (tools/install-deps).
          packages = with pkgs; [
            gdb
            git
            nix
            openssl
            python3
            nixfmt-rfc-style
          ];
        };
      });

      formatter = forAllSystems (pkgs: pkgs.nixfmt-rfc-style);
    };
}
