#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Keyless (Sigstore) image signatures made by the tests' own Sigstore instance
(sigstore_instance.py: a Fulcio-like CA, a CT log, a Rekor-like log, and the trusted root that
lists them), attached to images in the test registry as cosign 3 attaches them (a Sigstore
bundle as an OCI referrer and in the fallback index), verified by the real binary through
`pull` and `verify-images` with images.keyless. Each refusal is exit 3, names why, builds
nothing and leaves the state file as it was; next to each, a bundle that differs only in the
broken part is accepted."""

import json
import sys
import time
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from world import World  # noqa: E402
from registry import (SPDX_PREDICATE, Registry, push_bundle, push_classic_attestation,  # noqa: E402
                      push_classic_signature, push_image, spdx_document)
from sigstore_instance import Instance  # noqa: E402
from test_observability import events  # noqa: E402
from test_images import ImagesWorld  # noqa: E402

SUBJECT = "https://git.atticd.test/platform/ci//.gitlab-ci.yml@refs/heads/main"
ISSUER = "https://git.atticd.test"


class KeylessImagesTest(ImagesWorld, unittest.TestCase):
    def setUp(self):
        self.w = World.for_test(self)
        self.w.make_repo()
        self.reg = Registry(self.w.tmp)
        self.addCleanup(self.reg.stop)
        self.sigstore = Instance(directory=self.w.tmp)
        self.root = self.w.tmp / "trusted_root.json"
        self.sigstore.write_trusted_root(self.root)
        self.n = 0

    def configure(self, identities=None, **images):
        conf = {"keyless": {"trusted-root": str(self.root),
                            "identities": identities or [{"subject": SUBJECT, "issuer": ISSUER}]},
                "insecure-registries": [self.reg.host]}
        conf.update(images)
        self.w.write_config(images=conf)

    def signed_image(self, *bundles_args, **kw):
        """A new image, with one keyless bundle per dict of sign_image() arguments (or one,
        of kw). Returns its reference by digest."""
        self.n += 1
        repo = f"app/svc{self.n}"
        digest = push_image(self.reg, repo, "1.0", seed=f"keyless-{self.n}-{time.time()}")
        for args in bundles_args or (kw,):
            args = dict(args)
            subject, issuer = args.pop("subject", SUBJECT), args.pop("issuer", ISSUER)
            push_bundle(self.reg, repo, digest, self.sigstore.sign_image(digest, subject, issuer, **args))
        return f"{self.reg.host}/{repo}@{digest}", digest


    def assert_refused(self, ref, *needles):
        """A revision with the image ref: pull refuses it (exit 3, the refused event with
        REASON=image-signature), nothing built, the state file as it was."""
        before = self.state()
        self.w.commit(images={"svc": ref})
        self.w.reset_call_logs()
        r = self.pull(3)
        for n in needles:
            self.assertIn(n, r.stderr)
        refused = [e for e in events(r.stderr) if e["event"] == "refused"]
        self.assertEqual([e["REASON"] for e in refused], ["image-signature"], r.stderr[-3000:])
        self.assertEqual(self.state(), before)
        self.assertEqual(self.w.system_builds(), [], "nothing may be built")
        return r

    # -- accepted ---------------------------------------------------------------------------

    def test_trusted_identity_accepted(self):
        """A bundle by the configured identity: deployed, the signer recorded as the
        certificate names it; verify-images passes. An identity given as a regular expression
        over the whole SAN records the exact SAN that signed. The older issuer extension
        (1.3.6.1.4.1.57264.1.1) and an email SAN are accepted too."""
        self.deploy_base()
        ref, digest = self.signed_image()
        self.w.commit(images={"svc": ref})
        r = self.pull(0)
        self.assertIn("signed by 1 trusted signer(s)", r.stderr)
        recorded = self.history_images()[0]
        self.assertEqual(recorded["digest"], digest)
        self.assertEqual(recorded["signers"], [f"{SUBJECT} ({ISSUER})"])
        r = self.w.agent("verify-images")
        self.assertEqual(r.returncode, 0, r.stderr[-3000:])

        pattern = "https://git[.]atticd[.]test/platform/[a-z]+//[.]gitlab-ci[.]yml@refs/heads/(main|release-[0-9]+)"
        self.configure([{"subject-regexp": pattern, "issuer": ISSUER}])
        ref, digest = self.signed_image(subject=SUBJECT.replace("main", "release-7"))
        self.w.commit(images={"svc": ref})
        self.pull(0)
        self.assertEqual(self.history_images()[0]["signers"],
                         [f"{SUBJECT.replace('main', 'release-7')} ({ISSUER})"])

        self.configure([{"subject": "release@atticd.test", "issuer-regexp": "https://[a-z]+[.]atticd[.]test"}])
        ref, digest = self.signed_image(subject="release@atticd.test", issuer_v1=True)
        self.w.commit(images={"svc": ref})
        self.pull(0)
        self.assertEqual(self.history_images()[0]["signers"], [f"release@atticd.test ({ISSUER})"])

    # -- refused ----------------------------------------------------------------------------

    def test_other_identity_or_issuer_refused(self):
        """Signed by the instance for another SAN, another issuer, or a SAN that the regular
        expression matches only in part: refused, saying whose it is."""
        self.deploy_base()
        ref, _ = self.signed_image(subject="https://git.atticd.test/someone/else//.gitlab-ci.yml@refs/heads/main")
        self.assert_refused(ref, "identity is 'https://git.atticd.test/someone/else//.gitlab-ci.yml@refs/heads/main', "
                            f"not the expected '{SUBJECT}'")
        ref, _ = self.signed_image(issuer="https://other.atticd.test")
        self.assert_refused(ref, f"OIDC issuer is 'https://other.atticd.test', not the expected '{ISSUER}'")
        self.configure([{"subject-regexp": "https://git[.]atticd[.]test/platform/.*", "issuer": ISSUER}])
        ref, _ = self.signed_image(subject="https://evil.example/?https://git.atticd.test/platform/x")
        self.assert_refused(ref, "not matching the expected regular expression 'https://git[.]atticd[.]test/platform/.*'")

    def test_broken_proofs_refused(self):
        """One part broken at a time, each refused with the step that failed: the certificate
        expired before the proven signing time, the inclusion proof tampered, a checkpoint of
        another tree or by another key, no timestamp at all (no SET, no RFC 3161 timestamp), a
        SET that does not verify, no SCT or one by a CT log not in the trusted root, a
        certificate of a CA not in the trusted root."""
        self.deploy_base()
        now = time.time()
        other = Instance("elsewhere.test", directory=self.w.tmp)
        for why, args, needle in (
                ("expired", {"signed_at": now - 3600, "cert_from": now - 7200},
                 "does not chain to a trusted Fulcio CA at the signing time"),
                ("not yet valid", {"signed_at": now - 7200, "cert_from": now - 3600},
                 "certificate is not yet valid"),
                ("tampered inclusion proof", {"proof": "tampered"}, "the inclusion proof does not verify"),
                ("checkpoint of another tree", {"proof": "checkpoint"}, "the checkpoint does not verify"),
                ("checkpoint by another key", {"proof": "checkpoint-key"}, "the checkpoint does not verify"),
                ("no timestamp", {"set_": None}, "has no inclusion promise and the bundle no timestamp"),
                ("tampered SET", {"set_": "tampered"}, "the signed entry timestamp"),
                ("no SCT", {"sct": None}, "embeds no SCT list"),
                ("SCT of another log", {"sct": "other-log"}, "signed certificate timestamp does not verify"),
                ("SCT tampered", {"sct": "tampered"}, "signed certificate timestamp does not verify"),
                ("untrusted CA", {"ca": other.cas[0]}, "does not chain to a trusted Fulcio CA"),
                ("Rekor v2 without a timestamp", {"rekor": "v2"},
                 "has no inclusion promise and the bundle no timestamp"),
                ("Rekor v2, a timestamp of another TSA", {"rekor": "v2", "timestamp": "valid", "tsa": other.tsas[0]},
                 "no timestamp verifies with a trusted timestamp authority"),
                ("Rekor v2, a timestamp over other data", {"rekor": "v2", "timestamp": "other-data"},
                 "it is over other data"),
                ("Rekor v2, the certificate expired at the timestamp",
                 {"rekor": "v2", "timestamp": "valid", "signed_at": now - 3600, "cert_from": now - 7200},
                 "does not chain to a trusted Fulcio CA at the signing time"),
                ("Rekor v2, tampered inclusion proof", {"rekor": "v2", "timestamp": "valid", "proof": "tampered"},
                 "the inclusion proof does not verify")):
            with self.subTest(why):
                ref, _ = self.signed_image(**args)
                self.assert_refused(ref, needle)
        # The same instance's good bundles are still accepted after all of that: Rekor v1, and
        # Rekor v2 with an RFC 3161 timestamp (cosign 3 with a Rekor v2 signing config).
        for args in ({}, {"rekor": "v2", "timestamp": "valid"}):
            ref, _ = self.signed_image(**args)
            self.w.commit(images={"svc": ref})
            self.pull(0)

    def test_rotated_ca(self):
        """Trust-root rotation: a CA listed with a window that ended (rotated out) still
        verifies what was signed inside its window, not what was signed after it; the current
        CA verifies both times."""
        now = time.time()
        old = self.sigstore.new_ca("fulcio-2025", now - 300 * 86400, now - 100 * 86400)
        self.sigstore.cas.append(old)
        self.sigstore.write_trusted_root(self.root)
        self.deploy_base()
        ref, _ = self.signed_image(ca=old, signed_at=now - 200 * 86400)
        self.w.commit(images={"svc": ref})
        self.pull(0)
        ref, _ = self.signed_image(ca=old, signed_at=now - 50 * 86400)
        self.assert_refused(ref, "does not chain to a trusted Fulcio CA at the signing time")
        ref, _ = self.signed_image(signed_at=now - 50 * 86400)
        self.w.commit(images={"svc": ref})
        self.pull(0)

    def test_threshold_counts_identities(self):
        """threshold 2 with two identities: a bundle by one is one signer (refused); two
        certificates that match one regular expression are still one; a bundle by each of the
        two identities is two (accepted, both recorded)."""
        ci = {"subject": SUBJECT, "issuer": ISSUER}
        release = {"subject-regexp": "[a-z]+@atticd[.]test", "issuer": ISSUER}
        self.deploy_base()
        self.configure([ci, release], threshold=2)
        ref, _ = self.signed_image()
        self.assert_refused(ref, "signed by 1 trusted signer(s) (keys and identities), 2 required")
        ref, _ = self.signed_image({"subject": "alice@atticd.test"}, {"subject": "bob@atticd.test"})
        self.assert_refused(ref, "signed by 1 trusted signer(s) (keys and identities), 2 required")
        ref, _ = self.signed_image({}, {"subject": "alice@atticd.test"})
        self.w.commit(images={"svc": ref})
        self.pull(0)
        self.assertEqual(self.history_images()[0]["signers"],
                         [f"{SUBJECT} ({ISSUER})", f"alice@atticd.test ({ISSUER})"])

    def test_classic_format(self):
        """cosign's classic format (a .sig layer with the certificate and the Rekor bundle
        annotations) made by the instance: accepted for the identity; another identity, no
        Rekor bundle annotation (no provable time), a SET that does not verify and a certificate
        expired at the proven time refused."""
        self.deploy_base()

        def classic(**kw):
            self.n += 1
            repo = f"app/classic{self.n}"
            digest = push_image(self.reg, repo, "1.0", seed=f"classic-{self.n}-{time.time()}")
            subject = kw.pop("subject", SUBJECT)
            payload, annotations = self.sigstore.classic_signature(digest, f"{self.reg.host}/{repo}", subject,
                                                                   ISSUER, **kw)
            push_classic_signature(self.reg, repo, digest, payload, annotations)
            return f"{self.reg.host}/{repo}@{digest}"

        now = time.time()
        self.assert_refused(classic(subject="someone@atticd.test"), "identity is 'someone@atticd.test'")
        self.assert_refused(classic(set_=None), "its signing time cannot be verified offline")
        self.assert_refused(classic(set_="tampered"), "the signed entry timestamp")
        self.assert_refused(classic(signed_at=now - 3600, lifetime=30),
                            "does not chain to a trusted Fulcio CA at the signing time")
        self.assert_refused(classic(timestamp="malformed"), "dev.sigstore.cosign/rfc3161timestamp")
        self.w.commit(images={"svc": classic()})
        self.pull(0)
        self.assertEqual(self.history_images()[0]["signers"], [f"{SUBJECT} ({ISSUER})"])
        # With an RFC 3161 timestamp too (cosign sign --timestamp-server-url): both times are
        # verified; the certificate must be valid at each.
        self.w.commit(images={"svc": classic(timestamp="valid")})
        self.pull(0)

    def test_sbom_signed_keyless(self):
        """images.require-sbom with keyless signers: an SPDX attestation signed keyless by a
        listed identity satisfies it, as a cosign 3 bundle or as a classic .att layer; one by
        an identity not listed does not (refused, nothing built)."""
        self.deploy_base()
        self.configure(**{"require-sbom": True})

        def image(sbom: str, subject: str = SUBJECT):
            ref, digest = self.signed_image()
            repo = ref.split("/", 1)[1].split("@")[0]
            if sbom == "bundle":
                push_bundle(self.reg, repo, digest, self.sigstore.sign_image(
                    digest, subject, ISSUER, predicate_type=SPDX_PREDICATE,
                    statement=None), SPDX_PREDICATE)
            else:
                envelope, annotations = self.sigstore.classic_attestation(digest, subject, ISSUER, SPDX_PREDICATE,
                                                                          spdx_document(repo))
                push_classic_attestation(self.reg, repo, digest, envelope, annotations)
            return ref

        self.assert_refused(image("classic", "someone@atticd.test"), "no SBOM attestation")
        self.assert_refused(image("bundle", "someone@atticd.test"), "no SBOM attestation")
        for sbom in ("classic", "bundle"):
            with self.subTest(sbom):
                self.w.commit(images={"svc": image(sbom)})
                self.pull(0)
                self.assertTrue(self.history_images()[0]["sbom"])

    def test_verify_images_against_another_trusted_root(self):
        """After the deployment, the trusted root is replaced by another instance's: the
        deployed image's signature no longer verifies (verify-images exit 3, the state file
        as it was); with the right root back, exit 0."""
        self.deploy_base()
        ref, _ = self.signed_image()
        self.w.commit(images={"svc": ref})
        self.pull(0)
        good = self.root.read_bytes()
        Instance("elsewhere.test", directory=self.w.tmp).write_trusted_root(self.root)
        before = self.state()
        r = self.w.agent("verify-images")
        self.assertEqual(r.returncode, 3, r.stderr[-3000:])
        self.assertIn("image 'svc'", r.stderr)
        self.assertEqual(self.state(), before)
        self.root.write_bytes(good)
        r = self.w.agent("verify-images")
        self.assertEqual(r.returncode, 0, r.stderr[-3000:])


if __name__ == "__main__":
    unittest.main()
