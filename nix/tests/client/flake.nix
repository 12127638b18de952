# SPDX-License-Identifier: MIT
# The client's flake in the VM test. nix/tests/vm.nix replaces @nixpkgs@, @atticd-agent@
# and @system@ with store paths that are in the VM's store: no network is needed.
{
  inputs.nixpkgs.url = "path:@nixpkgs@";
  inputs.atticd-agent = {
    url = "path:@atticd-agent@";
    inputs.nixpkgs.follows = "nixpkgs";
  };

  outputs =
    {
      self,
      nixpkgs,
      atticd-agent,
    }:
    {
      nixosConfigurations.machine = nixpkgs.lib.nixosSystem {
        system = "@system@";
        modules = [
          atticd-agent.nixosModules.default
          ./configuration.nix
          { system.configurationRevision = self.rev or "dirty"; }
        ];
      };
    };
}
