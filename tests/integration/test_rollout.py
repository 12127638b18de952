#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Rollout control on the client (issue 19), end to end with the test world: the rollout file
of the client repository (percent, paused, delay, rollout.bucket), the change windows
(schedule.windows: built outside them, activated inside), the plan of a switch (`plan`, and
the history entry), and the switch inhibitors. A revision that waits is not an error: exit 0,
`status --json` says why."""

import datetime
import json
import re
import sys
import time
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from world import World  # noqa: E402

WAITING_EVENT = "e4bd81563a084a74b3a12a2a36af449b"
PLAN_EVENT = "7905687414a84724b1de508123db5291"


def window_excluding_now() -> str:
    """A change window that starts two hours from now (local time) and lasts one."""
    start = datetime.datetime.now() + datetime.timedelta(hours=2)
    end = start + datetime.timedelta(hours=1)
    return f"{start:%H}:00-{end:%H}:00"


class RolloutBase(unittest.TestCase):
    def setUp(self):
        self.w = World.for_test(self)
        self.w.make_repo()

    def configure(self, **overrides):
        self.w.write_config(**overrides)

    def status(self):
        r = self.w.agent("status", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    def pull(self, expect=0):
        r = self.w.agent("pull")
        self.assertEqual(r.returncode, expect, f"stdout:\n{r.stdout}\nstderr:\n{r.stderr}")
        return r

    def commit(self, rollout=None, **params):
        files = {"rollout.json": json.dumps(rollout)} if rollout is not None else None
        return self.w.commit(files=files, **params)

    def deploy_first(self, **params):
        rev = self.commit(**params)
        self.pull()
        self.assertEqual(self.status()["revision"], rev)
        return rev

    def assert_waits(self, rev, reason, running):
        """rev waits for reason; the system still runs `running`; nothing was activated."""
        s = self.status()
        self.assertEqual(s["revision"], running)
        self.assertEqual(self.w.current_system(), s["generation"])
        self.assertIsNotNone(s["waiting"], s)
        self.assertEqual((s["waiting"]["revision"], s["waiting"]["reason"]), (rev, reason), s["waiting"])
        self.assertEqual(s["last-run"]["result"], "waiting")
        self.assertEqual(s["phase"], "idle")
        return s


class RolloutFileTest(RolloutBase):
    def test_percent_zero_waits_and_hundred_deploys(self):
        w = self.w
        r1 = self.deploy_first()
        r2 = self.commit(rollout={"percent": 0})
        w.reset_call_logs()
        r = self.pull()
        s = self.assert_waits(r2, "rollout-percent", r1)
        self.assertIn("not below the rollout's 0%", s["waiting"]["detail"])
        self.assertIsNone(s["waiting"]["until"])
        self.assertIn(WAITING_EVENT, r.stderr)
        # Nothing was evaluated or built for a revision this host does not take.
        self.assertEqual(w.evaluations(), 0, w.nix_calls())
        self.assertEqual(w.activations(), [])

        # Another run: the same reason, no second event.
        r = self.pull()
        self.assertNotIn(WAITING_EVENT, r.stderr)
        self.assert_waits(r2, "rollout-percent", r1)

        r3 = self.commit(rollout={"percent": 100})
        self.pull()
        s = self.status()
        self.assertEqual(s["revision"], r3)
        self.assertIsNone(s["waiting"])
        self.assertEqual(s["history"][-1]["result"], "success")

    def test_fixed_bucket_37(self):
        self.configure(rollout={"bucket": 37})
        r1 = self.deploy_first()
        r2 = self.commit(rollout={"percent": 37})
        self.pull()
        s = self.assert_waits(r2, "rollout-percent", r1)
        self.assertIn("bucket 37 is not below the rollout's 37%", s["waiting"]["detail"])
        r3 = self.commit(rollout={"percent": 38})
        self.pull()
        self.assertEqual(self.status()["revision"], r3)

    def test_paused(self):
        r1 = self.deploy_first()
        r2 = self.commit(rollout={"percent": 100, "paused": True})
        self.pull()
        self.assert_waits(r2, "rollout-paused", r1)
        r3 = self.commit(rollout={"percent": 100, "paused": False})
        self.pull()
        self.assertEqual(self.status()["revision"], r3)

    def test_delay_counted_from_the_first_sighting(self):
        r1 = self.deploy_first()
        r2 = self.commit(rollout={"percent": 100, "delay": 4})
        t0 = time.time()
        r = self.pull()
        s = self.assert_waits(r2, "rollout-delay", r1)
        first_seen = s["waiting"]["first-seen"]
        until = datetime.datetime.strptime(s["waiting"]["until"], "%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=datetime.timezone.utc).timestamp()
        self.assertAlmostEqual(until, t0 + 4, delta=2)
        self.assertIn(WAITING_EVENT, r.stderr)
        # Within the delay: it still waits, counted from the first sighting (not reset).
        r = self.pull()
        s = self.assert_waits(r2, "rollout-delay", r1)
        self.assertEqual(s["waiting"]["first-seen"], first_seen)
        self.assertNotIn(WAITING_EVENT, r.stderr)
        time.sleep(max(0.0, until - time.time()) + 1.1)
        self.pull()
        s = self.status()
        self.assertEqual(s["revision"], r2)
        self.assertIsNone(s["waiting"])

    def test_invalid_rollout_file_is_refused(self):
        r1 = self.deploy_first()
        for content, needle in (('{"percent": 101}', "'percent' must be an integer from 0 to 100"),
                                ('{"percent": "50"}', "'percent' must be an integer"),
                                ('{"percent": 50, "pause": true}', "pause"),
                                ('{"delay": -1}', "'delay' must be a number of seconds"),
                                ('{"percent": 50', "not valid JSON"),
                                ('[50]', "not a JSON object")):
            with self.subTest(content=content):
                state = (self.w.state_dir / "state.json").read_bytes()
                self.w.commit(files={"rollout.json": content})
                r = self.pull(expect=3)
                self.assertIn(needle, r.stderr)
                self.assertIn("REASON=rollout-file", r.stderr)
                self.assertEqual((self.w.state_dir / "state.json").read_bytes(), state, "the state changed")
                self.assertEqual(self.status()["revision"], r1)


class WindowTest(RolloutBase):
    def test_built_outside_the_window_activated_inside(self):
        w = self.w
        r1 = self.deploy_first()
        self.configure(schedule={"windows": [window_excluding_now()]})
        r2 = self.commit()
        w.reset_call_logs()
        self.pull()
        s = self.assert_waits(r2, "window", r1)
        self.assertEqual(w.activations(), [], "activated outside the window")
        built = s["waiting"]["system"]
        self.assertTrue(Path(built).exists(), "the new system was not built")
        self.assertEqual(Path(w.state_dir / "gcroots" / "waiting").resolve(), Path(built))
        self.assertIsNotNone(s["waiting"]["until"])
        self.assertIsNotNone(s["waiting"]["plan"])
        self.assertEqual(w.evaluations(), 1)

        # Still outside: no evaluation, no build, no activation.
        w.reset_call_logs()
        self.pull()
        self.assert_waits(r2, "window", r1)
        self.assertEqual(w.evaluations(), 0, w.nix_calls())

        # The window opens: activated without a second evaluation.
        self.configure(schedule={"windows": ["00:00-24:00"]})
        w.reset_call_logs()
        self.pull()
        s = self.status()
        self.assertEqual(s["revision"], r2)
        self.assertEqual(s["generation"], built)
        self.assertEqual(w.current_system(), built)
        self.assertEqual(w.evaluations(), 0, w.nix_calls())
        self.assertIsNone(s["waiting"])
        self.assertFalse((w.state_dir / "gcroots" / "waiting").exists(), "the waiting root stayed")

    def test_a_window_that_includes_now_deploys(self):
        now = datetime.datetime.now()
        day = now.strftime("%a")
        self.configure(schedule={"windows": [f"{day} 00:00-24:00"]})
        rev = self.commit()
        self.pull()
        self.assertEqual(self.status()["revision"], rev)


class PlanTest(RolloutBase):
    def test_plan_names_the_restarted_service_and_the_package_change(self):
        w = self.w
        r1 = self.deploy_first(services={"web": "1.0", "db": "2.3"})
        running = w.current_system()
        r2 = self.commit(services={"web": "1.1", "db": "2.3", "cache": "0.9"})
        w.reset_call_logs()
        r = w.agent("plan")
        self.assertEqual(r.returncode, 0, r.stderr)
        print(f"\n`atticd-agent plan`:\n{r.stdout}", file=sys.stderr)
        self.assertIn(f"revision:  {r2}", r.stdout)
        self.assertIn("now:       would switch it", r.stdout)
        self.assertRegex(r.stdout, r"units to restart:\n  web\.service\n")
        self.assertRegex(r.stdout, r"units to start:\n  cache\.service\n")
        self.assertRegex(r.stdout, r"world-web: 1\.0 → 1\.1")
        self.assertNotIn("db.service", r.stdout)
        # Nothing was activated, nothing recorded.
        self.assertEqual(w.current_system(), running)
        self.assertEqual(w.activations(), [])
        self.assertEqual(len(w.dry_activations()), 1)
        s = self.status()
        self.assertEqual(s["revision"], r1)
        self.assertEqual(len(s["history"]), 1)

        r = w.agent("plan", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        p = json.loads(r.stdout)
        self.assertEqual((p["revision"], p["new"], p["action"], p["waiting"]), (r2, True, "switch", None))
        self.assertEqual(p["plan"]["units"], {"stop": [], "restart": ["web.service"], "start": ["cache.service"],
                                              "reload": []})
        self.assertFalse(p["plan"]["reboot-required"])

        # The deployment records the plan.
        r = self.pull()
        self.assertIn(PLAN_EVENT, r.stderr)
        d = self.status()["history"][-1]
        self.assertEqual((d["revision"], d["result"]), (r2, "success"))
        self.assertEqual(d["plan"]["units"]["restart"], ["web.service"])
        self.assertTrue(any("world-web" in x for x in d["plan"]["packages"]), d["plan"])

        # Nothing new: plan says so.
        r = w.agent("plan")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("nothing new to deploy", r.stdout)

    def test_plan_says_when_the_host_would_wait(self):
        r1 = self.deploy_first()
        self.configure(rollout={"bucket": 10})
        self.commit(rollout={"percent": 10})
        r = self.w.agent("plan", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        p = json.loads(r.stdout)
        self.assertEqual(p["waiting"]["reason"], "rollout-percent")
        self.assertEqual(self.status()["revision"], r1)
        self.assertIsNone(self.status()["waiting"], "plan wrote the state")

    def test_kernel_change_needs_a_reboot(self):
        self.deploy_first(kernel="6.1.1", initrd="6.1.1")
        self.commit(kernel="6.1.2", initrd="6.1.1")
        r = self.w.agent("plan", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        p = json.loads(r.stdout)["plan"]
        self.assertTrue(p["reboot-required"])
        self.assertEqual(p["reboot-reasons"], ["kernel"])


class InhibitorTest(RolloutBase):
    def test_changed_inhibitor_waits(self):
        self.configure(system={"on-switch-inhibited": "wait"})
        r1 = self.deploy_first(switch_inhibitors={"systemd": "255"})
        r2 = self.commit(switch_inhibitors={"systemd": "256"})
        self.pull()
        s = self.assert_waits(r2, "switch-inhibited", r1)
        self.assertEqual(s["waiting"]["plan"]["reboot-reasons"], ["switch-inhibitors"])
        self.assertTrue(re.match(r"systemd: .*world-systemd-255 -> .*world-systemd-256",
                                 s["waiting"]["plan"]["inhibitors"][0]), s["waiting"]["plan"])
        # The same inhibitors: a switch.
        r3 = self.commit(switch_inhibitors={"systemd": "255"})
        self.pull()
        self.assertEqual(self.status()["revision"], r3)

    def test_changed_inhibitor_boots(self):
        r1 = self.deploy_first(switch_inhibitors={"systemd": "255"})
        running = self.w.current_system()
        r2 = self.commit(switch_inhibitors={"systemd": "256"})
        r = self.pull()
        self.assertIn("installing it for the next boot instead", r.stderr)
        s = self.status()
        self.assertEqual(s["revision"], r1)
        self.assertEqual(self.w.current_system(), running, "switched despite the inhibitors")
        self.assertEqual(s["phase"], "pending-reboot")
        self.assertEqual((s["pending"]["revision"], s["pending"]["action"]), (r2, "boot"))


if __name__ == "__main__":
    unittest.main()
