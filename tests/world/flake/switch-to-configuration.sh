#!/bin/bash
# SPDX-License-Identifier: MIT
#
# switch-to-configuration of the atticd-agent test world (installed as
# <toplevel>/bin/switch-to-configuration).  Usage: switch-to-configuration switch|test|boot|dry-activate
#
#   test           activate: stop the test service of the running system, (WORLD_ACTIVATION_SECONDS)
#                  point $WORLD_ROOT/run/current-system at this toplevel, start this system's
#                  test service on 127.0.0.1:<port> (detached), wait until it listens (unless
#                  WORLD_SERVICE_DELAY is set), then exit with this system's activation_exit.
#   boot           install the boot loader (libexec/bootloader.py install, what NixOS runs as
#                  installBootLoader): one entry per generation of the system profile
#                  ($WORLD_PROFILE-N-link), the default that of this toplevel (the newest
#                  generation pointing at it); $WORLD_ROOT/boot/next-system is the toplevel the
#                  next boot would start. Not a generation of the profile: exit 1, nothing changed.
#                  WORLD_BOOT_LOADER (systemd-boot|grub|extlinux) and WORLD_BOOT_COUNTING (tries)
#                  choose the loader (tests/world/README.md, "Boot loader").
#   switch         boot, then test (as on NixOS: the boot loader first; if that fails, exit 1
#                  without activating).
#
# Like the real one (NixOS 24.05+), every action first takes an exclusive lock,
# $WORLD_ROOT/run/nixos/switch-to-configuration.lock (the real one:
# /run/nixos/switch-to-configuration.lock), and never waits for it: when another
# switch-to-configuration holds it, this one appends "LOCKED <action> <toplevel>" to
# $WORLD_ROOT/activation.log and exits 1 ("Could not acquire lock").
#
# Safe to run again (idempotent): for the system that is already current it restarts its
# service and succeeds.
#
# Environment (fractional seconds, default 0):
#   WORLD_ACTIVATION_SECONDS  switch|test: sleep that long between stopping the running service
#                             and starting the new one (nothing serves meanwhile)
#   WORLD_SERVICE_DELAY       the new service listens only that long after its start, and this
#                             script does not wait for it to listen
#
# Run in a clean environment (a transient systemd unit, as the agent and nixos-rebuild-ng run
# it), it finds its world from where it lives (<tmp>/nix/store/... -> <tmp>/root) and its
# settings in $WORLD_ROOT/world.env, which world.py writes. Under systemd (a unit, on a machine
# that systemd runs) the service becomes a unit of its own (world-health-<port>), as a NixOS
# activation starts services through systemd: a process it left in its own unit would be
# killed when that unit ends.
#
# Every run that took the lock appends "<action> <toplevel> <exit>" to $WORLD_ROOT/activation.log
# and, to $WORLD_ROOT/activation-spans.log, "begin <epoch.ns> <pid> <action> <toplevel>" once it
# holds the lock and "end <epoch.ns> <pid> <action> <toplevel> <exit>" when it exits (a killed
# run has no end line).
set -euo pipefail

die() {
        echo "switch-to-configuration: $*" >&2
        exit 1
}

action="${1:-}"
if [ -z "${WORLD_ROOT:-}" ]; then
        # <tmp>/nix/store/<toplevel>/bin/switch-to-configuration -> <tmp>/root
        WORLD_ROOT="$(dirname "$(dirname "$(dirname "$(dirname "$(dirname "$(readlink -f "$0")")")")")")/root"
        [ -d "$WORLD_ROOT" ] || die "WORLD_ROOT is not set, and '$WORLD_ROOT' is no world (the test world must set it)"
        if [ -f "$WORLD_ROOT/world.env" ]; then
                # Exported: the boot loader installer reads them too.
                set -a
                # shellcheck disable=SC1091  # written by world.py
                . "$WORLD_ROOT/world.env"
                set +a
        fi
fi
export WORLD_ROOT
case "$action" in
switch | test | boot | dry-activate) ;;
*) die "usage: switch-to-configuration switch|test|boot|dry-activate (got '$action')" ;;
esac

# A number of seconds, possibly fractional, from environment variable $1 (default 0).
seconds() {
        local v="${!1:-0}"
        [[ "$v" =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "$1 must be a number of seconds, not '$v'"
        echo "$v"
}
activation_seconds="$(seconds WORLD_ACTIVATION_SECONDS)"
service_delay="$(seconds WORLD_SERVICE_DELAY)"

# $0 may be reached through the profile's symlinks; the toplevel is the store path.
self="$(readlink -f "$0")"
toplevel="${self%/bin/switch-to-configuration}"
read_value() { cat "$toplevel/world/$1"; }

run="$WORLD_ROOT/run"
pidfile="$run/health.pid"
logfile="$WORLD_ROOT/log/health.log"
mkdir -p "$run/nixos" "$WORLD_ROOT/log" "$WORLD_ROOT/boot"

# The lock, taken without waiting. Children that may outlive a killed run (the service, the
# long sleep) get the descriptor closed, so that the lock goes with this process.
exec {lock_fd}>>"$run/nixos/switch-to-configuration.lock"
if ! flock -n "$lock_fd"; then
        echo "LOCKED $action $toplevel" >>"$WORLD_ROOT/activation.log"
        die "Could not acquire lock - Resource temporarily unavailable (another switch-to-configuration runs)"
fi
now() { date +%s.%N; }
echo "begin $(now) $$ $action $toplevel" >>"$WORLD_ROOT/activation-spans.log"
# shellcheck disable=SC2317  # run by the EXIT trap
finish() {
        local rc=$?
        echo "$action $toplevel $rc" >>"$WORLD_ROOT/activation.log"
        echo "end $(now) $$ $action $toplevel $rc" >>"$WORLD_ROOT/activation-spans.log"
}
trap finish EXIT

# True while process $1 exists and is not a zombie (nobody may reap a detached service).
alive() {
        [ -r "/proc/$1/status" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null
}

# The running service: the recorded one, and any other test service on this world's port (an
# activation killed between starting a service and its pid file leaves one nobody recorded;
# NixOS's units leave nothing of the kind, and neither may this stand-in).
stop_service() {
        local pids="" pid port
        port="$(read_value port)"
        if [ -f "$pidfile" ]; then
                pid="$(cat "$pidfile")"
                # Only ever signal our own service, never a process that reused the pid.
                grep -qs health-service "/proc/$pid/cmdline" && pids="$pid"
        fi
        rm -f "$pidfile"
        pids="$pids $(pgrep -f -- "libexec/health-service.py --port $port " || true)"
        for pid in $pids; do
                kill "$pid" 2>/dev/null || true
        done
        for pid in $pids; do
                for _ in $(seq 100); do
                        alive "$pid" || break
                        sleep 0.05
                done
                kill -9 "$pid" 2>/dev/null || true
        done
}

# In a unit, on a machine that systemd runs.
under_systemd() {
        [ -n "${INVOCATION_ID:-}" ] && [ -d /run/systemd/system ] && command -v systemd-run >/dev/null
}

start_service() {
        local python port status pid
        python="$(read_value python)"
        port="$(read_value port)"
        status="$(read_value health-status)"
        if under_systemd; then
                systemctl stop "world-health-$port.service" 2>/dev/null || true
                systemd-run --quiet --collect --unit="world-health-$port" -p StandardOutput="append:$logfile" \
                        -p StandardError="append:$logfile" \
                        "$python" "$toplevel/libexec/health-service.py" \
                        --port "$port" --status "$status" --pid-file "$pidfile" \
                        --marker "$(read_value marker)" --delay "$service_delay" {lock_fd}>&-
                pid="$(systemctl show -p MainPID --value "world-health-$port.service")"
        else
                # setsid: a session of its own, so it outlives the caller; stdio goes to a log
                # file so that no pipe of the caller (the agent reads ours to EOF) stays open.
                setsid "$python" "$toplevel/libexec/health-service.py" \
                        --port "$port" --status "$status" --pid-file "$pidfile" \
                        --marker "$(read_value marker)" --delay "$service_delay" \
                        </dev/null >>"$logfile" 2>&1 {lock_fd}>&- &
                pid=$!
        fi
        # The service writes its pid file once it listens, or at once when it has a delay
        # (then nobody waits for it to listen: it comes back later, on its own).
        for _ in $(seq 200); do
                [ -s "$pidfile" ] && return 0
                alive "$pid" || die "the test service exited at start; see $logfile"
                sleep 0.05
        done
        die "the test service did not listen on 127.0.0.1:$port within 10 s; see $logfile"
}

# The boot loader: entries for the profile's generations, this toplevel the default. Closes
# the lock for the installer like for any child.
install_boot_loader() {
        local installer="$toplevel/libexec/bootloader.py"
        [ -f "$installer" ] || die "no boot loader installer in $toplevel (libexec/bootloader.py)"
        "$(read_value python)" -B "$installer" install "$toplevel" {lock_fd}>&- ||
                die "Failed to install bootloader"
}

case "$action" in
switch | test)
        [ "$action" = test ] || install_boot_loader
        stop_service
        if [ "$activation_seconds" != 0 ]; then
                echo "switch-to-configuration: activating for $activation_seconds s (WORLD_ACTIVATION_SECONDS)" >&2
                sleep "$activation_seconds" {lock_fd}>&-
        fi
        ln -sfn "$toplevel" "$run/current-system"
        start_service
        rc="$(read_value activation-exit)"
        ;;
boot)
        install_boot_loader
        rc=0
        ;;
dry-activate)
        # What NixOS's switch-to-configuration prints: the units whose files differ between the
        # running system and this one (etc/systemd/system), without changing anything.
        current="$(readlink -f "$run/current-system" 2>/dev/null || true)"
        units_of() { [ -d "$1/etc/systemd/system" ] && (cd "$1/etc/systemd/system" && ls) || true; }
        stop="" restart="" start=""
        for u in $(units_of "$current"); do
                if [ ! -e "$toplevel/etc/systemd/system/$u" ]; then
                        stop="${stop:+$stop, }$u"
                elif ! cmp -s "$current/etc/systemd/system/$u" "$toplevel/etc/systemd/system/$u"; then
                        restart="${restart:+$restart, }$u"
                fi
        done
        for u in $(units_of "$toplevel"); do
                [ -e "$current/etc/systemd/system/$u" ] || start="${start:+$start, }$u"
        done
        [ -z "$stop" ] || echo "would stop the following units: $stop" >&2
        echo "would activate the configuration..." >&2
        [ -z "$restart" ] || echo "would restart the following units: $restart" >&2
        [ -z "$start" ] || echo "would start the following units: $start" >&2
        rc=0
        ;;
esac

[ "$rc" = 0 ] || echo "switch-to-configuration: activation of $toplevel exits $rc (activation_exit in world.json)" >&2
exit "$rc"
