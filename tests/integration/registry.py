# SPDX-License-Identifier: MIT
"""A real OCI registry with Cosign-format signatures for the integration tests (Python 3
standard library and the openssl CLI only).

- Registry: Debian's docker-registry (distribution 2.8.2) on 127.0.0.1, anonymous, basic
  auth (htpasswd, bcrypt) or token auth (tests/servers/registry-token-server.py), optional TLS.
- BadRegistry: tests/servers/registry-bad.py, a registry that misbehaves in one of
  BAD_MODES ("500", "stall", "huge-manifest", "wrong-content-length", "redirect-loop",
  "garbage-json", "drip", "close-mid-stream", "wrong-shape", and below a well-behaved image
  manifest "drip-blob", "close-mid-stream-blob", "huge-blob", "wrong-shape-sig").
- OciClient: a minimal registry client (urllib) that pushes and reads blobs and manifests,
  with the three kinds of auth.
- push_image, push_index: small valid OCI (or Docker schema 2) images and image indexes.
- make_cosign_keypair, sign_classic, sign_bundle, attest_sbom: signatures laid out exactly as
  cosign lays them out in a registry (/work/shared/reference/cosign-format.md), made with
  the openssl CLI, with tamper= options for negative tests.

    with Registry(tmp) as reg:                       # anonymous, http://127.0.0.1:PORT
        digest = push_image(reg, "app", "v1")
        key, pub = make_cosign_keypair(tmp / "keys")
        sign_classic(reg, "app", digest, key)        # app:sha256-<hex>.sig
        sign_bundle(reg, "app", digest, key)         # referrer + fallback index app:sha256-<hex>
        attest_sbom(reg, "app", digest, key)         # app:sha256-<hex>.att
        image_ref = f"{reg.host}/app@{digest}"       # reg.host goes in insecure-registries

Every server is started by its constructor (on a free port; it returns once the server
answers) and killed, with its whole process group, by stop() or at the end of a `with`
block; it also dies with the process that started it (PR_SET_PDEATHSIG, see servers.py).
Logs are written below the given work directory (registry-N.log, registry-N-token.log, ...).

Timings on the 2-CPU test machine: Registry start 0.06-0.15 s (anonymous, basic), 0.25-0.35 s
with token auth (signing key, certificate and token server); push_image 0.05-0.15 s;
sign_classic or sign_bundle 0.05-0.1 s (each registry write costs the registry 5-20 ms).

The registry is distribution 2.8.2: it answers 404 to a manifest GET whose Accept lacks the
OCI types (OciClient always sends all four manifest and index types), and it has no
Referrers API, so bundle referrers are found through the fallback index at tag
sha256-<hex>, which sign_bundle / attest_sbom(fmt="bundle") maintain as
go-containerregistry does.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import itertools
import json
import os
import re
import ssl
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
from collections import namedtuple
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from world import free_port  # noqa: E402
from servers import ServerError, TlsFiles, _Server, _tail, make_tls_ca  # noqa: E402

SERVERS_DIR = Path(__file__).resolve().parents[1] / "servers"
TOKEN_SERVER = SERVERS_DIR / "registry-token-server.py"
BAD_SERVER = SERVERS_DIR / "registry-bad.py"
DOCKER_REGISTRY = "/usr/bin/docker-registry"
BAD_MODES = ("500", "stall", "huge-manifest", "wrong-content-length", "redirect-loop", "garbage-json",
             "drip", "close-mid-stream", "wrong-shape",
             "drip-blob", "close-mid-stream-blob", "huge-blob", "wrong-shape-sig", "token-503", "redirect-http")

# media types
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
MANIFEST_ACCEPT = ", ".join((OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST))
SIMPLESIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
DSSE_ENVELOPE = "application/vnd.dsse.envelope.v1+json"
BUNDLE_V03 = "application/vnd.dev.sigstore.bundle.v0.3+json"
INTOTO = "application/vnd.in-toto+json"
COSIGN_SIGN_PREDICATE = "https://sigstore.dev/cosign/sign/v1"
SPDX_PREDICATE = "https://spdx.dev/Document"
SIG_ANNOTATION = "dev.cosignproject.cosign/signature"
EMPTY_JSON = b"{}"

_counter = itertools.count(1)


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _json(obj) -> bytes:
    """Compact JSON as Go's encoding/json writes it (no spaces; keys in the order given)."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def _yaml(value, indent: int = 0) -> str:
    """Block-style YAML for nested dicts and lists; scalars as JSON (valid YAML)."""
    pad = "  " * indent
    out = []
    for k, v in value.items():
        if isinstance(v, dict):
            out.append(f"{pad}{k}:\n{_yaml(v, indent + 1)}")
        elif isinstance(v, list):
            out.append(f"{pad}{k}:\n" + "".join(f"{pad}  - {json.dumps(x)}\n" for x in v))
        else:
            out.append(f"{pad}{k}: {json.dumps(v)}\n")
    return "".join(out)


def _openssl(*args, data: bytes | None = None) -> bytes:
    r = subprocess.run(["openssl", *map(str, args)], input=data, capture_output=True)
    if r.returncode != 0:
        raise ServerError(f"openssl {' '.join(map(str, args))}: {r.stderr.decode(errors='replace')}")
    return r.stdout


def _bcrypt(password: str) -> str:
    """A bcrypt hash ($2b$, cost 4: fast, and the registry checks it on every request).
    Python 3.11's crypt module (libxcrypt), else htpasswd -B (apache2-utils)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import crypt  # removed in Python 3.13
        h = crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16))
        if h and h.startswith("$2"):
            return h
    except ImportError:
        pass
    r = subprocess.run(["htpasswd", "-nbBC", "4", "u", password], capture_output=True, text=True)
    if r.returncode != 0:
        raise ServerError("no bcrypt: neither Python's crypt module nor htpasswd (apache2-utils)")
    return r.stdout.strip().split(":", 1)[1]


def libtrust_kid(spki_der: bytes) -> str:
    """The key ID distribution 2.8.2 gives a public key (libtrust): sha256 of the DER
    SubjectPublicKeyInfo, first 240 bits, base32, 12 groups of 4 characters joined by ':'."""
    s = base64.b32encode(hashlib.sha256(spki_der).digest()[:30]).decode().rstrip("=")
    return ":".join(s[i:i + 4] for i in range(0, len(s), 4))


# ---------------------------------------------------------------------------------------------
# client


class RegistryError(RuntimeError):
    def __init__(self, message, status=None, body=b""):
        super().__init__(message)
        self.status, self.body = status, body


Response = namedtuple("Response", "status headers body")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *a, **kw):
        return None


def _parse_challenge(value: str):
    """'Bearer realm="x",service="y",scope="z"' -> ("bearer", {realm: x, ...})."""
    scheme, _, rest = (value or "").strip().partition(" ")
    params = dict(re.findall(r'(\w+)="([^"]*)"', rest))
    return scheme.lower(), params


class OciClient:
    """A minimal OCI distribution client.

    auth: None (anonymous), (user, password), or ("basic"|"token", user, password) as given
    to Registry: on a 401 it answers a Basic challenge with the credentials and a Bearer
    challenge by fetching a token from the realm (with the credentials as basic auth if any,
    anonymously otherwise) for the scope the registry names, and retries once.
    cafile: CA certificate for https; insecure=True skips verification."""

    def __init__(self, url: str, auth=None, *, cafile=None, insecure: bool = False, timeout: float = 30):
        self.url = url.rstrip("/")
        self.host = urllib.parse.urlsplit(self.url).netloc
        if auth is not None and len(auth) == 3:
            auth = auth[1:]
        self.user, self.password = auth if auth else (None, None)
        self.timeout = timeout
        ctx = None
        if self.url.startswith("https:"):
            ctx = ssl.create_default_context(cafile=str(cafile) if cafile else None)
            if insecure:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                                   urllib.request.HTTPSHandler(context=ctx), _NoRedirect())
        self._authz = None            # Authorization header for basic
        self._bearer = None           # (realm, service) once a Bearer challenge was seen
        self._tokens = {}             # scope -> token
        self.token_requests = 0

    # -- raw HTTP

    def raw(self, method: str, url: str, data: bytes | None = None, headers=None) -> Response:
        if not url.startswith(("http:", "https:")):
            url = self.url + url
        req = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
        try:
            with self._opener.open(req, timeout=self.timeout) as r:
                return Response(r.status, r.headers, r.read())
        except urllib.error.HTTPError as e:
            body = e.read() if e.fp else b""
            return Response(e.code, e.headers, body)

    def _basic_header(self) -> str:
        cred = f"{self.user}:{self.password}".encode()
        return "Basic " + base64.b64encode(cred).decode()

    def token(self, scope: str, *, realm=None, service=None) -> str:
        """A bearer token for scope ("repository:NAME:pull,push") from the realm."""
        realm = realm or self._bearer[0]
        service = service if service is not None else self._bearer[1]
        q = urllib.parse.urlencode([("service", service), ("scope", scope)])
        headers = {"Authorization": self._basic_header()} if self.user is not None else {}
        self.token_requests += 1
        r = self.raw("GET", f"{realm}?{q}", headers=headers)
        if r.status != 200:
            raise RegistryError(f"token server {realm}: {r.status} {r.body[:200]!r}", r.status, r.body)
        doc = json.loads(r.body)
        return doc.get("token") or doc["access_token"]

    def request(self, method: str, path: str, data: bytes | None = None, headers=None, *,
                repo: str | None = None, expect=None) -> Response:
        """A registry request with auth. expect: statuses that are fine (others raise)."""
        hdrs = dict(headers or {})
        scope = None
        if repo is not None:
            scope = f"repository:{repo}:" + ("pull" if method in ("GET", "HEAD") else "pull,push")
        if self._authz:
            hdrs["Authorization"] = self._authz
        elif self._bearer and scope:
            if scope not in self._tokens:
                try:
                    self._tokens[scope] = self.token(scope)
                except RegistryError:
                    pass
            if scope in self._tokens:
                hdrs["Authorization"] = "Bearer " + self._tokens[scope]
        r = self.raw(method, path, data, hdrs)
        if r.status == 401:
            scheme, params = _parse_challenge(r.headers.get("WWW-Authenticate", ""))
            retry = False
            if scheme == "basic" and self.user is not None and not self._authz:
                self._authz = self._basic_header()
                retry = True
            elif scheme == "bearer" and "realm" in params:
                self._bearer = (params["realm"], params.get("service", ""))
                want = params.get("scope") or scope
                if want:
                    try:
                        tok = self.token(want)
                    except RegistryError:
                        tok = None
                    if tok:
                        self._tokens[want] = tok
                        if scope:
                            self._tokens[scope] = tok
                        hdrs["Authorization"] = "Bearer " + tok
                        retry = True
            if retry:
                if self._authz:
                    hdrs["Authorization"] = self._authz
                r = self.raw(method, path, data, hdrs)
        if expect is not None and r.status not in expect:
            raise RegistryError(f"{method} {path}: {r.status} {r.body[:300]!r}", r.status, r.body)
        return r

    # -- blobs

    def blob_exists(self, repo: str, digest: str) -> bool:
        return self.request("HEAD", f"/v2/{repo}/blobs/{digest}", repo=repo, expect=(200, 404)).status == 200

    def push_blob(self, repo: str, data: bytes) -> str:
        """Upload data (POST then PUT); returns its digest. Skips blobs already there."""
        digest = sha256_digest(data)
        if self.blob_exists(repo, digest):
            return digest
        r = self.request("POST", f"/v2/{repo}/blobs/uploads/", b"", {"Content-Length": "0"},
                         repo=repo, expect=(202,))
        loc = r.headers["Location"]
        if not loc.startswith(("http:", "https:")):
            loc = self.url + loc
        sep = "&" if "?" in loc else "?"
        self.request("PUT", f"{loc}{sep}digest={urllib.parse.quote(digest)}", data,
                     {"Content-Type": "application/octet-stream"}, repo=repo, expect=(201,))
        return digest

    def get_blob(self, repo: str, digest: str) -> bytes:
        return self.request("GET", f"/v2/{repo}/blobs/{digest}", repo=repo, expect=(200,)).body

    # -- manifests

    def push_manifest(self, repo: str, ref: str, manifest: bytes, media_type: str) -> str:
        """PUT a manifest (ref: a tag or its digest); returns its digest."""
        digest = sha256_digest(manifest)
        r = self.request("PUT", f"/v2/{repo}/manifests/{ref}", manifest, {"Content-Type": media_type},
                         repo=repo, expect=(201,))
        got = r.headers.get("Docker-Content-Digest")
        if got and got != digest:
            raise RegistryError(f"registry says manifest digest {got}, expected {digest}")
        return digest

    def get_manifest(self, repo: str, ref: str):
        """(bytes, media type, digest) of a manifest or index; None when it does not exist."""
        r = self.request("GET", f"/v2/{repo}/manifests/{ref}", headers={"Accept": MANIFEST_ACCEPT},
                         repo=repo, expect=(200, 404))
        if r.status == 404:
            return None
        ctype = r.headers.get("Content-Type", "").split(";")[0].strip()
        return r.body, ctype, sha256_digest(r.body)

    def head_manifest(self, repo: str, ref: str):
        """The descriptor {mediaType, size, digest} of a manifest, or None."""
        got = self.get_manifest(repo, ref)
        if got is None:
            return None
        body, ctype, digest = got
        return {"mediaType": ctype, "size": len(body), "digest": digest}

    def delete_manifest(self, repo: str, digest: str):
        self.request("DELETE", f"/v2/{repo}/manifests/{digest}", repo=repo, expect=(202,))

    def tags(self, repo: str) -> list[str]:
        r = self.request("GET", f"/v2/{repo}/tags/list", repo=repo, expect=(200, 404))
        return (json.loads(r.body).get("tags") or []) if r.status == 200 else []


def _client(reg) -> OciClient:
    return reg if isinstance(reg, OciClient) else reg.client()


# ---------------------------------------------------------------------------------------------
# servers


def _tls_files(tls, workdir: Path, name: str):
    """tls: None, True (a new CA + server certificate), TlsFiles / (ca, cert, key), or
    (cert, key). Returns (ca or None, cert, key) or None."""
    if not tls:
        return None
    if tls is True:
        return tuple(make_tls_ca(workdir / f"{name}-tls"))
    if len(tls) == 3:
        return tuple(tls)
    return (None, tls[0], tls[1])


class Registry(_Server):
    """docker-registry (distribution 2.8.2) on 127.0.0.1:PORT, filesystem storage in
    workdir/registry-N/storage, log workdir/registry-N.log.

    auth: None (anonymous: anyone may pull and push); ("basic", user, password): htpasswd
    (bcrypt) for every request; ("token", user, password): token auth with a token server
    (tests/servers/registry-token-server.py) on another port, which gives `user` pull and push
    on every repository. users: more {name: password} (basic and token); acl: for token auth,
    {user: {repo-glob: [actions]}} replacing the default pull+push on "*";
    anonymous_pull: token auth only, anonymous clients get pull on every repository
    (anonymous: a {repo-glob: [actions]} dict instead). token_header: "kid" (default) or
    "x5c", how the token names its signing key; token_key: "ec" (ES256, default) or "rsa".
    tls: True (a new private CA; .ca is its certificate), TlsFiles, or (cert, key).

    .host "127.0.0.1:PORT" (for insecure-registries and image references), .url,
    .storage (the filesystem root), .ca, .token_url, .token_server, .credentials (user,
    password) or None, .started_in (seconds), client(auth=...) an OciClient (with the
    registry's own credentials by default), push_blob/get_blob/push_manifest/get_manifest
    (that client's), ref(repo, digest or tag), blob_path(digest), requests() (its access log:
    ["GET /v2/app/manifests/v1 200", ...]). Basic auth applies to every request (htpasswd
    has no anonymous access); anonymous pulls need token auth with anonymous_pull=True."""

    kind = "registry"

    def __init__(self, workdir, *, auth=None, tls=None, users=None, acl=None, anonymous_pull=False,
                 anonymous=None, token_header: str = "kid", token_key: str = "ec", token_ttl: int = 300):
        super().__init__(workdir)
        self.workdir = self.logdir
        self.dir = self.workdir / self.name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.storage = self.dir / "storage"
        self.storage.mkdir(exist_ok=True)
        self.config_path = self.dir / "config.yml"
        self.auth_mode = auth[0] if auth else None
        if auth and (len(auth) != 3 or auth[0] not in ("basic", "token")):
            raise ValueError('auth must be None, ("basic", user, password) or ("token", user, password)')
        self.credentials = (auth[1], auth[2]) if auth else None
        self.users = dict(users or {})
        if auth:
            self.users[auth[1]] = auth[2]
        tlsf = _tls_files(tls, self.workdir, self.name)
        self.ca = tlsf[0] if tlsf else None
        self.scheme = "https" if tlsf else "http"
        self.token_server = None
        self.token_url = None
        self._default_client = None
        t0 = time.monotonic()
        auth_cfg = None
        if self.auth_mode == "basic":
            htp = self.dir / "htpasswd"
            htp.write_text("".join(f"{u}:{_bcrypt(p)}\n" for u, p in self.users.items()))
            auth_cfg = {"htpasswd": {"realm": "atticd-test-registry", "path": str(htp)}}
        elif self.auth_mode == "token":
            if anonymous is None:
                anonymous = {"*": ["pull"]} if anonymous_pull else {}
            self.token_server = TokenServer(self.workdir, self.dir / "token", users=self.users, acl=acl or {},
                                            anonymous=anonymous, header=token_header, key_type=token_key,
                                            ttl=token_ttl, tls=tlsf)
            self.token_url = self.token_server.realm
            auth_cfg = {"token": {"realm": self.token_server.realm, "service": self.token_server.service,
                                  "issuer": self.token_server.issuer,
                                  "rootcertbundle": str(self.token_server.cert)}}

        def argv(port):
            http = {"addr": f"127.0.0.1:{port}", "secret": "atticd-test-registry-secret",
                    "headers": {"X-Content-Type-Options": ["nosniff"]}}
            if tlsf:
                http["tls"] = {"certificate": str(tlsf[1]), "key": str(tlsf[2])}
            cfg = {"version": "0.1",
                   "log": {"level": "info", "formatter": "text", "fields": {"service": self.name}},
                   "storage": {"filesystem": {"rootdirectory": str(self.storage)},
                               "delete": {"enabled": True},
                               "maintenance": {"uploadpurging": {"enabled": False}}},
                   "http": http,
                   "health": {"storagedriver": {"enabled": False}}}
            if auth_cfg:
                cfg["auth"] = auth_cfg
            self.config_path.write_text(_yaml(cfg))
            return [DOCKER_REGISTRY, "serve", self.config_path]

        env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
        try:
            for attempt in range(5):
                self.port = free_port()
                self._spawn(argv(self.port), env=env)
                try:
                    self._wait_v2()
                    break
                except ServerError:
                    in_use = "address already in use" in _tail(self.log, 2000)
                    self.stop()
                    if not in_use or attempt == 4:
                        raise
        except BaseException:
            if self.token_server:
                self.token_server.stop()
            raise
        self.started_in = time.monotonic() - t0

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _wait_v2(self, timeout: float = 10):
        ctx = ssl._create_unverified_context() if self.scheme == "https" else None
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                             urllib.request.HTTPSHandler(context=ctx))
        deadline = time.monotonic() + timeout
        url = f"{self.scheme}://127.0.0.1:{self.port}/v2/"
        while True:
            if self.proc.poll() is not None:
                raise ServerError(f"{self.name} exited with {self.proc.returncode}:\n{_tail(self.log)}")
            try:
                with opener.open(url, timeout=1) as r:
                    r.read()
                return
            except urllib.error.HTTPError as e:
                if e.code in (200, 401):
                    return
                raise ServerError(f"{self.name}: GET /v2/ answered {e.code}")
            except (OSError, urllib.error.URLError):
                pass
            if time.monotonic() > deadline:
                raise ServerError(f"{self.name} did not answer GET /v2/ within {timeout} s:\n{_tail(self.log)}")
            time.sleep(0.005)

    def client(self, auth="default", **kw) -> OciClient:
        """An OciClient; auth "default" = the registry's credentials, None = anonymous,
        (user, password) = those."""
        if auth == "default" and not kw:
            if self._default_client is None:
                self._default_client = OciClient(self.url, self.credentials, cafile=self.ca)
            return self._default_client
        if auth == "default":
            auth = self.credentials
        kw.setdefault("cafile", self.ca)
        return OciClient(self.url, auth, **kw)

    # the OciClient methods, with the registry's own credentials
    def push_blob(self, repo: str, data: bytes) -> str:
        return self.client().push_blob(repo, data)

    def get_blob(self, repo: str, digest: str) -> bytes:
        return self.client().get_blob(repo, digest)

    def push_manifest(self, repo: str, ref: str, manifest: bytes, media_type: str) -> str:
        return self.client().push_manifest(repo, ref, manifest, media_type)

    def get_manifest(self, repo: str, ref: str):
        return self.client().get_manifest(repo, ref)

    def requests(self) -> list[str]:
        """The requests the registry answered so far, from its access log, as
        "METHOD /path?query STATUS" (e.g. "GET /v2/app/manifests/v1 200"), oldest first."""
        out = []
        try:
            text = self.log.read_text(errors="replace")
        except FileNotFoundError:
            return out
        for m in re.finditer(r'^\S+ - \S+ \[[^\]]*\] "(\w+) (\S+) HTTP/[\d.]+" (\d{3}) ', text, re.M):
            path = m.group(2)
            if path.startswith(("http://", "https://")):
                u = urllib.parse.urlsplit(path)
                path = u.path + (f"?{u.query}" if u.query else "")
            out.append(f"{m.group(1)} {path} {m.group(3)}")
        return out

    def ref(self, repo: str, digest_or_tag: str) -> str:
        """An image reference HOST:PORT/repo@sha256:... or HOST:PORT/repo:tag."""
        sep = "@" if digest_or_tag.startswith("sha256:") else ":"
        return f"{self.host}/{repo}{sep}{digest_or_tag}"

    def blob_path(self, digest: str) -> Path:
        """Where the filesystem driver keeps a blob's bytes."""
        algo, hexd = digest.split(":", 1)
        return self.storage / "docker/registry/v2/blobs" / algo / hexd[:2] / hexd / "data"

    def stop(self):
        super().stop()
        ts = getattr(self, "token_server", None)
        if ts:
            ts.stop()


class _PortFileServer(_Server):
    """A Python server of tests/servers/ that binds port 0 and writes it to a port file."""

    def _start(self, argv, env=None, timeout: float = 10):
        port_file = self.logdir / f"{self.name}.port"
        port_file.unlink(missing_ok=True)
        self._start_with_port_file([sys.executable, "-S", *argv, "--port-file", port_file], env, port_file,
                                   timeout)

    def _entries(self, path: Path) -> list[dict]:
        try:
            return [json.loads(line) for line in path.read_text().splitlines() if line]
        except FileNotFoundError:
            return []


class TokenServer(_PortFileServer):
    """tests/servers/registry-token-server.py with a fresh signing key and self-signed
    certificate (the registry's rootcertbundle) in keydir. Normally made by Registry."""

    kind = "registry-token"
    service = "atticd-test-registry"
    issuer = "atticd-test-token-issuer"

    def __init__(self, logdir, keydir, *, users, acl=None, anonymous=None, header="kid", key_type="ec",
                 ttl=300, tls=None):
        super().__init__(logdir)
        keydir = Path(keydir)
        keydir.mkdir(parents=True, exist_ok=True)
        self.key, self.cert = keydir / "token-signing.key", keydir / "token-signing.pem"
        newkey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"] if key_type == "ec" else \
            ["-newkey", "rsa:2048"]
        _openssl("req", "-x509", *newkey, "-nodes", "-keyout", self.key, "-out", self.cert, "-days", "30",
                 "-subj", "/CN=atticd-test token issuer")
        acl = acl or {}
        cfg = {"service": self.service, "issuer": self.issuer, "key": str(self.key), "cert": str(self.cert),
               "header": header, "ttl": ttl, "anonymous": anonymous or {},
               "users": {u: {"password": p, **({"access": acl[u]} if u in acl else {})} for u, p in users.items()}}
        self.config = keydir / "token-server.json"
        self.config.write_text(json.dumps(cfg, indent=1))
        self.json_log = self.logdir / f"{self.name}.requests.jsonl"
        self.json_log.unlink(missing_ok=True)
        argv = [TOKEN_SERVER, "--config", self.config, "--log", self.json_log]
        self.scheme = "http"
        if tls:
            argv += ["--cert", tls[1], "--key", tls[2]]
            self.scheme = "https"
        self._start(argv)

    @property
    def realm(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}/token"

    def requests(self) -> list[dict]:
        return self._entries(self.json_log)


class BadRegistry(_PortFileServer):
    """tests/servers/registry-bad.py in one of BAD_MODES (see that file); set_mode() changes
    it while it runs. .host, .url, requests() (dicts: method, path, mode, status, authorization).
    bind: the loopback address (127.0.0.2: a second host); realm: the Bearer realm of token-503."""

    kind = "registry-bad"

    def __init__(self, workdir, mode: str, *, huge_size: int = 50 * 1024 * 1024, drip_interval: float = 0.5,
                 tls=None, bind: str = "127.0.0.1", realm: str | None = None):
        super().__init__(workdir)
        if mode not in BAD_MODES:
            raise ValueError(f"mode must be one of {BAD_MODES}")
        self.json_log = self.logdir / f"{self.name}.requests.jsonl"
        self.json_log.unlink(missing_ok=True)
        self.mode_file = self.logdir / f"{self.name}.mode"
        self.set_mode(mode)
        tlsf = _tls_files(tls, self.logdir, self.name)
        self.ca = tlsf[0] if tlsf else None
        self.scheme = "https" if tlsf else "http"
        argv = [BAD_SERVER, "--mode", mode, "--mode-file", self.mode_file, "--log", self.json_log,
                "--huge-size", huge_size, "--drip-interval", drip_interval]
        if tlsf:
            argv += ["--cert", tlsf[1], "--key", tlsf[2]]
        self.bind = bind
        argv += ["--bind", bind] + (["--realm", realm] if realm else [])
        self._start(argv)

    def set_mode(self, mode: str):
        if mode not in BAD_MODES:
            raise ValueError(f"mode must be one of {BAD_MODES}")
        tmp = self.mode_file.with_suffix(".tmp")
        tmp.write_text(mode + "\n")
        os.replace(tmp, self.mode_file)
        self.mode = mode

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.bind}:{self.port}"

    @property
    def host(self) -> str:
        return f"{self.bind}:{self.port}"

    def requests(self) -> list[dict]:
        return self._entries(self.json_log)


# ---------------------------------------------------------------------------------------------
# images


def _layer_blob(seed: str, size: int) -> tuple[bytes, bytes]:
    """A deterministic gzipped tar with one file of `size` bytes: (tar.gz, tar)."""
    data = bytearray()
    block = hashlib.sha256(seed.encode()).digest()
    while len(data) < size:
        block = hashlib.sha256(block).digest()
        data += block * 64
    data = bytes(data[:size])
    tbuf = io.BytesIO()
    with tarfile.open(fileobj=tbuf, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        info = tarfile.TarInfo("data.bin")
        info.size, info.mtime, info.mode = len(data), 0, 0o644
        info.uname = info.gname = "root"
        tf.addfile(info, io.BytesIO(data))
    tar = tbuf.getvalue()
    return gzip.compress(tar, mtime=0), tar


def push_image(reg, repo: str, tag: str | None = "latest", *, layers: int = 1, size: int = 1024,
               seed: str | None = None, arch: str = "amd64", os_name: str = "linux",
               docker: bool = False) -> str:
    """Push a small valid image (config + `layers` gzipped tar layers of about `size` bytes
    of content each + manifest) to repo, tagged `tag` (None: by digest only). Deterministic:
    the same seed (default "repo:tag:arch") gives the same digest. docker=True: Docker
    schema 2 media types instead of OCI. Returns the manifest digest."""
    c = _client(reg)
    seed = seed if seed is not None else f"{repo}:{tag}:{arch}"
    descs, diff_ids = [], []
    for i in range(layers):
        blob, tar = _layer_blob(f"{seed}/{i}", size)
        descs.append({"mediaType": DOCKER_LAYER_GZIP if docker else OCI_LAYER_GZIP,
                      "size": len(blob), "digest": c.push_blob(repo, blob)})
        diff_ids.append(sha256_digest(tar))
    config = _json({"architecture": arch, "os": os_name, "created": "1970-01-01T00:00:00Z",
                    "config": {"Env": ["PATH=/usr/bin:/bin"], "Labels": {"org.atticd.test.seed": seed}},
                    "rootfs": {"type": "layers", "diff_ids": diff_ids},
                    "history": [{"created": "1970-01-01T00:00:00Z", "created_by": f"atticd-agent tests layer {i}"}
                                for i in range(layers)]})
    cdesc = {"mediaType": DOCKER_CONFIG if docker else OCI_CONFIG, "size": len(config),
             "digest": c.push_blob(repo, config)}
    mt = DOCKER_MANIFEST if docker else OCI_MANIFEST
    manifest = _json({"schemaVersion": 2, "mediaType": mt, "config": cdesc, "layers": descs})
    return c.push_manifest(repo, tag or sha256_digest(manifest), manifest, mt)


def push_index(reg, repo: str, tag: str | None, digests, *, docker: bool = False) -> str:
    """Push an image index (docker=True: a Docker manifest list) of the images `digests`
    (already in repo), each with its platform read from its config. Returns its digest."""
    c = _client(reg)
    manifests = []
    for d in digests:
        body, mt, _ = c.get_manifest(repo, d)
        m = json.loads(body)
        cfg = json.loads(c.get_blob(repo, m["config"]["digest"]))
        manifests.append({"mediaType": mt, "size": len(body), "digest": d,
                          "platform": {"architecture": cfg.get("architecture", ""), "os": cfg.get("os", "")}})
    mt = DOCKER_LIST if docker else OCI_INDEX
    index = _json({"schemaVersion": 2, "mediaType": mt, "manifests": manifests})
    return c.push_manifest(repo, tag or sha256_digest(index), index, mt)


# ---------------------------------------------------------------------------------------------
# keys and signing

KEY_KINDS = ("ecdsa-p256", "ecdsa-p384", "ed25519", "rsa")
_key_kinds: dict[str, str] = {}


def make_cosign_keypair(directory, kind: str = "ecdsa-p256", *, name: str | None = None) -> tuple[Path, Path]:
    """A key pair made with openssl in directory: NAME.key (unencrypted PKCS#8 PEM) and
    NAME.pub (PEM SubjectPublicKeyInfo, as cosign.pub). name defaults to the first unused of
    cosign, cosign-2, cosign-3, ... Returns (private key path, public key path).

    Signatures made with them (sign_bytes) use what cosign uses for such a key: ECDSA P-256
    with SHA-256, P-384 with SHA-384, RSA PKCS#1 v1.5 with SHA-256, and Ed25519 pure (cosign
    defaults to Ed25519ph, which openssl 3.0 cannot make)."""
    if kind not in KEY_KINDS:
        raise ValueError(f"kind must be one of {KEY_KINDS}")
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    if name is None:
        for i in itertools.count(1):
            name = "cosign" if i == 1 else f"cosign-{i}"
            if not (d / f"{name}.key").exists():
                break
    key, pub = d / f"{name}.key", d / f"{name}.pub"
    gen = {"ecdsa-p256": ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                          "-pkeyopt", "ec_param_enc:named_curve"],
           "ecdsa-p384": ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384",
                          "-pkeyopt", "ec_param_enc:named_curve"],
           "ed25519": ["-algorithm", "ED25519"],
           "rsa": ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]}[kind]
    _openssl("genpkey", *gen, "-out", key)
    os.chmod(key, 0o600)
    _openssl("pkey", "-in", key, "-pubout", "-out", pub)
    _key_kinds[str(key.resolve())] = kind
    return key, pub


def _key_file(key, tmpdir: Path) -> Path:
    """key: a path, or PEM text/bytes (written to a temporary file)."""
    if isinstance(key, bytes) or (isinstance(key, str) and "-----BEGIN" in key):
        p = tmpdir / f"key-{next(_counter)}.pem"
        p.write_bytes(key.encode() if isinstance(key, str) else key)
        return p
    return Path(key)


def key_kind(key) -> str:
    """"ecdsa-p256", "ecdsa-p384", "ed25519" or "rsa" for a private (or public) key file."""
    k = str(Path(key).resolve())
    if k in _key_kinds:
        return _key_kinds[k]
    text = Path(key).read_text()
    pubin = ["-pubin"] if "PUBLIC KEY" in text else []
    out = _openssl("pkey", *pubin, "-in", key, "-noout", "-text").decode()
    if "ED25519" in out:
        kind = "ed25519"
    elif "prime256v1" in out or "P-256" in out:
        kind = "ecdsa-p256"
    elif "secp384r1" in out or "P-384" in out:
        kind = "ecdsa-p384"
    elif "modulus" in out.lower() or "RSA" in out:
        kind = "rsa"
    else:
        raise ValueError(f"unsupported key type in {key}")
    _key_kinds[k] = kind
    return kind


def public_key_der(key) -> bytes:
    """DER SubjectPublicKeyInfo of a private or public key file."""
    pubin = ["-pubin"] if "PUBLIC KEY" in Path(key).read_text() else []
    return _openssl("pkey", *pubin, "-in", key, "-pubout", "-outform", "DER")


def sign_bytes(key, data: bytes, *, hash_alg: str | None = None) -> bytes:
    """The raw signature (DER for ECDSA) over data, by the openssl CLI, with the algorithm
    cosign uses for the key (see make_cosign_keypair); hash_alg ("sha256", ...) overrides."""
    with tempfile.TemporaryDirectory(prefix="cosign-sign-") as t:
        tmp = Path(t)
        kf = _key_file(key, tmp)
        kind = key_kind(kf)
        src = tmp / "data"
        src.write_bytes(data)
        if kind == "ed25519" and hash_alg is None:
            return _openssl("pkeyutl", "-sign", "-inkey", kf, "-rawin", "-in", src)
        h = hash_alg or ("sha384" if kind == "ecdsa-p384" else "sha256")
        return _openssl("dgst", f"-{h}", "-sign", kf, src)


def _flip(sig: bytes) -> bytes:
    """One bit of the last byte flipped (for DER ECDSA: the end of s, still parseable)."""
    return sig[:-1] + bytes([sig[-1] ^ 0x01])


def _tampered_payload(payload: bytes) -> bytes:
    """One byte changed inside the docker-reference (the JSON stays valid)."""
    i = payload.index(b'"docker-reference":"') + len(b'"docker-reference":"')
    j = payload.index(b'"', i) - 1
    return payload[:j] + (b"x" if payload[j:j + 1] != b"x" else b"y") + payload[j + 1:]


def _other_digest(digest: str) -> str:
    return sha256_digest(b"not the image: " + digest.encode())


Signed = namedtuple("Signed", "manifest_digest tag payload signature layer_digest manifest")
Signed.__doc__ = """What sign_classic / attest_sbom(fmt="classic") pushed: the digest of the
.sig/.att manifest, its tag, the layer blob (payload / DSSE envelope) as the registry serves it, the raw
signature bytes (DER for ECDSA; for attestations the DSSE signature), the layer's digest,
and the manifest bytes."""

BundleSigned = namedtuple("BundleSigned", "manifest_digest index_digest bundle statement signature manifest")
BundleSigned.__doc__ = """What sign_bundle / attest_sbom(fmt="bundle") pushed: the referrer
manifest digest, the digest of the fallback index at tag sha256-<hex>, the bundle JSON bytes,
the in-toto statement bytes (the DSSE payload), the raw DSSE signature and the manifest bytes."""


def signature_tag(image_digest: str, suffix: str = "sig") -> str:
    """sha256:<hex> -> sha256-<hex>.sig (suffix "" : the referrers fallback tag sha256-<hex>)."""
    t = image_digest.replace(":", "-")
    return f"{t}.{suffix}" if suffix else t


def simple_signing_payload(docker_reference: str, image_digest: str, optional=None) -> bytes:
    """cosign's payload (sigstore/sigstore payload.go, Go json.Marshal, this key order)."""
    return _json({"critical": {"identity": {"docker-reference": docker_reference},
                               "image": {"docker-manifest-digest": image_digest},
                               "type": "cosign container image signature"},
                  "optional": optional})


def cosign_sig_config(layer_digests) -> bytes:
    """The config blob of cosign's signature image for these layer (payload) digests:
    go-containerregistry's empty image with the layers appended (one history entry each)."""
    return _json({"architecture": "", "created": "0001-01-01T00:00:00Z",
                  "history": [{"created": "0001-01-01T00:00:00Z"} for _ in layer_digests],
                  "os": "", "rootfs": {"type": "layers", "diff_ids": list(layer_digests)}, "config": {}})


def _append_layer(c: OciClient, repo: str, tag: str, layer: dict, replace: bool) -> tuple[str, bytes]:
    """Append a layer descriptor to the cosign signature image at tag (creating it), as
    cosign does (ggcr mutate.Append on the existing image); returns (digest, manifest)."""
    layers = []
    if not replace:
        got = c.get_manifest(repo, tag)
        if got is not None:
            layers = json.loads(got[0]).get("layers", [])
    layers.append(layer)
    config = cosign_sig_config([ly["digest"] for ly in layers])
    cdesc = {"mediaType": OCI_CONFIG, "size": len(config), "digest": c.push_blob(repo, config)}
    manifest = _json({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": cdesc, "layers": layers})
    return c.push_manifest(repo, tag, manifest, OCI_MANIFEST), manifest


def _layer_desc(media_type: str, blob: bytes, digest: str, annotations: dict) -> dict:
    return {"mediaType": media_type, "size": len(blob), "digest": digest,
            "annotations": dict(sorted(annotations.items()))}


def _overwrite_blob(reg, digest: str, data: bytes):
    """Replace the stored bytes of a blob behind the registry's back (same length)."""
    if not isinstance(reg, Registry):
        raise ValueError('tamper="blob-mismatch" needs a Registry (it rewrites its storage)')
    p = reg.blob_path(digest)
    if not p.exists():
        raise ServerError(f"blob {digest} not in the registry's storage ({p})")
    if p.stat().st_size != len(data):
        raise ValueError("blob-mismatch: replacement must have the same length")
    p.write_bytes(data)


CLASSIC_TAMPER = ("payload", "digest", "media-type", "blob-mismatch", "signature")


def store_manifest(reg, repo: str, manifest: bytes) -> str:
    """Put a manifest into the registry's filesystem storage as it is, without pushing: for
    a real signed manifest (a vector) whose config and layers are not at hand, which a push
    would refuse (distribution checks that they exist; a GET does not). The repository is
    linked to it by digest. Returns its digest."""
    if not isinstance(reg, Registry):
        raise ValueError("store_manifest needs a Registry (it writes its storage)")
    digest = sha256_digest(manifest)
    data = reg.blob_path(digest)
    data.parent.mkdir(parents=True, exist_ok=True)
    data.write_bytes(manifest)
    link = (reg.storage / "docker/registry/v2/repositories" / repo / "_manifests/revisions/sha256" /
            digest.split(":", 1)[1] / "link")
    link.parent.mkdir(parents=True, exist_ok=True)
    link.write_text(digest)
    return digest


def push_classic_signature(reg, repo: str, image_digest: str, payload: bytes, annotations: dict) -> Signed:
    """Push a classic signature made elsewhere (a vector: its payload and layer annotations,
    signature, certificate, Rekor bundle) as one more layer of sha256-<hex>.sig."""
    c = _client(reg)
    digest = c.push_blob(repo, payload)
    layer = _layer_desc(SIMPLESIGNING, payload, digest, annotations)
    tag = signature_tag(image_digest, "sig")
    mdigest, manifest = _append_layer(c, repo, tag, layer, False)
    return Signed(mdigest, tag, payload, base64.b64decode(annotations[SIG_ANNOTATION]), digest, manifest)


def sign_classic(reg, repo: str, image_digest: str, key, *, identity: str | None = None,
                 tamper: str | None = None, optional: dict | None = None, annotations: dict | None = None,
                 replace: bool = False, hash_alg: str | None = None) -> Signed:
    """Sign image_digest the classic cosign way: a simple-signing payload, signed with key
    (a path or PEM), pushed as one more layer of the OCI manifest at tag sha256-<hex>.sig
    (created, or appended to; replace=True starts a new one), with the base64 signature in
    the layer annotation dev.cosignproject.cosign/signature and the config blob cosign
    writes. identity: the docker-reference (default HOST:PORT/repo); optional: the payload's
    "optional" map; annotations: more layer annotations (e.g. dev.sigstore.cosign/bundle).

    tamper (negative tests), each leaving everything else as cosign writes it:
      "payload"       the payload pushed has one byte of docker-reference changed after
                      signing (descriptor and diff_id are of the changed bytes)
      "digest"        the payload names another image digest (validly signed)
      "media-type"    the layer media type is application/octet-stream (validly signed)
      "signature"     one bit of the signature flipped
      "blob-mismatch" the layer descriptor names digest D of bytes P; the registry serves,
                      under D, other bytes X of the same length (its storage file rewritten
                      after the push): X is the genuine payload and the signature is a
                      valid signature over X, so only a client that checks the blob against
                      its digest refuses it. Needs a Registry (not a bare OciClient)."""
    if tamper is not None and tamper not in CLASSIC_TAMPER:
        raise ValueError(f"tamper must be one of {CLASSIC_TAMPER}")
    c = _client(reg)
    ref = identity if identity is not None else f"{c.host}/{repo}"
    payload = simple_signing_payload(ref, _other_digest(image_digest) if tamper == "digest" else image_digest,
                                     optional)
    sig = sign_bytes(key, payload, hash_alg=hash_alg)
    pushed = payload
    if tamper == "payload":
        pushed = _tampered_payload(payload)
    elif tamper == "signature":
        sig = _flip(sig)
    elif tamper == "blob-mismatch":
        pushed = _tampered_payload(payload)   # stored under its own digest D ...
    digest = c.push_blob(repo, pushed)
    if tamper == "blob-mismatch":
        _overwrite_blob(reg, digest, payload)  # ... but served as the signed payload
    ann = {SIG_ANNOTATION: base64.b64encode(sig).decode(), **(annotations or {})}
    layer = _layer_desc("application/octet-stream" if tamper == "media-type" else SIMPLESIGNING,
                        pushed, digest, ann)
    tag = signature_tag(image_digest, "sig")
    mdigest, manifest = _append_layer(c, repo, tag, layer, replace)
    served = payload if tamper == "blob-mismatch" else pushed
    return Signed(mdigest, tag, served, sig, digest, manifest)


def dsse_pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: what a DSSE signature signs."""
    t = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def _dsse_envelope(payload_type: str, payload: bytes, sig: bytes, style: str) -> bytes:
    p, s = base64.b64encode(payload).decode(), base64.b64encode(sig).decode()
    if style == "v2":   # go-securesystemslib dsse.Envelope (cosign v2 attest)
        return _json({"payloadType": payload_type, "payload": p, "signatures": [{"keyid": "", "sig": s}]})
    # protobuf-specs dsse.Envelope through encoding/json (cosign v3 classic attest) and
    # protojson (inside a bundle): no keyid when empty
    return _json({"payload": p, "payloadType": payload_type, "signatures": [{"sig": s}]})


def _sign_dsse(key, statement: bytes, tamper, hash_alg, *, payload_type: str = INTOTO):
    """(payload as carried, payloadType as carried, raw signature) with tampering applied."""
    sig = sign_bytes(key, dsse_pae(INTOTO, statement), hash_alg=hash_alg)
    carried, ptype = statement, payload_type
    if tamper == "payload":
        i = statement.index(b'"sha256":"') + len(b'"sha256":"')
        carried = statement[:i] + (b"0" if statement[i:i + 1] != b"0" else b"1") + statement[i + 1:]
    elif tamper == "signature":
        sig = _flip(sig)
    elif tamper == "payload-type":
        ptype = "application/vnd.in-toto+jsonx"
    return carried, ptype, sig


def _push_referrer(c: OciClient, repo: str, image_digest: str, bundle: bytes, predicate_type: str,
                   layer_media_type: str = BUNDLE_V03, created: str | None = None) -> tuple[str, str, bytes]:
    """cosign's WriteAttestationNewBundleFormat + go-containerregistry's fallback tag:
    the referrer manifest (PUT by digest) and the OCI index at tag sha256-<hex> listing it.
    Returns (referrer digest, index digest, referrer manifest)."""
    subject = c.head_manifest(repo, image_digest)
    if subject is None:
        raise RegistryError(f"{repo}@{image_digest} does not exist")
    cdesc = {"mediaType": OCI_EMPTY, "size": len(EMPTY_JSON), "digest": c.push_blob(repo, EMPTY_JSON),
             "artifactType": BUNDLE_V03}
    ldesc = {"mediaType": layer_media_type, "size": len(bundle), "digest": c.push_blob(repo, bundle)}
    created = created or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    annotations = dict(sorted({"dev.sigstore.bundle.content": "dsse-envelope",
                               "dev.sigstore.bundle.predicateType": predicate_type,
                               "org.opencontainers.image.created": created}.items()))
    manifest = _json({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": cdesc, "layers": [ldesc],
                      "annotations": annotations,
                      "subject": {"mediaType": subject["mediaType"], "size": subject["size"],
                                  "digest": subject["digest"]},
                      "artifactType": BUNDLE_V03})
    mdigest = sha256_digest(manifest)
    c.push_manifest(repo, mdigest, manifest, OCI_MANIFEST)
    tag = signature_tag(image_digest, "")
    entry = {"mediaType": OCI_MANIFEST, "size": len(manifest), "digest": mdigest, "artifactType": OCI_EMPTY}
    got = c.get_manifest(repo, tag)
    manifests = json.loads(got[0]).get("manifests", []) if got else []
    if not any(m.get("digest") == mdigest for m in manifests):
        manifests.append(entry)
    manifests.sort(key=lambda m: m["digest"])
    index = _json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests})
    idigest = c.push_manifest(repo, tag, index, OCI_INDEX)
    return mdigest, idigest, manifest


def push_bundle(reg, repo: str, image_digest: str, bundle: bytes,
                predicate_type: str = COSIGN_SIGN_PREDICATE) -> tuple[str, str, bytes]:
    """Attach a Sigstore bundle made elsewhere (a keyless one of sigstore_instance.py) to
    image_digest as cosign 3 does: a referrer manifest and the fallback index. Returns
    (referrer digest, index digest, referrer manifest)."""
    return _push_referrer(_client(reg), repo, image_digest, bundle, predicate_type)


def push_classic_attestation(reg, repo: str, image_digest: str, envelope: bytes, annotations: dict) -> Signed:
    """Push a classic attestation made elsewhere (a DSSE envelope and its layer annotations:
    predicateType, and for a keyless one the certificate and the Rekor bundle) as one more
    layer of sha256-<hex>.att."""
    c = _client(reg)
    digest = c.push_blob(repo, envelope)
    layer = _layer_desc(DSSE_ENVELOPE, envelope, digest, {SIG_ANNOTATION: "", **annotations})
    tag = signature_tag(image_digest, "att")
    mdigest, manifest = _append_layer(c, repo, tag, layer, False)
    return Signed(mdigest, tag, envelope, b"", digest, manifest)


def _bundle_json(envelope_payload: bytes, payload_type: str, sig: bytes, key) -> bytes:
    hint = base64.b64encode(hashlib.sha256(public_key_der(key)).digest()).decode()
    return _json({"mediaType": BUNDLE_V03,
                  "verificationMaterial": {"publicKey": {"hint": hint}},
                  "dsseEnvelope": {"payload": base64.b64encode(envelope_payload).decode(),
                                   "payloadType": payload_type,
                                   "signatures": [{"sig": base64.b64encode(sig).decode()}]}})


BUNDLE_TAMPER = ("payload", "digest", "signature", "media-type", "payload-type", "predicate-type")


def sign_bundle(reg, repo: str, image_digest: str, key, *, tamper: str | None = None,
                statement: bytes | None = None, hash_alg: str | None = None) -> BundleSigned:
    """Sign image_digest the cosign 3 way: an in-toto Statement v1 (predicateType
    https://sigstore.dev/cosign/sign/v1, subject digest = the image) in a DSSE envelope,
    in a Sigstore bundle v0.3 (key-based: verificationMaterial.publicKey.hint =
    base64(sha256(DER SPKI)); no transparency-log entry), stored as a referrer manifest
    (config application/vnd.oci.empty.v1+json "{}", one layer = the bundle, subject = the
    image) and listed in the fallback index at tag sha256-<hex>. statement: other statement
    bytes to sign instead.

    tamper: "payload" (a byte of the statement's subject digest changed after signing),
    "digest" (the statement names another digest, validly signed), "signature" (a bit
    flipped), "media-type" (the layer's media type is application/octet-stream),
    "payload-type" (the envelope's payloadType differs from the one signed),
    "predicate-type" (a validly signed statement of predicate type
    https://example.com/not-a-signature/v1)."""
    if tamper is not None and tamper not in BUNDLE_TAMPER:
        raise ValueError(f"tamper must be one of {BUNDLE_TAMPER}")
    c = _client(reg)
    hexd = (_other_digest(image_digest) if tamper == "digest" else image_digest).split(":", 1)[1]
    ptype = "https://example.com/not-a-signature/v1" if tamper == "predicate-type" else COSIGN_SIGN_PREDICATE
    if statement is None:
        statement = _json({"_type": "https://in-toto.io/Statement/v1",
                           "subject": [{"digest": {"sha256": hexd}, "annotations": {}}],
                           "predicateType": ptype})
    carried, payload_type, sig = _sign_dsse(key, statement, tamper, hash_alg)
    bundle = _bundle_json(carried, payload_type, sig, key)
    mdigest, idigest, manifest = _push_referrer(
        c, repo, image_digest, bundle, COSIGN_SIGN_PREDICATE,
        "application/octet-stream" if tamper == "media-type" else BUNDLE_V03)
    return BundleSigned(mdigest, idigest, bundle, carried, sig, manifest)


def spdx_document(name: str = "atticd-test-image") -> dict:
    return {"spdxVersion": "SPDX-2.3", "dataLicense": "CC0-1.0", "SPDXID": "SPDXRef-DOCUMENT",
            "name": name, "documentNamespace": f"https://atticd.example/spdx/{name}",
            "creationInfo": {"created": "1970-01-01T00:00:00Z", "creators": ["Tool: atticd-agent-tests"]},
            "packages": [{"SPDXID": "SPDXRef-Package-busybox", "name": "busybox", "versionInfo": "1.36.1",
                          "downloadLocation": "NOASSERTION"}]}


ATTEST_TAMPER = ("payload", "digest", "signature", "predicate-type")


def attest_sbom(reg, repo: str, image_digest: str, key, *, predicate_type: str = SPDX_PREDICATE,
                predicate=None, fmt: str = "classic", tamper: str | None = None, replace: bool = False,
                envelope_style: str = "v2", hash_alg: str | None = None):
    """Attest an SBOM for image_digest as cosign attest does: an in-toto statement
    (https://in-toto.io/Statement/v0.1, subject {name: HOST:PORT/repo, digest sha256},
    predicateType, predicate = an SPDX document unless given) signed as DSSE.

    fmt="classic" (cosign v2, v3 --new-bundle-format=false): one more layer of the OCI
    manifest at tag sha256-<hex>.att, media type application/vnd.dsse.envelope.v1+json,
    the blob the DSSE envelope JSON, annotations {dev.cosignproject.cosign/signature: "",
    predicateType: ...}; envelope_style "v2" {payloadType, payload, signatures:[{keyid:"",
    sig}]} (cosign v2) or "v3" {payload, payloadType, signatures:[{sig}]}. Returns Signed.
    fmt="bundle" (cosign v3 default): a Sigstore bundle referrer like sign_bundle's, with
    dev.sigstore.bundle.predicateType = predicate_type. Returns BundleSigned.

    tamper: "payload" (statement changed after signing), "digest" (statement names another
    digest), "signature" (a bit flipped), "predicate-type" (the signed statement has
    predicate type https://example.com/not-an-sbom while the annotation still says
    predicate_type)."""
    if tamper is not None and tamper not in ATTEST_TAMPER:
        raise ValueError(f"tamper must be one of {ATTEST_TAMPER}")
    if fmt not in ("classic", "bundle"):
        raise ValueError('fmt must be "classic" or "bundle"')
    c = _client(reg)
    hexd = (_other_digest(image_digest) if tamper == "digest" else image_digest).split(":", 1)[1]
    inner_type = "https://example.com/not-an-sbom" if tamper == "predicate-type" else predicate_type
    statement = _json({"_type": "https://in-toto.io/Statement/v0.1", "predicateType": inner_type,
                       "subject": [{"name": f"{c.host}/{repo}", "digest": {"sha256": hexd}}],
                       "predicate": predicate if predicate is not None else spdx_document(repo)})
    carried, payload_type, sig = _sign_dsse(key, statement, tamper, hash_alg)
    if fmt == "bundle":
        bundle = _bundle_json(carried, payload_type, sig, key)
        mdigest, idigest, manifest = _push_referrer(c, repo, image_digest, bundle, predicate_type)
        return BundleSigned(mdigest, idigest, bundle, carried, sig, manifest)
    envelope = _dsse_envelope(payload_type, carried, sig, envelope_style)
    digest = c.push_blob(repo, envelope)
    layer = _layer_desc(DSSE_ENVELOPE, envelope, digest, {SIG_ANNOTATION: "", "predicateType": predicate_type})
    tag = signature_tag(image_digest, "att")
    mdigest, manifest = _append_layer(c, repo, tag, layer, replace)
    return Signed(mdigest, tag, envelope, sig, digest, manifest)


__all__ = [
    "Registry", "BadRegistry", "TokenServer", "OciClient", "RegistryError", "Response", "TlsFiles",
    "BAD_MODES", "KEY_KINDS", "CLASSIC_TAMPER", "BUNDLE_TAMPER", "ATTEST_TAMPER",
    "push_image", "push_index", "make_cosign_keypair", "sign_bytes", "key_kind", "public_key_der",
    "sign_classic", "sign_bundle", "attest_sbom", "simple_signing_payload", "cosign_sig_config",
    "dsse_pae", "signature_tag", "sha256_digest", "libtrust_kid", "spdx_document", "Signed", "BundleSigned",
    "MANIFEST_ACCEPT", "OCI_MANIFEST", "OCI_INDEX", "OCI_EMPTY", "SIMPLESIGNING", "DSSE_ENVELOPE",
    "BUNDLE_V03", "INTOTO", "COSIGN_SIGN_PREDICATE", "SPDX_PREDICATE", "SIG_ANNOTATION",
]
