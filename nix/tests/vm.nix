# SPDX-License-Identifier: MIT
# NixOS VM test (flake check `vm`): the whole update cycle on a real NixOS machine.
#
# The VM serves its client's repository itself (git daemon on 127.0.0.1) and runs the agent
# from module.nix. The test commits a healthy revision of the client's flake (the VM's own
# configuration plus a small application answering /health), starts atticd-agent-pull and
# checks that it was built, switched to and recorded; then commits a broken revision (the
# application answers 500), and checks that the agent rolled back to the healthy generation,
# recorded the rollback, failed the unit, and does not try the broken revision again.
#
# The VM has no network: the client's flake takes nixpkgs and atticd-agent as `path:` inputs
# that are in its store, and system.includeBuildDependencies puts everything needed to build
# the client's systems there too (as nixpkgs' nixos-rebuild-specialisations test does).
#
# Not run where this was written: that machine has no KVM and no network to fetch nixpkgs.
# Run it with `nix build .#checks.x86_64-linux.vm -L`.
{
  pkgs,
  agentModule,
  agentSource,
}:

let
  # Read as paths below this file, not as "${client}/…", which reads a copy in the store:
  # `nix flake check --no-build` evaluates in read-only mode, makes no such copy, and fails
  # with "path '…-client' is not valid" on a store that lacks it (NixOS/nix#7464).
  client = ./client;

  clientFlake = pkgs.writeText "flake.nix" (
    builtins.replaceStrings
      [
        "@nixpkgs@"
        "@atticd-agent@"
        "@system@"
      ]
      [
        "${pkgs.path}"
        "${agentSource}"
        pkgs.stdenv.hostPlatform.system
      ]
      (builtins.readFile (client + "/flake.nix"))
  );
in
pkgs.testers.runNixOSTest {
  name = "atticd-agent";

  nodes.machine =
    { pkgs, ... }:
    {
      imports = [
        agentModule
        (client + "/agent.nix")
      ];

      # Building the client's systems offline: every build input of this system, and the
      # sources of the client's flake inputs.
      system.includeBuildDependencies = true;
      system.extraDependencies = [
        pkgs.path
        agentSource
        pkgs.grub2 # the client's configuration installs a boot loader
        pkgs.python3 # the client's application
      ];

      environment.systemPackages = [
        pkgs.git
        pkgs.curl
      ];

      virtualisation = {
        writableStore = true; # the agent builds and imports
        cores = 2;
        memorySize = 4096;
        diskSize = 8192;
      };
    };

  testScript = ''
    import json

    GIT = "git -C /tmp/client -c user.name=Client -c user.email=client@example.org "


    def status():
        return json.loads(machine.succeed("atticd-agent --json status"))


    def release(name, code):
        """Commits a release of the client's configuration and pushes it; its revision."""
        machine.succeed(
            "printf '{ name = \"%s\"; status = %d; }\\n' " + name + " " + str(code)
            + " > /tmp/client/release.nix"
        )
        machine.succeed(GIT + "add -A")
        machine.succeed(GIT + "commit -q -m " + name)
        machine.succeed(GIT + "push -q /srv/git/client.git HEAD:main")
        return machine.succeed(GIT + "rev-parse HEAD").strip()


    def current_system():
        return machine.succeed("readlink -f /run/current-system").strip()


    machine.start()
    machine.wait_for_unit("multi-user.target")
    machine.wait_for_unit("git-daemon.service")

    with subtest("The client's repository"):
        machine.succeed("mkdir -p /srv/git /tmp/client")
        machine.succeed("git init -q --bare -b main /srv/git/client.git")
        machine.succeed("nixos-generate-config --dir /tmp/client")
        machine.succeed("rm /tmp/client/configuration.nix")
        machine.copy_from_host("${clientFlake}", "/tmp/client/flake.nix")
        for f in ["configuration.nix", "agent.nix", "demo-app.py"]:
            machine.copy_from_host("${client}/" + f, "/tmp/client/" + f)
        machine.succeed("printf '{ name = \"good\"; status = 200; }\\n' > /tmp/client/release.nix")
        machine.succeed(GIT + "init -q -b main")
        machine.succeed(GIT + "add -A")
        machine.succeed("cd /tmp/client && nix flake lock")
        good = release("good", 200)

    with subtest("A healthy revision is built, switched to and recorded"):
        machine.succeed("systemctl start atticd-agent-pull.service", timeout=3600)
        s = status()
        assert s["revision"] == good, s
        assert s["history"][-1]["result"] == "success", s["history"]
        assert s["history"][-1]["source"] == "pull", s["history"]
        generation = s["generation"]
        assert current_system() == generation, (current_system(), generation)
        assert machine.succeed("cat /etc/demo/release").strip() == "good"
        machine.succeed("curl -sf http://127.0.0.1:8080/health")
        machine.succeed("atticd-agent check")

    with subtest("Nothing new: nothing happens"):
        machine.succeed("systemctl start atticd-agent-pull.service")
        assert status()["last-run"]["result"] == "no-change", status()["last-run"]

    with subtest("A broken revision is rolled back"):
        broken = release("broken", 500)
        machine.fail("systemctl start atticd-agent-pull.service", timeout=3600)
        machine.succeed("systemctl is-failed atticd-agent-pull.service")
        s = status()
        last = s["history"][-1]
        assert last["revision"] == broken and last["result"] == "rolled-back", last
        assert s["revision"] == good and s["generation"] == generation, s
        assert s["failed-revision"] == broken, s
        assert current_system() == generation, (current_system(), generation)
        assert machine.succeed("cat /etc/demo/release").strip() == "good"
        machine.succeed("curl -sf http://127.0.0.1:8080/health")
        # The rolled-back event, with its MESSAGE_ID, in the journal.
        machine.succeed(
            "journalctl -u atticd-agent-pull.service MESSAGE_ID=c4a7aad402d048928ca2f3e9e43e21ee"
            + " REVISION=" + broken + " --output=cat | grep ."
        )

    with subtest("The broken revision is not tried again"):
        machine.succeed("systemctl start atticd-agent-pull.service")
        assert status()["last-run"]["result"] == "known-bad", status()["last-run"]
        assert current_system() == generation

    with subtest("The re-check passes on the healthy generation"):
        machine.succeed("systemctl start atticd-agent-recheck.service")
  '';
}
