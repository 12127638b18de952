#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Boot loader of the atticd-agent test world: what the firmware, the boot loader and its tools
would keep and do, kept in files below $WORLD_ROOT/boot/ (Python 3 standard library only).

One program under several names (the first argument, or the name it runs as):

  bootloader.py install TOPLEVEL   the toplevel's boot loader installer, which
                                   switch-to-configuration boot|switch runs (on NixOS:
                                   system.build.installBootLoader); the test world copies this
                                   file into every toplevel as libexec/bootloader.py
  bootloader.py bootctl ...        tests/world/bootctl: list, set-oneshot, set-default, status
  bootloader.py grub-reboot ...    tests/world/grub-reboot ENTRY
  bootloader.py systemd-bless-boot ...   tests/world/systemd-bless-boot good|bad|indeterminate|status

tests/integration/world.py imports it for the boot itself (boot(): the loader's choice when the
machine powers on) and to read the state. tests/world/README.md describes the model; in short:

- install: one entry per generation of the system profile ($WORLD_PROFILE-N-link) that exists
  now, the default that of TOPLEVEL (the newest generation pointing at it; none: exit 1).
- The loader (WORLD_BOOT_LOADER): systemd-boot (default; entries nixos-generation-N.conf),
  grub (entry "NixOS" = the default, then the submenu "NixOS - All configurations" with
  "NixOS - Configuration N (DATE - VERSION)") or extlinux (nixos-default, nixos-N-default).
- A one-shot entry (bootctl set-oneshot, grub-reboot) is used by the next boot, then gone.
- Boot counting (WORLD_BOOT_COUNTING=N, systemd-boot only): a new entry gets N tries; each
  boot of it uses one; with none left it is "bad": sorted last, and the default falls back to
  the first entry of the menu, the newest that is not bad. systemd-bless-boot good ends the
  counting of the entry booted last, bad sets its tries left to 0.

The state is one JSON file, $WORLD_ROOT/boot/loader.json, replaced atomically under the lock
$WORLD_ROOT/boot/.lock; boot/next-system (the toplevel the next boot would start) and the
loader's own files (boot/loader/, boot/grub/grub.cfg, boot/extlinux/extlinux.conf) are
rewritten from it on every change.
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import fnmatch
import json
import os
import re
import shutil
import sys
import time
from pathlib import Path

KINDS = ("systemd-boot", "grub", "extlinux")
DISTRO = "NixOS"
GRUB_SUBMENU = f"{DISTRO} - All configurations"
STATE_VERSION = 1


class Fail(Exception):
    """An error a command reports on stderr and exits with (status 1 unless given)."""

    def __init__(self, message: str, status: int = 1):
        super().__init__(message)
        self.status = status


# -- settings ---------------------------------------------------------------------------------

def world_root() -> Path:
    root = os.environ.get("WORLD_ROOT")
    if not root:
        raise Fail("WORLD_ROOT is not set (the test world must set it)")
    return Path(root)


def _world_env(root: Path) -> dict[str, str]:
    """$WORLD_ROOT/world.env (written by world.py), for a run in a clean environment."""
    out: dict[str, str] = {}
    try:
        text = (root / "world.env").read_text()
    except FileNotFoundError:
        return out
    for line in text.splitlines():
        k, sep, v = line.partition("=")
        if sep:
            out[k] = v
    return out


def setting(root: Path, name: str, default: str | None = None) -> str | None:
    """Environment variable name, else its line in world.env, else default."""
    v = os.environ.get(name)
    if v is None:
        v = _world_env(root).get(name)
    return default if v is None or v == "" else v


def loader_kind(root: Path) -> str:
    kind = setting(root, "WORLD_BOOT_LOADER", "systemd-boot")
    if kind not in KINDS:
        raise Fail(f"WORLD_BOOT_LOADER must be one of {', '.join(KINDS)}, not '{kind}'")
    return kind


def counting_tries(root: Path) -> int:
    v = setting(root, "WORLD_BOOT_COUNTING", "0")
    if not re.fullmatch(r"[0-9]+", v):
        raise Fail(f"WORLD_BOOT_COUNTING must be a number of tries (0: no boot counting), not '{v}'")
    return int(v)


# -- state ------------------------------------------------------------------------------------

def state_path(root: Path) -> Path:
    return root / "boot" / "loader.json"


@contextlib.contextmanager
def locked(root: Path):
    """The boot state's lock (held by whoever reads, changes and writes it)."""
    d = root / "boot"
    d.mkdir(parents=True, exist_ok=True)
    fd = os.open(d / ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def load(root: Path) -> dict | None:
    """The state (loader.json), None before anything installed a boot loader."""
    try:
        return json.loads(state_path(root).read_text())
    except FileNotFoundError:
        return None


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def save(root: Path, state: dict) -> None:
    """Write the state, then what derives from it: boot/next-system and the loader's files."""
    _write_atomically(state_path(root), json.dumps(state, indent=2) + "\n")
    entry, _ = choose(state)
    if entry is not None:
        _write_atomically(root / "boot" / "next-system", entry["toplevel"] + "\n")
    _render(root, state)


def bad(entry: dict) -> bool:
    """An entry whose boot counting has no tries left (systemd-boot's "+0-DONE")."""
    t = entry.get("tries")
    return t is not None and t["left"] == 0


def ordered(state: dict) -> list[dict]:
    """The entries in the loader's menu order. systemd-boot sorts entries without tries left
    last; before them, with boot counting, the default first (NixOS writes it sort-key
    "default", the others "non-default"), then the others newest generation first; without
    boot counting newest first. GRUB and extlinux: as written, the default entry first."""
    entries = list(state["entries"])
    if state["loader"] != "systemd-boot":
        return entries
    counting = bool(state.get("counting"))
    return sorted(entries, key=lambda e: (bad(e), counting and e["id"] != state["default"], -e["generation"]))


def _grub_find(state: dict, spec: str) -> dict | None:
    """GRUB's lookup of a menu entry by title or number, '>' descending into a submenu
    (menuentry_eq/get_entry_number). The menu: [0] "NixOS" (the default entry), [1] the submenu
    "NixOS - All configurations" with one entry per generation, newest first."""
    top, subs = state["entries"][0], state["entries"][1:]
    parts = spec.split(">")
    if len(parts) == 1:
        return top if parts[0] in ("0", top["title"]) else None  # "1" is the submenu: no entry
    if len(parts) != 2 or parts[0] not in ("1", GRUB_SUBMENU):
        return None
    if parts[1].isdigit():
        i = int(parts[1])
        return subs[i] if i < len(subs) else None
    return next((e for e in subs if e["title"] == parts[1]), None)


def find(state: dict, spec: str) -> dict | None:
    """The entry the loader selects for spec (a one-shot or default setting), None if none:
    systemd-boot matches the id as a glob, case-insensitively, first match in menu order;
    GRUB by title path or number; extlinux by label."""
    entries = ordered(state)
    if not entries or not spec:
        return None
    if state["loader"] == "grub":
        return _grub_find(state, spec)
    if state["loader"] == "systemd-boot":
        pat = spec.casefold()
        return next((e for e in entries if fnmatch.fnmatchcase(e["id"].casefold(), pat)), None)
    return next((e for e in entries if e["id"] == spec), None)


def default_entry(state: dict) -> dict | None:
    """The configured default: systemd-boot's LoaderEntryDefault (bootctl set-default) when set
    and found, else the default the installer wrote. No one-shot, no boot counting fallback."""
    e = find(state, state.get("default_efivar") or "")
    return e or find(state, state["default"])


def choose(state: dict) -> tuple[dict | None, str]:
    """The entry the next boot starts, and how it was chosen ("oneshot", "default", or
    "fallback": the default has no tries left, or is gone). Changes nothing."""
    entries = ordered(state)
    if not entries:
        return None, "none"
    e = find(state, state.get("oneshot") or "")
    if e is not None:
        return e, "oneshot"  # systemd-boot takes a one-shot entry even without tries left
    if state["loader"] == "systemd-boot":
        e = find(state, state.get("default_efivar") or "")
        if e is not None:
            return e, "default"  # an exact id: taken even without tries left, as systemd-boot does
        if state.get("counting"):
            # NixOS's loader.conf with boot counting says "default nixos-generation-*": the first
            # entry of the menu, the default unless it has no tries left.
            return entries[0], "default" if entries[0]["id"] == state["default"] else "fallback"
    e = find(state, state["default"])
    return (e, "default") if e is not None else (entries[0], "fallback")


def empty_state(kind: str) -> dict:
    return {"version": STATE_VERSION, "loader": kind, "counting": 0, "entries": [], "default": None,
            "default_efivar": None, "oneshot": None, "booted": None}


# -- install ----------------------------------------------------------------------------------

def generations(profile: Path) -> dict[int, str]:
    """{N: store path} of the links PROFILE-N-link next to the profile, oldest first."""
    pat = re.compile(re.escape(profile.name) + r"-([0-9]+)-link")
    gens = {}
    try:
        names = os.listdir(profile.parent)
    except FileNotFoundError:
        return {}
    for name in names:
        m = pat.fullmatch(name)
        if m:
            gens[int(m.group(1))] = os.path.realpath(profile.parent / name)
    return dict(sorted(gens.items()))


def _link_date(link: Path) -> str:
    return time.strftime("%Y-%m-%d", time.localtime(os.lstat(link).st_mtime))


def install(root: Path, toplevel: str, kind: str, counting: int, profile: Path) -> dict:
    """Write the boot entries for the generations of profile, the default that of toplevel.
    Returns the new state."""
    if counting and kind != "systemd-boot":
        raise Fail(f"boot counting (WORLD_BOOT_COUNTING={counting}) is systemd-boot's; "
                   f"the boot loader is {kind} (WORLD_BOOT_LOADER)")
    toplevel = os.path.realpath(toplevel)
    usable: dict[int, tuple[str, str, str]] = {}  # N -> (toplevel, nixos-version, date)
    for n, top in generations(profile).items():
        link = profile.parent / f"{profile.name}-{n}-link"
        try:
            version = Path(top, "nixos-version").read_text().strip()
        except OSError:
            print(f"warning: skipping corrupt system profile entry '{link}' (no nixos-version)", file=sys.stderr)
            continue
        usable[n] = (top, version, _link_date(link))
    mine = [n for n, (top, _, _) in usable.items() if top == toplevel]
    if not mine:
        known = ", ".join(f"{n} -> {top}" for n, (top, _, _) in usable.items()) or "none"
        raise Fail(f"cannot make {toplevel} the boot default: it is no generation of the system profile "
                   f"{profile} (generations: {known}); the boot loader lists only the profile's "
                   f"generations, so set the profile first (nix-env -p PROFILE --set TOPLEVEL)")
    cur = max(mine)
    newest_first = sorted(usable, reverse=True)
    with locked(root):
        old = load(root)
        if old is None or old.get("loader") != kind:
            old = empty_state(kind)
        old_tries = {e["id"]: e.get("tries") for e in old["entries"]}

        def tries(ident: str):
            # An entry already written keeps its counter (or none: blessed, or written without
            # counting); a new one gets the configured tries.
            if ident in old_tries:
                return old_tries[ident]
            return {"left": counting, "done": 0} if counting else None

        entries = []
        if kind == "systemd-boot":
            for n in newest_first:
                top, version, date = usable[n]
                ident = f"nixos-generation-{n}.conf"
                entries.append({"id": ident, "generation": n, "toplevel": top, "title": DISTRO,
                                "version": f"Generation {n} {DISTRO} {version}, built on {date}",
                                "tries": tries(ident)})
            default = f"nixos-generation-{cur}.conf"
        elif kind == "grub":
            entries.append({"id": DISTRO, "generation": cur, "toplevel": toplevel, "title": DISTRO,
                            "version": usable[cur][1], "tries": None})
            for n in newest_first:
                top, version, date = usable[n]
                title = f"{DISTRO} - Configuration {n} ({date} - {version})"
                entries.append({"id": f"{GRUB_SUBMENU}>{title}", "generation": n, "toplevel": top,
                                "title": title, "version": version, "tries": None})
            default = DISTRO
        else:
            entries.append({"id": "nixos-default", "generation": cur, "toplevel": toplevel,
                            "title": f"{DISTRO} - Default", "version": usable[cur][1], "tries": None})
            for n in newest_first:
                top, version, date = usable[n]
                entries.append({"id": f"nixos-{n}-default", "generation": n, "toplevel": top,
                                "title": f"{DISTRO} - Configuration {n} ({date} - {version})",
                                "version": version, "tries": None})
            default = "nixos-default"
        state = dict(old, version=STATE_VERSION, loader=kind, counting=counting, entries=entries, default=default)
        save(root, state)
    return state


# -- boot -------------------------------------------------------------------------------------

def boot(root: Path) -> dict:
    """Power on: the loader chooses the entry (one-shot first, and consumed; else the default;
    with boot counting, a default without tries left falls back), uses up one of its tries, and
    records it as the entry booted (LoaderEntrySelected). Returns {"entry", "generation",
    "toplevel", "how", "oneshot" (the one-shot setting consumed, matching or not), "tries"
    (after this boot, None without boot counting)}."""
    with locked(root):
        state = load(root)
        if state is None or not state["entries"]:
            raise Fail("no boot loader entries: nothing ran switch-to-configuration boot or switch "
                       "on this machine, there is nothing to boot")
        entry, how = choose(state)
        oneshot = state.get("oneshot")
        state["oneshot"] = None  # systemd-boot removes LoaderEntryOneShot, GRUB clears next_entry
        t = entry.get("tries")
        if t is not None and t["left"] > 0:
            t = entry["tries"] = {"left": t["left"] - 1, "done": t["done"] + 1}
        state["booted"] = {"id": entry["id"], "tries": copy.deepcopy(t)}
        save(root, state)
    return {"entry": entry["id"], "generation": entry["generation"], "toplevel": entry["toplevel"],
            "how": how, "oneshot": oneshot, "tries": copy.deepcopy(t)}


# -- the loader's own files (views of the state) ------------------------------------------------

def _render(root: Path, state: dict) -> None:
    boot = root / "boot"
    kind = state["loader"]
    for d, k in ((boot / "loader", "systemd-boot"), (boot / "grub", "grub"), (boot / "extlinux", "extlinux")):
        if k != kind and d.exists():
            shutil.rmtree(d)
    if kind == "systemd-boot":
        _render_systemd_boot(boot / "loader", state)
    elif kind == "grub":
        _render_grub(boot / "grub", state)
    else:
        _render_extlinux(boot / "extlinux", state)


def entry_file_name(entry: dict) -> str:
    """systemd-boot's file name of an entry: the counter "+LEFT-DONE" before .conf while it counts."""
    t = entry.get("tries")
    if t is None:
        return entry["id"]
    stem = entry["id"][:-len(".conf")]
    return f"{stem}+{t['left']}-{t['done']}.conf" if t["done"] else f"{stem}+{t['left']}.conf"


def _render_systemd_boot(d: Path, state: dict) -> None:
    entries_dir = d / "entries"
    entries_dir.mkdir(parents=True, exist_ok=True)
    keep = set()
    counting = bool(state.get("counting"))
    for e in state["entries"]:
        name = entry_file_name(e)
        keep.add(name)
        sort_key = ("default" if e["id"] == state["default"] else "non-default") if counting else "nixos"
        _write_atomically(entries_dir / name,
                          f"title {e['title']}\nversion {e['version']}\n"
                          f"options init={e['toplevel']}/init\nsort-key {sort_key}\n")
    for name in os.listdir(entries_dir):
        if name not in keep:
            (entries_dir / name).unlink()
    default = "nixos-generation-*" if counting else state["default"]
    _write_atomically(d / "loader.conf", f"timeout 5\ndefault {default}\nconsole-mode keep\n")


def _render_grub(d: Path, state: dict) -> None:
    lines = ["# Written by the atticd-agent test world: the menu NixOS's install-grub.pl writes", "",
             "set default=0", ""]
    top, subs = state["entries"][0], state["entries"][1:]
    lines += [f'menuentry "{top["title"]}" --class nixos --unrestricted {{',
              f'  linux {top["toplevel"]}/kernel init={top["toplevel"]}/init', "}", "",
              f'submenu "{GRUB_SUBMENU}" --class submenu {{']
    for e in subs:
        lines += [f'menuentry "{e["title"]}" --class nixos {{',
                  f'  linux {e["toplevel"]}/kernel init={e["toplevel"]}/init', "}"]
    lines.append("}")
    _write_atomically(d / "grub.cfg", "\n".join(lines) + "\n")


def _render_extlinux(d: Path, state: dict) -> None:
    lines = ["# Generated file, all changes will be lost on nixos-rebuild!", "",
             "DEFAULT nixos-default", "MENU TITLE ------------------------------------------------------------",
             "TIMEOUT 50"]
    for e in state["entries"]:
        lines += ["", f"LABEL {e['id']}", f"  MENU LABEL {e['title']}", f"  LINUX {e['toplevel']}/kernel",
                  f"  APPEND init={e['toplevel']}/init"]
    _write_atomically(d / "extlinux.conf", "\n".join(lines) + "\n")


# -- commands ---------------------------------------------------------------------------------

def log_call(root: Path, prog: str, args: list[str]) -> None:
    """One line "PROGRAM ARGS..." in $WORLD_ROOT/bootloader.log per call of a stand-in."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "bootloader.log", "a") as f:
        f.write(" ".join([prog, *args]) + "\n")


def installed_kind(root: Path, state: dict | None) -> str:
    """The boot loader this machine has: the one installed last, else WORLD_BOOT_LOADER."""
    return state["loader"] if state else loader_kind(root)


BOOTCTL_USAGE = """bootctl [OPTIONS...] COMMAND ...

The atticd-agent test world's bootctl (systemd-boot, in files below $WORLD_ROOT/boot).

Commands:
  status                 Show the current boot loader entry, the default and the one-shot
  list                   List boot loader entries
  set-default ID         Set default boot loader entry (LoaderEntryDefault; "" removes it)
  set-oneshot ID         Set default boot loader entry, for next boot only ("" removes it)

Options:
  -h --help              Show this help
     --no-pager          Accepted (there is no pager)
  -q --quiet             Accepted
     --json=pretty|short|off   list: JSON output
     --esp-path=PATH, --boot-path=PATH, --graceful   Accepted, ignored
"""


def _efivar_target(state: dict | None, arg: str, variable: str) -> str:
    """bootctl's parse_loader_entry_target_arg: @current, @default, @oneshot, or an id."""
    specials = {"@current": ("LoaderEntrySelected", (state or {}).get("booted") and state["booted"]["id"]),
                "@default": ("LoaderEntryDefault", (state or {}).get("default_efivar")),
                "@oneshot": ("LoaderEntryOneShot", (state or {}).get("oneshot"))}
    if arg in specials:
        var, value = specials[arg]
        if not value:
            raise Fail(f"Failed to get EFI variable '{var}': No such file or directory")
        arg = value
    elif arg.startswith("@"):
        raise Fail(f"Unsupported special entry identifier: {arg}")
    # The real bootctl writes any id into the EFI variable (and systemd-boot ignores one that
    # matches no entry); the world's refuses an id that matches no entry (tests/world/README.md).
    if state is None or find(state, arg) is None:
        known = ", ".join(e["id"] for e in ordered(state)) if state else "none"
        raise Fail(f"Failed to update EFI variable '{variable}': no boot loader entry '{arg}' "
                   f"(entries: {known})")
    return arg


def _entry_json(root: Path, state: dict, e: dict, next_id: str | None) -> dict:
    booted = (state.get("booted") or {}).get("id")
    j = {"type": "type1", "source": "esp", "id": e["id"],
         "path": str(root / "boot" / "loader" / "entries" / entry_file_name(e)),
         "root": str(root / "boot"), "title": e["title"], "showTitle": f"{e['title']} ({e['version']})",
         "sortKey": "nixos", "version": e["version"], "options": f"init={e['toplevel']}/init",
         "isReported": True, "isDefault": e["id"] == next_id, "isSelected": e["id"] == booted,
         "toplevel": e["toplevel"], "generation": e["generation"]}
    if e.get("tries") is not None:
        j["triesLeft"], j["triesDone"] = e["tries"]["left"], e["tries"]["done"]
    return j


def bootctl(root: Path, args: list[str]) -> int:
    log_call(root, "bootctl", args)
    json_mode = "off"
    rest: list[str] = []
    for a in args:
        if a in ("-h", "--help"):
            print(BOOTCTL_USAGE, end="")
            return 0
        if a in ("--no-pager", "-q", "--quiet", "--graceful") or a.startswith(("--esp-path=", "--boot-path=")):
            continue
        if a.startswith("--json="):
            json_mode = a.split("=", 1)[1]
            if json_mode not in ("pretty", "short", "off"):
                raise Fail(f"Unknown argument to --json=: {json_mode}")
            continue
        if a.startswith("-") and len(a) > 1:
            raise Fail(f"bootctl: unrecognized option '{a}'")
        rest.append(a)
    verb, params = (rest[0], rest[1:]) if rest else ("status", [])
    arity = {"status": 0, "list": 0, "set-default": 1, "set-oneshot": 1}
    if verb not in arity:
        raise Fail(f"Unknown command verb '{verb}' (the world's bootctl knows {', '.join(arity)}).")
    if len(params) < arity[verb]:
        raise Fail("Too few arguments.")
    if len(params) > arity[verb]:
        raise Fail("Too many arguments.")

    with locked(root):
        state = load(root)
        kind = installed_kind(root, state)
        if kind != "systemd-boot":
            raise Fail(f"Not booted with a supported boot loader (this machine's boot loader is {kind}, "
                       f"not systemd-boot).")
        if verb in ("set-default", "set-oneshot"):
            key, variable = (("default_efivar", "LoaderEntryDefault") if verb == "set-default"
                             else ("oneshot", "LoaderEntryOneShot"))
            value = params[0]
            if state is None:
                state = empty_state(kind)
            state[key] = _efivar_target(state, value, variable) if value else None
            save(root, state)
            return 0

    entries = ordered(state) if state else []
    nxt, _ = choose(state) if state else (None, "none")
    next_id = nxt["id"] if nxt else None
    if verb == "status":
        booted = (state or {}).get("booted") or {}
        dflt = default_entry(state) if state else None
        print("System:\n      Firmware: UEFI (atticd test world)\n\nCurrent Boot Loader:\n"
              "      Product: systemd-boot (atticd test world)\n"
              f"Current Entry: {booted.get('id') or 'n/a'}\n"
              f"Default Entry: {dflt['id'] if dflt else 'n/a'}\n"
              f"OneShot Entry: {(state or {}).get('oneshot') or 'n/a'}\n"
              f"   Next Entry: {next_id or 'n/a'}")
        return 0
    if json_mode != "off":
        data = [_entry_json(root, state, e, next_id) for e in entries]
        print(json.dumps(data, indent=2 if json_mode == "pretty" else None, separators=None if json_mode == "pretty" else (",", ":")))
        return 0
    if not entries:
        print("No boot loader entries found.")
        return 0
    print("Boot Loader Entries:")
    booted = ((state or {}).get("booted") or {}).get("id")
    for i, e in enumerate(entries):
        marks = "".join([" (default)" if e["id"] == next_id else "", " (selected)" if e["id"] == booted else ""])
        lines = [("type", "Boot Loader Specification Type #1 (.conf)"),
                 ("title", f"{e['title']} ({e['version']}){marks}"), ("id", e["id"]),
                 ("source", str(root / "boot" / "loader" / "entries" / entry_file_name(e))),
                 ("version", e["version"])]
        if e.get("tries") is not None:
            lines.append(("tries", f"{e['tries']['left']} left; {e['tries']['done']} done"))
        lines.append(("options", f"init={e['toplevel']}/init"))
        if i:
            print()
        for k, v in lines:
            print(f"{k:>13}: {v}")
    return 0


GRUB_REBOOT_USAGE = """Usage: grub-reboot [OPTION] MENU_ENTRY
Set the default boot menu entry for GRUB, for the next boot only.

  -h, --help              print this message and exit
  -V, --version           print the version information and exit
  --boot-directory=DIR    accepted, ignored (the atticd-agent test world: $WORLD_ROOT/boot)

MENU_ENTRY is a number, a menu item title or a menu item identifier. Please note that menu
items in submenus or sub-submenus require specifying the submenu components and then the
menu item component. The titles should be separated using the greater-than character (>)
with no extra spaces.
"""


def grub_reboot(root: Path, args: list[str]) -> int:
    log_call(root, "grub-reboot", args)
    entry = None
    for a in args:
        if a in ("-h", "--help"):
            print(GRUB_REBOOT_USAGE, end="")
            return 0
        if a in ("-V", "--version"):
            print("grub-reboot (GRUB) 2.12 (atticd test world)")
            return 0
        if a.startswith("--boot-directory="):
            continue
        if a.startswith("-") or entry is not None:
            print(f"Unrecognized option `{a}'", file=sys.stderr)
            print(GRUB_REBOOT_USAGE, end="", file=sys.stderr)
            return 1
        entry = a
    if not entry:
        print("Entry not specified.", file=sys.stderr)
        print(GRUB_REBOOT_USAGE, end="", file=sys.stderr)
        return 1
    with locked(root):
        state = load(root)
        kind = installed_kind(root, state)
        if kind != "grub":
            raise Fail(f"grub-reboot: error: cannot open `/boot/grub/grubenv.new': No such file or directory "
                       f"(this machine's boot loader is {kind}, not GRUB).")
        if state is None:
            state = empty_state(kind)
        # Like the real one (grub-editenv set next_entry=...), it checks nothing: at boot, a
        # next_entry that matches no entry boots the default.
        state["oneshot"] = entry
        save(root, state)
    return 0


def bless_boot(root: Path, args: list[str]) -> int:
    log_call(root, "systemd-bless-boot", args)
    verbs = [a for a in args if not a.startswith("--path=")]
    if any(a in ("-h", "--help") for a in verbs):
        print("systemd-bless-boot [OPTIONS...] COMMAND\n\nMark the boot process as good or bad.\n\n"
              "Commands:\n     status          Show status of current boot loader entry\n"
              "     good            Mark this boot as good\n     bad             Mark this boot as bad\n"
              "     indeterminate   Undo any marking as good or bad")
        return 0
    for a in verbs:
        if a.startswith("-"):
            raise Fail(f"systemd-bless-boot: unrecognized option '{a}'")
    if len(verbs) > 1:
        raise Fail("Too many arguments.")
    verb = verbs[0] if verbs else "status"
    if verb not in ("status", "good", "bad", "indeterminate"):
        raise Fail(f"Unknown command verb '{verb}'.")
    with locked(root):
        state = load(root)
        booted = (state or {}).get("booted") or {}
        at_boot = booted.get("tries")
        if at_boot is None:
            if verb == "status":
                print("clean")
                return 0
            raise Fail("Not booted with boot counting in effect.")
        entry = next((e for e in state["entries"] if e["id"] == booted["id"]), None)
        good, bad_ = None, {"left": 0, "done": at_boot["done"]}
        now = entry.get("tries") if entry else "gone"
        if verb == "status":
            if now == at_boot:
                print("indeterminate")
            elif entry is not None and now is None:
                print("good")
            elif now == bad_:
                print("bad")
            else:
                raise Fail("Couldn't determine boot state.")
            return 0
        target = {"good": good, "bad": bad_, "indeterminate": at_boot}[verb]
        if entry is not None and now == target:
            return 0  # "Operation already executed before, not doing anything."
        sources = [x for x in (at_boot, good, bad_) if x != target]
        if entry is None or now not in sources:
            name = entry_file_name({"id": booted["id"], "tries": target}) if booted["id"].endswith(".conf") else booted["id"]
            raise Fail(f"Can't find boot counter source file for '/loader/entries/{name}'.")
        entry["tries"] = copy.deepcopy(target)
        save(root, state)
    print(f"Marked boot as '{verb}'. (Boot attempt counter is at {at_boot['done']}.)", file=sys.stderr)
    return 0


def install_command(args: list[str]) -> int:
    if len(args) != 1:
        raise Fail("usage: bootloader.py install TOPLEVEL")
    root = world_root()
    profile = setting(root, "WORLD_PROFILE")
    if not profile:
        raise Fail("WORLD_PROFILE is not set (the test world must set it)")
    state = install(root, args[0], loader_kind(root), counting_tries(root), Path(profile))
    d = find(state, state["default"])
    print(f"{state['loader']}: {len([e for e in state['entries'] if e['id'] != 'NixOS' and e['id'] != 'nixos-default'])} "
          f"generation(s), default {state['default']} (generation {d['generation']})", file=sys.stderr)
    return 0


def main(argv: list[str]) -> int:
    prog = os.path.basename(argv[0])
    args = argv[1:]
    if prog in ("bootloader.py", "bootloader"):
        if not args:
            print("usage: bootloader.py install TOPLEVEL | bootctl ... | grub-reboot ... | "
                  "systemd-bless-boot ...", file=sys.stderr)
            return 1
        prog, args = args[0], args[1:]
    commands = {"bootctl": bootctl, "grub-reboot": grub_reboot, "systemd-bless-boot": bless_boot}
    try:
        if prog == "install":
            return install_command(args)
        if prog not in commands:
            raise Fail(f"bootloader.py: unknown command '{prog}'")
        return commands[prog](world_root(), args)
    except Fail as e:
        print(str(e), file=sys.stderr)
        return e.status


if __name__ == "__main__":
    sys.exit(main(sys.argv))
