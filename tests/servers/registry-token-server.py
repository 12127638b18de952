#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A Docker registry token server for the tests (Python 3 standard library + the openssl CLI).
Started and stopped by tests/integration/registry.py (Registry(auth=("token", user, pw))).

  python3 -S registry-token-server.py --config FILE.json --port-file FILE [--port N]
      [--log FILE.jsonl] [--cert C --key K]

It implements the token flow of the Docker registry v2 auth spec (distribution's
docs/spec/auth/token.md) as distribution 2.8.2 verifies it:

  GET  /token?service=SERVICE&scope=repository:NAME:pull[,push][&scope=...][&account=U]
       with optional basic credentials
  POST /token (OAuth2 form: grant_type=password, username, password, service, scope)

A known user with the right password gets a JWT granting the requested actions it is
allowed (config "users": {NAME: {"password": P, "access": {"REPO-GLOB": [ACTIONS]}}}); no
credentials get the actions in config "anonymous" ({} or {"*": ["pull"]}), or 401 when that
is empty; wrong credentials get 401. A request for an unknown service gets 400.
Answer: {"token": JWT, "access_token": JWT, "expires_in": TTL, "issued_at": TIME}.

The JWT is signed with config "key" (ES256 for an EC P-256 key, ES384 for P-384, RS256 for
RSA), by the openssl CLI. Its header names the key the way distribution 2.8.2 accepts
(config "header"):
  "kid" (default): the libtrust fingerprint of the public key, which distribution computes
        for every certificate of its `rootcertbundle` (sha256 of the DER SubjectPublicKeyInfo,
        first 240 bits, base32, 12 groups of 4 joined by ':');
  "x5c": the signing certificate itself (config "cert"), verified against the bundle.
Claims: iss, sub, aud (a string: 2.8.2 fails to parse a list), exp, nbf, iat, jti, access.

Every request is logged to --log as one JSON object per line:
{"method", "path", "user", "scopes", "granted", "status"}.
"""

import base64
import fnmatch
import hashlib
import hmac
import json
import os
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOG_LOCK = threading.Lock()


def b64url(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def der_ecdsa_to_raw(der: bytes, n: int) -> bytes:
    """ASN.1 DER ECDSA-Sig-Value (SEQUENCE {r INTEGER, s INTEGER}) -> r||s, n bytes each."""
    def length(pos):
        first = der[pos]
        if first < 0x80:
            return first, pos + 1
        k = first & 0x7F
        return int.from_bytes(der[pos + 1:pos + 1 + k], "big"), pos + 1 + k

    if der[0] != 0x30:
        raise ValueError("not a DER sequence")
    _, pos = length(1)
    out = b""
    for _ in range(2):
        if der[pos] != 0x02:
            raise ValueError("not a DER integer")
        ln, pos = length(pos + 1)
        v = int.from_bytes(der[pos:pos + ln], "big")
        pos += ln
        out += v.to_bytes(n, "big")
    return out


def openssl(*args, data: bytes | None = None) -> bytes:
    r = subprocess.run(["openssl", *args], input=data, capture_output=True)
    if r.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)}: {r.stderr.decode(errors='replace')}")
    return r.stdout


def libtrust_kid(spki_der: bytes) -> str:
    s = base64.b32encode(hashlib.sha256(spki_der).digest()[:30]).decode().rstrip("=")
    return ":".join(s[i:i + 4] for i in range(0, len(s), 4))


class Signer:
    def __init__(self, cfg):
        self.key = cfg["key"]
        text = openssl("pkey", "-in", self.key, "-noout", "-text").decode()
        if "prime256v1" in text or "P-256" in text:
            self.alg, self.hash, self.ec_len = "ES256", "-sha256", 32
        elif "secp384r1" in text or "P-384" in text:
            self.alg, self.hash, self.ec_len = "ES384", "-sha384", 48
        elif "RSA" in text or "modulus" in text:
            self.alg, self.hash, self.ec_len = "RS256", "-sha256", 0
        else:
            raise SystemExit(f"token server: unsupported key type in {self.key}")
        self.header = {"typ": "JWT", "alg": self.alg}
        mode = cfg.get("header", "kid")
        if mode == "kid":
            spki = openssl("pkey", "-in", self.key, "-pubout", "-outform", "DER")
            self.header["kid"] = libtrust_kid(spki)
        elif mode == "x5c":
            cert_der = openssl("x509", "-in", cfg["cert"], "-outform", "DER")
            self.header["x5c"] = [base64.b64encode(cert_der).decode()]
        else:
            raise SystemExit(f"token server: unknown header mode {mode!r}")

    def sign(self, claims: dict) -> str:
        signing_input = (b64url(json.dumps(self.header, separators=(",", ":")).encode()) + "." +
                         b64url(json.dumps(claims, separators=(",", ":")).encode()))
        sig = openssl("dgst", self.hash, "-sign", self.key, data=signing_input.encode())
        if self.ec_len:
            sig = der_ecdsa_to_raw(sig, self.ec_len)
        return signing_input + "." + b64url(sig)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "atticd-test-token-server/1"

    def log_message(self, fmt, *args):  # the JSON log replaces the default stderr log
        pass

    def do_GET(self):
        u = urllib.parse.urlsplit(self.path)
        self.handle_token(u.path, urllib.parse.parse_qs(u.query), self.basic_credentials())

    def do_POST(self):
        u = urllib.parse.urlsplit(self.path)
        n = int(self.headers.get("Content-Length") or 0)
        form = urllib.parse.parse_qs(self.rfile.read(n).decode(errors="replace"))
        creds = self.basic_credentials()
        if creds is None and form.get("grant_type", [""])[0] == "password":
            creds = (form.get("username", [""])[0], form.get("password", [""])[0])
        self.handle_token(u.path, form, creds)

    def basic_credentials(self):
        h = self.headers.get("Authorization", "")
        if not h.lower().startswith("basic "):
            return None
        try:
            user, _, pw = base64.b64decode(h[6:].strip()).decode().partition(":")
        except Exception:
            return ("", "\0invalid")
        return (user, pw)

    def handle_token(self, path, params, creds):
        cfg = self.server.cfg
        scopes = [s for v in params.get("scope", []) for s in v.split(" ") if s]
        user = creds[0] if creds else None
        entry = {"method": self.command, "path": self.path, "user": user, "scopes": scopes,
                 "granted": None, "status": None}
        if path.rstrip("/") != cfg.get("path", "/token"):
            return self.answer(404, {"errors": [{"code": "NOT_FOUND", "message": "no such endpoint"}]}, entry)
        service = params.get("service", [None])[0]
        if service is not None and service != cfg["service"]:
            return self.answer(400, {"errors": [{"code": "UNSUPPORTED", "message": f"unknown service {service!r}"}]}, entry)
        if creds is not None:
            u = cfg["users"].get(creds[0])
            if u is None or not hmac.compare_digest(u["password"].encode(), creds[1].encode()):
                return self.answer(401, {"errors": [{"code": "UNAUTHORIZED", "message": "bad credentials"}]},
                                   entry, challenge=True)
            allowed = u.get("access", {"*": ["pull", "push"]})
        else:
            allowed = cfg.get("anonymous") or {}
            if not allowed:
                return self.answer(401, {"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]},
                                   entry, challenge=True)
        access = []
        for scope in scopes:
            parts = scope.split(":")
            if len(parts) < 3:
                continue
            rtype, name, actions = parts[0], ":".join(parts[1:-1]), parts[-1].split(",")
            if rtype != "repository":
                continue
            ok = set()
            for glob, acts in allowed.items():
                if fnmatch.fnmatchcase(name, glob):
                    ok |= set(acts)
            granted = [a for a in actions if a in ok or ("*" in ok)]
            access.append({"type": "repository", "name": name, "actions": granted})
        now = int(time.time())
        ttl = int(cfg.get("ttl", 300))
        claims = {"iss": cfg["issuer"], "sub": user or "", "aud": cfg["service"], "exp": now + ttl,
                  "nbf": now - 1, "iat": now, "jti": b64url(os.urandom(12)), "access": access}
        token = self.server.signer.sign(claims)
        entry["granted"] = access
        body = {"token": token, "access_token": token, "expires_in": ttl,
                "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))}
        self.answer(200, body, entry)

    def answer(self, status, body, entry, challenge=False):
        data = json.dumps(body).encode()
        entry["status"] = status
        if self.server.log_path:
            with LOG_LOCK, open(self.server.log_path, "a") as f:
                f.write(json.dumps(entry) + "\n")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if challenge:
            self.send_header("WWW-Authenticate", 'Basic realm="atticd-test-token-server"')
        self.end_headers()
        self.wfile.write(data)


def main():
    args = sys.argv[1:]
    opts = {}
    while args:
        k = args.pop(0)
        if not k.startswith("--") or not args:
            raise SystemExit(f"usage: see {__file__}")
        opts[k[2:]] = args.pop(0)
    with open(opts["config"]) as f:
        cfg = json.load(f)
    server = ThreadingHTTPServer(("127.0.0.1", int(opts.get("port", 0))), Handler)
    server.daemon_threads = True
    server.cfg = cfg
    server.signer = Signer(cfg)
    server.log_path = opts.get("log")
    if "cert" in opts:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(opts["cert"], opts["key"])
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    port_file = opts["port-file"]
    with open(port_file + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    os.replace(port_file + ".tmp", port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
