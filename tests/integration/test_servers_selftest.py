#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Proves the git servers of servers.py work on their own, with the real git CLI and no
agent: git daemon, smart HTTP (basic auth, TLS, gzip and chunked requests, request log,
misbehaviour modes), OpenSSH's sshd (keys, host key checking, scp-like URLs), and
make_bare_repo_with_commits.

Run from the repository root: python3 tests/integration/test_servers_selftest.py [-v]
Timings are printed to stderr (lines starting with "timing:").
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from servers import (GitDaemon, GitHttpServer, SshServer, make_bare_repo_with_commits,  # noqa: E402
                     make_ssh_key, make_tls_ca, port_open, known_hosts_line)

TIMEOUT = 30  # per git command


def timing(what: str, seconds: float):
    sys.stderr.write(f"\ntiming: {what}: {seconds * 1000:.1f} ms\n")


def clean_env(home: Path) -> dict:
    """The environment for git: no user or system config, no proxies, no CA bundle or
    GIT_* settings from outside (GIT_SSL_CAINFO would override http.sslCAInfo), no prompts."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GIT_", "SSH_")) and "proxy" not in k.lower()
           and k not in ("CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR")}
    env.update({"HOME": str(home), "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null",
                "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "/bin/false", "SSH_ASKPASS": "/bin/false",
                "GIT_AUTHOR_NAME": "T", "GIT_AUTHOR_EMAIL": "t@example.org",
                "GIT_COMMITTER_NAME": "T", "GIT_COMMITTER_EMAIL": "t@example.org",
                "LC_ALL": "C"})
    return env


class ServerTestCase(unittest.TestCase):
    def setUp(self):
        self.tmp = Path(tempfile.mkdtemp(prefix="servers-selftest-"))
        if os.environ.get("ATTICD_WORLD_KEEP") != "1":
            self.addCleanup(shutil.rmtree, self.tmp, True)
        self.logs = self.tmp / "logs"
        self.root = self.tmp / "repos"
        self.root.mkdir()
        (self.tmp / "home").mkdir()
        self.env = clean_env(self.tmp / "home")
        self.tip = make_bare_repo_with_commits(self.root / "client.git", 3)

    def serve(self, server):
        self.addCleanup(server.stop)
        return server

    def git(self, *args, ok=True, env=None, timeout=TIMEOUT):
        r = subprocess.run(["git", *map(str, args)], capture_output=True, text=True,
                           env={**self.env, **(env or {})}, timeout=timeout, cwd=self.tmp)
        if ok is True:
            self.assertEqual(r.returncode, 0, f"git {' '.join(map(str, args))}:\n{r.stderr}")
        elif ok is False:
            self.assertNotEqual(r.returncode, 0, f"git {' '.join(map(str, args))} succeeded:\n{r.stderr}")
        return r

    def rev(self, repo, ref="HEAD"):
        return self.git("-C", repo, "rev-parse", ref).stdout.strip()

    def clone_and_fetch(self, url, *cfg, env=None, dest="clone"):
        """Clone url, check the tip, add a commit on the server, fetch it."""
        dest = self.tmp / dest
        self.git(*cfg, "clone", "-q", "--bare", url, dest, env=env)
        self.assertEqual(self.rev(dest, "main"), self.tip)
        new_tip = make_bare_repo_with_commits(self.root / "client.git", 1)
        self.assertNotEqual(new_tip, self.tip)
        self.git(*cfg, "-C", dest, "fetch", "-q", "origin", "+refs/heads/*:refs/heads/*", env=env)
        self.assertEqual(self.rev(dest, "main"), new_tip)
        self.tip = new_tip
        return dest


def listeners(port: int) -> set:
    """The pids with a socket listening on TCP port (IPv4 or IPv6), from /proc."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if f[3] == "0A" and int(f[1].rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                inodes.add(f[9])
    pids = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            for fd in (proc / "fd").iterdir():
                if os.readlink(fd) in {f"socket:[{i}]" for i in inodes}:
                    pids.add(int(proc.name))
        except OSError:
            continue
    return pids


def live_members(pgid: int, settle: float = 5) -> list:
    """The processes of group pgid that are not zombies (a killed child is one until its new
    parent reaps it, and a zombie still answers kill(pid, 0)), after up to `settle` seconds
    for SIGKILL to take effect."""
    deadline = time.monotonic() + settle
    while True:
        alive = []
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                rest = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(rest[2]) == pgid and rest[0] != "Z":
                alive.append(int(proc.name))
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.05)


def group_of(pid: int):
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


class GitDaemonTest(ServerTestCase):
    def test_anonymous_clone_and_fetch(self):
        d = self.serve(GitDaemon(self.root, self.logs))
        timing("git daemon start", d.started_in)
        self.assertEqual(d.url("client.git"), f"git://127.0.0.1:{d.port}/client.git")
        self.clone_and_fetch(d.url("client.git"))
        self.git("ls-remote", d.url("missing.git"), ok=False)

    def test_stop_kills_the_group_and_frees_the_port(self):
        """stop() ends the whole process group (the daemon and its children) and closes its
        socket. The port itself may be taken again at once by another process (the kernel
        hands out freed ports; CI runs another suite beside this one): what is checked is that
        nothing of this group still listens on it."""
        d = GitDaemon(self.root, self.logs)
        pid, port = d.pid, d.port
        self.assertTrue(port_open(port))
        self.assertTrue(any(group_of(p) == pid for p in listeners(port)), "the daemon's group listens")
        d.stop()
        self.assertEqual(live_members(pid), [], "a process of the daemon's group outlived stop()")
        self.assertFalse(Path(f"/proc/{pid}").exists())
        self.assertFalse(any(group_of(p) == pid for p in listeners(port)), "the daemon's group still listens")
        d.stop()  # idempotent


class HttpTest(ServerTestCase):
    def test_anonymous_clone_and_fetch(self):
        h = self.serve(GitHttpServer(self.root, self.logs))
        timing("http server start", h.started_in)
        self.assertEqual(h.url("client.git"), f"http://127.0.0.1:{h.port}/client.git")
        dest = self.clone_and_fetch(h.url("client.git"))
        times = []
        for _ in range(5):
            t0 = time.monotonic()
            self.git("-C", dest, "fetch", "-q", "origin", "+refs/heads/*:refs/heads/*")
            times.append(time.monotonic() - t0)
        timing("no-change git fetch over http (best of 5)", min(times))
        timing("no-change git fetch over http (worst of 5)", max(times))
        # The figures are printed, not asserted: a test must not fail because the machine is busy
        # (bench/pull-nochange measures the agent's own fetch against git's).
        lines = h.requests()
        self.assertIn("GET /client.git/info/refs?service=git-upload-pack 200", lines)
        self.assertIn("POST /client.git/git-upload-pack 200", lines)
        self.assertEqual(h.count(status=401), 0)
        # a repository that is not there
        self.git("ls-remote", h.url("missing.git"), ok=False)
        self.assertTrue(h.requests()[-1].endswith(" 404"), h.requests()[-1])

    def test_basic_auth_right_password(self):
        h = self.serve(GitHttpServer(self.root, self.logs, user="fleet", password="s3cret"))
        self.assertNotIn("s3cret", h.url("client.git"))
        self.clone_and_fetch(h.url("client.git", user="fleet", password="s3cret"))
        ok = [e for e in h.request_entries() if e["status"] == 200]
        self.assertTrue(ok)
        self.assertTrue(all(e["user"] == "fleet" for e in ok))

    def test_basic_auth_wrong_or_missing_password(self):
        h = self.serve(GitHttpServer(self.root, self.logs, user="fleet", password="s3cret"))
        r = self.git("ls-remote", h.url("client.git", user="fleet", password="wrong"), ok=False)
        self.assertIn("Authentication failed", r.stderr)
        self.assertEqual(h.count(status=200), 0)
        self.assertTrue(h.requests()[-1].endswith(" 401"))
        self.assertTrue(all(line.endswith(" 401") for line in h.requests()))
        h.clear_requests()
        self.git("ls-remote", h.url("client.git"), ok=False)
        self.assertEqual(h.requests(), ["GET /client.git/info/refs?service=git-upload-pack 401"])

    def test_gzip_and_chunked_request_bodies(self):
        # One branch per commit, so the client sends one "want" per branch: 100 wants make a
        # request git gzips (> 1 KiB), 2000 one larger than LARGE_PACKET_MAX that it sends chunked.
        many = self.root / "many.git"
        make_bare_repo_with_commits(many, 2000)
        revs = self.git("-C", many, "rev-list", "main").stdout.split()
        subprocess.run(["git", "-C", many, "update-ref", "--stdin"], check=True, env=self.env,
                       input="".join(f"create refs/heads/b{i} {r}\n" for i, r in enumerate(revs)), text=True)
        h = self.serve(GitHttpServer(self.root, self.logs))
        # http.postBuffer must exceed LARGE_PACKET_MAX (65520); a request larger than it goes chunked
        self.git("-c", "http.postBuffer=70000", "clone", "-q", "--bare", h.url("many.git"), self.tmp / "many")
        chunked = [e for e in h.request_entries() if e["transfer_encoding"] == "chunked"]
        self.assertTrue(chunked, h.request_entries())
        self.assertTrue(all(e["status"] == 200 for e in chunked))
        h.clear_requests()
        small = self.tmp / "small"
        self.git("init", "-q", "--bare", small)
        self.git("-C", small, "fetch", "-q", h.url("many.git"),
                 *(f"refs/heads/b{i}:refs/heads/b{i}" for i in range(100)))
        gz = [e for e in h.request_entries() if e["content_encoding"] == "gzip"]
        self.assertTrue(gz, h.request_entries())
        self.assertTrue(all(e["status"] == 200 for e in gz))
        self.assertEqual(self.rev(small, "b99"), revs[99])

    def test_https_with_and_without_the_ca(self):
        ca, cert, key = make_tls_ca(self.tmp / "tls")
        h = self.serve(GitHttpServer(self.root, self.logs, tls=(cert, key)))
        url = h.url("client.git")
        self.assertTrue(url.startswith("https://127.0.0.1:"))
        r = self.git("ls-remote", url, ok=False)
        self.assertRegex(r.stderr, "(?i)certificate|SSL")
        self.assertEqual(h.requests(), [])  # refused before any request
        other_ca = make_tls_ca(self.tmp / "other-tls").ca_cert
        self.git("-c", f"http.sslCAInfo={other_ca}", "ls-remote", url, ok=False)
        self.clone_and_fetch(url, "-c", f"http.sslCAInfo={ca}")
        self.clone_and_fetch(h.url("client.git").replace("127.0.0.1", "localhost"),
                             "-c", f"http.sslCAInfo={ca}", dest="clone-localhost")

    def test_https_with_basic_auth(self):
        ca, cert, key = make_tls_ca(self.tmp / "tls")
        h = self.serve(GitHttpServer(self.root, self.logs, user="u", password="p w:x", tls=(cert, key)))
        self.git("-c", f"http.sslCAInfo={ca}", "ls-remote", h.url("client.git", user="u", password="p w:x"))
        self.git("-c", f"http.sslCAInfo={ca}", "ls-remote", h.url("client.git", user="u", password="p"), ok=False)
        self.assertTrue(h.requests()[-1].endswith(" 401"))


class HttpModesTest(ServerTestCase):
    LOW_SPEED = ("-c", "http.lowSpeedLimit=1", "-c", "http.lowSpeedTime=2")

    def test_stall(self):
        h = self.serve(GitHttpServer(self.root, self.logs, mode="stall"))
        t0 = time.monotonic()
        r = self.git(*self.LOW_SPEED, "ls-remote", h.url("client.git"), ok=False)
        took = time.monotonic() - t0
        timing("git ls-remote against a stalled server", took)
        self.assertLess(took, 6)
        self.assertGreater(took, 1.5)
        self.assertRegex(r.stderr, "(?i)too slow|timed? ?out|Operation")
        self.assertEqual(h.requests(), ["GET /client.git/info/refs?service=git-upload-pack -"])
        # a stalled connection does not keep the server from stopping
        port, pid = h.port, h.pid
        t0 = time.monotonic()
        h.stop()
        self.assertLess(time.monotonic() - t0, 3)
        self.assertFalse(any(group_of(p) == pid for p in listeners(port)), "the server's group still listens")

    def test_stall_body_after_the_advertisement(self):
        h = self.serve(GitHttpServer(self.root, self.logs, mode="stall-body"))
        t0 = time.monotonic()
        self.git(*self.LOW_SPEED, "clone", "-q", "--bare", h.url("client.git"), self.tmp / "c", ok=False)
        self.assertLess(time.monotonic() - t0, 6)
        self.assertEqual(h.requests()[0], "GET /client.git/info/refs?service=git-upload-pack 200")
        self.assertEqual(h.requests()[-1], "POST /client.git/git-upload-pack 200")

    def test_500_and_set_mode(self):
        h = self.serve(GitHttpServer(self.root, self.logs, mode="500"))
        self.git("ls-remote", h.url("client.git"), ok=False)
        self.assertEqual(h.requests(), ["GET /client.git/info/refs?service=git-upload-pack 500"])
        h.set_mode("normal")
        self.git("ls-remote", h.url("client.git"))
        h.set_mode("500-post")
        self.git("clone", "-q", "--bare", h.url("client.git"), self.tmp / "c", ok=False)
        self.assertTrue(h.requests()[-2].endswith(" 200"))
        self.assertEqual(h.requests()[-1], "POST /client.git/git-upload-pack 500")

    def test_slow(self):
        delay = 0.001
        h = self.serve(GitHttpServer(self.root, self.logs, mode="slow", slow_delay=delay))
        t0 = time.monotonic()
        r = self.git("ls-remote", h.url("client.git"))
        took = time.monotonic() - t0
        self.assertIn(self.tip, r.stdout)
        sent = sum(e["bytes_out"] for e in h.request_entries())
        timing(f"git ls-remote in slow mode ({sent} body bytes, {delay * 1000:.0f} ms a byte)", took)
        self.assertGreater(took, sent * delay)


class SshTest(ServerTestCase):
    def setUp(self):
        super().setUp()
        self.key, pub = make_ssh_key(self.tmp / "id_ed25519")
        self.authorized = self.tmp / "authorized_keys"
        self.authorized.write_text(pub + "\n")
        t0 = time.monotonic()
        self.s = self.serve(SshServer(self.logs, self.authorized, self.root))
        timing("sshd start", time.monotonic() - t0)
        self.known = self.tmp / "known_hosts"
        self.known.write_text(self.s.known_hosts_line())

    def ssh_env(self, key=None):
        return {"GIT_SSH_COMMAND": f"ssh -i {key or self.key} -o UserKnownHostsFile={self.known} "
                                   "-o StrictHostKeyChecking=yes -o BatchMode=yes -o GlobalKnownHostsFile=/dev/null "
                                   "-o IdentitiesOnly=yes -F /dev/null"}

    def test_right_key_and_known_host(self):
        s = self.s
        self.assertEqual(s.url("client.git"), f"ssh://root@127.0.0.1:{s.port}{self.root}/client.git")
        self.assertRegex(s.known_hosts_line(), rf"^\[127\.0\.0\.1\]:{s.port} ssh-ed25519 AAAA\S+\n$")
        self.clone_and_fetch(s.url("client.git"), env=self.ssh_env())
        self.assertIn("Accepted publickey for root", s.log.read_text())

    def test_hashed_known_hosts_line(self):
        self.known.write_text(self.s.known_hosts_line(hashed=True))
        self.assertTrue(self.known.read_text().startswith("|1|"))
        self.git("ls-remote", self.s.url("client.git"), env=self.ssh_env())

    def test_wrong_host_key(self):
        _, other = make_ssh_key(self.tmp / "other_host_key")
        self.known.write_text(known_hosts_line("127.0.0.1", self.s.port, other))
        r = self.git("ls-remote", self.s.url("client.git"), env=self.ssh_env(), ok=False)
        self.assertIn("Host key verification failed", r.stderr)
        self.known.write_text("")
        r = self.git("ls-remote", self.s.url("client.git"), env=self.ssh_env(), ok=False)
        self.assertIn("Host key verification failed", r.stderr)
        self.assertNotIn("Accepted publickey", self.s.log.read_text())

    def test_wrong_client_key(self):
        other, _ = make_ssh_key(self.tmp / "id_other")
        r = self.git("ls-remote", self.s.url("client.git"), env=self.ssh_env(other), ok=False)
        self.assertIn("Permission denied", r.stderr)

    def test_scp_like_urls_for_the_git_cli(self):
        s = self.s
        # git's own [user@host:port]:path form
        url = s.scp_url("client.git")
        self.assertEqual(url, f"[root@127.0.0.1:{s.port}]:{self.root}/client.git")
        self.assertIn(self.tip, self.git("ls-remote", url, env=self.ssh_env()).stdout)
        # a host alias in an ssh_config
        cfg = s.ssh_config(self.tmp / "ssh_config", self.key, self.known)
        r = self.git("ls-remote", f"gitserver:{self.root}/client.git",
                     env={"GIT_SSH_COMMAND": f"ssh -F {cfg}"})
        self.assertIn(self.tip, r.stdout)

    def test_scp_like_url_on_port_22(self):
        s22 = self.serve(SshServer(self.logs, self.authorized, self.root, port=22))
        self.assertEqual(s22.port, 22)
        self.assertTrue(s22.host.startswith("127.") and s22.host != "127.0.0.1")
        url = s22.scp_url("client.git")
        self.assertEqual(url, f"root@{s22.host}:{self.root}/client.git")
        self.known.write_text(s22.known_hosts_line())
        self.assertTrue(self.known.read_text().startswith(f"{s22.host} ssh-ed25519 "))
        self.assertIn(self.tip, self.git("ls-remote", url, env=self.ssh_env()).stdout)


class RepoTest(unittest.TestCase):
    def test_10000_commits(self):
        tmp = Path(tempfile.mkdtemp(prefix="servers-selftest-"))
        self.addCleanup(shutil.rmtree, tmp, True)
        t0 = time.monotonic()
        tip = make_bare_repo_with_commits(tmp / "big.git", 10_000)
        took = time.monotonic() - t0
        # Printed, not asserted: speed is for bench/, and a loaded machine is slower.
        timing("make_bare_repo_with_commits(10 000)", took)
        git = lambda *a: subprocess.run(["git", "-C", str(tmp / "big.git"), *a], check=True,  # noqa: E731
                                        capture_output=True, text=True).stdout.strip()
        self.assertEqual(git("rev-parse", "main"), tip)
        self.assertEqual(git("rev-list", "--count", "main"), "10000")
        self.assertEqual(git("show", "main:counter"), "10000")
        # same call, same ids; more commits go on top
        self.assertEqual(make_bare_repo_with_commits(tmp / "again.git", 10_000), tip)
        tip2 = make_bare_repo_with_commits(tmp / "big.git", 2, files={"flake.nix": "{ }\n"})
        self.assertEqual(git("rev-parse", "main~2"), tip)
        self.assertEqual(git("rev-parse", "main"), tip2)
        self.assertEqual(git("show", "main:flake.nix"), "{ }")
        git("fsck", "--no-progress")


if __name__ == "__main__":
    # These test the test machinery, not the agent: nothing here for sanitizers to see.
    if os.environ.get("ATTICD_SANITIZE"):
        print("skipped under sanitizers (tools/test --sanitize): no agent code runs here", file=sys.stderr)
        sys.exit(77)
    unittest.main()
