# SPDX-License-Identifier: MIT
# shellcheck shell=sh
#
# Builder of the test world's system toplevel (run by /bin/sh inside nix, PATH=/usr/bin:/bin).
# The derivation's attributes arrive as environment variables (see flake.nix).
# shellcheck disable=SC2154  # (they are set by nix, not here)
set -eu

if [ "$buildFail" = 1 ]; then
        echo "world builder: build_fail is set in world.json, failing this build on purpose" >&2
        exit 1
fi

mkdir -p "$out/bin" "$out/libexec" "$out/world"

# The files NixOS has at the top of a system closure.
printf '%s\n' "$marker" >"$out/configuration-revision"
printf '%s\n' "24.05.world (Atticd test world)" >"$out/nixos-version"

# Activation: the script plus the values it reads at run time.
cp "$switchScript" "$out/bin/switch-to-configuration"
chmod 0555 "$out/bin/switch-to-configuration"
cp "$serviceScript" "$out/libexec/health-service.py"
# The boot loader installer that switch-to-configuration boot|switch runs.
cp "$bootloaderScript" "$out/libexec/bootloader.py"
printf '%s\n' "$healthStatus" >"$out/world/health-status"
printf '%s\n' "$activationExit" >"$out/world/activation-exit"
printf '%s\n' "$port" >"$out/world/port"
printf '%s\n' "$python" >"$out/world/python"
printf '%s\n' "$marker" >"$out/world/marker"
# Read by the world's boot (World.power_cut, World.reboot), not by switch-to-configuration.
printf '%s\n' "$bootPanic" >"$out/world/boot-panic"
# The payload (world.json payload_mib): its path makes it a reference of the toplevel.
printf '%s\n' "${payload:-}" >"$out/world/payload"

# world.json services: a unit per service, running its package (etc/systemd/system as NixOS).
mkdir -p "$out/etc/systemd/system"
for s in ${services:-}; do
        name="${s%%=*}"
        printf '[Service]\nExecStart=%s/bin/%s\n' "${s#*=}" "$name" >"$out/etc/systemd/system/$name.service"
done
# world.json kernel, initrd: links as a NixOS toplevel has them.
[ -z "${kernel:-}" ] || ln -s "$kernel" "$out/kernel"
[ -z "${initrd:-}" ] || ln -s "$initrd" "$out/initrd"
# world.json switch_inhibitors: system.switch.inhibitors.
[ "${hasSwitchInhibitors:-0}" = 0 ] || printf '%s' "$switchInhibitors" >"$out/switch-inhibitors"
