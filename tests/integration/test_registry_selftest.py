#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Proves registry.py works on its own, with no agent: docker-registry (anonymous, basic
auth, token auth, TLS), images and indexes, Cosign-format signatures (classic .sig, Sigstore
bundle referrers with the fallback index, SBOM attestations) checked independently with the
openssl CLI and plain urllib, every tamper= option, and each misbehaving-registry mode.

Run from the repository root: python3 tests/integration/test_registry_selftest.py [-v]
Timings are printed to stderr (lines starting with "timing:").
"""

import base64
import gzip
import hashlib
import http.client
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from registry import (BadRegistry, Registry, make_cosign_keypair, push_image, push_index,  # noqa: E402
                      sign_classic, sign_bundle, attest_sbom, libtrust_kid, BAD_MODES)

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
ACCEPT = ", ".join((OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST))
SIMPLESIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
BUNDLE = "application/vnd.dev.sigstore.bundle.v0.3+json"
EMPTY = "application/vnd.oci.empty.v1+json"


def timing(what: str, seconds: float):
    sys.stderr.write(f"\ntiming: {what}: {seconds * 1000:.1f} ms\n")


_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def fetch(url, headers=None, *, method="GET", data=None, cafile=None, timeout=10):
    """(status, headers, body) with plain urllib: independent of registry.OciClient."""
    req = urllib.request.Request(url, headers=dict(headers or {}), method=method, data=data)
    opener = _opener
    if cafile:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(
            context=ssl.create_default_context(cafile=str(cafile))))
    try:
        with opener.open(req, timeout=timeout) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def basic(user, pw):
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()}


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def b64url_decode(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


class Fixture(unittest.TestCase):
    tmp: Path

    @classmethod
    def setUpClass(cls):
        cls.tmp = Path(tempfile.mkdtemp(prefix="registry-selftest-"))
        if os.environ.get("ATTICD_WORLD_KEEP") != "1":
            cls.addClassCleanup(shutil.rmtree, cls.tmp, True)
        t0 = time.monotonic()
        cls.key, cls.pub = make_cosign_keypair(cls.tmp / "keys")
        cls.key2, cls.pub2 = make_cosign_keypair(cls.tmp / "keys")
        timing("two ECDSA P-256 key pairs", time.monotonic() - t0)

    def serve(self, server):
        self.addCleanup(server.stop)
        return server

    def openssl_verify(self, pub, data: bytes, sig: bytes, *, kind="ecdsa-p256") -> bool:
        d = Path(tempfile.mkdtemp(dir=self.tmp))
        (d / "data").write_bytes(data)
        (d / "sig").write_bytes(sig)
        if kind == "ed25519":
            argv = ["pkeyutl", "-verify", "-pubin", "-inkey", pub, "-rawin", "-in", d / "data", "-sigfile", d / "sig"]
        else:
            h = "-sha384" if kind == "ecdsa-p384" else "-sha256"
            argv = ["dgst", h, "-verify", pub, "-signature", d / "sig", d / "data"]
        r = subprocess.run(["openssl", *map(str, argv)], capture_output=True, text=True)
        return r.returncode == 0

    def spki_der(self, pub) -> bytes:
        return subprocess.run(["openssl", "pkey", "-pubin", "-in", str(pub), "-outform", "DER"],
                              check=True, capture_output=True).stdout

    def manifest(self, reg, repo, ref, accept=ACCEPT, headers=None, cafile=None):
        st, h, body = fetch(f"{reg.url}/v2/{repo}/manifests/{ref}", {"Accept": accept, **(headers or {})},
                           cafile=cafile)
        self.assertEqual(st, 200, body[:300])
        return body, h.get("Content-Type"), json.loads(body)

    def blob(self, reg, repo, digest, check=True):
        st, _, body = fetch(f"{reg.url}/v2/{repo}/blobs/{digest}")
        self.assertEqual(st, 200)
        if check:
            self.assertEqual(sha(body), digest, "blob content does not match its digest")
        return body


class SignatureTests(Fixture):
    """One anonymous registry for all signature tests."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.reg = Registry(cls.tmp / "reg")
        cls.addClassCleanup(cls.reg.stop)
        timing("registry start (anonymous)", cls.reg.started_in)

    def test_image_push_and_pull(self):
        t0 = time.monotonic()
        d = push_image(self.reg, "pushpull", "v1", layers=2, size=4096)
        timing("push_image (2 layers)", time.monotonic() - t0)
        body, ctype, m = self.manifest(self.reg, "pushpull", "v1")
        self.assertEqual(ctype, OCI_MANIFEST)
        self.assertEqual(sha(body), d)
        self.assertEqual(len(m["layers"]), 2)
        cfg = json.loads(self.blob(self.reg, "pushpull", m["config"]["digest"]))
        self.assertEqual((cfg["os"], cfg["architecture"]), ("linux", "amd64"))
        for layer, diff_id in zip(m["layers"], cfg["rootfs"]["diff_ids"]):
            tar = gzip.decompress(self.blob(self.reg, "pushpull", layer["digest"]))
            self.assertEqual(sha(tar), diff_id)
        # the registry answers 404 when Accept lacks the OCI types (why the client sends them all)
        st, _, _ = fetch(f"{self.reg.url}/v2/pushpull/manifests/v1", {"Accept": DOCKER_MANIFEST})
        self.assertEqual(st, 404)
        # deterministic: the same seed gives the same digest
        self.assertEqual(push_image(self.reg, "pushpull", "v1", layers=2, size=4096), d)

    def test_index_and_docker_media_types(self):
        a = push_image(self.reg, "multi", None, arch="amd64")
        b = push_image(self.reg, "multi", None, arch="arm64")
        idx = push_index(self.reg, "multi", "latest", [a, b])
        body, ctype, m = self.manifest(self.reg, "multi", "latest")
        self.assertEqual((ctype, sha(body)), (OCI_INDEX, idx))
        self.assertEqual([(x["digest"], x["platform"]["architecture"]) for x in m["manifests"]],
                         [(a, "amd64"), (b, "arm64")])
        dd = push_image(self.reg, "dockertypes", "v1", docker=True)
        body, ctype, m = self.manifest(self.reg, "dockertypes", "v1")
        self.assertEqual((ctype, m["mediaType"], sha(body)), (DOCKER_MANIFEST, DOCKER_MANIFEST, dd))
        lst = push_index(self.reg, "dockertypes", "list", [dd], docker=True)
        body, ctype, _ = self.manifest(self.reg, "dockertypes", "list")
        self.assertEqual((ctype, sha(body)), (DOCKER_LIST, lst))

    def test_classic_signatures_verify_with_openssl(self):
        t0 = time.monotonic()
        d = push_image(self.reg, "classic", "v1")
        s1 = sign_classic(self.reg, "classic", d, self.key)
        timing("push_image + sign_classic", time.monotonic() - t0)
        s2 = sign_classic(self.reg, "classic", d, self.key2)   # appended
        tag = "sha256-" + d.split(":")[1] + ".sig"
        self.assertEqual(s2.tag, tag)
        body, ctype, m = self.manifest(self.reg, "classic", tag)
        self.assertEqual(ctype, OCI_MANIFEST)
        self.assertEqual(sha(body), s2.manifest_digest)
        self.assertEqual(m["mediaType"], OCI_MANIFEST)
        self.assertEqual(len(m["layers"]), 2)
        self.assertEqual(m["config"]["mediaType"], "application/vnd.oci.image.config.v1+json")
        diff_ids = [ly["digest"] for ly in m["layers"]]
        expect_cfg = ('{"architecture":"","created":"0001-01-01T00:00:00Z","history":[{"created":"0001-01-01T00:00:00Z"},'
                      '{"created":"0001-01-01T00:00:00Z"}],"os":"","rootfs":{"type":"layers","diff_ids":['
                      + ",".join(f'"{x}"' for x in diff_ids) + ']},"config":{}}').encode()
        self.assertEqual(self.blob(self.reg, "classic", m["config"]["digest"]), expect_cfg)
        expect_payload = ('{"critical":{"identity":{"docker-reference":"%s/classic"},"image":{"docker-manifest-digest":'
                          '"%s"},"type":"cosign container image signature"},"optional":null}' % (self.reg.host, d)).encode()
        for layer, pub, other in zip(m["layers"], (self.pub, self.pub2), (self.pub2, self.pub)):
            self.assertEqual(layer["mediaType"], SIMPLESIGNING)
            payload = self.blob(self.reg, "classic", layer["digest"])
            self.assertEqual(layer["size"], len(payload))
            self.assertEqual(payload, expect_payload)
            sig = base64.b64decode(layer["annotations"]["dev.cosignproject.cosign/signature"])
            self.assertTrue(self.openssl_verify(pub, payload, sig), "signature does not verify")
            self.assertFalse(self.openssl_verify(other, payload, sig), "signature verifies with the wrong key")
        # the first signature's manifest was replaced by the appended one; the tag moved
        self.assertNotEqual(s1.manifest_digest, s2.manifest_digest)

    def test_classic_tamper_modes(self):
        for mode in ("payload", "digest", "media-type", "signature", "blob-mismatch"):
            with self.subTest(tamper=mode):
                repo = f"tamper-{mode}"
                d = push_image(self.reg, repo, "v1")
                s = sign_classic(self.reg, repo, d, self.key, tamper=mode)
                _, _, m = self.manifest(self.reg, repo, s.tag)
                layer = m["layers"][0]
                payload = self.blob(self.reg, repo, layer["digest"], check=False)
                sig = base64.b64decode(layer["annotations"]["dev.cosignproject.cosign/signature"])
                ok_sig = self.openssl_verify(self.pub, payload, sig)
                ok_blob = sha(payload) == layer["digest"]
                named = json.loads(payload)["critical"]["image"]["docker-manifest-digest"]
                if mode in ("payload", "signature"):
                    self.assertTrue(ok_blob)
                    self.assertFalse(ok_sig)
                    self.assertEqual(named, d)
                elif mode == "digest":
                    self.assertTrue(ok_blob and ok_sig)
                    self.assertNotEqual(named, d)
                elif mode == "media-type":
                    self.assertTrue(ok_blob and ok_sig)
                    self.assertNotEqual(layer["mediaType"], SIMPLESIGNING)
                else:  # blob-mismatch: only the digest check catches it
                    self.assertFalse(ok_blob)
                    self.assertTrue(ok_sig)
                    self.assertEqual(named, d)
                    self.assertEqual(len(payload), layer["size"])

    def verify_bundle(self, reg, repo, image_digest, ref_desc, pub, *, predicate_type, artifact_ok=True,
                      kind="ecdsa-p256"):
        """Independent check of one bundle referrer: returns (signature ok, statement)."""
        body, ctype, m = self.manifest(reg, repo, ref_desc["digest"])
        self.assertEqual(sha(body), ref_desc["digest"])
        self.assertEqual(len(body), ref_desc["size"])
        self.assertEqual(m["subject"]["digest"], image_digest)
        ibody, ictype, _ = self.manifest(reg, repo, image_digest)
        self.assertEqual((m["subject"]["size"], m["subject"]["mediaType"]), (len(ibody), ictype))
        self.assertEqual(m["config"]["mediaType"], EMPTY)
        self.assertEqual(self.blob(reg, repo, m["config"]["digest"]), b"{}")
        self.assertEqual(m["artifactType"], BUNDLE)
        self.assertEqual(m["annotations"]["dev.sigstore.bundle.predicateType"], predicate_type)
        self.assertEqual(m["annotations"]["dev.sigstore.bundle.content"], "dsse-envelope")
        self.assertEqual(len(m["layers"]), 1)
        if artifact_ok:
            self.assertEqual(m["layers"][0]["mediaType"], BUNDLE)
        bundle = json.loads(self.blob(reg, repo, m["layers"][0]["digest"]))
        self.assertEqual(bundle["mediaType"], BUNDLE)
        hint = base64.b64encode(hashlib.sha256(self.spki_der(pub)).digest()).decode()
        self.assertEqual(bundle["verificationMaterial"]["publicKey"]["hint"], hint)
        env = bundle["dsseEnvelope"]
        payload = base64.b64decode(env["payload"])
        ptype = env["payloadType"].encode()
        pae = b"DSSEv1 %d %s %d %s" % (len(ptype), ptype, len(payload), payload)
        sig = base64.b64decode(env["signatures"][0]["sig"])
        self.last_pae_sig = (pae, sig)
        return self.openssl_verify(pub, pae, sig, kind=kind), json.loads(payload)

    def test_bundle_signature_and_fallback_index(self):
        d = push_image(self.reg, "bundle", "v1")
        t0 = time.monotonic()
        b1 = sign_bundle(self.reg, "bundle", d, self.key)
        timing("sign_bundle", time.monotonic() - t0)
        b2 = sign_bundle(self.reg, "bundle", d, self.key2)
        # the registry has no Referrers API: the fallback index lists both
        st, _, _ = fetch(f"{self.reg.url}/v2/bundle/referrers/{d}", {"Accept": OCI_INDEX})
        self.assertEqual(st, 404)
        body, ctype, idx = self.manifest(self.reg, "bundle", "sha256-" + d.split(":")[1])
        self.assertEqual((ctype, idx["mediaType"], sha(body)), (OCI_INDEX, OCI_INDEX, b2.index_digest))
        listed = {x["digest"]: x for x in idx["manifests"]}
        self.assertEqual(set(listed), {b1.manifest_digest, b2.manifest_digest})
        self.assertEqual([x["digest"] for x in idx["manifests"]], sorted(listed))
        for b, pub, other in ((b1, self.pub, self.pub2), (b2, self.pub2, self.pub)):
            desc = listed[b.manifest_digest]
            self.assertEqual((desc["mediaType"], desc["artifactType"]), (OCI_MANIFEST, EMPTY))
            ok, st = self.verify_bundle(self.reg, "bundle", d, desc, pub,
                                        predicate_type="https://sigstore.dev/cosign/sign/v1")
            self.assertTrue(ok, "DSSE signature does not verify")
            self.assertEqual(st["_type"], "https://in-toto.io/Statement/v1")
            self.assertEqual(st["predicateType"], "https://sigstore.dev/cosign/sign/v1")
            self.assertEqual(st["subject"][0]["digest"]["sha256"], d.split(":")[1])
            self.assertFalse(self.openssl_verify(other, *self.last_pae_sig), "verifies with the wrong key")

    def test_bundle_tamper_modes(self):
        for mode in ("payload", "digest", "signature", "media-type", "payload-type", "predicate-type"):
            with self.subTest(tamper=mode):
                repo = f"btamper-{mode}"
                d = push_image(self.reg, repo, "v1")
                b = sign_bundle(self.reg, repo, d, self.key, tamper=mode)
                _, _, idx = self.manifest(self.reg, repo, "sha256-" + d.split(":")[1])
                self.assertEqual([x["digest"] for x in idx["manifests"]], [b.manifest_digest])
                ok, st = self.verify_bundle(self.reg, repo, d, idx["manifests"][0], self.pub,
                                            predicate_type="https://sigstore.dev/cosign/sign/v1",
                                            artifact_ok=mode != "media-type")
                subject_ok = st["subject"][0]["digest"]["sha256"] == d.split(":")[1]
                if mode in ("payload", "signature", "payload-type"):
                    self.assertFalse(ok)
                else:
                    self.assertTrue(ok)
                if mode in ("payload", "digest"):
                    self.assertFalse(subject_ok)
                if mode == "predicate-type":
                    self.assertNotEqual(st["predicateType"], "https://sigstore.dev/cosign/sign/v1")
                if mode == "media-type":
                    _, _, m = self.manifest(self.reg, repo, b.manifest_digest)
                    self.assertNotEqual(m["layers"][0]["mediaType"], BUNDLE)

    def test_sbom_attestations(self):
        d = push_image(self.reg, "sbom", "v1")
        a = attest_sbom(self.reg, "sbom", d, self.key)
        _, _, m = self.manifest(self.reg, "sbom", "sha256-" + d.split(":")[1] + ".att")
        self.assertEqual(len(m["layers"]), 1)
        layer = m["layers"][0]
        self.assertEqual(layer["mediaType"], "application/vnd.dsse.envelope.v1+json")
        self.assertEqual(layer["annotations"], {"dev.cosignproject.cosign/signature": "",
                                                "predicateType": "https://spdx.dev/Document"})
        env = json.loads(self.blob(self.reg, "sbom", layer["digest"]))
        self.assertEqual(env["payloadType"], "application/vnd.in-toto+json")
        self.assertEqual(env["signatures"][0]["keyid"], "")
        payload = base64.b64decode(env["payload"])
        pae = b"DSSEv1 28 application/vnd.in-toto+json %d %s" % (len(payload), payload)
        sig = base64.b64decode(env["signatures"][0]["sig"])
        self.assertTrue(self.openssl_verify(self.pub, pae, sig))
        self.assertFalse(self.openssl_verify(self.pub2, pae, sig))
        st = json.loads(payload)
        self.assertEqual(st["predicateType"], "https://spdx.dev/Document")
        self.assertEqual(st["subject"][0]["digest"]["sha256"], d.split(":")[1])
        self.assertEqual(st["predicate"]["spdxVersion"], "SPDX-2.3")
        self.assertEqual(a.signature, sig)
        # bundle format: a referrer beside a signature bundle in the same fallback index
        sb = sign_bundle(self.reg, "sbom", d, self.key)
        ab = attest_sbom(self.reg, "sbom", d, self.key, fmt="bundle")
        _, _, idx = self.manifest(self.reg, "sbom", "sha256-" + d.split(":")[1])
        listed = {x["digest"]: x for x in idx["manifests"]}
        self.assertEqual(set(listed), {sb.manifest_digest, ab.manifest_digest})
        ok, st = self.verify_bundle(self.reg, "sbom", d, listed[ab.manifest_digest], self.pub,
                                    predicate_type="https://spdx.dev/Document")
        self.assertTrue(ok)
        self.assertEqual(st["predicateType"], "https://spdx.dev/Document")
        # tampering
        bad = attest_sbom(self.reg, "sbom-bad", push_image(self.reg, "sbom-bad", "v1"), self.key, tamper="signature")
        env = json.loads(bad.payload)
        payload = base64.b64decode(env["payload"])
        pae = b"DSSEv1 28 application/vnd.in-toto+json %d %s" % (len(payload), payload)
        self.assertFalse(self.openssl_verify(self.pub, pae, base64.b64decode(env["signatures"][0]["sig"])))

    def test_key_kinds(self):
        d = push_image(self.reg, "kinds", "v1")
        for kind in ("ecdsa-p384", "ed25519", "rsa"):
            with self.subTest(kind=kind):
                key, pub = make_cosign_keypair(self.tmp / "keys", kind)
                self.assertIn("BEGIN PUBLIC KEY", pub.read_text())
                s = sign_classic(self.reg, "kinds", d, key)
                self.assertTrue(self.openssl_verify(pub, s.payload, s.signature, kind=kind))
                self.assertFalse(self.openssl_verify(pub, s.payload + b" ", s.signature, kind=kind))
                b = sign_bundle(self.reg, "kinds", d, key)
                ok, _ = self.verify_bundle(self.reg, "kinds", d, {"digest": b.manifest_digest,
                                                                  "size": len(b.manifest)}, pub,
                                           predicate_type="https://sigstore.dev/cosign/sign/v1", kind=kind)
                self.assertTrue(ok)
        _, _, m = self.manifest(self.reg, "kinds", "sha256-" + d.split(":")[1] + ".sig")
        self.assertEqual(len(m["layers"]), 3)


class AuthTests(Fixture):
    def pull(self, reg, headers=None, repo="app", ref="v1", cafile=None):
        return fetch(f"{reg.url}/v2/{repo}/manifests/{ref}", {"Accept": ACCEPT, **(headers or {})}, cafile=cafile)

    def test_anonymous(self):
        reg = self.serve(Registry(self.tmp / "anon"))
        d = push_image(reg, "app", "v1")
        st, h, body = self.pull(reg)
        self.assertEqual((st, sha(body), h.get("Docker-Content-Digest")), (200, d, d))
        self.assertEqual(reg.host, f"127.0.0.1:{reg.port}")
        self.assertEqual(reg.url, f"http://127.0.0.1:{reg.port}")
        for _ in range(100):  # the access log line is written just after the response
            if "GET /v2/app/manifests/v1 200" in reg.requests():
                break
            time.sleep(0.01)
        self.assertIn("GET /v2/app/manifests/v1 200", reg.requests())

    def test_basic_auth(self):
        t0 = time.monotonic()
        reg = self.serve(Registry(self.tmp / "basic", auth=("basic", "fleet", "s3cret"), users={"other": "pw2"}))
        timing("registry start (basic auth)", time.monotonic() - t0)
        d = push_image(reg, "app", "v1")
        st, h, _ = self.pull(reg)
        self.assertEqual(st, 401)
        self.assertTrue(h.get("WWW-Authenticate", "").startswith("Basic "), h.get("WWW-Authenticate"))
        self.assertEqual(self.pull(reg, basic("fleet", "wrong"))[0], 401)
        self.assertEqual(self.pull(reg, basic("nobody", "s3cret"))[0], 401)
        st, _, body = self.pull(reg, basic("fleet", "s3cret"))
        self.assertEqual((st, sha(body)), (200, d))
        self.assertEqual(self.pull(reg, basic("other", "pw2"))[0], 200)
        # anonymous push is refused too
        self.assertEqual(fetch(f"{reg.url}/v2/app/blobs/uploads/", method="POST", data=b"")[0], 401)

    def token(self, reg, user=None, pw=None, scope="repository:app:pull"):
        q = urllib.parse.urlencode({"service": reg.token_server.service, "scope": scope})
        return fetch(f"{reg.token_url}?{q}", basic(user, pw) if user else {}, cafile=reg.ca)

    def test_token_auth(self):
        t0 = time.monotonic()
        reg = self.serve(Registry(self.tmp / "token", auth=("token", "fleet", "s3cret"),
                                  users={"reader": "pw2"}, acl={"reader": {"other/*": ["pull"]}}))
        timing("registry start (token auth, with token server and key)", time.monotonic() - t0)
        d = push_image(reg, "app", "v1")
        st, h, _ = self.pull(reg)
        self.assertEqual(st, 401)
        chal = h.get("WWW-Authenticate", "")
        self.assertIn(f'Bearer realm="{reg.token_url}"', chal)
        self.assertIn(f'service="{reg.token_server.service}"', chal)
        self.assertIn('scope="repository:app:pull"', chal)
        self.assertEqual(self.token(reg)[0], 401)                        # anonymous not allowed
        self.assertEqual(self.token(reg, "fleet", "wrong")[0], 401)
        self.assertEqual(self.token(reg, "nobody", "s3cret")[0], 401)
        st, _, body = self.token(reg, "fleet", "s3cret")
        self.assertEqual(st, 200)
        doc = json.loads(body)
        self.assertEqual(doc["token"], doc["access_token"])
        header = json.loads(b64url_decode(doc["token"].split(".")[0]))
        claims = json.loads(b64url_decode(doc["token"].split(".")[1]))
        cert_spki = subprocess.run(["openssl", "x509", "-in", str(reg.token_server.cert), "-pubkey", "-noout"],
                                   check=True, capture_output=True).stdout
        spki = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=cert_spki,
                              check=True, capture_output=True).stdout
        self.assertEqual((header["alg"], header["kid"]), ("ES256", libtrust_kid(spki)))
        self.assertEqual(claims["access"], [{"type": "repository", "name": "app", "actions": ["pull"]}])
        self.assertEqual(claims["aud"], reg.token_server.service)
        st, _, body = self.pull(reg, {"Authorization": "Bearer " + doc["token"]})
        self.assertEqual((st, sha(body)), (200, d))
        # a forged token (one signature byte changed) is refused
        h64, c64, s64 = doc["token"].split(".")
        forged_sig = bytearray(b64url_decode(s64))
        forged_sig[5] ^= 1
        forged = f"{h64}.{c64}." + base64.urlsafe_b64encode(bytes(forged_sig)).decode().rstrip("=")
        st, h, _ = self.pull(reg, {"Authorization": "Bearer " + forged})
        self.assertEqual(st, 401)
        self.assertIn('error="invalid_token"', h.get("WWW-Authenticate", ""))
        # "reader" may pull other/* only: its token for app grants nothing
        st, _, body = self.token(reg, "reader", "pw2")
        self.assertEqual(json.loads(b64url_decode(json.loads(body)["token"].split(".")[1]))["access"][0]["actions"], [])
        st, h, _ = self.pull(reg, {"Authorization": "Bearer " + json.loads(body)["token"]})
        self.assertEqual(st, 401)
        self.assertIn('error="insufficient_scope"', h.get("WWW-Authenticate", ""))
        self.assertTrue(any(e["user"] == "fleet" and e["status"] == 200 for e in reg.token_server.requests()))

    def test_token_auth_x5c_tls_and_anonymous_pull(self):
        reg = self.serve(Registry(self.tmp / "token2", auth=("token", "fleet", "s3cret"), tls=True,
                                  anonymous_pull=True, token_header="x5c"))
        self.assertTrue(reg.url.startswith("https://") and reg.token_url.startswith("https://"))
        d = push_image(reg, "app", "v1")
        st, _, body = self.token(reg, scope="repository:app:pull,push")   # anonymous
        self.assertEqual(st, 200)
        tok = json.loads(body)["token"]
        header = json.loads(b64url_decode(tok.split(".")[0]))
        self.assertIn("x5c", header)
        claims = json.loads(b64url_decode(tok.split(".")[1]))
        self.assertEqual(claims["access"][0]["actions"], ["pull"])
        st, _, body = self.pull(reg, {"Authorization": "Bearer " + tok}, cafile=reg.ca)
        self.assertEqual((st, sha(body)), (200, d))
        # pull-only: an upload is refused
        st, _, _ = fetch(f"{reg.url}/v2/app/blobs/uploads/", {"Authorization": "Bearer " + tok},
                        method="POST", data=b"", cafile=reg.ca)
        self.assertEqual(st, 401)
        # without the CA the TLS handshake fails
        with self.assertRaises(urllib.error.URLError):
            fetch(f"{reg.url}/v2/")


class BadRegistryTests(Fixture):
    def test_modes(self):
        for mode in BAD_MODES:
            with self.subTest(mode=mode):
                t0 = time.monotonic()
                bad = self.serve(BadRegistry(self.tmp / "bad", mode))
                started = time.monotonic() - t0
                self.assertEqual(bad.host, f"127.0.0.1:{bad.port}")
                url = f"{bad.url}/v2/app/manifests/v1"
                if mode == "500":
                    self.assertEqual(fetch(url, {"Accept": ACCEPT})[0], 500)
                    self.assertEqual(fetch(f"{bad.url}/v2/")[0], 500)
                elif mode == "stall":
                    with socket.create_connection(("127.0.0.1", bad.port), timeout=5) as s:
                        s.sendall(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n")
                        s.settimeout(0.5)
                        with self.assertRaises(socket.timeout):
                            s.recv(1)
                    self.assertEqual(bad.requests()[-1]["status"], "-")
                elif mode == "huge-manifest":
                    t1 = time.monotonic()
                    st, h, body = fetch(url, {"Accept": ACCEPT}, timeout=30)
                    timing("huge-manifest: 50 MB read", time.monotonic() - t1)
                    self.assertEqual(st, 200)
                    self.assertEqual(int(h["Content-Length"]), 50 * 1024 * 1024)
                    self.assertEqual(len(body), 50 * 1024 * 1024)
                    self.assertEqual(json.loads(body)["schemaVersion"], 2)
                elif mode == "wrong-content-length":
                    conn = http.client.HTTPConnection("127.0.0.1", bad.port, timeout=5)
                    conn.request("GET", "/v2/app/manifests/v1", headers={"Accept": ACCEPT})
                    r = conn.getresponse()
                    self.assertEqual(r.status, 200)
                    with self.assertRaises(http.client.IncompleteRead):
                        r.read()
                    conn.close()
                elif mode == "redirect-loop":
                    conn = http.client.HTTPConnection("127.0.0.1", bad.port, timeout=5)
                    conn.request("GET", "/v2/app/manifests/v1")
                    r = conn.getresponse()
                    r.read()
                    self.assertEqual((r.status, r.getheader("Location")), (307, "/v2/app/manifests/v1?hop=1"))
                    conn.close()
                    with self.assertRaises(urllib.error.HTTPError) as cm:
                        urllib.request.build_opener(urllib.request.ProxyHandler({})).open(url, timeout=5)
                    self.assertIn("redirect", str(cm.exception).lower())
                    self.assertGreaterEqual(len(bad.requests()), 5)
                elif mode == "garbage-json":
                    st, h, body = fetch(url, {"Accept": ACCEPT})
                    self.assertEqual(st, 200)
                    self.assertEqual(h["Content-Type"], OCI_MANIFEST)
                    with self.assertRaises(ValueError):
                        json.loads(body)
                timing(f"bad registry start ({mode})", started)
                bad.stop()

    def test_set_mode(self):
        bad = self.serve(BadRegistry(self.tmp / "bad2", "500"))
        self.assertEqual(fetch(f"{bad.url}/v2/")[0], 500)
        bad.set_mode("huge-manifest")
        self.assertEqual(fetch(f"{bad.url}/v2/")[0], 200)
        self.assertEqual([e["mode"] for e in bad.requests()], ["500", "huge-manifest"])


if __name__ == "__main__":
    # These test the test machinery, not the agent: nothing here for sanitizers to see.
    if os.environ.get("ATTICD_SANITIZE"):
        print("skipped under sanitizers (tools/test --sanitize): no agent code runs here", file=sys.stderr)
        sys.exit(77)
    unittest.main()
