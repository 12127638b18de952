#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Cosign verification of every image of a revision before it is built, through the real
binary against docker-registry on loopback, with images and signatures the tests make in
exactly cosign's layout (tests/integration/registry.py): classic .sig signatures and cosign 3
Sigstore bundles, thresholds, SBOM attestations, token and basic auth, and registries that
misbehave. A refusal is exit 3, an unreachable registry exit 6; both build nothing and leave
the state file as it was."""

import json
import sys
import time
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from world import World  # noqa: E402
from registry import (BadRegistry, Registry, attest_sbom, make_cosign_keypair, push_image,  # noqa: E402
                      push_index, sign_bundle, sign_classic)

SHARED_REGISTRY = None


class ImagesTest(unittest.TestCase):
    def setUp(self):
        self.w = World.for_test(self)
        self.w.make_repo()
        self.reg = Registry(self.w.tmp)
        self.addCleanup(self.reg.stop)
        self.key, self.pub = make_cosign_keypair(self.w.tmp, "ecdsa-p256", name="release")
        self.other_key, self.other_pub = make_cosign_keypair(self.w.tmp, "ecdsa-p256", name="other")

    def configure(self, reg=None, **images):
        reg = reg or self.reg
        conf = {"keys": [str(self.pub)], "insecure-registries": [reg.host]}
        conf.update(images)
        self.w.write_config(images=conf)

    def state(self):
        p = self.w.state_dir / "state.json"
        return p.read_bytes() if p.exists() else None

    def deploy_base(self):
        """A first revision without images, deployed."""
        self.w.commit()
        self.configure()
        r = self.w.agent("pull")
        self.assertEqual(r.returncode, 0, r.stderr)

    def pull(self, expect):
        r = self.w.agent("pull")
        self.assertEqual(r.returncode, expect, r.stderr[-3000:])
        return r

    def assert_refused(self, images, *needles, expect=3):
        w = self.w
        self.deploy_base()
        before = self.state()
        w.commit(images=images)
        w.reset_call_logs()
        r = self.pull(expect)
        for n in needles:
            self.assertIn(n, r.stderr)
        self.assertEqual(self.state(), before)
        self.assertEqual(w.rebuild_calls(), [], "nothing may be built")
        return r

    def image(self, repo="app/web", tag="1.0"):
        return push_image(self.reg, repo, tag)

    def ref(self, repo="app/web", tag="1.0", reg=None):
        return f"{(reg or self.reg).host}/{repo}:{tag}"

    def history_images(self):
        return json.loads(self.w.agent("status", "--json").stdout)["history"][-1]["images"]

    # -- accepted ---------------------------------------------------------------------------

    def test_signed_classic_and_bundle(self):
        web, db = self.image(), self.image("app/db", "2.0")
        sign_classic(self.reg, "app/web", web, self.key)
        sign_bundle(self.reg, "app/db", db, self.key)
        rev = self.w.commit(images={"web": self.ref(), "db": f"{self.reg.host}/app/db@{db}"})
        self.configure()
        self.pull(0)
        recorded = {i["name"]: i for i in self.history_images()}
        self.assertEqual(recorded["web"]["digest"], web)
        self.assertEqual(recorded["db"]["digest"], db)
        for i in recorded.values():
            self.assertEqual(len(i["signers"]), 1)
            self.assertTrue(i["signers"][0].startswith("SHA256:"))
        self.assertEqual(json.loads(self.w.agent("status", "--json").stdout)["revision"], rev)
        table = self.w.agent("status").stdout
        self.assertIn(f"image web {self.ref()} {web}", table)
        r = self.w.agent("verify-images")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(web, r.stdout)

    def test_multi_arch_index_verified_at_index_digest(self):
        a, b = self.image("app/multi", "amd64"), self.image("app/multi", "arm64")
        index = push_index(self.reg, "app/multi", "1.0", [a, b])
        sign_classic(self.reg, "app/multi", index, self.key)
        self.w.commit(images={"m": self.ref("app/multi")})
        self.configure()
        self.pull(0)
        self.assertEqual(self.history_images()[0]["digest"], index)

    def test_threshold_two_keys(self):
        web = self.image()
        sign_classic(self.reg, "app/web", web, self.key)
        self.w.commit(images={"web": self.ref()})
        self.configure(keys=[str(self.pub), str(self.other_pub)], threshold=2)
        r = self.pull(3)
        self.assertIn("1 trusted key(s), 2 required", r.stderr)
        sign_classic(self.reg, "app/web", web, self.key)  # the same key again counts once
        self.pull(3)
        sign_classic(self.reg, "app/web", web, self.other_key)
        self.pull(0)
        self.assertEqual(len(self.history_images()[0]["signers"]), 2)

    def test_sbom_required(self):
        web = self.image()
        sign_classic(self.reg, "app/web", web, self.key)
        self.w.commit(images={"web": self.ref()})
        self.configure(**{"require-sbom": True})
        r = self.pull(3)
        self.assertIn("no SBOM attestation", r.stderr)
        attest_sbom(self.reg, "app/web", web, self.key)
        self.pull(0)
        self.assertTrue(self.history_images()[0]["sbom"])

    def test_sbom_as_bundle(self):
        web = self.image()
        sign_bundle(self.reg, "app/web", web, self.key)
        attest_sbom(self.reg, "app/web", web, self.key, fmt="bundle",
                    predicate_type="https://cyclonedx.org/bom")
        self.w.commit(images={"web": self.ref()})
        self.configure(**{"require-sbom": True})
        self.pull(0)

    # -- refused ----------------------------------------------------------------------------

    def test_unsigned(self):
        web = self.image()
        self.assert_refused({"web": self.ref()}, "image 'web'", web, "no Cosign signature found")

    def test_wrong_key(self):
        web = self.image()
        sign_classic(self.reg, "app/web", web, self.other_key)
        self.assert_refused({"web": self.ref()}, web, "no valid signature by a trusted key")

    def test_bundle_wrong_key(self):
        web = self.image()
        sign_bundle(self.reg, "app/web", web, self.other_key)
        self.assert_refused({"web": self.ref()}, web, "no valid signature by a trusted key")

    def test_tampered(self):
        for tamper in ("payload", "digest", "media-type", "signature", "blob-mismatch"):
            with self.subTest(tamper=tamper):
                repo = f"app/{tamper}"
                web = self.image(repo)
                sign_classic(self.reg, repo, web, self.key, tamper=tamper)
                w = self.w
                w.commit(images={"web": self.ref(repo)})
                self.configure()
                before = self.state()
                w.reset_call_logs()
                r = self.pull(3)
                self.assertIn(web, r.stderr)
                self.assertEqual(self.state(), before)
                self.assertEqual(w.rebuild_calls(), [])

    def test_require_digest(self):
        web = self.image()
        sign_classic(self.reg, "app/web", web, self.key)
        self.w.commit(images={"web": self.ref()})
        self.configure(**{"require-digest": True})
        r = self.pull(3)
        self.assertIn("not pinned by digest", r.stderr)
        self.w.commit(images={"web": f"{self.reg.host}/app/web@{web}"})
        self.pull(0)

    def test_missing_image(self):
        self.assert_refused({"web": self.ref("app/none")}, "app/none", "not found")

    # -- authentication ---------------------------------------------------------------------

    def auth_file(self, reg):
        import base64
        user, password = reg.credentials
        p = self.w.tmp / "auth.json"
        p.write_text(json.dumps({"auths": {reg.host: {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}}}))
        return str(p)

    def test_basic_and_token_auth(self):
        for mode in ("basic", "token"):
            with self.subTest(auth=mode):
                reg = Registry(self.w.tmp, auth=(mode, "fleet", "s3cret"))
                self.addCleanup(reg.stop)
                web = push_image(reg, "app/web", "1.0")
                sign_classic(reg, "app/web", web, self.key)
                self.w.commit(images={"web": self.ref(reg=reg)})
                self.configure(reg)
                r = self.pull(6)
                self.assertIn("credentials", r.stderr)
                self.configure(reg, **{"registry-auth-file": self.auth_file(reg)})
                self.pull(0)

    # -- misbehaving registries -------------------------------------------------------------

    def test_bad_registries(self):
        cases = {"500": 6, "stall": 6, "huge-manifest": 3, "redirect-loop": 3, "garbage-json": 3,
                 "wrong-content-length": 6}
        for mode, expect in cases.items():
            with self.subTest(mode=mode):
                bad = BadRegistry(self.w.tmp, mode)
                self.addCleanup(bad.stop)
                self.w.commit(images={"web": f"{bad.host}/app/web:1.0"})
                self.configure(bad, **{"connect-timeout": 2, "stall-timeout": 2})
                before = self.state()
                self.w.reset_call_logs()
                start = time.monotonic()
                self.pull(expect)
                self.assertLess(time.monotonic() - start, 20)
                self.assertEqual(self.state(), before)
                self.assertEqual(self.w.rebuild_calls(), [])


if __name__ == "__main__":
    unittest.main()
