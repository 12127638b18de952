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

import sys
import time
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from held import PROFILE_BACK, PROFILE_SET, HeldNix  # noqa: E402
from test_deploy import Base, health_conf  # noqa: E402


class KillMatrix(Base):
    """SIGKILL at many points of a deployment, each followed by the next run (and, only if
    that one could not, the run after). 0 false records, 0 healthy revisions left blocked, 0
    unhealthy systems."""

    world_kw = {"activation_seconds": 1.5}
    system: dict = {}

    def setUp(self):
        super().setUp()
        w = self.w
        # The profile is set 0.5 s before switch-to-configuration runs.
        self.gap = HeldNix(w, PROFILE_SET, name="gap", seconds=0.5, every=True, after=True)
        self.sysconf = {"nix-command": str(self.gap.path), **self.system}
        # settle 1 s: the health checks take long enough to be killed in
        self.configure(system=self.sysconf, health=health_conf(w.port, settle=1))
        self.good = w.commit()
        self.run_agent("pull", expect=0)
        self.good_gen = self.assert_truthful()["generation"]

    def toplevel_of_pending(self):
        s = self.state()
        return s["pending"]["generation"] if s and s["pending"] else None

    def span_of(self, toplevel, ended=False):
        for sp in reversed(self.w.activation_spans()):
            if sp["toplevel"] == toplevel and sp["begin"] is not None:
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

        def new_profile():
            t = self.toplevel_of_pending()
            return t is not None and w.profile_target() == t and self.span_of(t) is None

        def stc_begun():
            t = self.toplevel_of_pending()
            return t is not None and self.span_of(t) is not None

        def stc_service_down():
            return stc_begun() and w.health(timeout=0.2) is None

        def stc_ended():
            t = self.toplevel_of_pending()
            return t is not None and self.span_of(t, ended=True) is not None

        def rollback_stc_begun():
            sp = self.span_of(self.good_gen)
            return self.phase() == "rolling-back" and sp is not None and sp["begin"] > self.t0

        def rollback_stc_ended():
            sp = self.span_of(self.good_gen, ended=True)
            return self.phase() == "rolling-back" and sp is not None and sp["begin"] > self.t0

        def evaluating():
            return any(" eval " in c for c in w.nix_calls())

        return [
            ("evaluating", evaluating, True),
            ("building", phase_is("building"), True),
            ("activating, before the profile", phase_is("activating"), True),
            ("between the profile and switch-to-configuration", new_profile, True),
            ("switch-to-configuration began", stc_begun, True),
            ("switch-to-configuration, services stopped", stc_service_down, True),
            ("switch-to-configuration, 1 s in", after(stc_begun, 1.0), True),
            ("switch-to-configuration ended", stc_ended, True),
            ("checking", phase_is("checking"), True),
            ("checking, 0.2 s in", after(phase_is("checking"), 0.2), True),
            ("an unhealthy revision, checking", phase_is("checking"), False),
            ("an unhealthy revision, rolling back", phase_is("rolling-back"), False),
            ("an unhealthy revision, the rollback's switch-to-configuration", rollback_stc_begun, False),
            ("an unhealthy revision, the rollback's switch-to-configuration ended", rollback_stc_ended, False),
            ("an unhealthy revision, its switch-to-configuration", stc_begun, False),
        ]

    def test_kill_points(self):
        w = self.w
        outcomes = []
        for name, predicate, healthy in self.points():
            with self.subTest(kill=name):
                s = self.status()
                self.good, self.good_gen = s["revision"], s["generation"]
                rev = w.commit(**({} if healthy else {"health_status": 500}))
                w.reset_call_logs()
                self.t0 = time.time()
                p = self.start_agent("pull")
                hit = self.kill_when(p, predicate)
                p.wait(timeout=60)
                err = p.stderr.read()
                p.stderr.close()
                self.assertTrue(hit, f"the kill point was never reached: {err[-3000:]}")
                self.assertTrue(w.wait_activation_idle(30))

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
                outcomes.append((name, len(runs)))
        print(f"\n{type(self).__name__}: {len(outcomes)} kill points, runs to recover: {outcomes}", file=sys.stderr)
        self.assertGreaterEqual(len(outcomes), 12)


class KillMatrixDetached(KillMatrix):
    """The same with activation: nixos-rebuild and a nixos-rebuild-ng that runs
    switch-to-configuration detached (systemd-run): a killed agent leaves it running, and the
    next run must wait for it."""

    world_kw = {"activation_seconds": 1.5, "detached_activation": True, "profile_gap": 0.5,
                "rebuild_flavor": "ng"}
    system = {"activation": "nixos-rebuild"}


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
                hit = self.kill_when(p, predicate)
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
