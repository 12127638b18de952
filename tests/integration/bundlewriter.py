# SPDX-License-Identifier: MIT
"""A second, independent writer of offline bundles, written from docs/bundle-format.md alone
(Python 3 standard library, the `openssl` and `git` programs, `zstd` for zstd compression).

It writes valid bundles, which proves that the specification is precise enough for a second
implementation to produce what the agent accepts, and, through low-level hooks, every kind of
broken bundle, which proves that the agent refuses what the specification refuses.

Layers, from high to low:

- Bundle: the manifest fields (section 3) and the members; bundle.build() returns the bytes
  of a valid bundle. Every step can be overridden: manifest_overrides (merged into the
  manifest object; the value DROP removes a key), manifest_bytes (the exact bytes of
  manifest.json), signature (the exact bytes of manifest.sig), listed/unlisted members,
  entries (the complete list of archive entries, in any order, with any header).
- Entry: one tar member with full control of its header: type flag, name, size in the
  header, link name, mode, device numbers, extra pax keywords, or raw bytes.
- write_tar(entries): the archive bytes (pax, "restricted": ustar headers with pax extended
  headers only where a name or a size needs one), with or without the end-of-archive blocks,
  with trailing data.
- compress(data, "gzip" | "xz" | "zstd" | "bzip2" | "zip").
- Key: openssl key generation, signing (ECDSA P-256 over SHA-256, DER; pure Ed25519; RSA for
  the refusal tests), and the fingerprint of section 4.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import json
import lzma
import os
import subprocess
import tarfile
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

FORMAT = "atticd-agent-bundle"
VERSION = 2
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
MANIFEST_MAX = 4 * 1024 * 1024
SIGNATURE_MAX = 1024
BLOCK = 512

# Marks a manifest key to remove in manifest_overrides.
DROP = object()


# ---- keys and signatures (section 4) ---------------------------------------------------------

def _openssl(*args: str, input: bytes | None = None) -> bytes:
    r = subprocess.run(["openssl", *args], input=input, capture_output=True)
    if r.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed: {r.stderr.decode(errors='replace')}")
    return r.stdout


@dataclass
class Key:
    """A private key file (PEM) and its public key file (PEM PUBLIC KEY)."""
    private: Path
    public: Path
    algorithm: str  # "ec" (P-256), "ed25519" or "rsa"

    @classmethod
    def generate(cls, directory: str | os.PathLike, name: str, algorithm: str = "ec") -> "Key":
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        private, public = directory / f"{name}.pem", directory / f"{name}.pub"
        if algorithm == "ec":
            args = ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]
        elif algorithm == "ed25519":
            args = ["-algorithm", "ed25519"]
        elif algorithm == "rsa":
            args = ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]
        else:
            raise ValueError(algorithm)
        _openssl("genpkey", *args, "-out", str(private))
        _openssl("pkey", "-in", str(private), "-pubout", "-out", str(public))
        return cls(private, public, algorithm)

    def sign(self, data: bytes, digest: str = "sha256") -> bytes:
        """The signature of section 4: `openssl dgst -sha256 -sign` (ECDSA, and RSA), or
        `openssl pkeyutl -sign -rawin` (Ed25519). digest: another digest for ECDSA/RSA, for the
        refusal tests."""
        with tempfile.TemporaryDirectory(prefix="bundlewriter-") as d:
            src, sig = Path(d) / "manifest.json", Path(d) / "manifest.sig"
            src.write_bytes(data)
            if self.algorithm == "ed25519":
                _openssl("pkeyutl", "-sign", "-rawin", "-inkey", str(self.private), "-in", str(src),
                         "-out", str(sig))
            else:
                _openssl("dgst", f"-{digest}", "-sign", str(self.private), "-out", str(sig), str(src))
            return sig.read_bytes()

    def verify(self, data: bytes, sig: bytes) -> bool:
        """openssl's own opinion of a signature (to check the writer, not the agent)."""
        with tempfile.TemporaryDirectory(prefix="bundlewriter-") as d:
            src, s = Path(d) / "m", Path(d) / "s"
            src.write_bytes(data)
            s.write_bytes(sig)
            if self.algorithm == "ed25519":
                args = ["pkeyutl", "-verify", "-rawin", "-pubin", "-inkey", str(self.public), "-in", str(src),
                        "-sigfile", str(s)]
            else:
                args = ["dgst", "-sha256", "-verify", str(self.public), "-signature", str(s), str(src)]
            return subprocess.run(["openssl", *args], capture_output=True).returncode == 0

    def fingerprint(self) -> str:
        """SHA256: and the hex SHA-256 of the DER SubjectPublicKeyInfo."""
        der = _openssl("pkey", "-pubin", "-in", str(self.public), "-outform", "DER")
        return "SHA256:" + hashlib.sha256(der).hexdigest()


# ---- tar (sections 1 and 2) ---------------------------------------------------------------------

def pax_records(keywords: dict[str, str | bytes]) -> bytes:
    """The body of a pax extended header: "<len> <keyword>=<value>\\n" records, where <len>
    counts the whole record including itself."""
    out = b""
    for k, v in keywords.items():
        kv = k.encode() + b"=" + (v if isinstance(v, bytes) else str(v).encode()) + b"\n"
        n = len(kv) + 2
        while len(str(n).encode()) + 1 + len(kv) != n:
            n = len(str(n).encode()) + 1 + len(kv)
        out += str(n).encode() + b" " + kv
    return out


def _pad(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % BLOCK)


def _octal(n: int, width: int) -> bytes:
    """A NUL-terminated octal field of width bytes."""
    return ("%0*o" % (width - 1, n)).encode() + b"\0"


def ustar_header(name: str | bytes, *, size: int = 0, typeflag: bytes = b"0", mode: int = 0o644,
                 linkname: str | bytes = b"", prefix: str | bytes = b"", devmajor: int = 0,
                 devminor: int = 0, mtime: int = 1_700_000_000, magic: bytes = b"ustar\x0000",
                 checksum: int | None = None, size_field: bytes | None = None) -> bytes:
    """One 512-byte ustar header written field by field: no library between the test and
    the bytes (names are not checked, sizes need not match anything). checksum: a wrong
    value to write instead of the right one; size_field: the raw 12 bytes of the size field."""
    enc = lambda s: s if isinstance(s, bytes) else s.encode()  # noqa: E731
    name, linkname, prefix = enc(name), enc(linkname), enc(prefix)
    if len(name) > 100 or len(linkname) > 100 or len(prefix) > 155:
        raise ValueError("ustar fields too long: use pax keywords")
    h = bytearray(BLOCK)
    h[0:100] = name.ljust(100, b"\0")
    h[100:108] = _octal(mode, 8)
    h[108:116] = _octal(0, 8)
    h[116:124] = _octal(0, 8)
    h[124:136] = size_field if size_field is not None else _octal(size, 12)
    h[136:148] = _octal(mtime, 12)
    h[148:156] = b" " * 8
    h[156:157] = typeflag
    h[157:257] = linkname.ljust(100, b"\0")
    h[257:265] = magic
    h[265:297] = b"root".ljust(32, b"\0")
    h[297:329] = b"root".ljust(32, b"\0")
    h[329:337] = _octal(devmajor, 8)
    h[337:345] = _octal(devminor, 8)
    h[345:500] = prefix.ljust(155, b"\0")
    s = sum(h) if checksum is None else checksum
    h[148:156] = ("%06o" % s).encode() + b"\0 "
    return bytes(h)


@dataclass
class Entry:
    """One archive member. By default a regular file whose header states len(data).

    type:        the type flag (b"0" regular, b"2" symlink, b"1" hard link, b"3"/b"4"
                 devices, b"5" directory, b"6" FIFO, b"7", b"g", b"L", b"S", ... anything)
    header_size: the size the header states (default len(data)); the data written is
                 always `data`, padded to a block: a different value makes a lying header
    pax:         more pax keywords for an extended header before this member
    pax_size:    a pax `size` keyword (written anyway for sizes of 8 GiB and more, which
                 the ustar size field cannot hold: it says 0 then)
    raw:         these bytes instead of everything (header, data and padding)
    """
    name: str | bytes
    data: bytes = b""
    type: bytes = b"0"
    header_size: int | None = None
    linkname: str | bytes = b""
    mode: int = 0o644
    devmajor: int = 0
    devminor: int = 0
    pax: dict | None = None
    pax_size: int | None = None
    pad: bool = True
    raw: bytes | None = None

    def to_bytes(self) -> bytes:
        if self.raw is not None:
            return self.raw
        name = self.name if isinstance(self.name, bytes) else self.name.encode()
        size = len(self.data) if self.header_size is None else self.header_size
        keywords = dict(self.pax or {})
        ustar_name = name
        if len(name) > 100 or any(b >= 0x80 for b in name):
            keywords.setdefault("path", name)
            ustar_name = name[-100:].lstrip(b"/")[:100] or b"x"
            ustar_name = ustar_name.decode("ascii", "replace").encode("ascii", "replace")
        if self.pax_size is not None:
            keywords["size"] = str(self.pax_size)
        elif size >= 8 ** 11:
            keywords["size"] = str(size)   # does not fit the 11 octal digits of ustar
        out = b""
        if keywords:
            body = pax_records(keywords)
            pax_name = b"PaxHeaders/" + ustar_name.split(b"/")[-1][:80]
            out += ustar_header(pax_name, size=len(body), typeflag=b"x") + _pad(body)
        size_in_header = size if size < 8 ** 11 else 0
        out += ustar_header(ustar_name, size=size_in_header, typeflag=self.type, mode=self.mode,
                            linkname=self.linkname, devmajor=self.devmajor, devminor=self.devminor)
        out += _pad(self.data) if self.pad else self.data
        return out


def global_pax_header(keywords: dict) -> Entry:
    """A global pax header (typeflag g), which the format does not allow."""
    body = pax_records(keywords)
    return Entry(b"", raw=ustar_header("pax_global_header", size=len(body), typeflag=b"g") + _pad(body))


END_OF_ARCHIVE = b"\0" * (2 * BLOCK)


def write_tar(entries: list[Entry], *, end: bool = True, trailing: bytes = b"") -> bytes:
    """The archive: every entry in order, the two zero blocks (unless end=False), trailing."""
    return b"".join(e.to_bytes() for e in entries) + (END_OF_ARCHIVE if end else b"") + trailing


def write_tar_tarfile(entries: list[tuple[str, bytes]], fmt=tarfile.PAX_FORMAT) -> bytes:
    """The same archive as Python's tarfile writes it (pax or ustar), for regular files only:
    a second writer of the container, to check ours against."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as t:
        for name, data in entries:
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            ti.mode = 0o644
            ti.mtime = 1_700_000_000
            t.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def compress(data: bytes, how: str | None) -> bytes:
    """The archive compressed as a whole: gzip, xz, zstd (allowed); bzip2, zip (refused)."""
    if how in (None, "none"):
        return data
    if how == "gzip":
        return gzip.compress(data, mtime=0)
    if how == "xz":
        return lzma.compress(data, format=lzma.FORMAT_XZ)
    if how == "zstd":
        return subprocess.run(["zstd", "-q", "-c", "-"], input=data, capture_output=True, check=True).stdout
    if how == "bzip2":
        return bz2.compress(data)
    if how == "zip":
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            z.writestr("bundle.tar", data)
        return buf.getvalue()
    raise ValueError(how)


# ---- the manifest (section 3) --------------------------------------------------------------------

def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def git_pack(repo: str | os.PathLike, rev: str, env: dict | None = None) -> bytes:
    """A git packfile (version 2, not thin) with rev and every object reachable from it, as
    `git rev-list --objects REV | git pack-objects --stdout` writes it."""
    objects = subprocess.run(["git", "-C", os.fspath(repo), "rev-list", "--objects", rev], env=env,
                             capture_output=True, check=True).stdout
    pack = subprocess.run(["git", "-C", os.fspath(repo), "pack-objects", "--stdout"], input=objects, env=env,
                          capture_output=True, check=True).stdout
    assert pack[:4] == b"PACK" and pack[4:8] == b"\0\0\0\2", "not a version 2 pack"
    return pack


def build_system(run, flake: str, host: str) -> str:
    """The connected side's build of a host: `nix build` of
    nixosConfigurations.<host>.config.system.build.toplevel of flake (a flake reference), with
    run(argv) running a command where the nix store is; returns the toplevel's store path."""
    r = run(["nix", "build", "--no-link", "--json",
             f"{flake}#nixosConfigurations.\"{host}\".config.system.build.toplevel"])
    if r.returncode != 0:
        raise RuntimeError(f"nix build failed: {r.stderr}")
    return json.loads(r.stdout)[0]["outputs"]["out"]


def manifest_json(obj) -> bytes:
    """The manifest bytes: compact JSON, UTF-8 (any valid JSON would do)."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass
class Bundle:
    """A bundle being written. The defaults make a valid bundle for host/revision with the
    pack as the only member, no closure and no images; every part can be replaced."""
    host: str
    revision: str
    key: Key | None = None
    sequence: int = 1
    created: int | None = None
    expires: int | None = None
    repository: str = "repository.pack"
    system: str | None = None        # the toplevel's store path (section 3, "system")
    containers: dict = field(default_factory=dict)  # {name: image reference}
    closure: dict | None = None
    images: list | None = None
    # path -> content of the listed members (after manifest.sig), in archive order
    members: dict[str, bytes] = field(default_factory=dict)

    # Hooks, applied in build():
    manifest_overrides: dict = field(default_factory=dict)   # merged into the manifest object
    member_overrides: dict = field(default_factory=dict)     # path -> {"size": .., "sha256": ..} in the list
    unlisted: set = field(default_factory=set)               # members in the archive, not in the list
    extra_listed: dict = field(default_factory=dict)         # listed (path -> content), not in the archive

    def __post_init__(self):
        now = int(time.time())
        if self.created is None:
            self.created = now
        if self.expires is None:
            self.expires = self.created + 7 * 24 * 3600

    def add(self, path: str, data: bytes) -> "Bundle":
        self.members[path] = data
        return self

    def add_pack(self, repo: str | os.PathLike, rev: str | None = None, env: dict | None = None) -> "Bundle":
        return self.add(self.repository, git_pack(repo, rev or self.revision, env))

    def add_tree(self, prefix: str, directory: str | os.PathLike) -> "Bundle":
        """Every regular file below directory as prefix/<relative path> (a binary cache, an
        OCI layout)."""
        directory = Path(directory)
        for p in sorted(directory.rglob("*")):
            if p.is_file():
                self.add(f"{prefix}/{p.relative_to(directory).as_posix()}", p.read_bytes())
        return self

    def member_list(self) -> list[dict]:
        out = []
        for path, data in list(self.members.items()) + list(self.extra_listed.items()):
            if path in self.unlisted:
                continue
            m = {"path": path, "size": len(data), "sha256": sha256_hex(data)}
            m.update(self.member_overrides.get(path, {}))
            out.append({k: v for k, v in m.items() if v is not DROP})
        return out

    def manifest(self) -> dict:
        m = {
            "format": FORMAT,
            "version": VERSION,
            "host": self.host,
            "revision": self.revision,
            "system": self.system,
            "containers": self.containers,
            "sequence": self.sequence,
            "created": self.created,
            "expires": self.expires,
            "repository": self.repository,
            "closure": self.closure,
            "images": self.images,
            "members": self.member_list(),
        }
        for k, v in self.manifest_overrides.items():
            if v is DROP:
                m.pop(k, None)
            else:
                m[k] = v
        return m

    def manifest_bytes(self) -> bytes:
        return manifest_json(self.manifest())

    def entries(self, manifest: bytes | None = None, signature: bytes | None = None) -> list[Entry]:
        """manifest.json, manifest.sig, then the members in order: the entries of a valid
        bundle (given this manifest and signature), to reorder or change."""
        manifest = self.manifest_bytes() if manifest is None else manifest
        if signature is None:
            signature = self.key.sign(manifest)
        return ([Entry(MANIFEST, manifest), Entry(SIGNATURE, signature)]
                + [Entry(path, data) for path, data in self.members.items()])

    def build(self, *, manifest: bytes | None = None, signature: bytes | None = None,
              entries: list[Entry] | None = None, compression: str | None = None, end: bool = True,
              trailing: bytes = b"") -> bytes:
        """The bundle's bytes. manifest/signature: exact bytes instead of the generated ones
        (the signature is made over `manifest` unless given); entries: the whole archive."""
        if entries is None:
            entries = self.entries(manifest, signature)
        return compress(write_tar(entries, end=end, trailing=trailing), compression)

    def write(self, path: str | os.PathLike, **kw) -> Path:
        path = Path(path)
        path.write_bytes(self.build(**kw))
        return path


def read_members(data: bytes) -> list[tuple[str, bytes]]:
    """The regular members of an uncompressed bundle as Python's tarfile reads them (to
    check the writer)."""
    out = []
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as t:
        for ti in t:
            out.append((ti.name, t.extractfile(ti).read() if ti.isreg() else b""))
    return out
