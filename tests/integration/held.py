# SPDX-License-Identifier: MIT
"""A nix that holds at a chosen call: tests point system.nix-command at it to kill the agent
(or stop it) while that call runs. Every other call, and the held one once released, goes to
the nix of the world's PATH (the counting wrapper, so the calls are still counted)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

# Shell `case` patterns over " ARGS " of the agent's nix calls.
EVAL = '*" eval "*'
BUILD = '*" build --json --out-link "*'
PROFILE = '*" --profile "*'
PROFILE_SET = '*" build --no-link --profile "*'
PROFILE_BACK = '*" profile rollback "*'


class HeldNix:
    """nix-command for the agent: sleeps `seconds` in the first call (or every call, with
    every=True) that matches `pattern`, after writing its pid to `pidfile`; with after=True it
    sleeps after the real call instead (a gap before whatever comes next), with fail=True the
    call fails (exit 1) instead of running."""

    def __init__(self, world, pattern: str, name: str = "held", seconds: float = 60, every: bool = False,
                 after: bool = False, fail: bool = False):
        self.world = world
        self.dir = world.tmp / f"nix-{name}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.pidfile = self.dir / "held.pid"
        self.done = self.dir / "held.done"
        real = shutil.which("nix", path=world.env["PATH"])
        if real is None:
            raise RuntimeError("no nix on the world's PATH")
        self.path = self.dir / "nix"
        once = "" if every else f'[ -e "{self.done}" ] && exec "{real}" "$@"; : > "{self.done}"; '
        mark = f'echo $$ > "{self.pidfile}.tmp" && mv "{self.pidfile}.tmp" "{self.pidfile}"'
        if fail:
            action = f'{mark}; sleep {seconds}; echo "error: (test) this nix call fails on purpose" >&2; exit 1'
        elif after:
            action = f'"{real}" "$@"; rc=$?; {mark}; sleep {seconds}; exit $rc'
        else:
            action = f"{mark}; sleep {seconds}"
        self.path.write_text(f"""#!/bin/sh
case " $* " in
{pattern}) {once}{action} ;;
esac
exec "{real}" "$@"
""")
        self.path.chmod(0o755)

    def held(self) -> bool:
        return self.pidfile.exists()

    def pid(self) -> int:
        return int(self.pidfile.read_text())

    def reset(self) -> None:
        for p in (self.pidfile, self.done):
            p.unlink(missing_ok=True)


def pid_gone(pid: int) -> bool:
    """The process ended (or is a zombie nobody reaped)."""
    try:
        return ") Z " in Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True


def alive(pid: int) -> bool:
    return not pid_gone(pid) and os.path.exists(f"/proc/{pid}")
