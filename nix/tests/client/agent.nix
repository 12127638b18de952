# SPDX-License-Identifier: MIT
# What the test VM's first system and every revision of the client's repository share: the
# agent, configured to pull from the git daemon on the machine itself, and what it needs.
{ lib, ... }:
{
  networking.hostName = "machine";

  nix.settings = {
    experimental-features = [
      "nix-command"
      "flakes"
    ];
    # No network in the VM: everything is built from what is in its store.
    substituters = lib.mkForce [ ];
  };

  # The client's repository, served over git:// (the daemon runs as user git; the bare
  # repository belongs to root, who pushes to it).
  services.gitDaemon = {
    enable = true;
    basePath = "/srv/git";
    exportAll = true;
    listenAddress = "127.0.0.1";
  };
  programs.git = {
    enable = true;
    config.safe.directory = "/srv/git/client.git";
  };

  services.atticd-agent = {
    enable = true;
    settings = {
      repository.url = "git://127.0.0.1/client.git";
      health = {
        settle = 1;
        timeout = 30;
        checks = [
          {
            name = "demo";
            http.url = "http://127.0.0.1:8080/health";
          }
          {
            name = "units";
            systemd-units = [ "demo-app.service" ];
          }
        ];
      };
    };
  };

  # The test starts the units itself; no timer may run a pull in between.
  systemd.timers.atticd-agent-pull.wantedBy = lib.mkForce [ ];
  systemd.timers.atticd-agent-recheck.wantedBy = lib.mkForce [ ];
}
