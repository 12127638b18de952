# SPDX-License-Identifier: MIT
"""Real git servers on 127.0.0.1 for the integration tests (Python 3 standard library only).

- GitDaemon: `git daemon` (git://), anonymous.
- GitHttpServer: smart HTTP, `git http-backend` as CGI behind tests/servers/git-http-server.py,
  with optional basic auth, TLS, a request log and misbehaviour modes (stall, slow, 500, ...).
- SshServer: OpenSSH's sshd with its own host key and configuration.
- make_tls_ca: a private CA and a server certificate for 127.0.0.1/localhost (openssl CLI).
- make_ssh_key, known_hosts_line: client keys and known_hosts lines.
- make_bare_repo_with_commits: a bare repository with n commits (git fast-import; 10 000
  commits in well under a second).

Each server is started by its constructor on a free port, which returns once the server
accepts connections, and is also a context manager: stop() (or leaving the `with` block)
kills its whole process group. Servers die with the process that started them (they get
PR_SET_PDEATHSIG, which follows the thread that started them: start servers from the main
thread), so a test run killed by a timeout leaves none behind. Each writes its
logs below the given log directory (names start with the kind of server and a number, so
several servers can share one directory).

    with GitHttpServer(root, logs, user="fleet", password="s3cret") as h:
        subprocess.run(["git", "clone", h.url("client.git", user="fleet", password="s3cret"), dst])
        h.requests()          # ["GET /client.git/info/refs?service=git-upload-pack 401", ...]

About scp-like ssh URLs (user@host:path): the plain form cannot carry a port; both git and
libgit2 1.5.1 then connect to port 22 (libgit2 reads no ~/.ssh/config). Three ways for a test:
- git's bracket form [user@host:port]:path (SshServer.scp_url() on a port other than 22):
  the git CLI and libgit2 1.5.1 (Debian 12) both connect to that port. (The agent's own
  known_hosts lookup must then use that port, too: as of this writing its ssh_url_port()
  takes 22 for every URL without "://".)
- SshServer(..., port=22): sshd on port 22 of a loopback address of its own, 127.x.y.z, which
  cannot clash with another test or a system sshd; scp_url() is then plain
  user@127.x.y.z:/path and the known_hosts line has the bare address. Needs root.
- for the git CLI only: a host alias in the ssh_config written by SshServer.ssh_config().
"""

from __future__ import annotations

import base64
import ctypes
import hashlib
import hmac
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import unittest
from collections import namedtuple
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from world import free_port  # noqa: E402

SERVERS_DIR = Path(__file__).resolve().parents[1] / "servers"
HTTP_SERVER = SERVERS_DIR / "git-http-server.py"
HTTP_PROXY = SERVERS_DIR / "http-proxy.py"
GIT_HTTP_BACKEND = "/usr/lib/git-core/git-http-backend"
HTTP_MODES = ("normal", "500", "stall", "slow", "500-post", "stall-post", "slow-post", "stall-body", "close-body",
              "endless-post", "garbage-refs", "redirect")

_PR_SET_PDEATHSIG = 1
_counter = itertools.count(1)


def _die_with_parent():  # preexec_fn: runs in the child between fork and exec
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except Exception:
        pass


def _tail(path: Path, n: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-n:]
    except OSError:
        return "(no log)"


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


class ServerError(RuntimeError):
    pass


class _Server:
    """A server process in its own process group, logging to a file in logdir."""

    kind = "server"
    proc: subprocess.Popen | None = None
    host = "127.0.0.1"
    port: int = 0

    def __init__(self, logdir):
        self.logdir = Path(logdir).resolve()
        self.logdir.mkdir(parents=True, exist_ok=True)
        self.name = f"{self.kind}-{next(_counter)}"
        self.log = self.logdir / f"{self.name}.log"
        self.started_in = None  # seconds from constructor to accepting connections

    def _spawn(self, argv, env=None):
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen([str(a) for a in argv], stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=subprocess.STDOUT, env=env,
                                         start_new_session=True, preexec_fn=_die_with_parent)

    def _wait_port(self, timeout: float = 10):
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise ServerError(f"{self.name} exited with {self.proc.returncode} before listening "
                                  f"on {self.host}:{self.port}:\n{_tail(self.log)}")
            if port_open(self.port, self.host):
                return
            if time.monotonic() > deadline:
                self.stop()
                raise ServerError(f"{self.name} did not listen on {self.host}:{self.port} within "
                                  f"{timeout} s:\n{_tail(self.log)}")
            time.sleep(0.005)

    def _start_on_free_port(self, argv_for_port, attempts: int = 5, port=None):
        """Start with a port from free_port() (or the given one), retrying when another
        process took the port in between."""
        t0 = time.monotonic()
        for attempt in range(attempts):
            self.port = port or free_port()
            self._spawn(argv_for_port(self.port))
            try:
                self._wait_port()
                self.started_in = time.monotonic() - t0
                return
            except ServerError:
                in_use = "in use" in _tail(self.log, 1000)
                self.stop()
                if not in_use or port or attempt == attempts - 1:
                    raise

    def _start_with_port_file(self, argv, env, port_file: Path, timeout: float = 10):
        """Start a server that picks its own port and writes it to port_file once it listens."""
        t0 = time.monotonic()
        self._spawn(argv, env=env)
        while not port_file.exists():
            if self.proc.poll() is not None or time.monotonic() > t0 + timeout:
                self.stop()
                raise ServerError(f"{self.name} did not start:\n{_tail(self.log)}")
            time.sleep(0.005)
        self.port = int(port_file.read_text())
        self.started_in = time.monotonic() - t0

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        """Kill the server's process group (TERM, then KILL after 1 s). Idempotent."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        pgid = proc.pid
        for sig, wait in ((signal.SIGTERM, 1.0), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(timeout=wait)
                if sig == signal.SIGTERM:
                    try:  # leftovers of the group (git upload-pack, CGI children, ...)
                        os.killpg(pgid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                break
            except subprocess.TimeoutExpired:
                continue
        if proc.poll() is None:
            proc.wait()

    close = stop

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def __del__(self):
        try:
            self.stop()
        except Exception:
            pass


# ---------------------------------------------------------------------------------------------
# git daemon


class GitDaemon(_Server):
    """git daemon --export-all below base_path: git://127.0.0.1:PORT/<name>. Anonymous,
    read-only; --verbose, so the log shows every request."""

    kind = "git-daemon"

    def __init__(self, base_path, logdir, *, extra_args=()):
        super().__init__(logdir)
        self.base_path = Path(base_path).resolve()
        self._start_on_free_port(lambda port: [
            "git", "daemon", f"--base-path={self.base_path}", "--export-all", "--reuseaddr",
            "--listen=127.0.0.1", f"--port={port}", "--informative-errors", "--verbose",
            *extra_args, str(self.base_path)])

    def url(self, name) -> str:
        return f"git://127.0.0.1:{self.port}/{str(name).lstrip('/')}"


# ---------------------------------------------------------------------------------------------
# smart HTTP


class GitHttpServer(_Server):
    """Smart HTTP for the repositories below project_root: http(s)://127.0.0.1:PORT/<name>.

    user/password: basic auth required on every request (401 with
    `WWW-Authenticate: Basic realm="git"` otherwise). tls: (certfile, keyfile) for https.
    mode: one of HTTP_MODES (see tests/servers/git-http-server.py); set_mode() changes it
    while the server runs. slow_delay: seconds between bytes in the slow modes.

    requests() -> ["METHOD PATH STATUS", ...] (STATUS "-" for a request never answered);
    request_entries() -> dicts with method, path, status, user, bytes_in, bytes_out,
    content_encoding, transfer_encoding, git_protocol, mode, authorization (the header, or None),
    absolute_form (the request named
    the server in its target, as for a proxy)."""

    kind = "git-http"

    def __init__(self, project_root, logdir, user=None, password=None, tls=None, mode="normal",
                 *, slow_delay: float = 0.2, bind: str = "127.0.0.1", redirect_to: str | None = None):
        super().__init__(logdir)
        if mode not in HTTP_MODES:
            raise ValueError(f"mode must be one of {HTTP_MODES}")
        if (user is None) != (password is None):
            raise ValueError("give both user and password, or neither")
        self.project_root = Path(project_root).resolve()
        self.user, self.password, self.tls = user, password, tls
        self.scheme = "https" if tls else "http"
        self.bind = bind
        self.requests_log = self.logdir / f"{self.name}.requests"
        self.json_log = self.logdir / f"{self.name}.requests.jsonl"
        self.mode_file = self.logdir / f"{self.name}.mode"
        port_file = self.logdir / f"{self.name}.port"
        for p in (self.requests_log, self.json_log, port_file):
            p.unlink(missing_ok=True)
        self.set_mode(mode)
        argv = [sys.executable, "-S", HTTP_SERVER, "--root", self.project_root, "--port-file", port_file,
                "--log", self.requests_log, "--json-log", self.json_log, "--mode", mode,
                "--mode-file", self.mode_file, "--slow-delay", slow_delay, "--bind", bind]
        if redirect_to:
            argv += ["--redirect-to", redirect_to]
        env = dict(os.environ)
        if user is not None:
            argv += ["--user", user, "--password-env", "GIT_HTTP_SERVER_PASSWORD"]
            env["GIT_HTTP_SERVER_PASSWORD"] = password
        if tls:
            argv += ["--cert", tls[0], "--key", tls[1]]
        self._start_with_port_file(argv, env, port_file)

    def url(self, name, *, user=None, password=None) -> str:
        """The URL of repository `name`; with user (and password) embedded if given."""
        cred = ""
        if user is not None:
            from urllib.parse import quote
            cred = quote(user, safe="") + (":" + quote(password, safe="") if password is not None else "") + "@"
        return f"{self.scheme}://{cred}{self.bind}:{self.port}/{str(name).lstrip('/')}"

    def set_mode(self, mode: str):
        if mode not in HTTP_MODES:
            raise ValueError(f"mode must be one of {HTTP_MODES}")
        tmp = self.mode_file.with_suffix(".tmp")
        tmp.write_text(mode + "\n")
        os.replace(tmp, self.mode_file)
        self.mode = mode

    def requests(self) -> list[str]:
        try:
            return self.requests_log.read_text().splitlines()
        except FileNotFoundError:
            return []

    def request_entries(self) -> list[dict]:
        try:
            return [json.loads(line) for line in self.json_log.read_text().splitlines() if line]
        except FileNotFoundError:
            return []

    def count(self, *, method=None, path_contains=None, status=None) -> int:
        """How many requests match (status None matches any; "-" for unanswered ones)."""
        n = 0
        for e in self.request_entries():
            if method and e["method"] != method:
                continue
            if path_contains and path_contains not in e["path"]:
                continue
            if status is not None and (e["status"] or "-") != status:
                continue
            n += 1
        return n

    def clear_requests(self):
        """Forget the requests so far (the server appends to the same files)."""
        for p in (self.requests_log, self.json_log):
            if p.exists():
                with open(p, "r+") as f:
                    f.truncate(0)


# ---------------------------------------------------------------------------------------------
# a forward proxy


class HttpProxy(_Server):
    """An HTTP forward proxy on 127.0.0.1 (tests/servers/http-proxy.py): CONNECT tunnels and
    absolute-form requests; with user/password it answers 407 to requests without that basic
    Proxy-Authorization. url() is what goes into http_proxy / https_proxy; requests() ->
    ["METHOD TARGET STATUS", ...]."""

    kind = "http-proxy"

    def __init__(self, logdir, user=None, password=None):
        super().__init__(logdir)
        self.user, self.password = user, password
        self.requests_log = self.logdir / f"{self.name}.requests"
        port_file = self.logdir / f"{self.name}.port"
        for p in (self.requests_log, port_file):
            p.unlink(missing_ok=True)
        argv = [sys.executable, "-S", HTTP_PROXY, "--port-file", port_file, "--log", self.requests_log]
        env = dict(os.environ)
        if user is not None:
            argv += ["--user", user, "--password-env", "HTTP_PROXY_PASSWORD"]
            env["HTTP_PROXY_PASSWORD"] = password
        self._start_with_port_file(argv, env, port_file)

    def url(self, *, user=None, password=None) -> str:
        cred = f"{user}:{password}@" if user is not None else ""
        return f"http://{cred}127.0.0.1:{self.port}"

    def requests(self) -> list[str]:
        try:
            return self.requests_log.read_text().splitlines()
        except FileNotFoundError:
            return []


# ---------------------------------------------------------------------------------------------
# TLS

TlsFiles = namedtuple("TlsFiles", "ca_cert cert key")
TlsFiles.__doc__ = """Paths: the CA certificate (for http.sslCAInfo / the agent's ca-file), the
server certificate and its key (for GitHttpServer(tls=(cert, key))). The CA's key is
ca.key next to ca_cert."""


def make_tls_ca(directory, *, hosts=("IP:127.0.0.1", "DNS:localhost"), days: int = 30) -> TlsFiles:
    """A private CA and a server certificate signed by it (EC P-256), made with the openssl
    CLI in directory: returns TlsFiles(ca_cert, cert, key), which unpacks as a 3-tuple."""
    d = Path(directory).resolve()
    d.mkdir(parents=True, exist_ok=True)
    ca_key, ca, key, csr, cert, ext = (d / n for n in ("ca.key", "ca.pem", "server.key", "server.csr",
                                                        "server.pem", "server-ext.cnf"))

    def openssl(*a):
        r = subprocess.run(["openssl", *map(str, a)], capture_output=True, text=True)
        if r.returncode != 0:
            raise ServerError(f"openssl {' '.join(map(str, a))}: {r.stderr}")

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", ca_key, "-out", ca, "-days", days, "-subj",
            "/CN=atticd-agent test CA", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    openssl("req", *ec, "-keyout", key, "-out", csr, "-subj", "/CN=127.0.0.1")
    ext.write_text(f"subjectAltName={','.join(hosts)}\nbasicConstraints=critical,CA:FALSE\n"
                   "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n")
    openssl("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-out", cert,
            "-days", days, "-extfile", ext)
    return TlsFiles(ca, cert, key)


# ---------------------------------------------------------------------------------------------
# ssh


def make_ssh_key(path, key_type: str = "ed25519", comment: str = "atticd-test") -> tuple[Path, str]:
    """ssh-keygen a key without passphrase at path (private) and path.pub; returns
    (private key path, public key line)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    Path(f"{path}.pub").unlink(missing_ok=True)
    args = ["-t", key_type] + (["-b", "3072"] if key_type == "rsa" else [])
    subprocess.run(["ssh-keygen", "-q", *args, "-N", "", "-C", comment, "-f", str(path)],
                   check=True, capture_output=True)
    return path, Path(f"{path}.pub").read_text().strip()


def known_hosts_line(host: str, port: int, public_key: str, *, hashed: bool = False) -> str:
    """A known_hosts line (with newline) for host:port and a public key line "TYPE BASE64 ...".
    Port 22 is written as the bare host, any other as [host]:port, as OpenSSH does; hashed
    gives the |1|salt|hmac form of `ssh-keygen -H`."""
    ktype, kdata = public_key.split()[:2]
    name = host if port == 22 else f"[{host}]:{port}"
    if hashed:
        salt = os.urandom(20)
        mac = hmac.new(salt, name.encode(), hashlib.sha1).digest()
        name = f"|1|{base64.b64encode(salt).decode()}|{base64.b64encode(mac).decode()}"
    return f"{name} {ktype} {kdata}\n"


def _free_loopback_port22() -> str:
    """A loopback address 127.x.y.z on which port 22 is free (any of them reaches lo)."""
    base = os.getpid() * 7919
    for i in range(200):
        n = (base + i * 104729) % (254 * 254 * 250)
        host = f"127.{1 + n // (254 * 250) % 254}.{1 + n // 250 % 254}.{2 + n % 250}"
        with socket.socket() as s:
            try:
                s.bind((host, 22))
                return host
            except OSError:
                continue
    raise unittest.SkipTest("no loopback address with port 22 free")


class SshServer(_Server):
    """OpenSSH's sshd on 127.0.0.1 (sshd -D -e -f CONFIG -p PORT): its own ed25519 host key
    and configuration in logdir/ssh-N/, public key authentication only against the
    authorized_keys file given, no PAM, StrictModes no. Logins as the user running the tests
    (root here; git-upload-pack runs as that user through its login shell).

    repos_root: where url()/scp_url() resolve relative paths (absolute ones are taken as they
    are). port=22 serves on a loopback address of its own (127.x.y.z:22) so scp-like URLs
    work with libgit2; host_key_types adds more host keys ("ecdsa", "rsa").

    Raises unittest.SkipTest when sshd is missing or cannot run here (with the reason)."""

    kind = "ssh"

    def __init__(self, logdir, authorized_keys, repos_root=None, *, port=None,
                 host_key_types=("ed25519",), user=None, log_level="VERBOSE"):
        super().__init__(logdir)
        sshd = shutil.which("sshd") or "/usr/sbin/sshd"
        if not os.path.exists(sshd):
            raise unittest.SkipTest("sshd is not installed (Debian package openssh-server)")
        sshd = os.path.abspath(sshd)  # sshd re-execs itself and insists on an absolute path
        self.user = user or _current_user()
        self.repos_root = Path(repos_root).resolve() if repos_root else None
        self.dir = self.logdir / self.name
        self.dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            _ensure_privsep_dir()
        self.host_keys = {}
        for t in host_key_types:
            k, _ = make_ssh_key(self.dir / f"ssh_host_{t}_key", t, comment=f"{self.name}-host")
            self.host_keys[t] = k
        self.host_key = self.host_keys[host_key_types[0]]
        self.authorized_keys = Path(authorized_keys).resolve()
        self.config = self.dir / "sshd_config"
        self.pidfile = self.dir / "sshd.pid"
        if port == 22:
            if os.geteuid() != 0:
                raise unittest.SkipTest("sshd on port 22 needs root")
            self.host = _free_loopback_port22()
        self.config.write_text("\n".join([
            f"ListenAddress {self.host}",
            *(f"HostKey {k}" for k in self.host_keys.values()),
            f"PidFile {self.pidfile}",
            f"AuthorizedKeysFile {self.authorized_keys}",
            "AuthorizedPrincipalsFile none",
            "StrictModes no",
            "UsePAM no",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "HostbasedAuthentication no",
            "PermitRootLogin prohibit-password",
            "PermitEmptyPasswords no",
            "UseDNS no",
            "PrintMotd no",
            "PrintLastLog no",
            "AllowTcpForwarding no",
            "X11Forwarding no",
            "PermitTTY no",
            "LoginGraceTime 30",
            "MaxStartups 50:30:100",
            "MaxSessions 20",
            f"LogLevel {log_level}",
            "",
        ]))
        test = subprocess.run([sshd, "-t", "-f", str(self.config)], capture_output=True, text=True)
        if test.returncode != 0:
            raise unittest.SkipTest(f"sshd cannot run here: sshd -t: {test.stderr.strip()}")
        self._start_on_free_port(lambda p: [sshd, "-D", "-e", "-f", self.config, "-p", p], port=port)

    def public_host_key(self, key_type: str | None = None) -> str:
        key = self.host_keys[key_type] if key_type else self.host_key
        return " ".join(Path(f"{key}.pub").read_text().split()[:2])

    def known_hosts_line(self, key_type: str | None = None, *, hashed: bool = False) -> str:
        """"[127.0.0.1]:PORT ssh-ed25519 AAAA...\\n" (bare host on port 22)."""
        return known_hosts_line(self.host, self.port, self.public_host_key(key_type), hashed=hashed)

    def known_hosts_text(self) -> str:
        return "".join(self.known_hosts_line(t) for t in self.host_keys)

    def _path(self, path) -> str:
        p = str(path)
        if not p.startswith("/") and self.repos_root:
            p = str(self.repos_root / p)
        return p

    def url(self, path, user=None) -> str:
        """ssh://USER@127.0.0.1:PORT/ABS/PATH (path relative to repos_root unless absolute)."""
        p = self._path(path)
        return f"ssh://{user or self.user}@{self.host}:{self.port}{'' if p.startswith('/') else '/'}{p}"

    def scp_url(self, path, user=None) -> str:
        """The scp-like form. On port 22 (SshServer(port=22)) the plain user@127.x.y.z:/path;
        on any other port git's bracket form [user@127.0.0.1:PORT]:/path, which the git CLI
        and libgit2 1.5.1 both connect to PORT with."""
        p = self._path(path)
        u = user or self.user
        if self.port == 22:
            return f"{u}@{self.host}:{p}"
        return f"[{u}@{self.host}:{self.port}]:{p}"

    def ssh_config(self, path, identity_file, known_hosts_file, alias: str = "gitserver") -> Path:
        """An ssh_config for the git CLI (GIT_SSH_COMMAND="ssh -F PATH"): Host `alias` is this
        server with its port, so `alias:/abs/path.git` works as an scp-like URL. libgit2
        does not read ssh_config."""
        path = Path(path)
        path.write_text("\n".join([
            f"Host {alias}",
            f"  HostName {self.host}",
            f"  Port {self.port}",
            f"  User {self.user}",
            f"  IdentityFile {identity_file}",
            "  IdentitiesOnly yes",
            f"  UserKnownHostsFile {known_hosts_file}",
            "  StrictHostKeyChecking yes",
            "  GlobalKnownHostsFile /dev/null",
            "  BatchMode yes",
            "",
        ]))
        return path

    def git_ssh_command(self, identity_file, known_hosts_file) -> str:
        """A GIT_SSH_COMMAND value for the git CLI that uses only the given key and
        known_hosts file and refuses unknown host keys."""
        return (f"ssh -F /dev/null -i {identity_file} -o IdentitiesOnly=yes -o BatchMode=yes "
                f"-o UserKnownHostsFile={known_hosts_file} -o GlobalKnownHostsFile=/dev/null "
                f"-o StrictHostKeyChecking=yes")


def _current_user() -> str:
    import pwd
    return pwd.getpwuid(os.geteuid()).pw_name


def _ensure_privsep_dir():
    """sshd (Debian's) refuses to start without its privilege separation directory
    /run/sshd (normally made by systemd's RuntimeDirectory=); make it as the package would."""
    d = Path("/run/sshd")
    if d.is_dir():
        return
    try:
        d.mkdir(mode=0o755)
    except FileExistsError:
        pass
    except OSError as e:
        raise unittest.SkipTest(f"sshd needs /run/sshd and it cannot be made: {e}")


# ---------------------------------------------------------------------------------------------
# repositories

_FI_EPOCH = 1_600_000_000


def make_bare_repo_with_commits(path, n: int, *, branch: str = "main", files: dict | None = None,
                                message: str = "commit {i}") -> str:
    """A bare repository at path (created if missing) with n more commits on branch, made by
    one `git fast-import` run: commit i changes the file `counter` to i; the last one also
    holds `files` ({name: text}). If branch exists, the commits go on top of it. Returns the
    tip commit id. Dates are fixed, so the same call gives the same ids."""
    path = Path(path)
    if not (path / "HEAD").exists():
        subprocess.run(["git", "init", "-q", "--bare", "-b", branch, str(path)], check=True)
    ref = f"refs/heads/{branch}"
    r = subprocess.run(["git", "-C", str(path), "rev-parse", "-q", "--verify", ref + "^{commit}"],
                       capture_output=True, text=True)
    parent = r.stdout.strip() if r.returncode == 0 else None
    start = 1
    if parent:
        c = subprocess.run(["git", "-C", str(path), "rev-list", "--count", ref], capture_output=True, text=True)
        start = int(c.stdout) + 1
    chunks = []
    for k in range(n):
        i = start + k
        msg = message.format(i=i).encode()
        chunks.append(f"commit {ref}\nmark :{k + 1}\n"
                      f"author Fast Import <fi@example.org> {_FI_EPOCH + i} +0000\n"
                      f"committer Fast Import <fi@example.org> {_FI_EPOCH + i} +0000\n"
                      f"data {len(msg)}\n".encode() + msg + b"\n")
        if k == 0 and parent:
            chunks.append(f"from {parent}\n".encode())
        content = f"{i}\n".encode()
        chunks.append(f"M 100644 inline counter\ndata {len(content)}\n".encode() + content + b"\n")
        if k == n - 1:
            for name, text in (files or {}).items():
                data = text.encode() if isinstance(text, str) else bytes(text)
                chunks.append(f"M 100644 inline {name}\ndata {len(data)}\n".encode() + data + b"\n")
        chunks.append(b"\n")
    env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1"}
    fi = subprocess.run(["git", "-C", str(path), "fast-import", "--quiet", "--done"],
                        input=b"".join(chunks) + b"done\n", capture_output=True, env=env)
    if fi.returncode != 0:
        raise ServerError(f"git fast-import: {fi.stderr.decode(errors='replace')}")
    return subprocess.run(["git", "-C", str(path), "rev-parse", ref], check=True, capture_output=True,
                          text=True).stdout.strip()
