# SPDX-License-Identifier: MIT
"""The test world of the atticd-agent integration tests (Python 3 standard library only).

A World is one NixOS machine stand-in in a temporary directory, built from real parts:

- a private nix store and nix state (NIX_STORE_DIR etc. below the temp dir; /nix is never
  touched and no root is needed),
- client git repositories (a bare "remote" plus a work clone) holding the flake template of
  tests/world/flake, whose parameters come from world.json,
- tests/world/nixos-rebuild, a stand-in that builds with real nix, sets a real profile
  generation and runs the toplevel's switch-to-configuration, which (re)starts a small HTTP
  service on a loopback port that answers the revision's health_status on /health,
- optionally, a counting wrapper around nix, nix-env, nix-store, ... (on by default).

What the real tools do that costs or hurts is modelled too (tests/world/README.md): the
re-exec of nixos-rebuild (one more evaluation per run), nixos-rebuild-ng's --store-path,
switch-to-configuration's lock (a second one aborts, it never waits), slow activations, late
services, detached activations that outlive a killed caller, and evaluations that cost CPU
and memory (world.json eval_cost). World(...) keywords choose them:

    rebuild_flavor="ng"          WORLD_REBUILD_FLAVOR: "ng" (nixos-rebuild-ng, NixOS 25.11+) or
                                 "bash" (NixOS 24.11); default $ATTICD_WORLD_REBUILD_FLAVOR or "ng"
    detached_activation=False    WORLD_DETACHED_ACTIVATION=1: switch-to-configuration runs in a
                                 session of its own (systemd-run --wait) and survives a killed caller
    activation_seconds=0         WORLD_ACTIVATION_SECONDS: the activation takes that long, with
                                 the service down
    profile_gap=0                WORLD_PROFILE_GAP: seconds between the profile and activation
    service_delay=0              WORLD_SERVICE_DELAY: the service listens that long after its start
    eval_cost=0                  world.json eval_cost of commits that do not give one
    boot_loader="systemd-boot"   WORLD_BOOT_LOADER: "systemd-boot", "grub" or "extlinux"
    boot_counting=0              WORLD_BOOT_COUNTING: tries of a new boot entry (systemd-boot's
                                 boot counting), 0: off

Each is also an attribute; setting it later updates self.env (the variables are always set,
the defaults too). Observe with evaluations(), activation_spans(), activation_conflicts(),
wait_activation_idle().

The boot loader (tests/world/README.md, "Boot loader"): switch-to-configuration boot|switch
writes one entry per generation of the system profile and makes the toplevel's the default;
tests/world/bootctl, grub-reboot and systemd-bless-boot are the tools the agent runs
(BOOTCTL, GRUB_REBOOT, BLESS_BOOT); power_cut() and reboot() stop everything that runs and
boot what the loader chooses, with a new boot id in boot_id_path. Observe with
boot_entries(), boot_default(), boot_oneshot(), boot_tries(), boot_next(), boots(),
bootloader_calls(), boot_id().

Typical use in a unittest.TestCase:

    world = World.for_test(self)           # cleaned up automatically
    repo = world.make_repo()
    sha = repo.commit(health_status=200)   # or world.commit(...)
    world.write_config()
    r = world.agent("pull")
    self.assertEqual(r.returncode, 0, r.stderr)
    self.assertEqual(world.health(), 200)

Environment: ATTICD_AGENT_BIN (the binary; default <repo>/build/atticd-agent),
ATTICD_WORLD_KEEP=1 (keep the temp dir for inspection), ATTICD_WORLD_COUNT_NIX=0 (no
counting wrappers), ATTICD_WORLD_REBUILD_FLAVOR=bash (the default flavour of every world).
"""

from __future__ import annotations

import dataclasses
import http.client
import importlib.util
import itertools
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
WORLD_DIR = REPO_ROOT / "tests" / "world"
FLAKE_TEMPLATE = WORLD_DIR / "flake"
HEALTH_SERVICE = WORLD_DIR / "health-service.py"
REBUILD_STANDIN = WORLD_DIR / "nixos-rebuild"
NIX_COUNTING_WRAPPER = WORLD_DIR / "nix-counting-wrapper"
BOOTLOADER = FLAKE_TEMPLATE / "bootloader.py"  # the boot loader model, also in every toplevel
BOOTCTL = WORLD_DIR / "bootctl"
GRUB_REBOOT = WORLD_DIR / "grub-reboot"
BLESS_BOOT = WORLD_DIR / "systemd-bless-boot"

# The programs the counting wrapper stands in for (those that exist next to the real nix).
NIX_PROGRAMS = ("nix", "nix-env", "nix-store", "nix-build", "nix-instantiate", "nix-collect-garbage")

NIX_CONFIG = "\n".join([
    "experimental-features = nix-command flakes",
    "sandbox = false",
    "substituters =",
    "build-users-group =",
    "warn-dirty = false",
])

# The branch the agent points at the revision it deploys, and the flake reference form that
# nix 2.8 accepts for a bare repository at an exact revision (see tests/world/README.md).
DEPLOY_REF = "refs/heads/atticd-deploy"

DEFAULT_PARAMS = {
    "host": "testhost",
    "health_status": 200,
    "activation_exit": 0,
    "build_fail": False,
    "images": {},
}

# Loopback requests must never go through a proxy from the environment.
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))

_GIT_EPOCH = 1_700_000_000  # commit dates count up from here, one second per commit

# world.json eval_cost that makes one evaluation of the client flake cost about 1 s of CPU and
# 300 MB of memory on the development machine: 1.1-1.6 s of CPU and 255 MiB measured
# (tests/world/README.md has the measurements).
EVAL_COST_1S = 1_500_000

REBUILD_FLAVORS = ("ng", "bash")

BOOT_LOADERS = ("systemd-boot", "grub", "extlinux")

# The variables world.env holds, for a switch-to-configuration in a clean environment.
WORLD_ENV_KEYS = ("WORLD_ACTIVATION_SECONDS", "WORLD_SERVICE_DELAY", "WORLD_PROFILE", "WORLD_BOOT_LOADER",
                  "WORLD_BOOT_COUNTING")


def _load_bootloader():
    """tests/world/flake/bootloader.py as a module, without writing __pycache__ into the flake
    template (every file there is copied into each revision)."""
    spec = importlib.util.spec_from_file_location("world_bootloader", BOOTLOADER)
    module = importlib.util.module_from_spec(spec)
    saved = sys.dont_write_bytecode
    sys.dont_write_bytecode = True
    try:
        spec.loader.exec_module(module)
    finally:
        sys.dont_write_bytecode = saved
    return module


bootloader = _load_bootloader()


def nix_system() -> str:
    """The nix system double of this machine (what builtins.currentSystem says)."""
    machine = platform.machine().lower()
    machine = {"amd64": "x86_64", "arm64": "aarch64"}.get(machine, machine)
    return f"{machine}-linux"


def flake_ref(bare_repo: str | os.PathLike, rev: str, ref: str = DEPLOY_REF) -> str:
    """git+file:///ABS/repo.git?ref=REF&rev=REV, the form the agent hands to nixos-rebuild."""
    return f"git+file://{os.path.abspath(bare_repo)}?ref={ref}&rev={rev}"


def pid_alive(pid: int) -> bool:
    """True while process pid exists and is not a zombie (detached services are reaped by
    whatever PID 1 is, which may be never)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return not re.search(r"^State:\s*Z", status, re.M)


def _descendants(pid: int) -> list[int]:
    """Every living descendant of pid (children first found through /proc/*/stat)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path("/proc", entry, "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def is_evaluation(nix_call: str) -> bool:
    """Whether a line of nix-calls.log ("PROGRAM ARGS...") evaluates a flake: the program is
    nix and an argument holds '#' (a flake installable; store paths never hold one)."""
    words = nix_call.split(" ")
    return words[0] == "nix" and any("#" in w for w in words[1:])


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def to_yaml(value, indent: int = 0) -> str:
    """A small YAML emitter for configuration files: mappings and sequences in block style,
    scalars as JSON (a JSON string is a valid YAML double-quoted scalar). Keys whose value
    is None are left out."""
    return "\n".join(_yaml_lines(value, indent)) + "\n"


def _yaml_scalar(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, (str, os.PathLike)):
        return json.dumps(os.fspath(v))
    if isinstance(v, dict) and not v:
        return "{}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_yaml_scalar(x) for x in v) + "]"
    raise TypeError(f"cannot write {v!r} as YAML")


def _is_block(v) -> bool:
    if isinstance(v, dict):
        return bool(v)
    if isinstance(v, (list, tuple)):
        return any(isinstance(x, (dict, list, tuple)) for x in v)
    return False


def _yaml_lines(value, indent: int) -> list[str]:
    pad = "  " * indent
    lines: list[str] = []
    if isinstance(value, dict):
        for k, v in value.items():
            if v is None:
                continue
            if _is_block(v):
                lines.append(f"{pad}{k}:")
                lines += _yaml_lines(v, indent + 1)
            else:
                lines.append(f"{pad}{k}: {_yaml_scalar(v)}")
    elif isinstance(value, (list, tuple)):
        for item in value:
            if _is_block(item):
                sub = _yaml_lines(item, indent + 1)
                sub[0] = pad + "- " + sub[0][len(pad) + 2:]
                lines += sub
            else:
                lines.append(f"{pad}- {_yaml_scalar(item)}")
    else:
        lines.append(pad + _yaml_scalar(value))
    return lines


def _deep_merge(base: dict, over: dict) -> dict:
    """base updated by over; nested dicts merge, a None value removes the key."""
    out = dict(base)
    for k, v in over.items():
        if v is None:
            out.pop(k, None)
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def _make_writable_and_remove(path: Path) -> None:
    """rmtree that copes with the read-only files and directories of a nix store."""
    if not path.exists() and not path.is_symlink():
        return
    for dirpath, dirnames, _ in os.walk(path):
        for d in dirnames:
            p = os.path.join(dirpath, d)
            if not os.path.islink(p):
                try:
                    os.chmod(p, 0o755)
                except OSError:
                    pass
    try:
        os.chmod(path, 0o755)
    except OSError:
        pass
    shutil.rmtree(path, ignore_errors=True)


class ClientRepo:
    """A client's flake repository: a bare "remote" and a work clone to commit in."""

    def __init__(self, world: "World", name: str):
        self.world = world
        self.name = name
        self.bare = world.tmp / "repos" / f"{name}.git"
        self.work = world.tmp / "repos" / f"{name}-work"
        self._markers = itertools.count(1)
        world.git("init", "-q", "--bare", "-b", "main", str(self.bare))
        world.git("init", "-q", "-b", "main", str(self.work))
        self.git("remote", "add", "origin", str(self.bare))

    @property
    def remote_url(self) -> str:
        """The remote as a plain path."""
        return str(self.bare)

    @property
    def file_url(self) -> str:
        """The remote as a file:// URL."""
        return "file://" + str(self.bare)

    def git(self, *args: str, **kw) -> subprocess.CompletedProcess:
        return self.world.git("-C", str(self.work), *args, **kw)

    def rev_parse(self, rev: str = "HEAD") -> str:
        return self.git("rev-parse", rev).stdout.strip()

    def remote_rev(self, ref: str = "main") -> str:
        return self.world.git("-C", str(self.bare), "rev-parse", ref).stdout.strip()

    def commit(self, message: str | None = None, *, branch: str = "main", force: bool = False,
               push: bool = True, files: dict[str, str] | None = None,
               sign_key: str | os.PathLike | None = None, **params) -> str:
        """Write world.json (DEFAULT_PARAMS, the world's port and python, a unique marker,
        the world's eval_cost when not 0, updated by params) and the flake files, commit, push to the remote's `branch`.
        `files` adds or replaces more files (relative path -> text); `sign_key` signs the
        commit with that SSH private key. Returns the commit id."""
        p = dict(DEFAULT_PARAMS)
        p.update(port=self.world.port, python=sys.executable, system=self.world.system,
                 marker=f"{self.name}-{next(self._markers)}-{uuid.uuid4().hex[:8]}")
        if self.world.eval_cost:
            p["eval_cost"] = self.world.eval_cost
        p.update(params)
        for src in list(FLAKE_TEMPLATE.iterdir()) + [HEALTH_SERVICE]:
            if src.is_file():
                shutil.copy2(src, self.work / src.name)
        (self.work / "world.json").write_text(json.dumps(p, indent=2, sort_keys=True) + "\n")
        for rel, text in (files or {}).items():
            dst = self.work / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.write_text(text)
        self.git("add", "-A")
        args = ["commit", "-q", "--allow-empty", "-m", message or f"world: {p['marker']}"]
        if sign_key is not None:
            args = ["-c", "gpg.format=ssh", "-c", f"user.signingkey={sign_key}"] + args + ["-S"]
        self.git(*args)
        sha = self.rev_parse()
        if push:
            self.push(sha, branch, force=force)
        return sha

    def push(self, rev: str = "HEAD", branch: str = "main", force: bool = False) -> None:
        """Push rev to the remote's refs/heads/<branch> (force: even if not a fast-forward)."""
        self.git("push", "-q", *(["--force"] if force else []), "origin", f"{rev}:refs/heads/{branch}")

    def reset(self, rev: str) -> None:
        """Move the work clone back to rev (e.g. before committing a non-fast-forward)."""
        self.git("reset", "-q", "--hard", rev)

    def tag(self, name: str, rev: str = "HEAD", push: bool = True) -> None:
        self.git("tag", "-f", name, rev)
        if push:
            self.git("push", "-q", "--force", "origin", f"refs/tags/{name}")

    def set_remote_ref(self, ref: str, rev: str) -> None:
        """Point a ref of the remote anywhere (e.g. rewrite history behind the agent)."""
        self.world.git("-C", str(self.bare), "update-ref", ref, rev)


def _seconds(value) -> str:
    """A number of seconds as the world's scripts read it (digits, maybe a fraction)."""
    v = float(value)
    if not v >= 0:
        raise ValueError(f"seconds must be >= 0, not {value!r}")
    return f"{v:.6f}".rstrip("0").rstrip(".")


def _flavor(value) -> str:
    if value not in REBUILD_FLAVORS:
        raise ValueError(f"rebuild_flavor must be one of {REBUILD_FLAVORS}, not {value!r}")
    return value


def _boot_loader(value) -> str:
    if value not in BOOT_LOADERS:
        raise ValueError(f"boot_loader must be one of {BOOT_LOADERS}, not {value!r}")
    return value


def _tries(value) -> str:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"boot_counting must be a number of tries >= 0, not {value!r}")
    return str(value)


@dataclasses.dataclass
class Boot:
    """What World.power_cut() or World.reboot() booted."""
    entry: str                   # the boot entry's id
    generation: int              # the profile generation of the entry
    toplevel: str                # what it boots
    up: bool                     # False: it panicked at boot (world.json boot_panic), nothing runs
    how: str                     # "oneshot", "default" or "fallback" (the default had no tries left)
    oneshot: str | None          # the one-shot setting this boot consumed (matching an entry or not)
    tries: dict | None           # {"left", "done"} after this boot; None without boot counting
    boot_id: str                 # the new boot id (also in World.boot_id_path)
    activation_exit: int | None  # exit status of its switch-to-configuration test (None: not up)


class _EnvSetting:
    """An attribute of World that is an environment variable of its env: setting it updates
    world.env[var] (to fmt(value)), so every later run sees it."""

    def __init__(self, var: str, fmt):
        self.var, self.fmt = var, fmt

    def __set_name__(self, owner, name):
        self.slot = "_" + name

    def __get__(self, obj, owner=None):
        return self if obj is None else getattr(obj, self.slot)

    def __set__(self, obj, value):
        obj.env[self.var] = self.fmt(value)
        setattr(obj, self.slot, value)
        # For a switch-to-configuration that runs in a clean environment (a systemd unit).
        obj.root.mkdir(parents=True, exist_ok=True)
        (obj.root / "world.env").write_text("".join(
            f"{k}={v}\n" for k, v in sorted(obj.env.items()) if k in WORLD_ENV_KEYS))


class World:
    """One test machine: private nix, client repos, nixos-rebuild stand-in, test service."""

    rebuild_flavor = _EnvSetting("WORLD_REBUILD_FLAVOR", _flavor)
    detached_activation = _EnvSetting("WORLD_DETACHED_ACTIVATION", lambda v: "1" if v else "0")
    activation_seconds = _EnvSetting("WORLD_ACTIVATION_SECONDS", _seconds)
    profile_gap = _EnvSetting("WORLD_PROFILE_GAP", _seconds)
    service_delay = _EnvSetting("WORLD_SERVICE_DELAY", _seconds)
    boot_loader = _EnvSetting("WORLD_BOOT_LOADER", _boot_loader)
    boot_counting = _EnvSetting("WORLD_BOOT_COUNTING", _tries)

    def __init__(self, tmpdir: str | os.PathLike | None = None, *, count_nix: bool | None = None,
                 rebuild_flavor: str | None = None, detached_activation: bool = False,
                 activation_seconds: float = 0, profile_gap: float = 0, service_delay: float = 0,
                 eval_cost: int = 0, boot_loader: str = "systemd-boot", boot_counting: int = 0):
        if tmpdir is None:
            tmpdir = tempfile.mkdtemp(prefix="atticd-world-")
        self.tmp = Path(tmpdir).resolve()
        self.root = self.tmp / "root"            # WORLD_ROOT: run/, boot/, log/, *.log
        self.state_dir = self.tmp / "state"      # the agent's state-dir
        self.store_dir = self.tmp / "nix" / "store"
        self.profile = self.tmp / "profiles" / "system"
        self.cwd = self.tmp / "cwd"              # working directory of the agent and the stand-in
        self.port = free_port()
        self.system = nix_system()
        self.repo: ClientRepo | None = None
        self.repos: dict[str, ClientRepo] = {}
        self.config_path: Path | None = None
        self._git_dates = itertools.count(_GIT_EPOCH)
        self._closed = False

        for d in (self.root / "run", self.root / "boot", self.root / "log", self.state_dir,
                  self.store_dir, self.tmp / "nix" / "var", self.tmp / "nix" / "log",
                  self.tmp / "nix" / "conf", self.tmp / "cache", self.tmp / "home",
                  self.tmp / "config", self.profile.parent, self.cwd, self.tmp / "repos",
                  self.tmp / "tmp"):
            d.mkdir(parents=True, exist_ok=True)
        self.state_dir.chmod(0o700)  # as the module's tmpfiles rule makes it (the agent warns otherwise)

        base_path = os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin")
        real_nix = shutil.which("nix", path=base_path)
        if real_nix is None:
            raise RuntimeError("the test world needs nix on PATH (Debian: apt-get install nix-bin)")
        self.real_nix_dir = Path(real_nix).parent

        if count_nix is None:
            count_nix = os.environ.get("ATTICD_WORLD_COUNT_NIX", "1") != "0"
        self.count_nix = count_nix
        self.nix_log = self.tmp / "nix-calls.log"
        path = [str(WORLD_DIR), base_path]
        if count_nix:
            bindir = self.tmp / "bin"
            bindir.mkdir(exist_ok=True)
            for prog in NIX_PROGRAMS:
                if (self.real_nix_dir / prog).exists():
                    os.symlink(NIX_COUNTING_WRAPPER, bindir / prog)
            path.insert(0, str(bindir))

        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("NIX_", "WORLD_", "GIT_", "ATTICD_AGENT_CONFIG"))}
        env.update({
            "PATH": ":".join(path),
            "HOME": str(self.tmp / "home"),
            "TMPDIR": str(self.tmp / "tmp"),  # nix build dirs, the stand-in's out-links
            "XDG_CACHE_HOME": str(self.tmp / "cache"),
            "XDG_CONFIG_HOME": str(self.tmp / "config"),
            "XDG_DATA_HOME": str(self.tmp / "home" / ".local" / "share"),
            "XDG_STATE_HOME": str(self.tmp / "home" / ".local" / "state"),
            "NIX_STORE_DIR": str(self.store_dir),
            "NIX_STATE_DIR": str(self.tmp / "nix" / "var"),
            "NIX_LOG_DIR": str(self.tmp / "nix" / "log"),
            "NIX_CONF_DIR": str(self.tmp / "nix" / "conf"),
            "NIX_CONFIG": NIX_CONFIG,
            "NIX_REMOTE": "",
            "GIT_CONFIG_NOSYSTEM": "1",
            "no_proxy": "127.0.0.1,localhost",
            "NO_PROXY": "127.0.0.1,localhost",
            "WORLD_ROOT": str(self.root),
            "WORLD_PROFILE": str(self.profile),
            # The interpreter of the boot loader stand-ins (tests/world/bootctl, ...).
            "WORLD_PYTHON": sys.executable,
        })
        if count_nix:
            env["WORLD_NIX_LOG"] = str(self.nix_log)
            env["WORLD_REAL_NIX_DIR"] = str(self.real_nix_dir)
        self.env = env
        if rebuild_flavor is None:
            rebuild_flavor = os.environ.get("ATTICD_WORLD_REBUILD_FLAVOR") or "ng"
        self.rebuild_flavor = rebuild_flavor
        self.detached_activation = detached_activation
        self.activation_seconds = activation_seconds
        self.profile_gap = profile_gap
        self.service_delay = service_delay
        self.boot_loader = boot_loader
        self.boot_counting = boot_counting
        self.eval_cost = int(eval_cost)
        self._new_boot_id()  # the machine runs: its first boot

    # -- lifetime ---------------------------------------------------------------------------

    @classmethod
    def for_test(cls, testcase, **kw) -> "World":
        """A world that testcase.addCleanup closes."""
        w = cls(**kw)
        testcase.addCleanup(w.close)
        return w

    def __enter__(self) -> "World":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Stop every switch-to-configuration (detached ones too) and test service of this
        world and remove its directory (unless ATTICD_WORLD_KEEP=1)."""
        if self._closed:
            return
        self._closed = True
        self.kill_activations()
        self.stop_service()
        if os.environ.get("ATTICD_WORLD_KEEP") == "1":
            print(f"world kept in {self.tmp}", file=sys.stderr)
            return
        _make_writable_and_remove(self.tmp)

    def service_pids(self) -> list[int]:
        """Test services started from this world's store (normally at most one)."""
        pids = []
        needle = str(self.store_dir).encode()
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                cmdline = Path("/proc", entry, "cmdline").read_bytes()
            except OSError:
                continue
            if b"health-service" in cmdline and needle in cmdline and pid_alive(int(entry)):
                pids.append(int(entry))
        return pids

    def activation_pids(self) -> list[int]:
        """Running switch-to-configuration processes of this world (reached through its store
        or its profile), and the shells that run detached ones."""
        pids = []
        needle = str(self.tmp).encode()
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == os.getpid():
                continue
            try:
                cmdline = Path("/proc", entry, "cmdline").read_bytes()
            except OSError:
                continue
            if b"/bin/switch-to-configuration" in cmdline and needle in cmdline and pid_alive(int(entry)):
                pids.append(int(entry))
        return pids

    def kill_activations(self) -> None:
        """SIGKILL every switch-to-configuration of this world with what it started in its
        process group (a detached one leads a session of its own; one run as a child of the
        stand-in is killed with its descendants, never with the caller's process group). The
        test services, in sessions of their own, stay: stop_service() stops them."""
        own = os.getpgrp()
        for pid in self.activation_pids():
            try:
                pgid = os.getpgid(pid)
            except ProcessLookupError:
                continue
            if pgid == pid and pgid != own:
                try:
                    os.killpg(pgid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                continue
            for p in [pid] + _descendants(pid):
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def stop_service(self) -> None:
        for pid in self.service_pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        (self.root / "run" / "health.pid").unlink(missing_ok=True)

    def wipe_machine(self) -> None:
        """Make this world a fresh machine at the same paths (nix store paths name their store
        directory, so a bundle's closure needs the same one): no store, no nix database, no
        agent state, no profile, no boot loader entries, nothing running, another boot id. The
        client repositories stay (they are elsewhere, on the connected side)."""
        self.kill_activations()
        self.stop_service()
        for d in (self.store_dir, self.tmp / "nix" / "var", self.state_dir, self.profile.parent,
                  self.root / "run", self.root / "boot"):
            _make_writable_and_remove(d)
            d.mkdir(parents=True)
        self.state_dir.chmod(0o700)
        self._new_boot_id()

    # -- power and booting ------------------------------------------------------------------

    @property
    def boot_id_path(self) -> Path:
        """The boot id file ($WORLD_ROOT/boot_id: a uuid and a newline, as
        /proc/sys/kernel/random/boot_id); a new one at each boot."""
        return self.root / "boot_id"

    def boot_id(self) -> str | None:
        try:
            return self.boot_id_path.read_text().strip()
        except FileNotFoundError:
            return None

    def _new_boot_id(self) -> str:
        boot_id = str(uuid.uuid4())
        tmp = self.boot_id_path.with_name(".boot_id.tmp")
        tmp.write_text(boot_id + "\n")
        os.replace(tmp, self.boot_id_path)
        return boot_id

    def machine_pids(self) -> list[int]:
        """Every process of this machine: switch-to-configuration runs, test services, and any
        process whose environment has this world's WORLD_ROOT (what world.run, popen and agent
        start, and all they start: the agent, nixos-rebuild, nix, ...). Never this process or
        one of its ancestors."""
        spare, pid = set(), os.getpid()
        while pid > 1:
            spare.add(pid)
            try:
                pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                break
        needle = b"\0WORLD_ROOT=" + os.fsencode(self.root) + b"\0"
        pids = set(self.activation_pids()) | set(self.service_pids())
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                environ = Path("/proc", entry, "environ").read_bytes()
            except OSError:
                continue
            if needle in b"\0" + environ + b"\0" and pid_alive(int(entry)):
                pids.add(int(entry))
        return sorted(p for p in pids - spare if pid_alive(p))

    def _halt(self, grace: float | None) -> None:
        """Stop every process of the machine: SIGTERM and up to grace seconds to end (a
        reboot), then SIGKILL for what is left (at once with grace None: a power cut)."""
        if grace is not None:
            pids = self.machine_pids()
            for p in pids:
                try:
                    os.kill(p, signal.SIGTERM)
                except ProcessLookupError:
                    pass
            self.wait_for(lambda: not any(pid_alive(p) for p in pids), timeout=grace)
        else:
            # A power cut stops everything at the same instant: frozen first (SIGSTOP), so that
            # no process sees another die (an agent would take its killed child for a failed
            # activation and go on to roll back) before the SIGKILLs below.
            frozen: set[int] = set()
            for _ in range(50):
                pids = set(self.machine_pids()) - frozen
                if not pids:
                    break
                for p in pids:
                    try:
                        os.kill(p, signal.SIGSTOP)
                    except ProcessLookupError:
                        pass
                frozen |= pids
        for _ in range(50):
            self.kill_activations()
            pids = self.machine_pids()
            if not pids:
                break
            for p in pids:
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self.wait_for(lambda: not any(pid_alive(p) for p in pids), timeout=5, interval=0.01)
        else:
            raise RuntimeError(f"processes of the world survive SIGKILL: {self.machine_pids()}")
        self.stop_service()

    def power_cut(self) -> Boot:
        """The power goes and comes back: every process of the machine (machine_pids) is
        SIGKILLed at once, then the machine boots (see _boot)."""
        self._halt(None)
        return self._boot()

    def reboot(self, grace: float = 10) -> Boot:
        """An orderly reboot: every process of the machine gets SIGTERM and up to grace seconds
        to end (then SIGKILL), then the machine boots (see _boot)."""
        self._halt(grace)
        return self._boot()

    def _boot(self) -> Boot:
        """Boot: run/ is empty again (a tmpfs), a new boot id, the boot loader chooses the entry
        (one-shot first, consumed; else the default; with boot counting, a default without tries
        left falls back to the newest entry that has some; bootloader.boot). A toplevel whose
        world/boot-panic says 1 panics: nothing runs, run/current-system does not exist. Else
        run/booted-system and, through its switch-to-configuration test, run/current-system
        point at it and its service starts. Appends the boot to boots.log."""
        run = self.root / "run"
        _make_writable_and_remove(run)
        run.mkdir(parents=True)
        boot_id = self._new_boot_id()
        chosen = bootloader.boot(self.root)
        toplevel = chosen["toplevel"]
        try:
            panic = Path(toplevel, "world", "boot-panic").read_text().strip() == "1"
        except FileNotFoundError:
            panic = False
        rc = None
        if not panic:
            os.symlink(toplevel, run / "booted-system")
            rc = self.run([Path(toplevel, "bin", "switch-to-configuration"), "test"], timeout=300).returncode
        b = Boot(entry=chosen["entry"], generation=chosen["generation"], toplevel=toplevel, up=not panic,
                 how=chosen["how"], oneshot=chosen["oneshot"], tries=chosen["tries"], boot_id=boot_id,
                 activation_exit=rc)
        with open(self.root / "boots.log", "a") as f:
            f.write(json.dumps(dataclasses.asdict(b), sort_keys=True) + "\n")
        return b

    # -- running things ---------------------------------------------------------------------

    def run(self, argv, *, check: bool = False, timeout: float = 120, cwd=None,
            env: dict | None = None, **kw) -> subprocess.CompletedProcess:
        """Run argv in the world's environment (text, output captured)."""
        e = dict(self.env)
        if env:
            e.update(env)
        return subprocess.run([os.fspath(a) for a in argv], cwd=cwd or self.cwd, env=e,
                              text=True, capture_output=True, timeout=timeout, check=check, **kw)

    def git(self, *args: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
        """git with a fixed identity and increasing fixed dates (needs no git config)."""
        date = f"@{next(self._git_dates)} +0000"
        env = {"GIT_AUTHOR_NAME": "World Test", "GIT_AUTHOR_EMAIL": "world@example.org",
               "GIT_COMMITTER_NAME": "World Test", "GIT_COMMITTER_EMAIL": "world@example.org",
               "GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date}
        env.update(kw.pop("env", None) or {})
        r = self.run(["git", *args], env=env, **kw)
        if check and r.returncode != 0:
            raise RuntimeError(f"git {' '.join(args)} failed ({r.returncode}): {r.stderr}")
        return r

    def rebuild(self, *args: str, cwd=None, timeout: float = 120,
                env: dict | None = None) -> subprocess.CompletedProcess:
        """Run the nixos-rebuild stand-in."""
        return self.run([REBUILD_STANDIN, *args], cwd=cwd, timeout=timeout, env=env)

    def popen(self, argv, *, cwd=None, env: dict | None = None, **kw) -> subprocess.Popen:
        """Start argv in the world's environment, in a process group of its own (so that a
        test can kill the whole group: os.killpg(p.pid, signal.SIGKILL)); stdout and stderr
        go to pipes (text) unless given."""
        e = dict(self.env)
        if env:
            e.update(env)
        kw.setdefault("stdout", subprocess.PIPE)
        kw.setdefault("stderr", subprocess.PIPE)
        return subprocess.Popen([os.fspath(a) for a in argv], cwd=cwd or self.cwd, env=e, text=True,
                                start_new_session=True, **kw)

    def agent_bin(self) -> Path:
        p = Path(os.environ.get("ATTICD_AGENT_BIN", REPO_ROOT / "build" / "atticd-agent"))
        if not p.is_absolute():
            p = REPO_ROOT / p
        if not os.access(p, os.X_OK):
            raise FileNotFoundError(f"no agent binary at {p}: build it (meson setup build && "
                                    "ninja -C build) or set ATTICD_AGENT_BIN")
        return p

    def agent(self, *args: str, timeout: float = 120, config: str | os.PathLike | bool | None = None,
              env: dict | None = None, input: str | None = None) -> subprocess.CompletedProcess:
        """Run `atticd-agent -c CONFIG ARGS...`; config=None uses the last write_config()
        (writing a default one if there is none), config=False passes no -c."""
        argv: list = [self.agent_bin()]
        if config is None:
            config = self.config_path or self.write_config()
        if config is not False:
            argv += ["-c", config]
        return self.run(argv + list(args), timeout=timeout, env=env, input=input)

    # -- repositories and configuration -----------------------------------------------------

    def make_repo(self, name: str = "client") -> ClientRepo:
        """A client repository; the first one made becomes self.repo."""
        r = ClientRepo(self, name)
        self.repos[name] = r
        if self.repo is None:
            self.repo = r
        return r

    def _default_repo(self) -> ClientRepo:
        return self.repo or self.make_repo()

    def commit(self, *args, **kw) -> str:
        """self.repo.commit(...), making the repository first if needed."""
        return self._default_repo().commit(*args, **kw)

    @property
    def remote_url(self) -> str:
        return self._default_repo().remote_url

    @property
    def file_url(self) -> str:
        return self._default_repo().file_url

    def config_dict(self, **overrides) -> dict:
        """The default configuration (pointing at this world), updated by overrides. Keyword
        names use _ for - (state_dir=...); nested dicts merge; None removes a key."""
        c = {
            "host": "testhost",
            "state-dir": str(self.state_dir),
            "system": {
                "rebuild-command": str(REBUILD_STANDIN),
                "nix-command": "nix",
                "profile": str(self.profile),
                "current-system": str(self.root / "run" / "current-system"),
                "action": "switch",
                # The world's switch-to-configuration lock, which the agent waits on.
                "activation-lock": str(self.stc_lock_path),
                # The world's boot loader and its tools, never this machine's.
                "boot-loader": self.boot_loader,
                "bootctl-command": [str(BOOTCTL)],
                "grub-reboot-command": [str(GRUB_REBOOT)],
                "boot-directory": str(self.root / "boot"),
                "boot-id-file": str(self.boot_id_path),
            },
        }
        if self.repo is not None:
            c["repository"] = {"url": self.repo.remote_url, "ref": "main"}
        return _deep_merge(c, {k.replace("_", "-"): v for k, v in overrides.items()})

    def write_config(self, path: str | os.PathLike | None = None, **overrides) -> Path:
        """Write the agent's YAML configuration (see config_dict); returns its path and
        remembers it for agent()."""
        p = Path(path) if path else self.tmp / "config.yaml"
        p.write_text(to_yaml(self.config_dict(**overrides)))
        self.config_path = p
        return p

    def deploy_ref(self, rev: str, repo: ClientRepo | None = None,
                   bare: str | os.PathLike | None = None) -> str:
        """Do what the agent does before a build, without the agent: a bare clone of the
        remote (default <tmp>/deploy/repo.git) with refs/heads/atticd-deploy at rev.
        Returns the flake reference (without #host)."""
        repo = repo or self._default_repo()
        bare = Path(bare) if bare else self.tmp / "deploy" / "repo.git"
        if not bare.exists():
            self.git("clone", "-q", "--bare", repo.remote_url, str(bare))
        else:
            self.git("-C", str(bare), "fetch", "-q", repo.remote_url, "+refs/heads/*:refs/heads/*")
        self.git("-C", str(bare), "update-ref", DEPLOY_REF, rev)
        return flake_ref(bare, rev)

    # -- observing the machine --------------------------------------------------------------

    def _get(self, path: str, timeout: float) -> tuple[int, str] | None:
        try:
            with _NO_PROXY.open(f"http://127.0.0.1:{self.port}{path}", timeout=timeout) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, ""
        except (urllib.error.URLError, OSError, http.client.HTTPException):
            return None  # nothing listens, or the service died while answering

    def health(self, path: str = "/health", timeout: float = 2) -> int | None:
        """HTTP status of GET http://127.0.0.1:<port><path>, None when nothing answers."""
        r = self._get(path, timeout)
        return r[0] if r else None

    def service_marker(self) -> str | None:
        """The marker of the revision whose service is answering, None when none answers."""
        r = self._get("/marker", 2)
        return r[1].strip() if r else None

    def current_system(self) -> str | None:
        """Target of root/run/current-system (a store path), None before the first switch."""
        try:
            return os.readlink(self.root / "run" / "current-system")
        except FileNotFoundError:
            return None

    def boot_next(self) -> str | None:
        """The toplevel the machine would boot next (boot/next-system): the one-shot entry's if
        one is set (and matches), else the default's (with boot counting: unless it has no tries
        left). Written by switch-to-configuration boot|switch and at every change of the boot
        loader's state."""
        try:
            return (self.root / "boot" / "next-system").read_text().strip()
        except FileNotFoundError:
            return None

    def boot_state(self) -> dict | None:
        """The boot loader's state (boot/loader.json; tests/world/README.md), None before
        anything installed a boot loader."""
        return bootloader.load(self.root)

    def boot_entries(self) -> dict[str, str]:
        """{entry id: toplevel} in the loader's menu order (GRUB and extlinux: the default
        entry first, then one per generation, newest first)."""
        st = self.boot_state()
        return {e["id"]: e["toplevel"] for e in bootloader.ordered(st)} if st else {}

    def boot_entry_id(self, generation: int) -> str | None:
        """The id of generation N's own entry: nixos-generation-N.conf (systemd-boot), "NixOS -
        All configurations>NixOS - Configuration N (DATE - VERSION)" (GRUB, what grub-reboot
        needs), nixos-N-default (extlinux)."""
        st = self.boot_state()
        for e in (st["entries"] if st else []):
            if e["generation"] == generation and e["id"] not in ("NixOS", "nixos-default"):
                return e["id"]
        return None

    def boot_default_id(self) -> str | None:
        """The id of the default entry: systemd-boot's LoaderEntryDefault (bootctl set-default)
        when set and found, else what switch-to-configuration boot|switch made the default
        ("NixOS" with GRUB, "nixos-default" with extlinux). Neither the one-shot entry nor boot
        counting changes it: boot_next() says what boots."""
        st = self.boot_state()
        e = bootloader.default_entry(st) if st else None
        return e["id"] if e else None

    def boot_default(self) -> str | None:
        """The toplevel of the default entry (boot_default_id)."""
        st = self.boot_state()
        e = bootloader.default_entry(st) if st else None
        return e["toplevel"] if e else None

    def boot_oneshot(self) -> str | None:
        """The one-shot setting (bootctl set-oneshot, grub-reboot) the next boot consumes."""
        st = self.boot_state()
        return st.get("oneshot") if st else None

    def boot_tries(self) -> dict[str, tuple[int, int]]:
        """{entry id: (tries left, tries done)} of the entries that count their boots (boot
        counting; a blessed entry, or one written without counting, is not in it)."""
        st = self.boot_state()
        return {e["id"]: (e["tries"]["left"], e["tries"]["done"])
                for e in (st["entries"] if st else []) if e.get("tries") is not None}

    def booted_entry(self) -> str | None:
        """The entry the last boot started (systemd-boot's LoaderEntrySelected)."""
        st = self.boot_state()
        return (st.get("booted") or {}).get("id") if st else None

    def booted_system(self) -> str | None:
        """Target of run/booted-system (the toplevel this boot started), None before the first
        power_cut()/reboot() or after a panic."""
        try:
            return os.readlink(self.root / "run" / "booted-system")
        except FileNotFoundError:
            return None

    def boots(self) -> list[dict]:
        """Every power_cut()/reboot() of this world, oldest first (boots.log; the fields of Boot)."""
        return [json.loads(x) for x in self._lines(self.root / "boots.log")]

    def bootloader_calls(self) -> list[str]:
        """One line "PROGRAM ARGS..." per run of tests/world/bootctl, grub-reboot and
        systemd-bless-boot in this world (bootloader.log)."""
        return self._lines(self.root / "bootloader.log")

    def bootctl(self, *args: str) -> subprocess.CompletedProcess:
        return self.run([BOOTCTL, *args])

    def grub_reboot(self, *args: str) -> subprocess.CompletedProcess:
        return self.run([GRUB_REBOOT, *args])

    def bless_boot(self, verb: str = "good") -> subprocess.CompletedProcess:
        """tests/world/systemd-bless-boot VERB: on NixOS systemd-bless-boot.service runs `good`
        once boot-complete.target is reached; in the world nothing does unless a test does."""
        return self.run([BLESS_BOOT, verb])

    def profile_target(self) -> str | None:
        """Store path the system profile points to, None when there is no profile yet."""
        return os.path.realpath(self.profile) if os.path.lexists(self.profile) else None

    def profile_generation(self) -> int | None:
        """Number of the profile's current generation."""
        if not os.path.lexists(self.profile):
            return None
        m = re.fullmatch(rf"{re.escape(self.profile.name)}-(\d+)-link", os.readlink(self.profile))
        return int(m.group(1)) if m else None

    def profile_generations(self) -> dict[int, str]:
        """{generation number: store path}, oldest first (read from the links, no nix call)."""
        gens = {}
        pat = re.compile(rf"{re.escape(self.profile.name)}-(\d+)-link")
        for entry in self.profile.parent.iterdir():
            m = pat.fullmatch(entry.name)
            if m:
                gens[int(m.group(1))] = os.readlink(entry)
        return dict(sorted(gens.items()))

    def marker_of(self, toplevel: str) -> str:
        """The marker (configuration-revision) a toplevel was built from."""
        return Path(toplevel, "configuration-revision").read_text().strip()

    def _lines(self, p: Path) -> list[str]:
        try:
            return p.read_text().splitlines()
        except FileNotFoundError:
            return []

    def system_builds(self) -> list[str]:
        """What built (or would build) a system in this world: nix builds of a derivation or of
        a flake's output (not profile operations: `nix build --profile P PATH` of a built
        path), and every run of the nixos-rebuild stand-in."""
        builds = [c for c in self.nix_calls() if c.startswith("nix build ")
                  and ("#" in c or ".drv" in c) and " --profile " not in c]
        return builds + self.rebuild_calls()

    def rebuild_calls(self, reexecs: bool = True) -> list[str]:
        """One line "nixos-rebuild ARGS..." per run of the stand-in. A run that re-executed
        itself shows twice: as called, then with --no-reexec (ng) or --fast (bash) appended;
        reexecs=False leaves the re-executed runs out (what the callers ran)."""
        lines = self._lines(self.root / "rebuild.log")
        if reexecs:
            return lines
        out: list[str] = []
        waiting: list[str] = []  # lines whose re-executed run has not shown yet
        for line in lines:
            if any(line in (p + " --no-reexec", p + " --fast") for p in waiting):
                waiting.remove(line.rsplit(" ", 1)[0])
                continue
            out.append(line)
            waiting.append(line)
        return out

    def activations(self) -> list[str]:
        """One line "ACTION TOPLEVEL EXIT" per run of a switch-to-configuration that took the
        lock and ended (not killed); see activation_conflicts() for those that found it taken."""
        return [x for x in self._lines(self.root / "activation.log")
                if not x.startswith("LOCKED ") and not x.startswith("dry-activate ")]

    def dry_activations(self) -> list[str]:
        """One line "dry-activate TOPLEVEL EXIT" per switch-to-configuration dry-activate (the
        plan of a switch: it changes nothing, so activations() does not count it)."""
        return [x for x in self._lines(self.root / "activation.log") if x.startswith("dry-activate ")]

    def activation_conflicts(self) -> list[str]:
        """One line "LOCKED ACTION TOPLEVEL" per switch-to-configuration that found the lock
        held by another and aborted (exit 1): an activation that would have overlapped one."""
        return [x for x in self._lines(self.root / "activation.log") if x.startswith("LOCKED ")]

    def activation_spans(self, dry: bool = False) -> list[dict]:
        """The switch-to-configuration runs that took the lock, oldest first (from
        activation-spans.log): {"pid", "action", "toplevel", "begin", "end", "exit"}, times in
        epoch seconds (float); "end" and "exit" are None while it runs or if it was killed.
        Without dry: not the dry-activate runs (the plan of a switch, which changes nothing)."""
        spans: list[dict] = []
        open_by_pid: dict[int, dict] = {}
        for line in self._lines(self.root / "activation-spans.log"):
            f = line.split(" ")
            if f[0] == "begin" and len(f) == 5:
                span = {"pid": int(f[2]), "action": f[3], "toplevel": f[4], "begin": float(f[1]),
                        "end": None, "exit": None}
                spans.append(span)
                open_by_pid[span["pid"]] = span
            elif f[0] == "end" and len(f) == 6:
                span = open_by_pid.pop(int(f[2]), None)
                if span is None:  # its begin was forgotten (reset_call_logs)
                    span = {"pid": int(f[2]), "action": f[3], "toplevel": f[4], "begin": None}
                    spans.append(span)
                span.update(end=float(f[1]), exit=int(f[5]))
            else:
                raise ValueError(f"bad line in activation-spans.log: {line!r}")
        return [sp for sp in spans if dry or sp["action"] != "dry-activate"]

    @property
    def stc_lock_path(self) -> Path:
        """switch-to-configuration's lock (/run/nixos/switch-to-configuration.lock on NixOS),
        which the agent's system.activation-lock points at."""
        return self.root / "run" / "nixos" / "switch-to-configuration.lock"

    def wait_activation_idle(self, timeout: float = 30) -> bool:
        """Wait until no switch-to-configuration of this world runs (no such process, and no
        span open with a live pid); True when idle, False on timeout. The lock itself is never
        probed: taking it, even for an instant, could make a real activation abort."""
        def idle():
            if self.activation_pids():
                return False
            return not any(s["end"] is None and pid_alive(s["pid"]) for s in self.activation_spans())
        return bool(self.wait_for(idle, timeout=timeout))

    def nix_calls(self) -> list[str]:
        """One line "PROGRAM ARGS..." per nix, nix-env, ... call by anyone in this world."""
        if not self.count_nix:
            raise RuntimeError("this world does not count nix calls (count_nix=False)")
        return self._lines(self.nix_log)

    def evaluation_calls(self) -> list[str]:
        """The nix calls that evaluate a client flake: a `nix` call with an argument holding
        '#', i.e. a flake installable (nix build/eval/... REF#nixosConfigurations...). Calls on
        store paths (nix build /nix/store/..., nix copy, nix-env, nix-store) are not."""
        return [c for c in self.nix_calls() if is_evaluation(c)]

    def evaluations(self) -> int:
        """How many times anyone in this world evaluated a client flake (see
        evaluation_calls). It counts calls, not work: nix's eval cache may answer a repeated
        `nix build` of the same attribute of the same revision without evaluating."""
        return len(self.evaluation_calls())

    def reset_call_logs(self) -> None:
        """Forget the calls so far (e.g. before a run that should call nothing)."""
        for p in (self.root / "rebuild.log", self.root / "activation.log",
                  self.root / "activation-spans.log", self.root / "bootloader.log", self.nix_log):
            p.unlink(missing_ok=True)

    def wait_for(self, predicate, timeout: float = 10, interval: float = 0.05):
        """Poll predicate until it returns a true value (returned) or timeout (None)."""
        deadline = time.monotonic() + timeout
        while True:
            v = predicate()
            if v or time.monotonic() >= deadline:
                return v
            time.sleep(interval)
