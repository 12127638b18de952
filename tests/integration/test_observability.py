#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""What an operator watches: the journal events (on stderr, and natively over the journal
socket as systemd would receive them), sd_notify STATUS= and WATCHDOG=1 on a real notify
socket, the Prometheus textfile metrics, drift detection, and `status --json` against its
documented schema (docs/status.schema.json). Real pulls in the test world."""

import json
import os
import re
import shlex
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from world import World  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[2]
EVENT_RE = re.compile(r"^(?:<(\d)>)?(.*) \[(MESSAGE_ID=[0-9a-f]{32}.*)\]$")
IDS = {
    "update-found": "01b6e71864a6440cb7b97694908fcc73",
    "repository-verified": "3ea5144283684572b5c560741d009cd9",
    "images-verified": "e14532f5197e48e78dc1e95e6eb3c01b",
    "refused": "bedd6bd26fb849a79d1ee1a2319c9ecd",
    "build-failed": "668534c89b41447894d253ce8706eee4",
    "activated": "2593b81ea3cb41a4af3dda2acb2c7f77",
    "healthy": "84c4f7aabb7648f69107b4f0c83cd168",
    "unhealthy": "b070608204234c189382d8bfc69f9b49",
    "rolled-back": "c4a7aad402d048928ca2f3e9e43e21ee",
    "rollback-failed": "911eec896f8540d6b685b31792b20274",
    "bundle-applied": "6e7018129d6944d5936096bd9b5dabd6",
    "drift": "33939d8554354f19b8ac2a07be5ddcde",
    "waiting": "e4bd81563a084a74b3a12a2a36af449b",
    "plan": "7905687414a84724b1de508123db5291",
    "container-drift": "0624270588d14101ae1e8cd207229acd",
}
NAMES = {v: k for k, v in IDS.items()}


def events(stderr: str) -> list[dict]:
    """The event lines of stderr: {"event": name, "MESSAGE": ..., "PRIORITY": ..., fields...}."""
    out = []
    for line in stderr.splitlines():
        m = EVENT_RE.match(line)
        if not m:
            continue
        fields = dict(kv.split("=", 1) for kv in shlex.split(m.group(3)))
        fields["MESSAGE"] = m.group(2)
        fields["PRIORITY"] = m.group(1)
        fields["event"] = NAMES[fields["MESSAGE_ID"]]
        out.append(fields)
    return out


def prom(path: Path) -> dict:
    """The samples of a textfile: {(name, frozenset(labels)): value}; checks the HELP/TYPE lines."""
    samples, typed = {}, set()
    for line in path.read_text().splitlines():
        if line.startswith("# TYPE "):
            typed.add(line.split()[2])
            continue
        if line.startswith("#") or not line:
            continue
        m = re.match(r'^([a-z_]+)(?:\{(.*)\})? (\S+)$', line)
        assert m, f"not a sample line: {line!r}"
        labels = frozenset(re.findall(r'([a-z_]+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        assert m.group(1) in typed, f"{m.group(1)} has no TYPE line"
        samples[(m.group(1), labels)] = float(m.group(3))
    return samples


def sample(samples: dict, name: str, **labels) -> float | None:
    want = frozenset(labels.items())
    found = [v for (n, ls), v in samples.items() if n == name and want <= ls]
    return found[0] if found else None


class NotifySocket:
    """A real sd_notify socket: every datagram the agent sends."""

    def __init__(self, directory: Path):
        self.path = str(directory / "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.settimeout(0.2)
        self.messages: list[str] = []
        self.times: list[float] = []  # when each message arrived (monotonic), as messages
        self.watchdog_times: list[float] = []  # when each WATCHDOG=1 arrived
        self._stop = False
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self):
        while not self._stop:
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            lines = data.decode().splitlines()
            self.messages.extend(lines)
            self.times.extend([time.monotonic()] * len(lines))
            if "WATCHDOG=1" in lines:
                self.watchdog_times.append(time.monotonic())

    def close(self):
        self._stop = True
        self._thread.join()
        self.sock.close()


class ObservabilityTest(unittest.TestCase):
    def setUp(self):
        self.w = World.for_test(self)
        self.w.make_repo()
        self.metrics = self.w.tmp / "textfile" / "atticd-agent.prom"
        self.metrics.parent.mkdir()
        self.health = {"settle": 0, "timeout": 3, "checks": [
            {"name": "web", "http": {"url": f"http://127.0.0.1:{self.w.port}/health", "status": 200}}]}
        self.w.write_config(metrics={"textfile": str(self.metrics)}, health=self.health)

    def pull(self, expect, env=None):
        r = self.w.agent("pull", env=env)
        self.assertEqual(r.returncode, expect, r.stderr)
        return r

    def test_events_metrics_after_success(self):
        w = self.w
        rev = w.commit()
        r = self.pull(0)
        ev = events(r.stderr)
        names = [e["event"] for e in ev]
        self.assertEqual(names, ["update-found", "repository-verified", "plan", "activated", "healthy"], r.stderr)
        gen = w.current_system()
        by = {e["event"]: e for e in ev}
        self.assertEqual(by["update-found"]["REVISION"], rev)
        self.assertEqual(by["update-found"]["SOURCE"], "pull")
        self.assertEqual(by["update-found"]["REF"], "main")
        self.assertIn(f"Revision {rev} is the first deployment (nothing deployed to compare with).", r.stderr)
        self.assertEqual(by["activated"]["GENERATION"], gen)
        self.assertEqual(by["activated"]["ACTION"], "switch")
        self.assertEqual((by["healthy"]["REVISION"], by["healthy"]["GENERATION"], by["healthy"]["SOURCE"]),
                         (rev, gen, "pull"))
        self.assertEqual(by["healthy"]["PRIORITY"], "6")

        m = prom(self.metrics)
        self.assertEqual(sample(m, "atticd_agent_last_run_success", command="pull"), 1)
        self.assertEqual(sample(m, "atticd_agent_last_run_result", command="pull", result="success"), 1)
        self.assertEqual(sample(m, "atticd_agent_deployed_info", revision=rev, generation=gen, source="pull",
                                host="testhost"), 1)
        self.assertEqual(sample(m, "atticd_agent_profile_generation"), 1)
        self.assertEqual(sample(m, "atticd_agent_rollbacks_total"), 0)
        self.assertEqual(sample(m, "atticd_agent_drift"), 0)
        self.assertEqual(sample(m, "atticd_agent_runs_total", command="pull"), 1)
        for phase in ("fetch", "verify", "build", "activate", "check"):
            self.assertIsNotNone(sample(m, "atticd_agent_phase_duration_seconds", phase=phase), phase)
        self.assertGreater(sample(m, "atticd_agent_last_run_duration_seconds", command="pull"), 0)

        # Nothing new: counted, deployed unchanged.
        self.pull(0)
        m = prom(self.metrics)
        self.assertEqual(sample(m, "atticd_agent_runs_total", command="pull"), 2)
        self.assertEqual(sample(m, "atticd_agent_last_run_result", command="pull", result="no-change"), 1)

    def test_refusal(self):
        w = self.w
        base = w.commit()
        w.commit()
        self.pull(0)
        w.repo.reset(base)
        side = w.commit(force=True)
        before = (w.state_dir / "state.json").read_bytes()
        r = self.pull(3)
        ev = events(r.stderr)
        self.assertEqual([e["event"] for e in ev], ["update-found", "refused"])
        refused = ev[-1]
        self.assertEqual((refused["REVISION"], refused["REASON"], refused["COMMAND"]), (side, "non-fast-forward", "pull"))
        self.assertIn("does not descend", refused["ERROR"])
        self.assertEqual(refused["PRIORITY"], "3")
        self.assertEqual((w.state_dir / "state.json").read_bytes(), before)
        m = prom(self.metrics)
        self.assertEqual(sample(m, "atticd_agent_refusals_total", reason="non-fast-forward"), 1)
        self.assertEqual(sample(m, "atticd_agent_last_run_success", command="pull"), 0)
        self.assertEqual(sample(m, "atticd_agent_last_run_result", command="pull", result="refused"), 1)
        self.pull(3)
        self.assertEqual(sample(prom(self.metrics), "atticd_agent_refusals_total", reason="non-fast-forward"), 2)

    def test_rollback(self):
        w = self.w
        good = w.commit()
        self.pull(0)
        gen = w.current_system()
        bad = w.commit(health_status=500)
        r = self.pull(1)
        ev = events(r.stderr)
        names = [e["event"] for e in ev]
        self.assertEqual(names, ["update-found", "repository-verified", "plan", "activated", "unhealthy", "rolled-back"],
                         r.stderr)
        by = {e["event"]: e for e in ev}
        self.assertEqual(by["unhealthy"]["REVISION"], bad)
        self.assertIn("web:", by["unhealthy"]["ERROR"])
        self.assertEqual(by["rolled-back"]["REVISION"], bad)
        self.assertIn(gen, by["rolled-back"]["ERROR"])
        self.assertEqual(by["rolled-back"]["PRIORITY"], "4")
        m = prom(self.metrics)
        self.assertEqual(sample(m, "atticd_agent_rollbacks_total"), 1)
        self.assertEqual(sample(m, "atticd_agent_last_run_result", command="pull", result="rolled-back"), 1)
        self.assertEqual(sample(m, "atticd_agent_deployed_info", revision=good, generation=gen), 1)
        self.assertIsNotNone(sample(m, "atticd_agent_phase_duration_seconds", phase="rollback"))

    def test_manual_rollback_counted_once(self):
        """A manual rollback is one run and one rollback in the metrics, and a successful one
        (exit 0) is last_run_success 1."""
        w = self.w
        w.commit()
        self.pull(0)
        w.commit()
        self.pull(0)
        r = w.agent("rollback")
        self.assertEqual(r.returncode, 0, r.stderr)
        m = prom(self.metrics)
        self.assertEqual(sample(m, "atticd_agent_runs_total", command="rollback"), 1)
        self.assertEqual(sample(m, "atticd_agent_rollbacks_total"), 1)
        self.assertEqual(sample(m, "atticd_agent_last_run_success", command="rollback"), 1)
        self.assertEqual(sample(m, "atticd_agent_runs_total", command="pull"), 2)

    def test_metrics_directory_is_created(self):
        w = self.w
        textfile = w.tmp / "not-yet" / "there" / "atticd-agent.prom"
        w.write_config(metrics={"textfile": str(textfile)}, health=self.health)
        w.commit()
        self.pull(0)
        self.assertEqual(sample(prom(textfile), "atticd_agent_runs_total", command="pull"), 1)

    def test_notify_socket_and_watchdog(self):
        w = self.w
        w.commit()
        ns = NotifySocket(w.tmp)
        try:
            env = {"NOTIFY_SOCKET": ns.path, "WATCHDOG_USEC": "100000"}
            self.pull(0, env=env)
        finally:
            ns.close()
        status = [m[len("STATUS="):] for m in ns.messages if m.startswith("STATUS=")]
        for prefix in ("Fetching ", "Verifying revision ", "Building revision ", "Activating ", "Checking the health",
                       "Idle: last pull success"):
            self.assertTrue(any(s.startswith(prefix) for s in status), f"no STATUS={prefix}...: {status}")
        self.assertEqual(status[-1], "Idle: last pull success")
        # The build and the health checks take longer than 50 ms: the watchdog was fed.
        self.assertGreaterEqual(ns.messages.count("WATCHDOG=1"), 2, ns.messages)

    def test_watchdog_fed_while_the_health_checks_settle(self):
        """WATCHDOG_USEC=1s and a settle of 3 s: the agent pings at least every half interval
        while it waits, so a service manager with WatchdogSec never kills it in the wait."""
        w = self.w
        w.commit()
        w.write_config(metrics={"textfile": str(self.metrics)}, health=dict(self.health, settle=3))
        ns = NotifySocket(w.tmp)
        try:
            self.pull(0, env={"NOTIFY_SOCKET": ns.path, "WATCHDOG_USEC": "1000000"})
        finally:
            ns.close()
        # The settle: from STATUS=Checking the health... to the next STATUS.
        i = next(k for k, m in enumerate(ns.messages) if m.startswith("STATUS=Checking the health"))
        j = next(k for k in range(i + 1, len(ns.messages)) if ns.messages[k].startswith("STATUS="))
        start, end = ns.times[i], ns.times[j]
        pings = [start] + [t for t in ns.watchdog_times if start <= t <= end] + [end]
        gaps = [b - a for a, b in zip(pings, pings[1:])]
        self.assertGreaterEqual(end - start, 3, "the settle was shorter than configured")
        self.assertGreaterEqual(len(pings), 6, ns.messages)
        self.assertLess(max(gaps), 0.9, f"the longest time without a ping in the wait: {max(gaps):.2f} s")

    def test_watchdog_fed_while_an_http_check_waits_for_its_answer(self):
        """WATCHDOG_USEC=1s and an HTTP check whose server answers after 3 s: the agent pings
        at least every half interval while libcurl waits (libcurl's own progress callback may
        be an idle second apart)."""
        import http.server

        class Slow(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                time.sleep(3)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Slow)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        self.addCleanup(srv.server_close)
        self.addCleanup(srv.shutdown)
        w = self.w
        w.commit()
        w.write_config(metrics={"textfile": str(self.metrics)}, health={"settle": 0, "timeout": 20, "checks": [
            {"name": "slow", "http": {"url": f"http://127.0.0.1:{srv.server_address[1]}/", "status": 200}}]})
        ns = NotifySocket(w.tmp)
        try:
            self.pull(0, env={"NOTIFY_SOCKET": ns.path, "WATCHDOG_USEC": "1000000"})
        finally:
            ns.close()
        i = next(k for k, m in enumerate(ns.messages) if m.startswith("STATUS=Checking the health"))
        j = next(k for k in range(i + 1, len(ns.messages)) if ns.messages[k].startswith("STATUS="))
        start, end = ns.times[i], ns.times[j]
        pings = [start] + [t for t in ns.watchdog_times if start <= t <= end] + [end]
        gaps = [b - a for a, b in zip(pings, pings[1:])]
        self.assertGreaterEqual(end - start, 3, "the check was answered sooner than the server answers")
        self.assertLess(max(gaps), 0.9, f"the longest time without a ping in the check: {max(gaps):.2f} s")

    def test_drift(self):
        w = self.w
        rev = w.commit()
        self.pull(0)
        gen = w.current_system()
        r = w.agent("check")
        self.assertEqual(r.returncode, 0, r.stderr)
        # A change by hand: the stand-in activates another build outside the agent.
        other = w.commit()
        flake = w.deploy_ref(other)
        r = w.rebuild("switch", "--flake", f"{flake}#testhost")
        self.assertEqual(r.returncode, 0, r.stderr)
        hand = w.current_system()
        self.assertNotEqual(hand, gen)
        r = w.agent("check")
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("drift", r.stdout)
        ev = [e for e in events(r.stderr) if e["event"] == "drift"]
        self.assertEqual(len(ev), 1, r.stderr)
        self.assertEqual((ev[0]["REVISION"], ev[0]["GENERATION"], ev[0]["CURRENT_SYSTEM"], ev[0]["PROFILE"]),
                         (rev, gen, hand, hand))
        self.assertIn(gen, ev[0]["MESSAGE"])
        self.assertIn(hand, ev[0]["MESSAGE"])
        j = json.loads(w.agent("check", "--json").stdout)
        self.assertEqual((j["drift"], j["healthy"], j["current-system"]), (True, False, hand))
        self.assertEqual(sample(prom(self.metrics), "atticd_agent_drift"), 1)

    def test_status_json_schema(self):
        try:
            import jsonschema
        except ImportError:
            self.skipTest("python3-jsonschema is not installed")
        schema = json.loads((REPO_ROOT / "docs" / "status.schema.json").read_text())
        jsonschema.Draft202012Validator.check_schema(schema)
        w = self.w
        validate = lambda: jsonschema.validate(json.loads(w.agent("status", "--json").stdout), schema)  # noqa: E731
        validate()  # nothing deployed yet
        w.commit()
        self.pull(0)
        w.commit(health_status=500)
        self.pull(1)
        validate()
        s = json.loads(w.agent("status", "--json").stdout)
        self.assertEqual([d["result"] for d in s["history"]], ["success", "rolled-back"])
        # The schema is not a formality: a wrong type is caught.
        s["history"][0]["revision"] = 42
        with self.assertRaises(jsonschema.ValidationError):
            jsonschema.validate(s, schema)


class CatalogTest(unittest.TestCase):
    def test_catalog_has_every_event(self):
        """journalctl itself parses the catalog, and every MESSAGE_ID the agent sends (event.c)
        has an entry."""
        import shutil
        if not shutil.which("journalctl"):
            self.skipTest("no journalctl")
        source = (REPO_ROOT / "agent" / "system" / "event.c").read_text()
        ids = set(re.findall(r'\{ "[a-z-]+", "([0-9a-f]{32})" \}', source))
        self.assertEqual(ids, set(IDS.values()))
        with tempfile.TemporaryDirectory() as root:
            d = Path(root) / "usr" / "lib" / "systemd" / "catalog"
            d.mkdir(parents=True)
            shutil.copy(REPO_ROOT / "catalog" / "atticd-agent.catalog", d)
            subprocess.run(["journalctl", f"--root={root}", "--update-catalog"], check=True)
            listed = subprocess.run(["journalctl", f"--root={root}", "--list-catalog"], check=True,
                                    capture_output=True, text=True).stdout
        found = {line.split()[0] for line in listed.splitlines() if "atticd-agent" in line}
        self.assertEqual(found, ids)


class JournalTest(unittest.TestCase):
    """Under systemd (JOURNAL_STREAM names stderr), events go to the journal natively, with
    their fields. A private mount namespace puts a datagram socket where journald's would be
    (/run/systemd/journal/socket) and reads what libsystemd sends: the native protocol."""

    RECEIVER = r'''
import json, os, socket, struct, subprocess, sys
os.makedirs("/run/systemd/journal", exist_ok=True)
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("/run/systemd/journal/socket")
s.settimeout(0.5)
err = open(sys.argv[1], "w")
st = os.fstat(err.fileno())
env = dict(os.environ, JOURNAL_STREAM=f"{st.st_dev}:{st.st_ino}")
p = subprocess.Popen(sys.argv[2:], stderr=err, env=env)
entries = []
def parse(data):
    e, i = {}, 0
    while i < len(data):
        nl = data.index(b"\n", i)
        line = data[i:nl]
        if b"=" in line:
            k, v = line.split(b"=", 1); i = nl + 1
        else:
            k = line; n = struct.unpack("<Q", data[nl + 1:nl + 9])[0]
            v = data[nl + 9:nl + 9 + n]; i = nl + 9 + n + 1
        e[k.decode()] = v.decode()
    return e
while True:
    try:
        entries.append(parse(s.recv(65536)))
    except socket.timeout:
        if p.poll() is not None:
            break
print(json.dumps({"rc": p.returncode, "entries": entries}))
'''

    def test_native_journal(self):
        if os.geteuid() != 0 or subprocess.run(["unshare", "-m", "true"]).returncode != 0:
            self.skipTest("needs root and unshare -m")
        w = World.for_test(self)
        w.make_repo()
        rev = w.commit()
        cfg = w.write_config()
        receiver = w.tmp / "receiver.py"
        receiver.write_text(self.RECEIVER)
        stderr = w.tmp / "stderr"
        r = subprocess.run(["unshare", "-m", "sh", "-c", 'mount -t tmpfs tmpfs /run && exec "$@"', "sh",
                            sys.executable, str(receiver), str(stderr), str(w.agent_bin()), "-c", str(cfg), "pull"],
                           env=w.env, capture_output=True, text=True, timeout=120, cwd=w.cwd)
        self.assertEqual(r.returncode, 0, r.stderr)
        out = json.loads(r.stdout)
        self.assertEqual(out["rc"], 0, stderr.read_text())
        entries = out["entries"]
        self.assertEqual([NAMES[e["MESSAGE_ID"]] for e in entries],
                         ["update-found", "repository-verified", "plan", "activated", "healthy"])
        for e in entries:
            self.assertEqual(e["SYSLOG_IDENTIFIER"], "atticd-agent")
            self.assertEqual(e["REVISION"], rev)
        healthy = entries[-1]
        self.assertEqual(healthy["GENERATION"], w.current_system())
        self.assertEqual((healthy["PRIORITY"], healthy["SOURCE"]), ("6", "pull"))
        self.assertIn("is deployed and healthy", healthy["MESSAGE"])
        # Not twice: the events are not also on stderr.
        self.assertEqual(events(stderr.read_text()), [])
        self.assertIn("Building revision", stderr.read_text())


if __name__ == "__main__":
    unittest.main()
