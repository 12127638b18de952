#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""How a revision becomes the running system (issue 15): one evaluation per new revision and
none where nothing new is built; the activation of exactly what was built; recovery after a
kill at many points (a slow activation that stops the service before it starts the new one,
a gap between the profile and switch-to-configuration) that never records what does not run,
never blocks a healthy revision for one interruption and never leaves the system unhealthy;
rollbacks that fail and say so every time; activations that outlive the agent (the detached
switch-to-configuration of nixos-rebuild-ng) waited for, never two at once; SIGTERM ending a
run at a safe point; health seen as soon as it holds.

Real parts: the agent binary, real nix with a private store and real profile generations, real
git, the test service on loopback, and the world's nixos-rebuild stand-in (tests/world)."""

import json
import os
import signal
import subprocess
import sys
import time
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from world import World  # noqa: E402
from held import PROFILE_BACK, HeldNix, pid_gone  # noqa: E402
from registry import Registry, make_cosign_keypair, push_image, sign_classic  # noqa: E402


def health_conf(port, timeout=5, settle=0):
    return {"settle": settle, "timeout": timeout,
            "checks": [{"name": "web", "http": {"url": f"http://127.0.0.1:{port}/health", "status": 200}}]}


class Base(unittest.TestCase):
    world_kw: dict = {}

    def setUp(self):
        self.w = World.for_test(self, **self.world_kw)
        self.w.make_repo()

    def configure(self, system=None, **kw):
        w = self.w
        sysconf = {"activation-lock": str(w.stc_lock_path)}
        sysconf.update(system or {})
        kw.setdefault("health", health_conf(w.port))
        return w.write_config(system=sysconf, **kw)

    def status(self):
        r = self.w.agent("status", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    def state(self):
        p = self.w.state_dir / "state.json"
        return json.loads(p.read_text()) if p.exists() else None

    def phase(self):
        s = self.state()
        return s["phase"] if s else None

    def run_agent(self, *args, expect=None, timeout=120):
        r = self.w.agent(*args, timeout=timeout)
        if expect is not None:
            self.assertEqual(r.returncode, expect, f"{args}:\nstdout:\n{r.stdout}\nstderr:\n{r.stderr[-4000:]}")
        return r

    def start_agent(self, *args):
        w = self.w
        return subprocess.Popen([str(w.agent_bin()), "-c", str(w.config_path), *args], env=w.env, cwd=w.cwd,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def kill_when(self, p, predicate, sig=signal.SIGKILL, timeout=60):
        """Sends sig to the agent once predicate() holds (polled every 10 ms). Returns whether it
        held before the agent ended by itself."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                p.send_signal(sig)
                return True
            if p.poll() is not None:
                return False
            time.sleep(0.01)
        p.kill()
        return False

    def assert_truthful(self):
        """The record names what runs, and what runs is healthy."""
        w = self.w
        s = self.status()
        self.assertEqual(s["phase"], "idle", s["pending"])
        self.assertIsNone(s["unhealthy"])
        self.assertEqual(s["generation"], w.current_system(), "the record does not name what runs")
        self.assertEqual(w.profile_target(), w.current_system())
        self.assertEqual(w.boot_next(), w.current_system(), "the boot default is not what runs")
        self.assertEqual(w.health(), 200)
        self.assertEqual(w.service_marker(), w.marker_of(w.current_system()))
        self.assertEqual(w.activation_conflicts(), [], "two activations overlapped")
        return s


class EvaluationTest(Base):
    """Every evaluation of the client flake is counted (tests/world/README.md: a nix call with
    a flake installable)."""

    def test_evaluations_of_each_command(self):
        w = self.w
        reg = Registry(w.tmp)
        self.addCleanup(reg.stop)
        key, pub = make_cosign_keypair(w.tmp, "ecdsa-p256", name="release")
        digest = push_image(reg, "app/web", "1.0")
        sign_classic(reg, "app/web", digest, key)
        ref = f"{reg.host}/app/web:1.0"
        images = {"keys": [str(pub)], "insecure-registries": [reg.host]}

        # A new revision by pull: one evaluation, one build of what it gave, one activation.
        r1 = w.commit(images={"web": ref})
        self.configure(images=images)
        w.reset_call_logs()
        self.run_agent("pull", expect=0)
        self.assertEqual(w.evaluations(), 1, w.evaluation_calls())
        s = self.assert_truthful()
        self.assertEqual(s["revision"], r1)
        self.assertEqual(w.activations(), [f"test {s['generation']} 0", f"boot {s['generation']} 0"])
        self.assertEqual(w.rebuild_calls(), [])
        self.assertEqual([i["digest"] for i in s["history"][-1]["images"]], [digest])

        # Nothing new: none.
        for args in (["pull"], ["verify-images"], ["--json", "verify-images"], ["check"], ["status"],
                     ["confirm"], ["verify-images", "--rev", r1], ["verify-images", "--rev", "main"]):
            with self.subTest(command=args):
                w.reset_call_logs()
                self.run_agent(*args, expect=0)
                self.assertEqual(w.evaluations(), 0, w.evaluation_calls())
        r = self.run_agent("--json", "verify-images", expect=0)
        self.assertEqual(json.loads(r.stdout)["images"][0]["digest"], digest)

        # The deployed revision's images are checked as deployed: the recorded digest, even
        # when the tag has moved since (what runs is what was verified).
        moved = push_image(reg, "app/web", "1.0", seed="moved")
        self.assertNotEqual(moved, digest)
        w.reset_call_logs()
        r = self.run_agent("--json", "verify-images", expect=0)
        self.assertEqual(json.loads(r.stdout)["images"][0]["digest"], digest)
        self.assertEqual(w.evaluations(), 0)

        # Another revision: one evaluation (it has no record).
        r2 = w.commit()
        w.git("-C", str(w.state_dir / "repo.git"), "fetch", "-q", w.repo.remote_url, "+refs/heads/*:refs/heads/*")
        w.reset_call_logs()
        self.run_agent("verify-images", "--rev", r2, expect=0)
        self.assertEqual(w.evaluations(), 1)

        # rollback: none.
        w.reset_call_logs()
        self.run_agent("rollback", expect=0)
        self.assertEqual(w.evaluations(), 0)

    def test_one_evaluation_with_either_nixos_rebuild(self):
        """activation: nixos-rebuild with a nixos-rebuild-ng that has --store-path: still one
        evaluation (no re-exec, nothing evaluated by nixos-rebuild)."""
        w = self.w
        w.rebuild_flavor = "ng"
        rev = w.commit()
        self.configure(system={"activation": "nixos-rebuild"})
        w.reset_call_logs()
        self.run_agent("pull", expect=0)
        s = self.assert_truthful()
        self.assertEqual(s["revision"], rev)
        self.assertEqual(w.evaluations(), 1, w.evaluation_calls())
        self.assertEqual(w.rebuild_calls(), [f"nixos-rebuild test --store-path {s['generation']} --no-reexec",
                                             f"nixos-rebuild boot --store-path {s['generation']} --no-reexec"])


class FailedRollbackTest(Base):
    """A revision that fails its checks, and a rollback that cannot be done (the profile
    operation fails): exit 5, and 5 again on every pull and check until a person ends it."""

    def test_failed_rollback_exits_5_until_resolved(self):
        w = self.w
        self.configure()
        good = w.commit()
        self.run_agent("pull", expect=0)
        good_gen = self.assert_truthful()["generation"]

        broken = HeldNix(w, PROFILE_BACK, name="broken", seconds=0, every=True, fail=True)
        self.configure(system={"nix-command": str(broken.path)})
        bad = w.commit(health_status=500)
        r = self.run_agent("pull", expect=5)
        self.assertIn("needs a person", r.stderr)
        s = self.status()
        self.assertEqual(s["unhealthy"]["revision"], bad)
        self.assertEqual(s["unhealthy"]["generation"], w.current_system())
        self.assertNotEqual(w.current_system(), good_gen)
        self.assertEqual(s["revision"], good)
        self.assertEqual(s["history"][-1]["result"], "rollback-failed")
        table = self.run_agent("status", expect=0).stdout
        self.assertIn("UNHEALTHY", table)

        for args in (["pull"], ["pull"], ["check"], ["pull", "--retry"]):
            with self.subTest(args=args):
                r = self.run_agent(*args, expect=5)
                self.assertIn("rollback failed", r.stderr)

        # The tooling repaired, a rollback by hand ends it.
        self.configure()
        self.run_agent("rollback", expect=0)
        s = self.assert_truthful()
        self.assertEqual(s["generation"], good_gen)
        self.run_agent("pull", expect=0)
        self.run_agent("check", expect=0)

    def test_rollback_target_unhealthy_too(self):
        """Rolled back to a generation that is not healthy either (its service no longer
        answers): exit 5, not 1."""
        w = self.w
        self.configure()
        w.commit()
        self.run_agent("pull", expect=0)
        good = self.status()["generation"]
        # from now on the known-good generation's service is not what the check asks for
        self.configure(health={"settle": 0, "timeout": 2, "checks": [
            {"name": "never", "command": ["false"]}]})
        bad = w.commit()
        r = self.run_agent("pull", expect=5)
        self.assertIn("not healthy either", r.stderr)
        # The second unhealthy event is the rollback target's, and names it.
        self.assertIn(f"Generation {good} (the rollback's target) is not healthy", r.stderr)
        s = self.status()
        # The record names the revision that failed and what runs now: the rollback's target.
        self.assertEqual((s["unhealthy"]["revision"], s["unhealthy"]["generation"]), (bad, good))
        self.assertEqual(w.current_system(), good)
        self.assertEqual((s["history"][-1]["revision"], s["history"][-1]["result"]), (bad, "rollback-failed"))
        self.run_agent("pull", expect=5)

    def test_failed_rollback_activation_is_no_rollback(self):
        """The rollback's own activation fails, either its profile operation (nix profile
        rollback) or switch-to-configuration switch of the target (its boot loader installation
        refuses, before it activates anything), while the failed revision's service answers
        (it failed its activation, not its health): exit 5, rollback-failed, the record names
        the failed generation, which runs. Went on to the health checks, a failed rollback
        activation would pass them (what runs answers) and be recorded as a rollback (exit 1)."""
        w = self.w
        self.configure()
        good = w.commit()
        self.run_agent("pull", expect=0)
        good_gen = self.assert_truthful()["generation"]
        broken = HeldNix(w, PROFILE_BACK, name="broken", seconds=0, every=True, fail=True)

        for how in ("nix profile rollback", "switch-to-configuration"):
            with self.subTest(how=how):
                if how == "nix profile rollback":
                    self.configure(system={"nix-command": str(broken.path)})
                else:
                    # Boot counting is systemd-boot's: with grub, the installer exits 1, and
                    # switch-to-configuration switch with it (tests/world/README.md). The new
                    # generation's activation (test) installs no boot loader; the rollback's
                    # (switch) does.
                    w.boot_loader, w.boot_counting = "grub", 2
                bad = w.commit(activation_exit=3)
                r = self.run_agent("pull", expect=5)
                bad_gen = w.current_system()
                self.assertNotEqual(bad_gen, good_gen)
                self.assertEqual(w.service_marker(), w.marker_of(bad_gen))
                self.assertEqual(w.health(), 200, "the failed generation's service does not answer")
                self.assertIn(f"the rollback to {good_gen} failed too", r.stderr)
                self.assertIn(f"the system runs {bad_gen}", r.stderr)
                self.assertIn("needs a person", r.stderr)
                self.assertNotIn("healthy again", r.stderr)
                if how == "switch-to-configuration":
                    self.assertIn("Failed to install bootloader", r.stderr)
                s = self.status()
                self.assertEqual(s["phase"], "idle")
                self.assertEqual(s["history"][-1]["result"], "rollback-failed")
                self.assertEqual(s["history"][-1]["revision"], bad)
                self.assertEqual(s["unhealthy"]["revision"], bad)
                self.assertEqual(s["unhealthy"]["generation"], bad_gen)
                self.assertEqual(s["revision"], good)
                self.assertIn("UNHEALTHY", self.run_agent("status", expect=0).stdout)
                r = self.run_agent("pull", expect=5)
                self.assertIn("rollback failed", r.stderr)

                # Repaired, a rollback by hand ends it.
                if how == "nix profile rollback":
                    self.configure()
                else:
                    w.boot_loader, w.boot_counting = "systemd-boot", 0
                self.run_agent("rollback", expect=0)
                self.assertEqual(self.assert_truthful()["generation"], good_gen)


class DetachedActivationTest(Base):
    world_kw = {"detached_activation": True, "activation_seconds": 3, "rebuild_flavor": "ng"}

    def test_next_run_waits_for_a_running_activation(self):
        """The agent is killed while nixos-rebuild-ng's detached switch-to-configuration runs;
        the next run starts at once, finds it running, waits for it to end, activates again
        and decides: never two activations at once."""
        w = self.w
        self.configure(system={"activation": "nixos-rebuild"})
        w.commit()
        self.run_agent("pull", expect=0)
        rev = w.commit()
        p = self.start_agent("pull")
        self.assertTrue(self.kill_when(p, lambda: any(sp["end"] is None for sp in w.activation_spans())))
        p.wait()
        running = [sp for sp in w.activation_spans() if sp["end"] is None]
        self.assertEqual(len(running), 1)
        self.assertFalse(pid_gone(running[0]["pid"]), "the detached activation died with the agent")

        r = self.run_agent("pull", expect=0)
        self.assertIn("An activation runs", r.stderr)
        self.assertIn("activating it again", r.stderr)
        s = self.assert_truthful()
        self.assertEqual(s["revision"], rev)
        spans = w.activation_spans()
        for a, b in zip(spans, spans[1:]):
            self.assertLessEqual(a["end"], b["begin"], f"activations overlapped: {a} {b}")
        self.assertEqual(w.activation_conflicts(), [])

    def test_a_hand_made_activation_is_waited_for(self):
        """An activation started by hand (nixos-rebuild switch) is running when the agent
        wants to activate: the agent waits, then activates its own."""
        w = self.w
        self.configure()
        w.commit()
        self.run_agent("pull", expect=0)
        gen = self.status()["generation"]
        hand = subprocess.Popen([f"{gen}/bin/switch-to-configuration", "test"], env=w.env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addCleanup(hand.wait)
        self.assertTrue(w.wait_for(lambda: any(sp["end"] is None for sp in w.activation_spans())))
        rev = w.commit()
        r = self.run_agent("pull", expect=0)
        self.assertIn("An activation runs", r.stderr)
        self.assertEqual(self.assert_truthful()["revision"], rev)


class StopTest(Base):
    """SIGTERM (systemctl stop) ends a run at its next safe point: exit 143, the run recorded
    as interrupted, the children stopped; an activation the agent started runs to its end."""

    def test_sigterm_during_build(self):
        w = self.w
        from held import BUILD
        held = HeldNix(w, BUILD)
        self.configure(system={"nix-command": str(held.path)})
        rev = w.commit()
        p = self.start_agent("pull")
        self.assertTrue(self.kill_when(p, held.held, sig=signal.SIGTERM))
        self.assertEqual(p.wait(timeout=30), 143, p.stderr.read())
        self.assertTrue(w.wait_for(lambda: pid_gone(held.pid()), timeout=10), "the build went on")
        s = self.status()
        self.assertEqual(s["phase"], "idle")
        self.assertEqual((s["history"][-1]["revision"], s["history"][-1]["result"]), (rev, "interrupted"))
        self.assertEqual(s["last-run"]["result"], "interrupted")
        self.assertIsNone(w.current_system())
        self.configure()
        self.run_agent("pull", expect=0)
        self.assertEqual(self.assert_truthful()["revision"], rev)

    def test_sigterm_during_activation_lets_it_finish(self):
        w = self.w
        w.activation_seconds = 2
        self.configure()
        w.commit()
        self.run_agent("pull", expect=0)
        rev = w.commit()
        p = self.start_agent("pull")
        self.assertTrue(self.kill_when(p, lambda: any(sp["end"] is None for sp in w.activation_spans()),
                                       sig=signal.SIGTERM))
        err = p.communicate(timeout=60)[1]
        self.assertEqual(p.returncode, 143, err)
        spans = w.activation_spans()
        self.assertIsNotNone(spans[-1]["end"], "the activation was cut off")
        self.assertEqual(spans[-1]["exit"], 0)
        self.assertEqual(self.phase(), "checking", "activated, the health checks owed")
        self.assertEqual(self.status()["last-run"]["result"], "interrupted")
        w.activation_seconds = 0
        r = self.run_agent("pull", expect=0)
        self.assertIn("checking it again", r.stderr)
        self.assertEqual(self.assert_truthful()["revision"], rev)

    def test_sigterm_during_health_checks(self):
        w = self.w
        self.configure(health=health_conf(w.port, settle=30))
        rev = w.commit()
        p = self.start_agent("pull")
        self.assertTrue(self.kill_when(p, lambda: self.phase() == "checking", sig=signal.SIGTERM))
        self.assertEqual(p.wait(timeout=10), 143, p.stderr.read())
        self.assertEqual(self.phase(), "checking")
        self.configure()
        self.run_agent("pull", expect=0)
        self.assertEqual(self.assert_truthful()["revision"], rev)


class HealthTimingTest(Base):
    world_kw = {"service_delay": 0.3}

    def test_service_back_0_3_s_after_activation_is_seen_at_once(self):
        """The service answers 0.3 s after switch-to-configuration returned; with health.interval
        2 s the rounds back off from 100 ms, so the round that passes is the third or fourth
        (rounds at 0, 0.1, 0.3, 0.7 s), not one 2 s later."""
        w = self.w
        self.configure(health={"settle": 0, "timeout": 10, "interval": 2, "checks": [
            {"name": "web", "http": {"url": f"http://127.0.0.1:{w.port}/health", "status": 200}}]})
        w.commit()
        r = self.run_agent("pull", expect=0)
        self.assert_truthful()
        import re
        m = re.search(r"passed in round (\d+), ([0-9.]+) s after the first", r.stderr)
        self.assertIsNotNone(m, r.stderr[-2000:])
        self.assertIn(int(m.group(1)), (3, 4), r.stderr[-2000:])
        print(f"\nhealthy {m.group(2)} s after the first round (round {m.group(1)})", file=sys.stderr)


class GcRootsTest(Base):
    """The known-good generation and a pending one are garbage-collector roots of the agent's
    (below state-dir): a collection that deletes every old profile generation, as
    `nix-collect-garbage -d` does, cannot take what a rollback needs."""

    def gc_old_generations(self):
        w = self.w
        r = w.run(["nix-env", "-p", str(w.profile), "--delete-generations", "old"])
        self.assertEqual(r.returncode, 0, r.stderr)
        r = w.run(["nix-store", "--gc"])
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_rollback_after_a_collection_while_a_trial_boot_waits(self):
        self.collect_while_a_boot_deployment_waits(trial=True)

    def test_rollback_after_a_collection_while_a_boot_deployment_waits(self):
        """Without a trial boot (system.trial-boot false, or a loader without a one-shot
        entry), the profile and the default move to the new generation: the collection takes
        the known-good generation's link, and only the agent's root keeps it."""
        self.collect_while_a_boot_deployment_waits(trial=False)

    def collect_while_a_boot_deployment_waits(self, trial):
        w = self.w
        self.configure()
        w.commit()
        self.run_agent("pull", expect=0)
        good_gen = self.status()["generation"]
        roots = w.state_dir / "gcroots"
        self.assertEqual(os.readlink(roots / "known-good"), good_gen)
        self.assertFalse((roots / "pending").exists())

        reboots = w.tmp / "reboots"
        self.configure(system={"action": "boot", "trial-boot": trial,
                               "reboot-command": ["sh", "-c", f"echo reboot >> {reboots}"]})
        bad = w.commit(health_status=500)
        self.run_agent("pull", expect=0)
        s = self.status()
        self.assertEqual(s["phase"], "pending-reboot")
        new_gen = s["pending"]["generation"]
        self.assertEqual(os.readlink(roots / "pending"), new_gen)

        # A trial boot keeps the profile on the known-good generation: the collection takes the
        # new generation's profile link. Without one, it takes the known-good one's.
        self.assertEqual(w.profile_target(), good_gen if trial else new_gen)
        self.gc_old_generations()
        self.assertNotIn(new_gen if trial else good_gen, w.profile_generations().values(), "the old link stays")
        self.assertTrue(Path(new_gen).exists(), "the pending generation was collected")
        self.assertTrue(Path(good_gen).exists(), "the known-good generation was collected")

        # The reboot into the new generation (a trial's entry stays until the next
        # installation), which is unhealthy: confirm rolls back.
        b = w.reboot()
        self.assertEqual((b.toplevel, b.how), (new_gen, "oneshot" if trial else "default"))
        r = self.run_agent("confirm", expect=1)
        self.assertIn("rolled back", r.stderr)
        s = self.status()
        self.assertEqual((s["history"][-1]["revision"], s["history"][-1]["result"]), (bad, "rolled-back"))
        self.assertEqual(w.profile_target(), good_gen)
        self.assertEqual(w.boot_next(), good_gen)
        self.assertEqual(w.boot_default(), good_gen)
        self.assertEqual(os.readlink(roots / "known-good"), good_gen)
        self.assertFalse((roots / "pending").exists(), "the root of the failed generation stays")
        self.assertEqual(w.reboot().toplevel, good_gen)
        self.assertEqual(w.health(), 200)

    def test_roots_follow_the_known_good_generation(self):
        w = self.w
        self.configure()
        w.commit()
        self.run_agent("pull", expect=0)
        first = self.status()["generation"]
        w.commit()
        self.run_agent("pull", expect=0)
        second = self.status()["generation"]
        roots = w.state_dir / "gcroots"
        self.assertEqual(os.readlink(roots / "known-good"), second)
        self.assertEqual(sorted(p.name for p in roots.iterdir()), ["known-good"])
        self.gc_old_generations()
        self.assertFalse(Path(first).exists(), "a generation nothing needs is not kept")
        self.assertTrue(Path(second).exists())


class ToolsTest(Base):
    def test_rollback_needs_only_the_nix_command(self):
        """nix-command is a wrapper in a directory of its own (no nix-env beside it): deploying
        and rolling back go through it alone."""
        w = self.w
        wrapper = HeldNix(w, "*never-matches*", name="wrapper")
        self.configure(system={"nix-command": str(wrapper.path)})
        good = w.commit()
        self.run_agent("pull", expect=0)
        w.commit(health_status=500)
        r = self.run_agent("pull", expect=1)
        self.assertIn("rolled back", r.stderr)
        s = self.assert_truthful()
        self.assertEqual(s["revision"], good)
        self.run_agent("rollback", expect=0)

    def test_derivation_collected_before_the_build_is_not_the_revisions_fault(self):
        """A garbage collection between the evaluation and the build deletes the derivation
        (nothing roots it yet): the build fails, but that is the machine's doing. Exit 6, the
        revision not remembered as failed, and the next run evaluates again and deploys."""
        import shutil
        w = self.w
        real = shutil.which("nix", path=w.env["PATH"])
        done = w.tmp / "collected"
        gc = w.tmp / "gc-nix"
        gc.write_text(f"""#!/bin/sh
case " $* " in
*" build --json --out-link "*)
  if [ ! -e "{done}" ]; then
    : > "{done}"
    for a in "$@"; do case "$a" in *.drv*) nix-store --delete "${{a%^*}}" >&2 || exit 99 ;; esac; done
  fi ;;
esac
exec "{real}" "$@"
""")
        gc.chmod(0o755)
        self.configure(system={"nix-command": str(gc)})
        rev = w.commit()
        r = self.run_agent("pull", expect=6)
        self.assertIn("collected before it was built", r.stderr)
        s = self.status()
        self.assertEqual((s["history"][-1]["revision"], s["history"][-1]["result"]), (rev, "interrupted"))
        self.assertIsNone(s["failed-revision"])
        w.reset_call_logs()
        self.run_agent("pull", expect=0)
        self.assertEqual(w.evaluations(), 1)
        self.assertEqual(self.assert_truthful()["revision"], rev)

    def test_config_check_refuses_what_cannot_roll_back(self):
        w = self.w
        for system, key in (({"nix-command": str(w.tmp / "no-such-nix")}, "system.nix-command"),
                            ({"nix-command": "no-such-nix-on-path"}, "system.nix-command"),
                            ({"activation": "nixos-rebuild", "rebuild-command": str(w.tmp / "none")},
                             "system.rebuild-command"),
                            ({"action": "boot", "reboot-command": [str(w.tmp / "none")]}, "system.reboot-command")):
            with self.subTest(system=system):
                path = self.configure(system=system)
                r = self.run_agent("config", "check", str(path), expect=2)
                self.assertIn(key, r.stderr)
                w.commit()
                r = self.run_agent("pull", expect=2)
                self.assertIn(key, r.stderr)
                self.assertIsNone(self.state(), "a pull began")
        path = self.configure()
        self.run_agent("config", "check", str(path), expect=0)


if __name__ == "__main__":
    unittest.main()
