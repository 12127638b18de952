# SPDX-License-Identifier: MIT
# The client's NixOS configuration of the test VM, as committed to its repository: the VM's
# hardware, the agent, and a small application whose health depends on the release.
{
  pkgs,
  modulesPath,
  ...
}:

let
  # { name = "good"; status = 200; } — what the test changes between revisions.
  release = import ./release.nix;
in
{
  imports = [
    ./hardware-configuration.nix
    ./agent.nix
    # Keeps the test driver's connection to the VM across switches.
    (modulesPath + "/testing/test-instrumentation.nix")
  ];

  boot.loader.grub = {
    enable = true;
    device = "/dev/vda";
    forceInstall = true;
  };
  documentation.enable = false;

  environment.etc."demo/release".text = release.name;

  # Answers GET /health with the release's status: 200 is healthy, 500 is not.
  systemd.services.demo-app = {
    description = "The client's application";
    wantedBy = [ "multi-user.target" ];
    serviceConfig.ExecStart = "${pkgs.python3}/bin/python3 ${./demo-app.py} 8080 ${toString release.status}";
  };
}
