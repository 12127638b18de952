# SPDX-License-Identifier: MIT
"""A Sigstore instance of the tests' own, offline: a Fulcio-like CA (a root and an
intermediate), a CT log and a Rekor-like transparency log, each with keys made here, and the
trusted root (trusted_root.json) that lists them. It issues short-lived code-signing
certificates for an OIDC identity exactly as Fulcio lays them out (empty subject, the identity
as a critical SAN, the issuer in extension 1.3.6.1.4.1.57264.1.8 as a UTF8String, or the older
.1.1 as the bare string; an embedded SCT over the precertificate), logs DSSE signatures as
Rekor v1 does (a dsse 0.0.1 entry, its signed entry timestamp over the canonical JSON, a Merkle
inclusion proof and a signed checkpoint) and assembles the Sigstore bundles (v0.3) cosign 3
attaches to an image. What is signed, when, by which CA and whether a part is broken is the
caller's to say, so that the agent's verifier (agent/sign/sigstore*.c) can be shown every
refusal with one real, valid bundle next to it.

Formats: RFC 6962 (SCTs, Merkle trees), C2SP tlog-checkpoint and signed-note, Rekor's dsse
0.0.1 type and its SET (sigstore-go pkg/tlog), the Sigstore protobuf-specs bundle and trusted
root (shared/reference/cosign-format.md)."""

import base64
import datetime
import hashlib
import json
import os
import subprocess
import tempfile
import time
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

from registry import BUNDLE_V03, COSIGN_SIGN_PREDICATE, INTOTO, SIG_ANNOTATION, dsse_pae, simple_signing_payload

OID_ISSUER_V1 = ObjectIdentifier("1.3.6.1.4.1.57264.1.1")
OID_ISSUER_V2 = ObjectIdentifier("1.3.6.1.4.1.57264.1.8")
OID_SCT_LIST = ObjectIdentifier("1.3.6.1.4.1.11129.2.4.2")
ECDSA_P256 = "PKIX_ECDSA_P256_SHA_256"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def rfc3339(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def _utc(t: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(int(t), datetime.timezone.utc)


def spki_der(key) -> bytes:
    pub = key.public_key() if hasattr(key, "public_key") else key
    return pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _sign(key, data: bytes) -> bytes:
    return key.sign(data, ec.ECDSA(hashes.SHA256()))


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(b)]) + b


def _der(tag: int, content: bytes) -> bytes:
    return bytes([tag]) + _der_length(len(content)) + content


def canonical_json(obj) -> bytes:
    """RFC 8785 for what these documents hold (strings, integers, objects): sorted keys, no
    spaces."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


# ---- RFC 6962 Merkle trees ----

def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def tree_root(leaves: list) -> bytes:
    if len(leaves) == 1:
        return leaves[0]
    k = _split(len(leaves))
    return _node(tree_root(leaves[:k]), tree_root(leaves[k:]))


def audit_path(index: int, leaves: list) -> list:
    """RFC 6962 2.1.1's PATH(m, D[n]), leaf to root."""
    if len(leaves) == 1:
        return []
    k = _split(len(leaves))
    if index < k:
        return audit_path(index, leaves[:k]) + [tree_root(leaves[k:])]
    return audit_path(index - k, leaves[k:]) + [tree_root(leaves[:k])]


# ---- the instance ----

@dataclass
class Authority:
    """A CA of the trusted root: its chain (intermediate, root) and its window."""
    key: object
    cert: x509.Certificate
    root_cert: x509.Certificate
    start: float
    end: float | None = None


@dataclass
class Log:
    """A Rekor-like log or a CT log: a key, its id (SHA-256 of the DER SPKI), its window, and
    for a transparency log the leaves it holds."""
    key: object
    start: float
    end: float | None = None
    origin: str = "rekor.atticd.test - 1"
    leaves: list = field(default_factory=list)

    @property
    def log_id(self) -> bytes:
        return hashlib.sha256(spki_der(self.key)).digest()


@dataclass
class TimestampAuthority:
    """An RFC 3161 timestamp authority of the trusted root: a leaf (EKU timeStamping, critical)
    under a root of its own; tokens are made by `openssl ts -reply` (at a chosen time through
    faketime)."""
    key: object
    cert: x509.Certificate
    root_cert: x509.Certificate
    start: float
    directory: str

    def timestamp(self, data: bytes, at: float | None = None) -> bytes:
        """A DER TimeStampResp over data (SHA-256 imprint), genTime now or at `at`."""
        d = self.directory
        with open(os.path.join(d, "data"), "wb") as f:
            f.write(data)
        subprocess.run(["openssl", "ts", "-query", "-data", os.path.join(d, "data"), "-sha256", "-cert",
                        "-no_nonce", "-out", os.path.join(d, "req.tsq")], check=True, capture_output=True)
        cmd = ["openssl", "ts", "-reply", "-config", os.path.join(d, "tsa.cnf"), "-queryfile",
               os.path.join(d, "req.tsq"), "-inkey", os.path.join(d, "tsa.key"), "-signer",
               os.path.join(d, "tsa.pem"), "-out", os.path.join(d, "resp.tsr")]
        if at is not None:
            cmd = ["faketime", "-f", time.strftime("@%Y-%m-%d %H:%M:%S", time.gmtime(at))] + cmd
        subprocess.run(cmd, check=True, capture_output=True, env={**os.environ, "TZ": "UTC"})
        with open(os.path.join(d, "resp.tsr"), "rb") as f:
            return f.read()


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "atticd.test"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _ca_cert(key, subject: x509.Name, issuer_key, issuer: x509.Name, not_before: float, not_after: float,
             path_length: int | None) -> x509.Certificate:
    b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(key.public_key())
         .serial_number(x509.random_serial_number())
         .not_valid_before(_utc(not_before)).not_valid_after(_utc(not_after))
         .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
         .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                      data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                      crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
         .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
    if issuer_key is not key:
        b = b.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
                            critical=False)
    return b.sign(issuer_key, hashes.SHA384())


class Instance:
    """Keys and certificates are made at construction; times are Unix seconds. The CA, the
    CT log, the transparency log and the timestamp authority are valid from `start` (default:
    a year ago) on. The timestamp authority's files live in a new directory under `directory`
    (a test's own; default: the system's temporary directory, removed by close())."""

    def __init__(self, name: str = "atticd.test", *, start: float | None = None, directory=None):
        now = time.time()
        self.name = name
        self.start = start if start is not None else now - 365 * 86400
        self.cas = [self.new_ca("fulcio", self.start)]
        self.ctlog = Log(ec.generate_private_key(ec.SECP256R1()), self.start)
        self.tlog = Log(ec.generate_private_key(ec.SECP256R1()), self.start, origin=f"rekor.{name} - 1")
        self._tmp = None if directory else tempfile.TemporaryDirectory(prefix="atticd-sigstore-")
        self.directory = tempfile.mkdtemp(prefix="sigstore-", dir=directory) if directory else self._tmp.name
        self.tsas = [self.new_tsa("tsa", self.start)]
        # Entries of others before ours: a proof has a path, the tree is not a single leaf.
        for i in range(5):
            self.tlog.leaves.append(leaf_hash(b"an earlier entry %d" % i))

    def new_ca(self, cn: str, start: float, end: float | None = None) -> Authority:
        """A root and an intermediate, valid as certificates for 20 years from start; listed
        in the trusted root from start to end (None: no end)."""
        root_key = ec.generate_private_key(ec.SECP384R1())
        inter_key = ec.generate_private_key(ec.SECP384R1())
        root_name, inter_name = _name(f"{self.name} {cn} root"), _name(f"{self.name} {cn} intermediate")
        root = _ca_cert(root_key, root_name, root_key, root_name, start - 60, start + 20 * 365 * 86400, 1)
        inter = _ca_cert(inter_key, inter_name, root_key, root_name, start - 60, start + 20 * 365 * 86400, 0)
        return Authority(inter_key, inter, root, start, end)

    def new_tsa(self, cn: str, start: float) -> TimestampAuthority:
        root_key, key = ec.generate_private_key(ec.SECP384R1()), ec.generate_private_key(ec.SECP384R1())
        root_name = _name(f"{self.name} {cn} root")
        root = _ca_cert(root_key, root_name, root_key, root_name, start - 60, start + 20 * 365 * 86400, 0)
        leaf = (x509.CertificateBuilder().subject_name(_name(f"{self.name} {cn}")).issuer_name(root_name)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(_utc(start - 60)).not_valid_after(_utc(start + 20 * 365 * 86400))
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                             data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                             crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), critical=False)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
                .sign(root_key, hashes.SHA384()))
        d = tempfile.mkdtemp(dir=self.directory)
        with open(os.path.join(d, "tsa.key"), "wb") as f:
            f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()))
        with open(os.path.join(d, "tsa.pem"), "wb") as f:
            f.write(leaf.public_bytes(serialization.Encoding.PEM))
        with open(os.path.join(d, "tsa.cnf"), "w") as f:
            f.write(f"""[ tsa ]
default_tsa = tsa_config
[ tsa_config ]
serial = {d}/serial
crypto_device = builtin
signer_digest = sha256
default_policy = 1.3.6.1.4.1.57264.2
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = yes
tsa_name = no
ess_cert_id_chain = no
ess_cert_id_alg = sha256
""")
        with open(os.path.join(d, "serial"), "w") as f:
            f.write("01\n")
        return TimestampAuthority(key, leaf, root, start, d)

    def close(self) -> None:
        if self._tmp:
            self._tmp.cleanup()

    # -- the trusted root --

    def trusted_root(self) -> dict:
        def log(entry: Log, url: str) -> dict:
            window = {"start": rfc3339(entry.start)}
            if entry.end is not None:
                window["end"] = rfc3339(entry.end)
            return {"baseUrl": url, "hashAlgorithm": "SHA2_256",
                    "publicKey": {"rawBytes": b64(spki_der(entry.key)), "keyDetails": ECDSA_P256,
                                  "validFor": window},
                    "logId": {"keyId": b64(entry.log_id)}}

        def ca(a: Authority) -> dict:
            window = {"start": rfc3339(a.start)}
            if a.end is not None:
                window["end"] = rfc3339(a.end)
            return {"subject": {"organization": "atticd.test", "commonName": a.cert.subject.rfc4514_string()},
                    "uri": f"https://fulcio.{self.name}",
                    "certChain": {"certificates": [
                        {"rawBytes": b64(c.public_bytes(serialization.Encoding.DER))} for c in (a.cert, a.root_cert)]},
                    "validFor": window}

        return {"mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
                "tlogs": [log(self.tlog, f"https://rekor.{self.name}")],
                "certificateAuthorities": [ca(a) for a in self.cas],
                "ctlogs": [log(self.ctlog, f"https://ctfe.{self.name}")],
                "timestampAuthorities": [
                    {"subject": {"organization": "atticd.test", "commonName": t.cert.subject.rfc4514_string()},
                     "uri": f"https://tsa.{self.name}",
                     "certChain": {"certificates": [
                         {"rawBytes": b64(c.public_bytes(serialization.Encoding.DER))} for c in (t.cert, t.root_cert)]},
                     "validFor": {"start": rfc3339(t.start)}} for t in self.tsas]}

    def write_trusted_root(self, path) -> None:
        path.write_text(json.dumps(self.trusted_root(), indent=2))

    # -- Fulcio --

    def issue(self, subject: str, issuer: str, not_before: float, *, lifetime: float = 600,
              ca: Authority | None = None, issuer_v1: bool = False, sct: str | None = "valid"):
        """(private key, certificate) for subject (an email when it has an @ and no scheme, else
        a URI) from issuer, valid from not_before for lifetime seconds, by ca (default: the
        first). sct: "valid", None (no SCT list), "other-log" (signed by a CT log the trusted
        root does not list), "tampered" (a bit of the signature flipped)."""
        ca = ca or self.cas[0]
        key = ec.generate_private_key(ec.SECP256R1())
        san = (x509.RFC822Name(subject) if "@" in subject and "://" not in subject
               else x509.UniformResourceIdentifier(subject))
        issuer_ext = (x509.UnrecognizedExtension(OID_ISSUER_V1, issuer.encode()) if issuer_v1
                      else x509.UnrecognizedExtension(OID_ISSUER_V2, _der(0x0c, issuer.encode())))
        b = (x509.CertificateBuilder().subject_name(x509.Name([])).issuer_name(ca.cert.subject)
             .public_key(key.public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(_utc(not_before)).not_valid_after(_utc(not_before + lifetime))
             .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                          data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                          crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
             .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
             .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
             .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False)
             .add_extension(x509.SubjectAlternativeName([san]), critical=True)
             .add_extension(issuer_ext, critical=False))
        if sct is None:
            return key, b.sign(ca.key, hashes.SHA256())
        # The SCT signs the precertificate's TBS: the final one without the SCT list, which is
        # added last so that removing it gives exactly these bytes.
        tbs = b.sign(ca.key, hashes.SHA256()).tbs_certificate_bytes
        log = self.ctlog if sct != "other-log" else Log(ec.generate_private_key(ec.SECP256R1()), self.start)
        value = self._sct_list(tbs, spki_der(ca.key), log, int(not_before * 1000), tamper=sct == "tampered")
        return key, b.add_extension(x509.UnrecognizedExtension(OID_SCT_LIST, value), critical=False).sign(
            ca.key, hashes.SHA256())

    @staticmethod
    def _sct_list(tbs: bytes, issuer_spki: bytes, log: Log, ts_ms: int, tamper: bool) -> bytes:
        signed = (bytes([0, 0]) + ts_ms.to_bytes(8, "big") + (1).to_bytes(2, "big")
                  + hashlib.sha256(issuer_spki).digest() + len(tbs).to_bytes(3, "big") + tbs + (0).to_bytes(2, "big"))
        sig = bytearray(_sign(log.key, signed))
        if tamper:
            sig[-1] ^= 1
        sct = (bytes([0]) + log.log_id + ts_ms.to_bytes(8, "big") + (0).to_bytes(2, "big") + bytes([4, 3])
               + len(sig).to_bytes(2, "big") + bytes(sig))
        scts = len(sct).to_bytes(2, "big") + sct
        return _der(0x04, len(scts).to_bytes(2, "big") + scts)

    # -- Rekor v1 --

    def log_entry(self, body: bytes, integrated_time: int, *, set_: str | None = "valid",
                  proof: str | None = "valid") -> dict:
        """Append body to the log; the bundle's tlogEntries[] item for it. set_: "valid", None
        (no inclusionPromise), "tampered". proof: "valid", None (no inclusionProof), "tampered"
        (a hash of the path changed), "checkpoint" (the log's valid checkpoint of another
        tree), "checkpoint-key" (the checkpoint signed with another key, under the log's key
        hint)."""
        log = self.tlog
        index = len(log.leaves)
        log.leaves.append(leaf_hash(body))
        leaves = list(log.leaves)
        kind = json.loads(body)
        entry = {"logIndex": str(index), "logId": {"keyId": b64(log.log_id)},
                 "kindVersion": {"kind": kind["kind"], "version": kind["apiVersion"]},
                 "integratedTime": str(integrated_time)}
        if set_ is not None:
            sig = bytearray(_sign(log.key, canonical_json({"body": b64(body), "integratedTime": integrated_time,
                                                            "logID": log.log_id.hex(), "logIndex": index})))
            if set_ == "tampered":
                sig[-1] ^= 1
            entry["inclusionPromise"] = {"signedEntryTimestamp": b64(bytes(sig))}
        if proof is not None:
            path = audit_path(index, leaves)
            if proof == "tampered":
                path[0] = bytes([path[0][0] ^ 1]) + path[0][1:]
            root = tree_root(leaves)
            signed = (len(leaves) + 1, tree_root(leaves + [leaf_hash(b"a later entry")])) if proof == "checkpoint" \
                else (len(leaves), root)
            key = ec.generate_private_key(ec.SECP256R1()) if proof == "checkpoint-key" else log.key
            entry["inclusionProof"] = {"logIndex": str(index), "rootHash": b64(root), "treeSize": str(len(leaves)),
                                       "hashes": [b64(h) for h in path],
                                       "checkpoint": {"envelope": self.checkpoint(*signed, key=key)}}
        entry["canonicalizedBody"] = b64(body)
        return entry

    def checkpoint(self, size: int, root: bytes, *, key=None) -> str:
        note = f"{self.tlog.origin}\n{size}\n{b64(root)}\n"
        sig = _sign(key or self.tlog.key, note.encode())
        return note + "\n" + f"\u2014 {self.tlog.origin.split()[0]} {b64(self.tlog.log_id[:4] + sig)}\n"

    # -- cosign 3 --

    def sign_image(self, image_digest: str, subject: str, issuer: str, *, signed_at: float | None = None,
                   cert_from: float | None = None, lifetime: float = 600, ca: Authority | None = None,
                   issuer_v1: bool = False, sct: str | None = "valid", set_: str | None = "valid",
                   proof: str | None = "valid", predicate_type: str = COSIGN_SIGN_PREDICATE,
                   statement: bytes | None = None, rekor: str = "v1", timestamp: str | None = None,
                   tsa: TimestampAuthority | None = None) -> bytes:
        """The Sigstore bundle (v0.3) of a keyless `cosign sign` of image_digest: an in-toto
        statement in a DSSE envelope signed with a fresh certificate for subject and issuer,
        logged at signed_at (default: a minute ago; the certificate valid from cert_from,
        default signed_at - 60, for lifetime seconds). The other arguments break one part (see
        issue() and log_entry()).

        rekor="v2": logged as Rekor v2 does, a hashedrekord 0.0.2 entry over the digest of the
        envelope's PAE with no integrated time and no SET, only an inclusion proof: the signing
        time must then come from a timestamp. timestamp: None, "valid" (an RFC 3161 timestamp
        of the signature by tsa, default the first, at signed_at), "other-data" (a valid
        timestamp of other bytes)."""
        signed_at = int(signed_at if signed_at is not None else time.time() - 60)
        cert_from = cert_from if cert_from is not None else signed_at - 60
        key, cert = self.issue(subject, issuer, cert_from, lifetime=lifetime, ca=ca, issuer_v1=issuer_v1, sct=sct)
        if statement is None:
            statement = canonical_json({"_type": "https://in-toto.io/Statement/v1", "predicateType": predicate_type,
                                        "subject": [{"digest": {"sha256": image_digest.split(":", 1)[1]}}],
                                        "predicate": {}})
        pae = dsse_pae(INTOTO, statement)
        sig = _sign(key, pae)
        envelope = {"payload": b64(statement), "payloadType": INTOTO, "signatures": [{"sig": b64(sig)}]}
        pem = cert.public_bytes(serialization.Encoding.PEM)
        der = cert.public_bytes(serialization.Encoding.DER)
        if rekor == "v2":
            body = canonical_json({"apiVersion": "0.0.2", "kind": "hashedrekord", "spec": {"hashedRekordV002": {
                "data": {"algorithm": "SHA2_256", "digest": b64(hashlib.sha256(pae).digest())},
                "signature": {"content": b64(sig), "verifier": {"keyDetails": ECDSA_P256,
                                                               "x509Certificate": {"rawBytes": b64(der)}}}}}})
            entry = self.log_entry(body, signed_at, set_=None, proof=proof)
            del entry["integratedTime"]
        else:
            body = canonical_json({"apiVersion": "0.0.1", "kind": "dsse", "spec": {
                "envelopeHash": {"algorithm": "sha256",
                                 "value": hashlib.sha256(canonical_json(envelope)).hexdigest()},
                "payloadHash": {"algorithm": "sha256", "value": hashlib.sha256(statement).hexdigest()},
                "signatures": [{"signature": b64(sig), "verifier": b64(pem)}]}})
            entry = self.log_entry(body, signed_at, set_=set_, proof=proof)
        material = {"certificate": {"rawBytes": b64(der)}, "tlogEntries": [entry]}
        if timestamp is not None:
            token = (tsa or self.tsas[0]).timestamp(sig if timestamp == "valid" else b"other data", signed_at)
            material["timestampVerificationData"] = {"rfc3161Timestamps": [{"signedTimestamp": b64(token)}]}
        return json.dumps({"mediaType": BUNDLE_V03, "verificationMaterial": material,
                           "dsseEnvelope": envelope}, separators=(",", ":")).encode()

    # -- cosign 2 (and cosign 3 with --new-bundle-format=false) --

    def _classic_annotations(self, cert, body: bytes, signed_at: int, set_: str | None) -> dict:
        """The certificate, chain and Rekor bundle annotations of a classic keyless layer."""
        entry = self.log_entry(body, signed_at, set_=set_, proof=None)
        annotations = {"dev.sigstore.cosign/certificate": cert.public_bytes(serialization.Encoding.PEM).decode(),
                       "dev.sigstore.cosign/chain": "".join(
                           c.public_bytes(serialization.Encoding.PEM).decode()
                           for c in (self.cas[0].cert, self.cas[0].root_cert))}
        if "inclusionPromise" in entry:
            annotations["dev.sigstore.cosign/bundle"] = json.dumps({
                "SignedEntryTimestamp": entry["inclusionPromise"]["signedEntryTimestamp"],
                "Payload": {"body": entry["canonicalizedBody"], "integratedTime": signed_at,
                            "logIndex": int(entry["logIndex"]), "logID": self.tlog.log_id.hex()}},
                separators=(",", ":"))
        return annotations

    def classic_signature(self, image_digest: str, docker_reference: str, subject: str, issuer: str, *,
                          signed_at: float | None = None, set_: str | None = "valid", timestamp: str | None = None,
                          **issue_args):
        """(payload, annotations) of a keyless `cosign sign` in the classic format (a .sig
        layer): a simple-signing payload, its signature, the certificate, and the Rekor
        bundle of its hashedrekord 0.0.1 entry (set_=None: no Rekor bundle annotation).
        timestamp: "valid" (cosign sign --timestamp-server-url: the rfc3161timestamp annotation,
        {"SignedRFC3161Timestamp": base64 TimeStampResp over the raw signature}), "malformed"
        (an annotation that is not that JSON), None."""
        signed_at = int(signed_at if signed_at is not None else time.time() - 60)
        key, cert = self.issue(subject, issuer, signed_at - 60, **issue_args)
        payload = simple_signing_payload(docker_reference, image_digest)
        sig = _sign(key, payload)
        body = canonical_json({"apiVersion": "0.0.1", "kind": "hashedrekord", "spec": {
            "data": {"hash": {"algorithm": "sha256", "value": hashlib.sha256(payload).hexdigest()}},
            "signature": {"content": b64(sig), "publicKey": {
                "content": b64(cert.public_bytes(serialization.Encoding.PEM))}}}})
        annotations = {SIG_ANNOTATION: b64(sig), **self._classic_annotations(cert, body, signed_at, set_)}
        if timestamp == "valid":
            annotations["dev.sigstore.cosign/rfc3161timestamp"] = json.dumps(
                {"SignedRFC3161Timestamp": b64(self.tsas[0].timestamp(sig, signed_at))})
        elif timestamp == "malformed":
            annotations["dev.sigstore.cosign/rfc3161timestamp"] = '{"SignedRFC3161Timestamp": 1}'
        return payload, annotations

    def classic_attestation(self, image_digest: str, subject: str, issuer: str, predicate_type: str, predicate,
                            *, signed_at: float | None = None, set_: str | None = "valid", **issue_args):
        """(envelope, annotations) of a keyless `cosign attest` in the classic format (an .att
        layer): an in-toto statement v0.1 in a DSSE envelope, logged as an intoto 0.0.2 entry
        (the signature base64 twice, the certificate as the public key)."""
        signed_at = int(signed_at if signed_at is not None else time.time() - 60)
        key, cert = self.issue(subject, issuer, signed_at - 60, **issue_args)
        statement = canonical_json({"_type": "https://in-toto.io/Statement/v0.1", "predicateType": predicate_type,
                                    "subject": [{"name": "image",
                                                 "digest": {"sha256": image_digest.split(":", 1)[1]}}],
                                    "predicate": predicate})
        sig = _sign(key, dsse_pae(INTOTO, statement))
        envelope = json.dumps({"payloadType": INTOTO, "payload": b64(statement),
                               "signatures": [{"keyid": "", "sig": b64(sig)}]}, separators=(",", ":")).encode()
        body = canonical_json({"apiVersion": "0.0.2", "kind": "intoto", "spec": {"content": {
            "envelope": {"payloadType": INTOTO, "signatures": [
                {"sig": b64(b64(sig).encode()), "publicKey": b64(cert.public_bytes(serialization.Encoding.PEM))}]},
            "hash": {"algorithm": "sha256", "value": hashlib.sha256(envelope).hexdigest()},
            "payloadHash": {"algorithm": "sha256", "value": hashlib.sha256(statement).hexdigest()}}}})
        return envelope, {"predicateType": predicate_type,
                          **self._classic_annotations(cert, body, signed_at, set_)}
