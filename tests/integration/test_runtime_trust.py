#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Runtime trust (issue 20, part 2): `check` compares the image each container of the deployed
revision runs (images.inspect-command; here tests/world/podman, a stand-in for `podman
container inspect` over a JSON file) with the digest verified and recorded at deployment. The
same digest: healthy; another: drift, exit 1, both digests named, an event and a metric; a
container that is not there or not running: reported, and left to the health checks."""

import json
import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from world import World  # noqa: E402
from registry import Registry, make_cosign_keypair, push_image, sign_classic  # noqa: E402

PODMAN = Path(__file__).resolve().parents[1] / "world" / "podman"
CONTAINER_DRIFT_EVENT = "0624270588d14101ae1e8cd207229acd"


class RuntimeTrustTest(unittest.TestCase):
    def setUp(self):
        w = self.w = World.for_test(self)
        w.make_repo()
        self.reg = Registry(w.tmp)
        self.addCleanup(self.reg.stop)
        key, pub = make_cosign_keypair(w.tmp, "ecdsa-p256", name="release")
        self.web = push_image(self.reg, "app/web", "1.0")
        self.other = push_image(self.reg, "app/web", "1.1")
        sign_classic(self.reg, "app/web", self.web, key)
        self.engine = w.tmp / "containers.json"
        self.metrics = w.tmp / "metrics.prom"
        w.write_config(images={"keys": [str(pub)], "insecure-registries": [self.reg.host],
                               "inspect-command": [str(PODMAN), "--state", str(self.engine), "container",
                                                   "inspect", "--format", "{{.State.Running}} {{.ImageDigest}}",
                                                   "{name}"]},
                       metrics={"textfile": str(self.metrics)})
        self.rev = w.commit(images={"web": f"{self.reg.host}/app/web:1.0"})
        r = w.agent("pull")
        self.assertEqual(r.returncode, 0, r.stderr)

    def engine_runs(self, **containers):
        self.engine.write_text(json.dumps(containers))

    def check(self, expect):
        r = self.w.agent("check", "--json")
        self.assertEqual(r.returncode, expect, r.stderr)
        return json.loads(r.stdout), r.stderr

    def metric(self, name):
        for line in self.metrics.read_text().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        return None

    def test_the_verified_image_runs(self):
        self.engine_runs(web={"running": True, "image-digest": self.web})
        j, err = self.check(0)
        self.assertEqual(j["containers"], [{"name": "web", "reference": f"{self.reg.host}/app/web:1.0",
                                            "expected": self.web, "running": self.web, "state": "ok",
                                            "detail": "runs the verified image"}])
        self.assertFalse(j["drift"])
        self.assertEqual(self.metric("atticd_agent_containers_drifted"), 0)
        self.assertNotIn(CONTAINER_DRIFT_EVENT, err)

    def test_another_image_is_drift(self):
        self.engine_runs(web={"running": True, "image-digest": self.other})
        j, err = self.check(1)
        c = j["containers"][0]
        self.assertEqual((c["state"], c["expected"], c["running"]), ("other-image", self.web, self.other))
        self.assertTrue(j["drift"])
        self.assertFalse(j["healthy"])
        self.assertIn(CONTAINER_DRIFT_EVENT, err)
        self.assertIn(self.web, err)
        self.assertIn(self.other, err)
        self.assertEqual(self.metric("atticd_agent_containers_drifted"), 1)
        # The text form names both digests too.
        r = self.w.agent("check")
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertRegex(r.stdout, rf"container web +FAIL runs {self.other}, not the verified {self.web}")

    def test_missing_or_stopped_container_is_reported(self):
        for containers, detail in (({}, "the container engine has no such container running"),
                                   ({"web": {"running": False, "image-digest": self.web}}, "the container is not running")):
            with self.subTest(containers=containers):
                self.engine_runs(**containers)
                j, err = self.check(0)  # the health checks (none here) decide, not the comparison
                self.assertEqual((j["containers"][0]["state"], j["containers"][0]["detail"]), ("not-running", detail))
                self.assertIn("Container web", err)
                self.assertIn("is not running", err)
                self.assertEqual(self.metric("atticd_agent_containers_not_running"), 1)
                self.assertEqual(self.metric("atticd_agent_containers_drifted"), 0)

    def test_engine_that_cannot_be_asked(self):
        self.w.write_config(images={"inspect-command": [str(self.w.tmp / "no-such-podman"), "{name}"]})
        j, err = self.check(0)
        self.assertEqual(j["containers"][0]["state"], "unknown")
        self.assertIn("cannot ask the container engine", j["containers"][0]["detail"])

    def test_no_inspect_command_no_comparison(self):
        self.w.write_config(images={"inspect-command": []})
        j, _ = self.check(0)
        self.assertEqual(j["containers"], [])


if __name__ == "__main__":
    unittest.main()
