# SPDX-License-Identifier: MIT
#
# Client flake of the atticd-agent test world: a NixOS configuration stand-in without
# nixpkgs and without inputs.  Everything that varies between test revisions is read from
# ./world.json (written by tests/integration/world.py), so one template serves every case:
#
#   host             nixosConfigurations.<host>               (default "testhost")
#   system           derivation system                       (default: the evaluating system)
#   marker           written to configuration-revision; makes each revision a new store path
#   health_status    HTTP status the test service answers on GET /health
#   activation_exit  exit status of switch-to-configuration switch|test
#   build_fail       when true the toplevel's builder fails
#   port             loopback TCP port of the test service
#   python           interpreter that runs the test service (default "python3" from PATH)
#   images           { <container name> = "<image reference>"; ... }
#
# The toplevel depends only on world.json and the files next to this one, not on the commit:
# two commits with the same world.json (same marker) build the same store path.
{
  description = "atticd-agent test world: a NixOS stand-in without nixpkgs";

  outputs = { self }:
    let
      params = builtins.fromJSON (builtins.readFile ./world.json);
      get = name: default: if params ? ${name} then params.${name} else default;

      host = get "host" "testhost";
      # Flakes evaluate in pure mode, where builtins.currentSystem does not exist.
      system = get "system" (builtins.currentSystem or "x86_64-linux");

      # What `system.build.toplevel` is on NixOS: one store path holding the whole system,
      # with bin/switch-to-configuration to activate it.
      toplevel = derivation {
        name = "nixos-system-${host}-world";
        inherit system;
        builder = "/bin/sh";
        args = [ ./builder.sh ];
        # A builder's PATH is /path-not-set; the builder only needs coreutils.
        PATH = "/usr/bin:/bin";

        marker = toString (get "marker" "unset");
        healthStatus = toString (get "health_status" 200);
        activationExit = toString (get "activation_exit" 0);
        buildFail = if get "build_fail" false then "1" else "0";
        port = toString (get "port" 8080);
        python = get "python" "python3";

        switchScript = ./switch-to-configuration.sh;
        serviceScript = ./health-service.py;
      };

      containers = builtins.mapAttrs (name: image: { inherit image; }) (get "images" { });
    in
    {
      nixosConfigurations.${host}.config = {
        system.build.toplevel = toplevel;
        virtualisation.oci-containers.containers = containers;
      };
    };
}
