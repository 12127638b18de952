#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""`verify-blob` through the real binary: one test per case of the Sigstore conformance vectors
(../shared/vectors/sigstore-conformance/cases, run as its README says: 0 for a good bundle, 3 for
a `_fail` one, with the reason), and the usage errors (2). Offline: nothing here needs a network,
nix or a server."""

import json
import os
import pathlib
import re
import shutil
import subprocess
import tempfile
import unittest

REPO = pathlib.Path(__file__).resolve().parents[2]
AGENT = os.environ.get("ATTICD_AGENT_BIN", str(REPO / "build" / "atticd-agent"))
VECTORS = REPO.parent / "shared" / "vectors" / "sigstore-conformance"
CASES = VECTORS / "cases"

DEFAULT_IDENTITY = ("https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/"
                    ".github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main")
DEFAULT_ISSUER = "https://token.actions.githubusercontent.com"

# What the reason of a refusal must mention (a regular expression, case-insensitive): loose, so
# that a message may be reworded, but a case refused for the wrong reason fails. A case not
# listed needs only a reason.
REASONS = {
    "bundle-empty-certificate-chain_fail": r"chain is empty",
    "bundle-invalid-base64-signature_fail": r"base64",
    "bundle-negative-log-index_fail": r"negative",
    "bundle-with-root-cert_fail": r"root",
    "checkpoint-bad-keyhint_fail": r"checkpoint",
    "dsse-invalid-sig_fail": r"signature",
    "dsse-mismatch-sig_fail": r"signature",
    "inclusion-proof-corrupted-hash_fail": r"inclusion proof",
    "integrated-time-in-future_fail": r"signing time|not.*valid|expired",
    "intoto-log-entry-mismatch_fail": r"signature|payload",
    "intoto-set-outside-signing-cert-validity_fail": r"signing time|expired|not yet valid",
    "invalid-ct-key_fail": r"signed certificate timestamp|SCT",
    "managed-key-no-key_fail": r"key",
    "message-digest-mismatch_fail": r"messageDigest",
    "rekor2-checkpoint-missing-log-signature_fail": r"checkpoint",
    "rekor2-checkpoint-missing-root-hash_fail": r"checkpoint",
    "rekor2-dsse-invalid-sig_fail": r"signature",
    "rekor2-dsse-mismatch-sig_fail": r"signature",
    "rekor2-no-inclusion-proof_fail": r"inclusion proof",
    "rekor2-timestamp-outside-trust-root-tsa-validity_fail": r"timestamp",
    "rekor2-timestamp-payload-mismatch_fail": r"timestamp",
    "rekor2-timestamp-untrusted-tsa-without-embedded-cert_fail": r"timestamp",
    "signature-mismatch_fail": r"signature",
    "wrong-hashedrekord-artifact_fail": r"digest|artifact",
    "wrong-hashedrekord-entry_fail": r"tlogEntries|signature|digest",
}


def run(*args, timeout=60):
    return subprocess.run([AGENT, *map(str, args)], capture_output=True, text=True, timeout=timeout)


def case_arguments(case):
    """The command line for one case, from its files as the vectors' README gives them."""
    args = ["verify-blob", "--bundle", case / "bundle.sigstore.json"]
    root = case / "trusted_root.json"
    args += ["--trusted-root", root if root.exists() else VECTORS / "production_trusted_root.json"]
    if (case / "key.pub").exists():
        args += ["--key", case / "key.pub"]
    else:
        identity = case / "identity"
        issuer = case / "issuer"
        args += ["--certificate-identity", identity.read_text().strip() if identity.exists() else DEFAULT_IDENTITY,
                 "--certificate-oidc-issuer", issuer.read_text().strip() if issuer.exists() else DEFAULT_ISSUER]
    artifact = case / "artifact"
    args.append(artifact if artifact.exists() else VECTORS / "a.txt")
    return args


class ConformanceTest(unittest.TestCase):
    """One method per case, made below from the directory."""

    def check_case(self, case):
        r = run(*case_arguments(case))
        if case.name.endswith("_fail"):
            self.assertEqual(r.returncode, 3, f"must be refused:\nstdout: {r.stdout}\nstderr: {r.stderr}")
            self.assertIn("Refused", r.stderr)
            reason = r.stderr.split("Refused", 1)[1]
            self.assertRegex(reason, r"': \S", "a refusal says why")
            if case.name in REASONS:
                self.assertRegex(reason, re.compile(REASONS[case.name], re.I))
            self.assertEqual(r.stdout, "")
        else:
            self.assertEqual(r.returncode, 0, f"must verify:\nstdout: {r.stdout}\nstderr: {r.stderr}")
            self.assertRegex(r.stdout, r"^Verified '.*': signed by \S+")

    def test_vectors_are_there(self):
        self.assertTrue(CASES.is_dir(), f"{CASES}: the conformance vectors are missing")
        self.assertGreater(len(list(CASES.iterdir())), 0)


def _make(case):
    def test(self):
        self.check_case(case)
    test.__doc__ = f"conformance case {case.name}"
    return test


if CASES.is_dir():
    for _case in sorted(CASES.iterdir()):
        if _case.is_dir():
            setattr(ConformanceTest, "test_" + re.sub(r"\W", "_", _case.name), _make(_case))


class VerifyBlobTest(unittest.TestCase):
    """The command line: usage errors (2), options, the output."""

    GOOD = CASES / "happy-path-v0.3"
    KEYED = CASES / "managed-key-and-trusted-root"

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="atticd-verify-blob-")
        self.dir = pathlib.Path(self.tmp.name)

    def tearDown(self):
        self.tmp.cleanup()

    def good(self, *extra, artifact=None):
        return ["verify-blob", "--bundle", self.GOOD / "bundle.sigstore.json",
                "--trusted-root", VECTORS / "production_trusted_root.json",
                "--certificate-identity", DEFAULT_IDENTITY, "--certificate-oidc-issuer", DEFAULT_ISSUER,
                *extra, artifact or VECTORS / "a.txt"]

    def test_usage_errors(self):
        bundle = self.GOOD / "bundle.sigstore.json"
        root = VECTORS / "production_trusted_root.json"
        art = VECTORS / "a.txt"
        ident = ["--certificate-identity", DEFAULT_IDENTITY, "--certificate-oidc-issuer", DEFAULT_ISSUER]
        for args, message in (
                (["verify-blob"], "--bundle"),
                (["verify-blob", "--bundle", bundle, *ident], "missing"),
                (["verify-blob", *ident, art], "--bundle"),
                (["verify-blob", "--bundle", bundle, art], "--certificate-identity"),
                (["verify-blob", "--bundle", bundle, "--certificate-identity", DEFAULT_IDENTITY, art],
                 "--certificate-oidc-issuer"),
                (["verify-blob", "--bundle", bundle, *ident, "--key", self.KEYED / "key.pub", art], "--key"),
                (["verify-blob", "--bundle", bundle, "--bundle", bundle, *ident, art], "twice"),
                (["verify-blob", "--bundle", bundle, *ident, art, art], "unexpected argument"),
                (["verify-blob", "--bundle", bundle, *ident, "--frob", art], "unknown option"),
                (["verify-blob", "--bundle", bundle, *ident, "--trusted-root"], "missing after"),
                (["verify-blob", "--bundle", "", *ident, art], "empty"),
                (["verify-blob", "--bundle", self.dir / "none.json", "--trusted-root", root, *ident, art],
                 "none.json"),
                (["verify-blob", "--bundle", bundle, "--trusted-root", self.dir / "none.json", *ident, art],
                 "none.json"),
                (["verify-blob", "--bundle", bundle, "--trusted-root", root, *ident, self.dir / "none.txt"],
                 "none.txt"),
                (["verify-blob", "--bundle", bundle, "--trusted-root", root, *ident, self.dir], "artifact"),
                (["verify-blob", "--bundle", bundle, "--trusted-root", root, "--key", self.dir / "none.pub", art],
                 "none.pub")):
            with self.subTest(args=[str(a) for a in args]):
                r = run(*args)
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertIn(message, r.stderr)
                self.assertEqual(r.stdout, "")

    def test_default_trusted_root(self):
        """Without --trusted-root: /etc/atticd-agent/trusted_root.json, which must then be there."""
        args = [a for a in self.good() if str(a) not in ("--trusted-root", str(VECTORS / "production_trusted_root.json"))]
        r = run(*args)
        if os.path.exists("/etc/atticd-agent/trusted_root.json"):
            self.assertIn(r.returncode, (0, 3), r.stderr)
        else:
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertIn("--trusted-root", r.stderr)
            self.assertIn("/etc/atticd-agent/trusted_root.json", r.stderr)

    def test_option_forms(self):
        """--option=value as well as --option value; global options after the command."""
        r = run("verify-blob", f"--bundle={self.GOOD / 'bundle.sigstore.json'}",
                f"--trusted-root={VECTORS / 'production_trusted_root.json'}",
                f"--certificate-identity={DEFAULT_IDENTITY}", f"--certificate-oidc-issuer={DEFAULT_ISSUER}",
                VECTORS / "a.txt", "-q")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("Verified", r.stdout)

    def test_regexp_identity(self):
        """--certificate-identity-regexp / --certificate-oidc-issuer-regexp: the whole string must
        match; the verdict names the certificate's identity; a pattern that matches only a part,
        or a bad expression (exit 2), does not verify."""
        def blob(*ident):
            return run("verify-blob", "--bundle", self.GOOD / "bundle.sigstore.json",
                       "--trusted-root", VECTORS / "production_trusted_root.json", *ident, "--json",
                       VECTORS / "a.txt")
        prefix = "https://github[.]com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.*"
        r = blob("--certificate-identity-regexp", prefix, "--certificate-oidc-issuer-regexp",
                 "https://token[.]actions[.]githubusercontent[.]com")
        self.assertEqual(r.returncode, 0, r.stderr)
        j = json.loads(r.stdout)
        self.assertEqual(j["identity_regexp"], prefix)
        self.assertEqual(j["signer"], f"{DEFAULT_IDENTITY} ({DEFAULT_ISSUER})")
        for ident, why in ((["--certificate-identity-regexp", "extremely-dangerous", "--certificate-oidc-issuer",
                             DEFAULT_ISSUER], "not matching the expected regular expression 'extremely-dangerous'"),
                           (["--certificate-identity-regexp", prefix, "--certificate-oidc-issuer-regexp",
                             "https://token"], "OIDC issuer is 'https://token.actions.githubusercontent.com', not "
                            "matching the expected regular expression 'https://token'"),
                           (["--certificate-identity-regexp", "https://gitlab[.]com/.*", "--certificate-oidc-issuer",
                             DEFAULT_ISSUER], "not matching")):
            with self.subTest(ident=ident):
                r = blob(*ident)
                self.assertEqual(r.returncode, 3, r.stderr)
                self.assertIn(why, json.loads(r.stdout)["reason"])
        for ident, why in ((["--certificate-identity-regexp", "a(b", "--certificate-oidc-issuer", DEFAULT_ISSUER],
                            "--certificate-identity-regexp: not a POSIX extended regular expression"),
                           (["--certificate-identity", DEFAULT_IDENTITY, "--certificate-identity-regexp", ".*",
                             "--certificate-oidc-issuer", DEFAULT_ISSUER], "excludes")):
            with self.subTest(ident=ident):
                r = blob(*ident)
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertIn(why, r.stderr)

    def test_json(self):
        r = run(*self.good("--json"))
        self.assertEqual(r.returncode, 0, r.stderr)
        j = json.loads(r.stdout)
        self.assertEqual(j["verified"], True)
        self.assertEqual(j["identity"], DEFAULT_IDENTITY)
        self.assertEqual(j["issuer"], DEFAULT_ISSUER)
        self.assertRegex(j["signed_at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        other = self.dir / "other.txt"
        other.write_text("not the artifact\n")
        r = run(*self.good("--json", artifact=other))
        self.assertEqual(r.returncode, 3, r.stderr)
        j = json.loads(r.stdout)
        self.assertEqual(j["verified"], False)
        self.assertTrue(j["reason"])

    def test_other_identity_and_issuer_refused(self):
        for flag, value in (("--certificate-identity", "https://github.com/someone/else/.github/workflows/x.yml@refs/heads/main"),
                            ("--certificate-oidc-issuer", "https://accounts.google.com"),
                            ("--certificate-identity", DEFAULT_IDENTITY + "x"),
                            ("--certificate-identity", DEFAULT_IDENTITY[:-1])):
            with self.subTest(flag=flag, value=value):
                args = self.good()
                args[args.index(flag) + 1] = value
                r = run(*args)
                self.assertEqual(r.returncode, 3, r.stderr)
                self.assertIn("not the expected", r.stderr)

    def test_keyless_bundle_with_a_key_refused(self):
        args = ["verify-blob", "--bundle", self.GOOD / "bundle.sigstore.json",
                "--trusted-root", VECTORS / "production_trusted_root.json", "--key", self.KEYED / "key.pub",
                VECTORS / "a.txt"]
        r = run(*args)
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertIn("keyless", r.stderr)

    def test_tampered_bundle_refused(self):
        """Bundles changed by hand: a bit of the signature, the media type, truncation, junk."""
        bundle = json.loads((self.GOOD / "bundle.sigstore.json").read_text())
        changed = self.dir / "bundle.json"
        for name, text, message in (
                ("truncated", (self.GOOD / "bundle.sigstore.json").read_text()[:500], "not valid JSON"),
                ("media type", json.dumps({**bundle, "mediaType": "application/vnd.dev.sigstore.bundle+json;version=9"}),
                 "mediaType"),
                ("unknown key", json.dumps({**bundle, "extra": 1}), "unknown key"),
                ("not JSON", "\x00\x01", "JSON")):
            with self.subTest(name=name):
                changed.write_text(text)
                args = self.good()
                args[args.index("--bundle") + 1] = changed
                r = run(*args)
                self.assertEqual(r.returncode, 3, r.stderr)
                self.assertIn(message, r.stderr)

    def test_tampered_log_proofs_refused(self):
        """The transparency-log proofs of a good bundle changed by one bit each: its signed entry
        timestamp, an inclusion proof hash, the proof's root hash, the checkpoint's signature;
        each refused, naming the proof."""
        import base64
        text = (self.GOOD / "bundle.sigstore.json").read_text()

        def flip(b64, at=10):
            raw = bytearray(base64.b64decode(b64))
            raw[at] ^= 0x01
            return base64.b64encode(bytes(raw)).decode()

        def entry(b):
            return b["verificationMaterial"]["tlogEntries"][0]

        def set_(b):
            e = entry(b)["inclusionPromise"]
            e["signedEntryTimestamp"] = flip(e["signedEntryTimestamp"], 20)

        def hash_(b):
            p = entry(b)["inclusionProof"]
            p["hashes"][0] = flip(p["hashes"][0])

        def root(b):
            p = entry(b)["inclusionProof"]
            p["rootHash"] = flip(p["rootHash"])

        def checkpoint(b):
            p = entry(b)["inclusionProof"]
            head, sig = p["checkpoint"]["envelope"].rsplit(" ", 1)
            p["checkpoint"]["envelope"] = head + " " + flip(sig.strip(), 12) + "\n"

        changed = self.dir / "bundle.json"
        for name, edit, message in (("signed entry timestamp", set_, "signed entry timestamp"),
                                    ("inclusion proof hash", hash_, "inclusion proof"),
                                    ("root hash", root, "inclusion proof"),
                                    ("checkpoint signature", checkpoint, "checkpoint")):
            with self.subTest(name=name):
                b = json.loads(text)
                edit(b)
                changed.write_text(json.dumps(b))
                args = self.good()
                args[args.index("--bundle") + 1] = changed
                r = run(*args)
                self.assertEqual(r.returncode, 3, r.stderr)
                self.assertIn(message, r.stderr)

    def test_changed_trusted_root_refused(self):
        """A trusted root without the log or the CA refuses; one that does not parse refuses too."""
        root = json.loads((VECTORS / "production_trusted_root.json").read_text())
        changed = self.dir / "root.json"
        for name, value, message in (
                ("no tlogs", {**root, "tlogs": []}, "log that the trusted root does not list"),
                ("no CAs", {**root, "certificateAuthorities": []}, "Fulcio CA"),
                ("no CT logs", {**root, "ctlogs": []}, "signed certificate timestamp"),
                ("media type", {**root, "mediaType": "application/json"}, "mediaType")):
            with self.subTest(name=name):
                changed.write_text(json.dumps(value))
                args = self.good()
                args[args.index("--trusted-root") + 1] = changed
                r = run(*args)
                self.assertEqual(r.returncode, 3, r.stderr)
                self.assertIn(message, r.stderr)

    def test_key_that_is_no_key_refused(self):
        """A --key file that holds no usable public key verifies nothing: refused (3), like the
        conformance case managed-key-wrong-key_fail (a key whose base64 was damaged)."""
        pem = (self.KEYED / "key.pub").read_text().splitlines()
        for name, text, message in (
                ("not PEM", "hello\n", "not a PEM public key"),
                ("damaged", "\n".join(pem[:2] + [pem[2][:-10] + "wrongkey=="] + pem[3:]) + "\n", "does not decode"),
                ("a certificate", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n", "certificate")):
            with self.subTest(name=name):
                key = self.dir / "key.pub"
                key.write_text(text)
                r = run("verify-blob", "--bundle", self.KEYED / "bundle.sigstore.json",
                        "--trusted-root", self.KEYED / "trusted_root.json", "--key", key, VECTORS / "a.txt")
                self.assertEqual(r.returncode, 3, r.stderr)
                self.assertIn(message, r.stderr)

    def test_other_key_refused(self):
        """A valid key, but not the one that signed."""
        key = self.dir / "other.pub"
        subprocess.run(["openssl", "ecparam", "-genkey", "-name", "prime256v1", "-noout", "-out", self.dir / "k"],
                       check=True)
        subprocess.run(["openssl", "ec", "-in", self.dir / "k", "-pubout", "-out", key], check=True,
                       capture_output=True)
        r = run("verify-blob", "--bundle", self.KEYED / "bundle.sigstore.json",
                "--trusted-root", self.KEYED / "trusted_root.json", "--key", key, VECTORS / "a.txt")
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertIn("another key", r.stderr)

    def test_empty_artifact(self):
        empty = self.dir / "empty"
        empty.write_bytes(b"")
        r = run(*self.good(artifact=empty))
        self.assertEqual(r.returncode, 3, r.stderr)

    def test_help_and_man_page(self):
        r = run("--help")
        self.assertEqual(r.returncode, 0)
        for word in ("verify-blob", "--bundle FILE", "--trusted-root FILE", "--certificate-identity ID",
                     "--certificate-oidc-issuer ISSUER", "--key KEY", "--certificate-identity-regexp"):
            self.assertIn(word, r.stdout)
        man = (REPO / "docs" / "atticd-agent.8.scd").read_text()
        for word in ("verify-blob", "--certificate-identity", "--certificate-oidc-issuer", "--trusted-root",
                     "*--certificate-identity*[*-regexp*]", "*--certificate-oidc-issuer*[*-regexp*]"):
            self.assertIn(word, man)


if __name__ == "__main__":
    unittest.main()
