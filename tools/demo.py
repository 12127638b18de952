#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The demonstration behind tools/demo: a test world (tests/world: a client flake without
nixpkgs, a nixos-rebuild stand-in over real nix, a service on loopback) driven by the real
atticd-agent binary: pull, build, switch, health check, a no-change run, a failed build, an
unhealthy revision rolled back and not retried; then an offline bundle created, verified,
refused when tampered with, and applied on a machine with an empty store and no network.
Every agent command is printed before it runs, with its output."""

import shlex
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))
from world import World, to_yaml  # noqa: E402

BOLD, DIM, RESET = ("\033[1m", "\033[2m", "\033[0m") if sys.stdout.isatty() else ("", "", "")


def step(text):
    print(f"\n{BOLD}== {text}{RESET}", flush=True)


def agent(w, *args, expect):
    print(f"{DIM}$ atticd-agent -c {w.config_path} {shlex.join(args)}{RESET}", flush=True)
    r = w.agent(*args)
    for line in (r.stderr + r.stdout).splitlines():
        print("  " + line)
    print(f"{DIM}  (exit {r.returncode}){RESET}")
    if r.returncode != expect:
        sys.exit(f"demo: expected exit {expect}, got {r.returncode}")
    return r


def main():
    with World() as w:
        repo = w.make_repo()
        w.write_config(health={"settle": 0, "timeout": 3, "checks": [
            {"name": "web", "http": {"url": f"http://127.0.0.1:{w.port}/health", "status": 200}}]})
        print(f"World in {w.tmp}: client repository {repo.remote_url}, "
              f"service on 127.0.0.1:{w.port}, nix store {w.store_dir}")

        step("The client's platform team commits revision 1")
        r1 = w.commit("platform 1.0")
        print(f"  commit {r1}")

        step("pull: fetch, verify, evaluate once, build that, switch to exactly it, check, record")
        w.reset_call_logs()
        agent(w, "pull", expect=0)
        print(f"  evaluations of the flake: {w.evaluations()}, activations: {len(w.activations())}")
        print(f"  current-system -> {w.current_system()}")
        print(f"  GET /health -> {w.health()}")

        step("Revision 2 arrives")
        r2 = w.commit("platform 1.1")
        print(f"  commit {r2}")
        agent(w, "pull", expect=0)
        print(f"  profile generation {w.profile_generation()}, GET /health -> {w.health()}")

        step("The timer fires again: nothing new, nothing started")
        w.reset_call_logs()
        agent(w, "pull", expect=0)
        print(f"  evaluations: {w.evaluations()}, nix calls: {len(w.nix_calls())}")

        step("Revision 3 does not build: nothing is switched")
        w.commit("broken", build_fail=True)
        agent(w, "pull", expect=1)
        print(f"  still on generation {w.profile_generation()}, GET /health -> {w.health()}")

        step("Revision 4 builds and activates, but its service answers 500: rolled back")
        w.commit("unhealthy", health_status=500)
        agent(w, "pull", expect=1)
        print(f"  back on generation {w.profile_generation()}, GET /health -> {w.health()}")

        step("The same bad revision again: not retried")
        w.reset_call_logs()
        agent(w, "pull", expect=0)
        print(f"  evaluations: {w.evaluations()}, nix calls: {len(w.nix_calls())}")

        step("check: the health checks against the running system")
        agent(w, "check", expect=0)

        step("status")
        agent(w, "status", expect=0)

        step("For an air-gapped machine: a signed bundle of revision 5 (history, nix closure, images)")
        key, pub = w.tmp / "bundle.pem", w.tmp / "bundle.pub"
        subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", str(key)], check=True)
        subprocess.run(["openssl", "pkey", "-in", str(key), "-pubout", "-out", str(pub)], check=True)
        r5 = w.commit("platform 1.2")
        bundle = w.tmp / "client-r5.tar.zst"
        agent(w, "bundle", "create", "-o", str(bundle), "--rev", r5, "--repo", str(repo.work), "--key", str(key),
              "--sequence", "5", expect=0)
        print(f"  {bundle.name}: {bundle.stat().st_size} bytes")

        step("The air-gapped machine: an empty nix store, no repository, no network")
        w.wipe_machine()
        cfg = w.config_dict(bundle={"keys": [str(pub)]}, health={"settle": 0, "timeout": 3, "checks": [
            {"name": "web", "http": {"url": f"http://127.0.0.1:{w.port}/health", "status": 200}}]})
        cfg.pop("repository")
        w.config_path.write_text(to_yaml(cfg))
        agent(w, "verify", str(bundle), expect=0)

        step("One byte changed on the way: refused, nothing written")
        data = bytearray(bundle.read_bytes())
        data[len(data) // 2] ^= 1
        tampered = w.tmp / "tampered.tar.zst"
        tampered.write_bytes(bytes(data))
        agent(w, "apply", str(tampered), expect=3)

        step("apply: verify while extracting, import, switch to the signed system (no evaluation), check")
        w.reset_call_logs()
        agent(w, "apply", str(bundle), expect=0)
        print(f"  current-system -> {w.current_system()}, GET /health -> {w.health()}, evaluations: {w.evaluations()}")

        step("The same bundle again: a replay, refused")
        agent(w, "apply", str(bundle), expect=3)
        agent(w, "status", expect=0)

    print(f"\n{BOLD}Demo complete.{RESET}")


if __name__ == "__main__":
    main()
