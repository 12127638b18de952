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
#   payload_mib      when > 0, the toplevel depends on a store path of that many MiB
#   boot_panic       when true the system "panics at boot": World.power_cut()/reboot() into it
#                    starts nothing (switch-to-configuration switch|test still activate it)
#   build_fail       when true the toplevel's builder fails
#   port             loopback TCP port of the test service
#   python           interpreter that runs the test service (default "python3" from PATH)
#   images           { <container name> = "<image reference>"; ... }
#   eval_cost        size of the computation every evaluation of `config` forces (default 0:
#                    none); 1500000 costs about 1.3 s of CPU and 255 MiB (see ../README.md)
#   services         { <name> = "<version>"; ... }: a package world-<name>-<version> each and
#                    a unit etc/systemd/system/<name>.service running it (what
#                    switch-to-configuration dry-activate compares, and nix store
#                    diff-closures shows)
#   kernel, initrd   "<version>": the toplevel's kernel and initrd links point at
#                    world-linux-<version> and world-initrd-<version> (a change needs a reboot)
#   switch_inhibitors { <name> = "<version>"; ... }: the toplevel's switch-inhibitors file,
#                    {"<name>": "/nix/store/...-world-<name>-<version>"} (system.switch.inhibitors)
#
# The toplevel depends only on world.json and the files next to this one, not on the commit:
# two commits with the same world.json (same marker) build the same store path. eval_cost
# changes neither the toplevel nor system.build.nixos-rebuild (it is forced with seq, its
# result is not used).
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
        bootPanic = if get "boot_panic" false then "1" else "0";
        buildFail = if get "build_fail" false then "1" else "0";
        port = toString (get "port" 8080);
        python = get "python" "python3";

        switchScript = ./switch-to-configuration.sh;
        serviceScript = ./health-service.py;
        bootloaderScript = ./bootloader.py;
        # A dependency that does not change with the revision (the bulk of a real system):
        # its path is written into the toplevel, which makes it part of the closure.
        payload = if payloadMiB > 0 then payload else "";
        # "name=/nix/store/...": one unit each; the inhibitors as the JSON NixOS writes.
        services = builtins.concatStringsSep " " (builtins.attrValues
          (builtins.mapAttrs (name: version: "${name}=${package name version}") (get "services" { })));
        kernel = if params ? kernel then package "linux" params.kernel else "";
        initrd = if params ? initrd then package "initrd" params.initrd else "";
        switchInhibitors = builtins.toJSON
          (builtins.mapAttrs (name: version: "${package name version}") (get "switch_inhibitors" { }));
        hasSwitchInhibitors = if params ? switch_inhibitors then "1" else "0";
      };

      # A package of the test world: a small store path named as nixpkgs names them, so that
      # nix store diff-closures shows "world-<name>: <old> → <new>".
      package = name: version: derivation {
        name = "world-${name}-${version}";
        inherit system;
        builder = "/bin/sh";
        args = [ "-c" "mkdir -p \"$out/bin\" && echo ${name} ${version} >\"$out/bin/${name}\"" ];
        PATH = "/usr/bin:/bin";
      };

      # world.json payload_mib: a store path of that many MiB the toplevel depends on, the
      # same for every revision that gives the same size (bundle deltas, bench/bundle-delta).
      payloadMiB = get "payload_mib" 0;
      payload = derivation {
        name = "world-payload-${toString payloadMiB}mib";
        inherit system;
        builder = "/bin/sh";
        args = [
          "-c"
          "head -c ${toString (payloadMiB * 1048576)} /dev/urandom >\"$out\""
        ];
        PATH = "/usr/bin:/bin";
      };

      # What `system.build.nixos-rebuild` is on NixOS: the target's own nixos-rebuild, which
      # the real tools build and re-execute before they do anything (the stand-in re-executes
      # itself; building this costs an evaluation). The same store path for every revision.
      nixosRebuild = derivation {
        name = "nixos-rebuild-world";
        inherit system;
        builder = "/bin/sh";
        args = [
          "-c"
          ''
            mkdir -p "$out/bin"
            printf '%s\n' '#!/bin/sh' \
              'echo "the test world re-executes its own stand-in, not this" >&2' 'exit 1' \
              >"$out/bin/nixos-rebuild"
            chmod 0555 "$out/bin/nixos-rebuild"
          ''
        ];
        PATH = "/usr/bin:/bin";
      };

      containers = builtins.mapAttrs (name: image: { inherit image; }) (get "images" { });

      # On NixOS most of an evaluation's cost is the module system, which every attribute of
      # `config` shares. Model it: `config` is only there once a list of eval_cost elements
      # has been built and forced, whatever attribute below it is asked for. Nix keeps the
      # forced value for the rest of that process, so the cost is paid once per nix call.
      evalCost = get "eval_cost" 0;
      moduleSystem = builtins.deepSeq (builtins.genList (i: i * i) evalCost) true;
    in
    {
      nixosConfigurations.${host}.config = builtins.seq moduleSystem {
        system.build.toplevel = toplevel;
        system.build.nixos-rebuild = nixosRebuild;
        virtualisation.oci-containers.containers = containers;
      };
    };
}
