#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The NixOS module, the flake and the documentation (tests/nix/README.md).

1. parse: every .nix file of the source tree parses (nix-instantiate --parse).
2. docs:  every command and option of the contract, and every configuration key the agent
          knows (the tables of agent/config/config.c), is in the man page and every key in
          docs/configuration.md; the man page renders (scdoc, man -l).
3. eval:  module.nix, evaluated with lib.evalModules and the nixpkgs library against the stub
          NixOS options of tests/nix/stubs/, makes the units and the file it should, refuses
          wrongly typed options and secrets in the store; with the agent binary
          ($ATTICD_AGENT_BIN), the configuration file is built, which runs the real
          `atticd-agent config check`, and a configuration the agent refuses fails the build.
          flake.nix, evaluated with a stand-in nixpkgs, has the outputs it should, and its
          package the source, inputs and check phase it should; `nix flake check --no-build`,
          with nixpkgs overridden by the stand-in, passes on this machine's nix.

The nixpkgs library is looked for in $NIXPKGS_LIB, <nixpkgs> on NIX_PATH, a checkout of
nix-community/nixpkgs.lib or nixpkgs next to the source tree, and root's channels. Without it,
part 3 is skipped: the exit status is then 77 (meson: SKIP) when parts 1 and 2 passed.
Everything nix writes goes to a private store below a temporary directory.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

SKIP = 77
ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
MAN_PAGE = ROOT / "docs" / "atticd-agent.8.scd"
CONFIGURATION_MD = ROOT / "docs" / "configuration.md"

failures = []


def ok(msg):
    print(f"ok   {msg}")


def fail(msg):
    print(f"FAIL {msg}")
    failures.append(msg)


def check(cond, msg):
    (ok if cond else fail)(msg)
    return cond


# ---- nix, in a private store ----

def nix_environment(tmp):
    env = dict(os.environ)
    env.update({
        "NIX_CONFIG": "experimental-features = nix-command flakes\nsandbox = false\n"
                      "substituters =\nbuild-users-group =\nwarn-dirty = false",
        "NIX_STORE_DIR": f"{tmp}/store",
        "NIX_STATE_DIR": f"{tmp}/state",
        "NIX_LOG_DIR": f"{tmp}/log",
        "XDG_CACHE_HOME": f"{tmp}/cache",
        "HOME": f"{tmp}/home",
    })
    env.pop("NIX_REMOTE", None)
    return env


def run(argv, env):
    return subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=120)


# ---- 1. every .nix file parses ----

def nix_files():
    for dirpath, dirnames, filenames in os.walk(ROOT):
        # Not the git directory, build directories, or what nix-build leaves.
        dirnames[:] = [d for d in dirnames
                       if d not in (".git", "__pycache__", "result")
                       and not (Path(dirpath, d) / "meson-private").is_dir()]
        for f in filenames:
            if f.endswith(".nix"):
                yield Path(dirpath, f)


def check_parse(env):
    files = sorted(nix_files())
    check(len(files) >= 8, f"parse: found {len(files)} .nix files")
    for f in files:
        r = run(["nix-instantiate", "--parse", str(f)], env)
        check(r.returncode == 0, f"parse: {f.relative_to(ROOT)}" +
              ("" if r.returncode == 0 else f"\n{r.stderr.strip()}"))


# ---- 2. the documentation covers the contract and every key ----

# The fixed surface (../shared/CONTRACT.md), and the options beyond it that the agent has.
COMMANDS = ["pull", "apply", "verify", "bundle create", "verify-images", "check", "status",
            "rollback", "confirm", "config check", "--version", "--help", "verify-blob"]
OPTIONS = ["-c", "--config", "--json", "-v", "-q",
           # bundle create, verify-images
           "-o", "--rev", "--repo", "--key", "--sequence", "--expires", "--no-closure",
           "--no-images",
           # verify-blob
           "--bundle", "--trusted-root", "--certificate-identity", "--certificate-oidc-issuer",
           # beyond the contract
           "--retry", "--allow-downgrade", "--host"]
CONTRACT_KEYS = [
    "host", "state-dir",
    "system.rebuild-command", "system.nix-command", "system.profile", "system.current-system",
    "system.action",
    "repository.url", "repository.ref", "repository.allow-non-fast-forward",
    "repository.allowed-signers",
    "images.keys", "images.threshold", "images.registry-auth-file", "images.insecure-registries",
    "images.require-sbom",
    "bundle.keys",
    "health.settle", "health.timeout", "health.checks", "health.checks[].name",
    "health.checks[].http", "health.checks[].http.url", "health.checks[].http.status",
    "health.checks[].tcp", "health.checks[].systemd-units", "health.checks[].command",
]

# Where the rows of each table of agent/config/config.c live in the file.
TABLE_PREFIX = {"config": "", "check": "health.checks[].", "http": "health.checks[].http.",
                "keyless": "images.keyless.", "identity": "images.keyless.identities[]."}


def config_c_keys():
    """Every key of the configuration tables of agent/config/config.c, as a dotted path."""
    src = (ROOT / "agent" / "config" / "config.c").read_text()
    keys = []
    for m in re.finditer(r"static const SchemaKey (\w+)_keys\[\] = \{(.*?)\n\};", src, re.S):
        prefix = TABLE_PREFIX.get(m.group(1), m.group(1) + ".")
        keys += [prefix + k for k in re.findall(r'KEY\("([^"]+)"', m.group(2))]
    return keys


def sections(text):
    """{section name: its text} for the headings of a markdown or scdoc file."""
    out, name = {}, ""
    for line in text.splitlines():
        m = re.match(r"#{1,3} +`?([\w.-]+)`?\s*$", line)
        if m:
            name = m.group(1).lower()
        out[name] = out.get(name, "") + line + "\n"
    return out


def word(w):
    return re.compile(r"(?<![\w.\[-])" + re.escape(w) + r"(?![\w\]-])")


def documents_key(text, key):
    """The key is there as its full dotted name, or by its last name in the section of its
    top-level key (configuration.md has a table per section)."""
    if word(key).search(text) or (key.startswith("health.checks[].") and
                                  word(key.replace("[]", "")).search(text)):
        return True
    top, _, _ = key.partition(".")
    leaf = key.replace("[]", "").rsplit(".", 1)[-1]
    if top == key:
        return bool(word(key).search(text))
    return bool(word(leaf).search(sections(text).get(top, "")))


def check_docs(env_tmp):
    man = MAN_PAGE.read_text()
    conf = CONFIGURATION_MD.read_text()

    # Commands and options: in the man page, in bold (*pull*, *--retry*).
    missing = [c for c in COMMANDS + OPTIONS if f"*{c}*" not in man]
    check(not missing, "docs: every command and option is in the man page" +
          (f"; missing: {', '.join(missing)}" if missing else ""))

    keys = list(dict.fromkeys(CONTRACT_KEYS + config_c_keys()))
    check(len(keys) > len(CONTRACT_KEYS), f"docs: {len(keys)} configuration keys (contract and agent/config/config.c)")
    for name, text, path in (("man page", man, MAN_PAGE), ("docs/configuration.md", conf, CONFIGURATION_MD)):
        missing = [k for k in keys if not documents_key(text, k)]
        check(not missing, f"docs: every configuration key is in the {name}" +
              (f"; missing from {path.relative_to(ROOT)}: {', '.join(missing)}" if missing else ""))

    # The man page renders.
    scdoc, man_cmd = shutil.which("scdoc"), shutil.which("man")
    if not scdoc:
        print("note docs: scdoc not found: the man page was not rendered")
        return
    r = subprocess.run([scdoc], input=man, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if not check(r.returncode == 0 and r.stdout.startswith(".\\\""),
                 "docs: scdoc renders docs/atticd-agent.8.scd" + (f"\n{r.stderr}" if r.returncode else "")):
        return
    if not man_cmd:
        print("note docs: man not found: the rendered page was not formatted")
        return
    page = Path(env_tmp, "atticd-agent.8")
    page.write_text(r.stdout)
    r = subprocess.run([man_cmd, "--warnings", "-l", str(page)], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True,
                       env=dict(os.environ, MANPAGER="cat", PAGER="cat", MANWIDTH="80"))
    check(r.returncode == 0 and "EXIT STATUS" in r.stdout and "health.checks[].command" in r.stdout
          and not r.stderr.strip(),
          "docs: man -l formats it without warnings" + (f"\n{r.stderr.strip()}" if r.stderr.strip() else ""))


# ---- 3. the module, evaluated ----

def find_nixpkgs_lib(env):
    """The directory of the nixpkgs library (the one with default.nix and modules.nix)."""
    candidates = []
    if os.environ.get("NIXPKGS_LIB"):
        candidates.append(Path(os.environ["NIXPKGS_LIB"]))
    try:
        r = run(["nix-instantiate", "--find-file", "nixpkgs"], env)
        if r.returncode == 0 and r.stdout.strip():
            candidates.append(Path(r.stdout.strip()))
    except (OSError, subprocess.SubprocessError):
        pass
    # ../shared/nixpkgs-lib: the copy every machine of this project has (its README), CI included.
    candidates += [ROOT.parent / "shared" / "nixpkgs-lib",
                   ROOT.parent / "nixpkgs-lib", ROOT.parent / "nixpkgs.lib", ROOT.parent / "nixpkgs",
                   Path("/nix/var/nix/profiles/per-user/root/channels/nixpkgs"),
                   Path("/nix/var/nix/profiles/per-user/root/channels/nixos")]
    for c in candidates:
        for d in (c, c / "lib"):
            if (d / "default.nix").is_file() and (d / "modules.nix").is_file():
                return d
    return None


class Eval:
    def __init__(self, lib, env, agent_bin):
        self.lib, self.env, self.agent_bin = lib, env, agent_bin

    def args(self, case):
        a = ["--arg", "nixpkgsLib", str(self.lib), "--argstr", "case", case]
        if self.agent_bin:
            a += ["--argstr", "agentBin", self.agent_bin]
        return a

    def summary(self, case):
        r = run(["nix-instantiate", "--eval", "--strict", "--json", str(HERE / "eval.nix"), "-A", "summary"]
                + self.args(case), self.env)
        return (json.loads(r.stdout) if r.returncode == 0 else None), r.stderr

    def build(self, case):
        r = run(["nix-build", str(HERE / "eval.nix"), "-A", "configFile", "--no-out-link"] + self.args(case),
                self.env)
        return r.returncode, r.stdout.strip(), r.stderr


def no_nulls(v):
    if isinstance(v, dict):
        return all(no_nulls(x) for x in v.values())
    if isinstance(v, list):
        return all(no_nulls(x) for x in v)
    return v is not None


def check_deploy_unit(s, name, summary, command):
    svc = s.get(name)
    if not check(svc is not None, f"eval: {name}.service exists"):
        return
    sc = svc["serviceConfig"]
    check(sc.get("Type") == "oneshot", f"eval: {name}: Type=oneshot")
    check(svc["restartIfChanged"] is False, f"eval: {name}: restartIfChanged = false")
    check(svc["unitConfig"].get("X-StopOnRemoval") is False, f"eval: {name}: X-StopOnRemoval=false")
    check(sc.get("KillMode") == "process", f"eval: {name}: KillMode=process")
    check("network-online.target" in svc["after"] and "network-online.target" in svc["wants"],
          f"eval: {name}: after and wants network-online.target")
    check(all(p in svc["path"] for p in ("nix-stub", "git-stub", "openssh-stub", "nixos-rebuild-stub")),
          f"eval: {name}: path has nix, git, ssh (programs.ssh.package) and nixos-rebuild ({svc['path']})")
    check(sc.get("ExecStart") == f"{summary['agent']}/bin/atticd-agent --config /etc/atticd-agent/config.yaml {command}",
          f"eval: {name}: ExecStart runs '{command}' of the package with /etc/atticd-agent/config.yaml ({sc.get('ExecStart')})")
    check(sc.get("SuccessExitStatus") == "4 6 143", f"eval: {name}: exit 4, 6 and 143 (stopped) do not fail the unit")
    # Activation must be able to write everywhere and mount for the whole system.
    forbidden = [k for k in ("ProtectSystem", "ProtectHome", "PrivateTmp", "PrivateDevices", "PrivateMounts",
                             "ProtectHostname", "SystemCallFilter", "RestrictSUIDSGID", "NoNewPrivileges",
                             "User", "DynamicUser") if k in sc]
    check(not forbidden, f"eval: {name}: no hardening that breaks activation ({forbidden})")
    check(svc["environment"] == {"HOME": "/root", "NIX_CONFIG": "extra-experimental-features = nix-command flakes"},
          f"eval: {name}: environment is HOME=/root and NIX_CONFIG with flakes, nothing else by default "
          f"({svc['environment']})")


# Keys of [Service] that describe one unit's job, not the conditions its processes run under.
# Every other key (sandboxing, credentials, limits, User=, ...) must be the same in pull,
# confirm and recheck, so that a health check gives the same answer in each.
UNIT_OWN_KEYS = {"Type", "ExecStart", "SuccessExitStatus", "RemainAfterExit", "KillMode", "NotifyAccess"}


def check_same_conditions(s, case):
    svc = s["services"]
    units = [u for u in ("atticd-agent-pull", "atticd-agent-confirm", "atticd-agent-recheck") if u in svc]
    if not check(len(units) == 3, f"eval: {case}: pull, confirm and recheck exist ({units})"):
        return
    conditions = {u: {k: v for k, v in svc[u]["serviceConfig"].items() if k not in UNIT_OWN_KEYS} for u in units}
    check(all(c == conditions[units[0]] for c in conditions.values()),
          f"eval: {case}: pull, confirm and recheck run under the same [Service] settings ({conditions})")
    check(all(svc[u]["environment"] == svc[units[0]]["environment"] for u in units),
          f"eval: {case}: pull, confirm and recheck have the same environment")
    check(all(svc[u]["path"] == svc[units[0]]["path"] for u in units),
          f"eval: {case}: pull, confirm and recheck have the same PATH")
    sandboxing = [(u, k) for u in units for k in ("NoNewPrivileges", "RestrictSUIDSGID", "ProtectSystem", "PrivateTmp")
                  if k in svc[u]["serviceConfig"]]
    check(not sandboxing, f"eval: {case}: no unit sets NoNewPrivileges, RestrictSUIDSGID, ProtectSystem or PrivateTmp "
          f"(setuid wrappers and /tmp work for a check in each) ({sandboxing})")


def check_eval_full(ev):
    s, err = ev.summary("full")
    if not check(s is not None, "eval: the full configuration evaluates" + (f"\n{err}" if s is None else "")):
        return
    svc, timers = s["services"], s["timers"]
    check_deploy_unit(svc, "atticd-agent-pull", s, "pull")
    check_deploy_unit(svc, "atticd-agent-confirm", s, "confirm")
    pull, confirm = svc.get("atticd-agent-pull", {}), svc.get("atticd-agent-confirm", {})
    check(pull.get("wantedBy") == [], "eval: atticd-agent-pull.service is started by its timer only")
    check("multi-user.target" in pull.get("after", []) and "atticd-agent-confirm.service" in pull.get("after", []),
          "eval: pull runs after the boot is complete and after confirm")
    check("multi-user.target" in confirm.get("wantedBy", []) and "multi-user.target" in confirm.get("after", []),
          "eval: confirm is started at boot, after multi-user.target")
    check(confirm.get("serviceConfig", {}).get("RemainAfterExit") is True,
          "eval: confirm runs once per boot (RemainAfterExit), not again when a switch starts multi-user.target")

    t = timers.get("atticd-agent-pull", {})
    tc = t.get("timerConfig", {})
    check(tc == {"OnCalendar": "hourly", "Persistent": True, "RandomizedDelaySec": "5min", "FixedRandomDelay": False},
          f"eval: pull timer by default: OnCalendar=hourly, Persistent=true, RandomizedDelaySec=5min, "
          f"FixedRandomDelay=false ({tc})")
    check("timers.target" in t.get("wantedBy", []), "eval: pull timer is wanted by timers.target")

    r = svc.get("atticd-agent-recheck")
    if check(r is not None, "eval: atticd-agent-recheck.service exists"):
        script = r.get("script") or ""
        check(r["serviceConfig"].get("Type") == "oneshot", "eval: recheck: Type=oneshot")
        check(f"{s['agent']}/bin/atticd-agent --config /etc/atticd-agent/config.yaml" in script
              and "agent check" in script and "agent verify-images" in script,
              "eval: recheck runs check and verify-images with the configuration")
        check("atticd-agent-pull.service" in r["after"], "eval: recheck never runs during a pull")
        check(all(p in r["path"] for p in ("nix-stub", "git-stub", "openssh-stub", "nixos-rebuild-stub")),
              f"eval: recheck: path has nix, git, ssh and nixos-rebuild ({r['path']})")
        check(r["environment"].get("HOME") == "/root", "eval: recheck: HOME=/root")
        tc = timers.get("atticd-agent-recheck", {}).get("timerConfig", {})
        check(tc == {"OnCalendar": "hourly", "Persistent": True, "RandomizedDelaySec": "5min", "FixedRandomDelay": False},
              f"eval: recheck timer by default: OnCalendar=hourly, Persistent=true, RandomizedDelaySec=5min, "
              f"FixedRandomDelay=false ({tc})")
    check_same_conditions(s, "full")

    check(s["etc"].get("atticd-agent/config.yaml", "").endswith("-atticd-agent-config.yaml") and s["configChecked"],
          "eval: /etc/atticd-agent/config.yaml is the checked file")
    check(s["tmpfiles"] == ["d /var/lib/atticd-agent 0700 root root -"], "eval: the state directory is 0700")
    check(s["systemPackages"] == ["atticd-agent-stub"], "eval: the package is in systemPackages")
    check(s["failedAssertions"] == [] and s["warnings"] == [], "eval: no failed assertion, no warning")

    c = json.loads(s["configText"])
    check(no_nulls(c), "eval: the configuration file has no null values")
    expected = {
        "host": "web1",
        "state-dir": "/var/lib/atticd-agent",
        "system": {"action": "switch", "keep-generations": 10},
        "rollout": {"bucket": 0},
        "schedule": {"windows": ["Mon-Fri 02:00-05:00"]},
        "repository": {"url": "https://git.example.org/client.git", "ref": "production",
                       "allowed-signers": "/etc/atticd-agent/allowed_signers", "http-username": "oauth2",
                       "http-password-file": "/run/secrets/git-token", "connect-timeout": 10},
        "images": {"keys": ["/etc/atticd-agent/cosign.pub"], "threshold": 1,
                   "registry-auth-file": "/run/secrets/registry-auth.json", "require-sbom": True,
                   "insecure-registries": ["127.0.0.1:5000"]},
        "bundle": {"keys": ["/etc/atticd-agent/bundle.pub"]},
        "health": {"settle": 2, "timeout": 60, "checks": [
            {"name": "web", "http": {"url": "http://127.0.0.1:8080/health", "status": 200}},
            {"name": "db", "tcp": "127.0.0.1:5432"},
            {"name": "units", "systemd-units": ["nginx.service"]},
            {"name": "smoke", "command": ["/run/current-system/sw/bin/true"]}]},
        "hooks": {"on-failure": ["/run/current-system/sw/bin/logger", "deployment failed"]},
        "metrics": {"textfile": "/var/lib/prometheus-node-exporter/atticd-agent.prom"},
    }
    check(c == expected, "eval: the configuration file holds exactly the settings (typed and freeform)" +
          ("" if c == expected else f"\n  got      {json.dumps(c, sort_keys=True)}\n  expected {json.dumps(expected, sort_keys=True)}"))


NIX_CONFIG_LINES = [
    "extra-substituters = https://cache.example.org",
    "extra-trusted-public-keys = cache.example.org-1:0dwEKwa0FRUyUfqs7vOe65eiuwjD4jfqQwK2Ka4bAOU=",
    "!include /run/secrets/nix-access-tokens.conf",
]


def check_environment(ev):
    """The units' environment: networking.proxy, nix.envVars, programs.ssh.package, extraNixConfig."""
    s, err = ev.summary("environment")
    if not check(s is not None, "eval: the units' environment evaluates" + (f"\n{err}" if s is None else "")):
        return
    check(s["failedAssertions"] == [], f"eval: environment: !include of a file is not refused ({s['failedAssertions']})")
    for name in ("atticd-agent-pull", "atticd-agent-confirm", "atticd-agent-recheck"):
        u = s["services"].get(name)
        if not check(u is not None, f"eval: environment: {name} exists"):
            continue
        env = u["environment"]
        proxy = {k: env.get(k) for k in ("http_proxy", "https_proxy", "no_proxy")}
        check(proxy == {"http_proxy": "http://proxy.example.org:3128", "https_proxy": "http://proxy.example.org:3128",
                        "no_proxy": "127.0.0.1,localhost"},
              f"eval: environment: {name} has networking.proxy.envVars ({proxy})")
        check(env.get("NIX_SSHOPTS") == "-o ConnectTimeout=10", f"eval: environment: {name} has nix.envVars")
        check(env.get("HOME") == "/root", f"eval: environment: {name} has HOME=/root")
        check("openssh-hpn-stub" in u["path"] and "openssh-stub" not in u["path"],
              f"eval: environment: {name}'s PATH has programs.ssh.package, not pkgs.openssh ({u['path']})")
        lines = env.get("NIX_CONFIG", "").split("\n")
        check(lines[0] == "extra-experimental-features = nix-command flakes" and sorted(lines[1:]) == sorted(NIX_CONFIG_LINES),
              f"eval: environment: {name}'s NIX_CONFIG is flakes, then the lines of both extraNixConfig definitions ({lines})")
    check_same_conditions(s, "environment")

    # What nix makes of the units' NIX_CONFIG: the machine's nix reads it, the included file
    # (here a temporary one, in place of /run/secrets/...) too.
    nix_config = s["services"].get("atticd-agent-pull", {}).get("environment", {}).get("NIX_CONFIG", "")
    tokens = Path(ev.env["HOME"], "nix-access-tokens.conf")
    tokens.write_text("access-tokens = github.com=ghp_test\n")
    r = run(["nix", "show-config"], dict(ev.env, NIX_CONFIG=nix_config.replace("/run/secrets/nix-access-tokens.conf", str(tokens))))
    got = dict(line.split(" = ", 1) for line in r.stdout.splitlines() if " = " in line)
    check(r.returncode == 0 and "https://cache.example.org" in got.get("substituters", "").split()
          and "cache.example.org-1:0dwEKwa0FRUyUfqs7vOe65eiuwjD4jfqQwK2Ka4bAOU=" in got.get("trusted-public-keys", "").split()
          and got.get("access-tokens") == "github.com=ghp_test"
          and set(got.get("experimental-features", "").split()) >= {"nix-command", "flakes"},
          "eval: environment: nix reads the units' NIX_CONFIG: flakes, the substituter and its key added, the "
          "access token from the !include'd file" + ("" if r.returncode == 0 else f"\n{r.stderr.strip()}"))


KEYLESS_IDENTITIES = [
    {"issuer": "https://gitlab.example.org",
     "subject": "https://gitlab.example.org/platform/ci//.gitlab-ci.yml@refs/heads/main"},
    {"issuer": "https://token.actions.githubusercontent.com",
     "subject-regexp": r"https://github\.com/example/[^/]+/\.github/workflows/release\.yml@refs/tags/v.*"},
]


def check_eval_keyless(ev):
    """images.keyless: the typed options become exactly the agent's keys, nulls dropped."""
    s, err = ev.summary("keyless")
    if check(s is not None, "eval: images.keyless evaluates" + (f"\n{err}" if s is None else "")):
        check(s["failedAssertions"] == [] and s["warnings"] == [],
              f"eval: keyless: no failed assertion, no warning ({s['failedAssertions']}, {s['warnings']})")
        c = json.loads(s["configText"])
        check(no_nulls(c), "eval: keyless: the configuration file has no null values")
        expected = {"keyless": {"trusted-root": "/etc/atticd-agent/trusted_root.json",
                                "identities": KEYLESS_IDENTITIES},
                    "threshold": 2}
        check(c.get("images") == expected,
              "eval: keyless: images holds exactly trusted-root and the identities (subject and issuer; "
              "subject-regexp and issuer), and threshold" +
              ("" if c.get("images") == expected else
               f"\n  got      {json.dumps(c.get('images'), sort_keys=True)}\n  expected {json.dumps(expected, sort_keys=True)}"))

    s, err = ev.summary("keyless-store-root")
    if check(s is not None, "eval: images.keyless with the trusted root as a path literal evaluates" +
             (f"\n{err}" if s is None else "")):
        root = json.loads(s["configText"]).get("images", {}).get("keyless", {}).get("trusted-root", "")
        check(root.startswith(ev.env["NIX_STORE_DIR"] + "/") and root.endswith("-trusted_root.json")
              and s["failedAssertions"] == [],
              f"eval: keyless: a trusted root given as a path literal is copied into the store, not refused "
              f"({root}, {s['failedAssertions']})")


def check_eval_cases(ev):
    s, err = ev.summary("minimal")
    if check(s is not None, "eval: a minimal configuration evaluates" + (f"\n{err}" if s is None else "")):
        check(json.loads(s["configText"]) == {"host": "web1", "state-dir": "/var/lib/atticd-agent",
                                              "system": {"action": "switch"},
                                              "repository": {"url": "/srv/git/client.git"}},
              f"eval: minimal: only host, state-dir, system.action and what was set are written ({s['configText']})")

    s, err = ev.summary("schedules")
    if check(s is not None, "eval: schedules evaluate" + (f"\n{err}" if s is None else "")):
        tc = s["timers"]["atticd-agent-pull"]["timerConfig"]
        check(tc["OnCalendar"] == "*:0/15" and tc["RandomizedDelaySec"] == "0", "eval: schedule and randomizedDelaySec")
        check(tc.get("Persistent") is False, f"eval: persistent = false: the pull timer's Persistent=false ({tc})")
        check(tc.get("FixedRandomDelay") is True, f"eval: fixedRandomDelay: the pull timer's FixedRandomDelay=true ({tc})")
        tc = s["timers"]["atticd-agent-recheck"]["timerConfig"]
        check(tc.get("OnCalendar") == "daily", "eval: recheck.schedule")
        check(tc.get("RandomizedDelaySec") == "30min", f"eval: recheck.randomizedDelaySec: the recheck timer's RandomizedDelaySec ({tc})")
        check(tc.get("FixedRandomDelay") is True and tc.get("Persistent") is True,
              f"eval: fixedRandomDelay: the recheck timer's FixedRandomDelay=true too; it stays Persistent ({tc})")
        check(all(u["serviceConfig"].get("SuccessExitStatus") == "143" for u in s["services"].values()),
              "eval: failOnTransient: exit 4 and 6 fail the units, 143 (stopped) does not")

    check_environment(ev)

    s, err = ev.summary("boot-no-confirm")
    if check(s is not None, "eval: boot activation evaluates" + (f"\n{err}" if s is None else "")):
        check("atticd-agent-confirm" not in s["services"], "eval: confirm.enable = false: no confirm unit")
        check(any("confirm.enable is false" in w for w in s["warnings"]), "eval: boot without confirm: a warning")
        check(json.loads(s["configText"])["system"] == {"action": "boot", "reboot-window": "02:00-04:30"},
              "eval: system.action boot and reboot-window are written")

    s, err = ev.summary("boot-counting")
    if check(s is not None, "eval: boot counting evaluates" + (f"\n{err}" if s is None else "")):
        c = s["services"]["atticd-agent-confirm"]
        check("boot-complete.target" in c["before"] and "boot-complete.target" in c["requiredBy"],
              f"eval: boot counting: confirm is ordered before boot-complete.target, which requires it ({c['before']}, {c['requiredBy']})")
        t = s["targets"].get("boot-complete", {})
        check("atticd-agent-confirm.service" in t.get("requires", []) and "atticd-agent-confirm.service" in t.get("after", []),
              f"eval: boot counting: boot-complete.target requires and follows confirm ({t})")
        check("multi-user.target" in c["after"], "eval: boot counting: confirm still runs after multi-user.target")
        check(json.loads(s["configText"])["system"] == {"action": "boot", "boot-loader": "systemd-boot"},
              f"eval: systemd-boot is written as the boot loader ({s['configText']})")
    s, err = ev.summary("minimal")
    if s is not None:
        check("before" not in s["services"]["atticd-agent-confirm"] or
              "boot-complete.target" not in s["services"]["atticd-agent-confirm"]["before"],
              "eval: without boot counting, confirm does not gate boot-complete.target")
        check("boot-complete" not in s["targets"], "eval: without boot counting, boot-complete.target is left alone")

    s, err = ev.summary("grub")
    if check(s is not None, "eval: GRUB evaluates" + (f"\n{err}" if s is None else "")):
        check(json.loads(s["configText"])["system"] == {
            "action": "boot", "boot-loader": "grub",
            "grub-reboot-command": ["/nix/store/00000000000000000000000000000000-grub-2.12/bin/grub-reboot"]},
            f"eval: GRUB: the loader and grub-reboot are written ({s['configText']})")

    s, err = ev.summary("extlinux")
    if check(s is not None, "eval: extlinux evaluates" + (f"\n{err}" if s is None else "")):
        check(any("no one-shot entry" in w for w in s["warnings"]), f"eval: extlinux with boot: a warning ({s['warnings']})")

    s, err = ev.summary("bundle-only")
    if check(s is not None, "eval: a bundle-only machine evaluates" + (f"\n{err}" if s is None else "")):
        check("atticd-agent-pull" not in s["services"] and "atticd-agent-pull" not in s["timers"],
              "eval: bundle-only: no pull service or timer")
        check("atticd-agent-confirm" in s["services"] and "atticd-agent-recheck" in s["services"],
              "eval: bundle-only: confirm and recheck")
        check("repository" not in json.loads(s["configText"]), "eval: bundle-only: no repository section")

    check_eval_keyless(ev)

    s, err = ev.summary("vm-client")
    if check(s is not None, "eval: the VM test's agent configuration evaluates" + (f"\n{err}" if s is None else "")):
        check(all(t["wantedBy"] == [] for t in s["timers"].values()), "eval: vm-client: the timers are not started")
        check(json.loads(s["configText"])["repository"] == {"url": "git://127.0.0.1/client.git"},
              "eval: vm-client: pulls from the VM's git daemon")

    s, err = ev.summary("disabled")
    if check(s is not None, "eval: a disabled module evaluates" + (f"\n{err}" if s is None else "")):
        check(s["services"] == {} and s["timers"] == {} and s["etc"] == {},
              "eval: enable = false: no units, no file")

    # Wrong types fail evaluation, naming the option and the type.
    for case, option, text in (
            ("wrong-type", "services.atticd-agent.settings.health.timeout", "is not of type `null or (unsigned integer"),
            ("wrong-enum", "services.atticd-agent.settings.system.action", 'is not of type `one of "switch", "boot"'),
            ("http-check-without-url", "http.url", "has no value defined"),
            ("secret-path-literal", "services.atticd-agent.settings.images.registry-auth-file",
             "never copied into the nix store"),
            ("keyless-without-identities", "services.atticd-agent.settings.images.keyless.identities",
             "is not of type `non-empty (list of"),
            ("keyless-without-trusted-root", "services.atticd-agent.settings.images.keyless.trusted-root",
             "has no value defined")):
        s, err = ev.summary(case)
        check(s is None and option in err and text in err,
              f"eval: {case}: evaluation fails naming {option}" + (f"\n{err.strip()}" if s is not None or text not in err else ""))

    for case, texts in (
            ("secrets-in-store", ["settings.images.registry-auth-file is '/nix/store/", "settings.repository.ssh-key is '/nix/store/"]),
            ("no-host", ["settings.host is empty"]),
            ("pull-without-url", ["pull.enable needs services.atticd-agent.settings.repository.url"]),
            ("nix-access-tokens", ["extraNixConfig sets access-tokens"]),
            ("extlinux-trial", ["trial-boot is true, but the boot loader (extlinux) has no one-shot entry"]),
            ("counting-without-systemd-boot", ["bootCounting.enable needs systemd-boot"]),
            ("keyless-subject-twice", ["settings.images.keyless.identities[1] (identity 2 of 2) sets both subject and subject-regexp: give exactly one"]),
            ("keyless-no-subject", ["settings.images.keyless.identities[0] (identity 1 of 1) sets neither subject nor subject-regexp: give exactly one"]),
            ("keyless-issuer-twice-and-none", [
                "settings.images.keyless.identities[0] (identity 1 of 2) sets both issuer and issuer-regexp: give exactly one",
                "settings.images.keyless.identities[1] (identity 2 of 2) sets neither issuer nor issuer-regexp: give exactly one"])):
        s, err = ev.summary(case)
        got = s["failedAssertions"] if s else []
        check(s is not None and all(any(t in a for a in got) for t in texts) and len(got) == len(texts),
              f"eval: {case}: assertions fail ({got or err.strip()})")


def check_flake(ev):
    """flake.nix, evaluated with the stand-in nixpkgs of stubs/nixpkgs and the real library."""
    env = dict(ev.env, ATTICD_TEST_NIXPKGS_LIB=str(ev.lib))
    r = run(["nix-instantiate", "--eval", "--strict", "--json", "--read-write-mode", str(HERE / "flake.nix"),
             "-A", "summary"], env)
    if not check(r.returncode == 0, "flake: the outputs of flake.nix evaluate" +
                 ("" if r.returncode == 0 else f"\n{r.stderr.strip()}")):
        return
    f = json.loads(r.stdout)
    check(f["inputs"] == ["nixpkgs"], f"flake: one input, nixpkgs ({f['inputs']})")
    check(f["outputs"] == ["checks", "devShells", "formatter", "nixosModules", "overlays", "packages"],
          f"flake: outputs ({f['outputs']})")
    for system in ("x86_64-linux", "aarch64-linux"):
        check(f["packages"][system] == ["atticd-agent", "default"], f"flake: packages.{system}.{{default,atticd-agent}}")
        check(f["checks"][system] == ["package", "vm"], f"flake: checks.{system}.{{package,vm}}")
        check(f["devShells"][system] == ["default"], f"flake: devShells.{system}.default")
        check(f["formatter"][system] == "nixfmt-rfc-style", f"flake: formatter.{system}")
    check(f["overlay"], "flake: overlays.default adds atticd-agent")
    m = f["nixosModule"]
    check(not m["isPath"] and m["imports"] == [str(ROOT / "module.nix")],
          f"flake: nixosModules.default is a module that imports module.nix, not the path itself ({m})")
    check({"atticd-agent-pull", "atticd-agent-confirm", "atticd-agent-recheck"} <= set(m["services"]),
          f"flake: nixosModules.default, imported into a configuration, makes the units ({m['services']})")

    p = f["package"]
    check(p["pname"] == "atticd-agent" and p["doCheck"] is True, "package: atticd-agent, doCheck")
    check(p["mesonFlags"] == ["-Dintegration-tests=false", f"-Dlibcurl={p['curl']}/lib/libcurl.so.4",
                              f"-Dlibarchive={p['libarchive']}/lib/libarchive.so.13"],
          f"package: integration tests off in the sandbox, libcurl and libarchive dlopened by their store paths "
          f"({p['mesonFlags']})")
    check("meson test --suite unit" in p["checkPhase"] and "grep -vx cosign" in p["checkPhase"],
          "package: the check phase runs the unit tests (but cosign, whose vectors are outside the tree)")
    check(all(x in p["nativeBuildInputs"] for x in ("meson", "ninja", "pkg-config", "scdoc", "python3")),
          f"package: nativeBuildInputs ({p['nativeBuildInputs']})")
    # Every dependency that meson.build asks for, by its nixpkgs name.
    deps = {"libgit2": "libgit2", "libcurl": "curl", "libsystemd": "systemd", "yaml-0.1": "libyaml",
            "openssl": "openssl", "jansson": "jansson", "libarchive": "libarchive", "libssh2": "libssh2",
            "cmocka": "cmocka"}
    asked = re.findall(r"dependency\('([^']+)'", (ROOT / "meson.build").read_text() + (ROOT / "tests" / "meson.build").read_text())
    missing = [d for d in asked if d != "threads" and deps.get(d) not in p["buildInputs"]]
    check(not missing, f"package: buildInputs cover every dependency() of meson.build ({missing or p['buildInputs']})")
    check(p["src"] == ["agent", "catalog", "docs", "meson.build", "meson_options.txt", "tests"]
          and p["srcDocs"] == ["atticd-agent.8.scd"] and "meson.build" in p["srcTests"] and "data" in p["srcTests"]
          and "integration" not in p["srcTests"]
          and set(p["srcTests"]) - {"data", "meson.build"} <= {x.name for x in (ROOT / "agent").iterdir() if x.is_dir()}
          and all(n.startswith("data/") or n.endswith((".c", ".h")) for n in p["srcTestFiles"]),
          f"package: the source is what meson reads, no build directories ({p['src']}, tests: {p['srcTests']})")
    c_tests = sorted(str(x.relative_to(ROOT / "tests")) for x in (ROOT / "tests").glob("*/test-*.c"))
    check(c_tests and all(t in p["srcTestFiles"] for t in c_tests),
          f"package: the source has every unit test ({len(c_tests)}: tests/<folder>/test-*.c)")

    vm = f["vm"]
    check(vm["name"] == "vm-test-run-atticd-agent" and vm["nodes"] == ["machine"], "vm test: one node, machine")
    for step in ("systemctl start atticd-agent-pull.service", "nix flake lock", '"rolled-back"', '"known-bad"',
                 "failed-revision", "atticd-agent-recheck.service"):
        check(step in vm["testScript"], f"vm test: the script has {step}")


def check_flake_check(ev, tmp):
    """`nix flake check --no-build` on the source tree, with nixpkgs overridden by the stand-in.

    What it covers: the outputs as this nix checks them. nixosModules.default must be a module
    this nix accepts (nix before 2.13 refuses a path there, NixOS/nix#6866), overlays.default
    must take `final` and `prev`, and every package, check, shell and formatter of both systems
    must evaluate to a derivation and be instantiated (its .drv written): the package with its
    real source, flags and check phase; the VM test's derivation with its script and the client
    flake it writes. What it does not: the real nixpkgs (its stdenv, meson, runNixOSTest, which
    would evaluate the VM's NixOS configuration), building anything, and module.nix itself
    (nix only looks at the shape of a module: the eval part above evaluates it)."""
    stand_in = Path(tmp, "nixpkgs")
    shutil.copytree(HERE / "stubs" / "nixpkgs", stand_in)
    shutil.copytree(ev.lib, stand_in / "lib")
    # A store of its own: with --no-build, nix evaluates in read-only mode and writes nothing
    # (NixOS/nix#7464), so a path that the evaluations above put in the shared store would
    # hide an evaluation that needs it there.
    env = nix_environment(str(Path(tmp, "flake-check")))
    os.makedirs(env["HOME"])
    r = run(["nix", "flake", "check", "--no-build", "--no-write-lock-file",
             "--override-input", "nixpkgs", f"path:{stand_in}", str(ROOT)], env)
    # Past the note that the lock file (the repository has none) is not written.
    err = r.stderr[r.stderr.find("error:"):] if "error:" in r.stderr else r.stderr
    check(r.returncode == 0, f"flake: nix flake check --no-build (nix {nix_version(ev.env)}, nixpkgs: the stand-in)" +
          ("" if r.returncode == 0 else f"\n{err.strip()}"))


def nix_version(env):
    r = run(["nix", "--version"], env)
    return r.stdout.split()[-1] if r.returncode == 0 and r.stdout.strip() else "?"


def check_build(ev):
    code, out, err = ev.build("full")
    if check(code == 0, "build: the full configuration passes `atticd-agent config check`" +
             ("" if code == 0 else f"\n{err.strip()}")):
        check(json.loads(Path(out).read_text())["host"] == "web1", "build: the checked file is the configuration")
    code, out, err = ev.build("vm-client")
    check(code == 0, "build: the VM test's configuration passes `atticd-agent config check`" +
          ("" if code == 0 else f"\n{err.strip()}"))
    for case in ("keyless", "keyless-store-root"):
        code, out, err = ev.build(case)
        check(code == 0, f"build: {case}: images.keyless passes `atticd-agent config check`" +
              ("" if code == 0 else f"\n{err.strip()}"))
    for case, text in (("unknown-key", "repository.urll: unknown key"),
                       ("check-without-kind", "health.checks[0]: one of http, tcp, systemd-units, command is required")):
        code, out, err = ev.build(case)
        check(code != 0 and text in err, f"build: {case}: the build fails with the agent's message '{text}'" +
              ("" if code != 0 and text in err else f"\n{err.strip()}"))


def main():
    tmp = tempfile.mkdtemp(prefix="atticd-nix-")
    try:
        env = nix_environment(tmp)
        os.makedirs(env["HOME"])
        if not shutil.which("nix-instantiate"):
            print("SKIP nix-instantiate not found (Debian: apt-get install nix-bin)")
            check_docs(tmp)
            return 1 if failures else SKIP

        check_parse(env)
        check_docs(tmp)

        lib = find_nixpkgs_lib(env)
        skipped = None
        if lib is None:
            skipped = ("the nixpkgs library was not found (set NIXPKGS_LIB to a checkout of "
                       "nix-community/nixpkgs.lib or nixpkgs): module.nix was not evaluated")
        else:
            print(f"note eval: nixpkgs library {lib}")
            agent_bin = os.environ.get("ATTICD_AGENT_BIN", "")
            ev = Eval(lib, env, agent_bin if agent_bin and os.access(agent_bin, os.X_OK) else "")
            check_eval_full(ev)
            check_eval_cases(ev)
            check_flake(ev)
            check_flake_check(ev, tmp)
            if ev.agent_bin:
                check_build(ev)
            else:
                print("note build: ATTICD_AGENT_BIN not set: the build-time config check was not run")

        if failures:
            print(f"\n{len(failures)} check(s) failed.")
            return 1
        if skipped:
            print(f"SKIP {skipped}")
            return SKIP
        return 0
    finally:
        # The private store is read-only, as nix leaves it.
        subprocess.run(["chmod", "-R", "u+w", tmp], stderr=subprocess.DEVNULL)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
