#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Proves the test world works on its own, without the agent: real nix builds in a private
store, real profile generations, the nixos-rebuild stand-in, the test service.

Run from the repository root: python3 tests/integration/test_world_selftest.py [-v]
"""

import json
import os
import sys
import unittest
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from world import DEPLOY_REF, REBUILD_STANDIN, World, flake_ref, pid_alive, to_yaml  # noqa: E402

HOST = "testhost"
TIMEOUT = 60  # per command; a stand-in run takes well under a second


class StandInTest(unittest.TestCase):
    """The stand-in driven the way the agent drives it: a bare clone with atticd-deploy at
    the target revision and a git+file://...?ref=refs/heads/atticd-deploy&rev=SHA reference.
    Every run captures stdout and stderr to EOF with a timeout, so a test service that kept a
    pipe of its caller open would make these tests fail."""

    def setUp(self):
        self.world = World.for_test(self)
        self.repo = self.world.make_repo()

    def rebuild(self, *args):
        return self.world.rebuild(*args, timeout=TIMEOUT)

    def rebuild_ok(self, *args):
        r = self.rebuild(*args)
        self.assertEqual(r.returncode, 0, f"nixos-rebuild {' '.join(args)}:\n{r.stderr}")
        return r

    def test_build_switch_unhealthy_switch_rollback(self):
        w = self.world
        sha1 = self.repo.commit(health_status=200)
        ref1 = w.deploy_ref(sha1)
        self.assertEqual(ref1, f"git+file://{w.tmp}/deploy/repo.git?ref={DEPLOY_REF}&rev={sha1}")

        # build: ./result in the working directory, nothing activated.
        r = self.rebuild_ok("build", "--flake", f"{ref1}#{HOST}")
        self.assertEqual(r.stdout, "")
        top1 = os.readlink(w.cwd / "result")
        self.assertTrue(top1.startswith(str(w.store_dir) + "/"), top1)
        self.assertTrue(os.access(Path(top1, "bin", "switch-to-configuration"), os.X_OK))
        self.assertTrue(Path(top1, "nixos-version").is_file())
        self.assertEqual(w.profile_generations(), {})
        self.assertIsNone(w.current_system())
        self.assertIsNone(w.health())

        # switch: generation 1, current-system, a service answering 200.
        self.rebuild_ok("switch", "--flake", f"{ref1}#{HOST}", "--no-build-output", "-L")
        self.assertEqual(w.profile_generations(), {1: top1})
        self.assertEqual(w.profile_generation(), 1)
        self.assertEqual(w.profile_target(), top1)
        self.assertEqual(w.current_system(), top1)
        self.assertEqual(w.health(), 200)
        self.assertEqual(w.service_marker(), w.marker_of(top1))

        # An unhealthy revision: generation 2, the service now answers 500.
        sha2 = self.repo.commit(health_status=500)
        ref2 = w.deploy_ref(sha2)
        self.rebuild_ok("switch", "--flake", f"{ref2}#{HOST}")
        gens = w.profile_generations()
        self.assertEqual(list(gens), [1, 2])
        top2 = gens[2]
        self.assertNotEqual(top2, top1)
        self.assertEqual(w.profile_target(), top2)
        self.assertEqual(w.current_system(), top2)
        self.assertEqual(w.health(), 500)
        self.assertEqual(len(w.service_pids()), 1, "the old service must have been stopped")

        # --rollback switch: back on generation 1 and healthy.
        self.rebuild_ok("--rollback", "switch")
        self.assertEqual(w.profile_generation(), 1)
        self.assertEqual(w.current_system(), top1)
        self.assertEqual(w.health(), 200)

        self.assertEqual([c.split()[1] for c in w.rebuild_calls()], ["build", "switch", "switch", "--rollback"])
        self.assertEqual([a.split()[0] for a in w.activations()], ["switch", "switch", "switch"])
        nix_calls = w.nix_calls()
        self.assertEqual(sum(c.startswith("nix build ") for c in nix_calls), 3, nix_calls)
        self.assertIn(f"nix-env -p {w.profile} --rollback", nix_calls)

    def test_build_failure(self):
        w = self.world
        sha = self.repo.commit(build_fail=True)
        r = self.rebuild("build", "--flake", f"{w.deploy_ref(sha)}#{HOST}")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("build_fail", r.stderr)
        self.assertFalse(os.path.lexists(w.cwd / "result"))
        r = self.rebuild("switch", "--flake", f"{w.deploy_ref(sha)}#{HOST}")
        self.assertNotEqual(r.returncode, 0)
        self.assertEqual(w.profile_generations(), {})
        self.assertIsNone(w.current_system())
        self.assertIsNone(w.health())

    def test_activation_failure_exit_status(self):
        w = self.world
        sha = self.repo.commit(activation_exit=3)
        r = self.rebuild("switch", "--flake", f"{w.deploy_ref(sha)}#{HOST}")
        self.assertEqual(r.returncode, 3, r.stderr)
        # Like nixos-rebuild: the profile is set before activation, which then fails.
        self.assertEqual(list(w.profile_generations()), [1])
        self.assertEqual(w.current_system(), w.profile_target())
        self.assertEqual(w.health(), 200)

    def test_boot_and_test_actions(self):
        w = self.world
        sha = self.repo.commit()
        ref = f"{w.deploy_ref(sha)}#{HOST}"
        self.rebuild_ok("boot", "--flake", ref)
        top = w.profile_target()
        self.assertEqual(w.profile_generations(), {1: top})
        self.assertEqual(w.boot_next(), top)
        self.assertIsNone(w.current_system(), "boot must not activate")
        self.assertIsNone(w.health())
        # test: activates without a new generation.
        sha2 = self.repo.commit(health_status=503)
        self.rebuild_ok("test", "--flake", f"{w.deploy_ref(sha2)}#{HOST}")
        self.assertEqual(list(w.profile_generations()), [1])
        self.assertNotEqual(w.current_system(), top)
        self.assertEqual(w.health(), 503)

    def test_images_evaluate(self):
        w = self.world
        images = {"web": "127.0.0.1:5000/web:1", "db": "127.0.0.1:5000/db@sha256:" + "ab" * 32}
        sha = self.repo.commit(images=images)
        attr = f"#nixosConfigurations.{HOST}.config.virtualisation.oci-containers.containers"
        r = w.run(["nix", "eval", "--json", w.deploy_ref(sha) + attr], timeout=TIMEOUT)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout), {k: {"image": v} for k, v in images.items()})
        sha2 = self.repo.commit()
        r = w.run(["nix", "eval", "--json", w.deploy_ref(sha2) + attr], timeout=TIMEOUT)
        self.assertEqual((r.returncode, json.loads(r.stdout or "null")), (0, {}), r.stderr)

    def test_stand_in_refuses_bad_use(self):
        w = self.world
        r = self.rebuild("switch", "--frobnicate", "--flake", "x#y")
        self.assertEqual(r.returncode, 1)
        self.assertIn("--frobnicate", r.stderr)
        r = w.run([REBUILD_STANDIN, "build", "--flake", "x#y"], env={"WORLD_ROOT": ""})
        self.assertEqual(r.returncode, 1)
        self.assertIn("WORLD_ROOT is not set", r.stderr)


class WorldTest(unittest.TestCase):
    def test_private_nix_and_cleanup(self):
        w = World()
        try:
            self.assertTrue(str(w.store_dir).startswith(str(w.tmp)))
            sha = w.commit()
            r = w.rebuild("switch", "--flake", f"{w.deploy_ref(sha)}#{HOST}", timeout=TIMEOUT)
            self.assertEqual(r.returncode, 0, r.stderr)
            top = w.profile_target()
            self.assertTrue(top.startswith(str(w.store_dir) + "/"), top)
            self.assertFalse(os.path.exists(f"/nix/store/{os.path.basename(top)}"))
            # The store really is nix's: the path is valid in the private database.
            r = w.run(["nix-store", "--verify-path", top])
            self.assertEqual(r.returncode, 0, r.stderr)
            pids = w.service_pids()
            self.assertEqual(len(pids), 1)
        finally:
            w.close()
        self.assertFalse(w.tmp.exists(), "close() must remove the read-only store too")
        self.assertFalse(any(pid_alive(p) for p in pids), "close() must stop the service")

    def test_config_yaml(self):
        with World() as w:
            w.make_repo()
            p = w.write_config(repository={"ref": "v1"}, health={"settle": 0, "checks": [
                {"name": "web", "http": {"url": f"http://127.0.0.1:{w.port}/health", "status": 200}}]})
            text = p.read_text()
            self.assertIn(f'state-dir: "{w.state_dir}"\n', text)
            self.assertIn('  rebuild-command: "', text)
            self.assertIn(f'  url: "{w.remote_url}"\n  ref: "v1"\n', text)
            self.assertIn('  checks:\n    - name: "web"\n      http:\n        url: ', text)
            self.assertNotIn("images", text)
            self.assertEqual(to_yaml({"a": [], "b": {}, "c": None, "d": [1, "x"], "e": True}),
                             'a: []\nb: {}\nd: [1, "x"]\ne: true\n')
            self.assertEqual(flake_ref("/r.git", "0" * 40),
                             f"git+file:///r.git?ref={DEPLOY_REF}&rev={'0' * 40}")


if __name__ == "__main__":
    unittest.main()
