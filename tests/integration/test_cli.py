#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The fixed command line of ../shared/CONTRACT.md, driven through the real binary: help,
version, usage errors, configuration errors, the lock and an unreadable state file. Nothing
here needs nix; test_pull.py runs real deployments."""

import fcntl
import json
import os
import re
import pathlib
import subprocess
import tempfile
import unittest

REPO = pathlib.Path(__file__).resolve().parents[2]
AGENT = os.environ.get("ATTICD_AGENT_BIN", str(REPO / "build" / "atticd-agent"))

COMMANDS = ["pull", "apply", "verify", "bundle create", "verify-images", "check", "status",
            "rollback", "confirm", "config check"]


def run(*args, env=None, timeout=30):
    return subprocess.run([AGENT, *args], capture_output=True, text=True, timeout=timeout,
                          env=env if env is not None else os.environ)


class CliTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="atticd-cli-")
        self.dir = pathlib.Path(self.tmp.name)
        self.state = self.dir / "state"
        self.config = self.dir / "config.yaml"
        self.config.write_text(
            "host: testhost\n"
            f"state-dir: {self.state}\n"
            "repository:\n"
            "  url: http://127.0.0.1:9/client.git\n")  # nothing listens: exit 6

    def tearDown(self):
        self.tmp.cleanup()

    def test_help_lists_every_command(self):
        r = run("--help")
        self.assertEqual(r.returncode, 0)
        for c in COMMANDS:
            self.assertIn(c, r.stdout, c)
        for opt in ("-c FILE", "--config FILE", "--json", "-v", "-q", "--version", "--help"):
            self.assertIn(opt, r.stdout, opt)

    def test_version(self):
        r = run("--version")
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"^atticd-agent \d+\.\d+\.\d+\n$")

    def test_usage_errors(self):
        for args in ([], ["frobnicate"], ["--no-such-option", "status"], ["-c"],
                     ["-c", str(self.config), "status", "extra"],
                     ["-c", str(self.config), "config"], ["-c", str(self.config), "config", "frob"]):
            with self.subTest(args=args):
                r = run(*args)
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertTrue(r.stderr.strip(), "a usage error must say something")

    def test_bundle_commands_usage(self):
        for args, message in ((["apply", "missing.tar"], "bundle.keys is empty"),
                              (["verify", "missing.tar"], "bundle.keys is empty"),
                              (["verify"], "expected a bundle file"),
                              (["verify", "a.tar", "--frob"], "unknown option"),
                              (["bundle", "create"], "are required"),
                              (["bundle", "frob"], "expected 'create'"),
                              (["bundle", "create", "-o", "x", "--rev", "HEAD", "--key", "k", "--sequence", "0"],
                               "--sequence")):
            with self.subTest(args=args):
                r = run("-c", str(self.config), *args)
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertIn(message, r.stderr)
                self.assertFalse(self.state.exists(), "nothing may be done")

    def test_config_file_resolution(self):
        env = dict(os.environ, ATTICD_AGENT_CONFIG=str(self.config))
        self.assertEqual(run("status", env=env).returncode, 0)
        env["ATTICD_AGENT_CONFIG"] = str(self.dir / "missing.yaml")
        r = run("status", env=env)
        self.assertEqual(r.returncode, 2)
        self.assertIn("missing.yaml", r.stderr)
        # -c wins over the environment
        self.assertEqual(run("-c", str(self.config), "status", env=env).returncode, 0)

    def test_config_check(self):
        r = run("config", "check", str(self.config))
        self.assertEqual((r.returncode, r.stdout, r.stderr), (0, "", ""))

        bad = self.dir / "bad.yaml"
        bad.write_text("host: testhost\nhealth:\n  checks:\n    - name: web\n      htp: {url: x}\n")
        r = run("config", "check", str(bad))
        self.assertEqual(r.returncode, 2)
        self.assertEqual(r.stdout, "")
        self.assertIn(f"{bad}:5:", r.stderr)
        self.assertIn("health.checks[0].htp", r.stderr)

        # a bad configuration stops every command before it does anything
        r = run("-c", str(bad), "pull")
        self.assertEqual(r.returncode, 2)
        self.assertIn("health.checks[0].htp", r.stderr)
        self.assertFalse(self.state.exists())

    def test_lock_held(self):
        self.state.mkdir()
        with open(self.state / "lock", "w") as f:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            r = run("-c", str(self.config), "pull")
            self.assertEqual(r.returncode, 4, r.stderr)
            self.assertIn("lock", r.stderr)
        self.assertFalse((self.state / "state.json").exists())
        self.assertFalse((self.state / "last-run.json").exists())
        # released: the next run gets past the lock (and fails on the missing remote: 6)
        r = run("-c", str(self.config), "pull")
        self.assertEqual(r.returncode, 6, r.stderr)

    def test_local_repository_that_does_not_exist(self):
        """A repository.url that is a local path not on this machine is a configuration error
        (exit 2, named), not an unreachable remote (exit 6, which the units retry silently)."""
        for url in (self.dir / "nowhere", f"file://{self.dir / 'nowhere'}"):
            with self.subTest(url=url):
                self.config.write_text(f"host: testhost\nstate-dir: {self.state}\nrepository:\n  url: {url}\n")
                r = run("-c", str(self.config), "pull")
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertIn(f"repository.url: '{self.dir / 'nowhere'}' does not exist on this machine", r.stderr)

    def test_state_directory_modes(self):
        """Created 0700, its files 0600 (docs/security.md); a state directory that others may
        write to, or a symlink someone else owns, is refused before anything is written."""
        r = run("-c", str(self.config), "pull")
        self.assertEqual(r.returncode, 6, r.stderr)
        self.assertEqual(self.state.stat().st_mode & 0o777, 0o700)
        for name in ("last-run.json", "lock"):
            self.assertEqual((self.state / name).stat().st_mode & 0o777, 0o600, name)

        for mode in (0o775, 0o757, 0o1777):
            with self.subTest(mode=oct(mode)):
                self.state.chmod(mode)
                before = sorted(os.listdir(self.state))
                r = run("-c", str(self.config), "pull")
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertIn("can be changed by others", r.stderr)
                self.assertEqual(sorted(os.listdir(self.state)), before)
        self.state.chmod(0o700)

        real = self.state
        self.state = self.dir / "link"
        self.state.symlink_to(real)
        self.config.write_text(self.config.read_text().replace(f"state-dir: {real}", f"state-dir: {self.state}"))
        r = run("-c", str(self.config), "pull")
        self.assertEqual(r.returncode, 6, "a symlink of this user's is fine: " + r.stderr)
        if os.geteuid() == 0:
            os.lchown(self.state, 65534, 65534)
            r = run("-c", str(self.config), "pull")
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertIn("is a symlink owned by uid 65534", r.stderr)

    def test_help_and_version_after_the_command(self):
        """--help, -h and --version work after a command as before it; a missing value of
        --rev is said as such."""
        for args in (["status", "--help"], ["status", "-h"], ["pull", "--help"]):
            with self.subTest(args=args):
                r = run(*args)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertTrue(r.stdout.startswith("Usage: atticd-agent"), r.stdout[:80])
        r = run("status", "--version")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(r.stdout.startswith("atticd-agent "))
        r = run("-c", str(self.config), "verify-images", "--rev")
        self.assertEqual(r.returncode, 2)
        self.assertIn("a commit or ref is missing after '--rev'", r.stderr)
        r = run("--help")
        self.assertIn("--output", r.stdout)
        self.assertIn("--rev=REV", r.stdout)

    def test_config_check_reads_the_files_it_names(self):
        """config check reads what the configuration names, as the commands will: a malformed
        allowed_signers line, a key that is not a PEM key, an RSA key in bundle.keys and a
        threshold without keys are exit 2 with the file and line; a file that is not on this
        machine (a build-time check) is said to be unread, not passed silently."""
        import subprocess
        d = self.dir
        ec = d / "ec.pem"
        subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out",
                        str(d / "ec.key")], check=True, capture_output=True)
        subprocess.run(["openssl", "pkey", "-in", str(d / "ec.key"), "-pubout", "-out", str(ec)], check=True,
                       capture_output=True)
        rsa = d / "rsa.pem"
        subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out",
                        str(d / "rsa.key")], check=True, capture_output=True)
        subprocess.run(["openssl", "pkey", "-in", str(d / "rsa.key"), "-pubout", "-out", str(rsa)], check=True,
                       capture_output=True)
        not_pem = d / "not.pem"
        not_pem.write_text("hello\n")
        signers = d / "allowed_signers"
        signers.write_text("# a comment\nops@example.org ssh-ed25519\n")
        base = f"host: testhost\nstate-dir: {self.state}\n"

        def check(extra):
            p = d / "c.yaml"
            p.write_text(base + extra)
            return run("config", "check", str(p))

        for extra, needle in ((f"repository:\n  allowed-signers: {signers}\n", f"{signers}:2:"),
                              (f"images:\n  keys: [{not_pem}]\n", "images.keys"),
                              (f"bundle:\n  keys: [{rsa}]\n", "bundle.keys"),
                              ("images:\n  threshold: 3\n", "images.threshold: is 3, but images.keys is empty"),
                              (f"images:\n  keyless:\n    trusted-root: {not_pem}\n    identities:\n"
                               "      - {subject: a@example.org, issuer: https://issuer.example.org}\n",
                               "images.keyless.trusted-root: '%s': the trusted root is not valid JSON" % not_pem)):
            with self.subTest(extra=extra):
                r = check(extra)
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertIn(needle, r.stderr)
        # Good files: no output.
        signers.write_text("ops@example.org " + "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKqmrM" "W0rsP3ukqrcYSNXgXjeFsiB4PTBdvUnCXJkZ/P\n")
        r = check(f"repository:\n  allowed-signers: {signers}\nimages:\n  keys: [{ec}]\nbundle:\n  keys: [{ec}]\n")
        self.assertEqual((r.returncode, r.stderr), (0, ""))
        # A trusted root that is one: read, no output.
        root = pathlib.Path(__file__).resolve().parents[3] / "shared/vectors/sigstore-conformance/production_trusted_root.json"
        r = check(f"images:\n  keyless:\n    trusted-root: {root}\n    identities:\n"
                  "      - {subject: a@example.org, issuer: https://issuer.example.org}\n")
        self.assertEqual((r.returncode, r.stderr), (0, ""))
        # A trusted root with a log of a key type this agent does not support (RSA-PSS): it
        # loads (that log is left out, what it logged is refused), and config check says so,
        # its baseUrl escaped.
        other = json.loads(root.read_text())
        log = json.loads(json.dumps(other["tlogs"][0]))
        log["publicKey"]["keyDetails"] = "PKIX_RSA_PSS_2048_SHA256"
        log["baseUrl"] = "https://pss.example/\x1b[31m"
        log["logId"] = {"keyId": "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="}
        other["tlogs"].append(log)
        pss = d / "pss_root.json"
        pss.write_text(json.dumps(other))
        r = check(f"images:\n  keyless:\n    trusted-root: {pss}\n    identities:\n"
                  "      - {subject: a@example.org, issuer: https://issuer.example.org}\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("the transparency log 'https://pss.example/\\x1b[31m' (logId " + "01" * 32 + ") has a key of a "
                      "type this agent does not support (PKIX_RSA_PSS_2048_SHA256): what it logged is refused", r.stderr)
        self.assertNotIn("\x1b", r.stderr)
        # Not on this machine: said, not passed silently, and not an error here.
        r = check(f"repository:\n  allowed-signers: {d / 'absent'}\nimages:\n  keys: [{d / 'absent.pem'}]\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("repository.allowed-signers: '%s' is not on this machine: not read here" % (d / "absent"), r.stderr)
        self.assertIn("images.keys: '%s' is not on this machine" % (d / "absent.pem"), r.stderr)

    def test_documented_examples_hold(self):
        """Every configuration example of README.md, docs/ and the man page passes `config
        check` (a fragment gets a host line), and every long option --help names is in the man
        page, and the other way round for the commands' options."""
        root = pathlib.Path(__file__).resolve().parents[2]
        blocks = []
        for doc in [root / "README.md", *sorted((root / "docs").glob("*.md"))]:
            blocks += [(doc.name, b) for b in re.findall(r"```yaml\n(.*?)```", doc.read_text(), re.S)]
        man = (root / "docs" / "atticd-agent.8.scd").read_text()
        blocks += [("atticd-agent.8.scd", b) for b in re.findall(r"```\n(.*?)```", man, re.S)
                   if re.match(r"[a-z-]+:", b)]
        self.assertGreaterEqual(len(blocks), 3, blocks)
        for name, text in blocks:
            with self.subTest(doc=name, example=text[:40]):
                if not re.search(r"^host:", text, re.M):
                    text = "host: testhost\n" + text
                p = self.dir / "example.yaml"
                p.write_text(text)
                r = run("config", "check", str(p))
                self.assertEqual(r.returncode, 0, f"{name}:\n{text}\n{r.stderr}")
        help_text = run("--help").stdout
        help_options = set(re.findall(r"(--[a-z][a-z-]+)", help_text))
        # The options of other programs the man page quotes (nixos-rebuild, grub-reboot).
        others = {"--store-path", "--no-reexec", "--boot-directory"}
        man_options = set(re.findall(r"\*(--[a-z][a-z-]+)", man)) - others
        self.assertEqual(sorted(help_options - man_options), [], "in --help, not in the man page")
        self.assertEqual(sorted(man_options - help_options), [], "in the man page, not in --help")

    def test_fifo_as_configuration_or_bundle(self):
        """A FIFO given as the configuration or as a bundle is refused at once (exit 2, "not a
        regular file"): nothing waits for a writer, and the lock is not held meanwhile."""
        fifo = self.dir / "fifo"
        os.mkfifo(fifo)
        for args in (["-c", str(fifo), "status"], ["config", "check", str(fifo)]):
            with self.subTest(args=args):
                r = run(*args, timeout=10)
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertIn("not a regular file", r.stderr)
        key = self.dir / "bundle.pub"
        subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", str(self.dir / "bundle.pem")],
                       check=True, capture_output=True)
        subprocess.run(["openssl", "pkey", "-in", str(self.dir / "bundle.pem"), "-pubout", "-out", str(key)],
                       check=True, capture_output=True)
        self.config.write_text(self.config.read_text() + f"bundle:\n  keys: [{key}]\n")
        for cmd in ("apply", "verify"):
            with self.subTest(cmd=cmd):
                r = run("-c", str(self.config), cmd, str(fifo), timeout=10)
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertIn("is not a regular file", r.stderr)

    def test_corrupt_state_file(self):
        self.state.mkdir()
        for content in (b"", b"{\"version\": 1, \"next", b"\x00\xff garbage", b"[]",
                        b"{\"version\": 99}", json.dumps({"version": 1, "surprise": True}).encode()):
            with self.subTest(content=content):
                (self.state / "state.json").write_bytes(content)
                for cmd in (["pull"], ["status"], ["--json", "status"]):
                    r = run("-c", str(self.config), *cmd)
                    self.assertEqual(r.returncode, 2, r.stderr)
                    self.assertIn("state.json", r.stderr)
                    self.assertNotIn("Object item not found", r.stderr.split("(")[0])
                    self.assertEqual((self.state / "state.json").read_bytes(), content)
                    self.assertFalse((self.state / "repo.git").exists(), "nothing may be fetched")

    def test_global_options_after_the_command(self):
        for args in (["status", "--json", "-c", str(self.config)], ["status", f"--config={self.config}", "--json"],
                     ["-q", "status", "-c", str(self.config), "--json", "-v"]):
            with self.subTest(args=args):
                r = run(*args)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertIsInstance(json.loads(r.stdout), dict)
        r = run("status", "-c")
        self.assertEqual(r.returncode, 2)

    def test_status_empty(self):
        r = run("-c", str(self.config), "status", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        j = json.loads(r.stdout)
        self.assertIsNone(j["revision"])
        self.assertIsNone(j["generation"])
        self.assertEqual(j["history"], [])
        self.assertEqual(j["last-run"]["result"], "none")
        self.assertEqual(j["host"], "testhost")


if __name__ == "__main__":
    unittest.main()
