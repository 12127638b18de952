#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Proves the test world works on its own, without the agent: real nix builds in a private
store, real profile generations, the nixos-rebuild stand-in, the test service.

Run from the repository root: python3 tests/integration/test_world_selftest.py [-v]
"""

import json
import os
import signal
import subprocess
import sys
import time
import unittest
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from world import (DEPLOY_REF, EVAL_COST_1S, REBUILD_STANDIN, World, flake_ref,  # noqa: E402
                   is_evaluation, pid_alive, to_yaml)

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
                   profile_gap=1, service_delay=1.5, eval_cost=7) as w:
            self.assertEqual({k: w.env[k] for k in w.env if k.startswith("WORLD_") and k not in (
                "WORLD_ROOT", "WORLD_PROFILE", "WORLD_NIX_LOG", "WORLD_REAL_NIX_DIR")},
                {"WORLD_REBUILD_FLAVOR": "bash", "WORLD_DETACHED_ACTIVATION": "1",
                 "WORLD_ACTIVATION_SECONDS": "0.25", "WORLD_PROFILE_GAP": "1",
                 "WORLD_SERVICE_DELAY": "1.5"})
            w.rebuild_flavor, w.detached_activation, w.activation_seconds = "ng", False, 0
            self.assertEqual((w.env["WORLD_REBUILD_FLAVOR"], w.env["WORLD_DETACHED_ACTIVATION"],
                              w.env["WORLD_ACTIVATION_SECONDS"]), ("ng", "0", "0"))
            with self.assertRaises(ValueError):
                w.rebuild_flavor = "perl"
            with self.assertRaises(ValueError):
                w.profile_gap = -1
            self.assertEqual(w.stc_lock_path, w.root / "run" / "nixos" / "switch-to-configuration.lock")
            w.commit()
            self.assertEqual(json.loads((w.repo.work / "world.json").read_text())["eval_cost"], 7)


if __name__ == "__main__":
    unittest.main()
