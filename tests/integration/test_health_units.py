#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The systemd-units health check against a real systemd: systemd-nspawn boots one (as PID 1
of a container over a volatile copy of this machine's /, basic.target), its /run/dbus is bound
out, and the real binary's `check` asks it over sd-bus (DBUS_SYSTEM_BUS_ADDRESS). Units are
started and stopped in it through the Manager's D-Bus API with busctl. Where this machine
cannot boot systemd that way, the test is skipped with the reason, never passed."""

import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from world import World  # noqa: E402


def busctl(address, *args):
    return subprocess.run(["busctl", f"--address={address}", "call", "org.freedesktop.systemd1",
                           "/org/freedesktop/systemd1", "org.freedesktop.systemd1.Manager", *args],
                          capture_output=True, text=True, timeout=20)


class RealSystemd:
    def __init__(self, tmp):
        self.dir = Path(tmp) / "nspawn"
        (self.dir / "dbus").mkdir(parents=True)
        self.socket = self.dir / "dbus" / "system_bus_socket"
        self.address = f"unix:path={self.socket}"
        nspawn = shutil.which("systemd-nspawn")
        if os.geteuid() != 0:
            raise unittest.SkipTest("SKIP: booting systemd with systemd-nspawn needs root")
        if not nspawn or not shutil.which("busctl"):
            raise unittest.SkipTest("SKIP: systemd-nspawn or busctl is not installed (systemd-container, systemd)")
        self.log = open(self.dir / "nspawn.log", "wb")
        self.proc = subprocess.Popen([nspawn, "--register=no", "--keep-unit", "--private-network", "-D", "/",
                                      "--volatile=yes", f"--bind={self.dir / 'dbus'}:/run/dbus", "-b", "--",
                                      "systemd.firstboot=off", "systemd.unit=basic.target"],
                                     stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise unittest.SkipTest("SKIP: systemd-nspawn could not boot systemd here: " +
                                        (self.dir / "nspawn.log").read_text(errors="replace")[-500:])
            if self.socket.exists() and busctl(self.address, "GetUnit", "s", "basic.target").returncode == 0:
                return
            time.sleep(0.1)
        self.stop()
        raise unittest.SkipTest("SKIP: systemd did not come up within 30 s in systemd-nspawn")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait()
        self.log.close()

    def start_transient(self, name, *argv):
        r = busctl(self.address, "StartTransientUnit", "ssa(sv)a(sa(sv))", name, "fail", "1", "ExecStart",
                   "a(sasb)", "1", argv[0], str(len(argv)), *argv, "false", "0")
        assert r.returncode == 0, r.stderr

    def stop_unit(self, name):
        assert busctl(self.address, "StopUnit", "ss", name, "fail").returncode == 0


class UnitsTest(unittest.TestCase):
    def setUp(self):
        self.w = World.for_test(self)
        self.systemd = RealSystemd(self.w.tmp)
        self.addCleanup(self.systemd.stop)
        self.env = {"DBUS_SYSTEM_BUS_ADDRESS": self.systemd.address}

    def check(self, *units):
        self.w.write_config(health={"settle": 0, "timeout": 2, "checks": [
            {"name": "units", "systemd-units": list(units)}]})
        return self.w.agent("check", env=self.env)

    def wait_state(self, unit, state):
        self.assertTrue(self.w.wait_for(lambda: state in self.check(unit).stdout or
                                        (state == "active" and self.check(unit).returncode == 0), timeout=10))

    def test_active_inactive_failed(self):
        s = self.systemd
        r = self.check("dbus.service")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("1 unit(s) active", r.stdout)

        s.start_transient("atticd-web.service", "/bin/sleep", "infinity")
        self.wait_state("atticd-web.service", "active")
        r = self.check("dbus.service", "atticd-web.service")
        self.assertEqual(r.returncode, 0, r.stdout)

        s.stop_unit("atticd-web.service")
        self.wait_state("atticd-web.service", "inactive")
        r = self.check("dbus.service", "atticd-web.service")
        self.assertEqual(r.returncode, 1)
        self.assertIn("atticd-web.service is inactive", r.stdout)

        s.start_transient("atticd-broken.service", "/bin/false")
        self.wait_state("atticd-broken.service", "failed")
        r = self.check("atticd-broken.service")
        self.assertEqual(r.returncode, 1)
        self.assertIn("atticd-broken.service is failed", r.stdout)

        r = self.check("no-such-unit.service")
        self.assertEqual(r.returncode, 1)

        # health.no-failed-units: the failed unit is named; once reset, it is not
        self.w.write_config(health={"settle": 0, "timeout": 2, "no-failed-units": True, "checks": []})
        r = self.w.agent("check", env=self.env)
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("atticd-broken.service", r.stdout)
        self.assertEqual(busctl(s.address, "ResetFailedUnit", "s", "atticd-broken.service").returncode, 0)
        r = self.w.agent("check", env=self.env)
        self.assertNotIn("atticd-broken.service", r.stdout)


if __name__ == "__main__":
    unittest.main()
