#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Crash safety of a deployment (issue 15): SIGKILL at many points of a deployment (a slow
activation that stops the service before it starts the new one, a gap between the profile and
switch-to-configuration), each followed by the next run: 0 false records (the state names what
current-system runs), 0 healthy revisions left blocked, 0 unhealthy systems; with the agent's
own activation and with nixos-rebuild-ng's detached one (which outlives the agent and must be
waited for); and the same with a rollback that fails: exit 5 every time, and 5 again on the
next pull.

Real parts: the agent binary, real nix with a private store and real profile generations, real
git, the test service on loopback, and the world's nixos-rebuild stand-in (tests/world)."""

import os
import signal
import sys
import time
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from held import PROFILE_BACK, PROFILE_SET, HeldNix  # noqa: E402
from test_deploy import Base, health_conf  # noqa: E402


class Frozen:
    """A point that polling cannot hit (the agent goes on within milliseconds): the agent is
    stopped (SIGSTOP) once begun() holds, and the point is reached when ended() holds."""

    def __init__(self, begun, ended):
        self.begun, self.ended = begun, ended

    def reach(self, w, p):
        if not w.wait_for(lambda: self.begun() or p.poll() is not None, timeout=60, interval=0.005) \
                or p.poll() is not None:
            return False
        p.send_signal(signal.SIGSTOP)
        return bool(w.wait_for(self.ended, timeout=60))


def reach(w, p, predicate):
    """Waits until predicate (a function, or a Frozen) holds while the agent p runs."""
    if isinstance(predicate, Frozen):
        return predicate.reach(w, p)
    hit = []

    def f():
        if predicate():
            hit.append(True)
            return True
        return p.poll() is not None
    w.wait_for(f, timeout=60, interval=0.01)
    return bool(hit)


def skip_under_sanitizers(test):
    """The power cut tests: under sanitizers (tools/test --sanitize) the agent meets the same
    SIGKILLs at the same points as in KillMatrix (only the world around it differs), so they
    run in the plain pass only, which keeps CI within its time."""
    if os.environ.get("ATTICD_SANITIZE"):
        test.skipTest("under sanitizers: the agent's side is KillMatrix's; the plain pass runs it")


def sanitizer_share(points, offset):
    """Under sanitizers (tools/test --sanitize) KillMatrix takes the even points and
    KillMatrixDetached the odd ones: the agent code at each point runs under ASan/UBSan once,
    in one of the two matrices, and the plain pass runs every point in both. That keeps CI
    within its time."""
    if not os.environ.get("ATTICD_SANITIZE"):
        return points
    return points[offset::2]


class KillMatrix(Base):
    """SIGKILL at many points of a deployment, each followed by the next run (and, only if
    that one could not, the run after). 0 false records, 0 healthy revisions left blocked, 0
    unhealthy systems."""

    world_kw = {"activation_seconds": 1.5}
    system: dict = {}
    sanitizer_offset = 0

    def setUp(self):
        super().setUp()
        w = self.w
        # The profile is set 0.5 s before switch-to-configuration runs.
        self.gap = HeldNix(w, PROFILE_SET, name="gap", seconds=0.5, every=True, after=True)
        self.sysconf = {"nix-command": str(self.gap.path), **self.system}
        # settle 1 s: the health checks take long enough to be killed in
        self.configure(system=self.sysconf, health=health_conf(w.port, settle=1))
        self.t0 = 0.0
        self.good = w.commit()
        self.run_agent("pull", expect=0)
        self.good_gen = self.assert_truthful()["generation"]

    def toplevel_of_pending(self):
        s = self.state()
        return s["pending"]["generation"] if s and s["pending"] else None

    def span_of(self, toplevel, ended=False, action=None):
        """The last switch-to-configuration of toplevel (with that action) begun in this case."""
        for sp in reversed(self.w.activation_spans()):
            if sp["toplevel"] == toplevel and sp["begin"] is not None and sp["begin"] > self.t0 \
                    and action in (None, sp["action"]):
                return sp if not ended or sp["end"] is not None else None
        return None

    def points(self):
        """(name, predicate, healthy revision?) for each kill point."""
        w = self.w

        def phase_is(ph):
            return lambda: self.phase() == ph

        def after(pred, seconds):
            seen = []

            def f():
                if not seen and pred():
                    seen.append(time.monotonic())
                return bool(seen) and time.monotonic() - seen[0] >= seconds
            return f

        # The healthy generation is activated with `test`; once healthy, the profile moves and
        # `boot` makes it the boot default (system.boot-default: after-health).
        def new_profile():
            t = self.toplevel_of_pending()
            return t is not None and w.profile_target() == t and self.span_of(t, action="boot") is None

        def stc_begun(action="test"):
            t = self.toplevel_of_pending()
            return t is not None and self.span_of(t, action=action) is not None

        def stc_service_down():
            return stc_begun() and w.health(timeout=0.2) is None

        def stc_ended(action="test"):
            t = self.toplevel_of_pending()
            return t is not None and self.span_of(t, ended=True, action=action) is not None

        def rollback_stc_begun():
            return self.phase() == "rolling-back" and self.span_of(self.good_gen) is not None

        def rollback_stc_ended():
            return self.phase() == "rolling-back" and self.span_of(self.good_gen, ended=True) is not None

        def evaluating():
            return any(" eval " in c for c in w.nix_calls())

        return [
            ("evaluating", evaluating, True),
            ("building", phase_is("building"), True),
            ("activating", phase_is("activating"), True),
            ("switch-to-configuration test began", stc_begun, True),
            ("switch-to-configuration test, services stopped", stc_service_down, True),
            ("switch-to-configuration test, 1 s in", after(stc_begun, 1.0), True),
            ("switch-to-configuration test ended", stc_ended, True),
            ("checking", phase_is("checking"), True),
            ("checking, 0.2 s in", after(phase_is("checking"), 0.2), True),
            ("committing", phase_is("committing"), True),
            ("between the profile and switch-to-configuration boot", new_profile, True),
            ("switch-to-configuration boot began", lambda: stc_begun("boot"), True),
            # The agent is frozen (SIGSTOP) while switch-to-configuration boot runs, and cut off
            # once it has ended: the gap before the agent reads its exit status and records it.
            ("switch-to-configuration boot ended", Frozen(lambda: stc_begun("boot"), lambda: stc_ended("boot")), True),
            ("an unhealthy revision, checking", phase_is("checking"), False),
            ("an unhealthy revision, rolling back", phase_is("rolling-back"), False),
            ("an unhealthy revision, the rollback's switch-to-configuration", rollback_stc_begun, False),
            ("an unhealthy revision, the rollback's switch-to-configuration ended", rollback_stc_ended, False),
            ("an unhealthy revision, its switch-to-configuration", stc_begun, False),
        ]

    def interrupt(self, p, predicate, name):
        """At the point: SIGKILL to the agent. Returns what to log of it."""
        hit = reach(self.w, p, predicate)
        p.kill()
        p.wait(timeout=60)
        err = p.stderr.read()
        p.stderr.close()
        self.assertTrue(hit, f"the kill point was never reached: {err[-3000:]}")
        self.assertTrue(self.w.wait_activation_idle(30))
        return None

    def test_kill_points(self):
        w = self.w
        outcomes = []
        points = sanitizer_share(self.points(), self.sanitizer_offset)
        for name, predicate, healthy in points:
            with self.subTest(point=name):
                s = self.status()
                self.good, self.good_gen = s["revision"], s["generation"]
                rev = w.commit(**({} if healthy else {"health_status": 500}))
                w.reset_call_logs()
                self.t0 = time.time()
                what = self.interrupt(self.start_agent("pull"), predicate, name)

                # The next run, and only if it could not, the one after.
                runs = [self.run_agent("pull")]
                if self.status()["revision"] != rev and healthy:
                    runs.append(self.run_agent("pull"))
                for r in runs:
                    self.assertIn(r.returncode, (0, 1), r.stderr[-3000:])
                s = self.assert_truthful()
                if healthy:
                    self.assertEqual(s["revision"], rev, "a healthy revision was not deployed")
                    self.assertNotEqual(s["failed-revision"], rev, "a healthy revision was blocked")
                else:
                    self.assertEqual(s["revision"], self.good, "an unhealthy revision was recorded")
                    self.assertEqual(s["generation"], self.good_gen)
                    self.assertEqual(s["failed-revision"], rev)
                if what:
                    self.assertEqual(w.reboot().toplevel, s["generation"], "the next boot is not what the record names")
                outcomes.append((name, len(runs)) + ((what,) if what else ()))
        print(f"\n{type(self).__name__}: {len(outcomes)} points, (point, runs to recover[, booted]): {outcomes}",
              file=sys.stderr)
        self.assertEqual(len(outcomes), len(points))
        self.assertGreaterEqual(len(outcomes), 12 if len(points) == len(self.points()) else 6)


class PowerCutMatrix(KillMatrix):
    """The power goes at each of the same points (every process of the machine dies, and it
    boots what its boot loader chooses): until the healthy generation has passed its checks
    and switch-to-configuration boot made it the default, the machine boots the known-good
    generation; the next run then leaves the same truthful record, which the next boot
    agrees with."""

    def setUp(self):
        skip_under_sanitizers(self)
        super().setUp()

    def interrupt(self, p, predicate, name):
        w = self.w
        hit = reach(w, p, predicate)
        new = self.toplevel_of_pending()
        boot = w.power_cut() if hit else None
        p.wait(timeout=60)
        err = p.stderr.read()
        p.stderr.close()
        self.assertTrue(hit, f"the point was never reached: {err[-3000:]}")
        self.assertTrue(boot.up)
        if "switch-to-configuration boot ended" in name:
            self.assertEqual(boot.toplevel, new, "the healthy generation is the default, and boots")
        elif "switch-to-configuration boot began" not in name:
            self.assertEqual(boot.toplevel, self.good_gen, "the machine booted an unverified generation")
        return "known-good" if boot.toplevel == self.good_gen else "new"


class TrialBootPowerCut(Base):
    """action boot: the power goes at each step of installing a trial boot. Before the one-shot
    entry is set the machine boots the known-good generation, after it the new one once; the
    agent (confirm after each boot, as the module runs it) then ends with the new generation
    running, the default, and recorded."""

    world_kw = {"activation_seconds": 0.5}

    def setUp(self):
        skip_under_sanitizers(self)
        super().setUp()

    def test_power_cut_points(self):
        w = self.w
        self.configure()
        w.commit()
        self.run_agent("pull", expect=0)
        # The profile is held at the new generation for 0.5 s before it goes back.
        gap = HeldNix(w, PROFILE_SET, name="gap", seconds=0.5, every=True, after=True)
        self.configure(system={"action": "boot", "reboot-command": ["true"], "nix-command": str(gap.path)})

        def pending():
            s = self.state()
            return s["pending"]["generation"] if s and s["pending"] else None

        def step(pred):
            return lambda: pending() is not None and pred(pending())

        points = [
            ("activating", lambda: self.phase() == "activating", False),
            ("the profile at the new generation", step(lambda t: w.profile_target() == t), False),
            ("switch-to-configuration boot of the known-good generation",
             lambda: self.phase() == "activating" and any(
                 sp["action"] == "boot" and sp["begin"] and sp["begin"] > t0 for sp in w.activation_spans()), False),
            # bootctl logs its call before it sets the entry: either boot is right here.
            ("bootctl set-oneshot called", lambda: self.phase() == "activating" and w.bootloader_calls() != [], None),
            ("pending-reboot", lambda: self.phase() == "pending-reboot", True),
        ]
        outcomes = []
        for name, predicate, oneshot_set in points:
            with self.subTest(power_cut=name):
                s = self.status()
                good_gen = s["generation"]
                rev = w.commit()
                w.reset_call_logs()
                t0 = time.time()
                p = self.start_agent("pull")
                hit = w.wait_for(predicate, timeout=60, interval=0.005)
                new = pending()
                boot = w.power_cut() if hit else None
                p.wait(timeout=60)
                err = p.stderr.read()
                p.stderr.close()
                self.assertTrue(hit, f"the point was never reached: {err[-3000:]}")
                if oneshot_set:
                    self.assertEqual(boot.toplevel, new, "the trial boot did not try the new generation")
                    self.assertEqual(boot.how, "oneshot")
                elif oneshot_set is None:
                    self.assertIn(boot.toplevel, (new, good_gen))
                else:
                    self.assertEqual(boot.toplevel, good_gen, "the machine booted an untried generation by default")
                self.assertEqual(w.boot_default(), good_gen, "the default moved before confirm")

                boots = 1
                for _ in range(4):
                    r = self.run_agent("confirm")
                    self.assertIn(r.returncode, (0, 1), r.stderr[-3000:])
                    s = self.status()
                    if s["phase"] == "idle" and s["revision"] == rev:
                        break
                    if s["phase"] == "pending-reboot":
                        w.reboot()
                        boots += 1
                    else:
                        self.run_agent("pull")
                s = self.status()
                self.assertEqual((s["phase"], s["revision"], s["generation"]), ("idle", rev, new))
                self.assertNotEqual(s["failed-revision"], rev, "one power cut blocked a good revision")
                self.assertEqual((w.current_system(), w.boot_default(), w.profile_target()), (new, new, new))
                self.assertEqual(w.health(), 200)
                self.assertEqual(w.reboot().toplevel, new)
                outcomes.append((name, "new" if boot.toplevel == new else "known-good", boots))
        print(f"\nTrialBootPowerCut: (point, booted, boots until deployed): {outcomes}", file=sys.stderr)


class KillMatrixDetached(KillMatrix):
    """The same with activation: nixos-rebuild and a nixos-rebuild-ng that runs
    switch-to-configuration detached (systemd-run): a killed agent leaves it running, and the
    next run must wait for it."""

    world_kw = {"activation_seconds": 1.5, "detached_activation": True, "profile_gap": 0.5,
                "rebuild_flavor": "ng"}
    system = {"activation": "nixos-rebuild"}
    sanitizer_offset = 1


class FailedRollbackKillMatrix(KillMatrix):
    """Kills during a deployment of a revision that fails its checks while the rollback cannot
    be done: the next run exits 5 every time, and the pull after it 5 again."""

    def test_kill_points(self):
        w = self.w
        broken = HeldNix(w, PROFILE_BACK, name="broken", seconds=0, every=True, fail=True)
        n = 0
        for name, predicate, healthy in self.points():
            if "rolling back" in name or "the rollback's" in name:
                continue  # the rollback fails at once: no time to kill it in
            with self.subTest(kill=name):
                self.configure(system={"nix-command": str(broken.path)})
                bad = w.commit(health_status=500)
                w.reset_call_logs()
                self.t0 = time.time()
                p = self.start_agent("pull")
                hit = reach(w, p, predicate)
                p.kill()
                p.wait(timeout=60)
                err = p.stderr.read()
                p.stderr.close()
                if not hit:
                    # The run ended by itself before the point: it must have said 5.
                    self.assertEqual(p.returncode, 5, err[-3000:])
                self.assertTrue(w.wait_activation_idle(30))
                r = self.run_agent("pull")
                self.assertEqual(r.returncode, 5, r.stderr[-3000:])
                s = self.status()
                self.assertEqual(s["unhealthy"]["revision"], bad)
                self.assertEqual(s["unhealthy"]["generation"], w.current_system())
                self.assertEqual(s["phase"], "idle")
                self.assertEqual(self.run_agent("pull").returncode, 5)
                self.assertEqual(self.run_agent("check").returncode, 5)
                n += 1
                # A person repairs the tooling and rolls back; the next case starts healthy.
                self.configure(system=self.sysconf)
                self.run_agent("rollback", expect=0)
                self.assert_truthful()
        self.assertGreaterEqual(n, 10)



if __name__ == "__main__":
    unittest.main()
