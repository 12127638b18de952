# SPDX-License-Identifier: MIT
"""Real git servers on 127.0.0.1 for the integration tests: git daemon (git://), smart HTTP
(`git http-backend` behind tests/servers/git-http-server.py, with basic auth, TLS and
misbehaviour modes), and OpenSSH's sshd. Each is a context manager that starts the server on
a free port, waits until it accepts connections, and kills its process group on exit."""

import os
import shutil
import signal
import socket
import subprocess
import time
import unittest
from pathlib import Path

from world import free_port

SERVERS = Path(__file__).resolve().parents[1] / "servers"


def _wait_port(port: int, proc: subprocess.Popen, what: str, timeout: float = 10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"{what} did not listen on port {port} within {timeout} s")


class _Server:
    proc: subprocess.Popen | None = None

    def _start(self, argv, log: Path, env=None):
        self.log = log
        self.proc = subprocess.Popen([str(a) for a in argv], stdin=subprocess.DEVNULL,
                                     stdout=open(log, "ab"), stderr=subprocess.STDOUT,
                                     start_new_session=True, env=env)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()
        self.proc = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


class GitDaemon(_Server):
    """git daemon --export-all below base_path: git://127.0.0.1:PORT/<name>."""

    def __init__(self, base_path, logdir):
        self.port = free_port()
        self._start(["git", "daemon", f"--base-path={base_path}", "--export-all", "--reuseaddr",
                     "--listen=127.0.0.1", f"--port={self.port}", "--informative-errors", str(base_path)],
                    Path(logdir) / "git-daemon.log")
        _wait_port(self.port, self.proc, "git daemon")

    def url(self, name):
        return f"git://127.0.0.1:{self.port}/{name}"


class GitHttpServer(_Server):
    """Smart HTTP over project_root: http(s)://127.0.0.1:PORT/<name>. mode: normal, stall
    (never answers), slow (a byte every 0.2 s), 500 (always an error)."""

    def __init__(self, project_root, logdir, user=None, password=None, tls=None, mode="normal"):
        logdir = Path(logdir)
        port_file = logdir / f"http-{id(self)}.port"
        self.requests_log = logdir / f"http-{id(self)}.requests"
        argv = [SERVERS / "git-http-server.py", "--root", project_root, "--port-file", port_file,
                "--mode", mode, "--log", self.requests_log]
        if user:
            argv += ["--user", user, "--password", password]
        if tls:
            argv += ["--cert", tls[0], "--key", tls[1]]
        self.scheme = "https" if tls else "http"
        self._start(argv, logdir / "git-http-server.log")
        deadline = time.monotonic() + 10
        while not port_file.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"git-http-server did not start: {(logdir / 'git-http-server.log').read_text()}")
            time.sleep(0.02)
        self.port = int(port_file.read_text())

    def url(self, name):
        return f"{self.scheme}://127.0.0.1:{self.port}/{name}"

    def requests(self):
        try:
            return self.requests_log.read_text().splitlines()
        except FileNotFoundError:
            return []


def make_tls_ca(directory):
    """A CA and a server certificate for 127.0.0.1/localhost signed by it:
    returns (ca_cert, server_cert, server_key)."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    ca_key, ca, key, csr, cert = (d / n for n in ("ca.key", "ca.pem", "server.key", "server.csr", "server.pem"))
    run = lambda *a: subprocess.run(["openssl", *map(str, a)], check=True, capture_output=True)  # noqa: E731
    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", ca_key,
        "-out", ca, "-days", "2", "-subj", "/CN=atticd-agent test CA")
    run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", csr,
        "-subj", "/CN=127.0.0.1")
    ext = d / "ext.cnf"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n")
    run("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-out", cert, "-days", "2",
        "-extfile", ext)
    return ca, cert, key


class SshServer(_Server):
    """OpenSSH's sshd on 127.0.0.1 with its own host key, accepting the keys in
    authorized_keys for any local user (tests run as root)."""

    def __init__(self, logdir, authorized_keys):
        sshd = shutil.which("sshd") or "/usr/sbin/sshd"
        if not os.path.exists(sshd):
            raise unittest.SkipTest("sshd is not installed (Debian package openssh-server)")
        if os.geteuid() != 0:
            raise unittest.SkipTest("sshd for the tests needs root (it switches to the logged-in user)")
        d = Path(logdir) / "sshd"
        d.mkdir(parents=True, exist_ok=True)
        self.host_key = d / "ssh_host_ed25519_key"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.host_key)], check=True)
        self.port = free_port()
        config = d / "sshd_config"
        config.write_text(f"""Port {self.port}
ListenAddress 127.0.0.1
HostKey {self.host_key}
PidFile {d / 'sshd.pid'}
AuthorizedKeysFile {authorized_keys}
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin prohibit-password
""")
        os.makedirs("/run/sshd", exist_ok=True)  # sshd's privilege separation directory
        self._start([sshd, "-D", "-e", "-f", config], d / "sshd.log")
        _wait_port(self.port, self.proc, "sshd")

    def known_hosts_line(self):
        key = Path(str(self.host_key) + ".pub").read_text().split()
        return f"[127.0.0.1]:{self.port} {key[0]} {key[1]}\n"

    def url(self, path, user="root"):
        return f"ssh://{user}@127.0.0.1:{self.port}{path}"


def make_bare_repo_with_commits(world, path, n, files=None):
    """A bare repository with n commits on main (the last one holding `files`), made with
    git fast-import in one pass. Returns the tip commit id."""
    path = Path(path)
    world.git("init", "-q", "--bare", "-b", "main", str(path))
    chunks = []
    for i in range(1, n + 1):
        msg = f"commit {i}".encode()
        chunks.append(b"commit refs/heads/main\n")
        chunks.append(f"mark :{i}\ncommitter T <t@example.org> {1_700_000_000 + i} +0000\n".encode())
        chunks.append(f"data {len(msg)}\n".encode() + msg + b"\n")
        if i > 1:
            chunks.append(f"from :{i - 1}\n".encode())
        content = f"{i}\n".encode()
        chunks.append(f"M 100644 inline counter\ndata {len(content)}\n".encode() + content + b"\n")
        if i == n:
            for name, text in (files or {}).items():
                data = text.encode()
                chunks.append(f"M 100644 inline {name}\ndata {len(data)}\n".encode() + data + b"\n")
        chunks.append(b"\n")
    subprocess.run(["git", "-C", str(path), "fast-import", "--quiet"], input=b"".join(chunks), check=True)
    return world.git("-C", str(path), "rev-parse", "main").stdout.strip()
