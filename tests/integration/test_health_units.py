#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The systemd-units health check (and health.no-failed-units) against a real systemd.

systemd-nspawn boots systemd as PID 1 of a container over a volatile copy of this machine's /
(basic.target, private network). The container's /run/dbus is bound out, and the real binary's
`check --json` (health_run_once) asks that systemd over sd-bus with DBUS_SYSTEM_BUS_ADDRESS.
Units are started and stopped in it through the Manager's D-Bus API with busctl, and busctl,
not the agent, says which state a unit is in before the agent is asked. A host directory is
bound to the container's /etc/systemd/system for unit files that nothing has loaded yet.

Where this machine cannot boot systemd that way, every test is skipped with the precise
reason (printed as SKIP), never passed."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
MANAGER = ("org.freedesktop.systemd1", "/org/freedesktop/systemd1", "org.freedesktop.systemd1.Manager")


def skip(reason):
    print(f"SKIP: {reason}", file=sys.stderr, flush=True)
    raise unittest.SkipTest(reason)


class RealSystemd:
    """systemd booted by systemd-nspawn; stop() shuts it down."""

    def __init__(self, tmp: Path, binds=(), private_network=True):
        """binds: (host path, container path, read-only?) to bind into the container too."""
        self.dir = tmp / "nspawn"
        self.units = self.dir / "units"         # the container's /etc/systemd/system
        (self.dir / "dbus").mkdir(parents=True)
        self.units.mkdir()
        self.socket = self.dir / "dbus" / "system_bus_socket"
        self.address = f"unix:path={self.socket}"
        self.proc = self.log = None
        if os.geteuid() != 0:
            skip("booting systemd with systemd-nspawn needs root (uid is %d)" % os.geteuid())
        nspawn = shutil.which("systemd-nspawn")
        for prog, package in (("systemd-nspawn", "systemd-container"), ("busctl", "systemd"),
                              ("dbus-daemon", "dbus")):
            if not shutil.which(prog):
                skip(f"{prog} is not installed (Debian package {package})")
        if not any(Path(p, "systemd/systemd").exists() for p in ("/usr/lib", "/lib")):
            skip("systemd is not installed (Debian package systemd)")
        self.log_path = self.dir / "nspawn.log"
        self.log = open(self.log_path, "wb")
        extra = [f"--bind{'-ro' if ro else ''}={src}:{dst}" for src, dst, ro in binds]
        self.proc = subprocess.Popen(
            [nspawn, "--register=no", "--keep-unit", *(["--private-network"] if private_network else []), "-D", "/",
             "--volatile=yes", f"--bind={self.dir / 'dbus'}:/run/dbus", f"--bind={self.units}:/etc/systemd/system",
             *extra, "-b", "--", "systemd.firstboot=off", "systemd.unit=basic.target"],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.log.close()
                skip(f"systemd-nspawn could not boot systemd here (exit status {self.proc.returncode}): "
                     + self.log_path.read_text(errors="replace")[-800:])
            if self.socket.exists() and self.call("GetUnit", "s", "basic.target").returncode == 0 \
                    and self.active_state("basic.target") == "active":
                return
            time.sleep(0.1)
        self.stop()
        skip("systemd in systemd-nspawn did not reach basic.target within 30 s: "
             + self.log_path.read_text(errors="replace")[-800:])

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()               # SIGTERM to nspawn: the container shuts down
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait()
        if self.log and not self.log.closed:
            self.log.close()

    def leader(self) -> int:
        """The container's PID 1, as the host sees it."""
        r = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True)
        return int(r.stdout.split()[0])

    def inside(self, *argv, **kw):
        """argv run in the container's mount and PID namespaces (its /run, its systemd)."""
        kw.setdefault("capture_output", True)
        kw.setdefault("text", True)
        return subprocess.run(["nsenter", "-t", str(self.leader()), "-m", "-u", "-i", "-p", "--",
                               *[str(a) for a in argv]], **kw)

    def busctl(self, *args):
        return subprocess.run(["busctl", f"--address={self.address}", *args],
                              capture_output=True, text=True, timeout=20)

    def call(self, method, *args):
        return self.busctl("call", *MANAGER, method, *args)

    def active_state(self, unit):
        """ActiveState by busctl (None when the unit is not loaded)."""
        r = self.call("GetUnit", "s", unit)
        if r.returncode != 0:
            return None
        path = r.stdout.split()[1].strip('"')
        r = self.busctl("get-property", "org.freedesktop.systemd1", path, "org.freedesktop.systemd1.Unit",
                        "ActiveState")
        return r.stdout.split()[1].strip('"') if r.returncode == 0 else None

    def wait_state(self, unit, state, timeout=10):
        """Until busctl says unit is in state; "inactive" also when systemd has unloaded it."""
        deadline = time.monotonic() + timeout
        while (s := self.active_state(unit)) != state and not (state == "inactive" and s is None):
            if time.monotonic() > deadline:
                raise AssertionError(f"{unit} is {s}, not {state}, after {timeout} s")
            time.sleep(0.05)

    def start_transient(self, name, *argv, service_type="simple"):
        r = self.call("StartTransientUnit", "ssa(sv)a(sa(sv))", name, "fail",
                      "2", "Type", "s", service_type,
                      "ExecStart", "a(sasb)", "1", argv[0], str(len(argv)), *argv, "false", "0")
        assert r.returncode == 0, r.stderr

    def unit_call(self, method, name):
        r = self.call(method, "ss", name, "fail")
        assert r.returncode == 0, r.stderr


def agent_bin() -> Path:
    p = Path(os.environ.get("ATTICD_AGENT_BIN", REPO_ROOT / "build" / "atticd-agent"))
    if not os.access(p, os.X_OK):
        raise FileNotFoundError(f"no agent binary at {p}: build it or set ATTICD_AGENT_BIN")
    return p


class UnitsTest(unittest.TestCase):
    def setUp(self):
        tmp = tempfile.TemporaryDirectory(prefix="atticd-health-units-")
        self.addCleanup(tmp.cleanup)
        self.tmp = Path(tmp.name)
        self.agent = agent_bin()
        self.systemd = RealSystemd(self.tmp)
        self.addCleanup(self.systemd.stop)

    def check(self, *units, no_failed_units=False):
        """`atticd-agent --json check` with one systemd-units check (none without units);
        returns (exit status, {check name: result})."""
        checks = [{"name": "units", "systemd-units": list(units)}] if units else []
        config = self.tmp / "config.yaml"
        config.write_text(json.dumps({   # JSON is YAML
            "host": "testhost", "state-dir": str(self.tmp / "state"),
            "health": {"settle": 0, "timeout": 2, "no-failed-units": no_failed_units, "checks": checks}}))
        r = subprocess.run([self.agent, "-c", config, "--json", "check"], capture_output=True, text=True, timeout=60,
                           env=dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=self.systemd.address))
        self.assertIn(r.returncode, (0, 1), r.stdout + r.stderr)
        report = json.loads(r.stdout)
        self.assertEqual(report["healthy"], r.returncode == 0)
        return r.returncode, {c["name"]: c for c in report["checks"]}

    def assertCheck(self, result, ok, detail):
        self.assertEqual((result["ok"], result["detail"]), (ok, detail))

    def test_active_then_stopped(self):
        s = self.systemd
        code, res = self.check("dbus.service")
        self.assertEqual(code, 0)
        self.assertCheck(res["units"], True, "dbus.service is active")

        (s.units / "atticd-web.service").write_text("[Service]\nExecStart=/bin/sleep infinity\n")
        s.unit_call("StartUnit", "atticd-web.service")
        s.start_transient("atticd-job.service", "/bin/sleep", "infinity")
        s.wait_state("atticd-web.service", "active")
        s.wait_state("atticd-job.service", "active")
        code, res = self.check("dbus.service", "atticd-web.service", "atticd-job.service")
        self.assertEqual(code, 0)
        self.assertCheck(res["units"], True, "all 3 units are active")
        self.assertIsInstance(res["units"]["duration_ms"], int)

        s.unit_call("StopUnit", "atticd-web.service")
        s.wait_state("atticd-web.service", "inactive")
        code, res = self.check("dbus.service", "atticd-web.service", "atticd-job.service")
        self.assertEqual(code, 1)
        self.assertCheck(res["units"], False, "atticd-web.service is inactive")

        # a stopped transient unit is gone from systemd altogether: no unit file behind it
        s.unit_call("StopUnit", "atticd-job.service")
        s.wait_state("atticd-job.service", "inactive")
        code, res = self.check("atticd-job.service")
        self.assertEqual(code, 1)
        self.assertIn(res["units"]["detail"], ("atticd-job.service is inactive",
                                               "atticd-job.service is inactive (not-found)"))

    def test_failed_missing_and_invalid(self):
        s = self.systemd
        s.start_transient("atticd-broken.service", "/bin/false")
        s.wait_state("atticd-broken.service", "failed")
        code, res = self.check("atticd-broken.service")
        self.assertEqual(code, 1)
        self.assertCheck(res["units"], False, "atticd-broken.service is failed")

        # every unit that is not active is named, with its state (and its load state if it is
        # not loaded); the active one is not
        code, res = self.check("atticd-broken.service", "dbus.service", "no-such-unit.service")
        self.assertEqual(code, 1)
        self.assertCheck(res["units"], False,
                         "atticd-broken.service is failed, no-such-unit.service is inactive (not-found)")

        code, res = self.check("not a unit name")
        self.assertEqual(code, 1)
        self.assertFalse(res["units"]["ok"])
        self.assertIn("not a unit name: ", res["units"]["detail"])
        self.assertIn("not valid", res["units"]["detail"])

    def test_activating_is_not_active(self):
        s = self.systemd
        s.start_transient("atticd-slow.service", "/bin/sleep", "60", service_type="oneshot")
        s.wait_state("atticd-slow.service", "activating")
        code, res = self.check("atticd-slow.service")
        self.assertEqual(code, 1)
        self.assertCheck(res["units"], False, "atticd-slow.service is activating")

    def test_unit_file_that_nothing_loaded(self):
        # LoadUnit, not GetUnit: a unit that exists only as a file is reported by its state
        s = self.systemd
        (s.units / "atticd-file.service").write_text(
            "[Service]\nExecStart=/bin/sleep infinity\n")
        self.assertIsNone(s.active_state("atticd-file.service"))    # not loaded: GetUnit fails
        code, res = self.check("atticd-file.service")
        self.assertEqual(code, 1)
        self.assertCheck(res["units"], False, "atticd-file.service is inactive")

        s.unit_call("StartUnit", "atticd-file.service")
        s.wait_state("atticd-file.service", "active")
        code, res = self.check("atticd-file.service")
        self.assertEqual(code, 0)
        self.assertCheck(res["units"], True, "atticd-file.service is active")

    def test_no_failed_units(self):
        s = self.systemd
        code, res = self.check(no_failed_units=True)
        self.assertEqual(code, 0, res)
        self.assertCheck(res["no-failed-units"], True, "no failed units")

        s.start_transient("atticd-broken.service", "/bin/false")
        s.wait_state("atticd-broken.service", "failed")
        code, res = self.check("dbus.service", no_failed_units=True)
        self.assertEqual(code, 1)
        self.assertCheck(res["units"], True, "dbus.service is active")
        self.assertCheck(res["no-failed-units"], False, "1 failed unit: atticd-broken.service")

        self.assertEqual(s.call("ResetFailedUnit", "s", "atticd-broken.service").returncode, 0)
        code, res = self.check(no_failed_units=True)
        self.assertEqual(code, 0)
        self.assertCheck(res["no-failed-units"], True, "no failed units")

    def test_systemd_gone(self):
        # the bus socket is there no more once the container has shut down
        self.systemd.stop()
        code, res = self.check("dbus.service")
        self.assertEqual(code, 1)
        self.assertFalse(res["units"]["ok"])
        self.assertIn(f"system bus ({self.systemd.address})", res["units"]["detail"])


if __name__ == "__main__":
    result = unittest.main(exit=False).result
    if result.testsRun and len(result.skipped) == result.testsRun and result.wasSuccessful():
        sys.exit(77)  # all skipped: `meson test` shows SKIP, not OK
    sys.exit(0 if result.wasSuccessful() else 1)
