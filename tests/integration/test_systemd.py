#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The agent as a systemd unit, under a real systemd (PID 1 of a systemd-nspawn container over
a volatile copy of this machine's /, with the test world bound in at the same path): its
switch-to-configuration runs in the transient unit atticd-agent-switch-to-configuration, so
`systemctl kill -s KILL` of the agent's unit in the middle of an activation cuts nothing in
half and takes no service along; the next run finds the activation unit still running, waits
for it, and finishes the job. `systemctl stop` of a run in the middle of a build is exit 143,
which the unit (SuccessExitStatus=143, as the NixOS module sets it) counts as a success.

The agent's units are made as the module makes them (Type=oneshot semantics through
systemd-run --service-type=exec, KillMode=process, SuccessExitStatus). Where this machine
cannot boot systemd that way, every test is skipped with the reason (printed as SKIP)."""

import json
import sys
import time
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from world import World, REPO_ROOT  # noqa: E402
from held import BUILD, HeldNix  # noqa: E402
from test_health_units import RealSystemd, agent_bin  # noqa: E402

ACTIVATION_UNIT = "atticd-agent-switch-to-configuration.service"


class SystemdTest(unittest.TestCase):
    def setUp(self):
        self.w = World.for_test(self)
        self.w.make_repo()
        # The container sees /usr of this machine, not /root or /opt: its services run with
        # Debian's python3.
        if not Path("/usr/bin/python3").exists():
            self.skipTest("no /usr/bin/python3 for the test service in the container")
        agent = agent_bin().resolve()
        binds = [(self.w.tmp, self.w.tmp, False), (REPO_ROOT, REPO_ROOT, True)]
        if REPO_ROOT not in agent.parents:
            binds.append((agent.parent, agent.parent, True))
        self.agent = agent
        self.sd = RealSystemd(self.w.tmp, binds=binds)
        self.addCleanup(self.sd.stop)
        self.runs = 0

    def unit(self, *args, wait=True, name=None, properties=()):
        """The agent as a unit of the container's systemd, as the module makes the pull unit.
        wait: until it ends, with its output (--pipe); else started, and its name returned."""
        self.runs += 1
        name = name or f"atticd-test-{self.runs}"
        env = [f"--setenv={k}={v}" for k, v in sorted(self.w.env.items())]
        argv = ["systemd-run", f"--unit={name}", "--quiet", "--collect", "--service-type=exec",
                "-p", "KillMode=process", "-p", "SuccessExitStatus=4 6 143", *env]
        for p in properties:
            argv += ["-p", p]
        if wait:
            argv += ["--wait", "--pipe"]
        argv += ["--", self.agent, "-c", self.w.config_path, *args]
        r = self.sd.inside(*argv, timeout=300)
        if wait:
            return r
        self.assertEqual(r.returncode, 0, r.stderr)
        return name + ".service"

    def state(self):
        return json.loads((self.w.state_dir / "state.json").read_text())

    def unit_property(self, unit, prop):
        r = self.sd.inside("systemctl", "show", "-p", prop, "--value", unit)
        return r.stdout.strip()

    def commit(self, **kw):
        return self.w.commit(python="/usr/bin/python3", **kw)

    def journal(self, unit):
        return self.sd.inside("journalctl", "--no-pager", "-u", unit).stdout[-3000:]

    def configure(self, **kw):
        w = self.w
        kw.setdefault("health", {"settle": 0, "timeout": 10, "checks": [
            {"name": "web", "http": {"url": f"http://127.0.0.1:{w.port}/health", "status": 200}}]})
        w.write_config(**kw)

    def test_a_killed_unit_leaves_the_activation_whole(self):
        w = self.w
        self.configure()
        self.commit()
        r = self.unit("pull")
        self.assertEqual(r.returncode, 0, r.stderr[-3000:] + self.journal(ACTIVATION_UNIT))
        self.assertIn(f"in unit {ACTIVATION_UNIT}", r.stderr)
        port_unit = f"world-health-{w.port}.service"
        self.assertEqual(self.sd.active_state(port_unit), "active", "the service is a unit of its own")

        # A slow activation; the agent's unit is killed (SIGKILL to all its processes) in its
        # middle, while the services are stopped.
        w.activation_seconds = 3
        rev = self.commit()
        pull = self.unit("pull", wait=False)
        begun = w.wait_for(lambda: len([s for s in w.activation_spans() if s["action"] == "test"]) >= 2, timeout=60)
        self.assertTrue(begun, "the second activation never began")
        self.assertEqual(self.sd.active_state(ACTIVATION_UNIT), "active")
        r = self.sd.inside("systemctl", "kill", "-s", "KILL", pull)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.sd.wait_state(pull, "inactive", timeout=10) if self.sd.active_state(pull) != "failed" else None
        self.assertEqual(self.sd.active_state(ACTIVATION_UNIT), "active", "the activation died with the agent's unit")
        self.assertEqual(self.state()["phase"], "activating")

        # The next run, at once: it waits for the activation, then finishes the job.
        w.activation_seconds = 0
        r = self.unit("pull")
        self.assertEqual(r.returncode, 0, r.stderr[-3000:])
        self.assertIn(f"An activation runs in unit {ACTIVATION_UNIT}", r.stderr)
        s = self.state()
        self.assertEqual((s["phase"], s["deployed"]["revision"]), ("idle", rev))
        self.assertEqual(s["deployed"]["generation"], w.current_system())
        spans = [sp for sp in w.activation_spans() if sp["action"] == "test"]
        self.assertEqual([sp["exit"] for sp in spans[1:]], [0, 0], "the killed run's activation ran to its end")
        for a, b in zip(spans, spans[1:]):
            self.assertLessEqual(a["end"], b["begin"], "two activations overlapped")
        self.assertEqual(w.activation_conflicts(), [])
        self.assertEqual(self.sd.active_state(port_unit), "active")
        self.assertEqual(self.unit("check").returncode, 0)

    def test_systemctl_stop_is_not_a_failure(self):
        w = self.w
        held = HeldNix(w, BUILD)
        self.configure(system={"nix-command": str(held.path)})
        rev = self.commit()
        pull = self.unit("pull", wait=False)
        self.assertTrue(w.wait_for(held.held, timeout=60), "the build never began")
        r = self.sd.inside("systemctl", "stop", pull, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        # --collect unloads it once it ended; until then its result says how.
        deadline = time.monotonic() + 10
        while self.sd.active_state(pull) not in (None, "inactive", "failed") and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertNotEqual(self.sd.active_state(pull), "failed", "a stop left the unit failed")
        s = self.state()
        self.assertEqual((s["phase"], s["history"][-1]["revision"], s["history"][-1]["result"]),
                         ("idle", rev, "interrupted"))
        last = json.loads((w.state_dir / "last-run.json").read_text())
        self.assertEqual(last["result"], "interrupted")

    def test_watchdog_outlives_a_long_settle(self):
        """WatchdogSec=2s (NotifyAccess=main, as the module's units) and a settle of 5 s: the
        agent feeds the watchdog while it waits, so systemd does not kill the run in the wait
        (every run used to be killed there, and every next one resumed into the same kill)."""
        w = self.w
        self.configure(health={"settle": 5, "timeout": 10, "checks": [
            {"name": "web", "http": {"url": f"http://127.0.0.1:{w.port}/health", "status": 200}}]})
        rev = self.commit()
        r = self.unit("pull", properties=("WatchdogSec=2s", "NotifyAccess=main"))
        self.assertEqual(r.returncode, 0, r.stderr[-3000:])
        self.assertIn("Waiting 5.0 s for the system to settle", r.stderr)
        s = self.state()
        self.assertEqual((s["phase"], s["deployed"]["revision"]), ("idle", rev))


if __name__ == "__main__":
    unittest.main()
