#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Proves the test world works on its own, without the agent: real nix builds in a private
store, real profile generations, the nixos-rebuild stand-in, the test service, the boot loader
and booting.

Run from the repository root: python3 tests/integration/test_world_selftest.py [-v]
"""

import json
import os
import re
import signal
import subprocess
import sys
import time
import unittest
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from world import (BLESS_BOOT, BOOTCTL, DEPLOY_REF, EVAL_COST_1S, GRUB_REBOOT, REBUILD_STANDIN,  # noqa: E402
                   World, bootloader, flake_ref, is_evaluation, pid_alive, to_yaml)

HOST = "testhost"
TIMEOUT = 60  # per command; a stand-in run takes well under a second
NO_REEXEC = {"ng": "--no-reexec", "bash": "--fast"}  # what each flavour re-executes itself with


class StandInTest(unittest.TestCase):
    """The stand-in driven the way the agent drives it: a bare clone with atticd-deploy at
    the target revision and a git+file://...?ref=refs/heads/atticd-deploy&rev=SHA reference.
    Every run captures stdout and stderr to EOF with a timeout, so a test service that kept a
    pipe of its caller open would make these tests fail."""

    def setUp(self):
        # The tests below expect nixos-rebuild-ng, whatever ATTICD_WORLD_REBUILD_FLAVOR says.
        self.world = World.for_test(self, rebuild_flavor="ng")
        self.repo = self.world.make_repo()

    def rebuild(self, *args):
        return self.world.rebuild(*args, timeout=TIMEOUT)

    def rebuild_ok(self, *args):
        r = self.rebuild(*args)
        self.assertEqual(r.returncode, 0, f"nixos-rebuild {' '.join(args)}:\n{r.stderr}")
        return r

    def test_build_switch_unhealthy_switch_rollback(self):
        w = self.world
        sha1 = self.repo.commit(health_status=200)
        ref1 = w.deploy_ref(sha1)
        self.assertEqual(ref1, f"git+file://{w.tmp}/deploy/repo.git?ref={DEPLOY_REF}&rev={sha1}")

        # build: ./result in the working directory, nothing activated.
        r = self.rebuild_ok("build", "--flake", f"{ref1}#{HOST}")
        self.assertEqual(r.stdout, "")
        top1 = os.readlink(w.cwd / "result")
        self.assertTrue(top1.startswith(str(w.store_dir) + "/"), top1)
        self.assertTrue(os.access(Path(top1, "bin", "switch-to-configuration"), os.X_OK))
        self.assertTrue(Path(top1, "nixos-version").is_file())
        self.assertEqual(w.profile_generations(), {})
        self.assertIsNone(w.current_system())
        self.assertIsNone(w.health())

        # switch: generation 1, current-system, a service answering 200.
        self.rebuild_ok("switch", "--flake", f"{ref1}#{HOST}", "--no-build-output", "-L")
        self.assertEqual(w.profile_generations(), {1: top1})
        self.assertEqual(w.profile_generation(), 1)
        self.assertEqual(w.profile_target(), top1)
        self.assertEqual(w.current_system(), top1)
        self.assertEqual(w.health(), 200)
        self.assertEqual(w.service_marker(), w.marker_of(top1))

        # An unhealthy revision: generation 2, the service now answers 500.
        sha2 = self.repo.commit(health_status=500)
        ref2 = w.deploy_ref(sha2)
        self.rebuild_ok("switch", "--flake", f"{ref2}#{HOST}")
        gens = w.profile_generations()
        self.assertEqual(list(gens), [1, 2])
        top2 = gens[2]
        self.assertNotEqual(top2, top1)
        self.assertEqual(w.profile_target(), top2)
        self.assertEqual(w.current_system(), top2)
        self.assertEqual(w.health(), 500)
        self.assertEqual(len(w.service_pids()), 1, "the old service must have been stopped")

        # --rollback switch: back on generation 1 and healthy.
        self.rebuild_ok("--rollback", "switch")
        self.assertEqual(w.profile_generation(), 1)
        self.assertEqual(w.current_system(), top1)
        self.assertEqual(w.health(), 200)

        # Each run with --flake re-executed itself once (nixos-rebuild-ng, the default flavour).
        self.assertEqual([(c.split()[1], c.split()[-1]) for c in w.rebuild_calls()],
                         [("build", f"{ref1}#{HOST}"), ("build", "--no-reexec"),
                          ("switch", "-L"), ("switch", "--no-reexec"),
                          ("switch", f"{ref2}#{HOST}"), ("switch", "--no-reexec"),
                          ("--rollback", "switch")])
        self.assertEqual([a.split()[0] for a in w.activations()], ["switch", "switch", "switch"])
        self.assertEqual(w.activation_conflicts(), [])
        spans = w.activation_spans()
        self.assertEqual([(s["action"], s["toplevel"], s["exit"]) for s in spans],
                         [("switch", top1, 0), ("switch", top2, 0), ("switch", top1, 0)])
        for a, b in zip(spans, spans[1:]):
            self.assertLessEqual(a["begin"], a["end"])
            self.assertLessEqual(a["end"], b["begin"])
        nix_calls = w.nix_calls()
        self.assertEqual(sum(c.startswith("nix build ") for c in nix_calls), 6, nix_calls)
        self.assertEqual(w.evaluations(), 6)
        self.assertEqual(sum("system.build.nixos-rebuild" in c for c in w.evaluation_calls()), 3)
        self.assertIn(f"nix-env -p {w.profile} --rollback", nix_calls)

    def test_build_failure(self):
        w = self.world
        sha = self.repo.commit(build_fail=True)
        r = self.rebuild("build", "--flake", f"{w.deploy_ref(sha)}#{HOST}")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("build_fail", r.stderr)
        self.assertFalse(os.path.lexists(w.cwd / "result"))
        r = self.rebuild("switch", "--flake", f"{w.deploy_ref(sha)}#{HOST}")
        self.assertNotEqual(r.returncode, 0)
        self.assertEqual(w.profile_generations(), {})
        self.assertIsNone(w.current_system())
        self.assertIsNone(w.health())

    def test_activation_failure_exit_status(self):
        w = self.world
        sha = self.repo.commit(activation_exit=3)
        r = self.rebuild("switch", "--flake", f"{w.deploy_ref(sha)}#{HOST}")
        self.assertEqual(r.returncode, 3, r.stderr)
        # Like nixos-rebuild: the profile is set before activation, which then fails.
        self.assertEqual(list(w.profile_generations()), [1])
        self.assertEqual(w.current_system(), w.profile_target())
        self.assertEqual(w.health(), 200)

    def test_boot_and_test_actions(self):
        w = self.world
        sha = self.repo.commit()
        ref = f"{w.deploy_ref(sha)}#{HOST}"
        self.rebuild_ok("boot", "--flake", ref)
        top = w.profile_target()
        self.assertEqual(w.profile_generations(), {1: top})
        self.assertEqual(w.boot_next(), top)
        self.assertIsNone(w.current_system(), "boot must not activate")
        self.assertIsNone(w.health())
        # test: activates without a new generation.
        sha2 = self.repo.commit(health_status=503)
        self.rebuild_ok("test", "--flake", f"{w.deploy_ref(sha2)}#{HOST}")
        self.assertEqual(list(w.profile_generations()), [1])
        self.assertNotEqual(w.current_system(), top)
        self.assertEqual(w.health(), 503)

    def test_images_evaluate(self):
        w = self.world
        images = {"web": "127.0.0.1:5000/web:1", "db": "127.0.0.1:5000/db@sha256:" + "ab" * 32}
        sha = self.repo.commit(images=images)
        attr = f"#nixosConfigurations.{HOST}.config.virtualisation.oci-containers.containers"
        r = w.run(["nix", "eval", "--json", w.deploy_ref(sha) + attr], timeout=TIMEOUT)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout), {k: {"image": v} for k, v in images.items()})
        sha2 = self.repo.commit()
        r = w.run(["nix", "eval", "--json", w.deploy_ref(sha2) + attr], timeout=TIMEOUT)
        self.assertEqual((r.returncode, json.loads(r.stdout or "null")), (0, {}), r.stderr)

    def test_stand_in_refuses_bad_use(self):
        w = self.world
        # nixos-rebuild-ng is argparse (exit 2); the bash one exits 1.
        r = self.rebuild("switch", "--frobnicate", "--flake", "x#y")
        self.assertEqual(r.returncode, 2)
        self.assertIn("unrecognized arguments: --frobnicate", r.stderr)
        r = w.rebuild("switch", "--frobnicate", "--flake", "x#y", env={"WORLD_REBUILD_FLAVOR": "bash"})
        self.assertEqual(r.returncode, 1)
        self.assertIn("unknown option `--frobnicate'", r.stderr)
        r = w.rebuild("switch", "--flake", "x#y", env={"WORLD_REBUILD_FLAVOR": "nixos"})
        self.assertEqual(r.returncode, 1)
        self.assertIn("WORLD_REBUILD_FLAVOR", r.stderr)
        r = w.run([REBUILD_STANDIN, "build", "--flake", "x#y"], env={"WORLD_ROOT": ""})
        self.assertEqual(r.returncode, 1)
        self.assertIn("WORLD_ROOT is not set", r.stderr)


class RealToolsTest(unittest.TestCase):
    """What the real tools do that costs or hurts: re-exec, --store-path, the activation lock,
    slow activations, late services, detached activations, the profile gap."""

    def world(self, **kw) -> World:
        kw.setdefault("rebuild_flavor", "ng")
        return World.for_test(self, **kw)

    def toplevel(self, w: World, ref: str) -> str:
        """Build ref (no re-exec) and return its toplevel, without activating anything."""
        r = w.rebuild("build", "--fast", "--flake", f"{ref}#{HOST}", timeout=TIMEOUT)
        self.assertEqual(r.returncode, 0, r.stderr)
        return os.readlink(w.cwd / "result")

    def wait_span_begin(self, w: World, toplevel: str, timeout: float = 20) -> dict:
        span = w.wait_for(lambda: next((s for s in w.activation_spans() if s["toplevel"] == toplevel),
                                       None), timeout=timeout, interval=0.02)
        self.assertIsNotNone(span, f"no switch-to-configuration of {toplevel} began")
        return span

    def test_reexec_costs_one_evaluation(self):
        for flavor in ("ng", "bash"):
            with self.subTest(flavor=flavor):
                w = self.world(rebuild_flavor=flavor)
                self.assertEqual(w.env["WORLD_REBUILD_FLAVOR"], flavor)
                ref = f"{w.deploy_ref(w.commit())}#{HOST}"
                again = NO_REEXEC[flavor]
                for action in ("build", "switch"):
                    w.reset_call_logs()
                    r = w.rebuild(action, "--flake", ref, timeout=TIMEOUT)
                    self.assertEqual(r.returncode, 0, r.stderr)
                    self.assertEqual(w.rebuild_calls(), [f"nixos-rebuild {action} --flake {ref}",
                                                         f"nixos-rebuild {action} --flake {ref} {again}"])
                    self.assertEqual(w.rebuild_calls(reexecs=False), [f"nixos-rebuild {action} --flake {ref}"])
                    calls = w.evaluation_calls()
                    self.assertEqual(w.evaluations(), 2, calls)
                    self.assertIn(".config.system.build.nixos-rebuild", calls[0])
                    self.assertIn("--no-link", calls[0])
                    self.assertIn(".config.system.build.toplevel", calls[1])
                self.assertEqual(w.health(), 200)
                # Without re-exec: one run, one evaluation.
                for flag in ("--fast", "--no-reexec") if flavor == "ng" else ("--fast",):
                    for action in ("build", "switch"):
                        w.reset_call_logs()
                        r = w.rebuild(action, flag, "--flake", ref, timeout=TIMEOUT)
                        self.assertEqual(r.returncode, 0, r.stderr)
                        self.assertEqual(w.rebuild_calls(), w.rebuild_calls(reexecs=False))
                        self.assertEqual(len(w.rebuild_calls()), 1)
                        self.assertEqual(w.evaluations(), 1, w.evaluation_calls())
                if flavor == "bash":
                    r = w.rebuild("build", "--no-reexec", "--flake", ref, timeout=TIMEOUT)
                    self.assertEqual(r.returncode, 1)
                    self.assertIn("unknown option `--no-reexec'", r.stderr)

    def test_reexec_build_failure_goes_on(self):
        # build_fail fails the toplevel's builder only: the re-exec happens, then the build fails.
        w = self.world()
        r = w.rebuild("build", "--flake", f"{w.deploy_ref(w.commit(build_fail=True))}#{HOST}",
                      timeout=TIMEOUT)
        self.assertNotEqual(r.returncode, 0)
        self.assertEqual(len(w.rebuild_calls()), 2)
        self.assertEqual(w.evaluations(), 2)
        # An evaluation error: the re-exec build fails, the stand-in warns and goes on (and fails
        # to build the toplevel, a second evaluation).
        w.reset_call_logs()
        r = w.rebuild("build", "--flake", f"{w.deploy_ref(w.commit(eval_cost='many'))}#{HOST}",
                      timeout=TIMEOUT)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("could not re-exec", r.stderr)
        self.assertEqual(len(w.rebuild_calls()), 1)
        self.assertEqual(w.evaluations(), 2)

    def test_store_path_activates_without_evaluation(self):
        w = self.world()
        top1 = self.toplevel(w, w.deploy_ref(w.commit()))
        top2 = self.toplevel(w, w.deploy_ref(w.commit(health_status=503)))
        w.reset_call_logs()
        r = w.rebuild("switch", "--store-path", top1, timeout=TIMEOUT)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(w.evaluations(), 0, w.nix_calls())
        self.assertEqual(w.nix_calls(), [f"nix-env -p {w.profile} --set {top1}"])
        self.assertEqual(w.rebuild_calls(), [f"nixos-rebuild switch --store-path {top1}"])
        self.assertEqual(w.profile_generations(), {1: top1})
        self.assertEqual((w.current_system(), w.health()), (top1, 200))
        # test: activates, the profile stays; boot: a generation and a boot entry, no activation.
        r = w.rebuild("test", "--store-path", top2, timeout=TIMEOUT)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual((w.current_system(), w.health(), list(w.profile_generations())), (top2, 503, [1]))
        r = w.rebuild("boot", "--store-path", top2, timeout=TIMEOUT)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual((w.profile_target(), w.boot_next()), (top2, top2))
        self.assertEqual(w.evaluations(), 0, w.nix_calls())
        # Refused: with --flake, with build, and by the bash flavour.
        r = w.rebuild("switch", "--store-path", top1, "--flake", f"x#{HOST}", timeout=TIMEOUT)
        self.assertEqual(r.returncode, 1)
        self.assertIn("cannot be given together", r.stderr)
        r = w.rebuild("build", "--store-path", top1, timeout=TIMEOUT)
        self.assertEqual(r.returncode, 1)
        w.rebuild_flavor = "bash"
        r = w.rebuild("switch", "--store-path", top1, timeout=TIMEOUT)
        self.assertEqual(r.returncode, 1)
        self.assertIn("unknown option `--store-path'", r.stderr)
        self.assertEqual(w.profile_target(), top2)
        self.assertEqual(w.evaluations(), 0, w.nix_calls())

    def test_activation_lock_refuses_a_second_activation(self):
        w = self.world()
        top = self.toplevel(w, w.deploy_ref(w.commit()))
        self.assertEqual(w.run(["nix-env", "-p", w.profile, "--set", top]).returncode, 0)
        stc = Path(top, "bin", "switch-to-configuration")
        first = w.popen([stc, "switch"], env={"WORLD_ACTIVATION_SECONDS": "2"})
        self.wait_span_begin(w, top)
        self.assertTrue(w.stc_lock_path.exists())
        for action in ("test", "switch", "boot", "dry-activate"):
            r = w.run([stc, action])
            self.assertEqual(r.returncode, 1, f"{action}: {r.stderr}")
            self.assertIn("Could not acquire lock", r.stderr)
        err = first.communicate(timeout=TIMEOUT)[1]
        self.assertEqual(first.returncode, 0, err)
        self.assertEqual(w.activation_conflicts(),
                         [f"LOCKED {a} {top}" for a in ("test", "switch", "boot", "dry-activate")])
        self.assertEqual(w.activations(), [f"switch {top} 0"])
        self.assertEqual(len(w.activation_spans()), 1, "a refused run has no span")
        # The lock went with the first run; running it again (same system) succeeds.
        w.activation_seconds = 0
        for _ in range(2):
            r = w.run([stc, "switch"])
            self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual((w.current_system(), w.health()), (top, 200))
        self.assertEqual(len(w.service_pids()), 1)
        spans = w.activation_spans()
        self.assertEqual([(s["action"], s["exit"]) for s in spans], [("switch", 0)] * 3)
        for a, b in zip(spans, spans[1:]):
            self.assertLessEqual(a["end"], b["begin"], "activations overlapped")
        self.assertTrue(w.wait_activation_idle(timeout=5))

    def test_slow_activation_leaves_the_service_down(self):
        w = self.world()
        ref1 = w.deploy_ref(w.commit())
        self.assertEqual(w.rebuild("switch", "--fast", "--flake", f"{ref1}#{HOST}", timeout=TIMEOUT).returncode, 0)
        top1 = w.current_system()
        ref2 = w.deploy_ref(w.commit())
        top2 = self.toplevel(w, ref2)
        w.activation_seconds = 2
        self.assertEqual(w.env["WORLD_ACTIVATION_SECONDS"], "2")
        p = w.popen([REBUILD_STANDIN, "switch", "--fast", "--flake", f"{ref2}#{HOST}"])
        self.wait_span_begin(w, top2)
        down = w.wait_for(lambda: w.health(timeout=0.3) is None, timeout=1.5)
        self.assertTrue(down, "the old service must be stopped during the activation")
        self.assertIsNone(w.health(timeout=0.3))
        self.assertEqual(w.current_system(), top1, "current-system moves after the activation's work")
        err = p.communicate(timeout=TIMEOUT)[1]
        self.assertEqual(p.returncode, 0, err)
        self.assertEqual((w.current_system(), w.health()), (top2, 200))
        span = w.activation_spans()[-1]
        self.assertGreaterEqual(span["end"] - span["begin"], 2)

    def test_late_service(self):
        w = self.world(service_delay=2.5)
        self.assertEqual(w.env["WORLD_SERVICE_DELAY"], "2.5")
        ref = w.deploy_ref(w.commit())
        r = w.rebuild("switch", "--flake", f"{ref}#{HOST}", timeout=TIMEOUT)
        returned = time.monotonic()
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIsNone(w.health(timeout=0.3), "switch-to-configuration must not wait for a late service")
        self.assertEqual(len(w.service_pids()), 1)
        self.assertEqual(w.wait_for(lambda: w.health(timeout=0.3), timeout=20), 200)
        print(f"\n  late service: answered {time.monotonic() - returned:.2f} s after the switch returned",
              file=sys.stderr)
        # The next activation stops it like any other.
        w.service_delay = 0
        r = w.rebuild("switch", "--fast", "--flake", f"{w.deploy_ref(w.commit(health_status=500))}#{HOST}",
                      timeout=TIMEOUT)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual((w.health(), len(w.service_pids())), (500, 1))

    def kill_during_activation(self, detached: bool):
        """Switch to a second revision with a slow activation and SIGKILL the stand-in's whole
        process group while switch-to-configuration runs. Returns (world, top1, top2)."""
        w = self.world(detached_activation=detached)
        self.assertEqual(w.env["WORLD_DETACHED_ACTIVATION"], "1" if detached else "0")
        ref1 = w.deploy_ref(w.commit())
        r = w.rebuild("switch", "--flake", f"{ref1}#{HOST}", timeout=TIMEOUT)
        self.assertEqual(r.returncode, 0, r.stderr)
        top1 = w.current_system()
        ref2 = w.deploy_ref(w.commit())
        top2 = self.toplevel(w, ref2)
        w.activation_seconds = 2
        p = w.popen([REBUILD_STANDIN, "switch", "--flake", f"{ref2}#{HOST}"])
        self.wait_span_begin(w, top2)
        self.assertTrue(w.wait_for(lambda: w.health(timeout=0.3) is None, timeout=1.5),
                        "the old service must be stopped during the activation")
        os.killpg(p.pid, signal.SIGKILL)
        p.communicate(timeout=TIMEOUT)
        self.assertEqual(p.returncode, -signal.SIGKILL)
        self.assertEqual(w.profile_target(), top2)
        return w, top1, top2

    def test_detached_activation_outlives_a_killed_caller(self):
        w, top1, top2 = self.kill_during_activation(detached=True)
        self.assertNotEqual(w.activation_pids(), [], "the detached activation must still run")
        self.assertEqual(w.current_system(), top1)
        self.assertTrue(w.wait_activation_idle(timeout=30))
        self.assertEqual((w.current_system(), w.health()), (top2, 200))
        span = w.activation_spans()[-1]
        self.assertEqual((span["toplevel"], span["exit"]), (top2, 0))
        self.assertGreaterEqual(span["end"] - span["begin"], 2)
        logs = list((w.root / "log").glob("switch-to-configuration-*.log"))
        self.assertEqual(len(logs), 2, logs)

    def test_attached_activation_dies_with_its_caller(self):
        # The control: without detached activation, the kill takes switch-to-configuration along.
        w, top1, top2 = self.kill_during_activation(detached=False)
        self.assertTrue(w.wait_activation_idle(timeout=10))
        self.assertEqual(w.activation_pids(), [])
        span = w.activation_spans()[-1]
        self.assertEqual((span["toplevel"], span["end"], span["exit"]), (top2, None, None))
        self.assertEqual(w.current_system(), top1)
        self.assertIsNone(w.health(), "killed after stopping the old service, before starting the new")
        # The lock went with it: the next activation runs.
        r = w.rebuild("switch", "--fast", "--flake", f"{w.deploy_ref(w.commit())}#{HOST}", timeout=TIMEOUT)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(w.activation_conflicts(), [])

    def test_close_kills_a_detached_activation(self):
        w = World(detached_activation=True, activation_seconds=60)
        try:
            ref = w.deploy_ref(w.commit())
            p = w.popen([REBUILD_STANDIN, "switch", "--fast", "--flake", f"{ref}#{HOST}"])
            w.wait_for(lambda: w.activation_spans(), timeout=20)
            os.killpg(p.pid, signal.SIGKILL)
            p.communicate(timeout=TIMEOUT)
            pids = w.activation_pids()
            self.assertNotEqual(pids, [])
            self.assertFalse(w.wait_activation_idle(timeout=0.5))
        finally:
            w.close()
        self.assertTrue(World.wait_for(w, lambda: not any(pid_alive(x) for x in pids), timeout=5), pids)

    def test_profile_gap(self):
        w = self.world(profile_gap=2)
        ref1 = w.deploy_ref(w.commit())
        p = w.popen([REBUILD_STANDIN, "switch", "--fast", "--flake", f"{ref1}#{HOST}"])
        self.assertTrue(w.wait_for(lambda: w.profile_generation() == 1, timeout=20))
        time.sleep(0.3)
        self.assertEqual(w.activation_spans(), [], "switch-to-configuration must wait for the gap")
        os.killpg(p.pid, signal.SIGKILL)
        p.communicate(timeout=TIMEOUT)
        # Killed in the gap: a new generation that nothing activated.
        self.assertIsNotNone(w.profile_target())
        self.assertIsNone(w.current_system())
        self.assertEqual(w.activations(), [])
        w.profile_gap = 0
        r = w.rebuild("switch", "--store-path", w.profile_target(), timeout=TIMEOUT)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(w.current_system(), w.profile_target())

    def test_evaluation_rule(self):
        self.assertTrue(is_evaluation('nix build git+file:///r.git?ref=a&rev=b#nixosConfigurations."h".config.x'))
        self.assertTrue(is_evaluation("nix eval --json path:/x#nixosConfigurations.h.config.y"))
        self.assertTrue(is_evaluation("nix build --dry-run .#x"))
        for line in ("nix build /nix/store/abc-x.drv", "nix build --profile /p /nix/store/abc-x",
                     "nix copy --to file:///d /nix/store/abc", "nix-env -p /p --set /nix/store/abc",
                     "nix-store --realise /nix/store/abc", "nix flake metadata git+file:///r.git?ref=a"):
            self.assertFalse(is_evaluation(line), line)


class EvalCostTest(unittest.TestCase):
    """world.json eval_cost: every evaluation of the configuration costs CPU and memory, and
    changes no store path."""

    @staticmethod
    def measure(w: World, *args: str) -> tuple[str, float, float, int]:
        """Run nix ARGS...; (stdout, wall s, CPU s (user + system), peak RSS KiB)."""
        out = w.tmp / "measure.out"
        with open(out, "w") as f:
            start = time.monotonic()
            p = subprocess.Popen(["nix", *args], cwd=w.cwd, env=w.env, stdout=f, stderr=subprocess.DEVNULL)
            _, status, ru = os.wait4(p.pid, 0)
            wall = time.monotonic() - start
        p.returncode = os.waitstatus_to_exitcode(status)
        if p.returncode != 0:
            raise AssertionError(f"nix {' '.join(args)} exited {p.returncode}")
        return out.read_text(), wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss

    def test_eval_cost(self):
        w = World.for_test(self)
        base = "nixosConfigurations.\"testhost\".config."
        results = {}
        for cost in (0, EVAL_COST_1S):
            ref = w.deploy_ref(w.commit(eval_cost=cost, marker="same", images={"web": "r/web:1"}))
            for attr in ("virtualisation.oci-containers.containers", "system.build.toplevel.drvPath",
                         "system.build.toplevel.outPath", "system.build.nixos-rebuild.drvPath"):
                out, wall, cpu, rss = self.measure(w, "eval", "--json", f"{ref}#{base}{attr}")
                results[cost, attr] = json.loads(out)
                print(f"\n  eval_cost={cost} {attr}: {wall:.2f} s wall, {cpu:.2f} s CPU, {rss // 1024} MiB",
                      file=sys.stderr, end="")
                if cost:
                    self.assertGreater(cpu, 0.2, attr)
                    self.assertGreater(rss, 100 * 1024, attr)
                else:
                    self.assertLess(rss, 100 * 1024, attr)
        print(file=sys.stderr)
        for attr in ("virtualisation.oci-containers.containers", "system.build.toplevel.drvPath",
                     "system.build.toplevel.outPath", "system.build.nixos-rebuild.drvPath"):
            self.assertEqual(results[0, attr], results[EVAL_COST_1S, attr], attr)
        self.assertEqual(results[0, "virtualisation.oci-containers.containers"], {"web": {"image": "r/web:1"}})


class BootLoaderTest(unittest.TestCase):
    """The boot loader model: entries for the profile's generations, the default, one-shot
    entries through bootctl and grub-reboot, boot counting, and power cuts that boot what the
    loader chooses (tests/world/README.md, "Boot loader")."""

    SD = "nixos-generation-{}.conf"

    def world(self, **kw) -> World:
        kw.setdefault("rebuild_flavor", "ng")
        return World.for_test(self, **kw)

    def switch(self, w: World, **params) -> str:
        """nixos-rebuild switch of a new commit; returns its toplevel (the profile's newest)."""
        r = w.rebuild("switch", "--fast", "--flake", f"{w.deploy_ref(w.commit(**params))}#{HOST}", timeout=TIMEOUT)
        self.assertEqual(r.returncode, 0, r.stderr)
        return w.profile_target()

    def build(self, w: World, **params) -> str:
        r = w.rebuild("build", "--fast", "--flake", f"{w.deploy_ref(w.commit(**params))}#{HOST}", timeout=TIMEOUT)
        self.assertEqual(r.returncode, 0, r.stderr)
        return os.readlink(w.cwd / "result")

    def add_generation(self, w: World, toplevel: str) -> int:
        """A new generation of the system profile, as nix-env --set makes it (no activation)."""
        r = w.run(["nix-env", "-p", w.profile, "--set", toplevel])
        self.assertEqual(r.returncode, 0, r.stderr)
        return w.profile_generation()

    def stc(self, w: World, toplevel: str, action: str, ok: bool = True) -> subprocess.CompletedProcess:
        r = w.run([Path(toplevel, "bin", "switch-to-configuration"), action], timeout=TIMEOUT)
        if ok:
            self.assertEqual(r.returncode, 0, r.stderr)
        return r

    def test_switch_moves_the_default_boot_only_the_default_test_nothing(self):
        w = self.world()
        self.assertEqual((w.boot_entries(), w.boot_default(), w.boot_next(), w.boot_state()), ({}, None, None, None))
        top1 = self.switch(w)
        self.assertEqual(w.boot_entries(), {self.SD.format(1): top1})
        self.assertEqual((w.boot_default_id(), w.boot_default(), w.boot_next()), (self.SD.format(1), top1, top1))
        self.assertEqual(w.boot_entry_id(1), self.SD.format(1))

        # boot: a new generation becomes the default; the running system stays.
        r = w.rebuild("boot", "--fast", "--flake", f"{w.deploy_ref(w.commit(health_status=503))}#{HOST}",
                      timeout=TIMEOUT)
        self.assertEqual(r.returncode, 0, r.stderr)
        top2 = w.profile_target()
        self.assertEqual(w.boot_entries(), {self.SD.format(2): top2, self.SD.format(1): top1})
        self.assertEqual((w.boot_default(), w.boot_next()), (top2, top2))
        self.assertEqual((w.current_system(), w.health()), (top1, 200))

        # test: activates, and moves nothing of the boot loader (nor the profile).
        before = w.boot_state()
        top3 = self.build(w, health_status=500)
        r = w.rebuild("test", "--fast", "--flake", f"{w.deploy_ref(w.commit(health_status=500))}#{HOST}",
                      timeout=TIMEOUT)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotEqual(w.current_system(), top2)
        self.assertEqual(w.health(), 500)
        self.assertEqual(w.boot_state(), before)
        self.assertEqual((list(w.profile_generations()), w.boot_next()), ([1, 2], top2))
        self.stc(w, top3, "test")
        self.assertEqual(w.boot_state(), before)

        # switch (here of generation 1, nixos-rebuild --rollback switch): both move.
        r = w.rebuild("--rollback", "switch", timeout=TIMEOUT)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual((w.current_system(), w.health()), (top1, 200))
        self.assertEqual((w.boot_default_id(), w.boot_default(), w.boot_next()), (self.SD.format(1), top1, top1))
        self.assertEqual(list(w.boot_entries()), [self.SD.format(2), self.SD.format(1)])
        # The loader's own files follow: loader.conf's default, one file per entry.
        self.assertIn(f"default {self.SD.format(1)}\n", (w.root / "boot/loader/loader.conf").read_text())
        self.assertEqual(sorted(os.listdir(w.root / "boot/loader/entries")), [self.SD.format(1), self.SD.format(2)])
        self.assertEqual([a.split()[0] for a in w.activations()], ["switch", "boot", "test", "test", "switch"])

    def test_entries_follow_the_profile_generations(self):
        w = self.world()
        top1, top2, top3 = self.switch(w), self.switch(w), self.switch(w)
        self.assertEqual(w.boot_entries(), {self.SD.format(3): top3, self.SD.format(2): top2, self.SD.format(1): top1})
        # A deleted generation loses its entry at the next installation.
        r = w.run(["nix-env", "-p", w.profile, "--delete-generations", "1"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(len(w.boot_entries()), 3, "nothing changes before the next installation")
        self.stc(w, top3, "boot")
        self.assertEqual(w.boot_entries(), {self.SD.format(3): top3, self.SD.format(2): top2})
        # Several generations of one toplevel: the newest is the default.
        self.assertEqual(self.add_generation(w, top2), 4)
        self.stc(w, top2, "boot")
        self.assertEqual(list(w.boot_entries()), [self.SD.format(n) for n in (4, 3, 2)])
        self.assertEqual((w.boot_default_id(), w.boot_next()), (self.SD.format(4), top2))
        # A toplevel that is no generation of the profile: exit 1, nothing changes, and
        # switch does not activate it either.
        top5 = self.build(w)
        before = w.boot_state()
        for action in ("boot", "switch"):
            r = self.stc(w, top5, action, ok=False)
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertIn(f"cannot make {top5} the boot default: it is no generation of the system profile",
                          r.stderr)
            self.assertEqual(w.boot_state(), before)
            self.assertEqual((w.current_system(), w.boot_next()), (top3, top2))
        # In a clean environment (a systemd unit's), world.env has the settings it needs.
        w.boot_loader = "extlinux"
        r = subprocess.run([Path(top3, "bin", "switch-to-configuration"), "boot"], env={"PATH": os.environ["PATH"]},
                           cwd=w.cwd, capture_output=True, text=True, timeout=TIMEOUT)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(w.boot_state()["loader"], "extlinux")
        self.assertEqual((w.boot_default_id(), w.boot_next()), ("nixos-default", top3))

    def test_oneshot_through_bootctl(self):
        w = self.world()
        top1 = self.switch(w)
        top2 = self.build(w, health_status=503)
        # What a boot-once deployment does: the new generation gets an entry, the old one stays
        # the default (its switch-to-configuration boot), and the next boot alone starts the new.
        self.assertEqual(self.add_generation(w, top2), 2)
        self.stc(w, top1, "boot")
        self.assertEqual((w.boot_default(), w.boot_next(), list(w.boot_entries())),
                         (top1, top1, [self.SD.format(2), self.SD.format(1)]))
        r = w.bootctl("set-oneshot", self.SD.format(9))
        self.assertEqual(r.returncode, 1)
        self.assertIn(f"no boot loader entry '{self.SD.format(9)}'", r.stderr)
        self.assertIsNone(w.boot_oneshot())
        r = w.bootctl("--no-pager", "set-oneshot", self.SD.format(2))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual((w.boot_oneshot(), w.boot_next(), w.boot_default()), (self.SD.format(2), top2, top1))
        # bootctl list marks the entry the next boot starts (default) and the booted one (selected).
        r = w.bootctl("list", "--json=short")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual({e["id"]: (e["isDefault"], e["toplevel"]) for e in json.loads(r.stdout)},
                         {self.SD.format(2): (True, top2), self.SD.format(1): (False, top1)})
        r = w.bootctl("--no-pager", "list")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, rf"(?m)^ +title: NixOS \(Generation 2 .*\) \(default\)\n +id: {re.escape(self.SD.format(2))}$")

        first_id = w.boot_id()
        b = w.power_cut()
        self.assertEqual((b.entry, b.toplevel, b.how, b.up, b.oneshot), (self.SD.format(2), top2, "oneshot", True,
                                                                          self.SD.format(2)))
        self.assertNotEqual(b.boot_id, first_id)
        self.assertEqual((w.current_system(), w.booted_system(), w.health()), (top2, top2, 503))
        self.assertEqual((w.boot_oneshot(), w.boot_next(), w.booted_entry()), (None, top1, self.SD.format(2)))
        r = w.bootctl("list")
        self.assertRegex(r.stdout, r"title: NixOS \(Generation 2 [^\n]*\) \(selected\)\n")
        b = w.power_cut()
        self.assertEqual((b.entry, b.how, b.oneshot, w.current_system(), w.health()),
                         (self.SD.format(1), "default", None, top1, 200))

        # set-default (LoaderEntryDefault) overrides what the installer writes, until removed.
        r = w.bootctl("set-default", self.SD.format(2))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual((w.boot_default(), w.boot_next()), (top2, top2))
        self.stc(w, top1, "boot")
        self.assertEqual((w.boot_state()["default"], w.boot_default()), (self.SD.format(1), top2))
        r = w.bootctl("set-oneshot", "@default")
        self.assertEqual((r.returncode, w.boot_oneshot()), (0, self.SD.format(2)), r.stderr)
        self.assertEqual(w.bootctl("set-default", "").returncode, 0)
        self.assertEqual(w.bootctl("set-oneshot", "").returncode, 0)
        self.assertEqual((w.boot_default(), w.boot_oneshot(), w.boot_next()), (top1, None, top1))
        self.assertEqual(w.bootloader_calls(), [
            f"bootctl set-oneshot {self.SD.format(9)}", f"bootctl --no-pager set-oneshot {self.SD.format(2)}",
            "bootctl list --json=short", "bootctl --no-pager list", "bootctl list",
            f"bootctl set-default {self.SD.format(2)}", "bootctl set-oneshot @default",
            "bootctl set-default ", "bootctl set-oneshot "])
        r = w.bootctl("frobnicate")
        self.assertEqual(r.returncode, 1)
        self.assertIn("Unknown command verb", r.stderr)
        r = w.grub_reboot(self.SD.format(2))
        self.assertEqual(r.returncode, 1, "grub-reboot on a systemd-boot machine")
        self.assertIn("grubenv", r.stderr)

    def test_oneshot_through_grub_reboot(self):
        w = self.world(boot_loader="grub")
        top1 = self.switch(w)
        top2 = self.build(w, health_status=503)
        self.add_generation(w, top2)
        self.stc(w, top1, "boot")
        ids = list(w.boot_entries())
        self.assertEqual(ids[0], "NixOS")
        self.assertEqual([w.boot_entries()[i] for i in ids], [top1, top2, top1])
        self.assertRegex(ids[1], r"^NixOS - All configurations>NixOS - Configuration 2 \(\d{4}-\d\d-\d\d - "
                                 r"24\.05\.world \(Atticd test world\)\)$")
        self.assertEqual((w.boot_entry_id(2), w.boot_entry_id(1)), (ids[1], ids[2]))
        self.assertEqual((w.boot_default_id(), w.boot_default(), w.boot_next()), ("NixOS", top1, top1))
        grub_cfg = (w.root / "boot/grub/grub.cfg").read_text()
        self.assertIn('submenu "NixOS - All configurations"', grub_cfg)
        self.assertIn(f'menuentry "{ids[1].split(">", 1)[1]}"', grub_cfg)
        r = w.bootctl("set-oneshot", "NixOS")
        self.assertEqual(r.returncode, 1)
        self.assertIn("Not booted with a supported boot loader", r.stderr)

        r = w.grub_reboot(w.boot_entry_id(2))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual((w.boot_oneshot(), w.boot_next()), (ids[1], top2))
        b = w.power_cut()
        self.assertEqual((b.entry, b.how, b.up, w.current_system(), w.health()), (ids[1], "oneshot", True, top2, 503))
        b = w.power_cut()
        self.assertEqual((b.entry, b.how, w.current_system(), w.health()), ("NixOS", "default", top1, 200))
        # The title alone is no menu path in GRUB: nothing matches, the default boots, and the
        # setting is gone all the same (grub-reboot checks nothing, as the real one).
        title = ids[1].split(">", 1)[1]
        r = w.grub_reboot(title)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(w.boot_next(), top1)
        b = w.power_cut()
        self.assertEqual((b.entry, b.oneshot, w.boot_oneshot(), w.current_system()), ("NixOS", title, None, top1))
        # By number: 1>0 is the first entry of the submenu, the newest generation.
        self.assertEqual(w.grub_reboot("1>0").returncode, 0)
        self.assertEqual(w.power_cut().toplevel, top2)
        r = w.grub_reboot()
        self.assertEqual(r.returncode, 1)
        self.assertIn("Entry not specified.", r.stderr)
        self.assertEqual(w.bootloader_calls(), ["bootctl set-oneshot NixOS", f"grub-reboot {ids[1]}",
                                                f"grub-reboot {title}", "grub-reboot 1>0", "grub-reboot"])

    def test_extlinux_has_no_oneshot(self):
        w = self.world(boot_loader="extlinux")
        top1, top2 = self.switch(w), self.switch(w, health_status=503)
        self.assertEqual(w.boot_entries(), {"nixos-default": top2, "nixos-2-default": top2, "nixos-1-default": top1})
        self.assertEqual((w.boot_default_id(), w.boot_entry_id(1)), ("nixos-default", "nixos-1-default"))
        self.assertIn("DEFAULT nixos-default\n", (w.root / "boot/extlinux/extlinux.conf").read_text())
        for r in (w.bootctl("set-oneshot", "nixos-1-default"), w.grub_reboot("nixos-1-default")):
            self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIsNone(w.boot_oneshot())
        b = w.power_cut()
        self.assertEqual((b.entry, b.toplevel, w.health()), ("nixos-default", top2, 503))

    def test_panic_at_boot(self):
        w = self.world()
        top1 = self.switch(w)
        top2 = self.build(w, boot_panic=True)
        self.add_generation(w, top2)
        self.stc(w, top1, "boot")
        self.assertEqual(w.bootctl("set-oneshot", self.SD.format(2)).returncode, 0)
        b = w.power_cut()
        self.assertEqual((b.entry, b.toplevel, b.up, b.activation_exit), (self.SD.format(2), top2, False, None))
        self.assertEqual((w.current_system(), w.booted_system(), w.health(), w.service_pids()), (None, None, None, []))
        self.assertEqual(w.boot_next(), top1, "the one-shot entry was used")
        b = w.power_cut()
        self.assertEqual((b.entry, b.up, b.activation_exit, w.current_system(), w.health()),
                         (self.SD.format(1), True, 0, top1, 200))
        # It activates all right; it is the default that panics at every boot (no boot counting).
        self.stc(w, top2, "switch")
        self.assertEqual((w.current_system(), w.health(), w.boot_next()), (top2, 200, top2))
        self.assertEqual([w.power_cut().up for _ in range(2)], [False, False])
        self.assertEqual([(x["entry"], x["up"]) for x in w.boots()],
                         [(self.SD.format(2), False), (self.SD.format(1), True), (self.SD.format(2), False),
                          (self.SD.format(2), False)])
        self.assertEqual(len({x["boot_id"] for x in w.boots()}), 4)

    def test_boot_counting(self):
        w = self.world(boot_counting=2)
        top1 = self.switch(w)
        self.assertEqual(w.boot_tries(), {self.SD.format(1): (2, 0)})
        self.assertEqual(os.listdir(w.root / "boot/loader/entries"), ["nixos-generation-1+2.conf"])
        b = w.power_cut()
        self.assertEqual((b.entry, b.up, b.tries), (self.SD.format(1), True, {"left": 1, "done": 1}))
        self.assertEqual(w.bless_boot("status").stdout, "indeterminate\n")
        r = w.bless_boot("good")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("Marked boot as 'good'", r.stderr)
        self.assertEqual((w.boot_tries(), w.bless_boot("status").stdout), ({}, "good\n"))

        # A generation that panics at boot: two tries, then the loader falls back.
        top2 = self.switch(w, boot_panic=True)
        self.assertEqual(w.boot_tries(), {self.SD.format(2): (2, 0)}, "the blessed entry stays blessed")
        self.assertEqual([(b.entry, b.up, b.tries) for b in (w.power_cut(), w.power_cut())],
                         [(self.SD.format(2), False, {"left": 1, "done": 1}),
                          (self.SD.format(2), False, {"left": 0, "done": 2})])
        self.assertEqual(w.boot_next(), top1)
        b = w.power_cut()
        self.assertEqual((b.entry, b.how, b.up, w.current_system(), w.health()),
                         (self.SD.format(1), "fallback", True, top1, 200))
        self.assertEqual((w.boot_default_id(), w.boot_tries()), (self.SD.format(2), {self.SD.format(2): (0, 2)}))
        self.assertEqual(sorted(os.listdir(w.root / "boot/loader/entries")),
                         ["nixos-generation-1.conf", "nixos-generation-2+0-2.conf"])
        r = w.bootctl("list")
        self.assertLess(r.stdout.index(f"id: {self.SD.format(1)}"), r.stdout.index(f"id: {self.SD.format(2)}"),
                        "an entry without tries left is sorted last")
        self.assertIn("tries: 0 left; 2 done", r.stdout)
        self.assertEqual(w.power_cut().entry, self.SD.format(1), "the blessed entry boots again")
        r = w.bless_boot("good")
        self.assertEqual(r.returncode, 1)
        self.assertIn("Not booted with boot counting in effect.", r.stderr)
        self.assertEqual(w.bless_boot("status").stdout, "clean\n")

        # One that comes up but is marked bad (its checks failed): the next boot falls back.
        top3 = self.switch(w)
        b = w.power_cut()
        self.assertEqual((b.entry, b.toplevel, b.up, b.tries), (self.SD.format(3), top3, True, {"left": 1, "done": 1}))
        self.assertEqual(w.bless_boot("bad").returncode, 0)
        self.assertEqual((w.boot_tries()[self.SD.format(3)], w.bless_boot("status").stdout), ((0, 1), "bad\n"))
        self.assertEqual(w.boot_next(), top1)
        self.assertEqual(w.power_cut().how, "fallback")
        self.assertEqual(w.bootloader_calls(), [
            "systemd-bless-boot status", "systemd-bless-boot good", "systemd-bless-boot status", "bootctl list",
            "systemd-bless-boot good", "systemd-bless-boot status", "systemd-bless-boot bad",
            "systemd-bless-boot status"])
        # Boot counting is systemd-boot's.
        w.boot_loader = "grub"
        r = self.stc(w, top1, "boot", ok=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("boot counting (WORLD_BOOT_COUNTING=2) is systemd-boot's", r.stderr)
        self.assertEqual(w.boot_state()["loader"], "systemd-boot")

    def test_power_cut_and_reboot_stop_everything(self):
        w = self.world()
        with self.assertRaises(bootloader.Fail):
            w.power_cut()  # nothing installed a boot loader: nothing to boot
        first_id = (w.boot_id_path.read_text())
        self.assertRegex(first_id, r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}\n$")
        top1 = self.switch(w)
        top2 = self.build(w)
        # A slow activation, and any other process of the machine.
        w.activation_seconds = 60
        stc = w.popen([Path(top2, "bin", "switch-to-configuration"), "test"])
        self.assertTrue(w.wait_for(lambda: w.activation_spans()[-1]["toplevel"] == top2, timeout=20))
        other = w.popen(["sleep", "300"])
        old_service = w.service_pids()
        w.activation_seconds = 0
        b = w.power_cut()
        self.assertEqual(stc.wait(timeout=10), -signal.SIGKILL)
        self.assertEqual(other.wait(timeout=10), -signal.SIGKILL)
        stc.communicate()
        other.communicate()
        self.assertEqual((b.entry, b.toplevel, b.up, b.activation_exit), (self.SD.format(1), top1, True, 0))
        self.assertNotEqual(w.boot_id(), first_id.strip())
        self.assertEqual(w.boot_id(), b.boot_id)
        self.assertFalse(any(pid_alive(p) for p in old_service))
        self.assertEqual(len(w.service_pids()), 1)
        self.assertEqual((w.current_system(), w.health()), (top1, 200))
        self.assertEqual(w.activation_pids(), [])
        self.assertFalse((w.root / "run" / "detached-activation").exists(), "run/ is a tmpfs: empty at boot")

        # reboot: SIGTERM first, and time to end.
        ready, termed = w.tmp / "ready", w.tmp / "termed"
        prog = (f"import signal, sys, time\n"
                f"signal.signal(signal.SIGTERM, lambda *a: (open({str(termed)!r}, 'w').write('TERM'), sys.exit(0)))\n"
                f"open({str(ready)!r}, 'w').close()\ntime.sleep(300)\n")
        p = w.popen([sys.executable, "-c", prog])
        self.assertTrue(w.wait_for(ready.exists, timeout=10))
        b2 = w.reboot(grace=10)
        self.assertEqual(p.wait(timeout=10), 0)
        p.communicate()
        self.assertEqual(termed.read_text(), "TERM")
        self.assertNotEqual(b2.boot_id, b.boot_id)
        self.assertEqual((w.health(), [x["boot_id"] for x in w.boots()]), (200, [b.boot_id, b2.boot_id]))
        for tool in (BOOTCTL, GRUB_REBOOT, BLESS_BOOT):
            self.assertTrue(os.access(tool, os.X_OK), tool)


class WorldTest(unittest.TestCase):
    def test_private_nix_and_cleanup(self):
        w = World()
        try:
            self.assertTrue(str(w.store_dir).startswith(str(w.tmp)))
            sha = w.commit()
            r = w.rebuild("switch", "--flake", f"{w.deploy_ref(sha)}#{HOST}", timeout=TIMEOUT)
            self.assertEqual(r.returncode, 0, r.stderr)
            top = w.profile_target()
            self.assertTrue(top.startswith(str(w.store_dir) + "/"), top)
            self.assertFalse(os.path.exists(f"/nix/store/{os.path.basename(top)}"))
            # The store really is nix's: the path is valid in the private database.
            r = w.run(["nix-store", "--verify-path", top])
            self.assertEqual(r.returncode, 0, r.stderr)
            pids = w.service_pids()
            self.assertEqual(len(pids), 1)
        finally:
            w.close()
        self.assertFalse(w.tmp.exists(), "close() must remove the read-only store too")
        self.assertFalse(any(pid_alive(p) for p in pids), "close() must stop the service")

    def test_config_yaml(self):
        with World() as w:
            w.make_repo()
            p = w.write_config(repository={"ref": "v1"}, health={"settle": 0, "checks": [
                {"name": "web", "http": {"url": f"http://127.0.0.1:{w.port}/health", "status": 200}}]})
            text = p.read_text()
            self.assertIn(f'state-dir: "{w.state_dir}"\n', text)
            self.assertIn('  rebuild-command: "', text)
            self.assertIn(f'  url: "{w.remote_url}"\n  ref: "v1"\n', text)
            self.assertIn('  checks:\n    - name: "web"\n      http:\n        url: ', text)
            self.assertNotIn("images", text)
            self.assertEqual(to_yaml({"a": [], "b": {}, "c": None, "d": [1, "x"], "e": True}),
                             'a: []\nb: {}\nd: [1, "x"]\ne: true\n')
            self.assertEqual(flake_ref("/r.git", "0" * 40),
                             f"git+file:///r.git?ref={DEPLOY_REF}&rev={'0' * 40}")

    def test_settings_are_environment(self):
        with World(rebuild_flavor="bash", detached_activation=True, activation_seconds=0.25,
                   profile_gap=1, service_delay=1.5, eval_cost=7, boot_loader="grub", boot_counting=3) as w:
            self.assertEqual({k: w.env[k] for k in w.env if k.startswith("WORLD_") and k not in (
                "WORLD_ROOT", "WORLD_PROFILE", "WORLD_NIX_LOG", "WORLD_REAL_NIX_DIR", "WORLD_PYTHON")},
                {"WORLD_REBUILD_FLAVOR": "bash", "WORLD_DETACHED_ACTIVATION": "1",
                 "WORLD_ACTIVATION_SECONDS": "0.25", "WORLD_PROFILE_GAP": "1",
                 "WORLD_SERVICE_DELAY": "1.5", "WORLD_BOOT_LOADER": "grub", "WORLD_BOOT_COUNTING": "3"})
            w.rebuild_flavor, w.detached_activation, w.activation_seconds = "ng", False, 0
            self.assertEqual((w.env["WORLD_REBUILD_FLAVOR"], w.env["WORLD_DETACHED_ACTIVATION"],
                              w.env["WORLD_ACTIVATION_SECONDS"]), ("ng", "0", "0"))
            w.boot_loader, w.boot_counting = "extlinux", 0
            # world.env: what a switch-to-configuration in a clean environment reads.
            self.assertEqual((w.root / "world.env").read_text(),
                             f"WORLD_ACTIVATION_SECONDS=0\nWORLD_BOOT_COUNTING=0\nWORLD_BOOT_LOADER=extlinux\n"
                             f"WORLD_PROFILE={w.profile}\nWORLD_SERVICE_DELAY=1.5\n")
            with self.assertRaises(ValueError):
                w.rebuild_flavor = "perl"
            with self.assertRaises(ValueError):
                w.profile_gap = -1
            with self.assertRaises(ValueError):
                w.boot_loader = "lilo"
            with self.assertRaises(ValueError):
                w.boot_counting = -1
            self.assertEqual(w.stc_lock_path, w.root / "run" / "nixos" / "switch-to-configuration.lock")
            w.commit()
            self.assertEqual(json.loads((w.repo.work / "world.json").read_text())["eval_cost"], 7)


if __name__ == "__main__":
    # These test the test machinery, not the agent: nothing here for sanitizers to see.
    if os.environ.get("ATTICD_SANITIZE"):
        print("skipped under sanitizers (tools/test --sanitize): no agent code runs here", file=sys.stderr)
        sys.exit(77)
    unittest.main()
