#!/bin/bash
# SPDX-License-Identifier: MIT
#
# switch-to-configuration of the atticd-agent test world (installed as
# <toplevel>/bin/switch-to-configuration).  Usage: switch-to-configuration switch|test|boot|dry-activate
#
#   switch, test   stop the test service of the running system, point
#                  $WORLD_ROOT/run/current-system at this toplevel, start this system's test
#                  service on 127.0.0.1:<port> (detached), wait until it listens, then exit
#                  with this system's activation_exit.
#   boot           write this toplevel into $WORLD_ROOT/boot/next-system (the boot entry).
#
# Every run appends "<action> <toplevel> <exit>" to $WORLD_ROOT/activation.log.
set -euo pipefail

die() {
        echo "switch-to-configuration: $*" >&2
        exit 1
}

action="${1:-}"
[ -n "${WORLD_ROOT:-}" ] || die "WORLD_ROOT is not set (the test world must set it)"

# $0 may be reached through the profile's symlinks; the toplevel is the store path.
self="$(readlink -f "$0")"
toplevel="${self%/bin/switch-to-configuration}"
read_value() { cat "$toplevel/world/$1"; }

run="$WORLD_ROOT/run"
pidfile="$run/health.pid"
logfile="$WORLD_ROOT/log/health.log"
mkdir -p "$run" "$WORLD_ROOT/log" "$WORLD_ROOT/boot"

# True while process $1 exists and is not a zombie (nobody may reap a detached service).
alive() {
        [ -r "/proc/$1/status" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null
}

stop_service() {
        [ -f "$pidfile" ] || return 0
        local pid
        pid="$(cat "$pidfile")"
        rm -f "$pidfile"
        # Only ever signal our own service, never a process that reused the pid.
        grep -qs health-service "/proc/$pid/cmdline" || return 0
        kill "$pid" 2>/dev/null || return 0
        for _ in $(seq 100); do
                alive "$pid" || return 0
                sleep 0.05
        done
        kill -9 "$pid" 2>/dev/null || true
}

start_service() {
        local python port status pid
        python="$(read_value python)"
        port="$(read_value port)"
        status="$(read_value health-status)"
        # setsid: a session of its own, so it outlives the caller; stdio goes to a log file so
        # that no pipe of the caller (the agent reads ours to EOF) stays open.
        setsid "$python" "$toplevel/libexec/health-service.py" \
                --port "$port" --status "$status" --pid-file "$pidfile" \
                --marker "$(read_value marker)" \
                </dev/null >>"$logfile" 2>&1 &
        pid=$!
        # The service writes its pid file once it listens.
        for _ in $(seq 200); do
                [ -s "$pidfile" ] && return 0
                alive "$pid" || die "the test service exited at start; see $logfile"
                sleep 0.05
        done
        die "the test service did not listen on 127.0.0.1:$port within 10 s; see $logfile"
}

case "$action" in
switch | test)
        stop_service
        ln -sfn "$toplevel" "$run/current-system"
        start_service
        rc="$(read_value activation-exit)"
        ;;
boot)
        echo "$toplevel" >"$WORLD_ROOT/boot/next-system"
        rc=0
        ;;
dry-activate)
        echo "would activate $toplevel" >&2
        rc=0
        ;;
*)
        die "usage: switch-to-configuration switch|test|boot|dry-activate (got '$action')"
        ;;
esac

echo "$action $toplevel $rc" >>"$WORLD_ROOT/activation.log"
[ "$rc" = 0 ] || echo "switch-to-configuration: activation of $toplevel exits $rc (activation_exit in world.json)" >&2
exit "$rc"
