#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A misbehaving OCI registry for hardening tests (Python 3 standard library only).
Started and stopped by tests/integration/registry.py (BadRegistry).

  python3 -S registry-bad.py --mode MODE --port-file FILE [--port N] [--log FILE.jsonl]
      [--mode-file FILE] [--huge-size BYTES] [--drip-interval SECONDS] [--cert C --key K]
      [--bind ADDR] [--realm URL]

It binds 127.0.0.1 (port 0 unless --port), listens, and only then writes the port number to
--port-file. The mode is --mode, overridden by the contents of --mode-file, re-read on every
request (so a test can change it while the server runs). Modes:

  500                   every request: 500 with a registry-style JSON error body
  stall                 every request is read and never answered (connection stays open)
  huge-manifest         GET /v2/ is 200; every manifest GET answers 200 with an OCI manifest
                        media type and a well-formed JSON body of --huge-size bytes (50 MB
                        by default: a manifest with one enormous annotation), sent as
                        fast as the client reads it; HEAD gives the same headers
  wrong-content-length  GET /v2/ is 200; every manifest and blob GET announces
                        Content-Length 4096 bytes larger than the body it sends (a valid small
                        OCI manifest), then closes the connection: a truncated transfer
  redirect-loop         every request: 307 to the same path with ?hop=N+1 (a redirect chain
                        without end; hop 1 -> 2 -> 3 ...)
  garbage-json          every request: 200 with a JSON media type and a body that is not JSON
                        (truncated JSON, a NUL byte, invalid UTF-8)
  drip                  every manifest and blob GET: 200 with the right Content-Length and
                        Docker-Content-Digest, then the body (a valid small OCI manifest) one
                        byte every --drip-interval seconds (0.5 by default: minutes in all).
                        Never a pause long enough to look stalled
  close-mid-stream      every manifest and blob GET: 200 with the right Content-Length, half
                        the body (a valid small OCI manifest), then the connection is closed
  wrong-shape           every manifest GET: 200 with an OCI manifest media type and a body that
                        is valid JSON but not an object (a list)
  token-503             every request below /v2/: 401 with a Bearer challenge whose realm is
                        this server's /token (or --realm), which answers 503 (an outage of the
                        token service)

  redirect-http         every request: 307 to the same path on plain http:// (served with --cert:
                        a registry on https that sends its client down to http)

--bind ADDR (default 127.0.0.1) listens on another loopback address (127.0.0.2: a second host).
Every request is logged with the Authorization header it carried.

Modes that end in -blob or -sig answer manifests as a well-behaved registry would, and
misbehave only further down, where a verifier or an exporter goes after the image's
manifest: every tag ends up at IMAGE_MANIFEST (a valid OCI manifest whose config blob, {}, is
served as it should be, and whose one layer says it has LAYER_SIZE bytes, 64 MiB and one), the
tags sha256-<hex>.sig and .att at a Cosign signature manifest with one simple-signing layer
(its blob is SIG_BLOB), and the referrers fallback tag sha256-<hex> and the Referrers API
answer 404. Then, for every other blob (a signature's, a layer):

  drip-blob             every blob GET drips as drip does (the body: SIG_BLOB)
  close-mid-stream-blob every blob GET is cut off as close-mid-stream does (the body: SIG_BLOB)
  huge-blob             every blob GET: 200 without Content-Length (chunked) and a body without
                        end (--huge-size bytes, 50 MB by default), sent as fast as it is read
  wrong-shape-sig       the signature manifests are JSON objects of the wrong shape (layers is
                        an object, mediaType a number, config a string)

Every request is logged to --log (JSON per line: method, path, mode, status; status "-" for
a request never answered), written before the response.
"""

import hashlib
import json
import os
import ssl
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODES = ("500", "stall", "huge-manifest", "wrong-content-length", "redirect-loop", "garbage-json",
         "drip", "close-mid-stream", "wrong-shape",
         "drip-blob", "close-mid-stream-blob", "huge-blob", "wrong-shape-sig", "token-503", "redirect-http")
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
FOREVER = threading.Event()
LOG_LOCK = threading.Lock()

# A small valid OCI manifest (its blobs do not exist here).
SMALL_MANIFEST = json.dumps({
    "schemaVersion": 2, "mediaType": OCI_MANIFEST,
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": 2,
               "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"},
    "layers": []}, separators=(",", ":")).encode()
# What the -blob and -sig modes serve: an image with a config blob that is served, and a layer
# of LAYER_SIZE bytes (never served whole: an exporter gets request-timeout twice for it), and
# a signature manifest with one layer (SIG_BLOB).
CONFIG_BLOB = b"{}"
CONFIG_DIGEST = "sha256:" + hashlib.sha256(CONFIG_BLOB).hexdigest()
LAYER_SIZE = 64 * 1024 * 1024 + 1
IMAGE_MANIFEST = json.dumps({
    "schemaVersion": 2, "mediaType": OCI_MANIFEST,
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": len(CONFIG_BLOB),
               "digest": CONFIG_DIGEST},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "size": LAYER_SIZE,
                "digest": "sha256:" + hashlib.sha256(b"a layer never served whole").hexdigest()}]},
    separators=(",", ":")).encode()
SIG_BLOB = json.dumps({
    "critical": {"identity": {"docker-reference": "127.0.0.1/app/web"},
                 "image": {"docker-manifest-digest": "sha256:" + hashlib.sha256(IMAGE_MANIFEST).hexdigest()},
                 "type": "cosign container image signature"},
    "optional": None}, separators=(",", ":")).encode()
SIG_MANIFEST = json.dumps({
    "schemaVersion": 2, "mediaType": OCI_MANIFEST,
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": 2,
               "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"},
    "layers": [{"mediaType": "application/vnd.dev.cosign.simplesigning.v1+json", "size": len(SIG_BLOB),
                "digest": "sha256:" + hashlib.sha256(SIG_BLOB).hexdigest(),
                "annotations": {"dev.cosignproject.cosign/signature": "MEUCIQDnotavalidsignature"}}]},
    separators=(",", ":")).encode()
WRONG_SHAPE = b'[{"schemaVersion":2,"mediaType":"' + OCI_MANIFEST.encode() + b'","layers":[]}]'
WRONG_SHAPE_SIG = json.dumps({"schemaVersion": "2", "mediaType": 7, "config": "none",
                              "layers": {"0": {"digest": "sha256:" + hashlib.sha256(SIG_BLOB).hexdigest()}},
                              "manifests": None}, separators=(",", ":")).encode()
GARBAGE = b'{"schemaVersion":2,"mediaType":"' + OCI_MANIFEST.encode() + b'","layers":[{"digest":\x00\xff\xfe garbage'


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "atticd-test-bad-registry/1"

    def log_message(self, fmt, *args):
        pass

    def mode(self):
        mf = self.server.mode_file
        if mf:
            try:
                with open(mf) as f:
                    m = f.read().strip()
                if m in MODES:
                    return m
            except OSError:
                pass
        return self.server.mode

    def log(self, mode, status):
        if self.server.log_path:
            with LOG_LOCK, open(self.server.log_path, "a") as f:
                f.write(json.dumps({"method": self.command, "path": self.path, "mode": mode,
                                    "status": status,
                                    "authorization": self.headers.get("Authorization")}) + "\n")

    def drain(self):
        n = int(self.headers.get("Content-Length") or 0)
        while n > 0:
            chunk = self.rfile.read(min(n, 65536))
            if not chunk:
                break
            n -= len(chunk)

    def head(self, status, ctype, length, extra=()):
        self.send_response(status)
        self.send_header("Docker-Distribution-API-Version", "registry/2.0")
        if ctype:
            self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(length))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()

    def misbehave(self, mode, ctype, body, body_ok):
        """200 with the right Content-Length and digest, then the body dripped (drip*) or cut
        off after half of it (close-mid-stream*)."""
        self.log(mode, 200)
        self.head(200, ctype, len(body), [("Docker-Content-Digest", "sha256:" + hashlib.sha256(body).hexdigest())])
        if not body_ok:
            return
        try:
            if mode.startswith("drip"):
                for i in range(len(body)):
                    if i:
                        time.sleep(self.server.drip_interval)
                    self.wfile.write(body[i:i + 1])
                    self.wfile.flush()
            else:
                self.wfile.write(body[:len(body) // 2])
                self.wfile.flush()
                self.close_connection = True
        except OSError:
            self.close_connection = True

    def endless(self, mode, body_ok):
        """200, chunked (no Content-Length), --huge-size bytes as fast as the client reads."""
        self.log(mode, 200)
        self.send_response(200)
        self.send_header("Docker-Distribution-API-Version", "registry/2.0")
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if not body_ok:
            return
        left, block = self.server.huge_size, b"B" * 65536
        try:
            while left > 0:
                n = min(left, len(block))
                self.wfile.write(b"%x\r\n" % n + block[:n] + b"\r\n")
                left -= n
            self.wfile.write(b"0\r\n\r\n")
        except OSError:
            self.close_connection = True

    def good_manifest(self, mode, ref):
        """What the -blob and -sig modes answer for a manifest: None for 404."""
        if ref.startswith("sha256-") and ref.endswith((".sig", ".att")):
            return WRONG_SHAPE_SIG if mode == "wrong-shape-sig" else SIG_MANIFEST
        if ref.startswith("sha256-"):
            return None  # the referrers fallback tag: no Sigstore bundles here
        return IMAGE_MANIFEST

    def handle_any(self):
        self.drain()
        mode = self.mode()
        u = urllib.parse.urlsplit(self.path)
        body_ok = self.command != "HEAD"
        if mode == "stall":
            self.log(mode, "-")
            FOREVER.wait()
            return
        if mode == "500":
            self.log(mode, 500)
            body = b'{"errors":[{"code":"UNKNOWN","message":"internal server error"}]}'
            self.head(500, "application/json", len(body))
            if body_ok:
                self.wfile.write(body)
            return
        if mode == "token-503":
            if u.path == "/token":
                self.log(mode, 503)
                body = b"token service unavailable"
                self.head(503, "text/plain", len(body))
            else:
                self.log(mode, 401)
                body = b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}'
                realm = self.server.realm or f"http://{self.server.server_address[0]}:{self.server.server_address[1]}/token"
                self.head(401, "application/json", len(body),
                          [("WWW-Authenticate", f'Bearer realm="{realm}",service="bad",scope="repository:app/web:pull"')])
            if body_ok:
                self.wfile.write(body)
            return
        if mode == "redirect-http":
            self.log(mode, 307)
            self.head(307, "text/plain", 0,
                      [("Location", f"http://{self.server.server_address[0]}:{self.server.server_address[1]}{self.path}")])
            return
        if mode == "redirect-loop":
            hop = int(urllib.parse.parse_qs(u.query).get("hop", ["0"])[0] or 0) + 1
            self.log(mode, 307)
            self.head(307, "text/plain", 0, [("Location", f"{u.path}?hop={hop}")])
            return
        if mode == "garbage-json":
            self.log(mode, 200)
            ctype = OCI_MANIFEST if "/manifests/" in u.path else "application/json"
            self.head(200, ctype, len(GARBAGE))
            if body_ok:
                self.wfile.write(GARBAGE)
            return
        if u.path.rstrip("/") == "/v2":
            self.log(mode, 200)
            self.head(200, "application/json", 2)
            if body_ok:
                self.wfile.write(b"{}")
            return
        if mode == "huge-manifest" and "/manifests/" in u.path:
            size = self.server.huge_size
            prefix = b'{"schemaVersion":2,"mediaType":"' + OCI_MANIFEST.encode() + \
                b'","config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":2,' \
                b'"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"},' \
                b'"layers":[],"annotations":{"padding":"'
            suffix = b'"}}'
            fill = max(0, size - len(prefix) - len(suffix))
            self.log(mode, 200)
            self.head(200, OCI_MANIFEST, len(prefix) + fill + len(suffix),
                      [("Docker-Content-Digest", "sha256:" + "0" * 64)])
            if not body_ok:
                return
            try:
                self.wfile.write(prefix)
                block = b"A" * 65536
                while fill > 0:
                    n = min(fill, len(block))
                    self.wfile.write(block[:n])
                    fill -= n
                self.wfile.write(suffix)
            except OSError:
                pass
            return
        if mode == "wrong-content-length" and ("/manifests/" in u.path or "/blobs/" in u.path):
            body = SMALL_MANIFEST
            self.log(mode, 200)
            self.head(200, OCI_MANIFEST if "/manifests/" in u.path else "application/octet-stream",
                      len(body) + 4096,
                      [("Docker-Content-Digest", "sha256:" + hashlib.sha256(body).hexdigest())])
            if body_ok:
                try:
                    self.wfile.write(body)
                    self.wfile.flush()
                except OSError:
                    pass
            self.close_connection = True
            return
        is_manifest, is_blob = "/manifests/" in u.path, "/blobs/" in u.path
        if mode in ("drip", "close-mid-stream") and (is_manifest or is_blob):
            self.misbehave(mode, OCI_MANIFEST if is_manifest else "application/octet-stream", SMALL_MANIFEST, body_ok)
            return
        if mode == "wrong-shape" and is_manifest:
            self.log(mode, 200)
            self.head(200, OCI_MANIFEST, len(WRONG_SHAPE))
            if body_ok:
                self.wfile.write(WRONG_SHAPE)
            return
        if mode.endswith(("-blob", "-sig")) and is_manifest:
            body = self.good_manifest(mode, u.path.rsplit("/", 1)[1])
            if body is not None:
                self.log(mode, 200)
                self.head(200, OCI_MANIFEST, len(body),
                          [("Docker-Content-Digest", "sha256:" + hashlib.sha256(body).hexdigest())])
                if body_ok:
                    self.wfile.write(body)
                return
        if mode.endswith(("-blob", "-sig")) and is_blob and u.path.endswith("/" + CONFIG_DIGEST):
            self.log(mode, 200)
            self.head(200, "application/octet-stream", len(CONFIG_BLOB), [("Docker-Content-Digest", CONFIG_DIGEST)])
            if body_ok:
                self.wfile.write(CONFIG_BLOB)
            return
        if mode in ("drip-blob", "close-mid-stream-blob") and is_blob:
            self.misbehave(mode, "application/octet-stream", SIG_BLOB, body_ok)
            return
        if mode == "huge-blob" and is_blob:
            self.endless(mode, body_ok)
            return
        self.log(mode, 404)
        body = b'{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry"}]}'
        self.head(404, "application/json", len(body))
        if body_ok:
            self.wfile.write(body)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any


def main():
    args = sys.argv[1:]
    opts = {}
    while args:
        k = args.pop(0)
        if not k.startswith("--") or not args:
            raise SystemExit(f"usage: see {__file__}")
        opts[k[2:]] = args.pop(0)
    mode = opts.get("mode", "500")
    if mode not in MODES:
        raise SystemExit(f"registry-bad: mode must be one of {MODES}")
    server = ThreadingHTTPServer((opts.get("bind", "127.0.0.1"), int(opts.get("port", 0))), Handler)
    server.realm = opts.get("realm")
    server.daemon_threads = True
    server.mode = mode
    server.mode_file = opts.get("mode-file")
    server.log_path = opts.get("log")
    server.huge_size = int(opts.get("huge-size", 50 * 1024 * 1024))
    server.drip_interval = float(opts.get("drip-interval", 0.5))
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
