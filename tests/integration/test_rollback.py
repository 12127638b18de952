#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Health checks and rollback to the last known-good generation, with a real service on
loopback, real nix generations and the nixos-rebuild stand-in; and crash safety: the agent
killed with SIGKILL at each phase of a deployment, then run again."""

import json
import os
import signal
import subprocess
import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from world import World  # noqa: E402
from held import BUILD, PROFILE_BACK, HeldNix, pid_gone  # noqa: E402


class RollbackTest(unittest.TestCase):
    def setUp(self):
        self.w = World.for_test(self)
        self.w.make_repo()

    def configure(self, **health):
        h = {"settle": 0, "timeout": 3,
             "checks": [{"name": "web", "http": {"url": f"http://127.0.0.1:{self.w.port}/health", "status": 200}}]}
        h.update(health)
        return self.w.write_config(health=h)

    def pull(self, expect, *args):
        r = self.w.agent("pull", *args)
        self.assertEqual(r.returncode, expect, r.stderr[-3000:])
        return r

    def status(self):
        return json.loads(self.w.agent("status", "--json").stdout)

    def deploy_good(self):
        w = self.w
        rev = w.commit()
        self.configure()
        self.pull(0)
        s = self.status()
        self.assertEqual(s["revision"], rev)
        return rev, s["generation"]

    def assert_back_on(self, rev, gen):
        w = self.w
        s = self.status()
        self.assertEqual(s["revision"], rev)
        self.assertEqual(s["generation"], gen)
        self.assertEqual(w.profile_target(), gen)
        self.assertEqual(w.current_system(), gen)
        self.assertEqual(w.health(), 200)
        self.assertEqual(w.service_marker(), w.marker_of(gen))
        self.assertEqual(s["phase"], "idle")
        return s

    def test_healthy_revision(self):
        rev, gen = self.deploy_good()
        s = self.status()
        h = s["history"][-1]
        self.assertEqual(h["result"], "success")
        self.assertEqual([(c["name"], c["ok"]) for c in h["health"]], [("web", True)])
        self.assertEqual(s["known-good"], {"revision": rev, "generation": gen})

    def test_unhealthy_rolled_back_then_not_retried_then_fixed(self):
        w = self.w
        good, gen = self.deploy_good()
        bad = w.commit(health_status=500)
        r = self.pull(1)
        self.assertIn("health checks did not pass", r.stderr)
        s = self.assert_back_on(good, gen)
        h = s["history"][-1]
        self.assertEqual((h["revision"], h["result"]), (bad, "rolled-back"))
        self.assertEqual(h["health"][0]["ok"], False)
        self.assertIn("500", h["health"][0]["detail"])
        self.assertEqual(s["failed-revision"], bad)

        # the same revision again: nothing is done
        w.reset_call_logs()
        r = self.pull(0)
        self.assertIn("failed before", r.stderr)
        self.assertEqual(w.system_builds(), [])
        self.assertEqual(self.status()["last-run"]["result"], "known-bad")

        # --retry tries it anyway (and rolls back again)
        self.pull(1, "--retry")
        self.assert_back_on(good, gen)

        # a fixed revision is deployed
        fixed = w.commit()
        self.pull(0)
        s = self.status()
        self.assertEqual(s["revision"], fixed)
        self.assertIsNone(s["failed-revision"])
        self.assertEqual(w.health(), 200)

    def test_hooks(self):
        w = self.w
        out = w.tmp / "hooks.log"
        hook = ["sh", "-c", f'echo "$0 $ATTICD_RESULT $ATTICD_REVISION $ATTICD_GENERATION [$ATTICD_ERROR]" >> {out}']
        good = w.commit()
        self.configure()
        w.write_config(hooks={"on-success": hook[:2] + [hook[2], "success-hook"],
                              "on-failure": hook[:2] + [hook[2], "failure-hook"]},
                       health={"settle": 0, "timeout": 3, "checks": [
                           {"name": "web", "http": {"url": f"http://127.0.0.1:{w.port}/health", "status": 200,
                                                    "body": "status 200"}}]})
        self.pull(0)
        gen = self.status()["generation"]
        bad = w.commit(health_status=500)
        self.pull(1)
        lines = out.read_text().splitlines()
        self.assertEqual(lines[0], f"success-hook success {good} {gen} []")
        self.assertTrue(lines[1].startswith(f"failure-hook rolled-back {bad} /"), lines[1])
        self.assertIn("health checks did not pass", lines[1])

    def test_http_body_check(self):
        w = self.w
        w.commit()
        w.write_config(health={"settle": 0, "timeout": 2, "checks": [
            {"name": "web", "http": {"url": f"http://127.0.0.1:{w.port}/health", "status": 200,
                                     "body": "this text is not in the answer"}}]})
        r = self.pull(5)
        self.assertIn("does not contain", r.stderr)

    def test_failed_activation_rolled_back(self):
        w = self.w
        good, gen = self.deploy_good()
        w.commit(activation_exit=3)
        r = self.pull(1)
        self.assertIn("activation failed", r.stderr)
        self.assert_back_on(good, gen)
        self.assertEqual(self.status()["history"][-1]["result"], "rolled-back")

    def test_rollback_lands_on_known_good_not_previous_number(self):
        """With boot-default at-activation (nixos-rebuild switch's way) every activation makes a
        profile generation; a rollback goes back to the known-good one by its number, not to the
        previous number."""
        w = self.w
        good, gen = self.deploy_good()                 # generation 1: good
        w.write_config(system={"boot-default": "at-activation"}, health={"settle": 0, "timeout": 3, "checks": [
            {"name": "web", "http": {"url": f"http://127.0.0.1:{w.port}/health", "status": 200}}]})
        w.commit(activation_exit=3)
        self.pull(1)                                   # generation 2: activation failed
        self.assertEqual(w.profile_generation(), 1)
        self.assertIn(2, w.profile_generations())
        w.commit(health_status=500)
        self.pull(1)                                   # generation 3: unhealthy
        self.assertEqual(sorted(w.profile_generations()), [1, 2, 3])
        self.assertEqual(w.profile_generation(), 1, "back on generation 1, not 2 (the previous number)")
        self.assert_back_on(good, gen)

    def test_health_first_never_moves_the_boot_default_of_a_failure(self):
        """The default (boot-default after-health): a generation whose activation or health
        failed never became a profile generation or the boot default."""
        w = self.w
        good, gen = self.deploy_good()
        self.assertEqual(w.boot_next(), gen)
        w.commit(activation_exit=3)
        self.pull(1)
        w.commit(health_status=500)
        self.pull(1)
        self.assertEqual(sorted(w.profile_generations()), [1], "a failed generation was made a profile generation")
        self.assertEqual(w.boot_next(), gen, "the boot default moved")
        self.assert_back_on(good, gen)

    def test_power_cut_during_the_health_checks_of_a_switch(self):
        """The power goes while a switched generation is being checked: the machine boots the
        known-good generation (the default never moved), and the next run activates the new
        one again and decides by its health: a healthy one becomes the default, an unhealthy
        one is rolled back."""
        w = self.w
        for healthy in (True, False):
            with self.subTest(healthy=healthy):
                good, gen = self.deploy_good()
                rev = w.commit(**({} if healthy else {"health_status": 500}))
                self.configure(settle=2, timeout=4)
                p = w.popen([w.agent_bin(), "-c", str(w.config_path), "pull"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                try:
                    self.assertTrue(w.wait_for(lambda: self.phase() == "checking", timeout=60),
                                    "the health checks never began")
                    new_gen = json.loads((w.state_dir / "state.json").read_text())["pending"]["generation"]
                    self.assertEqual(w.current_system(), new_gen)
                    b = w.power_cut()
                finally:
                    p.wait(timeout=30)
                self.assertEqual((b.toplevel, b.how, b.up), (gen, "default", True))
                self.assertEqual(w.current_system(), gen)
                self.assertEqual(w.boot_default(), gen)
                self.assertEqual(self.phase(), "checking")

                # The recovery decides; the pull itself then finds nothing new (0), or reports the
                # rolled-back revision (1).
                r = w.agent("pull")
                self.assertIn(r.returncode, (0,) if healthy else (0, 1), r.stderr[-3000:])
                s = self.assert_agree(rev, new_gen) if healthy else self.assert_agree(good, gen)
                self.assertEqual(s["history"][-1]["result"], "success" if healthy else "rolled-back")
                self.assertEqual(w.reboot().toplevel, new_gen if healthy else gen)
                self.configure()

    def test_first_deployment_unhealthy_has_nothing_to_roll_back_to(self):
        w = self.w
        w.commit(health_status=500)
        self.configure()
        r = self.pull(5)
        self.assertIn("needs a person", r.stderr)
        s = self.status()
        self.assertEqual(s["history"][-1]["result"], "rollback-failed")

    def test_check_and_manual_rollback(self):
        w = self.w
        good, gen = self.deploy_good()
        r = w.agent("check")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("web", r.stdout)
        r = w.agent("--json", "check")
        self.assertEqual(json.loads(r.stdout)["healthy"], True)
        w.stop_service()
        r = w.agent("check")
        self.assertEqual(r.returncode, 1)
        self.assertIn("FAIL", r.stdout)
        r = w.agent("rollback")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assert_back_on(good, gen)
        self.assertEqual(w.agent("check").returncode, 0)

    # -- boot activation ---------------------------------------------------------------------

    def configure_boot(self, window=None):
        w = self.w
        reboots = w.tmp / "reboots"
        system = {"action": "boot", "reboot-command": ["sh", "-c", f"echo reboot >> {reboots}"]}
        if window:
            system["reboot-window"] = window
        w.write_config(system=system, health={"settle": 0, "timeout": 3, "checks": [
            {"name": "web", "http": {"url": f"http://127.0.0.1:{w.port}/health", "status": 200}}]})
        return reboots

    def pull_for_next_boot(self, good, gen):
        """With action boot, a pull of the new commit: it waits for its reboot, the machine
        still runs good's generation gen, the new one boots once at the next boot (the one-shot
        entry) and the default entry stays gen. Returns the reboots log and the new generation."""
        w = self.w
        reboots = self.configure_boot()
        self.pull(0)
        s = self.status()
        self.assertEqual(s["phase"], "pending-reboot")
        self.assertEqual(s["revision"], good, "not deployed before the reboot")
        self.assertEqual(w.current_system(), gen)
        new_gen = s["pending"]["generation"]
        self.assertEqual(w.boot_next(), new_gen, "the next boot does not try the new generation")
        self.assertEqual(w.boot_default(), gen, "the untried generation became the boot default")
        self.assertEqual(s["pending"]["trial-entry"], w.boot_oneshot())
        self.assertIn(f"Trial boot:  {new_gen} boots once at the next boot (entry {w.boot_oneshot()})",
                      w.agent("status").stdout)
        return reboots, new_gen

    def assert_agree(self, rev, gen):
        """The running system, the boot default, the profile and status --json name the same."""
        w = self.w
        s = self.status()
        self.assertEqual((s["phase"], s["revision"], s["generation"]), ("idle", rev, gen))
        self.assertEqual(w.current_system(), gen)
        self.assertEqual(w.boot_default(), gen)
        self.assertEqual(w.boot_next(), gen)
        self.assertEqual(w.profile_target(), gen)
        return s

    def test_boot_confirm_healthy_and_unhealthy(self):
        w = self.w
        good, gen = self.deploy_good()

        # a healthy revision, tried once at the next boot
        rev = w.commit()
        reboots, new_gen = self.pull_for_next_boot(good, gen)
        self.assertEqual(reboots.read_text().count("reboot"), 1)
        entry = self.status()["pending"]["trial-entry"]
        self.assertEqual(w.bootloader_calls(), [f"bootctl set-oneshot {entry}"])

        # a pull before the reboot starts nothing on top of it
        w.commit()
        w.reset_call_logs()
        self.pull(0)
        self.assertEqual(w.system_builds(), [])
        w.repo.reset(rev)
        w.repo.push(rev, "main", force=True)

        b = w.reboot()
        self.assertEqual((b.toplevel, b.how), (new_gen, "oneshot"))
        self.assertEqual(w.boot_default(), gen, "the default moved before confirm")
        r = w.agent("confirm")
        self.assertEqual(r.returncode, 0, r.stderr)
        s = self.assert_agree(rev, new_gen)
        self.assertEqual(s["history"][-1]["result"], "success")
        self.assertEqual(w.health(), 200)

        # an unhealthy one: confirm rolls it back; the default never moved
        bad = w.commit(health_status=500)
        self.pull(0)
        self.assertEqual(self.status()["phase"], "pending-reboot")
        self.assertEqual(w.boot_default(), new_gen)
        w.reboot()
        self.assertEqual(w.health(), 500)
        r = w.agent("confirm")
        self.assertEqual(r.returncode, 1, r.stderr)
        s = self.status()
        self.assertEqual(s["phase"], "idle")
        self.assertEqual(s["history"][-1]["revision"], bad)
        self.assertEqual(s["history"][-1]["result"], "rolled-back")
        self.assertEqual(s["failed-revision"], bad)
        self.assertEqual(w.boot_default(), new_gen, "the known-good generation is the boot default")
        self.assertEqual(w.boot_next(), new_gen)
        self.assertEqual(w.profile_target(), new_gen)
        self.assertEqual(reboots.read_text().count("reboot"), 4)
        w.reboot()
        self.assertEqual(w.health(), 200)
        self.assertEqual(w.agent("confirm").returncode, 0)
        self.assert_agree(rev, new_gen)

    def test_boot_generation_that_never_reaches_confirm(self):
        """A boot deployment whose generation panics at boot: the one-shot entry was used up by
        that boot, so the next reset boots the known-good generation with no agent code
        running; `confirm` there finds another boot and not the new generation, and remembers
        the revision as failed, without another reboot."""
        w = self.w
        good, gen = self.deploy_good()
        bad = w.commit(boot_panic=True)
        reboots, new_gen = self.pull_for_next_boot(good, gen)

        # the same boot: still waiting (no rollback)
        r = w.agent("confirm")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("waits for a reboot", r.stderr)
        self.assertEqual(self.status()["phase"], "pending-reboot")

        b = w.reboot()
        self.assertEqual((b.toplevel, b.up, b.how), (new_gen, False, "oneshot"))
        b = w.power_cut()  # the watchdog, or a person
        self.assertEqual((b.toplevel, b.up, b.how), (gen, True, "default"))

        n = reboots.read_text().count("reboot")
        r = w.agent("confirm")
        self.assertEqual(r.returncode, 1, r.stderr[-3000:])
        self.assertIn("rebooted, but not into the new generation", r.stderr)
        s = self.assert_agree(good, gen)
        self.assertEqual((s["history"][-1]["revision"], s["history"][-1]["result"]), (bad, "rolled-back"))
        self.assertEqual(s["failed-revision"], bad)
        self.assertEqual(reboots.read_text().count("reboot"), n, "rebooted although the known-good generation runs")
        self.assertEqual(w.health(), 200)
        # it is not tried again
        self.pull(0)
        self.assertEqual(self.status()["phase"], "idle")
        self.assertIsNone(w.boot_oneshot())

    def test_boot_trial_with_grub(self):
        """GRUB: grub-reboot with the entry's path in grub.cfg's submenu; the default entry
        (NixOS) stays the known-good generation until confirm."""
        w = self.w
        w.boot_loader = "grub"
        good, gen = self.deploy_good()
        rev = w.commit()
        reboots, new_gen = self.pull_for_next_boot(good, gen)
        n = w.profile_generations()
        entry = self.status()["pending"]["trial-entry"]
        self.assertTrue(entry.startswith("NixOS - All configurations>NixOS - Configuration "), entry)
        self.assertEqual(w.bootloader_calls(), [f"grub-reboot --boot-directory={w.root / 'boot'} {entry}"])
        self.assertIn(entry, [w.boot_entry_id(g) for g in n])
        b = w.reboot()
        self.assertEqual((b.toplevel, b.how), (new_gen, "oneshot"))
        self.assertEqual(w.agent("confirm").returncode, 0)
        self.assert_agree(rev, new_gen)
        self.assertEqual(w.reboot().toplevel, new_gen)

    def test_boot_without_one_shot_entry(self):
        """extlinux has no one-shot entry: the generation becomes the default at once, as
        before, and the log and status say so."""
        w = self.w
        w.boot_loader = "extlinux"
        good, gen = self.deploy_good()
        rev = w.commit()
        self.configure_boot()
        r = self.pull(0)
        self.assertIn("has no one-shot entry", r.stderr)
        s = self.status()
        new_gen = s["pending"]["generation"]
        self.assertIsNone(s["pending"]["trial-entry"])
        self.assertIn("is the boot default already (no trial boot", w.agent("status").stdout)
        self.assertEqual(w.boot_default(), new_gen)
        self.assertEqual(w.bootloader_calls(), [])
        w.reboot()
        self.assertEqual(w.agent("confirm").returncode, 0)
        self.assert_agree(rev, new_gen)

    def test_rollback_before_the_trial_boot(self):
        """`rollback` while a trial waits for its reboot: the one-shot entry is removed, so the
        next boot starts the known-good generation."""
        w = self.w
        good, gen = self.deploy_good()
        w.commit()
        self.pull_for_next_boot(good, gen)
        r = w.agent("rollback")
        self.assertEqual(r.returncode, 0, r.stderr[-3000:])
        self.assertIsNone(w.boot_oneshot())
        self.assertEqual(w.boot_next(), gen)
        self.assertEqual(w.reboot().toplevel, gen)
        self.assertEqual(w.agent("confirm").returncode, 0)
        self.assert_agree(good, gen)

    def test_reboot_window(self):
        import time as _t
        w = self.w
        self.deploy_good()
        now = _t.localtime()
        # a window that closed a minute ago and opens in 2 hours
        start = (now.tm_hour + 2) % 24
        window = f"{start:02d}:00-{start:02d}:30"
        w.commit()
        reboots = self.configure_boot(window)
        self.pull(0)
        self.assertEqual(self.status()["phase"], "pending-reboot")
        self.assertFalse(reboots.exists(), "no reboot outside the window")
        r = w.agent("confirm")
        self.assertEqual(r.returncode, 0)
        self.assertIn("waits for a reboot", r.stderr)
        self.assertFalse(reboots.exists())

    # -- crash safety -----------------------------------------------------------------------

    def kill_agent_when(self, predicate):
        w = self.w
        p = subprocess.Popen([str(w.agent_bin()), "-c", str(w.config_path), "pull"], env=w.env, cwd=w.cwd,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        ok = w.wait_for(predicate, timeout=30)
        p.send_signal(signal.SIGKILL)
        p.wait()
        self.assertTrue(ok, "the phase was never reached")

    def assert_gone(self, pid, msg):
        """pid ends (or is a zombie nobody reaped) within 10 s."""
        def gone():
            try:
                return ") Z " in Path(f"/proc/{pid}/stat").read_text()
            except FileNotFoundError:
                return True
        self.assertTrue(self.w.wait_for(gone, timeout=10), msg)

    def phase(self):
        return json.loads((self.w.state_dir / "state.json").read_text())["phase"]

    def test_killed_at_each_phase(self):
        """SIGKILL in each phase, then the next run: the build dies with the agent and the
        revision is built again; an activation cut in half (a slow switch-to-configuration,
        service stopped meanwhile) is activated again to its end; an interrupted health check
        is done again; the record then names what runs, and a healthy revision is deployed."""
        cases = [
            # (what to hold, the phase the state file must show when killed, new rev healthy?)
            ("build", "building", True),
            ("switch", "activating", True),
            ("settle", "checking", True),
            ("settle-bad", "checking", False),
        ]
        for how, phase, healthy in cases:
            with self.subTest(kill_during=how):
                w = self.w
                good, gen = self.deploy_good()
                new = w.commit(**({} if healthy else {"health_status": 500}))
                if how == "build":
                    held = HeldNix(w, BUILD)
                    w.write_config(system={"nix-command": str(held.path)},
                                   health={"settle": 0, "timeout": 3, "checks": [{"name": "web", "http": {
                                       "url": f"http://127.0.0.1:{w.port}/health", "status": 200}}]})
                    self.kill_agent_when(held.held)
                    self.assertTrue(w.wait_for(lambda: pid_gone(held.pid()), timeout=10),
                                    "the build outlived the agent")
                elif how == "switch":
                    w.activation_seconds = 3
                    self.configure()
                    self.kill_agent_when(lambda: any(sp["end"] is None and sp["toplevel"] != gen
                                                     for sp in w.activation_spans()) and w.health(timeout=0.2) is None)
                    self.assertTrue(w.wait_activation_idle(10), "the activation outlived the agent")
                    self.assertIsNone(w.health(), "killed while the services were stopped")
                    w.activation_seconds = 0
                else:
                    self.configure(settle=30)
                    self.kill_agent_when(lambda: (w.state_dir / "state.json").exists() and self.phase() == phase)
                self.assertEqual(self.phase(), phase)

                # the next run finishes the job
                self.configure()
                r = w.agent("pull")
                s = self.status()
                self.assertEqual(s["phase"], "idle")
                if healthy:
                    self.assertEqual(r.returncode, 0, r.stderr[-2000:])
                    self.assertEqual(s["revision"], new)
                    self.assertEqual(w.health(), 200)
                    self.assertEqual(w.current_system(), s["generation"])
                    self.assertEqual(w.service_marker(), w.marker_of(s["generation"]))
                    self.assertIsNone(s["failed-revision"])
                else:
                    self.assertEqual(r.returncode, 0, r.stderr[-2000:])  # recovered, then: known bad
                    self.assert_back_on(good, gen)
                    self.assertEqual(s["history"][-1]["result"], "rolled-back")
                    self.assertEqual(s["failed-revision"], new)
                self.assertEqual(w.activation_conflicts(), [])
                # a fresh world for the next case
                w.close()
                self.w = World.for_test(self)
                self.w.make_repo()

    def test_killed_while_rolling_back(self):
        """SIGKILL while the agent rolls back: the rollback's profile operation (nix profile
        rollback, through system.nix-command) is held. The state file says rolling-back, the
        held nix dies with the agent, and the next run does the rollback again: known-good
        generation, healthy, the bad revision remembered."""
        w = self.w
        good, gen = self.deploy_good()
        bad = w.commit(health_status=500)
        held = HeldNix(w, PROFILE_BACK)
        w.write_config(system={"nix-command": str(held.path)},
                       health={"settle": 0, "timeout": 3, "checks": [{"name": "web", "http": {
                           "url": f"http://127.0.0.1:{w.port}/health", "status": 200}}]})
        self.kill_agent_when(held.held)
        self.assertTrue(w.wait_for(lambda: pid_gone(held.pid()), timeout=10),
                        "the rollback's nix outlived the agent")
        self.assertEqual(self.phase(), "rolling-back")
        self.assertEqual(w.profile_target(), gen, "the profile (the boot default) moved before the checks passed")
        self.assertNotEqual(w.current_system(), gen, "the rollback ran before the held nix did")
        self.assertEqual(w.health(), 500, "the bad revision still runs: the rollback was cut off")

        # `check` meanwhile: a rollback is owed, the machine is not fine
        self.assertEqual(w.agent("check").returncode, 5)

        self.configure()
        r = w.agent("pull")
        self.assertEqual(r.returncode, 0, r.stderr[-3000:])  # the rollback redone, then: known bad
        self.assertIn("stopped while rolling back", r.stderr)
        s = self.assert_back_on(good, gen)
        h = s["history"][-1]
        self.assertEqual((h["revision"], h["result"]), (bad, "rolled-back"))
        self.assertEqual(s["failed-revision"], bad)


if __name__ == "__main__":
    unittest.main()
