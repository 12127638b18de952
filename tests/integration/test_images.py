#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Cosign verification of every image of a revision before it is built, through the real
binary against docker-registry on loopback, with images and signatures the tests make in
exactly cosign's layout (tests/integration/registry.py): classic .sig signatures and cosign 3
Sigstore bundles, thresholds, SBOM attestations, token and basic auth, and registries that
misbehave. A refusal is exit 3, an unreachable registry exit 6; both build nothing and leave
the state file as it was."""

import json
import subprocess
import sys
import time
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from world import World  # noqa: E402
from servers import HttpProxy  # noqa: E402
from registry import (BadRegistry, Registry, attest_sbom, make_cosign_keypair, push_classic_signature,  # noqa: E402
                      push_image, push_index, sha256_digest, sign_bundle, sign_classic, signature_tag,
                      store_manifest)
from test_observability import events  # noqa: E402

SHARED_REGISTRY = None
SHARED_VECTORS = Path(__file__).resolve().parents[3] / "shared" / "vectors"
KEYLESS = SHARED_VECTORS / "cosign" / "cimage-dir-img-cosign-fulcio-rekor-valid"
PRODUCTION_ROOT = SHARED_VECTORS / "sigstore-conformance" / "production_trusted_root.json"


class ImagesWorld:
    """What the image tests share (a mixin of a TestCase with self.w, the world, and a
    configure() of its own): the state file, a first deployed revision, pull, the history."""

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

    def history_images(self):
        return json.loads(self.w.agent("status", "--json").stdout)["history"][-1]["images"]


class ImagesTest(ImagesWorld, unittest.TestCase):
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
        self.assertEqual(w.system_builds(), [], "nothing may be built")
        return r

    def image(self, repo="app/web", tag="1.0"):
        return push_image(self.reg, repo, tag)

    def ref(self, repo="app/web", tag="1.0", reg=None):
        return f"{(reg or self.reg).host}/{repo}:{tag}"

    def refusal(self, r, command):
        """The one refused event of a run (its stderr, as the journal gets it): REASON
        image-signature, sent by `command`."""
        refused = [e for e in events(r.stderr) if e["event"] == "refused"]
        self.assertEqual(len(refused), 1, r.stderr[-3000:])
        self.assertEqual(refused[0]["REASON"], "image-signature", refused[0])
        self.assertEqual(refused[0]["COMMAND"], command, refused[0])
        return refused[0]

    def verify_images(self, *args, expect):
        r = self.w.agent("verify-images", *args)
        self.assertEqual(r.returncode, expect, f"stdout:\n{r.stdout}\nstderr:\n{r.stderr[-3000:]}")
        return r

    @staticmethod
    def image_lines(r):
        """verify-images' lines, by image name."""
        return {line.split()[0]: line for line in r.stdout.splitlines() if line.strip()}

    def assert_verify_refused(self, rev, name, reason, *args):
        """verify-images [args] refuses image `name` of revision rev: exit 3, the refused event
        (REASON=image-signature, COMMAND=verify-images, the revision, the image and why), the
        image's line says why, never "ok"; nothing changed."""
        before = self.state()
        r = self.verify_images(*args, expect=3)
        ev = self.refusal(r, "verify-images")
        self.assertEqual(ev["REVISION"], rev)
        self.assertIn(f"image '{name}'", ev["ERROR"])
        self.assertIn(reason, ev["ERROR"])
        self.assertIn(f"Refused: image '{name}'", r.stderr)
        line = self.image_lines(r)[name]
        self.assertIn(reason, line)
        self.assertNotRegex(line, r" ok$")
        self.assertEqual(self.state(), before, "verify-images changed the state file")
        return r, ev

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

    def test_keyless_classic_signature(self):
        """A real keyless signature (cosign and Sigstore's public-good Fulcio and Rekor, 2023:
        certificate for mitr@redhat.com from GitHub, Rekor SET) on the real image manifest it
        signed, in the test registry; images.keyless with Sigstore's production trusted root.
        The right identity: accepted, the identity recorded as the signer. Another identity,
        or another issuer: refused (exit 3), nothing changed."""
        manifest = (KEYLESS / "manifest.json").read_bytes()
        vector = json.loads((KEYLESS / "signature-1.json").read_text())
        digest = store_manifest(self.reg, "cosign-signed/fulcio-rekor-1", manifest)
        self.assertEqual(digest, json.loads((KEYLESS / "payload.json").read_text())
                         ["critical"]["image"]["docker-manifest-digest"])
        push_classic_signature(self.reg, "cosign-signed/fulcio-rekor-1", digest,
                               (KEYLESS / "payload.json").read_bytes(), vector["annotations"])
        ref = f"{self.reg.host}/cosign-signed/fulcio-rekor-1@{digest}"

        def keyless(identity, issuer="https://github.com/login/oauth"):
            return {"trusted-root": str(PRODUCTION_ROOT), "identities": [{"subject": identity, "issuer": issuer}]}

        self.deploy_base()
        before = self.state()
        self.w.commit(images={"web": ref})
        for identity, issuer, why in (("someone@redhat.com", "https://github.com/login/oauth",
                                       "identity is 'mitr@redhat.com', not the expected 'someone@redhat.com'"),
                                      ("mitr@redhat.com", "https://accounts.google.com",
                                       "OIDC issuer is 'https://github.com/login/oauth'")):
            with self.subTest(identity=identity, issuer=issuer):
                self.configure(keyless=keyless(identity, issuer))
                r = self.pull(3)
                self.assertIn(why, r.stderr)
                self.assertEqual(self.state(), before)
        self.configure(keyless=keyless("mitr@redhat.com"))
        r = self.pull(0)
        self.assertIn("signed by 1 trusted signer(s)", r.stderr)
        recorded = self.history_images()[0]
        self.assertEqual(recorded["digest"], digest)
        self.assertEqual(recorded["signers"], ["mitr@redhat.com (https://github.com/login/oauth)"])

    def test_keyless_identity_and_key_count_toward_the_threshold(self):
        """threshold 2 with one key and one identity: the keyless signature alone is one signer
        (refused, exit 3); with a signature by the key too, two (accepted, both recorded)."""
        digest = store_manifest(self.reg, "cosign-signed/fulcio-rekor-1", (KEYLESS / "manifest.json").read_bytes())
        push_classic_signature(self.reg, "cosign-signed/fulcio-rekor-1", digest,
                               (KEYLESS / "payload.json").read_bytes(),
                               json.loads((KEYLESS / "signature-1.json").read_text())["annotations"])
        self.deploy_base()
        self.w.commit(images={"web": f"{self.reg.host}/cosign-signed/fulcio-rekor-1@{digest}"})
        self.configure(threshold=2, keyless={"trusted-root": str(PRODUCTION_ROOT), "identities": [
            {"subject": "mitr@redhat.com", "issuer": "https://github.com/login/oauth"}]})
        r = self.pull(3)
        self.assertIn("signed by 1 trusted signer(s) (keys and identities), 2 required", r.stderr)
        sign_classic(self.reg, "cosign-signed/fulcio-rekor-1", digest, self.key)
        self.pull(0)
        signers = self.history_images()[0]["signers"]
        self.assertEqual(len(signers), 2, signers)
        self.assertTrue(signers[0].startswith("SHA256:"), signers)
        self.assertEqual(signers[1], "mitr@redhat.com (https://github.com/login/oauth)")

    def test_through_a_proxy(self):
        """The registry is asked through http_proxy (libcurl honours it; the git remote here is
        a local path); a proxy that is down ends the run with exit 6 and nothing changed."""
        w = self.w
        web = self.image()
        sign_classic(self.reg, "app/web", web, self.key)
        w.commit(images={"web": self.ref()})
        self.configure()
        proxy = HttpProxy(w.tmp / "proxy-logs")
        self.addCleanup(proxy.stop)
        env = {"http_proxy": proxy.url(), "https_proxy": proxy.url(), "no_proxy": "", "NO_PROXY": ""}
        r = w.agent("pull", env=env)
        self.assertEqual(r.returncode, 0, r.stderr[-3000:])
        self.assertTrue(any(line.startswith(f"GET http://{self.reg.host}/v2/app/web/manifests/") for line in proxy.requests()),
                        proxy.requests())

        w.commit(images={"web": self.ref()})
        before = self.state()
        w.reset_call_logs()
        r = w.agent("pull", env=dict(env, http_proxy="http://127.0.0.1:9"))
        self.assertEqual(r.returncode, 6, r.stderr[-3000:])
        self.assertEqual(self.state(), before)
        self.assertEqual(w.system_builds(), [])

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

    def test_sbom_recorded_when_not_required(self):
        """Without images.require-sbom the record still says whether a signed SBOM exists: false
        with none, true with one (classic .att or a bundle), false with one signed by an untrusted
        key; a missing one refuses nothing."""
        web = self.image()
        sign_classic(self.reg, "app/web", web, self.key)
        self.w.commit(images={"web": self.ref()})
        self.configure()
        self.pull(0)
        self.assertFalse(self.history_images()[0]["sbom"])
        attest_sbom(self.reg, "app/web", web, self.other_key)
        self.w.commit(images={"web": self.ref()})
        self.pull(0)
        self.assertFalse(self.history_images()[0]["sbom"], "an SBOM signed by an untrusted key counted")
        attest_sbom(self.reg, "app/web", web, self.key)
        self.w.commit(images={"web": self.ref()})
        self.pull(0)
        self.assertTrue(self.history_images()[0]["sbom"])

    def test_sbom_as_bundle(self):
        """An SBOM attestation as a Sigstore bundle (cosign 3, CycloneDX) satisfies
        images.require-sbom and is recorded: sbom true in status --json. Missing, or signed by a
        key that is not trusted, it is refused with require-sbom (the revision is not built);
        without require-sbom the image is deployed, and an SBOM by an untrusted key is no SBOM:
        sbom false."""
        w = self.w
        web = self.image()
        sign_bundle(self.reg, "app/web", web, self.key)
        self.deploy_base()
        before = self.state()
        rev = w.commit(images={"web": self.ref()})
        self.configure(**{"require-sbom": True})
        for case in ("missing", "untrusted key"):
            with self.subTest(sbom=case):
                if case == "untrusted key":
                    attest_sbom(self.reg, "app/web", web, self.other_key, fmt="bundle",
                                predicate_type="https://cyclonedx.org/bom")
                w.reset_call_logs()
                r = self.pull(3)
                ev = self.refusal(r, "pull")
                self.assertEqual(ev["REVISION"], rev)
                self.assertIn(f"image 'web' ({self.ref()}, {web}): no SBOM attestation (SPDX or CycloneDX) "
                              "signed by a trusted key", ev["ERROR"])
                self.assertEqual(self.state(), before)
                self.assertEqual(w.system_builds(), [], "nothing may be built")

        self.configure()
        r = self.pull(0)
        self.assertNotIn("with an SBOM", r.stderr)
        [recorded] = self.history_images()
        self.assertEqual((recorded["name"], recorded["digest"], recorded["sbom"]), ("web", web, False))
        self.assertEqual(len(recorded["signers"]), 1)

        attest_sbom(self.reg, "app/web", web, self.key, fmt="bundle", predicate_type="https://cyclonedx.org/bom")
        rev = w.commit(images={"web": self.ref()})
        self.configure(**{"require-sbom": True})
        r = self.pull(0)
        self.assertIn(f"Image 'web' {self.ref()} is {web}, signed by 1 trusted key(s), with an SBOM.", r.stderr)
        s = json.loads(w.agent("status", "--json").stdout)
        self.assertEqual(s["revision"], rev)
        [recorded] = s["history"][-1]["images"]
        self.assertEqual((recorded["name"], recorded["digest"], recorded["sbom"]), ("web", web, True))
        self.assertEqual(len(recorded["signers"]), 1)
        self.assertTrue(recorded["signers"][0].startswith("SHA256:"))

    # -- refused ----------------------------------------------------------------------------

    def test_no_keys_no_claims(self):
        """images.keys empty: each run warns that the images are not verified, every pull that
        checks a revision's images (not only the first) and every verify-images, and nothing
        claims they are (no "(null)" digest, no images-verified event, no "signed by", none in
        the record, no image line "ok")."""
        web, db = self.image(), self.image("app/db", "2.0")
        self.w.write_config(images={"insecure-registries": [self.reg.host]})
        revisions = [{"web": self.ref()}, {"web": self.ref(), "db": self.ref("app/db", "2.0")},
                     {"db": self.ref("app/db", "2.0")}]
        for n, images in enumerate(revisions, 1):
            with self.subTest(pull=n):
                rev = self.w.commit(images=images)
                r = self.pull(0)
                self.assertEqual(r.stderr.count(f"images.keys is empty: the {len(images)} image(s) of this "
                                                "revision are not verified"), 1, r.stderr[-3000:])
                self.assertNotIn("(null)", r.stderr)
                self.assertNotIn("signed by", r.stderr)
                self.assertEqual([e for e in events(r.stderr) if e["event"] == "images-verified"], [])
                s = json.loads(self.w.agent("status", "--json").stdout)
                self.assertEqual(s["revision"], rev)
                self.assertNotIn(web, json.dumps(s["history"][-1]["images"]))
                self.assertNotIn(db, json.dumps(s["history"][-1]["images"]))
                self.assertNotIn("signed by", self.w.agent("status").stdout)

                r = self.verify_images(expect=0)
                self.assertEqual(r.stderr.count(f"The {len(images)} image(s) of revision {rev} were not verified: "
                                                "images.keys is empty."), 1, r.stderr[-3000:])
                self.assertNotIn("signed by", r.stderr)
                lines = self.image_lines(r)
                self.assertEqual(sorted(lines), sorted(images))
                for line in lines.values():
                    self.assertRegex(line, r" not verified$")

    def test_unreadable_key_is_a_configuration_error(self):
        bad = self.w.tmp / "not-a-key.pem"
        bad.write_text("hello\n")
        self.deploy_base()
        before = self.state()
        self.w.commit(images={"web": self.ref()})
        self.image()
        self.w.write_config(images={"keys": [str(bad)], "insecure-registries": [self.reg.host]})
        r = self.pull(2)
        self.assertIn("The images cannot be verified (images.keys)", r.stderr)
        self.assertNotIn("registry could not be asked", r.stderr)
        self.assertEqual(self.state(), before)

    def test_keyless_trusted_root_unusable_is_a_configuration_error(self):
        """images.keyless.trusted-root that is not a trusted root: exit 2 naming it, as a key
        that is not a key; nothing changed."""
        bad = self.w.tmp / "not-a-root.json"
        bad.write_text('{"mediaType": "application/json"}\n')
        self.deploy_base()
        before = self.state()
        self.w.commit(images={"web": self.ref()})
        self.image()
        self.configure(keyless={"trusted-root": str(bad),
                                "identities": [{"subject": "a@example.org", "issuer": "https://issuer.example.org"}]})
        r = self.pull(2)
        self.assertIn("The images cannot be verified (images.keys, images.keyless)", r.stderr)
        self.assertIn(f"images.keyless.trusted-root: '{bad}'", r.stderr)
        self.assertEqual(self.state(), before)

    def test_verify_images_refusal_is_counted_and_sent(self):
        """verify-images refusing a deployed image (its signature removed since): exit 3, the
        refused event, the refusal counted by its reason; an unusable key: exit 2 and the
        images shown as not verified, never "ok"."""
        web = self.image()
        sign_classic(self.reg, "app/web", web, self.key)
        self.w.commit(images={"web": self.ref()})
        metrics = self.w.tmp / "m.prom"
        self.w.write_config(images={"keys": [str(self.pub)], "insecure-registries": [self.reg.host]},
                            metrics={"textfile": str(metrics)})
        self.pull(0)
        client = self.reg.client()
        sig = client.head_manifest("app/web", "sha256-" + web.split(":")[1] + ".sig")
        client.delete_manifest("app/web", sig["digest"])
        r = self.w.agent("verify-images")
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertIn("bedd6bd26fb849a79d1ee1a2319c9ecd", r.stderr)  # refused
        self.assertIn('atticd_agent_refusals_total{reason="image-signature"} 1', metrics.read_text())
        bad = self.w.tmp / "not-a-key.pem"
        bad.write_text("hello\n")
        self.w.write_config(images={"keys": [str(bad)], "insecure-registries": [self.reg.host]})
        r = self.w.agent("verify-images")
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("not verified", r.stdout)
        self.assertNotRegex(r.stdout, r" ok$")

    # -- verify-images: what it refuses (issue 24, item 6) ---------------------------------

    def test_verify_images_signature_removed(self):
        """A signature removed from the registry after the deployment: verify-images of the
        deployed revision refuses that image, a classic .sig as a Sigstore bundle (its fallback
        index), and says which and why; the other image stays "ok"; signed again, it verifies."""
        web, db = self.image(), self.image("app/db", "2.0")
        sign_classic(self.reg, "app/web", web, self.key)
        sign_bundle(self.reg, "app/db", db, self.key)
        rev = self.w.commit(images={"web": self.ref(), "db": f"{self.reg.host}/app/db@{db}"})
        self.configure()
        self.pull(0)
        r = self.verify_images(expect=0)
        for name in ("web", "db"):
            self.assertRegex(self.image_lines(r)[name], r" ok$")

        client = self.reg.client()
        client.delete_manifest("app/web", client.head_manifest("app/web", signature_tag(web))["digest"])
        r, ev = self.assert_verify_refused(rev, "web", "no Cosign signature found")
        self.assertIn(web, ev["ERROR"])
        self.assertRegex(self.image_lines(r)["db"], r" ok$")

        sign_classic(self.reg, "app/web", web, self.key)
        self.verify_images(expect=0)
        client.delete_manifest("app/db", client.head_manifest("app/db", signature_tag(db, ""))["digest"])
        r, ev = self.assert_verify_refused(rev, "db", "no Cosign signature found")
        self.assertIn(db, ev["ERROR"])
        self.assertRegex(self.image_lines(r)["web"], r" ok$")

    def test_verify_images_tag_moved_to_an_unsigned_image(self):
        """verify-images --rev of a revision that names its image by tag resolves the tag now:
        moved to an unsigned image, it is refused, and the line names the digest the tag points
        to now, not the one deployed before. (The deployed revision here pins the image by
        digest, which the move does not touch.) Signed by a trusted key, the new image is
        accepted."""
        web = self.image()
        sign_classic(self.reg, "app/web", web, self.key)
        by_tag = self.w.commit(images={"web": self.ref()})
        self.configure()
        self.pull(0)
        self.w.commit(images={"web": f"{self.reg.host}/app/web@{web}"})
        self.pull(0)
        r = self.verify_images("--rev", by_tag, expect=0)
        self.assertIn(web, self.image_lines(r)["web"])

        moved = push_image(self.reg, "app/web", "1.0", seed="moved")
        self.assertNotEqual(moved, web)
        r, ev = self.assert_verify_refused(by_tag, "web", "no Cosign signature found", "--rev", by_tag)
        self.assertIn(moved, ev["ERROR"])
        self.assertIn(moved, self.image_lines(r)["web"])
        self.assertNotIn(web, self.image_lines(r)["web"])
        self.verify_images(expect=0)

        sign_classic(self.reg, "app/web", moved, self.key)
        r = self.verify_images("--rev", by_tag, expect=0)
        self.assertIn(moved, self.image_lines(r)["web"])

    def test_verify_images_deployed_tag_moved(self):
        """The deployed revision names its image by tag alone and the tag moves (as a pipeline
        promoting :latest does): verify-images checks what runs, the recorded digest, and says
        that the tag points elsewhere now (a container that pulls it would run an image that was
        not verified), every time, without refusing."""
        web = self.image()
        sign_classic(self.reg, "app/web", web, self.key)
        self.w.commit(images={"web": self.ref()})
        self.configure()
        self.pull(0)
        r = self.verify_images(expect=0)
        self.assertNotIn("its tag now points", r.stderr)

        moved = push_image(self.reg, "app/web", "1.0", seed="moved")
        self.assertNotEqual(moved, web)
        for _ in range(2):
            r = self.verify_images(expect=0)
            self.assertIn(f"Image 'web': its tag now points to {moved}, not to {web} as deployed", r.stderr)
            self.assertIn(web, self.image_lines(r)["web"])

    def test_verify_images_key_no_longer_trusted(self):
        """images.keys changed after the deployment: the deployed image, signed by a key no
        longer listed, is refused; a threshold the remaining signatures no longer reach too."""
        web = self.image()
        sign_classic(self.reg, "app/web", web, self.key)
        rev = self.w.commit(images={"web": self.ref()})
        self.configure()
        self.pull(0)
        self.verify_images(expect=0)

        self.configure(keys=[str(self.other_pub)])
        _, ev = self.assert_verify_refused(rev, "web", "no valid signature by a trusted key")
        self.assertIn("the signature does not verify with any of the 1 trusted keys", ev["ERROR"])
        self.configure(keys=[str(self.pub), str(self.other_pub)], threshold=2)
        self.assert_verify_refused(rev, "web", "signed by 1 trusted key(s), 2 required")
        self.configure()
        self.verify_images(expect=0)

    def test_verify_images_rev_of_another_revision(self):
        """verify-images --rev REV verifies REV's images, not the deployed revision's: a later
        commit (fetched, refused by pull) whose image is unsigned is refused while the deployed
        one still verifies; once that later one is deployed, an older revision whose image
        lost its signature is refused by --rev while the deployed one verifies."""
        old = self.image("app/old", "1.0")
        sign_classic(self.reg, "app/old", old, self.key)
        first = self.w.commit(images={"old": self.ref("app/old")})
        self.configure()
        self.pull(0)
        web = self.image()
        second = self.w.commit(images={"web": self.ref()})
        self.pull(3)  # unsigned: refused, but fetched into the mirror

        r, ev = self.assert_verify_refused(second, "web", "no Cosign signature found", "--rev", second)
        self.assertIn(web, ev["ERROR"])
        self.assertEqual(list(self.image_lines(r)), ["web"])
        j = self.w.agent("verify-images", "--json", "--rev", second)
        self.assertEqual(j.returncode, 3, j.stderr[-3000:])
        j = json.loads(j.stdout)
        self.assertEqual((j["revision"], j["verified"], [i["name"] for i in j["images"]]), (second, False, ["web"]))
        for args in ((), ("--rev", first)):
            r = self.verify_images(*args, expect=0)
            self.assertEqual(list(self.image_lines(r)), ["old"])
            self.assertIn(f"All 1 image(s) of revision {first} are signed by the trusted keys.", r.stderr)

        sign_classic(self.reg, "app/web", web, self.key)
        self.pull(0)
        self.assertEqual(json.loads(self.w.agent("status", "--json").stdout)["revision"], second)
        client = self.reg.client()
        client.delete_manifest("app/old", client.head_manifest("app/old", signature_tag(old))["digest"])
        r, ev = self.assert_verify_refused(first, "old", "no Cosign signature found", "--rev", first)
        self.assertIn(old, ev["ERROR"])
        r = self.verify_images(expect=0)
        self.assertEqual(list(self.image_lines(r)), ["web"])
        self.assertIn(f"All 1 image(s) of revision {second} are signed by the trusted keys.", r.stderr)

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
        """Each way of tampering with a classic signature is refused for its own reason, said
        in the refused event and on stderr, not for another one (e.g. as unsigned)."""
        bad_sig = "the signature does not verify with any of the 1 trusted keys"
        reasons = {
            "payload": lambda s, repo: bad_sig,
            "digest": lambda s, repo: "the payload names digest %s, not the image's" % (
                json.loads(s.payload)["critical"]["image"]["docker-manifest-digest"]),
            "media-type": lambda s, repo: "the layer's media type is 'application/octet-stream', "
                                          "not a simple-signing signature",
            "signature": lambda s, repo: bad_sig,
            "blob-mismatch": lambda s, repo: (f"blob {s.layer_digest} in {self.reg.host}/{repo}: the content "
                                              f"hashes to {sha256_digest(s.payload)}"),
        }
        for tamper, reason in reasons.items():
            with self.subTest(tamper=tamper):
                repo = f"app/{tamper}"
                web = self.image(repo)
                signed = sign_classic(self.reg, repo, web, self.key, tamper=tamper)
                w = self.w
                rev = w.commit(images={"web": self.ref(repo)})
                self.configure()
                before = self.state()
                w.reset_call_logs()
                r = self.pull(3)
                why = f"no valid signature by a trusted key ({reason(signed, repo)}"
                ev = self.refusal(r, "pull")
                self.assertEqual(ev["REVISION"], rev)
                self.assertIn(f"image 'web' ({self.ref(repo)}, {web}): {why}", ev["ERROR"])
                self.assertIn(why, r.stderr)
                self.assertEqual(self.state(), before)
                self.assertEqual(w.system_builds(), [])

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

    def test_credentials_only_to_the_registrys_token_service(self):
        """A registry whose Bearer realm is on another host (127.0.0.2, which logs what it
        receives): the token request goes there without the registry's credentials, unless that
        host is in images.token-hosts; a realm on plain http for a registry on https never gets
        them either (realm_refuses_credentials)."""
        import base64
        elsewhere = BadRegistry(self.w.tmp, "token-503", bind="127.0.0.2")
        self.addCleanup(elsewhere.stop)
        reg = BadRegistry(self.w.tmp, "token-503", realm=f"{elsewhere.url}/token")
        self.addCleanup(reg.stop)
        secret = base64.b64encode(b"fleet:s3cret-token").decode()
        auth = self.w.tmp / "auth.json"
        auth.write_text(json.dumps({"auths": {reg.host: {"auth": secret}}}))
        self.w.commit(images={"web": f"{reg.host}/app/web:1.0"})

        self.configure(reg, **{"registry-auth-file": str(auth)})
        r = self.pull(6)
        self.assertIn("Not sending the credentials for", r.stderr)
        got = [e for e in elsewhere.requests() if e["path"].startswith("/token")]
        self.assertTrue(got, "the token service was never asked")
        self.assertEqual([e["authorization"] for e in got if e["authorization"]], [],
                         "the registry's credentials went to another host")

        # Listed in images.token-hosts: that host may have them.
        self.configure(reg, **{"registry-auth-file": str(auth), "token-hosts": ["127.0.0.2"]})
        r = self.pull(6)
        self.assertNotIn("Not sending the credentials for", r.stderr)
        self.assertIn(f"Basic {secret}", [e["authorization"] for e in elsewhere.requests()])

    def test_control_characters_from_a_registry_are_escaped(self):
        """A registry whose answer carries terminal escape sequences (here in its Bearer realm,
        which the error names): they reach neither the log nor `status` raw (issue 17, item 5)."""
        evil = "\x1b]0;pwned\x07\x1b[2J\x1b[31m\xc2\x9b"
        tokens = BadRegistry(self.w.tmp, "token-503")
        self.addCleanup(tokens.stop)
        reg = BadRegistry(self.w.tmp, "token-503", realm=f"{tokens.url}/token?{evil}")
        self.addCleanup(reg.stop)
        self.w.commit(images={"web": f"{reg.host}/app/web:1.0"})
        self.configure(reg)
        r = self.w.agent("pull")
        self.assertEqual(r.returncode, 6, r.stderr[-3000:])
        self.assertIn("token?\\x1b]0;pwned\\x07\\x1b[2J\\x1b[31m\\xc2\\x9b", r.stderr)
        out = self.w.agent("status").stdout
        for text in (r.stderr, out):
            self.assertNotIn("\x1b", text)
            self.assertNotIn("\x07", text)
            self.assertNotIn("\x9b", text)
        self.assertIn("\\x1b[2J", out, "status does not show the last run's error")

    def test_https_registry_cannot_redirect_to_http(self):
        """A registry on https that redirects to plain http is refused (exit 3), before any
        request goes out in the clear."""
        bad = BadRegistry(self.w.tmp, "redirect-http", tls=True)
        self.addCleanup(bad.stop)
        self.w.commit(images={"web": f"{bad.host}/app/web:1.0"})
        self.w.write_config(images={"keys": [str(self.pub)], "ca-file": str(bad.ca)})
        r = self.pull(3)
        self.assertIn("redirected to a protocol other than https", r.stderr)

    # -- misbehaving registries -------------------------------------------------------------

    # mode of tests/servers/registry-bad.py: (exit code, what stderr must say besides the
    # registry's host:port, at most how many seconds the pull may take). connect-timeout and
    # stall-timeout are 2 s, request-timeout 5 s (a margin that a loaded machine keeps: libcurl
    # sees a stall once a second).
    BAD_CASES = {
        "500": (6, ["HTTP 500"], 10),
        "stall": (6, ["timed out", "images.stall-timeout"], 10),
        "huge-manifest": (3, ["larger than 4194304 bytes"], 10),
        "redirect-loop": (3, ["more than 5 redirects"], 10),
        "garbage-json": (3, ["the manifest is not a JSON object"], 10),
        "wrong-content-length": (6, ["closed the connection before the end of the answer"], 10),
        "wrong-shape": (3, ["the manifest is not a JSON object"], 10),
        # One byte every 0.5 s: never stalled, ended by images.request-timeout.
        "drip": (6, ["/manifests/1.0", "timed out", "images.request-timeout"], 10),
        "close-mid-stream": (6, ["/manifests/1.0", "closed the connection before the end of the answer"], 10),
        # Below a well-behaved image manifest: its signature's blob.
        "drip-blob": (6, ["/blobs/sha256:", "timed out", "images.request-timeout"], 10),
        "close-mid-stream-blob": (6, ["/blobs/sha256:", "closed the connection before the end of the answer"], 10),
        # Chunked, no Content-Length, without end: cut at the cap of a simple-signing payload.
        "huge-blob": (3, ["/blobs/sha256:", "larger than 1048576 bytes"], 10),
        "wrong-shape-sig": (3, ["no valid signature by a trusted key", ".sig is not an image manifest with layers"], 10),
        # An outage of the token service is the environment's: exit 6, never a refusal (3).
        "token-503": (6, ["the token service http://127.0.0.1:", "answered HTTP 503"], 10),
    }

    def test_bad_registries(self):
        """Each misbehaving registry ends the pull within the configured timeouts, with an
        error that names the registry and the cause, builds nothing and leaves the state file
        as it was."""
        self.deploy_base()
        before = self.state()
        self.assertIsNotNone(before)
        took = {}
        for mode, (expect, needles, bound) in self.BAD_CASES.items():
            with self.subTest(mode=mode):
                bad = BadRegistry(self.w.tmp, mode)
                self.addCleanup(bad.stop)
                self.w.commit(images={"web": f"{bad.host}/app/web:1.0"})
                self.configure(bad, **{"connect-timeout": 2, "stall-timeout": 2, "request-timeout": 5})
                self.w.reset_call_logs()
                start = time.monotonic()
                r = self.pull(expect)
                took[mode] = time.monotonic() - start
                self.assertLess(took[mode], bound)
                self.assertIn(bad.host, r.stderr)
                for n in needles:
                    self.assertIn(n, r.stderr)
                self.assertEqual(self.state(), before)
                self.assertEqual(self.w.system_builds(), [], "nothing may be built")
                bad.stop()
        print("\nbad registries, seconds per pull: " + ", ".join(f"{m} {t:.1f}" for m, t in took.items()),
              file=sys.stderr)

    def test_drip_without_request_timeout_outlasts_stall_timeout(self):
        """Control for the drip case: with the default request-timeout (300 s), a registry
        that drips is not taken for stalled, so the pull is still waiting after 3 stall
        timeouts (what ends drip above is images.request-timeout)."""
        bad = BadRegistry(self.w.tmp, "drip")
        self.addCleanup(bad.stop)
        self.w.commit(images={"web": f"{bad.host}/app/web:1.0"})
        self.configure(bad, **{"connect-timeout": 2, "stall-timeout": 2})
        with self.assertRaises(subprocess.TimeoutExpired):
            self.w.agent("pull", timeout=6)
        self.assertEqual(self.w.system_builds(), [])

    def test_bundle_create_drip_layer(self):
        """bundle create fetches layers, which may be large: a layer gets request-timeout for
        each started 64 MiB of the size its descriptor gives. A registry that drips a layer of
        64 MiB and one byte is given up on after twice request-timeout, and no bundle is
        written."""
        key = self.w.tmp / "bundle.pem"
        subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                        "-out", str(key)], check=True, capture_output=True)
        bad = BadRegistry(self.w.tmp, "drip-blob")
        self.addCleanup(bad.stop)
        rev = self.w.commit(images={"web": f"{bad.host}/app/web:1.0"})
        self.configure(bad, **{"connect-timeout": 2, "stall-timeout": 2, "request-timeout": 2})
        out = self.w.tmp / "b.tar"
        start = time.monotonic()
        r = self.w.agent("bundle", "create", "-o", str(out), "--rev", rev, "--repo", str(self.w.repo.work),
                         "--key", str(key), "--no-closure")
        took = time.monotonic() - start
        # A registry that could not be asked: transient, as pull says it.
        self.assertEqual(r.returncode, 6, r.stderr[-3000:])
        self.assertIn(f"{bad.host}/v2/app/web/blobs/sha256:", r.stderr)
        self.assertIn("timed out: the answer did not end within 4 s "
                      "(images.request-timeout, 2 s for each 64 MiB of the blob)", r.stderr)
        self.assertGreaterEqual(took, 4)
        self.assertLess(took, 12)
        self.assertFalse(out.exists())
        print(f"\nbundle create, layer dripped: {took:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    unittest.main()
