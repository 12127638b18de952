#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""`atticd-agent pull`, end to end: the real binary, a real git remote, real nix with a
private store and real profile generations, the nixos-rebuild stand-in and a real service on
loopback (tests/world)."""

import json
import os
import signal
import subprocess
import sys
import time
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from world import World  # noqa: E402
from held import BUILD, HeldNix, pid_gone  # noqa: E402


def module_minimal_config():
    """The configuration file module.nix writes with only `enable` and a repository url (the
    `minimal` case of tests/nix/cases.nix), evaluated with the real module system; None when nix
    or the nixpkgs library (../shared/nixpkgs-lib) is not there."""
    import json as _json
    import subprocess as _sp
    import tempfile as _tf
    repo = Path(__file__).resolve().parents[2]
    lib = Path(os.environ.get("NIXPKGS_LIB", repo.parent / "shared" / "nixpkgs-lib"))
    lib = lib / "lib" if (lib / "lib" / "modules.nix").is_file() else lib
    if not (lib / "modules.nix").is_file():
        return None
    with _tf.TemporaryDirectory(prefix="atticd-module-") as d:
        env = dict(os.environ, HOME=d, NIX_STATE_DIR=f"{d}/state", NIX_STORE_DIR=f"{d}/store",
                   NIX_LOG_DIR=f"{d}/log", NIX_CONFIG="sandbox = false\nbuild-users-group =")
        env.pop("NIX_REMOTE", None)
        try:
            r = _sp.run(["nix-instantiate", "--eval", "--strict", "--json", str(repo / "tests" / "nix" / "eval.nix"),
                         "-A", "summary.configText", "--arg", "nixpkgsLib", str(lib), "--argstr", "case", "minimal"],
                        capture_output=True, text=True, env=env, timeout=120)
        except OSError:
            return None
        finally:
            _sp.run(["chmod", "-R", "u+w", d], stderr=_sp.DEVNULL)
    if r.returncode != 0:
        raise AssertionError(f"module.nix did not evaluate: {r.stderr[-2000:]}")
    return _json.loads(_json.loads(r.stdout))


class PullTest(unittest.TestCase):
    def setUp(self):
        self.w = World.for_test(self)
        self.w.make_repo()

    def status(self):
        r = self.w.agent("status", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    def state_bytes(self):
        p = self.w.state_dir / "state.json"
        return p.read_bytes() if p.exists() else None

    def pull(self, expect, **kw):
        r = self.w.agent("pull", **kw)
        self.assertEqual(r.returncode, expect, f"stdout:\n{r.stdout}\nstderr:\n{r.stderr}")
        return r

    def assert_deployed(self, rev, generation_number):
        w = self.w
        s = self.status()
        self.assertEqual(s["revision"], rev)
        self.assertEqual(s["generation"], w.profile_target())
        self.assertEqual(s["generation"], w.current_system())
        self.assertEqual(s["deployed"], {"revision": rev, "generation": s["generation"]})
        self.assertEqual(s["known-good"], {"revision": rev, "generation": s["generation"]})
        self.assertEqual(w.profile_generation(), generation_number)
        self.assertEqual(w.health(), 200)
        self.assertEqual(s["phase"], "idle")
        self.assertIsNone(s["pending"])
        return s

    def test_every_command_with_the_required_keys_only(self):
        """Every command, with the configuration module.nix writes for `enable` and a url (host,
        repository.url, state-dir and system.action: switch; evaluated with the nixpkgs library
        of ../shared, else only the required keys), with this world's values and the paths that
        stand in for NixOS's, plus bundle.keys for bundles: the documented defaults apply (reboot-command [systemctl,
        reboot], found on PATH), each command ends with the exit code the man page gives, and no
        output says "(null)"."""
        w = self.w
        bin_dir = w.tmp / "fake-systemctl"
        bin_dir.mkdir()
        calls = w.tmp / "systemctl-calls"
        (bin_dir / "systemctl").write_text(f"#!/bin/sh\necho \"$@\" >> {calls}\n")
        (bin_dir / "systemctl").chmod(0o755)
        env = {"PATH": f"{bin_dir}:{os.environ['PATH']}"}
        key = w.tmp / "bundle.key"
        pub = w.tmp / "bundle.pub"
        subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", str(key)], check=True)
        subprocess.run(["openssl", "pkey", "-in", str(key), "-pubout", "-out", str(pub)], check=True)

        cfg = w.config_dict(bundle={"keys": [str(pub)]})
        cfg["system"] = {k: v for k, v in cfg["system"].items() if k != "action"}
        cfg["repository"] = {"url": cfg["repository"]["url"]}  # ref: its default, main
        # What the NixOS module writes for `enable` and a url, with this world's host, state
        # directory, remote and stand-ins (NixOS's paths) in place of the machine's.
        module = module_minimal_config()
        if module is not None:
            self.assertEqual(set(module), {"host", "repository", "state-dir", "system"}, module)
            module["system"].update(cfg["system"])
            module.update({k: cfg[k] for k in ("host", "state-dir", "repository", "bundle")})
            cfg = module
        from world import to_yaml
        w.config_path = w.tmp / "minimal.yaml"
        w.config_path.write_text(to_yaml(cfg))

        outputs = []

        def agent(*args, expect):
            r = w.agent(*args, env=env)
            outputs.append((args, r.stdout + r.stderr))
            self.assertEqual(r.returncode, expect, f"{args}:\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}")
            return r

        agent("config", "check", str(w.config_path), expect=0)
        agent("status", expect=0)
        agent("--json", "status", expect=0)
        agent("check", expect=0)              # nothing deployed, no checks: healthy
        agent("confirm", expect=0)            # nothing pending
        agent("rollback", expect=2)           # nothing to roll back to
        first = w.commit()
        agent("plan", expect=0)
        agent("pull", expect=0)
        self.assertEqual(self.status()["revision"], first)
        agent("check", expect=0)
        agent("verify-images", expect=0)      # no keys: a warning that nothing is verified
        agent("pull", expect=0)               # nothing new
        second = w.commit()
        bundle = w.tmp / "b.tar"
        agent("bundle", "create", "-o", str(bundle), "--rev", second, "--repo", str(w.repo.work), "--key",
              str(key), expect=0)
        agent("verify", str(bundle), expect=0)
        agent("apply", str(bundle), expect=0)
        self.assertEqual(self.status()["revision"], second)
        agent("rollback", expect=0)           # the known-good generation runs already
        self.assertEqual(self.status()["revision"], second)

        # action boot, and no reboot-command: the default, systemctl reboot, from PATH.
        cfg["system"]["action"] = "boot"
        w.config_path.write_text(to_yaml(cfg))
        third = w.commit()
        agent("pull", expect=0)
        self.assertEqual(calls.read_text().split("\n")[-2], "reboot")
        self.assertEqual(self.status()["phase"], "pending-reboot")
        w.reboot()
        agent("confirm", expect=0)
        self.assertEqual(self.status()["revision"], third)
        agent("status", expect=0)
        for args, out in outputs:
            self.assertNotIn("(null)", out, f"{args} said (null):\n{out}")

    def test_host_missing_from_the_flake_says_why(self):
        """A host the flake does not have: the recorded error is nix's reason, not only "nix eval
        exited with status 1"."""
        w = self.w
        w.write_config(host="nosuchhost")
        w.commit()
        self.pull(1)
        err = self.status()["history"][-1]["error"]
        self.assertIn("does not provide attribute", err)
        self.assertIn("nosuchhost", err)

    def test_keep_generations(self):
        """system.keep-generations: after each successful deployment only the newest N profile
        generations stay (the current one among them), never the known-good one; a revision
        rolled back deletes nothing."""
        w = self.w
        w.write_config(system={"keep-generations": 2},
                       health={"settle": 0, "timeout": 3,
                               "checks": [{"name": "web", "http": {"url": f"http://127.0.0.1:{w.port}/health"}}]})

        def generations():
            return sorted(int(p.name.split("-")[-2]) for p in w.profile.parent.glob(f"{w.profile.name}-*-link"))

        for i in range(4):
            rev = w.commit()
            self.pull(0)
        s = self.assert_deployed(rev, 4)
        self.assertEqual(generations(), [3, 4])
        # The boot loader still boots what the profile holds.
        self.assertEqual(w.profile_target(), s["generation"])
        # An unhealthy revision is rolled back: nothing more is deleted.
        w.commit(health_status=500)
        self.pull(1)
        self.assertEqual(self.status()["revision"], rev)
        self.assertIn(4, generations())
        self.assertEqual(w.profile_target(), s["generation"])
        # The next healthy one: the newest two, the current one among them.
        rev = w.commit()
        self.pull(0)
        gens = generations()
        self.assertEqual(len(gens), 2, gens)
        self.assertEqual(w.profile_generation(), gens[-1])

    def test_two_revisions_in_order(self):
        w = self.w
        r1 = w.commit()
        self.pull(0)
        s = self.assert_deployed(r1, 1)
        self.assertEqual(w.service_marker(), w.marker_of(s["generation"]))
        self.assertEqual(s["last-run"]["result"], "success")
        self.assertEqual(s["last-run"]["revision"], r1)
        gen1 = s["generation"]

        r2 = w.commit()
        self.pull(0)
        s = self.assert_deployed(r2, 2)
        self.assertNotEqual(s["generation"], gen1)
        self.assertEqual(w.service_marker(), w.marker_of(s["generation"]))
        self.assertEqual([(h["id"], h["revision"], h["result"], h["source"]) for h in s["history"]],
                         [(1, r1, "success", "pull"), (2, r2, "success", "pull")])
        self.assertEqual(s["history"][0]["generation"], gen1)
        for h in s["history"]:
            self.assertEqual(h["ref"], "main")
            self.assertEqual(h["action"], "switch")
            self.assertLessEqual(h["started"], h["finished"])
        # One evaluation per revision, at the exact commit; then the build of what it gave and
        # the activation of what was built: no nixos-rebuild (which would evaluate again).
        evals = w.evaluation_calls()
        self.assertEqual(len(evals), 2, evals)
        for call, rev in zip(evals, [r1, r2]):
            self.assertTrue(call.startswith("nix eval --json git+file://"), call)
            self.assertIn(f"&rev={rev}#nixosConfigurations", call)
        self.assertEqual(w.rebuild_calls(), [])
        # switch-to-configuration test, the health checks, then boot: the boot default moves
        # only once the generation is healthy.
        self.assertEqual(w.activations(), [f"test {gen1} 0", f"boot {gen1} 0",
                                           f"test {s['generation']} 0", f"boot {s['generation']} 0"])

        table = w.agent("status")
        self.assertEqual(table.returncode, 0)
        self.assertIn(r2, table.stdout)
        self.assertIn(s["generation"], table.stdout)

    def test_state_dir_with_url_characters(self):
        """A state-dir with a space, '#', '%' and '?' (issue 17, item 10): the flake reference
        of the mirror is percent-encoded, so nix reads the same path; two revisions deploy."""
        w = self.w
        odd = w.tmp / "state dir #1 %41?x"
        odd.mkdir(mode=0o700)
        w.write_config(state_dir=str(odd))
        rev = w.commit()
        self.pull(0)
        self.assertEqual(self.status()["revision"], rev)
        rev2 = w.commit()
        self.pull(0)
        s = self.status()
        self.assertEqual((s["revision"], s["generation"]), (rev2, w.current_system()))
        self.assertTrue((odd / "state.json").exists())

    def test_no_change_invokes_nothing(self):
        w = self.w
        rev = w.commit()
        self.pull(0)
        before = self.state_bytes()
        w.reset_call_logs()
        r = self.pull(0)
        self.assertEqual(w.rebuild_calls(), [])
        self.assertEqual(w.nix_calls(), [])
        self.assertEqual(self.state_bytes(), before)
        self.assertIn("nothing to do", r.stderr)
        s = self.status()
        self.assertEqual(s["last-run"]["result"], "no-change")
        self.assertEqual(s["revision"], rev)
        self.assertEqual(len(s["history"]), 1)

    def test_failed_build_switches_nothing(self):
        w = self.w
        good = w.commit()
        self.pull(0)
        gen = w.profile_target()
        bad = w.commit(build_fail=True)
        w.reset_call_logs()
        r = self.pull(1)
        self.assertIn("build", r.stderr)
        self.assertEqual(w.profile_generation(), 1)
        self.assertEqual(w.profile_target(), gen)
        self.assertEqual(w.current_system(), gen)
        self.assertEqual(w.activations(), [])
        self.assertEqual(w.evaluations(), 1)
        self.assertEqual(w.health(), 200)
        s = self.status()
        self.assertEqual(s["revision"], good)
        self.assertEqual(s["last-run"]["result"], "build-failed")
        self.assertEqual(s["history"][-1]["revision"], bad)
        self.assertEqual(s["history"][-1]["result"], "build-failed")
        self.assertIsNone(s["history"][-1]["generation"])
        self.assertIn("nix build", s["history"][-1]["error"])

        # remembered: the next tick neither evaluates nor builds it again
        w.reset_call_logs()
        r = self.pull(0)
        self.assertIn("failed before", r.stderr)
        self.assertEqual(w.nix_calls(), [])

    def test_evaluation_failure_is_recorded_and_not_paid_again(self):
        w = self.w
        w.commit()
        self.pull(0)
        gen = w.profile_target()
        bad = w.commit(files={"flake.nix": "{ outputs = { self }: { nixosConfigurations = throw \"broken\"; }; }\n"})
        w.reset_call_logs()
        r = self.pull(1)
        self.assertIn("broken", r.stderr)
        self.assertEqual(w.evaluations(), 1)
        self.assertEqual(w.activations(), [])
        self.assertEqual(w.current_system(), gen)
        s = self.status()
        self.assertEqual((s["history"][-1]["revision"], s["history"][-1]["result"]), (bad, "build-failed"))
        self.assertEqual(s["failed-revision"], bad)
        w.reset_call_logs()
        self.pull(0)
        self.assertEqual(w.evaluations(), 0)

    def test_first_build_fails(self):
        w = self.w
        w.commit(build_fail=True)
        self.pull(1)
        self.assertIsNone(w.profile_target())
        self.assertIsNone(w.current_system())
        s = self.status()
        self.assertIsNone(s["revision"])
        self.assertEqual(s["history"][0]["result"], "build-failed")

    def test_failed_activation_is_rolled_back(self):
        w = self.w
        w.commit()
        self.pull(0)
        good = w.profile_target()
        bad = w.commit(activation_exit=3)
        self.pull(1)
        s = self.status()
        self.assertEqual(s["history"][-1]["revision"], bad)
        self.assertEqual(s["history"][-1]["result"], "rolled-back")
        self.assertNotEqual(s["history"][-1]["generation"], good)
        self.assertEqual(s["history"][-1]["previous-generation"], good)
        self.assertEqual(w.profile_target(), good)
        self.assertEqual(w.current_system(), good)
        self.assertNotEqual(s["revision"], bad)

    def test_file_url_tag_and_commit_pin(self):
        w = self.w
        r1 = w.commit()
        w.repo.tag("v1")
        r2 = w.commit()
        w.write_config(repository={"url": w.file_url, "ref": "v1"})
        self.pull(0)
        self.assert_deployed(r1, 1)
        # a locked version: a full commit id
        w.write_config(repository={"url": w.file_url, "ref": r2})
        self.pull(0)
        self.assert_deployed(r2, 2)
        # the branch name, fully spelled
        r3 = w.commit()
        w.write_config(repository={"url": w.file_url, "ref": "refs/heads/main"})
        self.pull(0)
        self.assert_deployed(r3, 3)

    def test_boot_action(self):
        w = self.w
        rev = w.commit()
        reboots = w.tmp / "reboots"
        w.write_config(system={"action": "boot", "reboot-command": ["sh", "-c", f"echo reboot >> {reboots}"]})
        self.pull(0)
        s = self.status()
        # installed for the next boot, not deployed until `confirm` after that boot
        self.assertIsNone(s["revision"])
        self.assertEqual(s["phase"], "pending-reboot")
        self.assertEqual(s["pending"]["revision"], rev)
        self.assertEqual(s["pending"]["action"], "boot")
        self.assertEqual(w.boot_next(), w.profile_target())
        self.assertEqual(s["pending"]["generation"], w.profile_target())
        self.assertIsNone(w.current_system(), "boot must not activate now")
        self.assertEqual(s["last-run"]["result"], "pending-reboot")
        self.assertEqual(reboots.read_text(), "reboot\n")
        self.assertEqual(w.evaluations(), 1)
        self.assertEqual(w.activations(), [f"boot {w.profile_target()} 0"])

    def test_unreachable_remote_changes_nothing(self):
        w = self.w
        w.commit()
        self.pull(0)
        before = self.state_bytes()
        # Nothing listens there: unreachable, try again later (exit 6).
        w.write_config(repository={"url": "http://127.0.0.1:9/client.git"})
        w.reset_call_logs()
        r = self.pull(6)
        self.assertIn("unreachable", r.stderr)
        self.assertEqual(self.state_bytes(), before)
        self.assertEqual(w.nix_calls(), [])
        self.assertEqual(self.status()["last-run"]["result"], "transient")
        # A local path that is not there is the configuration's mistake: exit 2, nothing changed.
        w.write_config(repository={"url": str(w.tmp / "gone.git")})
        r = self.pull(2)
        self.assertIn("does not exist on this machine", r.stderr)
        self.assertEqual(self.state_bytes(), before)

    def test_unknown_ref_is_refused(self):
        w = self.w
        w.commit()
        w.write_config(repository={"ref": "no-such-branch"})
        r = self.pull(3)
        self.assertIn("no-such-branch", r.stderr)
        self.assertIsNone(self.state_bytes())
        self.assertEqual(w.nix_calls(), [])

    def test_damaged_mirror_is_cloned_again(self):
        w = self.w
        r1 = w.commit()
        self.pull(0)
        mirror = w.state_dir / "repo.git"
        (mirror / "HEAD").write_text("garbage\n")
        (mirror / "config").write_text("[[[ not a config\n")
        r2 = w.commit()
        self.pull(0)
        self.assert_deployed(r2, 2)
        self.assertNotEqual(r1, r2)

    def test_killed_during_build_then_finished_by_next_run(self):
        """SIGKILL while nix builds: the build must die with the agent (no orphan goes on
        behind the next run's back), the state file must say where it stopped, and the next
        run records it as interrupted and deploys."""
        w = self.w
        held = HeldNix(w, BUILD)
        rev = w.commit()
        w.write_config(system={"nix-command": str(held.path)})

        import subprocess
        p = subprocess.Popen([str(w.agent_bin()), "-c", str(w.config_path), "pull"], env=w.env,
                             cwd=w.cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.assertTrue(w.wait_for(held.held, timeout=30), "the build never started")
        state = json.loads((w.state_dir / "state.json").read_text())
        self.assertEqual(state["phase"], "building")
        self.assertEqual(state["pending"]["revision"], rev)
        p.send_signal(signal.SIGKILL)
        p.wait()
        self.assertTrue(w.wait_for(lambda: pid_gone(held.pid()), timeout=10), "the build outlived the agent")

        r = self.pull(0)
        self.assertIn("stopped while building", r.stderr)
        s = self.assert_deployed(rev, 1)
        self.assertEqual([h["result"] for h in s["history"]], ["interrupted", "success"])


if __name__ == "__main__":
    unittest.main()
